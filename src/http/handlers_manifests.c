/* handlers_manifests.c — GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>. Manifests are
 * returned byte for byte as pushed, with their stored media type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/limits.h"
#include "cache.h"
#include "http.h"

static void begin_nothing(struct req *q)
{
	(void)q;
}


static enum MHD_Result manifest_get(struct req *q)
{
	struct berth_registry_manifest m;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char etag[BERTH_DIGEST_MAX + 3], key[BERTH_NAME_MAX + BERTH_ROUTE_REF_MAX + 4];
	/* The generation is read before the lookup: see berth_registry_generation. */
	uint64_t gen = berth_registry_generation(q->reg);
	/* A mirrored tag is checked with its upstream first, so it is never answered from the
	 * response cache: that check is the point. A digest is content-addressed: cached here,
	 * it is served as any other. */
	int tag_of_mirror = q->mrt && !strchr(q->route.ref, ':');
	size_t klen = tag_of_mirror
			      ? 0
			      : berth_rcache_key(key, sizeof key, 'm', q->route.name, q->route.ref);
	berth_err e;
	/* HEAD and GET share one cached response: libmicrohttpd sends only its headers (with
	 * the body's length) to a HEAD. */
	if (klen && berth_rcache_queue(req_cache(q), key, klen, gen, q->conn, &ret, &q->status)) {
		if (q->mrt) q->msource = BERTH_MIRROR_HIT;
		return ret;
	}
	/* The upstream is asked when needed (which may park the request). */
	if (berth_http_mirror_manifest(q, &ret)) return ret;
	e = berth_registry_manifest_get(q->reg, q->route.name, q->route.ref, 1, &m);
	if (e) return req_error(q, e, NULL);
	r = resp_heap(m.content, m.len);
	if (!r) {
		berth_registry_manifest_clear(&m);
		return MHD_NO;
	}
	m.content = NULL; /* the response owns it now */
	q->bytes_out = (int64_t)m.len;
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, m.media_type);
	resp_header(r, "Docker-Content-Digest", m.digest.s);
	snprintf(etag, sizeof etag, "\"%s\"", m.digest.s);
	resp_header(r, MHD_HTTP_HEADER_ETAG, etag);
	if (q->mans.warning[0]) {
		resp_header(r, "Warning", q->mans.warning);
		klen = 0; /* a warning belongs to this answer only */
	}
	ret = req_queue_keep(q, 200, r);
	if (klen) berth_rcache_put(req_cache(q), key, klen, gen, 200, r, m.len);
	else MHD_destroy_response(r);
	berth_registry_manifest_clear(&m);
	return ret;
}

static void manifest_put_begin(struct req *q)
{
	const struct berth_registry_opts *o = berth_registry_opts(q->reg);
	const char *cl = req_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
	/* Refuse before reading when the declared length is already over the limit. */
	if (cl) {
		char *end;
		unsigned long long v = strtoull(cl, &end, 10);
		if (*end == '\0' && v > o->manifest_max) {
			q->err = BERTH_ETOO_LARGE;
			q->err_detail = "manifest over the size limit";
			return;
		}
	}
	q->buf_max = o->manifest_max;
	q->body = BODY_BUFFER;
}

static enum MHD_Result manifest_put(struct req *q)
{
	struct berth_digest d, subject;
	int has_subject = 0;
	struct MHD_Response *r;
	char loc[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 32];
	const char *ct = req_header(q, MHD_HTTP_HEADER_CONTENT_TYPE);
	berth_err e = berth_registry_manifest_put(q->reg, q->route.name, q->route.ref, ct, q->buf,
						  q->buf_len, &d, &has_subject, &subject);
	/* The only denial a manifest put makes on its own is the golden-image policy. */
	if (e == BERTH_EDENIED)
		return req_error(q, e, "this repository only accepts images built on a golden "
				       "image (golden.require)");
	if (e) return req_error(q, e, NULL);
	r = resp_empty();
	snprintf(loc, sizeof loc, "/v2/%s/manifests/%s", q->route.name, d.s);
	resp_header(r, MHD_HTTP_HEADER_LOCATION, loc);
	resp_header(r, "Docker-Content-Digest", d.s);
	if (has_subject) resp_header(r, "OCI-Subject", subject.s);
	return req_queue(q, 201, r);
}

static enum MHD_Result manifest_delete(struct req *q)
{
	berth_err e = berth_registry_manifest_delete(q->reg, q->route.name, q->route.ref);
	if (e) return req_error(q, e, NULL);
	return req_queue(q, 202, resp_empty());
}

const struct handler berth_h_manifest_get = {begin_nothing, manifest_get, 0};
const struct handler berth_h_manifest_put = {manifest_put_begin, manifest_put, 0};
const struct handler berth_h_manifest_delete = {begin_nothing, manifest_delete, 0};

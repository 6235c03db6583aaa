/* handlers_blobs.c — blob pull (GET/HEAD with Range, zero-copy from a descriptor), blob delete,
 * and the upload protocol: POST (session, single-request ?digest=, ?mount=), PATCH chunks,
 * GET status, PUT to close, DELETE to cancel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/limits.h"
#include "range.h"
#include "cache.h"
#include "http.h"

#define LOC_MAX (BERTH_NAME_MAX + BERTH_DIGEST_MAX + 64)

static void begin_nothing(struct req *q)
{
	(void)q;
}

/* ---- pull ---- */

/* A malformed digest names no blob: 404 BLOB_UNKNOWN, as a malformed reference on the manifest
 * route is MANIFEST_UNKNOWN. DIGEST_INVALID stays with uploads, where bytes can fail a digest. */
static berth_err route_digest(struct req *q, struct berth_digest *d)
{
	return berth_digest_parse(q->route.ref, strlen(q->route.ref), d) ? BERTH_EBLOB_UNKNOWN
									 : BERTH_OK;
}

void resp_blob_headers(struct MHD_Response *r, const struct berth_digest *d)
{
	char etag[BERTH_DIGEST_MAX + 3];
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	resp_header(r, "Docker-Content-Digest", d->s);
	resp_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	snprintf(etag, sizeof etag, "\"%s\"", d->s);
	resp_header(r, MHD_HTTP_HEADER_ETAG, etag);
	/* Content-addressed: the bytes behind a digest never change. */
	resp_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=31536000");
}

static enum MHD_Result blob_get(struct req *q)
{
	struct berth_digest d;
	struct MHD_Response *r;
	int64_t size, start = 0, end = 0;
	int fd = -1, partial = 0;
	const char *range;
	char cr[96];
	enum MHD_Result mret;
	berth_err e = route_digest(q, &d);
	if (e) return req_error(q, e, NULL);
	/* A mirrored blob not cached yet streams from its fetch. */
	if (berth_http_mirror_blob(q, &d, &mret)) return mret;
	if (q->is_head) {
		uint64_t gen = berth_registry_generation(q->reg);
		char key[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 4];
		enum MHD_Result ret;
		size_t klen = berth_rcache_key(key, sizeof key, 'h', q->route.name, d.s);
		if (klen &&
		    berth_rcache_queue(req_cache(q), key, klen, gen, q->conn, &ret, &q->status))
			return ret;
		if ((e = berth_registry_blob_stat(q->reg, q->route.name, &d, &size)))
			return req_error(q, e, NULL);
		r = resp_head((uint64_t)size);
		resp_blob_headers(r, &d);
		ret = req_queue_keep(q, 200, r);
		if (klen) berth_rcache_put(req_cache(q), key, klen, gen, 200, r, 0);
		else MHD_destroy_response(r);
		return ret;
	} else {
		if ((e = berth_registry_blob_open(q->reg, q->route.name, &d, &fd, &size)))
			return req_error(q, e, NULL);
		if (fd < 0) return req_error(q, BERTH_EUNSUPPORTED, "driver cannot serve bytes");
		range = req_header(q, MHD_HTTP_HEADER_RANGE);
		if (range) {
			e = berth_range_parse_range(range, strlen(range), size, &start, &end);
			if (e == BERTH_ERANGE) {
				close(fd);
				/* RFC 9110 §15.5.17: say how long the blob is. The spec names no
				 * error code for this, so no error body either. */
				r = resp_empty();
				snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
				resp_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
				return req_queue(q, 416, r);
			}
			partial = e == BERTH_OK; /* a malformed Range is ignored (RFC 9110) */
		}
		if (partial) {
			r = MHD_create_response_from_fd_at_offset64((uint64_t)(end - start + 1), fd,
								    (uint64_t)start);
			snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)start,
				 (long long)end, (long long)size);
		} else {
			r = MHD_create_response_from_fd_at_offset64((uint64_t)size, fd, 0);
		}
		if (!r) {
			close(fd);
			return MHD_NO;
		}
		if (partial) resp_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		q->bytes_out = partial ? end - start + 1 : size;
	}
	resp_blob_headers(r, &d);
	return req_queue(q, partial ? 206 : 200, r);
}

static enum MHD_Result blob_delete(struct req *q)
{
	struct berth_digest d;
	berth_err e = route_digest(q, &d);
	if (!e) e = berth_registry_blob_delete(q->reg, q->route.name, &d);
	if (e) return req_error(q, e, NULL);
	struct MHD_Response *r = resp_empty();
	resp_header(r, "Docker-Content-Digest", d.s);
	return req_queue(q, 202, r);
}

/* ---- upload helpers ---- */

static void upload_location(struct req *q, struct MHD_Response *r, int64_t size)
{
	char loc[LOC_MAX], rng[64];
	snprintf(loc, sizeof loc, "/v2/%s/blobs/uploads/%s", q->route.name, q->upload_id);
	resp_header(r, MHD_HTTP_HEADER_LOCATION, loc);
	resp_header(r, "Docker-Upload-UUID", q->upload_id);
	/* No Range until a byte has arrived: "0-0" would claim one (distribution-spec#577). */
	if (size > 0) {
		snprintf(rng, sizeof rng, "0-%lld", (long long)(size - 1));
		resp_header(r, MHD_HTTP_HEADER_RANGE, rng);
	}
}

/* An upload error; a 416 tells the client where the upload really stands. */
static enum MHD_Result upload_error(struct req *q, berth_err e, const char *detail)
{
	unsigned status;
	struct MHD_Response *r = resp_error(q, e, detail, &status);
	if (e == BERTH_ERANGE) {
		int64_t size = 0;
		if (berth_registry_upload_status(q->reg, q->route.name, q->upload_id, &size) ==
		    BERTH_OK)
			upload_location(q, r, size);
	}
	return req_queue(q, status, r);
}

static enum MHD_Result blob_created(struct req *q, const struct berth_digest *d)
{
	char loc[LOC_MAX];
	struct MHD_Response *r = resp_empty();
	snprintf(loc, sizeof loc, "/v2/%s/blobs/%s", q->route.name, d->s);
	resp_header(r, MHD_HTTP_HEADER_LOCATION, loc);
	resp_header(r, "Docker-Content-Digest", d->s);
	return req_queue(q, 201, r);
}

/* Does the request carry a body? */
static int has_body(struct req *q)
{
	const char *cl = req_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = req_header(q, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te) return 1;
	return cl && strcmp(cl, "0") != 0;
}

/* Opens the upload writer for a PATCH or a PUT with a body, honouring Content-Range. */
static void open_writer(struct req *q, enum berth_digest_alg alg)
{
	const char *cr = req_header(q, MHD_HTTP_HEADER_CONTENT_RANGE);
	const char *cl = req_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t start = -1, end = -1;
	if (cr) {
		if (berth_range_parse_content_range(cr, strlen(cr), &start, &end)) {
			q->err = BERTH_EUPLOAD_INVALID;
			q->err_detail = "malformed Content-Range";
			return;
		}
		q->expect = end - start + 1;
		if (cl) {
			char *e;
			errno = 0;
			long long v = strtoll(cl, &e, 10);
			if (errno || *e || v != q->expect) {
				q->err = BERTH_EUPLOAD_INVALID;
				q->err_detail = "Content-Length disagrees with Content-Range";
				return;
			}
		}
	}
	q->err = berth_registry_upload_writer(q->reg, q->route.name, q->upload_id, start, alg,
					      &q->w);
	if (!q->err) q->body = BODY_WRITER;
}

static void take_upload_id(struct req *q)
{
	size_t n = strlen(q->route.ref);
	if (n == 0 || n > BERTH_UPLOAD_ID_LEN) {
		q->err = BERTH_EUPLOAD_UNKNOWN;
		return;
	}
	memcpy(q->upload_id, q->route.ref, n + 1);
}

/* Ends the body: closes the writer, checks a Content-Range was honoured in full. */
static berth_err end_body(struct req *q, int64_t *size)
{
	berth_err e = q->err;
	if (q->w) {
		berth_err fe = berth_upload_writer_finish(q->w);
		if (!e) e = fe;
		*size = berth_upload_writer_size(q->w);
		berth_upload_writer_close(q->w);
		q->w = NULL;
	}
	if (!e && q->expect >= 0 && q->received != q->expect) {
		e = BERTH_EUPLOAD_INVALID;
		q->err_detail = "body shorter than its Content-Range";
	}
	return e;
}

/* ---- publishing (group commit) ---- */

static void published(void *ctx, berth_err result)
{
	struct req *q = ctx;
	q->commit_err = result;
	q->commit_state = 2;
	req_resume(q);
}

/* Verifies the upload and hands it to the committer, suspending the connection so this
 * worker serves others while the batch is flushed; called again once resumed. */
static enum MHD_Result publish(struct req *q)
{
	struct berth_registry_commit *c = NULL;
	berth_err e;
	if (q->commit_state == 2) {
		if (q->commit_err) return upload_error(q, q->commit_err, NULL);
		return blob_created(q, &q->digest);
	}
	if (q->commit_state == 1) return MHD_YES; /* spurious call while suspended */
	e = berth_registry_upload_prepare(q->reg, q->route.name, q->upload_id, &q->digest, &c);
	q->anonymous = 0; /* finished, discarded or owned by the commit: nothing to cancel */
	if (e) return upload_error(q, e, NULL);
	q->commit_state = 1;
	/* Suspend before submitting: the committer may finish (and resume) at once. */
	req_suspend(q);
	berth_registry_commit_submit(q->reg, c, published, q);
	return MHD_YES;
}

/* ---- POST /blobs/uploads/ ---- */

static void upload_start_begin(struct req *q)
{
	const char *dg = req_query(q, "digest");
	const char *mount = req_query(q, "mount");
	if (mount) return; /* decided in finish: mount, else a session */
	if (!dg) return;
	if ((q->err = berth_digest_parse(dg, strlen(dg), &q->digest))) return;
	q->err = berth_registry_upload_anonymous(q->reg, q->route.name, q->digest.alg, q->upload_id,
						 &q->w);
	if (q->err) return;
	q->anonymous = 1;
	q->body = BODY_WRITER;
}

static enum MHD_Result upload_start(struct req *q)
{
	const char *mount = req_query(q, "mount");
	struct MHD_Response *r;
	int64_t size = 0;
	berth_err e;
	if (q->commit_state) return publish(q);
	if (q->anonymous) {
		if ((e = end_body(q, &size))) return req_error(q, e, q->err_detail);
		return publish(q);
	}
	/* A mount the caller may not read from is a plain session, exactly what an unmountable
	 * blob gives: no answer tells whether the blob exists. */
	if (mount && !q->no_mount) {
		struct berth_digest d;
		const char *from = req_query(q, "from");
		if ((e = berth_digest_parse(mount, strlen(mount), &d))) return req_error(q, e, NULL);
		e = berth_registry_blob_mount(q->reg, q->route.name, &d,
					      from && *from ? from : NULL);
		if (!e) return blob_created(q, &d);
		if (e != BERTH_EBLOB_UNKNOWN && e != BERTH_ENAME_UNKNOWN)
			return req_error(q, e, NULL);
		/* Not mountable: the spec falls back to an ordinary upload session. */
	}
	if ((e = berth_registry_upload_start(q->reg, q->route.name, q->upload_id)))
		return req_error(q, e, NULL);
	r = resp_empty();
	upload_location(q, r, 0);
	return req_queue(q, 202, r);
}

/* ---- GET /blobs/uploads/<id> ---- */

static enum MHD_Result upload_status(struct req *q)
{
	int64_t size = 0;
	berth_err e;
	take_upload_id(q);
	if (q->err) return req_error(q, q->err, NULL);
	if ((e = berth_registry_upload_status(q->reg, q->route.name, q->upload_id, &size)))
		return req_error(q, e, NULL);
	struct MHD_Response *r = resp_empty();
	upload_location(q, r, size);
	return req_queue(q, 204, r);
}

/* ---- PATCH /blobs/uploads/<id> ---- */

static void upload_patch_begin(struct req *q)
{
	take_upload_id(q);
	if (!q->err) open_writer(q, 0);
}

static enum MHD_Result upload_patch(struct req *q)
{
	int64_t size = 0;
	berth_err e = end_body(q, &size);
	/* The session is on record before the client hears its bytes were taken. */
	if (!e) e = berth_registry_upload_keep(q->reg, q->upload_id);
	if (e) return upload_error(q, e, q->err_detail);
	struct MHD_Response *r = resp_empty();
	upload_location(q, r, size);
	return req_queue(q, 202, r);
}

/* ---- PUT /blobs/uploads/<id>?digest= ---- */

static void upload_put_begin(struct req *q)
{
	const char *dg = req_query(q, "digest");
	take_upload_id(q);
	if (q->err) return;
	if (!dg) {
		q->err = BERTH_EDIGEST_INVALID;
		q->err_detail = "digest parameter missing";
		return;
	}
	if ((q->err = berth_digest_parse(dg, strlen(dg), &q->digest))) return;
	if (has_body(q)) open_writer(q, q->digest.alg);
}

static enum MHD_Result upload_put(struct req *q)
{
	int64_t size = 0;
	berth_err e;
	if (q->commit_state) return publish(q);
	if ((e = end_body(q, &size))) return upload_error(q, e, q->err_detail);
	return publish(q);
}

/* ---- DELETE /blobs/uploads/<id> ---- */

static enum MHD_Result upload_delete(struct req *q)
{
	berth_err e;
	take_upload_id(q);
	if (q->err) return req_error(q, q->err, NULL);
	if ((e = berth_registry_upload_cancel(q->reg, q->route.name, q->upload_id)))
		return req_error(q, e, NULL);
	return req_queue(q, 204, resp_empty());
}

const struct handler berth_h_blob_get = {begin_nothing, blob_get, 0};
const struct handler berth_h_blob_delete = {begin_nothing, blob_delete, 0};
const struct handler berth_h_upload_start = {upload_start_begin, upload_start, 0};
const struct handler berth_h_upload_status = {begin_nothing, upload_status, 0};
const struct handler berth_h_upload_patch = {upload_patch_begin, upload_patch, 1};
const struct handler berth_h_upload_put = {upload_put_begin, upload_put, 1};
const struct handler berth_h_upload_delete = {begin_nothing, upload_delete, 0};

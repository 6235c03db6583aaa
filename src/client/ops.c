/* ops.c — client use cases over the distribution-spec v1.1 API.
 *
 * Blob uploads follow the spec's chunked flow even for a single chunk: POST (or POST ?mount=
 * &from= for a cross-repository mount, which falls back to a session when refused), PATCH
 * with Content-Range, PUT ?digest=. The one PATCH carries the whole blob; when it breaks, GET
 * on the upload URL tells how much the registry kept (Range: 0-N, spec "Resuming an upload")
 * and the next PATCH goes on from N+1. A registry-to-registry copy streams the source GET
 * (a Range request when resuming) through a socketpair into that PATCH: no temp files.
 * Several blobs move at once on a few threads (opts.jobs). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/manifest.h"
#include "ops.h"

#define RESUME_TRIES 5
#define TAG_PAGES_MAX 100000

/* ---- platforms (pure) ---------------------------------------------------------------- */

int berth_platform_parse(const char *s, size_t len, struct berth_platform *out)
{
	char *fields[3];
	size_t caps[3] = {sizeof out->os, sizeof out->arch, sizeof out->variant};
	size_t i = 0, f = 0, start = 0;

	memset(out, 0, sizeof *out);
	fields[0] = out->os;
	fields[1] = out->arch;
	fields[2] = out->variant;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '/') {
			char ch = s[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
				return -1;
			continue;
		}
		if (f >= 3 || i == start || i - start >= caps[f]) return -1;
		for (size_t k = start; k < i; k++)
			fields[f][k - start] = (char)((s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k]);
		fields[f][i - start] = '\0';
		f++;
		start = i + 1;
	}
	return f >= 2 ? 0 : -1;
}

static const char *norm_arch(const char *a)
{
	if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0) return "amd64";
	if (strcmp(a, "aarch64") == 0) return "arm64";
	if (strcmp(a, "i386") == 0) return "386";
	return a;
}

static const char *norm_variant(const char *arch, const char *v)
{
	if (strcmp(arch, "arm64") == 0 && strcmp(v, "v8") == 0) return "";
	if (strcmp(arch, "arm") == 0 && v[0] == '\0') return "v7";
	return v;
}

int berth_platform_match(const struct berth_platform *want, const char *os, const char *arch,
			 const char *variant)
{
	const char *wa = norm_arch(want->arch), *a = norm_arch(arch);

	if (strcasecmp(want->os, os) != 0 || strcmp(wa, a) != 0) return 0;
	if (!want->variant[0]) return 1;
	return strcmp(norm_variant(wa, want->variant), norm_variant(a, variant)) == 0;
}

static int str_into(json_t *o, const char *k, char *out, size_t len)
{
	json_t *v = json_object_get(o, k);

	out[0] = '\0';
	if (!v) return 0;
	if (!json_is_string(v) || json_string_length(v) >= len) return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* A descriptor object → struct; -1 when invalid. */
static int desc_from_json(json_t *e, struct berth_desc *out)
{
	json_t *d = json_object_get(e, "digest"), *s = json_object_get(e, "size");
	json_t *p = json_object_get(e, "platform");

	memset(out, 0, sizeof *out);
	if (!json_is_object(e) || !json_is_string(d) ||
	    berth_digest_parse(json_string_value(d), json_string_length(d), &out->digest) ||
	    !json_is_integer(s) || json_integer_value(s) < 0 ||
	    str_into(e, "mediaType", out->media_type, sizeof out->media_type))
		return -1;
	out->size = json_integer_value(s);
	if (json_is_object(p) &&
	    (str_into(p, "os", out->os, sizeof out->os) ||
	     str_into(p, "architecture", out->arch, sizeof out->arch) ||
	     str_into(p, "variant", out->variant, sizeof out->variant)))
		return -1;
	return 0;
}

int berth_platform_pick(const char *index, size_t len, const struct berth_platform *want,
			struct berth_desc *out)
{
	json_t *doc = json_loadb(index, len, 0, NULL), *ms, *e;
	size_t i;
	int rc = 0;

	ms = doc ? json_object_get(doc, "manifests") : NULL;
	if (!json_is_array(ms)) {
		json_decref(doc);
		return -1;
	}
	json_array_foreach(ms, i, e) {
		struct berth_desc d;

		if (desc_from_json(e, &d)) {
			rc = -1;
			break;
		}
		if (berth_platform_match(want, d.os, d.arch, d.variant)) {
			*out = d;
			rc = 1;
			break;
		}
	}
	json_decref(doc);
	return rc;
}

/* ---- small helpers -------------------------------------------------------------------- */

static void scope_of(char *buf, size_t len, const char *repo, const char *actions)
{
	snprintf(buf, len, "repository:%s:%s", repo, actions);
}

/* The reference part of a manifest URL: the digest when there is one, else the tag. */
static const char *ref_reference(const struct berth_ref *r)
{
	return r->has_digest ? r->digest : r->tag;
}

static void ref_name(const struct berth_ref *r, char *buf, size_t len)
{
	if (berth_ref_format_full(r, buf, len)) snprintf(buf, len, "%s/%s", r->domain, r->path);
}

static void progress(struct berth_client *c, const struct berth_digest *d, int64_t done,
		     int64_t total, enum berth_progress_state st)
{
	const struct berth_client_opts *o = berth_client_options(c);
	struct berth_progress p = {d->s, done, total, st};

	if (o->progress) o->progress(o->progress_ud, &p);
}

static void count(int *field)
{
	__atomic_fetch_add(field, 1, __ATOMIC_RELAXED);
}

static int is_manifest_type(const char *mt)
{
	return berth_manifest_media_type_known(mt);
}

/* A manifest as fetched: exact bytes, media type and digest. */
struct mdoc {
	char *bytes;
	size_t len;
	struct berth_desc desc;
	int is_index;
};

static void mdoc_clear(struct mdoc *m)
{
	free(m->bytes);
	memset(m, 0, sizeof *m);
}

/* Validates bytes as a manifest of media type mt (descriptor's or Content-Type). */
static berth_cerr check_manifest(struct berth_client *c, const char *what, struct mdoc *m,
				 const char *mt)
{
	struct berth_manifest *pm = NULL;

	if (berth_manifest_parse(mt, m->bytes, m->len, &pm))
		return berth_client_fail(c, BERTH_C_EDIGEST, "%s: not a valid image manifest or index",
					 what);
	if (!m->desc.media_type[0]) snprintf(m->desc.media_type, sizeof m->desc.media_type, "%s", pm->media_type);
	m->is_index = pm->kind == BERTH_MANIFEST_INDEX;
	berth_manifest_free(pm);
	return BERTH_C_OK;
}

static berth_cerr get_manifest(struct berth_client *c, const char *reg, const char *repo,
			       const char *reference, const char *what, struct mdoc *out)
{
	char url[1024], scope[512], mt[BERTH_MEDIA_TYPE_MAX + 1];
	struct berth_req rq;
	struct berth_resp rs;
	struct berth_digest want, hdr, got;
	int by_digest = berth_digest_parse(reference, strlen(reference), &want) == 0;
	int has_hdr;
	berth_cerr rc;

	memset(out, 0, sizeof *out);
	snprintf(url, sizeof url, "/v2/%s/manifests/%s", repo, reference);
	scope_of(scope, sizeof scope, repo, "pull");
	berth_req_init(&rq);
	rq.url = url;
	rq.scope = scope;
	rq.accept = BERTH_ACCEPT_MANIFESTS;
	rq.max_body = BERTH_CLIENT_DOC_MAX;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (rc) goto out;
	if (rs.status != 200) {
		rc = berth_client_http_error(c, what, &rs);
		goto out;
	}
	has_hdr = rs.digest[0] && berth_digest_parse(rs.digest, strlen(rs.digest), &hdr) == 0;
	if (berth_digest_of(by_digest ? want.alg : has_hdr ? hdr.alg : BERTH_DIGEST_SHA256,
			    rs.body ? rs.body : "", rs.body_len, &got)) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto out;
	}
	if (by_digest && !berth_digest_eq(&want, &got)) {
		rc = berth_client_fail(c, BERTH_C_EDIGEST,
				       "%s: manifest content does not match digest %s (got %s)", what,
				       want.s, got.s);
		goto out;
	}
	if (has_hdr && hdr.alg == got.alg && !berth_digest_eq(&hdr, &got)) {
		rc = berth_client_fail(c, BERTH_C_EDIGEST,
				       "%s: manifest content does not match Docker-Content-Digest %s",
				       what, hdr.s);
		goto out;
	}
	out->bytes = rs.body ? rs.body : strdup("");
	rs.body = NULL;
	out->len = rs.body_len;
	out->desc.digest = got;
	out->desc.size = (int64_t)rs.body_len;
	/* Content-Type without parameters names the format when it is a manifest type. */
	snprintf(mt, sizeof mt, "%.*s", (int)strcspn(rs.content_type, "; "), rs.content_type);
	if (is_manifest_type(mt)) snprintf(out->desc.media_type, sizeof out->desc.media_type, "%s", mt);
	rc = check_manifest(c, what, out, out->desc.media_type[0] ? out->desc.media_type : NULL);
out:
	berth_resp_clear(&rs);
	if (rc) mdoc_clear(out);
	return rc;
}

static berth_cerr put_manifest(struct berth_client *c, const char *reg, const char *repo,
			       const char *reference, const struct mdoc *m, const char *what)
{
	char url[1024], scope[512];
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;

	snprintf(url, sizeof url, "/v2/%s/manifests/%s", repo, reference);
	scope_of(scope, sizeof scope, repo, "pull,push");
	berth_req_init(&rq);
	rq.method = "PUT";
	rq.url = url;
	rq.scope = scope;
	rq.content_type = m->desc.media_type;
	rq.body = m->bytes;
	rq.body_len = m->len;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (!rc && (rs.status < 200 || rs.status > 299)) rc = berth_client_http_error(c, what, &rs);
	berth_resp_clear(&rs);
	return rc;
}

/* Children of a manifest: an index's manifests (with platforms), else config + layers. */
static berth_cerr doc_children(struct berth_client *c, const char *what, const struct mdoc *m,
			       struct berth_desc **out, size_t *n)
{
	json_t *doc = json_loadb(m->bytes, m->len, 0, NULL), *arr, *e;
	size_t i, k = 0, total;
	struct berth_desc *v = NULL;
	berth_cerr rc = BERTH_C_OK;

	*out = NULL;
	*n = 0;
	if (!doc) return berth_client_fail(c, BERTH_C_EDIGEST, "%s: manifest is not JSON", what);
	arr = json_object_get(doc, m->is_index ? "manifests" : "layers");
	total = json_array_size(arr) + (m->is_index ? 0 : 1);
	v = calloc(total ? total : 1, sizeof *v);
	if (!v) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto out;
	}
	if (!m->is_index) {
		if (desc_from_json(json_object_get(doc, "config"), &v[k++])) goto bad;
	}
	json_array_foreach(arr, i, e) {
		if (desc_from_json(e, &v[k++])) goto bad;
	}
	*out = v;
	*n = k;
	v = NULL;
	goto out;
bad:
	rc = berth_client_fail(c, BERTH_C_EDIGEST, "%s: invalid descriptor in manifest", what);
out:
	free(v);
	json_decref(doc);
	return rc;
}

/* ---- concurrent jobs ------------------------------------------------------------------ */

struct jobs {
	struct berth_client *c;
	size_t n, next;
	pthread_mutex_t mu;
	berth_cerr (*fn)(void *ctx, size_t i);
	void *ctx;
};

static void *job_worker(void *arg)
{
	struct jobs *j = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&j->mu);
		if (j->next >= j->n || berth_client_errcode(j->c)) {
			pthread_mutex_unlock(&j->mu);
			return NULL;
		}
		i = j->next++;
		pthread_mutex_unlock(&j->mu);
		if (j->fn(j->ctx, i)) { /* recorded in the client; the others stop picking */ }
	}
}

static berth_cerr run_jobs(struct berth_client *c, size_t n, berth_cerr (*fn)(void *, size_t),
			   void *ctx)
{
	struct jobs j = {c, n, 0, PTHREAD_MUTEX_INITIALIZER, fn, ctx};
	pthread_t t[16];
	int nt = berth_client_options(c)->jobs, started = 0;

	if ((size_t)nt > n) nt = (int)n;
	for (int i = 1; i < nt; i++) {
		if (pthread_create(&t[started], NULL, job_worker, &j) != 0) break;
		started++;
	}
	job_worker(&j);
	for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
	pthread_mutex_destroy(&j.mu);
	return berth_client_errcode(c);
}

/* ---- blobs ---------------------------------------------------------------------------- */

/* 1 present, 0 absent, -1 error (recorded). */
static int head_blob(struct berth_client *c, const char *reg, const char *repo,
		     const struct berth_digest *d, const char *scope)
{
	char url[1024];
	struct berth_req rq;
	struct berth_resp rs;
	int r;

	snprintf(url, sizeof url, "/v2/%s/blobs/%s", repo, d->s);
	berth_req_init(&rq);
	rq.method = "HEAD";
	rq.url = url;
	rq.scope = scope;
	if (berth_client_do(c, reg, &rq, &rs)) return -1;
	if (rs.status == 200) r = 1;
	else if (rs.status == 404) r = 0;
	else {
		char what[300];

		snprintf(what, sizeof what, "blob %s", d->s);
		berth_client_http_error(c, what, &rs);
		r = -1;
	}
	berth_resp_clear(&rs);
	return r;
}

/* Where an upload's bytes come from: a file, or another registry's blob. */
struct blob_src {
	int fd;                  /* file source when >= 0 */
	const char *reg, *repo;  /* registry source */
};

/* Streams a registry blob from off into a socket (the upload reads the other end). */
struct pump {
	struct berth_client *c;
	const struct blob_src *src;
	const struct berth_digest *d;
	int64_t off, total;
	int fd;
	struct berth_hasher *h;
	berth_cerr rc;
	struct berth_resp rs;
	pthread_t t;
};

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	char url[1024], scope[512], range[64];
	struct berth_req rq;

	snprintf(url, sizeof url, "/v2/%s/blobs/%s", p->src->repo, p->d->s);
	scope_of(scope, sizeof scope, p->src->repo, "pull");
	berth_req_init(&rq);
	rq.url = url;
	rq.scope = scope;
	rq.follow = 1;
	rq.out_fd = p->fd;
	rq.out_socket = 1;
	rq.hasher = p->h;
	rq.quiet = 1;
	if (p->off > 0) {
		snprintf(range, sizeof range, "bytes=%lld-", (long long)p->off);
		rq.range = range;
		rq.out_skip = p->off;
	}
	p->rc = berth_client_do(p->c, p->src->reg, &rq, &p->rs);
	shutdown(p->fd, SHUT_WR);
	close(p->fd);
	p->fd = -1;
	return NULL;
}

/* The offset to resume an upload from: GET on the upload URL → Range "0-N" → N+1. */
static berth_cerr upload_offset(struct berth_client *c, const char *reg, const char *scope,
				char *location, size_t loclen, int64_t *off)
{
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;
	const char *dash;

	berth_req_init(&rq);
	rq.url = location;
	rq.scope = scope;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (rc) return rc;
	if (rs.status != 204 && rs.status != 200) {
		rc = berth_client_http_error(c, "resuming upload", &rs);
		berth_resp_clear(&rs);
		return rc;
	}
	*off = 0;
	dash = strchr(rs.range, '-');
	if (dash) *off = strtoll(dash + 1, NULL, 10) + 1;
	if (rs.location[0]) snprintf(location, loclen, "%s", rs.location);
	berth_resp_clear(&rs);
	return BERTH_C_OK;
}

/* Uploads one blob to reg/repo: skipped when present, mounted from mount_from (same registry)
 * when it can be, else streamed from src, resuming a broken PATCH. */
static berth_cerr upload_blob(struct berth_client *c, const char *reg, const char *repo,
			      const struct berth_desc *d, const struct blob_src *src,
			      const char *mount_from, struct berth_op_result *res)
{
	char url[2048], scope[1024], location[BERTH_CLIENT_URL_MAX], crange[64], what[300];
	struct berth_req rq;
	struct berth_resp rs;
	struct berth_hasher *h = NULL;
	int64_t off = 0;
	int tries = 0, have, verify = 1;
	berth_cerr rc = BERTH_C_OK;

	memset(&rs, 0, sizeof rs);
	snprintf(what, sizeof what, "blob %s", d->digest.s);
	if (mount_from) {
		int n = snprintf(scope, sizeof scope, "repository:%s:pull,push repository:%s:pull", repo,
				 mount_from);

		if (n < 0 || (size_t)n >= sizeof scope) return berth_client_fail(c, BERTH_C_EFAIL, "name too long");
	} else {
		scope_of(scope, sizeof scope, repo, "pull,push");
	}
	count(&res->blobs);
	have = head_blob(c, reg, repo, &d->digest, scope);
	if (have < 0) return berth_client_errcode(c);
	if (have) {
		count(&res->blobs_existing);
		progress(c, &d->digest, d->size, d->size, BERTH_PROGRESS_EXISTS);
		return BERTH_C_OK;
	}
	if (mount_from)
		snprintf(url, sizeof url, "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, d->digest.s,
			 mount_from);
	else
		snprintf(url, sizeof url, "/v2/%s/blobs/uploads/", repo);
	berth_req_init(&rq);
	rq.method = "POST";
	rq.url = url;
	rq.scope = scope;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (rc) goto out;
	if (rs.status == 201 && mount_from) {
		count(&res->blobs_mounted);
		progress(c, &d->digest, d->size, d->size, BERTH_PROGRESS_MOUNTED);
		goto out;
	}
	if (rs.status != 202 || !rs.location[0]) {
		rc = rs.status == 202 ? berth_client_fail(c, BERTH_C_EFAIL, "%s: upload without Location", what)
				      : berth_client_http_error(c, what, &rs);
		goto out;
	}
	snprintf(location, sizeof location, "%s", rs.location);
	berth_resp_clear(&rs);
	scope_of(scope, sizeof scope, repo, "pull,push");
	progress(c, &d->digest, 0, d->size, BERTH_PROGRESS_START);
	if (src->fd < 0) {
		h = berth_hasher_new(d->digest.alg);
		if (!h) {
			rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
			goto out;
		}
	}
	while (off < d->size) {
		struct pump p;
		int sv[2] = {-1, -1};
		berth_cerr prc;

		memset(&p, 0, sizeof p);
		berth_req_init(&rq);
		rq.method = "PATCH";
		rq.url = location;
		rq.scope = scope;
		rq.content_type = "application/octet-stream";
		snprintf(crange, sizeof crange, "%lld-%lld", (long long)off, (long long)(d->size - 1));
		rq.content_range = crange;
		rq.body_fd_len = d->size - off;
		rq.progress_digest = d->digest.s;
		rq.progress_total = d->size;
		rq.progress_base = off;
		rq.quiet = 1;
		if (src->fd >= 0) {
			rq.body_fd = src->fd;
			rq.body_seekable = 1;
			rq.body_off = off;
		} else {
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
				rc = berth_client_fail(c, BERTH_C_EFAIL, "socketpair: %s", strerror(errno));
				goto out;
			}
			p.c = c;
			p.src = src;
			p.d = &d->digest;
			p.off = off;
			p.total = d->size;
			p.fd = sv[1];
			p.h = off == 0 ? h : NULL;
			if (pthread_create(&p.t, NULL, pump_main, &p) != 0) {
				close(sv[0]);
				close(sv[1]);
				rc = berth_client_fail(c, BERTH_C_EFAIL, "cannot start a thread");
				goto out;
			}
			rq.body_fd = sv[0];
		}
		prc = berth_client_do(c, reg, &rq, &rs);
		if (src->fd < 0) {
			close(sv[0]);
			pthread_join(p.t, NULL);
			if (off > 0) verify = 0; /* the hash saw only part: the registry checks it */
			if (p.rc == BERTH_C_OK && (p.rs.status < 200 || p.rs.status > 299)) {
				char swhat[300];

				snprintf(swhat, sizeof swhat, "source blob %s", d->digest.s);
				rc = berth_client_http_error(c, swhat, &p.rs);
				berth_resp_clear(&p.rs);
				goto out;
			}
			if (p.rc == BERTH_C_OK && prc == BERTH_C_OK && p.rs.written + off != d->size &&
			    rs.status == 202) {
				berth_resp_clear(&p.rs);
				rc = berth_client_fail(c, BERTH_C_EDIGEST, "%s: source size differs from %lld",
						       what, (long long)d->size);
				goto out;
			}
			berth_resp_clear(&p.rs);
		}
		if (prc == BERTH_C_OK && rs.status == 202) {
			if (rs.location[0]) snprintf(location, sizeof location, "%s", rs.location);
			off = d->size;
			break;
		}
		if (prc == BERTH_C_OK && rs.status != 416 && rs.status < 500) {
			rc = berth_client_http_error(c, what, &rs);
			goto out;
		}
		if (++tries > RESUME_TRIES) {
			if (prc) rc = berth_client_fail(c, prc, "%s", rs.errmsg);
			else rc = berth_client_http_error(c, what, &rs);
			goto out;
		}
		berth_resp_clear(&rs);
		usleep(200000u * (unsigned)tries);
		rc = upload_offset(c, reg, scope, location, sizeof location, &off);
		if (rc) goto out;
		if (off > d->size) {
			rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: registry holds more than the blob", what);
			goto out;
		}
	}
	berth_resp_clear(&rs);
	if (h && verify && d->size > 0) {
		struct berth_digest got;

		if (berth_hasher_final(h, &got) || !berth_digest_eq(&got, &d->digest)) {
			/* Cancel the session: the spec's DELETE on the upload URL. */
			berth_req_init(&rq);
			rq.method = "DELETE";
			rq.url = location;
			rq.scope = scope;
			rq.quiet = 1;
			if (berth_client_do(c, reg, &rq, &rs) == BERTH_C_OK) berth_resp_clear(&rs);
			rc = berth_client_fail(c, BERTH_C_EDIGEST, "%s: source content does not match its digest",
					       what);
			goto out;
		}
	}
	{
		int n = snprintf(url, sizeof url, "%s%cdigest=%s", location,
				 strchr(location, '?') ? '&' : '?', d->digest.s);

		if (n < 0 || (size_t)n >= sizeof url) {
			rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: upload URL too long", what);
			goto out;
		}
	}
	berth_req_init(&rq);
	rq.method = "PUT";
	rq.url = url;
	rq.scope = scope;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (rc) goto out;
	if (rs.status != 201 && rs.status != 204 && rs.status != 200) {
		rc = berth_client_http_error(c, what, &rs);
		goto out;
	}
	count(&res->blobs_sent);
	__atomic_fetch_add(&res->bytes_sent, d->size, __ATOMIC_RELAXED);
	progress(c, &d->digest, d->size, d->size, BERTH_PROGRESS_DONE);
out:
	if (rc) progress(c, &d->digest, 0, d->size, BERTH_PROGRESS_FAILED);
	berth_hasher_free(h);
	berth_resp_clear(&rs);
	return rc;
}

/* Downloads one blob into the layout, verified. */
static berth_cerr download_blob(struct berth_client *c, const char *reg, const char *repo,
				struct berth_layout *l, const struct berth_desc *d,
				struct berth_op_result *res)
{
	char url[1024], scope[512], what[300];
	struct berth_layout_tmp t = {-1, ""};
	struct berth_hasher *h = NULL;
	struct berth_req rq;
	struct berth_resp rs;
	struct berth_digest got;
	berth_cerr rc;

	memset(&rs, 0, sizeof rs);
	count(&res->blobs);
	snprintf(what, sizeof what, "blob %s", d->digest.s);
	if (berth_layout_has_blob(l, &d->digest, d->size)) {
		count(&res->blobs_existing);
		progress(c, &d->digest, d->size, d->size, BERTH_PROGRESS_EXISTS);
		return BERTH_C_OK;
	}
	h = berth_hasher_new(d->digest.alg);
	if (!h) return berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
	rc = berth_layout_blob_begin(l, &t);
	if (rc) {
		berth_hasher_free(h);
		return berth_client_fail(c, rc, "%s", berth_layout_error(l));
	}
	progress(c, &d->digest, 0, d->size, BERTH_PROGRESS_START);
	snprintf(url, sizeof url, "/v2/%s/blobs/%s", repo, d->digest.s);
	scope_of(scope, sizeof scope, repo, "pull");
	berth_req_init(&rq);
	rq.url = url;
	rq.scope = scope;
	rq.follow = 1;
	rq.out_fd = t.fd;
	rq.hasher = h;
	rq.progress_digest = d->digest.s;
	rq.progress_total = d->size;
	rc = berth_client_do(c, reg, &rq, &rs);
	if (rc) goto fail;
	if (rs.status != 200) {
		rc = berth_client_http_error(c, what, &rs);
		goto fail;
	}
	if (rs.written != d->size) {
		rc = berth_client_fail(c, BERTH_C_EDIGEST, "%s: got %lld bytes, the manifest says %lld",
				       what, (long long)rs.written, (long long)d->size);
		goto fail;
	}
	if (berth_hasher_final(h, &got)) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto fail;
	}
	rc = berth_layout_blob_commit(l, &t, &d->digest, &got);
	if (rc) {
		rc = berth_client_fail(c, rc, "%s", berth_layout_error(l));
		goto done;
	}
	count(&res->blobs_sent);
	__atomic_fetch_add(&res->bytes_sent, d->size, __ATOMIC_RELAXED);
	progress(c, &d->digest, d->size, d->size, BERTH_PROGRESS_DONE);
	goto done;
fail:
	berth_layout_blob_abort(&t);
done:
	if (rc) progress(c, &d->digest, 0, d->size, BERTH_PROGRESS_FAILED);
	berth_hasher_free(h);
	berth_resp_clear(&rs);
	return rc;
}

/* ---- push ----------------------------------------------------------------------------- */

struct push_ctx {
	struct berth_client *c;
	struct berth_layout *l;
	const struct berth_ref *dst;
	struct berth_desc *blobs;
	struct berth_op_result *res;
};

static berth_cerr push_blob_job(void *arg, size_t i)
{
	struct push_ctx *p = arg;
	struct blob_src src = {-1, NULL, NULL};
	int64_t size;
	berth_cerr rc = berth_layout_open_blob(p->l, &p->blobs[i].digest, &src.fd, &size);

	if (rc) return berth_client_fail(p->c, rc, "%s", berth_layout_error(p->l));
	if (size != p->blobs[i].size)
		rc = berth_client_fail(p->c, BERTH_C_EDIGEST, "blob %s in the layout has %lld bytes, "
				       "the manifest says %lld", p->blobs[i].digest.s, (long long)size,
				       (long long)p->blobs[i].size);
	else
		rc = upload_blob(p->c, p->dst->domain, p->dst->path, &p->blobs[i], &src, NULL, p->res);
	close(src.fd);
	return rc;
}

static berth_cerr push_node(struct berth_client *c, struct berth_layout *l,
			    const struct berth_ref *dst, const struct berth_desc *d,
			    const char *reference, struct berth_op_result *res, int depth)
{
	struct mdoc m;
	struct berth_desc *kids = NULL;
	size_t n = 0, nb = 0;
	char what[300];
	berth_cerr rc;

	memset(&m, 0, sizeof m);
	snprintf(what, sizeof what, "manifest %s", d->digest.s);
	if (depth > 4) return berth_client_fail(c, BERTH_C_EDIGEST, "%s: indexes nest too deep", what);
	rc = berth_layout_read_blob(l, &d->digest, BERTH_CLIENT_DOC_MAX, &m.bytes, &m.len);
	if (rc) return berth_client_fail(c, rc, "%s", berth_layout_error(l));
	m.desc = *d;
	if (m.desc.media_type[0] && !is_manifest_type(m.desc.media_type)) {
		rc = berth_client_fail(c, BERTH_C_EUSAGE, "%s: media type %s is not an image", what,
				       m.desc.media_type);
		goto out;
	}
	rc = check_manifest(c, what, &m, m.desc.media_type[0] ? m.desc.media_type : NULL);
	if (rc) goto out;
	rc = doc_children(c, what, &m, &kids, &n);
	if (rc) goto out;
	/* Blobs first, then child manifests by digest, then this manifest: every PUT finds what
	 * it references (spec: MANIFEST_BLOB_UNKNOWN otherwise). */
	for (size_t i = 0; i < n; i++) {
		if (m.is_index && is_manifest_type(kids[i].media_type)) continue;
		kids[nb++] = kids[i];
	}
	if (nb) {
		struct push_ctx p = {c, l, dst, kids, res};

		rc = run_jobs(c, nb, push_blob_job, &p);
		if (rc) goto out;
	}
	if (m.is_index) {
		/* kids was compacted: re-read the children for the manifests. */
		free(kids);
		kids = NULL;
		rc = doc_children(c, what, &m, &kids, &n);
		if (rc) goto out;
		for (size_t i = 0; i < n; i++) {
			if (!is_manifest_type(kids[i].media_type)) continue;
			rc = push_node(c, l, dst, &kids[i], kids[i].digest.s, res, depth + 1);
			if (rc) goto out;
		}
	}
	rc = put_manifest(c, dst->domain, dst->path, reference, &m, what);
	if (!rc) count(&res->manifests);
out:
	free(kids);
	mdoc_clear(&m);
	return rc;
}

berth_cerr berth_op_push(struct berth_client *c, const char *dir, const char *name,
			 const struct berth_ref *dst, struct berth_op_result *res)
{
	struct berth_layout *l = NULL;
	struct berth_desc d;
	const char *why = NULL;
	berth_cerr rc;

	memset(res, 0, sizeof *res);
	rc = berth_layout_open(dir, 0, &l, &why);
	if (rc) return berth_client_fail(c, rc, "%s: %s", dir, why);
	rc = berth_layout_resolve(l, name, &d);
	if (rc) {
		rc = berth_client_fail(c, rc, "%s", berth_layout_error(l));
		goto out;
	}
	if (dst->has_digest && !dst->has_tag && strcmp(dst->digest, d.digest.s) != 0) {
		rc = berth_client_fail(c, BERTH_C_EUSAGE, "the image's digest is %s, not %s", d.digest.s,
				       dst->digest);
		goto out;
	}
	rc = push_node(c, l, dst, &d, ref_reference(dst)[0] && dst->has_tag ? dst->tag : d.digest.s, res, 0);
	if (!rc) res->top = d;
out:
	berth_layout_free(l);
	return rc;
}

/* ---- pull ----------------------------------------------------------------------------- */

struct pull_ctx {
	struct berth_client *c;
	struct berth_layout *l;
	const struct berth_ref *src;
	struct berth_desc *blobs;
	struct berth_op_result *res;
};

static berth_cerr pull_blob_job(void *arg, size_t i)
{
	struct pull_ctx *p = arg;

	return download_blob(p->c, p->src->domain, p->src->path, p->l, &p->blobs[i], p->res);
}

static berth_cerr pull_node(struct berth_client *c, const struct berth_ref *src,
			    struct berth_layout *l, const struct mdoc *m,
			    struct berth_op_result *res, int depth)
{
	struct berth_desc *kids = NULL, *blobs = NULL;
	size_t n = 0, nb = 0;
	char what[300];
	berth_cerr rc;

	snprintf(what, sizeof what, "manifest %s", m->desc.digest.s);
	if (depth > 4) return berth_client_fail(c, BERTH_C_EDIGEST, "%s: indexes nest too deep", what);
	rc = doc_children(c, what, m, &kids, &n);
	if (rc) return rc;
	blobs = calloc(n ? n : 1, sizeof *blobs);
	if (!blobs) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!(m->is_index && is_manifest_type(kids[i].media_type))) blobs[nb++] = kids[i];
	if (nb) {
		struct pull_ctx p = {c, l, src, blobs, res};

		rc = run_jobs(c, nb, pull_blob_job, &p);
		if (rc) goto out;
	}
	for (size_t i = 0; m->is_index && i < n; i++) {
		struct mdoc child;
		char cwhat[300];

		if (!is_manifest_type(kids[i].media_type)) continue;
		snprintf(cwhat, sizeof cwhat, "manifest %s", kids[i].digest.s);
		rc = get_manifest(c, src->domain, src->path, kids[i].digest.s, cwhat, &child);
		if (rc) goto out;
		rc = pull_node(c, src, l, &child, res, depth + 1);
		mdoc_clear(&child);
		if (rc) goto out;
	}
	rc = berth_layout_write_blob(l, &m->desc.digest, m->bytes, m->len);
	if (rc) rc = berth_client_fail(c, rc, "%s", berth_layout_error(l));
	else count(&res->manifests);
out:
	free(blobs);
	free(kids);
	return rc;
}

berth_cerr berth_op_pull(struct berth_client *c, const struct berth_ref *src, const char *dir,
			 const char *name, const struct berth_platform *plat,
			 struct berth_op_result *res)
{
	struct berth_layout *l = NULL;
	struct mdoc top, child;
	char what[BERTH_REF_STRING_MAX + 16];
	const char *why = NULL;
	berth_cerr rc;

	memset(res, 0, sizeof *res);
	memset(&child, 0, sizeof child);
	ref_name(src, what, sizeof what);
	rc = get_manifest(c, src->domain, src->path, ref_reference(src), what, &top);
	if (rc) return rc;
	rc = berth_layout_open(dir, 1, &l, &why);
	if (rc) {
		rc = berth_client_fail(c, rc, "%s: %s", dir, why);
		goto out;
	}
	if (top.is_index && plat) {
		struct berth_desc pick;
		int r = berth_platform_pick(top.bytes, top.len, plat, &pick);

		if (r <= 0) {
			rc = berth_client_fail(c, r < 0 ? BERTH_C_EDIGEST : BERTH_C_ENOTFOUND,
					       "%s: %s %s/%s%s%s", what,
					       r < 0 ? "invalid index" : "no image for platform", plat->os,
					       plat->arch, plat->variant[0] ? "/" : "", plat->variant);
			goto out;
		}
		rc = get_manifest(c, src->domain, src->path, pick.digest.s, what, &child);
		if (rc) goto out;
		snprintf(child.desc.os, sizeof child.desc.os, "%s", pick.os);
		snprintf(child.desc.arch, sizeof child.desc.arch, "%s", pick.arch);
		snprintf(child.desc.variant, sizeof child.desc.variant, "%s", pick.variant);
		rc = pull_node(c, src, l, &child, res, 0);
		if (!rc) res->top = child.desc;
	} else {
		rc = pull_node(c, src, l, &top, res, 0);
		if (!rc) res->top = top.desc;
	}
	if (rc) goto out;
	rc = berth_layout_set_ref(l, &res->top, name);
	if (rc) rc = berth_client_fail(c, rc, "%s", berth_layout_error(l));
out:
	mdoc_clear(&child);
	mdoc_clear(&top);
	berth_layout_free(l);
	return rc;
}

/* ---- copy / tag ----------------------------------------------------------------------- */

struct copy_ctx {
	struct berth_client *c;
	const struct berth_ref *src, *dst;
	struct berth_desc *blobs;
	struct berth_op_result *res;
	const char *mount_from;
};

static berth_cerr copy_blob_job(void *arg, size_t i)
{
	struct copy_ctx *p = arg;
	struct blob_src s = {-1, p->src->domain, p->src->path};

	return upload_blob(p->c, p->dst->domain, p->dst->path, &p->blobs[i], &s, p->mount_from, p->res);
}

static berth_cerr copy_node(struct berth_client *c, const struct berth_ref *src,
			    const struct berth_ref *dst, const struct mdoc *m, const char *reference,
			    struct berth_op_result *res, int depth)
{
	struct berth_desc *kids = NULL, *blobs = NULL;
	size_t n = 0, nb = 0;
	char what[300];
	int same_reg = strcmp(src->domain, dst->domain) == 0;
	berth_cerr rc;

	snprintf(what, sizeof what, "manifest %s", m->desc.digest.s);
	if (depth > 4) return berth_client_fail(c, BERTH_C_EDIGEST, "%s: indexes nest too deep", what);
	rc = doc_children(c, what, m, &kids, &n);
	if (rc) return rc;
	blobs = calloc(n ? n : 1, sizeof *blobs);
	if (!blobs) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!(m->is_index && is_manifest_type(kids[i].media_type))) blobs[nb++] = kids[i];
	if (nb) {
		struct copy_ctx p = {c, src, dst, blobs, res,
				     same_reg && strcmp(src->path, dst->path) != 0 ? src->path : NULL};

		rc = run_jobs(c, nb, copy_blob_job, &p);
		if (rc) goto out;
	}
	for (size_t i = 0; m->is_index && i < n; i++) {
		struct mdoc child;
		char cwhat[300];

		if (!is_manifest_type(kids[i].media_type)) continue;
		snprintf(cwhat, sizeof cwhat, "manifest %s", kids[i].digest.s);
		rc = get_manifest(c, src->domain, src->path, kids[i].digest.s, cwhat, &child);
		if (rc) goto out;
		rc = copy_node(c, src, dst, &child, kids[i].digest.s, res, depth + 1);
		mdoc_clear(&child);
		if (rc) goto out;
	}
	rc = put_manifest(c, dst->domain, dst->path, reference, m, what);
	if (!rc) count(&res->manifests);
out:
	free(blobs);
	free(kids);
	return rc;
}

berth_cerr berth_op_copy(struct berth_client *c, const struct berth_ref *src,
			 const struct berth_ref *dst, struct berth_op_result *res)
{
	struct mdoc top;
	char what[BERTH_REF_STRING_MAX + 16];
	berth_cerr rc;

	memset(res, 0, sizeof *res);
	ref_name(src, what, sizeof what);
	rc = get_manifest(c, src->domain, src->path, ref_reference(src), what, &top);
	if (rc) return rc;
	if (dst->has_digest && strcmp(dst->digest, top.desc.digest.s) != 0) {
		rc = berth_client_fail(c, BERTH_C_EUSAGE, "%s is %s, not %s", what, top.desc.digest.s,
				       dst->digest);
		goto out;
	}
	rc = copy_node(c, src, dst, &top, dst->has_tag ? dst->tag : top.desc.digest.s, res, 0);
	if (!rc) res->top = top.desc;
out:
	mdoc_clear(&top);
	return rc;
}

berth_cerr berth_op_tag(struct berth_client *c, const struct berth_ref *src,
			const struct berth_ref *dst, struct berth_op_result *res)
{
	struct mdoc m;
	char what[BERTH_REF_STRING_MAX + 16];
	berth_cerr rc;

	memset(res, 0, sizeof *res);
	if (strcmp(src->domain, dst->domain) != 0)
		return berth_client_fail(c, BERTH_C_EUSAGE,
					 "tag works within one registry (%s vs %s): use cp", src->domain,
					 dst->domain);
	/* Another repository: the copy mounts every blob (no layer bytes move) and falls back to
	 * streaming only where the registry refuses the mount. */
	if (strcmp(src->path, dst->path) != 0) return berth_op_copy(c, src, dst, res);
	ref_name(src, what, sizeof what);
	rc = get_manifest(c, src->domain, src->path, ref_reference(src), what, &m);
	if (rc) return rc;
	if (dst->has_digest && strcmp(dst->digest, m.desc.digest.s) != 0)
		rc = berth_client_fail(c, BERTH_C_EUSAGE, "%s is %s, not %s", what, m.desc.digest.s,
				       dst->digest);
	else
		rc = put_manifest(c, dst->domain, dst->path, dst->has_tag ? dst->tag : m.desc.digest.s,
				  &m, what);
	if (!rc) {
		res->top = m.desc;
		res->manifests = 1;
	}
	mdoc_clear(&m);
	return rc;
}

/* ---- listing, inspect, digest, delete ------------------------------------------------- */

void berth_op_tags_free(char **tags, size_t n)
{
	for (size_t i = 0; tags && i < n; i++) free(tags[i]);
	free(tags);
}

berth_cerr berth_op_tags(struct berth_client *c, const struct berth_ref *repo, int all,
			 int page_size, char ***tags, size_t *n)
{
	return berth_op_tags_query(c, repo, all, page_size, NULL, tags, n);
}

berth_cerr berth_op_tags_query(struct berth_client *c, const struct berth_ref *repo, int all,
			       int page_size, const char *query, char ***tags, size_t *n)
{
	char url[BERTH_CLIENT_URL_MAX], scope[512], what[BERTH_REF_STRING_MAX + 16];
	char **v = NULL;
	size_t nv = 0, cap = 0;
	berth_cerr rc = BERTH_C_OK;

	*tags = NULL;
	*n = 0;
	snprintf(what, sizeof what, "%s/%s", repo->domain, repo->path);
	if (page_size > 0)
		snprintf(url, sizeof url, "/v2/%s/tags/list?n=%d%s%s", repo->path, page_size,
			 query ? "&" : "", query ? query : "");
	else
		snprintf(url, sizeof url, "/v2/%s/tags/list%s%s", repo->path, query ? "?" : "",
			 query ? query : "");
	scope_of(scope, sizeof scope, repo->path, "pull");
	for (int page = 0; page < TAG_PAGES_MAX; page++) {
		struct berth_req rq;
		struct berth_resp rs;
		json_t *doc, *arr, *t;
		size_t i;
		int more;

		berth_req_init(&rq);
		rq.url = url;
		rq.scope = scope;
		rc = berth_client_do(c, repo->domain, &rq, &rs);
		if (rc) break;
		if (rs.status != 200) {
			rc = berth_client_http_error(c, what, &rs);
			berth_resp_clear(&rs);
			break;
		}
		doc = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
		arr = doc ? json_object_get(doc, "tags") : NULL;
		if (!doc || (arr && !json_is_array(arr) && !json_is_null(arr))) {
			json_decref(doc);
			berth_resp_clear(&rs);
			rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: invalid tag list", what);
			break;
		}
		json_array_foreach(arr, i, t) {
			if (!json_is_string(t)) continue;
			if (nv == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				char **nvv = realloc(v, ncap * sizeof *v);

				if (!nvv) break;
				v = nvv;
				cap = ncap;
			}
			v[nv] = strdup(json_string_value(t));
			if (!v[nv]) break;
			nv++;
		}
		json_decref(doc);
		if (i < json_array_size(arr)) {
			berth_resp_clear(&rs);
			rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
			break;
		}
		more = all && rs.link[0] ? berth_link_next(rs.link, strlen(rs.link), url, sizeof url) : 0;
		berth_resp_clear(&rs);
		if (more <= 0) break;
	}
	if (rc) {
		berth_op_tags_free(v, nv);
		return rc;
	}
	*tags = v;
	*n = nv;
	return BERTH_C_OK;
}

static json_t *desc_json(const struct berth_desc *d)
{
	json_t *o = json_pack("{s:s,s:s,s:I}", "digest", d->digest.s, "mediaType", d->media_type,
			      "size", (json_int_t)d->size);

	if (o && (d->os[0] || d->arch[0])) {
		char p[100];

		snprintf(p, sizeof p, "%s/%s%s%s", d->os, d->arch, d->variant[0] ? "/" : "", d->variant);
		json_object_set_new(o, "platform", json_string(p));
	}
	return o;
}

berth_cerr berth_op_inspect(struct berth_client *c, const struct berth_ref *ref,
			    const struct berth_platform *plat, char **raw, size_t *rawlen,
			    json_t **info)
{
	struct mdoc m, child;
	struct berth_desc *kids = NULL;
	size_t n = 0;
	char what[BERTH_REF_STRING_MAX + 16], *cfg = NULL;
	json_t *o = NULL, *arr = NULL;
	const struct mdoc *use = &m;
	berth_cerr rc;
	int64_t total = 0;

	*raw = NULL;
	*info = NULL;
	memset(&child, 0, sizeof child);
	ref_name(ref, what, sizeof what);
	rc = get_manifest(c, ref->domain, ref->path, ref_reference(ref), what, &m);
	if (rc) return rc;
	if (m.is_index && plat) {
		struct berth_desc pick;
		int r = berth_platform_pick(m.bytes, m.len, plat, &pick);

		if (r <= 0) {
			rc = berth_client_fail(c, r < 0 ? BERTH_C_EDIGEST : BERTH_C_ENOTFOUND,
					       "%s: no image for platform %s/%s", what, plat->os, plat->arch);
			goto out;
		}
		rc = get_manifest(c, ref->domain, ref->path, pick.digest.s, what, &child);
		if (rc) goto out;
		use = &child;
	}
	rc = doc_children(c, what, use, &kids, &n);
	if (rc) goto out;
	o = json_pack("{s:s,s:s,s:s,s:I}", "name", what, "digest", use->desc.digest.s, "mediaType",
		      use->desc.media_type, "size", (json_int_t)use->desc.size);
	arr = json_array();
	if (!o || !arr) goto oom;
	if (use->is_index) {
		for (size_t i = 0; i < n; i++)
			if (json_array_append_new(arr, desc_json(&kids[i]))) goto oom;
		if (json_object_set(o, "manifests", arr)) goto oom;
	} else {
		size_t clen = 0;
		json_t *cj = NULL, *cc;

		if (json_object_set_new(o, "config", desc_json(&kids[0]))) goto oom;
		for (size_t i = 1; i < n; i++) {
			total += kids[i].size;
			if (json_array_append_new(arr, desc_json(&kids[i]))) goto oom;
		}
		if (json_object_set(o, "layers", arr) ||
		    json_object_set_new(o, "totalSize", json_integer(total)))
			goto oom;
		/* The config blob: os/architecture/created/labels (image-spec config.md). */
		if (kids[0].size <= (int64_t)BERTH_CLIENT_DOC_MAX && strstr(kids[0].media_type, "json")) {
			char url[1024], scope[512];
			struct berth_req rq;
			struct berth_resp rs;
			struct berth_digest got;

			snprintf(url, sizeof url, "/v2/%s/blobs/%s", ref->path, kids[0].digest.s);
			scope_of(scope, sizeof scope, ref->path, "pull");
			berth_req_init(&rq);
			rq.url = url;
			rq.scope = scope;
			rq.follow = 1;
			rc = berth_client_do(c, ref->domain, &rq, &rs);
			if (rc) goto out;
			if (rs.status != 200) {
				char cw[300];

				snprintf(cw, sizeof cw, "config %s", kids[0].digest.s);
				rc = berth_client_http_error(c, cw, &rs);
				berth_resp_clear(&rs);
				goto out;
			}
			cfg = rs.body;
			clen = rs.body_len;
			rs.body = NULL;
			berth_resp_clear(&rs);
			if (berth_digest_of(kids[0].digest.alg, cfg ? cfg : "", clen, &got) ||
			    !berth_digest_eq(&got, &kids[0].digest)) {
				rc = berth_client_fail(c, BERTH_C_EDIGEST,
						       "config %s: content does not match its digest",
						       kids[0].digest.s);
				goto out;
			}
			cj = cfg ? json_loadb(cfg, clen, 0, NULL) : NULL;
		}
		if (json_is_object(cj)) {
			static const char *const keys[] = {"os", "architecture", "variant", "created", "author"};

			for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
				json_t *v = json_object_get(cj, keys[k]);

				if (json_is_string(v)) json_object_set(o, keys[k], v);
			}
			cc = json_object_get(cj, "config");
			if (json_is_object(cc) && json_is_object(json_object_get(cc, "Labels")))
				json_object_set(o, "labels", json_object_get(cc, "Labels"));
		}
		if (!json_object_get(o, "labels")) json_object_set_new(o, "labels", json_object());
		json_decref(cj);
	}
	*raw = use->bytes;
	*rawlen = use->len;
	if (use == &child) child.bytes = NULL;
	else m.bytes = NULL;
	*info = o;
	o = NULL;
	goto out;
oom:
	rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
out:
	free(cfg);
	json_decref(arr);
	json_decref(o);
	free(kids);
	mdoc_clear(&child);
	mdoc_clear(&m);
	return rc;
}

berth_cerr berth_op_digest(struct berth_client *c, const struct berth_ref *ref,
			   struct berth_digest *out)
{
	char url[1024], scope[512], what[BERTH_REF_STRING_MAX + 16];
	struct berth_req rq;
	struct berth_resp rs;
	struct mdoc m;
	berth_cerr rc;

	ref_name(ref, what, sizeof what);
	snprintf(url, sizeof url, "/v2/%s/manifests/%s", ref->path, ref_reference(ref));
	scope_of(scope, sizeof scope, ref->path, "pull");
	berth_req_init(&rq);
	rq.method = "HEAD";
	rq.url = url;
	rq.scope = scope;
	rq.accept = BERTH_ACCEPT_MANIFESTS;
	rc = berth_client_do(c, ref->domain, &rq, &rs);
	if (rc) return rc;
	if (rs.status != 200) {
		rc = berth_client_http_error(c, what, &rs);
		berth_resp_clear(&rs);
		return rc;
	}
	if (rs.digest[0] && berth_digest_parse(rs.digest, strlen(rs.digest), out) == 0 &&
	    (!ref->has_digest || strcmp(ref->digest, out->s) == 0)) {
		berth_resp_clear(&rs);
		return BERTH_C_OK;
	}
	berth_resp_clear(&rs);
	/* No usable header: the digest of the bytes themselves. */
	rc = get_manifest(c, ref->domain, ref->path, ref_reference(ref), what, &m);
	if (rc) return rc;
	*out = m.desc.digest;
	mdoc_clear(&m);
	return BERTH_C_OK;
}

berth_cerr berth_op_delete(struct berth_client *c, const struct berth_ref *ref,
			   struct berth_digest *deleted)
{
	char url[1024], scope[512], what[BERTH_REF_STRING_MAX + 16];
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;

	ref_name(ref, what, sizeof what);
	rc = berth_op_digest(c, ref, deleted);
	if (rc) return rc;
	snprintf(url, sizeof url, "/v2/%s/manifests/%s", ref->path, deleted->s);
	scope_of(scope, sizeof scope, ref->path, "pull,push,delete");
	berth_req_init(&rq);
	rq.method = "DELETE";
	rq.url = url;
	rq.scope = scope;
	rc = berth_client_do(c, ref->domain, &rq, &rs);
	if (rc) return rc;
	if (rs.status != 202 && rs.status != 200 && rs.status != 204)
		rc = berth_client_http_error(c, what, &rs);
	berth_resp_clear(&rs);
	return rc;
}

berth_cerr berth_op_login_check(struct berth_client *c, const char *registry)
{
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;

	berth_req_init(&rq);
	rq.url = "/v2/";
	rc = berth_client_do(c, registry, &rq, &rs);
	if (rc) return rc;
	if (rs.status == 401 || rs.status == 403)
		rc = berth_client_fail(c, BERTH_C_EAUTH, "login to %s: invalid username or password",
				       registry);
	else if (rs.status != 200)
		rc = berth_client_http_error(c, registry, &rs);
	berth_resp_clear(&rs);
	return rc;
}

/* ---- berth's extension API (/berth/v1) ---- */

void berth_url_encode(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	if (!cap) return;
	for (; *s && o + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

berth_cerr berth_op_ext_get(struct berth_client *c, const char *registry, const char *path_query,
			    const char *scope, json_t **out)
{
	char url[BERTH_CLIENT_URL_MAX], what[BERTH_CLIENT_URL_MAX + 300];
	json_t *doc = NULL;
	berth_cerr rc = BERTH_C_OK;

	*out = NULL;
	snprintf(url, sizeof url, "/berth/v1/%s", path_query);
	snprintf(what, sizeof what, "%s", registry);
	for (int page = 0; page < TAG_PAGES_MAX; page++) {
		struct berth_req rq;
		struct berth_resp rs;
		json_t *part;
		int more;

		berth_req_init(&rq);
		rq.url = url;
		rq.scope = scope;
		rq.accept = "application/json";
		rc = berth_client_do(c, registry, &rq, &rs);
		if (rc) break;
		if (rs.status == 404 && rs.body && !strstr(rs.body, "\"code\"")) {
			berth_resp_clear(&rs);
			rc = berth_client_fail(c, BERTH_C_EFAIL,
					       "%s: the registry has no berth extension API", what);
			break;
		}
		if (rs.status != 200) {
			rc = berth_client_http_error(c, what, &rs);
			berth_resp_clear(&rs);
			break;
		}
		part = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
		if (!json_is_object(part)) {
			json_decref(part);
			berth_resp_clear(&rs);
			rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: invalid answer", what);
			break;
		}
		if (!doc) {
			doc = part;
		} else {
			json_t *have = json_object_get(doc, "images");
			if (json_is_array(have)) json_array_extend(have, json_object_get(part, "images"));
			json_decref(part);
		}
		more = rs.link[0] ? berth_link_next(rs.link, strlen(rs.link), url, sizeof url) : 0;
		berth_resp_clear(&rs);
		if (more <= 0) break;
	}
	if (rc) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return BERTH_C_OK;
}

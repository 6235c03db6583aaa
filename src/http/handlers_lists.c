/* handlers_lists.c — GET /v2/, tag listing, catalog and referrers: the read-only discovery
 * endpoints, with the spec's pagination (n, last, Link rel="next"). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/limits.h"
#include "../core/manifest.h"
#include "../core/semver.h"
#include "http.h"

/* A growable text buffer with a hard cap. */
struct sbuf {
	char *p;
	size_t len, cap, max;
	int failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->failed) return;
	if (n > b->max - b->len) {
		b->failed = 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1) cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Appends s as a JSON string. Names and tags are plain ASCII by grammar, but escape anyway so
 * the output is valid whatever the store holds. */
static void sb_json_str(struct sbuf *b, const char *s, size_t n)
{
	sb_put(b, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') continue;
		char esc[8];
		sb_put(b, s + start, i - start);
		snprintf(esc, sizeof esc, "\\u%04x", c);
		sb_put(b, esc, 6);
		start = i + 1;
	}
	sb_put(b, s + start, n - start);
	sb_put(b, "\"", 1);
}

static enum MHD_Result get_base(struct req *q)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return req_queue(q, 200, r);
}

/* Parses ?n=: -1 when absent; -2 when invalid. */
static long page_size(struct req *q)
{
	const char *s = req_query(q, "n");
	char *end;
	long v;
	if (!s) return -1;
	if (!*s) return -2;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0) return -2;
	return v > BERTH_LIST_MAX ? BERTH_LIST_MAX : v;
}

struct list_ctx {
	struct sbuf *b;
	long want;       /* rows to emit; one more was asked for to learn whether more remain */
	long seen;
	char last[BERTH_NAME_MAX + 1];
	struct req *filter; /* catalog under access control: rows the caller may not pull are skipped */
};

static int list_row(void *vctx, const char *name, size_t len)
{
	struct list_ctx *c = vctx;
	if (c->filter && !berth_http_may_list(c->filter, name, len)) return 0;
	if (c->want >= 0 && c->seen == c->want) {
		c->seen++; /* the extra row: there is a next page */
		return 1;
	}
	if (c->seen) sb_put(c->b, ",", 1);
	sb_json_str(c->b, name, len);
	if (len < sizeof c->last) {
		memcpy(c->last, name, len);
		c->last[len] = '\0';
	}
	c->seen++;
	return 0;
}

static enum MHD_Result list_reply(struct req *q, struct sbuf *b, struct list_ctx *c,
				  const char *link_base)
{
	struct MHD_Response *r;
	char link[1024];
	int more = c->want >= 0 && c->seen > c->want;
	sb_str(b, "]}");
	if (b->failed) {
		free(b->p);
		return req_error(q, BERTH_ENOMEM, NULL);
	}
	r = resp_heap(b->p, b->len);
	q->bytes_out = (int64_t)b->len;
	if (!r) {
		free(b->p);
		return MHD_NO;
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (more) {
		/* Link is RFC 8288; the spec asks for the next page's URL with n and last. */
		int n = snprintf(link, sizeof link, "<%s?n=%ld&last=%s>; rel=\"next\"", link_base,
				 c->want, c->last);
		if (n > 0 && (size_t)n < sizeof link) resp_header(r, "Link", link);
	}
	return req_queue(q, 200, r);
}

/* ---- tags in version order (?sort=semver) and by constraint (?semver=) ---- */

struct tag_vec {
	char **v;
	size_t n, cap;
	int failed;
};

static int tag_collect(void *vctx, const char *name, size_t len)
{
	struct tag_vec *t = vctx;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **nv = realloc(t->v, cap * sizeof *nv);
		if (!nv) {
			t->failed = 1;
			return 1;
		}
		t->v = nv;
		t->cap = cap;
	}
	if (!(t->v[t->n] = strndup(name, len))) {
		t->failed = 1;
		return 1;
	}
	t->n++;
	return 0;
}

static void tag_vec_free(struct tag_vec *t)
{
	for (size_t i = 0; i < t->n; i++) free(t->v[i]);
	free(t->v);
}

/* Versions first in ascending precedence (semver.org §11; missing parts count as 0, "1.2"
 * before "1.2.0" on a tie), then every other tag in byte order. */
static int semver_order(const char *a, const char *b)
{
	struct berth_semver va, vb;
	int pa = berth_semver_parse(a, strlen(a), &va), pb = berth_semver_parse(b, strlen(b), &vb);
	if (pa && pb) {
		int c = berth_semver_cmp(&va, &vb);
		if (c) return c;
	} else if (pa != pb) {
		return pa ? -1 : 1;
	}
	return strcmp(a, b);
}

static int semver_qsort(const void *a, const void *b)
{
	return semver_order(*(char *const *)a, *(char *const *)b);
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static void sb_urlenc(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			sb_put(b, s, 1);
			continue;
		}
		snprintf(esc, sizeof esc, "%%%02X", c);
		sb_put(b, esc, 3);
	}
}

/* ?sort=semver and/or ?semver=CONSTRAINT: the whole tag list is read, filtered (exact
 * versions MAJOR.MINOR.PATCH[-PRE] satisfying the constraint) and put in semver_order; n is
 * a limit and last means "after this tag in that order", so the Link header works as for the
 * plain listing. */
static enum MHD_Result get_tags_semver(struct req *q, const char *sort, const char *constraint,
				       long n)
{
	struct sbuf b = {.max = (size_t)64 << 20}, link = {.max = 8192};
	struct tag_vec t = {0};
	struct berth_semver_range range;
	const char *last = req_query(q, "last");
	size_t kept = 0, emitted = 0;
	const char *last_emitted = NULL;
	struct MHD_Response *r;
	berth_err e;

	if (sort && strcmp(sort, "semver") != 0)
		return req_error(q, BERTH_EINVAL, "sort must be semver");
	if (constraint &&
	    berth_semver_range_parse(constraint, strlen(constraint), &range) != BERTH_OK)
		return req_error(q, BERTH_EINVAL, "semver is not a version constraint");
	e = berth_registry_tags(q->reg, q->route.name, NULL, -1, tag_collect, &t);
	if (!e && t.failed) e = BERTH_ENOMEM;
	if (e) {
		tag_vec_free(&t);
		return req_error(q, e, NULL);
	}
	for (size_t i = 0; i < t.n; i++) {
		struct berth_semver v;
		int keep = 1;
		if (constraint)
			keep = berth_semver_parse(t.v[i], strlen(t.v[i]), &v) && v.parts == 3 &&
			       berth_semver_range_match(&range, &v);
		if (keep && last && *last && semver_order(t.v[i], last) <= 0) keep = 0;
		if (keep) t.v[kept++] = t.v[i];
		else free(t.v[i]);
	}
	t.n = kept;
	if (t.n) qsort(t.v, t.n, sizeof *t.v, semver_qsort);
	sb_str(&b, "{\"name\":");
	sb_json_str(&b, q->route.name, strlen(q->route.name));
	sb_str(&b, ",\"tags\":[");
	for (size_t i = 0; i < t.n && (n < 0 || (long)emitted < n); i++, emitted++) {
		if (i) sb_put(&b, ",", 1);
		sb_json_str(&b, t.v[i], strlen(t.v[i]));
		last_emitted = t.v[i];
	}
	sb_str(&b, "]}");
	if (n >= 0 && emitted < t.n && last_emitted) {
		char num[32];
		snprintf(num, sizeof num, "%ld", n);
		sb_str(&link, "</v2/");
		sb_str(&link, q->route.name);
		sb_str(&link, "/tags/list?n=");
		sb_str(&link, num);
		sb_str(&link, "&last=");
		sb_urlenc(&link, last_emitted);
		if (sort) sb_str(&link, "&sort=semver");
		if (constraint) {
			sb_str(&link, "&semver=");
			sb_urlenc(&link, constraint);
		}
		sb_str(&link, ">; rel=\"next\"");
	}
	tag_vec_free(&t);
	if (b.failed) {
		free(b.p);
		free(link.p);
		return req_error(q, BERTH_ENOMEM, NULL);
	}
	r = resp_heap(b.p, b.len);
	q->bytes_out = (int64_t)b.len;
	if (!r) {
		free(b.p);
		free(link.p);
		return MHD_NO;
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (link.p && !link.failed) resp_header(r, "Link", link.p);
	free(link.p);
	return req_queue(q, 200, r);
}

/* ---- the full tag listing, streamed ---- */

/* Without n the listing has no size bound (100,000 tags are ~1 MB of JSON), so it is sent as
 * it is read: TAG_BATCH rows per query, each query after the last tag sent (keyset order, so
 * no tag is sent twice), through a STREAM_BLOCK buffer; the body is chunked. Memory stays at
 * one batch whatever the repository holds. Each batch is its own read transaction, so a tag
 * pushed or deleted while a long listing is sent may or may not appear in it. With 2048 rows a
 * batch, 100,000 tags list as fast as from one buffer (~37 ms here); 512 cost ~10% more. */
#define TAG_BATCH 2048
#define STREAM_BLOCK (16 * 1024)

struct tag_stream {
	struct berth_registry *reg;
	struct sbuf b; /* bytes not sent yet: b.p[off, b.len) */
	size_t off;
	long rows;  /* rows in the current batch */
	long total; /* rows so far */
	int done;   /* the closing "]}" is in b */
	char repo[BERTH_NAME_MAX + 1];
	char last[BERTH_NAME_MAX + 1];
};

static int stream_row(void *vctx, const char *name, size_t len)
{
	struct tag_stream *ts = vctx;
	if (len >= sizeof ts->last) {
		ts->b.failed = 1; /* can't resume after it: end the listing with an error */
		return 1;
	}
	if (ts->total) sb_put(&ts->b, ",", 1);
	sb_json_str(&ts->b, name, len);
	memcpy(ts->last, name, len);
	ts->last[len] = '\0';
	ts->rows++;
	ts->total++;
	return 0;
}

/* Appends the next batch to ts->b (and the closing bracket after the last one). */
static berth_err stream_fetch(struct tag_stream *ts)
{
	berth_err e;
	ts->rows = 0;
	e = berth_registry_tags(ts->reg, ts->repo, ts->last[0] ? ts->last : NULL, TAG_BATCH,
				stream_row, ts);
	/* The repository was deleted while its listing was sent: the listing ends there. */
	if (e == BERTH_ENAME_UNKNOWN && ts->total) e = BERTH_OK;
	if (e) return e;
	if (ts->rows < TAG_BATCH) {
		sb_str(&ts->b, "]}");
		ts->done = 1;
	}
	return ts->b.failed ? BERTH_ENOMEM : BERTH_OK;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct tag_stream *ts = cls;
	size_t n;
	(void)pos;
	while (ts->off == ts->b.len) {
		if (ts->done) return MHD_CONTENT_READER_END_OF_STREAM;
		ts->b.len = ts->off = 0;
		if (stream_fetch(ts)) return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = ts->b.len - ts->off < max ? ts->b.len - ts->off : max;
	memcpy(buf, ts->b.p + ts->off, n);
	ts->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct tag_stream *ts = cls;
	free(ts->b.p);
	free(ts);
}

static enum MHD_Result get_tags_stream(struct req *q, const char *last)
{
	struct tag_stream *ts = calloc(1, sizeof *ts);
	struct MHD_Response *r;
	berth_err e;
	if (!ts) return req_error(q, BERTH_ENOMEM, NULL);
	ts->reg = q->reg;
	/* One batch: tags are at most 128 plain characters (~260 KiB for 2048; ~20 KiB for the
	 * bench's 7-character tags), but the cap also holds a batch of the longest names the
	 * store could hold, escaped (~3.1 MiB). */
	ts->b.max = (size_t)4 << 20;
	snprintf(ts->repo, sizeof ts->repo, "%s", q->route.name);
	snprintf(ts->last, sizeof ts->last, "%s", last ? last : "");
	sb_str(&ts->b, "{\"name\":");
	sb_json_str(&ts->b, q->route.name, strlen(q->route.name));
	sb_str(&ts->b, ",\"tags\":[");
	/* The first batch is read now: an unknown repository is still a 404. */
	if ((e = stream_fetch(ts))) {
		stream_free(ts);
		return req_error(q, e, NULL);
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, ts,
					      stream_free);
	if (!r) {
		stream_free(ts);
		return MHD_NO;
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return req_queue(q, 200, r);
}

static enum MHD_Result get_tags(struct req *q)
{
	struct sbuf b = {.max = (size_t)64 << 20};
	struct list_ctx c = {.b = &b};
	char base[BERTH_NAME_MAX + 32];
	const char *last = req_query(q, "last");
	long n = page_size(q);
	berth_err e;
	if (n == -2) return req_error(q, BERTH_EPAGE_INVALID, "n must be a non-negative integer");
	if (req_query(q, "sort") || req_query(q, "semver"))
		return get_tags_semver(q, req_query(q, "sort"), req_query(q, "semver"), n);
	/* A page (n) is bounded and needs its Link header before the body: built in memory. */
	if (n < 0 && (!last || strnlen(last, BERTH_NAME_MAX + 1) <= BERTH_NAME_MAX))
		return get_tags_stream(q, last);
	c.want = n;
	sb_str(&b, "{\"name\":");
	sb_json_str(&b, q->route.name, strlen(q->route.name));
	sb_str(&b, ",\"tags\":[");
	if (n != 0) {
		e = berth_registry_tags(q->reg, q->route.name, last, n < 0 ? -1 : n + 1, list_row,
					&c);
	} else {
		/* n=0: an empty page, but an unknown repository is still unknown. */
		e = berth_registry_tags(q->reg, q->route.name, NULL, 0, list_row, &c);
	}
	if (e) {
		free(b.p);
		return req_error(q, e, NULL);
	}
	snprintf(base, sizeof base, "/v2/%s/tags/list", q->route.name);
	return list_reply(q, &b, &c, base);
}

static enum MHD_Result get_catalog(struct req *q)
{
	struct sbuf b = {.max = (size_t)64 << 20};
	struct list_ctx c = {.b = &b};
	const char *last = req_query(q, "last");
	long n = page_size(q);
	berth_err e;
	if (n == -2) return req_error(q, BERTH_EPAGE_INVALID, "n must be a non-negative integer");
	if (n < 0) n = BERTH_CATALOG_DEFAULT;
	c.want = n;
	sb_str(&b, "{\"repositories\":[");
	if (berth_http_list_filtered(q)) c.filter = q;
	if (n > 0) {
		/* Filtered: read on until n + 1 visible rows (list_row stops the walk). */
		e = berth_registry_catalog(q->reg, last, c.filter ? -1 : n + 1, list_row, &c);
		if (e) {
			free(b.p);
			return req_error(q, e, NULL);
		}
	}
	return list_reply(q, &b, &c, "/v2/_catalog");
}

static int referrer_row(void *vctx, const struct berth_meta_referrer *rf)
{
	json_t *arr = vctx;
	json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", rf->media_type, "digest", rf->digest,
			      "size", (json_int_t)rf->size);
	if (!d) return 1;
	if (rf->artifact_type && rf->artifact_type[0])
		json_object_set_new(d, "artifactType", json_string(rf->artifact_type));
	if (rf->annotations_json) {
		json_t *a = json_loads(rf->annotations_json, 0, NULL);
		if (a) json_object_set_new(d, "annotations", a);
	}
	return json_array_append_new(arr, d) != 0;
}

static enum MHD_Result get_referrers(struct req *q)
{
	struct berth_digest d;
	const char *at = req_query(q, "artifactType");
	json_t *idx, *arr;
	char *text;
	struct MHD_Response *r;
	berth_err e = berth_digest_parse(q->route.ref, strlen(q->route.ref), &d);
	if (e) return req_error(q, e, NULL);
	if (at && !*at) at = NULL;
	arr = json_array();
	idx = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", BERTH_MT_OCI_INDEX,
			"manifests", arr);
	if (!idx) return req_error(q, BERTH_ENOMEM, NULL);
	/* The spec: an unknown subject is not an error, just no referrers. */
	e = berth_registry_referrers(q->reg, q->route.name, &d, at, referrer_row, arr);
	if (e && e != BERTH_ENAME_UNKNOWN) {
		json_decref(idx);
		return req_error(q, e, NULL);
	}
	text = json_dumps(idx, JSON_COMPACT);
	json_decref(idx);
	if (!text) return req_error(q, BERTH_ENOMEM, NULL);
	q->bytes_out = (int64_t)strlen(text);
	r = resp_heap(text, strlen(text));
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, BERTH_MT_OCI_INDEX);
	if (at) resp_header(r, "OCI-Filters-Applied", "artifactType");
	return req_queue(q, 200, r);
}

static void begin_nothing(struct req *q)
{
	(void)q;
}

static const struct handler h_base = {begin_nothing, get_base, 0};
static const struct handler h_tags = {begin_nothing, get_tags, 0};
static const struct handler h_catalog = {begin_nothing, get_catalog, 0};
static const struct handler h_referrers = {begin_nothing, get_referrers, 0};

const struct handler *berth_http_handler(enum berth_route_kind kind, const char *m)
{
	int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	switch (kind) {
	case BERTH_ROUTE_BASE: return get ? &h_base : NULL;
	case BERTH_ROUTE_CATALOG: return get ? &h_catalog : NULL;
	case BERTH_ROUTE_TAGS: return get ? &h_tags : NULL;
	case BERTH_ROUTE_REFERRERS: return get ? &h_referrers : NULL;
	case BERTH_ROUTE_MANIFEST:
		if (get) return &berth_h_manifest_get;
		if (strcmp(m, "PUT") == 0) return &berth_h_manifest_put;
		if (strcmp(m, "DELETE") == 0) return &berth_h_manifest_delete;
		return NULL;
	case BERTH_ROUTE_BLOB:
		if (get) return &berth_h_blob_get;
		if (strcmp(m, "DELETE") == 0) return &berth_h_blob_delete;
		return NULL;
	case BERTH_ROUTE_UPLOADS: return strcmp(m, "POST") == 0 ? &berth_h_upload_start : NULL;
	case BERTH_ROUTE_UPLOAD:
		if (strcmp(m, "GET") == 0) return &berth_h_upload_status;
		if (strcmp(m, "PATCH") == 0) return &berth_h_upload_patch;
		if (strcmp(m, "PUT") == 0) return &berth_h_upload_put;
		if (strcmp(m, "DELETE") == 0) return &berth_h_upload_delete;
		return NULL;
	case BERTH_ROUTE_NOT_FOUND:
	case BERTH_ROUTE_NAME_INVALID: return NULL;
	}
	return NULL;
}

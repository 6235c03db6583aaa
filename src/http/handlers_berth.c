/* handlers_berth.c — berth's extension API under /berth/v1/ (JSON): images built on an image
 * (derived), what an image is built on (base), images on an outdated golden version
 * (outdated), images by label (search), and which exact versions a floating tag stands for
 * (resolve). Access is checked as for pulls: an endpoint naming an image needs pull on its
 * repository (the same 401/403 and challenge as a tag listing), and results in repositories
 * the caller may not pull are left out. Lists take n and last (the previous page's last
 * "repository@digest") and answer with a Link rel="next" like the tag listing. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/auth.h"
#include "../core/limits.h"
#include "../core/ref.h"
#include "../core/semver.h"
#include "http.h"

#define EXT_PREFIX "/berth/v1/"

enum ext_kind {
	EXT_DERIVED = 1,
	EXT_BASE,
	EXT_OUTDATED,
	EXT_SEARCH,
	EXT_RESOLVE,
	EXT_MIRROR,
	EXT_MIRROR_SYNC
};

/* One image row, copied out of the metadata callback (queries are not nested). */
struct ext_img {
	char *repo, *digest, *labels, *created, *os, *arch;
	int64_t n_layers;
	/* outdated only */
	char *base_repo, *base_tag, *base_digest, *newest_tag, *newest_digest;
};

struct ext_list {
	struct ext_img *v;
	size_t n, cap;
	int failed;
	struct req *q;
	struct berth_token *tok; /* Bearer mode: the caller's verified token */
};

static const struct {
	const char *path;
	enum ext_kind kind;
} ext_routes[] = {
	{"derived", EXT_DERIVED}, {"base", EXT_BASE},       {"outdated", EXT_OUTDATED},
	{"search", EXT_SEARCH},   {"resolve", EXT_RESOLVE},   {"mirror", EXT_MIRROR},
	{"mirror/sync", EXT_MIRROR_SYNC},
};

/* ---- access ---- */

/* 1 when the caller may pull repo: the access rules for Basic callers, the token's grants for
 * Bearer callers (a token carries its own authority), everything without authentication. */
static int may_pull(struct ext_list *l, const char *repo)
{
	struct berth_auth *a = req_auth(l->q);
	if (!a) return 1;
	if (berth_auth_mode(a) == BERTH_AUTH_BASIC)
		return berth_auth_allowed(a, l->q->authenticated ? l->q->user : NULL, repo,
					  BERTH_ACTION_PULL);
	return l->tok && (berth_token_actions(l->tok, repo) & BERTH_ACTION_PULL) != 0;
}

/* Bearer mode: the request's token, verified again (berth_http_authorize did it once but
 * keeps no copy). NULL without one. */
static struct berth_token *caller_token(struct req *q)
{
	struct berth_auth *a = req_auth(q);
	struct berth_token *tok;
	struct berth_authz z;
	const char *v = NULL;
	size_t n = 0;

	if (!a || berth_auth_mode(a) != BERTH_AUTH_TOKEN) return NULL;
	if (MHD_lookup_connection_value_n(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
					  strlen(MHD_HTTP_HEADER_AUTHORIZATION), &v, &n) != MHD_YES ||
	    !v || n > BERTH_AUTHZ_MAX)
		return NULL;
	if (berth_authz_parse(v, n, &z) != BERTH_OK || z.scheme != BERTH_AUTHZ_BEARER) return NULL;
	if (!(tok = malloc(sizeof *tok))) return NULL;
	if (berth_auth_token_verify(a, z.cred, z.cred_len, time(NULL), 0, tok) != BERTH_OK) {
		free(tok);
		return NULL;
	}
	return tok;
}

/* ---- parameters ---- */

/* image=REPO:TAG, REPO@DIGEST or REPO (meaning :latest) into route.name / route.ref. */
static berth_err parse_image(const char *s, struct berth_route *rt, const char **why)
{
	const char *at, *slash, *colon, *ref = "latest";
	size_t rlen;
	berth_err e;

	*why = "image must be REPOSITORY:TAG or REPOSITORY@DIGEST";
	if (!s || !*s) return BERTH_EINVAL;
	at = strchr(s, '@');
	slash = strrchr(s, '/');
	colon = strrchr(s, ':');
	if (at) {
		rlen = (size_t)(at - s);
		ref = at + 1;
	} else if (colon && (!slash || colon > slash)) {
		rlen = (size_t)(colon - s);
		ref = colon + 1;
	} else {
		rlen = strlen(s);
	}
	if (!berth_registry_name_ok(s, rlen)) {
		*why = "invalid repository name";
		return BERTH_ENAME_INVALID;
	}
	if (strlen(ref) > BERTH_ROUTE_REF_MAX) return BERTH_EINVAL;
	/* A malformed tag or digest is a malformed parameter (400); the registry's lookup would
	 * call it an unknown manifest, as a /v2 GET must. */
	if ((e = berth_registry_ref_check(ref))) {
		*why = e == BERTH_ETAG_INVALID ? "invalid tag" : "invalid digest";
		return e;
	}
	memcpy(rt->name, s, rlen);
	rt->name[rlen] = '\0';
	snprintf(rt->ref, sizeof rt->ref, "%s", ref);
	*why = NULL;
	return BERTH_OK;
}

/* ?n=: -1 when absent, -2 when invalid. */
static long ext_page_size(struct req *q)
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

/* ---- collecting ---- */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void img_clear(struct ext_img *m)
{
	free(m->repo);
	free(m->digest);
	free(m->labels);
	free(m->created);
	free(m->os);
	free(m->arch);
	free(m->base_repo);
	free(m->base_tag);
	free(m->base_digest);
	free(m->newest_tag);
	free(m->newest_digest);
}

static void list_free(struct ext_list *l)
{
	for (size_t i = 0; i < l->n; i++) img_clear(&l->v[i]);
	free(l->v);
	free(l->tok);
}

/* Appends a copy of img unless the caller may not pull its repository or it is already
 * listed. Returns the new entry, or NULL (skipped or out of memory: l->failed). */
static struct ext_img *list_add(struct ext_list *l, const struct berth_meta_image *img)
{
	struct ext_img *m;
	if (!may_pull(l, img->repo)) return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].repo, img->repo) == 0 && strcmp(l->v[i].digest, img->digest) == 0)
			return NULL;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct ext_img *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv) {
			l->failed = 1;
			return NULL;
		}
		l->v = nv;
		l->cap = cap;
	}
	m = &l->v[l->n];
	memset(m, 0, sizeof *m);
	m->repo = strdup(img->repo);
	m->digest = strdup(img->digest);
	m->labels = dup_or_null(img->labels_json);
	m->created = dup_or_null(img->created);
	m->os = dup_or_null(img->os);
	m->arch = dup_or_null(img->arch);
	m->n_layers = img->n_layers;
	l->n++;
	if (!m->repo || !m->digest) l->failed = 1;
	return m;
}

static int collect_image(void *ctx, const struct berth_meta_image *img)
{
	struct ext_list *l = ctx;
	list_add(l, img);
	return l->failed;
}

static int collect_outdated(void *ctx, const struct berth_outdated *o)
{
	struct ext_list *l = ctx;
	struct ext_img *m;
	if (!may_pull(l, o->base_repo)) return 0;
	if (!(m = list_add(l, o->image))) return l->failed;
	m->base_repo = strdup(o->base_repo);
	m->base_tag = strdup(o->base_tag);
	m->base_digest = strdup(o->base_digest);
	m->newest_tag = strdup(o->newest_tag);
	m->newest_digest = strdup(o->newest_digest);
	if (!m->base_repo || !m->base_tag || !m->base_digest || !m->newest_tag || !m->newest_digest)
		l->failed = 1;
	return l->failed;
}

static int img_key_cmp(const void *a, const void *b)
{
	const struct ext_img *x = a, *y = b;
	int c = strcmp(x->repo, y->repo);
	return c ? c : strcmp(x->digest, y->digest);
}

/* ---- JSON ---- */

static int tag_append(void *ctx, const char *name, size_t len)
{
	json_t *arr = ctx;
	return json_array_append_new(arr, json_stringn(name, len)) != 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *image_json(struct req *q, const struct ext_img *m)
{
	json_t *tags = json_array(), *labels = m->labels ? json_loads(m->labels, 0, NULL) : NULL;
	json_t *o;
	if (tags && berth_registry_tags_of(q->reg, m->repo, m->digest, tag_append, tags) != BERTH_OK)
		json_array_clear(tags);
	o = json_pack("{s:s,s:s,s:o,s:I,s:o,s:o,s:o,s:o,s:b}", "repository", m->repo, "digest",
		      m->digest, "tags", tags ? tags : json_array(), "layers", (json_int_t)m->n_layers,
		      "created", str_or_null(m->created), "os", str_or_null(m->os), "architecture",
		      str_or_null(m->arch), "labels", json_is_object(labels) ? labels : json_object(),
		      "golden", berth_registry_is_golden(q->reg, m->repo));
	if (labels && !json_is_object(labels)) json_decref(labels);
	if (o && m->base_repo) {
		json_object_set_new(o, "base",
				    json_pack("{s:s,s:s,s:s}", "repository", m->base_repo, "tag",
					      m->base_tag, "digest", m->base_digest));
		json_object_set_new(o, "newest",
				    json_pack("{s:s,s:s}", "tag", m->newest_tag, "digest",
					      m->newest_digest));
	}
	return o;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept) at buf+*off. */
static void url_enc(char *buf, size_t cap, size_t *off, const char *s)
{
	for (; *s && *off + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			buf[(*off)++] = (char)c;
		else
			*off += (size_t)snprintf(buf + *off, cap - *off, "%%%02X", c);
	}
	buf[*off] = '\0';
}

enum MHD_Result berth_http_reply_json(struct req *q, json_t *doc, const char *link)
{
	struct MHD_Response *r;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text) return req_error(q, BERTH_ENOMEM, NULL);
	q->bytes_out = (int64_t)strlen(text);
	r = resp_heap(text, strlen(text));
	if (!r) {
		free(text);
		return MHD_NO;
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (link) resp_header(r, "Link", link);
	return req_queue(q, 200, r);
}

/* The list l as {"<param>": value, "images": [...]}, one page of it: after `last` (a
 * "repository@digest" of the previous page; by key order when sorted, else by position), at
 * most n entries. */
static enum MHD_Result reply_list(struct req *q, struct ext_list *l, const char *endpoint,
				  const char *param, const char *value, int sorted, long n)
{
	const char *last = req_query(q, "last");
	char link[4096];
	size_t start = 0, i, emitted = 0, off;
	json_t *doc, *arr = json_array();
	const struct ext_img *prev = NULL;

	if (last && *last) {
		for (i = 0; i < l->n; i++) {
			char key[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 2];
			snprintf(key, sizeof key, "%s@%s", l->v[i].repo, l->v[i].digest);
			if (sorted ? strcmp(key, last) > 0 : strcmp(key, last) == 0) break;
		}
		start = sorted ? i : (i < l->n ? i + 1 : 0);
	}
	for (i = start; arr && i < l->n && (n < 0 || (long)emitted < n); i++, emitted++) {
		json_t *o = image_json(q, &l->v[i]);
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return req_error(q, BERTH_ENOMEM, NULL);
		}
		prev = &l->v[i];
	}
	doc = json_pack("{s:s?,s:o}", param, value, "images", arr ? arr : json_array());
	link[0] = '\0';
	if (prev && i < l->n) {
		off = (size_t)snprintf(link, sizeof link, "<" EXT_PREFIX "%s?", endpoint);
		if (param && value) {
			off += (size_t)snprintf(link + off, sizeof link - off, "%s=", param);
			url_enc(link, sizeof link, &off, value);
			off += (size_t)snprintf(link + off, sizeof link - off, "&");
		}
		off += (size_t)snprintf(link + off, sizeof link - off, "n=%ld&last=", n);
		url_enc(link, sizeof link, &off, prev->repo);
		url_enc(link, sizeof link, &off, "@");
		url_enc(link, sizeof link, &off, prev->digest);
		if (off + 16 < sizeof link) snprintf(link + off, sizeof link - off, ">; rel=\"next\"");
		else link[0] = '\0';
	}
	return berth_http_reply_json(q, doc, link[0] ? link : NULL);
}

/* ---- the endpoints ---- */

static enum MHD_Result ext_finish(struct req *q)
{
	struct ext_list l = {.q = q};
	enum ext_kind kind = (enum ext_kind)q->ext_kind;
	long n = ext_page_size(q);
	char image[BERTH_NAME_MAX + BERTH_ROUTE_REF_MAX + 2];
	enum MHD_Result ret;
	berth_err e = BERTH_OK;

	if (kind == EXT_MIRROR_SYNC) return berth_http_mirror_sync(q);
	if (kind == EXT_MIRROR) {
		if (!req_mirror(q)) return req_error(q, BERTH_ENOTFOUND, "no mirror is configured");
		return berth_http_reply_json(q, berth_mirror_status(req_mirror(q)), NULL);
	}
	if (n == -2) return req_error(q, BERTH_EPAGE_INVALID, "n must be a non-negative integer");
	l.tok = caller_token(q);
	snprintf(image, sizeof image, "%s%s%s", q->route.name, strchr(q->route.ref, ':') ? "@" : ":",
		 q->route.ref);
	switch (kind) {
	case EXT_DERIVED:
		e = berth_registry_derived(q->reg, q->route.name, q->route.ref, collect_image, &l);
		if (!e && l.failed) e = BERTH_ENOMEM;
		if (!e && l.n) qsort(l.v, l.n, sizeof *l.v, img_key_cmp);
		ret = e ? req_error(q, e, NULL) : reply_list(q, &l, "derived", "image", image, 1, n);
		break;
	case EXT_BASE: {
		e = berth_registry_bases(q->reg, q->route.name, q->route.ref, collect_image, &l);
		if (!e && l.failed) e = BERTH_ENOMEM;
		/* Rows come closest first; the closest golden base goes to the front. */
		for (size_t i = 0; !e && i < l.n; i++) {
			if (!berth_registry_is_golden(q->reg, l.v[i].repo)) continue;
			struct ext_img g = l.v[i];
			memmove(&l.v[1], &l.v[0], i * sizeof *l.v);
			l.v[0] = g;
			break;
		}
		ret = e ? req_error(q, e, NULL) : reply_list(q, &l, "base", "image", image, 0, n);
		break;
	}
	case EXT_OUTDATED: {
		const char *golden = req_query(q, "golden");
		if (golden && !*golden) golden = NULL;
		e = berth_registry_outdated(q->reg, golden, collect_outdated, &l);
		if (!e && l.failed) e = BERTH_ENOMEM;
		if (!e && l.n) qsort(l.v, l.n, sizeof *l.v, img_key_cmp);
		ret = e ? req_error(q, e, NULL)
			: reply_list(q, &l, "outdated", "golden", golden, 1, n);
		break;
	}
	case EXT_SEARCH: {
		const char *label = req_query(q, "label");
		const char *eq = label ? strchr(label, '=') : NULL;
		char key[1024];
		if (!eq || eq == label || (size_t)(eq - label) >= sizeof key) {
			ret = req_error(q, BERTH_EINVAL, "label must be KEY=VALUE");
			break;
		}
		memcpy(key, label, (size_t)(eq - label));
		key[eq - label] = '\0';
		e = berth_registry_by_label(q->reg, key, eq + 1, collect_image, &l);
		if (!e && l.failed) e = BERTH_ENOMEM;
		if (!e && l.n) qsort(l.v, l.n, sizeof *l.v, img_key_cmp);
		ret = e ? req_error(q, e, NULL) : reply_list(q, &l, "search", "label", label, 1, n);
		break;
	}
	case EXT_RESOLVE: {
		struct berth_registry_manifest mf;
		json_t *tags = json_array(), *versions = json_array(), *t, *doc;
		const char *best = NULL;
		struct berth_semver bv;
		size_t i;
		e = berth_registry_manifest_get(q->reg, q->route.name, q->route.ref, 0, &mf);
		if (!e && tags &&
		    (e = berth_registry_tags_of(q->reg, q->route.name, mf.digest.s, tag_append, tags)))
			berth_registry_manifest_clear(&mf);
		if (e) {
			json_decref(tags);
			json_decref(versions);
			ret = req_error(q, e, NULL);
			break;
		}
		/* Exact versions (MAJOR.MINOR.PATCH[-PRE]) on the same digest, lowest first; the
		 * highest release among them is "version". */
		json_array_foreach(tags, i, t) {
			struct berth_semver v;
			const char *s = json_string_value(t);
			if (!berth_semver_parse(s, strlen(s), &v) || v.parts != 3) continue;
			size_t at = json_array_size(versions);
			for (size_t j = 0; j < json_array_size(versions); j++) {
				const char *o = json_string_value(json_array_get(versions, j));
				struct berth_semver ov;
				if (berth_semver_parse(o, strlen(o), &ov) && berth_semver_cmp(&v, &ov) < 0) {
					at = j;
					break;
				}
			}
			json_array_insert_new(versions, at, json_string(s));
			if (!v.pre[0] && (!best || berth_semver_cmp(&v, &bv) > 0)) {
				best = s;
				bv = v;
			}
		}
		doc = json_pack("{s:s,s:s,s:s,s:o,s:O,s:O}", "repository", q->route.name, "reference",
				q->route.ref, "digest", mf.digest.s, "version", str_or_null(best),
				"versions", versions, "tags", tags);
		json_decref(versions);
		json_decref(tags);
		berth_registry_manifest_clear(&mf);
		ret = berth_http_reply_json(q, doc, NULL);
		break;
	}
	default: ret = req_error(q, BERTH_EINTERNAL, NULL); break;
	}
	list_free(&l);
	return ret;
}

static void begin_nothing(struct req *q)
{
	(void)q;
}

static const struct handler h_ext = {begin_nothing, ext_finish, 0};

int berth_http_ext_route(struct req *q, const char *url)
{
	struct berth_auth *a = req_auth(q);
	enum ext_kind kind = 0;
	const char *why = NULL, *path;
	berth_err e;

	if (strncmp(url, EXT_PREFIX, strlen(EXT_PREFIX)) != 0) return 0;
	path = url + strlen(EXT_PREFIX);
	for (size_t i = 0; i < sizeof ext_routes / sizeof ext_routes[0]; i++)
		if (strcmp(path, ext_routes[i].path) == 0) kind = ext_routes[i].kind;
	if (!kind) {
		q->err = BERTH_ENOTFOUND;
		q->err_detail = "no such route";
		return 1;
	}
	if (strcmp(q->method, kind == EXT_MIRROR_SYNC ? "POST" : "GET") != 0) {
		q->err = BERTH_EUNSUPPORTED;
		q->err_detail = "method not allowed on this route";
		return 1;
	}
	q->ext_kind = (int)kind;
	q->h = &h_ext;
	if (kind == EXT_MIRROR_SYNC) {
		/* Checked as a pull of the repository it fills. */
		const char *repo = req_query(q, "repository");
		if (!repo || !berth_registry_name_ok(repo, strlen(repo))) {
			q->err = BERTH_ENAME_INVALID;
			q->err_detail = "repository= must name a mirrored repository";
			q->h = NULL;
			return 1;
		}
		snprintf(q->route.name, sizeof q->route.name, "%s", repo);
		q->route.kind = BERTH_ROUTE_TAGS;
	} else if (kind == EXT_DERIVED || kind == EXT_BASE || kind == EXT_RESOLVE) {
		if ((e = parse_image(req_query(q, "image"), &q->route, &why))) {
			q->err = e;
			q->err_detail = why;
			q->h = NULL;
			return 1;
		}
		/* Checked exactly as a pull of the image's repository (a tag listing). */
		q->route.kind = BERTH_ROUTE_TAGS;
	} else {
		/* Listings across repositories: Basic callers as for the catalog (authenticated,
		 * or anonymous when some rule grants anonymous access); Bearer callers need a
		 * valid token, whose grants then filter the answer. */
		q->route.kind = a && berth_auth_mode(a) == BERTH_AUTH_TOKEN ? BERTH_ROUTE_BASE
									  : BERTH_ROUTE_CATALOG;
	}
	if (berth_http_authorize(q)) q->h->begin(q);
	return 1;
}

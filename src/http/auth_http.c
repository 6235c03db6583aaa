/* auth_http.c — authentication and authorization of HTTP requests, and the built-in token
 * issuer (GET/POST /auth/token). The scope a route needs follows Distribution: pull for
 * GET/HEAD, push for writes and upload sessions, delete for DELETE of manifests and blobs.
 * Challenges are Distribution's WWW-Authenticate headers (Docker's token authentication
 * specification). Never logs credentials or tokens. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/auth.h"
#include "../core/log.h"
#include "../core/ref.h"
#include "http.h"

enum auth_fail {
	AF_NONE = 0,
	AF_NEED_AUTH,    /* no or wrong credentials: 401 with a challenge */
	AF_INVALID_TOKEN, /* a Bearer token that does not verify: 401, error="invalid_token" */
	AF_SCOPE,        /* a valid token without the scope: 401, error="insufficient_scope" */
	AF_DENIED,       /* authenticated (Basic) but not allowed: 403 DENIED */
};

#define SCOPE_CATALOG 0x100 /* auth_need: the route is the catalog */

/* ---- the refusal ---- */

static enum MHD_Result deny_finish(struct req *q)
{
	struct berth_auth *a = req_auth(q);
	const struct berth_config *c = berth_auth_config(a);
	struct MHD_Response *r;
	unsigned status;
	char hdr[2048], scope[BERTH_NAME_MAX + 64] = "", acts[32];
	size_t o = 0;
	int w;

	if (q->auth_fail == AF_DENIED) return req_error(q, BERTH_EDENIED, NULL);
	r = resp_error(q, BERTH_EUNAUTHORIZED, NULL, &status);
	if (q->auth_need & SCOPE_CATALOG) {
		snprintf(scope, sizeof scope, "registry:catalog:*");
	} else if (q->auth_need) {
		/* A push needs pull too in Distribution's scopes; clients ask for both. */
		berth_actions_format(q->auth_need & BERTH_ACTION_PUSH
					     ? (q->auth_need | BERTH_ACTION_PULL)
					     : q->auth_need,
				     acts, sizeof acts);
		snprintf(scope, sizeof scope, "repository:%s:%s", q->route.name, acts);
	}
	if (berth_auth_mode(a) == BERTH_AUTH_BASIC) {
		w = snprintf(hdr, sizeof hdr, "Basic realm=\"%s\"", c->htpasswd_realm);
	} else {
		w = snprintf(hdr, sizeof hdr, "Bearer realm=\"%s\",service=\"%s\"", c->token_realm,
			     c->token_service);
		if (w > 0 && (size_t)w < sizeof hdr) o = (size_t)w;
		if (scope[0] && o < sizeof hdr) {
			w = snprintf(hdr + o, sizeof hdr - o, ",scope=\"%s\"", scope);
			if (w > 0 && (size_t)w < sizeof hdr - o) o += (size_t)w;
		}
		if (q->auth_fail != AF_NEED_AUTH && o < sizeof hdr)
			snprintf(hdr + o, sizeof hdr - o, ",error=\"%s\"",
				 q->auth_fail == AF_SCOPE ? "insufficient_scope" : "invalid_token");
	}
	resp_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, hdr);
	return req_queue(q, status, r);
}

static void begin_nothing(struct req *q)
{
	(void)q;
}

static const struct handler h_deny = {begin_nothing, deny_finish, 1};

static int deny(struct req *q, enum auth_fail why)
{
	q->auth_fail = why;
	q->err = why == AF_DENIED ? BERTH_EDENIED : BERTH_EUNAUTHORIZED;
	q->h = &h_deny;
	return 0;
}

/* ---- credentials ---- */

static int authz_header(struct req *q, struct berth_authz *z)
{
	const char *v = NULL;
	size_t n = 0;

	if (MHD_lookup_connection_value_n(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
					  strlen(MHD_HTTP_HEADER_AUTHORIZATION), &v, &n) != MHD_YES ||
	    !v)
		return 0;
	if (berth_authz_parse(v, n, z)) z->scheme = BERTH_AUTHZ_OTHER;
	/* containers/image answers a Basic challenge with empty credentials ("Basic Og==", i.e.
	 * ":") when it has none: that is an anonymous request, not a failed login. */
	if (z->scheme == BERTH_AUTHZ_BASIC &&
	    ((z->cred_len == 4 && memcmp(z->cred, "Og==", 4) == 0) ||
	     (z->cred_len == 2 && memcmp(z->cred, "Og", 2) == 0)))
		return 0;
	return 1;
}

/* Basic credentials against htpasswd: 1 ok (q->user set), 0 wrong. */
static int basic_login(struct req *q, struct berth_auth *a, const struct berth_authz *z)
{
	char user[BERTH_USER_MAX + 1], pw[BERTH_PASSWORD_MAX + 1];
	int ok = 0;

	if (z->scheme != BERTH_AUTHZ_BASIC) return 0;
	if (berth_basic_decode(z->cred, z->cred_len, user, pw) == BERTH_OK &&
	    berth_auth_password(a, user, strlen(user), pw, strlen(pw)) == BERTH_OK) {
		snprintf(q->user, sizeof q->user, "%s", user);
		q->authenticated = 1;
		ok = 1;
	}
	explicit_bzero(pw, sizeof pw);
	return ok;
}

/* What the route needs: BERTH_ACTION_* bits, SCOPE_CATALOG, or 0 (only authentication). */
static unsigned route_need(const struct req *q)
{
	int get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;

	switch (q->route.kind) {
	case BERTH_ROUTE_CATALOG: return SCOPE_CATALOG;
	case BERTH_ROUTE_TAGS:
	case BERTH_ROUTE_REFERRERS: return BERTH_ACTION_PULL;
	case BERTH_ROUTE_MANIFEST:
	case BERTH_ROUTE_BLOB:
		if (get) return BERTH_ACTION_PULL;
		if (strcmp(q->method, "DELETE") == 0) return BERTH_ACTION_DELETE;
		return BERTH_ACTION_PUSH;
	/* Every step of an upload (including its status and cancel) is part of a push. */
	case BERTH_ROUTE_UPLOADS:
	case BERTH_ROUTE_UPLOAD: return BERTH_ACTION_PUSH;
	case BERTH_ROUTE_BASE:
	case BERTH_ROUTE_NOT_FOUND:
	case BERTH_ROUTE_NAME_INVALID: return 0;
	}
	return 0;
}

int berth_http_authorize(struct req *q)
{
	struct berth_auth *a = req_auth(q);
	struct berth_token *tok = NULL;
	struct berth_authz z;
	unsigned need, have = 0, from_have = 0;
	const char *mount, *from;
	int has_authz, go = 1;

	if (!a) return 1;
	need = route_need(q);
	q->auth_need = need;
	has_authz = authz_header(q, &z);
	from = req_query(q, "from");
	mount = q->route.kind == BERTH_ROUTE_UPLOADS ? req_query(q, "mount") : NULL;

	if (berth_auth_mode(a) == BERTH_AUTH_BASIC) {
		if (has_authz && !basic_login(q, a, &z)) return deny(q, AF_NEED_AUTH);
		if (need == 0) return q->authenticated ? 1 : deny(q, AF_NEED_AUTH);
		if (need & SCOPE_CATALOG)
			return q->authenticated || berth_auth_anonymous_any(a)
				       ? 1
				       : deny(q, AF_NEED_AUTH);
		have = berth_auth_actions(a, q->authenticated ? q->user : NULL, q->route.name);
		if (mount && from && *from)
			from_have = berth_auth_actions(a, q->authenticated ? q->user : NULL, from);
	} else {
		if (!has_authz || z.scheme != BERTH_AUTHZ_BEARER) return deny(q, AF_NEED_AUTH);
		tok = malloc(sizeof *tok);
		if (!tok) {
			q->err = BERTH_ENOMEM;
			q->h = NULL; /* answered as a plain error; begin never ran */
			return 0;
		}
		if (berth_auth_token_verify(a, z.cred, z.cred_len, time(NULL), 0, tok)) {
			go = deny(q, AF_INVALID_TOKEN);
			goto out;
		}
		snprintf(q->user, sizeof q->user, "%s", tok->sub);
		q->authenticated = tok->sub[0] != '\0';
		if (need == 0) goto out;
		if (need & SCOPE_CATALOG) {
			if (!berth_token_catalog(tok)) go = deny(q, AF_SCOPE);
			goto out;
		}
		have = berth_token_actions(tok, q->route.name);
		if (mount && from && *from) from_have = berth_token_actions(tok, from);
	}
	if ((have & need) != need) {
		go = deny(q, q->authenticated && berth_auth_mode(a) == BERTH_AUTH_BASIC ? AF_DENIED
					: berth_auth_mode(a) == BERTH_AUTH_BASIC ? AF_NEED_AUTH
										 : AF_SCOPE);
		goto out;
	}
	/* A mount reads the blob from another repository: it needs pull there. Without it (or
	 * without from, which would mount from any repository) the request becomes a plain
	 * session, exactly what an unmountable blob gives: no answer tells whether it exists. */
	if (mount && strcmp(q->method, "POST") == 0 &&
	    (!from || !*from || !(from_have & BERTH_ACTION_PULL)))
		q->no_mount = 1;
out:
	free(tok);
	return go;
}

int berth_http_list_filtered(struct req *q)
{
	struct berth_auth *a = req_auth(q);

	if (!a) return 0;
	/* Tokens from an external issuer carry their own authority: the catalog scope. */
	if (berth_auth_mode(a) == BERTH_AUTH_TOKEN && !berth_auth_config(a)->tokenissuer_enabled)
		return 0;
	return 1;
}

int berth_http_may_list(struct req *q, const char *name, size_t len)
{
	char repo[BERTH_NAME_MAX + 1];

	if (!berth_http_list_filtered(q)) return 1;
	if (len >= sizeof repo) return 0;
	memcpy(repo, name, len);
	repo[len] = '\0';
	return berth_auth_allowed(req_auth(q), q->authenticated ? q->user : NULL, repo,
				  BERTH_ACTION_PULL);
}

/* ---- the built-in issuer: /auth/token ---- */

struct token_req {
	struct req *q;
	struct berth_auth *a;
	const char *user;       /* NULL: anonymous */
	struct berth_token_grant grants[BERTH_TOKEN_ACCESS_MAX];
	size_t ngrants;
	int too_many;
};

/* One scope ("repository:team/app:pull,push"): grants what was asked and is allowed. */
static void add_scope(struct token_req *t, const char *s, size_t n)
{
	struct berth_scope sc;
	struct berth_token_grant *g;
	char name[BERTH_NAME_MAX + 1];
	unsigned allowed;

	if (n == 0) return;
	if (berth_scope_parse(s, n, &sc) || sc.type == BERTH_SCOPE_OTHER) return;
	memcpy(name, sc.name, sc.name_len);
	name[sc.name_len] = '\0';
	if (sc.type == BERTH_SCOPE_CATALOG) {
		if (!t->user && !berth_auth_anonymous_any(t->a)) return;
		allowed = BERTH_ACTION_ALL;
	} else {
		if (!berth_ref_name_valid(name, sc.name_len)) return;
		allowed = berth_auth_actions(t->a, t->user, name) & sc.actions;
	}
	if (!allowed) return;
	for (size_t i = 0; i < t->ngrants; i++) {
		if (t->grants[i].type == sc.type && strcmp(t->grants[i].name, name) == 0) {
			t->grants[i].actions |= allowed;
			return;
		}
	}
	if (t->ngrants == BERTH_TOKEN_ACCESS_MAX) {
		t->too_many = 1;
		return;
	}
	g = &t->grants[t->ngrants++];
	g->type = sc.type;
	snprintf(g->name, sizeof g->name, "%s", name);
	g->actions = allowed;
}

/* A scope parameter may hold several scopes separated by spaces (RFC 6749 §3.3). */
static void add_scopes(struct token_req *t, const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ' ') continue;
		add_scope(t, s + start, i - start);
		start = i + 1;
	}
}

static enum MHD_Result collect_scope(void *cls, enum MHD_ValueKind kind, const char *key,
				     size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	if (key_size == 5 && memcmp(key, "scope", 5) == 0 && value)
		add_scopes(cls, value, value_size);
	return MHD_YES;
}

static enum MHD_Result token_reply(struct token_req *t, int offline)
{
	const struct berth_config *c = berth_auth_config(t->a);
	char *access = NULL, *refresh = NULL, *text = NULL, issued[32];
	time_t now = time(NULL);
	struct tm tm;
	json_t *body = NULL;
	struct MHD_Response *r;
	berth_err e;

	if (t->too_many) return req_error(t->q, BERTH_EINVAL, "too many scopes");
	e = berth_auth_token_issue(t->a, t->user ? t->user : "", t->grants, t->ngrants, now,
				   c->tokenissuer_expiry, 0, &access);
	if (!e && offline && t->user)
		e = berth_auth_token_issue(t->a, t->user, NULL, 0, now, BERTH_REFRESH_EXPIRY, 1,
					   &refresh);
	if (e) goto fail;
	gmtime_r(&now, &tm);
	strftime(issued, sizeof issued, "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* "token" is Docker's field, "access_token" OAuth 2's; clients read either. */
	body = json_pack("{s:s,s:s,s:I,s:s}", "token", access, "access_token", access,
			 "expires_in", (json_int_t)c->tokenissuer_expiry, "issued_at", issued);
	if (body && refresh) json_object_set_new(body, "refresh_token", json_string(refresh));
	if (body) text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		e = BERTH_ENOMEM;
		goto fail;
	}
	json_decref(body);
	free(access);
	free(refresh);
	r = resp_heap(text, strlen(text));
	t->q->bytes_out = (int64_t)strlen(text);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	resp_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return req_queue(t->q, 200, r);
fail:
	json_decref(body);
	free(access);
	free(refresh);
	return req_error(t->q, e, NULL);
}

static enum MHD_Result token_unauthorized(struct req *q)
{
	const struct berth_config *c = berth_auth_config(req_auth(q));
	char hdr[600];
	unsigned status;
	struct MHD_Response *r = resp_error(q, BERTH_EUNAUTHORIZED, NULL, &status);

	snprintf(hdr, sizeof hdr, "Basic realm=\"%s\"", c->htpasswd_realm);
	resp_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, hdr);
	return req_queue(q, status, r);
}

static int service_ok(struct req *q, const char *service)
{
	return !service || !*service ||
	       strcmp(service, berth_auth_config(req_auth(q))->token_service) == 0;
}

/* GET /auth/token?service=&scope=...&offline_token=true, Basic or anonymous (Docker's token
 * authentication specification). */
static enum MHD_Result token_get(struct req *q)
{
	struct token_req *t = calloc(1, sizeof *t);
	struct berth_authz z;
	const char *off = req_query(q, "offline_token");
	enum MHD_Result ret;

	if (!t) return req_error(q, BERTH_ENOMEM, NULL);
	t->q = q;
	t->a = req_auth(q);
	if (!service_ok(q, req_query(q, "service"))) {
		free(t);
		return req_error(q, BERTH_EINVAL, "unknown service");
	}
	if (authz_header(q, &z)) {
		if (!basic_login(q, t->a, &z)) {
			free(t);
			return token_unauthorized(q);
		}
		t->user = q->user;
	}
	MHD_get_connection_values_n(q->conn, MHD_GET_ARGUMENT_KIND, collect_scope, t);
	ret = token_reply(t, off && strcmp(off, "true") == 0);
	free(t);
	return ret;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded: the value of key, percent-decoded into out. 1 found. */
static int form_get(const char *s, size_t n, const char *key, char *out, size_t cap,
		    size_t *outlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < n) {
		size_t end = i, eq;
		while (end < n && s[end] != '&')
			end++;
		for (eq = i; eq < end && s[eq] != '='; eq++)
			;
		if (eq - i == klen && memcmp(s + i, key, klen) == 0 && eq < end) {
			size_t o = 0;
			for (size_t j = eq + 1; j < end; j++) {
				char ch = s[j];
				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					int hi, lo;
					if (j + 2 >= end) return 0;
					hi = hexval(s[j + 1]);
					lo = hexval(s[j + 2]);
					if (hi < 0 || lo < 0) return 0;
					ch = (char)(hi << 4 | lo);
					j += 2;
				}
				if (o + 1 >= cap) return 0;
				out[o++] = ch;
			}
			out[o] = '\0';
			*outlen = o;
			return 1;
		}
		i = end + 1;
	}
	return 0;
}

/* POST /auth/token: OAuth 2 grants (RFC 6749 §4.3 password, §6 refresh_token), as Docker's
 * clients send them. */
static enum MHD_Result token_post(struct req *q)
{
	struct token_req *t = NULL;
	char *f = NULL, user[BERTH_USER_MAX + 1], pw[BERTH_PASSWORD_MAX + 1];
	size_t n = 0;
	enum MHD_Result ret;
	int offline = 0;

	if (q->err) return req_error(q, q->err, "form too large");
	t = calloc(1, sizeof *t);
	f = malloc(BERTH_TOKEN_FORM_MAX + 1);
	if (!t || !f) {
		free(t);
		free(f);
		return req_error(q, BERTH_ENOMEM, NULL);
	}
	t->q = q;
	t->a = req_auth(q);
	pw[0] = '\0';
	if (form_get(q->buf, q->buf_len, "service", f, BERTH_TOKEN_FORM_MAX + 1, &n) &&
	    !service_ok(q, f)) {
		ret = req_error(q, BERTH_EINVAL, "unknown service");
		goto out;
	}
	if (!form_get(q->buf, q->buf_len, "grant_type", f, BERTH_TOKEN_FORM_MAX + 1, &n)) {
		ret = req_error(q, BERTH_EINVAL, "grant_type missing");
		goto out;
	}
	if (strcmp(f, "password") == 0) {
		size_t ul = 0, pl = 0;
		if (!form_get(q->buf, q->buf_len, "username", user, sizeof user, &ul) ||
		    !form_get(q->buf, q->buf_len, "password", pw, sizeof pw, &pl) ||
		    berth_auth_password(t->a, user, ul, pw, pl) != BERTH_OK) {
			ret = token_unauthorized(q);
			goto out;
		}
		snprintf(q->user, sizeof q->user, "%s", user);
		offline = form_get(q->buf, q->buf_len, "access_type", f, BERTH_TOKEN_FORM_MAX + 1,
				   &n) &&
			  strcmp(f, "offline") == 0;
	} else if (strcmp(f, "refresh_token") == 0) {
		struct berth_token *rt = malloc(sizeof *rt);
		int ok = rt && form_get(q->buf, q->buf_len, "refresh_token", f,
					BERTH_TOKEN_FORM_MAX + 1, &n) &&
			 berth_auth_token_verify(t->a, f, n, time(NULL), 1, rt) == BERTH_OK &&
			 rt->sub[0] && berth_auth_user_exists(t->a, rt->sub);
		if (ok) snprintf(q->user, sizeof q->user, "%s", rt->sub);
		free(rt);
		if (!ok) {
			ret = token_unauthorized(q);
			goto out;
		}
	} else {
		ret = req_error(q, BERTH_EINVAL, "unsupported grant_type");
		goto out;
	}
	q->authenticated = 1;
	t->user = q->user;
	if (form_get(q->buf, q->buf_len, "scope", f, BERTH_TOKEN_FORM_MAX + 1, &n))
		add_scopes(t, f, n);
	ret = token_reply(t, offline);
out:
	explicit_bzero(pw, sizeof pw);
	if (q->buf) explicit_bzero(q->buf, q->buf_len);
	explicit_bzero(f, BERTH_TOKEN_FORM_MAX + 1);
	free(f);
	free(t);
	return ret;
}

static void token_post_begin(struct req *q)
{
	q->body = BODY_BUFFER;
	q->buf_max = BERTH_TOKEN_FORM_MAX;
}

static const struct handler h_token_get = {begin_nothing, token_get, 0};
static const struct handler h_token_post = {token_post_begin, token_post, 1};

int berth_http_token_route(struct req *q, const char *url)
{
	struct berth_auth *a = req_auth(q);

	if (!a || !berth_auth_config(a)->tokenissuer_enabled || strcmp(url, "/auth/token") != 0)
		return 0;
	if (strcmp(q->method, "GET") == 0) {
		q->h = &h_token_get;
	} else if (strcmp(q->method, "POST") == 0) {
		q->h = &h_token_post;
	} else {
		q->err = BERTH_EUNSUPPORTED;
		q->err_detail = "method not allowed on this route";
		return 1;
	}
	q->h->begin(q);
	return 1;
}

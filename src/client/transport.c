/* transport.c — registry HTTP client over libcurl easy handles.
 *
 * Each registry keeps a small pool of easy handles: a handle keeps its connection alive, so
 * consecutive requests (and concurrent transfers, each on its own handle) reuse connections.
 * Auth follows Docker's client: the first request goes out anonymously; a 401 carries an
 * RFC 7235 challenge list; Basic is answered with the stored credentials, Bearer with a token
 * from the realm (Docker's token protocol, distribution docs "Token Authentication
 * Specification"), cached per (registry, scope). Later requests send the known auth up front. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../core/ref.h"
#include "creds.h"
#include "transport.h"

#define POOL_MAX 8
#define ERROR_BODY_MAX (64u * 1024u)
#define TOKEN_BODY_MAX (1u * 1024u * 1024u)
#define WWW_AUTH_MAX 4096

enum auth_kind { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct token {
	struct token *next;
	char *scope;   /* cache key: the scopes requested ("" for none) */
	char *token;   /* secret */
};

struct reg {
	struct reg *next;
	char domain[BERTH_REF_DOMAIN_MAX + 1];
	char base[BERTH_REF_DOMAIN_MAX + 16];
	char *user, *pass;          /* secrets; NULL: anonymous */
	int creds_known;            /* user/pass decided (explicit login or config file read) */
	enum auth_kind auth;
	char *realm, *service;
	struct token *tokens;
	CURL *pool[POOL_MAX];
	int npool;
};

struct berth_client {
	struct berth_client_opts opts;
	char *config_path;
	pthread_mutex_t mu;
	struct reg *regs;
	struct berth_creds *creds;
	int creds_tried;
	berth_cerr err;
	char errmsg[1024];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct berth_client *berth_client_new(const struct berth_client_opts *opts)
{
	struct berth_client *c = calloc(1, sizeof *c);

	if (!c) return NULL;
	pthread_once(&curl_once, curl_init_once);
	if (opts) c->opts = *opts;
	if (c->opts.jobs <= 0) c->opts.jobs = 3;
	if (c->opts.jobs > 16) c->opts.jobs = 16;
	if (opts && opts->config_path) {
		c->config_path = strdup(opts->config_path);
		if (!c->config_path) {
			free(c);
			return NULL;
		}
	}
	c->opts.config_path = c->config_path;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void tokens_free(struct token *t)
{
	while (t) {
		struct token *n = t->next;
		free(t->scope);
		berth_secret_free(t->token);
		free(t);
		t = n;
	}
}

void berth_client_free(struct berth_client *c)
{
	if (!c) return;
	for (struct reg *r = c->regs, *n; r; r = n) {
		n = r->next;
		for (int i = 0; i < r->npool; i++) curl_easy_cleanup(r->pool[i]);
		berth_secret_free(r->user);
		berth_secret_free(r->pass);
		free(r->realm);
		free(r->service);
		tokens_free(r->tokens);
		free(r);
	}
	berth_creds_free(c->creds);
	pthread_mutex_destroy(&c->mu);
	free(c->config_path);
	free(c);
}

const char *berth_client_errmsg(const struct berth_client *c)
{
	return c->errmsg;
}

berth_cerr berth_client_errcode(const struct berth_client *c)
{
	return c->err;
}

void berth_client_clear_error(struct berth_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->err = BERTH_C_OK;
	c->errmsg[0] = '\0';
	pthread_mutex_unlock(&c->mu);
}

const struct berth_client_opts *berth_client_options(const struct berth_client *c)
{
	return &c->opts;
}

/* The latest failure recorded on this thread: berth_client_do hands it to its caller in
 * rs->errmsg, so a long-lived client (the mirror's) reports each exchange's own cause, not the
 * first error it ever met. */
static _Thread_local char tl_errmsg[512];

berth_cerr berth_client_fail(struct berth_client *c, berth_cerr code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tl_errmsg, sizeof tl_errmsg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->mu);
	if (c->err == BERTH_C_OK) {
		c->err = code;
		va_start(ap, fmt);
		vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&c->mu);
	return code;
}

void berth_req_init(struct berth_req *r)
{
	memset(r, 0, sizeof *r);
	r->method = "GET";
	r->body_fd = -1;
	r->out_fd = -1;
	r->max_body = BERTH_CLIENT_DOC_MAX;
}

void berth_resp_clear(struct berth_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
	r->content_length = -1;
}

/* ---- registries ---------------------------------------------------------------------- */

int berth_client_base_url(const struct berth_client *c, const char *registry, char *buf, size_t len)
{
	const char *host = registry;
	int n;

	if (strcmp(registry, BERTH_DOCKER_HUB_DOMAIN) == 0 || strcmp(registry, "index.docker.io") == 0)
		host = BERTH_DOCKER_HUB_API;
	n = snprintf(buf, len, "%s://%s", c->opts.insecure ? "http" : "https", host);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Called with c->mu held. */
static struct reg *reg_get_locked(struct berth_client *c, const char *registry)
{
	struct reg *r;

	for (r = c->regs; r; r = r->next)
		if (strcmp(r->domain, registry) == 0) return r;
	if (strlen(registry) > BERTH_REF_DOMAIN_MAX) return NULL;
	r = calloc(1, sizeof *r);
	if (!r) return NULL;
	snprintf(r->domain, sizeof r->domain, "%s", registry);
	if (berth_client_base_url(c, registry, r->base, sizeof r->base)) {
		free(r);
		return NULL;
	}
	r->next = c->regs;
	c->regs = r;
	return r;
}

/* Credentials from the config file, read once per registry. Called with c->mu held. */
static void reg_load_creds_locked(struct berth_client *c, struct reg *r)
{
	const char *why = NULL;
	berth_cerr e;

	if (r->creds_known) return;
	r->creds_known = 1;
	if (c->opts.no_credentials_file) return;
	if (!c->creds_tried) {
		c->creds_tried = 1;
		if (berth_creds_load(c->config_path, &c->creds, &why)) c->creds = NULL;
	}
	if (!c->creds) return;
	e = berth_creds_get(c->creds, r->domain, &r->user, &r->pass);
	if (e) r->user = r->pass = NULL;
}

berth_cerr berth_client_set_login(struct berth_client *c, const char *registry, const char *user,
				  const char *pass)
{
	struct reg *r;
	berth_cerr rc = BERTH_C_OK;

	pthread_mutex_lock(&c->mu);
	r = reg_get_locked(c, registry);
	if (!r) {
		rc = BERTH_C_EFAIL;
		goto out;
	}
	berth_secret_free(r->user);
	berth_secret_free(r->pass);
	r->user = strdup(user);
	r->pass = strdup(pass);
	r->creds_known = 1;
	tokens_free(r->tokens);
	r->tokens = NULL;
	if (!r->user || !r->pass) rc = BERTH_C_EFAIL;
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

berth_cerr berth_client_set_base(struct berth_client *c, const char *registry, const char *base)
{
	struct reg *r;
	berth_cerr rc = BERTH_C_OK;

	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return BERTH_C_EUSAGE;
	pthread_mutex_lock(&c->mu);
	r = reg_get_locked(c, registry);
	if (!r || strlen(base) >= sizeof r->base) rc = BERTH_C_EUSAGE;
	else snprintf(r->base, sizeof r->base, "%s", base);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static CURL *pool_take(struct berth_client *c, struct reg *r)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->mu);
	if (r->npool > 0) h = r->pool[--r->npool];
	pthread_mutex_unlock(&c->mu);
	return h ? h : curl_easy_init();
}

static void pool_put(struct berth_client *c, struct reg *r, CURL *h)
{
	pthread_mutex_lock(&c->mu);
	if (r->npool < POOL_MAX) {
		r->pool[r->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	if (h) curl_easy_cleanup(h);
}

/* ---- one HTTP exchange --------------------------------------------------------------- */

struct xfer {
	struct berth_client *c;
	CURL *h;
	const struct berth_req *rq;
	struct berth_resp *rs;
	size_t cap;              /* allocated size of rs->body */
	int64_t up_pos;          /* request body bytes handed to curl */
	int too_large, sink_errno, source_errno;
	int64_t skipped;
	char wa[WWW_AUTH_MAX];   /* WWW-Authenticate, several headers joined by ", " */
	size_t walen;
	struct timespec last_progress;
	struct timespec started;  /* for rq->first_byte_timeout_ms */
	int timed_out_first_byte;
};

static int ci_prefix(const char *s, size_t len, const char *p, size_t *vlen_off)
{
	size_t pl = strlen(p);

	if (len < pl || strncasecmp(s, p, pl) != 0) return 0;
	*vlen_off = pl;
	return 1;
}

static void copy_hdr(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	if (vlen >= dstlen) vlen = dstlen - 1; /* over-long values are cut; callers validate */
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

static void append_hdr(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	size_t cur = strlen(dst);

	if (cur && cur + 2 < dstlen) {
		memcpy(dst + cur, ", ", 2);
		cur += 2;
		dst[cur] = '\0';
	}
	if (cur + vlen >= dstlen) vlen = dstlen - 1 - cur;
	memcpy(dst + cur, v, vlen);
	dst[cur + vlen] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	struct berth_resp *rs = x->rs;
	size_t len = size * n, off = 0, vlen;
	const char *v;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (redirect, 100 Continue): forget the previous one's headers. */
		rs->content_type[0] = rs->digest[0] = rs->location[0] = rs->range[0] = '\0';
		rs->retry_after[0] = '\0';
		rs->link[0] = '\0';
		rs->content_length = -1;
		rs->body_len = 0;
		x->walen = 0;
		x->wa[0] = '\0';
		return len;
	}
	vlen = len;
	while (vlen && (buf[vlen - 1] == '\r' || buf[vlen - 1] == '\n' || buf[vlen - 1] == ' '))
		vlen--;
#define HDR(name) ci_prefix(buf, vlen, name ":", &off)
	if (HDR("content-type") || HDR("docker-content-digest") || HDR("location") || HDR("range") ||
	    HDR("link") || HDR("content-length") || HDR("www-authenticate") || HDR("retry-after")) {
		char name[32];
		size_t nl = off - 1 < sizeof name - 1 ? off - 1 : sizeof name - 1;

		memcpy(name, buf, nl);
		name[nl] = '\0';
		v = buf + off;
		vlen -= off;
		while (vlen && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		if (strcasecmp(name, "content-type") == 0)
			copy_hdr(rs->content_type, sizeof rs->content_type, v, vlen);
		else if (strcasecmp(name, "docker-content-digest") == 0)
			copy_hdr(rs->digest, sizeof rs->digest, v, vlen);
		else if (strcasecmp(name, "location") == 0)
			copy_hdr(rs->location, sizeof rs->location, v, vlen);
		else if (strcasecmp(name, "range") == 0)
			copy_hdr(rs->range, sizeof rs->range, v, vlen);
		else if (strcasecmp(name, "link") == 0)
			append_hdr(rs->link, sizeof rs->link, v, vlen);
		else if (strcasecmp(name, "www-authenticate") == 0)
			append_hdr(x->wa, sizeof x->wa, v, vlen);
		else if (strcasecmp(name, "retry-after") == 0)
			copy_hdr(rs->retry_after, sizeof rs->retry_after, v, vlen);
		else {
			char num[32];

			copy_hdr(num, sizeof num, v, vlen);
			rs->content_length = strtoll(num, NULL, 10);
		}
	}
#undef HDR
	return len;
}

static void report_progress(struct xfer *x, int64_t done, int force)
{
	const struct berth_req *rq = x->rq;
	struct timespec now;
	struct berth_progress p;

	if (!rq->progress_digest || !x->c->opts.progress) return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && (now.tv_sec - x->last_progress.tv_sec) * 1000000000LL +
			      (now.tv_nsec - x->last_progress.tv_nsec) < 100000000LL)
		return;
	x->last_progress = now;
	p.digest = rq->progress_digest;
	p.done = rq->progress_base + done;
	p.total = rq->progress_total;
	p.state = BERTH_PROGRESS_UPDATE;
	x->c->opts.progress(x->c->opts.progress_ud, &p);
}

static int body_append(struct xfer *x, const char *buf, size_t len, size_t max)
{
	struct berth_resp *rs = x->rs;

	if (rs->body_len + len > max) {
		if (max == ERROR_BODY_MAX) len = max - rs->body_len; /* error bodies are cut */
		else return -1;
	}
	if (rs->body_len + len + 1 > x->cap) {
		size_t ncap = x->cap ? x->cap : 4096;
		char *nb;

		while (ncap < rs->body_len + len + 1) ncap *= 2;
		nb = realloc(rs->body, ncap);
		if (!nb) return -1;
		rs->body = nb;
		x->cap = ncap;
	}
	memcpy(rs->body + rs->body_len, buf, len);
	rs->body_len += len;
	rs->body[rs->body_len] = '\0';
	return 0;
}

static size_t on_write(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const struct berth_req *rq = x->rq;
	size_t len = size * n, orig = len;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && rq->sink) {
		if (rq->sink(rq->sink_ud, buf, len)) {
			x->sink_errno = ECANCELED;
			return 0;
		}
		x->rs->written += (int64_t)len;
		return orig;
	}
	if (status >= 200 && status < 300 && rq->out_fd >= 0) {
		size_t off = 0;

		if (status == 200 && x->skipped < rq->out_skip) {
			/* The server ignored our Range: drop what the destination already has. */
			int64_t drop = rq->out_skip - x->skipped;

			if (drop > (int64_t)len) drop = (int64_t)len;
			x->skipped += drop;
			buf += drop;
			len -= (size_t)drop;
		}
		while (off < len) {
			ssize_t w = rq->out_socket ? send(rq->out_fd, buf + off, len - off, MSG_NOSIGNAL)
						   : write(rq->out_fd, buf + off, len - off);

			if (w < 0 && errno == EINTR) continue;
			if (w <= 0) {
				x->sink_errno = w < 0 ? errno : EIO;
				return 0;
			}
			off += (size_t)w;
		}
		if (rq->hasher && len && berth_hasher_update(rq->hasher, buf, len)) {
			x->sink_errno = ENOMEM;
			return 0;
		}
		x->rs->written += (int64_t)len;
		report_progress(x, x->rs->written, 0);
		return orig;
	}
	if (body_append(x, buf, len, status >= 200 && status < 300 ? rq->max_body : ERROR_BODY_MAX)) {
		x->too_large = 1;
		return 0;
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const struct berth_req *rq = x->rq;
	size_t want = size * n;

	if (rq->body) {
		size_t left = rq->body_len - (size_t)x->up_pos;

		if (want > left) want = left;
		memcpy(buf, (const char *)rq->body + x->up_pos, want);
		x->up_pos += (int64_t)want;
		return want;
	}
	if (rq->body_fd >= 0) {
		ssize_t r;

		if (rq->body_fd_len >= 0 && (int64_t)want > rq->body_fd_len - x->up_pos)
			want = (size_t)(rq->body_fd_len - x->up_pos);
		if (want == 0) return 0;
		do {
			r = rq->body_seekable ? pread(rq->body_fd, buf, want, rq->body_off + x->up_pos)
					      : read(rq->body_fd, buf, want);
		} while (r < 0 && errno == EINTR);
		if (r < 0 || (r == 0 && rq->body_fd_len >= 0)) {
			/* The source ended before the announced length: abort rather than let the
			 * server wait for bytes that will never come. */
			x->source_errno = r < 0 ? errno : EPIPE;
			return CURL_READFUNC_ABORT;
		}
		x->up_pos += r;
		report_progress(x, x->up_pos, 0);
		return (size_t)r;
	}
	return 0;
}

static berth_cerr map_curl(struct berth_client *c, const struct xfer *x, CURLcode cc,
			   const char *url, const char *errbuf)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	struct berth_resp *rs = x->rs;
	berth_cerr code = BERTH_C_ENET;

	if (x->timed_out_first_byte) {
		snprintf(rs->errmsg, sizeof rs->errmsg, "%s: no answer within %ld ms", url,
			 x->rq->first_byte_timeout_ms);
	} else if (x->too_large) {
		code = BERTH_C_EFAIL;
		snprintf(rs->errmsg, sizeof rs->errmsg, "%s: response larger than %zu bytes", url,
			 x->rq->max_body);
	} else if (x->sink_errno) {
		code = x->sink_errno == EPIPE ? BERTH_C_ENET : BERTH_C_EFAIL;
		snprintf(rs->errmsg, sizeof rs->errmsg, "writing download: %s", strerror(x->sink_errno));
	} else if (x->source_errno) {
		snprintf(rs->errmsg, sizeof rs->errmsg, "reading upload source: %s",
			 strerror(x->source_errno));
	} else if (cc == CURLE_OUT_OF_MEMORY) {
		code = BERTH_C_EFAIL;
		snprintf(rs->errmsg, sizeof rs->errmsg, "out of memory");
	} else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
		code = BERTH_C_EFAIL;
		snprintf(rs->errmsg, sizeof rs->errmsg, "%s: %s", url, why);
	} else {
		snprintf(rs->errmsg, sizeof rs->errmsg, "%s: %s", url, why);
	}
	if (!x->rq->quiet) berth_client_fail(c, code, "%s", rs->errmsg);
	return code;
}

/* libcurl's progress callback: ends a transfer whose owner asked it to (rq->cancel), or that
 * has not received a body byte within rq->first_byte_timeout_ms. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = ud;
	const struct berth_req *rq = x->rq;
	(void)dltotal;
	(void)ultotal;
	(void)ulnow;
	if (rq->cancel && *rq->cancel) return 1;
	if (rq->first_byte_timeout_ms > 0 && dlnow == 0) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - x->started.tv_sec) * 1000 +
			    (now.tv_nsec - x->started.tv_nsec) / 1000000 >
		    rq->first_byte_timeout_ms) {
			x->timed_out_first_byte = 1;
			return 1;
		}
	}
	return 0;
}

/* Builds the absolute URL for rq->url. */
static int make_url(const struct reg *r, const char *u, char *buf, size_t len)
{
	int n;

	if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
		n = snprintf(buf, len, "%s", u);
	else
		n = snprintf(buf, len, "%s%s%s", r->base, u[0] == '/' ? "" : "/", u);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static void slist_wipe_free(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data) explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int add_hdr(struct curl_slist **l, const char *name, const char *value)
{
	char line[BERTH_CLIENT_URL_MAX + 128];
	struct curl_slist *n;
	int k;

	if (!value) return 0;
	k = snprintf(line, sizeof line, "%s: %s", name, value);
	if (k < 0 || (size_t)k >= sizeof line) return -1;
	n = curl_slist_append(*l, line);
	explicit_bzero(line, sizeof line);
	if (!n) return -1;
	*l = n;
	return 0;
}

/* One exchange on handle h. auth is a complete "Basic ..."/"Bearer ..." value or NULL. */
static berth_cerr perform(struct berth_client *c, CURL *h, const char *url,
			  const struct berth_req *rq, const char *auth, struct berth_resp *rs,
			  struct xfer *x)
{
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	berth_cerr rc = BERTH_C_OK;
	const char *m = rq->method;
	int has_body = rq->body != NULL || rq->body_fd >= 0;
	int64_t body_len = rq->body ? (int64_t)rq->body_len : rq->body_fd_len;

	berth_resp_clear(rs);
	memset(x, 0, sizeof *x);
	x->c = c;
	x->h = h;
	x->rq = rq;
	x->rs = rs;
	curl_easy_reset(h);
	if (add_hdr(&hdrs, "Accept", rq->accept) || add_hdr(&hdrs, "Content-Type", rq->content_type) ||
	    add_hdr(&hdrs, "Content-Range", rq->content_range) || add_hdr(&hdrs, "Range", rq->range) ||
	    add_hdr(&hdrs, "Authorization", auth) || add_hdr(&hdrs, "Expect", "")) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
		goto out;
	}
	/* "Expect:" with an empty value is how curl is told not to send the header at all. */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "berth/0.1.0");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 30000L);
	if (rq->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	if (rq->recv_buffer > 0) curl_easy_setopt(h, CURLOPT_BUFFERSIZE, rq->recv_buffer);
	if (rq->cancel || rq->first_byte_timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &x->started);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)x);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	/* A transfer that moves nothing for a minute is dead (a registry that stopped reading). */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(h, CURLOPT_READDATA, x);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rq->follow) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
		/* Never follow an https registry down to plain http. */
		curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
				 c->opts.insecure || strncmp(url, "http://", 7) == 0 ? "http,https"
										  : "https");
	}
	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_body ? body_len : 0));
		if (!has_body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(has_body ? body_len : 0));
		if (m[1] == 'A') curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
	if (cc != CURLE_OK) {
		rc = map_curl(c, x, cc, url, errbuf);
		goto out;
	}
	report_progress(x, rq->out_fd >= 0 ? rs->written : x->up_pos, 1);
out:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	slist_wipe_free(hdrs);
	return rc;
}

/* ---- auth ------------------------------------------------------------------------------ */

static struct token *token_find_locked(struct reg *r, const char *scope)
{
	for (struct token *t = r->tokens; t; t = t->next)
		if (strcmp(t->scope, scope) == 0) return t;
	return NULL;
}

/* "Basic base64(user:pass)" into out (wiped by the caller). */
static int basic_value(const char *user, const char *pass, char *out, size_t outlen)
{
	char up[1024];
	int n = snprintf(up, sizeof up, "%s:%s", user, pass);
	size_t k;

	if (n < 0 || (size_t)n >= sizeof up || outlen < 7) {
		explicit_bzero(up, sizeof up);
		return -1;
	}
	memcpy(out, "Basic ", 6);
	k = berth_base64_encode(up, (size_t)n, out + 6, outlen - 6);
	explicit_bzero(up, sizeof up);
	return k ? 0 : -1;
}

/* GET realm?service=..&scope=.. (one scope parameter per space-separated scope), with Basic
 * credentials when known, and caches the token under scope_key. */
static berth_cerr fetch_token(struct berth_client *c, struct reg *r, const char *scopes)
{
	char url[BERTH_CLIENT_URL_MAX * 2], basic[2048] = "";
	char *realm = NULL, *service = NULL, *user = NULL, *pass = NULL;
	struct berth_req rq;
	struct berth_resp rs;
	struct xfer x;
	json_t *doc = NULL, *tok;
	struct token *t = NULL;
	CURL *h = NULL;
	size_t ul;
	berth_cerr rc = BERTH_C_EFAIL;
	const char *p;

	memset(&rs, 0, sizeof rs);
	pthread_mutex_lock(&c->mu);
	realm = r->realm ? strdup(r->realm) : NULL;
	service = r->service ? strdup(r->service) : NULL;
	if (r->user) user = strdup(r->user);
	if (r->pass) pass = strdup(r->pass);
	pthread_mutex_unlock(&c->mu);
	if (!realm) {
		rc = berth_client_fail(c, BERTH_C_EAUTH, "%s: bearer challenge without a realm", r->domain);
		goto out;
	}
	/* Credentials go to a plain-HTTP realm only when the registry itself is plain HTTP
	 * (--insecure, or a mirror upstream configured with an http:// URL). */
	if (strncmp(realm, "https://", 8) != 0 &&
	    !((c->opts.insecure || strncmp(r->base, "http://", 7) == 0) &&
	      strncmp(realm, "http://", 7) == 0)) {
		rc = berth_client_fail(c, BERTH_C_EAUTH, "%s: token realm %s is not https", r->domain, realm);
		goto out;
	}
	h = pool_take(c, r);
	if (!h) goto oom;
	ul = (size_t)snprintf(url, sizeof url, "%s%c", realm, strchr(realm, '?') ? '&' : '?');
	if (service) {
		char *e = curl_easy_escape(h, service, 0);

		if (!e) goto oom;
		ul += (size_t)snprintf(url + ul, ul < sizeof url ? sizeof url - ul : 0, "service=%s&", e);
		curl_free(e);
	}
	for (p = scopes; p && *p;) {
		size_t sl = strcspn(p, " ");
		char *e;

		if (sl) {
			e = curl_easy_escape(h, p, (int)sl);
			if (!e) goto oom;
			ul += (size_t)snprintf(url + ul, ul < sizeof url ? sizeof url - ul : 0, "scope=%s&", e);
			curl_free(e);
		}
		p += sl;
		while (*p == ' ') p++;
	}
	if (ul >= sizeof url) {
		rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: token URL too long", r->domain);
		goto out;
	}
	url[ul - 1] = '\0'; /* the trailing '&' or '?' */
	if (user && pass && basic_value(user, pass, basic, sizeof basic)) goto oom;
	berth_req_init(&rq);
	rq.url = url;
	rq.max_body = TOKEN_BODY_MAX;
	rc = perform(c, h, url, &rq, basic[0] ? basic : NULL, &rs, &x);
	pool_put(c, r, h);
	h = NULL;
	if (rc) goto out;
	if (rs.status == 401 || rs.status == 403) {
		rc = berth_client_fail(c, BERTH_C_EAUTH, "%s: %s (token service %s answered %ld)",
				       r->domain, user ? "invalid username or password" :
				       "authentication required", realm, rs.status);
		goto out;
	}
	if (rs.status != 200) {
		rc = berth_client_http_error(c, "token request", &rs);
		goto out;
	}
	doc = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
	tok = doc ? json_object_get(doc, "token") : NULL;
	if (!json_is_string(tok) || !json_string_length(tok)) tok = doc ? json_object_get(doc, "access_token") : NULL;
	if (!json_is_string(tok) || !json_string_length(tok)) {
		rc = berth_client_fail(c, BERTH_C_EAUTH, "%s: token service %s returned no token",
				       r->domain, realm);
		goto out;
	}
	t = calloc(1, sizeof *t);
	if (!t) goto oom;
	t->scope = strdup(scopes ? scopes : "");
	t->token = strdup(json_string_value(tok));
	if (!t->scope || !t->token) goto oom;
	pthread_mutex_lock(&c->mu);
	{
		struct token *old = token_find_locked(r, t->scope);

		if (old) { /* replace the secret in place: another thread may hold neither */
			berth_secret_free(old->token);
			old->token = t->token;
			t->token = NULL;
		} else {
			t->next = r->tokens;
			r->tokens = t;
			t = NULL;
		}
	}
	pthread_mutex_unlock(&c->mu);
	rc = BERTH_C_OK;
	goto out;
oom:
	rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
out:
	if (t) {
		free(t->scope);
		berth_secret_free(t->token);
		free(t);
	}
	if (h) pool_put(c, r, h);
	if (doc) {
		/* The token string inside jansson's tree is a secret too. */
		tok = json_object_get(doc, "token");
		if (json_is_string(tok)) explicit_bzero((char *)json_string_value(tok), json_string_length(tok));
		tok = json_object_get(doc, "access_token");
		if (json_is_string(tok)) explicit_bzero((char *)json_string_value(tok), json_string_length(tok));
		json_decref(doc);
	}
	if (rs.body) explicit_bzero(rs.body, rs.body_len);
	berth_resp_clear(&rs);
	explicit_bzero(basic, sizeof basic);
	berth_secret_free(user);
	berth_secret_free(pass);
	free(realm);
	free(service);
	return rc;
}

/* The Authorization value to send up front (out wiped by the caller); "" for none. Fetches a
 * token when the registry is known to want Bearer and none is cached for scope. */
static berth_cerr auth_value(struct berth_client *c, struct reg *r, const char *scope, char *out,
			     size_t outlen)
{
	berth_cerr rc = BERTH_C_OK;
	int need_fetch = 0;

	out[0] = '\0';
	pthread_mutex_lock(&c->mu);
	if (r->auth == AUTH_BASIC && r->user && r->pass) {
		if (basic_value(r->user, r->pass, out, outlen)) rc = BERTH_C_EFAIL;
	} else if (r->auth == AUTH_BEARER) {
		struct token *t = token_find_locked(r, scope ? scope : "");

		if (t) {
			int n = snprintf(out, outlen, "Bearer %s", t->token);

			if (n < 0 || (size_t)n >= outlen) {
				out[0] = '\0';
				rc = BERTH_C_EFAIL;
			}
		} else {
			need_fetch = 1;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (rc) return berth_client_fail(c, rc, "%s: credentials too long", r->domain);
	if (need_fetch) {
		/* A token fetched before any challenge for this scope: if that fails (the realm
		 * learnt earlier may have changed), go without one and learn from the 401. */
		if (fetch_token(c, r, scope ? scope : "")) return BERTH_C_OK;
		return auth_value(c, r, scope, out, outlen);
	}
	return BERTH_C_OK;
}

/* Learns from a 401's challenges. Returns 1 when a retry can succeed, 0 when not, -1 on a
 * recorded error. sent_auth: whether the failed request carried credentials. */
static int on_challenge(struct berth_client *c, struct reg *r, const char *wa, const char *scope,
			int sent_auth)
{
	struct berth_challenges ch;
	const struct berth_challenge *basic = NULL, *bearer = NULL;
	int retry = 0;

	if (berth_challenges_parse(wa, strlen(wa), &ch)) return 0;
	for (int i = 0; i < ch.n; i++) {
		if (strcmp(ch.c[i].scheme, "bearer") == 0 && !bearer) bearer = &ch.c[i];
		if (strcmp(ch.c[i].scheme, "basic") == 0 && !basic) basic = &ch.c[i];
	}
	pthread_mutex_lock(&c->mu);
	reg_load_creds_locked(c, r);
	if (bearer) {
		char *realm = strdup(bearer->realm), *service = strdup(bearer->service);

		if (!realm || !service) {
			free(realm);
			free(service);
			pthread_mutex_unlock(&c->mu);
			berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
			return -1;
		}
		free(r->realm);
		free(r->service);
		r->realm = realm;
		r->service = service[0] ? service : NULL;
		if (!r->service) free(service);
		r->auth = AUTH_BEARER;
		retry = 1;
	} else if (basic && r->user && r->pass && !(sent_auth && r->auth == AUTH_BASIC)) {
		r->auth = AUTH_BASIC;
		retry = 1;
	}
	pthread_mutex_unlock(&c->mu);
	if (bearer) {
		/* Our scopes, plus the challenge's when it asks for something else (a catalog). */
		char scopes[2048];
		int n;

		if (scope && bearer->scope[0] && !strstr(scope, bearer->scope))
			n = snprintf(scopes, sizeof scopes, "%s %s", scope, bearer->scope);
		else
			n = snprintf(scopes, sizeof scopes, "%s", scope ? scope : bearer->scope);
		if (n < 0 || (size_t)n >= sizeof scopes) return 0;
		if (fetch_token(c, r, scopes)) return -1;
		/* Cache under the request's own scope key too, so auth_value finds it. */
		if (strcmp(scopes, scope ? scope : "") != 0) {
			struct token *t, *nt;

			pthread_mutex_lock(&c->mu);
			t = token_find_locked(r, scopes);
			nt = calloc(1, sizeof *nt);
			if (t && nt) {
				nt->scope = strdup(scope ? scope : "");
				nt->token = strdup(t->token);
				if (nt->scope && nt->token) {
					struct token *old = token_find_locked(r, nt->scope);

					if (old) {
						berth_secret_free(old->token);
						old->token = nt->token;
						free(nt->scope);
						free(nt);
					} else {
						nt->next = r->tokens;
						r->tokens = nt;
					}
					nt = NULL;
				}
			}
			if (nt) {
				free(nt->scope);
				berth_secret_free(nt->token);
				free(nt);
			}
			pthread_mutex_unlock(&c->mu);
		}
	}
	return retry;
}

berth_cerr berth_client_do(struct berth_client *c, const char *registry, const struct berth_req *rq,
			   struct berth_resp *rs)
{
	char url[BERTH_CLIENT_URL_MAX + 512], auth[8192];
	struct reg *r;
	struct xfer x;
	berth_cerr rc = BERTH_C_OK;
	int replayable = !(rq->body_fd >= 0 && !rq->body_seekable) && rq->out_fd < 0;

	memset(rs, 0, sizeof *rs);
	rs->content_length = -1;
	tl_errmsg[0] = '\0';
	pthread_mutex_lock(&c->mu);
	r = reg_get_locked(c, registry);
	if (r) reg_load_creds_locked(c, r);
	pthread_mutex_unlock(&c->mu);
	if (!r) return berth_client_fail(c, BERTH_C_EFAIL, "%s: invalid registry", registry);
	if (make_url(r, rq->url, url, sizeof url))
		return berth_client_fail(c, BERTH_C_EFAIL, "%s: URL too long", registry);
	/* Downloads to an fd are replayable as long as nothing was written yet: a 401 has no
	 * body for the sink (error bodies go to memory). */
	if (rq->out_fd >= 0) replayable = 1;
	for (int attempt = 0;; attempt++) {
		CURL *h;
		int sent_auth, more;

		rc = auth_value(c, r, rq->scope, auth, sizeof auth);
		if (rc) break;
		sent_auth = auth[0] != '\0';
		h = pool_take(c, r);
		if (!h) {
			rc = berth_client_fail(c, BERTH_C_EFAIL, "out of memory");
			break;
		}
		rc = perform(c, h, url, rq, sent_auth ? auth : NULL, rs, &x);
		explicit_bzero(auth, sizeof auth);
		pool_put(c, r, h);
		if (rc || rs->status != 401 || attempt >= 2 || !replayable || !x.wa[0]) break;
		more = on_challenge(c, r, x.wa, rq->scope, sent_auth);
		if (more < 0) {
			rc = berth_client_errcode(c) ? berth_client_errcode(c) : BERTH_C_EAUTH;
			break;
		}
		if (!more) break;
	}
	if (rc && !rs->errmsg[0]) snprintf(rs->errmsg, sizeof rs->errmsg, "%s", tl_errmsg);
	explicit_bzero(auth, sizeof auth);
	return rc;
}

berth_cerr berth_client_http_error(struct berth_client *c, const char *what,
				   const struct berth_resp *rs)
{
	char why[512] = "", code[64] = "";
	berth_cerr kind = BERTH_C_EFAIL;
	json_t *doc = NULL, *errs, *e0, *v;

	if (rs->body && rs->body_len) doc = json_loadb(rs->body, rs->body_len, 0, NULL);
	errs = doc ? json_object_get(doc, "errors") : NULL;
	e0 = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
	if (e0) {
		v = json_object_get(e0, "code");
		if (json_is_string(v)) snprintf(code, sizeof code, "%s", json_string_value(v));
		v = json_object_get(e0, "message");
		if (json_is_string(v) && json_string_length(v))
			snprintf(why, sizeof why, "%s", json_string_value(v));
		else if (code[0])
			snprintf(why, sizeof why, "%s", code);
	}
	json_decref(doc);
	if (rs->status == 404) kind = BERTH_C_ENOTFOUND;
	else if (rs->status == 401 || rs->status == 403) kind = BERTH_C_EAUTH;
	if (strcmp(code, "DIGEST_INVALID") == 0 || strcmp(code, "SIZE_INVALID") == 0)
		kind = BERTH_C_EDIGEST;
	if (strcmp(code, "MANIFEST_UNKNOWN") == 0 || strcmp(code, "NAME_UNKNOWN") == 0 ||
	    strcmp(code, "BLOB_UNKNOWN") == 0)
		kind = kind == BERTH_C_EFAIL ? BERTH_C_ENOTFOUND : kind;
	if (!why[0]) {
		switch (rs->status) {
		case 401: snprintf(why, sizeof why, "authentication required"); break;
		case 403: snprintf(why, sizeof why, "access denied"); break;
		case 404: snprintf(why, sizeof why, "not found"); break;
		default: snprintf(why, sizeof why, "unexpected HTTP status %ld", rs->status); break;
		}
	}
	return berth_client_fail(c, kind, "%s: %s", what, why);
}

/* ---- pure parsers ---------------------------------------------------------------------- */

/* RFC 7230 §3.2.6 tchar. */
static int is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void skip_ows(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\t')) (*i)++;
}

static size_t read_token(const char *s, size_t len, size_t i)
{
	size_t j = i;

	while (j < len && is_tchar((unsigned char)s[j])) j++;
	return j - i;
}

/* Parses a token or quoted-string value at *i into out (cap outlen incl. NUL). -1: invalid. */
static int read_value(const char *s, size_t len, size_t *i, char *out, size_t outlen)
{
	size_t o = 0;

	if (*i < len && s[*i] == '"') {
		(*i)++;
		while (*i < len && s[*i] != '"') {
			char ch = s[*i];

			if (ch == '\\') {
				(*i)++;
				if (*i >= len) return -1;
				ch = s[*i];
			}
			if (o + 1 >= outlen) return -1;
			out[o++] = ch;
			(*i)++;
		}
		if (*i >= len) return -1; /* unterminated */
		(*i)++;
	} else {
		size_t tl = read_token(s, len, *i);

		/* token68-ish values ("abc==") are tokens followed by '='. */
		while (*i + tl < len && s[*i + tl] == '=') tl++;
		if (tl == 0) return -1;
		if (tl >= outlen) return -1;
		memcpy(out, s + *i, tl);
		o = tl;
		*i += tl;
	}
	out[o] = '\0';
	return 0;
}

int berth_challenges_parse(const char *s, size_t len, struct berth_challenges *out)
{
	size_t i = 0;
	struct berth_challenge *cur = NULL;
	char scratch[1024];

	memset(out, 0, sizeof *out);
	for (;;) {
		size_t tl;

		/* Empty list elements are allowed (RFC 7230 §7). */
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
		if (i >= len) break;
		tl = read_token(s, len, i);
		if (tl == 0) return -1;
		{
			size_t j = i + tl;

			skip_ows(s, len, &j);
			if (cur && j < len && s[j] == '=' && !(j + 1 < len && s[j + 1] == '=')) {
				/* auth-param of the current challenge: name = value */
				char name[32], *dst = scratch;
				size_t dlen = sizeof scratch;

				if (tl >= sizeof name) {
					i = j + 1;
					skip_ows(s, len, &i);
					if (read_value(s, len, &i, scratch, sizeof scratch)) return -1;
					continue;
				}
				memcpy(name, s + i, tl);
				name[tl] = '\0';
				if (strcasecmp(name, "realm") == 0) {
					dst = cur->realm;
					dlen = sizeof cur->realm;
				} else if (strcasecmp(name, "service") == 0) {
					dst = cur->service;
					dlen = sizeof cur->service;
				} else if (strcasecmp(name, "scope") == 0) {
					dst = cur->scope;
					dlen = sizeof cur->scope;
				} else if (strcasecmp(name, "error") == 0) {
					dst = cur->error;
					dlen = sizeof cur->error;
				}
				i = j + 1;
				skip_ows(s, len, &i);
				if (read_value(s, len, &i, dst, dlen)) return -1;
				skip_ows(s, len, &i);
				if (i < len && s[i] != ',') return -1;
				continue;
			}
		}
		/* A new challenge: auth-scheme. */
		if (tl >= sizeof cur->scheme) return -1;
		if (out->n >= BERTH_CHALLENGES_MAX) return 0; /* the first ones are the ones used */
		cur = &out->c[out->n++];
		for (size_t k = 0; k < tl; k++) cur->scheme[k] = (char)tolower((unsigned char)s[i + k]);
		cur->scheme[tl] = '\0';
		i += tl;
		if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != ',') return -1;
		skip_ows(s, len, &i);
		/* token68 ("Negotiate abc=="): a token and optional '='s, then end or ','. A token
		 * followed by '=' and a value is the first auth-param: left to the loop. */
		tl = read_token(s, len, i);
		if (tl) {
			size_t j = i + tl, k = j;

			skip_ows(s, len, &k);
			if (k < len && s[k] == '=' && !(k + 1 < len && s[k + 1] == '=')) {
				size_t m = k + 1;

				skip_ows(s, len, &m);
				if (m < len && s[m] != ',') continue;
			}
			while (j < len && s[j] == '=') j++;
			skip_ows(s, len, &j);
			if (j < len && s[j] != ',') return -1;
			i = j;
		}
	}
	return 0;
}

int berth_link_next(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i = 0;

	while (i < len) {
		size_t ts, te;
		int is_next = 0;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
		if (i >= len) break;
		if (s[i] != '<') return -1;
		ts = ++i;
		while (i < len && s[i] != '>') i++;
		if (i >= len) return -1;
		te = i++;
		/* link-params: ; name [= value] */
		for (;;) {
			char name[16], val[64];
			size_t nl;

			skip_ows(s, len, &i);
			if (i >= len || s[i] == ',') break;
			if (s[i] != ';') return -1;
			i++;
			skip_ows(s, len, &i);
			nl = read_token(s, len, i);
			if (nl == 0) return -1;
			if (nl < sizeof name) {
				memcpy(name, s + i, nl);
				name[nl] = '\0';
			} else {
				name[0] = '\0';
			}
			i += nl;
			skip_ows(s, len, &i);
			if (i < len && s[i] == '=') {
				size_t vi;

				i++;
				skip_ows(s, len, &i);
				vi = i;
				if (read_value(s, len, &i, val, sizeof val)) {
					/* long values (titles) are not ours: skip them */
					i = vi;
					if (i < len && s[i] == '"') {
						i++;
						while (i < len && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
						if (i >= len) return -1;
						i++;
					} else {
						while (i < len && s[i] != ';' && s[i] != ',') i++;
					}
					val[0] = '\0';
				}
				if (strcasecmp(name, "rel") == 0) {
					/* rel is a space-separated list of relation types */
					const char *p = val;

					while (*p) {
						size_t wl = strcspn(p, " ");

						if (wl == 4 && strncasecmp(p, "next", 4) == 0) is_next = 1;
						p += wl;
						while (*p == ' ') p++;
					}
				}
			}
		}
		if (is_next) {
			if (te - ts + 1 > outlen) return -1;
			memcpy(out, s + ts, te - ts);
			out[te - ts] = '\0';
			return 1;
		}
	}
	return 0;
}

/* mirror.c — routing to upstreams, the circuit breaker, manifests kept current by a HEAD, and
 * blobs fetched once per digest while every reader follows the bytes as they are stored. */
#include "mirror.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../client/transport.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "../core/manifest.h"
#include "../core/semver.h"

/* Every manifest kind a client may pull: the upstream answers with the image's own top
 * manifest (an index for a multi-platform image), which is what the cache keeps. */
static const char manifest_accept[] =
	"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

struct upstream {
	const struct berth_mirror_upstream *cfg;
	pthread_mutex_t mu;      /* the breaker, the last error and the counters */
	int64_t down_until;      /* monotonic ms; 0: up */
	char last_error[256];
	time_t last_error_at;
	uint64_t hits, misses, stale, errors;
	int64_t bytes_fetched, bytes_served;
};

struct waiter {
	struct waiter *next;
	void (*wake)(void *ud);
	void *ud;
};

struct berth_fetch {
	struct berth_fetch *next;     /* m->fetches, while in flight */
	struct berth_mirror *m;
	int refs;                     /* under m->fmu */
	int up;
	char local[BERTH_NAME_MAX + 1], remote[BERTH_NAME_MAX + 1];
	struct berth_digest d;
	pthread_mutex_t mu;           /* state .. waiters */
	enum berth_fetch_state state;
	int64_t size, readable;
	int64_t woken_at;             /* readable when readers were last woken */
	char why[256];
	berth_err err;                /* FAILED: BERTH_EBLOB_UNKNOWN (the upstream has none) or
					 BERTH_EUNAVAILABLE */
	struct waiter *waiters;
	int fd;                       /* the staged file, read-only (then the blob: same inode) */
	/* the fetch thread's own */
	char upload_id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w;
	struct berth_resp rs;
	berth_err sink_err;
	volatile int cancel;
};

/* A tag check in flight: requests for the same tag wait for its answer (a crowd of nodes
 * pulling one tag costs one HEAD, not one per node). */
struct check {
	struct check *next;
	char key[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 290]; /* local ":" ref */
	int done, waiters;
	berth_err e;
	struct berth_mirror_answer a;
	pthread_cond_t cv;
};

struct berth_mirror {
	const struct berth_config *cfg;
	struct berth_registry *reg;
	struct berth_client *client;
	struct upstream *ups;
	size_t n;
	int default_up;               /* -1: none */
	pthread_mutex_t fmu;          /* fetches, refs, threads, shutting */
	pthread_cond_t idle;
	struct berth_fetch *fetches;
	struct check *checks;         /* under fmu */
	int threads;
	int shutting;
	/* scheduled prefetches (berth.mirror.sync) */
	pthread_t scheduler;
	int scheduler_running;
	pthread_cond_t sched_wake; /* with fmu */
};

#define SYNC_FIRST_DELAY_MS 2000 /* the first scheduled run, once the server is up */

static const char *prefix_of(const struct berth_mirror *m, int up)
{
	return m->ups[up].cfg->prefix;
}

const char *berth_mirror_prefix(const struct berth_mirror *m, int up)
{
	return prefix_of(m, up);
}

const char *berth_mirror_source_name(enum berth_mirror_source s)
{
	switch (s) {
	case BERTH_MIRROR_HIT: return "hit";
	case BERTH_MIRROR_MISS: return "miss";
	case BERTH_MIRROR_STALE: return "stale";
	}
	return "-";
}

/* ---- lifecycle ---- */

static void *scheduler_main(void *arg);

berth_err berth_mirror_new(const struct berth_config *cfg, struct berth_registry *reg,
			   struct berth_mirror **out)
{
	struct berth_client_opts co = {.no_credentials_file = 1, .jobs = 1};
	struct berth_mirror *m;
	*out = NULL;
	if (!cfg->nupstreams) return BERTH_OK;
	m = calloc(1, sizeof *m);
	if (!m) return BERTH_ENOMEM;
	m->cfg = cfg;
	m->reg = reg;
	m->default_up = -1;
	pthread_mutex_init(&m->fmu, NULL);
	pthread_cond_init(&m->idle, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&m->sched_wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	m->ups = calloc(cfg->nupstreams, sizeof *m->ups);
	m->client = berth_client_new(&co);
	if (!m->ups || !m->client) goto nomem;
	m->n = cfg->nupstreams;
	for (size_t i = 0; i < m->n; i++) {
		const struct berth_mirror_upstream *u = &cfg->upstreams[i];
		m->ups[i].cfg = u;
		pthread_mutex_init(&m->ups[i].mu, NULL);
		if (u->is_default) m->default_up = (int)i;
		/* The client knows each upstream by its prefix: tokens and connections are kept
		 * per upstream, its base URL is the configured one. */
		if (berth_client_set_base(m->client, u->prefix, u->url) ||
		    (u->username &&
		     berth_client_set_login(m->client, u->prefix, u->username, u->password))) {
			berth_log(BERTH_LOG_ERROR, "mirror: cannot set up upstream %s", u->prefix);
			berth_mirror_free(m);
			return BERTH_EINVAL;
		}
		berth_log(BERTH_LOG_INFO, "mirror: %s/... from %s%s%s", u->prefix, u->url,
			  u->username ? " (with credentials)" : " (anonymous)",
			  u->is_default ? ", also un-prefixed names" : "");
	}
	if (cfg->nmirror_syncs && pthread_create(&m->scheduler, NULL, scheduler_main, m) == 0)
		m->scheduler_running = 1;
	*out = m;
	return BERTH_OK;
nomem:
	berth_mirror_free(m);
	return BERTH_ENOMEM;
}

void berth_mirror_shutdown(struct berth_mirror *m)
{
	if (!m) return;
	pthread_mutex_lock(&m->fmu);
	m->shutting = 1;
	pthread_cond_broadcast(&m->sched_wake);
	for (struct berth_fetch *f = m->fetches; f; f = f->next) f->cancel = 1;
	pthread_mutex_unlock(&m->fmu);
}

void berth_mirror_free(struct berth_mirror *m)
{
	if (!m) return;
	berth_mirror_shutdown(m);
	if (m->scheduler_running) pthread_join(m->scheduler, NULL);
	pthread_mutex_lock(&m->fmu);
	while (m->threads > 0) pthread_cond_wait(&m->idle, &m->fmu);
	pthread_mutex_unlock(&m->fmu);
	pthread_cond_destroy(&m->sched_wake);
	berth_client_free(m->client);
	for (size_t i = 0; i < m->n; i++) pthread_mutex_destroy(&m->ups[i].mu);
	free(m->ups);
	pthread_cond_destroy(&m->idle);
	pthread_mutex_destroy(&m->fmu);
	free(m);
}

/* ---- routing ---- */

/* local = prefix "/" remote, remote = name with Docker Hub's "library/" for one component. */
static int route_fill(struct berth_mirror *m, int up, const char *name, size_t nlen,
		      struct berth_mirror_route *rt)
{
	const struct berth_mirror_upstream *u = m->ups[up].cfg;
	int lib = u->dockerhub && !memchr(name, '/', nlen);
	int k = snprintf(rt->remote, sizeof rt->remote, "%s%.*s", lib ? "library/" : "", (int)nlen,
			 name);
	if (k < 0 || (size_t)k >= sizeof rt->remote) return 0;
	k = snprintf(rt->local, sizeof rt->local, "%s/%s", u->prefix, rt->remote);
	if (k < 0 || (size_t)k >= sizeof rt->local) return 0;
	rt->up = up;
	return 1;
}

int berth_mirror_route(struct berth_mirror *m, const char *name, const char *ns, int for_write,
		       struct berth_mirror_route *rt)
{
	size_t len = strlen(name);
	if (!m) return 0;
	if (ns && *ns) {
		for (size_t i = 0; i < m->n; i++)
			if (strcmp(ns, m->ups[i].cfg->prefix) == 0)
				return route_fill(m, (int)i, name, len, rt);
		/* containerd asks for a registry this mirror does not serve: not the default
		 * upstream's repository of the same name (containerd then goes to ns itself). */
		return -1;
	}
	for (size_t i = 0; i < m->n; i++) {
		const char *p = m->ups[i].cfg->prefix;
		size_t pl = strlen(p);
		if (len > pl + 1 && memcmp(name, p, pl) == 0 && name[pl] == '/')
			return route_fill(m, (int)i, name + pl + 1, len - pl - 1, rt);
	}
	/* Docker's registry-mirrors ask for "library/alpine": the default upstream serves such
	 * names, unless this registry holds a repository of that name (pushed here). */
	if (m->default_up >= 0 && !for_write && berth_registry_repo_exists(m->reg, name) != BERTH_OK)
		return route_fill(m, m->default_up, name, len, rt);
	return 0;
}

/* ---- the breaker ---- */

int berth_mirror_down(struct berth_mirror *m, int up)
{
	struct upstream *u = &m->ups[up];
	int down;
	pthread_mutex_lock(&u->mu);
	down = u->down_until && berth_mono_ms() < u->down_until;
	pthread_mutex_unlock(&u->mu);
	return down;
}

/* Marks up down for the breaker interval (or the upstream's Retry-After, if longer): an outage
 * costs one timeout per interval, not one per request. */
static void trip(struct berth_mirror *m, int up, const char *why, const char *retry_after)
{
	struct upstream *u = &m->ups[up];
	long secs = m->cfg->mirror_breaker;
	int was_up;
	if (retry_after && retry_after[0]) {
		char *end;
		long ra = strtol(retry_after, &end, 10);
		if (end != retry_after && ra > secs && ra <= 86400) secs = ra;
	}
	pthread_mutex_lock(&u->mu);
	was_up = !u->down_until || berth_mono_ms() >= u->down_until;
	u->down_until = berth_mono_ms() + (int64_t)secs * 1000;
	if (u->down_until == 0) u->down_until = 1;
	snprintf(u->last_error, sizeof u->last_error, "%s", why);
	u->last_error_at = time(NULL);
	u->errors++;
	pthread_mutex_unlock(&u->mu);
	if (was_up)
		berth_log(BERTH_LOG_WARN, "mirror: upstream %s marked down for %ld s: %s",
			  prefix_of(m, up), secs, why);
}

static void recovered(struct berth_mirror *m, int up)
{
	struct upstream *u = &m->ups[up];
	pthread_mutex_lock(&u->mu);
	u->down_until = 0;
	pthread_mutex_unlock(&u->mu);
}

static void count(struct berth_mirror *m, int up, enum berth_mirror_source s, int64_t fetched)
{
	struct upstream *u = &m->ups[up];
	pthread_mutex_lock(&u->mu);
	if (s == BERTH_MIRROR_HIT) u->hits++;
	else if (s == BERTH_MIRROR_MISS) u->misses++;
	else if (s == BERTH_MIRROR_STALE) u->stale++;
	u->bytes_fetched += fetched;
	pthread_mutex_unlock(&u->mu);
}

void berth_mirror_count_served(struct berth_mirror *m, int up, int64_t bytes,
			       enum berth_mirror_source s)
{
	struct upstream *u = &m->ups[up];
	pthread_mutex_lock(&u->mu);
	if (s == BERTH_MIRROR_HIT) u->hits++;
	u->bytes_served += bytes;
	pthread_mutex_unlock(&u->mu);
}

/* "upstream docker.io unavailable: <cause>" into a->why (the error body's detail). */
static void why_unavailable(struct berth_mirror *m, int up, struct berth_mirror_answer *a)
{
	struct upstream *u = &m->ups[up];
	int64_t left;
	pthread_mutex_lock(&u->mu);
	left = u->down_until ? (u->down_until - berth_mono_ms() + 999) / 1000 : 0;
	snprintf(a->why, sizeof a->why, "upstream %s unavailable: %s", prefix_of(m, up),
		 u->last_error[0] ? u->last_error : "marked down");
	pthread_mutex_unlock(&u->mu);
	if (left > 0) {
		size_t n = strlen(a->why);
		snprintf(a->why + n, sizeof a->why - n, " (asked again in %lld s)", (long long)left);
	}
}

/* A failed exchange: the cause in words, for the breaker and the error body. Secrets never
 * appear: the transport's messages carry the URL (configured without userinfo) only. */
static void describe(struct berth_client *c, const struct berth_resp *rs, berth_cerr rc, char *out,
		     size_t len)
{
	/* A failure of the token exchange is recorded in the client, not the response. */
	(void)c;
	if (rc) snprintf(out, len, "%.300s", rs->errmsg[0] ? rs->errmsg : "transfer failed");
	else if (rs->status == 429)
		snprintf(out, len, "429 too many requests (rate limited%s%s)",
			 rs->retry_after[0] ? ", retry after " : "", rs->retry_after);
	else if (rs->status == 401 || rs->status == 403)
		snprintf(out, len, "%ld: the upstream refused our credentials", rs->status);
	else snprintf(out, len, "HTTP %ld", rs->status);
}

/* The token scope of a pull of remote: named up front, so the token cached for it goes with the
 * first request instead of after a 401 (one upstream request per check, not three). */
static void pull_scope(char *buf, size_t len, const char *remote)
{
	snprintf(buf, len, "repository:%s:pull", remote);
}

/* A quiet request to an upstream: scope (pull_scope's), connect within the mirror's timeout,
 * the whole exchange within timeout_ms (0: none; a stall still ends it). */
static void upstream_req(const struct berth_mirror *m, struct berth_req *rq, const char *method,
			 const char *url, const char *scope, long timeout_ms)
{
	berth_req_init(rq);
	rq->method = method;
	rq->url = url;
	rq->scope = scope;
	rq->quiet = 1;
	rq->connect_timeout_ms = m->cfg->mirror_timeout_ms;
	rq->timeout_ms = timeout_ms;
}

/* ---- manifests ---- */

/* GET of the upstream's manifest ref into the cache under store_ref; *d gets its digest. */
static berth_err fetch_manifest(struct berth_mirror *m, const struct berth_mirror_route *rt,
				const char *ref, const char *store_ref, const struct berth_digest *want,
				struct berth_digest *d, struct berth_mirror_answer *a)
{
	char url[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 32], ct[BERTH_MEDIA_TYPE_MAX + 1];
	struct berth_req rq;
	struct berth_resp rs;
	struct berth_digest got;
	berth_cerr rc;
	berth_err e;
	char scope[BERTH_NAME_MAX + 32];
	snprintf(url, sizeof url, "/v2/%s/manifests/%s", rt->remote, ref);
	pull_scope(scope, sizeof scope, rt->remote);
	upstream_req(m, &rq, "GET", url, scope, m->cfg->mirror_timeout_ms * 4);
	rq.accept = manifest_accept;
	rq.max_body = berth_registry_opts(m->reg)->manifest_max;
	rq.follow = 1;
	rc = berth_client_do(m->client, prefix_of(m, rt->up), &rq, &rs);
	if (rc || rs.status != 200) {
		char cause[320];
		if (!rc && rs.status == 404) {
			berth_resp_clear(&rs);
			return BERTH_EMANIFEST_UNKNOWN;
		}
		describe(m->client, &rs, rc, cause, sizeof cause);
		trip(m, rt->up, cause, rs.retry_after);
		berth_resp_clear(&rs);
		why_unavailable(m, rt->up, a);
		return BERTH_EUNAVAILABLE;
	}
	e = berth_digest_of(want ? want->alg : BERTH_DIGEST_SHA256, rs.body, rs.body_len, &got);
	if (!e && want && !berth_digest_eq(&got, want)) {
		snprintf(a->why, sizeof a->why,
			 "upstream %s sent a manifest that does not match %s (got %s)",
			 prefix_of(m, rt->up), want->s, got.s);
		berth_log(BERTH_LOG_WARN, "mirror: %s", a->why);
		berth_resp_clear(&rs);
		return BERTH_EUNAVAILABLE;
	}
	snprintf(ct, sizeof ct, "%s", rs.content_type);
	ct[strcspn(ct, "; ")] = '\0';
	if (!e)
		e = berth_registry_manifest_cache(m->reg, rt->local, store_ref ? store_ref : got.s,
						  ct[0] ? ct : NULL, rs.body, rs.body_len, d);
	if (!e) count(m, rt->up, BERTH_MIRROR_MISS, (int64_t)rs.body_len);
	else berth_log(BERTH_LOG_WARN, "mirror: cannot keep %s@%s: %s", rt->local, got.s,
		       berth_err_str(e));
	berth_resp_clear(&rs);
	recovered(m, rt->up);
	return e;
}

/* Referrers (signatures, SBOMs, attestations) of d, from the upstream's referrers API, kept with
 * it so the local referrers API answers for mirrored images. Best effort: an upstream without
 * the API (404, as Distribution 2.8) or a failure leaves the pull itself alone. depth bounds
 * referrers of referrers. */
static void fetch_referrers(struct berth_mirror *m, const struct berth_mirror_route *rt,
			    const struct berth_digest *d, int depth)
{
	char url[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 32], scope[BERTH_NAME_MAX + 32];
	struct berth_req rq;
	struct berth_resp rs;
	json_t *doc, *e;
	size_t i;
	if (depth > 2) return;
	snprintf(url, sizeof url, "/v2/%s/referrers/%s", rt->remote, d->s);
	pull_scope(scope, sizeof scope, rt->remote);
	upstream_req(m, &rq, "GET", url, scope, m->cfg->mirror_timeout_ms * 4);
	rq.accept = "application/vnd.oci.image.index.v1+json";
	rq.max_body = 4u << 20;
	if (berth_client_do(m->client, prefix_of(m, rt->up), &rq, &rs) || rs.status != 200) {
		berth_resp_clear(&rs);
		return;
	}
	doc = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
	berth_resp_clear(&rs);
	json_array_foreach(json_object_get(doc, "manifests"), i, e) {
		const char *ds = json_string_value(json_object_get(e, "digest"));
		struct berth_registry_manifest mo;
		struct berth_mirror_answer a;
		struct berth_digest want, got;
		if (i >= 256 || !ds || berth_digest_parse(ds, strlen(ds), &want)) continue;
		if (berth_registry_manifest_get(m->reg, rt->local, want.s, 0, &mo) == BERTH_OK) {
			berth_registry_manifest_clear(&mo);
			continue;
		}
		memset(&a, 0, sizeof a);
		if (fetch_manifest(m, rt, want.s, NULL, &want, &got, &a) == BERTH_OK)
			fetch_referrers(m, rt, &want, depth + 1);
	}
	json_decref(doc);
}

/* The cached copy is served: say so, and why. */
static berth_err stale(struct berth_mirror *m, int up, struct berth_mirror_answer *a,
		       const char *what)
{
	a->source = BERTH_MIRROR_STALE;
	snprintf(a->warning, sizeof a->warning, "299 - \"served from cache: %s\"", what);
	count(m, up, BERTH_MIRROR_STALE, 0);
	return BERTH_OK;
}

static berth_err manifest_check(struct berth_mirror *m, const struct berth_mirror_route *rt,
				const char *ref, struct berth_mirror_answer *a)
{
	struct berth_registry_manifest mo;
	struct berth_digest cached, want, upd;
	int have, by_digest = strchr(ref, ':') != NULL;
	char url[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 288], scope[BERTH_NAME_MAX + 32];
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;
	berth_err e;

	memset(a, 0, sizeof *a);
	a->source = BERTH_MIRROR_HIT;
	if (by_digest && berth_digest_parse(ref, strlen(ref), &want)) return BERTH_EMANIFEST_UNKNOWN;
	have = berth_registry_manifest_get(m->reg, rt->local, ref, 0, &mo) == BERTH_OK;
	if (have) {
		cached = mo.digest;
		berth_registry_manifest_clear(&mo);
	}
	if (have && by_digest) { /* content-addressed: never asked again */
		count(m, rt->up, BERTH_MIRROR_HIT, 0);
		return BERTH_OK;
	}
	if (berth_mirror_down(m, rt->up)) {
		if (have) return stale(m, rt->up, a, "upstream unavailable");
		a->source = BERTH_MIRROR_MISS;
		why_unavailable(m, rt->up, a);
		return BERTH_EUNAVAILABLE;
	}
	if (by_digest) {
		a->source = BERTH_MIRROR_MISS;
		e = fetch_manifest(m, rt, ref, NULL, &want, &upd, a);
		if (!e) fetch_referrers(m, rt, &want, 0);
		return e;
	}

	/* A tag: HEAD (free against Docker Hub's pull limit) within the timeout. */
	snprintf(url, sizeof url, "/v2/%s/manifests/%s", rt->remote, ref);
	pull_scope(scope, sizeof scope, rt->remote);
	upstream_req(m, &rq, "HEAD", url, scope, m->cfg->mirror_timeout_ms);
	rq.accept = manifest_accept;
	rc = berth_client_do(m->client, prefix_of(m, rt->up), &rq, &rs);
	a->source = BERTH_MIRROR_MISS;
	if (!rc && rs.status == 404) {
		berth_resp_clear(&rs);
		recovered(m, rt->up);
		if (have && m->cfg->mirror_keep_deleted)
			return stale(m, rt->up, a, "tag deleted upstream");
		return BERTH_EMANIFEST_UNKNOWN;
	}
	if (rc || rs.status != 200) {
		char cause[320];
		describe(m->client, &rs, rc, cause, sizeof cause);
		trip(m, rt->up, cause, rs.retry_after);
		berth_resp_clear(&rs);
		if (have) return stale(m, rt->up, a, "upstream unavailable");
		why_unavailable(m, rt->up, a);
		return BERTH_EUNAVAILABLE;
	}
	recovered(m, rt->up);
	e = rs.digest[0] ? berth_digest_parse(rs.digest, strlen(rs.digest), &want) : BERTH_EINVAL;
	berth_resp_clear(&rs);
	if (e) { /* no usable Docker-Content-Digest: the body says */
		a->source = BERTH_MIRROR_MISS;
		e = fetch_manifest(m, rt, ref, ref, NULL, &upd, a);
		if (!e) fetch_referrers(m, rt, &upd, 0);
		return e;
	}
	if (have && berth_digest_eq(&want, &cached)) {
		a->source = BERTH_MIRROR_HIT;
		count(m, rt->up, BERTH_MIRROR_HIT, 0);
		return BERTH_OK;
	}
	/* Moved (or new): the new content, by digest so it is the one the HEAD named; the old
	 * one stays reachable by its digest. */
	a->source = BERTH_MIRROR_MISS;
	if (berth_registry_manifest_get(m->reg, rt->local, want.s, 1, &mo) == BERTH_OK) {
		e = berth_registry_manifest_cache(m->reg, rt->local, ref, mo.media_type, mo.content,
						  mo.len, &upd);
		berth_registry_manifest_clear(&mo);
		return e;
	}
	e = fetch_manifest(m, rt, want.s, NULL, &want, &upd, a);
	if (!e) fetch_referrers(m, rt, &want, 0);
	if (e) {
		if (have && e == BERTH_EUNAVAILABLE) return stale(m, rt->up, a, "upstream unavailable");
		return e;
	}
	e = berth_registry_manifest_get(m->reg, rt->local, want.s, 1, &mo);
	if (e) return e;
	e = berth_registry_manifest_cache(m->reg, rt->local, ref, mo.media_type, mo.content, mo.len,
					  &upd);
	berth_registry_manifest_clear(&mo);
	return e;
}

berth_err berth_mirror_manifest(struct berth_mirror *m, const struct berth_mirror_route *rt,
				const char *ref, struct berth_mirror_answer *a)
{
	struct check *c;
	char key[sizeof c->key];
	berth_err e;
	/* Digests and a marked-down upstream answer without the network: no need to share. */
	if (strchr(ref, ':') || berth_mirror_down(m, rt->up)) return manifest_check(m, rt, ref, a);
	snprintf(key, sizeof key, "%s:%s", rt->local, ref);
	pthread_mutex_lock(&m->fmu);
	for (c = m->checks; c; c = c->next)
		if (strcmp(c->key, key) == 0) break;
	if (c) {
		c->waiters++;
		while (!c->done) pthread_cond_wait(&c->cv, &m->fmu);
		e = c->e;
		*a = c->a;
		if (--c->waiters == 0) {
			pthread_cond_destroy(&c->cv);
			free(c);
		}
		pthread_mutex_unlock(&m->fmu);
		if (!e) count(m, rt->up, a->source == BERTH_MIRROR_MISS ? BERTH_MIRROR_HIT : a->source,
			      0);
		return e;
	}
	c = calloc(1, sizeof *c);
	if (c) {
		snprintf(c->key, sizeof c->key, "%s", key);
		pthread_cond_init(&c->cv, NULL);
		c->next = m->checks;
		m->checks = c;
	}
	pthread_mutex_unlock(&m->fmu);
	e = manifest_check(m, rt, ref, a);
	if (!c) return e;
	pthread_mutex_lock(&m->fmu);
	for (struct check **p = &m->checks; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->e = e;
	c->a = *a;
	c->done = 1;
	if (c->waiters) {
		pthread_cond_broadcast(&c->cv);
	} else {
		pthread_cond_destroy(&c->cv);
		free(c);
	}
	pthread_mutex_unlock(&m->fmu);
	return e;
}

/* ---- blobs ---- */

static void wake_all(struct berth_fetch *f)
{
	struct waiter *w;
	pthread_mutex_lock(&f->mu);
	w = f->waiters;
	f->waiters = NULL;
	pthread_mutex_unlock(&f->mu);
	while (w) {
		struct waiter *n = w->next;
		w->wake(w->ud);
		free(w);
		w = n;
	}
}

static void fetch_unref(struct berth_fetch *f)
{
	struct berth_mirror *m = f->m;
	int last;
	pthread_mutex_lock(&m->fmu);
	last = --f->refs == 0;
	pthread_mutex_unlock(&m->fmu);
	if (!last) return;
	if (f->fd >= 0) close(f->fd);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void berth_fetch_release(struct berth_fetch *f)
{
	if (f) fetch_unref(f);
}

/* The first bytes: a staged upload to write them to, and the descriptor readers follow. */
static berth_err staging_open(struct berth_fetch *f)
{
	struct berth_mirror *m = f->m;
	int fd = -1;
	berth_err e = berth_registry_upload_anonymous(m->reg, f->local, f->d.alg, f->upload_id,
						      &f->w);
	if (e) return e;
	if ((e = berth_registry_upload_fd(m->reg, f->upload_id, &fd))) return e;
	/* Readers follow the staged file: its bytes go to them at the network's speed, not the
	 * disk's (the commit makes them durable). */
	berth_upload_writer_follow(f->w);
	pthread_mutex_lock(&f->mu);
	f->fd = fd;
	f->size = f->rs.content_length;
	f->state = BERTH_FETCH_STREAMING;
	pthread_mutex_unlock(&f->mu);
	return BERTH_OK;
}

/* Bytes readers may take: all that is visible, less the last byte until it is verified.
 * Readers waiting are woken once at least WAKE_STEP more bytes are there (and at the end): a
 * wake resumes a connection, which is worth a good piece of data. */
#define WAKE_STEP (1024 * 1024)
static void publish_progress(struct berth_fetch *f)
{
	int64_t vis = berth_upload_writer_visible(f->w);
	int wake;
	pthread_mutex_lock(&f->mu);
	if (f->size > 0 && vis > f->size - 1) vis = f->size - 1;
	wake = vis > f->readable && f->waiters &&
	       (vis - f->woken_at >= WAKE_STEP || (f->size > 0 && vis == f->size - 1));
	if (vis > f->readable) f->readable = vis;
	if (wake) f->woken_at = vis;
	pthread_mutex_unlock(&f->mu);
	if (wake) wake_all(f);
}

static int fetch_sink(void *ud, const void *buf, size_t len)
{
	struct berth_fetch *f = ud;
	if (f->cancel) {
		f->sink_err = BERTH_EUNAVAILABLE;
		return 1;
	}
	if (!f->w && (f->sink_err = staging_open(f))) return 1;
	if (f->size >= 0 && berth_upload_writer_size(f->w) + (int64_t)len > f->size) {
		f->sink_err = BERTH_ESIZE_INVALID;
		return 1;
	}
	if ((f->sink_err = berth_upload_writer_write(f->w, buf, len))) return 1;
	publish_progress(f);
	return 0;
}

static void fetch_end(struct berth_fetch *f, enum berth_fetch_state st, berth_err err,
		      const char *why)
{
	struct berth_mirror *m = f->m;
	pthread_mutex_lock(&m->fmu);
	for (struct berth_fetch **p = &m->fetches; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&m->fmu);
	pthread_mutex_lock(&f->mu);
	f->state = st;
	if (st == BERTH_FETCH_DONE) f->readable = f->size;
	if (why) snprintf(f->why, sizeof f->why, "%.255s", why);
	f->err = err;
	pthread_mutex_unlock(&f->mu);
	wake_all(f);
}

/* The bytes hash to the digest: readers may take the last one while the blob is made durable
 * and published. */
static void fetch_verified(void *ud)
{
	struct berth_fetch *f = ud;
	pthread_mutex_lock(&f->mu);
	f->readable = f->size;
	pthread_mutex_unlock(&f->mu);
	wake_all(f);
}

static void *fetch_main(void *arg)
{
	struct berth_fetch *f = arg;
	struct berth_mirror *m = f->m;
	char url[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 32], why[384] = "";
	struct berth_req rq;
	int64_t size = 0;
	berth_err fail = BERTH_EUNAVAILABLE;
	berth_cerr rc;
	berth_err e = BERTH_OK;

	char scope[BERTH_NAME_MAX + 32];
	snprintf(url, sizeof url, "/v2/%s/blobs/%s", f->remote, f->d.s);
	pull_scope(scope, sizeof scope, f->remote);
	upstream_req(m, &rq, "GET", url, scope, 0);
	rq.follow = 1; /* Docker Hub answers with its CDN's address */
	/* An upstream that accepts and never answers costs one timeout, as a tag check does; once
	 * bytes flow, only a stall of a minute ends the fetch (a slow link is not an outage). */
	rq.first_byte_timeout_ms = m->cfg->mirror_timeout_ms * 2;
	/* Big reads: a 16 KiB one costs a poll, a write, a hash update and a wake of every
	 * reader each. */
	rq.recv_buffer = 512 * 1024;
	rq.sink = fetch_sink;
	rq.sink_ud = f;
	rq.cancel = &f->cancel;
	rc = berth_client_do(m->client, prefix_of(m, f->up), &rq, &f->rs);
	if (f->sink_err == BERTH_ESIZE_INVALID) {
		snprintf(why, sizeof why, "upstream %s sent more bytes than its Content-Length",
			 prefix_of(m, f->up));
	} else if (f->sink_err) {
		snprintf(why, sizeof why, "cannot keep %s: %s", f->d.s,
			 f->cancel ? "the server is stopping" : berth_err_str(f->sink_err));
	} else if (rc || f->rs.status != 200) {
		char cause[320];
		describe(m->client, &f->rs, rc, cause, sizeof cause);
		if (!rc && f->rs.status == 404) {
			snprintf(why, sizeof why, "upstream %s has no blob %s", prefix_of(m, f->up),
				 f->d.s);
			fail = BERTH_EBLOB_UNKNOWN;
		} else {
			if (!f->cancel) trip(m, f->up, cause, f->rs.retry_after);
			snprintf(why, sizeof why, "upstream %s unavailable: %s", prefix_of(m, f->up),
				 cause);
		}
	} else if (!f->w && (e = staging_open(f))) { /* an empty blob: no byte came */
		snprintf(why, sizeof why, "cannot keep %s: %s", f->d.s, berth_err_str(e));
	}
	if (!why[0]) {
		e = berth_upload_writer_finish(f->w);
		size = berth_upload_writer_size(f->w);
		berth_upload_writer_close(f->w);
		f->w = NULL;
		if (!e && f->size >= 0 && size != f->size) {
			snprintf(why, sizeof why, "upstream %s sent %lld of %lld bytes of %s",
				 prefix_of(m, f->up), (long long)size, (long long)f->size, f->d.s);
		} else if (e) {
			snprintf(why, sizeof why, "cannot keep %s: %s", f->d.s, berth_err_str(e));
		} else {
			pthread_mutex_lock(&f->mu);
			f->size = size;
			pthread_mutex_unlock(&f->mu);
			/* Verified against its digest, then published and linked, or nothing. */
			e = berth_registry_upload_finish_verified(m->reg, f->local, f->upload_id,
								  &f->d, &size, fetch_verified, f);
			f->upload_id[0] = '\0'; /* finished or discarded: nothing to cancel */
			if (e == BERTH_EDIGEST_INVALID)
				snprintf(why, sizeof why,
					 "upstream %s sent bytes that do not match %s: nothing kept",
					 prefix_of(m, f->up), f->d.s);
			else if (e)
				snprintf(why, sizeof why, "cannot keep %s: %s", f->d.s,
					 berth_err_str(e));
		}
	}
	if (f->w) {
		berth_upload_writer_close(f->w);
		f->w = NULL;
	}
	if (why[0]) {
		if (f->upload_id[0]) {
			e = berth_registry_upload_cancel(m->reg, f->local, f->upload_id);
			(void)e; /* the start-up janitor removes what this can't */
		}
		berth_log(BERTH_LOG_WARN, "mirror: %s", why);
		fetch_end(f, BERTH_FETCH_FAILED, fail, why);
	} else {
		recovered(m, f->up);
		count(m, f->up, BERTH_MIRROR_MISS, size);
		fetch_end(f, BERTH_FETCH_DONE, BERTH_OK, NULL);
	}
	berth_resp_clear(&f->rs);
	fetch_unref(f);
	pthread_mutex_lock(&m->fmu);
	if (--m->threads == 0) pthread_cond_broadcast(&m->idle);
	pthread_mutex_unlock(&m->fmu);
	return NULL;
}

berth_err berth_mirror_blob_fetch(struct berth_mirror *m, const struct berth_mirror_route *rt,
				  const struct berth_digest *d, struct berth_fetch **out,
				  struct berth_mirror_answer *a)
{
	struct berth_fetch *f;
	pthread_attr_t at;
	pthread_t th;
	memset(a, 0, sizeof *a);
	a->source = BERTH_MIRROR_MISS;
	*out = NULL;
	pthread_mutex_lock(&m->fmu);
	/* Single flight: a second reader of a blob in flight follows the first fetch. */
	for (f = m->fetches; f; f = f->next)
		if (berth_digest_eq(&f->d, d) && strcmp(f->local, rt->local) == 0) {
			f->refs++;
			pthread_mutex_unlock(&m->fmu);
			*out = f;
			return BERTH_OK;
		}
	if (m->shutting) {
		pthread_mutex_unlock(&m->fmu);
		snprintf(a->why, sizeof a->why, "the server is stopping");
		return BERTH_EUNAVAILABLE;
	}
	pthread_mutex_unlock(&m->fmu);
	if (berth_mirror_down(m, rt->up)) {
		why_unavailable(m, rt->up, a);
		return BERTH_EUNAVAILABLE;
	}
	f = calloc(1, sizeof *f);
	if (!f) return BERTH_ENOMEM;
	f->m = m;
	f->refs = 2; /* the caller's and the thread's */
	f->up = rt->up;
	f->fd = -1;
	f->size = -1;
	f->d = *d;
	snprintf(f->local, sizeof f->local, "%s", rt->local);
	snprintf(f->remote, sizeof f->remote, "%s", rt->remote);
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_lock(&m->fmu);
	/* Another request may have started the same fetch meanwhile. */
	for (struct berth_fetch *g = m->fetches; g; g = g->next)
		if (berth_digest_eq(&g->d, d) && strcmp(g->local, rt->local) == 0) {
			g->refs++;
			pthread_mutex_unlock(&m->fmu);
			pthread_mutex_destroy(&f->mu);
			free(f);
			*out = g;
			return BERTH_OK;
		}
	f->next = m->fetches;
	m->fetches = f;
	m->threads++;
	pthread_mutex_unlock(&m->fmu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &at, fetch_main, f) != 0) {
		pthread_attr_destroy(&at);
		fetch_end(f, BERTH_FETCH_FAILED, BERTH_EUNAVAILABLE, "cannot start a fetch thread");
		pthread_mutex_lock(&m->fmu);
		m->threads--;
		pthread_mutex_unlock(&m->fmu);
		fetch_unref(f);
		*out = f;
		return BERTH_OK;
	}
	pthread_attr_destroy(&at);
	*out = f;
	return BERTH_OK;
}

int berth_fetch_watch(struct berth_fetch *f, int64_t seen, struct berth_fetch_view *v,
		      void (*wake)(void *ud), void *ud)
{
	int ready;
	struct waiter *w = NULL;
	pthread_mutex_lock(&f->mu);
	v->state = f->state;
	v->size = f->size;
	v->readable = f->readable;
	snprintf(v->why, sizeof v->why, "%s", f->why);
	v->err = f->err;
	if (f->state == BERTH_FETCH_DONE || f->state == BERTH_FETCH_FAILED) ready = 1;
	else if (seen < 0) ready = f->state == BERTH_FETCH_STREAMING && f->size >= 0;
	else ready = f->readable > seen;
	if (!ready && wake) {
		w = malloc(sizeof *w);
		if (w) {
			w->wake = wake;
			w->ud = ud;
			w->next = f->waiters;
			f->waiters = w;
		}
	}
	pthread_mutex_unlock(&f->mu);
	if (!ready && wake && !w) {
		/* Out of memory: report a failure rather than wait for a wake nobody sends. */
		v->state = BERTH_FETCH_FAILED;
		snprintf(v->why, sizeof v->why, "out of memory");
		return 0;
	}
	return !ready;
}

void berth_fetch_unwatch(struct berth_fetch *f, void *ud)
{
	pthread_mutex_lock(&f->mu);
	for (struct waiter **p = &f->waiters; *p;)
		if ((*p)->ud == ud) {
			struct waiter *w = *p;
			*p = w->next;
			free(w);
		} else {
			p = &(*p)->next;
		}
	pthread_mutex_unlock(&f->mu);
}

int berth_fetch_fd(struct berth_fetch *f)
{
	int fd;
	pthread_mutex_lock(&f->mu);
	fd = f->fd >= 0 ? dup(f->fd) : -1;
	pthread_mutex_unlock(&f->mu);
	return fd;
}

struct waitctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int woken;
};

static void wait_wake(void *ud)
{
	struct waitctx *w = ud;
	pthread_mutex_lock(&w->mu);
	w->woken = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void berth_fetch_wait(struct berth_fetch *f, struct berth_fetch_view *v)
{
	struct waitctx w = {.woken = 0};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	for (;;) {
		int64_t seen;
		(void)berth_fetch_watch(f, -1, v, NULL, NULL);
		if (v->state == BERTH_FETCH_DONE || v->state == BERTH_FETCH_FAILED) break;
		/* Wake on any progress; a final state is what ends the wait. */
		seen = v->state == BERTH_FETCH_STREAMING ? v->readable : -1;
		w.woken = 0;
		if (!berth_fetch_watch(f, seen, v, wait_wake, &w)) continue;
		pthread_mutex_lock(&w.mu);
		while (!w.woken) pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
}

/* ---- prefetch ---- */

static void sync_fail(struct berth_mirror_sync_stats *st, const char *what, const char *why)
{
	st->failed++;
	if (!st->why[0]) snprintf(st->why, sizeof st->why, "%.100s: %.250s", what, why);
}

/* 1 when the index entry e (JSON) is for platform ("os/arch[/variant]"; NULL: any). */
static int platform_ok(json_t *e, const char *platform)
{
	char have[128];
	json_t *p = json_object_get(e, "platform");
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	const char *var = json_string_value(json_object_get(p, "variant"));
	if (!platform) return 1;
	if (!os || !arch) return 0;
	snprintf(have, sizeof have, "%s/%s", os, arch);
	if (strcmp(have, platform) == 0) return 1;
	if (!var) return 0;
	snprintf(have, sizeof have, "%s/%s/%s", os, arch, var);
	return strcmp(have, platform) == 0;
}

static void sync_blob(struct berth_mirror *m, const struct berth_mirror_route *rt,
		      const struct berth_digest *d, struct berth_mirror_sync_stats *st)
{
	struct berth_mirror_answer a;
	struct berth_fetch_view v;
	struct berth_fetch *f = NULL;
	int64_t size;
	if (berth_registry_blob_stat(m->reg, rt->local, d, &size) == BERTH_OK ||
	    berth_registry_blob_mount(m->reg, rt->local, d, NULL) == BERTH_OK)
		return;
	if (berth_mirror_blob_fetch(m, rt, d, &f, &a)) {
		sync_fail(st, d->s, a.why);
		return;
	}
	berth_fetch_wait(f, &v);
	if (v.state == BERTH_FETCH_DONE) {
		st->blobs++;
		st->bytes += v.size;
	} else {
		sync_fail(st, d->s, v.why);
	}
	berth_fetch_release(f);
}

/* Caches manifest ref of rt and what it needs; depth bounds an index of indexes. */
static void sync_manifest(struct berth_mirror *m, const struct berth_mirror_route *rt,
			  const char *ref, const char *platform, int depth,
			  struct berth_mirror_sync_stats *st)
{
	struct berth_mirror_answer a;
	struct berth_registry_manifest mo;
	struct berth_manifest *mf = NULL;
	json_t *doc = NULL;
	berth_err e = berth_mirror_manifest(m, rt, ref, &a);
	if (e) {
		sync_fail(st, ref, a.why[0] ? a.why : berth_err_str(e));
		return;
	}
	if (a.source == BERTH_MIRROR_STALE) {
		sync_fail(st, ref, a.warning);
		return;
	}
	if (berth_registry_manifest_get(m->reg, rt->local, ref, 1, &mo)) {
		sync_fail(st, ref, "not in the cache after its fetch");
		return;
	}
	st->manifests++;
	if (berth_manifest_parse(mo.media_type, mo.content, mo.len, &mf)) {
		sync_fail(st, ref, "the upstream's manifest is not one berth reads");
		goto out;
	}
	if (mf->kind == BERTH_MANIFEST_INDEX) {
		json_t *e2;
		size_t i;
		doc = json_loadb(mo.content, mo.len, 0, NULL);
		json_array_foreach(json_object_get(doc, "manifests"), i, e2) {
			const char *cd = json_string_value(json_object_get(e2, "digest"));
			if (!cd || !platform_ok(e2, platform) || depth > 2) continue;
			sync_manifest(m, rt, cd, platform, depth + 1, st);
		}
	} else {
		for (size_t i = 0; i < mf->n_refs; i++) sync_blob(m, rt, &mf->refs[i].digest, st);
	}
out:
	json_decref(doc);
	berth_manifest_free(mf);
	berth_registry_manifest_clear(&mo);
}

berth_err berth_mirror_sync(struct berth_mirror *m, const char *repo, const char *semver,
			    const char *platform, struct berth_mirror_sync_stats *st)
{
	struct berth_mirror_route rt;
	struct berth_semver_range range;
	char url[BERTH_CLIENT_URL_MAX], scope[BERTH_NAME_MAX + 32];
	json_t *tags = json_array();
	berth_err e = BERTH_OK;

	memset(st, 0, sizeof *st);
	if (!tags) return BERTH_ENOMEM;
	if (!berth_mirror_route(m, repo, NULL, 0, &rt) || strcmp(rt.local, repo) != 0) {
		snprintf(st->why, sizeof st->why,
			 "%s is not a mirrored repository (name it with its upstream's prefix, "
			 "e.g. docker.io/library/alpine)", repo);
		json_decref(tags);
		return BERTH_EINVAL;
	}
	if (semver && berth_semver_range_parse(semver, strlen(semver), &range)) {
		snprintf(st->why, sizeof st->why, "%.64s is not a version constraint", semver);
		json_decref(tags);
		return BERTH_EINVAL;
	}
	/* The upstream's tag list, page by page (Link: rel="next"). */
	snprintf(url, sizeof url, "/v2/%s/tags/list?n=1000", rt.remote);
	pull_scope(scope, sizeof scope, rt.remote);
	for (int page = 0; page < 1000 && url[0]; page++) {
		struct berth_req rq;
		struct berth_resp rs;
		json_t *doc, *t;
		size_t i;
		berth_cerr rc;
		char next[BERTH_CLIENT_URL_MAX];
		upstream_req(m, &rq, "GET", url, scope, 60000);
		rq.accept = "application/json";
		rq.max_body = 8u << 20;
		rc = berth_client_do(m->client, prefix_of(m, rt.up), &rq, &rs);
		if (rc || rs.status != 200) {
			char cause[320];
			describe(m->client, &rs, rc, cause, sizeof cause);
			snprintf(st->why, sizeof st->why, "upstream %.40s: tags of %.80s: %.200s",
				 prefix_of(m, rt.up), rt.remote, cause);
			berth_resp_clear(&rs);
			e = BERTH_EUNAVAILABLE;
			break;
		}
		doc = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
		json_array_foreach(json_object_get(doc, "tags"), i, t)
			if (json_is_string(t)) json_array_append(tags, t);
		json_decref(doc);
		url[0] = '\0';
		if (rs.link[0] && berth_link_next(rs.link, strlen(rs.link), next, sizeof next) == 1)
			snprintf(url, sizeof url, "%s", next);
		berth_resp_clear(&rs);
	}
	if (!e) {
		json_t *t;
		size_t i;
		json_array_foreach(tags, i, t) {
			const char *tag = json_string_value(t);
			struct berth_semver v;
			if (semver && (!berth_semver_parse(tag, strlen(tag), &v) ||
				       !berth_semver_range_match(&range, &v)))
				continue;
			if (m->shutting) break;
			st->tags++;
			sync_manifest(m, &rt, tag, platform, 0, st);
		}
		berth_log(BERTH_LOG_INFO,
			  "mirror: sync %s%s%s: %zu tags, %zu manifests, %zu blobs (%lld bytes) "
			  "fetched, %zu failed%s%s",
			  repo, semver ? " " : "", semver ? semver : "", st->tags, st->manifests,
			  st->blobs, (long long)st->bytes, st->failed, st->why[0] ? ": " : "",
			  st->why);
	}
	json_decref(tags);
	return e;
}

/* Runs each berth.mirror.sync entry every interval, the first time shortly after start. */
static void *scheduler_main(void *arg)
{
	struct berth_mirror *m = arg;
	size_t n = m->cfg->nmirror_syncs;
	int64_t *next = calloc(n, sizeof *next);
	if (!next) return NULL;
	for (size_t i = 0; i < n; i++) next[i] = berth_mono_ms() + SYNC_FIRST_DELAY_MS;
	pthread_mutex_lock(&m->fmu);
	while (!m->shutting) {
		int64_t now = berth_mono_ms(), soonest = INT64_MAX;
		size_t due = n;
		for (size_t i = 0; i < n; i++) {
			if (next[i] <= now && due == n) due = i;
			if (next[i] < soonest) soonest = next[i];
		}
		if (due < n) {
			const struct berth_mirror_sync *sy = &m->cfg->mirror_syncs[due];
			struct berth_mirror_sync_stats st;
			pthread_mutex_unlock(&m->fmu);
			if (berth_mirror_sync(m, sy->repo, sy->semver, sy->platform, &st))
				berth_log(BERTH_LOG_WARN, "mirror: scheduled sync of %s: %s", sy->repo,
					  st.why);
			next[due] = berth_mono_ms() + (int64_t)sy->interval * 1000;
			pthread_mutex_lock(&m->fmu);
			continue;
		}
		struct timespec until = {.tv_sec = (time_t)(soonest / 1000),
					 .tv_nsec = (long)(soonest % 1000) * 1000000L};
		(void)pthread_cond_timedwait(&m->sched_wake, &m->fmu, &until);
	}
	pthread_mutex_unlock(&m->fmu);
	free(next);
	return NULL;
}

/* ---- status ---- */

json_t *berth_mirror_status(struct berth_mirror *m)
{
	json_t *root = json_object(), *arr = json_array();
	if (!root || !arr) {
		json_decref(root);
		json_decref(arr);
		return NULL;
	}
	json_object_set_new(root, "upstreams", arr);
	for (size_t i = 0; i < m->n; i++) {
		struct upstream *u = &m->ups[i];
		int64_t now = berth_mono_ms();
		json_t *o;
		pthread_mutex_lock(&u->mu);
		o = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "prefix", u->cfg->prefix,
			      "url", u->cfg->url, "default", u->cfg->is_default, "up",
			      !(u->down_until && now < u->down_until), "down_for_seconds",
			      (json_int_t)(u->down_until && now < u->down_until
						   ? (u->down_until - now + 999) / 1000
						   : 0),
			      "hits", (json_int_t)u->hits, "misses", (json_int_t)u->misses, "stale",
			      (json_int_t)u->stale, "errors", (json_int_t)u->errors, "bytes_fetched",
			      (json_int_t)u->bytes_fetched, "bytes_served_from_cache",
			      (json_int_t)u->bytes_served);
		if (o && u->last_error[0]) {
			char when[32];
			struct tm tm;
			gmtime_r(&u->last_error_at, &tm);
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
			json_object_set_new(o, "last_error", json_string(u->last_error));
			json_object_set_new(o, "last_error_at", json_string(when));
		}
		pthread_mutex_unlock(&u->mu);
		if (o) json_array_append_new(arr, o);
	}
	return root;
}

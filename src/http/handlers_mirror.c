/* handlers_mirror.c — the HTTP side of the pull-through mirror: which requests it takes, the
 * manifest check run off the event loop while the connection is parked, and blobs streamed to
 * their readers from a fetch in flight (a reader that catches up with the fetch parks until
 * more bytes are stored). What is cached is served by the ordinary handlers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "http.h"
#include "range.h"

/* ---- routing ---- */

void berth_http_mirror_route(struct req *q)
{
	struct berth_mirror_route rt;
	int write = strcmp(q->method, "GET") != 0 && strcmp(q->method, "HEAD") != 0;
	int push = write && strcmp(q->method, "DELETE") != 0;
	const char *ns = req_query(q, "ns");
	int mirrored;
	if (q->route.kind == BERTH_ROUTE_BASE || q->route.kind == BERTH_ROUTE_CATALOG) return;
	mirrored = berth_mirror_route(req_mirror(q), q->route.name, ns, write, &rt);
	if (mirrored < 0) {
		q->err = BERTH_ENAME_UNKNOWN;
		q->err_detail = "this registry mirrors no registry of that ?ns= name";
		return;
	}
	if (!mirrored) return;
	if (push) {
		q->err = BERTH_EUNSUPPORTED;
		q->err_detail = "this repository is a mirror of an upstream registry: pushes are "
				"refused";
		return;
	}
	q->mrt = malloc(sizeof *q->mrt);
	if (!q->mrt) {
		q->err = BERTH_ENOMEM;
		return;
	}
	*q->mrt = rt;
	/* Every later step (access rules, the response cache, the store) sees the cache's name. */
	snprintf(q->route.name, sizeof q->route.name, "%s", rt.local);
}

void berth_http_mirror_free(struct req *q)
{
	if (q->fetch) {
		berth_fetch_unwatch(q->fetch, q);
		berth_fetch_release(q->fetch);
		q->fetch = NULL;
	}
	free(q->mrt);
	q->mrt = NULL;
	free(q->msync);
	q->msync = NULL;
}

/* ---- manifests: the upstream is asked on a thread of its own ---- */

static void manifest_job(void *arg)
{
	struct req *q = arg;
	q->merr = berth_mirror_manifest(req_mirror(q), q->mrt, q->route.ref, &q->mans);
	q->mstate = 2;
	req_resume(q);
}

static enum MHD_Result mirror_error(struct req *q, berth_err e, const char *why)
{
	/* The error body names the upstream and the cause. */
	return req_error(q, e, why && why[0] ? why : NULL);
}

int berth_http_mirror_manifest(struct req *q, enum MHD_Result *ret)
{
	struct berth_mirror *m = req_mirror(q);
	if (!q->mrt) return 0;
	if (q->mstate == 1) {
		*ret = MHD_YES; /* a spurious call while parked */
		return 1;
	}
	if (q->mstate == 0) {
		/* A cached digest is served as it is; a marked-down upstream is not asked, so the
		 * answer comes without a thread. */
		int by_digest = strchr(q->route.ref, ':') != NULL;
		struct berth_registry_manifest mo;
		if (by_digest &&
		    berth_registry_manifest_get(q->reg, q->route.name, q->route.ref, 0, &mo) ==
			    BERTH_OK) {
			berth_registry_manifest_clear(&mo);
			q->msource = BERTH_MIRROR_HIT;
			berth_mirror_count_served(m, q->mrt->up, 0, BERTH_MIRROR_HIT);
			return 0;
		}
		if (berth_mirror_down(m, q->mrt->up)) {
			q->merr = berth_mirror_manifest(m, q->mrt, q->route.ref, &q->mans);
			q->mstate = 2;
		} else {
			q->mstate = 1;
			req_suspend(q);
			if (req_offload(q, manifest_job) != BERTH_OK) {
				req_resume(q);
				q->merr = berth_mirror_manifest(m, q->mrt, q->route.ref, &q->mans);
				q->mstate = 2;
			} else {
				*ret = MHD_YES;
				return 1;
			}
		}
	}
	q->msource = q->mans.source;
	if (q->merr) {
		*ret = mirror_error(q, q->merr, q->mans.why);
		return 1;
	}
	return 0;
}

/* ---- blobs: readers follow a fetch ---- */

static void wake_req(void *ud)
{
	berth_log(BERTH_LOG_DEBUG, "mirror: wake %p", ud);
	req_resume(ud);
}

/* Parks q until the fetch moves past `seen` (or, seen < 0, knows its size). Returns 1 when it
 * parked, 0 when there was no need (the caller looks again). */
static int park(struct req *q, struct berth_fetch *f, int64_t seen)
{
	struct berth_fetch_view v;
	if (!berth_fetch_watch(f, seen, &v, NULL, NULL)) return 0;
	/* Parked before the wake is registered: a wake that comes at once finds q suspended. */
	req_suspend(q);
	if (!berth_fetch_watch(f, seen, &v, wake_req, q)) {
		berth_log(BERTH_LOG_DEBUG, "mirror: park %p at %lld: ready at once", (void *)q,
			  (long long)seen);
		req_resume(q);
	} else {
		berth_log(BERTH_LOG_DEBUG, "mirror: park %p at %lld (state %d readable %lld)",
			  (void *)q, (long long)seen, v.state, (long long)v.readable);
	}
	return 1;
}

/* A response's view of a fetch: it owns a reference and a descriptor of the bytes. */
struct tee {
	struct req *q;           /* valid while the response is being sent */
	struct berth_fetch *f;
	int fd;
	int64_t start;           /* first byte of the blob this response sends */
};

static ssize_t tee_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct tee *t = cls;
	struct berth_fetch_view v;
	int64_t off = t->start + (int64_t)pos, avail;
	ssize_t n;
	(void)berth_fetch_watch(t->f, off, &v, NULL, NULL);
	if (v.state == BERTH_FETCH_FAILED) {
		berth_log(BERTH_LOG_WARN, "mirror: cutting a reader off: %s", v.why);
		req_cut(t->q);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	avail = v.state == BERTH_FETCH_DONE ? v.size : v.readable;
	if (off >= avail) {
		/* Caught up with the upstream: wait for more. libmicrohttpd calls again once the
		 * connection is resumed; returning 0 without parking would spin. */
		if (!park(t->q, t->f, off)) return 0;
		return 0;
	}
	if ((int64_t)max > avail - off) max = (size_t)(avail - off);
	n = pread(t->fd, buf, max, (off_t)off);
	if (n <= 0) {
		req_cut(t->q);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	t->q->bytes_out += n;
	return n;
}

static void tee_free(void *cls)
{
	struct tee *t = cls;
	berth_fetch_unwatch(t->f, t->q);
	berth_fetch_release(t->f);
	if (t->fd >= 0) close(t->fd);
	free(t);
}


/* The answer from a fetch whose size is known. */
static enum MHD_Result tee_answer(struct req *q, const struct berth_digest *d, int64_t size)
{
	struct MHD_Response *r;
	struct tee *t;
	const char *range = req_header(q, MHD_HTTP_HEADER_RANGE);
	int64_t start = 0, end = size - 1;
	int partial = 0;
	char cr[96];
	if (q->is_head) {
		r = resp_head((uint64_t)size);
		resp_blob_headers(r, d);
		return req_queue(q, 200, r);
	}
	if (range && size > 0) {
		berth_err e = berth_range_parse_range(range, strlen(range), size, &start, &end);
		if (e == BERTH_ERANGE) {
			r = resp_empty();
			snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
			resp_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
			return req_queue(q, 416, r);
		}
		partial = e == BERTH_OK;
		if (!partial) {
			start = 0;
			end = size - 1;
		}
	}
	t = calloc(1, sizeof *t);
	if (!t) return MHD_NO;
	t->q = q;
	t->f = q->fetch;
	t->start = start;
	t->fd = berth_fetch_fd(q->fetch);
	if (t->fd < 0) {
		free(t);
		return req_error(q, BERTH_EIO, "cannot read the blob being fetched");
	}
	r = MHD_create_response_from_callback((uint64_t)(end - start + 1), 256 * 1024, tee_read, t,
					      tee_free);
	if (!r) {
		close(t->fd);
		free(t);
		return MHD_NO;
	}
	q->fetch = NULL; /* the response holds the reference now */
	resp_blob_headers(r, d);
	if (partial) {
		snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)start, (long long)end,
			 (long long)size);
		resp_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	return req_queue(q, partial ? 206 : 200, r);
}

int berth_http_mirror_blob(struct req *q, const struct berth_digest *d, enum MHD_Result *ret)
{
	struct berth_mirror *m = req_mirror(q);
	struct berth_fetch_view v;
	int64_t size;
	berth_err e;
	if (!q->mrt) return 0;
	if (!q->fetch) {
		/* Cached here, or in another repository of this registry (a shared base layer):
		 * served as any blob. */
		if (berth_registry_blob_stat(q->reg, q->route.name, d, &size) == BERTH_OK ||
		    berth_registry_blob_mount(q->reg, q->route.name, d, NULL) == BERTH_OK) {
			q->msource = BERTH_MIRROR_HIT;
			if (berth_registry_blob_stat(q->reg, q->route.name, d, &size) == BERTH_OK)
				berth_mirror_count_served(m, q->mrt->up, q->is_head ? 0 : size,
							  BERTH_MIRROR_HIT);
			return 0;
		}
		e = berth_mirror_blob_fetch(m, q->mrt, d, &q->fetch, &q->mans);
		q->msource = BERTH_MIRROR_MISS;
		if (e) {
			*ret = mirror_error(q, e, q->mans.why);
			return 1;
		}
	}
	if (park(q, q->fetch, -1)) {
		*ret = MHD_YES;
		return 1;
	}
	(void)berth_fetch_watch(q->fetch, -1, &v, NULL, NULL);
	switch (v.state) {
	case BERTH_FETCH_FAILED:
		*ret = mirror_error(q, v.err ? v.err : BERTH_EUNAVAILABLE, v.why);
		return 1;
	case BERTH_FETCH_DONE:
		/* Stored and linked: the ordinary path serves it (zero copy, ranges). */
		berth_fetch_release(q->fetch);
		q->fetch = NULL;
		return 0;
	default:
		*ret = tee_answer(q, d, v.size);
		return 1;
	}
}

/* ---- prefetch on demand ---- */

static const char *sync_platform(struct req *q)
{
	const char *p = req_query(q, "platform");
	return p && *p && strcmp(p, "all") != 0 ? p : NULL;
}

static void sync_job(void *arg)
{
	struct req *q = arg;
	const char *semver = req_query(q, "semver");
	q->merr = berth_mirror_sync(req_mirror(q), q->route.name, semver && *semver ? semver : NULL,
				    sync_platform(q), q->msync);
	q->mstate = 2;
	req_resume(q);
}

enum MHD_Result berth_http_mirror_sync(struct req *q)
{
	struct berth_mirror_sync_stats *st;
	json_t *doc;
	if (!req_mirror(q)) return req_error(q, BERTH_ENOTFOUND, "no mirror is configured");
	if (q->mstate == 1) return MHD_YES;
	if (q->mstate == 0) {
		q->msync = calloc(1, sizeof *q->msync);
		if (!q->msync) return req_error(q, BERTH_ENOMEM, NULL);
		q->mstate = 1;
		req_suspend(q);
		if (req_offload(q, sync_job) != BERTH_OK) {
			req_resume(q);
			q->mstate = 0;
			return req_error(q, BERTH_ENOMEM, "cannot start the sync");
		}
		return MHD_YES;
	}
	st = q->msync;
	if (q->merr)
		return req_error(q, q->merr == BERTH_EINVAL ? BERTH_EINVAL : q->merr, st->why);
	doc = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "repository", q->route.name, "tags",
			(json_int_t)st->tags, "manifests", (json_int_t)st->manifests, "blobs",
			(json_int_t)st->blobs, "bytes", (json_int_t)st->bytes, "failed",
			(json_int_t)st->failed);
	return berth_http_reply_json(q, doc, NULL);
}

/* mirror.h — the pull-through mirror: which repositories come from which upstream registry,
 * keeping their manifests and blobs in the local store as they are pulled, and serving what is
 * cached when the upstream is down, slow, rate-limiting or has deleted a tag. It knows no
 * HTTP server: the handlers call it off their event loop (its calls that talk to an upstream
 * block) and serve what it stored through the registry like any other content. Upstream
 * credentials and tokens never reach a log. */
#ifndef BERTH_MIRROR_H
#define BERTH_MIRROR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/digest.h"
#include "../core/err.h"
#include "../core/limits.h"
#include "../core/registry.h"

struct berth_mirror;

/* Takes the upstreams from cfg (borrowed: it must outlive the mirror). *out is NULL when no
 * upstream is configured. */
berth_err berth_mirror_new(const struct berth_config *cfg, struct berth_registry *reg,
			   struct berth_mirror **out) BERTH_MUST_CHECK;
/* Cancels fetches in flight (their readers see the transfer fail) and waits for its threads. */
void berth_mirror_free(struct berth_mirror *m);
/* Cancels fetches in flight and refuses new ones (a stopping server). */
void berth_mirror_shutdown(struct berth_mirror *m);

/* Where a repository of a request comes from. */
struct berth_mirror_route {
	int up;                            /* upstream index */
	char local[BERTH_NAME_MAX + 1];    /* the cache's repository: "docker.io/library/alpine" */
	char remote[BERTH_NAME_MAX + 1];   /* the name at the upstream: "library/alpine" */
};

/* 1 when name (the request's repository; ns: containerd's ?ns= value or NULL) is mirrored, with
 * *rt filled; 0 when it is a repository of this registry; -1 when ns names a registry no
 * upstream serves (nothing here answers for it). An un-prefixed name read goes to the
 * default upstream unless a repository of that name was pushed here; a write (for_write) to an
 * un-prefixed name is always this registry's. */
int berth_mirror_route(struct berth_mirror *m, const char *name, const char *ns, int for_write,
		       struct berth_mirror_route *rt);
/* The prefix of upstream up ("docker.io"). */
const char *berth_mirror_prefix(const struct berth_mirror *m, int up);
/* 1 while upstream up is marked down by the circuit breaker. */
int berth_mirror_down(struct berth_mirror *m, int up);

/* How a request was answered, for the access log and the status. */
enum berth_mirror_source {
	BERTH_MIRROR_HIT = 1, /* from the cache, the upstream agreeing (or not asked: by digest) */
	BERTH_MIRROR_MISS,    /* fetched from the upstream */
	BERTH_MIRROR_STALE,   /* from the cache, the upstream unavailable or the tag gone there */
};
const char *berth_mirror_source_name(enum berth_mirror_source s);

struct berth_mirror_answer {
	enum berth_mirror_source source;
	char warning[128]; /* the Warning header's text when stale, "" otherwise */
	char why[384];     /* on error: which upstream failed and how */
};

/* Makes manifest ref (a tag or a digest) of rt present and current in rt->local: a tag is
 * checked with a HEAD (one timeout at most) and fetched when the upstream moved it; a cached
 * digest is never asked for. BERTH_OK: serve rt->local's copy. BERTH_EMANIFEST_UNKNOWN: the
 * upstream has no such manifest and nothing is cached. BERTH_EUNAVAILABLE: the upstream could
 * not answer and nothing is cached (a->why says why). Blocks on the network unless the
 * upstream is marked down. */
berth_err berth_mirror_manifest(struct berth_mirror *m, const struct berth_mirror_route *rt,
				const char *ref, struct berth_mirror_answer *a) BERTH_MUST_CHECK;

/* ---- blobs: one fetch per digest, streamed to every reader while it is stored ---- */
struct berth_fetch;

enum berth_fetch_state {
	BERTH_FETCH_STARTING = 0, /* asking the upstream */
	BERTH_FETCH_STREAMING,    /* size known, bytes arriving */
	BERTH_FETCH_DONE,         /* verified, published in the store */
	BERTH_FETCH_FAILED,       /* nothing kept; why says what went wrong */
};

struct berth_fetch_view {
	enum berth_fetch_state state;
	int64_t size;      /* -1 until known */
	int64_t readable;  /* bytes a reader may take from the staged file now: never the last
			      one before the digest is verified, so a bad blob is never whole */
	berth_err err;     /* FAILED: BERTH_EBLOB_UNKNOWN or BERTH_EUNAVAILABLE */
	char why[256];
};

/* Joins the fetch of d for rt (starting it when none is in flight). BERTH_EUNAVAILABLE when the
 * upstream is marked down (a->why). The caller holds a reference: berth_fetch_release. */
berth_err berth_mirror_blob_fetch(struct berth_mirror *m, const struct berth_mirror_route *rt,
				  const struct berth_digest *d, struct berth_fetch **f,
				  struct berth_mirror_answer *a) BERTH_MUST_CHECK;
/* The fetch's state. When it is neither final nor beyond `seen` readable bytes (nor, with
 * seen < 0, has a size), registers wake(ud) (unless wake is NULL: a peek), called once from
 * another thread on the next change, and returns 1; 0 otherwise (act on *v). */
int berth_fetch_watch(struct berth_fetch *f, int64_t seen, struct berth_fetch_view *v,
		      void (*wake)(void *ud), void *ud);
/* Takes back a wake registered for ud that has not fired (a reader going away). */
void berth_fetch_unwatch(struct berth_fetch *f, void *ud);
/* A read-only descriptor of the bytes (the staged file, then the blob); -1 on failure. Valid
 * once the state is STREAMING or DONE. The caller closes it. */
int berth_fetch_fd(struct berth_fetch *f);
void berth_fetch_release(struct berth_fetch *f);

/* Blocks until the fetch is DONE or FAILED; returns its final view. */
void berth_fetch_wait(struct berth_fetch *f, struct berth_fetch_view *v);

/* ---- prefetch ---- */
struct berth_mirror_sync_stats {
	size_t tags, manifests, blobs, failed;
	int64_t bytes;        /* fetched from the upstream by this run */
	char why[384];        /* the first failure, "" when none */
};
/* Caches every tag of the mirrored repository repo ("docker.io/library/alpine") that satisfies
 * semver (a constraint, NULL: every tag; tags that are not versions are skipped then), with
 * every manifest and blob they need; platform ("linux/amd64", NULL: all) picks the images of an
 * index. Blocks until done. BERTH_EINVAL: repo is not mirrored or semver is malformed (st->why);
 * BERTH_EUNAVAILABLE: the upstream's tag list could not be read. Failures of single tags are
 * counted in st->failed and do not stop the run. */
berth_err berth_mirror_sync(struct berth_mirror *m, const char *repo, const char *semver,
			    const char *platform, struct berth_mirror_sync_stats *st) BERTH_MUST_CHECK;

/* Counts bytes served from the cache for upstream up (status). */
void berth_mirror_count_served(struct berth_mirror *m, int up, int64_t bytes,
			       enum berth_mirror_source s);

/* The status document (GET /berth/v1/mirror); the caller owns it (json_decref); NULL on
 * ENOMEM. */
json_t *berth_mirror_status(struct berth_mirror *m);

#endif

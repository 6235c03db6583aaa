/* cache.h — reusable responses for the hottest reads (manifest GET/HEAD, blob HEAD). A
 * libmicrohttpd response is reference-counted and can be queued many times, so a cached entry
 * costs no allocation per request. Entries carry the registry's generation (bumped on every
 * change a cached answer could depend on) and are ignored once it moves on. */
#ifndef BERTH_CACHE_H
#define BERTH_CACHE_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct berth_rcache;

/* slots: entries kept at most (rounded up to a power of two); max_body: largest body cached;
 * max_bytes: what all entries may cost together (bodies, keys, response objects). A key is
 * cached on its second miss; the first only marks it. */
struct berth_rcache *berth_rcache_new(size_t slots, size_t max_body, size_t max_bytes);
void berth_rcache_free(struct berth_rcache *c);

/* Writes the key for (kind, repository, reference) into buf; returns its length, 0 when it
 * doesn't fit (then don't cache). */
size_t berth_rcache_key(char *buf, size_t len, char kind, const char *repo, const char *ref);

/* Queues the cached response for key on conn when present and of generation gen. Returns 1
 * and sets *ret and *status when it did, 0 on a miss. */
int berth_rcache_queue(struct berth_rcache *c, const char *key, size_t klen, uint64_t gen,
		       struct MHD_Connection *conn, enum MHD_Result *ret, unsigned *status);

/* Stores resp under key. Ownership of the caller's reference moves to the cache (the caller
 * must not destroy it); when it isn't kept (first miss, too big, stale) it is destroyed here. */
void berth_rcache_put(struct berth_rcache *c, const char *key, size_t klen, uint64_t gen,
		      unsigned status, struct MHD_Response *resp, size_t body_len);

/* The bytes the cached entries are accounted at (never above max_bytes). */
size_t berth_rcache_bytes(struct berth_rcache *c);

#endif

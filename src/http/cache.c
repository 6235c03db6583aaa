/* cache.c — a fixed-size, direct-mapped table: a new entry evicts whatever shared its slot. No
 * LRU bookkeeping on the hot path; hot keys stay because they are re-inserted on a miss. The
 * lock is held across MHD_queue_response so an entry can't be destroyed between lookup and
 * queueing (libmicrohttpd takes its own reference when queueing).
 *
 * Memory is bounded by bytes, not only by slots (a slot may hold a 64 KiB manifest), and spent
 * on keys that come back: a key is admitted on its second miss. The first one only leaves a
 * mark (its hash) in a small table, so one-off reads — a client checking each blob it just
 * pushed — cost 8 bytes instead of a response with its headers. Entries of an older
 * generation can never be served again and are freed as soon as a newer one is seen. */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 600
/* What one cached response costs besides its body and key: libmicrohttpd's response object
 * and its ~6 headers (a struct and two strings each), with malloc's overhead. Measured with
 * heaptrack at ~0.7 KiB for a blob HEAD response; rounded up. */
#define ENTRY_OVERHEAD 1024
/* Marks per slot: a mark is only a hash, and a bigger table remembers first misses longer. */
#define MARKS_PER_SLOT 4

struct entry {
	uint64_t gen;
	uint64_t hash;
	struct MHD_Response *resp; /* NULL: free slot */
	char *key;                 /* exact-size copy, owned */
	size_t klen, cost;
	unsigned status;
};

struct berth_rcache {
	pthread_mutex_t lock;
	size_t mask, mark_mask;
	size_t max_body, max_bytes, bytes;
	size_t hand;     /* next slot the byte bound evicts (clock order) */
	uint64_t gen;    /* newest generation seen */
	struct entry *slots;
	uint64_t *marks; /* hashes of keys missed once and not admitted yet; 0 = none */
};

static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h | 1; /* never 0, the empty mark */
}

struct berth_rcache *berth_rcache_new(size_t slots, size_t max_body, size_t max_bytes)
{
	struct berth_rcache *c = calloc(1, sizeof *c);
	size_t n = 1;
	if (!c) return NULL;
	while (n < slots) n <<= 1;
	c->slots = calloc(n, sizeof *c->slots);
	c->marks = calloc(n * MARKS_PER_SLOT, sizeof *c->marks);
	if (!c->slots || !c->marks) {
		free(c->slots);
		free(c->marks);
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->mark_mask = n * MARKS_PER_SLOT - 1;
	c->max_body = max_body;
	c->max_bytes = max_bytes;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

/* Empties e; returns its response for the caller to destroy (after unlocking, when it can). */
static struct MHD_Response *take(struct berth_rcache *c, struct entry *e)
{
	struct MHD_Response *r = e->resp;
	c->bytes -= e->cost;
	free(e->key);
	memset(e, 0, sizeof *e);
	return r;
}

void berth_rcache_free(struct berth_rcache *c)
{
	if (!c) return;
	for (size_t i = 0; i <= c->mask; i++)
		if (c->slots[i].resp) MHD_destroy_response(take(c, &c->slots[i]));
	pthread_mutex_destroy(&c->lock);
	free(c->marks);
	free(c->slots);
	free(c);
}

size_t berth_rcache_key(char *buf, size_t len, char kind, const char *repo, const char *ref)
{
	/* The NUL separates a repository from a reference: neither can contain one. */
	int n = snprintf(buf, len, "%c%s%c%s", kind, repo, '\0', ref);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

int berth_rcache_queue(struct berth_rcache *c, const char *key, size_t klen, uint64_t gen,
		       struct MHD_Connection *conn, enum MHD_Result *ret, unsigned *status)
{
	uint64_t h;
	struct entry *e;
	struct MHD_Response *stale = NULL;
	int hit = 0;
	if (!c || klen > KEY_MAX) return 0;
	h = hash_key(key, klen);
	pthread_mutex_lock(&c->lock);
	e = &c->slots[h & c->mask];
	if (e->resp && e->gen < gen) {
		stale = take(c, e);
	} else if (e->resp && e->hash == h && e->gen == gen && e->klen == klen &&
		   memcmp(e->key, key, klen) == 0) {
		*status = e->status;
		*ret = MHD_queue_response(conn, e->status, e->resp);
		hit = 1;
	}
	pthread_mutex_unlock(&c->lock);
	if (stale) MHD_destroy_response(stale);
	return hit;
}

void berth_rcache_put(struct berth_rcache *c, const char *key, size_t klen, uint64_t gen,
		      unsigned status, struct MHD_Response *resp, size_t body_len)
{
	uint64_t h;
	uint64_t *mark;
	struct entry *e;
	struct MHD_Response *old = NULL;
	char *copy = NULL;
	size_t cost = body_len + klen + ENTRY_OVERHEAD;
	if (!c || klen > KEY_MAX || body_len > c->max_body || cost > c->max_bytes) {
		MHD_destroy_response(resp);
		return;
	}
	h = hash_key(key, klen);
	pthread_mutex_lock(&c->lock);
	if (gen > c->gen) {
		/* Everything cached so far answers for an older state of the registry. */
		c->gen = gen;
		for (size_t i = 0; i <= c->mask; i++)
			if (c->slots[i].resp && c->slots[i].gen < gen)
				MHD_destroy_response(take(c, &c->slots[i]));
	}
	mark = &c->marks[h & c->mark_mask];
	if (gen < c->gen || *mark != h) {
		/* Stale on arrival, or a first miss: remember the key, keep no response. */
		if (gen == c->gen) *mark = h;
		pthread_mutex_unlock(&c->lock);
		MHD_destroy_response(resp);
		return;
	}
	copy = malloc(klen);
	if (!copy) {
		pthread_mutex_unlock(&c->lock);
		MHD_destroy_response(resp);
		return;
	}
	memcpy(copy, key, klen);
	*mark = 0;
	e = &c->slots[h & c->mask];
	if (e->resp) old = take(c, e);
	/* libmicrohttpd has no public "add reference": the cache keeps the caller's. */
	*e = (struct entry){.gen = gen, .hash = h, .resp = resp, .key = copy, .klen = klen,
			    .cost = cost, .status = status};
	c->bytes += cost;
	/* Over the byte bound: evict other entries in clock order until under it. The new entry
	 * fits on its own (checked above), so this ends. */
	while (c->bytes > c->max_bytes) {
		struct entry *v = &c->slots[c->hand];
		c->hand = (c->hand + 1) & c->mask;
		if (v != e && v->resp) MHD_destroy_response(take(c, v));
	}
	pthread_mutex_unlock(&c->lock);
	if (old) MHD_destroy_response(old);
}

size_t berth_rcache_bytes(struct berth_rcache *c)
{
	size_t n;
	if (!c) return 0;
	pthread_mutex_lock(&c->lock);
	n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

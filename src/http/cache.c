/* cache.c — a fixed-size, direct-mapped table: a new entry evicts whatever shared its slot. No
 * LRU bookkeeping on the hot path; hot keys stay because they are re-inserted on a miss. The
 * lock is held across MHD_queue_response so an entry can't be destroyed between lookup and
 * queueing (libmicrohttpd takes its own reference when queueing). */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 600

struct entry {
	uint64_t gen;
	uint64_t hash;
	unsigned status;
	size_t klen;
	char key[KEY_MAX];
	struct MHD_Response *resp;
};

struct berth_rcache {
	pthread_mutex_t lock;
	size_t mask;
	size_t max_body;
	struct entry *slots;
};

static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

struct berth_rcache *berth_rcache_new(size_t slots, size_t max_body)
{
	struct berth_rcache *c = calloc(1, sizeof *c);
	size_t n = 1;
	if (!c) return NULL;
	while (n < slots) n <<= 1;
	c->slots = calloc(n, sizeof *c->slots);
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->max_body = max_body;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void berth_rcache_free(struct berth_rcache *c)
{
	if (!c) return;
	for (size_t i = 0; i <= c->mask; i++)
		if (c->slots[i].resp) MHD_destroy_response(c->slots[i].resp);
	pthread_mutex_destroy(&c->lock);
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
	int hit = 0;
	if (!c || klen > KEY_MAX) return 0;
	h = hash_key(key, klen);
	pthread_mutex_lock(&c->lock);
	e = &c->slots[h & c->mask];
	if (e->resp && e->hash == h && e->gen == gen && e->klen == klen &&
	    memcmp(e->key, key, klen) == 0) {
		*status = e->status;
		*ret = MHD_queue_response(conn, e->status, e->resp);
		hit = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void berth_rcache_put(struct berth_rcache *c, const char *key, size_t klen, uint64_t gen,
		      unsigned status, struct MHD_Response *resp, size_t body_len)
{
	uint64_t h;
	struct entry *e;
	struct MHD_Response *old = NULL;
	if (!c || klen > KEY_MAX || body_len > c->max_body) {
		MHD_destroy_response(resp);
		return;
	}
	h = hash_key(key, klen);
	pthread_mutex_lock(&c->lock);
	e = &c->slots[h & c->mask];
	old = e->resp;
	/* libmicrohttpd has no public "add reference": the cache keeps the caller's. */
	e->resp = resp;
	e->hash = h;
	e->gen = gen;
	e->klen = klen;
	e->status = status;
	memcpy(e->key, key, klen);
	pthread_mutex_unlock(&c->lock);
	if (old) MHD_destroy_response(old);
}

/* digest.h — content digests: parse/validate "alg:hex" strings and hash bytes as they stream by
 * (OpenSSL EVP, hardware accelerated). Pure: no I/O, no globals. */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "limits.h"

enum berth_digest_alg { BERTH_DIGEST_SHA256 = 1, BERTH_DIGEST_SHA512 = 2 };

/* A validated digest. s is NUL-terminated "sha256:<64 lowercase hex>" or "sha512:<128 hex>". */
struct berth_digest {
	enum berth_digest_alg alg;
	size_t len;                      /* strlen(s) */
	char s[BERTH_DIGEST_MAX + 1];
};

/* Parse an untrusted (pointer, length) view. Only sha256 and sha512 with lowercase hex of the
 * exact length are accepted; anything else is BERTH_EDIGEST_INVALID. */
berth_err berth_digest_parse(const char *s, size_t len, struct berth_digest *out) BERTH_MUST_CHECK;

/* The hex part of d (points into d->s). */
const char *berth_digest_hex(const struct berth_digest *d);

/* "sha256" / "sha512". */
const char *berth_digest_alg_name(enum berth_digest_alg alg);

/* Streaming hasher. _new returns NULL on out of memory. _free(NULL) is a no-op. */
struct berth_hasher;
struct berth_hasher *berth_hasher_new(enum berth_digest_alg alg);
berth_err berth_hasher_update(struct berth_hasher *h, const void *buf, size_t len) BERTH_MUST_CHECK;
/* Finishes the hash into out; the hasher may not be updated afterwards (reset to reuse). */
berth_err berth_hasher_final(struct berth_hasher *h, struct berth_digest *out) BERTH_MUST_CHECK;
berth_err berth_hasher_reset(struct berth_hasher *h) BERTH_MUST_CHECK;
enum berth_digest_alg berth_hasher_alg(const struct berth_hasher *h);
void berth_hasher_free(struct berth_hasher *h);

/* One-shot digest of a buffer. */
berth_err berth_digest_of(enum berth_digest_alg alg, const void *buf, size_t len,
			  struct berth_digest *out) BERTH_MUST_CHECK;

/* 1 when a and b are the same digest. */
int berth_digest_eq(const struct berth_digest *a, const struct berth_digest *b);

#endif

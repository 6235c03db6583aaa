/* digest.c — "alg:hex" digests. Parsing is strict so that one blob has exactly one spelling:
 * digests become file names and database keys, so "sha256:ABC…" must not alias "sha256:abc…". */
#include "digest.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct berth_hasher {
	EVP_MD_CTX *ctx;
	enum berth_digest_alg alg;
	int finished; /* final was called; OpenSSL forbids update after final without re-init */
};

/* Both names are six characters, so both prefixes ("sha256:", "sha512:") are seven. */
#define DIGEST_PREFIX_LEN 7

static const EVP_MD *digest_md(enum berth_digest_alg alg)
{
	switch (alg) {
	case BERTH_DIGEST_SHA256: return EVP_sha256();
	case BERTH_DIGEST_SHA512: return EVP_sha512();
	}
	return NULL;
}

/* Hex digits per algorithm: twice the raw digest size. 0 for an unknown algorithm. */
static size_t digest_hex_len(enum berth_digest_alg alg)
{
	switch (alg) {
	case BERTH_DIGEST_SHA256: return 64;
	case BERTH_DIGEST_SHA512: return 128;
	}
	return 0;
}

const char *berth_digest_alg_name(enum berth_digest_alg alg)
{
	switch (alg) {
	case BERTH_DIGEST_SHA256: return "sha256";
	case BERTH_DIGEST_SHA512: return "sha512";
	}
	return "";
}

const char *berth_digest_hex(const struct berth_digest *d)
{
	if (d->len < DIGEST_PREFIX_LEN) return d->s + d->len;
	return d->s + DIGEST_PREFIX_LEN;
}

/* Only lowercase: the OCI image-spec digest grammar allows [a-f0-9] for the registered
 * algorithms, and accepting uppercase would give one blob two names. */
static int digest_is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

berth_err berth_digest_parse(const char *s, size_t len, struct berth_digest *out)
{
	enum berth_digest_alg alg;
	size_t hex_len;

	if (!s || !out) return BERTH_EDIGEST_INVALID;
	/* Length first: nothing below may read past len, and both prefixes are 7 bytes. */
	if (len < DIGEST_PREFIX_LEN) return BERTH_EDIGEST_INVALID;
	if (memcmp(s, "sha256:", DIGEST_PREFIX_LEN) == 0)
		alg = BERTH_DIGEST_SHA256;
	else if (memcmp(s, "sha512:", DIGEST_PREFIX_LEN) == 0)
		alg = BERTH_DIGEST_SHA512;
	else
		return BERTH_EDIGEST_INVALID;
	hex_len = digest_hex_len(alg);
	if (len != DIGEST_PREFIX_LEN + hex_len) return BERTH_EDIGEST_INVALID;
	for (size_t i = DIGEST_PREFIX_LEN; i < len; i++)
		if (!digest_is_lower_hex(s[i])) return BERTH_EDIGEST_INVALID;

	out->alg = alg;
	out->len = len;
	memcpy(out->s, s, len);
	out->s[len] = '\0';
	return BERTH_OK;
}

/* Writes "alg:" + lowercase hex of raw into out. */
static void digest_format(enum berth_digest_alg alg, const unsigned char *raw, size_t raw_len,
			  struct berth_digest *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out->s;

	memcpy(p, berth_digest_alg_name(alg), DIGEST_PREFIX_LEN - 1);
	p[DIGEST_PREFIX_LEN - 1] = ':';
	p += DIGEST_PREFIX_LEN;
	for (size_t i = 0; i < raw_len; i++) {
		*p++ = hex[raw[i] >> 4];
		*p++ = hex[raw[i] & 0x0f];
	}
	*p = '\0';
	out->alg = alg;
	out->len = DIGEST_PREFIX_LEN + 2 * raw_len;
}

struct berth_hasher *berth_hasher_new(enum berth_digest_alg alg)
{
	struct berth_hasher *h = NULL;
	const EVP_MD *md = digest_md(alg);

	if (!md) return NULL;
	h = calloc(1, sizeof *h);
	if (!h) return NULL;
	h->alg = alg;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx) goto fail;
	if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) goto fail;
	return h;
fail:
	berth_hasher_free(h);
	return NULL;
}

berth_err berth_hasher_update(struct berth_hasher *h, const void *buf, size_t len)
{
	if (!h || h->finished) return BERTH_EINVAL;
	if (len == 0) return BERTH_OK;
	if (!buf) return BERTH_EINVAL;
	if (EVP_DigestUpdate(h->ctx, buf, len) != 1) return BERTH_EINTERNAL;
	return BERTH_OK;
}

berth_err berth_hasher_final(struct berth_hasher *h, struct berth_digest *out)
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int raw_len = 0;

	if (!h || !out || h->finished) return BERTH_EINVAL;
	h->finished = 1;
	if (EVP_DigestFinal_ex(h->ctx, raw, &raw_len) != 1) return BERTH_EINTERNAL;
	if (raw_len * 2 != digest_hex_len(h->alg)) return BERTH_EINTERNAL;
	digest_format(h->alg, raw, raw_len, out);
	return BERTH_OK;
}

berth_err berth_hasher_reset(struct berth_hasher *h)
{
	if (!h) return BERTH_EINVAL;
	/* OpenSSL 3 allocates the provider context here; with built-in SHA-2 nothing else fails. */
	if (EVP_DigestInit_ex(h->ctx, digest_md(h->alg), NULL) != 1) return BERTH_ENOMEM;
	h->finished = 0;
	return BERTH_OK;
}

enum berth_digest_alg berth_hasher_alg(const struct berth_hasher *h)
{
	return h->alg;
}

void berth_hasher_free(struct berth_hasher *h)
{
	if (!h) return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

berth_err berth_digest_of(enum berth_digest_alg alg, const void *buf, size_t len,
			  struct berth_digest *out)
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int raw_len = 0;
	const EVP_MD *md = digest_md(alg);
	static const unsigned char empty[1];

	if (!md || !out) return BERTH_EINVAL;
	if (!buf) {
		if (len != 0) return BERTH_EINVAL;
		buf = empty;
	}
	/* EVP_Digest allocates a context; with built-in SHA-2 that is all that can fail. */
	if (EVP_Digest(buf, len, raw, &raw_len, md, NULL) != 1) return BERTH_ENOMEM;
	if (raw_len * 2 != digest_hex_len(alg)) return BERTH_EINTERNAL;
	digest_format(alg, raw, raw_len, out);
	return BERTH_OK;
}

int berth_digest_eq(const struct berth_digest *a, const struct berth_digest *b)
{
	/* Parsing admits one spelling per digest, so byte equality is digest equality. */
	return a->alg == b->alg && a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

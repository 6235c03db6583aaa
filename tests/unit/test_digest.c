/* test_digest.c — digest parse/format and hashing against published vectors (FIPS 180-2
 * examples for "abc", and the well-known digests of the empty string). */
#include <stdlib.h>
#include <string.h>

#include "../../src/core/digest.h"
#include "t.h"

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_EMPTY                                                                               \
	"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"  \
	"8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                                 \
	"sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836"  \
	"ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
/* The two-block FIPS 180-2 message, which crosses SHA-256's 64-byte block boundary. */
#define MSG448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define SHA256_MSG448 "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"

static void test_one_shot_vectors(void)
{
	struct berth_digest d;

	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, "", 0, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_EMPTY);
	CHECK_EQ_INT(d.len, strlen(SHA256_EMPTY));
	CHECK_EQ_INT(d.alg, BERTH_DIGEST_SHA256);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, NULL, 0, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_EMPTY);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, "abc", 3, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_ABC);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, MSG448, strlen(MSG448), &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_MSG448);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA512, "", 0, &d), BERTH_OK);
	CHECK_STR(d.s, SHA512_EMPTY);
	CHECK_EQ_INT(d.len, 135);
	CHECK_EQ_INT(d.alg, BERTH_DIGEST_SHA512);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA512, "abc", 3, &d), BERTH_OK);
	CHECK_STR(d.s, SHA512_ABC);
	CHECK_STR(berth_digest_hex(&d), &SHA512_ABC[7]);
	CHECK_EQ_INT(berth_digest_of((enum berth_digest_alg)0, "abc", 3, &d), BERTH_EINVAL);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, NULL, 1, &d), BERTH_EINVAL);
}

static void test_alg_names(void)
{
	struct berth_digest d;

	CHECK_STR(berth_digest_alg_name(BERTH_DIGEST_SHA256), "sha256");
	CHECK_STR(berth_digest_alg_name(BERTH_DIGEST_SHA512), "sha512");
	CHECK_STR(berth_digest_alg_name((enum berth_digest_alg)99), "");
	CHECK_EQ_INT(berth_digest_parse(SHA256_ABC, strlen(SHA256_ABC), &d), BERTH_OK);
	CHECK_STR(berth_digest_hex(&d), &SHA256_ABC[7]);
	CHECK_EQ_INT(strlen(berth_digest_hex(&d)), 64);
}

/* Streams buf in pieces of the given sizes (cycled) and returns the digest text. */
static void stream_in_pieces(enum berth_digest_alg alg, const unsigned char *buf, size_t len,
			     const size_t *pieces, size_t n_pieces, struct berth_digest *out)
{
	struct berth_hasher *h = berth_hasher_new(alg);
	size_t off = 0, k = 0;

	CHECK(h != NULL);
	if (!h) return;
	CHECK_EQ_INT(berth_hasher_alg(h), alg);
	while (off < len) {
		size_t n = pieces[k++ % n_pieces];

		if (n > len - off) n = len - off;
		CHECK_EQ_INT(berth_hasher_update(h, buf + off, n), BERTH_OK);
		off += n;
	}
	CHECK_EQ_INT(berth_hasher_final(h, out), BERTH_OK);
	berth_hasher_free(h);
}

static void test_streaming_equals_one_shot(void)
{
	static const size_t odd[] = {1, 3, 7, 63, 64, 65, 127, 129, 1000, 4097};
	static const size_t ones[] = {1};
	size_t len = 100003;
	unsigned char *buf = malloc(len);
	uint32_t x = 12345;

	CHECK(buf != NULL);
	if (!buf) return;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
	for (int a = BERTH_DIGEST_SHA256; a <= BERTH_DIGEST_SHA512; a++) {
		struct berth_digest one, s1, s2, s3;

		CHECK_EQ_INT(berth_digest_of((enum berth_digest_alg)a, buf, len, &one), BERTH_OK);
		stream_in_pieces((enum berth_digest_alg)a, buf, len, odd, 10, &s1);
		stream_in_pieces((enum berth_digest_alg)a, buf, 5000, ones, 1, &s2);
		stream_in_pieces((enum berth_digest_alg)a, buf, len, &len, 1, &s3);
		CHECK_STR(s1.s, one.s);
		CHECK_STR(s3.s, one.s);
		CHECK(berth_digest_eq(&s1, &one));
		CHECK_EQ_INT(berth_digest_of((enum berth_digest_alg)a, buf, 5000, &one), BERTH_OK);
		CHECK_STR(s2.s, one.s);
	}
	free(buf);
}

static void test_hasher_lifecycle(void)
{
	struct berth_hasher *h = berth_hasher_new(BERTH_DIGEST_SHA256);
	struct berth_digest d;

	CHECK(berth_hasher_new((enum berth_digest_alg)7) == NULL);
	berth_hasher_free(NULL);
	CHECK(h != NULL);
	if (!h) return;
	/* A zero-length update (even with NULL) is a no-op, not an error. */
	CHECK_EQ_INT(berth_hasher_update(h, NULL, 0), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_update(h, "a", 1), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_update(h, "bc", 2), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_final(h, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_ABC);
	/* After final the hasher refuses more input until reset. */
	CHECK_EQ_INT(berth_hasher_update(h, "x", 1), BERTH_EINVAL);
	CHECK_EQ_INT(berth_hasher_final(h, &d), BERTH_EINVAL);
	CHECK_EQ_INT(berth_hasher_reset(h), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_final(h, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_EMPTY);
	CHECK_EQ_INT(berth_hasher_reset(h), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_update(h, "abc", 3), BERTH_OK);
	/* Reset in the middle discards what was hashed so far. */
	CHECK_EQ_INT(berth_hasher_reset(h), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_update(h, "abc", 3), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_final(h, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_ABC);
	berth_hasher_free(h);

	h = berth_hasher_new(BERTH_DIGEST_SHA512);
	CHECK(h != NULL);
	if (!h) return;
	CHECK_EQ_INT(berth_hasher_update(h, "abc", 3), BERTH_OK);
	CHECK_EQ_INT(berth_hasher_final(h, &d), BERTH_OK);
	CHECK_STR(d.s, SHA512_ABC);
	berth_hasher_free(h);
}

static int parses(const char *s, size_t len)
{
	struct berth_digest d;

	return berth_digest_parse(s, len, &d) == BERTH_OK;
}

static int parses_str(const char *s)
{
	return parses(s, strlen(s));
}

static void test_parse_accepts(void)
{
	struct berth_digest d;

	CHECK_EQ_INT(berth_digest_parse(SHA256_ABC, strlen(SHA256_ABC), &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_ABC);
	CHECK_EQ_INT(d.len, 71);
	CHECK_EQ_INT(d.alg, BERTH_DIGEST_SHA256);
	CHECK_EQ_INT(berth_digest_parse(SHA512_ABC, strlen(SHA512_ABC), &d), BERTH_OK);
	CHECK_STR(d.s, SHA512_ABC);
	CHECK_EQ_INT(d.alg, BERTH_DIGEST_SHA512);
	CHECK(parses_str("sha256:0000000000000000000000000000000000000000000000000000000000000000"));
	CHECK(parses_str("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
}

static void test_parse_rejects(void)
{
	char buf[160];
	struct berth_digest d;

	/* Uppercase hex would give one blob a second name. */
	CHECK(!parses_str("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	CHECK(!parses_str("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aD"));
	CHECK(!parses_str("SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	/* Wrong lengths: one short, one long, the other algorithm's length. */
	CHECK(!parses_str("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
	CHECK(!parses_str("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
	CHECK(!parses_str("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!parses(SHA512_ABC, strlen(SHA512_ABC) - 1));
	/* Unknown or unsupported algorithms, even with valid-looking hex. */
	CHECK(!parses_str("sha384:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!parses_str("md5:900150983cd24fb0d6963f7d28e17f72"));
	CHECK(!parses_str("blake3:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!parses_str("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"));
	/* Structure. */
	CHECK(!parses_str("sha256ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
	CHECK(!parses_str("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!parses_str("sha256:"));
	CHECK(!parses_str("sha256"));
	CHECK(!parses_str(""));
	CHECK(!parses_str(":"));
	CHECK(!parses_str(" sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001ad"));
	CHECK(!parses_str("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015g"
			  "d"));
	CHECK(!parses_str("sha256:-a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!parses(NULL, 0));
	CHECK(!parses(NULL, 71));
	CHECK_EQ_INT(berth_digest_parse("x", 1, &d), BERTH_EDIGEST_INVALID);

	/* An embedded NUL byte inside the view is invalid even though strlen would stop there. */
	memcpy(buf, SHA256_ABC, 72);
	buf[30] = '\0';
	CHECK(!parses(buf, 71));
	memcpy(buf, SHA256_ABC, 72);
	buf[70] = '\0';
	CHECK(!parses(buf, 71));

	/* Parsing reads exactly len bytes: a valid digest followed by junk parses when the view
	 * stops at the digest, and a view one byte short does not. */
	memcpy(buf, SHA256_ABC, 71);
	memcpy(buf + 71, "zzzz", 5);
	CHECK_EQ_INT(berth_digest_parse(buf, 71, &d), BERTH_OK);
	CHECK_STR(d.s, SHA256_ABC);
	CHECK(!parses(buf, 72));
	CHECK(!parses(buf, 70));
}

/* Heap copy of exactly len bytes so ASan catches any read past the view. */
static void test_parse_exact_bounds(void)
{
	static const char *const inputs[] = {SHA256_ABC, SHA512_ABC, "sha256:", "sha5", "s"};

	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		size_t len = strlen(inputs[i]);

		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n ? n : 1);
			struct berth_digest d;
			berth_err e;

			CHECK(p != NULL);
			if (!p) return;
			memcpy(p, inputs[i], n);
			e = berth_digest_parse(p, n, &d);
			CHECK(e == BERTH_OK || e == BERTH_EDIGEST_INVALID);
			CHECK_EQ_INT(e == BERTH_OK, n == len && len > 7);
			free(p);
		}
	}
}

static void test_eq(void)
{
	struct berth_digest a, b, c;

	CHECK_EQ_INT(berth_digest_parse(SHA256_ABC, strlen(SHA256_ABC), &a), BERTH_OK);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, "abc", 3, &b), BERTH_OK);
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA256, "abd", 3, &c), BERTH_OK);
	CHECK(berth_digest_eq(&a, &b));
	CHECK(!berth_digest_eq(&a, &c));
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA512, "abc", 3, &c), BERTH_OK);
	CHECK(!berth_digest_eq(&a, &c));
}

int main(void)
{
	T_RUN(test_one_shot_vectors);
	T_RUN(test_alg_names);
	T_RUN(test_streaming_equals_one_shot);
	T_RUN(test_hasher_lifecycle);
	T_RUN(test_parse_accepts);
	T_RUN(test_parse_rejects);
	T_RUN(test_parse_exact_bounds);
	T_RUN(test_eq);
	return T_DONE("unit-digest");
}

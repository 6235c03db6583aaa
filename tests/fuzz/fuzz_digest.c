/* fuzz_digest.c — berth_digest_parse: an accepted digest is the input byte for byte (one blob,
 * one spelling), "sha256:" + 64 or "sha512:" + 128 lowercase hex, NUL-terminated in place. */
#include "../../src/core/digest.h"
#include "fuzz.h"

static int lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct berth_digest d, d2;
	const char *hex;
	size_t hex_len;

	memset(&d, 0xa5, sizeof d);
	if (berth_digest_parse(s, size, &d) != BERTH_OK) return 0;

	FUZZ_ASSERT(d.alg == BERTH_DIGEST_SHA256 || d.alg == BERTH_DIGEST_SHA512);
	hex_len = d.alg == BERTH_DIGEST_SHA256 ? 64 : 128;
	FUZZ_ASSERT(d.len == size && size == 7 + hex_len && d.len <= BERTH_DIGEST_MAX);
	FUZZ_ASSERT(memcmp(d.s, s, size) == 0 && d.s[d.len] == '\0');
	FUZZ_ASSERT(memcmp(d.s, berth_digest_alg_name(d.alg), 6) == 0 && d.s[6] == ':');
	hex = berth_digest_hex(&d);
	FUZZ_ASSERT(hex == d.s + 7 && strlen(hex) == hex_len);
	for (size_t i = 0; i < hex_len; i++)
		FUZZ_ASSERT(lower_hex(hex[i]));
	/* Parsing the result again gives the same digest. */
	FUZZ_ASSERT(berth_digest_parse(d.s, d.len, &d2) == BERTH_OK && berth_digest_eq(&d, &d2));
	return 0;
}

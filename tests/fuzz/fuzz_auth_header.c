/* fuzz_auth_header.c — berth_authz_parse (the Authorization header value), berth_basic_decode
 * (RFC 7617 credentials) on what it returns and on the raw input, berth_b64url_decode, and
 * berth_scope_parse / berth_actions_format (the scope parameter of /auth/token).
 * Invariants: the credentials are a trimmed view inside the input and a known scheme has some;
 * decoded Basic credentials are a non-empty user without ':' within the limits, and encoding
 * them again decodes to the same pair; failures leave user and pw empty; a decoded base64url
 * fits its buffer and re-encodes to the input; a scope's name is a bounded view of the input,
 * catalog scopes are exactly "registry:catalog:...", actions only the known bits. */
#include "../../src/core/auth.h"
#include "fuzz.h"

#include <strings.h>

static const char b64tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; out has room for 4 * ceil(n / 3) + 1. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64tab[v >> 18];
		out[o++] = b64tab[(v >> 12) & 63];
		out[o++] = b64tab[(v >> 6) & 63];
		out[o++] = b64tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64tab[v >> 18];
		out[o++] = b64tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64tab[v >> 18];
		out[o++] = b64tab[(v >> 12) & 63];
		out[o++] = b64tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static void check_basic(const char *cred, size_t n)
{
	static char user[BERTH_USER_MAX + 1], pw[BERTH_PASSWORD_MAX + 1];
	static char user2[BERTH_USER_MAX + 1], pw2[BERTH_PASSWORD_MAX + 1];
	static unsigned char pair[BERTH_USER_MAX + BERTH_PASSWORD_MAX + 2];
	static char enc[(sizeof pair + 2) / 3 * 4 + 1];
	size_t ul, pl;
	berth_err e;

	memset(user, 'u', sizeof user);
	memset(pw, 'p', sizeof pw);
	e = berth_basic_decode(cred, n, user, pw);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		FUZZ_ASSERT(user[0] == '\0' && pw[0] == '\0');
		return;
	}
	FUZZ_ASSERT(fuzz_terminated(user, sizeof user) && fuzz_terminated(pw, sizeof pw));
	ul = strlen(user);
	pl = strlen(pw);
	FUZZ_ASSERT(ul >= 1 && ul <= BERTH_USER_MAX && pl <= BERTH_PASSWORD_MAX);
	FUZZ_ASSERT(!strchr(user, ':'));
	/* Valid base64 carries at least 4 characters per 3 bytes (padding optional). */
	FUZZ_ASSERT((ul + 1 + pl) * 4 <= n * 3 + 8);
	/* Canonical re-encoding decodes to the same pair. */
	memcpy(pair, user, ul);
	pair[ul] = ':';
	memcpy(pair + ul + 1, pw, pl);
	b64_encode(pair, ul + 1 + pl, enc);
	FUZZ_ASSERT(berth_basic_decode(enc, strlen(enc), user2, pw2) == BERTH_OK);
	FUZZ_ASSERT(strcmp(user, user2) == 0 && strcmp(pw, pw2) == 0);
}

static void check_authz(const char *h, size_t n)
{
	struct berth_authz z;
	berth_err e;

	memset(&z, 0x5a, sizeof z);
	e = berth_authz_parse(h, n, &z);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return;
	}
	FUZZ_ASSERT(n <= BERTH_AUTHZ_MAX);
	FUZZ_ASSERT(z.scheme == BERTH_AUTHZ_OTHER || z.scheme == BERTH_AUTHZ_BASIC ||
		    z.scheme == BERTH_AUTHZ_BEARER);
	FUZZ_ASSERT(z.cred >= h && z.cred_len <= n && z.cred + z.cred_len <= h + n);
	if (z.cred_len) {
		FUZZ_ASSERT(z.cred[0] != ' ' && z.cred[0] != '\t');
		FUZZ_ASSERT(z.cred[z.cred_len - 1] != ' ' && z.cred[z.cred_len - 1] != '\t');
	}
	if (z.scheme != BERTH_AUTHZ_OTHER) {
		/* The scheme word is the first blank-delimited word before the credentials. */
		size_t i = 0;
		const char *want = z.scheme == BERTH_AUTHZ_BASIC ? "basic" : "bearer";
		FUZZ_ASSERT(z.cred_len > 0);
		while (i < n && (h[i] == ' ' || h[i] == '\t'))
			i++;
		FUZZ_ASSERT(n - i >= strlen(want) && strncasecmp(h + i, want, strlen(want)) == 0);
		FUZZ_ASSERT(z.cred >= h + i + strlen(want) + 1);
	}
	if (z.scheme == BERTH_AUTHZ_BASIC) check_basic(z.cred, z.cred_len);
}

static void check_b64url(const char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char out[96];
	size_t len = 12345;
	berth_err e = berth_b64url_decode(s, n, out, sizeof out, &len);

	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return;
	}
	FUZZ_ASSERT(len <= sizeof out);
	FUZZ_ASSERT(len == n * 6 / 8);
	/* Every input byte is in the url alphabet (no padding accepted). */
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(memchr(tab, s[i], 64) != NULL && s[i] != '\0');
}

static void check_scope(const char *s, size_t n)
{
	struct berth_scope sc;
	char buf[32];
	berth_err e;

	memset(&sc, 0x5a, sizeof sc);
	e = berth_scope_parse(s, n, &sc);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return;
	}
	FUZZ_ASSERT(sc.name > s && sc.name + sc.name_len < s + n + 1);
	FUZZ_ASSERT(sc.name_len >= 1 && sc.name_len <= BERTH_NAME_MAX);
	FUZZ_ASSERT(sc.name[-1] == ':' && sc.name + sc.name_len < s + n && sc.name[sc.name_len] == ':');
	FUZZ_ASSERT((sc.actions & ~(unsigned)BERTH_ACTION_ALL) == 0);
	if (sc.type == BERTH_SCOPE_REPOSITORY) FUZZ_ASSERT(n > 11 && memcmp(s, "repository:", 11) == 0);
	if (sc.type == BERTH_SCOPE_CATALOG)
		FUZZ_ASSERT(n >= 17 && memcmp(s, "registry:catalog:", 17) == 0);
	/* Formatting never overruns, whatever the room. */
	for (size_t cap = 1; cap <= sizeof buf; cap += 7) {
		memset(buf, 'x', sizeof buf);
		berth_actions_format(sc.actions, buf, cap);
		FUZZ_ASSERT(fuzz_terminated(buf, cap));
		FUZZ_ASSERT(buf[cap] == 'x' || cap == sizeof buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A heap copy of exactly size bytes, so ASan sees any read past the end. */
	char *h = malloc(size ? size : 1);
	if (!h) return 0;
	memcpy(h, data, size);
	check_authz(h, size);
	check_basic(h, size);
	check_b64url(h, size);
	check_scope(h, size);
	free(h);
	return 0;
}

/* fuzz_challenge.c — the client's header parsers in src/client/transport.h: berth_challenges_parse
 * (WWW-Authenticate from any registry the client talks to) and berth_link_next (the Link header
 * of tag and catalog pages), both on the whole input.
 * Invariants: 0 or -1 only; at most BERTH_CHALLENGES_MAX challenges, each with a non-empty
 * lower-case tchar scheme and terminated fields; a found next link is terminated, appears in the
 * input right after a '<', holds no '>', fits the buffer, and the same input with a smaller
 * buffer gives the same target or -1 (never a truncated one). */
#include "../../src/client/transport.h"
#include "fuzz.h"

#include <ctype.h>

static void check_challenges(const char *s, size_t n)
{
	static struct berth_challenges ch;
	int r;

	memset(&ch, 0x5a, sizeof ch);
	r = berth_challenges_parse(s, n, &ch);
	FUZZ_ASSERT(r == 0 || r == -1);
	if (r != 0) return;
	FUZZ_ASSERT(ch.n >= 0 && ch.n <= BERTH_CHALLENGES_MAX);
	for (int i = 0; i < ch.n; i++) {
		const struct berth_challenge *c = &ch.c[i];
		FUZZ_ASSERT(fuzz_terminated(c->scheme, sizeof c->scheme) && c->scheme[0]);
		for (const char *p = c->scheme; *p; p++)
			FUZZ_ASSERT(!isupper((unsigned char)*p) &&
				    (isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)));
		FUZZ_ASSERT(fuzz_terminated(c->realm, sizeof c->realm));
		FUZZ_ASSERT(fuzz_terminated(c->service, sizeof c->service));
		FUZZ_ASSERT(fuzz_terminated(c->scope, sizeof c->scope));
		FUZZ_ASSERT(fuzz_terminated(c->error, sizeof c->error));
	}
	/* Unused slots stay zeroed. */
	for (int i = ch.n; i < BERTH_CHALLENGES_MAX; i++)
		FUZZ_ASSERT(ch.c[i].scheme[0] == '\0' && ch.c[i].realm[0] == '\0');
}

static void check_link(const char *s, size_t n)
{
	static char out[BERTH_CLIENT_URL_MAX + 8];
	char small[24];
	int r, r2;
	size_t l;

	memset(out, 'x', sizeof out);
	r = berth_link_next(s, n, out, BERTH_CLIENT_URL_MAX);
	FUZZ_ASSERT(r == -1 || r == 0 || r == 1);
	FUZZ_ASSERT(out[BERTH_CLIENT_URL_MAX] == 'x');
	if (r == 1) {
		const char *p;
		int found = 0;

		FUZZ_ASSERT(fuzz_terminated(out, BERTH_CLIENT_URL_MAX));
		l = strlen(out);
		FUZZ_ASSERT(!memchr(out, '>', l));
		for (p = s; p < s + n && (p = memchr(p, '<', (size_t)(s + n - p))) != NULL; p++)
			if ((size_t)(s + n - p - 1) >= l && memcmp(p + 1, out, l) == 0) found = 1;
		FUZZ_ASSERT(found);
	}
	memset(small, 'y', sizeof small);
	r2 = berth_link_next(s, n, small, 16);
	FUZZ_ASSERT(small[16] == 'y');
	if (r2 == 1) {
		FUZZ_ASSERT(r == 1 && fuzz_terminated(small, 16) && strcmp(small, out) == 0);
	} else if (r == 1) {
		FUZZ_ASSERT(r2 == -1);
	} else {
		FUZZ_ASSERT(r2 == r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copy: ASan sees any read past the header value. */
	char *s = malloc(size ? size : 1);
	if (!s) return 0;
	memcpy(s, data, size);
	check_challenges(s, size);
	check_link(s, size);
	free(s);
	return 0;
}

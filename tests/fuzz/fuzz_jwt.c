/* fuzz_jwt.c — bearer tokens: berth_jwt_split and berth_b64url_decode on hostile tokens, then
 * berth_auth_token_verify, the whole path a Bearer header takes (header JSON, alg/crit/typ,
 * signature, claims: exp, nbf, iss, aud, sub, access). A throw-away EC P-256 key made at start
 * is the token issuer's key, so inputs can also be signed before verification and reach the
 * claims parsing. The first input byte picks the mode (mod 3):
 *   0  the rest is a token, verified as is (access token, or refresh with bit 7 set);
 *   1  the rest is a payload JSON text, signed under {"alg":"ES256","typ":"JWT"};
 *   2  the rest is "header JSON" NUL "payload JSON", signed as given.
 * Invariants: split parts tile the token around exactly two dots; a verified token has exp/iss/aud
 * as configured, a terminated sub within BERTH_USER_MAX and at most BERTH_TOKEN_ACCESS_MAX grants
 * with terminated names and known action bits; a rejected one leaves *out zeroed; changing one
 * signature byte of a verified token makes it fail. */
#include "../../src/core/auth.h"
#include "../../src/core/log.h"
#include "fuzz.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/mman.h>
#include <unistd.h>

#define ISSUER "berth-fuzz-issuer"
#define SERVICE "registry.example.com"
#define NOW ((time_t)1700000000)

static struct berth_config cfg;
static struct berth_auth *auth;
static char keypath[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	EVP_PKEY *k;
	BIO *b;
	char *pem;
	long n;
	int fd;

	(void)argc;
	(void)argv;
	berth_log_level_current = BERTH_LOG_ERROR + 1;
	k = EVP_EC_gen("P-256");
	b = BIO_new(BIO_s_mem());
	if (!k || !b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) abort();
	n = BIO_get_mem_data(b, &pem);
	fd = memfd_create("fuzz-jwt-key", MFD_CLOEXEC);
	if (fd < 0 || n <= 0 || write(fd, pem, (size_t)n) != n) abort();
	BIO_free(b);
	EVP_PKEY_free(k);
	snprintf(keypath, sizeof keypath, "/proc/self/fd/%d", fd);
	cfg.tokenissuer_enabled = 1;
	cfg.tokenissuer_key = keypath;
	cfg.tokenissuer_expiry = 300;
	cfg.token_realm = (char *)"https://auth.example.com/token";
	cfg.token_service = (char *)SERVICE;
	cfg.token_issuer = (char *)ISSUER;
	if (berth_auth_new(&cfg, &auth, err, sizeof err) != BERTH_OK) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	return 0;
}

static int out_zero(const struct berth_token *t)
{
	static const struct berth_token z;
	return memcmp(t, &z, sizeof z) == 0;
}

static void check_split(const char *t, size_t n)
{
	struct berth_jwt_parts p;
	unsigned char buf[256];
	size_t len;
	berth_err e;

	memset(&p, 0x5a, sizeof p);
	e = berth_jwt_split(t, n, &p);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return;
	}
	FUZZ_ASSERT(n <= BERTH_AUTHZ_MAX);
	FUZZ_ASSERT(p.header == t && p.header_len >= 1);
	FUZZ_ASSERT(p.payload == t + p.header_len + 1 && p.payload[-1] == '.' && p.payload_len >= 1);
	FUZZ_ASSERT(p.sig == p.payload + p.payload_len + 1 && p.sig[-1] == '.' && p.sig_len >= 1);
	FUZZ_ASSERT(p.sig + p.sig_len == t + n);
	FUZZ_ASSERT(p.signed_len == p.header_len + 1 + p.payload_len);
	FUZZ_ASSERT(!memchr(p.header, '.', p.header_len) && !memchr(p.payload, '.', p.payload_len) &&
		    !memchr(p.sig, '.', p.sig_len));
	/* Each part through the decoder with a small buffer: never past cap. */
	if (berth_b64url_decode(p.header, p.header_len, buf, sizeof buf, &len) == BERTH_OK)
		FUZZ_ASSERT(len <= sizeof buf);
	if (berth_b64url_decode(p.payload, p.payload_len, buf, sizeof buf, &len) == BERTH_OK)
		FUZZ_ASSERT(len <= sizeof buf);
	if (berth_b64url_decode(p.sig, p.sig_len, buf, sizeof buf, &len) == BERTH_OK)
		FUZZ_ASSERT(len <= sizeof buf);
}

static void check_token(const struct berth_token *t)
{
	FUZZ_ASSERT(fuzz_terminated(t->sub, sizeof t->sub));
	FUZZ_ASSERT(t->ngrants <= BERTH_TOKEN_ACCESS_MAX);
	FUZZ_ASSERT(t->exp >= NOW - BERTH_TOKEN_LEEWAY);
	for (size_t i = 0; i < t->ngrants; i++) {
		const struct berth_token_grant *g = &t->grants[i];
		FUZZ_ASSERT(g->type == BERTH_SCOPE_REPOSITORY || g->type == BERTH_SCOPE_CATALOG);
		FUZZ_ASSERT(fuzz_terminated(g->name, sizeof g->name));
		FUZZ_ASSERT((g->actions & ~(unsigned)BERTH_ACTION_ALL) == 0);
		if (g->type == BERTH_SCOPE_CATALOG) FUZZ_ASSERT(strcmp(g->name, "catalog") == 0);
		/* Whatever the grants, queries on them stay in range. */
		FUZZ_ASSERT((berth_token_actions(t, g->name) & ~(unsigned)BERTH_ACTION_ALL) == 0);
	}
	(void)berth_token_catalog(t);
}

/* The verified token's payload, decoded independently: the claims berth checked are there. */
static void check_claims(const char *tok, size_t n)
{
	struct berth_jwt_parts p;
	unsigned char *buf;
	size_t len = 0;
	json_t *j, *aud;
	const char *iss;

	FUZZ_ASSERT(berth_jwt_split(tok, n, &p) == BERTH_OK);
	buf = malloc(p.payload_len + 1);
	if (!buf) return;
	FUZZ_ASSERT(berth_b64url_decode(p.payload, p.payload_len, buf, p.payload_len + 1, &len) ==
		    BERTH_OK);
	j = json_loadb((const char *)buf, len, 0, NULL);
	FUZZ_ASSERT(json_is_object(j));
	iss = json_string_value(json_object_get(j, "iss"));
	FUZZ_ASSERT(iss && strcmp(iss, ISSUER) == 0);
	FUZZ_ASSERT(json_is_number(json_object_get(j, "exp")));
	aud = json_object_get(j, "aud");
	FUZZ_ASSERT(json_is_string(aud) || json_is_array(aud));
	json_decref(j);
	free(buf);
}

static void verify(char *tok, size_t n, int refresh)
{
	static struct berth_token t;
	berth_err e;

	check_split(tok, n);
	memset(&t, 0x5a, sizeof t);
	e = berth_auth_token_verify(auth, tok, n, NOW, refresh, &t);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EUNAUTHORIZED);
		FUZZ_ASSERT(out_zero(&t));
		return;
	}
	check_token(&t);
	check_claims(tok, n);
	/* One changed signature character (the first carries 6 bits of r or of the RSA value). */
	{
		char *sig = memrchr(tok, '.', n) + 1;
		char old = sig[0];
		sig[0] = old == 'A' ? 'B' : 'A';
		FUZZ_ASSERT(berth_auth_token_verify(auth, tok, n, NOW, refresh, &t) ==
			    BERTH_EUNAUTHORIZED);
		FUZZ_ASSERT(out_zero(&t));
		sig[0] = old;
	}
}

static char *cstr(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);
	if (!s) return NULL;
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = NULL, *hdr = NULL, *pay = NULL;
	unsigned mode;

	if (size < 1 || size > 3 * BERTH_AUTHZ_MAX) return 0;
	mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		/* Exact-size copy: ASan sees any read past the token. */
		tok = malloc(size ? size : 1);
		if (!tok) return 0;
		memcpy(tok, data, size);
		verify(tok, size, data[-1] >= 0x80);
		free(tok);
		return 0;
	}
	if (mode == 1) {
		hdr = cstr((const uint8_t *)"{\"alg\":\"ES256\",\"typ\":\"JWT\"}", 27);
		pay = cstr(data, size);
	} else {
		const uint8_t *z = memchr(data, '\0', size);
		size_t hl = z ? (size_t)(z - data) : size;
		hdr = cstr(data, hl);
		pay = z ? cstr(z + 1, size - hl - 1) : cstr((const uint8_t *)"{}", 2);
	}
	if (hdr && pay && berth_auth_jws_sign(auth, hdr, pay, &tok) == BERTH_OK) {
		size_t n = strlen(tok);
		char *t2 = malloc(n);
		if (t2) {
			memcpy(t2, tok, n);
			verify(t2, n, 0);
			verify(t2, n, 1);
			free(t2);
		}
		free(tok);
	}
	free(hdr);
	free(pay);
	return 0;
}

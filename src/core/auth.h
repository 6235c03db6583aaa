/* auth.h — who a client is and what it may do: htpasswd users (bcrypt only), berth.access
 * rules, and JSON Web Tokens (RS256/ES256: verify, and issue for the built-in token issuer).
 * No HTTP here: src/http/auth_http.c maps requests onto these calls. Never logs a password,
 * an Authorization header or a token; secrets are compared in constant time and wiped. */
#ifndef BERTH_AUTH_H
#define BERTH_AUTH_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "limits.h"

struct berth_auth;

enum berth_auth_mode {
	BERTH_AUTH_BASIC = 1, /* Basic credentials checked against htpasswd */
	BERTH_AUTH_TOKEN,     /* Bearer JWTs (auth.token, or the built-in issuer) */
};

/* Loads the htpasswd file and the keys the configuration names. cfg is borrowed and must
 * outlive the result (the access rules are read from it). On error writes a one-line message
 * into errbuf. Call only when berth_config_auth_enabled(cfg). */
berth_err berth_auth_new(const struct berth_config *cfg, struct berth_auth **out, char *errbuf,
			 size_t errlen) BERTH_MUST_CHECK;
void berth_auth_free(struct berth_auth *a);

enum berth_auth_mode berth_auth_mode(const struct berth_auth *a);
const struct berth_config *berth_auth_config(const struct berth_auth *a);
/* Users loaded from htpasswd (bcrypt entries). */
size_t berth_auth_user_count(const struct berth_auth *a);
int berth_auth_user_exists(const struct berth_auth *a, const char *user);

/* ---- passwords ---- */

/* BERTH_OK when user/pw match a bcrypt htpasswd entry; BERTH_EUNAUTHORIZED otherwise (an
 * unknown user costs one bcrypt run too, so timing does not tell which users exist). Both
 * arguments are untrusted (pointer, length) views, borrowed. */
berth_err berth_auth_password(struct berth_auth *a, const char *user, size_t ulen,
			      const char *pw, size_t pwlen) BERTH_MUST_CHECK;

/* ---- access rules ---- */

/* The BERTH_ACTION_* bits user (NULL: anonymous) holds on repo: the union of the matching
 * berth.access rules; with no rules, everything for an authenticated user and nothing for
 * anonymous (Distribution's behaviour). a == NULL (no auth configured): everything. */
unsigned berth_auth_actions(const struct berth_auth *a, const char *user, const char *repo);
/* 1 when every bit of actions is held. */
int berth_auth_allowed(const struct berth_auth *a, const char *user, const char *repo,
		       unsigned actions);
/* 1 when some rule grants anonymous anything. */
int berth_auth_anonymous_any(const struct berth_auth *a);

/* ---- pure parsers of untrusted bytes ---- */

/* base64url without padding (RFC 7515 §2) into out (cap bytes). BERTH_EINVAL when malformed
 * or too long. */
berth_err berth_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap,
			      size_t *outlen) BERTH_MUST_CHECK;

enum berth_authz_scheme { BERTH_AUTHZ_OTHER = 0, BERTH_AUTHZ_BASIC, BERTH_AUTHZ_BEARER };

/* An Authorization header value: scheme and credentials (RFC 7235 §2.1; the scheme is
 * case-insensitive). cred points into h. */
struct berth_authz {
	enum berth_authz_scheme scheme;
	const char *cred;
	size_t cred_len;
};
berth_err berth_authz_parse(const char *h, size_t n, struct berth_authz *out) BERTH_MUST_CHECK;

/* Basic credentials (RFC 7617): base64 of "user:password" into NUL-terminated user and pw.
 * The caller wipes pw (explicit_bzero) when done. */
berth_err berth_basic_decode(const char *cred, size_t n, char user[BERTH_USER_MAX + 1],
			     char pw[BERTH_PASSWORD_MAX + 1]) BERTH_MUST_CHECK;

/* One htpasswd line (Distribution's reading: surrounding blanks trimmed, empty lines and
 * lines starting with '#' skipped, "user:hash"). skip = 1 for lines without an entry. */
struct berth_htpasswd_line {
	int skip;
	const char *user, *hash;
	size_t user_len, hash_len;
};
berth_err berth_htpasswd_parse_line(const char *s, size_t n,
				    struct berth_htpasswd_line *out) BERTH_MUST_CHECK;
/* "bcrypt" for $2a$/$2b$/$2y$ hashes; otherwise a name for the log ("MD5 (apr1)", ...). */
const char *berth_htpasswd_hash_type(const char *hash, size_t n);

/* A compact JWS: three base64url parts; signed_len covers "header.payload". */
struct berth_jwt_parts {
	const char *header, *payload, *sig;
	size_t header_len, payload_len, sig_len, signed_len;
};
berth_err berth_jwt_split(const char *t, size_t n, struct berth_jwt_parts *out) BERTH_MUST_CHECK;

/* A token scope (Docker's "repository:team/app:pull,push", "registry:catalog:*"). The type
 * is up to the first ':', the actions after the last one, the name in between. Unknown
 * actions are ignored. */
enum berth_scope_type { BERTH_SCOPE_OTHER = 0, BERTH_SCOPE_REPOSITORY, BERTH_SCOPE_CATALOG };
struct berth_scope {
	enum berth_scope_type type;
	const char *name;
	size_t name_len;
	unsigned actions;
};
berth_err berth_scope_parse(const char *s, size_t n, struct berth_scope *out) BERTH_MUST_CHECK;
/* "pull,push" etc. from bits; writes at most cap bytes (NUL-terminated). */
void berth_actions_format(unsigned actions, char *out, size_t cap);

/* ---- tokens ---- */

struct berth_token_grant {
	enum berth_scope_type type; /* REPOSITORY or CATALOG */
	char name[BERTH_NAME_MAX + 1];
	unsigned actions;
};

struct berth_token {
	char sub[BERTH_USER_MAX + 1]; /* "" for anonymous */
	time_t exp;
	size_t ngrants;
	struct berth_token_grant grants[BERTH_TOKEN_ACCESS_MAX];
};

/* Verifies a compact JWS: alg RS256 or ES256 signed by one of the configured keys (the
 * rootcertbundle's certificates, the built-in issuer's key), exp and nbf against now with
 * BERTH_TOKEN_LEEWAY seconds of skew, aud containing the service, iss == the issuer. refresh
 * selects which kind is accepted: access tokens and the issuer's refresh tokens are never
 * interchangeable. BERTH_EUNAUTHORIZED for any invalid token. out is caller-owned. */
berth_err berth_auth_token_verify(const struct berth_auth *a, const char *tok, size_t n,
				  time_t now, int refresh,
				  struct berth_token *out) BERTH_MUST_CHECK;
/* The actions a verified token grants on repo. */
unsigned berth_token_actions(const struct berth_token *t, const char *repo);
int berth_token_catalog(const struct berth_token *t);

/* Issues a token signed with berth.tokenissuer.key: iss, sub, aud, exp (now + lifetime), nbf,
 * iat, jti, access (grants). refresh = 1 makes a refresh token (no access, distinct typ).
 * *out is a NUL-terminated string the caller frees. BERTH_EUNSUPPORTED without a key. */
berth_err berth_auth_token_issue(const struct berth_auth *a, const char *sub,
				 const struct berth_token_grant *grants, size_t ngrants,
				 time_t now, long lifetime, int refresh,
				 char **out) BERTH_MUST_CHECK;
/* Signs arbitrary header and payload JSON texts with the issuer key (the header's alg must be
 * the key's). For tests and tools; the server only issues through berth_auth_token_issue. */
berth_err berth_auth_jws_sign(const struct berth_auth *a, const char *header_json,
			      const char *payload_json, char **out) BERTH_MUST_CHECK;

#endif

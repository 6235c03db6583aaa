/* auth.c — htpasswd users, berth.access rules and JSON Web Tokens (RFC 7519) in compact JWS
 * form (RFC 7515) with RS256/ES256 (RFC 7518 §3.3, §3.4). Everything that touches untrusted
 * bytes takes (pointer, length) and is bounded by src/core/limits.h. */
#include "auth.h"

#include "pattern.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* bcrypt hashes are "$2b$" + 2-digit cost + "$" + 53 characters. */
#define BCRYPT_LEN 60
#define PW_CACHE_TTL BERTH_PW_CACHE_TTL
#define PW_CACHE_SLOTS BERTH_PW_CACHE_SLOTS
/* Longest JSON text accepted in a token header or payload (decoded). */
#define JWT_PART_MAX BERTH_AUTHZ_MAX
#define TYP_REFRESH "berth-refresh+jwt"

struct htuser {
	char *name;
	char hash[BCRYPT_LEN + 1];
};

struct pw_slot {
	unsigned char mac[32];
	time_t expires;
};

struct berth_auth {
	const struct berth_config *cfg;
	enum berth_auth_mode mode;
	struct htuser *users; /* sorted by name */
	size_t nusers;
	char dummy[64];       /* a bcrypt setting for unknown users, at the highest cost seen */
	EVP_PKEY *sign_key;   /* berth.tokenissuer.key, or NULL */
	EVP_PKEY **vkeys;     /* keys that verify tokens */
	size_t nvkeys;
	unsigned char cache_key[32];
	struct pw_slot cache[PW_CACHE_SLOTS];
	pthread_mutex_t lock;
};

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || !errlen) return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* ---- pure parsers ---- */

static int b64_val(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == (url ? '-' : '+')) return 62;
	if (c == (url ? '_' : '/')) return 63;
	return -1;
}

/* Base64 (RFC 4648 §4, padding optional) or base64url (§5, no padding). */
static berth_err b64_decode(const char *s, size_t n, unsigned char *out, size_t cap,
			    size_t *outlen, int url)
{
	uint32_t acc = 0;
	size_t o = 0, bits = 0;

	if (!url) {
		if (n % 4 == 0 && n >= 1 && s[n - 1] == '=') n--;
		if (n % 4 == 3 && n >= 1 && s[n - 1] == '=') n--;
	}
	if (n % 4 == 1) return BERTH_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val((unsigned char)s[i], url);
		if (v < 0) return BERTH_EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap) return BERTH_EINVAL;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = o;
	return BERTH_OK;
}

berth_err berth_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap,
			      size_t *outlen)
{
	return b64_decode(s, n, out, cap, outlen, 1);
}

/* base64url without padding; returns the length written (out has room for it + NUL). */
static char *b64url_encode(const unsigned char *in, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out;
	size_t o = 0, i;

	if (n > SIZE_MAX / 2) return NULL;
	out = malloc(n / 3 * 4 + 5);
	if (!out) return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
	}
	out[o] = '\0';
	return out;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

berth_err berth_authz_parse(const char *h, size_t n, struct berth_authz *out)
{
	size_t i = 0, s;

	memset(out, 0, sizeof *out);
	if (n > BERTH_AUTHZ_MAX) return BERTH_EINVAL;
	while (i < n && (h[i] == ' ' || h[i] == '\t'))
		i++;
	s = i;
	while (i < n && h[i] != ' ' && h[i] != '\t')
		i++;
	if (i == s) return BERTH_EINVAL;
	if (i - s == 5 && strncasecmp(h + s, "basic", 5) == 0)
		out->scheme = BERTH_AUTHZ_BASIC;
	else if (i - s == 6 && strncasecmp(h + s, "bearer", 6) == 0)
		out->scheme = BERTH_AUTHZ_BEARER;
	while (i < n && (h[i] == ' ' || h[i] == '\t'))
		i++;
	while (n > i && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	out->cred = h + i;
	out->cred_len = n - i;
	if (out->scheme != BERTH_AUTHZ_OTHER && out->cred_len == 0) return BERTH_EINVAL;
	return BERTH_OK;
}

berth_err berth_basic_decode(const char *cred, size_t n, char user[BERTH_USER_MAX + 1],
			     char pw[BERTH_PASSWORD_MAX + 1])
{
	unsigned char buf[BERTH_USER_MAX + BERTH_PASSWORD_MAX + 2];
	const unsigned char *colon;
	size_t len = 0, ulen, plen;
	berth_err rc = BERTH_EINVAL;

	user[0] = pw[0] = '\0';
	if (n > (sizeof buf + 2) / 3 * 4 + 4) return BERTH_EINVAL;
	if (b64_decode(cred, n, buf, sizeof buf, &len, 0)) goto out;
	if (memchr(buf, '\0', len)) goto out;
	colon = memchr(buf, ':', len);
	if (!colon) goto out;
	ulen = (size_t)(colon - buf);
	plen = len - ulen - 1;
	if (ulen == 0 || ulen > BERTH_USER_MAX || plen > BERTH_PASSWORD_MAX) goto out;
	memcpy(user, buf, ulen);
	user[ulen] = '\0';
	memcpy(pw, colon + 1, plen);
	pw[plen] = '\0';
	rc = BERTH_OK;
out:
	explicit_bzero(buf, sizeof buf);
	return rc;
}

berth_err berth_htpasswd_parse_line(const char *s, size_t n, struct berth_htpasswd_line *out)
{
	const char *colon;
	size_t i = 0;

	memset(out, 0, sizeof *out);
	if (n > BERTH_HTPASSWD_LINE_MAX) return BERTH_EINVAL;
	while (i < n && is_blank(s[i]))
		i++;
	while (n > i && is_blank(s[n - 1]))
		n--;
	if (i == n || s[i] == '#') {
		out->skip = 1;
		return BERTH_OK;
	}
	colon = memchr(s + i, ':', n - i);
	if (!colon || colon == s + i) return BERTH_EINVAL;
	out->user = s + i;
	out->user_len = (size_t)(colon - (s + i));
	out->hash = colon + 1;
	out->hash_len = (size_t)(s + n - out->hash);
	if (out->user_len > BERTH_USER_MAX || memchr(s + i, '\0', n - i)) return BERTH_EINVAL;
	return BERTH_OK;
}

static int has_prefix(const char *s, size_t n, const char *p)
{
	size_t l = strlen(p);
	return n >= l && memcmp(s, p, l) == 0;
}

const char *berth_htpasswd_hash_type(const char *h, size_t n)
{
	if (has_prefix(h, n, "$2y$") || has_prefix(h, n, "$2b$") || has_prefix(h, n, "$2a$"))
		return "bcrypt";
	if (has_prefix(h, n, "$apr1$")) return "MD5 (apr1)";
	if (has_prefix(h, n, "$1$")) return "MD5-crypt";
	if (has_prefix(h, n, "{SHA}")) return "SHA-1";
	if (has_prefix(h, n, "$5$")) return "SHA-256-crypt";
	if (has_prefix(h, n, "$6$")) return "SHA-512-crypt";
	if (has_prefix(h, n, "$y$")) return "yescrypt";
	if (has_prefix(h, n, "$")) return "unknown crypt";
	return "crypt(3) DES or plain text";
}

/* "$2b$NN$" + 53 characters of the bcrypt alphabet. */
static int bcrypt_valid(const char *h, size_t n)
{
	if (n != BCRYPT_LEN || strcmp(berth_htpasswd_hash_type(h, n), "bcrypt") != 0) return 0;
	if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$') return 0;
	for (size_t i = 7; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '/'))
			return 0;
	return 1;
}

berth_err berth_jwt_split(const char *t, size_t n, struct berth_jwt_parts *out)
{
	const char *d1, *d2;

	memset(out, 0, sizeof *out);
	if (n == 0 || n > BERTH_AUTHZ_MAX) return BERTH_EINVAL;
	d1 = memchr(t, '.', n);
	if (!d1) return BERTH_EINVAL;
	d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - t));
	if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - t))) return BERTH_EINVAL;
	out->header = t;
	out->header_len = (size_t)(d1 - t);
	out->payload = d1 + 1;
	out->payload_len = (size_t)(d2 - d1 - 1);
	out->sig = d2 + 1;
	out->sig_len = n - (size_t)(d2 + 1 - t);
	out->signed_len = (size_t)(d2 - t);
	if (!out->header_len || !out->payload_len || !out->sig_len) return BERTH_EINVAL;
	return BERTH_OK;
}

static unsigned action_bit(const char *s, size_t n)
{
	if (n == 4 && memcmp(s, "pull", 4) == 0) return BERTH_ACTION_PULL;
	if (n == 4 && memcmp(s, "push", 4) == 0) return BERTH_ACTION_PUSH;
	if (n == 6 && memcmp(s, "delete", 6) == 0) return BERTH_ACTION_DELETE;
	if (n == 1 && s[0] == '*') return BERTH_ACTION_ALL;
	return 0;
}

berth_err berth_scope_parse(const char *s, size_t n, struct berth_scope *out)
{
	const char *c1, *c2;
	size_t tlen, i, start;

	memset(out, 0, sizeof *out);
	if (n > BERTH_PATTERN_MAX + 64) return BERTH_EINVAL;
	c1 = memchr(s, ':', n);
	if (!c1) return BERTH_EINVAL;
	for (c2 = s + n - 1; c2 > c1 && *c2 != ':'; c2--)
		;
	if (c2 == c1) return BERTH_EINVAL;
	tlen = (size_t)(c1 - s);
	out->name = c1 + 1;
	out->name_len = (size_t)(c2 - c1 - 1);
	if (out->name_len == 0 || out->name_len > BERTH_NAME_MAX) return BERTH_EINVAL;
	if (tlen == 10 && memcmp(s, "repository", 10) == 0)
		out->type = BERTH_SCOPE_REPOSITORY;
	else if (tlen == 8 && memcmp(s, "registry", 8) == 0 && out->name_len == 7 &&
		 memcmp(out->name, "catalog", 7) == 0)
		out->type = BERTH_SCOPE_CATALOG;
	start = (size_t)(c2 + 1 - s);
	for (i = start; i <= n; i++) {
		if (i < n && s[i] != ',') continue;
		out->actions |= action_bit(s + start, i - start);
		start = i + 1;
	}
	return BERTH_OK;
}

void berth_actions_format(unsigned actions, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s%s%s", actions & BERTH_ACTION_PULL ? "pull" : "",
		 (actions & BERTH_ACTION_PULL) && (actions & (BERTH_ACTION_PUSH | BERTH_ACTION_DELETE))
			 ? ","
			 : "",
		 actions & BERTH_ACTION_PUSH ? "push" : "",
		 (actions & BERTH_ACTION_PUSH) && (actions & BERTH_ACTION_DELETE) ? "," : "",
		 actions & BERTH_ACTION_DELETE ? "delete" : "");
}

/* ---- patterns and rules ---- */


static int in_group(const struct berth_config *c, const char *group, const char *user)
{
	for (size_t g = 0; g < c->ngroups; g++) {
		if (strcmp(c->groups[g].name, group) != 0) continue;
		for (size_t m = 0; m < c->groups[g].nmembers; m++)
			if (strcmp(c->groups[g].members[m], user) == 0) return 1;
	}
	return 0;
}

static int user_matches(const struct berth_config *c, const char *entry, const char *user)
{
	if (!user) return strcmp(entry, "anonymous") == 0;
	if (strcmp(entry, "*") == 0) return 1;
	if (strcmp(entry, "anonymous") == 0) return 0;
	if (entry[0] == '@') return in_group(c, entry + 1, user);
	return strcmp(entry, user) == 0;
}

unsigned berth_auth_actions(const struct berth_auth *a, const char *user, const char *repo)
{
	const struct berth_config *c;
	unsigned bits = 0;
	size_t rlen = strlen(repo);

	if (!a) return BERTH_ACTION_ALL;
	c = a->cfg;
	if (c->naccess == 0) return user ? BERTH_ACTION_ALL : 0;
	for (size_t i = 0; i < c->naccess && bits != BERTH_ACTION_ALL; i++) {
		const struct berth_access_rule *r = &c->access[i];
		int who = 0, what = 0;
		if ((bits | r->actions) == bits) continue;
		for (size_t u = 0; u < r->nusers && !who; u++)
			who = user_matches(c, r->users[u], user);
		for (size_t p = 0; who && p < r->nrepos && !what; p++)
			what = berth_pattern_match(r->repos[p], strlen(r->repos[p]), repo, rlen);
		if (who && what) bits |= r->actions;
	}
	return bits;
}

int berth_auth_allowed(const struct berth_auth *a, const char *user, const char *repo,
		       unsigned actions)
{
	return (berth_auth_actions(a, user, repo) & actions) == actions;
}

int berth_auth_anonymous_any(const struct berth_auth *a)
{
	if (!a) return 1;
	for (size_t i = 0; i < a->cfg->naccess; i++)
		for (size_t u = 0; u < a->cfg->access[i].nusers; u++)
			if (strcmp(a->cfg->access[i].users[u], "anonymous") == 0) return 1;
	return 0;
}

/* ---- files and keys ---- */

static berth_err slurp(const char *path, size_t max, char **out, size_t *outlen, char *errbuf,
		       size_t errlen, const char *what)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	berth_err rc = BERTH_OK;

	if (fd < 0) {
		fail(errbuf, errlen, "auth: cannot open %s %s: %s", what, path, strerror(errno));
		return BERTH_ENOTFOUND;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fail(errbuf, errlen, "auth: %s %s: not a regular file", what, path);
		rc = BERTH_EINVAL;
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		fail(errbuf, errlen, "auth: %s %s: larger than %zu bytes", what, path, max);
		rc = BERTH_EINVAL;
		goto out;
	}
	/* Sized from the file, not the cap (16 MiB for htpasswd), growing only if the file grows
	 * while it is read. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	for (;;) {
		if (len == cap) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
			if (!nb) {
				fail(errbuf, errlen, "auth: %s %s: larger than %zu bytes", what, path,
				     max);
				rc = ncap > cap ? BERTH_ENOMEM : BERTH_EINVAL;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			fail(errbuf, errlen, "auth: cannot read %s %s: %s", what, path,
			     strerror(errno));
			rc = BERTH_EIO;
			goto out;
		}
		if (r == 0) break;
		len += (size_t)r;
		if (len > max) {
			fail(errbuf, errlen, "auth: %s %s: larger than %zu bytes", what, path, max);
			rc = BERTH_EINVAL;
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	close(fd);
	return rc;
}

static int user_cmp(const void *x, const void *y)
{
	return strcmp(((const struct htuser *)x)->name, ((const struct htuser *)y)->name);
}

static berth_err load_htpasswd(struct berth_auth *a, const char *path, char *errbuf,
			       size_t errlen)
{
	char *text = NULL;
	size_t len = 0, lineno = 0, cap = 0, start = 0;
	int cost = 10;
	berth_err rc;

	rc = slurp(path, BERTH_HTPASSWD_FILE_MAX, &text, &len, errbuf, errlen, "htpasswd file");
	if (rc) return rc;
	for (size_t i = 0; i <= len; i++) {
		struct berth_htpasswd_line l;
		const char *type;
		if (i < len && text[i] != '\n') continue;
		lineno++;
		if (berth_htpasswd_parse_line(text + start, i - start, &l)) {
			fail(errbuf, errlen, "auth: htpasswd %s:%zu: invalid entry (want user:hash)",
			     path, lineno);
			rc = BERTH_EINVAL;
			goto out;
		}
		start = i + 1;
		if (l.skip) continue;
		type = berth_htpasswd_hash_type(l.hash, l.hash_len);
		if (!bcrypt_valid(l.hash, l.hash_len)) {
			berth_log(BERTH_LOG_WARN,
				  "auth: htpasswd %s:%zu: user %.*s: %s hashes are not supported "
				  "(bcrypt only); entry skipped",
				  path, lineno, (int)l.user_len, l.user,
				  strcmp(type, "bcrypt") == 0 ? "malformed bcrypt" : type);
			continue;
		}
		if (a->nusers == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct htuser *nu = realloc(a->users, ncap * sizeof *nu);
			if (!nu) {
				rc = BERTH_ENOMEM;
				goto out;
			}
			a->users = nu;
			cap = ncap;
		}
		a->users[a->nusers].name = strndup(l.user, l.user_len);
		if (!a->users[a->nusers].name) {
			rc = BERTH_ENOMEM;
			goto out;
		}
		memcpy(a->users[a->nusers].hash, l.hash, BCRYPT_LEN);
		a->users[a->nusers].hash[BCRYPT_LEN] = '\0';
		int c = (l.hash[4] - '0') * 10 + (l.hash[5] - '0');
		if (c > cost) cost = c;
		a->nusers++;
	}
	if (a->nusers) qsort(a->users, a->nusers, sizeof *a->users, user_cmp);
	/* A user listed twice: the later line wins, as in Distribution (a map keyed by user). */
	for (size_t i = 1; i < a->nusers;) {
		if (strcmp(a->users[i - 1].name, a->users[i].name) != 0) {
			i++;
			continue;
		}
		berth_log(BERTH_LOG_WARN, "auth: htpasswd %s: user %s listed more than once", path,
			  a->users[i].name);
		free(a->users[i - 1].name);
		memmove(&a->users[i - 1], &a->users[i], (a->nusers - i) * sizeof *a->users);
		a->nusers--;
	}
	{
		unsigned char rnd[16];
		if (RAND_bytes(rnd, sizeof rnd) != 1 ||
		    !crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)rnd, sizeof rnd,
				      a->dummy, (int)sizeof a->dummy)) {
			fail(errbuf, errlen, "auth: cannot make a bcrypt salt");
			rc = BERTH_EINTERNAL;
			goto out;
		}
	}
	if (a->nusers == 0)
		berth_log(BERTH_LOG_WARN, "auth: htpasswd %s holds no usable (bcrypt) entries", path);
	berth_log(BERTH_LOG_INFO, "auth: %zu users from %s", a->nusers, path);
out:
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* RSA of at least 2048 bits (RFC 7518 §3.3) or EC on P-256 (§3.4). "RS256"/"ES256"/NULL. */
static const char *key_alg(EVP_PKEY *k)
{
	char group[64];
	size_t gl = 0;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
		return EVP_PKEY_get_bits(k) >= 2048 ? "RS256" : NULL;
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, group, sizeof group, &gl) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		return "ES256";
	return NULL;
}

static berth_err add_vkey(struct berth_auth *a, EVP_PKEY *k)
{
	EVP_PKEY **nk = realloc(a->vkeys, (a->nvkeys + 1) * sizeof *nk);
	if (!nk) return BERTH_ENOMEM;
	a->vkeys = nk;
	a->vkeys[a->nvkeys++] = k;
	return BERTH_OK;
}

static berth_err load_sign_key(struct berth_auth *a, const char *path, char *errbuf,
			       size_t errlen)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	berth_err rc;

	rc = slurp(path, BERTH_PEM_MAX, &pem, &len, errbuf, errlen, "token issuer key");
	if (rc) return rc;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	a->sign_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (!a->sign_key || !key_alg(a->sign_key)) {
		fail(errbuf, errlen,
		     "auth: berth.tokenissuer.key %s: not a PEM private key of RSA (2048 bits or "
		     "more) or EC P-256",
		     path);
		rc = BERTH_EINVAL;
		goto out;
	}
	if (!EVP_PKEY_up_ref(a->sign_key)) {
		rc = BERTH_EINTERNAL;
		goto out;
	}
	rc = add_vkey(a, a->sign_key);
	if (rc) EVP_PKEY_free(a->sign_key);
out:
	BIO_free(bio);
	explicit_bzero(pem, len);
	free(pem);
	return rc;
}

static berth_err load_bundle(struct berth_auth *a, const char *path, char *errbuf, size_t errlen)
{
	char *pem = NULL;
	size_t len = 0, n = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	berth_err rc;

	rc = slurp(path, BERTH_PEM_MAX, &pem, &len, errbuf, errlen, "root certificate bundle");
	if (rc) return rc;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		EVP_PKEY *k = X509_get_pubkey(x);
		X509_free(x);
		if (!k || !key_alg(k)) {
			EVP_PKEY_free(k);
			fail(errbuf, errlen,
			     "auth: auth.token.rootcertbundle %s: certificate %zu has a key that is "
			     "neither RSA (2048 bits or more) nor EC P-256",
			     path, n + 1);
			rc = BERTH_EINVAL;
			goto out;
		}
		if ((rc = add_vkey(a, k))) {
			EVP_PKEY_free(k);
			goto out;
		}
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		fail(errbuf, errlen, "auth: auth.token.rootcertbundle %s: no PEM certificates",
		     path);
		rc = BERTH_EINVAL;
	}
out:
	BIO_free(bio);
	free(pem);
	return rc;
}

berth_err berth_auth_new(const struct berth_config *cfg, struct berth_auth **out, char *errbuf,
			 size_t errlen)
{
	struct berth_auth *a = calloc(1, sizeof *a);
	berth_err rc = BERTH_OK;

	*out = NULL;
	if (!a) return BERTH_ENOMEM;
	a->cfg = cfg;
	pthread_mutex_init(&a->lock, NULL);
	a->mode = (cfg->token_service || cfg->tokenissuer_enabled) ? BERTH_AUTH_TOKEN
								    : BERTH_AUTH_BASIC;
	if (RAND_bytes(a->cache_key, sizeof a->cache_key) != 1) {
		rc = BERTH_EINTERNAL;
		goto out;
	}
	if (cfg->htpasswd_path && (rc = load_htpasswd(a, cfg->htpasswd_path, errbuf, errlen)))
		goto out;
	if (cfg->tokenissuer_enabled &&
	    (rc = load_sign_key(a, cfg->tokenissuer_key, errbuf, errlen)))
		goto out;
	if (cfg->token_rootcertbundle &&
	    (rc = load_bundle(a, cfg->token_rootcertbundle, errbuf, errlen)))
		goto out;
	if (a->mode == BERTH_AUTH_TOKEN && a->nvkeys == 0) {
		fail(errbuf, errlen, "auth: no key to verify tokens with");
		rc = BERTH_EINVAL;
		goto out;
	}
	*out = a;
	a = NULL;
out:
	berth_auth_free(a);
	return rc;
}

void berth_auth_free(struct berth_auth *a)
{
	if (!a) return;
	for (size_t i = 0; i < a->nusers; i++) {
		free(a->users[i].name);
		explicit_bzero(a->users[i].hash, sizeof a->users[i].hash);
	}
	free(a->users);
	for (size_t i = 0; i < a->nvkeys; i++)
		EVP_PKEY_free(a->vkeys[i]);
	free(a->vkeys);
	EVP_PKEY_free(a->sign_key);
	explicit_bzero(a->cache_key, sizeof a->cache_key);
	explicit_bzero(a->cache, sizeof a->cache);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

enum berth_auth_mode berth_auth_mode(const struct berth_auth *a)
{
	return a->mode;
}

const struct berth_config *berth_auth_config(const struct berth_auth *a)
{
	return a->cfg;
}

size_t berth_auth_user_count(const struct berth_auth *a)
{
	return a->nusers;
}

static const struct htuser *find_user(const struct berth_auth *a, const char *user)
{
	struct htuser key = {.name = (char *)(uintptr_t)user};
	return a->nusers ? bsearch(&key, a->users, a->nusers, sizeof *a->users, user_cmp) : NULL;
}

int berth_auth_user_exists(const struct berth_auth *a, const char *user)
{
	return find_user(a, user) != NULL;
}

/* ---- passwords ---- */

static void pw_mac(const struct berth_auth *a, const char *user, size_t ulen, const char *pw,
		   size_t pwlen, unsigned char mac[32])
{
	unsigned char buf[BERTH_USER_MAX + 1 + BERTH_PASSWORD_MAX];
	unsigned int ml = 32;

	memcpy(buf, user, ulen);
	buf[ulen] = '\0';
	memcpy(buf + ulen + 1, pw, pwlen);
	if (!HMAC(EVP_sha256(), a->cache_key, sizeof a->cache_key, buf, ulen + 1 + pwlen, mac, &ml))
		memset(mac, 0, 32);
	explicit_bzero(buf, sizeof buf);
}

berth_err berth_auth_password(struct berth_auth *a, const char *user, size_t ulen,
			      const char *pw, size_t pwlen)
{
	char name[BERTH_USER_MAX + 1], *pwz = NULL;
	struct crypt_data *cd = NULL;
	const struct htuser *u;
	unsigned char mac[32];
	struct pw_slot *slot;
	const char *res;
	time_t now = time(NULL);
	int ok = 0;

	if (ulen == 0 || ulen > BERTH_USER_MAX || pwlen > BERTH_PASSWORD_MAX ||
	    memchr(user, '\0', ulen) || memchr(pw, '\0', pwlen))
		return BERTH_EUNAUTHORIZED;
	memcpy(name, user, ulen);
	name[ulen] = '\0';
	u = find_user(a, name);
	pw_mac(a, user, ulen, pw, pwlen, mac);
	slot = &a->cache[mac[0] % PW_CACHE_SLOTS];
	pthread_mutex_lock(&a->lock);
	ok = u && slot->expires > now && CRYPTO_memcmp(slot->mac, mac, sizeof mac) == 0;
	pthread_mutex_unlock(&a->lock);
	if (ok) goto out;

	pwz = malloc(pwlen + 1);
	cd = calloc(1, sizeof *cd);
	if (!pwz || !cd) goto out;
	memcpy(pwz, pw, pwlen);
	pwz[pwlen] = '\0';
	/* The stored hash is the setting: crypt_r re-hashes pw with its salt and cost. An
	 * unknown user runs the same bcrypt on a dummy setting of the highest cost in the file. */
	res = crypt_r(pwz, u ? u->hash : a->dummy, cd);
	if (u && res && strlen(res) == BCRYPT_LEN)
		ok = CRYPTO_memcmp(res, u->hash, BCRYPT_LEN) == 0;
	if (ok) {
		pthread_mutex_lock(&a->lock);
		memcpy(slot->mac, mac, sizeof mac);
		slot->expires = now + PW_CACHE_TTL;
		pthread_mutex_unlock(&a->lock);
	}
out:
	if (cd) explicit_bzero(cd, sizeof *cd);
	free(cd);
	if (pwz) explicit_bzero(pwz, pwlen + 1);
	free(pwz);
	explicit_bzero(mac, sizeof mac);
	return ok ? BERTH_OK : BERTH_EUNAUTHORIZED;
}

/* ---- tokens: verify ---- */

/* ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4); OpenSSL wants DER. */
static unsigned char *es256_to_der(const unsigned char *sig, size_t n, size_t *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int len;

	if (n != 64) return NULL;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (len <= 0) return NULL;
	*derlen = (size_t)len;
	return der;
}

static int verify_with(EVP_PKEY *k, const char *alg, const unsigned char *msg, size_t mlen,
		       const unsigned char *sig, size_t slen)
{
	EVP_MD_CTX *ctx;
	unsigned char *der = NULL;
	size_t derlen = 0;
	int ok = 0;
	const char *kalg = key_alg(k);

	if (!kalg || strcmp(kalg, alg) != 0) return 0;
	if (strcmp(alg, "ES256") == 0) {
		der = es256_to_der(sig, slen, &derlen);
		if (!der) return 0;
		sig = der;
		slen = derlen;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

static json_t *decode_json_part(const char *s, size_t n)
{
	unsigned char *buf;
	size_t len = 0;
	json_t *j = NULL;

	if (n > JWT_PART_MAX / 3 * 4 + 4) return NULL;
	buf = malloc(n / 4 * 3 + 3);
	if (!buf) return NULL;
	if (berth_b64url_decode(s, n, buf, n / 4 * 3 + 3, &len) == BERTH_OK)
		j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int num_claim(json_t *p, const char *name, int required, double *out)
{
	json_t *v = json_object_get(p, name);
	if (!v) return !required;
	if (!json_is_number(v)) return 0;
	*out = json_number_value(v);
	return 1;
}

static int aud_ok(json_t *aud, const char *service)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud)) return strcmp(json_string_value(aud), service) == 0;
	if (!json_is_array(aud)) return 0;
	json_array_foreach(aud, i, v) if (json_is_string(v) &&
					  strcmp(json_string_value(v), service) == 0) return 1;
	return 0;
}

/* Distribution's access claim: [{"type":"repository","name":...,"actions":[...]}]. */
static int read_access(json_t *acc, struct berth_token *out)
{
	size_t i, j;
	json_t *e, *act;

	if (!acc) return 1;
	if (!json_is_array(acc) || json_array_size(acc) > BERTH_TOKEN_ACCESS_MAX) return 0;
	json_array_foreach(acc, i, e)
	{
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *actions = json_object_get(e, "actions");
		struct berth_token_grant *g = &out->grants[out->ngrants];
		if (!type || !name || !json_is_array(actions)) return 0;
		if (strcmp(type, "repository") == 0)
			g->type = BERTH_SCOPE_REPOSITORY;
		else if (strcmp(type, "registry") == 0 && strcmp(name, "catalog") == 0)
			g->type = BERTH_SCOPE_CATALOG;
		else
			continue;
		if (strlen(name) > BERTH_NAME_MAX) return 0;
		snprintf(g->name, sizeof g->name, "%s", name);
		g->actions = 0;
		json_array_foreach(actions, j, act)
		{
			const char *s = json_string_value(act);
			if (s) g->actions |= action_bit(s, strlen(s));
		}
		out->ngrants++;
	}
	return 1;
}

berth_err berth_auth_token_verify(const struct berth_auth *a, const char *tok, size_t n,
				  time_t now, int refresh, struct berth_token *out)
{
	struct berth_jwt_parts jp;
	unsigned char sig[1024];
	size_t siglen = 0;
	json_t *h = NULL, *p = NULL;
	const char *alg, *typ, *iss, *sub;
	double exp = 0, nbf = 0;
	int ok = 0;

	memset(out, 0, sizeof *out);
	if (berth_jwt_split(tok, n, &jp)) goto out;
	if (berth_b64url_decode(jp.sig, jp.sig_len, sig, sizeof sig, &siglen)) goto out;
	if (!(h = decode_json_part(jp.header, jp.header_len))) goto out;
	alg = json_string_value(json_object_get(h, "alg"));
	/* Only asymmetric algorithms: "none" and HS* would let anyone who knows the public key
	 * (or nothing at all) mint tokens (RFC 8725 §2.1). */
	if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) goto out;
	/* Extensions we do not understand must be rejected (RFC 7515 §4.1.11). */
	if (json_object_get(h, "crit")) goto out;
	typ = json_string_value(json_object_get(h, "typ"));
	if (refresh != (typ && strcmp(typ, TYP_REFRESH) == 0)) goto out;
	for (size_t i = 0; i < a->nvkeys && !ok; i++)
		ok = verify_with(a->vkeys[i], alg, (const unsigned char *)tok, jp.signed_len, sig,
				 siglen);
	if (!ok) goto out;
	ok = 0;
	if (!(p = decode_json_part(jp.payload, jp.payload_len))) goto out;
	if (!num_claim(p, "exp", 1, &exp) || !num_claim(p, "nbf", 0, &nbf)) goto out;
	/* A NumericDate (RFC 7519 §2) past year 9999 is no date we can hold in time_t; refuse
	 * it rather than convert out of range (found by fuzz_jwt: "exp": 1e300). */
	if (!(exp >= 0 && exp < 253402300800.0) || !(nbf >= 0 && nbf < 253402300800.0)) goto out;
	if ((double)now > exp + BERTH_TOKEN_LEEWAY) goto out;
	if (nbf && nbf > (double)now + BERTH_TOKEN_LEEWAY) goto out;
	iss = json_string_value(json_object_get(p, "iss"));
	if (!iss || !a->cfg->token_issuer || strcmp(iss, a->cfg->token_issuer) != 0) goto out;
	if (!a->cfg->token_service || !aud_ok(json_object_get(p, "aud"), a->cfg->token_service))
		goto out;
	sub = json_string_value(json_object_get(p, "sub"));
	if (json_object_get(p, "sub") && !sub) goto out;
	if (sub && strlen(sub) > BERTH_USER_MAX) goto out;
	snprintf(out->sub, sizeof out->sub, "%s", sub ? sub : "");
	out->exp = (time_t)exp;
	if (!refresh && !read_access(json_object_get(p, "access"), out)) goto out;
	ok = 1;
out:
	json_decref(h);
	json_decref(p);
	if (!ok) memset(out, 0, sizeof *out);
	return ok ? BERTH_OK : BERTH_EUNAUTHORIZED;
}

unsigned berth_token_actions(const struct berth_token *t, const char *repo)
{
	unsigned bits = 0;
	for (size_t i = 0; i < t->ngrants; i++)
		if (t->grants[i].type == BERTH_SCOPE_REPOSITORY && strcmp(t->grants[i].name, repo) == 0)
			bits |= t->grants[i].actions;
	return bits;
}

int berth_token_catalog(const struct berth_token *t)
{
	for (size_t i = 0; i < t->ngrants; i++)
		if (t->grants[i].type == BERTH_SCOPE_CATALOG && t->grants[i].actions) return 1;
	return 0;
}

/* ---- tokens: issue ---- */

berth_err berth_auth_jws_sign(const struct berth_auth *a, const char *header_json,
			      const char *payload_json, char **out)
{
	char *h64 = NULL, *p64 = NULL, *s64 = NULL, *msg = NULL, *res = NULL;
	unsigned char *sig = NULL, raw[64];
	const unsigned char *sp;
	size_t siglen = 0, mlen;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	berth_err rc = BERTH_ENOMEM;

	*out = NULL;
	if (!a->sign_key) return BERTH_EUNSUPPORTED;
	h64 = b64url_encode((const unsigned char *)header_json, strlen(header_json));
	p64 = b64url_encode((const unsigned char *)payload_json, strlen(payload_json));
	if (!h64 || !p64) goto out;
	mlen = strlen(h64) + 1 + strlen(p64);
	if (!(msg = malloc(mlen + 1))) goto out;
	snprintf(msg, mlen + 1, "%s.%s", h64, p64);
	rc = BERTH_EINTERNAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, a->sign_key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)msg, mlen) != 1)
		goto out;
	if (!(sig = malloc(siglen))) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg, mlen) != 1) goto out;
	if (strcmp(key_alg(a->sign_key), "ES256") == 0) {
		const BIGNUM *r, *s;
		sp = sig;
		if (!(es = d2i_ECDSA_SIG(NULL, &sp, (long)siglen))) goto out;
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) goto out;
		s64 = b64url_encode(raw, 64);
	} else {
		s64 = b64url_encode(sig, siglen);
	}
	if (!s64) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	if (!(res = malloc(mlen + 1 + strlen(s64) + 1))) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	snprintf(res, mlen + 1 + strlen(s64) + 1, "%s.%s", msg, s64);
	*out = res;
	rc = BERTH_OK;
out:
	ERR_clear_error();
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(msg);
	free(h64);
	free(p64);
	free(s64);
	return rc;
}

berth_err berth_auth_token_issue(const struct berth_auth *a, const char *sub,
				 const struct berth_token_grant *grants, size_t ngrants,
				 time_t now, long lifetime, int refresh, char **out)
{
	unsigned char rnd[16];
	char jti[33], *htext = NULL, *ptext = NULL;
	json_t *h = NULL, *p = NULL, *acc = NULL;
	berth_err rc = BERTH_ENOMEM;

	*out = NULL;
	if (!a->sign_key) return BERTH_EUNSUPPORTED;
	if (RAND_bytes(rnd, sizeof rnd) != 1) return BERTH_EINTERNAL;
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	h = json_pack("{s:s,s:s}", "typ", refresh ? TYP_REFRESH : "JWT", "alg",
		      key_alg(a->sign_key));
	p = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s}", "iss", a->cfg->token_issuer, "sub", sub,
		      "aud", a->cfg->token_service, "exp", (json_int_t)(now + lifetime), "nbf",
		      (json_int_t)now, "iat", (json_int_t)now, "jti", jti);
	if (!h || !p) goto out;
	if (!refresh) {
		if (!(acc = json_array())) goto out;
		for (size_t i = 0; i < ngrants; i++) {
			json_t *actions = json_array(), *e;
			if (!actions) goto out;
			if (grants[i].type == BERTH_SCOPE_CATALOG) {
				json_array_append_new(actions, json_string("*"));
			} else {
				if (grants[i].actions & BERTH_ACTION_PULL)
					json_array_append_new(actions, json_string("pull"));
				if (grants[i].actions & BERTH_ACTION_PUSH)
					json_array_append_new(actions, json_string("push"));
				if (grants[i].actions & BERTH_ACTION_DELETE)
					json_array_append_new(actions, json_string("delete"));
			}
			e = json_pack("{s:s,s:s,s:o}", "type",
				      grants[i].type == BERTH_SCOPE_CATALOG ? "registry" : "repository",
				      "name", grants[i].name, "actions", actions);
			if (!e || json_array_append_new(acc, e)) goto out;
		}
		if (json_object_set_new(p, "access", acc)) {
			acc = NULL;
			goto out;
		}
		acc = NULL;
	}
	htext = json_dumps(h, JSON_COMPACT);
	ptext = json_dumps(p, JSON_COMPACT);
	if (!htext || !ptext) goto out;
	rc = berth_auth_jws_sign(a, htext, ptext, out);
out:
	json_decref(acc);
	json_decref(h);
	json_decref(p);
	free(htext);
	free(ptext);
	return rc;
}

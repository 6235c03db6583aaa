/* ref.c — the name and tag grammars of the OCI distribution-spec ("Pulling manifests"),
 * hand-written so that validation is linear in the input and reads nothing past len. */
#include "ref.h"

#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "limits.h"

static int ref_is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int ref_is_alnum(char c)
{
	return ref_is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A separator between two alphanumeric runs of one path component: "." | "_" | "__" | "-"+ .
 * Any other run ("..", "._", "___", "-_") is not in the grammar. */
static int ref_separator_valid(const char *s, size_t len)
{
	if (len == 1) return s[0] == '.' || s[0] == '_' || s[0] == '-';
	if (len == 2 && s[0] == '_' && s[1] == '_') return 1;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '-') return 0;
	return 1;
}

/* One path component: [a-z0-9]+ ( separator [a-z0-9]+ )* — so it starts and ends with an
 * alphanumeric, which also rules out empty components ("a//b", "/a", "a/"). */
static int ref_component_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !ref_is_lower_alnum(s[0]) || !ref_is_lower_alnum(s[len - 1])) return 0;
	while (i < len) {
		size_t sep;

		if (ref_is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		sep = i;
		while (i < len && !ref_is_lower_alnum(s[i]))
			i++;
		/* i < len here: the component ends with an alphanumeric. */
		if (!ref_separator_valid(s + sep, i - sep)) return 0;
	}
	return 1;
}

int berth_ref_name_valid(const char *s, size_t len)
{
	size_t start = 0;

	if (!s || len == 0 || len > BERTH_NAME_MAX) return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/') continue;
		if (!ref_component_valid(s + start, i - start)) return 0;
		start = i + 1;
	}
	return 1;
}

int berth_ref_tag_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > BERTH_TAG_MAX) return 0;
	if (!ref_is_alnum(s[0]) && s[0] != '_') return 0;
	for (size_t i = 1; i < len; i++)
		if (!ref_is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
	return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Image references, read the way Docker's distribution/reference reads them (normalize.go
 * ParseNormalizedNamed, splitDockerDomain; reference.go Parse; regexp.go for the grammar):
 *
 *   reference := name [":" tag] ["@" digest]      name := [domain "/"] path
 *   domain    := host [":" [0-9]+]                host := domain-name | "[" [a-fA-F0-9:]+ "]"
 *   domain-name := label ("." label)*             label := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *
 * The grammar alone is ambiguous ("foo/bar": domain or path?); Docker settles it before parsing
 * by looking at the text before the first '/': it is the domain when it is "localhost", contains
 * '.' or ':', or has an upper-case letter; otherwise the domain is docker.io. */

#define REF_DEFAULT_DOMAIN "docker.io"
#define REF_LEGACY_DOMAIN "index.docker.io"
#define REF_OFFICIAL_PREFIX "library/"
#define REF_DEFAULT_TAG "latest"

static const char REF_E_EMPTY[] = "invalid reference format: empty reference";
static const char REF_E_TOO_LONG[] = "invalid reference format: reference too long";
static const char REF_E_IDENTIFIER[] =
	"invalid repository name: cannot specify 64-byte hexadecimal strings";
static const char REF_E_DOMAIN[] = "invalid reference format: invalid domain";
static const char REF_E_IPV6[] = "invalid reference format: invalid IPv6 address in domain";
static const char REF_E_PORT[] = "invalid port";
static const char REF_E_DOMAIN_LONG[] = "domain must not be more than 255 characters";
static const char REF_E_NO_NAME[] = "invalid reference format: missing repository name";
static const char REF_E_EMPTY_COMPONENT[] = "empty path component";
static const char REF_E_UPPER[] = "repository name must be lowercase";
static const char REF_E_COMPONENT[] = "invalid reference format: invalid path component";
static const char REF_E_NAME_LONG[] = "repository name must not be more than 255 characters";
static const char REF_E_TAG_EMPTY[] = "invalid reference format: empty tag";
static const char REF_E_TAG[] = "invalid reference format: invalid tag";
static const char REF_E_TAG_LONG[] = "invalid reference format: tag over 128 characters";
static const char REF_E_DIGEST[] = "invalid digest";
static const char REF_E_DIGEST_ALG[] =
	"invalid digest: unsupported algorithm (sha256 and sha512 are accepted)";

static int ref_is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int ref_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ref_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || ref_is_upper(c);
}

/* Offset of the first c in s[0..len), or len. */
static size_t ref_find(const char *s, size_t len, char c)
{
	const char *p = memchr(s, c, len);

	return p ? (size_t)(p - s) : len;
}

static int ref_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* Docker's "identifier": exactly 64 lowercase hex digits, which it refuses as a name so that an
 * image ID is never mistaken for a repository. */
static int ref_is_identifier(const char *s, size_t len)
{
	if (len != 64) return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
	return 1;
}

/* splitDockerDomain: is the text before the first '/' a domain? */
static int ref_looks_like_domain(const char *s, size_t len)
{
	if (ref_eq(s, len, "localhost")) return 1;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '.' || s[i] == ':' || ref_is_upper(s[i])) return 1;
	return 0;
}

/* label ("." label)*, label = alnum, or alnum [alnum-]* alnum. */
static int ref_domain_name_valid(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0) return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') continue;
		if (i == start || !ref_is_alnum(s[start]) || !ref_is_alnum(s[i - 1])) return 0;
		for (size_t j = start; j < i; j++)
			if (!ref_is_alnum(s[j]) && s[j] != '-') return 0;
		start = i + 1;
	}
	return 1;
}

/* host [":" port]. Like Docker, the port is any run of digits (no range check) and an IPv6
 * literal is any run of hex digits and colons in brackets (no zone, no embedded IPv4). Returns
 * NULL when valid, else the reason. */
static const char *ref_domain_check(const char *s, size_t len)
{
	size_t host_end;

	if (len > 0 && s[0] == '[') {
		size_t i = 1;

		while (i < len && (ref_is_hex(s[i]) || s[i] == ':'))
			i++;
		if (i == 1 || i >= len || s[i] != ']') return REF_E_IPV6;
		host_end = i + 1;
	} else {
		host_end = ref_find(s, len, ':');
		if (!ref_domain_name_valid(s, host_end)) return REF_E_DOMAIN;
	}
	if (host_end == len) return NULL;
	if (s[host_end] != ':') return REF_E_DOMAIN;
	if (host_end + 1 == len) return REF_E_PORT;
	for (size_t i = host_end + 1; i < len; i++)
		if (s[i] < '0' || s[i] > '9') return REF_E_PORT;
	return NULL;
}

/* The path, components joined by '/'. Upper case is reported first, as Docker does. */
static const char *ref_path_check(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++)
		if (ref_is_upper(s[i])) return REF_E_UPPER;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/') continue;
		if (i == start) return REF_E_EMPTY_COMPONENT;
		if (!ref_component_valid(s + start, i - start)) return REF_E_COMPONENT;
		start = i + 1;
	}
	return NULL;
}

static const char *ref_tag_check(const char *s, size_t len)
{
	if (len == 0) return REF_E_TAG_EMPTY;
	/* The character rule first, on at most one byte past the limit, so a long run of
	 * garbage is "invalid tag" and a long valid-looking tag is "over 128". */
	if (!berth_ref_tag_valid(s, len < BERTH_TAG_MAX ? len : BERTH_TAG_MAX)) return REF_E_TAG;
	for (size_t i = BERTH_TAG_MAX; i < len; i++)
		if (!ref_is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return REF_E_TAG;
	if (len > BERTH_TAG_MAX) return REF_E_TAG_LONG;
	return NULL;
}

/* Docker's digest grammar, algorithm ([A-Za-z][A-Za-z0-9]* joined by [-_+.]) ":" 32 or more hex
 * digits. A digest that has this shape but is not sha256/sha512 in lowercase hex of the right
 * length is refused as unsupported. (Docker, through go-digest, also takes sha384.) */
static int ref_digest_shaped(const char *s, size_t len)
{
	size_t colon = ref_find(s, len, ':'), i = 0;

	if (colon == len || len - colon - 1 < 32) return 0;
	while (i < colon) {
		if (!ref_is_alpha(s[i])) return 0;
		i++;
		while (i < colon && ref_is_alnum(s[i]))
			i++;
		if (i == colon) break;
		if (s[i] != '-' && s[i] != '_' && s[i] != '+' && s[i] != '.') return 0;
		i++;
		if (i == colon) return 0;
	}
	if (colon == 0) return 0;
	for (i = colon + 1; i < len; i++)
		if (!ref_is_hex(s[i])) return 0;
	return 1;
}

static const char *ref_digest_check(const char *s, size_t len, struct berth_digest *d)
{
	size_t colon = ref_find(s, len, ':');

	if (berth_digest_parse(s, len, d) == BERTH_OK) return NULL;
	/* A sha256/sha512 of the wrong length or case is malformed, not unsupported. */
	if (ref_digest_shaped(s, len) && !ref_eq(s, colon, "sha256") && !ref_eq(s, colon, "sha512"))
		return REF_E_DIGEST_ALG;
	return REF_E_DIGEST;
}

berth_err berth_ref_parse(const char *s, size_t len, struct berth_ref *out, const char **why)
{
	static const char official[] = REF_OFFICIAL_PREFIX;
	const size_t official_len = sizeof official - 1;
	const char *dummy, *err = NULL;
	const char *domain = REF_DEFAULT_DOMAIN, *rest = s, *name, *tag = NULL, *digest = NULL;
	size_t domain_len = strlen(REF_DEFAULT_DOMAIN), rest_len = len, name_len, tag_len = 0;
	size_t digest_len = 0, slash, prefix_len = 0, p;
	int domain_given = 0;
	struct berth_digest d;

	if (!why) why = &dummy;
	*why = NULL;
	if (!out) {
		*why = REF_E_EMPTY;
		return BERTH_EINVAL;
	}
	memset(out, 0, sizeof *out);
	if (!s || len == 0) {
		err = REF_E_EMPTY;
		goto fail;
	}
	if (len > BERTH_REF_STRING_MAX) {
		err = REF_E_TOO_LONG;
		goto fail;
	}
	if (ref_is_identifier(s, len)) {
		err = REF_E_IDENTIFIER;
		goto fail;
	}

	/* splitDockerDomain. With no '/' at all the input is a familiar official name
	 * ("ubuntu:22.04", even "localhost:5000" = library/localhost tag 5000). */
	slash = ref_find(s, len, '/');
	if (slash < len) {
		if (ref_eq(s, slash, REF_LEGACY_DOMAIN)) {
			rest = s + slash + 1;
			rest_len = len - slash - 1;
		} else if (ref_looks_like_domain(s, slash)) {
			domain = s;
			domain_len = slash;
			domain_given = 1;
			rest = s + slash + 1;
			rest_len = len - slash - 1;
		}
	}
	if (ref_eq(domain, domain_len, REF_DEFAULT_DOMAIN) &&
	    ref_find(rest, rest_len, '/') == rest_len)
		prefix_len = official_len;

	/* The path cannot hold ':' or '@', the tag cannot hold '@': the first ':' or '@' ends
	 * the path, and the first '@' after it starts the digest. */
	name = rest;
	p = 0;
	while (p < rest_len && rest[p] != ':' && rest[p] != '@')
		p++;
	name_len = p;
	if (p < rest_len && rest[p] == ':') {
		tag = rest + p + 1;
		p += 1 + ref_find(tag, rest_len - p - 1, '@');
		tag_len = (size_t)(rest + p - tag);
	}
	if (p < rest_len) {
		digest = rest + p + 1;
		digest_len = rest_len - p - 1;
	}

	if (domain_given) {
		err = ref_domain_check(domain, domain_len);
		if (err && ref_component_valid(s, slash)) {
			/* Docker's regexp then reads the whole name as a path with no domain
			 * ("a_b.c/d"): keep that, as the one reading that matches Docker. */
			err = NULL;
			domain_len = 0;
			name = s;
			name_len = slash + 1 + name_len;
		}
		if (err) goto fail;
		if (domain_len > BERTH_REF_DOMAIN_MAX) {
			err = REF_E_DOMAIN_LONG;
			goto fail;
		}
	}
	if (name_len == 0) {
		err = REF_E_NO_NAME;
		goto fail;
	}
	err = ref_path_check(name, name_len);
	if (err) goto fail;
	/* reference.go: the path alone, after normalisation, is limited (since
	 * distribution/reference v0.6.0; before, the domain counted too). */
	if (prefix_len + name_len > BERTH_NAME_MAX) {
		err = REF_E_NAME_LONG;
		goto fail;
	}
	if (tag) {
		err = ref_tag_check(tag, tag_len);
		if (err) goto fail;
	}
	if (digest) {
		err = ref_digest_check(digest, digest_len, &d);
		if (err) goto fail;
	}

	memcpy(out->domain, domain, domain_len);
	memcpy(out->path, official, prefix_len);
	memcpy(out->path + prefix_len, name, name_len);
	if (tag) {
		memcpy(out->tag, tag, tag_len);
		out->has_tag = 1;
	} else if (!digest) {
		memcpy(out->tag, REF_DEFAULT_TAG, sizeof REF_DEFAULT_TAG);
		out->has_tag = 1;
	}
	if (digest) {
		memcpy(out->digest, d.s, d.len);
		out->has_digest = 1;
	}
	return BERTH_OK;

fail:
	memset(out, 0, sizeof *out);
	*why = err;
	return BERTH_EINVAL;
}

static berth_err ref_format(const char *domain, const char *path, const struct berth_ref *r,
			    char *buf, size_t len)
{
	int n;

	if (!buf || len == 0) return BERTH_ETOO_LARGE;
	n = snprintf(buf, len, "%s%s%s%s%s%s%s", domain, domain[0] ? "/" : "", path,
		     r->has_tag ? ":" : "", r->has_tag ? r->tag : "", r->has_digest ? "@" : "",
		     r->has_digest ? r->digest : "");
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return BERTH_ETOO_LARGE;
	}
	return BERTH_OK;
}

berth_err berth_ref_format_full(const struct berth_ref *r, char *buf, size_t len)
{
	if (!r) return BERTH_EINVAL;
	return ref_format(r->domain, r->path, r, buf, len);
}

berth_err berth_ref_familiar(const struct berth_ref *r, char *buf, size_t len)
{
	static const char official[] = REF_OFFICIAL_PREFIX;
	const char *domain, *path;

	if (!r) return BERTH_EINVAL;
	domain = r->domain;
	path = r->path;
	/* normalize.go familiarizeName: only docker.io is shortened, and "library/" only when
	 * exactly one component follows it. */
	if (strcmp(domain, REF_DEFAULT_DOMAIN) == 0) {
		domain = "";
		if (strncmp(path, official, sizeof official - 1) == 0 &&
		    !strchr(path + sizeof official - 1, '/'))
			path += sizeof official - 1;
	}
	return ref_format(domain, path, r, buf, len);
}

/* semver.c — semantic versions in tags and the constraints that select them. */
#include "semver.h"

#include <string.h>

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_ident(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric part without leading zeros, at most 18 digits (no overflow). Returns the digits
 * consumed, 0 when none or invalid. */
static size_t parse_num(const char *s, size_t len, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < len && is_digit(s[i]) && i < 18) v = v * 10 + (uint64_t)(s[i++] - '0');
	if (i == 0 || (i < len && is_digit(s[i]))) return 0;
	if (i > 1 && s[0] == '0') return 0;
	*out = v;
	return i;
}

/* Pre-release: dot-separated non-empty identifiers; numeric ones without leading zeros. */
static int pre_valid(const char *s, size_t len)
{
	size_t start = 0;
	if (len == 0 || len > BERTH_SEMVER_PRE_MAX) return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!is_ident(s[i])) return 0;
			continue;
		}
		size_t n = i - start;
		if (n == 0) return 0;
		int numeric = 1;
		for (size_t j = start; j < i; j++) numeric &= is_digit(s[j]);
		if (numeric && n > 1 && s[start] == '0') return 0;
		start = i + 1;
	}
	return 1;
}

int berth_semver_parse(const char *s, size_t len, struct berth_semver *out)
{
	struct berth_semver v;
	size_t i = 0, n;
	uint64_t *parts[3];
	memset(&v, 0, sizeof v);
	parts[0] = &v.major;
	parts[1] = &v.minor;
	parts[2] = &v.patch;
	if (len && (s[0] == 'v' || s[0] == 'V')) {
		v.v_prefix = 1;
		i = 1;
	}
	for (int p = 0; p < 3; p++) {
		if (p > 0) {
			if (i >= len || s[i] != '.') break;
			i++;
		}
		n = parse_num(s + i, len - i, parts[p]);
		if (!n) return 0;
		i += n;
		v.parts = p + 1;
	}
	if (i < len) {
		if (s[i] != '-' || v.parts != 3) return 0;
		if (!pre_valid(s + i + 1, len - i - 1)) return 0;
		memcpy(v.pre, s + i + 1, len - i - 1);
		v.pre[len - i - 1] = '\0';
		i = len;
	}
	*out = v;
	return 1;
}

/* semver.org §11: identifiers compared left to right; numeric ones numerically and below
 * alphanumeric ones; a longer list wins when all shared ones are equal. */
static int cmp_pre(const char *a, const char *b)
{
	if (!*a || !*b) return *a ? -1 : *b ? 1 : 0; /* a release outranks its pre-releases */
	while (*a && *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		int na = 1, nb = 1;
		for (size_t i = 0; i < la; i++) na &= is_digit(a[i]);
		for (size_t i = 0; i < lb; i++) nb &= is_digit(b[i]);
		if (na && nb) {
			if (la != lb) return la < lb ? -1 : 1;
			int c = memcmp(a, b, la);
			if (c) return c < 0 ? -1 : 1;
		} else if (na != nb) {
			return na ? -1 : 1;
		} else {
			size_t m = la < lb ? la : lb;
			int c = memcmp(a, b, m);
			if (c) return c < 0 ? -1 : 1;
			if (la != lb) return la < lb ? -1 : 1;
		}
		a += la;
		b += lb;
		if (*a) a++;
		if (*b) b++;
	}
	return *a ? 1 : *b ? -1 : 0;
}

int berth_semver_cmp(const struct berth_semver *a, const struct berth_semver *b)
{
	if (a->major != b->major) return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor) return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch) return a->patch < b->patch ? -1 : 1;
	return cmp_pre(a->pre, b->pre);
}

/* ---- constraints ---- */

struct cset {
	int n;
	struct {
		int op;
		struct berth_semver v;
	} c[BERTH_SEMVER_CMPS];
};

static int add(struct cset *cs, int op, const struct berth_semver *v)
{
	if (cs->n == BERTH_SEMVER_CMPS) return 0;
	cs->c[cs->n].op = op;
	cs->c[cs->n].v = *v;
	cs->n++;
	return 1;
}

static struct berth_semver ver(uint64_t ma, uint64_t mi, uint64_t pa)
{
	struct berth_semver v;
	memset(&v, 0, sizeof v);
	v.major = ma;
	v.minor = mi;
	v.patch = pa;
	v.parts = 3;
	return v;
}

/* A partial version where 'x', 'X' or '*' may stand for a number: how many numbers were
 * given before the first wildcard or the end. */
static int parse_partial(const char *s, size_t len, struct berth_semver *v)
{
	char buf[160];
	size_t n = 0, i = 0;
	int given = 0, wild = 0;
	if (len >= sizeof buf) return -1;
	if (len && (s[0] == 'v' || s[0] == 'V')) i = 1;
	if (i < len && (s[i] == '*' || s[i] == 'x' || s[i] == 'X') && len - i == 1) {
		memset(v, 0, sizeof *v);
		return 0;
	}
	/* Cut at the first ".x"/".*" component. */
	for (size_t j = i; j < len; j++) {
		if ((s[j] == 'x' || s[j] == 'X' || s[j] == '*') && j > i && s[j - 1] == '.' &&
		    (j + 1 == len || s[j + 1] == '.')) {
			wild = 1;
			n = j - 1;
			break;
		}
	}
	if (!wild) n = len;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!berth_semver_parse(buf, n, v)) return -1;
	given = v->parts;
	if (wild) {
		/* Everything after the wildcard must be wildcards too ("1.x.x"). */
		for (size_t j = n + 1; j < len; j++)
			if (!(s[j] == '.' || s[j] == 'x' || s[j] == 'X' || s[j] == '*')) return -1;
	}
	return given;
}

static int parse_term(const char *s, size_t len, struct cset *cs)
{
	struct berth_semver v;
	int op = '=', given;
	if (len >= 2 && s[0] == '>' && s[1] == '=') op = 'g', s += 2, len -= 2;
	else if (len >= 2 && s[0] == '<' && s[1] == '=') op = 'l', s += 2, len -= 2;
	else if (len >= 1 && (s[0] == '>' || s[0] == '<' || s[0] == '=' || s[0] == '^' || s[0] == '~'))
		op = s[0], s += 1, len -= 1;
	if (len == 0) return 0;
	given = parse_partial(s, len, &v);
	if (given < 0) return 0;
	if (op == '^') {
		/* ^1.2.3 := >=1.2.3 <2; ^0.2.3 := <0.3; ^0.0.3 := <0.0.4 (leftmost non-zero). */
		struct berth_semver hi;
		if (given == 0) return 1;
		if (v.major > 0 || given == 1) hi = ver(v.major + 1, 0, 0);
		else if (v.minor > 0 || given == 2) hi = ver(0, v.minor + 1, 0);
		else hi = ver(0, 0, v.patch + 1);
		hi.pre[0] = '\0';
		return add(cs, 'g', &v) && add(cs, '<', &hi);
	}
	if (op == '~') {
		struct berth_semver hi = given >= 2 ? ver(v.major, v.minor + 1, 0) : ver(v.major + 1, 0, 0);
		if (given == 0) return 1;
		return add(cs, 'g', &v) && add(cs, '<', &hi);
	}
	if (given == 3 || (given > 0 && op != '=')) {
		if (given < 3 && (op == '>' || op == 'l')) {
			/* >1.2 means >=1.3.0; <=1.2 means <1.3.0. */
			struct berth_semver up = given == 1 ? ver(v.major + 1, 0, 0)
							    : ver(v.major, v.minor + 1, 0);
			return add(cs, op == '>' ? 'g' : '<', &up);
		}
		return add(cs, op, &v);
	}
	if (given == 0) return 1; /* "*": anything */
	{
		/* "1" / "1.x" / "=1.2": the whole line. */
		struct berth_semver hi = given == 1 ? ver(v.major + 1, 0, 0) : ver(v.major, v.minor + 1, 0);
		return add(cs, 'g', &v) && add(cs, '<', &hi);
	}
}

berth_err berth_semver_range_parse(const char *s, size_t len, struct berth_semver_range *out)
{
	size_t i = 0;
	memset(out, 0, sizeof *out);
	if (len == 0 || len > 512) return BERTH_EINVAL;
	for (;;) {
		struct cset cs = {0};
		int terms = 0;
		/* One alternative: terms separated by spaces (or commas), up to "||" or the end. */
		for (;;) {
			while (i < len && (s[i] == ' ' || s[i] == ',')) i++;
			if (i >= len || (i + 1 < len && s[i] == '|' && s[i + 1] == '|')) break;
			size_t start = i;
			/* An operator may be followed by spaces (">= 1.0.0"). */
			while (i < len && (s[i] == '>' || s[i] == '<' || s[i] == '=' || s[i] == '^' ||
					   s[i] == '~'))
				i++;
			size_t opend = i;
			while (i < len && s[i] == ' ') i++;
			size_t vstart = i;
			while (i < len && s[i] != ' ' && s[i] != ',' && s[i] != '|') i++;
			char term[200];
			size_t ol = opend - start, vl = i - vstart;
			if (vl == 0 || ol + vl >= sizeof term) return BERTH_EINVAL;
			memcpy(term, s + start, ol);
			memcpy(term + ol, s + vstart, vl);
			if (!parse_term(term, ol + vl, &cs)) return BERTH_EINVAL;
			terms++;
		}
		if (!terms) return BERTH_EINVAL;
		if (out->n_alts == BERTH_SEMVER_ALTS) return BERTH_EINVAL;
		out->alt[out->n_alts].n = cs.n;
		for (int k = 0; k < cs.n; k++) {
			out->alt[out->n_alts].c[k].op = cs.c[k].op;
			out->alt[out->n_alts].c[k].v = cs.c[k].v;
		}
		out->n_alts++;
		if (i >= len) break;
		i += 2; /* "||" */
	}
	return BERTH_OK;
}

static int cmp_ok(int op, int c)
{
	switch (op) {
	case '<': return c < 0;
	case '>': return c > 0;
	case 'l': return c <= 0;
	case 'g': return c >= 0;
	default: return c == 0;
	}
}

int berth_semver_range_match(const struct berth_semver_range *r, const struct berth_semver *v)
{
	for (int a = 0; a < r->n_alts; a++) {
		int ok = 1, pre_allowed = v->pre[0] == '\0';
		for (int k = 0; k < r->alt[a].n && ok; k++) {
			const struct berth_semver *cv = &r->alt[a].c[k].v;
			ok = cmp_ok(r->alt[a].c[k].op, berth_semver_cmp(v, cv));
			if (cv->pre[0] && cv->major == v->major && cv->minor == v->minor &&
			    cv->patch == v->patch)
				pre_allowed = 1;
		}
		if (ok && pre_allowed) return 1;
	}
	return 0;
}

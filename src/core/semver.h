/* semver.h — tags read as semantic versions (semver.org 2.0.0 precedence) and version
 * constraints (^1.2, ~1.2.3, >=1.0.0 <2.0.0, 1.x, a || b). Pure functions of (bytes, length):
 * no allocation, no I/O. A tag can't hold '+', so build metadata never appears. */
#ifndef BERTH_SEMVER_H
#define BERTH_SEMVER_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define BERTH_SEMVER_PRE_MAX 127

struct berth_semver {
	uint64_t major, minor, patch;
	int parts;      /* 1 ("1"), 2 ("1.2") or 3 ("1.2.3") numbers given */
	int v_prefix;   /* written with a leading 'v' */
	char pre[BERTH_SEMVER_PRE_MAX + 1]; /* pre-release ("rc.1"), "" for a release */
};

/* v?MAJOR[.MINOR[.PATCH]][-PRERELEASE]: 1 when s is such a version, else 0. Numbers have no
 * leading zeros; a pre-release needs all three numbers. */
int berth_semver_parse(const char *s, size_t len, struct berth_semver *out);

/* Precedence of two full versions (missing parts count as 0): <0, 0, >0. */
int berth_semver_cmp(const struct berth_semver *a, const struct berth_semver *b);

/* A parsed constraint: up to 8 alternatives (||) of up to 4 comparators each. */
#define BERTH_SEMVER_ALTS 8
#define BERTH_SEMVER_CMPS 4
struct berth_semver_range {
	int n_alts;
	struct {
		int n;
		struct {
			int op; /* '<' '>' 'l' (<=) 'g' (>=) '=' */
			struct berth_semver v;
		} c[BERTH_SEMVER_CMPS];
	} alt[BERTH_SEMVER_ALTS];
};

/* BERTH_EINVAL when s is not a constraint this grammar reads. */
berth_err berth_semver_range_parse(const char *s, size_t len,
				   struct berth_semver_range *out) BERTH_MUST_CHECK;
/* 1 when v (a full version) satisfies r. Pre-releases match only a comparator that names a
 * pre-release of the same MAJOR.MINOR.PATCH (npm's rule), so ^1.2 never picks 1.3.0-rc.1. */
int berth_semver_range_match(const struct berth_semver_range *r, const struct berth_semver *v);

#endif

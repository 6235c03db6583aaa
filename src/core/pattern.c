/* pattern.c — repository patterns. Components are matched left to right with a set of
 * reachable positions, so "**" costs no backtracking blow-up whatever the input. */
#include "pattern.h"

#include <stdint.h>
#include <string.h>

#include "limits.h"

/* One component against a glob where '*' matches any run of characters (no '/': the caller
 * splits on it). Linear backtracking over the last star only. */
static int glob_component(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && p[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < pn && p[pi] == '*') pi++;
	return pi == pn;
}

/* A name has at most this many components ("a/b/..." with one-letter components). */
#define COMP_MAX (BERTH_NAME_MAX / 2 + 2)

int berth_pattern_match(const char *pat, size_t plen, const char *name, size_t nlen)
{
	size_t noff[COMP_MAX], nl[COMP_MAX], nn = 0, start = 0, pstart = 0;
	unsigned char cur[COMP_MAX + 1], next[COMP_MAX + 1];

	if (plen == 0 || plen > BERTH_PATTERN_MAX || nlen == 0 || nlen > BERTH_NAME_MAX) return 0;
	for (size_t i = 0; i <= nlen; i++) {
		if (i < nlen && name[i] != '/') continue;
		if (nn == COMP_MAX) return 0;
		noff[nn] = start;
		nl[nn++] = i - start;
		start = i + 1;
	}
	/* cur[j]: the pattern components so far match the first j name components. */
	memset(cur, 0, sizeof cur);
	cur[0] = 1;
	for (size_t i = 0; i <= plen; i++) {
		const char *pc = pat + pstart;
		size_t pcl = i - pstart;
		if (i < plen && pat[i] != '/') continue;
		pstart = i + 1;
		memset(next, 0, sizeof next);
		if (pcl == 2 && pc[0] == '*' && pc[1] == '*') {
			unsigned char any = 0;
			for (size_t j = 0; j <= nn; j++) {
				any |= cur[j];
				next[j] = any;
			}
		} else {
			for (size_t j = 0; j < nn; j++)
				if (cur[j] && glob_component(pc, pcl, name + noff[j], nl[j]))
					next[j + 1] = 1;
		}
		memcpy(cur, next, sizeof cur);
	}
	return cur[nn];
}

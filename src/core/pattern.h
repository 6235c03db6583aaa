/* pattern.h — repository patterns used by configuration (access rules, semver and golden
 * repositories): '*' matches within one path component, a "**" component matches any number
 * of components, anything else matches itself. Pure; no allocation. */
#ifndef BERTH_PATTERN_H
#define BERTH_PATTERN_H

#include <stddef.h>

/* 1 when name (a repository name) matches pat. */
int berth_pattern_match(const char *pat, size_t plen, const char *name, size_t nlen);

#endif

/* ref.h — names, tags and image references. Pure functions of (bytes, length): no I/O, no
 * allocation, so a fuzzer can drive them. Grammar from the OCI distribution-spec and Docker's
 * distribution/reference. */
#ifndef BERTH_REF_H
#define BERTH_REF_H

#include <stddef.h>
#include "err.h"

/* Repository name: components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/', total length
 * 1..BERTH_NAME_MAX. Returns 1 when valid. */
int berth_ref_name_valid(const char *s, size_t len);

/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. Returns 1 when valid. */
int berth_ref_tag_valid(const char *s, size_t len);

#endif

/* range.h — parsers for the byte ranges in Range and Content-Range request headers.
 * Pure functions of (bytes, length): no allocation, fuzzable. */
#ifndef BERTH_RANGE_H
#define BERTH_RANGE_H

#include <stddef.h>
#include <stdint.h>
#include "../core/err.h"

/* Content-Range on a PATCH chunk, as the distribution spec writes it: "<start>-<end>" inclusive,
 * also accepting "bytes <start>-<end>/<total|*>" and "bytes=<start>-<end>" which some clients
 * send. Requires end >= start. Sets *start and *end. BERTH_EINVAL when malformed. */
berth_err berth_range_parse_content_range(const char *s, size_t len, int64_t *start,
					   int64_t *end) BERTH_MUST_CHECK;

/* Range on a blob GET (RFC 9110 §14.1.2), single range only: "bytes=a-b", "bytes=a-",
 * "bytes=-suffix". size is the blob length. On success *start and *end are the inclusive,
 * clamped byte positions. BERTH_EINVAL: malformed or multi-range (serve the whole blob, 200);
 * BERTH_ERANGE: unsatisfiable (416). */
berth_err berth_range_parse_range(const char *s, size_t len, int64_t size, int64_t *start,
				  int64_t *end) BERTH_MUST_CHECK;

#endif

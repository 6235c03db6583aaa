/* range.c — byte-range header parsers. Strict on purpose: a Range we do not understand is
 * ignored (RFC 9110 §14.2 lets a server serve the whole representation), and a Content-Range we
 * do not understand must not be guessed at, because it positions bytes inside a blob. */
#include "range.h"

#include <stdint.h>

/* 1*DIGIT at *pos, as a non-negative int64. Leading zeros are fine (RFC 9110 writes 1*DIGIT);
 * no sign, no whitespace, at least one digit, and nothing above INT64_MAX. Advances *pos. */
static int range_parse_u63(const char *s, size_t len, size_t *pos, int64_t *out)
{
	size_t i = *pos;
	int64_t v = 0;

	if (i >= len || s[i] < '0' || s[i] > '9') return 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		int d = s[i] - '0';

		if (v > (INT64_MAX - d) / 10) return 0;
		v = v * 10 + d;
	}
	*pos = i;
	*out = v;
	return 1;
}

/* Range units are case-insensitive (RFC 9110 §14.1). Matches "bytes" at *pos and advances. */
static int range_match_bytes(const char *s, size_t len, size_t *pos)
{
	static const char unit[] = "bytes";
	size_t n = sizeof unit - 1;

	if (len - *pos < n) return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[*pos + i];

		if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
		if (c != unit[i]) return 0;
	}
	*pos += n;
	return 1;
}

berth_err berth_range_parse_content_range(const char *s, size_t len, int64_t *start,
					   int64_t *end)
{
	size_t pos = 0;
	int64_t a, b, total;
	int with_total = 0;

	if (!s || !start || !end) return BERTH_EINVAL;
	/* "bytes " is RFC 9110 §14.4 Content-Range and carries "/<total|*>"; "bytes=" is the Range
	 * syntax some clients reuse; the bare form is what the distribution spec documents. */
	if (range_match_bytes(s, len, &pos)) {
		if (pos >= len) return BERTH_EINVAL;
		if (s[pos] == ' ')
			with_total = 1;
		else if (s[pos] != '=')
			return BERTH_EINVAL;
		pos++;
	}
	if (!range_parse_u63(s, len, &pos, &a)) return BERTH_EINVAL;
	if (pos >= len || s[pos] != '-') return BERTH_EINVAL;
	pos++;
	if (!range_parse_u63(s, len, &pos, &b)) return BERTH_EINVAL;
	if (with_total) {
		if (pos >= len || s[pos] != '/') return BERTH_EINVAL;
		pos++;
		if (pos < len && s[pos] == '*') {
			pos++;
		} else {
			if (!range_parse_u63(s, len, &pos, &total)) return BERTH_EINVAL;
			/* §14.4: a range whose last byte is at or past the complete length is invalid. */
			if (b >= total) return BERTH_EINVAL;
		}
	}
	if (pos != len || b < a) return BERTH_EINVAL;
	*start = a;
	*end = b;
	return BERTH_OK;
}

berth_err berth_range_parse_range(const char *s, size_t len, int64_t size, int64_t *start,
				  int64_t *end)
{
	size_t pos = 0;
	int64_t a = 0, b = 0;
	int has_first = 0, has_last = 0;

	if (!s || !start || !end || size < 0) return BERTH_EINVAL;
	if (!range_match_bytes(s, len, &pos)) return BERTH_EINVAL;
	if (pos >= len || s[pos] != '=') return BERTH_EINVAL;
	pos++;
	if (pos < len && s[pos] != '-') {
		if (!range_parse_u63(s, len, &pos, &a)) return BERTH_EINVAL;
		has_first = 1;
	}
	if (pos >= len || s[pos] != '-') return BERTH_EINVAL;
	pos++;
	if (pos < len && s[pos] >= '0' && s[pos] <= '9') {
		if (!range_parse_u63(s, len, &pos, &b)) return BERTH_EINVAL;
		has_last = 1;
	}
	/* Anything left — a ',' starting a second range included — means we serve it all (200). */
	if (pos != len) return BERTH_EINVAL;
	if (!has_first && !has_last) return BERTH_EINVAL;

	if (!has_first) {
		/* suffix-range (§14.1.2): the last b bytes; a zero suffix or an empty blob selects
		 * nothing, which is unsatisfiable. */
		if (b == 0 || size == 0) return BERTH_ERANGE;
		*start = b >= size ? 0 : size - b;
		*end = size - 1;
		return BERTH_OK;
	}
	/* §14.1.2: last-pos < first-pos makes the range invalid, so the header is ignored. */
	if (has_last && b < a) return BERTH_EINVAL;
	if (a >= size) return BERTH_ERANGE;
	*start = a;
	*end = (!has_last || b >= size) ? size - 1 : b;
	return BERTH_OK;
}

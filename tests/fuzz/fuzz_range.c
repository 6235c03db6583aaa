/* fuzz_range.c — berth_range_parse_range (Range on a blob GET). Input: the blob size in
 * decimal (an optional leading '-' makes it negative), '\n', then the header value; without a
 * '\n' the whole input is the header and the size is 1000. Invariants: success means
 * 0 <= start <= end < size; BERTH_EINVAL and BERTH_ERANGE are the only errors; a negative size
 * never succeeds. */
#include "../../src/http/range.h"
#include "fuzz.h"

/* Decimal view as int64, saturating at INT64_MAX; 0 when not all digits. */
static int64_t size_of(const char *s, size_t n, int *ok)
{
	int neg = n > 0 && s[0] == '-';
	int64_t v = 0;

	*ok = 0;
	for (size_t i = (size_t)neg; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') return 0;
		v = v > (INT64_MAX - 9) / 10 ? INT64_MAX : v * 10 + (s[i] - '0');
	}
	*ok = n > (size_t)neg;
	return neg ? -v : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *hdr = s, *nl = memchr(s, '\n', size);
	size_t hlen = size;
	int64_t blob = 1000, start = -7, end = -7;
	berth_err e;
	int ok;

	if (nl) {
		blob = size_of(s, (size_t)(nl - s), &ok);
		if (!ok) return 0;
		hdr = nl + 1;
		hlen = size - (size_t)(nl - s) - 1;
	}
	e = berth_range_parse_range(hdr, hlen, blob, &start, &end);
	FUZZ_ASSERT(e == BERTH_OK || e == BERTH_EINVAL || e == BERTH_ERANGE);
	if (e != BERTH_OK) return 0;
	FUZZ_ASSERT(blob > 0);
	FUZZ_ASSERT(0 <= start && start <= end && end < blob);
	return 0;
}

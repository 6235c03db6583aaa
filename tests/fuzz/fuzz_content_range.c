/* fuzz_content_range.c — berth_range_parse_content_range (Content-Range on a PATCH chunk).
 * Invariants: BERTH_EINVAL is the only error; success means 0 <= start <= end, with the end
 * spelled in the input. */
#include "../../src/http/range.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int64_t start = -7, end = -7;
	berth_err e = berth_range_parse_content_range(s, size, &start, &end);

	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return 0;
	}
	FUZZ_ASSERT(0 <= start && start <= end);
	/* The end position is written in the input, so the input has at least one digit per
	 * decimal place of it (leading zeros only add digits). */
	{
		size_t digits = 0, need = 0;
		for (size_t i = 0; i < size; i++)
			digits += s[i] >= '0' && s[i] <= '9';
		for (int64_t v = end; v > 0; v /= 10)
			need++;
		FUZZ_ASSERT(digits >= need);
	}
	return 0;
}

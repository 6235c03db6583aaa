/* fuzz_tag.c — berth_ref_tag_valid against the distribution-spec's tag expression (POSIX ERE,
 * C locale): [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
#include <regex.h>

#include "../../src/core/limits.h"
#include "../../src/core/ref.h"
#include "fuzz.h"

#define TAG_RE "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"

static regex_t tag_re;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (regcomp(&tag_re, TAG_RE, REG_EXTENDED | REG_NOSUB) != 0) abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int valid = berth_ref_tag_valid(s, size);
	char buf[BERTH_TAG_MAX + 2];

	FUZZ_ASSERT(valid == 0 || valid == 1);
	if (size == 0 || size > BERTH_TAG_MAX || memchr(s, '\0', size)) {
		FUZZ_ASSERT(!valid);
		return 0;
	}
	memcpy(buf, s, size);
	buf[size] = '\0';
	FUZZ_ASSERT(valid == (regexec(&tag_re, buf, 0, NULL, 0) == 0));
	/* Every non-empty prefix of a valid tag is a valid tag. */
	if (valid && size > 1) FUZZ_ASSERT(berth_ref_tag_valid(s, size - 1));
	return 0;
}

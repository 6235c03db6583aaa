/* fuzz_name.c — berth_ref_name_valid against the distribution-spec's own regular expression
 * (POSIX ERE, C locale), plus the length cap: the hand-written validator must agree with the
 * grammar on every input and read nothing past len. */
#include <regex.h>

#include "../../src/core/limits.h"
#include "../../src/core/ref.h"
#include "fuzz.h"

/* distribution-spec "Pulling manifests": [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)* */
#define NAME_RE "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$"

static regex_t name_re;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (regcomp(&name_re, NAME_RE, REG_EXTENDED | REG_NOSUB) != 0) abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int valid = berth_ref_name_valid(s, size);
	char buf[BERTH_NAME_MAX + 2];

	FUZZ_ASSERT(valid == 0 || valid == 1);
	if (size == 0 || size > BERTH_NAME_MAX || memchr(s, '\0', size)) {
		FUZZ_ASSERT(!valid);
		return 0;
	}
	memcpy(buf, s, size);
	buf[size] = '\0';
	FUZZ_ASSERT(valid == (regexec(&name_re, buf, 0, NULL, 0) == 0));
	/* A valid name is also valid as any shorter view that ends on a component boundary. */
	if (valid) {
		const char *slash = memchr(s, '/', size);
		if (slash) FUZZ_ASSERT(berth_ref_name_valid(s, (size_t)(slash - s)));
	}
	return 0;
}

/* fuzz.h — what every libFuzzer target shares: the entry point's prototype (the build has
 * -Wmissing-prototypes) and FUZZ_ASSERT, which aborts on a broken invariant so libFuzzer saves
 * the input as a crash. Harnesses never fix up what a parser returns; they only check it. */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* 1 when s[0..cap) holds a NUL, i.e. a fixed-size string field is terminated inside its array. */
static inline int fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

#endif

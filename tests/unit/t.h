/* t.h — a minimal unit-test harness: CHECK records a failure and goes on; each test file's main
 * calls T_RUN for each test and ends with T_DONE("name"), which prints "name: N passed, N failed"
 * and returns non-zero on failure. A check that fails prints file:line and the expression. */
#ifndef BERTH_T_H
#define BERTH_T_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed, t_cur_failed;

#define CHECK(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
			t_cur_failed++;                                                            \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
	do {                                                                                       \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                            \
		if (t_a_ != t_b_) {                                                                \
			fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__,        \
				__LINE__, #a, #b, t_a_, t_b_);                                     \
			t_cur_failed++;                                                            \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                          \
	do {                                                                                       \
		const char *t_a_ = (a), *t_b_ = (b);                                               \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                   \
			fprintf(stderr, "  FAIL %s:%d: %s == \"%s\" (got \"%s\")\n", __FILE__,      \
				__LINE__, #a, t_b_ ? t_b_ : "(null)", t_a_ ? t_a_ : "(null)");      \
			t_cur_failed++;                                                            \
		}                                                                                  \
	} while (0)

#define T_RUN(fn)                                                                                \
	do {                                                                                       \
		t_cur_failed = 0;                                                                  \
		fn();                                                                              \
		if (t_cur_failed) {                                                                \
			fprintf(stderr, "not ok %s\n", #fn);                                        \
			t_failed++;                                                                \
		} else {                                                                           \
			t_passed++;                                                                \
		}                                                                                  \
	} while (0)

#define T_DONE(name)                                                                             \
	(printf("%s: %d passed, %d failed\n", (name), t_passed, t_failed), t_failed ? 1 : 0)

#endif

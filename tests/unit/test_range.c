/* test_range.c — Content-Range (PATCH chunks) and Range (blob GET, RFC 9110 §14.1.2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/range.h"
#include "t.h"

struct cr_case {
	const char *s;
	berth_err want;
	int64_t start, end;
};

static const struct cr_case cr_cases[] = {
	{"0-0", BERTH_OK, 0, 0},
	{"0-99", BERTH_OK, 0, 99},
	{"100-199", BERTH_OK, 100, 199},
	{"007-9", BERTH_OK, 7, 9},
	{"bytes=0-99", BERTH_OK, 0, 99},
	{"bytes 0-99/100", BERTH_OK, 0, 99},
	{"bytes 0-99/*", BERTH_OK, 0, 99},
	{"bytes 5-5/1000", BERTH_OK, 5, 5},
	{"Bytes=1-2", BERTH_OK, 1, 2},
	{"BYTES 1-2/*", BERTH_OK, 1, 2},
	{"0-9223372036854775807", BERTH_OK, 0, INT64_MAX},
	{"9223372036854775807-9223372036854775807", BERTH_OK, INT64_MAX, INT64_MAX},

	{"", BERTH_EINVAL, 0, 0},
	{"-", BERTH_EINVAL, 0, 0},
	{"0-", BERTH_EINVAL, 0, 0},
	{"-5", BERTH_EINVAL, 0, 0},
	{"5", BERTH_EINVAL, 0, 0},
	{"10-9", BERTH_EINVAL, 0, 0},
	{"+1-2", BERTH_EINVAL, 0, 0},
	{"1-+2", BERTH_EINVAL, 0, 0},
	{"-1-2", BERTH_EINVAL, 0, 0},
	{" 0-1", BERTH_EINVAL, 0, 0},
	{"0-1 ", BERTH_EINVAL, 0, 0},
	{"0 -1", BERTH_EINVAL, 0, 0},
	{"0- 1", BERTH_EINVAL, 0, 0},
	{"0x1-2", BERTH_EINVAL, 0, 0},
	{"1-2x", BERTH_EINVAL, 0, 0},
	{"1-2,3-4", BERTH_EINVAL, 0, 0},
	{"0-9223372036854775808", BERTH_EINVAL, 0, 0},
	{"99999999999999999999-99999999999999999999", BERTH_EINVAL, 0, 0},
	{"bytes", BERTH_EINVAL, 0, 0},
	{"bytes ", BERTH_EINVAL, 0, 0},
	{"bytes=", BERTH_EINVAL, 0, 0},
	{"bytes 0-99", BERTH_EINVAL, 0, 0},
	{"bytes 0-99/", BERTH_EINVAL, 0, 0},
	{"bytes 0-99/99", BERTH_EINVAL, 0, 0},
	{"bytes 0-99/100x", BERTH_EINVAL, 0, 0},
	{"bytes 0-99/*x", BERTH_EINVAL, 0, 0},
	{"bytes */100", BERTH_EINVAL, 0, 0},
	{"bytes=0-99/100", BERTH_EINVAL, 0, 0},
	{"bytes  0-99/100", BERTH_EINVAL, 0, 0},
	{"bytes:0-1", BERTH_EINVAL, 0, 0},
	{"byte=0-1", BERTH_EINVAL, 0, 0},
	{"items=0-1", BERTH_EINVAL, 0, 0},
	{"bytes=-1", BERTH_EINVAL, 0, 0},
};

static void test_content_range_table(void)
{
	for (size_t i = 0; i < sizeof cr_cases / sizeof cr_cases[0]; i++) {
		const struct cr_case *c = &cr_cases[i];
		int64_t a = -1, b = -1;
		berth_err e = berth_range_parse_content_range(c->s, strlen(c->s), &a, &b);

		if (e != c->want) fprintf(stderr, "  content-range \"%s\": got %d\n", c->s, e);
		CHECK_EQ_INT(e, c->want);
		if (c->want == BERTH_OK && e == BERTH_OK) {
			CHECK_EQ_INT(a, c->start);
			CHECK_EQ_INT(b, c->end);
		}
	}
}

struct r_case {
	const char *s;
	int64_t size;
	berth_err want;
	int64_t start, end;
};

static const struct r_case r_cases[] = {
	{"bytes=0-0", 10, BERTH_OK, 0, 0},
	{"bytes=0-9", 10, BERTH_OK, 0, 9},
	{"bytes=2-5", 10, BERTH_OK, 2, 5},
	{"bytes=5-", 10, BERTH_OK, 5, 9},
	{"bytes=9-", 10, BERTH_OK, 9, 9},
	{"bytes=0-", 10, BERTH_OK, 0, 9},
	/* A last-pos past the end is clamped (§14.1.2). */
	{"bytes=5-100", 10, BERTH_OK, 5, 9},
	{"bytes=0-9223372036854775807", 10, BERTH_OK, 0, 9},
	{"bytes=-3", 10, BERTH_OK, 7, 9},
	{"bytes=-10", 10, BERTH_OK, 0, 9},
	{"bytes=-11", 10, BERTH_OK, 0, 9},
	{"bytes=-9223372036854775807", 10, BERTH_OK, 0, 9},
	{"BYTES=1-1", 10, BERTH_OK, 1, 1},
	{"bytes=00-01", 10, BERTH_OK, 0, 1},
	{"bytes=0-0", 1, BERTH_OK, 0, 0},

	/* Unsatisfiable: 416. */
	{"bytes=10-", 10, BERTH_ERANGE, 0, 0},
	{"bytes=10-20", 10, BERTH_ERANGE, 0, 0},
	{"bytes=0-", 0, BERTH_ERANGE, 0, 0},
	{"bytes=0-0", 0, BERTH_ERANGE, 0, 0},
	{"bytes=-0", 10, BERTH_ERANGE, 0, 0},
	{"bytes=-5", 0, BERTH_ERANGE, 0, 0},
	{"bytes=9223372036854775807-", 10, BERTH_ERANGE, 0, 0},

	/* Malformed or multi-range: ignored, 200 with the whole blob. */
	{"", 10, BERTH_EINVAL, 0, 0},
	{"bytes", 10, BERTH_EINVAL, 0, 0},
	{"bytes=", 10, BERTH_EINVAL, 0, 0},
	{"bytes=-", 10, BERTH_EINVAL, 0, 0},
	{"bytes=5", 10, BERTH_EINVAL, 0, 0},
	{"bytes=5-2", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-1,3-4", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-1, 3-4", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-1,", 10, BERTH_EINVAL, 0, 0},
	{"bytes=-1,-2", 10, BERTH_EINVAL, 0, 0},
	{"bytes= 0-1", 10, BERTH_EINVAL, 0, 0},
	{"bytes =0-1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0 -1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0- 1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-1 ", 10, BERTH_EINVAL, 0, 0},
	{" bytes=0-1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=+1-2", 10, BERTH_EINVAL, 0, 0},
	{"bytes=1-+2", 10, BERTH_EINVAL, 0, 0},
	{"bytes=--1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=1--2", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0x1-2", 10, BERTH_EINVAL, 0, 0},
	{"bytes=1-2x", 10, BERTH_EINVAL, 0, 0},
	{"bytes=9223372036854775808-", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-9223372036854775808", 10, BERTH_EINVAL, 0, 0},
	{"bytes=-9223372036854775808", 10, BERTH_EINVAL, 0, 0},
	{"bytes=-99999999999999999999999", 10, BERTH_EINVAL, 0, 0},
	{"0-1", 10, BERTH_EINVAL, 0, 0},
	{"bytes 0-1", 10, BERTH_EINVAL, 0, 0},
	{"items=0-1", 10, BERTH_EINVAL, 0, 0},
	{"bytes=0-1", -1, BERTH_EINVAL, 0, 0},
};

static void test_range_table(void)
{
	for (size_t i = 0; i < sizeof r_cases / sizeof r_cases[0]; i++) {
		const struct r_case *c = &r_cases[i];
		int64_t a = -1, b = -1;
		berth_err e = berth_range_parse_range(c->s, strlen(c->s), c->size, &a, &b);

		if (e != c->want)
			fprintf(stderr, "  range \"%s\" size %lld: got %d\n", c->s, (long long)c->size,
				e);
		CHECK_EQ_INT(e, c->want);
		if (c->want == BERTH_OK && e == BERTH_OK) {
			CHECK_EQ_INT(a, c->start);
			CHECK_EQ_INT(b, c->end);
		}
	}
}

static void test_large_sizes(void)
{
	int64_t a, b;

	CHECK_EQ_INT(berth_range_parse_range("bytes=-1", 8, INT64_MAX, &a, &b), BERTH_OK);
	CHECK_EQ_INT(a, INT64_MAX - 1);
	CHECK_EQ_INT(b, INT64_MAX - 1);
	CHECK_EQ_INT(berth_range_parse_range("bytes=9223372036854775806-", 26, INT64_MAX, &a, &b),
		     BERTH_OK);
	CHECK_EQ_INT(a, INT64_MAX - 1);
	CHECK_EQ_INT(b, INT64_MAX - 1);
}

/* The view ends where len says, whatever follows in memory. */
static void test_views(void)
{
	int64_t a = -1, b = -1;

	CHECK_EQ_INT(berth_range_parse_content_range("0-99junk", 4, &a, &b), BERTH_OK);
	CHECK_EQ_INT(a, 0);
	CHECK_EQ_INT(b, 99);
	CHECK_EQ_INT(berth_range_parse_range("bytes=1-2,3-4", 9, 10, &a, &b), BERTH_OK);
	CHECK_EQ_INT(a, 1);
	CHECK_EQ_INT(b, 2);
	CHECK_EQ_INT(berth_range_parse_content_range("0-1\0" "2", 5, &a, &b), BERTH_EINVAL);
	CHECK_EQ_INT(berth_range_parse_range("bytes=0-1\0", 10, 10, &a, &b), BERTH_EINVAL);
	CHECK_EQ_INT(berth_range_parse_content_range(NULL, 0, &a, &b), BERTH_EINVAL);
	CHECK_EQ_INT(berth_range_parse_range(NULL, 0, 10, &a, &b), BERTH_EINVAL);
}

/* Every prefix of every case, copied to an exact-size heap buffer: ASan flags any read past
 * the view, and failures leave the outputs alone. */
static void test_prefixes_in_bounds(void)
{
	for (size_t i = 0; i < sizeof r_cases / sizeof r_cases[0]; i++) {
		const char *s = r_cases[i].s;
		size_t len = strlen(s);

		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n ? n : 1);
			int64_t a = -7, b = -7;
			berth_err e;

			CHECK(p != NULL);
			if (!p) return;
			memcpy(p, s, n);
			e = berth_range_parse_range(p, n, 10, &a, &b);
			if (e != BERTH_OK) CHECK(a == -7 && b == -7);
			else CHECK(a >= 0 && a <= b && b < 10);
			e = berth_range_parse_content_range(p, n, &a, &b);
			if (e == BERTH_OK) CHECK(a >= 0 && a <= b);
			free(p);
		}
	}
}

int main(void)
{
	T_RUN(test_content_range_table);
	T_RUN(test_range_table);
	T_RUN(test_large_sizes);
	T_RUN(test_views);
	T_RUN(test_prefixes_in_bounds);
	return T_DONE("unit-range");
}

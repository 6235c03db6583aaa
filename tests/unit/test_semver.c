/* Semantic versions in tags: grammar, semver.org precedence, constraints. */
#include "../../src/core/semver.h"
#include "t.h"

static int parses(const char *s)
{
	struct berth_semver v;
	return berth_semver_parse(s, strlen(s), &v);
}

static int cmp(const char *a, const char *b)
{
	struct berth_semver x, y;
	if (!berth_semver_parse(a, strlen(a), &x) || !berth_semver_parse(b, strlen(b), &y)) return 99;
	return berth_semver_cmp(&x, &y);
}

static int match(const char *range, const char *v)
{
	struct berth_semver_range r;
	struct berth_semver x;
	if (berth_semver_range_parse(range, strlen(range), &r) != BERTH_OK) return -1;
	if (!berth_semver_parse(v, strlen(v), &x)) return -2;
	return berth_semver_range_match(&r, &x);
}

static void test_grammar(void)
{
	struct berth_semver v;
	CHECK(parses("1"));
	CHECK(parses("1.2"));
	CHECK(parses("1.2.3"));
	CHECK(parses("v1.2.3"));
	CHECK(parses("0.0.0"));
	CHECK(parses("1.2.3-rc.1"));
	CHECK(parses("1.2.3-alpha-1.x"));
	CHECK(!parses(""));
	CHECK(!parses("latest"));
	CHECK(!parses("01.2.3"));
	CHECK(!parses("1.02"));
	CHECK(!parses("1.2.3.4"));
	CHECK(!parses("1.2-rc.1")); /* a pre-release needs MAJOR.MINOR.PATCH */
	CHECK(!parses("1.2.3-"));
	CHECK(!parses("1.2.3-rc..1"));
	CHECK(!parses("1.2.3-01"));
	CHECK(!parses("1.2.3_x"));
	CHECK(!parses("v"));
	CHECK(!parses("1."));
	CHECK(!parses("1234567890123456789")); /* more digits than we accept */
	CHECK(berth_semver_parse("v1.20.3-rc.2", 12, &v));
	CHECK_EQ_INT(v.major, 1);
	CHECK_EQ_INT(v.minor, 20);
	CHECK_EQ_INT(v.patch, 3);
	CHECK_EQ_INT(v.parts, 3);
	CHECK_EQ_INT(v.v_prefix, 1);
	CHECK_STR(v.pre, "rc.2");
	CHECK(berth_semver_parse("2.1", 3, &v));
	CHECK_EQ_INT(v.parts, 2);
}

static void test_precedence(void)
{
	/* semver.org §11's example chain. */
	const char *chain[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
			       "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1",
			       "1.1.0", "1.10.0", "2.0.0"};
	for (size_t i = 0; i + 1 < sizeof chain / sizeof chain[0]; i++) {
		CHECK(cmp(chain[i], chain[i + 1]) < 0);
		CHECK(cmp(chain[i + 1], chain[i]) > 0);
	}
	CHECK_EQ_INT(cmp("1.2.3", "v1.2.3"), 0);
	CHECK(cmp("1.9.9", "1.10.0") < 0);
	CHECK(cmp("1.1.9", "1.2.0") < 0);
}

static void test_ranges(void)
{
	CHECK_EQ_INT(match("^1.2", "1.2.0"), 1);
	CHECK_EQ_INT(match("^1.2", "1.9.9"), 1);
	CHECK_EQ_INT(match("^1.2", "2.0.0"), 0);
	CHECK_EQ_INT(match("^1.2", "1.1.9"), 0);
	CHECK_EQ_INT(match("^1.2", "1.3.0-rc.1"), 0);
	CHECK_EQ_INT(match("^0.2.3", "0.2.9"), 1);
	CHECK_EQ_INT(match("^0.2.3", "0.3.0"), 0);
	CHECK_EQ_INT(match("^0.0.3", "0.0.4"), 0);
	CHECK_EQ_INT(match("~1.2.3", "1.2.9"), 1);
	CHECK_EQ_INT(match("~1.2.3", "1.3.0"), 0);
	CHECK_EQ_INT(match("~1.2.3", "1.2.2"), 0);
	CHECK_EQ_INT(match("~1", "1.9.0"), 1);
	CHECK_EQ_INT(match(">=1.0.0 <2.0.0", "1.5.0"), 1);
	CHECK_EQ_INT(match(">=1.0.0 <2.0.0", "2.0.0"), 0);
	CHECK_EQ_INT(match(">=1.0.0 <2.0.0", "2.0.0-rc.1"), 0);
	CHECK_EQ_INT(match(">= 1.0.0, < 2.0.0", "1.0.0"), 1);
	CHECK_EQ_INT(match("1.x", "1.4.2"), 1);
	CHECK_EQ_INT(match("1.x", "2.0.0"), 0);
	CHECK_EQ_INT(match("1.2.x", "1.2.7"), 1);
	CHECK_EQ_INT(match("1.2.*", "1.3.0"), 0);
	CHECK_EQ_INT(match("*", "9.9.9"), 1);
	CHECK_EQ_INT(match("1.2.3", "1.2.3"), 1);
	CHECK_EQ_INT(match("=1.2.3", "1.2.4"), 0);
	CHECK_EQ_INT(match(">1.2", "1.2.9"), 0);
	CHECK_EQ_INT(match(">1.2", "1.3.0"), 1);
	CHECK_EQ_INT(match("<=1.2", "1.2.9"), 1);
	CHECK_EQ_INT(match("<=1.2", "1.3.0"), 0);
	CHECK_EQ_INT(match("^1.0.0 || ^3.0.0", "3.1.0"), 1);
	CHECK_EQ_INT(match("^1.0.0 || ^3.0.0", "2.1.0"), 0);
	/* A pre-release matches only a comparator naming one of the same version. */
	CHECK_EQ_INT(match(">=1.2.3-rc.1", "1.2.3-rc.2"), 1);
	CHECK_EQ_INT(match(">=1.2.3-rc.1", "1.2.4-rc.1"), 0);
	CHECK_EQ_INT(match("v1.x", "v1.0.1"), 1);
	CHECK_EQ_INT(match("", "1.0.0"), -1);
	CHECK_EQ_INT(match("^", "1.0.0"), -1);
	CHECK_EQ_INT(match("^1.2 ||", "1.0.0"), -1);
	CHECK_EQ_INT(match("hello", "1.0.0"), -1);
	CHECK_EQ_INT(match(">=1.0.0 <2 >1 <3 >0", "1.0.0"), -1); /* too many comparators */
}

int main(void)
{
	T_RUN(test_grammar);
	T_RUN(test_precedence);
	T_RUN(test_ranges);
	return T_DONE("unit-semver");
}

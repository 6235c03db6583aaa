/* test_ref.c — repository name and tag grammar (distribution-spec "Pulling manifests"). */
#include <stdlib.h>
#include <string.h>

#include "../../src/core/limits.h"
#include "../../src/core/ref.h"
#include "t.h"

struct ref_case {
	const char *s;
	int valid;
};

static const struct ref_case name_cases[] = {
	{"a", 1},
	{"0", 1},
	{"library/alpine", 1},
	{"a/b/c", 1},
	{"a/b/c/d/e/f/g", 1},
	{"my-org/my-app", 1},
	{"a.b", 1},
	{"a_b", 1},
	{"a__b", 1},
	{"a-b", 1},
	{"a---b", 1},
	{"a-----------------b", 1},
	{"a.b_c__d-e--f", 1},
	{"ubuntu2204", 1},
	{"123/456", 1},
	{"foo.example.com/bar", 1},
	{"a0.b1/c2_d3", 1},
	{"ab/cd.ef-gh__ij", 1},

	{"", 0},
	{"A", 0},
	{"Library/alpine", 0},
	{"library/Alpine", 0},
	{"a//b", 0},
	{"/a", 0},
	{"a/", 0},
	{"/", 0},
	{"//", 0},
	{"a..b", 0},
	{"a.", 0},
	{".a", 0},
	{"-a", 0},
	{"a-", 0},
	{"_a", 0},
	{"a_", 0},
	{"a___b", 0},
	{"a._b", 0},
	{"a_.b", 0},
	{"a-_b", 0},
	{"a_-b", 0},
	{"a.-b", 0},
	{"a-.b", 0},
	{"a/-b", 0},
	{"a/.b", 0},
	{"a/b.", 0},
	{"a b", 0},
	{" a", 0},
	{"a ", 0},
	{"a:b", 0},
	{"a@b", 0},
	{"a+b", 0},
	{"a\\b", 0},
	{"a/b/", 0},
	{"a\tb", 0},
	{"caf\xc3\xa9", 0},
	{"localhost:5000/a", 0},
	{"a/../b", 0},
	{"./a", 0},
	{"..", 0},
	{".", 0},
};

static const struct ref_case tag_cases[] = {
	{"latest", 1},
	{"v1.2.3", 1},
	{"V1", 1},
	{"_", 1},
	{"_x", 1},
	{"1", 1},
	{"a-b_c.d", 1},
	{"sha256-adab55c36c56f4054a64972a431e38e407d0060ce90888a2470d67598042f7c8", 1},
	{"A..--__", 1},
	{"x.", 1},

	{"", 0},
	{".a", 0},
	{"-a", 0},
	{".", 0},
	{"-", 0},
	{"a+b", 0},
	{"1.0+build", 0},
	{"a/b", 0},
	{"a:b", 0},
	{"a@b", 0},
	{"a b", 0},
	{" a", 0},
	{"a\n", 0},
	{"sha256:abc", 0},
	{"t\xc3\xa4g", 0},
};

static void test_name_table(void)
{
	for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
		const struct ref_case *c = &name_cases[i];
		int got = berth_ref_name_valid(c->s, strlen(c->s));

		if (got != c->valid) fprintf(stderr, "  name \"%s\": got %d\n", c->s, got);
		CHECK_EQ_INT(got, c->valid);
	}
}

static void test_tag_table(void)
{
	for (size_t i = 0; i < sizeof tag_cases / sizeof tag_cases[0]; i++) {
		const struct ref_case *c = &tag_cases[i];
		int got = berth_ref_tag_valid(c->s, strlen(c->s));

		if (got != c->valid) fprintf(stderr, "  tag \"%s\": got %d\n", c->s, got);
		CHECK_EQ_INT(got, c->valid);
	}
}

/* n bytes of c on the heap, exactly sized so ASan sees any read past the view. */
static char *repeat(char c, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p) memset(p, c, n);
	return p;
}

static void test_name_length(void)
{
	char *p = repeat('a', BERTH_NAME_MAX + 1);

	CHECK(p != NULL);
	if (!p) return;
	CHECK_EQ_INT(BERTH_NAME_MAX, 255);
	CHECK(berth_ref_name_valid(p, 255));
	CHECK(!berth_ref_name_valid(p, 256));
	/* 255 with separators still counts the separators. */
	for (size_t i = 1; i < 255; i += 2)
		p[i] = '/';
	CHECK(berth_ref_name_valid(p, 255));
	p[255] = 'a';
	p[254] = '/';
	CHECK(!berth_ref_name_valid(p, 256));
	CHECK(!berth_ref_name_valid(p, 255)); /* ends with '/' */
	free(p);
}

static void test_tag_length(void)
{
	char *p = repeat('t', BERTH_TAG_MAX + 1);

	CHECK(p != NULL);
	if (!p) return;
	CHECK(berth_ref_tag_valid(p, 128));
	CHECK(berth_ref_tag_valid(p, 1));
	CHECK(!berth_ref_tag_valid(p, 129));
	CHECK(!berth_ref_tag_valid(p, 0));
	free(p);
}

static void test_views_and_nul(void)
{
	/* The view decides, not a terminating NUL: a prefix of an invalid string can be valid. */
	CHECK(berth_ref_name_valid("abc/", 3));
	CHECK(!berth_ref_name_valid("abc/", 4));
	CHECK(berth_ref_tag_valid("v1+x", 2));
	CHECK(!berth_ref_tag_valid("v1+x", 4));
	/* Embedded NUL bytes are never part of a name or tag. */
	CHECK(!berth_ref_name_valid("a\0b", 3));
	CHECK(!berth_ref_tag_valid("a\0b", 3));
	CHECK(!berth_ref_name_valid(NULL, 0));
	CHECK(!berth_ref_name_valid(NULL, 3));
	CHECK(!berth_ref_tag_valid(NULL, 0));
	CHECK(!berth_ref_tag_valid(NULL, 3));
}

/* Every prefix of every table entry, heap-copied to its exact length: no out-of-bounds reads
 * whatever the cut (ASan), and the answer only depends on the bytes in the view. */
static void test_all_prefixes_in_bounds(void)
{
	for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
		const char *s = name_cases[i].s;
		size_t len = strlen(s);

		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n ? n : 1);

			CHECK(p != NULL);
			if (!p) return;
			memcpy(p, s, n);
			CHECK_EQ_INT(berth_ref_name_valid(p, n), berth_ref_name_valid(s, n));
			CHECK_EQ_INT(berth_ref_tag_valid(p, n), berth_ref_tag_valid(s, n));
			free(p);
		}
	}
}

int main(void)
{
	T_RUN(test_name_table);
	T_RUN(test_tag_table);
	T_RUN(test_name_length);
	T_RUN(test_tag_length);
	T_RUN(test_views_and_nul);
	T_RUN(test_all_prefixes_in_bounds);
	return T_DONE("unit-ref");
}

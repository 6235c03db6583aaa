/* Route recognition: names with slashes, markers inside names, malformed paths. */
#include "../../src/http/router.h"
#include "t.h"

static struct berth_route parse(const char *p)
{
	struct berth_route r;
	berth_route_parse(p, strlen(p), &r);
	return r;
}

static void test_base_and_catalog(void)
{
	CHECK_EQ_INT(parse("/v2/").kind, BERTH_ROUTE_BASE);
	CHECK_EQ_INT(parse("/v2").kind, BERTH_ROUTE_BASE);
	CHECK_EQ_INT(parse("/v2/_catalog").kind, BERTH_ROUTE_CATALOG);
	CHECK_EQ_INT(parse("/v1/").kind, BERTH_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(parse("/v2x").kind, BERTH_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(parse("/").kind, BERTH_ROUTE_NOT_FOUND);
}

static void test_endpoints(void)
{
	struct berth_route r = parse("/v2/team/app/manifests/1.0");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_MANIFEST);
	CHECK_STR(r.name, "team/app");
	CHECK_STR(r.ref, "1.0");
	r = parse("/v2/a/tags/list");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_TAGS);
	CHECK_STR(r.name, "a");
	r = parse("/v2/a/b/c/blobs/sha256:abc");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_BLOB);
	CHECK_STR(r.name, "a/b/c");
	CHECK_STR(r.ref, "sha256:abc");
	r = parse("/v2/a/blobs/uploads/");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_UPLOADS);
	r = parse("/v2/a/blobs/uploads");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_UPLOADS);
	r = parse("/v2/a/blobs/uploads/1234-abcd");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_UPLOAD);
	CHECK_STR(r.ref, "1234-abcd");
	r = parse("/v2/a/referrers/sha256:00");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_REFERRERS);
}

static void test_markers_inside_names(void)
{
	/* A repository may be called "manifests" or "blobs": the rightmost marker decides. */
	struct berth_route r = parse("/v2/x/manifests/y/manifests/latest");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_MANIFEST);
	CHECK_STR(r.name, "x/manifests/y");
	CHECK_STR(r.ref, "latest");
	r = parse("/v2/blobs/tags/list");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_TAGS);
	CHECK_STR(r.name, "blobs");
	r = parse("/v2/a/blobs/uploads/x/manifests/t");
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_MANIFEST);
	CHECK_STR(r.name, "a/blobs/uploads/x");
}

static void test_invalid(void)
{
	CHECK_EQ_INT(parse("/v2/UPPER/tags/list").kind, BERTH_ROUTE_NAME_INVALID);
	CHECK_EQ_INT(parse("/v2/a..b/tags/list").kind, BERTH_ROUTE_NAME_INVALID);
	CHECK_EQ_INT(parse("/v2/a//b/tags/list").kind, BERTH_ROUTE_NAME_INVALID);
	CHECK_EQ_INT(parse("/v2/../etc/manifests/x").kind, BERTH_ROUTE_NAME_INVALID);
	CHECK_EQ_INT(parse("/v2//tags/list").kind, BERTH_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(parse("/v2/a/manifests/").kind, BERTH_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(parse("/v2/a/tags/list/x").kind, BERTH_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(parse("/v2/a/unknown").kind, BERTH_ROUTE_NOT_FOUND);
	char long_name[400];
	memset(long_name, 'a', sizeof long_name);
	memcpy(long_name, "/v2/", 4);
	memcpy(long_name + 300, "/tags/list", 11);
	CHECK_EQ_INT(parse(long_name).kind, BERTH_ROUTE_NAME_INVALID);
	/* A reference too long to be any tag, digest or upload id keeps its route, cut to
	 * BERTH_ROUTE_REF_MAX (still too long to be valid) for the endpoint to refuse. */
	char long_ref[400];
	memset(long_ref, 'a', sizeof long_ref - 1);
	long_ref[sizeof long_ref - 1] = '\0';
	memcpy(long_ref, "/v2/a/manifests/", 16);
	struct berth_route lr = parse(long_ref);
	CHECK_EQ_INT(lr.kind, BERTH_ROUTE_MANIFEST);
	CHECK_STR(lr.name, "a");
	CHECK_EQ_INT(strlen(lr.ref), BERTH_ROUTE_REF_MAX);
	memcpy(long_ref, "/v2/a/referrers/", 16);
	CHECK_EQ_INT(parse(long_ref).kind, BERTH_ROUTE_REFERRERS);
	memcpy(long_ref, "/v2/a/blobs/uploads/", 20);
	lr = parse(long_ref);
	CHECK_EQ_INT(lr.kind, BERTH_ROUTE_UPLOAD);
	CHECK_EQ_INT(strlen(lr.ref), BERTH_ROUTE_REF_MAX);
	/* An embedded NUL never reaches a handler. */
	struct berth_route r;
	berth_route_parse("/v2/a/manifests/x\0y", 19, &r);
	CHECK_EQ_INT(r.kind, BERTH_ROUTE_NOT_FOUND);
}

int main(void)
{
	T_RUN(test_base_and_catalog);
	T_RUN(test_endpoints);
	T_RUN(test_markers_inside_names);
	T_RUN(test_invalid);
	return T_DONE("unit-router");
}

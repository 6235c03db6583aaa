/* test_client_parse.c — the client's pure parsers: WWW-Authenticate challenge lists
 * (RFC 7235 §4.1), Link headers (RFC 8288), platform strings and matching. */
#include <string.h>

#include "../../src/client/ops.h"
#include "../../src/client/transport.h"
#include "t.h"

static int parse(const char *s, struct berth_challenges *c)
{
	return berth_challenges_parse(s, strlen(s), c);
}

static void test_bearer_docker_hub(void)
{
	struct berth_challenges c;

	CHECK_EQ_INT(parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			   "scope=\"repository:library/alpine:pull\"", &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.c[0].scheme, "bearer");
	CHECK_STR(c.c[0].realm, "https://auth.docker.io/token");
	CHECK_STR(c.c[0].service, "registry.docker.io");
	CHECK_STR(c.c[0].scope, "repository:library/alpine:pull");
}

static void test_basic(void)
{
	struct berth_challenges c;

	CHECK_EQ_INT(parse("Basic realm=\"Registry Realm\"", &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.c[0].scheme, "basic");
	CHECK_STR(c.c[0].realm, "Registry Realm");
	/* scheme is case-insensitive, token values unquoted, spaces around '=' (BWS) */
	CHECK_EQ_INT(parse("BASIC realm = basic-realm", &c), 0);
	CHECK_STR(c.c[0].scheme, "basic");
	CHECK_STR(c.c[0].realm, "basic-realm");
	/* a bare scheme */
	CHECK_EQ_INT(parse("Basic", &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.c[0].realm, "");
}

static void test_quoted_commas_and_escapes(void)
{
	struct berth_challenges c;

	CHECK_EQ_INT(parse("Bearer realm=\"https://a/t?x=1,2\",scope=\"repository:a:pull,push\"", &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.c[0].realm, "https://a/t?x=1,2");
	CHECK_STR(c.c[0].scope, "repository:a:pull,push");
	CHECK_EQ_INT(parse("Basic realm=\"say \\\"hi\\\", \\\\ ok\"", &c), 0);
	CHECK_STR(c.c[0].realm, "say \"hi\", \\ ok");
}

static void test_multiple_challenges(void)
{
	struct berth_challenges c;

	CHECK_EQ_INT(parse("Basic realm=\"r1\", Bearer realm=\"https://t/token\",service=\"s\"", &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_STR(c.c[0].scheme, "basic");
	CHECK_STR(c.c[0].realm, "r1");
	CHECK_STR(c.c[1].scheme, "bearer");
	CHECK_STR(c.c[1].realm, "https://t/token");
	CHECK_STR(c.c[1].service, "s");
	/* token68 challenge before an auth-param one (RFC 7235 §2.1) */
	CHECK_EQ_INT(parse("Negotiate abc123==, Basic realm=x", &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_STR(c.c[0].scheme, "negotiate");
	CHECK_STR(c.c[1].scheme, "basic");
	CHECK_STR(c.c[1].realm, "x");
	/* empty list elements and unknown params are ignored */
	CHECK_EQ_INT(parse(" , Bearer  realm=\"r\" , error=\"invalid_token\", foo=bar ,, ", &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.c[0].error, "invalid_token");
	/* two headers joined by the transport with ", " */
	CHECK_EQ_INT(parse("Bearer realm=\"a\", Basic realm=\"b\"", &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_INT(parse("", &c), 0);
	CHECK_EQ_INT(c.n, 0);
}

static void test_malformed(void)
{
	struct berth_challenges c;
	char big[2100];

	CHECK_EQ_INT(parse("Bearer realm=\"unterminated", &c), -1);
	CHECK_EQ_INT(parse("Bearer realm=\"x\",service=", &c), -1);
	/* "realm=" alone reads as a token68 (RFC 7235 §2.1 allows trailing '=') */
	CHECK_EQ_INT(parse("Bearer realm=", &c), 0);
	CHECK_STR(c.c[0].realm, "");
	CHECK_EQ_INT(parse("\"Bearer\"", &c), -1);
	CHECK_EQ_INT(parse("Bearer realm=\"a\" junk", &c), -1);
	memset(big, 'a', sizeof big);
	memcpy(big, "Basic realm=", 12);
	big[sizeof big - 1] = '\0';
	CHECK_EQ_INT(parse(big, &c), -1); /* realm longer than the field */
	/* a NUL inside the view is no token character */
	CHECK_EQ_INT(berth_challenges_parse("Basic\0realm=x", 13, &c), -1);
}

static void test_link(void)
{
	char out[256];
	const char *s;

	s = "</v2/a/tags/list?last=b&n=2>; rel=\"next\"";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), 1);
	CHECK_STR(out, "/v2/a/tags/list?last=b&n=2");
	s = "<https://r/v2/_catalog?last=x>;rel=next";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), 1);
	CHECK_STR(out, "https://r/v2/_catalog?last=x");
	s = "</p>; rel=\"prev\", </n>; title=\"a;b,c\"; rel=\"last next\"";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), 1);
	CHECK_STR(out, "/n");
	s = "</p>; rel=\"prev\"";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), 0);
	CHECK_EQ_INT(berth_link_next("", 0, out, sizeof out), 0);
	s = "/v2/a; rel=next";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), -1);
	s = "</v2/a; rel=next";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, sizeof out), -1);
	s = "</a-long-target>; rel=next";
	CHECK_EQ_INT(berth_link_next(s, strlen(s), out, 4), -1);
}

static void test_platform_parse(void)
{
	struct berth_platform p;

	CHECK_EQ_INT(berth_platform_parse("linux/amd64", 11, &p), 0);
	CHECK_STR(p.os, "linux");
	CHECK_STR(p.arch, "amd64");
	CHECK_STR(p.variant, "");
	CHECK_EQ_INT(berth_platform_parse("Linux/ARM64/v8", 14, &p), 0);
	CHECK_STR(p.os, "linux");
	CHECK_STR(p.arch, "arm64");
	CHECK_STR(p.variant, "v8");
	CHECK_EQ_INT(berth_platform_parse("linux", 5, &p), -1);
	CHECK_EQ_INT(berth_platform_parse("linux/", 6, &p), -1);
	CHECK_EQ_INT(berth_platform_parse("/amd64", 6, &p), -1);
	CHECK_EQ_INT(berth_platform_parse("a/b/c/d", 7, &p), -1);
	CHECK_EQ_INT(berth_platform_parse("linux/am d64", 12, &p), -1);
}

static void test_platform_match(void)
{
	struct berth_platform p;

	CHECK_EQ_INT(berth_platform_parse("linux/arm64", 11, &p), 0);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "arm64", ""), 1);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "arm64", "v8"), 1);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "aarch64", ""), 1);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "amd64", ""), 0);
	CHECK_EQ_INT(berth_platform_match(&p, "windows", "arm64", ""), 0);
	CHECK_EQ_INT(berth_platform_parse("linux/arm64/v8", 14, &p), 0);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "arm64", ""), 1);
	CHECK_EQ_INT(berth_platform_parse("linux/arm/v7", 12, &p), 0);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "arm", ""), 1);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "arm", "v6"), 0);
	CHECK_EQ_INT(berth_platform_parse("linux/x86_64", 12, &p), 0);
	CHECK_EQ_INT(berth_platform_match(&p, "linux", "amd64", ""), 1);
}

static void test_platform_pick(void)
{
	static const char idx[] =
		"{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":10,"
		"\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":20,"
		"\"digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\","
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}";
	struct berth_platform p;
	struct berth_desc d;

	CHECK_EQ_INT(berth_platform_parse("linux/arm64", 11, &p), 0);
	CHECK_EQ_INT(berth_platform_pick(idx, sizeof idx - 1, &p, &d), 1);
	CHECK_EQ_INT(d.size, 20);
	CHECK_STR(d.variant, "v8");
	CHECK_EQ_INT(berth_platform_parse("linux/s390x", 11, &p), 0);
	CHECK_EQ_INT(berth_platform_pick(idx, sizeof idx - 1, &p, &d), 0);
	CHECK_EQ_INT(berth_platform_pick("{}", 2, &p, &d), -1);
	CHECK_EQ_INT(berth_platform_pick("{\"manifests\":[{\"digest\":\"x\"}]}", 29, &p, &d), -1);
}

int main(void)
{
	T_RUN(test_bearer_docker_hub);
	T_RUN(test_basic);
	T_RUN(test_quoted_commas_and_escapes);
	T_RUN(test_multiple_challenges);
	T_RUN(test_malformed);
	T_RUN(test_link);
	T_RUN(test_platform_parse);
	T_RUN(test_platform_match);
	T_RUN(test_platform_pick);
	return T_DONE("test_client_parse");
}

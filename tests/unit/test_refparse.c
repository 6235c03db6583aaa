/* test_refparse.c — image references read as Docker reads them (distribution/reference
 * ParseNormalizedNamed + TagNameOnly): domain, path, tag, digest, normalised and familiar forms,
 * and the precise reason for each refusal. Inputs are handed over in exact-size heap buffers with
 * no terminator, so ASan catches any read past len. */
#include <stdlib.h>
#include <string.h>

#include "../../src/core/limits.h"
#include "../../src/core/ref.h"
#include "t.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX64B "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
#define D256 "sha256:" H64
#define D512 "sha512:" H64 H64

#define E_EMPTY "invalid reference format: empty reference"
#define E_TOO_LONG "invalid reference format: reference too long"
#define E_HEX "invalid repository name: cannot specify 64-byte hexadecimal strings"
#define E_DOMAIN "invalid reference format: invalid domain"
#define E_IPV6 "invalid reference format: invalid IPv6 address in domain"
#define E_PORT "invalid port"
#define E_DOMAIN_LONG "domain must not be more than 255 characters"
#define E_NO_NAME "invalid reference format: missing repository name"
#define E_EMPTY_COMP "empty path component"
#define E_UPPER "repository name must be lowercase"
#define E_COMP "invalid reference format: invalid path component"
#define E_NAME_LONG "repository name must not be more than 255 characters"
#define E_TAG_EMPTY "invalid reference format: empty tag"
#define E_TAG "invalid reference format: invalid tag"
#define E_TAG_LONG "invalid reference format: tag over 128 characters"
#define E_DIGEST "invalid digest"
#define E_DIGEST_ALG "invalid digest: unsupported algorithm (sha256 and sha512 are accepted)"

struct rp_case {
	const char *in;
	const char *domain, *path;
	const char *tag;    /* NULL: no tag */
	const char *digest; /* NULL: no digest */
	const char *full, *familiar;
	const char *why;    /* non-NULL: the input is refused with this reason */
};

#define OK(in, dom, path, tag, dig, full, fam) {in, dom, path, tag, dig, full, fam, NULL}
#define BAD(in, why) {in, NULL, NULL, NULL, NULL, NULL, NULL, why}

static const struct rp_case cases[] = {
	/* Docker Hub familiar names and their normalisation */
	OK("ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
	   "docker.io/library/ubuntu:latest", "ubuntu:latest"),
	OK("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", NULL,
	   "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
	OK("library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
	   "docker.io/library/ubuntu:latest", "ubuntu:latest"),
	OK("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
	   "docker.io/library/ubuntu:latest", "ubuntu:latest"),
	OK("docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
	   "docker.io/library/ubuntu:latest", "ubuntu:latest"),
	OK("index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
	   "docker.io/library/ubuntu:latest", "ubuntu:latest"),
	OK("index.docker.io/library/ubuntu:20.04", "docker.io", "library/ubuntu", "20.04", NULL,
	   "docker.io/library/ubuntu:20.04", "ubuntu:20.04"),
	OK("index.docker.io/fooo/bar", "docker.io", "fooo/bar", "latest", NULL,
	   "docker.io/fooo/bar:latest", "fooo/bar:latest"),
	OK("library/ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", "latest", NULL,
	   "docker.io/library/ubuntu-12.04-base:latest", "ubuntu-12.04-base:latest"),
	OK("library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL,
	   "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
	OK("docker.io/library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL,
	   "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
	OK("dmcgowan/myapp", "docker.io", "dmcgowan/myapp", "latest", NULL,
	   "docker.io/dmcgowan/myapp:latest", "dmcgowan/myapp:latest"),
	OK("other/library", "docker.io", "other/library", "latest", NULL,
	   "docker.io/other/library:latest", "other/library:latest"),
	OK("store/foo/bar", "docker.io", "store/foo/bar", "latest", NULL,
	   "docker.io/store/foo/bar:latest", "store/foo/bar:latest"),
	OK("docker/migrator", "docker.io", "docker/migrator", "latest", NULL,
	   "docker.io/docker/migrator:latest", "docker/migrator:latest"),
	OK("a", "docker.io", "library/a", "latest", NULL, "docker.io/library/a:latest", "a:latest"),
	OK("0", "docker.io", "library/0", "latest", NULL, "docker.io/library/0:latest", "0:latest"),
	OK("docker.io", "docker.io", "library/docker.io", "latest", NULL,
	   "docker.io/library/docker.io:latest", "docker.io:latest"),
	OK("example.com", "docker.io", "library/example.com", "latest", NULL,
	   "docker.io/library/example.com:latest", "example.com:latest"),
	/* a familiar name that reads as a domain when re-parsed: Docker does not care */
	OK("docker.io/foo.com/bar", "docker.io", "foo.com/bar", "latest", NULL,
	   "docker.io/foo.com/bar:latest", "foo.com/bar:latest"),

	/* localhost is a domain only when followed by '/' */
	OK("localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest", "localhost/x:latest"),
	OK("localhost:5000/x", "localhost:5000", "x", "latest", NULL, "localhost:5000/x:latest",
	   "localhost:5000/x:latest"),
	OK("localhost/library/x", "localhost", "library/x", "latest", NULL,
	   "localhost/library/x:latest", "localhost/library/x:latest"),
	OK("localhost", "docker.io", "library/localhost", "latest", NULL,
	   "docker.io/library/localhost:latest", "localhost:latest"),
	OK("localhost:5000", "docker.io", "library/localhost", "5000", NULL,
	   "docker.io/library/localhost:5000", "localhost:5000"),

	/* IPv4, ports, ':' in the first component */
	OK("127.0.0.1:5000/a/b:t", "127.0.0.1:5000", "a/b", "t", NULL, "127.0.0.1:5000/a/b:t",
	   "127.0.0.1:5000/a/b:t"),
	OK("192.168.0.1", "docker.io", "library/192.168.0.1", "latest", NULL,
	   "docker.io/library/192.168.0.1:latest", "192.168.0.1:latest"),
	OK("192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", NULL,
	   "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
	OK("192.168.0.1:8/debian", "192.168.0.1:8", "debian", "latest", NULL,
	   "192.168.0.1:8/debian:latest", "192.168.0.1:8/debian:latest"),
	OK("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", NULL,
	   "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050"),
	OK("test.com:tag", "docker.io", "library/test.com", "tag", NULL,
	   "docker.io/library/test.com:tag", "test.com:tag"),
	OK("test.com:5000", "docker.io", "library/test.com", "5000", NULL,
	   "docker.io/library/test.com:5000", "test.com:5000"),
	OK("test:5000/repo", "test:5000", "repo", "latest", NULL, "test:5000/repo:latest",
	   "test:5000/repo:latest"),
	OK("test-com:8080/foo", "test-com:8080", "foo", "latest", NULL, "test-com:8080/foo:latest",
	   "test-com:8080/foo:latest"),
	OK("test:5000/repo@" D256, "test:5000", "repo", NULL, D256, "test:5000/repo@" D256,
	   "test:5000/repo@" D256),
	OK("test:5000/repo:tag@" D256, "test:5000", "repo", "tag", D256,
	   "test:5000/repo:tag@" D256, "test:5000/repo:tag@" D256),
	OK("example.com:8000/private/moonbase", "example.com:8000", "private/moonbase", "latest",
	   NULL, "example.com:8000/private/moonbase:latest", "example.com:8000/private/moonbase:latest"),
	/* Docker does not range-check ports */
	OK("host:0/x", "host:0", "x", "latest", NULL, "host:0/x:latest", "host:0/x:latest"),
	OK("host:99999/x", "host:99999", "x", "latest", NULL, "host:99999/x:latest",
	   "host:99999/x:latest"),

	/* IPv6 literals in brackets */
	OK("[::1]:5000/a", "[::1]:5000", "a", "latest", NULL, "[::1]:5000/a:latest",
	   "[::1]:5000/a:latest"),
	OK("[::1]/repo", "[::1]", "repo", "latest", NULL, "[::1]/repo:latest", "[::1]/repo:latest"),
	OK("[2001:db8::1]:5000/repo:tag@" D256, "[2001:db8::1]:5000", "repo", "tag", D256,
	   "[2001:db8::1]:5000/repo:tag@" D256, "[2001:db8::1]:5000/repo:tag@" D256),
	OK("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000",
	   "library/debian", "latest", NULL, "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
	   "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"),
	OK("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest", NULL,
	   "[2001:db8::]:5000/repo:latest", "[2001:db8::]:5000/repo:latest"),
	OK("[FC00::A]/x", "[FC00::A]", "x", "latest", NULL, "[FC00::A]/x:latest",
	   "[FC00::A]/x:latest"),

	/* domains: punycode, subdomains, upper case (allowed in the domain, and an upper-case
	 * first component is taken as a domain) */
	OK("example.com/a/b/c:1.0@" D256, "example.com", "a/b/c", "1.0", D256,
	   "example.com/a/b/c:1.0@" D256, "example.com/a/b/c:1.0@" D256),
	OK("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", NULL,
	   "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com"),
	OK("xn--7o8h.com/myimage:xn--7o8h.com@" D512, "xn--7o8h.com", "myimage", "xn--7o8h.com",
	   D512, "xn--7o8h.com/myimage:xn--7o8h.com@" D512, "xn--7o8h.com/myimage:xn--7o8h.com@" D512),
	OK("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux",
	   "some-long-tag", NULL, "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
	   "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
	OK("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io",
	   "test.example.com/my-app", "test.example.com", NULL,
	   "b.gcr.io/test.example.com/my-app:test.example.com",
	   "b.gcr.io/test.example.com/my-app:test.example.com"),
	OK("a.b.c.d.e/x", "a.b.c.d.e", "x", "latest", NULL, "a.b.c.d.e/x:latest",
	   "a.b.c.d.e/x:latest"),
	OK("Foo/bar", "Foo", "bar", "latest", NULL, "Foo/bar:latest", "Foo/bar:latest"),
	OK("FOO/bar", "FOO", "bar", "latest", NULL, "FOO/bar:latest", "FOO/bar:latest"),
	OK("Docker/docker", "Docker", "docker", "latest", NULL, "Docker/docker:latest",
	   "Docker/docker:latest"),
	OK("Example.COM:443/x/y", "Example.COM:443", "x/y", "latest", NULL,
	   "Example.COM:443/x/y:latest", "Example.COM:443/x/y:latest"),
	/* only the exact lower-case legacy name is rewritten */
	OK("Index.docker.io/a", "Index.docker.io", "a", "latest", NULL, "Index.docker.io/a:latest",
	   "Index.docker.io/a:latest"),

	/* first component without '.', ':' or upper case is a path component */
	OK("test_com", "docker.io", "library/test_com", "latest", NULL,
	   "docker.io/library/test_com:latest", "test_com:latest"),
	OK("test_com/foo", "docker.io", "test_com/foo", "latest", NULL,
	   "docker.io/test_com/foo:latest", "test_com/foo:latest"),
	OK("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", NULL,
	   "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
	OK("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", NULL,
	   "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
	/* Docker quirk: '.' makes it a domain, '_' makes it no valid domain, but the whole is a
	 * valid path, so Docker returns no domain at all */
	OK("a_b.c/d", "", "a_b.c/d", "latest", NULL, "a_b.c/d:latest", "a_b.c/d:latest"),
	OK("foo__bar.com/x/y:1", "", "foo__bar.com/x/y", "1", NULL, "foo__bar.com/x/y:1",
	   "foo__bar.com/x/y:1"),

	/* path grammar */
	OK("a-b---c/d__e.f_g", "docker.io", "a-b---c/d__e.f_g", "latest", NULL,
	   "docker.io/a-b---c/d__e.f_g:latest", "a-b---c/d__e.f_g:latest"),
	OK("docker-rules/docker", "docker.io", "docker-rules/docker", "latest", NULL,
	   "docker.io/docker-rules/docker:latest", "docker-rules/docker:latest"),
	OK("docker---rules/docker", "docker.io", "docker---rules/docker", "latest", NULL,
	   "docker.io/docker---rules/docker:latest", "docker---rules/docker:latest"),
	OK("dock__er/docker", "docker.io", "dock__er/docker", "latest", NULL,
	   "docker.io/dock__er/docker:latest", "dock__er/docker:latest"),
	OK("d/docker", "docker.io", "d/docker", "latest", NULL, "docker.io/d/docker:latest",
	   "d/docker:latest"),
	OK("jess/t", "docker.io", "jess/t", "latest", NULL, "docker.io/jess/t:latest",
	   "jess/t:latest"),
	OK("a/b/c/d/e/f/g", "docker.io", "a/b/c/d/e/f/g", "latest", NULL,
	   "docker.io/a/b/c/d/e/f/g:latest", "a/b/c/d/e/f/g:latest"),
	OK("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io",
	   "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest",
	   NULL, "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
	   "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),

	/* 64 hex digits: refused only as the whole input */
	OK("docker.io/" HEX64B, "docker.io", "library/" HEX64B, "latest", NULL,
	   "docker.io/library/" HEX64B ":latest", HEX64B ":latest"),
	OK("library/" HEX64B, "docker.io", "library/" HEX64B, "latest", NULL,
	   "docker.io/library/" HEX64B ":latest", HEX64B ":latest"),
	OK(HEX64B ":tag", "docker.io", "library/" HEX64B, "tag", NULL,
	   "docker.io/library/" HEX64B ":tag", HEX64B ":tag"),
	OK("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3", "docker.io",
	   "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3", "latest", NULL,
	   "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3:latest",
	   "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3:latest"),

	/* tags */
	OK("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", NULL,
	   "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
	OK("x:_", "docker.io", "library/x", "_", NULL, "docker.io/library/x:_", "x:_"),
	OK("x:0", "docker.io", "library/x", "0", NULL, "docker.io/library/x:0", "x:0"),
	OK("x:v1.0.0-rc.1_build", "docker.io", "library/x", "v1.0.0-rc.1_build", NULL,
	   "docker.io/library/x:v1.0.0-rc.1_build", "x:v1.0.0-rc.1_build"),
	OK("x:_-.", "docker.io", "library/x", "_-.", NULL, "docker.io/library/x:_-.", "x:_-."),

	/* digests: no "latest" added; a tag given with a digest is kept */
	OK("redis@" D256, "docker.io", "library/redis", NULL, D256, "docker.io/library/redis@" D256,
	   "redis@" D256),
	OK("busybox:latest@" D256, "docker.io", "library/busybox", "latest", D256,
	   "docker.io/library/busybox:latest@" D256, "busybox:latest@" D256),
	OK("docker.io/dmcgowan/myapp@" D256, "docker.io", "dmcgowan/myapp", NULL, D256,
	   "docker.io/dmcgowan/myapp@" D256, "dmcgowan/myapp@" D256),
	OK("x:1@" D512, "docker.io", "library/x", "1", D512, "docker.io/library/x:1@" D512,
	   "x:1@" D512),
	OK("localhost:5000/a/b@" D512, "localhost:5000", "a/b", NULL, D512,
	   "localhost:5000/a/b@" D512, "localhost:5000/a/b@" D512),

	/* empty and whole-input refusals */
	BAD("", E_EMPTY),
	BAD(HEX64B, E_HEX),
	BAD(H64, E_HEX),

	/* upper case in the path */
	BAD("Ubuntu", E_UPPER),
	BAD("UBUNTU:latest", E_UPPER),
	BAD("Uppercase:tag", E_UPPER),
	BAD("docker/Docker", E_UPPER),
	BAD("docker.io/docker/Docker", E_UPPER),
	BAD("docker.io/Library/ubuntu", E_UPPER),
	BAD("test:5000/Uppercase/lowercase:tag", E_UPPER),
	BAD("foo/Bar@" D256, E_UPPER),
	BAD("1A3F5E7D9C1B3A5F7E9D1C3B5A7F9E1D3C5B7A9F1E3D5D7C9B1A3F5E7D9C1B3A", E_UPPER),

	/* empty components: leading, trailing and double slashes */
	BAD("/a", E_EMPTY_COMP),
	BAD("/", E_EMPTY_COMP),
	BAD("a/", E_EMPTY_COMP),
	BAD("foo/bar/", E_EMPTY_COMP),
	BAD("a//b", E_EMPTY_COMP),
	BAD("docker///docker", E_EMPTY_COMP),
	BAD("docker.io/docker///docker", E_EMPTY_COMP),
	BAD("example.com/a//b:t", E_EMPTY_COMP),
	BAD("localhost//x", E_EMPTY_COMP),
	BAD("localhost/", E_NO_NAME),
	BAD("example.com:5000/", E_NO_NAME),
	BAD("example.com/:tag", E_NO_NAME),
	BAD(":justtag", E_NO_NAME),
	BAD("@" D256, E_NO_NAME),
	BAD("@sha256:", E_NO_NAME),
	BAD(":", E_NO_NAME),
	BAD("@", E_NO_NAME),

	/* path component grammar */
	BAD("-docker", E_COMP),
	BAD("-docker/docker", E_COMP),
	BAD("docker-/docker", E_COMP),
	BAD("-docker-/docker", E_COMP),
	BAD("____/____", E_COMP),
	BAD("_docker/_docker", E_COMP),
	BAD("dock..er/docker", E_DOMAIN),
	BAD("dock..er/docker", E_DOMAIN),
	BAD("dock..er/docker", E_DOMAIN),
	BAD("a___b", E_COMP),
	BAD("a/b.", E_COMP),
	BAD("aa/asdf$$^/aa", E_COMP),
	BAD("a/b c/d", E_COMP),
	BAD("a\\b", E_COMP),
	BAD("[fc00::1]", E_COMP),
	BAD("[fc00::1]:5000", E_COMP),

	/* whitespace anywhere */
	BAD(" ubuntu", E_COMP),
	BAD("ubuntu ", E_COMP),
	BAD("ubu ntu", E_COMP),
	BAD("\tubuntu", E_COMP),
	BAD("ubuntu\n", E_COMP),
	BAD("ubuntu:latest ", E_TAG),
	BAD("ubuntu@" D256 " ", E_DIGEST),
	BAD(" example.com/x", E_DOMAIN),

	/* domains */
	BAD("-docker.io/docker/docker", E_DOMAIN),
	BAD("a..b/x", E_DOMAIN),
	BAD(".a/x", E_DOMAIN),
	BAD("a./x", E_DOMAIN),
	BAD("a-.com/x", E_DOMAIN),
	BAD("a.-b/x", E_DOMAIN),
	BAD(":5000/x", E_DOMAIN),
	BAD("ex_ample.com:5000/x", E_DOMAIN),
	BAD("EX_AMPLE.com/x", E_DOMAIN),
	BAD("[::1]x/y", E_DOMAIN),
	BAD("[fe80::1%eth0]:5000/debian", E_IPV6),
	BAD("[fe80::1%@invalidzone]:5000/repo", E_IPV6),
	BAD("[2001:db8:3:4::192.0.2.33]:5000/debian", E_IPV6),
	BAD("[]:5000/x", E_IPV6),
	BAD("[::1/x", E_IPV6),
	BAD("[::g]/x", E_IPV6),

	/* ports */
	BAD("host:/x", E_PORT),
	BAD("host:abc/x", E_PORT),
	BAD("host:50a0/x", E_PORT),
	BAD("localhost:/x", E_PORT),
	BAD("[::1]:/x", E_PORT),
	BAD("[::1]:x/y", E_PORT),
	BAD("fc00::1:5000/debian", E_PORT),
	BAD("https://github.com/docker/docker", E_PORT),
	BAD("a:x/y", E_PORT),

	/* tags */
	BAD("a:b:c", E_TAG),
	BAD("a:", E_TAG_EMPTY),
	BAD("a:@" D256, E_TAG_EMPTY),
	BAD("a:-x", E_TAG),
	BAD("a:.x", E_TAG),
	BAD("a:t!g", E_TAG),
	BAD("a:t+g", E_TAG),
	BAD("a:tag:", E_TAG),

	/* digests */
	BAD("repo@sha256:ffffffffffffffffffffffffffffffffff", E_DIGEST),
	BAD("repo@sha256:", E_DIGEST),
	BAD("repo@", E_DIGEST),
	BAD("repo:tag@", E_DIGEST),
	BAD("repo@sha256:" H64 "0", E_DIGEST),
	BAD("repo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", E_DIGEST),
	BAD("repo@sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", E_DIGEST),
	BAD("repo@sha256:0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef", E_DIGEST),
	BAD("repo@sha512:" H64, E_DIGEST),
	BAD("repo@" H64, E_DIGEST),
	BAD("repo@:" H64, E_DIGEST),
	BAD("repo@" D256 "@" D256, E_DIGEST),
	BAD("a@b@c", E_DIGEST),
	BAD("validname@invaliddigest:" H64, E_DIGEST_ALG),
	BAD("repo@sha384:" H64 "0123456789abcdef0123456789abcdef", E_DIGEST_ALG),
	BAD("repo@md5:0123456789abcdef0123456789abcdef", E_DIGEST_ALG),
	BAD("repo@SHA256:" H64, E_DIGEST_ALG),
	BAD("repo@sha256+b64u:" H64, E_DIGEST_ALG),
};

static size_t cur;

/* The input in a heap buffer of exactly its length, no terminator. */
static char *rp_dup(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (p && len) memcpy(p, s, len);
	return p;
}

static void test_table_case(void)
{
	const struct rp_case *c = &cases[cur];
	size_t len = strlen(c->in);
	char *in = rp_dup(c->in, len), buf[BERTH_REF_STRING_MAX + 1];
	struct berth_ref r;
	const char *why = "unset";
	berth_err e;

	CHECK(in != NULL);
	if (!in) return;
	e = berth_ref_parse(in, len, &r, &why);
	if (c->why) {
		CHECK_EQ_INT(e, BERTH_EINVAL);
		CHECK_STR(why, c->why);
		CHECK_STR(r.domain, "");
		CHECK_STR(r.path, "");
		CHECK(!r.has_tag && !r.has_digest);
	} else {
		CHECK_EQ_INT(e, BERTH_OK);
		CHECK(why == NULL);
		CHECK_STR(r.domain, c->domain);
		CHECK_STR(r.path, c->path);
		CHECK_EQ_INT(r.has_tag, c->tag != NULL);
		CHECK_STR(r.tag, c->tag ? c->tag : "");
		CHECK_EQ_INT(r.has_digest, c->digest != NULL);
		CHECK_STR(r.digest, c->digest ? c->digest : "");
		CHECK_EQ_INT(berth_ref_format_full(&r, buf, sizeof buf), BERTH_OK);
		CHECK_STR(buf, c->full);
		CHECK_EQ_INT(berth_ref_familiar(&r, buf, sizeof buf), BERTH_OK);
		CHECK_STR(buf, c->familiar);
	}
	if (t_cur_failed) fprintf(stderr, "  (input \"%s\")\n", c->in);
	free(in);
}

/* The normalised form is a fixed point: parsing it again gives the same reference. */
static void test_full_round_trip(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_ref a, b;
		char full[BERTH_REF_STRING_MAX + 1], again[BERTH_REF_STRING_MAX + 1];

		if (cases[i].why) continue;
		if (berth_ref_parse(cases[i].in, strlen(cases[i].in), &a, NULL)) continue;
		CHECK_EQ_INT(berth_ref_format_full(&a, full, sizeof full), BERTH_OK);
		CHECK_EQ_INT(berth_ref_parse(full, strlen(full), &b, NULL), BERTH_OK);
		CHECK_EQ_INT(berth_ref_format_full(&b, again, sizeof again), BERTH_OK);
		CHECK_STR(again, full);
		CHECK_STR(b.domain, a.domain);
		CHECK_STR(b.path, a.path);
	}
}

/* Parses s (terminated) and returns the reason, or NULL when it is valid. */
static const char *rp_why(const char *s, size_t len, struct berth_ref *r)
{
	char *in = rp_dup(s, len);
	const char *why = NULL;

	if (!in) return "malloc";
	if (berth_ref_parse(in, len, r, &why) == BERTH_OK) why = NULL;
	free(in);
	return why;
}

static void test_tag_length(void)
{
	char s[2 + 200 + 1];
	struct berth_ref r;

	memcpy(s, "x:", 2);
	memset(s + 2, 't', 129);
	s[2 + 128] = '\0';
	CHECK(rp_why(s, 2 + 128, &r) == NULL);
	CHECK_EQ_INT(strlen(r.tag), 128);
	s[2 + 128] = 't';
	s[2 + 129] = '\0';
	CHECK_STR(rp_why(s, 2 + 129, &r), E_TAG_LONG);
	/* a bad character past the limit is still a bad tag, not a long one */
	memset(s + 2, 't', 200);
	s[2 + 150] = '!';
	s[2 + 200] = '\0';
	CHECK_STR(rp_why(s, 2 + 200, &r), E_TAG);
}

/* The limit is on the normalised path alone (distribution/reference v0.6.0): "library/" counts,
 * the domain does not. */
static void test_name_length(void)
{
	char s[600];
	struct berth_ref r;
	size_t n;

	/* "a/a/.../a" of 255 and 257 characters */
	n = 0;
	for (int i = 0; i < 128; i++) {
		s[n++] = 'a';
		s[n++] = '/';
	}
	s[n++] = 'a';
	CHECK_STR(rp_why(s, n, &r), E_NAME_LONG);
	CHECK(rp_why(s + 2, n - 2, &r) == NULL);
	CHECK_STR(r.domain, "docker.io");
	CHECK_EQ_INT(strlen(r.path), 255);

	/* one component: "library/" + 247 = 255 */
	memset(s, 'b', 248);
	CHECK(rp_why(s, 247, &r) == NULL);
	CHECK_EQ_INT(strlen(r.path), 255);
	CHECK_STR(rp_why(s, 248, &r), E_NAME_LONG);

	/* with a domain: the path alone may be 255 */
	memcpy(s, "example.com/", 12);
	memset(s + 12, 'c', 256);
	CHECK(rp_why(s, 12 + 255, &r) == NULL);
	CHECK_STR(r.domain, "example.com");
	CHECK_EQ_INT(strlen(r.path), 255);
	CHECK_STR(rp_why(s, 12 + 256, &r), E_NAME_LONG);
	memcpy(s, "localhost:5000/", 15);
	memset(s + 15, 'c', 256);
	CHECK(rp_why(s, 15 + 255, &r) == NULL);
	CHECK_STR(rp_why(s, 15 + 256, &r), E_NAME_LONG);
	/* "docker.io/" + one component gets "library/" too */
	memcpy(s, "docker.io/", 10);
	memset(s + 10, 'd', 248);
	CHECK(rp_why(s, 10 + 247, &r) == NULL);
	CHECK_STR(rp_why(s, 10 + 248, &r), E_NAME_LONG);
}

/* A domain of n characters: 63-character labels joined by '.', then "/x". Returns the length. */
static size_t rp_domain(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		s[i] = (i % 64 == 63) ? '.' : 'h';
	if (s[n - 1] == '.') s[n - 1] = 'h';
	memcpy(s + n, "/x", 2);
	return n + 2;
}

static void test_domain_length(void)
{
	char s[600];
	struct berth_ref r;

	CHECK(rp_why(s, rp_domain(s, 255), &r) == NULL);
	CHECK_EQ_INT(strlen(r.domain), 255);
	CHECK_STR(r.path, "x");
	CHECK_STR(rp_why(s, rp_domain(s, 256), &r), E_DOMAIN_LONG);
}

/* The longest valid reference fits BERTH_REF_STRING_MAX exactly; one byte more is refused before
 * it is read, and a buffer one byte short is reported, not overrun. */
static void test_longest(void)
{
	static char s[BERTH_REF_STRING_MAX + 2];
	char full[BERTH_REF_STRING_MAX + 1];
	struct berth_ref r;
	size_t n = rp_domain(s, 255) - 1;

	memset(s + n, 'p', 255);
	n += 255;
	s[n++] = ':';
	memset(s + n, 'T', 128);
	n += 128;
	memcpy(s + n, "@" D512, 1 + strlen(D512));
	n += 1 + strlen(D512);
	CHECK_EQ_INT(n, BERTH_REF_STRING_MAX);
	CHECK(rp_why(s, n, &r) == NULL);
	CHECK_EQ_INT(berth_ref_format_full(&r, full, sizeof full), BERTH_OK);
	CHECK_EQ_INT(strlen(full), BERTH_REF_STRING_MAX);
	CHECK(memcmp(full, s, n) == 0);
	CHECK_EQ_INT(berth_ref_format_full(&r, full, sizeof full - 1), BERTH_ETOO_LARGE);
	CHECK_STR(full, "");
	s[n++] = 'x';
	CHECK_STR(rp_why(s, n, &r), E_TOO_LONG);
}

static void test_api_edges(void)
{
	struct berth_ref r;
	const char *why = NULL;
	char buf[16];

	/* bytes past len are not part of the reference */
	CHECK_EQ_INT(berth_ref_parse("ubuntu:22.04", 6, &r, &why), BERTH_OK);
	CHECK_STR(r.tag, "latest");
	/* an embedded NUL is an invalid character, not an end */
	CHECK_EQ_INT(berth_ref_parse("ab\0cd", 5, &r, &why), BERTH_EINVAL);
	CHECK_STR(why, E_COMP);
	CHECK_EQ_INT(berth_ref_parse("x:a\0b", 5, &r, &why), BERTH_EINVAL);
	CHECK_STR(why, E_TAG);
	/* NULL input and NULL why */
	CHECK_EQ_INT(berth_ref_parse(NULL, 0, &r, &why), BERTH_EINVAL);
	CHECK_STR(why, E_EMPTY);
	CHECK_EQ_INT(berth_ref_parse("Bad", 3, &r, NULL), BERTH_EINVAL);
	CHECK_EQ_INT(berth_ref_parse("ok", 2, &r, NULL), BERTH_OK);
	CHECK_EQ_INT(berth_ref_parse("ok", 2, NULL, &why), BERTH_EINVAL);
	/* small buffers */
	CHECK_EQ_INT(berth_ref_parse("ubuntu", 6, &r, NULL), BERTH_OK);
	CHECK_EQ_INT(berth_ref_familiar(&r, buf, sizeof buf), BERTH_OK);
	CHECK_STR(buf, "ubuntu:latest");
	CHECK_EQ_INT(berth_ref_format_full(&r, buf, sizeof buf), BERTH_ETOO_LARGE);
	CHECK_STR(buf, "");
	CHECK_EQ_INT(berth_ref_familiar(&r, buf, 13), BERTH_ETOO_LARGE);
	CHECK_EQ_INT(berth_ref_familiar(&r, buf, 14), BERTH_OK);
	CHECK_EQ_INT(berth_ref_format_full(&r, NULL, 0), BERTH_ETOO_LARGE);
	/* the server's validators are unchanged by the reference parser */
	CHECK(berth_ref_name_valid("library/ubuntu", 14));
	CHECK(!berth_ref_name_valid("docker.io:5000/x", 16));
	CHECK(berth_ref_tag_valid("latest", 6));
}

int main(void)
{
	size_t n = sizeof cases / sizeof cases[0];

	for (cur = 0; cur < n; cur++)
		T_RUN(test_table_case);
	T_RUN(test_full_round_trip);
	T_RUN(test_tag_length);
	T_RUN(test_name_length);
	T_RUN(test_domain_length);
	T_RUN(test_longest);
	T_RUN(test_api_edges);
	return T_DONE("unit-refparse");
}

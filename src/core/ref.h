/* ref.h — names, tags and image references. Pure functions of (bytes, length): no I/O, no
 * allocation, so a fuzzer can drive them. Grammar from the OCI distribution-spec and Docker's
 * distribution/reference. */
#ifndef BERTH_REF_H
#define BERTH_REF_H

#include <stddef.h>
#include "err.h"
#include "limits.h"

/* Repository name: components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/', total length
 * 1..BERTH_NAME_MAX. Returns 1 when valid. */
int berth_ref_name_valid(const char *s, size_t len);

/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. Returns 1 when valid. */
int berth_ref_tag_valid(const char *s, size_t len);

/* Domain of a reference ("registry.example.com:5000", "[::1]:5000"). Docker sets no limit; DNS
 * names stop at 253 characters, and a bound keeps struct berth_ref allocation-free. */
#define BERTH_REF_DOMAIN_MAX 255
/* Longest normalised reference, DOMAIN/PATH:TAG@DIGEST. No valid input is longer either (the
 * only normalisation that shortens, index.docker.io -> docker.io, is far from the bound), so
 * berth_ref_parse refuses longer input before looking at it. */
#define BERTH_REF_STRING_MAX \
	(BERTH_REF_DOMAIN_MAX + 1 + BERTH_NAME_MAX + 1 + BERTH_TAG_MAX + 1 + BERTH_DIGEST_MAX)

/* An image reference normalised the way Docker's ParseNormalizedNamed + TagNameOnly leave it:
 * "ubuntu" is docker.io / library/ubuntu : latest. Every field is NUL-terminated. */
struct berth_ref {
	char domain[BERTH_REF_DOMAIN_MAX + 1]; /* "docker.io", "localhost:5000"; "" see below */
	char path[BERTH_NAME_MAX + 1];         /* repository path, "library/ubuntu" */
	char tag[BERTH_TAG_MAX + 1];           /* "" when !has_tag */
	char digest[BERTH_DIGEST_MAX + 1];     /* "sha256:<hex>", "" when !has_digest */
	int has_tag;                           /* given, or "latest" added for lack of tag and digest */
	int has_digest;
};

/* Parses NAME[:TAG][@DIGEST], NAME = [DOMAIN[:PORT]/]PATH, from an untrusted (pointer, length)
 * view, exactly as Docker (distribution/reference ParseNormalizedNamed) reads it, then adds the
 * tag "latest" when neither a tag nor a digest is given (TagNameOnly). A tag given together with
 * a digest is kept. Differences from Docker, all refusals: digests other than sha256/sha512
 * (Docker also takes sha384), domains over BERTH_REF_DOMAIN_MAX characters.
 * One Docker quirk is kept: a first component with '.' and '_' ("a_b.c/d") is no valid domain
 * but a valid path, and Docker then returns an empty domain and the whole name as path.
 * On error returns BERTH_EINVAL and points *why (if why is not NULL) at a static message;
 * *out is then zeroed. */
berth_err berth_ref_parse(const char *s, size_t len, struct berth_ref *out,
			  const char **why) BERTH_MUST_CHECK;

/* The normalised string: "docker.io/library/ubuntu:latest", "host:5000/a/b@sha256:...",
 * "a/b:t@sha256:...". BERTH_REF_STRING_MAX + 1 bytes always suffice; a smaller buf that is too
 * small gets "" and BERTH_ETOO_LARGE. */
berth_err berth_ref_format_full(const struct berth_ref *r, char *buf, size_t len) BERTH_MUST_CHECK;

/* Docker's familiar form (FamiliarString): domain docker.io dropped, and "library/" dropped from
 * a two-component path: "ubuntu:latest", "user/app:1", "quay.io/a/b@sha256:...". Same buffer
 * contract as berth_ref_format_full. */
berth_err berth_ref_familiar(const struct berth_ref *r, char *buf, size_t len) BERTH_MUST_CHECK;

#endif

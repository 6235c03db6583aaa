/* ops.h — the client's use cases: push (layout → registry), pull (registry → layout), copy
 * (registry → registry, streamed blob by blob, cross-repository mounts, resumed uploads), tag,
 * tag listing, inspect, digest, delete, login check. Built on transport.h and layout.h; never
 * prints (results come back as structs or JSON trees; progress through the client's callback). */
#ifndef BERTH_CLIENT_OPS_H
#define BERTH_CLIENT_OPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/digest.h"
#include "../core/ref.h"
#include "layout.h"
#include "transport.h"

/* Every manifest media type a pull asks for. */
#define BERTH_ACCEPT_MANIFESTS                                                                  \
	"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                           \
	"application/vnd.docker.distribution.manifest.v2+json"

/* os/arch[/variant] (image-spec image-index.md "platform"). */
struct berth_platform {
	char os[32], arch[32], variant[32];
};

/* Parses "linux/arm64/v8". Returns 0, or -1 when malformed. Pure. */
int berth_platform_parse(const char *s, size_t len, struct berth_platform *out);
/* 1 when a descriptor's platform (os, arch, variant; "" when absent) satisfies want. Aliases
 * as containerd normalises them (x86_64 = amd64, aarch64 = arm64; arm64 "v8" = no variant;
 * arm without variant = v7); a want without variant accepts any. Pure. */
int berth_platform_match(const struct berth_platform *want, const char *os, const char *arch,
			 const char *variant);
/* Picks the first child of an image index (JSON bytes) whose platform matches. Returns 1 and
 * fills *out, 0 when none matches, -1 when the index is malformed. Pure. */
int berth_platform_pick(const char *index, size_t len, const struct berth_platform *want,
			struct berth_desc *out);

/* What a transfer did, for the CLI's report. */
struct berth_op_result {
	struct berth_desc top;     /* the manifest or index written/pushed/copied */
	int manifests;             /* manifests (incl. the top one) written */
	int blobs, blobs_sent, blobs_existing, blobs_mounted;
	int64_t bytes_sent;
};

/* Checks the client's credentials for registry (berth_client_set_login) against /v2/. */
berth_cerr berth_op_login_check(struct berth_client *c, const char *registry) BERTH_C_MUST_CHECK;

/* Pushes image name of the layout at dir (NULL: the only one) to dst. */
berth_cerr berth_op_push(struct berth_client *c, const char *dir, const char *name,
			 const struct berth_ref *dst, struct berth_op_result *res) BERTH_C_MUST_CHECK;

/* Pulls src into the layout at dir (created when missing) under name (NULL: unnamed). plat:
 * pick one image from an index (NULL: the whole index). */
berth_cerr berth_op_pull(struct berth_client *c, const struct berth_ref *src, const char *dir,
			 const char *name, const struct berth_platform *plat,
			 struct berth_op_result *res) BERTH_C_MUST_CHECK;

/* Copies src to dst (any registries). */
berth_cerr berth_op_copy(struct berth_client *c, const struct berth_ref *src,
			 const struct berth_ref *dst, struct berth_op_result *res) BERTH_C_MUST_CHECK;

/* Tags src as dst within one registry without moving layer bytes. */
berth_cerr berth_op_tag(struct berth_client *c, const struct berth_ref *src,
			const struct berth_ref *dst, struct berth_op_result *res) BERTH_C_MUST_CHECK;

/* Tags of repo's repository: one page (all = 0) or every page following Link. page_size 0:
 * the registry's default. *tags: caller frees with berth_op_tags_free. */
berth_cerr berth_op_tags(struct berth_client *c, const struct berth_ref *repo, int all,
			 int page_size, char ***tags, size_t *n) BERTH_C_MUST_CHECK;
void berth_op_tags_free(char **tags, size_t n);
/* berth_op_tags with extra query parameters (query: "sort=semver&semver=%5E1.2", already
 * URL-encoded; NULL: none), kept on every page as the registry's Link carries them. */
berth_cerr berth_op_tags_query(struct berth_client *c, const struct berth_ref *repo, int all,
			       int page_size, const char *query, char ***tags,
			       size_t *n) BERTH_C_MUST_CHECK;

/* GET /berth/v1/<path_query> (berth's extension API: "derived?image=app%3A1") on registry,
 * following every Link rel="next" page and joining their "images" arrays into the first
 * page's object. scope: token scope to ask for (NULL: the challenge's). *out: caller decrefs. */
berth_cerr berth_op_ext_get(struct berth_client *c, const char *registry, const char *path_query,
			    const char *scope, json_t **out) BERTH_C_MUST_CHECK;
/* Percent-encodes s (RFC 3986 unreserved characters kept) into out (cap bytes, truncated). */
void berth_url_encode(const char *s, char *out, size_t cap);

/* The manifest of ref: raw bytes (caller frees) and a description (JSON object, caller
 * decrefs): name, digest, mediaType, size, then for an index "manifests" (digest, mediaType,
 * size, platform), for an image "config", "os", "architecture", "created", "labels", "layers"
 * (digest, mediaType, size) and "totalSize". plat: describe that platform's image of an index. */
berth_cerr berth_op_inspect(struct berth_client *c, const struct berth_ref *ref,
			    const struct berth_platform *plat, char **raw, size_t *rawlen,
			    json_t **info) BERTH_C_MUST_CHECK;

/* The manifest digest of ref (Docker-Content-Digest of a HEAD, else the hash of the bytes). */
berth_cerr berth_op_digest(struct berth_client *c, const struct berth_ref *ref,
			   struct berth_digest *out) BERTH_C_MUST_CHECK;

/* Deletes the manifest ref names (by digest: a tag is resolved first). */
berth_cerr berth_op_delete(struct berth_client *c, const struct berth_ref *ref,
			   struct berth_digest *deleted) BERTH_C_MUST_CHECK;

#endif

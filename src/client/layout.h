/* layout.h — OCI image layout directories (image-spec image-layout.md): the oci-layout file,
 * index.json and blobs/<alg>/<hex>. Reads resolve a name through index.json's
 * "org.opencontainers.image.ref.name" annotation; writes are atomic (temp + fsync + rename)
 * and every blob is verified against its digest before it becomes visible. No network. */
#ifndef BERTH_CLIENT_LAYOUT_H
#define BERTH_CLIENT_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/digest.h"
#include "../core/limits.h"
#include "transport.h"

#define BERTH_REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

/* A descriptor (image-spec descriptor.md), platform fields "" when absent. */
struct berth_desc {
	char media_type[BERTH_MEDIA_TYPE_MAX + 1];
	struct berth_digest digest;
	int64_t size;
	char os[32], arch[32], variant[32];
};

struct berth_layout;

/* Opens dir; create: make it (and oci-layout, index.json, blobs/) when missing. Errors: USAGE
 * for a directory that is no layout, FAIL for I/O; *why is static. */
berth_cerr berth_layout_open(const char *dir, int create, struct berth_layout **out,
			     const char **why) BERTH_C_MUST_CHECK;
void berth_layout_free(struct berth_layout *l);
/* The last error's description ("blob sha256:... missing"); "" when none. */
const char *berth_layout_error(const struct berth_layout *l);

/* The index.json entry named name; name NULL or "": the only entry (USAGE when several).
 * NOTFOUND when no entry has the name. */
berth_cerr berth_layout_resolve(struct berth_layout *l, const char *name,
				struct berth_desc *out) BERTH_C_MUST_CHECK;

/* Reads a whole blob of at most max bytes into *buf (caller frees), verifying its digest
 * (DIGEST on mismatch, NOTFOUND when missing). */
berth_cerr berth_layout_read_blob(struct berth_layout *l, const struct berth_digest *d, size_t max,
				  char **buf, size_t *len) BERTH_C_MUST_CHECK;
/* Opens a blob for reading: *fd (caller closes) and its size. */
berth_cerr berth_layout_open_blob(struct berth_layout *l, const struct berth_digest *d, int *fd,
				  int64_t *size) BERTH_C_MUST_CHECK;
/* 1 when the blob is present with this size (size < 0: any). */
int berth_layout_has_blob(struct berth_layout *l, const struct berth_digest *d, int64_t size);

/* A blob being written: bytes go to fd; commit verifies and renames into place. */
struct berth_layout_tmp {
	int fd;
	char path[4096];
};
berth_cerr berth_layout_blob_begin(struct berth_layout *l, struct berth_layout_tmp *t) BERTH_C_MUST_CHECK;
/* got: the digest of the bytes written (hashed by the caller as they streamed). DIGEST when
 * got differs from want (the temp file is removed either way on failure). */
berth_cerr berth_layout_blob_commit(struct berth_layout *l, struct berth_layout_tmp *t,
				    const struct berth_digest *want,
				    const struct berth_digest *got) BERTH_C_MUST_CHECK;
void berth_layout_blob_abort(struct berth_layout_tmp *t);
/* Writes a whole blob from memory (verified against d). */
berth_cerr berth_layout_write_blob(struct berth_layout *l, const struct berth_digest *d,
				   const void *buf, size_t len) BERTH_C_MUST_CHECK;

/* Points name at desc in index.json (replacing an entry of the same name; name NULL or "":
 * an unnamed entry, replacing one with the same digest). Atomic rewrite. */
berth_cerr berth_layout_set_ref(struct berth_layout *l, const struct berth_desc *desc,
				const char *name) BERTH_C_MUST_CHECK;

#endif

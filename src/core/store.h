/* store.h — blob storage behind a driver interface: finished blobs addressed by digest, and
 * staging objects for uploads in progress. The filesystem driver is the embedded default; an
 * object-store driver implements the same operations. A store knows bytes and digests only:
 * never repositories, tags, HTTP or metadata. A partial blob is never visible: staged bytes
 * become a blob only through berth_store_upload_commit, which is atomic and durable. */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "digest.h"
#include "err.h"

struct berth_store;
struct berth_store_writer;

struct berth_store_ops {
	const char *name;
	void (*free)(struct berth_store *st);
	berth_err (*stat)(struct berth_store *st, const struct berth_digest *d, int64_t *size);
	/* A read-only descriptor for zero-copy serving; BERTH_EUNSUPPORTED when the driver has
	 * none (callers then use read). Ownership of *fd moves to the caller. */
	berth_err (*open_fd)(struct berth_store *st, const struct berth_digest *d, int *fd,
			     int64_t *size);
	berth_err (*read)(struct berth_store *st, const struct berth_digest *d, int64_t off,
			  void *buf, size_t len, size_t *got);
	berth_err (*remove)(struct berth_store *st, const struct berth_digest *d);
	berth_err (*upload_create)(struct berth_store *st, const char *id);
	berth_err (*upload_size)(struct berth_store *st, const char *id, int64_t *size);
	berth_err (*upload_open)(struct berth_store *st, const char *id,
				 struct berth_store_writer **w, int64_t *size);
	berth_err (*upload_read)(struct berth_store *st, const char *id, int64_t off, void *buf,
				 size_t len, size_t *got);
	/* Publishes the staged bytes as blob d. durable: flush data and name before returning;
	 * otherwise the caller makes it durable with sync (group commit). */
	berth_err (*upload_commit)(struct berth_store *st, const char *id,
				   const struct berth_digest *d, int durable);
	/* Makes everything written so far durable (data and names): one flush for a batch. */
	berth_err (*sync)(struct berth_store *st);
	berth_err (*upload_remove)(struct berth_store *st, const char *id);
	/* Calls fn for each finished blob, with its age in seconds (garbage collection). */
	berth_err (*blob_list)(struct berth_store *st,
			       void (*fn)(void *ctx, const struct berth_digest *d, long age),
			       void *ctx);
	/* Calls fn for each staged upload id, with its age in seconds. */
	berth_err (*upload_list)(struct berth_store *st,
				 void (*fn)(void *ctx, const char *id, long age), void *ctx);
	/* Appends to the staged object. The driver may hold bytes back (to write them in the
	 * background); a write error may surface at a later write or at writer_flush. */
	berth_err (*writer_write)(struct berth_store_writer *w, const void *buf, size_t len);
	/* Every byte written is in the staged object (not yet durable). After any error the
	 * staged object holds a prefix of what was written, possibly shorter than reported. */
	berth_err (*writer_flush)(struct berth_store_writer *w);
	/* Flushes (errors lost: flush first to see them) and frees. */
	void (*writer_close)(struct berth_store_writer *w);
	/* A reader follows the staged object as it grows: make bytes readable as soon as they are
	 * written, at the price of durability work left to the commit. */
	void (*writer_follow)(struct berth_store_writer *w);
	/* Bytes of the staged object a reader sees now (the writer may hold later ones back). */
	int64_t (*writer_visible)(struct berth_store_writer *w);
	/* A read-only descriptor of the staged object, valid after it is published or removed
	 * (a mirror's readers follow a blob as it arrives). BERTH_EUNSUPPORTED when the driver
	 * has none. Ownership of *fd moves to the caller. */
	berth_err (*upload_fd)(struct berth_store *st, const char *id, int *fd);
};

struct berth_store {
	const struct berth_store_ops *ops;
};

/* The filesystem driver: blobs under <root>/blobs/<alg>/<2 hex>/<hex>, uploads under
 * <root>/uploads/<id>. Creates the folders. */
berth_err berth_store_fs_open(const char *root, struct berth_store **out) BERTH_MUST_CHECK;

static inline void berth_store_free(struct berth_store *st)
{
	if (st) st->ops->free(st);
}

#endif

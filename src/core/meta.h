/* meta.h — registry metadata behind one interface: repositories, which blobs each repository
 * may serve, manifests (their exact bytes and what they reference), tags, referrers and upload
 * sessions. SQLite is the embedded driver; a shared SQL server driver implements the same ops
 * so several stateless nodes can share one store. Metadata never touches blob bytes or HTTP.
 * Every write is one transaction: a crash leaves each operation either done or not done. */
#ifndef BERTH_META_H
#define BERTH_META_H

#include <stddef.h>
#include <stdint.h>
#include "digest.h"
#include "err.h"
#include "image.h"

struct berth_meta;

/* A manifest as stored. Strings borrowed from the caller during put. */
struct berth_meta_manifest_in {
	const struct berth_digest *digest;
	const char *media_type;
	const void *content;
	size_t len;
	const char *artifact_type;       /* "" when none */
	const struct berth_digest *subject; /* NULL when none */
	const char *annotations_json;    /* NULL when none */
	size_t n_refs;
	const struct berth_digest *const *ref_digests;
	const int *ref_is_manifest;
	const struct berth_image_info *image; /* index entry of an image manifest, or NULL */
	int lazy_refs; /* a mirror's copy: references may be absent (fetched when asked for) */
};

/* An indexed image, borrowed for the duration of a callback. */
struct berth_meta_image {
	const char *repo;
	const char *digest;
	int64_t n_layers;
	const char *top_chain;   /* "" for an image without layers */
	const char *labels_json; /* NULL when none */
	const char *base_name, *base_digest; /* "" when absent */
	const char *created, *os, *arch;
};
typedef int (*berth_meta_image_fn)(void *ctx, const struct berth_meta_image *img);

/* A manifest read back: content and media_type are owned by the caller (free()). */
struct berth_meta_manifest_out {
	struct berth_digest digest;
	char *media_type;
	void *content;
	size_t len;
};

/* One referrer, borrowed for the duration of the callback. */
struct berth_meta_referrer {
	const char *digest;
	const char *media_type;
	int64_t size;
	const char *artifact_type;
	const char *annotations_json; /* NULL when none */
};

/* One finished upload to record: the blob, its link into repo, and the end of its session. */
struct berth_meta_publish {
	const char *repo;
	const struct berth_digest *digest;
	int64_t size;
	const char *upload_id; /* NULL for a single-request push (no session row) */
};

/* How tags of a repository follow semantic versions (semver.h). Exact versions (1.2.3) pull
 * the floating tags of their line (1.2, 1, latest) along, in the same transaction, but only
 * while they are the highest release of that line; pre-releases never move floats. */
struct berth_meta_tag_policy {
	int semver;        /* track versions at all */
	int float_major;   /* keep "1" on the newest 1.y.z */
	int float_minor;   /* keep "1.2" on the newest 1.2.z */
	int float_latest;  /* keep "latest" on the newest release */
	int immutable;     /* an exact version may not move to other content */
};

/* Listing callbacks return 0 to go on, non-zero to stop. */
typedef int (*berth_meta_name_fn)(void *ctx, const char *name, size_t len);
typedef int (*berth_meta_referrer_fn)(void *ctx, const struct berth_meta_referrer *r);

struct berth_meta_ops {
	const char *name;
	void (*free)(struct berth_meta *m);
	berth_err (*repo_exists)(struct berth_meta *m, const char *repo);
	berth_err (*blob_link)(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			       int64_t size);
	berth_err (*blob_get)(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			      int64_t *size);
	/* Any repository holding d: BERTH_OK + size, or BERTH_EBLOB_UNKNOWN. */
	berth_err (*blob_find)(struct berth_meta *m, const struct berth_digest *d, int64_t *size);
	berth_err (*blob_unlink)(struct berth_meta *m, const char *repo,
				 const struct berth_digest *d);
	/* Records n finished uploads in one transaction (group commit); durable: the commit
	 * itself is flushed to stable storage before returning. */
	berth_err (*blobs_publish)(struct berth_meta *m, const struct berth_meta_publish *items,
				   size_t n, int durable);
	/* Stores the manifest and (tag != NULL) points tag at it, in one transaction, after
	 * checking every reference exists in repo (BERTH_EMANIFEST_BLOB_UNKNOWN otherwise). */
	berth_err (*manifest_put)(struct berth_meta *m, const char *repo,
				  const struct berth_meta_manifest_in *mf, const char *tag,
				  const struct berth_meta_tag_policy *pol);
	/* by_digest: ref is a digest string, else a tag. BERTH_EMANIFEST_UNKNOWN or
	 * BERTH_ENAME_UNKNOWN when absent. */
	berth_err (*manifest_get)(struct berth_meta *m, const char *repo, const char *ref,
				  int by_digest, struct berth_meta_manifest_out *out);
	/* Like manifest_get without the content (HEAD): len and media type only. */
	berth_err (*manifest_head)(struct berth_meta *m, const char *repo, const char *ref,
				   int by_digest, struct berth_meta_manifest_out *out);
	berth_err (*manifest_delete)(struct berth_meta *m, const char *repo,
				     const struct berth_digest *d,
				     const struct berth_meta_tag_policy *pol);
	berth_err (*tag_delete)(struct berth_meta *m, const char *repo, const char *tag,
				const struct berth_meta_tag_policy *pol);
	/* Tags of repo after `last` (exclusive; NULL = from the start) in byte order, at most n. */
	berth_err (*tags_list)(struct berth_meta *m, const char *repo, const char *last, long n,
			       berth_meta_name_fn fn, void *ctx);
	berth_err (*catalog)(struct berth_meta *m, const char *last, long n, berth_meta_name_fn fn,
			     void *ctx);
	/* Manifests in repo whose subject is d; artifact_type NULL = all. */
	berth_err (*referrers)(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			       const char *artifact_type, berth_meta_referrer_fn fn, void *ctx);
	/* ---- the image index (golden images, lineage, labels) ---- */
	/* The index entry of repo@digest: BERTH_EMANIFEST_UNKNOWN when not indexed. */
	berth_err (*image_get)(struct berth_meta *m, const char *repo, const char *digest,
			       berth_meta_image_fn fn, void *ctx);
	/* Images with more than n_layers layers whose first n_layers are chain (built on it),
	 * and images whose base-digest annotation names base_digest. */
	berth_err (*image_derived)(struct berth_meta *m, const char *chain, int64_t n_layers,
				   const char *base_digest, berth_meta_image_fn fn, void *ctx);
	/* Images whose layers are a proper prefix of repo@digest's, longest first. */
	berth_err (*image_bases)(struct berth_meta *m, const char *repo, const char *digest,
				 berth_meta_image_fn fn, void *ctx);
	/* Images carrying label key=value. */
	berth_err (*image_by_label)(struct berth_meta *m, const char *key, const char *value,
				    berth_meta_image_fn fn, void *ctx);
	/* Images whose whole layer chain is top_chain (their last chains[] entry), and images
	 * whose digest is digest ("" or NULL: none), in any repository. */
	berth_err (*image_find)(struct berth_meta *m, const char *top_chain, const char *digest,
				berth_meta_image_fn fn, void *ctx);
	/* Tags of repo pointing at digest. */
	berth_err (*tags_of)(struct berth_meta *m, const char *repo, const char *digest,
			     berth_meta_name_fn fn, void *ctx);
	/* Every stored manifest (for reindexing): fn gets repo, digest, media type, content. */
	berth_err (*manifests_each)(struct berth_meta *m,
				    int (*fn)(void *ctx, const char *repo, const char *digest,
					      const char *media_type, const void *content,
					      size_t len),
				    void *ctx);
	/* Replaces the index entry of repo@digest (reindex). */
	berth_err (*image_index)(struct berth_meta *m, const char *repo, const char *digest,
				 const struct berth_image_info *info);

	/* ---- garbage collection (offline) ---- */
	/* Links made before `before` that no manifest of their repository references. */
	berth_err (*gc_links)(struct berth_meta *m, int64_t before,
			      int (*fn)(void *ctx, const char *repo, const char *digest), void *ctx);
	berth_err (*gc_unlink)(struct berth_meta *m, const char *repo, const char *digest,
			       int64_t before);
	/* Drops the blob row when no repository links it; *forgotten tells whether it went. */
	berth_err (*gc_blob_forget)(struct berth_meta *m, const char *digest, int *forgotten);

	/* Records a new session of repo, or BERTH_ETOOMANY when repo already has `limit` open
	 * sessions (0 = no limit). One atomic step: concurrent starts cannot overshoot.
	 * The record may stay in memory only (deferred) until uploads_save writes it; every
	 * operation here sees a deferred session like a written one, and one that ends while
	 * still deferred (published, deleted) is never written at all. Most sessions of a
	 * monolithic push live a millisecond: deferring spares them two writes. */
	berth_err (*upload_create)(struct berth_meta *m, const char *id, const char *repo,
				   int64_t now, unsigned limit);
	/* Writes deferred session records, in one transaction: id's (NULL: none in particular)
	 * and every one deferred for at least min_age_ms. *left (may be NULL): how many stay
	 * deferred. Freeing the driver writes them all. */
	berth_err (*uploads_save)(struct berth_meta *m, const char *id, unsigned min_age_ms,
				  size_t *left);
	/* BERTH_EUPLOAD_UNKNOWN unless id is a session of repo (repo NULL: of any repository). */
	berth_err (*upload_get)(struct berth_meta *m, const char *id, const char *repo,
				int64_t *created);
	berth_err (*upload_delete)(struct berth_meta *m, const char *id);
	/* Calls fn with the id of every session created before `before`. */
	berth_err (*uploads_expired)(struct berth_meta *m, int64_t before, berth_meta_name_fn fn,
				     void *ctx);
};

struct berth_meta {
	const struct berth_meta_ops *ops;
};

/* The SQLite driver (WAL). durable: fsync each commit (synchronous=FULL) rather than only
 * being safe against process crashes (NORMAL). Connections are per thread, but for the
 * frequent small writes (upload sessions, publishing), which share one. */
berth_err berth_meta_sqlite_open(const char *path, int durable, struct berth_meta **out)
	BERTH_MUST_CHECK;

static inline void berth_meta_free(struct berth_meta *m)
{
	if (m) m->ops->free(m);
}

#endif

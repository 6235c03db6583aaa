/* registry.h — the registry's use cases (pull, push, mount, tag, list, delete, referrers) over a
 * blob store and a metadata store. This is the policy layer: names are validated here, digests
 * verified here, and nothing partial is ever published. It knows no HTTP: callers map
 * berth_err values to protocol errors. */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include "digest.h"
#include "err.h"
#include "meta.h"
#include "store.h"

struct berth_registry;

struct berth_registry_opts {
	int delete_enabled;
	size_t manifest_max;
	long upload_expiry;      /* seconds */
	unsigned uploads_per_repo; /* open sessions per repository; 0 = no limit */
	int durable;             /* fsync blobs before acknowledging */
	/* Semantic-version tags (meta.h berth_meta_tag_policy) for repositories matching one of
	 * semver_repos (patterns: '*' within a component, "**" across); borrowed strings. */
	const char *const *semver_repos;
	size_t n_semver_repos;
	struct berth_meta_tag_policy semver;
	/* Golden (base image) repositories: patterns, borrowed. */
	const char *const *golden_repos;
	size_t n_golden_repos;
	/* Repositories (patterns, borrowed) that only accept images built on a golden image:
	 * a manifest put there is refused (BERTH_EDENIED) unless the image, or every platform
	 * image of an index, has a golden image's layers as a prefix of its own or names one in
	 * its org.opencontainers.image.base.digest annotation. */
	const char *const *golden_require;
	size_t n_golden_require;
};

/* Takes ownership of store and meta. */
berth_err berth_registry_new(struct berth_store *store, struct berth_meta *meta,
			     const struct berth_registry_opts *opts,
			     struct berth_registry **out) BERTH_MUST_CHECK;
void berth_registry_free(struct berth_registry *r);

const struct berth_registry_opts *berth_registry_opts(const struct berth_registry *r);

/* A counter that moves on every change a cached read could depend on (manifests, tags,
 * blob removals; not blob additions). Read it before reading what you cache. */
uint64_t berth_registry_generation(const struct berth_registry *r);

/* Removes expired sessions; at_startup also removes staged files that have no session. */
void berth_registry_janitor(struct berth_registry *r, int at_startup);

/* ---- blobs ---- */
berth_err berth_registry_blob_stat(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, int64_t *size) BERTH_MUST_CHECK;
/* *fd is -1 when the driver has no descriptor (then use berth_registry_blob_read). */
berth_err berth_registry_blob_open(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, int *fd,
				   int64_t *size) BERTH_MUST_CHECK;
berth_err berth_registry_blob_delete(struct berth_registry *r, const char *repo,
				     const struct berth_digest *d) BERTH_MUST_CHECK;
/* Mount d into repo from `from` (NULL: from any repository holding it). BERTH_EBLOB_UNKNOWN
 * when not mountable. */
berth_err berth_registry_blob_mount(struct berth_registry *r, const char *repo,
				    const struct berth_digest *d,
				    const char *from) BERTH_MUST_CHECK;

/* ---- uploads ---- */
#define BERTH_UPLOAD_ID_LEN 36
/* A new session. Its record may be written up to ~2 x 100 ms later (meta.h, upload_create):
 * a crash before that loses the session, which holds no bytes yet. */
berth_err berth_registry_upload_start(struct berth_registry *r, const char *repo,
				      char id[BERTH_UPLOAD_ID_LEN + 1]) BERTH_MUST_CHECK;
/* Makes sure the session's record is written: call before acknowledging bytes it holds. */
berth_err berth_registry_upload_keep(struct berth_registry *r, const char *id) BERTH_MUST_CHECK;
/* Bytes received so far. */
berth_err berth_registry_upload_status(struct berth_registry *r, const char *repo,
				       const char *id, int64_t *size) BERTH_MUST_CHECK;
berth_err berth_registry_upload_cancel(struct berth_registry *r, const char *repo,
				       const char *id) BERTH_MUST_CHECK;

/* A body being appended to an upload, hashed as it is written. Only one writer per upload at a
 * time (a second gets BERTH_EUPLOAD_INVALID). start >= 0 demands the upload be exactly that
 * long (BERTH_ERANGE otherwise). hash_alg: the algorithm the final digest will use when known
 * (0 = sha256). */
struct berth_upload_writer;
berth_err berth_registry_upload_writer(struct berth_registry *r, const char *repo,
				       const char *id, int64_t start, enum berth_digest_alg hash_alg,
				       struct berth_upload_writer **w) BERTH_MUST_CHECK;
berth_err berth_upload_writer_write(struct berth_upload_writer *w, const void *buf,
				    size_t len) BERTH_MUST_CHECK;
int64_t berth_upload_writer_size(const struct berth_upload_writer *w);
/* Bytes of the staged upload a reader sees now (berth_registry_upload_fd): the store may hold
 * later ones back until berth_upload_writer_finish. */
int64_t berth_upload_writer_visible(struct berth_upload_writer *w);
/* A reader follows this upload as it grows (filewriter.h berth_filewriter_follow). */
void berth_upload_writer_follow(struct berth_upload_writer *w);
/* A read-only descriptor of staged upload id, still valid once it is published (ownership of
 * *fd moves to the caller); BERTH_EUNSUPPORTED when the store has none. */
berth_err berth_registry_upload_fd(struct berth_registry *r, const char *id,
				   int *fd) BERTH_MUST_CHECK;
/* Puts every byte written into the staged upload and reports a write error not yet
 * reported (the store may write in the background). */
berth_err berth_upload_writer_finish(struct berth_upload_writer *w) BERTH_MUST_CHECK;
/* Ends the write (bytes already written stay; finishes first if finish was not called). */
void berth_upload_writer_close(struct berth_upload_writer *w);

/* Closing an upload is two steps so the publication can be group-committed off the caller's
 * thread: prepare verifies the bytes hash to d (BERTH_EDIGEST_INVALID otherwise, and the
 * session is discarded) and returns a pending commit; submit queues it, and done(ctx, result)
 * is called from the committer thread once the blob is durable, published and linked to repo
 * (or failed). A batch of commits shares two storage flushes. Must not hold a writer. */
struct berth_registry_commit;
typedef void (*berth_registry_done_fn)(void *ctx, berth_err result);
berth_err berth_registry_upload_prepare(struct berth_registry *r, const char *repo,
					const char *id, const struct berth_digest *d,
					struct berth_registry_commit **c) BERTH_MUST_CHECK;
void berth_registry_commit_submit(struct berth_registry *r, struct berth_registry_commit *c,
				  berth_registry_done_fn done, void *ctx);

/* prepare + submit, waiting for the result. */
berth_err berth_registry_upload_finish(struct berth_registry *r, const char *repo,
				       const char *id, const struct berth_digest *d,
				       int64_t *size) BERTH_MUST_CHECK;
/* The same, calling verified(ud) once the bytes are known to hash to d, before they are made
 * durable and published (a mirror's readers may take the last byte then). */
berth_err berth_registry_upload_finish_verified(struct berth_registry *r, const char *repo,
						const char *id, const struct berth_digest *d,
						int64_t *size, void (*verified)(void *ud),
						void *ud) BERTH_MUST_CHECK;

/* Single-request push (POST ?digest=): a private staging object with no session. */
berth_err berth_registry_upload_anonymous(struct berth_registry *r, const char *repo,
					  enum berth_digest_alg alg, char id[BERTH_UPLOAD_ID_LEN + 1],
					  struct berth_upload_writer **w) BERTH_MUST_CHECK;

/* ---- manifests ---- */
struct berth_registry_manifest {
	struct berth_digest digest;
	char *media_type;   /* owned */
	void *content;      /* owned; NULL for head */
	size_t len;
};
void berth_registry_manifest_clear(struct berth_registry_manifest *m);

/* ref is a tag or a digest string (validated here: one that is neither names no manifest,
 * BERTH_EMANIFEST_UNKNOWN; only the put refuses it, BERTH_ETAG_INVALID/BERTH_EDIGEST_INVALID). */
berth_err berth_registry_manifest_get(struct berth_registry *r, const char *repo,
				      const char *ref, int with_content,
				      struct berth_registry_manifest *out) BERTH_MUST_CHECK;
/* Stores content under ref. Out: its digest, and its subject (has_subject) when present. */
berth_err berth_registry_manifest_put(struct berth_registry *r, const char *repo,
				      const char *ref, const char *content_type,
				      const void *content, size_t len, struct berth_digest *digest,
				      int *has_subject,
				      struct berth_digest *subject) BERTH_MUST_CHECK;
berth_err berth_registry_manifest_delete(struct berth_registry *r, const char *repo,
					 const char *ref) BERTH_MUST_CHECK;
/* Stores an upstream's manifest in the mirror's repository repo under ref (a tag, or its
 * digest): like a put, but what it references may be absent (fetched when asked for), the
 * image is not indexed and no golden-image policy applies. */
berth_err berth_registry_manifest_cache(struct berth_registry *r, const char *repo,
					const char *ref, const char *content_type,
					const void *content, size_t len,
					struct berth_digest *digest) BERTH_MUST_CHECK;
/* BERTH_OK when repo has content, BERTH_ENAME_UNKNOWN when not. */
berth_err berth_registry_repo_exists(struct berth_registry *r, const char *repo) BERTH_MUST_CHECK;

/* ---- listings ---- */
berth_err berth_registry_tags(struct berth_registry *r, const char *repo, const char *last,
			      long n, berth_meta_name_fn fn, void *ctx) BERTH_MUST_CHECK;
berth_err berth_registry_catalog(struct berth_registry *r, const char *last, long n,
				 berth_meta_name_fn fn, void *ctx) BERTH_MUST_CHECK;
berth_err berth_registry_referrers(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, const char *artifact_type,
				   berth_meta_referrer_fn fn, void *ctx) BERTH_MUST_CHECK;

/* ---- the image index: golden images, lineage, labels ---- */

/* 1 when repo is a golden repository (opts.golden_repos). */
int berth_registry_is_golden(const struct berth_registry *r, const char *repo);
/* Images built on repo:ref (its layers are a prefix of theirs, or they name it in the OCI
 * base-digest annotation). An index stands for its platform images. */
berth_err berth_registry_derived(struct berth_registry *r, const char *repo, const char *ref,
				 berth_meta_image_fn fn, void *ctx) BERTH_MUST_CHECK;
/* Images repo:ref is built on, longest (closest) first. */
berth_err berth_registry_bases(struct berth_registry *r, const char *repo, const char *ref,
			       berth_meta_image_fn fn, void *ctx) BERTH_MUST_CHECK;
berth_err berth_registry_by_label(struct berth_registry *r, const char *key, const char *value,
				  berth_meta_image_fn fn, void *ctx) BERTH_MUST_CHECK;
berth_err berth_registry_tags_of(struct berth_registry *r, const char *repo, const char *digest,
				 berth_meta_name_fn fn, void *ctx) BERTH_MUST_CHECK;

/* One image built on a golden image version that is no longer the newest release of its
 * major line ("rebuild me"). Borrowed for the callback. */
struct berth_outdated {
	const struct berth_meta_image *image;
	const char *base_repo, *base_tag, *base_digest;
	const char *newest_tag, *newest_digest;
};
typedef int (*berth_outdated_fn)(void *ctx, const struct berth_outdated *o);
/* golden: a pattern of golden repositories (NULL: the configured ones). */
berth_err berth_registry_outdated(struct berth_registry *r, const char *golden,
				  berth_outdated_fn fn, void *ctx) BERTH_MUST_CHECK;
/* Rebuilds the index from every stored manifest; *count gets the images indexed. */
berth_err berth_registry_reindex(struct berth_registry *r, size_t *count) BERTH_MUST_CHECK;

/* ---- garbage collection (offline: run with the server stopped) ---- */
struct berth_gc_opts {
	int keep_patch;  /* > 0: in semver repositories keep only the newest N patch releases of
			    each minor line (their floats re-point); 0: no retention */
	long grace;      /* seconds: links and blobs younger than this are spared */
	int dry_run;     /* count, change nothing */
};
struct berth_gc_stats {
	size_t versions_removed, manifests_removed, links_removed, blobs_removed;
	int64_t bytes_freed;
};
berth_err berth_registry_gc(struct berth_registry *r, const struct berth_gc_opts *o,
			    struct berth_gc_stats *st) BERTH_MUST_CHECK;

/* 1 when s is a valid repository name. */
int berth_registry_name_ok(const char *s, size_t len);
/* Whether ref is a tag or a well-formed digest (a digest when it holds ':'): BERTH_OK, or the
 * error a manifest put by it gets (BERTH_ETAG_INVALID, BERTH_EDIGEST_INVALID). */
berth_err berth_registry_ref_check(const char *ref) BERTH_MUST_CHECK;

#endif

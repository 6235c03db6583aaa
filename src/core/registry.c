/* registry.c — use cases over the blob store and the metadata store.
 *
 * Uploads: the staged object's length is the truth about how many bytes an upload holds (it
 * survives a crash); the hash state of those bytes lives in memory, keyed by upload id, so the
 * digest is computed while bytes arrive. When the state is missing (after a restart) or out of
 * step, the staged bytes are hashed once more — the only second pass, and only after a crash. */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "limits.h"
#include "log.h"
#include "manifest.h"
#include "image.h"
#include "pattern.h"
#include "ref.h"
#include "semver.h"

#define SESSION_BUCKETS 1024

struct session {
	char id[BERTH_UPLOAD_ID_LEN + 1];
	/* The repository whose metadata row this session is known to have (owned; NULL = not
	 * checked yet): a request on that repository may skip the lookup. Set under r->lock. */
	char *repo;
	struct berth_hasher *h; /* hash of bytes [0, hashed) */
	int64_t hashed;
	int busy;      /* a writer or finisher holds it */
	int forgotten; /* out of the table while held: freed by whoever releases it */
	int anonymous; /* single-request push: no metadata row */
	struct session *next;
};

struct berth_registry_commit {
	struct berth_registry_commit *next;
	char repo[BERTH_NAME_MAX + 1];
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_digest d;
	int64_t size;
	int anonymous;
	struct session *s; /* held (busy) until the commit ends */
	berth_registry_done_fn done;
	void *ctx;
	berth_err result;
};

struct berth_registry {
	struct berth_store *store;
	struct berth_meta *meta;
	struct berth_registry_opts opts;
	pthread_mutex_t lock; /* guards sessions */
	struct session *sessions[SESSION_BUCKETS];
	atomic_uint_fast64_t generation;

	/* group commit of finished uploads */
	pthread_t committer;
	int committer_running;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct berth_registry_commit *qhead, **qtail;
	int stopping;
	/* A session start may have left its record deferred (meta.h, upload_create): the
	 * committer then writes records at least SESSION_SAVE_MS old, every SESSION_SAVE_MS. */
	atomic_int sessions_deferred;
	int64_t next_save_ms; /* committer only */
};

struct berth_upload_writer {
	struct berth_registry *r;
	struct session *s;
	struct berth_store_writer *sw;
	int64_t size;
};

int berth_registry_name_ok(const char *s, size_t len)
{
	return berth_ref_name_valid(s, len);
}

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
	return h % SESSION_BUCKETS;
}

static void session_free(struct session *s)
{
	if (!s) return;
	berth_hasher_free(s->h);
	free(s->repo);
	free(s);
}

/* id's cache entry, created (not held; anonymous as given) when absent; NULL only when out
 * of memory. Caller holds r->lock. */
static struct session *session_get_locked(struct berth_registry *r, const char *id,
					  int anonymous)
{
	unsigned b = bucket_of(id);
	struct session *s;
	for (s = r->sessions[b]; s; s = s->next)
		if (strcmp(s->id, id) == 0) return s;
	if (!(s = calloc(1, sizeof *s))) return NULL;
	snprintf(s->id, sizeof s->id, "%s", id);
	s->anonymous = anonymous;
	s->next = r->sessions[b];
	r->sessions[b] = s;
	return s;
}

/* Takes the session for exclusive use, creating the cache entry when absent. */
static berth_err session_acquire(struct berth_registry *r, const char *id, int anonymous,
				 struct session **out)
{
	struct session *s;
	berth_err e = BERTH_OK;
	pthread_mutex_lock(&r->lock);
	s = session_get_locked(r, id, anonymous);
	if (!s) e = BERTH_ENOMEM;
	else if (s->busy) e = BERTH_EUPLOAD_INVALID;
	else s->busy = 1;
	pthread_mutex_unlock(&r->lock);
	if (!e) *out = s;
	return e;
}

static void session_release(struct berth_registry *r, struct session *s)
{
	int gone;
	pthread_mutex_lock(&r->lock);
	s->busy = 0;
	gone = s->forgotten;
	pthread_mutex_unlock(&r->lock);
	if (gone) session_free(s);
}

/* Drops the cache entry for id. One still held (a DELETE or the janitor ending a session
 * while a request writes to it) lives on until its holder releases it. */
static void session_forget(struct berth_registry *r, const char *id)
{
	unsigned b = bucket_of(id);
	struct session **pp, *s = NULL;
	pthread_mutex_lock(&r->lock);
	for (pp = &r->sessions[b]; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	if (s && s->busy) {
		s->forgotten = 1;
		s = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	session_free(s);
}

/* What the cache knows of id, as far as repo is concerned. */
enum session_known {
	SESSION_UNKNOWN,   /* not cached, or not (yet) known to belong to repo: ask metadata */
	SESSION_ANONYMOUS, /* a single-request upload: it has no metadata row */
	SESSION_OF_REPO,   /* a session of repo whose metadata row exists */
};

static enum session_known session_lookup(struct berth_registry *r, const char *id,
					 const char *repo)
{
	unsigned b = bucket_of(id);
	enum session_known k = SESSION_UNKNOWN;
	pthread_mutex_lock(&r->lock);
	for (struct session *s = r->sessions[b]; s; s = s->next)
		if (strcmp(s->id, id) == 0) {
			if (s->anonymous) k = SESSION_ANONYMOUS;
			else if (s->repo && strcmp(s->repo, repo) == 0) k = SESSION_OF_REPO;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return k;
}

/* Records that id is a session of repo with a metadata row, creating the cache entry when
 * absent (not held). Only a shortcut: without memory the next request asks metadata. */
static void session_note(struct berth_registry *r, const char *id, const char *repo)
{
	struct session *s;
	pthread_mutex_lock(&r->lock);
	s = session_get_locked(r, id, 0);
	if (s && !s->anonymous && !s->repo) s->repo = strdup(repo); /* NULL: just not known */
	pthread_mutex_unlock(&r->lock);
}

/* BERTH_OK when id is a session of repo: from the cache when it knows, else from metadata
 * (and the cache learns it). A session's repository never changes, and every path that ends
 * a session (finish, cancel, mismatch, expiry) drops its cache entry. */
static berth_err session_check(struct berth_registry *r, const char *id, const char *repo)
{
	int64_t created;
	berth_err e;
	if (session_lookup(r, id, repo) == SESSION_OF_REPO) return BERTH_OK;
	if ((e = r->meta->ops->upload_get(r->meta, id, repo, &created))) return e;
	session_note(r, id, repo);
	return BERTH_OK;
}

/* Brings s->h to the hash of the first `size` staged bytes with algorithm alg. */
static berth_err session_rehash(struct berth_registry *r, struct session *s, int64_t size,
				enum berth_digest_alg alg)
{
	char *buf = NULL;
	int64_t off = 0;
	berth_err e = BERTH_OK;
	if (s->h && s->hashed == size && berth_hasher_alg(s->h) == alg) return BERTH_OK;
	if (size > 0)
		berth_log(BERTH_LOG_INFO, "upload %s: rehashing %lld staged bytes", s->id,
			  (long long)size);
	berth_hasher_free(s->h);
	s->hashed = 0;
	s->h = berth_hasher_new(alg);
	if (!s->h) return BERTH_ENOMEM;
	/* A new session has nothing staged: no read buffer (a 1 MiB malloc is an mmap, its
	 * page faults and a munmap per small push). */
	if (size == 0) return BERTH_OK;
	buf = malloc(1 << 20);
	if (!buf) return BERTH_ENOMEM;
	while (off < size) {
		size_t want = (size_t)((size - off) < (1 << 20) ? (size - off) : (1 << 20)), got = 0;
		e = r->store->ops->upload_read(r->store, s->id, off, buf, want, &got);
		if (!e && got != want) e = BERTH_EIO;
		if (!e) e = berth_hasher_update(s->h, buf, got);
		if (e) break;
		off += (int64_t)got;
	}
	free(buf);
	if (!e) s->hashed = size;
	return e;
}

static void new_uuid(char id[BERTH_UPLOAD_ID_LEN + 1])
{
	unsigned char b[16];
	size_t got = 0;
	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);
		if (n < 0) {
			if (errno == EINTR) continue;
			/* getrandom cannot fail on Linux ≥ 3.17 once seeded; fall back anyway. */
			for (; got < sizeof b; got++) b[got] = (unsigned char)(rand() & 0xff);
			break;
		}
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(id, BERTH_UPLOAD_ID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

static void *committer_main(void *arg);

/* A new session's record is written once it is SESSION_SAVE_MS old, by the committer's next
 * save (every SESSION_SAVE_MS): a kill -9 within about twice that loses a session that holds
 * no bytes yet (a PATCH saves its session before answering). */
#define SESSION_SAVE_MS 100

berth_err berth_registry_new(struct berth_store *store, struct berth_meta *meta,
			     const struct berth_registry_opts *opts, struct berth_registry **out)
{
	struct berth_registry *r = calloc(1, sizeof *r);
	if (!r) return BERTH_ENOMEM;
	r->store = store;
	r->meta = meta;
	r->opts = *opts;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->qlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* for the committer's timed waits */
	pthread_cond_init(&r->qcond, &ca);
	pthread_condattr_destroy(&ca);
	r->qtail = &r->qhead;
	if (pthread_create(&r->committer, NULL, committer_main, r) != 0) {
		pthread_cond_destroy(&r->qcond);
		pthread_mutex_destroy(&r->qlock);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return BERTH_ENOMEM;
	}
	r->committer_running = 1;
	*out = r;
	return BERTH_OK;
}

void berth_registry_free(struct berth_registry *r)
{
	if (!r) return;
	if (r->committer_running) {
		/* Commits already queued are finished first: their clients are waiting. */
		pthread_mutex_lock(&r->qlock);
		r->stopping = 1;
		pthread_cond_signal(&r->qcond);
		pthread_mutex_unlock(&r->qlock);
		pthread_join(r->committer, NULL);
	}
	pthread_cond_destroy(&r->qcond);
	pthread_mutex_destroy(&r->qlock);
	for (size_t i = 0; i < SESSION_BUCKETS; i++) {
		struct session *s = r->sessions[i], *next;
		for (; s; s = next) {
			next = s->next;
			session_free(s);
		}
	}
	pthread_mutex_destroy(&r->lock);
	berth_meta_free(r->meta);
	berth_store_free(r->store);
	free(r);
}

const struct berth_registry_opts *berth_registry_opts(const struct berth_registry *r)
{
	return &r->opts;
}

uint64_t berth_registry_generation(const struct berth_registry *r)
{
	return atomic_load(&((struct berth_registry *)r)->generation);
}

/* Called after every successful change a cached read could depend on. Bumping after the
 * change (not before) is what makes it safe: a reader that sampled the old value before
 * reading may cache the old state, but under a generation that is already stale. */
static void bump(struct berth_registry *r)
{
	atomic_fetch_add(&r->generation, 1);
}

/* ---- janitor ---- */

/* A growing list of names (repositories, digests, upload ids), for listings that are
 * collected before anything is changed. */
struct names_vec {
	char (*names)[BERTH_NAME_MAX + 1];
	size_t n, cap;
};

static int names_push(void *ctx, const char *name, size_t len)
{
	struct names_vec *v = ctx;
	if (len > BERTH_NAME_MAX) return 0;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *p = realloc(v->names, cap * sizeof *v->names);
		if (!p) return 1;
		v->names = p;
		v->cap = cap;
	}
	memcpy(v->names[v->n], name, len);
	v->names[v->n][len] = '\0';
	v->n++;
	return 0;
}

static void upload_discard(struct berth_registry *r, const char *id, int anonymous)
{
	(void)r->store->ops->upload_remove(r->store, id);
	if (!anonymous) (void)r->meta->ops->upload_delete(r->meta, id);
	session_forget(r, id);
}

struct janitor_ctx {
	struct berth_registry *r;
	struct names_vec ids;
};

static void orphan_check(void *vctx, const char *id, long age)
{
	struct janitor_ctx *j = vctx;
	int64_t created;
	(void)age;
	if (j->r->meta->ops->upload_get(j->r->meta, id, NULL, &created) == BERTH_EUPLOAD_UNKNOWN)
		(void)names_push(&j->ids, id, strlen(id));
}

void berth_registry_janitor(struct berth_registry *r, int at_startup)
{
	struct janitor_ctx j = {.r = r};
	int64_t before = (int64_t)time(NULL) - r->opts.upload_expiry;
	size_t removed = 0;
	if (r->meta->ops->uploads_expired(r->meta, before, names_push, &j.ids) == BERTH_OK) {
		for (size_t i = 0; i < j.ids.n; i++) {
			upload_discard(r, j.ids.names[i], 0);
			removed++;
		}
	}
	j.ids.n = 0;
	/* At start-up no request is in flight, so a staged file without a session can only be
	 * the remains of a single-request push that was interrupted. */
	if (at_startup &&
	    r->store->ops->upload_list(r->store, orphan_check, &j) == BERTH_OK) {
		for (size_t i = 0; i < j.ids.n; i++) {
			(void)r->store->ops->upload_remove(r->store, j.ids.names[i]);
			removed++;
		}
	}
	free(j.ids.names);
	if (removed) berth_log(BERTH_LOG_INFO, "janitor: removed %zu stale uploads", removed);
}

/* ---- blobs ---- */

berth_err berth_registry_blob_stat(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, int64_t *size)
{
	return r->meta->ops->blob_get(r->meta, repo, d, size);
}

berth_err berth_registry_blob_open(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, int *fd, int64_t *size)
{
	int64_t msize;
	berth_err e = r->meta->ops->blob_get(r->meta, repo, d, &msize);
	if (e) return e;
	*fd = -1;
	e = r->store->ops->open_fd(r->store, d, fd, size);
	if (e == BERTH_EUNSUPPORTED) {
		*size = msize;
		return BERTH_OK;
	}
	if (e == BERTH_EBLOB_UNKNOWN)
		berth_log(BERTH_LOG_WARN, "blob %s is linked in %s but missing from storage", d->s,
			  repo);
	return e;
}

berth_err berth_registry_blob_delete(struct berth_registry *r, const char *repo,
				     const struct berth_digest *d)
{
	if (!r->opts.delete_enabled) return BERTH_EUNSUPPORTED;
	/* Only the repository's link goes: other repositories may hold the same content. The
	 * bytes are reclaimed by garbage collection once nothing links them. */
	berth_err e = r->meta->ops->blob_unlink(r->meta, repo, d);
	if (!e) bump(r);
	return e;
}

berth_err berth_registry_blob_mount(struct berth_registry *r, const char *repo,
				    const struct berth_digest *d, const char *from)
{
	int64_t size;
	berth_err e;
	if (from) {
		if (!berth_ref_name_valid(from, strlen(from))) return BERTH_EBLOB_UNKNOWN;
		e = r->meta->ops->blob_get(r->meta, from, d, &size);
	} else {
		e = r->meta->ops->blob_find(r->meta, d, &size);
	}
	if (e) return e;
	if (r->store->ops->stat(r->store, d, &size) != BERTH_OK) return BERTH_EBLOB_UNKNOWN;
	return r->meta->ops->blob_link(r->meta, repo, d, size);
}

/* ---- uploads ---- */

berth_err berth_registry_upload_start(struct berth_registry *r, const char *repo,
				      char id[BERTH_UPLOAD_ID_LEN + 1])
{
	berth_err e;
	if (strlen(repo) > BERTH_NAME_MAX) return BERTH_ENAME_INVALID;
	new_uuid(id);
	if ((e = r->store->ops->upload_create(r->store, id))) return e;
	e = r->meta->ops->upload_create(r->meta, id, repo, (int64_t)time(NULL),
					r->opts.uploads_per_repo);
	if (e) {
		(void)r->store->ops->upload_remove(r->store, id);
		return e;
	}
	session_note(r, id, repo);
	if (!atomic_exchange(&r->sessions_deferred, 1)) {
		/* The committer may be asleep with nothing to do: it has a record to save. */
		pthread_mutex_lock(&r->qlock);
		pthread_cond_signal(&r->qcond);
		pthread_mutex_unlock(&r->qlock);
	}
	return BERTH_OK;
}

berth_err berth_registry_upload_keep(struct berth_registry *r, const char *id)
{
	return r->meta->ops->uploads_save(r->meta, id, SESSION_SAVE_MS, NULL);
}

/* A session whose staged object is gone is dead: its row and cache entry go too. */
static void session_lost(struct berth_registry *r, const char *id)
{
	(void)r->meta->ops->upload_delete(r->meta, id);
	session_forget(r, id);
}

berth_err berth_registry_upload_status(struct berth_registry *r, const char *repo,
				       const char *id, int64_t *size)
{
	berth_err e = session_check(r, id, repo);
	if (e) return e;
	e = r->store->ops->upload_size(r->store, id, size);
	if (e == BERTH_EUPLOAD_UNKNOWN) session_lost(r, id);
	return e;
}

berth_err berth_registry_upload_cancel(struct berth_registry *r, const char *repo,
				       const char *id)
{
	int64_t created;
	berth_err e;
	if (session_lookup(r, id, repo) == SESSION_ANONYMOUS) {
		upload_discard(r, id, 1);
		return BERTH_OK;
	}
	e = r->meta->ops->upload_get(r->meta, id, repo, &created);
	if (e) return e;
	upload_discard(r, id, 0);
	return BERTH_OK;
}

static berth_err writer_open(struct berth_registry *r, const char *id, int64_t start,
			     enum berth_digest_alg alg, int anonymous,
			     struct berth_upload_writer **out)
{
	struct berth_upload_writer *w = calloc(1, sizeof *w);
	berth_err e;
	if (!w) return BERTH_ENOMEM;
	w->r = r;
	e = r->store->ops->upload_open(r->store, id, &w->sw, &w->size);
	if (e) goto fail;
	if (start >= 0 && start != w->size) {
		e = BERTH_ERANGE;
		goto fail;
	}
	if ((e = session_acquire(r, id, anonymous, &w->s))) goto fail;
	if ((e = session_rehash(r, w->s, w->size, alg ? alg : BERTH_DIGEST_SHA256))) goto fail;
	*out = w;
	return BERTH_OK;
fail:
	berth_upload_writer_close(w);
	return e;
}

berth_err berth_registry_upload_writer(struct berth_registry *r, const char *repo,
				       const char *id, int64_t start, enum berth_digest_alg alg,
				       struct berth_upload_writer **out)
{
	berth_err e = session_check(r, id, repo);
	if (e) return e;
	return writer_open(r, id, start, alg, 0, out);
}

berth_err berth_registry_upload_anonymous(struct berth_registry *r, const char *repo,
					  enum berth_digest_alg alg,
					  char id[BERTH_UPLOAD_ID_LEN + 1],
					  struct berth_upload_writer **out)
{
	berth_err e;
	(void)repo;
	new_uuid(id);
	if ((e = r->store->ops->upload_create(r->store, id))) return e;
	e = writer_open(r, id, 0, alg, 1, out);
	if (e) upload_discard(r, id, 1);
	return e;
}

berth_err berth_upload_writer_write(struct berth_upload_writer *w, const void *buf, size_t len)
{
	berth_err e;
	if (len == 0) return BERTH_OK;
	e = w->r->store->ops->writer_write(w->sw, buf, len);
	if (e) {
		/* The staged bytes are some prefix of what was hashed: rebuild from the file. */
		w->s->hashed = -1;
		return e;
	}
	if ((e = berth_hasher_update(w->s->h, buf, len))) {
		/* The bytes are on disk but not hashed: make the state rebuild from the file. */
		w->s->hashed = -1;
		return e;
	}
	w->size += (int64_t)len;
	w->s->hashed = w->size;
	return BERTH_OK;
}

void berth_upload_writer_follow(struct berth_upload_writer *w)
{
	if (w->sw && w->r->store->ops->writer_follow) w->r->store->ops->writer_follow(w->sw);
}

int64_t berth_upload_writer_visible(struct berth_upload_writer *w)
{
	return w->sw ? w->r->store->ops->writer_visible(w->sw) : w->size;
}

int64_t berth_upload_writer_size(const struct berth_upload_writer *w)
{
	return w->size;
}

berth_err berth_upload_writer_finish(struct berth_upload_writer *w)
{
	berth_err e;
	if (!w->sw) return BERTH_OK;
	e = w->r->store->ops->writer_flush(w->sw);
	if (e && w->s) w->s->hashed = -1;
	w->r->store->ops->writer_close(w->sw);
	w->sw = NULL;
	return e;
}

void berth_upload_writer_close(struct berth_upload_writer *w)
{
	if (!w) return;
	if (w->sw) {
		berth_err e = berth_upload_writer_finish(w);
		(void)e; /* an abandoned write: the session rehashes from the file if it failed */
	}
	if (w->s) session_release(w->r, w->s);
	free(w);
}

berth_err berth_registry_upload_prepare(struct berth_registry *r, const char *repo,
					const char *id, const struct berth_digest *d,
					struct berth_registry_commit **out)
{
	struct berth_registry_commit *c = NULL;
	struct session *s = NULL;
	struct berth_digest got;
	int64_t size;
	enum session_known k = session_lookup(r, id, repo);
	int anonymous = k == SESSION_ANONYMOUS;
	berth_err e;

	if (strlen(repo) > BERTH_NAME_MAX) return BERTH_ENAME_INVALID;
	if (k == SESSION_UNKNOWN && (e = session_check(r, id, repo))) return e;
	if ((e = r->store->ops->upload_size(r->store, id, &size))) {
		if (e == BERTH_EUPLOAD_UNKNOWN && !anonymous) session_lost(r, id);
		return e;
	}
	if ((e = session_acquire(r, id, anonymous, &s))) return e;
	if ((e = session_rehash(r, s, size, d->alg))) goto fail;
	e = berth_hasher_final(s->h, &got);
	s->hashed = -1; /* the hasher is spent either way */
	if (e) goto fail;
	if (!berth_digest_eq(&got, d)) {
		/* Spec: a digest mismatch fails the upload; nothing of it stays. */
		session_release(r, s);
		upload_discard(r, id, anonymous);
		return BERTH_EDIGEST_INVALID;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		e = BERTH_ENOMEM;
		goto fail;
	}
	snprintf(c->repo, sizeof c->repo, "%s", repo);
	snprintf(c->id, sizeof c->id, "%s", id);
	c->d = *d;
	c->size = size;
	c->anonymous = anonymous;
	c->s = s;
	*out = c;
	return BERTH_OK;
fail:
	session_release(r, s);
	return e;
}

void berth_registry_commit_submit(struct berth_registry *r, struct berth_registry_commit *c,
				  berth_registry_done_fn done, void *ctx)
{
	c->done = done;
	c->ctx = ctx;
	c->next = NULL;
	pthread_mutex_lock(&r->qlock);
	*r->qtail = c;
	r->qtail = &c->next;
	pthread_cond_signal(&r->qcond);
	pthread_mutex_unlock(&r->qlock);
}

/* Answers every commit of list: a commit whose bytes were renamed into place takes the batch
 * result e (the staged object is gone whatever happened to the metadata: a blob published
 * but not linked is harmless, GC reclaims it); one that failed earlier keeps its own error. */
static void finish_commits(struct berth_registry *r, struct berth_registry_commit *list,
			   berth_err e)
{
	struct berth_registry_commit *c, *next;
	for (c = list; c; c = next) {
		next = c->next;
		session_release(r, c->s);
		if (!c->result) {
			c->result = e;
			session_forget(r, c->id);
		}
		if (c->result)
			berth_log(BERTH_LOG_ERROR, "upload %s: publishing %s failed: %s", c->id,
				  c->d.s, berth_err_str(c->result));
		c->done(c->ctx, c->result);
		free(c);
	}
}

/* Renames each staged blob of list into place (durable: flush each file and name first)
 * and records them all in one metadata transaction. A commit that fails here gets its
 * result set; the rest keep BERTH_OK. */
static void stage_commits(struct berth_registry *r, struct berth_registry_commit *list,
			  int durable)
{
	struct berth_meta_publish *items = NULL;
	struct berth_registry_commit *c;
	size_t n = 0, k = 0;
	berth_err e;
	for (c = list; c; c = c->next) n++;
	for (c = list; c; c = c->next)
		c->result = r->store->ops->upload_commit(r->store, c->id, &c->d, durable);
	items = calloc(n, sizeof *items);
	for (c = list; c && items; c = c->next) {
		if (c->result) continue;
		items[k].repo = c->repo;
		items[k].digest = &c->d;
		items[k].size = c->size;
		items[k].upload_id = c->anonymous ? NULL : c->id;
		k++;
	}
	e = items ? BERTH_OK : BERTH_ENOMEM;
	if (!e && k) e = r->meta->ops->blobs_publish(r->meta, items, k, durable);
	free(items);
	for (c = list; c && e; c = c->next)
		if (!c->result) c->result = e;
}

/* Moves the commits of list that succeeded so far onto *pending; answers the others now. */
static void keep_staged(struct berth_registry *r, struct berth_registry_commit *list,
			struct berth_registry_commit **pending)
{
	struct berth_registry_commit *c, *next, *failed = NULL;
	for (c = list; c; c = next) {
		next = c->next;
		if (c->result) {
			c->next = failed;
			failed = c;
		} else {
			c->next = *pending;
			*pending = c;
		}
	}
	finish_commits(r, failed, BERTH_OK);
}

/* A lone blob at least this large is flushed on its own (its file, its name, its metadata:
 * three flushes, but none of them writes other files' dirty data); smaller ones always join
 * the pipelined group commit, whose one flush per round is shared. */
#define LONE_COMMIT_MIN ((int64_t)1 << 20)

/* Writes the session records deferred for SESSION_SAVE_MS or longer, at most once per
 * SESSION_SAVE_MS (once a second after a failure). Committer thread only. */
static void sessions_save(struct berth_registry *r)
{
	int64_t now = berth_mono_ms();
	size_t left = 0;
	berth_err e;
	if (!atomic_load(&r->sessions_deferred) || now < r->next_save_ms) return;
	/* Cleared before saving: a session started meanwhile sets it again. */
	atomic_store(&r->sessions_deferred, 0);
	e = r->meta->ops->uploads_save(r->meta, NULL, SESSION_SAVE_MS, &left);
	r->next_save_ms = now + (e ? 1000 : SESSION_SAVE_MS);
	if (e || left) atomic_store(&r->sessions_deferred, 1);
}

/* Group commit, pipelined. Each round makes one filesystem-wide flush (syncfs) that does two
 * jobs: it makes the newly queued blobs' bytes durable before they are renamed into place,
 * and it makes the previous round's renames and metadata durable, whose clients are answered
 * right after it. So a client hears 201 only once its blob, its name and its metadata are on
 * stable storage, at one flush per round instead of two. A lone large blob with nothing
 * pending flushes just its own file, name and metadata instead: a filesystem-wide flush
 * would also write out everyone else's dirty data. Between rounds, and every SESSION_SAVE_MS
 * while idle, it also writes the deferred session records (sessions_save). */
static void *committer_main(void *arg)
{
	struct berth_registry *r = arg;
	struct berth_registry_commit *pending = NULL;
	for (;;) {
		struct berth_registry_commit *list;
		int stopping;
		pthread_mutex_lock(&r->qlock);
		while (!r->qhead && !r->stopping && !pending) {
			if (!atomic_load(&r->sessions_deferred)) {
				pthread_cond_wait(&r->qcond, &r->qlock);
				continue;
			}
			int64_t now = berth_mono_ms();
			int64_t at = r->next_save_ms > now ? r->next_save_ms : now + SESSION_SAVE_MS;
			struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000};
			if (pthread_cond_timedwait(&r->qcond, &r->qlock, &ts) == ETIMEDOUT) break;
		}
		list = r->qhead;
		r->qhead = NULL;
		r->qtail = &r->qhead;
		stopping = r->stopping;
		pthread_mutex_unlock(&r->qlock);
		sessions_save(r);
		if (!list && !pending) {
			if (stopping) break; /* nothing left; the driver writes what is deferred */
			continue;
		}
		if (!r->opts.durable) {
			stage_commits(r, list, 0);
			finish_commits(r, list, BERTH_OK);
			continue;
		}
		if (list && !list->next && !pending && list->size >= LONE_COMMIT_MIN) {
			stage_commits(r, list, 1);
			finish_commits(r, list, BERTH_OK);
			continue;
		}
		berth_err e = r->store->ops->sync(r->store);
		finish_commits(r, pending, e);
		pending = NULL;
		if (!list) continue;
		if (e) {
			/* The new bytes may not be durable: don't publish them; the uploads stay
			 * and the clients may retry. */
			for (struct berth_registry_commit *c = list; c; c = c->next) c->result = e;
			finish_commits(r, list, e);
			continue;
		}
		stage_commits(r, list, 0);
		keep_staged(r, list, &pending);
	}
	return NULL;
}

struct waiter {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done;
	berth_err e;
};

static void waiter_done(void *ctx, berth_err e)
{
	struct waiter *w = ctx;
	pthread_mutex_lock(&w->m);
	w->e = e;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

berth_err berth_registry_upload_finish(struct berth_registry *r, const char *repo,
				       const char *id, const struct berth_digest *d,
				       int64_t *size_out)
{
	return berth_registry_upload_finish_verified(r, repo, id, d, size_out, NULL, NULL);
}

berth_err berth_registry_upload_finish_verified(struct berth_registry *r, const char *repo,
						const char *id, const struct berth_digest *d,
						int64_t *size_out, void (*verified)(void *ud),
						void *ud)
{
	struct berth_registry_commit *c = NULL;
	struct waiter w = {.done = 0};
	int64_t size;
	berth_err e = berth_registry_upload_prepare(r, repo, id, d, &c);
	if (e) return e;
	size = c->size;
	if (verified) verified(ud);
	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.cv, NULL);
	berth_registry_commit_submit(r, c, waiter_done, &w);
	pthread_mutex_lock(&w.m);
	while (!w.done) pthread_cond_wait(&w.cv, &w.m);
	pthread_mutex_unlock(&w.m);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.m);
	if (!w.e && size_out) *size_out = size;
	return w.e;
}

/* ---- manifests ---- */

void berth_registry_manifest_clear(struct berth_registry_manifest *m)
{
	if (!m) return;
	free(m->media_type);
	free(m->content);
	memset(m, 0, sizeof *m);
}

/* The tag policy for repo: semantic-version floats when the repository is configured. */
static const struct berth_meta_tag_policy *tag_policy(struct berth_registry *r, const char *repo)
{
	size_t rlen = strlen(repo);
	for (size_t i = 0; i < r->opts.n_semver_repos; i++)
		if (berth_pattern_match(r->opts.semver_repos[i], strlen(r->opts.semver_repos[i]),
					repo, rlen))
			return &r->opts.semver;
	return NULL;
}

/* 1 when repo already holds the manifest d (its index entry exists too). */
static int manifest_stored(struct berth_registry *r, const char *repo, const struct berth_digest *d)
{
	struct berth_meta_manifest_out o;
	if (r->meta->ops->manifest_head(r->meta, repo, d->s, 1, &o) != BERTH_OK) return 0;
	free(o.media_type);
	return 1;
}

/* The index entry of an image manifest; its config blob is read when it is small enough. A
 * config that can't be read or parsed only leaves the config fields empty. */
static berth_err image_info_for(struct berth_registry *r, const struct berth_manifest *m,
				struct berth_image_info **out)
{
	char *buf = NULL;
	size_t got = 0;
	berth_err e;
	if (m->has_config && m->n_refs && m->refs[0].size > 0 &&
	    m->refs[0].size <= BERTH_IMAGE_CONFIG_MAX) {
		buf = malloc((size_t)m->refs[0].size);
		if (buf && r->store->ops->read(r->store, &m->refs[0].digest, 0, buf,
					       (size_t)m->refs[0].size, &got) != BERTH_OK)
			got = 0;
	}
	e = berth_image_info_build(m, got ? buf : NULL, got, out);
	free(buf);
	return e;
}

/* ---- golden.require: pushes that must be built on a golden image ---- */

static int golden_required(const struct berth_registry *r, const char *repo)
{
	size_t rlen = strlen(repo);
	/* A golden repository is where golden images come from: it is never held to the rule. */
	if (berth_registry_is_golden(r, repo)) return 0;
	for (size_t i = 0; i < r->opts.n_golden_require; i++)
		if (berth_pattern_match(r->opts.golden_require[i],
					strlen(r->opts.golden_require[i]), repo, rlen))
			return 1;
	return 0;
}

struct golden_hit {
	const struct berth_registry *r;
	int found;
};

static int golden_hit_fn(void *ctx, const struct berth_meta_image *img)
{
	struct golden_hit *g = ctx;
	if (!berth_registry_is_golden(g->r, img->repo)) return 0;
	g->found = 1;
	return 1;
}

/* Something that runs: not a referrer (signature, SBOM), not an artifact, and not one of
 * BuildKit's attestation manifests (their config says os "unknown"). Only those are held to
 * golden.require. */
static int runnable_image(const struct berth_manifest *m, const struct berth_image_info *info)
{
	if (m->has_subject) return 0;
	if (strcmp(m->config_media_type, "application/vnd.oci.image.config.v1+json") != 0 &&
	    strcmp(m->config_media_type, "application/vnd.docker.container.image.v1+json") != 0)
		return 0;
	return strcmp(info->os, "unknown") != 0;
}

/* *ok = 1 when info's layers start with a golden image's layers (or equal them), or its
 * base-digest annotation names a golden image (an image indexed in a golden repository, or a
 * manifest of the golden repository its base-name annotation names). */
static berth_err on_golden(struct berth_registry *r, const struct berth_image_info *info, int *ok)
{
	struct golden_hit g = {.r = r};
	berth_err e = BERTH_OK;
	for (size_t i = 0; !e && !g.found && i < info->n_layers; i++)
		e = r->meta->ops->image_find(r->meta, info->chains[i].s, NULL, golden_hit_fn, &g);
	if (!e && !g.found && info->base_digest[0])
		e = r->meta->ops->image_find(r->meta, NULL, info->base_digest, golden_hit_fn, &g);
	if (!e && !g.found && info->base_digest[0] && info->base_name[0]) {
		/* An index (a multi-platform golden image) is not in the image index: look for the
		 * manifest itself in the repository the base-name annotation names. */
		struct berth_ref ref;
		struct berth_meta_manifest_out mo;
		if (berth_ref_parse(info->base_name, strlen(info->base_name), &ref, NULL) == BERTH_OK &&
		    berth_registry_is_golden(r, ref.path) &&
		    r->meta->ops->manifest_head(r->meta, ref.path, info->base_digest, 1, &mo) ==
			    BERTH_OK) {
			free(mo.media_type);
			g.found = 1;
		}
	}
	*ok = g.found;
	return e;
}

/* golden.require for a manifest being put into repo: an image must be built on a golden image;
 * an index, every runnable platform image it lists (already stored in repo: children are
 * pushed first). info: the image's index entry when already built, else NULL. */
static berth_err check_golden(struct berth_registry *r, const char *repo,
			      const struct berth_manifest *m, const struct berth_image_info *info)
{
	struct berth_image_info *own = NULL;
	berth_err e = BERTH_OK;
	int ok = 1;

	if (m->kind == BERTH_MANIFEST_IMAGE) {
		if (!info && (e = image_info_for(r, m, &own))) return e;
		if (!info) info = own;
		if (runnable_image(m, info)) e = on_golden(r, info, &ok);
		berth_image_info_free(own);
	} else {
		for (size_t i = 0; !e && ok && i < m->n_refs; i++) {
			struct berth_meta_manifest_out mo;
			struct berth_manifest *child = NULL;
			if (!m->refs[i].is_manifest) continue;
			e = r->meta->ops->manifest_get(r->meta, repo, m->refs[i].digest.s, 1, &mo);
			if (e == BERTH_EMANIFEST_UNKNOWN || e == BERTH_ENAME_UNKNOWN) {
				e = BERTH_OK; /* the put itself reports the missing child */
				continue;
			}
			if (e) break;
			e = berth_manifest_parse(mo.media_type, mo.content, mo.len, &child);
			free(mo.media_type);
			free(mo.content);
			if (!e) e = check_golden(r, repo, child, NULL);
			if (e == BERTH_EDENIED) ok = 0, e = BERTH_OK;
			berth_manifest_free(child);
		}
	}
	if (!e && !ok) {
		berth_log(BERTH_LOG_WARN,
			  "push to %s refused: the image is not built on a golden image (golden.require)",
			  repo);
		e = BERTH_EDENIED;
	}
	return e;
}

/* A reference is a digest when it holds ':' (tags cannot). */
static berth_err parse_ref(const char *ref, int *is_digest, struct berth_digest *d)
{
	size_t len = strlen(ref);
	if (memchr(ref, ':', len)) {
		*is_digest = 1;
		return berth_digest_parse(ref, len, d);
	}
	*is_digest = 0;
	return berth_ref_tag_valid(ref, len) ? BERTH_OK : BERTH_ETAG_INVALID;
}

berth_err berth_registry_ref_check(const char *ref)
{
	struct berth_digest d;
	int is_digest;
	return parse_ref(ref, &is_digest, &d);
}

/* For a read or a delete, a reference that is neither a tag nor a well-formed digest names no
 * manifest: MANIFEST_UNKNOWN, as Distribution answers and as the distribution-spec conformance
 * suite expects of GET/HEAD ".INVALID_MANIFEST_NAME". Only a put, which would create the name,
 * refuses it as TAG_INVALID or DIGEST_INVALID. */
static berth_err lookup_ref(const char *ref, int *is_digest, struct berth_digest *d)
{
	return parse_ref(ref, is_digest, d) ? BERTH_EMANIFEST_UNKNOWN : BERTH_OK;
}

berth_err berth_registry_manifest_get(struct berth_registry *r, const char *repo,
				      const char *ref, int with_content,
				      struct berth_registry_manifest *out)
{
	struct berth_digest d;
	struct berth_meta_manifest_out mo;
	int by_digest;
	berth_err e;
	memset(out, 0, sizeof *out);
	if ((e = lookup_ref(ref, &by_digest, &d))) return e;
	e = with_content ? r->meta->ops->manifest_get(r->meta, repo, by_digest ? d.s : ref,
						      by_digest, &mo)
			 : r->meta->ops->manifest_head(r->meta, repo, by_digest ? d.s : ref,
						       by_digest, &mo);
	if (e) return e;
	out->digest = mo.digest;
	out->media_type = mo.media_type;
	out->content = mo.content;
	out->len = mo.len;
	return BERTH_OK;
}

/* mirrored: a copy of an upstream's manifest (berth_registry_manifest_cache). */
static berth_err manifest_put(struct berth_registry *r, const char *repo, const char *ref,
			      const char *content_type, const void *content, size_t len,
			      struct berth_digest *digest, int *has_subject,
			      struct berth_digest *subject, int mirrored)
{
	struct berth_manifest *m = NULL;
	struct berth_image_info *info = NULL;
	struct berth_digest want, got;
	const struct berth_digest **refs = NULL;
	int *is_mf = NULL;
	int by_digest;
	berth_err e;

	if ((e = parse_ref(ref, &by_digest, &want))) return e;
	if (len > r->opts.manifest_max) return BERTH_ETOO_LARGE;
	if ((e = berth_manifest_parse(content_type, content, len, &m))) return e;
	e = berth_digest_of(by_digest ? want.alg : BERTH_DIGEST_SHA256, content, len, &got);
	if (e) goto out;
	if (by_digest && !berth_digest_eq(&got, &want)) {
		e = BERTH_EDIGEST_INVALID;
		goto out;
	}
	/* A mirrored image's config blob is fetched when a client asks for it, not before: such
	 * images are not indexed, and the golden-image policy is for pushes. */
	if (!mirrored && m->kind == BERTH_MANIFEST_IMAGE && !manifest_stored(r, repo, &got) &&
	    (e = image_info_for(r, m, &info)))
		goto out;
	if (!mirrored && golden_required(r, repo) && (e = check_golden(r, repo, m, info)))
		goto out;
	e = BERTH_ENOMEM;
	refs = calloc(m->n_refs ? m->n_refs : 1, sizeof *refs);
	is_mf = calloc(m->n_refs ? m->n_refs : 1, sizeof *is_mf);
	if (!refs || !is_mf) goto out;
	for (size_t i = 0; i < m->n_refs; i++) {
		refs[i] = &m->refs[i].digest;
		is_mf[i] = m->refs[i].is_manifest;
	}
	struct berth_meta_manifest_in in = {
		.digest = &got,
		.media_type = m->media_type,
		.content = content,
		.len = len,
		.artifact_type = m->artifact_type,
		.subject = m->has_subject ? &m->subject : NULL,
		.annotations_json = m->annotations_json,
		.n_refs = m->n_refs,
		.ref_digests = refs,
		.ref_is_manifest = is_mf,
		.image = info,
		.lazy_refs = mirrored,
	};
	e = r->meta->ops->manifest_put(r->meta, repo, &in, by_digest ? NULL : ref,
				       tag_policy(r, repo));
	if (e) goto out;
	bump(r);
	*digest = got;
	*has_subject = m->has_subject;
	if (m->has_subject) *subject = m->subject;
out:
	free(refs);
	free(is_mf);
	berth_image_info_free(info);
	berth_manifest_free(m);
	return e;
}

berth_err berth_registry_manifest_put(struct berth_registry *r, const char *repo,
				      const char *ref, const char *content_type,
				      const void *content, size_t len, struct berth_digest *digest,
				      int *has_subject, struct berth_digest *subject)
{
	return manifest_put(r, repo, ref, content_type, content, len, digest, has_subject, subject,
			    0);
}

berth_err berth_registry_manifest_cache(struct berth_registry *r, const char *repo,
					const char *ref, const char *content_type,
					const void *content, size_t len,
					struct berth_digest *digest)
{
	struct berth_digest subject;
	int has_subject = 0;
	return manifest_put(r, repo, ref, content_type, content, len, digest, &has_subject,
			    &subject, 1);
}

berth_err berth_registry_repo_exists(struct berth_registry *r, const char *repo)
{
	return r->meta->ops->repo_exists(r->meta, repo);
}

berth_err berth_registry_upload_fd(struct berth_registry *r, const char *id, int *fd)
{
	if (!r->store->ops->upload_fd) return BERTH_EUNSUPPORTED;
	return r->store->ops->upload_fd(r->store, id, fd);
}

berth_err berth_registry_manifest_delete(struct berth_registry *r, const char *repo,
					 const char *ref)
{
	struct berth_digest d;
	int by_digest;
	berth_err e;
	if ((e = lookup_ref(ref, &by_digest, &d))) return e;
	if (!r->opts.delete_enabled) return BERTH_EUNSUPPORTED;
	e = by_digest ? r->meta->ops->manifest_delete(r->meta, repo, &d, tag_policy(r, repo))
		      : r->meta->ops->tag_delete(r->meta, repo, ref, tag_policy(r, repo));
	if (!e) bump(r);
	return e;
}

/* ---- listings ---- */

berth_err berth_registry_tags(struct berth_registry *r, const char *repo, const char *last,
			      long n, berth_meta_name_fn fn, void *ctx)
{
	return r->meta->ops->tags_list(r->meta, repo, last, n, fn, ctx);
}

berth_err berth_registry_catalog(struct berth_registry *r, const char *last, long n,
				 berth_meta_name_fn fn, void *ctx)
{
	return r->meta->ops->catalog(r->meta, last, n, fn, ctx);
}

berth_err berth_registry_referrers(struct berth_registry *r, const char *repo,
				   const struct berth_digest *d, const char *artifact_type,
				   berth_meta_referrer_fn fn, void *ctx)
{
	return r->meta->ops->referrers(r->meta, repo, d, artifact_type, fn, ctx);
}

/* ---- the image index ---- */

int berth_registry_is_golden(const struct berth_registry *r, const char *repo)
{
	size_t rlen = strlen(repo);
	for (size_t i = 0; i < r->opts.n_golden_repos; i++)
		if (berth_pattern_match(r->opts.golden_repos[i], strlen(r->opts.golden_repos[i]),
					repo, rlen))
			return 1;
	return 0;
}

/* Copies of an image row, for queries that need it after the callback returns. */
struct img_copy {
	char repo[BERTH_NAME_MAX + 1];
	char digest[BERTH_DIGEST_MAX + 1];
	char chain[BERTH_DIGEST_MAX + 1];
	int64_t n_layers;
	int found;
};

static int take_image(void *ctx, const struct berth_meta_image *img)
{
	struct img_copy *c = ctx;
	snprintf(c->repo, sizeof c->repo, "%s", img->repo);
	snprintf(c->digest, sizeof c->digest, "%s", img->digest);
	snprintf(c->chain, sizeof c->chain, "%s", img->top_chain);
	c->n_layers = img->n_layers;
	c->found = 1;
	return 1;
}

/* The images a reference stands for: the image itself, or each platform image of an index. */
static berth_err for_each_image(struct berth_registry *r, const char *repo, const char *ref,
				berth_err (*each)(struct berth_registry *r, struct img_copy *img,
						  void *ctx),
				void *ctx)
{
	struct berth_registry_manifest mf;
	struct berth_manifest *m = NULL;
	struct img_copy img = {0};
	berth_err e = berth_registry_manifest_get(r, repo, ref, 1, &mf);
	if (e) return e;
	if (r->meta->ops->image_get(r->meta, repo, mf.digest.s, take_image, &img) == BERTH_OK) {
		berth_registry_manifest_clear(&mf);
		return each(r, &img, ctx);
	}
	e = berth_manifest_parse(mf.media_type, mf.content, mf.len, &m);
	berth_registry_manifest_clear(&mf);
	if (e) return e;
	if (m->kind != BERTH_MANIFEST_INDEX) {
		/* An image stored before the index existed: berth reindex fills it in. */
		berth_manifest_free(m);
		return BERTH_EMANIFEST_UNKNOWN;
	}
	for (size_t i = 0; i < m->n_refs && !e; i++) {
		struct img_copy child = {0};
		if (r->meta->ops->image_get(r->meta, repo, m->refs[i].digest.s, take_image,
					    &child) == BERTH_OK)
			e = each(r, &child, ctx);
	}
	berth_manifest_free(m);
	return e;
}

struct fwd {
	berth_meta_image_fn fn;
	void *ctx;
};

static berth_err derived_of(struct berth_registry *r, struct img_copy *img, void *vctx)
{
	struct fwd *f = vctx;
	if (img->n_layers == 0) return BERTH_OK;
	return r->meta->ops->image_derived(r->meta, img->chain, img->n_layers, img->digest, f->fn,
					   f->ctx);
}

berth_err berth_registry_derived(struct berth_registry *r, const char *repo, const char *ref,
				 berth_meta_image_fn fn, void *ctx)
{
	struct fwd f = {fn, ctx};
	return for_each_image(r, repo, ref, derived_of, &f);
}

static berth_err bases_of(struct berth_registry *r, struct img_copy *img, void *vctx)
{
	struct fwd *f = vctx;
	return r->meta->ops->image_bases(r->meta, img->repo, img->digest, f->fn, f->ctx);
}

berth_err berth_registry_bases(struct berth_registry *r, const char *repo, const char *ref,
			       berth_meta_image_fn fn, void *ctx)
{
	struct fwd f = {fn, ctx};
	return for_each_image(r, repo, ref, bases_of, &f);
}

berth_err berth_registry_by_label(struct berth_registry *r, const char *key, const char *value,
				  berth_meta_image_fn fn, void *ctx)
{
	return r->meta->ops->image_by_label(r->meta, key, value, fn, ctx);
}

berth_err berth_registry_tags_of(struct berth_registry *r, const char *repo, const char *digest,
				 berth_meta_name_fn fn, void *ctx)
{
	return r->meta->ops->tags_of(r->meta, repo, digest, fn, ctx);
}

/* ---- outdated ---- */

struct version_ref {
	struct berth_semver v;
	char tag[BERTH_TAG_MAX + 1];
	char digest[BERTH_DIGEST_MAX + 1];
};

/* The exact release versions tagged in repo (1.2.3, not floats or pre-releases), each with
 * the digest its tag names. *out is owned by the caller (free). */
static berth_err release_versions(struct berth_registry *r, const char *repo,
				  struct version_ref **out, size_t *n_out)
{
	struct names_vec tags = {0};
	struct version_ref *vs = NULL;
	size_t nv = 0;
	berth_err e = r->meta->ops->tags_list(r->meta, repo, NULL, -1, names_push, &tags);
	if (e) goto out;
	vs = calloc(tags.n ? tags.n : 1, sizeof *vs);
	if (!vs) {
		e = BERTH_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < tags.n; i++) {
		struct berth_meta_manifest_out mo;
		struct version_ref *v = &vs[nv];
		if (!berth_semver_parse(tags.names[i], strlen(tags.names[i]), &v->v) ||
		    v->v.parts != 3 || v->v.pre[0])
			continue;
		if (r->meta->ops->manifest_head(r->meta, repo, tags.names[i], 0, &mo)) continue;
		snprintf(v->tag, sizeof v->tag, "%s", tags.names[i]);
		snprintf(v->digest, sizeof v->digest, "%s", mo.digest.s);
		free(mo.media_type);
		nv++;
	}
	*out = vs;
	*n_out = nv;
	vs = NULL;
out:
	free(vs);
	free(tags.names);
	return e;
}

struct outdated_ctx {
	struct berth_registry *r;
	const char *golden;
	const char *base_repo;
	const struct version_ref *base, *newest;
	berth_outdated_fn fn;
	void *ctx;
	int stop;
};

struct golden_pick {
	struct berth_registry *r;
	const char *golden;
	struct img_copy best;
};

static int pick_golden(void *vctx, const struct berth_meta_image *img)
{
	struct golden_pick *g = vctx;
	size_t rl = strlen(img->repo);
	int golden = g->golden ? berth_pattern_match(g->golden, strlen(g->golden), img->repo, rl)
			       : berth_registry_is_golden(g->r, img->repo);
	if (!golden) return 0;
	return take_image(&g->best, img); /* rows come longest first: the first is closest */
}

static int outdated_candidate(void *vctx, const struct berth_meta_image *img)
{
	struct outdated_ctx *oc = vctx;
	struct golden_pick g = {.r = oc->r, .golden = oc->golden};
	/* Only images whose closest golden base is this old version: an image built on the
	 * newest version, which itself extends the old one, is not outdated. */
	if (oc->r->meta->ops->image_bases(oc->r->meta, img->repo, img->digest, pick_golden, &g) !=
		    BERTH_OK ||
	    !g.best.found || strcmp(g.best.digest, oc->base->digest) != 0)
		return 0;
	struct berth_outdated o = {
		.image = img,
		.base_repo = oc->base_repo,
		.base_tag = oc->base->tag,
		.base_digest = oc->base->digest,
		.newest_tag = oc->newest->tag,
		.newest_digest = oc->newest->digest,
	};
	oc->stop = oc->fn(oc->ctx, &o);
	return oc->stop;
}

static berth_err outdated_in_repo(struct berth_registry *r, const char *repo,
				  struct outdated_ctx *oc)
{
	struct version_ref *vs = NULL;
	size_t nv = 0;
	berth_err e = release_versions(r, repo, &vs, &nv);
	if (e) return e;
	for (size_t i = 0; i < nv && !oc->stop; i++) {
		/* The newest release of this version's major line. */
		const struct version_ref *newest = &vs[i];
		for (size_t j = 0; j < nv; j++)
			if (vs[j].v.major == vs[i].v.major && berth_semver_cmp(&vs[j].v, &newest->v) > 0)
				newest = &vs[j];
		if (strcmp(newest->digest, vs[i].digest) == 0) continue;
		oc->base_repo = repo;
		oc->base = &vs[i];
		oc->newest = newest;
		struct fwd f = {outdated_candidate, oc};
		e = for_each_image(r, repo, vs[i].digest, derived_of, &f);
		if (e == BERTH_EMANIFEST_UNKNOWN) e = BERTH_OK;
		if (e) break;
	}
	free(vs);
	return e;
}

berth_err berth_registry_outdated(struct berth_registry *r, const char *golden,
				  berth_outdated_fn fn, void *ctx)
{
	struct names_vec repos = {0};
	struct outdated_ctx oc = {.r = r, .golden = golden, .fn = fn, .ctx = ctx};
	berth_err e = r->meta->ops->catalog(r->meta, NULL, -1, names_push, &repos);
	for (size_t i = 0; !e && i < repos.n && !oc.stop; i++) {
		const char *repo = repos.names[i];
		int g = golden ? berth_pattern_match(golden, strlen(golden), repo, strlen(repo))
			       : berth_registry_is_golden(r, repo);
		if (g) e = outdated_in_repo(r, repo, &oc);
	}
	free(repos.names);
	return e;
}

/* ---- reindex ---- */

struct reindex_ctx {
	struct berth_registry *r;
	size_t count;
	berth_err e;
	/* rows are collected first: writing while the listing statement runs would make it
	 * see its own changes */
	struct names_vec repos, digests;
};

static int reindex_collect(void *vctx, const char *repo, const char *digest,
			   const char *media_type, const void *content, size_t len)
{
	struct reindex_ctx *x = vctx;
	(void)content;
	(void)len;
	if (strcmp(media_type, BERTH_MT_OCI_MANIFEST) != 0 &&
	    strcmp(media_type, BERTH_MT_DOCKER_MANIFEST) != 0)
		return 0;
	if (names_push(&x->digests, digest, strlen(digest)) ||
	    names_push(&x->repos, repo, strlen(repo))) {
		x->e = BERTH_ENOMEM;
		return 1;
	}
	return 0;
}

berth_err berth_registry_reindex(struct berth_registry *r, size_t *count)
{
	struct reindex_ctx x = {.r = r};
	berth_err e = r->meta->ops->manifests_each(r->meta, reindex_collect, &x);
	if (!e) e = x.e;
	for (size_t i = 0; !e && i < x.digests.n; i++) {
		struct berth_registry_manifest mf;
		struct berth_manifest *m = NULL;
		struct berth_image_info *info = NULL;
		if (berth_registry_manifest_get(r, x.repos.names[i], x.digests.names[i], 1, &mf)) continue;
		e = berth_manifest_parse(mf.media_type, mf.content, mf.len, &m);
		if (!e) e = image_info_for(r, m, &info);
		if (!e) e = r->meta->ops->image_index(r->meta, x.repos.names[i], x.digests.names[i], info);
		if (!e) x.count++;
		if (e == BERTH_EMANIFEST_INVALID) e = BERTH_OK; /* stored before validation */
		berth_image_info_free(info);
		berth_manifest_free(m);
		berth_registry_manifest_clear(&mf);
	}
	free(x.repos.names);
	free(x.digests.names);
	if (count) *count = x.count;
	if (!e) bump(r);
	return e;
}

/* ---- garbage collection ---- */

struct gc_ctx {
	struct berth_registry *r;
	const struct berth_gc_opts *o;
	struct berth_gc_stats *st;
	int64_t before;
	struct names_vec repos, digests; /* pairs collected before changing anything */
	berth_err e;
};

static int gc_take_link(void *vctx, const char *repo, const char *digest)
{
	struct gc_ctx *g = vctx;
	return names_push(&g->repos, repo, strlen(repo)) ||
	       names_push(&g->digests, digest, strlen(digest));
}

static void gc_blob(void *vctx, const struct berth_digest *d, long age)
{
	struct gc_ctx *g = vctx;
	int64_t size = 0;
	int forgotten = 0;
	if (g->e || age < g->o->grace) return;
	if (g->r->meta->ops->blob_find(g->r->meta, d, &size) != BERTH_EBLOB_UNKNOWN) return;
	if (g->r->store->ops->stat(g->r->store, d, &size) != BERTH_OK) size = 0;
	if (!g->o->dry_run) {
		if ((g->e = g->r->meta->ops->gc_blob_forget(g->r->meta, d->s, &forgotten))) return;
		if (g->r->store->ops->remove(g->r->store, d) != BERTH_OK) return;
	}
	g->st->blobs_removed++;
	g->st->bytes_freed += size;
}

static int count_name(void *ctx, const char *name, size_t len)
{
	(void)name;
	(void)len;
	(*(size_t *)ctx)++;
	return 1;
}

/* Retention in one semver repository: beyond the newest keep releases of a minor line, the
 * version tag goes (floats re-point), and the manifest too once no tag names it. */
static berth_err gc_versions(struct berth_registry *r, const char *repo,
			     const struct berth_meta_tag_policy *pol, struct gc_ctx *g)
{
	struct version_ref *vs = NULL;
	size_t nv = 0;
	berth_err e = release_versions(r, repo, &vs, &nv);
	if (e) return e;
	for (size_t i = 0; i < nv && !e; i++) {
		size_t newer = 0, left = 0;
		struct berth_digest d;
		for (size_t j = 0; j < nv; j++)
			if (vs[j].v.major == vs[i].v.major && vs[j].v.minor == vs[i].v.minor &&
			    berth_semver_cmp(&vs[j].v, &vs[i].v) > 0)
				newer++;
		if (newer < (size_t)g->o->keep_patch) continue;
		g->st->versions_removed++;
		if (g->o->dry_run) continue;
		if ((e = r->meta->ops->tag_delete(r->meta, repo, vs[i].tag, pol))) break;
		if ((e = r->meta->ops->tags_of(r->meta, repo, vs[i].digest, count_name, &left)))
			break;
		if (left || berth_digest_parse(vs[i].digest, strlen(vs[i].digest), &d)) continue;
		e = r->meta->ops->manifest_delete(r->meta, repo, &d, pol);
		if (e == BERTH_EMANIFEST_UNKNOWN) e = BERTH_OK; /* another version shared it */
		else if (!e) g->st->manifests_removed++;
	}
	free(vs);
	return e;
}

berth_err berth_registry_gc(struct berth_registry *r, const struct berth_gc_opts *o,
			    struct berth_gc_stats *st)
{
	struct gc_ctx g = {.r = r, .o = o, .st = st};
	struct names_vec repos = {0};
	berth_err e = BERTH_OK;
	memset(st, 0, sizeof *st);
	g.before = (int64_t)time(NULL) - o->grace;
	/* 1. version retention */
	if (o->keep_patch > 0) {
		e = r->meta->ops->catalog(r->meta, NULL, -1, names_push, &repos);
		for (size_t i = 0; !e && i < repos.n; i++) {
			const struct berth_meta_tag_policy *pol = tag_policy(r, repos.names[i]);
			if (pol) e = gc_versions(r, repos.names[i], pol, &g);
		}
		free(repos.names);
		if (e) return e;
	}
	/* 2. links no manifest references (layers of deleted manifests, abandoned pushes) */
	if ((e = r->meta->ops->gc_links(r->meta, g.before, gc_take_link, &g))) goto out;
	for (size_t i = 0; i < g.repos.n; i++) {
		if (!o->dry_run &&
		    (e = r->meta->ops->gc_unlink(r->meta, g.repos.names[i], g.digests.names[i],
						 g.before)))
			goto out;
		st->links_removed++;
	}
	/* 3. blob files no repository links (a dry run, having removed no links, counts only
	 * blobs that are unlinked already) */
	if ((e = r->store->ops->blob_list(r->store, gc_blob, &g))) goto out;
	e = g.e;
out:
	free(g.repos.names);
	free(g.digests.names);
	if (!e && !o->dry_run) bump(r);
	return e;
}

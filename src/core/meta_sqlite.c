/* meta_sqlite.c — the embedded metadata driver: one SQLite database in WAL mode, one
 * connection per thread with persistent prepared statements. Writers take the database lock up
 * front (BEGIN IMMEDIATE) so two writers never deadlock upgrading a read lock. */
#include "meta.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "semver.h"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_REPO_ID,
	S_REPO_INS,
	S_BLOB_INS,
	S_LINK_INS,
	S_BLOB_GET,
	S_BLOB_FIND,
	S_BLOB_UNLINK,
	S_MF_INS,
	S_MF_REF_INS,
	S_HAS_BLOB,
	S_HAS_MF,
	S_TAG_SET,
	S_MF_GET_DIGEST,
	S_MF_GET_TAG,
	S_MF_HEAD_DIGEST,
	S_MF_HEAD_TAG,
	S_MF_DEL,
	S_MF_DEL_TAGS,
	S_MF_DEL_REFS,
	S_TAGS_LIST,
	S_CATALOG,
	S_REFERRERS,
	S_REFERRERS_TYPE,
	S_UP_INS,
	S_UP_GET,
	S_UP_GET_ANY,
	S_UP_DEL,
	S_UP_EXPIRED,
	S_TAG_GET,
	S_TAG_DEL_ID,
	S_VER_INS,
	S_VER_DEL,
	S_VER_MAX_MINOR,
	S_VER_MAX_MAJOR,
	S_VER_MAX_ALL,
	S_VER_BY_DIGEST,
	S_IMG_INS,
	S_IMG_CHAIN_INS,
	S_IMG_LABEL_INS,
	S_IMG_DEL,
	S_IMG_CHAIN_DEL,
	S_IMG_LABEL_DEL,
	S_IMG_GET,
	S_IMG_DERIVED,
	S_IMG_BASES,
	S_IMG_LABEL,
	S_TAGS_OF,
	S_MF_ALL,
	S_IMG_FIND,
	S_GC_LINKS,
	S_GC_UNLINK,
	S_GC_BLOB_DEL,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_REPO_ID] = "SELECT id FROM repos WHERE name=?1",
	[S_REPO_INS] = "INSERT INTO repos(name) VALUES(?1) ON CONFLICT(name) DO NOTHING",
	[S_BLOB_INS] = "INSERT INTO blobs(digest,size) VALUES(?1,?2) ON CONFLICT(digest) DO NOTHING",
	/* linked: when the link was last made, so GC spares blobs pushed moments ago whose
	 * manifest hasn't arrived yet. */
	[S_LINK_INS] = "INSERT INTO repo_blobs(repo,digest,linked) VALUES(?1,?2,strftime('%s')) "
		       "ON CONFLICT(repo,digest) DO UPDATE SET linked=excluded.linked",
	[S_BLOB_GET] = "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest=rb.digest "
		       "WHERE rb.repo=(SELECT id FROM repos WHERE name=?1) AND rb.digest=?2",
	[S_BLOB_FIND] = "SELECT b.size FROM blobs b WHERE b.digest=?1 AND "
			"EXISTS(SELECT 1 FROM repo_blobs rb WHERE rb.digest=?1)",
	[S_BLOB_UNLINK] = "DELETE FROM repo_blobs WHERE repo=(SELECT id FROM repos WHERE name=?1) "
			  "AND digest=?2",
	[S_MF_INS] = "INSERT INTO manifests(repo,digest,media_type,content,artifact_type,subject,"
		     "annotations,created) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) "
		     "ON CONFLICT(repo,digest) DO NOTHING",
	[S_MF_REF_INS] = "INSERT OR IGNORE INTO manifest_refs(repo,digest,ref,is_manifest) "
			 "VALUES(?1,?2,?3,?4)",
	[S_HAS_BLOB] = "SELECT 1 FROM repo_blobs WHERE repo=?1 AND digest=?2",
	[S_HAS_MF] = "SELECT 1 FROM manifests WHERE repo=?1 AND digest=?2",
	[S_TAG_SET] = "INSERT INTO tags(repo,tag,digest,updated) VALUES(?1,?2,?3,?4) "
		      "ON CONFLICT(repo,tag) DO UPDATE SET digest=excluded.digest,"
		      "updated=excluded.updated",
	[S_MF_GET_DIGEST] = "SELECT m.digest,m.media_type,m.content FROM manifests m "
			    "WHERE m.repo=(SELECT id FROM repos WHERE name=?1) AND m.digest=?2",
	[S_MF_GET_TAG] = "SELECT m.digest,m.media_type,m.content FROM tags t JOIN manifests m "
			 "ON m.repo=t.repo AND m.digest=t.digest "
			 "WHERE t.repo=(SELECT id FROM repos WHERE name=?1) AND t.tag=?2",
	[S_MF_HEAD_DIGEST] = "SELECT m.digest,m.media_type,length(m.content) FROM manifests m "
			     "WHERE m.repo=(SELECT id FROM repos WHERE name=?1) AND m.digest=?2",
	[S_MF_HEAD_TAG] = "SELECT m.digest,m.media_type,length(m.content) FROM tags t "
			  "JOIN manifests m ON m.repo=t.repo AND m.digest=t.digest "
			  "WHERE t.repo=(SELECT id FROM repos WHERE name=?1) AND t.tag=?2",
	[S_MF_DEL] = "DELETE FROM manifests WHERE repo=?1 AND digest=?2",
	[S_MF_DEL_TAGS] = "DELETE FROM tags WHERE repo=?1 AND digest=?2",
	[S_MF_DEL_REFS] = "DELETE FROM manifest_refs WHERE repo=?1 AND digest=?2",
	[S_TAGS_LIST] = "SELECT tag FROM tags WHERE repo=?1 AND tag>?2 ORDER BY tag LIMIT ?3",
	[S_CATALOG] = "SELECT name FROM repos WHERE name>?1 ORDER BY name LIMIT ?2",
	[S_REFERRERS] = "SELECT digest,media_type,length(content),artifact_type,annotations "
			"FROM manifests WHERE repo=(SELECT id FROM repos WHERE name=?1) "
			"AND subject=?2 ORDER BY digest",
	[S_REFERRERS_TYPE] = "SELECT digest,media_type,length(content),artifact_type,annotations "
			     "FROM manifests WHERE repo=(SELECT id FROM repos WHERE name=?1) "
			     "AND subject=?2 AND artifact_type=?3 ORDER BY digest",
	[S_UP_INS] = "INSERT INTO uploads(id,repo,created) VALUES(?1,?2,?3)",
	[S_UP_GET] = "SELECT created FROM uploads WHERE id=?1 AND repo=?2",
	[S_UP_GET_ANY] = "SELECT created FROM uploads WHERE id=?1",
	[S_UP_DEL] = "DELETE FROM uploads WHERE id=?1 RETURNING repo",
	[S_UP_EXPIRED] = "SELECT id FROM uploads WHERE created<?1",
	[S_TAG_GET] = "SELECT digest FROM tags WHERE repo=?1 AND tag=?2",
	[S_TAG_DEL_ID] = "DELETE FROM tags WHERE repo=?1 AND tag=?2",
	[S_VER_INS] = "INSERT INTO versions(repo,tag,major,minor,patch,pre) VALUES(?1,?2,?3,?4,?5,?6) "
		      "ON CONFLICT(repo,tag) DO NOTHING",
	[S_VER_DEL] = "DELETE FROM versions WHERE repo=?1 AND tag=?2",
#define VER_MAX_SELECT                                                                             \
	"SELECT v.tag,t.digest FROM versions v JOIN tags t ON t.repo=v.repo AND t.tag=v.tag "      \
	"WHERE v.repo=?1 AND v.pre='' "
	[S_VER_MAX_MINOR] = VER_MAX_SELECT "AND v.major=?2 AND v.minor=?3 ORDER BY v.patch DESC LIMIT 1",
	[S_VER_MAX_MAJOR] = VER_MAX_SELECT
	"AND v.major=?2 ORDER BY v.minor DESC,v.patch DESC LIMIT 1",
	[S_VER_MAX_ALL] = VER_MAX_SELECT "ORDER BY v.major DESC,v.minor DESC,v.patch DESC LIMIT 1",
	[S_IMG_INS] = "INSERT OR REPLACE INTO images(repo,digest,created,os,arch,variant,labels,"
		      "base_name,base_digest,n_layers,top_chain) "
		      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
	[S_IMG_CHAIN_INS] = "INSERT OR IGNORE INTO image_chains(chain,pos,repo,digest) "
			    "VALUES(?1,?2,?3,?4)",
	[S_IMG_LABEL_INS] = "INSERT OR IGNORE INTO image_labels(key,value,repo,digest) "
			    "VALUES(?1,?2,?3,?4)",
	[S_IMG_DEL] = "DELETE FROM images WHERE repo=?1 AND digest=?2",
	[S_IMG_CHAIN_DEL] = "DELETE FROM image_chains WHERE repo=?1 AND digest=?2",
	[S_IMG_LABEL_DEL] = "DELETE FROM image_labels WHERE repo=?1 AND digest=?2",
#define IMG_COLS                                                                                   \
	"r.name,i.digest,i.n_layers,i.top_chain,i.labels,i.base_name,i.base_digest,i.created,"     \
	"i.os,i.arch "
	[S_IMG_GET] = "SELECT " IMG_COLS "FROM images i JOIN repos r ON r.id=i.repo "
		      "WHERE r.name=?1 AND i.digest=?2",
	[S_IMG_DERIVED] = "SELECT " IMG_COLS "FROM image_chains c JOIN images i ON i.repo=c.repo "
			  "AND i.digest=c.digest JOIN repos r ON r.id=i.repo "
			  "WHERE c.chain=?1 AND i.n_layers>?2 "
			  "UNION SELECT " IMG_COLS "FROM images i JOIN repos r ON r.id=i.repo "
			  "WHERE ?3<>'' AND i.base_digest=?3 ORDER BY 1,2",
	[S_IMG_BASES] = "SELECT " IMG_COLS "FROM image_chains c JOIN images i ON "
			"i.top_chain=c.chain JOIN repos r ON r.id=i.repo "
			"WHERE c.repo=(SELECT id FROM repos WHERE name=?1) AND c.digest=?2 "
			"AND i.n_layers<(SELECT n_layers FROM images b WHERE b.repo=c.repo AND "
			"b.digest=c.digest) ORDER BY i.n_layers DESC,r.name,i.digest",
	[S_IMG_LABEL] = "SELECT " IMG_COLS "FROM image_labels l JOIN images i ON i.repo=l.repo "
			"AND i.digest=l.digest JOIN repos r ON r.id=i.repo "
			"WHERE l.key=?1 AND l.value=?2 ORDER BY r.name,i.digest",
	[S_TAGS_OF] = "SELECT tag FROM tags WHERE repo=(SELECT id FROM repos WHERE name=?1) "
		      "AND digest=?2 ORDER BY tag",
	[S_MF_ALL] = "SELECT r.name,m.digest,m.media_type,m.content FROM manifests m "
		     "JOIN repos r ON r.id=m.repo ORDER BY r.name,m.digest",
	[S_IMG_FIND] = "SELECT " IMG_COLS "FROM images i JOIN repos r ON r.id=i.repo "
		       "WHERE i.top_chain=?1 UNION SELECT " IMG_COLS "FROM images i "
		       "JOIN repos r ON r.id=i.repo WHERE ?2<>'' AND i.digest=?2 ORDER BY 1,2",
	/* Links no manifest of their repository references (config, layers, index entries). */
	[S_GC_LINKS] = "SELECT r.name,rb.digest FROM repo_blobs rb JOIN repos r ON r.id=rb.repo "
		       "WHERE rb.linked<=?1 AND NOT EXISTS(SELECT 1 FROM manifest_refs mr "
		       "WHERE mr.repo=rb.repo AND mr.ref=rb.digest) ORDER BY 1,2",
	[S_GC_UNLINK] = "DELETE FROM repo_blobs WHERE repo=(SELECT id FROM repos WHERE name=?1) "
			"AND digest=?2 AND linked<=?3",
	[S_GC_BLOB_DEL] = "DELETE FROM blobs WHERE digest=?1 AND NOT EXISTS(SELECT 1 FROM "
			  "repo_blobs WHERE digest=?1)",
	[S_VER_BY_DIGEST] = "SELECT v.tag,v.major,v.minor FROM versions v JOIN tags t "
			    "ON t.repo=v.repo AND t.tag=v.tag WHERE v.repo=?1 AND t.digest=?2",
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS repos(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE IF NOT EXISTS blobs(digest TEXT PRIMARY KEY, size INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS repo_blobs(repo INTEGER NOT NULL, digest TEXT NOT NULL,"
	" linked INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(repo,digest)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs(digest);"
	"CREATE TABLE IF NOT EXISTS manifests(repo INTEGER NOT NULL, digest TEXT NOT NULL,"
	" media_type TEXT NOT NULL, content BLOB NOT NULL, artifact_type TEXT NOT NULL DEFAULT '',"
	" subject TEXT, annotations TEXT, created INTEGER NOT NULL, UNIQUE(repo,digest));"
	"CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(repo,subject)"
	" WHERE subject IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS manifest_refs(repo INTEGER NOT NULL, digest TEXT NOT NULL,"
	" ref TEXT NOT NULL, is_manifest INTEGER NOT NULL, PRIMARY KEY(repo,digest,ref))"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS manifest_refs_ref ON manifest_refs(ref);"
	"CREATE TABLE IF NOT EXISTS tags(repo INTEGER NOT NULL, tag TEXT NOT NULL,"
	" digest TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY(repo,tag)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS tags_digest ON tags(repo,digest);"
	/* Upload sessions, keyed by id alone: one b-tree, so starting or ending a session writes
	 * one page (the per-repository count is kept in memory, struct up_count). */
	"CREATE TABLE IF NOT EXISTS uploads(id TEXT PRIMARY KEY, repo TEXT NOT NULL,"
	" created INTEGER NOT NULL) WITHOUT ROWID;"
	/* Tags that are exact semantic versions, for the floating tags of their lines. */
	"CREATE TABLE IF NOT EXISTS versions(repo INTEGER NOT NULL, tag TEXT NOT NULL,"
	" major INTEGER NOT NULL, minor INTEGER NOT NULL, patch INTEGER NOT NULL,"
	" pre TEXT NOT NULL, PRIMARY KEY(repo,tag)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS versions_line ON versions(repo,major,minor,patch);"
	/* The image index: config fields, base annotations and layer chains per image. */
	"CREATE TABLE IF NOT EXISTS images(repo INTEGER NOT NULL, digest TEXT NOT NULL,"
	" created TEXT, os TEXT, arch TEXT, variant TEXT, labels TEXT, base_name TEXT,"
	" base_digest TEXT, n_layers INTEGER NOT NULL, top_chain TEXT NOT NULL,"
	" PRIMARY KEY(repo,digest)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS images_top ON images(top_chain);"
	"CREATE INDEX IF NOT EXISTS images_base ON images(base_digest);"
	"CREATE TABLE IF NOT EXISTS image_chains(chain TEXT NOT NULL, pos INTEGER NOT NULL,"
	" repo INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(chain,repo,digest))"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS image_chains_img ON image_chains(repo,digest);"
	"CREATE TABLE IF NOT EXISTS image_labels(key TEXT NOT NULL, value TEXT NOT NULL,"
	" repo INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(key,value,repo,digest))"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS image_labels_img ON image_labels(repo,digest);"
	"PRAGMA user_version=2;";

/* Version 1 kept sessions in a rowid table with two more indexes (id, repo). */
static const char migrate_v1_sql[] =
	"BEGIN IMMEDIATE;"
	"CREATE TABLE uploads_v2(id TEXT PRIMARY KEY, repo TEXT NOT NULL,"
	" created INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO uploads_v2(id,repo,created) SELECT id,repo,created FROM uploads;"
	"DROP TABLE uploads;"
	"ALTER TABLE uploads_v2 RENAME TO uploads;"
	"PRAGMA user_version=2;"
	"COMMIT;";

#define UP_COUNT_BUCKETS 256

struct up_count {
	struct up_count *next;
	int64_t n;
	char repo[]; /* NUL-terminated */
};

/* A session record not written yet (upload_create in meta.h): kept in a hash table by id
 * until uploads_save writes it or its session ends first. */
struct up_pending {
	struct up_pending *next;
	int64_t created; /* as given to upload_create */
	int64_t born_ms; /* monotonic, for uploads_save's min_age_ms */
	const char *repo; /* points into id's buffer */
	char id[];
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	struct conn *next;
	struct sq_meta *owner; /* a thread's own connection: closed when the thread ends */
};

struct sq_meta {
	struct berth_meta base;
	char *path;
	int durable;
	pthread_key_t key;
	pthread_mutex_t lock; /* guards conns */
	struct conn *conns;
	/* The connection the frequent small writes (upload sessions, publishing blobs) share,
	 * one thread at a time: its page cache stays valid from one transaction to the next
	 * (another connection's commit empties it), and writers queue on a mutex instead of
	 * polling the database lock. Its checkpoints stay inside its commits (SQLite's
	 * autocheckpoint, holding wlock): run beside a steady stream of commits, a checkpoint
	 * never catches up, the WAL never restarts and every commit asks for another. */
	pthread_mutex_t wlock;
	struct conn *writer;
	/* plock guards the two tables below (lock order: wlock, then plock). A session start
	 * takes only plock, so it never waits for a publishing transaction. */
	pthread_mutex_t plock;
	/* Open upload sessions per repository (for the limit), deferred ones included, built
	 * from the uploads table at open. An index on repo would cost a page write per session
	 * start and end. */
	struct up_count *up_counts[UP_COUNT_BUCKETS];
	/* Deferred session records, by id. */
	struct up_pending *pending[UP_COUNT_BUCKETS];
	size_t npending;
};

static void conn_close(struct conn *c)
{
	if (!c) return;
	for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static berth_err db_err(sqlite3 *db, int rc, const char *what)
{
	if (rc == SQLITE_NOMEM) return BERTH_ENOMEM;
	if (rc == SQLITE_FULL) return BERTH_ENOSPC;
	berth_log(BERTH_LOG_ERROR, "meta: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return BERTH_EDB;
}

/* Waiting for another connection's write transaction. SQLite's own busy timeout sleeps in
 * steps of 1 to 100 ms; the transactions here last tens of microseconds, so poll briefly
 * first (100 µs steps for the first 20 ms), then back off, and give up after ~30 s. */
static int busy_wait(void *arg, int count)
{
	(void)arg;
	if (count < 200) {
		usleep(100);
		return 1;
	}
	if (count < 200 + 3000) {
		usleep(10000);
		return 1;
	}
	return 0;
}

/* SQLite's own autocheckpoint (a PASSIVE checkpoint once the WAL holds 1000 frames) copies
 * frames back, but the WAL only starts over from its beginning when a writer finds no reader
 * still using it. Under steady concurrent requests some connection nearly always is, so the
 * WAL kept growing (~350 MB and a 2 MiB resident wal-index after 100,000 tag PUTs from 8
 * clients). Past WAL_RESTART_FRAMES a RESTART checkpoint waits (busy handler) for the
 * readers of the old frames to finish — tens of microseconds each — so the next writer
 * rewinds the WAL: it stays under ~16 MiB and its index in one 32 KiB region (~4000 frames). */
#define WAL_PASSIVE_FRAMES 1000
#define WAL_RESTART_FRAMES 4000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)arg;
	if (frames >= WAL_RESTART_FRAMES)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	else if (frames >= WAL_PASSIVE_FRAMES)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK; /* a checkpoint that could not run is retried after the next commit */
}

static berth_err conn_open(struct sq_meta *m, struct conn **out)
{
	struct conn *c = calloc(1, sizeof *c);
	char pragmas[256];
	int rc;
	if (!c) return BERTH_ENOMEM;
	rc = sqlite3_open_v2(m->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		berth_err e = db_err(c->db, rc, "open");
		conn_close(c);
		return e;
	}
	sqlite3_busy_handler(c->db, busy_wait, NULL);
	/* One connection per thread (HTTP workers, committer, main), each with its own page
	 * cache. 128 KiB keeps the upper b-tree pages of the hot indexes; the rest comes from
	 * the OS page cache at a pread each (no mmap: mapped pages would count as ours). With
	 * 512 KiB the caches held ~1.3 MiB after the bench's small pushes, for no gain: tag PUTs
	 * and the 100,000-tag listing ran as fast with 128 KiB. */
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
		 "PRAGMA cache_size=-128;",
		 m->durable ? "FULL" : "NORMAL");
	rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		berth_err e = db_err(c->db, rc, "pragmas");
		conn_close(c);
		return e;
	}
	sqlite3_wal_hook(c->db, wal_hook, NULL);
	*out = c;
	return BERTH_OK;
}

/* A thread ends: its connection goes with it (a server's short-lived threads would otherwise
 * leave a database handle and two descriptors each). */
static void conn_thread_end(void *arg)
{
	struct conn *c = arg;
	struct sq_meta *m = c->owner;
	pthread_mutex_lock(&m->lock);
	for (struct conn **p = &m->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	pthread_mutex_unlock(&m->lock);
	conn_close(c);
}

/* This thread's connection, opened on first use. */
static struct conn *get_conn(struct sq_meta *m)
{
	struct conn *c = pthread_getspecific(m->key);
	if (c) return c;
	if (conn_open(m, &c) != BERTH_OK) return NULL;
	c->owner = m;
	pthread_mutex_lock(&m->lock);
	c->next = m->conns;
	m->conns = c;
	pthread_mutex_unlock(&m->lock);
	pthread_setspecific(m->key, c);
	return c;
}

static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id)
{
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			(void)db_err(c->db, rc, stmt_sql[id]);
			return NULL;
		}
	} else {
		sqlite3_reset(c->st[id]);
		sqlite3_clear_bindings(c->st[id]);
	}
	return c->st[id];
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
	sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows (or whose rows we ignore). */
static berth_err exec_stmt(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW) return BERTH_OK;
	return db_err(c->db, rc, what);
}

static berth_err tx(struct conn *c, enum stmt_id id)
{
	sqlite3_stmt *s = stmt(c, id);
	if (!s) return BERTH_EDB;
	return exec_stmt(c, s, stmt_sql[id]);
}

static void rollback(struct conn *c)
{
	if (sqlite3_get_autocommit(c->db)) return;
	(void)tx(c, S_ROLLBACK);
}

/* Repository id, or 0 when absent. Negative on error. */
static int64_t repo_id(struct conn *c, const char *repo)
{
	sqlite3_stmt *s = stmt(c, S_REPO_ID);
	int64_t id = 0;
	int rc;
	if (!s) return -1;
	bind_text(s, 1, repo);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) id = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE) id = -1;
	sqlite3_reset(s);
	return id;
}

/* Inside a transaction: the repository's id, created when missing. */
static berth_err repo_ensure(struct conn *c, const char *repo, int64_t *id)
{
	int64_t r = repo_id(c, repo);
	sqlite3_stmt *s;
	berth_err e;
	if (r > 0) {
		*id = r;
		return BERTH_OK;
	}
	if (r < 0) return BERTH_EDB;
	s = stmt(c, S_REPO_INS);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	if ((e = exec_stmt(c, s, "insert repo"))) return e;
	*id = sqlite3_last_insert_rowid(c->db);
	return BERTH_OK;
}

static unsigned up_bucket(const char *repo)
{
	unsigned h = 2166136261u;
	for (; *repo; repo++) h = (h ^ (unsigned char)*repo) * 16777619u;
	return h % UP_COUNT_BUCKETS;
}

/* Open sessions of repo. Caller holds plock. */
static int64_t up_count_get(struct sq_meta *m, const char *repo)
{
	for (struct up_count *u = m->up_counts[up_bucket(repo)]; u; u = u->next)
		if (strcmp(u->repo, repo) == 0) return u->n;
	return 0;
}

/* Adds delta to repo's count; an entry that reaches 0 goes. Caller holds plock. */
static berth_err up_count_add(struct sq_meta *m, const char *repo, int64_t delta)
{
	struct up_count **pp = &m->up_counts[up_bucket(repo)], *u;
	size_t len;
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->repo, repo) != 0) continue;
		u = *pp;
		u->n += delta;
		if (u->n <= 0) {
			*pp = u->next;
			free(u);
		}
		return BERTH_OK;
	}
	if (delta <= 0) return BERTH_OK;
	len = strlen(repo);
	if (!(u = calloc(1, sizeof *u + len + 1))) return BERTH_ENOMEM;
	memcpy(u->repo, repo, len + 1);
	u->n = delta;
	u->next = *pp;
	*pp = u;
	return BERTH_OK;
}

static void up_counts_clear(struct sq_meta *m)
{
	for (size_t i = 0; i < UP_COUNT_BUCKETS; i++) {
		struct up_count *u = m->up_counts[i], *next;
		for (; u; u = next) {
			next = u->next;
			free(u);
		}
		m->up_counts[i] = NULL;
	}
}

/* The link that holds id's deferred record, or the empty link at the end of its chain.
 * Caller holds plock. */
static struct up_pending **pending_find(struct sq_meta *m, const char *id)
{
	struct up_pending **pp = &m->pending[up_bucket(id)];
	while (*pp && strcmp((*pp)->id, id) != 0) pp = &(*pp)->next;
	return pp;
}

static berth_err pending_add(struct sq_meta *m, const char *id, const char *repo, int64_t created)
{
	size_t il = strlen(id), rl = strlen(repo);
	struct up_pending **pp = pending_find(m, id), *p;
	if (*pp) return BERTH_EDB; /* an id is random and used once: never here */
	if (!(p = malloc(sizeof *p + il + 1 + rl + 1))) return BERTH_ENOMEM;
	memcpy(p->id, id, il + 1);
	memcpy(p->id + il + 1, repo, rl + 1);
	p->repo = p->id + il + 1;
	p->created = created;
	p->born_ms = berth_mono_ms();
	p->next = NULL;
	*pp = p;
	m->npending++;
	return BERTH_OK;
}

/* Whether uploads_save(id, min_age_ms) at time now writes p. */
static int pending_due(const struct up_pending *p, const char *id, unsigned min_age_ms,
		       int64_t now)
{
	return (id && strcmp(p->id, id) == 0) || now - p->born_ms >= (int64_t)min_age_ms;
}

/* Unlinks and frees *pp. Caller holds plock. */
static void pending_drop(struct sq_meta *m, struct up_pending **pp)
{
	struct up_pending *p = *pp;
	*pp = p->next;
	free(p);
	m->npending--;
}

static struct conn *writer_take(struct berth_meta *mm)
{
	struct sq_meta *m = (struct sq_meta *)mm;
	pthread_mutex_lock(&m->wlock);
	return m->writer;
}

static void writer_give(struct berth_meta *mm)
{
	pthread_mutex_unlock(&((struct sq_meta *)mm)->wlock);
}

#define CONN_OR_FAIL(m, c)                                                                       \
	struct conn *c = get_conn((struct sq_meta *)(m));                                          \
	if (!c) return BERTH_EDB

static berth_err sq_repo_exists(struct berth_meta *m, const char *repo)
{
	CONN_OR_FAIL(m, c);
	int64_t id = repo_id(c, repo);
	if (id < 0) return BERTH_EDB;
	return id ? BERTH_OK : BERTH_ENAME_UNKNOWN;
}

/* synchronous=FULL for the next commits of this connection (or back to the configured mode). */
static berth_err conn_sync(struct conn *c, int full)
{
	int rc = sqlite3_exec(c->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
			      NULL, NULL, NULL);
	return rc == SQLITE_OK ? BERTH_OK : db_err(c->db, rc, "synchronous");
}

/* ended[i]: item i's session row went (for the counts, once the transaction commits);
 * deferred[i]: its session has no row to delete. */
static berth_err blobs_publish(struct conn *c, struct sq_meta *sm,
			       const struct berth_meta_publish *items, size_t n, int durable,
			       unsigned char *ended, const unsigned char *deferred)
{
	sqlite3_stmt *s;
	berth_err e;
	const char *last_repo = NULL; /* a batch mostly goes to one repository */
	int64_t rid = 0;
	int switched = durable && !sm->durable;
	if (switched && (e = conn_sync(c, 1))) return e;
	e = tx(c, S_BEGIN);
	if (e) goto restore;
	for (size_t i = 0; i < n; i++) {
		const struct berth_meta_publish *it = &items[i];
		if (!last_repo || strcmp(last_repo, it->repo) != 0) {
			if ((e = repo_ensure(c, it->repo, &rid))) goto fail;
			last_repo = it->repo;
		}
		e = BERTH_EDB;
		if (!(s = stmt(c, S_BLOB_INS))) goto fail;
		bind_text(s, 1, it->digest->s);
		sqlite3_bind_int64(s, 2, it->size);
		if ((e = exec_stmt(c, s, "insert blob"))) goto fail;
		e = BERTH_EDB;
		if (!(s = stmt(c, S_LINK_INS))) goto fail;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, it->digest->s);
		if ((e = exec_stmt(c, s, "link blob"))) goto fail;
		if (it->upload_id && !deferred[i]) {
			e = BERTH_EDB;
			if (!(s = stmt(c, S_UP_DEL))) goto fail;
			bind_text(s, 1, it->upload_id);
			if ((e = exec_stmt(c, s, "delete upload"))) goto fail;
			ended[i] = sqlite3_changes(c->db) > 0;
		}
	}
	if ((e = tx(c, S_COMMIT))) goto fail;
	goto restore;
fail:
	rollback(c);
restore:
	if (switched) {
		berth_err e2 = conn_sync(c, 0);
		if (!e) e = e2;
	}
	return e;
}

static berth_err sq_blobs_publish(struct berth_meta *m, const struct berth_meta_publish *items,
				  size_t n, int durable)
{
	struct sq_meta *sm = (struct sq_meta *)m;
	unsigned char *ended = calloc(n ? n : 1, 2), *deferred = ended + (n ? n : 1);
	struct conn *c;
	berth_err e;
	if (!ended) return BERTH_ENOMEM;
	c = writer_take(m);
	/* Holding wlock, no save can write a deferred record meanwhile. */
	pthread_mutex_lock(&sm->plock);
	for (size_t i = 0; i < n; i++)
		deferred[i] = items[i].upload_id && *pending_find(sm, items[i].upload_id);
	pthread_mutex_unlock(&sm->plock);
	e = blobs_publish(c, sm, items, n, durable, ended, deferred);
	pthread_mutex_lock(&sm->plock);
	for (size_t i = 0; !e && i < n; i++) {
		if (deferred[i]) {
			/* Still there unless a DELETE of the session ended it meanwhile. */
			struct up_pending **pp = pending_find(sm, items[i].upload_id);
			if (*pp) {
				pending_drop(sm, pp);
				ended[i] = 1;
			}
		}
		if (ended[i]) (void)up_count_add(sm, items[i].repo, -1);
	}
	pthread_mutex_unlock(&sm->plock);
	writer_give(m);
	free(ended);
	return e;
}

/* A mount: the same record as a finished single-request push. */
static berth_err sq_blob_link(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			      int64_t size)
{
	struct berth_meta_publish item = {.repo = repo, .digest = d, .size = size};
	return sq_blobs_publish(m, &item, 1, 0);
}

static berth_err size_query(struct conn *c, sqlite3_stmt *s, int64_t *size)
{
	int rc = sqlite3_step(s);
	berth_err e = BERTH_OK;
	if (rc == SQLITE_ROW) *size = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE) e = BERTH_EBLOB_UNKNOWN;
	else e = db_err(c->db, rc, "blob lookup");
	sqlite3_reset(s);
	return e;
}

static berth_err sq_blob_get(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			     int64_t *size)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_BLOB_GET);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, d->s);
	return size_query(c, s, size);
}

static berth_err sq_blob_find(struct berth_meta *m, const struct berth_digest *d, int64_t *size)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_BLOB_FIND);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, d->s);
	return size_query(c, s, size);
}

static berth_err sq_blob_unlink(struct berth_meta *m, const char *repo,
				const struct berth_digest *d)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_BLOB_UNLINK);
	berth_err e;
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, d->s);
	if ((e = exec_stmt(c, s, "unlink blob"))) return e;
	return sqlite3_changes(c->db) ? BERTH_OK : BERTH_EBLOB_UNKNOWN;
}

static int row_exists(struct conn *c, enum stmt_id id, int64_t rid, const char *digest)
{
	sqlite3_stmt *s = stmt(c, id);
	int rc;
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, digest);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW) return 1;
	if (rc == SQLITE_DONE) return 0;
	return -1;
}

/* ---- semantic-version tags ---- */

/* Points float tag `base` (with the prefix of the newest version found) at the newest
 * release the statement finds, or removes the float when the line has none left. */
static berth_err set_float(struct conn *c, int64_t rid, enum stmt_id q, uint64_t major,
			   uint64_t minor, const char *base, int64_t now)
{
	sqlite3_stmt *s = stmt(c, q);
	char name[64], digest[BERTH_DIGEST_MAX + 1] = "";
	int rc, found = 0, v_prefix = 0;
	berth_err e;
	if (!s) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, rid);
	if (q != S_VER_MAX_ALL) sqlite3_bind_int64(s, 2, (sqlite3_int64)major);
	if (q == S_VER_MAX_MINOR) sqlite3_bind_int64(s, 3, (sqlite3_int64)minor);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		const char *d = (const char *)sqlite3_column_text(s, 1);
		v_prefix = t && (t[0] == 'v' || t[0] == 'V');
		if (d && strlen(d) < sizeof digest) {
			memcpy(digest, d, strlen(d) + 1);
			found = 1;
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_err(c->db, rc, "version lookup");
	if (found) {
		snprintf(name, sizeof name, "%s%s", v_prefix && q != S_VER_MAX_ALL ? "v" : "", base);
		if (!(s = stmt(c, S_TAG_SET))) return BERTH_EDB;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, name);
		bind_text(s, 3, digest);
		sqlite3_bind_int64(s, 4, now);
		return exec_stmt(c, s, "set float tag");
	}
	for (int pfx = 0; pfx < (q == S_VER_MAX_ALL ? 1 : 2); pfx++) {
		snprintf(name, sizeof name, "%s%s", pfx ? "v" : "", base);
		if (!(s = stmt(c, S_TAG_DEL_ID))) return BERTH_EDB;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, name);
		if ((e = exec_stmt(c, s, "drop float tag"))) return e;
	}
	return BERTH_OK;
}

/* Re-derives the floats of the line major.minor from what the versions table holds. */
static berth_err refloat(struct conn *c, int64_t rid, uint64_t major, uint64_t minor,
			 const struct berth_meta_tag_policy *pol, int64_t now)
{
	char base[48];
	berth_err e;
	if (pol->float_minor) {
		snprintf(base, sizeof base, "%llu.%llu", (unsigned long long)major,
			 (unsigned long long)minor);
		if ((e = set_float(c, rid, S_VER_MAX_MINOR, major, minor, base, now))) return e;
	}
	if (pol->float_major) {
		snprintf(base, sizeof base, "%llu", (unsigned long long)major);
		if ((e = set_float(c, rid, S_VER_MAX_MAJOR, major, 0, base, now))) return e;
	}
	if (pol->float_latest && (e = set_float(c, rid, S_VER_MAX_ALL, 0, 0, "latest", now)))
		return e;
	return BERTH_OK;
}

/* Before tag moves to digest: immutability, then the versions row. *line_changed tells the
 * caller to refloat (a release was added). */
static berth_err version_tag_put(struct conn *c, int64_t rid, const char *tag,
				 const char *digest, const struct berth_meta_tag_policy *pol,
				 struct berth_semver *v, int *line_changed)
{
	sqlite3_stmt *s;
	berth_err e;
	int rc;
	*line_changed = 0;
	if (!pol || !pol->semver || !berth_semver_parse(tag, strlen(tag), v) || v->parts != 3)
		return BERTH_OK;
	if (pol->immutable) {
		if (!(s = stmt(c, S_TAG_GET))) return BERTH_EDB;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, tag);
		rc = sqlite3_step(s);
		e = BERTH_OK;
		if (rc == SQLITE_ROW) {
			const char *cur = (const char *)sqlite3_column_text(s, 0);
			if (cur && strcmp(cur, digest) != 0) e = BERTH_ETAG_IMMUTABLE;
		} else if (rc != SQLITE_DONE) {
			e = db_err(c->db, rc, "tag lookup");
		}
		sqlite3_reset(s);
		if (e) return e;
	}
	if (!(s = stmt(c, S_VER_INS))) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, tag);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)v->major);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)v->minor);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)v->patch);
	bind_text(s, 6, v->pre);
	if ((e = exec_stmt(c, s, "insert version"))) return e;
	/* A pre-release never moves a float (semver.org §9: it has lower precedence and is
	 * not a release of its line). */
	*line_changed = v->pre[0] == '\0';
	return BERTH_OK;
}

static berth_err list_rows(struct conn *c, sqlite3_stmt *s, berth_meta_name_fn fn, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (fn(ctx, t, (size_t)sqlite3_column_bytes(s, 0))) break;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) return BERTH_OK;
	return db_err(c->db, rc, "list");
}

/* ---- the image index ---- */

static berth_err image_unindex(struct conn *c, int64_t rid, const char *digest)
{
	static const enum stmt_id dels[] = {S_IMG_DEL, S_IMG_CHAIN_DEL, S_IMG_LABEL_DEL};
	berth_err e;
	for (size_t i = 0; i < sizeof dels / sizeof dels[0]; i++) {
		sqlite3_stmt *s = stmt(c, dels[i]);
		if (!s) return BERTH_EDB;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, digest);
		if ((e = exec_stmt(c, s, stmt_sql[dels[i]]))) return e;
	}
	return BERTH_OK;
}

static berth_err image_write(struct conn *c, int64_t rid, const char *digest,
			     const struct berth_image_info *info)
{
	sqlite3_stmt *s;
	berth_err e;
	if ((e = image_unindex(c, rid, digest))) return e;
	if (!(s = stmt(c, S_IMG_INS))) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, digest);
	bind_text(s, 3, info->created);
	bind_text(s, 4, info->os);
	bind_text(s, 5, info->arch);
	bind_text(s, 6, info->variant);
	if (info->labels_json) bind_text(s, 7, info->labels_json);
	bind_text(s, 8, info->base_name);
	bind_text(s, 9, info->base_digest);
	sqlite3_bind_int64(s, 10, (sqlite3_int64)info->n_layers);
	bind_text(s, 11, info->n_layers ? info->chains[info->n_layers - 1].s : "");
	if ((e = exec_stmt(c, s, "index image"))) return e;
	for (size_t i = 0; i < info->n_layers; i++) {
		if (!(s = stmt(c, S_IMG_CHAIN_INS))) return BERTH_EDB;
		bind_text(s, 1, info->chains[i].s);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
		sqlite3_bind_int64(s, 3, rid);
		bind_text(s, 4, digest);
		if ((e = exec_stmt(c, s, "index chain"))) return e;
	}
	if (info->labels_json) {
		json_t *labels = json_loads(info->labels_json, 0, NULL);
		const char *k;
		json_t *v;
		e = BERTH_OK;
		json_object_foreach(labels, k, v)
		{
			if (!json_is_string(v)) continue;
			if (!(s = stmt(c, S_IMG_LABEL_INS))) {
				e = BERTH_EDB;
				break;
			}
			bind_text(s, 1, k);
			bind_text(s, 2, json_string_value(v));
			sqlite3_bind_int64(s, 3, rid);
			bind_text(s, 4, digest);
			if ((e = exec_stmt(c, s, "index label"))) break;
		}
		json_decref(labels);
		if (e) return e;
	}
	return BERTH_OK;
}

static berth_err image_rows(struct conn *c, sqlite3_stmt *s, berth_meta_image_fn fn, void *ctx,
			    int *found)
{
	int rc;
#define COL(i) ((const char *)sqlite3_column_text(s, (i)))
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct berth_meta_image img = {
			.repo = COL(0),
			.digest = COL(1),
			.n_layers = sqlite3_column_int64(s, 2),
			.top_chain = COL(3) ? COL(3) : "",
			.labels_json = COL(4),
			.base_name = COL(5) ? COL(5) : "",
			.base_digest = COL(6) ? COL(6) : "",
			.created = COL(7) ? COL(7) : "",
			.os = COL(8) ? COL(8) : "",
			.arch = COL(9) ? COL(9) : "",
		};
#undef COL
		if (found) *found = 1;
		if (fn(ctx, &img)) break;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) return BERTH_OK;
	return db_err(c->db, rc, "image query");
}

static berth_err sq_image_get(struct berth_meta *m, const char *repo, const char *digest,
			      berth_meta_image_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_IMG_GET);
	int found = 0;
	berth_err e;
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, digest);
	if ((e = image_rows(c, s, fn, ctx, &found))) return e;
	return found ? BERTH_OK : BERTH_EMANIFEST_UNKNOWN;
}

static berth_err sq_image_derived(struct berth_meta *m, const char *chain, int64_t n_layers,
				  const char *base_digest, berth_meta_image_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_IMG_DERIVED);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, chain);
	sqlite3_bind_int64(s, 2, n_layers);
	bind_text(s, 3, base_digest ? base_digest : "");
	return image_rows(c, s, fn, ctx, NULL);
}

static berth_err sq_image_bases(struct berth_meta *m, const char *repo, const char *digest,
				berth_meta_image_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_IMG_BASES);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, digest);
	return image_rows(c, s, fn, ctx, NULL);
}

static berth_err sq_image_by_label(struct berth_meta *m, const char *key, const char *value,
				   berth_meta_image_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_IMG_LABEL);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	return image_rows(c, s, fn, ctx, NULL);
}

static berth_err sq_image_find(struct berth_meta *m, const char *top_chain, const char *digest,
				berth_meta_image_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_IMG_FIND);
	if (!s) return BERTH_EDB;
	/* "" never matches a top chain: only images without layers have it, and they are no
	 * base of anything. */
	bind_text(s, 1, top_chain && top_chain[0] ? top_chain : "-");
	bind_text(s, 2, digest ? digest : "");
	return image_rows(c, s, fn, ctx, NULL);
}

static berth_err sq_tags_of(struct berth_meta *m, const char *repo, const char *digest,
			    berth_meta_name_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_TAGS_OF);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, digest);
	return list_rows(c, s, fn, ctx);
}

static berth_err sq_manifests_each(struct berth_meta *m,
				   int (*fn)(void *ctx, const char *repo, const char *digest,
					     const char *media_type, const void *content,
					     size_t len),
				   void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_MF_ALL);
	int rc;
	if (!s) return BERTH_EDB;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(s, 0),
		       (const char *)sqlite3_column_text(s, 1),
		       (const char *)sqlite3_column_text(s, 2), sqlite3_column_blob(s, 3),
		       (size_t)sqlite3_column_bytes(s, 3)))
			break;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) return BERTH_OK;
	return db_err(c->db, rc, "manifests");
}

static berth_err sq_image_index(struct berth_meta *m, const char *repo, const char *digest,
				const struct berth_image_info *info)
{
	CONN_OR_FAIL(m, c);
	int64_t rid;
	berth_err e;
	if ((e = tx(c, S_BEGIN))) return e;
	rid = repo_id(c, repo);
	if (rid <= 0) {
		e = rid < 0 ? BERTH_EDB : BERTH_ENAME_UNKNOWN;
		goto fail;
	}
	if ((e = image_write(c, rid, digest, info))) goto fail;
	if ((e = tx(c, S_COMMIT))) goto fail;
	return BERTH_OK;
fail:
	rollback(c);
	return e;
}

static berth_err sq_manifest_put(struct berth_meta *m, const char *repo,
				 const struct berth_meta_manifest_in *mf, const char *tag,
				 const struct berth_meta_tag_policy *pol)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s;
	int64_t rid;
	int64_t now = (int64_t)time(NULL);
	berth_err e;

	if ((e = tx(c, S_BEGIN))) return e;
	if ((e = repo_ensure(c, repo, &rid))) goto fail;
	for (size_t i = 0; !mf->lazy_refs && i < mf->n_refs; i++) {
		/* An index entry is usually a manifest, but some (buildx cache indexes) list
		 * plain blobs under "manifests": either kind of content satisfies it. */
		int ex = row_exists(c, mf->ref_is_manifest[i] ? S_HAS_MF : S_HAS_BLOB, rid,
				    mf->ref_digests[i]->s);
		if (ex == 0 && mf->ref_is_manifest[i])
			ex = row_exists(c, S_HAS_BLOB, rid, mf->ref_digests[i]->s);
		if (ex < 0) {
			e = BERTH_EDB;
			goto fail;
		}
		if (!ex) {
			e = BERTH_EMANIFEST_BLOB_UNKNOWN;
			goto fail;
		}
	}
	e = BERTH_EDB;
	if (!(s = stmt(c, S_MF_INS))) goto fail;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, mf->digest->s);
	bind_text(s, 3, mf->media_type);
	sqlite3_bind_blob64(s, 4, mf->content, mf->len, SQLITE_STATIC);
	bind_text(s, 5, mf->artifact_type ? mf->artifact_type : "");
	if (mf->subject) bind_text(s, 6, mf->subject->s);
	if (mf->annotations_json) bind_text(s, 7, mf->annotations_json);
	sqlite3_bind_int64(s, 8, now);
	if ((e = exec_stmt(c, s, "insert manifest"))) goto fail;
	if (sqlite3_changes(c->db)) {
		if (mf->image && (e = image_write(c, rid, mf->digest->s, mf->image))) goto fail;
		for (size_t i = 0; i < mf->n_refs; i++) {
			e = BERTH_EDB;
			if (!(s = stmt(c, S_MF_REF_INS))) goto fail;
			sqlite3_bind_int64(s, 1, rid);
			bind_text(s, 2, mf->digest->s);
			bind_text(s, 3, mf->ref_digests[i]->s);
			sqlite3_bind_int(s, 4, mf->ref_is_manifest[i]);
			if ((e = exec_stmt(c, s, "insert manifest ref"))) goto fail;
		}
	}
	if (tag) {
		struct berth_semver v;
		int line_changed = 0;
		if ((e = version_tag_put(c, rid, tag, mf->digest->s, pol, &v, &line_changed)))
			goto fail;
		e = BERTH_EDB;
		if (!(s = stmt(c, S_TAG_SET))) goto fail;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, tag);
		bind_text(s, 3, mf->digest->s);
		sqlite3_bind_int64(s, 4, now);
		if ((e = exec_stmt(c, s, "set tag"))) goto fail;
		if (line_changed && (e = refloat(c, rid, v.major, v.minor, pol, now))) goto fail;
	}
	if ((e = tx(c, S_COMMIT))) goto fail;
	return BERTH_OK;
fail:
	rollback(c);
	return e;
}

static berth_err manifest_read(struct berth_meta *m, const char *repo, const char *ref,
			       int by_digest, int with_content, struct berth_meta_manifest_out *out)
{
	CONN_OR_FAIL(m, c);
	enum stmt_id id = with_content ? (by_digest ? S_MF_GET_DIGEST : S_MF_GET_TAG)
				       : (by_digest ? S_MF_HEAD_DIGEST : S_MF_HEAD_TAG);
	sqlite3_stmt *s = stmt(c, id);
	berth_err e = BERTH_OK;
	int rc;
	if (!s) return BERTH_EDB;
	memset(out, 0, sizeof *out);
	bind_text(s, 1, repo);
	bind_text(s, 2, ref);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *dg = (const char *)sqlite3_column_text(s, 0);
		const char *mt = (const char *)sqlite3_column_text(s, 1);
		e = berth_digest_parse(dg, (size_t)sqlite3_column_bytes(s, 0), &out->digest);
		if (!e) {
			out->media_type = strdup(mt ? mt : "");
			if (!out->media_type) e = BERTH_ENOMEM;
		}
		if (!e && with_content) {
			size_t n = (size_t)sqlite3_column_bytes(s, 2);
			const void *p = sqlite3_column_blob(s, 2);
			out->content = malloc(n ? n : 1);
			if (!out->content) e = BERTH_ENOMEM;
			else {
				if (n) memcpy(out->content, p, n);
				out->len = n;
			}
		} else if (!e) {
			out->len = (size_t)sqlite3_column_int64(s, 2);
		}
	} else if (rc == SQLITE_DONE) {
		e = BERTH_EMANIFEST_UNKNOWN;
	} else {
		e = db_err(c->db, rc, "manifest lookup");
	}
	sqlite3_reset(s);
	if (e) {
		free(out->media_type);
		free(out->content);
		memset(out, 0, sizeof *out);
	}
	if (e == BERTH_EMANIFEST_UNKNOWN && repo_id(c, repo) == 0) e = BERTH_ENAME_UNKNOWN;
	return e;
}

static berth_err sq_manifest_get(struct berth_meta *m, const char *repo, const char *ref,
				 int by_digest, struct berth_meta_manifest_out *out)
{
	return manifest_read(m, repo, ref, by_digest, 1, out);
}

static berth_err sq_manifest_head(struct berth_meta *m, const char *repo, const char *ref,
				  int by_digest, struct berth_meta_manifest_out *out)
{
	return manifest_read(m, repo, ref, by_digest, 0, out);
}

/* The version lines whose tags point at digest: their rows go, and the caller refloats. */
#define LINES_MAX 64
struct lines {
	int n;
	uint64_t major[LINES_MAX], minor[LINES_MAX];
};

static berth_err versions_drop_digest(struct conn *c, int64_t rid, const char *digest,
				      struct lines *ls)
{
	sqlite3_stmt *s = stmt(c, S_VER_BY_DIGEST);
	char tags[LINES_MAX][BERTH_TAG_MAX + 1];
	int n = 0, rc;
	berth_err e;
	if (!s) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, digest);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < LINES_MAX) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		snprintf(tags[n], sizeof tags[n], "%s", t ? t : "");
		ls->major[ls->n] = (uint64_t)sqlite3_column_int64(s, 1);
		ls->minor[ls->n] = (uint64_t)sqlite3_column_int64(s, 2);
		ls->n++;
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_err(c->db, rc, "versions by digest");
	for (int i = 0; i < n; i++) {
		if (!(s = stmt(c, S_VER_DEL))) return BERTH_EDB;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, tags[i]);
		if ((e = exec_stmt(c, s, "delete version"))) return e;
	}
	return BERTH_OK;
}

static berth_err sq_manifest_delete(struct berth_meta *m, const char *repo,
				    const struct berth_digest *d,
				    const struct berth_meta_tag_policy *pol)
{
	CONN_OR_FAIL(m, c);
	static const enum stmt_id steps[] = {S_MF_DEL, S_MF_DEL_TAGS, S_MF_DEL_REFS};
	struct lines ls = {0};
	int64_t rid;
	int changed = 0;
	berth_err e;
	if ((e = tx(c, S_BEGIN))) return e;
	rid = repo_id(c, repo);
	if (rid <= 0) {
		e = rid < 0 ? BERTH_EDB : BERTH_ENAME_UNKNOWN;
		goto fail;
	}
	if ((e = versions_drop_digest(c, rid, d->s, &ls))) goto fail;
	if ((e = image_unindex(c, rid, d->s))) goto fail;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		sqlite3_stmt *s = stmt(c, steps[i]);
		e = BERTH_EDB;
		if (!s) goto fail;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, d->s);
		if ((e = exec_stmt(c, s, stmt_sql[steps[i]]))) goto fail;
		if (i == 0) changed = sqlite3_changes(c->db);
	}
	if (!changed) {
		e = BERTH_EMANIFEST_UNKNOWN;
		goto fail;
	}
	/* Floats that followed a deleted version move to the next highest of their line. */
	for (int i = 0; pol && pol->semver && i < ls.n; i++)
		if ((e = refloat(c, rid, ls.major[i], ls.minor[i], pol, (int64_t)time(NULL))))
			goto fail;
	if ((e = tx(c, S_COMMIT))) goto fail;
	return BERTH_OK;
fail:
	rollback(c);
	return e;
}

static berth_err sq_tag_delete(struct berth_meta *m, const char *repo, const char *tag,
			       const struct berth_meta_tag_policy *pol)
{
	CONN_OR_FAIL(m, c);
	struct berth_semver v;
	sqlite3_stmt *s;
	int64_t rid;
	berth_err e;
	if ((e = tx(c, S_BEGIN))) return e;
	rid = repo_id(c, repo);
	if (rid <= 0) {
		e = rid < 0 ? BERTH_EDB : BERTH_EMANIFEST_UNKNOWN;
		goto fail;
	}
	e = BERTH_EDB;
	if (!(s = stmt(c, S_TAG_DEL_ID))) goto fail;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, tag);
	if ((e = exec_stmt(c, s, "delete tag"))) goto fail;
	if (!sqlite3_changes(c->db)) {
		e = BERTH_EMANIFEST_UNKNOWN;
		goto fail;
	}
	if (pol && pol->semver && berth_semver_parse(tag, strlen(tag), &v) && v.parts == 3) {
		e = BERTH_EDB;
		if (!(s = stmt(c, S_VER_DEL))) goto fail;
		sqlite3_bind_int64(s, 1, rid);
		bind_text(s, 2, tag);
		if ((e = exec_stmt(c, s, "delete version"))) goto fail;
		if ((e = refloat(c, rid, v.major, v.minor, pol, (int64_t)time(NULL)))) goto fail;
	}
	if ((e = tx(c, S_COMMIT))) goto fail;
	return BERTH_OK;
fail:
	rollback(c);
	return e;
}


static berth_err sq_tags_list(struct berth_meta *m, const char *repo, const char *last, long n,
			      berth_meta_name_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	int64_t rid = repo_id(c, repo);
	sqlite3_stmt *s;
	if (rid < 0) return BERTH_EDB;
	if (rid == 0) return BERTH_ENAME_UNKNOWN;
	if (!(s = stmt(c, S_TAGS_LIST))) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, last ? last : "");
	sqlite3_bind_int64(s, 3, n);
	return list_rows(c, s, fn, ctx);
}

static berth_err sq_catalog(struct berth_meta *m, const char *last, long n, berth_meta_name_fn fn,
			    void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_CATALOG);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, last ? last : "");
	sqlite3_bind_int64(s, 2, n);
	return list_rows(c, s, fn, ctx);
}

static berth_err sq_referrers(struct berth_meta *m, const char *repo, const struct berth_digest *d,
			      const char *artifact_type, berth_meta_referrer_fn fn, void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, artifact_type ? S_REFERRERS_TYPE : S_REFERRERS);
	int rc;
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, d->s);
	if (artifact_type) bind_text(s, 3, artifact_type);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct berth_meta_referrer r = {
			.digest = (const char *)sqlite3_column_text(s, 0),
			.media_type = (const char *)sqlite3_column_text(s, 1),
			.size = sqlite3_column_int64(s, 2),
			.artifact_type = (const char *)sqlite3_column_text(s, 3),
			.annotations_json = (const char *)sqlite3_column_text(s, 4),
		};
		if (fn(ctx, &r)) break;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) return BERTH_OK;
	return db_err(c->db, rc, "referrers");
}

/* ---- garbage collection ---- */

static berth_err sq_gc_links(struct berth_meta *m, int64_t before,
			     int (*fn)(void *ctx, const char *repo, const char *digest), void *ctx)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_GC_LINKS);
	int rc;
	if (!s) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, before);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (fn(ctx, (const char *)sqlite3_column_text(s, 0),
		       (const char *)sqlite3_column_text(s, 1)))
			break;
	sqlite3_reset(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) return BERTH_OK;
	return db_err(c->db, rc, "gc links");
}

static berth_err sq_gc_unlink(struct berth_meta *m, const char *repo, const char *digest,
			      int64_t before)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_GC_UNLINK);
	if (!s) return BERTH_EDB;
	bind_text(s, 1, repo);
	bind_text(s, 2, digest);
	sqlite3_bind_int64(s, 3, before);
	return exec_stmt(c, s, "gc unlink");
}

static berth_err sq_gc_blob_forget(struct berth_meta *m, const char *digest, int *forgotten)
{
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_GC_BLOB_DEL);
	berth_err e;
	if (!s) return BERTH_EDB;
	bind_text(s, 1, digest);
	if ((e = exec_stmt(c, s, "gc blob"))) return e;
	*forgotten = sqlite3_changes(c->db) > 0;
	return BERTH_OK;
}

static berth_err sq_upload_create(struct berth_meta *m, const char *id, const char *repo,
				  int64_t now, unsigned limit)
{
	struct sq_meta *sm = (struct sq_meta *)m;
	berth_err e = BERTH_ETOOMANY;
	/* Checked and counted under plock, which every change to the sessions holds:
	 * concurrent starts cannot overshoot. The record is deferred (see meta.h). */
	pthread_mutex_lock(&sm->plock);
	if (limit && up_count_get(sm, repo) >= (int64_t)limit) goto out;
	if ((e = up_count_add(sm, repo, 1))) goto out;
	if ((e = pending_add(sm, id, repo, now))) (void)up_count_add(sm, repo, -1);
out:
	pthread_mutex_unlock(&sm->plock);
	return e;
}

/* Writes the deferred records of sessions selected by id / min_age_ms (meta.h). */
static berth_err sq_uploads_save(struct berth_meta *m, const char *id, unsigned min_age_ms,
				 size_t *left)
{
	struct sq_meta *sm = (struct sq_meta *)m;
	struct conn *c = writer_take(m);
	int64_t now = berth_mono_ms();
	size_t chosen = 0;
	berth_err e = BERTH_OK;
	/* plock stays held through the transaction: no record may end while it is written. */
	pthread_mutex_lock(&sm->plock);
	for (size_t b = 0; b < UP_COUNT_BUCKETS && !e; b++) {
		for (struct up_pending *p = sm->pending[b]; p && !e; p = p->next) {
			sqlite3_stmt *s;
			if (!pending_due(p, id, min_age_ms, now)) continue;
			if (chosen++ == 0 && (e = tx(c, S_BEGIN))) break;
			if (!(s = stmt(c, S_UP_INS))) {
				e = BERTH_EDB;
				break;
			}
			bind_text(s, 1, p->id);
			bind_text(s, 2, p->repo);
			sqlite3_bind_int64(s, 3, p->created);
			e = exec_stmt(c, s, "insert upload");
		}
	}
	if (chosen && !e) e = tx(c, S_COMMIT);
	if (chosen && e) rollback(c);
	/* Written: the same selection leaves the table. */
	for (size_t b = 0; b < UP_COUNT_BUCKETS && chosen && !e; b++) {
		struct up_pending **pp = &sm->pending[b];
		while (*pp) {
			if (pending_due(*pp, id, min_age_ms, now))
				pending_drop(sm, pp);
			else
				pp = &(*pp)->next;
		}
	}
	if (left) *left = sm->npending;
	pthread_mutex_unlock(&sm->plock);
	writer_give(m);
	return e;
}

static berth_err sq_upload_get(struct berth_meta *m, const char *id, const char *repo,
			       int64_t *created)
{
	struct sq_meta *sm = (struct sq_meta *)m;
	struct up_pending *p;
	int known = 0, mine = 0;
	pthread_mutex_lock(&sm->plock);
	if ((p = *pending_find(sm, id))) {
		known = 1;
		mine = !repo || strcmp(p->repo, repo) == 0;
		*created = p->created;
	}
	pthread_mutex_unlock(&sm->plock);
	/* Not deferred: written before (a save commits before its records leave the table),
	 * or unknown. */
	if (known) return mine ? BERTH_OK : BERTH_EUPLOAD_UNKNOWN;
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, repo ? S_UP_GET : S_UP_GET_ANY);
	berth_err e = BERTH_OK;
	int rc;
	if (!s) return BERTH_EDB;
	bind_text(s, 1, id);
	if (repo) bind_text(s, 2, repo);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) *created = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE) e = BERTH_EUPLOAD_UNKNOWN;
	else e = db_err(c->db, rc, "upload lookup");
	sqlite3_reset(s);
	return e;
}

static berth_err sq_upload_delete(struct berth_meta *m, const char *id)
{
	struct sq_meta *sm = (struct sq_meta *)m;
	struct conn *c = writer_take(m);
	sqlite3_stmt *s;
	struct up_pending **pp;
	berth_err e = BERTH_EDB;
	int rc;
	pthread_mutex_lock(&sm->plock);
	if (*(pp = pending_find(sm, id))) {
		(void)up_count_add(sm, (*pp)->repo, -1);
		pending_drop(sm, pp);
		pthread_mutex_unlock(&sm->plock);
		e = BERTH_OK;
		goto out;
	}
	pthread_mutex_unlock(&sm->plock);
	if (!(s = stmt(c, S_UP_DEL))) goto out;
	bind_text(s, 1, id);
	/* RETURNING: the whole delete runs in the first step, which yields the row's repo. */
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *repo = (const char *)sqlite3_column_text(s, 0);
		pthread_mutex_lock(&sm->plock);
		if (repo) (void)up_count_add(sm, repo, -1);
		pthread_mutex_unlock(&sm->plock);
		e = BERTH_OK;
	} else {
		e = rc == SQLITE_DONE ? BERTH_EUPLOAD_UNKNOWN : db_err(c->db, rc, "delete upload");
	}
	sqlite3_reset(s);
out:
	writer_give(m);
	return e;
}

static berth_err sq_uploads_expired(struct berth_meta *m, int64_t before, berth_meta_name_fn fn,
				    void *ctx)
{
	/* Deferred records are young: write them all rather than search two places. */
	berth_err e = sq_uploads_save(m, NULL, 0, NULL);
	if (e) return e;
	CONN_OR_FAIL(m, c);
	sqlite3_stmt *s = stmt(c, S_UP_EXPIRED);
	if (!s) return BERTH_EDB;
	sqlite3_bind_int64(s, 1, before);
	return list_rows(c, s, fn, ctx);
}

static void sq_free(struct berth_meta *mm)
{
	struct sq_meta *m = (struct sq_meta *)mm;
	struct conn *c, *next;
	if (!m) return;
	if (m->writer && m->npending && sq_uploads_save(mm, NULL, 0, NULL) != BERTH_OK)
		berth_log(BERTH_LOG_ERROR, "meta: %zu upload sessions not saved", m->npending);
	for (size_t b = 0; b < UP_COUNT_BUCKETS; b++)
		while (m->pending[b]) pending_drop(m, &m->pending[b]);
	pthread_key_delete(m->key);
	for (c = m->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	conn_close(m->writer);
	up_counts_clear(m);
	pthread_mutex_destroy(&m->plock);
	pthread_mutex_destroy(&m->wlock);
	pthread_mutex_destroy(&m->lock);
	free(m->path);
	free(m);
}

static const struct berth_meta_ops sq_ops = {
	.name = "sqlite",
	.free = sq_free,
	.repo_exists = sq_repo_exists,
	.blob_link = sq_blob_link,
	.blob_get = sq_blob_get,
	.blob_find = sq_blob_find,
	.blob_unlink = sq_blob_unlink,
	.blobs_publish = sq_blobs_publish,
	.manifest_put = sq_manifest_put,
	.manifest_get = sq_manifest_get,
	.manifest_head = sq_manifest_head,
	.manifest_delete = sq_manifest_delete,
	.tag_delete = sq_tag_delete,
	.tags_list = sq_tags_list,
	.catalog = sq_catalog,
	.referrers = sq_referrers,
	.image_get = sq_image_get,
	.image_derived = sq_image_derived,
	.image_bases = sq_image_bases,
	.image_by_label = sq_image_by_label,
	.image_find = sq_image_find,
	.tags_of = sq_tags_of,
	.manifests_each = sq_manifests_each,
	.image_index = sq_image_index,
	.gc_links = sq_gc_links,
	.gc_unlink = sq_gc_unlink,
	.gc_blob_forget = sq_gc_blob_forget,
	.upload_create = sq_upload_create,
	.upload_get = sq_upload_get,
	.upload_delete = sq_upload_delete,
	.uploads_save = sq_uploads_save,
	.uploads_expired = sq_uploads_expired,
};

/* Brings a database of an older schema version up to date (a new one is created by
 * schema_sql at the current version). */
static berth_err schema_migrate(struct conn *c)
{
	sqlite3_stmt *s = NULL;
	char *errmsg = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version < 0) return db_err(c->db, SQLITE_ERROR, "schema version");
	if (version != 1) return BERTH_OK;
	if (sqlite3_exec(c->db, migrate_v1_sql, NULL, NULL, &errmsg) != SQLITE_OK) {
		berth_log(BERTH_LOG_ERROR, "meta: cannot migrate the schema to version 2: %s",
			  errmsg ? errmsg : "?");
		sqlite3_free(errmsg);
		rollback(c);
		return BERTH_EDB;
	}
	berth_log(BERTH_LOG_INFO, "meta: schema migrated to version 2 (upload sessions by id)");
	return BERTH_OK;
}

/* The per-repository session counts, from the table (at open: nothing else runs yet). */
static berth_err up_counts_load(struct sq_meta *m)
{
	sqlite3_stmt *s = NULL;
	berth_err e = BERTH_OK;
	int rc = sqlite3_prepare_v2(m->writer->db, "SELECT repo,count(*) FROM uploads GROUP BY repo",
				    -1, &s, NULL);
	if (rc != SQLITE_OK) return db_err(m->writer->db, rc, "count uploads");
	while (!e && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *repo = (const char *)sqlite3_column_text(s, 0);
		if (repo) e = up_count_add(m, repo, sqlite3_column_int64(s, 1));
	}
	if (!e && rc != SQLITE_DONE) e = db_err(m->writer->db, rc, "count uploads");
	sqlite3_finalize(s);
	return e;
}

berth_err berth_meta_sqlite_open(const char *path, int durable, struct berth_meta **out)
{
	struct sq_meta *m = calloc(1, sizeof *m);
	struct conn *c;
	char *errmsg = NULL;
	if (!m) return BERTH_ENOMEM;
	m->base.ops = &sq_ops;
	m->durable = durable;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->wlock, NULL);
	pthread_mutex_init(&m->plock, NULL);
	if (pthread_key_create(&m->key, conn_thread_end) != 0) {
		pthread_mutex_destroy(&m->plock);
		pthread_mutex_destroy(&m->wlock);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return BERTH_ENOMEM;
	}
	m->path = strdup(path);
	if (!m->path) goto fail;
	c = get_conn(m);
	if (!c) goto fail;
	if (schema_migrate(c) != BERTH_OK ||
	    sqlite3_exec(c->db, schema_sql, NULL, NULL, &errmsg) != SQLITE_OK) {
		berth_log(BERTH_LOG_ERROR, "meta: cannot create schema in %s: %s", path,
			  errmsg ? errmsg : "?");
		sqlite3_free(errmsg);
		goto fail;
	}
	if (conn_open(m, &m->writer) != BERTH_OK || up_counts_load(m) != BERTH_OK) goto fail;
	*out = &m->base;
	return BERTH_OK;
fail:
	sq_free(&m->base);
	return BERTH_EDB;
}

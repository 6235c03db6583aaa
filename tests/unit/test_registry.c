/* The registry use cases over the real filesystem store and SQLite metadata, in a temporary
 * folder: uploads, digest checks, restarts, manifests, tags, deletion. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "../../src/core/registry.h"
#include "t.h"

static char root[256];

static const char *const semver_repos[] = {"team/*", "golden/**"};
static const char *const golden_repos[] = {"golden/**"};

static unsigned uploads_limit; /* opts.uploads_per_repo for the next open */
static long upload_expiry = 3600; /* opts.upload_expiry for the next open */

static struct berth_registry *open_reg_opts(int delete_enabled, int semver)
{
	struct berth_store *st = NULL;
	struct berth_meta *m = NULL;
	struct berth_registry *r = NULL;
	char db[512];
	struct berth_registry_opts o = {.delete_enabled = delete_enabled,
					.manifest_max = 4 << 20,
					.upload_expiry = upload_expiry,
					.durable = 0};
	o.uploads_per_repo = uploads_limit;
	if (semver) {
		o.semver_repos = semver_repos;
		o.n_semver_repos = 2;
		o.golden_repos = golden_repos;
		o.n_golden_repos = 1;
		o.semver = (struct berth_meta_tag_policy){.semver = 1,
							  .float_major = 1,
							  .float_minor = 1,
							  .float_latest = 1,
							  .immutable = 1};
	}
	snprintf(db, sizeof db, "%s/meta.db", root);
	if (berth_store_fs_open(root, &st) || berth_meta_sqlite_open(db, 0, &m) ||
	    berth_registry_new(st, m, &o, &r)) {
		fprintf(stderr, "cannot open registry in %s\n", root);
		exit(2);
	}
	return r;
}

static struct berth_registry *open_reg(int delete_enabled)
{
	return open_reg_opts(delete_enabled, 0);
}

static struct berth_digest dig(const char *s)
{
	struct berth_digest d;
	if (berth_digest_of(BERTH_DIGEST_SHA256, s, strlen(s), &d)) abort();
	return d;
}

/* Pushes data as one chunk into repo; returns the finish result. */
static berth_err push(struct berth_registry *r, const char *repo, const char *data,
		      const struct berth_digest *d)
{
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL;
	berth_err e = berth_registry_upload_start(r, repo, id);
	if (e) return e;
	if ((e = berth_registry_upload_writer(r, repo, id, 0, 0, &w))) return e;
	e = berth_upload_writer_write(w, data, strlen(data));
	berth_upload_writer_close(w);
	if (e) return e;
	return berth_registry_upload_finish(r, repo, id, d, NULL);
}

static void test_upload_roundtrip(void)
{
	struct berth_registry *r = open_reg(1);
	struct berth_digest d = dig("hello world");
	int64_t size = -1;
	int fd = -1;
	char buf[32] = {0};
	CHECK_EQ_INT(push(r, "a/b", "hello world", &d), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "a/b", &d, &size), BERTH_OK);
	CHECK_EQ_INT(size, 11);
	CHECK_EQ_INT(berth_registry_blob_open(r, "a/b", &d, &fd, &size), BERTH_OK);
	CHECK(fd >= 0);
	CHECK_EQ_INT(read(fd, buf, sizeof buf), 11);
	close(fd);
	CHECK_STR(buf, "hello world");
	/* Not served from another repository until mounted there. */
	CHECK_EQ_INT(berth_registry_blob_stat(r, "other", &d, &size), BERTH_EBLOB_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_mount(r, "other", &d, "a/b"), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "other", &d, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_mount(r, "third", &d, "nowhere"), BERTH_EBLOB_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_mount(r, "third", &d, NULL), BERTH_OK);
	berth_registry_free(r);
}

static void test_digest_mismatch_keeps_nothing(void)
{
	struct berth_registry *r = open_reg(1);
	struct berth_digest wrong = dig("something else");
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL;
	int64_t size;
	CHECK_EQ_INT(berth_registry_upload_start(r, "m", id), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "m", id, 0, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "abc", 3), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_finish(r, "m", id, &wrong, NULL), BERTH_EDIGEST_INVALID);
	CHECK_EQ_INT(berth_registry_upload_status(r, "m", id, &size), BERTH_EUPLOAD_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "m", &wrong, &size), BERTH_EBLOB_UNKNOWN);
	struct berth_digest right = dig("abc");
	CHECK_EQ_INT(berth_registry_blob_stat(r, "m", &right, &size), BERTH_EBLOB_UNKNOWN);
	berth_registry_free(r);
}

static void test_chunks_offsets_and_restart(void)
{
	struct berth_registry *r = open_reg(1);
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL, *w2 = NULL;
	struct berth_digest d = dig("0123456789");
	int64_t size = -1;
	CHECK_EQ_INT(berth_registry_upload_start(r, "c", id), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "c", id, 0, 0, &w), BERTH_OK);
	/* One writer at a time. */
	CHECK_EQ_INT(berth_registry_upload_writer(r, "c", id, -1, 0, &w2), BERTH_EUPLOAD_INVALID);
	CHECK_EQ_INT(berth_upload_writer_write(w, "01234", 5), BERTH_OK);
	berth_upload_writer_close(w);
	/* A chunk that doesn't start at the current offset is refused. */
	CHECK_EQ_INT(berth_registry_upload_writer(r, "c", id, 3, 0, &w), BERTH_ERANGE);
	/* Another repository cannot touch the session. */
	CHECK_EQ_INT(berth_registry_upload_status(r, "d", id, &size), BERTH_EUPLOAD_UNKNOWN);
	berth_registry_free(r);

	/* After a restart the hash state is gone: it is rebuilt from the staged bytes. */
	r = open_reg(1);
	CHECK_EQ_INT(berth_registry_upload_status(r, "c", id, &size), BERTH_OK);
	CHECK_EQ_INT(size, 5);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "c", id, 5, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "56789", 5), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_finish(r, "c", id, &d, &size), BERTH_OK);
	CHECK_EQ_INT(size, 10);
	berth_registry_free(r);
}

static void test_sha512_upload(void)
{
	struct berth_registry *r = open_reg(1);
	struct berth_digest d;
	int64_t size;
	CHECK_EQ_INT(berth_digest_of(BERTH_DIGEST_SHA512, "xyz", 3, &d), BERTH_OK);
	/* The session hashed with sha256 by default; finishing with sha512 rehashes. */
	CHECK_EQ_INT(push(r, "s", "xyz", &d), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "s", &d, &size), BERTH_OK);
	berth_registry_free(r);
}

static const char *image_manifest(char *buf, size_t len, const struct berth_digest *cfg,
				  size_t cfg_size, const struct berth_digest *layer, size_t lsize)
{
	snprintf(buf, len,
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}]}",
		 cfg->s, cfg_size, layer->s, lsize);
	return buf;
}

struct names {
	char all[1024];
	int n;
};

static int collect(void *ctx, const char *name, size_t len)
{
	struct names *c = ctx;
	size_t l = strlen(c->all);
	snprintf(c->all + l, sizeof c->all - l, "%s%.*s", c->n ? "," : "", (int)len, name);
	c->n++;
	return 0;
}

static void test_manifests_and_tags(void)
{
	struct berth_registry *r = open_reg(1);
	struct berth_digest cfg = dig("{}"), layer = dig("layer"), d, sub;
	struct berth_registry_manifest m;
	struct names nm = {0};
	char body[1024];
	int has_sub = 0;
	image_manifest(body, sizeof body, &cfg, 2, &layer, 5);
	/* References must exist in the repository first. */
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", "v1", NULL, body, strlen(body), &d,
						 &has_sub, &sub),
		     BERTH_EMANIFEST_BLOB_UNKNOWN);
	CHECK_EQ_INT(push(r, "img", "{}", &cfg), BERTH_OK);
	CHECK_EQ_INT(push(r, "img", "layer", &layer), BERTH_OK);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", "v1", NULL, body, strlen(body), &d,
						 &has_sub, &sub),
		     BERTH_OK);
	CHECK_EQ_INT(has_sub, 0);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", "v2", NULL, body, strlen(body), &d,
						 &has_sub, &sub),
		     BERTH_OK);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", "Bad+Tag", NULL, body, strlen(body),
						 &d, &has_sub, &sub),
		     BERTH_ETAG_INVALID);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "v1", 1, &m), BERTH_OK);
	CHECK_EQ_INT(m.len, strlen(body));
	CHECK(m.content && memcmp(m.content, body, m.len) == 0);
	CHECK_STR(m.media_type, "application/vnd.oci.image.manifest.v1+json");
	CHECK(berth_digest_eq(&m.digest, &d));
	berth_registry_manifest_clear(&m);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", d.s, 0, &m), BERTH_OK);
	CHECK_EQ_INT(m.len, strlen(body));
	CHECK(m.content == NULL);
	berth_registry_manifest_clear(&m);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "nope", 1, &m), BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "none", "v1", 1, &m), BERTH_ENAME_UNKNOWN);
	/* A reference that is neither a tag nor a digest names nothing: unknown, not invalid
	 * (the conformance suite GETs ".INVALID_MANIFEST_NAME" and wants 404). Only a put
	 * refuses it. */
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "sha256:zz", 1, &m),
		     BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", ".INVALID_MANIFEST_NAME", 1, &m),
		     BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", ".INVALID_MANIFEST_NAME", 0, &m),
		     BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", ".INVALID_MANIFEST_NAME"),
		     BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", "sha256:zz"), BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", ".INVALID_MANIFEST_NAME", NULL, body,
						 strlen(body), &d, &has_sub, &sub),
		     BERTH_ETAG_INVALID);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "img", "sha256:zz", NULL, body, strlen(body),
						 &d, &has_sub, &sub),
		     BERTH_EDIGEST_INVALID);
	CHECK_EQ_INT(berth_registry_ref_check("v1"), BERTH_OK);
	CHECK_EQ_INT(berth_registry_ref_check(d.s), BERTH_OK);
	CHECK_EQ_INT(berth_registry_ref_check(".INVALID_MANIFEST_NAME"), BERTH_ETAG_INVALID);
	CHECK_EQ_INT(berth_registry_ref_check("sha256:zz"), BERTH_EDIGEST_INVALID);

	CHECK_EQ_INT(berth_registry_tags(r, "img", NULL, -1, collect, &nm), BERTH_OK);
	CHECK_STR(nm.all, "v1,v2");
	memset(&nm, 0, sizeof nm);
	CHECK_EQ_INT(berth_registry_tags(r, "img", "v1", 10, collect, &nm), BERTH_OK);
	CHECK_STR(nm.all, "v2");
	CHECK_EQ_INT(berth_registry_tags(r, "nope", NULL, -1, collect, &nm), BERTH_ENAME_UNKNOWN);

	/* Delete by tag removes only the tag; by digest removes the manifest and its tags. */
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", "v1"), BERTH_OK);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "v1", 1, &m), BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "v2", 0, &m), BERTH_OK);
	berth_registry_manifest_clear(&m);
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", d.s), BERTH_OK);
	CHECK_EQ_INT(berth_registry_manifest_get(r, "img", "v2", 0, &m), BERTH_EMANIFEST_UNKNOWN);
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", d.s), BERTH_EMANIFEST_UNKNOWN);
	berth_registry_free(r);

	r = open_reg(0);
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "img", "v2"), BERTH_EUNSUPPORTED);
	CHECK_EQ_INT(berth_registry_blob_delete(r, "img", &cfg), BERTH_EUNSUPPORTED);
	berth_registry_free(r);
}

static void test_manifest_limits(void)
{
	struct berth_registry *r = open_reg(1);
	struct berth_digest d, sub;
	int has_sub;
	char *big = malloc((4 << 20) + 2);
	memset(big, ' ', (4 << 20) + 1);
	big[(4 << 20) + 1] = '\0';
	CHECK_EQ_INT(berth_registry_manifest_put(r, "lim", "t", NULL, big, (4 << 20) + 1, &d,
						 &has_sub, &sub),
		     BERTH_ETOO_LARGE);
	free(big);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "lim", "t", NULL, "{", 1, &d, &has_sub, &sub),
		     BERTH_EMANIFEST_INVALID);
	/* By digest: the digest must be the bytes'. */
	const char *idx = "{\"schemaVersion\":2,\"mediaType\":"
			  "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
	struct berth_digest other = dig("x");
	CHECK_EQ_INT(berth_registry_manifest_put(r, "lim", other.s, NULL, idx, strlen(idx), &d,
						 &has_sub, &sub),
		     BERTH_EDIGEST_INVALID);
	struct berth_digest right = dig(idx);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "lim", right.s, NULL, idx, strlen(idx), &d,
						 &has_sub, &sub),
		     BERTH_OK);
	berth_registry_free(r);
}

static int count_uploads(void)
{
	char p[512];
	int n = 0;
	struct dirent *de;
	snprintf(p, sizeof p, "%s/uploads", root);
	DIR *dir = opendir(p);
	if (!dir) return -1;
	while ((de = readdir(dir))) n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void test_janitor(void)
{
	struct berth_registry *r = open_reg(1);
	char id[BERTH_UPLOAD_ID_LEN + 1], id2[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL;
	int before = count_uploads();
	CHECK_EQ_INT(berth_registry_upload_start(r, "j", id), BERTH_OK);
	/* A single-request push interrupted before its end leaves an orphan staging file. */
	CHECK_EQ_INT(berth_registry_upload_anonymous(r, "j", BERTH_DIGEST_SHA256, id2, &w),
		     BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(count_uploads(), before + 2);
	berth_registry_free(r);
	r = open_reg(1);
	berth_registry_janitor(r, 1);
	/* The orphan goes; the live session stays. */
	CHECK_EQ_INT(count_uploads(), before + 1);
	int64_t size;
	CHECK_EQ_INT(berth_registry_upload_status(r, "j", id, &size), BERTH_OK);
	berth_registry_free(r);
}

/* Puts an empty index (distinct per label) under tag; returns its digest. */
static struct berth_digest put_index(struct berth_registry *r, const char *repo, const char *tag,
				     const char *label, berth_err *err)
{
	char body[256];
	struct berth_digest d, sub;
	int has_sub;
	memset(&d, 0, sizeof d);
	snprintf(body, sizeof body,
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		 "\"manifests\":[],\"annotations\":{\"v\":\"%s\"}}",
		 label);
	*err = berth_registry_manifest_put(r, repo, tag, NULL, body, strlen(body), &d, &has_sub,
					   &sub);
	return d;
}

/* The digest a tag resolves to, or "" when it doesn't. */
static const char *tag_digest(struct berth_registry *r, const char *repo, const char *tag)
{
	static char out[BERTH_DIGEST_MAX + 1];
	struct berth_registry_manifest m;
	out[0] = '\0';
	if (berth_registry_manifest_get(r, repo, tag, 0, &m) == BERTH_OK)
		snprintf(out, sizeof out, "%s", m.digest.s);
	berth_registry_manifest_clear(&m);
	return out;
}

static void test_semver_floats(void)
{
	struct berth_registry *r = open_reg_opts(1, 1);
	berth_err e;
	struct berth_digest v120 = put_index(r, "team/app", "1.2.0", "1.2.0", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "1.2"), v120.s);
	CHECK_STR(tag_digest(r, "team/app", "1"), v120.s);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v120.s);
	/* A hotfix to an older line moves only that line's float. */
	struct berth_digest v119 = put_index(r, "team/app", "1.1.9", "1.1.9", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "1.1"), v119.s);
	CHECK_STR(tag_digest(r, "team/app", "1"), v120.s);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v120.s);
	/* Pre-releases never move floats. */
	put_index(r, "team/app", "1.2.1-rc.1", "rc", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "1.2"), v120.s);
	struct berth_digest v200 = put_index(r, "team/app", "2.0.0", "2.0.0", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "2"), v200.s);
	CHECK_STR(tag_digest(r, "team/app", "2.0"), v200.s);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v200.s);
	CHECK_STR(tag_digest(r, "team/app", "1"), v120.s);
	/* Exact versions are immutable; the same content again is fine, floats stay mutable. */
	put_index(r, "team/app", "1.2.0", "other", &e);
	CHECK_EQ_INT(e, BERTH_ETAG_IMMUTABLE);
	put_index(r, "team/app", "1.2.0", "1.2.0", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	put_index(r, "team/app", "1.2", "manual", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	/* Deleting a version re-points its floats to the next highest. */
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "team/app", "2.0.0"), BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v120.s);
	CHECK_STR(tag_digest(r, "team/app", "2"), "");
	CHECK_STR(tag_digest(r, "team/app", "2.0"), "");
	CHECK_EQ_INT(berth_registry_manifest_delete(r, "team/app", v120.s), BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "1"), v119.s);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v119.s);
	CHECK_STR(tag_digest(r, "team/app", "1.2"), "");
	/* A 'v' prefix carries over to the floats; other repositories have no floats. */
	struct berth_digest v3 = put_index(r, "team/app", "v3.0.0", "v3", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "team/app", "v3"), v3.s);
	CHECK_STR(tag_digest(r, "team/app", "v3.0"), v3.s);
	CHECK_STR(tag_digest(r, "team/app", "latest"), v3.s);
	put_index(r, "other/app", "1.0.0", "x", &e);
	CHECK_EQ_INT(e, BERTH_OK);
	CHECK_STR(tag_digest(r, "other/app", "1"), "");
	berth_registry_free(r);
}

/* Pushes an image with the given config text, layer contents and (annotations: the JSON
 * members, or NULL) manifest annotations; *err gets the manifest put's result. */
static struct berth_digest push_image_ex(struct berth_registry *r, const char *repo,
					 const char *tag, const char *config,
					 const char *const *layers, size_t n,
					 const char *annotations, berth_err *err)
{
	char body[4096];
	size_t off = 0;
	struct berth_digest cfg = dig(config), d, sub;
	int has_sub;
	memset(&d, 0, sizeof d);
	*err = BERTH_EINTERNAL;
	if (push(r, repo, config, &cfg)) return d;
	off += (size_t)snprintf(body + off, sizeof body - off,
				"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
				"manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci."
				"image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
				cfg.s, strlen(config));
	for (size_t i = 0; i < n; i++) {
		struct berth_digest l = dig(layers[i]);
		if (push(r, repo, layers[i], &l)) return d;
		off += (size_t)snprintf(body + off, sizeof body - off,
					"%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
					"\"digest\":\"%s\",\"size\":%zu}",
					i ? "," : "", l.s, strlen(layers[i]));
	}
	if (annotations)
		off += (size_t)snprintf(body + off, sizeof body - off, "],\"annotations\":{%s}}",
					annotations);
	else
		snprintf(body + off, sizeof body - off, "]}");
	*err = berth_registry_manifest_put(r, repo, tag, NULL, body, strlen(body), &d, &has_sub,
					   &sub);
	if (*err) memset(&d, 0, sizeof d);
	return d;
}

/* Pushes an image with the given config text and layer contents; returns its digest. */
static struct berth_digest push_image(struct berth_registry *r, const char *repo, const char *tag,
				      const char *config, const char *const *layers, size_t n)
{
	berth_err e;
	return push_image_ex(r, repo, tag, config, layers, n, NULL, &e);
}

struct img_list {
	char all[2048];
	int n;
};

static int list_image(void *ctx, const struct berth_meta_image *img)
{
	struct img_list *l = ctx;
	size_t len = strlen(l->all);
	snprintf(l->all + len, sizeof l->all - len, "%s%s@%.19s", l->n ? "," : "", img->repo,
		 img->digest);
	l->n++;
	return 0;
}

struct out_list {
	char all[2048];
	int n;
};

static int list_outdated(void *ctx, const struct berth_outdated *o)
{
	struct out_list *l = ctx;
	size_t len = strlen(l->all);
	snprintf(l->all + len, sizeof l->all - len, "%s%s on %s:%s (newest %s)", l->n ? "," : "",
		 o->image->repo, o->base_repo, o->base_tag, o->newest_tag);
	l->n++;
	return 0;
}

static void test_lineage_and_labels(void)
{
	struct berth_registry *r = open_reg_opts(1, 1);
	const char *base1[] = {"L-os", "L-certs-1"};
	const char *base2[] = {"L-os", "L-certs-2"};
	const char *app[] = {"L-os", "L-certs-1", "L-app"};
	const char *app2[] = {"L-os", "L-certs-2", "L-app2"};
	const char *other[] = {"L-unrelated"};
	struct berth_digest b1 = push_image(r, "golden/base", "1.0.0",
					    "{\"os\":\"linux\",\"architecture\":\"amd64\"}", base1, 2);
	struct berth_digest b2 = push_image(r, "golden/base", "1.1.0",
					    "{\"os\":\"linux\",\"architecture\":\"arm64\"}", base2, 2);
	struct berth_digest a = push_image(
		r, "team/app", "2.0.0",
		"{\"os\":\"linux\",\"config\":{\"Labels\":{\"com.example.team\":\"payments\"}}}",
		app, 3);
	struct berth_digest a2 = push_image(r, "team/app2", "1.0.0",
					    "{\"config\":{\"Labels\":{\"com.example.team\":\"web\"}}}",
					    app2, 3);
	push_image(r, "team/other", "1.0.0", "{}", other, 1);
	CHECK(b1.len && b2.len && a.len && a2.len);

	struct img_list l = {0};
	CHECK_EQ_INT(berth_registry_derived(r, "golden/base", "1.0.0", list_image, &l), BERTH_OK);
	CHECK_EQ_INT(l.n, 1);
	CHECK(strstr(l.all, "team/app@") != NULL);
	memset(&l, 0, sizeof l);
	CHECK_EQ_INT(berth_registry_derived(r, "golden/base", "1", list_image, &l), BERTH_OK);
	CHECK(strstr(l.all, "team/app2@") != NULL); /* "1" floats to 1.1.0 */

	memset(&l, 0, sizeof l);
	CHECK_EQ_INT(berth_registry_bases(r, "team/app", "2.0.0", list_image, &l), BERTH_OK);
	CHECK_EQ_INT(l.n, 1);
	CHECK(strstr(l.all, "golden/base@") != NULL);
	CHECK(strstr(l.all, b1.s + 0) == NULL || 1);

	memset(&l, 0, sizeof l);
	CHECK_EQ_INT(berth_registry_by_label(r, "com.example.team", "payments", list_image, &l),
		     BERTH_OK);
	CHECK_EQ_INT(l.n, 1);
	CHECK(strstr(l.all, "team/app@") != NULL);

	struct out_list o = {0};
	CHECK_EQ_INT(berth_registry_outdated(r, NULL, list_outdated, &o), BERTH_OK);
	CHECK_EQ_INT(o.n, 1);
	CHECK_STR(o.all, "team/app on golden/base:1.0.0 (newest 1.1.0)");

	/* The index can be rebuilt from stored manifests. */
	size_t count = 0;
	CHECK_EQ_INT(berth_registry_reindex(r, &count), BERTH_OK);
	CHECK_EQ_INT(count, 5);
	memset(&o, 0, sizeof o);
	CHECK_EQ_INT(berth_registry_outdated(r, "golden/*", list_outdated, &o), BERTH_OK);
	CHECK_EQ_INT(o.n, 1);
	berth_registry_free(r);
}

static const char *const require_repos[] = {"apps/*", "golden/**"};

/* golden.require: pushes to the apps repositories must be built on a golden image. */
static void test_golden_require(void)
{
	struct berth_store *st = NULL;
	struct berth_meta *m = NULL;
	struct berth_registry *r = NULL;
	char db[512], ann[512], body[1024];
	const char *base[] = {"G-os", "G-runtime"};
	const char *app[] = {"G-os", "G-runtime", "G-app"};
	const char *same[] = {"G-os", "G-runtime"};
	const char *rogue[] = {"G-os", "R-runtime", "R-app"};
	const char *cfg = "{\"os\":\"linux\",\"architecture\":\"amd64\"}";
	struct berth_registry_opts o = {.manifest_max = 4 << 20,
					.upload_expiry = 3600,
					.golden_repos = golden_repos,
					.n_golden_repos = 1,
					.golden_require = require_repos,
					.n_golden_require = 2};
	struct berth_digest b, d, sub;
	int has_sub;
	berth_err e;

	snprintf(db, sizeof db, "%s/meta.db", root);
	if (berth_store_fs_open(root, &st) || berth_meta_sqlite_open(db, 0, &m) ||
	    berth_registry_new(st, m, &o, &r)) {
		fprintf(stderr, "cannot open registry in %s\n", root);
		exit(2);
	}
	/* Golden repositories themselves are exempt, even when a require pattern matches. */
	b = push_image_ex(r, "golden/runtime", "1.0.0", cfg, base, 2, NULL, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	/* Built on it: accepted; the very same layers (a re-tag): accepted. */
	push_image_ex(r, "apps/api", "1.0.0", cfg, app, 3, NULL, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	push_image_ex(r, "apps/same", "1.0.0", cfg, same, 2, NULL, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	/* Shares only the first layer: refused, and nothing is stored. */
	push_image_ex(r, "apps/rogue", "1.0.0", cfg, rogue, 3, NULL, &e);
	CHECK_EQ_INT(e, BERTH_EDENIED);
	struct berth_registry_manifest mf;
	CHECK(berth_registry_manifest_get(r, "apps/rogue", "1.0.0", 0, &mf) != BERTH_OK);
	/* The same image in a repository without the rule: accepted. */
	push_image_ex(r, "scratch/rogue", "1.0.0", cfg, rogue, 3, NULL, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	/* The base-digest annotation naming a golden image counts (squashed builds). */
	snprintf(ann, sizeof ann, "\"org.opencontainers.image.base.digest\":\"%s\"", b.s);
	push_image_ex(r, "apps/squashed", "1.0.0", cfg, rogue, 3, ann, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	/* ... but not when it names an image outside the golden repositories. */
	struct berth_digest sr = push_image_ex(r, "scratch/base", "1.0.0", cfg, rogue, 2, NULL, &e);
	snprintf(ann, sizeof ann, "\"org.opencontainers.image.base.digest\":\"%s\"", sr.s);
	push_image_ex(r, "apps/squashed2", "1.0.0", cfg, rogue, 3, ann, &e);
	CHECK_EQ_INT(e, BERTH_EDENIED);
	/* Artifacts (config type not an image config) are not held to the rule. */
	struct berth_digest ac = dig("{}"), al = dig("sbom");
	CHECK_EQ_INT(push(r, "apps/api", "{}", &ac), BERTH_OK);
	CHECK_EQ_INT(push(r, "apps/api", "sbom", &al), BERTH_OK);
	snprintf(body, sizeof body,
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.example.sbom\",\"digest\":\"%s\","
		 "\"size\":2},\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":\"%s\","
		 "\"size\":4}]}",
		 ac.s, al.s);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "apps/api", "sbom", NULL, body, strlen(body), &d,
						 &has_sub, &sub),
		     BERTH_OK);
	/* An index: every platform image must be built on golden. */
	struct berth_digest good = push_image_ex(r, "apps/multi", "amd64", cfg, app, 3, NULL, &e);
	CHECK_EQ_INT(e, BERTH_OK);
	snprintf(body, sizeof body,
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		 "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"digest\":\"%s\",\"size\":1}]}",
		 good.s);
	CHECK_EQ_INT(berth_registry_manifest_put(r, "apps/multi", "1.0.0", NULL, body, strlen(body),
						 &d, &has_sub, &sub),
		     BERTH_OK);
	berth_registry_free(r);
}

static void test_gc_retention_and_sweep(void)
{
	struct berth_registry *r = open_reg_opts(1, 1);
	const char *l0[] = {"gc-base", "gc-0"}, *l1[] = {"gc-base", "gc-1"}, *l2[] = {"gc-base", "gc-2"};
	struct berth_digest v0 = push_image(r, "team/gc", "1.2.0", "{\"n\":0}", l0, 2);
	struct berth_digest v1 = push_image(r, "team/gc", "1.2.1", "{\"n\":1}", l1, 2);
	struct berth_digest v2 = push_image(r, "team/gc", "1.2.2", "{\"n\":2}", l2, 2);
	struct berth_digest gone = dig("gc-0"), kept = dig("gc-2"), shared = dig("gc-base");
	/* An abandoned push: a blob no manifest references. */
	struct berth_digest stray = dig("stray bytes");
	CHECK_EQ_INT(push(r, "team/gc", "stray bytes", &stray), BERTH_OK);
	CHECK(v0.len && v1.len && v2.len);
	struct berth_gc_opts o = {.keep_patch = 1, .grace = 0, .dry_run = 1};
	struct berth_gc_stats st;
	int64_t size;
	CHECK_EQ_INT(berth_registry_gc(r, &o, &st), BERTH_OK);
	CHECK_EQ_INT(st.versions_removed, 2);
	CHECK_STR(tag_digest(r, "team/gc", "1.2.0"), v0.s); /* a dry run changes nothing */
	o.dry_run = 0;
	CHECK_EQ_INT(berth_registry_gc(r, &o, &st), BERTH_OK);
	CHECK_EQ_INT(st.versions_removed, 2);
	CHECK_EQ_INT(st.manifests_removed, 2);
	CHECK(st.links_removed >= 5); /* two configs, two layers, the stray blob */
	CHECK(st.blobs_removed >= 5);
	CHECK_STR(tag_digest(r, "team/gc", "1.2.0"), "");
	CHECK_STR(tag_digest(r, "team/gc", "1.2.1"), "");
	CHECK_STR(tag_digest(r, "team/gc", "1.2"), v2.s);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "team/gc", &gone, &size), BERTH_EBLOB_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "team/gc", &stray, &size), BERTH_EBLOB_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "team/gc", &kept, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "team/gc", &shared, &size), BERTH_OK);
	int fd = -1;
	CHECK_EQ_INT(berth_registry_blob_open(r, "team/gc", &kept, &fd, &size), BERTH_OK);
	if (fd >= 0) close(fd);
	/* The file itself is gone, not only the link. */
	char path[512];
	struct stat sb;
	snprintf(path, sizeof path, "%s/blobs/sha256/%.2s/%s", root, berth_digest_hex(&gone),
		 berth_digest_hex(&gone));
	CHECK(stat(path, &sb) != 0);
	/* A second run finds nothing more. */
	CHECK_EQ_INT(berth_registry_gc(r, &o, &st), BERTH_OK);
	CHECK_EQ_INT(st.versions_removed + st.manifests_removed + st.blobs_removed, 0);
	berth_registry_free(r);
}

static void test_upload_session_limit(void)
{
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_registry *r;
	uploads_limit = 3;
	r = open_reg(1);
	uploads_limit = 0;
	for (int i = 0; i < 3; i++) CHECK_EQ_INT(berth_registry_upload_start(r, "lim/a", id), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "lim/a", id), BERTH_ETOOMANY);
	/* Per repository: another one is not affected; finishing a session frees a place. */
	CHECK_EQ_INT(berth_registry_upload_start(r, "lim/b", id), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "lim/b", id), BERTH_OK);
	struct berth_digest d = dig("x");
	CHECK_EQ_INT(berth_registry_upload_start(r, "lim/c", id), BERTH_OK);
	berth_registry_free(r);
	uploads_limit = 1;
	r = open_reg(1);
	uploads_limit = 0;
	CHECK_EQ_INT(push(r, "lim/c", "x", &d), BERTH_ETOOMANY); /* c still holds one */
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "lim/c", id), BERTH_OK);
	CHECK_EQ_INT(push(r, "lim/c", "x", &d), BERTH_OK);
	/* A finished upload frees its place too. */
	CHECK_EQ_INT(push(r, "lim/c", "x", &d), BERTH_OK);
	/* So does a digest mismatch, and an expired session. */
	struct berth_digest wrong = dig("y");
	CHECK_EQ_INT(push(r, "lim/c", "x", &wrong), BERTH_EDIGEST_INVALID);
	CHECK_EQ_INT(berth_registry_upload_start(r, "lim/c", id), BERTH_OK);
	berth_registry_free(r);
	uploads_limit = 1;
	upload_expiry = -10; /* everything is expired */
	r = open_reg(1);
	uploads_limit = 0;
	upload_expiry = 3600;
	CHECK_EQ_INT(push(r, "lim/c", "x", &d), BERTH_ETOOMANY);
	berth_registry_janitor(r, 0);
	CHECK_EQ_INT(push(r, "lim/c", "x", &d), BERTH_OK);
	berth_registry_free(r);
}

/* Rows of the uploads table for id (NULL: all), read with a connection of our own. */
static int upload_rows(const char *id)
{
	char db[512];
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int n = -1;
	snprintf(db, sizeof db, "%s/meta.db", root);
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, id ? "SELECT count(*) FROM uploads WHERE id=?1"
				     : "SELECT count(*) FROM uploads",
			       -1, &s, NULL) == SQLITE_OK) {
		if (id) sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int(s, 0);
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return n;
}

/* A new session's record is deferred: a session that ends at once (published, cancelled)
 * is never written; one that lives on is written by the committer within ~200 ms, before
 * a chunk is acknowledged (upload_keep), and when the registry closes. Meanwhile it behaves
 * like any other: status, repository check, limit. */
static void test_deferred_session_records(void)
{
	char a[BERTH_UPLOAD_ID_LEN + 1], b[BERTH_UPLOAD_ID_LEN + 1], c[BERTH_UPLOAD_ID_LEN + 1];
	char x[BERTH_UPLOAD_ID_LEN + 1]; /* for starts that must fail */
	struct berth_upload_writer *w = NULL;
	struct berth_digest d = dig("deferred");
	int64_t size = -1;
	struct berth_registry *r;
	uploads_limit = 2;
	r = open_reg(1);
	uploads_limit = 0;
	int before = upload_rows(NULL);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", a), BERTH_OK);
	CHECK_EQ_INT(upload_rows(a), 0);
	CHECK_EQ_INT(berth_registry_upload_status(r, "def/a", a, &size), BERTH_OK);
	CHECK_EQ_INT(size, 0);
	CHECK_EQ_INT(berth_registry_upload_status(r, "def/b", a, &size), BERTH_EUPLOAD_UNKNOWN);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", x), BERTH_ETOOMANY);
	/* Ended while deferred: published (a) and cancelled (b), never written, places freed. */
	CHECK_EQ_INT(berth_registry_upload_writer(r, "def/a", a, 0, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "deferred", 8), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_finish(r, "def/a", a, &d, NULL), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_status(r, "def/a", b, &size), BERTH_EUPLOAD_UNKNOWN);
	CHECK_EQ_INT(upload_rows(NULL), before);
	/* Kept before a chunk's 202. */
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", a), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_keep(r, a), BERTH_OK);
	CHECK_EQ_INT(upload_rows(a), 1);
	/* Saved by the committer while nothing else happens. */
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", x), BERTH_ETOOMANY);
	CHECK_EQ_INT(upload_rows(b), 0);
	for (int i = 0; i < 100 && upload_rows(b) == 0; i++) usleep(10000);
	CHECK_EQ_INT(upload_rows(b), 1);
	/* A written session ends like before: its row goes. */
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(upload_rows(b), 0);
	/* Closing writes what is deferred: the session is there after a restart. */
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/c", c), BERTH_OK);
	berth_registry_free(r);
	CHECK_EQ_INT(upload_rows(c), 1);
	uploads_limit = 2;
	r = open_reg(1);
	uploads_limit = 0;
	CHECK_EQ_INT(berth_registry_upload_status(r, "def/c", c, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "def/a", x), BERTH_ETOOMANY); /* a + b */
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "def/a", a), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "def/a", b), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "def/c", c), BERTH_OK);
	berth_registry_free(r);
	CHECK_EQ_INT(upload_rows(NULL), before);
}

/* A metadata database of schema version 1 (sessions in a rowid table with an index on id
 * and one on repo) opens with its sessions intact: resumable, and counted for the limit. */
static void test_sessions_migrate_from_v1(void)
{
	static const char id[] = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
	char saved[sizeof root], path[600];
	struct berth_registry *r;
	struct berth_upload_writer *w = NULL;
	struct berth_digest d = dig("abc");
	char id2[BERTH_UPLOAD_ID_LEN + 1];
	sqlite3 *db = NULL;
	int64_t size = -1;
	int fd;
	memcpy(saved, root, sizeof root);
	snprintf(root, sizeof root, "/tmp/berth-unit-v1-XXXXXX");
	CHECK(mkdtemp(root) != NULL);
	snprintf(path, sizeof path, "%s/meta.db", root);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  "PRAGMA journal_mode=WAL;"
				  "CREATE TABLE uploads(id TEXT PRIMARY KEY, repo TEXT NOT NULL,"
				  " created INTEGER NOT NULL);"
				  "CREATE INDEX uploads_repo ON uploads(repo);"
				  "INSERT INTO uploads VALUES('0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9',"
				  " 'mig/a', strftime('%s'));"
				  "PRAGMA user_version=1;",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	snprintf(path, sizeof path, "%s/uploads", root);
	CHECK_EQ_INT(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/uploads/%s", root, id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0 && write(fd, "ab", 2) == 2);
	if (fd >= 0) close(fd);

	uploads_limit = 1;
	r = open_reg(1);
	uploads_limit = 0;
	CHECK_EQ_INT(berth_registry_upload_status(r, "mig/a", id, &size), BERTH_OK);
	CHECK_EQ_INT(size, 2);
	CHECK_EQ_INT(berth_registry_upload_start(r, "mig/a", id2), BERTH_ETOOMANY);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "mig/a", id, 2, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "c", 1), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_finish(r, "mig/a", id, &d, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "mig/a", &d, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_start(r, "mig/a", id2), BERTH_OK);
	berth_registry_free(r);
	/* Opening again (now version 2) changes nothing. */
	r = open_reg(1);
	CHECK_EQ_INT(berth_registry_upload_status(r, "mig/a", id2, &size), BERTH_OK);
	berth_registry_free(r);
	/* The old layout is gone (a rowid table with two indexes costs three page writes per
	 * session start and end). */
	snprintf(path, sizeof path, "%s/meta.db", root);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	CHECK_EQ_INT(sqlite3_prepare_v2(db,
					"SELECT (SELECT count(*) FROM sqlite_master WHERE tbl_name='uploads'"
					" AND type='index'), (SELECT sql LIKE '%WITHOUT ROWID' FROM"
					" sqlite_master WHERE name='uploads'), count(*) FROM uploads",
					-1, &q, NULL),
		     SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(q, 0), 0); /* the key is the table itself */
	CHECK_EQ_INT(sqlite3_column_int(q, 1), 1);
	CHECK_EQ_INT(sqlite3_column_int(q, 2), 1); /* id2 */
	sqlite3_finalize(q);
	sqlite3_close(db);
	memcpy(root, saved, sizeof root);
}

/* A session belongs to the repository it was started in, whether or not the registry has
 * it in memory (just started, being written, or only on disk after a restart). */
static void test_session_stays_in_its_repository(void)
{
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL;
	struct berth_digest d = dig("abc");
	struct berth_registry *r = open_reg(1);
	int64_t size = -1;
	for (int round = 0; round < 3; round++) {
		if (round == 0) CHECK_EQ_INT(berth_registry_upload_start(r, "own/a", id), BERTH_OK);
		if (round == 1) {
			CHECK_EQ_INT(berth_registry_upload_writer(r, "own/a", id, 0, 0, &w), BERTH_OK);
			CHECK_EQ_INT(berth_upload_writer_write(w, "ab", 2), BERTH_OK);
			berth_upload_writer_close(w);
		}
		if (round == 2) {
			berth_registry_free(r);
			r = open_reg(1);
		}
		CHECK_EQ_INT(berth_registry_upload_writer(r, "own/b", id, -1, 0, &w),
			     BERTH_EUPLOAD_UNKNOWN);
		CHECK_EQ_INT(berth_registry_upload_status(r, "own/b", id, &size),
			     BERTH_EUPLOAD_UNKNOWN);
		CHECK_EQ_INT(berth_registry_upload_finish(r, "own/b", id, &d, NULL),
			     BERTH_EUPLOAD_UNKNOWN);
		CHECK_EQ_INT(berth_registry_upload_cancel(r, "own/b", id), BERTH_EUPLOAD_UNKNOWN);
	}
	/* Still whole in its own repository. */
	CHECK_EQ_INT(berth_registry_upload_status(r, "own/a", id, &size), BERTH_OK);
	CHECK_EQ_INT(size, 2);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "own/a", id, 2, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "c", 1), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_finish(r, "own/a", id, &d, &size), BERTH_OK);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "own/b", &d, &size), BERTH_EBLOB_UNKNOWN);
	CHECK_EQ_INT(berth_registry_blob_stat(r, "own/a", &d, &size), BERTH_OK);
	/* A finished session is gone, in memory too. */
	CHECK_EQ_INT(berth_registry_upload_status(r, "own/a", id, &size), BERTH_EUPLOAD_UNKNOWN);
	berth_registry_free(r);
}

/* A session cancelled (or expired) while a request is writing to it: the writer finishes
 * harmlessly, and the session is gone. */
static void test_cancel_while_writing(void)
{
	char id[BERTH_UPLOAD_ID_LEN + 1];
	struct berth_upload_writer *w = NULL;
	struct berth_registry *r = open_reg(1);
	int64_t size;
	CHECK_EQ_INT(berth_registry_upload_start(r, "cw", id), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_writer(r, "cw", id, 0, 0, &w), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "abc", 3), BERTH_OK);
	CHECK_EQ_INT(berth_registry_upload_cancel(r, "cw", id), BERTH_OK);
	CHECK_EQ_INT(berth_upload_writer_write(w, "def", 3), BERTH_OK);
	berth_upload_writer_close(w);
	CHECK_EQ_INT(berth_registry_upload_status(r, "cw", id, &size), BERTH_EUPLOAD_UNKNOWN);
	berth_registry_free(r);
}

int main(void)
{
	snprintf(root, sizeof root, "/tmp/berth-unit-XXXXXX");
	if (!mkdtemp(root)) return 2;
	T_RUN(test_upload_roundtrip);
	T_RUN(test_session_stays_in_its_repository);
	T_RUN(test_sessions_migrate_from_v1);
	T_RUN(test_cancel_while_writing);
	T_RUN(test_digest_mismatch_keeps_nothing);
	T_RUN(test_chunks_offsets_and_restart);
	T_RUN(test_sha512_upload);
	T_RUN(test_manifests_and_tags);
	T_RUN(test_manifest_limits);
	T_RUN(test_janitor);
	T_RUN(test_semver_floats);
	T_RUN(test_lineage_and_labels);
	T_RUN(test_gc_retention_and_sweep);
	T_RUN(test_upload_session_limit);
	T_RUN(test_deferred_session_records);
	T_RUN(test_golden_require);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
	return T_DONE("unit-registry");
}

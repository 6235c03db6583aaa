/* layout.c — OCI image layout reader/writer (image-spec image-layout.md). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"

#define INDEX_MAX (16u * 1024u * 1024u)

struct berth_layout {
	char dir[PATH_MAX];
	char why[512];
};

static berth_cerr lfail(struct berth_layout *l, berth_cerr code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static berth_cerr lfail(struct berth_layout *l, berth_cerr code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->why, sizeof l->why, fmt, ap);
	va_end(ap);
	return code;
}

const char *berth_layout_error(const struct berth_layout *l)
{
	return l->why;
}

void berth_layout_free(struct berth_layout *l)
{
	free(l);
}

static int lpath(const struct berth_layout *l, char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", l->dir, rel);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int blob_path(const struct berth_layout *l, const struct berth_digest *d, char *buf,
		     size_t len)
{
	int n = snprintf(buf, len, "%s/blobs/%s/%s", l->dir, berth_digest_alg_name(d->alg),
			 berth_digest_hex(d));

	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Atomically replaces path with buf: temp in the same directory, fsync, rename. */
static int atomic_write(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX + 16];
	int fd, n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);

	if (n < 0 || (size_t)n >= sizeof tmp) return -1;
	fd = mkstemp(tmp);
	if (fd < 0) return -1;
	if (fchmod(fd, 0644) < 0 || write_all(fd, buf, len) || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t len = 0;

	if (fd < 0) return -1;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

berth_cerr berth_layout_open(const char *dir, int create, struct berth_layout **out,
			     const char **why)
{
	struct berth_layout *l = calloc(1, sizeof *l);
	char p[PATH_MAX];
	struct stat st;
	int n;

	*out = NULL;
	if (!l) {
		*why = "out of memory";
		return BERTH_C_EFAIL;
	}
	n = snprintf(l->dir, sizeof l->dir, "%s", dir);
	if (n <= 0 || (size_t)n >= sizeof l->dir) {
		free(l);
		*why = "path too long";
		return BERTH_C_EUSAGE;
	}
	while (n > 1 && l->dir[n - 1] == '/') l->dir[--n] = '\0';
	if (lpath(l, p, sizeof p, "oci-layout")) goto toolong;
	if (stat(p, &st) < 0) {
		if (!create) {
			free(l);
			*why = errno == ENOENT ? "not an OCI image layout (no oci-layout file)"
					       : "cannot read the layout";
			return errno == ENOENT ? BERTH_C_EUSAGE : BERTH_C_EFAIL;
		}
		static const char oci_layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
		if (mkdir(l->dir, 0755) < 0 && errno != EEXIST) goto io;
		if (atomic_write(p, oci_layout, sizeof oci_layout - 1)) goto io;
	}
	if (lpath(l, p, sizeof p, "blobs") || (create && mkdir(p, 0755) < 0 && errno != EEXIST))
		goto io;
	if (create) {
		if (lpath(l, p, sizeof p, "blobs/sha256") || (mkdir(p, 0755) < 0 && errno != EEXIST))
			goto io;
		if (lpath(l, p, sizeof p, "index.json")) goto toolong;
		if (stat(p, &st) < 0) {
			static const char empty[] = "{\"schemaVersion\":2,\"manifests\":[]}";

			if (atomic_write(p, empty, sizeof empty - 1)) goto io;
		}
	}
	*out = l;
	return BERTH_C_OK;
toolong:
	free(l);
	*why = "path too long";
	return BERTH_C_EUSAGE;
io:
	free(l);
	*why = "cannot create the layout directory";
	return BERTH_C_EFAIL;
}

static json_t *load_index(struct berth_layout *l, berth_cerr *rc)
{
	char p[PATH_MAX], *buf = NULL;
	size_t len = 0;
	json_t *doc;

	if (lpath(l, p, sizeof p, "index.json") || read_file(p, INDEX_MAX, &buf, &len)) {
		*rc = lfail(l, BERTH_C_EFAIL, "cannot read %s/index.json: %s", l->dir, strerror(errno));
		return NULL;
	}
	doc = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "manifests"))) {
		json_decref(doc);
		*rc = lfail(l, BERTH_C_EDIGEST, "%s/index.json is not an OCI image index", l->dir);
		return NULL;
	}
	return doc;
}

static const char *entry_name(json_t *e)
{
	json_t *a = json_object_get(e, "annotations");
	json_t *n = json_is_object(a) ? json_object_get(a, BERTH_REF_NAME_ANNOTATION) : NULL;

	return json_is_string(n) ? json_string_value(n) : NULL;
}

static int str_field(json_t *o, const char *k, char *out, size_t len)
{
	json_t *v = json_object_get(o, k);

	out[0] = '\0';
	if (!v) return 0;
	if (!json_is_string(v) || json_string_length(v) >= len) return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static berth_cerr entry_desc(struct berth_layout *l, json_t *e, struct berth_desc *out)
{
	json_t *d = json_object_get(e, "digest"), *s = json_object_get(e, "size");
	json_t *p = json_object_get(e, "platform");

	memset(out, 0, sizeof *out);
	if (!json_is_string(d) ||
	    berth_digest_parse(json_string_value(d), json_string_length(d), &out->digest) ||
	    !json_is_integer(s) || json_integer_value(s) < 0 ||
	    str_field(e, "mediaType", out->media_type, sizeof out->media_type))
		return lfail(l, BERTH_C_EDIGEST, "%s/index.json: invalid descriptor", l->dir);
	out->size = json_integer_value(s);
	if (json_is_object(p)) {
		if (str_field(p, "os", out->os, sizeof out->os) ||
		    str_field(p, "architecture", out->arch, sizeof out->arch) ||
		    str_field(p, "variant", out->variant, sizeof out->variant))
			return lfail(l, BERTH_C_EDIGEST, "%s/index.json: invalid platform", l->dir);
	}
	return BERTH_C_OK;
}

berth_cerr berth_layout_resolve(struct berth_layout *l, const char *name, struct berth_desc *out)
{
	berth_cerr rc = BERTH_C_OK;
	json_t *doc = load_index(l, &rc), *ms, *e, *found = NULL;
	size_t i;

	if (!doc) return rc;
	ms = json_object_get(doc, "manifests");
	if (!name || !name[0]) {
		if (json_array_size(ms) != 1)
			rc = lfail(l, BERTH_C_EUSAGE, "%s holds %zu images: name one (DIR:NAME)", l->dir,
				   json_array_size(ms));
		else
			found = json_array_get(ms, 0);
	} else {
		json_array_foreach(ms, i, e) {
			const char *n = entry_name(e);

			if (n && strcmp(n, name) == 0) found = e;
		}
		if (!found) rc = lfail(l, BERTH_C_ENOTFOUND, "%s has no image named '%s'", l->dir, name);
	}
	if (found) rc = entry_desc(l, found, out);
	json_decref(doc);
	return rc;
}

berth_cerr berth_layout_read_blob(struct berth_layout *l, const struct berth_digest *d, size_t max,
				  char **buf, size_t *len)
{
	char p[PATH_MAX];
	struct berth_digest got;

	*buf = NULL;
	if (blob_path(l, d, p, sizeof p)) return lfail(l, BERTH_C_EFAIL, "path too long");
	if (read_file(p, max, buf, len))
		return lfail(l, errno == ENOENT ? BERTH_C_ENOTFOUND : BERTH_C_EFAIL,
			     "blob %s: %s", d->s, errno == ENOENT ? "missing from the layout" : strerror(errno));
	if (berth_digest_of(d->alg, *buf, *len, &got) || !berth_digest_eq(&got, d)) {
		free(*buf);
		*buf = NULL;
		return lfail(l, BERTH_C_EDIGEST, "blob %s in the layout does not match its digest", d->s);
	}
	return BERTH_C_OK;
}

berth_cerr berth_layout_open_blob(struct berth_layout *l, const struct berth_digest *d, int *fd,
				  int64_t *size)
{
	char p[PATH_MAX];
	struct stat st;

	if (blob_path(l, d, p, sizeof p)) return lfail(l, BERTH_C_EFAIL, "path too long");
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return lfail(l, errno == ENOENT ? BERTH_C_ENOTFOUND : BERTH_C_EFAIL, "blob %s: %s", d->s,
			     errno == ENOENT ? "missing from the layout" : strerror(errno));
	if (fstat(*fd, &st) < 0) {
		close(*fd);
		*fd = -1;
		return lfail(l, BERTH_C_EFAIL, "blob %s: %s", d->s, strerror(errno));
	}
	*size = st.st_size;
	return BERTH_C_OK;
}

int berth_layout_has_blob(struct berth_layout *l, const struct berth_digest *d, int64_t size)
{
	char p[PATH_MAX];
	struct stat st;

	if (blob_path(l, d, p, sizeof p) || stat(p, &st) < 0) return 0;
	return size < 0 || st.st_size == size;
}

berth_cerr berth_layout_blob_begin(struct berth_layout *l, struct berth_layout_tmp *t)
{
	int n = snprintf(t->path, sizeof t->path, "%s/blobs/.tmp-XXXXXX", l->dir);

	t->fd = -1;
	if (n < 0 || (size_t)n >= sizeof t->path) return lfail(l, BERTH_C_EFAIL, "path too long");
	t->fd = mkstemp(t->path);
	if (t->fd < 0) return lfail(l, BERTH_C_EFAIL, "cannot create a file in %s/blobs: %s", l->dir,
				    strerror(errno));
	if (fchmod(t->fd, 0644) < 0) { /* mkstemp's 0600 is safe too; readable is friendlier */ }
	return BERTH_C_OK;
}

void berth_layout_blob_abort(struct berth_layout_tmp *t)
{
	if (t->fd >= 0) close(t->fd);
	t->fd = -1;
	if (t->path[0]) unlink(t->path);
	t->path[0] = '\0';
}

berth_cerr berth_layout_blob_commit(struct berth_layout *l, struct berth_layout_tmp *t,
				    const struct berth_digest *want, const struct berth_digest *got)
{
	char p[PATH_MAX], dir[PATH_MAX];
	int n;

	if (!berth_digest_eq(want, got)) {
		berth_layout_blob_abort(t);
		return lfail(l, BERTH_C_EDIGEST, "blob %s: content does not match its digest (got %s)",
			     want->s, got->s);
	}
	n = snprintf(dir, sizeof dir, "%s/blobs/%s", l->dir, berth_digest_alg_name(want->alg));
	if (n < 0 || (size_t)n >= sizeof dir || blob_path(l, want, p, sizeof p)) {
		berth_layout_blob_abort(t);
		return lfail(l, BERTH_C_EFAIL, "path too long");
	}
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || fsync(t->fd) < 0 || close(t->fd) < 0) {
		t->fd = -1;
		berth_layout_blob_abort(t);
		return lfail(l, BERTH_C_EFAIL, "writing blob %s: %s", want->s, strerror(errno));
	}
	t->fd = -1;
	if (rename(t->path, p) < 0) {
		berth_layout_blob_abort(t);
		return lfail(l, BERTH_C_EFAIL, "writing blob %s: %s", want->s, strerror(errno));
	}
	t->path[0] = '\0';
	return BERTH_C_OK;
}

berth_cerr berth_layout_write_blob(struct berth_layout *l, const struct berth_digest *d,
				   const void *buf, size_t len)
{
	struct berth_layout_tmp t;
	struct berth_digest got;
	berth_cerr rc;

	if (berth_digest_of(d->alg, buf, len, &got)) return lfail(l, BERTH_C_EFAIL, "out of memory");
	if (!berth_digest_eq(&got, d))
		return lfail(l, BERTH_C_EDIGEST, "blob %s: content does not match its digest", d->s);
	if (berth_layout_has_blob(l, d, (int64_t)len)) return BERTH_C_OK;
	rc = berth_layout_blob_begin(l, &t);
	if (rc) return rc;
	if (write_all(t.fd, buf, len)) {
		berth_layout_blob_abort(&t);
		return lfail(l, BERTH_C_EFAIL, "writing blob %s: %s", d->s, strerror(errno));
	}
	return berth_layout_blob_commit(l, &t, d, &got);
}

berth_cerr berth_layout_set_ref(struct berth_layout *l, const struct berth_desc *desc,
				const char *name)
{
	berth_cerr rc = BERTH_C_OK;
	json_t *doc = load_index(l, &rc), *ms, *e = NULL, *old;
	char p[PATH_MAX], *text = NULL;
	size_t i;

	if (!doc) return rc;
	ms = json_object_get(doc, "manifests");
	for (i = json_array_size(ms); i-- > 0;) {
		const char *n;
		json_t *dg;

		old = json_array_get(ms, i);
		n = entry_name(old);
		dg = json_object_get(old, "digest");
		if ((name && name[0] && n && strcmp(n, name) == 0) ||
		    ((!name || !name[0]) && !n && json_is_string(dg) &&
		     strcmp(json_string_value(dg), desc->digest.s) == 0)) {
			if (json_array_remove(ms, i)) goto oom;
		}
	}
	e = json_pack("{s:s,s:s,s:I}", "mediaType", desc->media_type, "digest", desc->digest.s,
		      "size", (json_int_t)desc->size);
	if (!e) goto oom;
	if (desc->os[0] || desc->arch[0]) {
		json_t *pl = json_pack("{s:s,s:s}", "architecture", desc->arch, "os", desc->os);

		if (!pl) goto oom;
		if (desc->variant[0] && json_object_set_new(pl, "variant", json_string(desc->variant)))
			goto oom;
		if (json_object_set_new(e, "platform", pl)) goto oom;
	}
	if (name && name[0] &&
	    json_object_set_new(e, "annotations", json_pack("{s:s}", BERTH_REF_NAME_ANNOTATION, name)))
		goto oom;
	if (json_array_append(ms, e)) goto oom;
	if (!json_object_get(doc, "schemaVersion") &&
	    json_object_set_new(doc, "schemaVersion", json_integer(2)))
		goto oom;
	text = json_dumps(doc, JSON_COMPACT);
	if (!text) goto oom;
	if (lpath(l, p, sizeof p, "index.json") || atomic_write(p, text, strlen(text)))
		rc = lfail(l, BERTH_C_EFAIL, "cannot write %s/index.json: %s", l->dir, strerror(errno));
	goto out;
oom:
	rc = lfail(l, BERTH_C_EFAIL, "out of memory");
out:
	free(text);
	json_decref(e);
	json_decref(doc);
	return rc;
}

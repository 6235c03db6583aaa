/* creds.c — Docker's config.json "auths" map (docker/cli cli/config/configfile). Entries are
 * matched by host like Docker's ConvertToHostname: "https://host/v1/", "http://host" and
 * "host" all name host. The whole document is kept as a JSON tree so unknown keys survive a
 * rewrite. Secret strings inside the tree are wiped before the tree is freed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"

#define CONFIG_MAX (4u * 1024u * 1024u)
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"

struct berth_creds {
	char *path;
	json_t *doc;
};

void berth_secret_free(char *s)
{
	if (!s) return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ---- base64 (RFC 4648 §4) ------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t berth_base64_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = in;
	size_t o = 0, i;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return 0;
	if (outlen < (len + 2) / 3 * 4 + 1) return 0;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

int berth_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen,
			size_t *outn)
{
	unsigned acc = 0;
	int bits = 0;
	size_t o = 0, i, pad = 0;

	while (len && in[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if ((len + pad) % 4 == 1) return -1;
	if (pad && (len + pad) % 4 != 0) return -1;
	for (i = 0; i < len; i++) {
		int v = b64_val((unsigned char)in[i]);

		if (v < 0) return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen) return -1;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (bits && (acc & ((1u << bits) - 1))) return -1;
	*outn = o;
	return 0;
}

/* ---- paths and keys ------------------------------------------------------------------ */

berth_cerr berth_creds_default_path(char *buf, size_t len)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home;
	int n;

	if (dir && dir[0]) {
		n = snprintf(buf, len, "%s/config.json", dir);
	} else {
		home = getenv("HOME");
		if (!home || !home[0]) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home) return BERTH_C_EFAIL;
		n = snprintf(buf, len, "%s/.docker/config.json", home);
	}
	return n > 0 && (size_t)n < len ? BERTH_C_OK : BERTH_C_EFAIL;
}

static int is_hub(const char *host)
{
	return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
	       strcmp(host, "registry-1.docker.io") == 0;
}

void berth_creds_key(const char *registry, char *buf, size_t len)
{
	snprintf(buf, len, "%s", is_hub(registry) ? DOCKER_HUB_KEY : registry);
}

/* The host part of an auths key: scheme and path dropped. */
static void key_host(const char *key, char *buf, size_t len)
{
	size_t n;

	if (strncmp(key, "https://", 8) == 0) key += 8;
	else if (strncmp(key, "http://", 7) == 0) key += 7;
	n = strcspn(key, "/");
	if (n >= len) n = len - 1;
	memcpy(buf, key, n);
	buf[n] = '\0';
}

static int key_matches(const char *key, const char *registry)
{
	char h[512];

	key_host(key, h, sizeof h);
	if (is_hub(registry)) return is_hub(h);
	return strcmp(h, registry) == 0;
}

/* ---- load / save --------------------------------------------------------------------- */

static void wipe_entry(json_t *entry)
{
	static const char *const secret_keys[] = {"auth", "password", "identitytoken",
						  "registrytoken"};

	if (!json_is_object(entry)) return;
	for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
		json_t *v = json_object_get(entry, secret_keys[i]);

		/* jansson owns the string; it is heap memory we may scrub before it is freed. */
		if (json_is_string(v)) explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
}

static void wipe_doc(json_t *doc)
{
	json_t *auths = json_object_get(doc, "auths"), *v;
	const char *k;

	if (!json_is_object(auths)) return;
	json_object_foreach(auths, k, v) wipe_entry(v);
}

void berth_creds_free(struct berth_creds *cr)
{
	if (!cr) return;
	if (cr->doc) {
		wipe_doc(cr->doc);
		json_decref(cr->doc);
	}
	free(cr->path);
	free(cr);
}

const char *berth_creds_path(const struct berth_creds *cr)
{
	return cr->path;
}

berth_cerr berth_creds_load(const char *path, struct berth_creds **out, const char **why)
{
	char def[PATH_MAX];
	struct berth_creds *cr = NULL;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1;
	berth_cerr rc = BERTH_C_EFAIL;

	*out = NULL;
	if (!path) {
		if (berth_creds_default_path(def, sizeof def)) {
			*why = "cannot find the home directory for the credentials file";
			return BERTH_C_EFAIL;
		}
		path = def;
	}
	cr = calloc(1, sizeof *cr);
	if (!cr || !(cr->path = strdup(path))) goto oom;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			*why = "cannot read the credentials file";
			goto out;
		}
		cr->doc = json_object();
		if (!cr->doc) goto oom;
		goto ok;
	}
	buf = malloc(CONFIG_MAX);
	if (!buf) goto oom;
	for (;;) {
		ssize_t r = read(fd, buf + len, CONFIG_MAX - len);

		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			*why = "cannot read the credentials file";
			goto out;
		}
		if (r == 0) break;
		len += (size_t)r;
		if (len == CONFIG_MAX) {
			*why = "credentials file too large";
			goto out;
		}
	}
	if (len == 0) {
		cr->doc = json_object();
	} else {
		cr->doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(cr->doc)) {
			*why = "credentials file is not a JSON object";
			goto out;
		}
	}
	if (!cr->doc) goto oom;
ok:
	*out = cr;
	cr = NULL;
	rc = BERTH_C_OK;
	goto out;
oom:
	*why = "out of memory";
out:
	if (fd >= 0) close(fd);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	berth_creds_free(cr);
	return rc;
}

berth_cerr berth_creds_get(const struct berth_creds *cr, const char *registry, char **user,
			   char **pass)
{
	json_t *auths = json_object_get(cr->doc, "auths"), *v, *a;
	const char *k;
	char want[512];

	*user = *pass = NULL;
	if (!json_is_object(auths)) return BERTH_C_ENOTFOUND;
	berth_creds_key(registry, want, sizeof want);
	/* The exact key first, then any key naming the same host. */
	v = json_object_get(auths, want);
	if (!json_is_object(v)) {
		v = NULL;
		json_object_foreach(auths, k, a) {
			if (json_is_object(a) && key_matches(k, registry)) {
				v = a;
				break;
			}
		}
	}
	if (!v) return BERTH_C_ENOTFOUND;
	a = json_object_get(v, "auth");
	if (json_is_string(a) && json_string_length(a)) {
		size_t alen = json_string_length(a), n = 0;
		unsigned char *dec = malloc(alen + 1);
		char *colon;

		if (!dec) return BERTH_C_EFAIL;
		if (berth_base64_decode(json_string_value(a), alen, dec, alen, &n)) {
			explicit_bzero(dec, alen + 1);
			free(dec);
			return BERTH_C_EFAIL;
		}
		dec[n] = '\0';
		colon = memchr(dec, ':', n);
		if (!colon || memchr(dec, '\0', n)) {
			explicit_bzero(dec, alen + 1);
			free(dec);
			return BERTH_C_EFAIL;
		}
		*colon = '\0';
		*user = strdup((char *)dec);
		*pass = strdup(colon + 1);
		explicit_bzero(dec, alen + 1);
		free(dec);
	} else {
		json_t *u = json_object_get(v, "username"), *p = json_object_get(v, "password");

		if (!json_is_string(u) || !json_is_string(p)) return BERTH_C_ENOTFOUND;
		*user = strdup(json_string_value(u));
		*pass = strdup(json_string_value(p));
	}
	if (!*user || !*pass) {
		berth_secret_free(*user);
		berth_secret_free(*pass);
		*user = *pass = NULL;
		return BERTH_C_EFAIL;
	}
	return BERTH_C_OK;
}

berth_cerr berth_creds_set(struct berth_creds *cr, const char *registry, const char *user,
			   const char *pass)
{
	json_t *auths = json_object_get(cr->doc, "auths"), *entry = NULL, *old;
	char key[512], up[2 * 4096 + 2], enc[(sizeof up + 2) / 3 * 4 + 1];
	int ul;
	berth_cerr rc = BERTH_C_EFAIL;

	if (strchr(user, ':')) return BERTH_C_EUSAGE; /* user:pass could not be split again */
	if (strlen(user) > 4096 || strlen(pass) > 4096) return BERTH_C_EUSAGE;
	if (!json_is_object(auths)) {
		auths = json_object();
		if (!auths || json_object_set_new(cr->doc, "auths", auths)) return BERTH_C_EFAIL;
	}
	ul = snprintf(up, sizeof up, "%s:%s", user, pass);
	if (ul < 0 || (size_t)ul >= sizeof up) goto out;
	if (!berth_base64_encode(up, (size_t)ul, enc, sizeof enc)) goto out;
	entry = json_object();
	if (!entry || json_object_set_new(entry, "auth", json_string(enc))) goto out;
	berth_creds_key(registry, key, sizeof key);
	old = json_object_get(auths, key);
	if (old) wipe_entry(old);
	rc = json_object_set_new(auths, key, entry) ? BERTH_C_EFAIL : BERTH_C_OK;
	entry = NULL; /* set_new took it, even on failure */
out:
	if (entry) {
		wipe_entry(entry);
		json_decref(entry);
	}
	explicit_bzero(up, sizeof up);
	explicit_bzero(enc, sizeof enc);
	return rc;
}

int berth_creds_remove(struct berth_creds *cr, const char *registry)
{
	json_t *auths = json_object_get(cr->doc, "auths"), *v;
	const char *k;
	void *tmp;
	int removed = 0;

	if (!json_is_object(auths)) return 0;
	json_object_foreach_safe(auths, tmp, k, v) {
		if (key_matches(k, registry)) {
			wipe_entry(v);
			json_object_del(auths, k);
			removed = 1;
		}
	}
	return removed;
}

berth_cerr berth_creds_save(struct berth_creds *cr, const char **why)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16], *slash;
	char *text = NULL;
	size_t len, off = 0;
	int fd = -1, n, dfd;
	berth_cerr rc = BERTH_C_EFAIL;

	n = snprintf(dir, sizeof dir, "%s", cr->path);
	if (n < 0 || (size_t)n >= sizeof dir) {
		*why = "credentials path too long";
		return BERTH_C_EFAIL;
	}
	slash = strrchr(dir, '/');
	if (slash) *slash = '\0';
	else snprintf(dir, sizeof dir, ".");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*why = "cannot create the credentials directory";
		return BERTH_C_EFAIL;
	}
	n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", cr->path);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		*why = "credentials path too long";
		return BERTH_C_EFAIL;
	}
	text = json_dumps(cr->doc, JSON_INDENT(1));
	if (!text) {
		*why = "out of memory";
		return BERTH_C_EFAIL;
	}
	len = strlen(text);
	fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0) {
		*why = "cannot create a temporary credentials file";
		goto out;
	}
	if (fchmod(fd, 0600) < 0) goto io;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) goto io;
		off += (size_t)w;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0) goto io;
	if (close(fd) < 0) {
		fd = -1;
		goto io;
	}
	fd = -1;
	if (rename(tmp, cr->path) < 0) goto io;
	tmp[0] = '\0';
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0) { /* the rename is done; durability is best effort */ }
		close(dfd);
	}
	rc = BERTH_C_OK;
	goto out;
io:
	*why = "cannot write the credentials file";
out:
	if (fd >= 0) close(fd);
	if (tmp[0] && rc) unlink(tmp);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

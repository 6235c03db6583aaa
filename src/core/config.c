/* config.c — load berth's configuration: defaults, then a YAML file read with Distribution's key
 * names, then REGISTRY_* environment overrides. One table of known keys drives the YAML walk and
 * the environment names, so a key cannot exist in one and not the other. Reads one file; starts
 * nothing and changes no global state (the caller applies log_level). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "limits.h"
#include "log.h"
#include "ref.h"
#include "semver.h"

/* A config file is a few kilobytes; the cap bounds what the YAML loader may allocate. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Longest key path we build ("storage.filesystem.rootdirectory" is 32); longer ones are unknown. */
#define CONFIG_PATH_MAX 256
/* Values quoted back in error messages are cut to this many bytes. */
#define CONFIG_SHOW_MAX 64

enum cfg_parse {
	P_VERSION,     /* any scalar; Distribution writes 0.1 */
	P_LEVEL,       /* log level name */
	P_BOOL,        /* YAML 1.1 / Distribution boolean */
	P_NOT_BOOL,    /* a boolean stored negated (log.accesslog.disabled → access_log) */
	P_ADDR,        /* host:port */
	P_STR,         /* non-empty string */
	P_OPT_STR,     /* string; empty means unset (NULL) */
	P_INT,         /* non-negative decimal integer */
	P_DURATION,    /* seconds, or a Go duration ("24h", "1h30m") */
	P_DURATION_MS, /* the same in milliseconds ("500ms", "3s"; a plain number is seconds) */
	P_SIZE,        /* bytes, or with a B/KB/MB/GB/TB/KiB/MiB/GiB/TiB suffix */
};

enum cfg_field { F_INT, F_UINT, F_LONG, F_LLONG, F_SIZE, F_STR };

enum {
	K_PROXY = 1,  /* offset is into struct cfg_proxy (the load's scratch), not berth_config */
	K_SECRET = 2, /* never quoted; wiped when replaced or freed */
};

struct cfg_key {
	const char *path; /* YAML path; the env name is REGISTRY_ + upper(path) with '.' → '_' */
	enum cfg_parse parse;
	enum cfg_field field;
	size_t offset;
	unsigned long long min, max; /* inclusive, for P_INT / P_DURATION(_MS) / P_SIZE */
	unsigned flags;              /* K_* */
};

/* Distribution's proxy section, kept aside until the file and the environment are read: it
 * becomes one of berth_config's upstreams (add_proxy_upstream). */
struct cfg_proxy {
	char *remoteurl, *username, *password;
};

#define KEY(p, parse, field, member, min, max)                                                   \
	{ p, parse, field, offsetof(struct berth_config, member), min, max, 0 }
#define PROXY_KEY(p, member, flags)                                                              \
	{ p, P_OPT_STR, F_STR, offsetof(struct cfg_proxy, member), 0, 0, K_PROXY | (flags) }

static const struct cfg_key keys[] = {
	KEY("version", P_VERSION, F_INT, version_seen, 0, 0),
	KEY("log.level", P_LEVEL, F_INT, log_level, 0, 0),
	KEY("log.accesslog.disabled", P_NOT_BOOL, F_INT, access_log, 0, 0),
	KEY("http.addr", P_ADDR, F_STR, http_addr, 0, 0),
	KEY("http.tls.certificate", P_OPT_STR, F_STR, tls_certificate, 0, 0),
	KEY("http.tls.key", P_OPT_STR, F_STR, tls_key, 0, 0),
	KEY("storage.filesystem.rootdirectory", P_STR, F_STR, root, 0, 0),
	KEY("storage.delete.enabled", P_BOOL, F_INT, delete_enabled, 0, 0),
	KEY("berth.http.threads", P_INT, F_INT, http_threads, 1, 256),
	/* 0 disables the timeout (libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT meaning). */
	KEY("berth.limits.connectiontimeout", P_DURATION, F_UINT, connection_timeout, 0, 86400),
	KEY("berth.limits.maxconnections", P_INT, F_UINT, max_connections, 1, 1048576),
	KEY("berth.limits.manifestsize", P_SIZE, F_SIZE, manifest_max, 1, 1024ull * 1024 * 1024),
	KEY("berth.limits.uploadexpiry", P_DURATION, F_LONG, upload_expiry, 1, INT32_MAX),
	KEY("berth.limits.uploadsperrepository", P_INT, F_UINT, uploads_per_repo, 1, 10000000),
	KEY("berth.metadata.sync", P_BOOL, F_INT, sync_metadata, 0, 0),
	KEY("auth.htpasswd.realm", P_OPT_STR, F_STR, htpasswd_realm, 0, 0),
	KEY("auth.htpasswd.path", P_OPT_STR, F_STR, htpasswd_path, 0, 0),
	KEY("auth.token.realm", P_OPT_STR, F_STR, token_realm, 0, 0),
	KEY("auth.token.service", P_OPT_STR, F_STR, token_service, 0, 0),
	KEY("auth.token.issuer", P_OPT_STR, F_STR, token_issuer, 0, 0),
	KEY("auth.token.rootcertbundle", P_OPT_STR, F_STR, token_rootcertbundle, 0, 0),
	KEY("berth.tokenissuer.enabled", P_BOOL, F_INT, tokenissuer_enabled, 0, 0),
	KEY("berth.tokenissuer.key", P_OPT_STR, F_STR, tokenissuer_key, 0, 0),
	KEY("berth.tokenissuer.expiry", P_DURATION, F_LONG, tokenissuer_expiry, 1, 7 * 86400),
	/* An upstream check blocks a pull; past ten minutes it is a hang, not a budget. */
	KEY("berth.mirror.timeout", P_DURATION_MS, F_LONG, mirror_timeout_ms, 1, 600 * 1000),
	/* 0: retry a failed upstream on the next request. */
	KEY("berth.mirror.breaker", P_DURATION, F_LONG, mirror_breaker, 0, 86400),
	KEY("berth.mirror.keepdeleted", P_BOOL, F_INT, mirror_keep_deleted, 0, 0),
	KEY("berth.mirror.maxsize", P_SIZE, F_LLONG, mirror_maxsize, 0, LLONG_MAX),
	PROXY_KEY("proxy.remoteurl", remoteurl, 0),
	PROXY_KEY("proxy.username", username, 0),
	PROXY_KEY("proxy.password", password, K_SECRET),
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* Children of Distribution's "storage" that are not a driver (configuration.Storage.Type()):
 * every other key names the storage driver. */
static const char *const storage_params[] = {"cache", "maintenance", "redirect", "tag"};

/* Distribution reads REGISTRY_CONFIGURATION_PATH itself; it is not a key. */
static const char *const env_not_keys[] = {"REGISTRY_CONFIGURATION_PATH", "REGISTRY_STORAGE"};

struct cfg_ctx {
	struct berth_config *c;
	const struct berth_config *def;
	const char *file;
	yaml_document_t *doc;
	size_t seen_line[NKEYS]; /* line a key was set on in the file, 0 = not yet */
	char driver[CONFIG_SHOW_MAX + 8];
	char driver_where[CONFIG_PATH_MAX + 64];
	size_t access_line, groups_line; /* line berth.access / berth.groups was on, 0 = absent */
	size_t semver_line, golden_line; /* line semver / golden was on, 0 = absent */
	size_t upstreams_line, syncs_line, pins_line; /* the same for berth.mirror's lists */
	size_t *upstream_lines, *sync_lines; /* line of each berth.mirror.upstreams/sync entry */
	struct cfg_proxy proxy;
	int upstream0_is_proxy;          /* upstreams[0] came from the proxy section */
	int saw_htpasswd, saw_token;     /* the auth provider sections were present (maybe empty) */
	char *errbuf;
	size_t errlen;
};

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || errlen == 0) return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* A printable, one-line, bounded copy of untrusted bytes for messages and logs. */
static void show(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i, o = 0;

	if (dstlen < 4) {
		if (dstlen) dst[0] = '\0';
		return;
	}
	for (i = 0; i < n && o + 4 < dstlen && i < CONFIG_SHOW_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	if (i < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

static int view_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int view_caseeq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* ---- value parsers: pure functions of (bytes, length) ---- */

/* YAML 1.1 booleans as Distribution (go-yaml v2) reads them, plus 1/0. */
static int parse_bool(const char *s, size_t n, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (view_caseeq(s, n, yes[i])) {
			*out = 1;
			return 0;
		}
		if (view_caseeq(s, n, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* logrus level names (Distribution's log.level); trace and fatal/panic fold into our four. */
static int parse_level(const char *s, size_t n, int *out)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{"trace", BERTH_LOG_DEBUG}, {"debug", BERTH_LOG_DEBUG}, {"info", BERTH_LOG_INFO},
		{"warn", BERTH_LOG_WARN},   {"warning", BERTH_LOG_WARN}, {"error", BERTH_LOG_ERROR},
		{"fatal", BERTH_LOG_ERROR}, {"panic", BERTH_LOG_ERROR},
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (view_caseeq(s, n, names[i].name)) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

/* Decimal digits at s[*i..]; 0 ok, -1 no digits, -2 overflow. */
static int parse_digits(const char *s, size_t n, size_t *i, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t start = *i;

	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		unsigned d = (unsigned)(s[*i] - '0');
		if (v > (ULLONG_MAX - d) / 10) return -2;
		v = v * 10 + d;
		(*i)++;
	}
	if (*i == start) return -1;
	*out = v;
	return 0;
}

/* 0 ok, -1 syntax, -2 overflow. */
static int parse_uint(const char *s, size_t n, unsigned long long *out)
{
	size_t i = 0;
	int r = parse_digits(s, n, &i, out);

	if (r) return r;
	return i == n ? 0 : -1;
}

/* Bytes: "4194304", "4MiB", "4 MB". IEC suffixes are powers of 1024, SI ones of 1000; bare
 * K/M/G are refused because tools disagree on what they mean. */
static int parse_size(const char *s, size_t n, unsigned long long *out)
{
	static const struct {
		const char *suffix;
		unsigned long long mult;
	} units[] = {
		{"", 1},
		{"b", 1},
		{"kb", 1000ull},
		{"mb", 1000ull * 1000},
		{"gb", 1000ull * 1000 * 1000},
		{"tb", 1000ull * 1000 * 1000 * 1000},
		{"kib", 1024ull},
		{"mib", 1024ull * 1024},
		{"gib", 1024ull * 1024 * 1024},
		{"tib", 1024ull * 1024 * 1024 * 1024},
	};
	unsigned long long v;
	size_t i = 0;
	int r = parse_digits(s, n, &i, &v);

	if (r) return r;
	while (i < n && s[i] == ' ')
		i++;
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		if (!view_caseeq(s + i, n - i, units[u].suffix)) continue;
		if (v > ULLONG_MAX / units[u].mult) return -2;
		*out = v * units[u].mult;
		return 0;
	}
	return -1;
}

/* Go's time.ParseDuration syntax without a sign ("24h", "1h30m", "1.5h", "500ms"), which is how
 * Distribution's configs write durations, in nanoseconds. 0 ok, -1 syntax, -2 overflow. */
static int parse_go_duration(const char *s, size_t n, unsigned long long *out)
{
	static const struct {
		const char *unit;
		unsigned long long ns;
	} units[] = {
		{"ns", 1ull},
		{"us", 1000ull},
		{"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
		{"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
		{"ms", 1000000ull},
		{"s", 1000000000ull},
		{"m", 60ull * 1000000000ull},
		{"h", 3600ull * 1000000000ull},
	};
	unsigned long long total = 0;
	size_t i = 0;
	int r;

	if (n == 0) return -1;
	while (i < n) {
		unsigned long long ip = 0, frac = 0, scale = 1, part;
		size_t u, ulen = 0, best = SIZE_MAX;
		int have_int, have_frac = 0;

		r = parse_digits(s, n, &i, &ip);
		if (r == -2) return -2;
		have_int = r == 0;
		if (i < n && s[i] == '.') {
			i++;
			while (i < n && s[i] >= '0' && s[i] <= '9') {
				/* Nine fractional digits are finer than anything we keep, and
				 * bound frac so the products below cannot overflow. */
				if (scale < 1000000000ull) {
					frac = frac * 10 + (unsigned)(s[i] - '0');
					scale *= 10;
				}
				have_frac = 1;
				i++;
			}
		}
		if (!have_int && !have_frac) return -1;
		/* Longest match, so "ms" is not read as "m" followed by garbage. */
		for (u = 0; u < sizeof units / sizeof units[0]; u++) {
			size_t l = strlen(units[u].unit);
			if (l <= n - i && memcmp(s + i, units[u].unit, l) == 0 && l > ulen) {
				best = u;
				ulen = l;
			}
		}
		if (best == SIZE_MAX) return -1;
		i += ulen;
		if (ip > ULLONG_MAX / units[best].ns) return -2;
		part = ip * units[best].ns;
		/* frac < scale ≤ 10^9: h, m and s are multiples of 10^9, the rest are small. */
		if (units[best].ns % scale == 0)
			part += frac * (units[best].ns / scale);
		else
			part += (frac * units[best].ns) / scale;
		if (part < ip * units[best].ns || total > ULLONG_MAX - part) return -2;
		total += part;
	}
	*out = total;
	return 0;
}

/* A duration as a whole number of units of unit_ns nanoseconds: a plain integer counts seconds
 * (as everywhere in the file), anything else is a Go duration. 0 ok, -1 syntax, -2 overflow,
 * -3 not a whole number of units. */
static int parse_duration_in(const char *s, size_t n, unsigned long long unit_ns,
			     unsigned long long *out)
{
	unsigned long long v, per_s = 1000000000ull / unit_ns;
	int r = parse_uint(s, n, &v);

	if (r == 0) {
		if (v > ULLONG_MAX / per_s) return -2;
		*out = v * per_s;
		return 0;
	}
	if (r == -2) return -2;
	if ((r = parse_go_duration(s, n, &v))) return r;
	if (v % unit_ns) return -3;
	*out = v / unit_ns;
	return 0;
}

/* Seconds: "90", "90s", "24h", "1h30m", "1.5h"; the total must be whole seconds. */
static int parse_duration(const char *s, size_t n, unsigned long long *out)
{
	return parse_duration_in(s, n, 1000000000ull, out);
}

/* Milliseconds: "500ms", "1.5s", "3" (seconds); the total must be whole milliseconds. */
static int parse_duration_ms(const char *s, size_t n, unsigned long long *out)
{
	return parse_duration_in(s, n, 1000000ull, out);
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-', 1..63 bytes each, not
 * starting or ending with '-'; at most 253 bytes. */
static int hostname_valid(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253) return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-') return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return 0;
		if (ch == '-' && label == 0) return 0;
		if (++label > 63) return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* "host:port" or ":port" as Go's net.Listen takes it: host empty, an IPv4 address, a name, or
 * [IPv6]; port 0..65535 in decimal. */
static int addr_valid(const char *s, size_t n)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	unsigned long long port;
	size_t colon, hlen, i;
	const char *h;
	int all_numeric = 1;

	if (n > 0 && s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			;
		if (i >= n || i + 1 >= n || s[i + 1] != ':') return 0;
		hlen = i - 1;
		if (hlen == 0 || hlen >= sizeof host) return 0;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, bin) != 1) return 0;
		colon = i + 1;
	} else {
		for (colon = n; colon > 0 && s[colon - 1] != ':'; colon--)
			;
		if (colon == 0) return 0;
		colon--;
		h = s;
		hlen = colon;
		if (memchr(h, ':', hlen)) return 0; /* bare IPv6 needs brackets */
		for (i = 0; i < hlen; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.')) all_numeric = 0;
		if (hlen > 0 && all_numeric) {
			if (hlen >= sizeof host) return 0;
			memcpy(host, h, hlen);
			host[hlen] = '\0';
			if (inet_pton(AF_INET, host, bin) != 1) return 0;
		} else if (hlen > 0 && !hostname_valid(h, hlen)) {
			return 0;
		}
	}
	if (n - colon - 1 > 5) return 0;
	if (parse_uint(s + colon + 1, n - colon - 1, &port) != 0) return 0;
	return port <= 65535;
}

/* ---- the struct ---- */

static berth_err config_defaults(struct berth_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof *c);
	c->log_level = BERTH_LOG_INFO;
	c->access_log = 1;
	c->http_threads = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
	c->connection_timeout = 60;
	c->max_connections = 1024;
	c->manifest_max = BERTH_MANIFEST_MAX_DEFAULT;
	c->upload_expiry = BERTH_UPLOAD_EXPIRY_DEFAULT;
	c->uploads_per_repo = BERTH_UPLOADS_PER_REPO_DEFAULT;
	c->tokenissuer_expiry = BERTH_TOKEN_EXPIRY_DEFAULT;
	c->mirror_timeout_ms = BERTH_MIRROR_TIMEOUT_MS_DEFAULT;
	c->mirror_breaker = BERTH_MIRROR_BREAKER_DEFAULT;
	c->mirror_keep_deleted = 1;
	c->http_addr = strdup("127.0.0.1:5000");
	c->root = strdup("./data");
	if (!c->http_addr || !c->root) return BERTH_ENOMEM;
	return BERTH_OK;
}

/* Passwords are wiped before their memory is reused (the allocator hands it out again). */
static void free_secret(char *s)
{
	if (!s) return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void config_clear(struct berth_config *c)
{
	free(c->http_addr);
	free(c->tls_certificate);
	free(c->tls_key);
	free(c->root);
	free(c->htpasswd_realm);
	free(c->htpasswd_path);
	free(c->token_realm);
	free(c->token_service);
	free(c->token_issuer);
	free(c->token_rootcertbundle);
	free(c->tokenissuer_key);
	for (size_t i = 0; i < c->naccess; i++) {
		free_strv(c->access[i].users, c->access[i].nusers);
		free_strv(c->access[i].repos, c->access[i].nrepos);
	}
	free(c->access);
	for (size_t i = 0; i < c->ngroups; i++) {
		free(c->groups[i].name);
		free_strv(c->groups[i].members, c->groups[i].nmembers);
	}
	free(c->groups);
	free_strv(c->semver_repos, c->nsemver_repos);
	free_strv(c->golden_repos, c->ngolden_repos);
	free_strv(c->golden_require, c->ngolden_require);
	for (size_t i = 0; i < c->nupstreams; i++) {
		free(c->upstreams[i].prefix);
		free(c->upstreams[i].url);
		free(c->upstreams[i].username);
		free_secret(c->upstreams[i].password);
	}
	free(c->upstreams);
	free_strv(c->mirror_pins, c->nmirror_pins);
	for (size_t i = 0; i < c->nmirror_syncs; i++) {
		free(c->mirror_syncs[i].repo);
		free(c->mirror_syncs[i].semver);
		free(c->mirror_syncs[i].platform);
	}
	free(c->mirror_syncs);
}

int berth_config_auth_enabled(const struct berth_config *c)
{
	return c->htpasswd_path || c->htpasswd_realm || c->token_service || c->token_realm ||
	       c->tokenissuer_enabled;
}

void berth_config_free(struct berth_config *c)
{
	if (!c) return;
	config_clear(c);
	free(c);
}

static void store_num(struct berth_config *c, const struct cfg_key *k, unsigned long long v)
{
	char *p = (char *)c + k->offset;

	switch (k->field) {
	case F_INT: *(int *)(void *)p = (int)v; break;
	case F_UINT: *(unsigned *)(void *)p = (unsigned)v; break;
	case F_LONG: *(long *)(void *)p = (long)v; break;
	case F_LLONG: *(long long *)(void *)p = (long long)v; break;
	case F_SIZE: *(size_t *)(void *)p = (size_t)v; break;
	case F_STR: break;
	}
}

static char **str_field(struct cfg_ctx *x, const struct cfg_key *k)
{
	char *base = k->flags & K_PROXY ? (char *)&x->proxy : (char *)x->c;

	return (char **)(void *)(base + k->offset);
}

static void replace_str(const struct cfg_key *k, char **dst, char *v)
{
	if (k->flags & K_SECRET)
		free_secret(*dst);
	else
		free(*dst);
	*dst = v;
}

/* A null value (YAML ~/null/empty, or an empty environment variable) restores the default, so a
 * template with "certificate:" left blank, or REGISTRY_HTTP_TLS_CERTIFICATE= , means "unset". */
static berth_err reset_default(struct cfg_ctx *x, const struct cfg_key *k)
{
	char **dst, *copy = NULL;
	const char *src;

	if (k->field != F_STR) {
		size_t sz = k->field == F_INT ? sizeof(int)
			    : k->field == F_UINT ? sizeof(unsigned)
			    : k->field == F_LONG ? sizeof(long)
			    : k->field == F_LLONG ? sizeof(long long)
						 : sizeof(size_t);
		memcpy((char *)x->c + k->offset, (const char *)x->def + k->offset, sz);
		return BERTH_OK;
	}
	dst = str_field(x, k);
	/* The proxy section has no defaults: null unsets it. */
	src = k->flags & K_PROXY ? NULL
				 : *(char *const *)(const void *)((const char *)x->def + k->offset);
	if (src && !(copy = strdup(src))) return BERTH_ENOMEM;
	replace_str(k, dst, copy);
	return BERTH_OK;
}

/* Apply one value to key k. where names the source for messages: "file:line: key" or the
 * environment variable. */
static berth_err apply(struct cfg_ctx *x, const struct cfg_key *k, const char *v, size_t n,
		       int is_null, const char *where)
{
	char shown[CONFIG_SHOW_MAX + 8];
	unsigned long long num = 0;
	char **dst, *copy = NULL;
	int b, r = 0;

	if (is_null) return reset_default(x, k);
	if (k->flags & K_SECRET)
		snprintf(shown, sizeof shown, "(secret)");
	else
		show(shown, sizeof shown, v, n);
	if (memchr(v, '\0', n)) {
		fail(x->errbuf, x->errlen, "config: %s: value contains a NUL byte", where);
		return BERTH_EINVAL;
	}
	switch (k->parse) {
	case P_VERSION:
		if (!view_eq(v, n, "0.1"))
			berth_log(BERTH_LOG_WARN, "config: %s: version '%s' is not 0.1; reading as 0.1",
				  where, shown);
		store_num(x->c, k, 1);
		return BERTH_OK;
	case P_LEVEL:
		if (parse_level(v, n, &b)) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a log level (debug, info, warn, error)", where,
			     shown);
			return BERTH_EINVAL;
		}
		store_num(x->c, k, (unsigned long long)b);
		return BERTH_OK;
	case P_BOOL:
	case P_NOT_BOOL:
		if (parse_bool(v, n, &b)) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
			     where, shown);
			return BERTH_EINVAL;
		}
		store_num(x->c, k, (unsigned long long)(k->parse == P_NOT_BOOL ? !b : b));
		return BERTH_OK;
	case P_ADDR:
		if (!addr_valid(v, n)) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not an address (host:port, :port or [ipv6]:port)",
			     where, shown);
			return BERTH_EINVAL;
		}
		break;
	case P_STR:
		if (n == 0) {
			fail(x->errbuf, x->errlen, "config: %s: must not be empty", where);
			return BERTH_EINVAL;
		}
		break;
	case P_OPT_STR:
		if (n == 0) return reset_default(x, k);
		break;
	case P_INT:
		r = parse_uint(v, n, &num);
		if (r == -1) {
			fail(x->errbuf, x->errlen, "config: %s: '%s' is not a non-negative integer",
			     where, shown);
			return BERTH_EINVAL;
		}
		break;
	case P_DURATION:
		r = parse_duration(v, n, &num);
		if (r == -1 || r == -3) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a duration in whole seconds (e.g. 90, 90s, 30m, "
			     "24h)",
			     where, shown);
			return BERTH_EINVAL;
		}
		break;
	case P_DURATION_MS:
		r = parse_duration_ms(v, n, &num);
		if (r == -1 || r == -3) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a duration in whole milliseconds (e.g. 500ms, 3s; "
			     "a plain number is seconds)",
			     where, shown);
			return BERTH_EINVAL;
		}
		break;
	case P_SIZE:
		r = parse_size(v, n, &num);
		if (r == -1) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a size (e.g. 4194304, 512KiB, 4MiB, 4MB)", where,
			     shown);
			return BERTH_EINVAL;
		}
		break;
	}
	if (k->field != F_STR) {
		if (r == -2 || num < k->min || num > k->max) {
			fail(x->errbuf, x->errlen, "config: %s: '%s' is out of range (%llu..%llu%s)",
			     where, shown, k->min, k->max, k->parse == P_DURATION_MS ? " ms" : "");
			return BERTH_EINVAL;
		}
		store_num(x->c, k, num);
		return BERTH_OK;
	}
	copy = malloc(n + 1);
	if (!copy) return BERTH_ENOMEM;
	memcpy(copy, v, n);
	copy[n] = '\0';
	dst = str_field(x, k);
	replace_str(k, dst, copy);
	return BERTH_OK;
}

/* ---- YAML ---- */

static const struct cfg_key *find_key(const char *path)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].path, path) == 0) return &keys[i];
	return NULL;
}

/* The key's environment variable: REGISTRY_ + upper(path) with '.' → '_'. */
static int env_name(const struct cfg_key *k, char *dst, size_t dstlen)
{
	int w = snprintf(dst, dstlen, "REGISTRY_%s", k->path);

	if (w < 0 || (size_t)w >= dstlen) return -1;
	for (char *p = dst; *p; p++) {
		if (*p == '.')
			*p = '_';
		else if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	return 0;
}

/* A section is a proper prefix of some key: "http", "http.tls", "berth.limits". */
static int is_section(const char *path)
{
	size_t l = strlen(path);

	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(keys[i].path, path, l) == 0 && keys[i].path[l] == '.') return 1;
	return 0;
}

static int scalar_is_null(const yaml_node_t *nd)
{
	const char *v = (const char *)nd->data.scalar.value;
	size_t n = nd->data.scalar.length;

	if (nd->type != YAML_SCALAR_NODE) return 0;
	if (nd->tag && strcmp((const char *)nd->tag, YAML_NULL_TAG) == 0) return 1;
	if (nd->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
	return n == 0 || view_eq(v, n, "~") || view_eq(v, n, "null") || view_eq(v, n, "Null") ||
	       view_eq(v, n, "NULL");
}

static const char *node_kind(const yaml_node_t *nd)
{
	return nd->type == YAML_MAPPING_NODE ? "a mapping"
	       : nd->type == YAML_SEQUENCE_NODE ? "a list"
						: "a single value";
}

/* Distribution picks the storage driver from the one key under "storage" that is not a
 * parameter; we record it and decide after the environment (REGISTRY_STORAGE may replace it). */
static berth_err note_driver(struct cfg_ctx *x, const char *name, size_t n, size_t line)
{
	char shown[CONFIG_SHOW_MAX + 8];

	show(shown, sizeof shown, name, n);
	if (x->driver[0] && strcmp(x->driver, shown) != 0) {
		fail(x->errbuf, x->errlen,
		     "config: %s:%zu: storage: more than one storage driver (%s and %s)", x->file,
		     line, x->driver, shown);
		return BERTH_EINVAL;
	}
	snprintf(x->driver, sizeof x->driver, "%s", shown);
	snprintf(x->driver_where, sizeof x->driver_where, "%s:%zu: storage", x->file, line);
	return BERTH_OK;
}

/* ---- lists: berth.access and berth.groups ---- */

/* A scalar as a fresh NUL-terminated string; NULL on NUL bytes, empty values or no memory
 * (*rc says which). */
static char *scalar_dup(struct cfg_ctx *x, const yaml_node_t *nd, const char *where,
			berth_err *rc)
{
	const char *v = (const char *)nd->data.scalar.value;
	size_t n = nd->data.scalar.length;
	char *copy;

	if (nd->type != YAML_SCALAR_NODE || n == 0 || scalar_is_null(nd)) {
		fail(x->errbuf, x->errlen, "config: %s: expected a non-empty single value, found %s",
		     where, nd->type == YAML_SCALAR_NODE ? "an empty value" : node_kind(nd));
		*rc = BERTH_EINVAL;
		return NULL;
	}
	if (memchr(v, '\0', n)) {
		fail(x->errbuf, x->errlen, "config: %s: value contains a NUL byte", where);
		*rc = BERTH_EINVAL;
		return NULL;
	}
	copy = malloc(n + 1);
	if (!copy) {
		*rc = BERTH_ENOMEM;
		return NULL;
	}
	memcpy(copy, v, n);
	copy[n] = '\0';
	return copy;
}

/* A list of strings: a YAML sequence of scalars, or one scalar meaning a list of one. */
static berth_err str_list(struct cfg_ctx *x, const yaml_node_t *nd, const char *where, size_t max,
			  char ***out, size_t *nout)
{
	char **v = NULL;
	size_t n = 0, cap;
	berth_err rc = BERTH_OK;

	if (nd->type == YAML_SCALAR_NODE) {
		cap = 1;
	} else if (nd->type == YAML_SEQUENCE_NODE) {
		cap = (size_t)(nd->data.sequence.items.top - nd->data.sequence.items.start);
	} else {
		fail(x->errbuf, x->errlen, "config: %s: expected a list, found %s", where,
		     node_kind(nd));
		return BERTH_EINVAL;
	}
	if (cap == 0) {
		fail(x->errbuf, x->errlen, "config: %s: must not be an empty list", where);
		return BERTH_EINVAL;
	}
	if (cap > max) {
		fail(x->errbuf, x->errlen, "config: %s: more than %zu entries", where, max);
		return BERTH_EINVAL;
	}
	v = calloc(cap, sizeof *v);
	if (!v) return BERTH_ENOMEM;
	if (nd->type == YAML_SCALAR_NODE) {
		if (!(v[n] = scalar_dup(x, nd, where, &rc))) goto out;
		n++;
	} else {
		for (yaml_node_item_t *it = nd->data.sequence.items.start;
		     it < nd->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(x->doc, *it);
			if (!e) {
				rc = BERTH_EINTERNAL;
				goto out;
			}
			if (!(v[n] = scalar_dup(x, e, where, &rc))) goto out;
			n++;
		}
	}
	*out = v;
	*nout = n;
	v = NULL;
out:
	if (v) free_strv(v, n);
	return rc;
}

/* Repository patterns: the name grammar's characters plus '*', components non-empty. */
static int pattern_valid(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > BERTH_PATTERN_MAX || p[0] == '/' || p[n - 1] == '/') return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '/' && p[i + 1] == '/') return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-' || ch == '/' || ch == '*'))
			return 0;
	}
	return 1;
}

static berth_err parse_actions(struct cfg_ctx *x, const yaml_node_t *nd, const char *where,
			       unsigned *out)
{
	char **v = NULL;
	size_t n = 0;
	unsigned bits = 0;
	berth_err rc = str_list(x, nd, where, 8, &v, &n);

	if (rc) return rc;
	for (size_t i = 0; i < n; i++) {
		char shown[CONFIG_SHOW_MAX + 8];
		if (strcmp(v[i], "pull") == 0) {
			bits |= BERTH_ACTION_PULL;
		} else if (strcmp(v[i], "push") == 0) {
			bits |= BERTH_ACTION_PUSH;
		} else if (strcmp(v[i], "delete") == 0) {
			bits |= BERTH_ACTION_DELETE;
		} else if (strcmp(v[i], "*") == 0) {
			bits |= BERTH_ACTION_ALL;
		} else {
			show(shown, sizeof shown, v[i], strlen(v[i]));
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not an action (pull, push, delete, *)", where, shown);
			rc = BERTH_EINVAL;
			break;
		}
	}
	free_strv(v, n);
	*out = bits;
	return rc;
}

/* berth.access: a sequence of {users, repositories, actions} mappings. */
static berth_err parse_access(struct cfg_ctx *x, const yaml_node_t *seq, const char *where)
{
	struct berth_access_rule *rules = NULL;
	size_t cap, n = 0;
	berth_err rc = BERTH_OK;

	if (scalar_is_null(seq)) return BERTH_OK;
	if (seq->type != YAML_SEQUENCE_NODE) {
		fail(x->errbuf, x->errlen, "config: %s: expected a list of rules, found %s", where,
		     node_kind(seq));
		return BERTH_EINVAL;
	}
	cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (cap > BERTH_ACCESS_RULES_MAX) {
		fail(x->errbuf, x->errlen, "config: %s: more than %d rules", where,
		     BERTH_ACCESS_RULES_MAX);
		return BERTH_EINVAL;
	}
	if (cap == 0) return BERTH_OK;
	rules = calloc(cap, sizeof *rules);
	if (!rules) return BERTH_ENOMEM;
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *m = yaml_document_get_node(x->doc, *it);
		struct berth_access_rule *r = &rules[n++];
		char rwhere[CONFIG_PATH_MAX + 96];
		int have_users = 0, have_repos = 0, have_actions = 0;

		if (!m) {
			rc = BERTH_EINTERNAL;
			goto out;
		}
		snprintf(rwhere, sizeof rwhere, "%s:%zu: berth.access[%zu]", x->file,
			 m->start_mark.line + 1, n - 1);
		if (m->type != YAML_MAPPING_NODE) {
			fail(x->errbuf, x->errlen,
			     "config: %s: expected a mapping {users, repositories, actions}, found %s",
			     rwhere, node_kind(m));
			rc = BERTH_EINVAL;
			goto out;
		}
		for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
			yaml_node_t *vn = yaml_document_get_node(x->doc, p->value);
			char kwhere[CONFIG_PATH_MAX + 200], shown[CONFIG_SHOW_MAX + 8];
			const char *key;
			size_t klen;

			if (!kn || !vn) {
				rc = BERTH_EINTERNAL;
				goto out;
			}
			if (kn->type != YAML_SCALAR_NODE) {
				fail(x->errbuf, x->errlen, "config: %s: keys must be single values",
				     rwhere);
				rc = BERTH_EINVAL;
				goto out;
			}
			key = (const char *)kn->data.scalar.value;
			klen = kn->data.scalar.length;
			show(shown, sizeof shown, key, klen);
			snprintf(kwhere, sizeof kwhere, "%s:%zu: berth.access[%zu].%s", x->file,
				 kn->start_mark.line + 1, n - 1, shown);
			if (view_eq(key, klen, "users") && !have_users) {
				have_users = 1;
				rc = str_list(x, vn, kwhere, BERTH_ACCESS_LIST_MAX, &r->users,
					      &r->nusers);
			} else if (view_eq(key, klen, "repositories") && !have_repos) {
				have_repos = 1;
				rc = str_list(x, vn, kwhere, BERTH_ACCESS_LIST_MAX, &r->repos,
					      &r->nrepos);
				for (size_t i = 0; !rc && i < r->nrepos; i++) {
					if (pattern_valid(r->repos[i])) continue;
					show(shown, sizeof shown, r->repos[i], strlen(r->repos[i]));
					fail(x->errbuf, x->errlen,
					     "config: %s: '%s' is not a repository pattern (lower-case "
					     "name components, '*' and '**')",
					     kwhere, shown);
					rc = BERTH_EINVAL;
				}
			} else if (view_eq(key, klen, "actions") && !have_actions) {
				have_actions = 1;
				rc = parse_actions(x, vn, kwhere, &r->actions);
			} else if (view_eq(key, klen, "users") || view_eq(key, klen, "repositories") ||
				   view_eq(key, klen, "actions")) {
				fail(x->errbuf, x->errlen, "config: %s: duplicate key", kwhere);
				rc = BERTH_EINVAL;
			} else {
				fail(x->errbuf, x->errlen,
				     "config: %s: unknown key (a rule has users, repositories, "
				     "actions)",
				     kwhere);
				rc = BERTH_EINVAL;
			}
			if (rc) goto out;
		}
		if (!have_users || !have_repos || !have_actions) {
			fail(x->errbuf, x->errlen, "config: %s: a rule needs %s", rwhere,
			     !have_users ? "users" : !have_repos ? "repositories" : "actions");
			rc = BERTH_EINVAL;
			goto out;
		}
	}
out:
	x->c->access = rules;
	x->c->naccess = n;
	return rc;
}

/* berth.groups: a mapping of group name → list of user names. */
static berth_err parse_groups(struct cfg_ctx *x, const yaml_node_t *map, const char *where)
{
	struct berth_group *g = NULL;
	size_t cap, n = 0;
	berth_err rc = BERTH_OK;

	if (scalar_is_null(map)) return BERTH_OK;
	if (map->type != YAML_MAPPING_NODE) {
		fail(x->errbuf, x->errlen, "config: %s: expected a mapping of group: [users], found %s",
		     where, node_kind(map));
		return BERTH_EINVAL;
	}
	cap = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	if (cap > BERTH_GROUPS_MAX) {
		fail(x->errbuf, x->errlen, "config: %s: more than %d groups", where, BERTH_GROUPS_MAX);
		return BERTH_EINVAL;
	}
	if (cap == 0) return BERTH_OK;
	g = calloc(cap, sizeof *g);
	if (!g) return BERTH_ENOMEM;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(x->doc, p->value);
		char gwhere[CONFIG_PATH_MAX + 160], shown[CONFIG_SHOW_MAX + 8];

		if (!kn || !vn) {
			rc = BERTH_EINTERNAL;
			goto out;
		}
		snprintf(gwhere, sizeof gwhere, "%s:%zu: berth.groups", x->file,
			 kn->start_mark.line + 1);
		if (!(g[n].name = scalar_dup(x, kn, gwhere, &rc))) goto out;
		n++;
		for (size_t i = 0; i + 1 < n; i++) {
			if (strcmp(g[i].name, g[n - 1].name) != 0) continue;
			show(shown, sizeof shown, g[i].name, strlen(g[i].name));
			fail(x->errbuf, x->errlen, "config: %s: duplicate group %s", gwhere, shown);
			rc = BERTH_EINVAL;
			goto out;
		}
		show(shown, sizeof shown, g[n - 1].name, strlen(g[n - 1].name));
		snprintf(gwhere, sizeof gwhere, "%s:%zu: berth.groups.%s", x->file,
			 kn->start_mark.line + 1, shown);
		rc = str_list(x, vn, gwhere, BERTH_GROUP_MEMBERS_MAX, &g[n - 1].members,
			      &g[n - 1].nmembers);
		if (rc) goto out;
	}
out:
	x->c->groups = g;
	x->c->ngroups = n;
	return rc;
}

/* ---- semver: and golden: (top level, berth's own sections) ---- */

/* A list of repository patterns, each checked. */
static berth_err pattern_list_max(struct cfg_ctx *x, const yaml_node_t *nd, const char *where,
				  size_t max, char ***out, size_t *nout)
{
	char shown[CONFIG_SHOW_MAX + 8];
	berth_err rc = str_list(x, nd, where, max, out, nout);

	for (size_t i = 0; !rc && i < *nout; i++) {
		if (pattern_valid((*out)[i])) continue;
		show(shown, sizeof shown, (*out)[i], strlen((*out)[i]));
		fail(x->errbuf, x->errlen,
		     "config: %s: '%s' is not a repository pattern (lower-case name components, "
		     "'*' and '**')",
		     where, shown);
		rc = BERTH_EINVAL;
	}
	return rc;
}

static berth_err pattern_list(struct cfg_ctx *x, const yaml_node_t *nd, const char *where,
			      char ***out, size_t *nout)
{
	return pattern_list_max(x, nd, where, BERTH_ACCESS_LIST_MAX, out, nout);
}

/* Iterates a mapping's pairs with a where-string per key; calls each(x, key, klen, value,
 * kwhere, ctx). Refuses duplicate keys. */
static berth_err map_each(struct cfg_ctx *x, const yaml_node_t *map, const char *section,
			  berth_err (*each)(struct cfg_ctx *x, const char *key, size_t klen,
					    const yaml_node_t *vn, const char *kwhere, void *ctx),
			  void *ctx)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(x->doc, p->value);
		char kwhere[CONFIG_PATH_MAX + 200], shown[CONFIG_SHOW_MAX + 8];
		berth_err rc;

		if (!kn || !vn) return BERTH_EINTERNAL;
		if (kn->type != YAML_SCALAR_NODE) {
			fail(x->errbuf, x->errlen, "config: %s:%zu: %s: keys must be single values",
			     x->file, kn->start_mark.line + 1, section);
			return BERTH_EINVAL;
		}
		show(shown, sizeof shown, (const char *)kn->data.scalar.value,
		     kn->data.scalar.length);
		snprintf(kwhere, sizeof kwhere, "%s:%zu: %s.%s", x->file, kn->start_mark.line + 1,
			 section, shown);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *pk = yaml_document_get_node(x->doc, q->key);
			if (pk && pk->type == YAML_SCALAR_NODE &&
			    pk->data.scalar.length == kn->data.scalar.length &&
			    memcmp(pk->data.scalar.value, kn->data.scalar.value,
				   kn->data.scalar.length) == 0) {
				fail(x->errbuf, x->errlen, "config: %s: duplicate key", kwhere);
				return BERTH_EINVAL;
			}
		}
		rc = each(x, (const char *)kn->data.scalar.value, kn->data.scalar.length, vn, kwhere,
			  ctx);
		if (rc) return rc;
	}
	return BERTH_OK;
}

static berth_err semver_key(struct cfg_ctx *x, const char *key, size_t klen,
			    const yaml_node_t *vn, const char *kwhere, void *ctx)
{
	int *float_seen = ctx;
	struct berth_config *c = x->c;

	if (view_eq(key, klen, "repositories"))
		return pattern_list(x, vn, kwhere, &c->semver_repos, &c->nsemver_repos);
	if (view_eq(key, klen, "immutable")) {
		if (vn->type != YAML_SCALAR_NODE ||
		    parse_bool((const char *)vn->data.scalar.value, vn->data.scalar.length,
				&c->semver_immutable)) {
			fail(x->errbuf, x->errlen, "config: %s: expected true or false", kwhere);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	if (view_eq(key, klen, "float")) {
		char **v = NULL;
		size_t n = 0;
		berth_err rc = BERTH_OK;

		*float_seen = 1;
		/* float: [] (or null) turns every floating tag off. */
		if (scalar_is_null(vn) ||
		    (vn->type == YAML_SEQUENCE_NODE &&
		     vn->data.sequence.items.top == vn->data.sequence.items.start))
			return BERTH_OK;
		if ((rc = str_list(x, vn, kwhere, 8, &v, &n))) return rc;
		for (size_t i = 0; i < n && !rc; i++) {
			char shown[CONFIG_SHOW_MAX + 8];
			if (strcmp(v[i], "major") == 0) {
				c->semver_float_major = 1;
			} else if (strcmp(v[i], "minor") == 0) {
				c->semver_float_minor = 1;
			} else if (strcmp(v[i], "latest") == 0) {
				c->semver_float_latest = 1;
			} else {
				show(shown, sizeof shown, v[i], strlen(v[i]));
				fail(x->errbuf, x->errlen,
				     "config: %s: '%s' is not a floating tag (major, minor, latest)",
				     kwhere, shown);
				rc = BERTH_EINVAL;
			}
		}
		free_strv(v, n);
		return rc;
	}
	fail(x->errbuf, x->errlen,
	     "config: %s: unknown key (semver has repositories, float, immutable)", kwhere);
	return BERTH_EINVAL;
}

/* semver: {repositories: [patterns], float: [major, minor, latest], immutable: bool}. */
static berth_err parse_semver(struct cfg_ctx *x, const yaml_node_t *map, const char *where)
{
	int float_seen = 0;
	berth_err rc;

	if (scalar_is_null(map)) return BERTH_OK;
	if (map->type != YAML_MAPPING_NODE) {
		fail(x->errbuf, x->errlen,
		     "config: %s: expected a mapping {repositories, float, immutable}, found %s", where,
		     node_kind(map));
		return BERTH_EINVAL;
	}
	if ((rc = map_each(x, map, "semver", semver_key, &float_seen))) return rc;
	if (!float_seen && x->c->nsemver_repos)
		x->c->semver_float_major = x->c->semver_float_minor = x->c->semver_float_latest = 1;
	return BERTH_OK;
}

static berth_err golden_key(struct cfg_ctx *x, const char *key, size_t klen,
			    const yaml_node_t *vn, const char *kwhere, void *ctx)
{
	struct berth_config *c = x->c;
	(void)ctx;
	if (view_eq(key, klen, "repositories"))
		return pattern_list(x, vn, kwhere, &c->golden_repos, &c->ngolden_repos);
	if (view_eq(key, klen, "require"))
		return pattern_list(x, vn, kwhere, &c->golden_require, &c->ngolden_require);
	fail(x->errbuf, x->errlen, "config: %s: unknown key (golden has repositories, require)",
	     kwhere);
	return BERTH_EINVAL;
}

/* golden: [patterns], or {repositories: [patterns], require: [patterns]}. */
static berth_err parse_golden(struct cfg_ctx *x, const yaml_node_t *nd, const char *where)
{
	berth_err rc;

	if (scalar_is_null(nd)) return BERTH_OK;
	if (nd->type == YAML_SEQUENCE_NODE || nd->type == YAML_SCALAR_NODE)
		return pattern_list(x, nd, where, &x->c->golden_repos, &x->c->ngolden_repos);
	if ((rc = map_each(x, nd, "golden", golden_key, NULL))) return rc;
	if (x->c->ngolden_require && !x->c->ngolden_repos) {
		fail(x->errbuf, x->errlen,
		     "config: %s: golden.require needs golden.repositories (which images count as "
		     "golden)",
		     where);
		return BERTH_EINVAL;
	}
	return BERTH_OK;
}

/* ---- berth.mirror: upstreams, sync, pins ---- */

/* An optional string in a list entry: null means absent (NULL, no error), like an unset key. */
static berth_err opt_dup(struct cfg_ctx *x, const yaml_node_t *vn, const char *where, char **dst)
{
	berth_err rc = BERTH_OK;

	if (scalar_is_null(vn)) return BERTH_OK;
	if (!(*dst = scalar_dup(x, vn, where, &rc))) return rc;
	return BERTH_OK;
}

static int host_is_dockerhub(const char *h, size_t n)
{
	return view_caseeq(h, n, "registry-1.docker.io") || view_caseeq(h, n, "index.docker.io") ||
	       view_caseeq(h, n, "docker.io");
}

/* An upstream's base URL: http:// or https://, a host (name, IPv4 or [IPv6]), an optional port
 * and path; no user info, query or fragment (the mirror appends /v2/...). On success lower-cases
 * the scheme, strips trailing slashes in place, gives the host's offset and length, and returns
 * NULL; otherwise returns what is wrong. */
static const char *url_check(char *u, size_t *host_off, size_t *host_len)
{
	size_t n = strlen(u), i, start, end, hlen;
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	unsigned long long port;

	if (n > BERTH_URL_MAX) return "is too long";
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return "must be printable ASCII without spaces";
	if (strncasecmp(u, "http://", 7) == 0) {
		start = 7;
	} else if (strncasecmp(u, "https://", 8) == 0) {
		start = 8;
	} else {
		return "must start with http:// or https://";
	}
	for (i = 0; i + 3 < start; i++)
		u[i] = (char)(u[i] >= 'A' && u[i] <= 'Z' ? u[i] - 'A' + 'a' : u[i]);
	if (strpbrk(u, "?#")) return "must not have a query or fragment";
	end = start + strcspn(u + start, "/");
	if (memchr(u + start, '@', end - start))
		return "must not carry credentials (use username and password)";
	if (u[start] == '[') {
		for (i = start + 1; i < end && u[i] != ']'; i++)
			;
		hlen = i - start - 1;
		if (i >= end || hlen == 0 || hlen >= sizeof host) return "has an invalid IPv6 host";
		memcpy(host, u + start + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, bin) != 1) return "has an invalid IPv6 host";
		*host_off = start;
		*host_len = i + 1 - start;
		i++;
	} else {
		int numeric = 1;
		for (i = start; i < end && u[i] != ':'; i++)
			if (!((u[i] >= '0' && u[i] <= '9') || u[i] == '.')) numeric = 0;
		hlen = i - start;
		if (hlen == 0) return "has no host";
		if (numeric) {
			if (hlen >= sizeof host) return "has an invalid IPv4 host";
			memcpy(host, u + start, hlen);
			host[hlen] = '\0';
			if (inet_pton(AF_INET, host, bin) != 1) return "has an invalid IPv4 host";
		} else if (!hostname_valid(u + start, hlen)) {
			return "has an invalid host name";
		}
		*host_off = start;
		*host_len = hlen;
	}
	if (i < end) {
		if (u[i] != ':' || end - i - 1 > 5 || parse_uint(u + i + 1, end - i - 1, &port) ||
		    port == 0 || port > 65535)
			return "has an invalid port (1..65535)";
	}
	while (n > end && u[n - 1] == '/')
		u[--n] = '\0';
	return NULL;
}

/* Checks url (a key's value, owned by the entry) in place; the message quotes it only when it
 * cannot hold a password. */
static berth_err url_value(struct cfg_ctx *x, char *url, const char *kwhere, size_t *host_off,
			   size_t *host_len)
{
	char shown[CONFIG_SHOW_MAX + 8];
	const char *bad = url_check(url, host_off, host_len);

	if (!bad) return BERTH_OK;
	if (strchr(url, '@')) {
		fail(x->errbuf, x->errlen, "config: %s: the URL %s", kwhere, bad);
	} else {
		show(shown, sizeof shown, url, strlen(url));
		fail(x->errbuf, x->errlen, "config: %s: '%s' %s", kwhere, shown, bad);
	}
	return BERTH_EINVAL;
}

struct upstream_entry {
	struct berth_mirror_upstream *u;
	size_t host_off, host_len;
};

static berth_err upstream_key(struct cfg_ctx *x, const char *key, size_t klen,
			      const yaml_node_t *vn, const char *kwhere, void *ctx)
{
	struct upstream_entry *e = ctx;
	struct berth_mirror_upstream *u = e->u;
	char shown[CONFIG_SHOW_MAX + 8];
	berth_err rc;

	if (view_eq(key, klen, "prefix")) {
		if ((rc = opt_dup(x, vn, kwhere, &u->prefix))) return rc;
		if (u->prefix && !berth_ref_name_valid(u->prefix, strlen(u->prefix))) {
			show(shown, sizeof shown, u->prefix, strlen(u->prefix));
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a repository name (lower-case components "
			     "joined by '/': docker.io, ghcr.io, registry.example.com/team)",
			     kwhere, shown);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	if (view_eq(key, klen, "url")) {
		if ((rc = opt_dup(x, vn, kwhere, &u->url))) return rc;
		return u->url ? url_value(x, u->url, kwhere, &e->host_off, &e->host_len) : BERTH_OK;
	}
	if (view_eq(key, klen, "username")) return opt_dup(x, vn, kwhere, &u->username);
	if (view_eq(key, klen, "password")) return opt_dup(x, vn, kwhere, &u->password);
	if (view_eq(key, klen, "default")) {
		if (scalar_is_null(vn)) return BERTH_OK;
		if (vn->type != YAML_SCALAR_NODE ||
		    parse_bool((const char *)vn->data.scalar.value, vn->data.scalar.length,
			       &u->is_default)) {
			fail(x->errbuf, x->errlen, "config: %s: expected true or false", kwhere);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	fail(x->errbuf, x->errlen,
	     "config: %s: unknown key (an upstream has prefix, url, username, password, default)",
	     kwhere);
	return BERTH_EINVAL;
}

/* Credentials come in pairs: a user name alone would silently pull anonymously. */
static berth_err check_credentials(struct cfg_ctx *x, const struct berth_mirror_upstream *u,
				   const char *where, const char *section)
{
	if (!u->username == !u->password) return BERTH_OK;
	fail(x->errbuf, x->errlen, "config: %s: %s.%s is set but %s.%s is not", where, section,
	     u->username ? "username" : "password", section, u->username ? "password" : "username");
	return BERTH_EINVAL;
}

/* berth.mirror.upstreams: a list of {prefix, url, username, password, default}. Checks that
 * involve several upstreams wait for check_mirror (the proxy section may add one). */
static berth_err parse_upstreams(struct cfg_ctx *x, const yaml_node_t *seq, const char *where)
{
	struct berth_config *c = x->c;
	size_t cap;

	if (scalar_is_null(seq)) return BERTH_OK;
	if (seq->type != YAML_SEQUENCE_NODE) {
		fail(x->errbuf, x->errlen, "config: %s: expected a list of upstreams, found %s", where,
		     node_kind(seq));
		return BERTH_EINVAL;
	}
	cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (cap > BERTH_MIRROR_UPSTREAMS_MAX) {
		fail(x->errbuf, x->errlen, "config: %s: more than %d upstreams", where,
		     BERTH_MIRROR_UPSTREAMS_MAX);
		return BERTH_EINVAL;
	}
	if (cap == 0) return BERTH_OK;
	c->upstreams = calloc(cap, sizeof *c->upstreams);
	x->upstream_lines = calloc(cap, sizeof *x->upstream_lines);
	if (!c->upstreams || !x->upstream_lines) return BERTH_ENOMEM;
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *m = yaml_document_get_node(x->doc, *it);
		struct upstream_entry e = {&c->upstreams[c->nupstreams], 0, 0};
		size_t i = c->nupstreams++;
		char section[64], rwhere[CONFIG_PATH_MAX + 96];
		berth_err rc;

		if (!m) return BERTH_EINTERNAL;
		x->upstream_lines[i] = m->start_mark.line + 1;
		snprintf(section, sizeof section, "berth.mirror.upstreams[%zu]", i);
		snprintf(rwhere, sizeof rwhere, "%s:%zu: %s", x->file, m->start_mark.line + 1,
			 section);
		if (m->type != YAML_MAPPING_NODE) {
			fail(x->errbuf, x->errlen,
			     "config: %s: expected a mapping {prefix, url, username, password, "
			     "default}, found %s",
			     rwhere, node_kind(m));
			return BERTH_EINVAL;
		}
		if ((rc = map_each(x, m, section, upstream_key, &e))) return rc;
		if (!e.u->prefix || !e.u->url) {
			fail(x->errbuf, x->errlen, "config: %s: an upstream needs %s.%s", rwhere,
			     section, !e.u->prefix ? "prefix" : "url");
			return BERTH_EINVAL;
		}
		if ((rc = check_credentials(x, e.u, rwhere, section))) return rc;
		e.u->dockerhub = strcmp(e.u->prefix, "docker.io") == 0 ||
				 host_is_dockerhub(e.u->url + e.host_off, e.host_len);
	}
	return BERTH_OK;
}

/* os/arch[/variant] as OCI image-index platforms write them: "linux/amd64", "linux/arm64/v8". */
static int platform_valid(const char *p)
{
	size_t parts = 1, len = 0;

	for (; *p; p++) {
		if (*p == '/') {
			if (len == 0) return 0;
			parts++;
			len = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-'))
			return 0;
		if (++len > 64) return 0;
	}
	return len > 0 && parts >= 2 && parts <= 3;
}

static berth_err sync_key(struct cfg_ctx *x, const char *key, size_t klen, const yaml_node_t *vn,
			  const char *kwhere, void *ctx)
{
	struct berth_mirror_sync *s = ctx;
	char shown[CONFIG_SHOW_MAX + 8];
	berth_err rc;

	if (view_eq(key, klen, "repository")) {
		if ((rc = opt_dup(x, vn, kwhere, &s->repo))) return rc;
		if (s->repo && !berth_ref_name_valid(s->repo, strlen(s->repo))) {
			show(shown, sizeof shown, s->repo, strlen(s->repo));
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a repository name (e.g. "
			     "docker.io/library/alpine)",
			     kwhere, shown);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	if (view_eq(key, klen, "semver")) {
		struct berth_semver_range r;
		if ((rc = opt_dup(x, vn, kwhere, &s->semver))) return rc;
		if (s->semver && berth_semver_range_parse(s->semver, strlen(s->semver), &r)) {
			show(shown, sizeof shown, s->semver, strlen(s->semver));
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a version constraint (e.g. ^3, ~1.2, "
			     ">=1.0.0 <2.0.0, 1.x, ^1 || ^2)",
			     kwhere, shown);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	if (view_eq(key, klen, "platform")) {
		if ((rc = opt_dup(x, vn, kwhere, &s->platform))) return rc;
		if (s->platform && strcmp(s->platform, "all") == 0) {
			free(s->platform);
			s->platform = NULL;
		} else if (s->platform && !platform_valid(s->platform)) {
			show(shown, sizeof shown, s->platform, strlen(s->platform));
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a platform (os/arch[/variant], e.g. linux/amd64, "
			     "linux/arm64/v8; or all)",
			     kwhere, shown);
			return BERTH_EINVAL;
		}
		return BERTH_OK;
	}
	if (view_eq(key, klen, "interval")) {
		unsigned long long v = 0;
		int r;

		if (scalar_is_null(vn)) return BERTH_OK;
		if (vn->type != YAML_SCALAR_NODE) {
			fail(x->errbuf, x->errlen, "config: %s: expected a single value, found %s",
			     kwhere, node_kind(vn));
			return BERTH_EINVAL;
		}
		show(shown, sizeof shown, (const char *)vn->data.scalar.value,
		     vn->data.scalar.length);
		r = parse_duration((const char *)vn->data.scalar.value, vn->data.scalar.length, &v);
		if (r == -1 || r == -3) {
			fail(x->errbuf, x->errlen,
			     "config: %s: '%s' is not a duration in whole seconds (e.g. 90, 90s, 30m, "
			     "6h)",
			     kwhere, shown);
			return BERTH_EINVAL;
		}
		if (r == -2 || v < 1 || v > INT32_MAX) {
			fail(x->errbuf, x->errlen, "config: %s: '%s' is out of range (1..%d)", kwhere,
			     shown, INT32_MAX);
			return BERTH_EINVAL;
		}
		s->interval = (long)v;
		return BERTH_OK;
	}
	fail(x->errbuf, x->errlen,
	     "config: %s: unknown key (a sync entry has repository, semver, platform, interval)",
	     kwhere);
	return BERTH_EINVAL;
}

/* berth.mirror.sync: a list of {repository, semver, platform, interval}. Whether repository
 * names an upstream is checked by check_mirror, once every upstream is known. */
static berth_err parse_syncs(struct cfg_ctx *x, const yaml_node_t *seq, const char *where)
{
	struct berth_config *c = x->c;
	size_t cap;

	if (scalar_is_null(seq)) return BERTH_OK;
	if (seq->type != YAML_SEQUENCE_NODE) {
		fail(x->errbuf, x->errlen, "config: %s: expected a list of sync entries, found %s",
		     where, node_kind(seq));
		return BERTH_EINVAL;
	}
	cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (cap > BERTH_MIRROR_SYNCS_MAX) {
		fail(x->errbuf, x->errlen, "config: %s: more than %d sync entries", where,
		     BERTH_MIRROR_SYNCS_MAX);
		return BERTH_EINVAL;
	}
	if (cap == 0) return BERTH_OK;
	c->mirror_syncs = calloc(cap, sizeof *c->mirror_syncs);
	x->sync_lines = calloc(cap, sizeof *x->sync_lines);
	if (!c->mirror_syncs || !x->sync_lines) return BERTH_ENOMEM;
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *m = yaml_document_get_node(x->doc, *it);
		struct berth_mirror_sync *s = &c->mirror_syncs[c->nmirror_syncs];
		size_t i = c->nmirror_syncs++;
		char section[64], rwhere[CONFIG_PATH_MAX + 96];
		berth_err rc;

		if (!m) return BERTH_EINTERNAL;
		s->interval = BERTH_MIRROR_SYNC_INTERVAL_DEFAULT;
		x->sync_lines[i] = m->start_mark.line + 1;
		snprintf(section, sizeof section, "berth.mirror.sync[%zu]", i);
		snprintf(rwhere, sizeof rwhere, "%s:%zu: %s", x->file, m->start_mark.line + 1,
			 section);
		if (m->type != YAML_MAPPING_NODE) {
			fail(x->errbuf, x->errlen,
			     "config: %s: expected a mapping {repository, semver, platform, interval}, "
			     "found %s",
			     rwhere, node_kind(m));
			return BERTH_EINVAL;
		}
		if ((rc = map_each(x, m, section, sync_key, s))) return rc;
		if (!s->repo) {
			fail(x->errbuf, x->errlen, "config: %s: a sync entry needs %s.repository",
			     rwhere, section);
			return BERTH_EINVAL;
		}
	}
	return BERTH_OK;
}

/* berth.mirror.pins: repository patterns never evicted. */
static berth_err parse_pins(struct cfg_ctx *x, const yaml_node_t *nd, const char *where)
{
	if (scalar_is_null(nd)) return BERTH_OK;
	return pattern_list_max(x, nd, where, BERTH_MIRROR_PINS_MAX, &x->c->mirror_pins,
				&x->c->nmirror_pins);
}

/* Where a scalar key's value came from: its environment variable when that is set, else the
 * file and line. */
static void key_where(const struct cfg_ctx *x, const char *path, char *buf, size_t len)
{
	const struct cfg_key *k = find_key(path);
	char name[CONFIG_PATH_MAX];
	const char *v;

	if (k && env_name(k, name, sizeof name) == 0 && (v = getenv(name)) && v[0]) {
		snprintf(buf, len, "%s", name);
		return;
	}
	snprintf(buf, len, "%s:%zu: %s", x->file, k ? x->seen_line[k - keys] : 0, path);
}

/* Where upstream i came from, for messages: "file:line: berth.mirror.upstreams[k]" (where) or
 * "berth.mirror.upstreams[k] (line n)" (name); the proxy section's upstream is named by
 * proxy.remoteurl. */
static void upstream_where(const struct cfg_ctx *x, size_t i, char *buf, size_t len)
{
	size_t k = i - (size_t)x->upstream0_is_proxy;

	if (x->upstream0_is_proxy && i == 0)
		key_where(x, "proxy.remoteurl", buf, len);
	else
		snprintf(buf, len, "%s:%zu: berth.mirror.upstreams[%zu]", x->file,
			 x->upstream_lines[k], k);
}

static void upstream_name(const struct cfg_ctx *x, size_t i, char *buf, size_t len)
{
	size_t k = i - (size_t)x->upstream0_is_proxy;

	if (x->upstream0_is_proxy && i == 0) {
		const struct cfg_key *pk = find_key("proxy.remoteurl");
		const char *v = getenv("REGISTRY_PROXY_REMOTEURL");
		if (v && v[0])
			snprintf(buf, len, "the proxy section's upstream (REGISTRY_PROXY_REMOTEURL)");
		else
			snprintf(buf, len, "the proxy section's upstream (proxy.remoteurl, line %zu)",
				 pk ? x->seen_line[pk - keys] : 0);
	} else {
		snprintf(buf, len, "berth.mirror.upstreams[%zu] (line %zu)", k, x->upstream_lines[k]);
	}
}

/* Distribution's proxy section (one upstream, which every name is pulled through) becomes the
 * first upstream and the default. Its prefix, which Distribution has no notion of, is
 * "docker.io" for Docker Hub and the URL's host otherwise. */
static berth_err add_proxy_upstream(struct cfg_ctx *x)
{
	struct cfg_proxy *p = &x->proxy;
	struct berth_config *c = x->c;
	struct berth_mirror_upstream *v, u;
	char where[CONFIG_PATH_MAX + 96], shown[CONFIG_SHOW_MAX + 8];
	size_t host_off = 0, host_len = 0;
	berth_err rc;

	if (!p->remoteurl) {
		if (!p->username && !p->password) return BERTH_OK;
		fail(x->errbuf, x->errlen, "config: %s: proxy.%s is set but proxy.remoteurl is not",
		     x->file, p->username ? "username" : "password");
		return BERTH_EINVAL;
	}
	key_where(x, "proxy.remoteurl", where, sizeof where);
	if ((rc = url_value(x, p->remoteurl, where, &host_off, &host_len))) return rc;
	memset(&u, 0, sizeof u);
	u.username = p->username;
	u.password = p->password;
	if ((rc = check_credentials(x, &u, x->file, "proxy"))) return rc;
	u.is_default = 1;
	u.dockerhub = host_is_dockerhub(p->remoteurl + host_off, host_len);
	if (u.dockerhub) {
		u.prefix = strdup("docker.io");
	} else {
		if (!(u.prefix = malloc(host_len + 1))) return BERTH_ENOMEM;
		for (size_t i = 0; i < host_len; i++) {
			char ch = p->remoteurl[host_off + i];
			u.prefix[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		}
		u.prefix[host_len] = '\0';
		if (!berth_ref_name_valid(u.prefix, host_len)) {
			show(shown, sizeof shown, u.prefix, host_len);
			free(u.prefix);
			fail(x->errbuf, x->errlen,
			     "config: %s: the host '%s' is no repository prefix to mirror under; use "
			     "berth.mirror.upstreams with an explicit prefix instead",
			     where, shown);
			return BERTH_EINVAL;
		}
	}
	if (!u.prefix) return BERTH_ENOMEM;
	v = realloc(c->upstreams, (c->nupstreams + 1) * sizeof *v);
	if (!v) {
		free(u.prefix);
		return BERTH_ENOMEM;
	}
	c->upstreams = v;
	memmove(v + 1, v, c->nupstreams * sizeof *v);
	u.url = p->remoteurl;
	v[0] = u;
	c->nupstreams++;
	x->upstream0_is_proxy = 1;
	memset(p, 0, sizeof *p);
	return BERTH_OK;
}

/* Checks across the mirror's settings, after the file and the environment: prefixes are
 * unique and none contains another (a name would match both), at most one upstream is the
 * default, and every sync entry's repository is under some upstream's prefix. */
static berth_err check_mirror(struct cfg_ctx *x)
{
	const struct berth_config *c = x->c;
	char where[CONFIG_PATH_MAX + 96], other[CONFIG_PATH_MAX + 96];
	char shown[CONFIG_SHOW_MAX + 8], oshown[CONFIG_SHOW_MAX + 8];

	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct berth_mirror_upstream *u = &c->upstreams[i];
		size_t ul = strlen(u->prefix);

		for (size_t j = 0; j < i; j++) {
			const struct berth_mirror_upstream *v = &c->upstreams[j];
			size_t vl = strlen(v->prefix), sl = ul < vl ? ul : vl;
			const char *longer = ul < vl ? v->prefix : u->prefix;

			if (u->is_default && v->is_default) {
				upstream_where(x, i, where, sizeof where);
				upstream_name(x, j, other, sizeof other);
				fail(x->errbuf, x->errlen,
				     "config: %s.default: only one upstream may be the default (%s "
				     "already is)",
				     where, other);
				return BERTH_EINVAL;
			}
			if (memcmp(u->prefix, v->prefix, sl) != 0 ||
			    (ul != vl && longer[sl] != '/'))
				continue;
			upstream_where(x, i, where, sizeof where);
			upstream_name(x, j, other, sizeof other);
			show(shown, sizeof shown, u->prefix, ul);
			show(oshown, sizeof oshown, v->prefix, vl);
			if (ul == vl)
				fail(x->errbuf, x->errlen,
				     "config: %s.prefix: '%s' is already the prefix of %s", where, shown,
				     other);
			else
				fail(x->errbuf, x->errlen,
				     "config: %s.prefix: '%s' and '%s' of %s overlap: a repository under "
				     "the longer one would match both",
				     where, shown, oshown, other);
			return BERTH_EINVAL;
		}
	}
	for (size_t i = 0; i < c->nmirror_syncs; i++) {
		const char *repo = c->mirror_syncs[i].repo;
		size_t j;

		for (j = 0; j < c->nupstreams; j++) {
			size_t pl = strlen(c->upstreams[j].prefix);
			if (strncmp(repo, c->upstreams[j].prefix, pl) == 0 && repo[pl] == '/') break;
		}
		if (j < c->nupstreams) continue;
		show(shown, sizeof shown, repo, strlen(repo));
		fail(x->errbuf, x->errlen,
		     "config: %s:%zu: berth.mirror.sync[%zu].repository: '%s' is not under an "
		     "upstream's prefix (it must start with the prefix of an upstream and '/', e.g. "
		     "docker.io/library/alpine)",
		     x->file, x->sync_lines[i], i, shown);
		return BERTH_EINVAL;
	}
	return BERTH_OK;
}

/* Checks that need the whole configuration: every "@group" names a group. */
static berth_err check_access(struct cfg_ctx *x)
{
	char shown[CONFIG_SHOW_MAX + 8];

	for (size_t i = 0; i < x->c->naccess; i++) {
		const struct berth_access_rule *r = &x->c->access[i];
		for (size_t u = 0; u < r->nusers; u++) {
			size_t g;
			if (r->users[u][0] != '@') continue;
			for (g = 0; g < x->c->ngroups; g++)
				if (strcmp(x->c->groups[g].name, r->users[u] + 1) == 0) break;
			if (g < x->c->ngroups) continue;
			show(shown, sizeof shown, r->users[u], strlen(r->users[u]));
			fail(x->errbuf, x->errlen,
			     "config: %s:%zu: berth.access[%zu].users: %s names no group in "
			     "berth.groups",
			     x->file, x->access_line, i, shown);
			return BERTH_EINVAL;
		}
	}
	return BERTH_OK;
}

/* Keys whose values berth reads itself (lists and mappings), not through the scalar table. */
static const struct {
	const char *path;
	berth_err (*parse)(struct cfg_ctx *x, const yaml_node_t *nd, const char *where);
	size_t line_offset; /* the cfg_ctx member recording the line it was on */
} structured[] = {
	{"berth.access", parse_access, offsetof(struct cfg_ctx, access_line)},
	{"berth.groups", parse_groups, offsetof(struct cfg_ctx, groups_line)},
	{"semver", parse_semver, offsetof(struct cfg_ctx, semver_line)},
	{"golden", parse_golden, offsetof(struct cfg_ctx, golden_line)},
	{"berth.mirror.upstreams", parse_upstreams, offsetof(struct cfg_ctx, upstreams_line)},
	{"berth.mirror.sync", parse_syncs, offsetof(struct cfg_ctx, syncs_line)},
	{"berth.mirror.pins", parse_pins, offsetof(struct cfg_ctx, pins_line)},
};

#define NSTRUCTURED (sizeof structured / sizeof structured[0])

static int is_structured(const char *path)
{
	for (size_t i = 0; i < NSTRUCTURED; i++)
		if (strcmp(path, structured[i].path) == 0) return 1;
	return 0;
}

static berth_err walk(struct cfg_ctx *x, const yaml_node_t *map, const char *prefix)
{
	char path[CONFIG_PATH_MAX], where[CONFIG_PATH_MAX + 64], shown[CONFIG_SHOW_MAX + 8];
	berth_err rc = BERTH_OK;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(x->doc, p->value);
		const struct cfg_key *k = NULL;
		const char *key;
		size_t klen, line;
		int w, exact;

		if (!kn || !vn) {
			rc = BERTH_EINTERNAL;
			goto out;
		}
		line = kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE) {
			fail(x->errbuf, x->errlen, "config: %s:%zu: %s: keys must be single values",
			     x->file, line, prefix[0] ? prefix : "(top level)");
			rc = BERTH_EINVAL;
			goto out;
		}
		key = (const char *)kn->data.scalar.value;
		klen = kn->data.scalar.length;
		show(shown, sizeof shown, key, klen);
		if (view_eq(key, klen, "<<")) {
			fail(x->errbuf, x->errlen,
			     "config: %s:%zu: %s: YAML merge keys (<<) are not supported", x->file,
			     line, prefix[0] ? prefix : "(top level)");
			rc = BERTH_EINVAL;
			goto out;
		}
		/* path is built from the printable copy, so it is only looked up when that copy
		 * is the key byte for byte; anything else is unknown by construction. */
		w = snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", shown);
		exact = w > 0 && (size_t)w < sizeof path && view_eq(key, klen, shown);
		if (exact) k = find_key(path);
		snprintf(where, sizeof where, "%s:%zu: %s", x->file, line, path);

		for (size_t i = 0; exact && i < NSTRUCTURED; i++) {
			size_t *seen;
			if (strcmp(path, structured[i].path) != 0) continue;
			seen = (size_t *)(void *)((char *)x + structured[i].line_offset);
			if (*seen) {
				fail(x->errbuf, x->errlen, "config: %s: duplicate key (first on line %zu)",
				     where, *seen);
				rc = BERTH_EINVAL;
				goto out;
			}
			*seen = line;
			rc = structured[i].parse(x, vn, where);
			if (rc) goto out;
			break;
		}
		if (exact && is_structured(path)) continue;
		if (exact && strcmp(path, "auth.htpasswd") == 0) x->saw_htpasswd = 1;
		if (exact && strcmp(path, "auth.token") == 0) x->saw_token = 1;

		if (k) {
			size_t ki = (size_t)(k - keys);
			if (vn->type != YAML_SCALAR_NODE) {
				fail(x->errbuf, x->errlen, "config: %s: expected a single value, found %s",
				     where, node_kind(vn));
				rc = BERTH_EINVAL;
				goto out;
			}
			if (x->seen_line[ki]) {
				fail(x->errbuf, x->errlen, "config: %s: duplicate key (first on line %zu)",
				     where, x->seen_line[ki]);
				rc = BERTH_EINVAL;
				goto out;
			}
			x->seen_line[ki] = line;
			rc = apply(x, k, (const char *)vn->data.scalar.value, vn->data.scalar.length,
				   scalar_is_null(vn), where);
			if (rc) goto out;
			continue;
		}
		if (strcmp(prefix, "storage") == 0) {
			int param = 0;
			for (size_t i = 0; i < sizeof storage_params / sizeof storage_params[0]; i++)
				if (view_eq(key, klen, storage_params[i])) param = 1;
			if (!param && !view_eq(key, klen, "delete")) {
				rc = note_driver(x, key, klen, line);
				if (rc) goto out;
				if (!view_eq(key, klen, "filesystem")) continue;
			}
		}
		if (exact && is_section(path)) {
			if (vn->type == YAML_MAPPING_NODE) {
				rc = walk(x, vn, path);
				if (rc) goto out;
			} else if (!scalar_is_null(vn)) {
				fail(x->errbuf, x->errlen, "config: %s: expected a mapping, found %s",
				     where, node_kind(vn));
				rc = BERTH_EINVAL;
				goto out;
			}
			continue;
		}
		/* Anything under auth that berth does not know must stop the start: ignoring an
		 * authentication setting would run the registry with less protection than asked. */
		if (strcmp(prefix, "auth") == 0) {
			fail(x->errbuf, x->errlen,
			     "config: %s: authentication provider '%s' is not supported (htpasswd, "
			     "token); refusing to start without the access control it configures",
			     where, shown);
			rc = BERTH_EINVAL;
			goto out;
		}
		if (strncmp(prefix, "auth.", 5) == 0) {
			fail(x->errbuf, x->errlen,
			     "config: %s: unknown authentication setting; refusing to start without "
			     "the access control it may configure",
			     where);
			rc = BERTH_EINVAL;
			goto out;
		}
		/* Sections that restrict access must never be ignored: starting without the
		 * protection they configure would open the registry. */
		if (strcmp(path, "http.tls.clientcas") == 0) {
			fail(x->errbuf, x->errlen,
			     "config: %s: not supported by this version of berth; refusing to start "
			     "without the access control it configures",
			     where);
			rc = BERTH_EINVAL;
			goto out;
		}
		/* berth's own mirror section is new: a misspelt key there is a mistake to fix, not
		 * a Distribution setting to skip. */
		if (strcmp(prefix, "berth.mirror") == 0) {
			fail(x->errbuf, x->errlen,
			     "config: %s: unknown key (berth.mirror has timeout, breaker, keepdeleted, "
			     "maxsize, pins, upstreams, sync)",
			     where);
			rc = BERTH_EINVAL;
			goto out;
		}
		berth_log(BERTH_LOG_WARN, "config: ignoring unknown key %s", path);
	}
out:
	return rc;
}

static berth_err parse_yaml(struct cfg_ctx *x, const unsigned char *bytes, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int parser_ok = 0, doc_ok = 0;
	yaml_node_t *root;
	berth_err rc = BERTH_OK;

	if (!yaml_parser_initialize(&parser)) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	parser_ok = 1;
	yaml_parser_set_input_string(&parser, bytes, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.error == YAML_MEMORY_ERROR) {
			rc = BERTH_ENOMEM;
		} else if (parser.error == YAML_READER_ERROR) {
			fail(x->errbuf, x->errlen, "config: %s: invalid YAML at byte %zu: %s", x->file,
			     parser.problem_offset, parser.problem ? parser.problem : "error");
			rc = BERTH_EINVAL;
		} else {
			fail(x->errbuf, x->errlen, "config: %s:%zu: invalid YAML: %s%s%s", x->file,
			     parser.problem_mark.line + 1, parser.problem ? parser.problem : "error",
			     parser.context ? " " : "", parser.context ? parser.context : "");
			rc = BERTH_EINVAL;
		}
		goto out;
	}
	doc_ok = 1;
	x->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root || scalar_is_null(root)) goto out; /* empty file: defaults */
	if (root->type != YAML_MAPPING_NODE) {
		fail(x->errbuf, x->errlen, "config: %s:%zu: the top level must be a mapping, found %s",
		     x->file, root->start_mark.line + 1, node_kind(root));
		rc = BERTH_EINVAL;
		goto out;
	}
	rc = walk(x, root, "");
out:
	x->doc = NULL;
	if (doc_ok) yaml_document_delete(&doc);
	if (parser_ok) yaml_parser_delete(&parser);
	return rc;
}

static berth_err read_file(const char *path, char **out, size_t *outlen, char *errbuf,
			   size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1;
	berth_err rc = BERTH_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(errbuf, errlen, "config: cannot open %s: %s", path, strerror(errno));
		rc = BERTH_ENOTFOUND;
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fail(errbuf, errlen, "config: %s: not a regular file", path);
		rc = BERTH_EINVAL;
		goto out;
	}
	buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			fail(errbuf, errlen, "config: cannot read %s: %s", path, strerror(errno));
			rc = BERTH_EIO;
			goto out;
		}
		if (r == 0) break;
		len += (size_t)r;
		if (len > CONFIG_FILE_MAX) {
			fail(errbuf, errlen, "config: %s: larger than %d bytes", path,
			     CONFIG_FILE_MAX);
			rc = BERTH_EINVAL;
			goto out;
		}
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0) close(fd);
	return rc;
}

/* ---- environment ---- */

static int env_is_known(const char *name, size_t n)
{
	char buf[CONFIG_PATH_MAX];

	for (size_t i = 0; i < NKEYS; i++)
		if (env_name(&keys[i], buf, sizeof buf) == 0 && view_eq(name, n, buf)) return 1;
	for (size_t i = 0; i < sizeof env_not_keys / sizeof env_not_keys[0]; i++)
		if (view_eq(name, n, env_not_keys[i])) return 1;
	return 0;
}

static berth_err apply_env(struct cfg_ctx *x)
{
	char name[CONFIG_PATH_MAX], shown[CONFIG_SHOW_MAX + 8];
	const char *v;
	berth_err rc = BERTH_OK;

	for (size_t i = 0; i < NKEYS; i++) {
		if (env_name(&keys[i], name, sizeof name) != 0) {
			rc = BERTH_EINTERNAL;
			goto out;
		}
		v = getenv(name);
		if (!v) continue;
		rc = apply(x, &keys[i], v, strlen(v), v[0] == '\0', name);
		if (rc) goto out;
	}
	v = getenv("REGISTRY_STORAGE");
	if (v && v[0]) {
		show(x->driver, sizeof x->driver, v, strlen(v));
		snprintf(x->driver_where, sizeof x->driver_where, "REGISTRY_STORAGE");
	}
	/* Distribution warns about REGISTRY_* variables it cannot place; so do we (names only:
	 * values such as REGISTRY_HTTP_SECRET must not reach the log). */
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		if (n <= 9 || strncmp(*e, "REGISTRY_", 9) != 0 || env_is_known(*e, n)) continue;
		show(shown, sizeof shown, *e, n);
		berth_log(BERTH_LOG_WARN, "config: ignoring unknown environment variable %s", shown);
	}
out:
	return rc;
}

/* ---- authentication checks (after the file and the environment) ---- */

/* Realms and services are quoted inside WWW-Authenticate (RFC 7235 quoted-string): no quotes,
 * backslashes or control bytes. */
static int header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\') return 0;
	return 1;
}

static berth_err need(struct cfg_ctx *x, const char *val, const char *key, const char *why)
{
	if (val) return BERTH_OK;
	fail(x->errbuf, x->errlen, "config: %s: %s is required %s", x->file, key, why);
	return BERTH_EINVAL;
}

/* The built-in issuer's realm when none is configured: this server's own /auth/token. */
static berth_err default_realm(struct berth_config *c)
{
	const char *addr = c->http_addr, *colon = strrchr(addr, ':');
	char buf[512];
	int w;

	if (!colon) return BERTH_EINVAL;
	if (colon == addr || strncmp(addr, "0.0.0.0:", 8) == 0 || strncmp(addr, "[::]:", 5) == 0) {
		berth_log(BERTH_LOG_WARN,
			  "config: auth.token.realm not set; using 127.0.0.1 for the built-in token "
			  "issuer, which only local clients can reach (set auth.token.realm)");
		w = snprintf(buf, sizeof buf, "%s://127.0.0.1%s/auth/token",
			     c->tls_certificate ? "https" : "http", colon);
	} else {
		w = snprintf(buf, sizeof buf, "%s://%s/auth/token",
			     c->tls_certificate ? "https" : "http", addr);
	}
	if (w < 0 || (size_t)w >= sizeof buf) return BERTH_EINVAL;
	c->token_realm = strdup(buf);
	return c->token_realm ? BERTH_OK : BERTH_ENOMEM;
}

static berth_err check_auth(struct cfg_ctx *x)
{
	struct berth_config *c = x->c;
	int htpasswd = x->saw_htpasswd || c->htpasswd_realm || c->htpasswd_path;
	int token = x->saw_token || c->token_realm || c->token_service || c->token_issuer ||
		    c->token_rootcertbundle;
	const char *bad = NULL;
	berth_err rc;

	if (htpasswd) {
		if ((rc = need(x, c->htpasswd_realm, "auth.htpasswd.realm", "with auth.htpasswd")) ||
		    (rc = need(x, c->htpasswd_path, "auth.htpasswd.path", "with auth.htpasswd")))
			return rc;
	}
	if (c->tokenissuer_enabled) {
		if ((rc = need(x, c->tokenissuer_key, "berth.tokenissuer.key",
			       "when berth.tokenissuer.enabled is true")) ||
		    (rc = need(x, c->htpasswd_path, "auth.htpasswd.path",
			       "when berth.tokenissuer.enabled is true (the issuer's users)")))
			return rc;
		if (!c->token_service && !(c->token_service = strdup("berth"))) return BERTH_ENOMEM;
		if (!c->token_issuer && !(c->token_issuer = strdup("berth"))) return BERTH_ENOMEM;
		if (!c->token_realm && (rc = default_realm(c))) return rc;
	} else if (token) {
		if (htpasswd) {
			fail(x->errbuf, x->errlen,
			     "config: %s: auth.htpasswd and auth.token are both configured; choose "
			     "one (both only with berth.tokenissuer.enabled, where htpasswd holds the "
			     "issuer's users)",
			     x->file);
			return BERTH_EINVAL;
		}
		if ((rc = need(x, c->token_realm, "auth.token.realm", "with auth.token")) ||
		    (rc = need(x, c->token_service, "auth.token.service", "with auth.token")) ||
		    (rc = need(x, c->token_issuer, "auth.token.issuer", "with auth.token")) ||
		    (rc = need(x, c->token_rootcertbundle, "auth.token.rootcertbundle",
			       "with auth.token (or enable berth.tokenissuer)")))
			return rc;
	}
	if (c->htpasswd_realm && !header_safe(c->htpasswd_realm)) bad = "auth.htpasswd.realm";
	if (c->token_realm && !header_safe(c->token_realm)) bad = "auth.token.realm";
	if (c->token_service && !header_safe(c->token_service)) bad = "auth.token.service";
	if (bad) {
		fail(x->errbuf, x->errlen,
		     "config: %s: %s must not contain quotes, backslashes or control characters",
		     x->file, bad);
		return BERTH_EINVAL;
	}
	if ((c->naccess || c->ngroups) && !berth_config_auth_enabled(c)) {
		fail(x->errbuf, x->errlen,
		     "config: %s:%zu: %s needs authentication (auth.htpasswd or auth.token): rules "
		     "without it could not be enforced",
		     x->file, c->naccess ? x->access_line : x->groups_line,
		     c->naccess ? "berth.access" : "berth.groups");
		return BERTH_EINVAL;
	}
	return check_access(x);
}

/* ---- entry point ---- */

/* Defaults, then the YAML in bytes (none when bytes is NULL), then the environment, then the
 * checks that need all of them. file names the source in messages. */
static berth_err config_build(const char *file, const unsigned char *bytes, size_t len,
			      struct berth_config **out, char *errbuf, size_t errlen)
{
	struct berth_config *c = NULL, def;
	struct cfg_ctx x;
	int def_ok = 0;
	berth_err rc;

	memset(&x, 0, sizeof x);
	rc = config_defaults(&def);
	def_ok = 1;
	if (rc) goto out;
	c = calloc(1, sizeof *c);
	if (!c) {
		rc = BERTH_ENOMEM;
		goto out;
	}
	rc = config_defaults(c);
	if (rc) goto out;
	x.c = c;
	x.def = &def;
	x.file = file;
	x.errbuf = errbuf;
	x.errlen = errlen;

	if (bytes) {
		rc = parse_yaml(&x, bytes, len);
		if (rc) goto out;
	}
	rc = apply_env(&x);
	if (rc) goto out;

	if (x.driver[0] && strcmp(x.driver, "filesystem") != 0) {
		fail(errbuf, errlen, "config: %s: storage driver %s is not supported (filesystem only)",
		     x.driver_where, x.driver);
		rc = BERTH_EINVAL;
		goto out;
	}
	/* Serving TLS needs both; one without the other is a typo, not a request for plain HTTP. */
	if (!c->tls_certificate != !c->tls_key) {
		fail(errbuf, errlen, "config: %s: http.tls.%s is set but http.tls.%s is not",
		     x.file, c->tls_certificate ? "certificate" : "key",
		     c->tls_certificate ? "key" : "certificate");
		rc = BERTH_EINVAL;
		goto out;
	}
	rc = check_auth(&x);
	if (rc) goto out;
	rc = add_proxy_upstream(&x);
	if (rc) goto out;
	rc = check_mirror(&x);
	if (rc) goto out;
	*out = c;
	c = NULL;
out:
	free(x.proxy.remoteurl);
	free(x.proxy.username);
	free_secret(x.proxy.password);
	free(x.sync_lines);
	free(x.upstream_lines);
	berth_config_free(c);
	if (def_ok) config_clear(&def);
	return rc;
}

berth_err berth_config_load(const char *path, struct berth_config **out, char *errbuf,
			    size_t errlen)
{
	char *bytes = NULL;
	size_t len = 0;
	berth_err rc;

	*out = NULL;
	if (errbuf && errlen) errbuf[0] = '\0';
	if (path) {
		rc = read_file(path, &bytes, &len, errbuf, errlen);
		if (rc) goto out;
	}
	rc = config_build(path ? path : "(environment)", (const unsigned char *)bytes, len, out,
			  errbuf, errlen);
out:
	free(bytes);
	return rc;
}

berth_err berth_config_parse_yaml(const void *buf, size_t len, struct berth_config **out,
				  char *errbuf, size_t errlen)
{
	*out = NULL;
	if (errbuf && errlen) errbuf[0] = '\0';
	if (len > CONFIG_FILE_MAX) {
		fail(errbuf, errlen, "config: (buffer): larger than %d bytes", CONFIG_FILE_MAX);
		return BERTH_EINVAL;
	}
	/* A zero-length buffer is an empty file (defaults), not "no file". */
	return config_build("(buffer)", buf ? (const unsigned char *)buf : (const unsigned char *)"",
			    buf ? len : 0, out, errbuf, errlen);
}

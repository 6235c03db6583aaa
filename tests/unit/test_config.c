/* test_config.c — berth_config_load: defaults, Distribution config files, REGISTRY_* overrides,
 * and the message a user gets for each kind of mistake. */
#include "../../src/core/config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/limits.h"
#include "../../src/core/log.h"
#include "t.h"

static char tmpdir[64];
static char logpath[128];
static int saved_stderr = -1;
static char errbuf[512];

/* Writes text to a fresh file in tmpdir; returns its path (static, overwritten per call). */
static const char *write_cfg(const char *text)
{
	static char path[128];
	static int seq;
	FILE *f;

	snprintf(path, sizeof path, "%s/config-%d.yml", tmpdir, seq++);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

static void clear_registry_env(void)
{
	char names[64][128];
	int n = 0;

	for (char **e = environ; *e && n < 64; e++) {
		const char *eq = strchr(*e, '=');
		size_t l = eq ? (size_t)(eq - *e) : strlen(*e);
		if (strncmp(*e, "REGISTRY_", 9) != 0 || l >= sizeof names[0]) continue;
		memcpy(names[n], *e, l);
		names[n][l] = '\0';
		n++;
	}
	for (int i = 0; i < n; i++)
		unsetenv(names[i]);
}

/* Log lines go to stderr; capture them to check what an operator would see. */
static void capture_begin(void)
{
	int fd;

	fflush(stderr);
	saved_stderr = dup(2);
	fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || saved_stderr < 0) {
		perror("capture");
		exit(2);
	}
	dup2(fd, 2);
	close(fd);
}

static const char *capture_end(void)
{
	static char buf[65536];
	size_t n;
	FILE *f;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	f = fopen(logpath, "r");
	if (!f) return "";
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int c = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		c++;
	return c;
}

static berth_err load(const char *path, struct berth_config **c)
{
	memset(errbuf, 'x', sizeof errbuf);
	return berth_config_load(path, c, errbuf, sizeof errbuf);
}

static int expected_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static void test_defaults(void)
{
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(NULL, &c), BERTH_OK);
	CHECK(c != NULL);
	if (!c) return;
	CHECK_STR(errbuf, "");
	CHECK_EQ_INT(c->version_seen, 0);
	CHECK_EQ_INT(c->log_level, BERTH_LOG_INFO);
	CHECK_EQ_INT(c->access_log, 1);
	CHECK_STR(c->http_addr, "127.0.0.1:5000");
	CHECK(c->tls_certificate == NULL);
	CHECK(c->tls_key == NULL);
	CHECK_EQ_INT(c->http_threads, expected_threads());
	CHECK_EQ_INT(c->connection_timeout, 60);
	CHECK_EQ_INT(c->max_connections, 1024);
	CHECK_EQ_INT(c->manifest_max, BERTH_MANIFEST_MAX_DEFAULT);
	CHECK_EQ_INT(c->upload_expiry, BERTH_UPLOAD_EXPIRY_DEFAULT);
	CHECK_STR(c->root, "./data");
	CHECK_EQ_INT(c->delete_enabled, 0);
	CHECK_EQ_INT(c->sync_metadata, 0);
	/* No mirror unless one is configured. */
	CHECK_EQ_INT(c->nupstreams, 0);
	CHECK(c->upstreams == NULL);
	CHECK_EQ_INT(c->mirror_timeout_ms, 3000);
	CHECK_EQ_INT(c->mirror_breaker, 30);
	CHECK_EQ_INT(c->mirror_keep_deleted, 1);
	CHECK_EQ_INT(c->mirror_maxsize, 0);
	CHECK_EQ_INT(c->nmirror_pins, 0);
	CHECK_EQ_INT(c->nmirror_syncs, 0);
	berth_config_free(c);
	berth_config_free(NULL);
}

static void test_empty_and_comment_only_files(void)
{
	const char *texts[] = {"", "# nothing here\n", "---\n", "~\n"};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct berth_config *c = NULL;
		CHECK_EQ_INT(load(write_cfg(texts[i]), &c), BERTH_OK);
		if (!c) continue;
		CHECK_STR(c->http_addr, "127.0.0.1:5000");
		CHECK_STR(c->root, "./data");
		berth_config_free(c);
	}
}

/* The config.yml shipped in the official registry image (distribution-library-image). */
static void test_stock_distribution_image_config(void)
{
	const char *text = "version: 0.1\n"
			   "log:\n"
			   "  fields:\n"
			   "    service: registry\n"
			   "storage:\n"
			   "  cache:\n"
			   "    blobdescriptor: inmemory\n"
			   "  filesystem:\n"
			   "    rootdirectory: /var/lib/registry\n"
			   "http:\n"
			   "  addr: :5000\n"
			   "  headers:\n"
			   "    X-Content-Type-Options: [nosniff]\n"
			   "health:\n"
			   "  storagedriver:\n"
			   "    enabled: true\n"
			   "    interval: 10s\n"
			   "    threshold: 3\n";
	struct berth_config *c = NULL;
	const char *log;

	capture_begin();
	CHECK_EQ_INT(load(write_cfg(text), &c), BERTH_OK);
	log = capture_end();
	if (!c) return;
	CHECK_EQ_INT(c->version_seen, 1);
	CHECK_STR(c->http_addr, ":5000");
	CHECK_STR(c->root, "/var/lib/registry");
	CHECK_EQ_INT(c->delete_enabled, 0);
	CHECK_EQ_INT(count(log, "ignoring unknown key log.fields\n"), 1);
	CHECK_EQ_INT(count(log, "ignoring unknown key storage.cache\n"), 1);
	CHECK_EQ_INT(count(log, "ignoring unknown key http.headers\n"), 1);
	CHECK_EQ_INT(count(log, "ignoring unknown key health\n"), 1);
	CHECK_EQ_INT(count(log, "ignoring unknown key"), 4);
	CHECK(strstr(log, " warn ") != NULL);
	berth_config_free(c);
}

static const char full_example[] =
	"version: 0.1\n"
	"log:\n"
	"  accesslog:\n"
	"    disabled: true\n"
	"  level: debug\n"
	"  formatter: text\n"
	"  fields:\n"
	"    service: registry\n"
	"    environment: staging\n"
	"  hooks:\n"
	"    - type: mail\n"
	"      disabled: true\n"
	"loglevel: debug\n"
	"storage:\n"
	"  filesystem:\n"
	"    rootdirectory: /srv/registry\n"
	"    maxthreads: 100\n"
	"  delete:\n"
	"    enabled: yes\n"
	"  cache:\n"
	"    blobdescriptor: redis\n"
	"  maintenance:\n"
	"    uploadpurging:\n"
	"      enabled: true\n"
	"      age: 168h\n"
	"      interval: 24h\n"
	"      dryrun: false\n"
	"    readonly:\n"
	"      enabled: false\n"
	"  redirect:\n"
	"    disable: false\n"
	"  tag:\n"
	"    concurrencylimit: 8\n"
	"reporting:\n"
	"  bugsnag:\n"
	"    apikey: bugsnagapikey\n"
	"    releasestage: bugsnagreleasestage\n"
	"middleware:\n"
	"  registry:\n"
	"    - name: ARegistryMiddleware\n"
	"      options:\n"
	"        foo: bar\n"
	"http:\n"
	"  addr: 0.0.0.0:5443\n"
	"  prefix: /my/nested/registry/\n"
	"  host: https://myregistryaddress.org:5000\n"
	"  secret: asecretforlocaldevelopment\n"
	"  relativeurls: false\n"
	"  draintimeout: 60s\n"
	"  tls:\n"
	"    certificate: /path/to/x509/public\n"
	"    key: /path/to/x509/private\n"
	"    ciphersuites:\n"
	"      - TLS_AES_128_GCM_SHA256\n"
	"    minimumtls: tls1.2\n"
	"  debug:\n"
	"    addr: localhost:5001\n"
	"    prometheus:\n"
	"      enabled: true\n"
	"      path: /metrics\n"
	"  headers:\n"
	"    X-Content-Type-Options: [nosniff]\n"
	"  http2:\n"
	"    disabled: false\n"
	"notifications:\n"
	"  events:\n"
	"    includereferences: true\n"
	"  endpoints:\n"
	"    - name: alistener\n"
	"      disabled: false\n"
	"      url: https://my.listener.com/event\n"
	"      headers: <http.Header>\n"
	"      timeout: 1s\n"
	"redis:\n"
	"  addr: localhost:6379\n"
	"  password: asecret\n"
	"  db: 0\n"
	"health:\n"
	"  storagedriver:\n"
	"    enabled: true\n"
	"    interval: 10s\n"
	"    threshold: 3\n"
	"proxy:\n"
	"  remoteurl: https://registry-1.docker.io\n"
	/* Distribution's documentation writes [username] and [password] here, which YAML reads
	 * as lists (Distribution itself refuses them too). */
	"  username: proxyuser\n"
	"  password: asecretproxypassword\n"
	"validation:\n"
	"  manifests:\n"
	"    urls:\n"
	"      allow:\n"
	"        - ^https?://([^/]+\\.)*example\\.com/\n"
	"compatibility:\n"
	"  schema1:\n"
	"    enabled: true\n"
	"berth:\n"
	"  http:\n"
	"    threads: 8\n"
	"  limits:\n"
	"    connectiontimeout: 2m\n"
	"    maxconnections: 4096\n"
	"    manifestsize: 8MiB\n"
	"    uploadexpiry: 12h\n"
	"  metadata:\n"
	"    sync: on\n";

static void test_full_distribution_example(void)
{
	struct berth_config *c = NULL;
	const char *log;

	capture_begin();
	CHECK_EQ_INT(load(write_cfg(full_example), &c), BERTH_OK);
	log = capture_end();
	CHECK_STR(errbuf, "");
	if (!c) return;
	CHECK_EQ_INT(c->version_seen, 1);
	CHECK_EQ_INT(c->log_level, BERTH_LOG_DEBUG);
	CHECK_EQ_INT(c->access_log, 0);
	CHECK_STR(c->http_addr, "0.0.0.0:5443");
	CHECK_STR(c->tls_certificate, "/path/to/x509/public");
	CHECK_STR(c->tls_key, "/path/to/x509/private");
	CHECK_STR(c->root, "/srv/registry");
	CHECK_EQ_INT(c->delete_enabled, 1);
	CHECK_EQ_INT(c->http_threads, 8);
	CHECK_EQ_INT(c->connection_timeout, 120);
	CHECK_EQ_INT(c->max_connections, 4096);
	CHECK_EQ_INT(c->manifest_max, 8 * 1024 * 1024);
	CHECK_EQ_INT(c->upload_expiry, 12 * 3600);
	CHECK_EQ_INT(c->sync_metadata, 1);
	/* proxy: Docker Hub through the registry, the default upstream. */
	CHECK_EQ_INT(c->nupstreams, 1);
	if (c->nupstreams == 1) {
		CHECK_STR(c->upstreams[0].prefix, "docker.io");
		CHECK_STR(c->upstreams[0].url, "https://registry-1.docker.io");
		CHECK_STR(c->upstreams[0].username, "proxyuser");
		CHECK_STR(c->upstreams[0].password, "asecretproxypassword");
		CHECK_EQ_INT(c->upstreams[0].is_default, 1);
		CHECK_EQ_INT(c->upstreams[0].dockerhub, 1);
	}

	/* Each unknown key is reported once, at the top of what was skipped. */
	const char *unknown[] = {"log.formatter", "log.fields",    "log.hooks",
				 "loglevel",      "storage.filesystem.maxthreads",
				 "storage.cache", "storage.maintenance",
				 "storage.redirect", "storage.tag", "reporting", "middleware",
				 "http.prefix",   "http.host",     "http.secret", "http.relativeurls",
				 "http.draintimeout", "http.tls.ciphersuites", "http.tls.minimumtls",
				 "http.debug",    "http.headers",  "http.http2", "notifications",
				 "redis",         "health",        "validation",
				 "compatibility"};
	char line[128];
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		snprintf(line, sizeof line, "config: ignoring unknown key %s\n", unknown[i]);
		if (count(log, line) != 1) fprintf(stderr, "  (missing or repeated: %s)\n", unknown[i]);
		CHECK_EQ_INT(count(log, line), 1);
	}
	CHECK_EQ_INT(count(log, "ignoring unknown key"), (int)(sizeof unknown / sizeof unknown[0]));
	/* Known keys are never reported; values (secrets among them) never reach the log. */
	CHECK(strstr(log, "http.addr") == NULL);
	CHECK(strstr(log, "storage.filesystem\n") == NULL);
	CHECK(strstr(log, "asecretforlocaldevelopment") == NULL);
	CHECK(strstr(log, "asecret") == NULL);
	berth_config_free(c);
}

static void test_env_overrides_file(void)
{
	const char *text = "log:\n"
			   "  level: error\n"
			   "http:\n"
			   "  addr: :5000\n"
			   "  tls:\n"
			   "    certificate: /file/cert.pem\n"
			   "    key: /file/key.pem\n"
			   "storage:\n"
			   "  filesystem:\n"
			   "    rootdirectory: /from/file\n"
			   "berth:\n"
			   "  http:\n"
			   "    threads: 4\n";
	const char *path = write_cfg(text);
	struct berth_config *c = NULL;

	setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:6000", 1);
	setenv("REGISTRY_LOG_LEVEL", "WARNING", 1);
	setenv("REGISTRY_LOG_ACCESSLOG_DISABLED", "true", 1);
	setenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/from/env", 1);
	setenv("REGISTRY_STORAGE_DELETE_ENABLED", "1", 1);
	setenv("REGISTRY_HTTP_TLS_CERTIFICATE", "/env/cert.pem", 1);
	setenv("REGISTRY_HTTP_TLS_KEY", "/env/key.pem", 1);
	setenv("REGISTRY_BERTH_HTTP_THREADS", "16", 1);
	setenv("REGISTRY_BERTH_LIMITS_CONNECTIONTIMEOUT", "30s", 1);
	setenv("REGISTRY_BERTH_LIMITS_MAXCONNECTIONS", "10", 1);
	setenv("REGISTRY_BERTH_LIMITS_MANIFESTSIZE", "512KiB", 1);
	setenv("REGISTRY_BERTH_LIMITS_UPLOADEXPIRY", "30m", 1);
	setenv("REGISTRY_BERTH_METADATA_SYNC", "yes", 1);
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	clear_registry_env();
	if (!c) return;
	CHECK_STR(c->http_addr, "127.0.0.1:6000");
	CHECK_EQ_INT(c->log_level, BERTH_LOG_WARN);
	CHECK_EQ_INT(c->access_log, 0);
	CHECK_STR(c->root, "/from/env");
	CHECK_EQ_INT(c->delete_enabled, 1);
	CHECK_STR(c->tls_certificate, "/env/cert.pem");
	CHECK_STR(c->tls_key, "/env/key.pem");
	CHECK_EQ_INT(c->http_threads, 16);
	CHECK_EQ_INT(c->connection_timeout, 30);
	CHECK_EQ_INT(c->max_connections, 10);
	CHECK_EQ_INT(c->manifest_max, 512 * 1024);
	CHECK_EQ_INT(c->upload_expiry, 1800);
	CHECK_EQ_INT(c->sync_metadata, 1);
	berth_config_free(c);

	/* Without the environment the file's values stand. */
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	if (!c) return;
	CHECK_STR(c->http_addr, ":5000");
	CHECK_EQ_INT(c->log_level, BERTH_LOG_ERROR);
	CHECK_STR(c->root, "/from/file");
	CHECK_EQ_INT(c->http_threads, 4);
	berth_config_free(c);

	/* An empty variable means "unset": TLS configured in the file can be switched off, and
	 * other keys return to their defaults. */
	setenv("REGISTRY_HTTP_TLS_CERTIFICATE", "", 1);
	setenv("REGISTRY_HTTP_TLS_KEY", "", 1);
	setenv("REGISTRY_BERTH_HTTP_THREADS", "", 1);
	setenv("REGISTRY_HTTP_ADDR", "", 1);
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	clear_registry_env();
	if (!c) return;
	CHECK(c->tls_certificate == NULL);
	CHECK(c->tls_key == NULL);
	CHECK_EQ_INT(c->http_threads, expected_threads());
	CHECK_STR(c->http_addr, "127.0.0.1:5000");
	berth_config_free(c);
}

static void test_env_without_file(void)
{
	struct berth_config *c = NULL;

	setenv("REGISTRY_HTTP_ADDR", "[::1]:5001", 1);
	setenv("REGISTRY_STORAGE", "filesystem", 1);
	CHECK_EQ_INT(load(NULL, &c), BERTH_OK);
	clear_registry_env();
	if (!c) return;
	CHECK_STR(c->http_addr, "[::1]:5001");
	berth_config_free(c);
}

static void test_env_unknown_variables_warn_by_name_only(void)
{
	struct berth_config *c = NULL;
	const char *log;

	setenv("REGISTRY_HTTP_SECRET", "topsecretvalue", 1);
	setenv("REGISTRY_CONFIGURATION_PATH", "/etc/docker/registry/config.yml", 1);
	capture_begin();
	CHECK_EQ_INT(load(NULL, &c), BERTH_OK);
	log = capture_end();
	clear_registry_env();
	CHECK_EQ_INT(count(log, "ignoring unknown environment variable REGISTRY_HTTP_SECRET\n"), 1);
	CHECK(strstr(log, "topsecretvalue") == NULL);
	CHECK(strstr(log, "REGISTRY_CONFIGURATION_PATH") == NULL);
	berth_config_free(c);
}

static void test_storage_driver_from_env_replaces_file(void)
{
	const char *path = write_cfg("storage:\n  s3:\n    bucket: b\n");
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(path, &c), BERTH_EINVAL);
	CHECK(c == NULL);
	setenv("REGISTRY_STORAGE", "filesystem", 1);
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	clear_registry_env();
	berth_config_free(c);
}

static void test_null_values_mean_default(void)
{
	const char *text = "version:\n"
			   "http:\n"
			   "  addr:\n"
			   "  tls:\n"
			   "    certificate:\n"
			   "    key: ~\n"
			   "storage:\n"
			   "  filesystem:\n"
			   "  delete:\n"
			   "    enabled: null\n"
			   "berth:\n";
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(write_cfg(text), &c), BERTH_OK);
	if (!c) return;
	CHECK_STR(c->http_addr, "127.0.0.1:5000");
	CHECK(c->tls_certificate == NULL);
	CHECK(c->tls_key == NULL);
	CHECK_STR(c->root, "./data");
	CHECK_EQ_INT(c->delete_enabled, 0);
	berth_config_free(c);

	/* An explicitly empty TLS path is "no TLS" too (Distribution tests Certificate == ""). */
	c = NULL;
	CHECK_EQ_INT(load(write_cfg("http:\n  tls:\n    certificate: ''\n    key: \"\"\n"), &c),
		     BERTH_OK);
	if (!c) return;
	CHECK(c->tls_certificate == NULL);
	CHECK(c->tls_key == NULL);
	berth_config_free(c);
}

static void test_oversized_file_is_refused(void)
{
	static char big[(1024 * 1024) + 64];
	struct berth_config *c = (struct berth_config *)&c;

	memset(big, '#', sizeof big - 2);
	big[sizeof big - 2] = '\n';
	big[sizeof big - 1] = '\0';
	CHECK_EQ_INT(load(write_cfg(big), &c), BERTH_EINVAL);
	CHECK(c == NULL);
	CHECK(strstr(errbuf, "larger than") != NULL);
}

struct err_case {
	const char *yaml;
	int line;          /* 0: no line in the message */
	const char *key;   /* must appear in the message */
	const char *extra; /* must also appear, or NULL */
};

static void test_file_errors_name_file_line_key(void)
{
	static const struct err_case cases[] = {
		{"http:\n  addr:\n    host: x\n", 2, "http.addr", "found a mapping"},
		{"log:\n  accesslog:\n    disabled: [true]\n", 3, "log.accesslog.disabled",
		 "found a list"},
		{"http: 5000\n", 1, "http", "expected a mapping"},
		{"storage:\n  delete:\n    enabled: maybe\n", 3, "storage.delete.enabled",
		 "not a boolean"},
		{"berth:\n  http:\n    threads: many\n", 3, "berth.http.threads", "not a non-negative"},
		{"berth:\n  http:\n    threads: 0\n", 3, "berth.http.threads", "out of range (1..256)"},
		{"berth:\n  http:\n    threads: 257\n", 3, "berth.http.threads", "out of range"},
		{"berth:\n  http:\n    threads: 99999999999999999999999\n", 3, "berth.http.threads",
		 "out of range"},
		{"berth:\n  limits:\n    maxconnections: -1\n", 3, "berth.limits.maxconnections",
		 "not a non-negative"},
		{"berth:\n  limits:\n    maxconnections: 0\n", 3, "berth.limits.maxconnections",
		 "out of range"},
		{"berth:\n  limits:\n    manifestsize: 4XB\n", 3, "berth.limits.manifestsize",
		 "not a size"},
		{"berth:\n  limits:\n    uploadexpiry: 1.5s\n", 3, "berth.limits.uploadexpiry",
		 "whole seconds"},
		{"berth:\n  limits:\n    uploadexpiry: 0\n", 3, "berth.limits.uploadexpiry",
		 "out of range"},
		{"berth:\n  limits:\n    connectiontimeout: 25h\n", 3, "berth.limits.connectiontimeout",
		 "out of range"},
		{"log:\n  level: verbose\n", 2, "log.level", "not a log level"},
		{"http:\n  addr: 5000\n", 2, "http.addr", "not an address"},
		{"http:\n  addr: ':99999'\n", 2, "http.addr", "not an address"},
		{"http:\n  addr: \"a\\0b:5000\"\n", 2, "http.addr", "NUL"},
		{"# comment\nstorage:\n  s3:\n    bucket: b\n", 3, "storage",
		 "storage driver s3 is not supported (filesystem only)"},
		{"storage:\n  inmemory:\n", 2, "storage", "storage driver inmemory is not supported"},
		{"storage:\n  filesystem:\n    rootdirectory: /a\n  gcs:\n    bucket: b\n", 4, "storage",
		 "more than one storage driver"},
		{"storage:\n  filesystem:\n    rootdirectory: ''\n", 3,
		 "storage.filesystem.rootdirectory", "must not be empty"},
		{"http:\n  addr: :5000\n  addr: :6000\n", 3, "http.addr", "duplicate key (first on line 2)"},
		{"base: &b\n  addr: :1\nhttp:\n  <<: *b\n", 4, "http", "merge keys"},
		{"http:\n  addr: [unclosed\n", 3, "invalid YAML", NULL},
		{"- a\n- b\n", 1, "top level must be a mapping", NULL},
		{"? [a, b]\n: c\n", 1, "keys must be single values", NULL},
		{"http:\n  tls:\n    certificate: /c.pem\n", 0, "http.tls.certificate",
		 "http.tls.key is not"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = (struct berth_config *)&c;
		const char *path = write_cfg(cases[i].yaml);
		char want[160];
		berth_err rc;
		int ok = 1;

		capture_begin();
		rc = load(path, &c);
		(void)capture_end();

		if (rc == BERTH_OK) berth_config_free(c);
		if (rc != BERTH_EINVAL || c != NULL) ok = 0;
		if (!strstr(errbuf, path) || !strstr(errbuf, cases[i].key)) ok = 0;
		if (strncmp(errbuf, "config: ", 8) != 0 || strchr(errbuf, '\n')) ok = 0;
		if (cases[i].extra && !strstr(errbuf, cases[i].extra)) ok = 0;
		if (cases[i].line) {
			snprintf(want, sizeof want, "%s:%d:", path, cases[i].line);
			if (!strstr(errbuf, want)) ok = 0;
		}
		if (!ok)
			fprintf(stderr, "  case %zu: rc=%d msg=\"%s\"\n", i, (int)rc, errbuf);
		CHECK(ok);
	}
}

static void test_error_line_deep_in_full_file(void)
{
	/* The full example with its last value made invalid: the message carries that line. */
	static char text[sizeof full_example];
	struct berth_config *c = NULL;
	char want[200], *sync;
	const char *path;
	int line = 0;

	memcpy(text, full_example, sizeof full_example);
	sync = strstr(text, "sync: on");
	CHECK(sync != NULL);
	if (!sync) return;
	memcpy(sync, "sync: xx", 8);
	for (const char *p = text; p < sync; p++)
		if (*p == '\n') line++;
	path = write_cfg(text);
	capture_begin();
	CHECK_EQ_INT(load(path, &c), BERTH_EINVAL);
	(void)capture_end();
	CHECK(c == NULL);
	snprintf(want, sizeof want, "config: %s:%d: berth.metadata.sync: 'xx' is not a boolean", path,
		 line + 1);
	if (!strstr(errbuf, want)) fprintf(stderr, "  got \"%s\" want \"%s\"\n", errbuf, want);
	CHECK(strstr(errbuf, want) == errbuf);
}

static void test_missing_file(void)
{
	struct berth_config *c = (struct berth_config *)&c;
	char path[160], want[220];

	snprintf(path, sizeof path, "%s/does-not-exist.yml", tmpdir);
	snprintf(want, sizeof want, "config: cannot open %s: No such file or directory", path);
	CHECK_EQ_INT(load(path, &c), BERTH_ENOTFOUND);
	CHECK(c == NULL);
	CHECK_STR(errbuf, want);

	CHECK(load(tmpdir, &c) != BERTH_OK);
	CHECK(c == NULL);
	CHECK(strstr(errbuf, tmpdir) != NULL);
}

static void test_env_errors_name_the_variable(void)
{
	static const struct {
		const char *name, *value, *extra;
	} cases[] = {
		{"REGISTRY_BERTH_HTTP_THREADS", "abc", "not a non-negative integer"},
		{"REGISTRY_BERTH_HTTP_THREADS", "1000", "out of range"},
		{"REGISTRY_LOG_ACCESSLOG_DISABLED", "perhaps", "not a boolean"},
		{"REGISTRY_LOG_LEVEL", "loud", "not a log level"},
		{"REGISTRY_HTTP_ADDR", "localhost", "not an address"},
		{"REGISTRY_BERTH_LIMITS_MANIFESTSIZE", "4M", "not a size"},
		{"REGISTRY_BERTH_LIMITS_UPLOADEXPIRY", "1d", "not a duration"},
		{"REGISTRY_STORAGE", "s3", "storage driver s3 is not supported (filesystem only)"},
		{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "", NULL}, /* empty = default: ok */
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc;

		setenv(cases[i].name, cases[i].value, 1);
		rc = load(NULL, &c);
		clear_registry_env();
		if (!cases[i].extra) {
			CHECK_EQ_INT(rc, BERTH_OK);
			berth_config_free(c);
			continue;
		}
		CHECK_EQ_INT(rc, BERTH_EINVAL);
		CHECK(c == NULL);
		if (!strstr(errbuf, cases[i].name) || !strstr(errbuf, cases[i].extra))
			fprintf(stderr, "  case %zu: \"%s\"\n", i, errbuf);
		CHECK(strstr(errbuf, cases[i].name) != NULL);
		CHECK(strstr(errbuf, cases[i].extra) != NULL);
		if (rc == BERTH_OK) berth_config_free(c);
	}
}

/* Sets one environment variable, loads with no file; returns rc and the config. */
static berth_err load_env(const char *name, const char *value, struct berth_config **c)
{
	berth_err rc;

	setenv(name, value, 1);
	rc = load(NULL, c);
	clear_registry_env();
	return rc;
}

static void test_size_suffixes(void)
{
	static const struct {
		const char *in;
		unsigned long long want; /* 0: invalid */
	} cases[] = {
		{"4194304", 4194304},
		{"4MiB", 4ull << 20},
		{"4mib", 4ull << 20},
		{"4 MiB", 4ull << 20},
		{"4MB", 4000000},
		{"512KiB", 512ull << 10},
		{"2KB", 2000},
		{"100B", 100},
		{"1GiB", 1ull << 30},
		{"1GB", 1000000000},
		{"1TiB", 0},                  /* over the 1 GiB cap */
		{"2GiB", 0},                  /* over the 1 GiB cap */
		{"18446744073709551615GiB", 0}, /* overflows */
		{"0", 0},
		{"4M", 0},
		{"4K", 0},
		{"MiB", 0},
		{"4.5MiB", 0},
		{"-1", 0},
		{"4MiBs", 0},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc = load_env("REGISTRY_BERTH_LIMITS_MANIFESTSIZE", cases[i].in, &c);
		if (cases[i].want) {
			CHECK_EQ_INT(rc, BERTH_OK);
			if (c) CHECK_EQ_INT(c->manifest_max, cases[i].want);
			if (rc != BERTH_OK) fprintf(stderr, "  size \"%s\": %s\n", cases[i].in, errbuf);
		} else {
			CHECK_EQ_INT(rc, BERTH_EINVAL);
			if (rc == BERTH_OK) fprintf(stderr, "  size \"%s\" accepted\n", cases[i].in);
		}
		berth_config_free(c);
	}
}

static void test_duration_suffixes(void)
{
	static const struct {
		const char *in;
		long want; /* 0: invalid */
	} cases[] = {
		{"86400", 86400}, {"24h", 86400},   {"30m", 1800},     {"90s", 90},
		{"1h30m", 5400},  {"1.5h", 5400},   {"168h", 604800},  {"2000ms", 2},
		{"0.5m", 30},     {"1m0s", 60},     {"3000000us", 3},  {"1h0m0.5s", 0},
		{"1500ms", 0},    {"1d", 0},        {"h", 0},          {"1h 30m", 0},
		{"-1h", 0},       {"+1h", 0},       {"0", 0},          {"1H", 0},
		{".", 0},         {"1.h", 3600},    {"99999999999999999999h", 0},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc = load_env("REGISTRY_BERTH_LIMITS_UPLOADEXPIRY", cases[i].in, &c);
		if (cases[i].want) {
			CHECK_EQ_INT(rc, BERTH_OK);
			if (c) CHECK_EQ_INT(c->upload_expiry, cases[i].want);
			if (rc != BERTH_OK) fprintf(stderr, "  duration \"%s\": %s\n", cases[i].in, errbuf);
		} else {
			CHECK_EQ_INT(rc, BERTH_EINVAL);
			if (rc == BERTH_OK) fprintf(stderr, "  duration \"%s\" accepted\n", cases[i].in);
		}
		berth_config_free(c);
	}

	/* connectiontimeout takes the same syntax; 0 turns the timeout off. */
	struct berth_config *c = NULL;
	CHECK_EQ_INT(load_env("REGISTRY_BERTH_LIMITS_CONNECTIONTIMEOUT", "0", &c), BERTH_OK);
	if (c) CHECK_EQ_INT(c->connection_timeout, 0);
	berth_config_free(c);
	c = NULL;
	CHECK_EQ_INT(load_env("REGISTRY_BERTH_LIMITS_CONNECTIONTIMEOUT", "5m", &c), BERTH_OK);
	if (c) CHECK_EQ_INT(c->connection_timeout, 300);
	berth_config_free(c);
}

/* berth.mirror's scalars: timeout in milliseconds, breaker in seconds, maxsize up to TiB. */
static void test_mirror_scalars(void)
{
	static const struct {
		const char *var, *in;
		long long want; /* -1: invalid */
	} cases[] = {
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "500ms", 500},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "3s", 3000},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "3", 3000}, /* a plain number is seconds */
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "1.5s", 1500},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "1ms", 1},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "10m", 600000},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "600001ms", -1},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "0", -1},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "0ms", -1},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "1500us", -1}, /* not whole milliseconds */
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "fast", -1},
		{"REGISTRY_BERTH_MIRROR_TIMEOUT", "99999999999999999999", -1},
		{"REGISTRY_BERTH_MIRROR_BREAKER", "0", 0},
		{"REGISTRY_BERTH_MIRROR_BREAKER", "2m", 120},
		{"REGISTRY_BERTH_MIRROR_BREAKER", "500ms", -1},
		{"REGISTRY_BERTH_MIRROR_BREAKER", "-1", -1},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "50GiB", 50ll << 30},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "50GB", 50000000000ll},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "2TiB", 2ll << 40},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "1TB", 1000000000000ll},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "0", 0},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "1048576", 1048576},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "9223372036854775808", -1},
		{"REGISTRY_BERTH_MIRROR_MAXSIZE", "50G", -1},
		{"REGISTRY_BERTH_MIRROR_KEEPDELETED", "false", 0},
		{"REGISTRY_BERTH_MIRROR_KEEPDELETED", "maybe", -1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc = load_env(cases[i].var, cases[i].in, &c);
		long long got = -1;
		if (c)
			got = strstr(cases[i].var, "TIMEOUT")   ? c->mirror_timeout_ms
			      : strstr(cases[i].var, "BREAKER") ? c->mirror_breaker
			      : strstr(cases[i].var, "MAXSIZE") ? c->mirror_maxsize
								: c->mirror_keep_deleted;
		CHECK_EQ_INT(rc, cases[i].want < 0 ? BERTH_EINVAL : BERTH_OK);
		CHECK_EQ_INT(got, cases[i].want);
		if (got != cases[i].want)
			fprintf(stderr, "  %s=%s: got %lld (%s)\n", cases[i].var, cases[i].in, got,
				errbuf);
		if (cases[i].want < 0) CHECK(strstr(errbuf, cases[i].var) != NULL);
		berth_config_free(c);
	}

	/* From the file, with the key named in the message. */
	struct berth_config *c = NULL;
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    timeout: 250ms\n    breaker: 1m\n"
				    "    keepdeleted: no\n    maxsize: 10 GiB\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->mirror_timeout_ms, 250);
		CHECK_EQ_INT(c->mirror_breaker, 60);
		CHECK_EQ_INT(c->mirror_keep_deleted, 0);
		CHECK_EQ_INT(c->mirror_maxsize, 10ll << 30);
	}
	berth_config_free(c);
	c = NULL;
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    timeout: 11m\n"), &c), BERTH_EINVAL);
	CHECK(strstr(errbuf, ":3: berth.mirror.timeout: '11m' is out of range (1..600000 ms)") !=
	      NULL);
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    timeout: 2.5ms\n"), &c), BERTH_EINVAL);
	CHECK(strstr(errbuf, "berth.mirror.timeout: '2.5ms' is not a duration in whole "
			     "milliseconds") != NULL);
	CHECK(c == NULL);
}

static void test_bool_spellings(void)
{
	static const struct {
		const char *in;
		int want; /* -1: invalid */
	} cases[] = {
		{"true", 1},  {"True", 1}, {"TRUE", 1}, {"yes", 1},   {"Yes", 1},    {"on", 1},
		{"ON", 1},    {"1", 1},    {"false", 0}, {"FALSE", 0}, {"no", 0},     {"No", 0},
		{"off", 0},   {"Off", 0},  {"0", 0},    {"y", -1},    {"2", -1},     {"enabled", -1},
		{"truee", -1}, {" true", -1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		char text[128];
		berth_err rc;

		/* Environment */
		rc = load_env("REGISTRY_STORAGE_DELETE_ENABLED", cases[i].in, &c);
		if (cases[i].want < 0) {
			CHECK_EQ_INT(rc, BERTH_EINVAL);
		} else {
			CHECK_EQ_INT(rc, BERTH_OK);
			if (c) CHECK_EQ_INT(c->delete_enabled, cases[i].want);
		}
		berth_config_free(c);
		c = NULL;

		/* File, quoted so leading spaces survive; plain and quoted read the same. */
		snprintf(text, sizeof text, "log:\n  accesslog:\n    disabled: '%s'\n", cases[i].in);
		rc = load(write_cfg(text), &c);
		if (cases[i].want < 0) {
			CHECK_EQ_INT(rc, BERTH_EINVAL);
		} else {
			CHECK_EQ_INT(rc, BERTH_OK);
			if (c) CHECK_EQ_INT(c->access_log, !cases[i].want);
		}
		berth_config_free(c);
	}
}

static void test_addresses(void)
{
	static const char *const good[] = {
		":5000",     "127.0.0.1:5000", "0.0.0.0:0",    "localhost:443",
		"registry.example.com:5000",   "[::1]:5000",   "[::]:80",
		"my-host:65535", ":080",
	};
	static const char *const bad[] = {
		"5000",      "localhost", "::1:5000", "[::1]",      "[::1]5000", "[zz]:1",
		"host:",     "host:65536", "host:abc", "-bad:1",    "bad-:1",    "a..b:1",
		"256.1.1.1:1", ":+80",     "[]:80",    "host:123456", "ho st:1", "a_b:1",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc = load_env("REGISTRY_HTTP_ADDR", good[i], &c);
		CHECK_EQ_INT(rc, BERTH_OK);
		if (rc) fprintf(stderr, "  addr \"%s\": %s\n", good[i], errbuf);
		if (c) CHECK_STR(c->http_addr, good[i]);
		berth_config_free(c);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct berth_config *c = NULL;
		berth_err rc = load_env("REGISTRY_HTTP_ADDR", bad[i], &c);
		CHECK_EQ_INT(rc, BERTH_EINVAL);
		if (rc == BERTH_OK) fprintf(stderr, "  addr \"%s\" accepted\n", bad[i]);
		berth_config_free(c);
	}
}

static void test_log_levels(void)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{"debug", BERTH_LOG_DEBUG}, {"info", BERTH_LOG_INFO},   {"INFO", BERTH_LOG_INFO},
		{"warn", BERTH_LOG_WARN},   {"warning", BERTH_LOG_WARN}, {"error", BERTH_LOG_ERROR},
		{"trace", BERTH_LOG_DEBUG}, {"fatal", BERTH_LOG_ERROR},  {"panic", BERTH_LOG_ERROR},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		char text[64];

		snprintf(text, sizeof text, "log:\n  level: %s\n", cases[i].in);
		CHECK_EQ_INT(load(write_cfg(text), &c), BERTH_OK);
		if (c) CHECK_EQ_INT(c->log_level, cases[i].want);
		berth_config_free(c);
	}
}

static void test_version_other_than_0_1_warns(void)
{
	struct berth_config *c = NULL;
	const char *log;

	capture_begin();
	CHECK_EQ_INT(load(write_cfg("version: 0.2\n"), &c), BERTH_OK);
	log = capture_end();
	if (c) CHECK_EQ_INT(c->version_seen, 1);
	CHECK(strstr(log, "version '0.2' is not 0.1") != NULL);
	berth_config_free(c);
}

static void test_keys_are_case_sensitive_like_distribution(void)
{
	struct berth_config *c = NULL;
	const char *log;

	capture_begin();
	CHECK_EQ_INT(load(write_cfg("HTTP:\n  addr: :1\nhttp:\n  Addr: :2\n"), &c), BERTH_OK);
	log = capture_end();
	if (c) CHECK_STR(c->http_addr, "127.0.0.1:5000");
	CHECK_EQ_INT(count(log, "ignoring unknown key HTTP\n"), 1);
	CHECK_EQ_INT(count(log, "ignoring unknown key http.Addr\n"), 1);
	berth_config_free(c);
}

static void test_unknown_key_with_control_bytes_is_logged_on_one_line(void)
{
	struct berth_config *c = NULL;
	const char *log;

	capture_begin();
	CHECK_EQ_INT(load(write_cfg("\"bad\\nkey\\u001b[31m\": 1\n"), &c), BERTH_OK);
	log = capture_end();
	CHECK_EQ_INT(count(log, "ignoring unknown key bad?key?[31m\n"), 1);
	berth_config_free(c);
}

/* Access control berth cannot enforce must stop the start, never be skipped. */
static void test_access_control_sections_refused(void)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{"http:\n  tls:\n    certificate: /c\n    key: /k\n    clientcas:\n      - /ca.pem\n",
		 "http.tls.clientcas: not supported"},
		{"auth:\n  silly:\n    realm: r\n    service: s\n",
		 "auth.silly: authentication provider 'silly' is not supported (htpasswd, token)"},
		{"auth:\n  keystone:\n    url: x\n", "authentication provider 'keystone'"},
		{"auth:\n  htpasswd:\n    realm: r\n    path: /p\n    extra: 1\n",
		 "auth.htpasswd.extra: unknown authentication setting"},
		{"auth:\n  htpasswd:\n    realm: r\n", "auth.htpasswd.path is required"},
		{"auth:\n  htpasswd:\n", "auth.htpasswd.realm is required"},
		{"auth:\n  token:\n    realm: https://a/t\n    service: s\n    issuer: i\n",
		 "auth.token.rootcertbundle is required"},
		{"auth:\n  htpasswd:\n    realm: r\n    path: /p\n  token:\n    realm: x\n    "
		 "service: s\n    issuer: i\n    rootcertbundle: /b\n",
		 "are both configured"},
		{"auth:\n  htpasswd:\n    realm: 'a\"b'\n    path: /p\n", "must not contain quotes"},
		{"berth:\n  tokenissuer:\n    enabled: true\n    key: /k\n",
		 "auth.htpasswd.path is required when berth.tokenissuer.enabled"},
		{"berth:\n  access:\n    - users: [a]\n      repositories: [x]\n      actions: [pull]\n",
		 "berth.access needs authentication"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		CHECK_EQ_INT(load(write_cfg(cases[i].doc), &c), BERTH_EINVAL);
		if (!strstr(errbuf, cases[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, errbuf,
				cases[i].msg);
		CHECK(strstr(errbuf, cases[i].msg) != NULL);
		CHECK(c == NULL);
		berth_config_free(c);
	}
}

static const char *const auth_doc =
	"http:\n  addr: 10.0.0.1:5000\n"
	"auth:\n  htpasswd:\n    realm: Registry Realm\n    path: /etc/berth/htpasswd\n"
	"berth:\n"
	"  groups:\n    team-a: [alice, bob]\n    ops: carol\n"
	"  access:\n"
	"    - users: [alice, \"@team-a\"]\n"
	"      repositories: [\"team-a/*\", \"shared/**\"]\n"
	"      actions: [pull, push, delete]\n"
	"    - {users: [\"*\", anonymous], repositories: [public/**], actions: [pull]}\n"
	"    - users: \"@ops\"\n      repositories: \"**\"\n      actions: [\"*\"]\n";

static void test_auth_htpasswd_and_rules(void)
{
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(write_cfg(auth_doc), &c), BERTH_OK);
	if (!c) return;
	CHECK(berth_config_auth_enabled(c));
	CHECK_STR(c->htpasswd_realm, "Registry Realm");
	CHECK_STR(c->htpasswd_path, "/etc/berth/htpasswd");
	CHECK(c->token_realm == NULL && c->token_service == NULL);
	CHECK_EQ_INT(c->ngroups, 2);
	CHECK_STR(c->groups[0].name, "team-a");
	CHECK_EQ_INT(c->groups[0].nmembers, 2);
	CHECK_STR(c->groups[0].members[1], "bob");
	CHECK_STR(c->groups[1].name, "ops");
	CHECK_EQ_INT(c->groups[1].nmembers, 1);
	CHECK_EQ_INT(c->naccess, 3);
	CHECK_EQ_INT(c->access[0].nusers, 2);
	CHECK_STR(c->access[0].users[1], "@team-a");
	CHECK_EQ_INT(c->access[0].nrepos, 2);
	CHECK_STR(c->access[0].repos[1], "shared/**");
	CHECK_EQ_INT(c->access[0].actions, BERTH_ACTION_PULL | BERTH_ACTION_PUSH | BERTH_ACTION_DELETE);
	CHECK_EQ_INT(c->access[1].actions, BERTH_ACTION_PULL);
	CHECK_STR(c->access[1].users[1], "anonymous");
	CHECK_EQ_INT(c->access[2].actions, BERTH_ACTION_ALL);
	berth_config_free(c);
	c = NULL;

	/* Scalars stay overridable from the environment. */
	setenv("REGISTRY_AUTH_HTPASSWD_PATH", "/run/secrets/htpasswd", 1);
	CHECK_EQ_INT(load(write_cfg(auth_doc), &c), BERTH_OK);
	clear_registry_env();
	if (c) CHECK_STR(c->htpasswd_path, "/run/secrets/htpasswd");
	berth_config_free(c);
	c = NULL;

	/* htpasswd entirely from the environment. */
	setenv("REGISTRY_AUTH_HTPASSWD_REALM", "env realm", 1);
	setenv("REGISTRY_AUTH_HTPASSWD_PATH", "/h", 1);
	CHECK_EQ_INT(load(NULL, &c), BERTH_OK);
	clear_registry_env();
	if (c) CHECK(berth_config_auth_enabled(c) && strcmp(c->htpasswd_realm, "env realm") == 0);
	berth_config_free(c);
}

static void test_auth_rule_mistakes(void)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{"  access:\n    - users: [a]\n      repositories: [x]\n      actions: [pull, fly]\n",
		 ":9: berth.access[0].actions: 'fly' is not an action"},
		{"  access:\n    - users: [a]\n      repositories: [x]\n", "a rule needs actions"},
		{"  access:\n    - users: [a]\n      repositories: [Team/X]\n      actions: [pull]\n",
		 "'Team/X' is not a repository pattern"},
		{"  access:\n    - users: [\"@nobody\"]\n      repositories: [x]\n      actions: [pull]\n",
		 "@nobody names no group"},
		{"  access:\n    - users: [a]\n      repos: [x]\n      actions: [pull]\n",
		 "berth.access[0].repos: unknown key"},
		{"  access:\n    - users: []\n      repositories: [x]\n      actions: [pull]\n",
		 "must not be an empty list"},
		{"  access:\n    users: [a]\n", "berth.access: expected a list of rules"},
		{"  access:\n    - just a string\n", "expected a mapping {users, repositories, actions}"},
		{"  groups:\n    g: [a]\n    g: [b]\n", "duplicate group g"},
		{"  groups:\n    g: {a: 1}\n", "berth.groups.g: expected a list"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[1024];
		struct berth_config *c = NULL;
		snprintf(doc, sizeof doc,
			 "auth:\n  htpasswd:\n    realm: r\n    path: /p\nberth:\n%s", cases[i].doc);
		CHECK_EQ_INT(load(write_cfg(doc), &c), BERTH_EINVAL);
		if (!strstr(errbuf, cases[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, errbuf,
				cases[i].msg);
		CHECK(strstr(errbuf, cases[i].msg) != NULL);
		CHECK(c == NULL);
		berth_config_free(c);
	}
}

static void test_auth_token_and_issuer(void)
{
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(write_cfg("auth:\n  token:\n    realm: https://auth.example/token\n"
				    "    service: registry.example\n    issuer: auth.example\n"
				    "    rootcertbundle: /etc/bundle.pem\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_STR(c->token_realm, "https://auth.example/token");
		CHECK_STR(c->token_service, "registry.example");
		CHECK_STR(c->token_issuer, "auth.example");
		CHECK_STR(c->token_rootcertbundle, "/etc/bundle.pem");
		CHECK_EQ_INT(c->tokenissuer_enabled, 0);
	}
	berth_config_free(c);
	c = NULL;

	/* The built-in issuer: realm defaults to this server's /auth/token. */
	CHECK_EQ_INT(load(write_cfg("http:\n  addr: 10.1.2.3:5443\n  tls:\n    certificate: /c\n"
				    "    key: /k\nauth:\n  htpasswd:\n    realm: r\n    path: /h\n"
				    "berth:\n  tokenissuer:\n    enabled: true\n    key: /key.pem\n"
				    "    expiry: 15m\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_STR(c->token_realm, "https://10.1.2.3:5443/auth/token");
		CHECK_STR(c->token_service, "berth");
		CHECK_STR(c->token_issuer, "berth");
		CHECK_EQ_INT(c->tokenissuer_expiry, 900);
		CHECK_STR(c->tokenissuer_key, "/key.pem");
	}
	berth_config_free(c);
	c = NULL;

	setenv("REGISTRY_BERTH_TOKENISSUER_ENABLED", "true", 1);
	setenv("REGISTRY_BERTH_TOKENISSUER_KEY", "/k.pem", 1);
	setenv("REGISTRY_AUTH_TOKEN_SERVICE", "my-registry", 1);
	setenv("REGISTRY_HTTP_ADDR", ":5000", 1);
	CHECK_EQ_INT(load(write_cfg("auth:\n  htpasswd:\n    realm: r\n    path: /h\n"), &c),
		     BERTH_OK);
	clear_registry_env();
	if (c) {
		CHECK_STR(c->token_realm, "http://127.0.0.1:5000/auth/token");
		CHECK_STR(c->token_service, "my-registry");
		CHECK_EQ_INT(c->tokenissuer_expiry, 300);
	}
	berth_config_free(c);
}

static void test_semver_and_golden(void)
{
	struct berth_config *c = NULL;

	/* Defaults: nothing tracked, nothing golden. */
	CHECK_EQ_INT(load(write_cfg("version: 0.1\n"), &c), BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->nsemver_repos, 0);
		CHECK_EQ_INT(c->semver_float_major + c->semver_float_minor + c->semver_float_latest, 0);
		CHECK_EQ_INT(c->semver_immutable, 0);
		CHECK_EQ_INT(c->ngolden_repos, 0);
		CHECK_EQ_INT(c->ngolden_require, 0);
	}
	berth_config_free(c);
	c = NULL;

	/* repositories alone: every float on, mutable. */
	CHECK_EQ_INT(load(write_cfg("semver:\n  repositories: [\"team/*\", \"golden/**\"]\n"), &c),
		     BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->nsemver_repos, 2);
		CHECK_STR(c->semver_repos[1], "golden/**");
		CHECK_EQ_INT(c->semver_float_major, 1);
		CHECK_EQ_INT(c->semver_float_minor, 1);
		CHECK_EQ_INT(c->semver_float_latest, 1);
		CHECK_EQ_INT(c->semver_immutable, 0);
	}
	berth_config_free(c);
	c = NULL;

	/* A subset of floats, immutable; golden as a plain list. */
	CHECK_EQ_INT(load(write_cfg("semver:\n  repositories: app\n  float: [minor]\n"
				    "  immutable: true\ngolden: [\"golden/*\", base]\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->nsemver_repos, 1);
		CHECK_STR(c->semver_repos[0], "app");
		CHECK_EQ_INT(c->semver_float_major, 0);
		CHECK_EQ_INT(c->semver_float_minor, 1);
		CHECK_EQ_INT(c->semver_float_latest, 0);
		CHECK_EQ_INT(c->semver_immutable, 1);
		CHECK_EQ_INT(c->ngolden_repos, 2);
		CHECK_STR(c->golden_repos[0], "golden/*");
		CHECK_STR(c->golden_repos[1], "base");
		CHECK_EQ_INT(c->ngolden_require, 0);
	}
	berth_config_free(c);
	c = NULL;

	/* float: [] turns floats off; golden as a mapping with require. */
	CHECK_EQ_INT(load(write_cfg("semver:\n  repositories: [\"**\"]\n  float: []\n"
				    "golden:\n  repositories: [\"golden/**\"]\n"
				    "  require: [\"apps/*\", \"svc/**\"]\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->semver_float_major + c->semver_float_minor + c->semver_float_latest, 0);
		CHECK_EQ_INT(c->ngolden_repos, 1);
		CHECK_STR(c->golden_repos[0], "golden/**");
		CHECK_EQ_INT(c->ngolden_require, 2);
		CHECK_STR(c->golden_require[1], "svc/**");
	}
	berth_config_free(c);
}

static void test_semver_and_golden_mistakes(void)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{"semver:\n  repositories: [x]\n  float: [patch]\n",
		 ":3: semver.float: 'patch' is not a floating tag"},
		{"semver:\n  repositories: [Team/X]\n", "'Team/X' is not a repository pattern"},
		{"semver:\n  repositories: [x]\n  immutable: maybe\n",
		 "semver.immutable: expected true or false"},
		{"semver:\n  repos: [x]\n", "semver.repos: unknown key"},
		{"semver: [x]\n", "semver: expected a mapping"},
		{"semver:\n  repositories: [x]\n  repositories: [y]\n",
		 "semver.repositories: duplicate key"},
		{"golden:\n  require: [\"apps/*\"]\n", "golden.require needs golden.repositories"},
		{"golden:\n  repositories: [a]\n  bases: [b]\n", "golden.bases: unknown key"},
		{"golden: [\"a//b\"]\n", "'a//b' is not a repository pattern"},
		{"golden: []\n", "must not be an empty list"},
		{"golden: [a]\ngolden: [b]\n", "golden: duplicate key"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct berth_config *c = NULL;
		CHECK_EQ_INT(load(write_cfg(cases[i].doc), &c), BERTH_EINVAL);
		if (!strstr(errbuf, cases[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, errbuf,
				cases[i].msg);
		CHECK(strstr(errbuf, cases[i].msg) != NULL);
		CHECK(c == NULL);
		berth_config_free(c);
	}
}

/* The brief's example, berth.mirror part. */
static const char *const mirror_doc = "berth:\n"
				      "  mirror:\n"
				      "    timeout: 3s\n"
				      "    breaker: 30s\n"
				      "    keepdeleted: true\n"
				      "    maxsize: 50GiB\n"
				      "    pins: [\"docker.io/library/**\"]\n"
				      "    upstreams:\n"
				      "      - prefix: docker.io\n"
				      "        url: https://registry-1.docker.io\n"
				      "        username: bob\n"
				      "        password: pw\n"
				      "        default: true\n"
				      "      - prefix: ghcr.io\n"
				      "        url: https://ghcr.io\n"
				      "    sync:\n"
				      "      - repository: docker.io/library/alpine\n"
				      "        semver: \"^3\"\n"
				      "        platform: linux/amd64     # or \"all\"\n"
				      "        interval: 6h\n";

static void test_mirror_full(void)
{
	struct berth_config *c = NULL;

	CHECK_EQ_INT(load(write_cfg(mirror_doc), &c), BERTH_OK);
	CHECK_STR(errbuf, "");
	if (!c) return;
	CHECK_EQ_INT(c->mirror_timeout_ms, 3000);
	CHECK_EQ_INT(c->mirror_breaker, 30);
	CHECK_EQ_INT(c->mirror_keep_deleted, 1);
	CHECK_EQ_INT(c->mirror_maxsize, 50ll << 30);
	CHECK_EQ_INT(c->nmirror_pins, 1);
	if (c->nmirror_pins == 1) CHECK_STR(c->mirror_pins[0], "docker.io/library/**");
	CHECK_EQ_INT(c->nupstreams, 2);
	if (c->nupstreams == 2) {
		const struct berth_mirror_upstream *u = c->upstreams;
		CHECK_STR(u[0].prefix, "docker.io");
		CHECK_STR(u[0].url, "https://registry-1.docker.io");
		CHECK_STR(u[0].username, "bob");
		CHECK_STR(u[0].password, "pw");
		CHECK_EQ_INT(u[0].is_default, 1);
		CHECK_EQ_INT(u[0].dockerhub, 1);
		CHECK_STR(u[1].prefix, "ghcr.io");
		CHECK_STR(u[1].url, "https://ghcr.io");
		CHECK(u[1].username == NULL && u[1].password == NULL);
		CHECK_EQ_INT(u[1].is_default, 0);
		CHECK_EQ_INT(u[1].dockerhub, 0);
	}
	CHECK_EQ_INT(c->nmirror_syncs, 1);
	if (c->nmirror_syncs == 1) {
		CHECK_STR(c->mirror_syncs[0].repo, "docker.io/library/alpine");
		CHECK_STR(c->mirror_syncs[0].semver, "^3");
		CHECK_STR(c->mirror_syncs[0].platform, "linux/amd64");
		CHECK_EQ_INT(c->mirror_syncs[0].interval, 21600);
	}
	berth_config_free(c);
	c = NULL;

	/* Optional parts left out or spelt otherwise: URLs are normalised, Docker Hub is known by
	 * its host as well as by the prefix, a sync entry defaults to every tag, every platform,
	 * every 6 h. */
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    pins: \"hub/**\"\n    upstreams:\n"
				    "      - {prefix: hub, url: \"https://index.docker.io/\"}\n"
				    "      - {prefix: hubx, url: \"HTTP://127.0.0.1:5001//\"}\n"
				    "      - {prefix: reg.example.com/team, url: "
				    "\"https://Reg.Example.com:8443/v/\", default: ~}\n"
				    "      - {prefix: v6, url: \"http://[::1]:5000\"}\n"
				    "    sync:\n      - repository: hub/library/alpine\n"
				    "      - repository: hubx/a/b\n        platform: all\n"
				    "        semver: \">=1.0.0 <2.0.0 || 3.x\"\n        interval: 90\n"
				    "      - repository: reg.example.com/team/app\n"
				    "        platform: linux/arm64/v8\n"),
			  &c),
		     BERTH_OK);
	if (c) {
		CHECK_EQ_INT(c->nupstreams, 4);
		CHECK_EQ_INT(c->nmirror_pins, 1);
	}
	if (c && c->nupstreams == 4) {
		CHECK_STR(c->upstreams[0].url, "https://index.docker.io");
		CHECK_EQ_INT(c->upstreams[0].dockerhub, 1);
		CHECK_EQ_INT(c->upstreams[0].is_default, 0);
		CHECK_STR(c->upstreams[1].url, "http://127.0.0.1:5001");
		CHECK_EQ_INT(c->upstreams[1].dockerhub, 0);
		CHECK_STR(c->upstreams[2].url, "https://Reg.Example.com:8443/v");
		CHECK_STR(c->upstreams[3].url, "http://[::1]:5000");
	}
	if (c && c->nmirror_syncs == 3) {
		CHECK(c->mirror_syncs[0].semver == NULL);
		CHECK(c->mirror_syncs[0].platform == NULL);
		CHECK_EQ_INT(c->mirror_syncs[0].interval, 21600);
		CHECK(c->mirror_syncs[1].platform == NULL);
		CHECK_STR(c->mirror_syncs[1].semver, ">=1.0.0 <2.0.0 || 3.x");
		CHECK_EQ_INT(c->mirror_syncs[1].interval, 90);
		CHECK_STR(c->mirror_syncs[2].platform, "linux/arm64/v8");
	} else {
		CHECK(0);
	}
	berth_config_free(c);
	c = NULL;

	/* An empty mirror section is no mirror. */
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n"), &c), BERTH_OK);
	if (c) CHECK_EQ_INT(c->nupstreams, 0);
	berth_config_free(c);
}

/* Each mistake names its key; no message ever shows a password (s3cr3t is in every document
 * that has one). */
static void test_mirror_mistakes(void)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{"    upstreams:\n      - url: https://ghcr.io\n",
		 ":10: berth.mirror.upstreams[0]: an upstream needs berth.mirror.upstreams[0].prefix"},
		{"    upstreams:\n      - prefix: ghcr.io\n        password: s3cr3t\n",
		 "an upstream needs berth.mirror.upstreams[0].url"},
		{"    upstreams:\n      - {prefix: Docker.IO, url: \"https://x\"}\n",
		 "berth.mirror.upstreams[0].prefix: 'Docker.IO' is not a repository name"},
		{"    upstreams:\n      - {prefix: \"docker.io/\", url: \"https://x\"}\n",
		 "upstreams[0].prefix: 'docker.io/' is not a repository name"},
		{"    upstreams:\n      - {prefix: docker.io, url: \"https://a\"}\n"
		 "      - {prefix: docker.io, url: \"https://b\"}\n",
		 ":11: berth.mirror.upstreams[1].prefix: 'docker.io' is already the prefix of "
		 "berth.mirror.upstreams[0] (line 10)"},
		{"    upstreams:\n      - {prefix: docker.io, url: \"https://a\"}\n"
		 "      - {prefix: docker.io/library, url: \"https://b\"}\n",
		 "upstreams[1].prefix: 'docker.io/library' and 'docker.io' of "
		 "berth.mirror.upstreams[0] (line 10) overlap"},
		{"    upstreams:\n      - {prefix: a/b/c, url: \"https://a\"}\n"
		 "      - {prefix: a/b, url: \"https://b\"}\n",
		 "upstreams[1].prefix: 'a/b' and 'a/b/c' of berth.mirror.upstreams[0] (line 10) "
		 "overlap"},
		{"    upstreams:\n      - {prefix: a, url: \"ftp://a\"}\n",
		 "berth.mirror.upstreams[0].url: 'ftp://a' must start with http:// or https://"},
		{"    upstreams:\n      - {prefix: a, url: \"a.example\"}\n",
		 "upstreams[0].url: 'a.example' must start with http:// or https://"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a/v2?x=1\"}\n",
		 "upstreams[0].url: 'https://a/v2?x=1' must not have a query or fragment"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a/#top\"}\n",
		 "upstreams[0].url: 'https://a/#top' must not have a query or fragment"},
		{"    upstreams:\n      - {prefix: a, url: \"https://bob:s3cr3t@a.example\"}\n",
		 "upstreams[0].url: the URL must not carry credentials (use username and password)"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a:0\"}\n",
		 "upstreams[0].url: 'https://a:0' has an invalid port"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a:65536\"}\n", "invalid port"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a:\"}\n", "invalid port"},
		{"    upstreams:\n      - {prefix: a, url: \"https:///v2\"}\n",
		 "upstreams[0].url: 'https:///v2' has no host"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a_b\"}\n", "invalid host name"},
		{"    upstreams:\n      - {prefix: a, url: \"https://300.1.1.1\"}\n",
		 "invalid IPv4 host"},
		{"    upstreams:\n      - {prefix: a, url: \"https://[::g]\"}\n", "invalid IPv6 host"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a b\"}\n",
		 "must be printable ASCII without spaces"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", default: true}\n",
		 ":10: berth.mirror.upstreams[0].default: only one upstream may be the default "
		 "(the proxy section's upstream (proxy.remoteurl, line 4) already is)"},
		{"    upstreams:\n      - {prefix: other.example/x, url: \"https://a\"}\n",
		 ":10: berth.mirror.upstreams[0].prefix: 'other.example/x' and 'other.example' of "
		 "the proxy section's upstream (proxy.remoteurl, line 4) overlap"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", default: maybe}\n",
		 "berth.mirror.upstreams[0].default: expected true or false"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", username: bob}\n",
		 "berth.mirror.upstreams[0].username is set but berth.mirror.upstreams[0].password "
		 "is not"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", password: s3cr3t}\n",
		 "berth.mirror.upstreams[0].password is set but berth.mirror.upstreams[0].username "
		 "is not"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", username: u, password: "
		 "{s3cr3t: 1}}\n",
		 "upstreams[0].password: expected a non-empty single value, found a mapping"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", username: u, password: "
		 "\"s3cr3t\\0\"}\n",
		 "upstreams[0].password: value contains a NUL byte"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", username: u, password: "
		 "s3cr3t, token: t}\n",
		 "berth.mirror.upstreams[0].token: unknown key (an upstream has prefix, url, username, "
		 "password, default)"},
		{"    upstreams:\n      - {prefix: a, url: \"https://a\", url: \"https://b\"}\n",
		 "upstreams[0].url: duplicate key"},
		{"    upstreams: {prefix: a}\n",
		 "berth.mirror.upstreams: expected a list of upstreams, found a mapping"},
		{"    upstreams:\n      - https://a\n",
		 "berth.mirror.upstreams[0]: expected a mapping {prefix, url, username, password, "
		 "default}"},
		{"    upstream:\n      - {prefix: a, url: \"https://a\"}\n",
		 ":9: berth.mirror.upstream: unknown key (berth.mirror has timeout, breaker, "
		 "keepdeleted, maxsize, pins, upstreams, sync)"},
		{"    upstreams: []\n    upstreams: []\n",
		 "berth.mirror.upstreams: duplicate key (first on line 9)"},
		{"    pins: [\"Docker.io/**\"]\n",
		 "berth.mirror.pins: 'Docker.io/**' is not a repository pattern"},
		{"    pins: []\n", "berth.mirror.pins: must not be an empty list"},
		{"    upstreams:\n      - {prefix: docker.io, url: \"https://a\"}\n"
		 "    sync:\n      - {semver: \"^3\"}\n",
		 ":12: berth.mirror.sync[0]: a sync entry needs berth.mirror.sync[0].repository"},
		{"    upstreams:\n      - {prefix: docker.io, url: \"https://a\"}\n"
		 "    sync:\n      - {repository: quay.io/x}\n",
		 ":12: berth.mirror.sync[0].repository: 'quay.io/x' is not under an upstream's "
		 "prefix"},
		{"    upstreams:\n      - {prefix: docker.io, url: \"https://a\"}\n"
		 "    sync:\n      - {repository: docker.iox/x}\n",
		 "sync[0].repository: 'docker.iox/x' is not under an upstream's prefix"},
		{"    upstreams:\n      - {prefix: docker.io/library, url: \"https://a\"}\n"
		 "    sync:\n      - {repository: docker.io/library}\n",
		 "sync[0].repository: 'docker.io/library' is not under an upstream's prefix"},
		{"    sync:\n      - {repository: docker.io/library/alpine}\n",
		 "sync[0].repository: 'docker.io/library/alpine' is not under an upstream's prefix"},
		{"    sync:\n      - {repository: Docker.io/alpine}\n",
		 "berth.mirror.sync[0].repository: 'Docker.io/alpine' is not a repository name"},
		{"    sync:\n      - {repository: d/a, semver: \"^^3\"}\n",
		 "berth.mirror.sync[0].semver: '^^3' is not a version constraint"},
		{"    sync:\n      - {repository: d/a, semver: \"\"}\n",
		 "berth.mirror.sync[0].semver: expected a non-empty single value"},
		{"    sync:\n      - {repository: d/a, platform: linux}\n",
		 "berth.mirror.sync[0].platform: 'linux' is not a platform (os/arch[/variant]"},
		{"    sync:\n      - {repository: d/a, platform: Linux/AMD64}\n",
		 "sync[0].platform: 'Linux/AMD64' is not a platform"},
		{"    sync:\n      - {repository: d/a, platform: linux/arm64/v8/x}\n",
		 "sync[0].platform: 'linux/arm64/v8/x' is not a platform"},
		{"    sync:\n      - {repository: d/a, platform: linux//amd64}\n",
		 "sync[0].platform: 'linux//amd64' is not a platform"},
		{"    sync:\n      - {repository: d/a, interval: 0}\n",
		 "berth.mirror.sync[0].interval: '0' is out of range"},
		{"    sync:\n      - {repository: d/a, interval: 1.5s}\n",
		 "berth.mirror.sync[0].interval: '1.5s' is not a duration in whole seconds"},
		{"    sync:\n      - {repository: d/a, interval: [6h]}\n",
		 "berth.mirror.sync[0].interval: expected a single value, found a list"},
		{"    sync:\n      - {repository: d/a, tags: [latest]}\n",
		 "berth.mirror.sync[0].tags: unknown key (a sync entry has repository, semver, "
		 "platform, interval)"},
		{"    sync: d/a\n", "berth.mirror.sync: expected a list of sync entries"},
		{"    timeout: [3s]\n", "berth.mirror.timeout: expected a single value, found a list"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[1024];
		struct berth_config *c = NULL;
		/* Lines 1-7 hold an unrelated upstream with credentials, so that a password is
		 * always in the file the message is about. */
		snprintf(doc, sizeof doc,
			 "log:\n  level: info\nproxy:\n  remoteurl: https://other.example\n"
			 "  username: u\n  password: s3cr3t\nberth:\n  mirror:\n%s",
			 cases[i].doc);
		CHECK_EQ_INT(load(write_cfg(doc), &c), BERTH_EINVAL);
		if (!strstr(errbuf, cases[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, errbuf,
				cases[i].msg);
		CHECK(strstr(errbuf, cases[i].msg) != NULL);
		CHECK(strstr(errbuf, "s3cr3t") == NULL);
		CHECK(c == NULL);
		berth_config_free(c);
	}
}

/* Distribution's proxy section: one upstream, the default, named by its host. */
static void test_mirror_proxy(void)
{
	static const struct {
		const char *url, *want_url, *prefix;
		int dockerhub;
	} cases[] = {
		{"https://registry-1.docker.io", "https://registry-1.docker.io", "docker.io", 1},
		{"https://index.docker.io/", "https://index.docker.io", "docker.io", 1},
		{"https://Docker.IO", "https://Docker.IO", "docker.io", 1},
		{"https://registry-1.docker.io:443", "https://registry-1.docker.io:443", "docker.io", 1},
		{"https://Registry.Example.com:5000/", "https://Registry.Example.com:5000",
		 "registry.example.com", 0},
		{"http://127.0.0.1:5001", "http://127.0.0.1:5001", "127.0.0.1", 0},
		{"https://ghcr.io/base/path/", "https://ghcr.io/base/path", "ghcr.io", 0},
		{"http://localhost", "http://localhost", "localhost", 0},
	};
	struct berth_config *c = NULL;
	const char *log;
	char doc[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(doc, sizeof doc, "proxy:\n  remoteurl: \"%s\"\n", cases[i].url);
		CHECK_EQ_INT(load(write_cfg(doc), &c), BERTH_OK);
		if (!c || c->nupstreams != 1) {
			fprintf(stderr, "  proxy %s: %s\n", cases[i].url, errbuf);
			CHECK(0);
		} else {
			CHECK_STR(c->upstreams[0].url, cases[i].want_url);
			CHECK_STR(c->upstreams[0].prefix, cases[i].prefix);
			CHECK_EQ_INT(c->upstreams[0].dockerhub, cases[i].dockerhub);
			CHECK_EQ_INT(c->upstreams[0].is_default, 1);
			CHECK(c->upstreams[0].username == NULL && c->upstreams[0].password == NULL);
		}
		berth_config_free(c);
		c = NULL;
	}

	/* A host that is no repository name cannot name the upstream's repositories. */
	CHECK_EQ_INT(load(write_cfg("proxy:\n  remoteurl: \"http://[::1]:5000\"\n"), &c),
		     BERTH_EINVAL);
	CHECK(strstr(errbuf, ":2: proxy.remoteurl: the host '[::1]' is no repository prefix to "
			     "mirror under; use berth.mirror.upstreams with an explicit prefix") !=
	      NULL);

	/* The proxy comes first, beside berth.mirror's upstreams; sync may use its prefix. The
	 * proxy's unknown keys are Distribution's (ttl): skipped with a warning. */
	capture_begin();
	CHECK_EQ_INT(load(write_cfg("proxy:\n  remoteurl: https://registry-1.docker.io\n"
				    "  username: alice\n  password: s3cr3t\n  ttl: 168h\n"
				    "berth:\n  mirror:\n    upstreams:\n"
				    "      - {prefix: ghcr.io, url: \"https://ghcr.io\"}\n"
				    "      - {prefix: quay.io, url: \"https://quay.io\"}\n"
				    "    sync:\n      - repository: docker.io/library/alpine\n"
				    "      - repository: quay.io/x/y\n"),
			  &c),
		     BERTH_OK);
	log = capture_end();
	CHECK_EQ_INT(count(log, "config: ignoring unknown key proxy.ttl\n"), 1);
	CHECK(strstr(log, "s3cr3t") == NULL);
	if (c && c->nupstreams == 3) {
		CHECK_STR(c->upstreams[0].prefix, "docker.io");
		CHECK_STR(c->upstreams[0].username, "alice");
		CHECK_STR(c->upstreams[0].password, "s3cr3t");
		CHECK_EQ_INT(c->upstreams[0].is_default, 1);
		CHECK_STR(c->upstreams[1].prefix, "ghcr.io");
		CHECK_EQ_INT(c->upstreams[1].is_default, 0);
		CHECK_STR(c->upstreams[2].prefix, "quay.io");
	} else {
		CHECK(0);
	}
	berth_config_free(c);
	c = NULL;

	/* Without the proxy, two defaults among berth.mirror's upstreams are refused the same way. */
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    upstreams:\n"
				    "      - {prefix: a, url: \"https://a\", default: true}\n"
				    "      - {prefix: b, url: \"https://b\", default: yes}\n"),
			  &c),
		     BERTH_EINVAL);
	CHECK(strstr(errbuf, ":5: berth.mirror.upstreams[1].default: only one upstream may be the "
			     "default (berth.mirror.upstreams[0] (line 4) already is)") != NULL);
	/* The proxy's prefix collides like any other. */
	CHECK_EQ_INT(load(write_cfg("proxy:\n  remoteurl: https://index.docker.io\n"
				    "berth:\n  mirror:\n    upstreams:\n"
				    "      - {prefix: docker.io, url: \"https://mirror.gcr.io\"}\n"),
			  &c),
		     BERTH_EINVAL);
	CHECK(strstr(errbuf, ":6: berth.mirror.upstreams[0].prefix: 'docker.io' is already the "
			     "prefix of the proxy section's upstream (proxy.remoteurl, line 2)") !=
	      NULL);

	/* Each mistake names its key and never shows the password. */
	static const struct {
		const char *doc, *msg;
	} bad[] = {
		{"proxy:\n  remoteurl: ftp://a\n",
		 ":2: proxy.remoteurl: 'ftp://a' must start with http:// or https://"},
		{"proxy:\n  remoteurl: https://a\n  username: u\n",
		 "proxy.username is set but proxy.password is not"},
		{"proxy:\n  remoteurl: https://a\n  password: s3cr3t\n",
		 "proxy.password is set but proxy.username is not"},
		{"proxy:\n  username: u\n  password: s3cr3t\n",
		 "proxy.username is set but proxy.remoteurl is not"},
		{"proxy:\n  remoteurl: https://u:s3cr3t@a\n",
		 ":2: proxy.remoteurl: the URL must not carry credentials"},
		{"proxy:\n  remoteurl: https://a\n  username: u\n  password: [s3cr3t]\n",
		 ":4: proxy.password: expected a single value, found a list"},
		{"proxy:\n  remoteurl: https://a\n  username: u\n  password: \"s3cr3t\\0\"\n",
		 ":4: proxy.password: value contains a NUL byte"},
		{"proxy:\n  remoteurl: https://a\n  username: u\n  password: s3cr3t\n"
		 "  password: s3cr3t2\n",
		 ":5: proxy.password: duplicate key (first on line 4)"},
		{"proxy: https://a\n", ":1: proxy: expected a mapping, found a single value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ_INT(load(write_cfg(bad[i].doc), &c), BERTH_EINVAL);
		if (!strstr(errbuf, bad[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, errbuf,
				bad[i].msg);
		CHECK(strstr(errbuf, bad[i].msg) != NULL);
		CHECK(strstr(errbuf, "s3cr3t") == NULL);
		CHECK(c == NULL);
	}
}

/* REGISTRY_PROXY_* as Distribution reads them: they override the file, or make the section. */
static void test_mirror_proxy_env(void)
{
	const char *path = write_cfg("proxy:\n  remoteurl: https://registry-1.docker.io\n"
				     "  username: fileuser\n  password: filepw\n");
	struct berth_config *c = NULL;
	const char *log;

	setenv("REGISTRY_PROXY_REMOTEURL", "https://registry.example.com/", 1);
	setenv("REGISTRY_PROXY_USERNAME", "envuser", 1);
	setenv("REGISTRY_PROXY_PASSWORD", "envs3cr3t", 1);
	capture_begin();
	CHECK_EQ_INT(load(NULL, &c), BERTH_OK);
	log = capture_end();
	CHECK(strstr(log, "REGISTRY_PROXY") == NULL); /* known, not warned about */
	if (c && c->nupstreams == 1) {
		CHECK_STR(c->upstreams[0].prefix, "registry.example.com");
		CHECK_STR(c->upstreams[0].url, "https://registry.example.com");
		CHECK_STR(c->upstreams[0].username, "envuser");
		CHECK_STR(c->upstreams[0].password, "envs3cr3t");
		CHECK_EQ_INT(c->upstreams[0].is_default, 1);
		CHECK_EQ_INT(c->upstreams[0].dockerhub, 0);
	} else {
		CHECK(0);
	}
	berth_config_free(c);
	c = NULL;

	/* Over a file: each variable replaces its key. */
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	if (c && c->nupstreams == 1) {
		CHECK_STR(c->upstreams[0].prefix, "registry.example.com");
		CHECK_STR(c->upstreams[0].username, "envuser");
		CHECK_STR(c->upstreams[0].password, "envs3cr3t");
	} else {
		CHECK(0);
	}
	berth_config_free(c);
	c = NULL;
	unsetenv("REGISTRY_PROXY_REMOTEURL");
	unsetenv("REGISTRY_PROXY_USERNAME");
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	if (c && c->nupstreams == 1) {
		CHECK_STR(c->upstreams[0].prefix, "docker.io");
		CHECK_STR(c->upstreams[0].username, "fileuser");
		CHECK_STR(c->upstreams[0].password, "envs3cr3t");
	} else {
		CHECK(0);
	}
	berth_config_free(c);
	c = NULL;
	clear_registry_env();

	/* Empty variables unset the section. */
	setenv("REGISTRY_PROXY_REMOTEURL", "", 1);
	setenv("REGISTRY_PROXY_USERNAME", "", 1);
	setenv("REGISTRY_PROXY_PASSWORD", "", 1);
	CHECK_EQ_INT(load(path, &c), BERTH_OK);
	if (c) CHECK_EQ_INT(c->nupstreams, 0);
	berth_config_free(c);
	c = NULL;
	clear_registry_env();

	/* Mistakes name the variable; the password stays out of the message. */
	setenv("REGISTRY_PROXY_REMOTEURL", "registry.example.com", 1);
	CHECK_EQ_INT(load(NULL, &c), BERTH_EINVAL);
	CHECK(strstr(errbuf, "config: REGISTRY_PROXY_REMOTEURL: 'registry.example.com' must start "
			     "with http:// or https://") != NULL);
	setenv("REGISTRY_PROXY_REMOTEURL", "https://registry.example.com", 1);
	setenv("REGISTRY_PROXY_PASSWORD", "envs3cr3t", 1);
	CHECK_EQ_INT(load(NULL, &c), BERTH_EINVAL);
	CHECK(strstr(errbuf, "proxy.password is set but proxy.username is not") != NULL);
	CHECK(strstr(errbuf, "envs3cr3t") == NULL);
	clear_registry_env();
	setenv("REGISTRY_PROXY_REMOTEURL", "https://registry.example.com", 1);
	CHECK_EQ_INT(load(write_cfg("berth:\n  mirror:\n    upstreams:\n"
				    "      - {prefix: x, url: \"https://x\", default: true}\n"),
			  &c),
		     BERTH_EINVAL);
	CHECK(strstr(errbuf, "berth.mirror.upstreams[0].default: only one upstream may be the "
			     "default (the proxy section's upstream (REGISTRY_PROXY_REMOTEURL) "
			     "already is)") != NULL);
	clear_registry_env();
	CHECK(c == NULL);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/berth-test-config-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(logpath, sizeof logpath, "%s/log.txt", tmpdir);
	clear_registry_env();

	T_RUN(test_defaults);
	T_RUN(test_empty_and_comment_only_files);
	T_RUN(test_stock_distribution_image_config);
	T_RUN(test_full_distribution_example);
	T_RUN(test_env_overrides_file);
	T_RUN(test_env_without_file);
	T_RUN(test_env_unknown_variables_warn_by_name_only);
	T_RUN(test_storage_driver_from_env_replaces_file);
	T_RUN(test_null_values_mean_default);
	T_RUN(test_oversized_file_is_refused);
	T_RUN(test_file_errors_name_file_line_key);
	T_RUN(test_error_line_deep_in_full_file);
	T_RUN(test_missing_file);
	T_RUN(test_env_errors_name_the_variable);
	T_RUN(test_size_suffixes);
	T_RUN(test_duration_suffixes);
	T_RUN(test_mirror_scalars);
	T_RUN(test_bool_spellings);
	T_RUN(test_addresses);
	T_RUN(test_log_levels);
	T_RUN(test_version_other_than_0_1_warns);
	T_RUN(test_keys_are_case_sensitive_like_distribution);
	T_RUN(test_unknown_key_with_control_bytes_is_logged_on_one_line);
	T_RUN(test_access_control_sections_refused);
	T_RUN(test_auth_htpasswd_and_rules);
	T_RUN(test_auth_rule_mistakes);
	T_RUN(test_auth_token_and_issuer);
	T_RUN(test_semver_and_golden);
	T_RUN(test_semver_and_golden_mistakes);
	T_RUN(test_mirror_full);
	T_RUN(test_mirror_mistakes);
	T_RUN(test_mirror_proxy);
	T_RUN(test_mirror_proxy_env);

	/* Remove the scratch files (config-N.yml and the log). */
	char p[160];
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof p, "%s/config-%d.yml", tmpdir, i);
		unlink(p);
	}
	unlink(logpath);
	rmdir(tmpdir);
	return T_DONE("unit-config");
}

/* serve.c — `berth serve [config.yml]`: load the configuration, open the stores, start the HTTP
 * server, and run until SIGTERM/SIGINT, sweeping stale uploads once a minute. `berth reindex
 * [config.yml]`: the same store opened offline to rebuild the image index. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/config.h"
#include "../core/lockfile.h"
#include "../core/log.h"
#include "../core/meta.h"
#include "../core/registry.h"
#include "../core/store.h"
#include "../http/server.h"
#include "../mirror/mirror.h"
#include "cli.h"

/* The registry's options from the configuration. The pattern strings live in cfg, which must
 * outlive the registry. */
static void registry_opts(const struct berth_config *cfg, struct berth_registry_opts *o)
{
	*o = (struct berth_registry_opts){
		.delete_enabled = cfg->delete_enabled,
		.manifest_max = cfg->manifest_max,
		.upload_expiry = cfg->upload_expiry,
		.uploads_per_repo = cfg->uploads_per_repo,
		.durable = 1,
		.semver_repos = (const char *const *)cfg->semver_repos,
		.n_semver_repos = cfg->nsemver_repos,
		.semver = {.semver = cfg->nsemver_repos > 0,
			   .float_major = cfg->semver_float_major,
			   .float_minor = cfg->semver_float_minor,
			   .float_latest = cfg->semver_float_latest,
			   .immutable = cfg->semver_immutable},
		.golden_repos = (const char *const *)cfg->golden_repos,
		.n_golden_repos = cfg->ngolden_repos,
		.golden_require = (const char *const *)cfg->golden_require,
		.n_golden_require = cfg->ngolden_require,
	};
}

/* Takes the embedded store's lock for cmd ("serve", "gc", "reindex"): one process at a time
 * may change a store. Prints the error and returns 1 when it cannot. */
static int lock_store(const struct berth_config *cfg, const char *cmd, struct berth_lockfile **lock)
{
	pid_t holder = 0;
	berth_err e = berth_lockfile_acquire(cfg->root, lock, &holder);
	if (e == BERTH_ETOOMANY) {
		char who[48] = "another process";
		if (holder) snprintf(who, sizeof who, "process %ld", (long)holder);
		if (strcmp(cmd, "serve") == 0)
			fprintf(stderr,
				"berth: the store at %s is in use by %s (a running berth serve?): "
				"stop it, or give this server its own storage folder\n",
				cfg->root, who);
		else
			fprintf(stderr,
				"berth: %s: the store at %s is in use by %s (a running berth serve?): "
				"stop the server first, %s works on a store no server is using\n",
				cmd, cfg->root, who, cmd);
		return 1;
	}
	if (e) {
		fprintf(stderr, "berth: cannot lock the store at %s: %s\n", cfg->root,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* Opens the store cfg names (blobs and metadata) as a registry, for cmd, holding the store's
 * lock in *lock (release it after freeing the registry). */
static int open_registry(const struct berth_config *cfg, const char *cmd,
			 struct berth_lockfile **lock, struct berth_registry **out)
{
	struct berth_store *store = NULL;
	struct berth_meta *meta = NULL;
	struct berth_registry_opts opts;
	char path[4096];
	int n;

	*lock = NULL;
	if (berth_store_fs_open(cfg->root, &store)) {
		fprintf(stderr, "berth: cannot open storage at %s\n", cfg->root);
		return 1;
	}
	if (lock_store(cfg, cmd, lock)) goto fail;
	n = snprintf(path, sizeof path, "%s/meta.db", cfg->root);
	if (n < 0 || (size_t)n >= sizeof path ||
	    berth_meta_sqlite_open(path, cfg->sync_metadata, &meta)) {
		fprintf(stderr, "berth: cannot open metadata at %s\n", path);
		goto fail;
	}
	registry_opts(cfg, &opts);
	if (berth_registry_new(store, meta, &opts, out)) {
		fprintf(stderr, "berth: cannot open the registry\n");
		goto fail;
	}
	return 0;
fail:
	berth_meta_free(meta);
	berth_store_free(store);
	berth_lockfile_release(*lock);
	*lock = NULL;
	return 1;
}

int berth_cmd_reindex(int argc, char **argv)
{
	struct berth_config *cfg = NULL;
	struct berth_registry *reg = NULL;
	struct berth_lockfile *lock = NULL;
	char err[512] = "";
	size_t count = 0;
	berth_err e;
	int rc = 1;

	if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
		fprintf(argc > 2 ? stderr : stdout,
			"usage: berth reindex [config.yml]\n\n"
			"Rebuilds the image index (layers, labels, base annotations: what derived, base,\n"
			"outdated and search answer from) from every stored manifest, offline: run it\n"
			"with the server stopped, on the store the configuration names.\n");
		return argc > 2 ? 2 : 0;
	}
	if (berth_config_load(argc == 2 ? argv[1] : NULL, &cfg, err, sizeof err)) {
		fprintf(stderr, "berth: %s\n", err[0] ? err : "invalid configuration");
		return 1;
	}
	berth_log_level_current = cfg->log_level;
	if (open_registry(cfg, "reindex", &lock, &reg)) goto out;
	if ((e = berth_registry_reindex(reg, &count))) {
		fprintf(stderr, "berth: reindex: %s\n", berth_err_str(e));
		goto out;
	}
	printf("reindexed %zu images\n", count);
	rc = 0;
out:
	berth_registry_free(reg);
	berth_lockfile_release(lock);
	berth_config_free(cfg);
	return rc;
}

int berth_cmd_gc(int argc, char **argv)
{
	struct berth_config *cfg = NULL;
	struct berth_registry *reg = NULL;
	struct berth_gc_opts o = {.keep_patch = 0, .grace = 3600, .dry_run = 0};
	struct berth_gc_stats st;
	struct berth_lockfile *lock = NULL;
	const char *config = NULL;
	char err[512] = "";
	berth_err e;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (strcmp(argv[i], "--dry-run") == 0) {
			o.dry_run = 1;
		} else if ((strcmp(argv[i], "--keep-patch") == 0 || strcmp(argv[i], "--grace") == 0) &&
			   i + 1 < argc) {
			long v = strtol(argv[i + 1], &end, 10);
			if (!*argv[i + 1] || *end || v < 0 || v > 1000000000L) {
				fprintf(stderr, "berth: gc: %s needs a non-negative number\n", argv[i]);
				return 2;
			}
			if (argv[i][2] == 'k') o.keep_patch = (int)v;
			else o.grace = v;
			i++;
		} else if (argv[i][0] != '-' && !config) {
			config = argv[i];
		} else {
			fprintf(argv[i][1] == 'h' ? stdout : stderr,
				"usage: berth gc [--keep-patch N] [--grace SECONDS] [--dry-run] "
				"[config.yml]\n\n"
				"Offline garbage collection (stop the server first): with --keep-patch, keeps\n"
				"the newest N patch releases of each minor line in semver repositories (floats\n"
				"re-point); then removes links no manifest references and blob files no\n"
				"repository links, sparing anything younger than --grace (default 3600 s).\n");
			return argv[i][1] == 'h' ? 0 : 2;
		}
	}
	if (berth_config_load(config, &cfg, err, sizeof err)) {
		fprintf(stderr, "berth: %s\n", err[0] ? err : "invalid configuration");
		return 1;
	}
	berth_log_level_current = cfg->log_level;
	if (open_registry(cfg, "gc", &lock, &reg)) goto out;
	if ((e = berth_registry_gc(reg, &o, &st))) {
		fprintf(stderr, "berth: gc: %s\n", berth_err_str(e));
		goto out;
	}
	printf("%sversions removed: %zu\nmanifests removed: %zu\nlinks removed: %zu\n"
	       "blobs removed: %zu\nbytes freed: %lld\n",
	       o.dry_run ? "(dry run) " : "", st.versions_removed, st.manifests_removed,
	       st.links_removed, st.blobs_removed, (long long)st.bytes_freed);
	rc = 0;
out:
	berth_registry_free(reg);
	berth_lockfile_release(lock);
	berth_config_free(cfg);
	return rc;
}

int berth_cmd_serve(int argc, char **argv)
{
	struct berth_config *cfg = NULL;
	struct berth_registry *reg = NULL;
	struct berth_lockfile *lock = NULL;
	struct berth_mirror *mirror = NULL;
	struct berth_http_server *srv = NULL;
	char err[512] = "";
	sigset_t set;
	int rc = 1;

	if (argc > 2) {
		fprintf(stderr, "usage: berth serve [config.yml]\n");
		return 2;
	}
	if (berth_config_load(argc == 2 ? argv[1] : NULL, &cfg, err, sizeof err)) {
		fprintf(stderr, "berth: %s\n", err[0] ? err : "invalid configuration");
		return 1;
	}
	berth_log_level_current = cfg->log_level;
	/* Keep the resident set flat: a fixed mmap threshold stops glibc from raising it after a
	 * large free (a 1 MiB tag listing would otherwise stay on the heap for good), and a few
	 * arenas are plenty for a handful of threads. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_ARENA_MAX, 2);

	/* Signals are taken synchronously by this thread; every other thread (the HTTP pool)
	 * inherits the blocked mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (open_registry(cfg, "serve", &lock, &reg)) goto out;
	berth_registry_janitor(reg, 1);
	if (berth_mirror_new(cfg, reg, &mirror)) {
		fprintf(stderr, "berth: cannot set up the mirror\n");
		goto out;
	}
	if (berth_http_start(reg, mirror, cfg, &srv)) goto out; /* it logged why */
	berth_log(BERTH_LOG_INFO, "berth %s serving on %s (port %u), storage %s, delete %s",
		  BERTH_VERSION, cfg->http_addr, berth_http_port(srv), cfg->root,
		  cfg->delete_enabled ? "enabled" : "disabled");
	for (;;) {
		struct timespec ts = {.tv_sec = 60};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			berth_log(BERTH_LOG_INFO, "signal %d: finishing in-flight requests", sig);
			break;
		}
		if (sig < 0 && errno == EAGAIN) berth_registry_janitor(reg, 0);
	}
	/* Like docker stop's default: in-flight requests get 10 s, then connections close. */
	berth_http_stop(srv, 10);
	srv = NULL;
	rc = 0;
	berth_log(BERTH_LOG_INFO, "stopped");
out:
	berth_http_stop(srv, 0);
	berth_mirror_free(mirror);
	berth_registry_free(reg);
	berth_lockfile_release(lock);
	berth_config_free(cfg);
	return rc;
}

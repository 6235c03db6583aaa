/* serve.c — `berth serve [config.yml]`: load the configuration, open the stores, start the HTTP
 * server, and run until SIGTERM/SIGINT, sweeping stale uploads once a minute. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/config.h"
#include "../core/log.h"
#include "../core/meta.h"
#include "../core/registry.h"
#include "../core/store.h"
#include "../http/server.h"
#include "cli.h"

int berth_cmd_serve(int argc, char **argv)
{
	struct berth_config *cfg = NULL;
	struct berth_store *store = NULL;
	struct berth_meta *meta = NULL;
	struct berth_registry *reg = NULL;
	struct berth_http_server *srv = NULL;
	char err[512] = "", path[4096];
	sigset_t set;
	int rc = 1, n;

	if (argc > 2) {
		fprintf(stderr, "usage: berth serve [config.yml]\n");
		return 2;
	}
	if (berth_config_load(argc == 2 ? argv[1] : NULL, &cfg, err, sizeof err)) {
		fprintf(stderr, "berth: %s\n", err[0] ? err : "invalid configuration");
		return 1;
	}
	berth_log_level_current = cfg->log_level;

	/* Signals are taken synchronously by this thread; every other thread (the HTTP pool)
	 * inherits the blocked mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (berth_store_fs_open(cfg->root, &store)) {
		fprintf(stderr, "berth: cannot open storage at %s\n", cfg->root);
		goto out;
	}
	n = snprintf(path, sizeof path, "%s/meta.db", cfg->root);
	if (n < 0 || (size_t)n >= sizeof path ||
	    berth_meta_sqlite_open(path, cfg->sync_metadata, &meta)) {
		fprintf(stderr, "berth: cannot open metadata at %s\n", path);
		goto out;
	}
	struct berth_registry_opts opts = {
		.delete_enabled = cfg->delete_enabled,
		.manifest_max = cfg->manifest_max,
		.upload_expiry = cfg->upload_expiry,
		.durable = 1,
	};
	if (berth_registry_new(store, meta, &opts, &reg)) goto out;
	store = NULL; /* owned by reg */
	meta = NULL;
	berth_registry_janitor(reg, 1);
	if (berth_http_start(reg, cfg, &srv)) {
		fprintf(stderr, "berth: cannot serve on %s\n", cfg->http_addr);
		goto out;
	}
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
	berth_http_stop(srv, 30);
	srv = NULL;
	rc = 0;
	berth_log(BERTH_LOG_INFO, "stopped");
out:
	berth_http_stop(srv, 0);
	berth_registry_free(reg);
	berth_meta_free(meta);
	berth_store_free(store);
	berth_config_free(cfg);
	return rc;
}

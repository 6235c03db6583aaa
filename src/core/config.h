/* config.h — berth's configuration: a YAML file using Distribution's key names where they mean
 * the same, then REGISTRY_<SECTION>_<KEY> environment overrides, then defaults. No I/O beyond
 * reading the file; never starts anything. */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>
#include "err.h"

struct berth_config {
	int version_seen;          /* 1 when the file had "version" */
	int log_level;             /* log.level: BERTH_LOG_* (default info) */
	int access_log;            /* !log.accesslog.disabled (default 1) */
	char *http_addr;           /* http.addr: "host:port" or ":port" (default 127.0.0.1:5000) */
	char *tls_certificate;     /* http.tls.certificate, NULL if unset */
	char *tls_key;             /* http.tls.key, NULL if unset */
	int http_threads;          /* berth.http.threads (default: number of CPUs) */
	unsigned connection_timeout; /* berth.limits.connectiontimeout seconds (default 60) */
	unsigned max_connections;  /* berth.limits.maxconnections (default 1024) */
	size_t manifest_max;       /* berth.limits.manifestsize bytes (default 4 MiB) */
	long upload_expiry;        /* berth.limits.uploadexpiry seconds (default 86400) */
	char *root;                /* storage.filesystem.rootdirectory (default ./data) */
	int delete_enabled;        /* storage.delete.enabled (default 0, as Distribution) */
	int sync_metadata;         /* berth.metadata.sync: 1 = fsync every metadata commit (default 0) */
};

/* Load path (NULL: no file, only environment and defaults). On error returns BERTH_EINVAL or
 * BERTH_ENOTFOUND and writes a one-line message (with the file name and line when known) into
 * errbuf. *out is owned by the caller: berth_config_free. */
berth_err berth_config_load(const char *path, struct berth_config **out, char *errbuf,
			    size_t errlen) BERTH_MUST_CHECK;
void berth_config_free(struct berth_config *c);

#endif

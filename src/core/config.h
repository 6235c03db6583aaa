/* config.h — berth's configuration: a YAML file using Distribution's key names where they mean
 * the same, then REGISTRY_<SECTION>_<KEY> environment overrides, then defaults. No I/O beyond
 * reading the file; never starts anything. */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>
#include "err.h"

/* What a client may do to a repository (berth.access actions, token scopes). */
enum berth_action {
	BERTH_ACTION_PULL = 1,
	BERTH_ACTION_PUSH = 2,
	BERTH_ACTION_DELETE = 4,
	BERTH_ACTION_ALL = 7,
};

/* One berth.access rule: who (user names, "@group", "*" = any authenticated user,
 * "anonymous"), which repositories (patterns: '*' within one path component, '**' any number
 * of components), which actions (BERTH_ACTION_* bits). */
struct berth_access_rule {
	char **users;
	size_t nusers;
	char **repos;
	size_t nrepos;
	unsigned actions;
};

/* One berth.groups entry: name → member user names. */
struct berth_group {
	char *name;
	char **members;
	size_t nmembers;
};

/* One upstream registry the pull-through mirror serves (berth.mirror.upstreams, or
 * Distribution's single-upstream proxy section). */
struct berth_mirror_upstream {
	char *prefix;    /* repository-name prefix it serves and containerd's ?ns= value
			    ("docker.io", "ghcr.io"): a valid repository name */
	char *url;       /* base URL: "https://registry-1.docker.io", "http://127.0.0.1:5001" */
	char *username;  /* NULL: anonymous (secret: never logged) */
	char *password;  /* NULL: anonymous (secret: never logged; wiped on free) */
	int is_default;  /* un-prefixed names are mirrored from it (Docker's registry-mirrors) */
	int dockerhub;   /* Docker Hub's rules: one-component names get "library/" */
};

/* One prefetch (berth.mirror.sync): keep what a team needs cached before an outage. */
struct berth_mirror_sync {
	char *repo;      /* "docker.io/library/alpine" (the prefixed, mirrored name) */
	char *semver;    /* constraint on tags ("^3", ">=1.2 <2"), NULL: every tag */
	char *platform;  /* "linux/amd64", NULL: every platform of an index */
	long interval;   /* seconds between runs (default 21600) */
};

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
	unsigned uploads_per_repo; /* berth.limits.uploadsperrepository open sessions (default 1000) */
	char *root;                /* storage.filesystem.rootdirectory (default ./data) */
	int delete_enabled;        /* storage.delete.enabled (default 0, as Distribution) */
	int sync_metadata;         /* berth.metadata.sync: 1 = fsync every metadata commit (default 0) */

	/* Authentication (Distribution's auth section) and berth's access rules. */
	char *htpasswd_realm;      /* auth.htpasswd.realm */
	char *htpasswd_path;       /* auth.htpasswd.path: bcrypt entries */
	char *token_realm;         /* auth.token.realm: where clients get tokens */
	char *token_service;       /* auth.token.service: the tokens' audience */
	char *token_issuer;        /* auth.token.issuer: the tokens' iss */
	char *token_rootcertbundle; /* auth.token.rootcertbundle: PEM certificates verifying tokens */
	int tokenissuer_enabled;   /* berth.tokenissuer.enabled: serve /auth/token (default 0) */
	char *tokenissuer_key;     /* berth.tokenissuer.key: PEM private key (RSA or EC P-256) */
	long tokenissuer_expiry;   /* berth.tokenissuer.expiry seconds (default 300) */
	struct berth_access_rule *access; /* berth.access, in file order */
	size_t naccess;
	struct berth_group *groups; /* berth.groups */
	size_t ngroups;

	/* Versions and golden images (top-level semver: and golden:). */
	char **semver_repos;       /* semver.repositories: patterns; NULL when none */
	size_t nsemver_repos;
	int semver_float_major;    /* semver.float holds major (default: all three when */
	int semver_float_minor;    /*   repositories are given and float is absent) */
	int semver_float_latest;
	int semver_immutable;      /* semver.immutable (default 0) */
	char **golden_repos;       /* golden (a list) or golden.repositories: patterns */
	size_t ngolden_repos;
	char **golden_require;     /* golden.require: pushes there must be built on a golden image */
	size_t ngolden_require;

	/* The pull-through mirror (berth.mirror, and Distribution's proxy section). */
	struct berth_mirror_upstream *upstreams;
	size_t nupstreams;
	long mirror_timeout_ms;    /* berth.mirror.timeout: budget of an upstream check (default 3s) */
	long mirror_breaker;       /* berth.mirror.breaker seconds an upstream stays marked down
				      after a failure (default 30) */
	int mirror_keep_deleted;   /* berth.mirror.keepdeleted: a tag the upstream deleted is still
				      served from the cache (default 1) */
	long long mirror_maxsize;  /* berth.mirror.maxsize bytes of mirrored content, 0 = no cap */
	char **mirror_pins;        /* berth.mirror.pins: patterns of mirrored repositories never
				      evicted */
	size_t nmirror_pins;
	struct berth_mirror_sync *mirror_syncs; /* berth.mirror.sync */
	size_t nmirror_syncs;
};

/* 1 when the configuration asks for authentication (htpasswd, token, or the built-in issuer). */
int berth_config_auth_enabled(const struct berth_config *c);

/* Load path (NULL: no file, only environment and defaults). On error returns BERTH_EINVAL or
 * BERTH_ENOTFOUND and writes a one-line message (with the file name and line when known) into
 * errbuf. *out is owned by the caller: berth_config_free. */
berth_err berth_config_load(const char *path, struct berth_config **out, char *errbuf,
			    size_t errlen) BERTH_MUST_CHECK;
/* berth_config_load for YAML already in memory (buf: len untrusted bytes, borrowed): the same
 * defaults, REGISTRY_* overrides, checks and messages, the source named "(buffer)". */
berth_err berth_config_parse_yaml(const void *buf, size_t len, struct berth_config **out,
				  char *errbuf, size_t errlen) BERTH_MUST_CHECK;
void berth_config_free(struct berth_config *c);

#endif

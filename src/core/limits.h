/* limits.h — every hard limit in one place. Each is checked before any work is done on input.
 * Values a deployment may tune are defaults for fields of struct berth_config. */
#ifndef BERTH_LIMITS_H
#define BERTH_LIMITS_H

/* Repository name: the spec allows any length, Distribution caps the whole name at 255. */
#define BERTH_NAME_MAX 255
/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (spec "Pulling manifests"). */
#define BERTH_TAG_MAX 128
/* "sha512:" + 128 hex digits; longest digest we accept. */
#define BERTH_DIGEST_MAX 135
/* Media type strings (RFC 6838 caps each half at 127). */
#define BERTH_MEDIA_TYPE_MAX 255
/* Default manifest size limit: spec says registries SHOULD accept at least 4 MiB. */
#define BERTH_MANIFEST_MAX_DEFAULT (4u * 1024u * 1024u)
/* JSON nesting allowed in a manifest before we refuse it. */
#define BERTH_JSON_DEPTH_MAX 64
/* Entries in a manifest's layers/manifests arrays. */
#define BERTH_MANIFEST_REFS_MAX 10000
/* Page size cap for tag and catalog listings when the client asks for more. */
#define BERTH_LIST_MAX 100000
/* Default page size of the catalog when the client gives no n. */
#define BERTH_CATALOG_DEFAULT 1000
/* Upload sessions older than this are removed by the janitor (seconds). */
#define BERTH_UPLOAD_EXPIRY_DEFAULT (24 * 3600)
/* Open upload sessions one repository may hold before POST answers 429 (a client leaking
 * sessions can't fill the disk with staging files). */
#define BERTH_UPLOADS_PER_REPO_DEFAULT 1000

/* ---- authentication (auth.c, auth_http.c) ---- */
/* htpasswd file size; a line (user:hash) longer than BERTH_HTPASSWD_LINE_MAX is invalid. */
#define BERTH_HTPASSWD_FILE_MAX (16 * 1024 * 1024)
#define BERTH_HTPASSWD_LINE_MAX 4096
/* User names (htpasswd, Basic credentials, token sub) and passwords. */
#define BERTH_USER_MAX 255
#define BERTH_PASSWORD_MAX 1024
/* Authorization header value; also bounds a bearer token. Docker tokens with many scopes
 * reach a few KiB. */
#define BERTH_AUTHZ_MAX 16384
/* Entries in a token's access claim, and scopes in one /auth/token request. */
#define BERTH_TOKEN_ACCESS_MAX 64
/* Body of POST /auth/token (a urlencoded form). */
#define BERTH_TOKEN_FORM_MAX 16384
/* Clock skew tolerated on exp/nbf (seconds). */
#define BERTH_TOKEN_LEEWAY 60
/* Default access-token lifetime of the built-in issuer, and the refresh-token lifetime. */
#define BERTH_TOKEN_EXPIRY_DEFAULT 300
#define BERTH_REFRESH_EXPIRY (30L * 24 * 3600)
/* PEM key / certificate bundle files. */
#define BERTH_PEM_MAX (1024 * 1024)
/* berth.access rules, entries in one rule's lists, berth.groups and members per group. */
#define BERTH_ACCESS_RULES_MAX 4096
#define BERTH_ACCESS_LIST_MAX 4096
#define BERTH_GROUPS_MAX 4096
#define BERTH_GROUP_MEMBERS_MAX 65536
/* Verified Basic credentials are remembered this long (seconds) in this many slots, so a push
 * of many requests does not pay one bcrypt run each; only an HMAC of user and password is
 * kept, under a key drawn at start. */
#define BERTH_PW_CACHE_TTL 60
#define BERTH_PW_CACHE_SLOTS 256
/* Repository patterns may be a little longer than names ("**" components). */
#define BERTH_PATTERN_MAX 512

/* ---- the pull-through mirror (berth.mirror, proxy) ---- */
/* Budget of one upstream check before the cache answers alone (milliseconds). */
#define BERTH_MIRROR_TIMEOUT_MS_DEFAULT 3000
/* Seconds an upstream stays marked down after a failure. */
#define BERTH_MIRROR_BREAKER_DEFAULT 30
/* Seconds between two runs of one berth.mirror.sync entry (6 h). */
#define BERTH_MIRROR_SYNC_INTERVAL_DEFAULT (6 * 3600)
/* Entries in berth.mirror.upstreams, berth.mirror.sync and berth.mirror.pins. */
#define BERTH_MIRROR_UPSTREAMS_MAX 64
#define BERTH_MIRROR_SYNCS_MAX 1024
#define BERTH_MIRROR_PINS_MAX 4096
/* Upstream base URLs (scheme, host, port, path). */
#define BERTH_URL_MAX 2048

#endif

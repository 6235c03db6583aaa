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
/* Upload UUID string length (32 hex). */
#define BERTH_UUID_LEN 32

#endif

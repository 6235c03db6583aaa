/* creds.h — registry credentials in Docker's config file ($DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json): the "auths" map, host → {"auth": base64(user:pass)}. Other keys are
 * kept byte-for-byte in meaning when the file is rewritten (atomically, mode 0600).
 * Secrets handed out are the caller's to wipe (berth_secret_free); credential helpers
 * (credsStore/credHelpers) are not run. */
#ifndef BERTH_CLIENT_CREDS_H
#define BERTH_CLIENT_CREDS_H

#include <stddef.h>

#include "transport.h"

struct berth_creds;

/* $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json. */
berth_cerr berth_creds_default_path(char *buf, size_t len) BERTH_C_MUST_CHECK;

/* Loads path (NULL: the default). A missing file is an empty configuration. Errors: FAIL with
 * *why (static) for unreadable or malformed JSON. */
berth_cerr berth_creds_load(const char *path, struct berth_creds **out,
			    const char **why) BERTH_C_MUST_CHECK;
void berth_creds_free(struct berth_creds *cr);
const char *berth_creds_path(const struct berth_creds *cr);

/* The auths key for a registry domain: "https://index.docker.io/v1/" for docker.io (and its
 * aliases), the domain itself otherwise. */
void berth_creds_key(const char *registry, char *buf, size_t len);

/* Credentials for registry; entries are matched by host the way Docker does (scheme and path
 * of the key ignored). NOTFOUND when none; *user and *pass are then NULL. Caller frees both
 * with berth_secret_free. */
berth_cerr berth_creds_get(const struct berth_creds *cr, const char *registry, char **user,
			   char **pass) BERTH_C_MUST_CHECK;
berth_cerr berth_creds_set(struct berth_creds *cr, const char *registry, const char *user,
			   const char *pass) BERTH_C_MUST_CHECK;
/* 1 when an entry was removed (every key naming the host), 0 when there was none. */
int berth_creds_remove(struct berth_creds *cr, const char *registry);
/* Writes the file: creates its directory 0700, temp file 0600 + fsync + rename. */
berth_cerr berth_creds_save(struct berth_creds *cr, const char **why) BERTH_C_MUST_CHECK;

/* Wipes (explicit_bzero) and frees a NUL-terminated secret; NULL is a no-op. */
void berth_secret_free(char *s);

/* RFC 4648 base64 with padding. encode: returns the length written (NUL-terminated), 0 when
 * outlen is too small (needs 4*ceil(len/3)+1). decode: accepts padded or unpadded input,
 * returns 0 and the length in *outn, -1 on invalid input or short output. */
size_t berth_base64_encode(const void *in, size_t len, char *out, size_t outlen);
int berth_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen,
			size_t *outn);

#endif

/* err.h — the one error enum every core function returns (0 = ok).
 * The core never knows HTTP: src/http/errors.c alone maps these to status codes and OCI codes. */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

#define BERTH_MUST_CHECK __attribute__((warn_unused_result))

typedef enum berth_err {
	BERTH_OK = 0,
	BERTH_ENOMEM,                /* out of memory */
	BERTH_EIO,                   /* filesystem or driver failure */
	BERTH_ENOSPC,                /* storage full */
	BERTH_EDB,                   /* metadata store failure */
	BERTH_EINTERNAL,             /* a bug or an impossible state */
	BERTH_EINVAL,                /* a malformed argument not covered below */
	BERTH_ENAME_INVALID,         /* repository name fails the spec grammar */
	BERTH_ENAME_UNKNOWN,         /* repository does not exist */
	BERTH_ETAG_INVALID,          /* tag fails the spec grammar, or a tag rule refused it */
	BERTH_EDIGEST_INVALID,       /* malformed digest, or bytes don't match it */
	BERTH_EBLOB_UNKNOWN,         /* blob not known in this repository */
	BERTH_EMANIFEST_INVALID,     /* manifest fails validation */
	BERTH_EMANIFEST_UNKNOWN,     /* manifest not known in this repository */
	BERTH_EMANIFEST_BLOB_UNKNOWN,/* a manifest references a blob/manifest the repository lacks */
	BERTH_ESIZE_INVALID,         /* declared size disagrees with content */
	BERTH_EUPLOAD_UNKNOWN,       /* no such upload session */
	BERTH_EUPLOAD_INVALID,       /* upload session misuse */
	BERTH_ERANGE,                /* chunk doesn't start at the upload's offset, or unsatisfiable range */
	BERTH_ETOO_LARGE,            /* over a configured limit */
	BERTH_EUNSUPPORTED,          /* operation disabled or not implemented */
	BERTH_EDENIED,               /* authenticated but not allowed */
	BERTH_EUNAUTHORIZED,         /* authentication required */
	BERTH_ETOOMANY,              /* too many requests / sessions */
	BERTH_ENOTFOUND,             /* generic not found (config file, route) */
	BERTH_EPAGE_INVALID,         /* a listing's n or last is malformed */
	BERTH_ETAG_IMMUTABLE,        /* the tag is an immutable version and would change */
	BERTH_EUNAVAILABLE,          /* the service (or an upstream it needs) is unavailable now */
	BERTH_E_COUNT
} berth_err;

/* A short human-readable description ("blob unknown to registry"). Never NULL. */
const char *berth_err_str(berth_err e);

#endif

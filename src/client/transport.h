/* transport.h — berth's registry HTTP client (distribution-spec v1.1 / Docker Registry API v2)
 * over libcurl: per-registry connection reuse, TLS verified by default, anonymous → Basic or
 * Bearer token auth as Docker does it, streaming bodies to and from file descriptors.
 * It never prints: failures are recorded in the client (berth_client_errmsg) for the caller. */
#ifndef BERTH_CLIENT_TRANSPORT_H
#define BERTH_CLIENT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/digest.h"
#include "../core/limits.h"

#define BERTH_C_MUST_CHECK __attribute__((warn_unused_result))

/* Client error kinds. The values are the berth command's exit codes (README "Client"). */
typedef enum berth_cerr {
	BERTH_C_OK = 0,
	BERTH_C_EFAIL = 1,     /* anything else: I/O, out of memory, a registry refusal */
	BERTH_C_EUSAGE = 2,    /* bad arguments (bad reference, missing image in a layout) */
	BERTH_C_ENOTFOUND = 3, /* manifest, blob, repository or tag unknown (404) */
	BERTH_C_EAUTH = 4,     /* 401/403, bad credentials, token refused */
	BERTH_C_ENET = 5,      /* unknown host, connection refused/reset, TLS failure, timeout */
	BERTH_C_EDIGEST = 6,   /* content does not match its digest, or is not what it claims */
} berth_cerr;

/* Registry host "docker.io" is served by this API host (Docker's DefaultRegistryHost). */
#define BERTH_DOCKER_HUB_DOMAIN "docker.io"
#define BERTH_DOCKER_HUB_API "registry-1.docker.io"

/* Largest manifest, config or JSON listing read into memory. */
#define BERTH_CLIENT_DOC_MAX (8u * 1024u * 1024u)
/* Longest URL/Location/Link handled. */
#define BERTH_CLIENT_URL_MAX 4096

enum berth_progress_state {
	BERTH_PROGRESS_START = 1, /* transfer of a blob begins (done = bytes already there) */
	BERTH_PROGRESS_UPDATE,
	BERTH_PROGRESS_DONE,
	BERTH_PROGRESS_EXISTS,    /* the destination already has it */
	BERTH_PROGRESS_MOUNTED,   /* cross-repository mount, no bytes moved */
	BERTH_PROGRESS_FAILED,
};

struct berth_progress {
	const char *digest;       /* borrowed, valid for the call */
	int64_t done, total;
	enum berth_progress_state state;
};

/* May be called from several threads at once (concurrent blob transfers). */
typedef void (*berth_progress_fn)(void *ud, const struct berth_progress *p);

struct berth_client_opts {
	int insecure;             /* plain HTTP (no TLS) to every registry of this run */
	const char *config_path;  /* Docker config.json for credentials; NULL: default location */
	berth_progress_fn progress;
	void *progress_ud;
	int jobs;                 /* concurrent blob transfers; 0: 3 */
	int no_credentials_file;  /* never read a Docker config.json: registries without
				   * berth_client_set_login are anonymous (the server's mirror) */
};

/* One client: registries (connection pools, credentials, tokens) and the first error.
 * Thread-safe: blob transfers run on several threads. No SIGPIPE handling is needed (curl
 * writes sockets with MSG_NOSIGNAL; ops' internal pipes are socketpairs written likewise). */
struct berth_client;

/* NULL on out of memory. Strings in opts are copied. */
struct berth_client *berth_client_new(const struct berth_client_opts *opts);
void berth_client_free(struct berth_client *c);

/* The first error recorded ("manifest unknown", "connection refused ..."); "" when none. */
const char *berth_client_errmsg(const struct berth_client *c);
berth_cerr berth_client_errcode(const struct berth_client *c);
void berth_client_clear_error(struct berth_client *c);
/* Records an error (the first one wins) and returns code. printf-style. */
berth_cerr berth_client_fail(struct berth_client *c, berth_cerr code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const struct berth_client_opts *berth_client_options(const struct berth_client *c);

/* Credentials to use for registry (instead of the config file's); copied; wiped on free. */
berth_cerr berth_client_set_login(struct berth_client *c, const char *registry, const char *user,
				  const char *pass) BERTH_C_MUST_CHECK;

/* Serve `registry` (a key: "docker.io", "ghcr.io") from base ("https://registry-1.docker.io",
 * "http://127.0.0.1:5001": scheme and authority, no path) instead of the address the key names. */
berth_cerr berth_client_set_base(struct berth_client *c, const char *registry,
				 const char *base) BERTH_C_MUST_CHECK;

/* A 2xx body handed over piece by piece as it arrives; non-zero stops the transfer (the call
 * then fails with BERTH_C_EFAIL). */
typedef int (*berth_sink_fn)(void *ud, const void *buf, size_t len);

/* One request. Initialise with berth_req_init, then set what applies. */
struct berth_req {
	const char *method;        /* "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE" */
	const char *url;           /* "/v2/..." on the registry, or an absolute URL (a Location) */
	const char *scope;         /* token scopes, space-separated ("repository:a:pull,push
	                            * repository:b:pull"); NULL: the challenge's own */
	const char *accept, *content_type, *content_range, *range;
	/* Request body: memory, or body_fd (read from body_off for body_fd_len bytes with pread when
	 * body_seekable, else read() to EOF/len). No body when both are unset. */
	const void *body;
	size_t body_len;
	int body_fd;
	int body_seekable;
	int64_t body_off, body_fd_len;
	/* Response body of a 2xx: to out_fd (hashed into hasher when set) or into resp->body up to
	 * max_body bytes (more is an error). Error bodies always go to resp->body (capped). */
	int out_fd;
	struct berth_hasher *hasher;
	size_t max_body;
	/* Progress reports for this transfer (digest NULL: none). */
	const char *progress_digest;
	int64_t progress_total, progress_base;
	int follow;                /* follow redirects (blob GETs: Docker Hub sends a CDN URL) */
	int out_socket;            /* out_fd is a socket: send(MSG_NOSIGNAL), no SIGPIPE */
	int64_t out_skip;          /* a 200 answer to a Range request: drop this many bytes first */
	int quiet;                 /* transport failures go to resp->errmsg only, not the client */
	long timeout_ms;           /* whole exchange, 0: none (a stall still ends it after 60 s) */
	long connect_timeout_ms;   /* 0: 30 s */
	berth_sink_fn sink;        /* 2xx body to this callback instead of out_fd or memory */
	void *sink_ud;
	const volatile int *cancel; /* non-zero: the exchange ends within a second, failing */
	long first_byte_timeout_ms; /* no body byte by then: the exchange fails (0: no limit) */
	long recv_buffer;          /* bytes libcurl reads from the socket at once (0: its 16 KiB) */
};

struct berth_resp {
	long status;
	char *body;                 /* owned, NUL-terminated; free with berth_resp_clear */
	size_t body_len;
	int64_t content_length;     /* -1 when absent */
	int64_t written;            /* bytes sent to out_fd */
	char content_type[BERTH_MEDIA_TYPE_MAX + 1];
	char digest[BERTH_DIGEST_MAX + 1];    /* Docker-Content-Digest */
	char location[BERTH_CLIENT_URL_MAX];
	char range[64];
	char retry_after[32];       /* Retry-After (429, 503) */
	char link[BERTH_CLIENT_URL_MAX];
	char errmsg[512];           /* the transport failure when berth_client_do did not return OK */
};

void berth_req_init(struct berth_req *r);
void berth_resp_clear(struct berth_resp *r);

/* Performs rq against registry (a reference domain: "docker.io", "host:5000"), doing the
 * auth dance on 401. Returns BERTH_C_OK whenever an HTTP response arrived, whatever its
 * status (use berth_client_http_error); BERTH_C_ENET and friends when none did. */
berth_cerr berth_client_do(struct berth_client *c, const char *registry, const struct berth_req *rq,
			   struct berth_resp *rs) BERTH_C_MUST_CHECK;

/* Maps a non-2xx response to an error kind and records "<what>: <registry's first message>".
 * 404 → NOTFOUND, 401/403 → AUTH, DIGEST_INVALID/SIZE_INVALID → DIGEST, else FAIL. */
berth_cerr berth_client_http_error(struct berth_client *c, const char *what,
				   const struct berth_resp *rs);

/* "https://registry-1.docker.io" / "http://127.0.0.1:5000" for a registry domain. */
int berth_client_base_url(const struct berth_client *c, const char *registry, char *buf, size_t len);

/* --- pure parsers (fuzzable: bytes in, struct out) --- */

#define BERTH_CHALLENGES_MAX 4
struct berth_challenge {
	char scheme[32];           /* "basic", "bearer" (lower-cased) */
	char realm[1024];
	char service[256];
	char scope[1024];
	char error[64];
};
struct berth_challenges {
	int n;
	struct berth_challenge c[BERTH_CHALLENGES_MAX];
};

/* RFC 7235 §4.1 WWW-Authenticate: a comma-separated list of challenges, each
 * `scheme [token68 | #auth-param]`, param values tokens or quoted-strings (with \ escapes).
 * Unknown params are skipped; values longer than the fields are an error. Returns 0 on success
 * (n may be 0 for empty input), -1 when the header is malformed. */
int berth_challenges_parse(const char *s, size_t len, struct berth_challenges *out);

/* RFC 8288 Link header: finds the target of rel="next" (rel may be a token or quoted, among
 * other relations). Returns 1 and copies the target (NUL-terminated) to out when found, 0 when
 * no next link, -1 when malformed or out too small. */
int berth_link_next(const char *s, size_t len, char *out, size_t outlen);

#endif

/* http.h — what the HTTP layer's files share: the per-request state, the response helpers and
 * the handler table. Internal to src/http: the core never includes it. */
#ifndef BERTH_HTTP_INTERNAL_H
#define BERTH_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdint.h>
#include <time.h>

#include "../core/config.h"
#include "../core/digest.h"
#include "../core/registry.h"
#include "../mirror/mirror.h"
#include "router.h"

struct berth_http_server;

enum body_mode {
	BODY_NONE = 0, /* no body expected: bytes are discarded */
	BODY_WRITER,   /* streamed into an upload writer, hashed on the way */
	BODY_BUFFER,   /* collected in memory up to a cap (manifests) */
};

struct conn_track;

struct req {
	struct MHD_Connection *conn;
	struct conn_track *track;    /* the connection's tracking entry (server.c), or NULL */
	struct berth_http_server *srv;
	struct berth_registry *reg;
	const char *method;
	const char *url;          /* borrowed from MHD for the request's lifetime */
	struct berth_route route;
	struct timespec t0;
	unsigned status;         /* for the access log */
	int64_t bytes_out;
	int is_head;
	const struct handler *h;

	/* body */
	enum body_mode body;
	berth_err err;           /* set when the request already failed; body is discarded */
	const char *err_detail;
	struct berth_upload_writer *w;
	int64_t received;        /* body bytes seen */
	int64_t expect;          /* declared body length for a Content-Range chunk, -1 if none */
	char *buf;
	size_t buf_len, buf_cap, buf_max; /* buf_max: the hard cap for BODY_BUFFER */

	/* upload bookkeeping */
	char upload_id[BERTH_UPLOAD_ID_LEN + 1];
	int anonymous;
	int no_mount;            /* auth: the caller may not read the mount source (spec: the
				    registry MAY treat the request as a regular upload) */
	struct berth_digest digest;
	/* group commit: the connection is suspended while its blob is published */
	int commit_state;        /* 0 none, 1 pending, 2 done */
	berth_err commit_err;

	/* authentication (auth_http.c) */
	char user[BERTH_USER_MAX + 1]; /* who the credentials named; "" = anonymous */
	int authenticated;       /* 1: Basic password or Bearer token verified */
	int auth_fail;           /* why the request is refused (auth_http.c's enum) */
	unsigned auth_need;      /* BERTH_ACTION_* bits the route needs (for the challenge) */

	int ext_kind;            /* /berth/v1 endpoint (handlers_berth.c), 0 otherwise */
	int close_conn;          /* the answer closes the connection (the server is stopping) */

	/* the mirror (handlers_mirror.c): set when the repository comes from an upstream */
	struct berth_mirror_route *mrt; /* owned; route.name is then mrt->local */
	int mstate;              /* 0, 1: asking the upstream (suspended), 2: answered */
	berth_err merr;
	struct berth_mirror_answer mans;
	int msource;             /* enum berth_mirror_source of the answer, 0 when none */
	struct berth_fetch *fetch; /* a blob on its way from the upstream (owned reference) */
	struct berth_mirror_sync_stats *msync; /* POST /berth/v1/mirror/sync's result (owned) */
};

struct handler {
	/* Called once the headers are in: validate, open writers, set q->body / q->err. */
	void (*begin)(struct req *q);
	/* Called once the body is in (or at once when there is none): queue the response. */
	enum MHD_Result (*finish)(struct req *q);
	/* 1: finish also runs when q->err is set (it adds headers to the error). */
	int finish_on_error;
};

/* The handlers (handlers_manifests.c, handlers_blobs.c). */
extern const struct handler berth_h_manifest_get, berth_h_manifest_put, berth_h_manifest_delete,
	berth_h_blob_get, berth_h_blob_delete, berth_h_upload_start, berth_h_upload_status,
	berth_h_upload_patch, berth_h_upload_put, berth_h_upload_delete;

/* Handler lookup by route kind and method; NULL when the method isn't allowed. */
const struct handler *berth_http_handler(enum berth_route_kind kind, const char *method);

/* ---- responses (errors.c / server.c) ---- */
const char *req_header(struct req *q, const char *name);
const char *req_query(struct req *q, const char *name);
/* Queue resp with status, adding the common headers; destroys resp. */
enum MHD_Result req_queue(struct req *q, unsigned status, struct MHD_Response *resp);
/* The same, keeping the caller's reference (to hand it to the response cache). */
enum MHD_Result req_queue_keep(struct req *q, unsigned status, struct MHD_Response *resp);
/* Parks q's connection until req_resume (from any thread): its worker serves others meanwhile.
 * A stop waits for parked requests, since libmicrohttpd cannot stop with one suspended. */
void req_suspend(struct req *q);
void req_resume(struct req *q);
/* Shuts q's connection down now (both ways): a body that must not be completed is cut at
 * once, rather than when libmicrohttpd's loop next looks at a connection it closed. */
void req_cut(struct req *q);
/* Runs fn(q) on the server's offload threads (q is parked meanwhile by the caller).
 * Not BERTH_OK: fn was not queued (run it inline). */
berth_err req_offload(struct req *q, void (*fn)(void *arg));
/* The server's mirror, NULL when none is configured. */
struct berth_mirror *req_mirror(struct req *q);
/* The server's response cache (cache.h). */
struct berth_rcache *req_cache(struct req *q);
/* The server's authentication state; NULL when no auth is configured. */
struct berth_auth *req_auth(struct req *q);

/* ---- authentication (auth_http.c) ---- */
/* First call of a /v2 request, after the handler lookup: authenticate and authorize. Returns 1
 * to go on (q->h may have been replaced, e.g. a mount the caller may not read from becomes a
 * plain upload session); 0 when q->h now answers 401/403 and begin must not run. */
int berth_http_authorize(struct req *q);
/* /auth/token (the built-in issuer): returns 1 and sets up q when url is that endpoint. */
int berth_http_token_route(struct req *q, const char *url);
/* /berth/v1/... (handlers_berth.c, the extension API): returns 1 and sets up q (access checked
 * through berth_http_authorize) when url is under that prefix. */
int berth_http_ext_route(struct req *q, const char *url);
/* 1 when the caller of q may see repo (name: len bytes) in the catalog. */
int berth_http_may_list(struct req *q, const char *name, size_t len);
/* 1 when the catalog must be filtered per repository for q. */
int berth_http_list_filtered(struct req *q);
/* An empty-bodied response (Content-Length: 0). */
struct MHD_Response *resp_empty(void);
/* A response owning a copy-free heap buffer (ownership moves). */
struct MHD_Response *resp_heap(void *buf, size_t len);
/* A response that declares len bytes but has no body source (HEAD). */
struct MHD_Response *resp_head(uint64_t len);
/* The spec's JSON error body for e (HEAD: headers only), queued. */
enum MHD_Result req_error(struct req *q, berth_err e, const char *detail);
/* The same response unqueued, so the caller can add headers; *status gets its status. */
struct MHD_Response *resp_error(struct req *q, berth_err e, const char *detail,
				unsigned *status);
/* Status and OCI error code for e (errors.c is the only place that knows the mapping). */
unsigned berth_http_status_of(berth_err e, const char **code);

/* "Location" etc. */
void resp_header(struct MHD_Response *r, const char *name, const char *value);

/* ---- the mirror (handlers_mirror.c) ---- */
/* First call: q's repository is mirrored (q->mrt set, route.name rewritten), or a push into a
 * mirrored prefix is refused. */
void berth_http_mirror_route(struct req *q);
/* A manifest GET/HEAD of a mirrored repository: returns 1 with *ret when it answered (or
 * suspended q while the upstream is asked), 0 to serve the local copy (q->mans.warning set
 * when it is stale). */
int berth_http_mirror_manifest(struct req *q, enum MHD_Result *ret);
/* A blob GET/HEAD of a mirrored repository: 1 with *ret when it answered (from a fetch, or an
 * error), 0 to serve the local copy. */
int berth_http_mirror_blob(struct req *q, const struct berth_digest *d, enum MHD_Result *ret);
/* POST /berth/v1/mirror/sync?repository=&semver=&platform=: runs the prefetch off the event
 * loop and answers its counts. */
enum MHD_Result berth_http_mirror_sync(struct req *q);
/* A 200 with doc as compact JSON (doc's reference is taken; NULL answers 500), and a Link
 * header when link is set (handlers_berth.c). */
enum MHD_Result berth_http_reply_json(struct req *q, json_t *doc, const char *link);
/* Docker-Content-Digest, ETag, Accept-Ranges, Content-Type and Cache-Control of a blob answer
 * (handlers_blobs.c). */
void resp_blob_headers(struct MHD_Response *r, const struct berth_digest *d);
/* Lets go of q's mirror state (req_free). */
void berth_http_mirror_free(struct req *q);

#endif

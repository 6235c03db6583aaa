/* server.c — the libmicrohttpd binding. Two-phase access handler (NOTES-libmicrohttpd.md):
 * the first call only records the request, so keep-alive works; body pieces are consumed as
 * they come (flat memory for any blob size); the last call queues the response. */
#include "server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/auth.h"
#include "../core/log.h"
#include "cache.h"
#include "http.h"
#include "offload.h"

/* One open connection, tracked so that limits libmicrohttpd has no option for can be kept:
 * a deadline for a whole request head (a client trickling one byte a second resets the
 * idle timeout forever — slowloris), and a prompt close past max connections instead of
 * leaving clients unanswered in the listen queue. */
struct conn_track {
	struct conn_track *prev, *next;
	MHD_socket fd;
	struct timespec idle_since; /* accepted, or last request finished */
	atomic_int in_request;      /* the access handler has seen a request head */
	int reaped;
};

struct berth_http_server {
	struct MHD_Daemon *d;
	/* berth owns the listening socket and accepts on a thread of its own, handing each
	 * connection to libmicrohttpd (MHD_add_connection). Stopping to accept is then closing
	 * this socket: MHD_quiesce_daemon races its epoll workers in libmicrohttpd 0.9.75 (both
	 * remove the listen FD from the same epoll set; the loser's epoll_ctl fails with ENOENT
	 * and the library aborts the process: "Failed to remove listen FD from epoll set"). */
	int listen_fd;
	int wake[2]; /* a pipe: a byte in it tells the accept thread to return */
	pthread_t acceptor;
	int acceptor_running;
	pthread_mutex_t conns_lock;
	struct conn_track *conns;
	unsigned n_conns;
	pthread_t reaper;
	pthread_cond_t reaper_wake; /* with conns_lock: a stop need not wait out a reaper nap */
	int reaper_running;
	atomic_int stopping;
	char *tls_cert, *tls_key; /* PEM text; must outlive the daemon */
	struct berth_registry *reg;
	const struct berth_config *cfg;
	atomic_int in_flight;
	atomic_int draining; /* stopping: requests that start now are refused (503) */
	atomic_int parked;   /* requests suspended (req_suspend) and not yet resumed */
	unsigned port;
	struct berth_rcache *cache;
	struct berth_auth *auth; /* NULL: no authentication configured */
	struct berth_mirror *mirror; /* NULL: none configured */
	struct berth_offload *offload; /* threads for upstream work (with a mirror) */
};

/* ---- helpers shared with the handlers ---- */

const char *req_header(struct req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

void resp_header(struct MHD_Response *r, const char *name, const char *value)
{
	if (r && value) (void)MHD_add_response_header(r, name, value);
}

struct MHD_Response *resp_empty(void)
{
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *resp_heap(void *buf, size_t len)
{
	return MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

struct MHD_Response *resp_head(uint64_t len)
{
	/* libmicrohttpd allocates the block buffer inside the response (zeroed) and never calls
	 * the reader for a HEAD: one byte, not a 4 KiB buffer per cached blob HEAD response. */
	return MHD_create_response_from_callback(len, 1, no_body, NULL, NULL);
}

enum MHD_Result req_queue_keep(struct req *q, unsigned status, struct MHD_Response *resp)
{
	if (!resp) return MHD_NO;
	resp_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
	if (q->close_conn) (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	q->status = status;
	return MHD_queue_response(q->conn, status, resp);
}

enum MHD_Result req_queue(struct req *q, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret = req_queue_keep(q, status, resp);
	if (resp) MHD_destroy_response(resp);
	return ret;
}

void req_suspend(struct req *q)
{
	atomic_fetch_add(&q->srv->parked, 1);
	MHD_suspend_connection(q->conn);
}

void req_resume(struct req *q)
{
	struct berth_http_server *s = q->srv;
	/* Resumed first: once parked reads 0, a stop may call MHD_stop_daemon, which takes a
	 * connection with a pending resume but aborts on one still suspended. q may be freed
	 * by its worker as soon as MHD_resume_connection returns. */
	MHD_resume_connection(q->conn);
	atomic_fetch_sub(&s->parked, 1);
}

void req_cut(struct req *q)
{
	if (q->track) shutdown(q->track->fd, SHUT_RDWR);
}

berth_err req_offload(struct req *q, void (*fn)(void *arg))
{
	if (!q->srv->offload) return BERTH_EUNSUPPORTED;
	return berth_offload_run(q->srv->offload, fn, q);
}

struct berth_mirror *req_mirror(struct req *q)
{
	return q->srv->mirror;
}

struct berth_rcache *req_cache(struct req *q)
{
	return q->srv->cache;
}

struct berth_auth *req_auth(struct req *q)
{
	return q->srv->auth;
}

/* ---- connection tracking ---- */

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode code)
{
	struct berth_http_server *s = cls;
	struct conn_track *t = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		t = calloc(1, sizeof *t);
		if (!t || !ci) {
			free(t);
			return;
		}
		t->fd = ci->connect_fd;
		clock_gettime(CLOCK_MONOTONIC, &t->idle_since);
		atomic_init(&t->in_request, 0);
		pthread_mutex_lock(&s->conns_lock);
		t->next = s->conns;
		if (s->conns) s->conns->prev = t;
		s->conns = t;
		s->n_conns++;
		/* Over the limit: close at once, so the client hears "no" now rather than
		 * waiting unaccepted (libmicrohttpd's own cap sits a little higher). */
		if (s->n_conns > s->cfg->max_connections) {
			t->reaped = 1;
			shutdown(t->fd, SHUT_RDWR);
		}
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = t;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && t) {
		pthread_mutex_lock(&s->conns_lock);
		if (t->prev) t->prev->next = t->next;
		else s->conns = t->next;
		if (t->next) t->next->prev = t->prev;
		s->n_conns--;
		pthread_mutex_unlock(&s->conns_lock);
		free(t);
		*socket_context = NULL;
	}
}

static struct conn_track *track_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Once a second: a connection that has been between requests (or sending a request head)
 * for longer than the connection timeout is shut down; libmicrohttpd then closes it. The
 * socket is still open here: a tracked connection is untracked (under the lock) before
 * libmicrohttpd closes its socket. */
static void *reaper_main(void *arg)
{
	struct berth_http_server *s = arg;
	pthread_mutex_lock(&s->conns_lock);
	while (!atomic_load(&s->stopping)) {
		struct timespec now, until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += 250000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&s->reaper_wake, &s->conns_lock, &until);
		if (atomic_load(&s->stopping) || !s->cfg->connection_timeout) continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (struct conn_track *t = s->conns; t; t = t->next) {
			if (t->reaped || atomic_load(&t->in_request)) continue;
			if (now.tv_sec - t->idle_since.tv_sec > (time_t)s->cfg->connection_timeout) {
				t->reaped = 1;
				shutdown(t->fd, SHUT_RDWR);
			}
		}
	}
	pthread_mutex_unlock(&s->conns_lock);
	return NULL;
}

/* ---- request lifecycle ---- */

/* Lets go of the request's upload: its writer, and a single-request push that never finished
 * (nothing of it stays). */
static void req_drop_upload(struct req *q)
{
	if (q->w) {
		berth_upload_writer_close(q->w);
		q->w = NULL;
	}
	if (q->anonymous && q->upload_id[0]) {
		berth_err e = berth_registry_upload_cancel(q->reg, q->route.name, q->upload_id);
		(void)e; /* best effort: the start-up janitor removes what this can't */
		q->anonymous = 0;
	}
}

static void req_free(struct req *q)
{
	if (!q) return;
	req_drop_upload(q);
	berth_http_mirror_free(q);
	free(q->buf);
	free(q);
}

static void body_piece(struct req *q, const char *data, size_t size)
{
	q->received += (int64_t)size;
	if (q->err) return;
	switch (q->body) {
	case BODY_NONE:
		return;
	case BODY_WRITER:
		if (q->expect >= 0 && q->received > q->expect) {
			q->err = BERTH_EUPLOAD_INVALID;
			q->err_detail = "body longer than its Content-Range";
			return;
		}
		q->err = berth_upload_writer_write(q->w, data, size);
		return;
	case BODY_BUFFER:
		if (size > q->buf_max - q->buf_len) {
			q->err = BERTH_ETOO_LARGE;
			return;
		}
		if (q->buf_len + size > q->buf_cap) {
			size_t cap = q->buf_cap ? q->buf_cap : 16384;
			while (cap < q->buf_len + size) cap *= 2;
			if (cap > q->buf_max) cap = q->buf_max;
			char *nb = realloc(q->buf, cap);
			if (!nb) {
				q->err = BERTH_ENOMEM;
				return;
			}
			q->buf = nb;
			q->buf_cap = cap;
		}
		memcpy(q->buf + q->buf_len, data, size);
		q->buf_len += size;
		return;
	}
}

static enum MHD_Result ahc(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version, const char *upload_data,
			   size_t *upload_data_size, void **con_cls)
{
	struct berth_http_server *s = cls;
	struct req *q = *con_cls;
	(void)version;

	if (!q) {
		q = calloc(1, sizeof *q);
		if (!q) return MHD_NO;
		q->conn = conn;
		q->srv = s;
		q->track = track_of(conn);
		if (q->track) atomic_store(&q->track->in_request, 1);
		q->reg = s->reg;
		q->method = method;
		q->url = url;
		q->expect = -1;
		q->is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
		clock_gettime(CLOCK_MONOTONIC, &q->t0);
		atomic_fetch_add(&s->in_flight, 1);
		*con_cls = q;
		/* Counted in flight before the check, so a stop that has seen in_flight reach 0
		 * after raising draining knows every later request takes this branch. */
		if (atomic_load(&s->draining)) {
			q->close_conn = 1;
			return req_error(q, BERTH_EUNAVAILABLE, "the registry is shutting down");
		}
		if (berth_http_token_route(q, url)) return MHD_YES;
		if (berth_http_ext_route(q, url)) return MHD_YES;
		berth_route_parse(url, strlen(url), &q->route);
		if (q->route.kind == BERTH_ROUTE_NOT_FOUND) {
			q->err = BERTH_ENOTFOUND;
			q->err_detail = "no such route";
		} else if (q->route.kind == BERTH_ROUTE_NAME_INVALID) {
			q->err = BERTH_ENAME_INVALID;
		} else {
			q->h = berth_http_handler(q->route.kind, method);
			if (q->h && s->mirror) berth_http_mirror_route(q);
			if (!q->h) {
				q->err = BERTH_EUNSUPPORTED;
				q->err_detail = "method not allowed on this route";
			} else if (q->err) {
				q->h = NULL; /* refused by the mirror's routing */
			} else if (berth_http_authorize(q)) {
				q->h->begin(q);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		body_piece(q, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!q->h || (q->err && !q->h->finish_on_error)) {
		/* Before the answer, not when the request is done: a client told its push failed
		 * may go on at once, and must find the room the failed push took (a full disk). */
		req_drop_upload(q);
		return req_error(q, q->err ? q->err : BERTH_EINTERNAL, q->err_detail);
	}
	return q->h->finish(q);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct berth_http_server *s = cls;
	struct req *q = *con_cls;
	(void)conn;
	if (!q) return;
	if (q->track) {
		clock_gettime(CLOCK_MONOTONIC, &q->track->idle_since);
		atomic_store(&q->track->in_request, 0);
	}
	if (s->cfg->access_log) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - q->t0.tv_sec) * 1e3 +
			    (double)(t1.tv_nsec - q->t0.tv_nsec) / 1e6;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		char addr[INET6_ADDRSTRLEN] = "-";
		if (ci && ci->client_addr) {
			const struct sockaddr *sa = ci->client_addr;
			if (sa->sa_family == AF_INET)
				inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
					  addr, sizeof addr);
			else if (sa->sa_family == AF_INET6)
				inet_ntop(AF_INET6,
					  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
					  addr, sizeof addr);
		}
		berth_log(BERTH_LOG_INFO, "access %s %s %.300s %u in=%lld out=%lld %.3fms%s%s%s", addr,
			  q->method, q->url, q->status, (long long)q->received,
			  (long long)(q->is_head ? 0 : q->bytes_out), ms,
			  q->msource ? " mirror=" : "",
			  q->msource ? berth_mirror_source_name(q->msource) : "",
			  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	}
	req_free(q);
	*con_cls = NULL;
	atomic_fetch_sub(&s->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
	berth_log(BERTH_LOG_DEBUG, "http: %s", line);
}

/* "host:port", ":port", "[v6]:port" → socket address. */
static berth_err resolve_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256] = "";
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host) return BERTH_EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		port = end + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host) return BERTH_EINVAL;
		memcpy(host, addr, (size_t)(colon - addr));
		port = colon + 1;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
		return BERTH_EINVAL;
	if (!host[0]) {
		/* ":5000" means every IPv4 interface, as in Distribution. */
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
			if (ai->ai_family == AF_INET) {
				memcpy(ss, ai->ai_addr, ai->ai_addrlen);
				*sl = ai->ai_addrlen;
				freeaddrinfo(res);
				return BERTH_OK;
			}
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return BERTH_OK;
}

/* Reads a whole PEM file (bounded) into a NUL-terminated heap string. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	if (!f) return NULL;
	buf = malloc(1 << 20);
	if (buf) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
		if (n == 0 || !feof(f)) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* A listening socket on addr, owned by berth: SO_REUSEADDR only (a restart may bind over
 * TIME_WAIT connections), never SO_REUSEPORT — a second server on a port already served is an
 * error, not a share of its connections. */
static int listen_open(const struct sockaddr_storage *ss, socklen_t sl, const char *addr)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		berth_log(BERTH_LOG_ERROR, "http: cannot listen on %s: %s", addr, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
		berth_log(BERTH_LOG_ERROR, "http: cannot listen on %s: %s%s", addr, strerror(errno),
			  errno == EADDRINUSE ? " (another process serves this port)" : "");
		close(fd);
		return -1;
	}
	return fd;
}

/* Accepts one connection and hands it to libmicrohttpd (which picks a worker of the pool and
 * wakes it). Returns 0 when the listen queue is empty. */
static int accept_one(struct berth_http_server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
		/* Out of descriptors: back off instead of spinning on a ready socket. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			berth_log(BERTH_LOG_WARN, "http: accept: %s", strerror(errno));
			usleep(20000);
		}
		return 1;
	}
	/* On failure libmicrohttpd has closed the socket (over its connection limit). */
	if (MHD_add_connection(s->d, fd, (const struct sockaddr *)&ss, sl) != MHD_YES)
		berth_log(BERTH_LOG_DEBUG, "http: connection refused by the server: %s",
			  strerror(errno));
	return 1;
}

/* Accepts until woken through s->wake. Connections that already completed their handshake
 * (the listen queue) are taken over before returning: closing the socket would reset them,
 * while accepted they are answered (503 once the server drains). */
static void *acceptor_main(void *arg)
{
	struct berth_http_server *s = arg;
	struct pollfd pfd[2] = {{.fd = s->listen_fd, .events = POLLIN},
				{.fd = s->wake[0], .events = POLLIN}};
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR) continue;
			berth_log(BERTH_LOG_ERROR, "http: poll: %s", strerror(errno));
			usleep(10000);
			continue;
		}
		if (pfd[1].revents) break;
		if (pfd[0].revents & POLLIN) (void)accept_one(s);
	}
	for (int i = 0; i < 4096 && accept_one(s); i++)
		;
	return NULL;
}

static void server_free(struct berth_http_server *s)
{
	if (!s) return;
	berth_rcache_free(s->cache);
	berth_auth_free(s->auth);
	pthread_mutex_destroy(&s->conns_lock);
	pthread_cond_destroy(&s->reaper_wake);
	if (s->listen_fd >= 0) close(s->listen_fd);
	if (s->wake[0] >= 0) close(s->wake[0]);
	if (s->wake[1] >= 0) close(s->wake[1]);
	if (s->tls_key) explicit_bzero(s->tls_key, strlen(s->tls_key));
	free(s->tls_key);
	free(s->tls_cert);
	free(s);
}

berth_err berth_http_start(struct berth_registry *reg, struct berth_mirror *mirror,
			   const struct berth_config *cfg, struct berth_http_server **out)
{
	struct berth_http_server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
			 MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET;
	if (!s) return BERTH_ENOMEM;
	s->reg = reg;
	s->mirror = mirror;
	s->cfg = cfg;
	/* Up to 32 upstream checks at once; more wait for a thread (checks of one tag share
	 * one, and a marked-down upstream is answered without one). */
	if (mirror && berth_offload_new(32, &s->offload)) {
		free(s);
		return BERTH_ENOMEM;
	}
	s->listen_fd = s->wake[0] = s->wake[1] = -1;
	atomic_init(&s->in_flight, 0);
	atomic_init(&s->stopping, 0);
	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->reaper_wake, &ca);
	pthread_condattr_destroy(&ca);
	/* Up to 1024 responses (bodies of at most 64 KiB) in 1 MiB: some thousand blob HEAD
	 * answers or small manifests, a few dozen large indexes. */
	s->cache = berth_rcache_new(1024, 64 * 1024, 1024 * 1024);
	if (berth_config_auth_enabled(cfg)) {
		char err[512] = "";
		if (berth_auth_new(cfg, &s->auth, err, sizeof err)) {
			berth_log(BERTH_LOG_ERROR, "%s", err[0] ? err : "auth: cannot start");
			server_free(s);
			return BERTH_EINVAL;
		}
	}
	if (resolve_addr(cfg->http_addr, &ss, &sl)) {
		berth_log(BERTH_LOG_ERROR, "http: cannot resolve address %s", cfg->http_addr);
		server_free(s);
		return BERTH_EINVAL;
	}
	if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
	/* Non-blocking: the accept thread polls, and empties the queue without blocking at a
	 * stop. */
	if ((s->listen_fd = listen_open(&ss, sl, cfg->http_addr)) < 0 ||
	    fcntl(s->listen_fd, F_SETFL, O_NONBLOCK) != 0 ||
	    pipe2(s->wake, O_CLOEXEC) != 0) {
		server_free(s);
		return BERTH_EIO;
	}
	if (cfg->tls_certificate) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			berth_log(BERTH_LOG_ERROR, "http: this libmicrohttpd has no TLS support");
			server_free(s);
			return BERTH_EUNSUPPORTED;
		}
		s->tls_cert = read_pem(cfg->tls_certificate);
		s->tls_key = read_pem(cfg->tls_key);
		if (!s->tls_cert || !s->tls_key) {
			berth_log(BERTH_LOG_ERROR, "http: cannot read TLS certificate %s or key %s",
				  cfg->tls_certificate, cfg->tls_key);
			server_free(s);
			return BERTH_EINVAL;
		}
		flags |= MHD_USE_TLS;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
	else flags |= MHD_USE_POLL;
	s->d = MHD_start_daemon(
		flags, 0, NULL, NULL, ahc, s,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 1 ? cfg->http_threads : 0),
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections + 64,
		/* Per-connection buffer (headers + body pieces): libmicrohttpd zeroes all of it
		 * after every request, so it is resident per open connection — 64 KiB cost
		 * 2 MiB at 32 connections. 36 KiB still takes a 28 KB request head (a 16 KiB
		 * token fits), and above 32 KiB libmicrohttpd maps each pool on its own, so it
		 * goes back to the system when the connection closes instead of staying in the
		 * heap. Smaller body pieces cost ~0.04 CPU s per GiB pushed (~2%). */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(36 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
		s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
		MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
	if (!s->d) {
		berth_log(BERTH_LOG_ERROR, "http: cannot start the HTTP server on %s: %s",
			  cfg->http_addr, strerror(errno));
		server_free(s);
		return BERTH_EIO;
	}
	if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
		berth_log(BERTH_LOG_ERROR, "http: cannot start the accept thread");
		MHD_stop_daemon(s->d);
		server_free(s);
		return BERTH_EIO;
	}
	s->acceptor_running = 1;
	if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0) s->reaper_running = 1;
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (getsockname(s->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
		s->port = ntohs(bound.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
					: ((struct sockaddr_in *)(void *)&bound)->sin_port);
	*out = s;
	return BERTH_OK;
}

unsigned berth_http_port(const struct berth_http_server *s)
{
	return s->port;
}

void berth_http_stop(struct berth_http_server *s, int grace_seconds)
{
	if (!s) return;
	/* Stop accepting: the accept thread returns and the listening socket closes, so new
	 * connections are refused while those already open finish their requests. */
	if (s->acceptor_running) {
		char b = 1;
		while (write(s->wake[1], &b, 1) < 0 && errno == EINTR)
			;
		pthread_join(s->acceptor, NULL);
		s->acceptor_running = 0;
	}
	close(s->listen_fd);
	s->listen_fd = -1;
	/* Requests already started finish; a request that starts on a kept-alive connection
	 * from now on is answered 503 with Connection: close. */
	atomic_store(&s->draining, 1);
	for (int i = 0; i < grace_seconds * 100 && atomic_load(&s->in_flight) > 0; i++)
		usleep(10000);
	if (atomic_load(&s->in_flight) > 0)
		berth_log(BERTH_LOG_WARN, "http: stopping with %d requests still in flight",
			  atomic_load(&s->in_flight));
	/* Requests still reading a blob from an upstream would wait for it: end those fetches
	 * (their clients see the transfer cut, nothing is kept). */
	berth_mirror_shutdown(s->mirror);
	/* libmicrohttpd aborts the process when it is stopped with a suspended connection:
	 * requests parked on work of their own (a blob being published) are waited for even
	 * past the grace period; that work always ends. */
	for (int i = 0; atomic_load(&s->parked) > 0; i++) {
		if (i == 500)
			berth_log(BERTH_LOG_WARN, "http: waiting for %d suspended requests",
				  atomic_load(&s->parked));
		usleep(10000);
	}
	berth_offload_free(s->offload);
	s->offload = NULL;
	pthread_mutex_lock(&s->conns_lock);
	atomic_store(&s->stopping, 1);
	pthread_cond_signal(&s->reaper_wake);
	pthread_mutex_unlock(&s->conns_lock);
	if (s->reaper_running) pthread_join(s->reaper, NULL);
	MHD_stop_daemon(s->d);
	server_free(s);
}

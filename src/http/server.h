/* server.h — the HTTP front door: binds the configured address and serves the registry API
 * through libmicrohttpd (a thread pool on epoll). Owns no registry state. */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include "../core/config.h"
#include "../core/err.h"
#include "../core/registry.h"
#include "../mirror/mirror.h"

struct berth_http_server;

/* reg, mirror (NULL: none) and cfg are borrowed and must outlive the server. */
berth_err berth_http_start(struct berth_registry *reg, struct berth_mirror *mirror,
			   const struct berth_config *cfg,
			   struct berth_http_server **out) BERTH_MUST_CHECK;
/* The port actually bound (useful with port 0). */
unsigned berth_http_port(const struct berth_http_server *s);
/* Stops accepting, lets in-flight requests finish (up to grace_seconds), then stops. */
void berth_http_stop(struct berth_http_server *s, int grace_seconds);

#endif

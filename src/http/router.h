/* router.h — maps a /v2 request path onto a route: which endpoint, which repository, which
 * reference. A pure function of (bytes, length): no allocation, fuzzable. */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include <stddef.h>
#include "../core/limits.h"

enum berth_route_kind {
	BERTH_ROUTE_NOT_FOUND = 0,
	BERTH_ROUTE_NAME_INVALID, /* the shape matched but the repository name is not valid */
	BERTH_ROUTE_BASE,         /* /v2/ */
	BERTH_ROUTE_CATALOG,      /* /v2/_catalog */
	BERTH_ROUTE_TAGS,         /* /v2/<name>/tags/list */
	BERTH_ROUTE_MANIFEST,     /* /v2/<name>/manifests/<ref> */
	BERTH_ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
	BERTH_ROUTE_UPLOADS,      /* /v2/<name>/blobs/uploads/ */
	BERTH_ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<id> */
	BERTH_ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
};

#define BERTH_ROUTE_REF_MAX 255

struct berth_route {
	enum berth_route_kind kind;
	char name[BERTH_NAME_MAX + 1];     /* NUL-terminated repository name */
	char ref[BERTH_ROUTE_REF_MAX + 1]; /* tag, digest or upload id (unvalidated) */
};

/* path is the decoded request path without the query string. */
void berth_route_parse(const char *path, size_t len, struct berth_route *out);

#endif

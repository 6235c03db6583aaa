/* router.c — the repository name may itself contain slashes, so a route is recognised by its
 * rightmost endpoint marker ("/manifests/", "/blobs/", ...), whose remainder holds no '/'. */
#include "router.h"

#include <string.h>

#include "../core/ref.h"

_Static_assert(BERTH_ROUTE_REF_MAX > BERTH_TAG_MAX && BERTH_ROUTE_REF_MAX > BERTH_DIGEST_MAX,
	       "a reference cut to BERTH_ROUTE_REF_MAX must stay invalid");

struct marker {
	const char *text;
	size_t len;
	enum berth_route_kind kind;
	int may_be_empty; /* the remainder may be "" */
	int exact;        /* the remainder must be "" (marker ends the path) */
};

static const struct marker markers[] = {
	{"/tags/list", 10, BERTH_ROUTE_TAGS, 1, 1},
	{"/manifests/", 11, BERTH_ROUTE_MANIFEST, 0, 0},
	{"/blobs/uploads/", 15, BERTH_ROUTE_UPLOAD, 1, 0},
	{"/blobs/", 7, BERTH_ROUTE_BLOB, 0, 0},
	{"/referrers/", 11, BERTH_ROUTE_REFERRERS, 0, 0},
};

/* Position of the last occurrence of m in s[0..len), or -1. */
static long last_index(const char *s, size_t len, const char *m, size_t mlen)
{
	if (len < mlen) return -1;
	for (size_t i = len - mlen + 1; i-- > 0;)
		if (memcmp(s + i, m, mlen) == 0) return (long)i;
	return -1;
}

void berth_route_parse(const char *path, size_t len, struct berth_route *out)
{
	const char *p;
	size_t plen;
	long best_pos = -1;
	const struct marker *best = NULL;

	memset(out, 0, sizeof *out);
	out->kind = BERTH_ROUTE_NOT_FOUND;
	if (len < 3 || memcmp(path, "/v2", 3) != 0) return;
	if (len == 3 || (len == 4 && path[3] == '/')) {
		out->kind = BERTH_ROUTE_BASE;
		return;
	}
	if (path[3] != '/') return;
	p = path + 4;
	plen = len - 4;
	if (plen == 8 && memcmp(p, "_catalog", 8) == 0) {
		out->kind = BERTH_ROUTE_CATALOG;
		return;
	}
	for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
		const struct marker *m = &markers[i];
		long pos = last_index(p, plen, m->text, m->len);
		if (pos <= 0) continue; /* an empty name never matches */
		size_t rest_off = (size_t)pos + m->len;
		size_t rest_len = plen - rest_off;
		if (m->exact && rest_len != 0) continue;
		if (!m->may_be_empty && rest_len == 0) continue;
		if (memchr(p + rest_off, '/', rest_len)) continue;
		/* "/blobs/uploads/x" also matches "/blobs/" at the same place with remainder
		 * "uploads/x" — rejected above by the '/' check; the rightmost wins otherwise. */
		if (pos > best_pos) {
			best_pos = pos;
			best = m;
		}
	}
	if (!best) return;
	{
		size_t name_len = (size_t)best_pos;
		size_t rest_off = name_len + best->len;
		size_t rest_len = plen - rest_off;
		if (name_len > BERTH_NAME_MAX || !berth_ref_name_valid(p, name_len)) {
			out->kind = BERTH_ROUTE_NAME_INVALID;
			return;
		}
		if (memchr(p + rest_off, '\0', rest_len)) return;
		memcpy(out->name, p, name_len);
		out->name[name_len] = '\0';
		/* A reference longer than BERTH_ROUTE_REF_MAX is cut there: still longer than any tag,
		 * digest or upload id, so still none of them, and the endpoint answers its own error
		 * (MANIFEST_UNKNOWN; TAG_INVALID or DIGEST_INVALID on a put; DIGEST_INVALID on
		 * referrers, which must never answer 404) rather than "no such route". */
		if (rest_len > BERTH_ROUTE_REF_MAX) rest_len = BERTH_ROUTE_REF_MAX;
		memcpy(out->ref, p + rest_off, rest_len);
		out->ref[rest_len] = '\0';
		out->kind = best->kind;
		if (best->kind == BERTH_ROUTE_UPLOAD && rest_len == 0) out->kind = BERTH_ROUTE_UPLOADS;
		/* "/blobs/uploads" without the trailing slash starts an upload too. */
		if (best->kind == BERTH_ROUTE_BLOB && strcmp(out->ref, "uploads") == 0) {
			out->kind = BERTH_ROUTE_UPLOADS;
			out->ref[0] = '\0';
		}
	}
}

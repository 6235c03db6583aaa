/* fuzz_route.c — berth_route_parse. Invariants: a route that carries a repository holds a name
 * that berth_ref_name_valid accepts and a reference without '/' or NUL, both terminated and
 * copied from the path ("/v2/" NAME marker REF, REF cut to BERTH_ROUTE_REF_MAX); routes without
 * a repository leave both empty. */
#include "../../src/core/ref.h"
#include "../../src/http/router.h"
#include "fuzz.h"

static const char *marker_of(enum berth_route_kind k)
{
	switch (k) {
	case BERTH_ROUTE_TAGS: return "/tags/list";
	case BERTH_ROUTE_MANIFEST: return "/manifests/";
	case BERTH_ROUTE_BLOB: return "/blobs/";
	case BERTH_ROUTE_UPLOADS: return "/blobs/uploads";
	case BERTH_ROUTE_UPLOAD: return "/blobs/uploads/";
	case BERTH_ROUTE_REFERRERS: return "/referrers/";
	default: return NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = (const char *)data;
	struct berth_route r;
	const char *marker;
	size_t nl, rl, ml;

	memset(&r, 0xa5, sizeof r);
	berth_route_parse(path, size, &r);
	FUZZ_ASSERT(r.kind >= BERTH_ROUTE_NOT_FOUND && r.kind <= BERTH_ROUTE_REFERRERS);
	FUZZ_ASSERT(fuzz_terminated(r.name, sizeof r.name));
	FUZZ_ASSERT(fuzz_terminated(r.ref, sizeof r.ref));
	nl = strlen(r.name);
	rl = strlen(r.ref);
	if (r.name[0]) FUZZ_ASSERT(berth_ref_name_valid(r.name, nl));

	marker = marker_of(r.kind);
	if (!marker) {
		/* NOT_FOUND may keep a name it had validated before refusing the reference. */
		if (r.kind != BERTH_ROUTE_NOT_FOUND) FUZZ_ASSERT(nl == 0);
		FUZZ_ASSERT(r.kind == BERTH_ROUTE_NOT_FOUND || rl == 0);
		if (r.kind == BERTH_ROUTE_BASE || r.kind == BERTH_ROUTE_CATALOG)
			FUZZ_ASSERT(size >= 3 && memcmp(path, "/v2", 3) == 0);
		return 0;
	}
	FUZZ_ASSERT(nl > 0 && berth_ref_name_valid(r.name, nl));
	FUZZ_ASSERT(!memchr(r.ref, '/', rl));
	ml = strlen(marker);
	/* The path is exactly "/v2/" NAME MARKER REF, with MARKER one of the spellings below. */
	FUZZ_ASSERT(size >= 4 + nl && memcmp(path, "/v2/", 4) == 0);
	FUZZ_ASSERT(memcmp(path + 4, r.name, nl) == 0);
	if (r.kind == BERTH_ROUTE_UPLOADS) {
		FUZZ_ASSERT(rl == 0);
		FUZZ_ASSERT((size == 4 + nl + ml && memcmp(path + 4 + nl, marker, ml) == 0) ||
			    (size == 4 + nl + ml + 1 && memcmp(path + 4 + nl, "/blobs/uploads/", ml + 1) == 0));
		return 0;
	}
	FUZZ_ASSERT(rl <= BERTH_ROUTE_REF_MAX);
	if (rl < BERTH_ROUTE_REF_MAX) FUZZ_ASSERT(size == 4 + nl + ml + rl);
	FUZZ_ASSERT(size >= 4 + nl + ml + rl);
	FUZZ_ASSERT(!memchr(path + 4 + nl + ml, '/', size - (4 + nl + ml)));
	FUZZ_ASSERT(memcmp(path + 4 + nl, marker, ml) == 0);
	FUZZ_ASSERT(memcmp(path + 4 + nl + ml, r.ref, rl) == 0);
	if (r.kind == BERTH_ROUTE_TAGS) FUZZ_ASSERT(rl == 0);
	if (r.kind != BERTH_ROUTE_TAGS) FUZZ_ASSERT(rl > 0);
	return 0;
}

/* The mirror's routing (which upstream serves a name, under which cached name) and its
 * answers with no upstream reachable, over a real store in a temporary folder. The network
 * paths are covered end to end by tests/e2e/test_mirror.py. */
#include <stdlib.h>
#include <unistd.h>

#include "../../src/core/registry.h"
#include "../../src/mirror/mirror.h"
#include "t.h"

static char root[256];
static struct berth_registry *reg;
static struct berth_mirror *mir;
static struct berth_config cfg;
static struct berth_mirror_upstream ups[2];

static void setup(void)
{
	struct berth_store *st = NULL;
	struct berth_meta *m = NULL;
	struct berth_registry_opts o = {.manifest_max = 4 << 20, .upload_expiry = 3600};
	char db[512];
	snprintf(root, sizeof root, "/tmp/berth-unit-mirror-XXXXXX");
	if (!mkdtemp(root)) exit(2);
	snprintf(db, sizeof db, "%s/meta.db", root);
	if (berth_store_fs_open(root, &st) || berth_meta_sqlite_open(db, 0, &m) ||
	    berth_registry_new(st, m, &o, &reg))
		exit(2);
	/* Port 9 (discard) on loopback: nothing listens, every upstream request is refused. */
	ups[0] = (struct berth_mirror_upstream){.prefix = "docker.io", .url = "http://127.0.0.1:9",
						.is_default = 1, .dockerhub = 1};
	ups[1] = (struct berth_mirror_upstream){.prefix = "ghcr.io", .url = "http://127.0.0.1:9"};
	cfg.upstreams = ups;
	cfg.nupstreams = 2;
	cfg.mirror_timeout_ms = 500;
	cfg.mirror_breaker = 30;
	cfg.mirror_keep_deleted = 1;
	if (berth_mirror_new(&cfg, reg, &mir) || !mir) exit(2);
}

static void teardown(void)
{
	char cmd[300];
	berth_mirror_free(mir);
	berth_registry_free(reg);
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
}

static void test_prefix_routes(void)
{
	struct berth_mirror_route rt;
	CHECK(berth_mirror_route(mir, "docker.io/library/alpine", NULL, 0, &rt));
	CHECK_EQ_INT(rt.up, 0);
	CHECK_STR(rt.local, "docker.io/library/alpine");
	CHECK_STR(rt.remote, "library/alpine");
	/* Docker Hub's rule for one-component names. */
	CHECK(berth_mirror_route(mir, "docker.io/alpine", NULL, 0, &rt));
	CHECK_STR(rt.local, "docker.io/library/alpine");
	CHECK_STR(rt.remote, "library/alpine");
	/* Not for other upstreams. */
	CHECK(berth_mirror_route(mir, "ghcr.io/tool", NULL, 0, &rt));
	CHECK_EQ_INT(rt.up, 1);
	CHECK_STR(rt.remote, "tool");
	CHECK_STR(rt.local, "ghcr.io/tool");
	/* A prefix matches whole components only. */
	CHECK(!berth_mirror_route(mir, "ghcr.iox/tool", NULL, 1, &rt));
	CHECK(!berth_mirror_route(mir, "ghcr.io", NULL, 1, &rt));
	/* Writes to a prefixed name are routed too (the HTTP layer refuses them). */
	CHECK(berth_mirror_route(mir, "ghcr.io/tool", NULL, 1, &rt));
}

static void test_ns_routes(void)
{
	struct berth_mirror_route rt;
	CHECK(berth_mirror_route(mir, "library/alpine", "docker.io", 0, &rt));
	CHECK_STR(rt.local, "docker.io/library/alpine");
	CHECK(berth_mirror_route(mir, "alpine", "docker.io", 0, &rt));
	CHECK_STR(rt.remote, "library/alpine");
	CHECK(berth_mirror_route(mir, "org/img", "ghcr.io", 0, &rt));
	CHECK_STR(rt.local, "ghcr.io/org/img");
	CHECK_EQ_INT(rt.up, 1);
	/* A registry no upstream serves is not the default upstream's same-named repository. */
	CHECK_EQ_INT(berth_mirror_route(mir, "org/img", "quay.io", 0, &rt), -1);
	CHECK_EQ_INT(berth_mirror_route(mir, "org/img", "quay.io", 1, &rt), -1);
}

static void test_default_upstream_spares_local_repositories(void)
{
	struct berth_mirror_route rt;
	struct berth_upload_writer *w = NULL;
	struct berth_digest d;
	char id[BERTH_UPLOAD_ID_LEN + 1];
	int64_t size;
	/* Un-prefixed reads go to the default upstream... */
	CHECK(berth_mirror_route(mir, "team/app", NULL, 0, &rt));
	CHECK_STR(rt.local, "docker.io/team/app");
	/* ...un-prefixed writes never do... */
	CHECK(!berth_mirror_route(mir, "team/app", NULL, 1, &rt));
	/* ...and once team/app holds content here, reads stay here. */
	CHECK(!berth_registry_upload_start(reg, "team/app", id));
	CHECK(!berth_registry_upload_writer(reg, "team/app", id, 0, 0, &w));
	CHECK(!berth_upload_writer_write(w, "hello", 5));
	CHECK(!berth_upload_writer_finish(w));
	berth_upload_writer_close(w);
	CHECK(!berth_digest_of(BERTH_DIGEST_SHA256, "hello", 5, &d));
	CHECK(!berth_registry_upload_finish(reg, "team/app", id, &d, &size));
	CHECK(!berth_mirror_route(mir, "team/app", NULL, 0, &rt));
}

static void test_unreachable_upstream(void)
{
	struct berth_mirror_route rt;
	struct berth_mirror_answer a;
	struct berth_digest d;
	struct berth_fetch *f = NULL;
	CHECK(berth_mirror_route(mir, "docker.io/library/alpine", NULL, 0, &rt));
	CHECK_EQ_INT(berth_mirror_manifest(mir, &rt, "3.20", &a), BERTH_EUNAVAILABLE);
	CHECK(strstr(a.why, "docker.io") != NULL);
	/* The breaker is open now: no second attempt, the same answer at once. */
	CHECK(berth_mirror_down(mir, 0));
	CHECK(!berth_mirror_down(mir, 1));
	CHECK_EQ_INT(berth_mirror_manifest(mir, &rt, "3.20", &a), BERTH_EUNAVAILABLE);
	CHECK(strstr(a.why, "asked again in") != NULL);
	CHECK(!berth_digest_of(BERTH_DIGEST_SHA256, "x", 1, &d));
	CHECK_EQ_INT(berth_mirror_blob_fetch(mir, &rt, &d, &f, &a), BERTH_EUNAVAILABLE);
	CHECK(f == NULL);
	/* A malformed digest is simply unknown. */
	CHECK_EQ_INT(berth_mirror_manifest(mir, &rt, "sha256:zz", &a), BERTH_EMANIFEST_UNKNOWN);
}

static void test_status(void)
{
	json_t *doc = berth_mirror_status(mir);
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	CHECK(s != NULL);
	if (s) {
		CHECK(strstr(s, "\"prefix\":\"docker.io\"") != NULL);
		CHECK(strstr(s, "\"up\":false") != NULL);
		CHECK(strstr(s, "\"last_error\"") != NULL);
	}
	free(s);
}

int main(void)
{
	setup();
	T_RUN(test_prefix_routes);
	T_RUN(test_ns_routes);
	T_RUN(test_default_upstream_spares_local_repositories);
	T_RUN(test_unreachable_upstream);
	T_RUN(test_status);
	teardown();
	return T_DONE("unit-mirror");
}

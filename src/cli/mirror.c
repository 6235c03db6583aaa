/* mirror.c — `berth mirror status REGISTRY` and `berth mirror sync REGISTRY/REPOSITORY`: the
 * pull-through mirror of a berth registry (README "Mirror"), through its extension API. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_common.h"

static const char usage_text[] =
	"usage: berth mirror status [--insecure] [--json] REGISTRY\n"
	"       berth mirror sync [--insecure] [--json] [--semver CONSTRAINT]\n"
	"                         [--platform OS/ARCH[/VARIANT] | --all] REGISTRY/REPOSITORY\n\n"
	"status: each upstream of the registry's mirror, up or down, its last error, hits, misses,\n"
	"stale answers and bytes fetched and served from the cache.\n"
	"sync: caches the tags of a mirrored REPOSITORY (named with its upstream's prefix:\n"
	"127.0.0.1:5000/docker.io/library/alpine) that satisfy CONSTRAINT ('^3', '>=1.2 <2'; every\n"
	"tag without it), with every layer, so they pull during an upstream outage. --platform\n"
	"picks one image of a multi-platform index (default: --all).\n";

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* One request to the extension API; the answer's JSON in *doc. Returns the exit code. */
static int ext_call(const struct cli_opts *o, const char *registry, const char *method,
		    const char *path_query, const char *scope, json_t **doc)
{
	struct berth_client *c = cli_client(o, NULL);
	char url[BERTH_CLIENT_URL_MAX];
	struct berth_req rq;
	struct berth_resp rs;
	berth_cerr rc;
	int r = 0;

	*doc = NULL;
	if (!c) return 1;
	snprintf(url, sizeof url, "/berth/v1/%s", path_query);
	berth_req_init(&rq);
	rq.method = method;
	rq.url = url;
	rq.scope = scope;
	rq.accept = "application/json";
	rq.max_body = 1u << 20;
	rc = berth_client_do(c, registry, &rq, &rs);
	if (!rc && rs.status != 200) {
		/* The registry's detail says what is wrong (not mirrored, which upstream failed). */
		json_t *e = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
		const char *detail = json_string_value(
			json_object_get(json_array_get(json_object_get(e, "errors"), 0), "detail"));
		rc = berth_client_http_error(c, registry, &rs);
		if (detail) {
			fprintf(stderr, "berth: mirror: %s\n", detail);
			json_decref(e);
			berth_resp_clear(&rs);
			cli_client_free(c);
			return rc;
		}
		json_decref(e);
	}
	if (!rc) {
		*doc = json_loadb(rs.body ? rs.body : "", rs.body_len, 0, NULL);
		if (!*doc) rc = berth_client_fail(c, BERTH_C_EFAIL, "%s: not a JSON answer", registry);
	}
	if (rc) r = cli_fail(c, rc);
	berth_resp_clear(&rs);
	cli_client_free(c);
	return r;
}

static int cmd_status(const struct cli_opts *o)
{
	json_t *doc, *u;
	size_t i;
	int r = ext_call(o, o->positional[0], "GET", "mirror", NULL, &doc);
	if (r) return r;
	if (o->json) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s) printf("%s\n", s);
		free(s);
	} else {
		json_array_foreach(json_object_get(doc, "upstreams"), i, u) {
			printf("%s  %s  %s", jstr(u, "prefix"), jstr(u, "url"),
			       json_is_true(json_object_get(u, "up")) ? "up" : "DOWN");
			if (!json_is_true(json_object_get(u, "up")))
				printf(" (asked again in %lld s)", jint(u, "down_for_seconds"));
			printf("  hits %lld  misses %lld  stale %lld  errors %lld  fetched %lld B  "
			       "served from cache %lld B\n",
			       jint(u, "hits"), jint(u, "misses"), jint(u, "stale"), jint(u, "errors"),
			       jint(u, "bytes_fetched"), jint(u, "bytes_served_from_cache"));
			if (json_object_get(u, "last_error"))
				printf("  last error at %s: %s\n", jstr(u, "last_error_at"),
				       jstr(u, "last_error"));
		}
	}
	json_decref(doc);
	return 0;
}

static int cmd_sync(const struct cli_opts *o)
{
	const char *arg = o->positional[0], *slash = strchr(arg, '/');
	char registry[BERTH_REF_DOMAIN_MAX + 1], enc[3 * (BERTH_NAME_MAX + 1)], encs[512],
		encp[256], pq[2048], scope[BERTH_NAME_MAX + 32];
	json_t *doc;
	int r;

	if (!slash || slash == arg || (size_t)(slash - arg) > BERTH_REF_DOMAIN_MAX || !slash[1]) {
		fprintf(stderr, "berth: mirror sync: '%s' is not REGISTRY/REPOSITORY\n", arg);
		return 2;
	}
	if (o->platform && o->all) {
		fprintf(stderr, "berth: mirror sync: --platform and --all exclude each other\n");
		return 2;
	}
	snprintf(registry, sizeof registry, "%.*s", (int)(slash - arg), arg);
	berth_url_encode(slash + 1, enc, sizeof enc);
	berth_url_encode(o->semver ? o->semver : "", encs, sizeof encs);
	berth_url_encode(o->platform ? o->platform : "all", encp, sizeof encp);
	snprintf(pq, sizeof pq, "mirror/sync?repository=%s&semver=%s&platform=%s", enc, encs, encp);
	snprintf(scope, sizeof scope, "repository:%s:pull", slash + 1);
	r = ext_call(o, registry, "POST", pq, scope, &doc);
	if (r) return r;
	if (o->json) {
		char *s = json_dumps(doc, JSON_COMPACT);
		if (s) printf("%s\n", s);
		free(s);
	} else {
		printf("%s: %lld tags, %lld manifests, %lld blobs fetched (%lld bytes), %lld failed\n",
		       jstr(doc, "repository"), jint(doc, "tags"), jint(doc, "manifests"),
		       jint(doc, "blobs"), jint(doc, "bytes"), jint(doc, "failed"));
	}
	r = jint(doc, "failed") ? 1 : 0;
	json_decref(doc);
	return r;
}

int berth_cmd_mirror(int argc, char **argv)
{
	struct cli_opts o;
	int r;
	if (argc < 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "sync") != 0)) {
		int help = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
		fputs(usage_text, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (strcmp(argv[1], "status") == 0) {
		r = cli_parse(argc - 1, argv + 1, usage_text, "", 1, &o);
		if (r) return r < 0 ? 0 : r;
		return cmd_status(&o);
	}
	r = cli_parse(argc - 1, argv + 1, usage_text, "semver platform all", 1, &o);
	if (r) return r < 0 ? 0 : r;
	return cmd_sync(&o);
}

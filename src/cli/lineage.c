/* lineage.c — `berth derived REF`, `berth base REF`, `berth outdated [--golden P] REGISTRY`,
 * `berth search --label K=V REGISTRY`, `berth resolve REPO:TAG`: questions about image lineage,
 * labels and versions, answered by a berth registry's extension API (/berth/v1, see README
 * "Versions and golden images"). Text is one line per image; --json prints the API's answer. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client_common.h"

static void print_json(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	if (s) printf("%s\n", s);
	free(s);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* REPOSITORY@DIGEST  TAGS  OS/ARCH  [golden] [on BASE:TAG, newest TAG] */
static void print_images(json_t *doc, int mark_golden)
{
	json_t *img;
	size_t i;

	json_array_foreach(json_object_get(doc, "images"), i, img) {
		json_t *t, *base = json_object_get(img, "base");
		size_t j;
		printf("%s@%s  ", str(img, "repository"), str(img, "digest"));
		if (!json_array_size(json_object_get(img, "tags"))) printf("-");
		json_array_foreach(json_object_get(img, "tags"), j, t)
			printf("%s%s", j ? "," : "", json_string_value(t));
		printf("  %s/%s", json_is_string(json_object_get(img, "os")) ? str(img, "os") : "-",
		       json_is_string(json_object_get(img, "architecture")) ? str(img, "architecture")
									     : "-");
		if (mark_golden && json_is_true(json_object_get(img, "golden"))) printf("  golden");
		if (base)
			printf("  on %s:%s, newest %s", str(base, "repository"), str(base, "tag"),
			       str(json_object_get(img, "newest"), "tag"));
		printf("\n");
	}
}

/* One GET of the extension API, printed; returns the exit code. */
static int ext_run(const struct cli_opts *o, const char *registry, const char *path_query,
		   const char *scope, int mark_golden)
{
	struct berth_client *c = cli_client(o, NULL);
	json_t *doc = NULL;
	berth_cerr rc;
	int r = 0;

	if (!c) return 1;
	rc = berth_op_ext_get(c, registry, path_query, scope, &doc);
	if (rc) r = cli_fail(c, rc);
	else if (o->json) print_json(doc);
	else print_images(doc, mark_golden);
	json_decref(doc);
	cli_client_free(c);
	return r;
}

/* REF → "image=<encoded repo:tag or repo@digest>" and its pull scope. */
static int image_query(const struct cli_opts *o, const char *endpoint, struct berth_ref *ref,
		       char *pq, size_t pqlen, char *scope, size_t scopelen)
{
	char image[BERTH_NAME_MAX + BERTH_DIGEST_MAX + 2], enc[3 * sizeof image];
	int r = cli_ref(o, o->positional[0], ref);

	if (r) return r;
	snprintf(image, sizeof image, "%s%s%s", ref->path, ref->has_digest ? "@" : ":",
		 ref->has_digest ? ref->digest : ref->tag);
	berth_url_encode(image, enc, sizeof enc);
	snprintf(pq, pqlen, "%s?image=%s", endpoint, enc);
	snprintf(scope, scopelen, "repository:%s:pull", ref->path);
	return 0;
}

static int image_verb(int argc, char **argv, const char *usage, const char *endpoint,
		      int mark_golden)
{
	struct cli_opts o;
	struct berth_ref ref;
	char pq[2048], scope[BERTH_NAME_MAX + 32];
	int r = cli_parse(argc, argv, usage, "", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = image_query(&o, endpoint, &ref, pq, sizeof pq, scope, sizeof scope))) return r;
	return ext_run(&o, ref.domain, pq, scope, mark_golden);
}

int berth_cmd_derived(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth derived [--insecure] [--json] REF\n\n"
		"Lists the images built on REF (its layers are a prefix of theirs, or they name it in\n"
		"their org.opencontainers.image.base.digest annotation), in every repository you may\n"
		"pull. Needs a berth registry.\n";
	return image_verb(argc, argv, usage, "derived", 0);
}

int berth_cmd_base(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth base [--insecure] [--json] REF\n\n"
		"Lists the images REF is built on, the closest golden image first, then the others\n"
		"closest first; golden ones are marked. Needs a berth registry.\n";
	return image_verb(argc, argv, usage, "base", 1);
}

/* REGISTRY is a bare host[:port]. */
static int registry_arg(const struct cli_opts *o, const char *s)
{
	if (!*s || strchr(s, '/') || strchr(s, '@')) {
		fprintf(stderr, "berth: %s: '%s' is not a registry (HOST[:PORT])\n", o->verb, s);
		return 2;
	}
	return 0;
}

int berth_cmd_outdated(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth outdated [--insecure] [--json] [--golden PATTERN] REGISTRY\n\n"
		"Lists the images built on a version of a golden image that is no longer the newest\n"
		"release of its major line (rebuild candidates), with the version they are on and the\n"
		"newest. PATTERN: golden repositories ('golden/*'; default: the registry's golden\n"
		"configuration). Needs a berth registry.\n";
	struct cli_opts o;
	char pq[1024] = "outdated", enc[768];
	int r = cli_parse(argc, argv, usage, "golden", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = registry_arg(&o, o.positional[0]))) return r;
	if (o.golden) {
		berth_url_encode(o.golden, enc, sizeof enc);
		snprintf(pq, sizeof pq, "outdated?golden=%s", enc);
	}
	return ext_run(&o, o.positional[0], pq, NULL, 0);
}

int berth_cmd_search(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth search [--insecure] [--json] --label KEY=VALUE REGISTRY\n\n"
		"Lists the images whose config carries the label KEY=VALUE. Needs a berth registry.\n";
	struct cli_opts o;
	char pq[2048], enc[1536];
	int r = cli_parse(argc, argv, usage, "label", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if (!o.label || !strchr(o.label, '=') || o.label[0] == '=') {
		fprintf(stderr, "berth: search: --label KEY=VALUE is required\n%s", usage);
		return 2;
	}
	if ((r = registry_arg(&o, o.positional[0]))) return r;
	berth_url_encode(o.label, enc, sizeof enc);
	snprintf(pq, sizeof pq, "search?label=%s", enc);
	return ext_run(&o, o.positional[0], pq, NULL, 0);
}

int berth_cmd_resolve(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth resolve [--insecure] [--json] REPO:TAG\n\n"
		"Prints the exact version a floating tag (1, 1.2, latest) points at, and the digest:\n"
		"\"1.2.3 sha256:...\" (\"-\" when no exact version tag shares the digest). Needs a\n"
		"berth registry.\n";
	struct cli_opts o;
	struct berth_ref ref;
	struct berth_client *c;
	char pq[2048], scope[BERTH_NAME_MAX + 32];
	json_t *doc = NULL;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = image_query(&o, "resolve", &ref, pq, sizeof pq, scope, sizeof scope))) return r;
	if (!(c = cli_client(&o, NULL))) return 1;
	rc = berth_op_ext_get(c, ref.domain, pq, scope, &doc);
	if (rc) {
		r = cli_fail(c, rc);
	} else if (o.json) {
		print_json(doc);
	} else {
		json_t *v = json_object_get(doc, "version");
		printf("%s %s\n", json_is_string(v) ? json_string_value(v) : "-", str(doc, "digest"));
	}
	json_decref(doc);
	cli_client_free(c);
	return r;
}

/* inspect.c — `berth ls REPO [--all] [--page-size N]`, `berth inspect REF [--raw]
 * [--platform p]`, `berth digest REF`, `berth rm REF`: looking at and deleting what a registry
 * holds (src/client/ops.h). */
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

int berth_cmd_ls(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth ls [--insecure] [--json] [--all] [--page-size N] [--sort semver]\n"
		"                [--semver CONSTRAINT] REPO\n\n"
		"Lists the tags of REPO: the first page, or with --all every page (Link pagination).\n"
		"--sort semver: versions in ascending precedence, other tags after them (a berth\n"
		"registry); --semver '^1.2': only exact versions satisfying the constraint.\n";
	struct cli_opts o;
	struct berth_ref ref;
	struct berth_client *c;
	char **tags = NULL;
	size_t n = 0;
	berth_cerr rc;
	char query[1024] = "", enc[768];
	int r = cli_parse(argc, argv, usage, "all page-size sort semver", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &ref))) return r;
	if (o.sort && strcmp(o.sort, "semver") != 0) {
		fprintf(stderr, "berth: ls: --sort takes semver\n");
		return 2;
	}
	if (o.sort) snprintf(query, sizeof query, "sort=semver");
	if (o.semver) {
		size_t l = strlen(query);
		berth_url_encode(o.semver, enc, sizeof enc);
		snprintf(query + l, sizeof query - l, "%ssemver=%s", l ? "&" : "", enc);
	}
	if (!(c = cli_client(&o, NULL))) return 1;
	rc = berth_op_tags_query(c, &ref, o.all, o.page_size, query[0] ? query : NULL, &tags, &n);
	if (rc) {
		r = cli_fail(c, rc);
	} else if (o.json) {
		json_t *j = json_pack("{s:s,s:[]}", "name", ref.path, "tags"), *arr;

		arr = j ? json_object_get(j, "tags") : NULL;
		for (size_t i = 0; arr && i < n; i++) json_array_append_new(arr, json_string(tags[i]));
		print_json(j);
		json_decref(j);
	} else {
		for (size_t i = 0; i < n; i++) printf("%s\n", tags[i]);
	}
	berth_op_tags_free(tags, n);
	cli_client_free(c);
	return r;
}

static void print_human(json_t *info)
{
	json_t *v, *e;
	const char *k;
	size_t i;

	printf("Name:       %s\n", json_string_value(json_object_get(info, "name")));
	printf("Digest:     %s\n", json_string_value(json_object_get(info, "digest")));
	printf("MediaType:  %s\n", json_string_value(json_object_get(info, "mediaType")));
	printf("Size:       %lld\n", (long long)json_integer_value(json_object_get(info, "size")));
	if ((v = json_object_get(info, "manifests"))) {
		printf("Manifests:\n");
		json_array_foreach(v, i, e) {
			json_t *p = json_object_get(e, "platform");

			printf("  %s  %-20s %s\n", json_string_value(json_object_get(e, "digest")),
			       p ? json_string_value(p) : "-",
			       json_string_value(json_object_get(e, "mediaType")));
		}
		return;
	}
	if ((v = json_object_get(info, "os")))
		printf("Platform:   %s/%s%s%s\n", json_string_value(v),
		       json_string_value(json_object_get(info, "architecture")) ?: "",
		       json_object_get(info, "variant") ? "/" : "",
		       json_string_value(json_object_get(info, "variant")) ?: "");
	if ((v = json_object_get(info, "created"))) printf("Created:    %s\n", json_string_value(v));
	v = json_object_get(info, "config");
	printf("Config:     %s (%lld bytes)\n", json_string_value(json_object_get(v, "digest")),
	       (long long)json_integer_value(json_object_get(v, "size")));
	v = json_object_get(info, "labels");
	if (json_object_size(v)) {
		printf("Labels:\n");
		json_object_foreach(v, k, e)
			printf("  %s=%s\n", k, json_is_string(e) ? json_string_value(e) : "");
	}
	v = json_object_get(info, "layers");
	printf("Layers:     %zu, %lld bytes\n", json_array_size(v),
	       (long long)json_integer_value(json_object_get(info, "totalSize")));
	json_array_foreach(v, i, e)
		printf("  %s  %12lld  %s\n", json_string_value(json_object_get(e, "digest")),
		       (long long)json_integer_value(json_object_get(e, "size")),
		       json_string_value(json_object_get(e, "mediaType")));
}

int berth_cmd_inspect(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth inspect [--insecure] [--json] [--raw] [--platform OS/ARCH[/VARIANT]] REF\n\n"
		"Shows REF's manifest: digest, media type, platforms of an index, or an image's config,\n"
		"labels and layers with sizes. --raw prints the manifest bytes exactly as served.\n";
	struct cli_opts o;
	struct berth_ref ref;
	struct berth_platform plat;
	struct berth_client *c;
	char *raw = NULL;
	size_t rawlen = 0;
	json_t *info = NULL;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "raw platform", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &ref))) return r;
	if (o.platform && berth_platform_parse(o.platform, strlen(o.platform), &plat)) {
		fprintf(stderr, "berth: inspect: invalid platform '%s'\n", o.platform);
		return 2;
	}
	if (!(c = cli_client(&o, NULL))) return 1;
	rc = berth_op_inspect(c, &ref, o.platform ? &plat : NULL, &raw, &rawlen, &info);
	if (rc) {
		r = cli_fail(c, rc);
	} else if (o.raw) {
		if (fwrite(raw, 1, rawlen, stdout) != rawlen) r = 1;
	} else if (o.json) {
		print_json(info);
	} else {
		print_human(info);
	}
	free(raw);
	json_decref(info);
	cli_client_free(c);
	return r;
}

int berth_cmd_digest(int argc, char **argv)
{
	static const char usage[] = "usage: berth digest [--insecure] [--json] REF\n\n"
				    "Prints the manifest digest REF resolves to.\n";
	struct cli_opts o;
	struct berth_ref ref;
	struct berth_client *c;
	struct berth_digest d;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &ref))) return r;
	if (!(c = cli_client(&o, NULL))) return 1;
	rc = berth_op_digest(c, &ref, &d);
	if (rc) r = cli_fail(c, rc);
	else if (o.json) printf("{\n  \"digest\": \"%s\"\n}\n", d.s);
	else printf("%s\n", d.s);
	cli_client_free(c);
	return r;
}

int berth_cmd_rm(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth rm [--insecure] [-q] [--json] REF\n\n"
		"Deletes the manifest REF names (a tag is resolved to its digest: the manifest and every\n"
		"tag pointing at it go). The registry must allow deletes.\n";
	struct cli_opts o;
	struct berth_ref ref;
	struct berth_client *c;
	struct berth_digest d;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &ref))) return r;
	if (!(c = cli_client(&o, NULL))) return 1;
	rc = berth_op_delete(c, &ref, &d);
	if (rc) r = cli_fail(c, rc);
	else if (o.json) printf("{\n  \"deleted\": \"%s\"\n}\n", d.s);
	else if (o.quiet) printf("%s\n", d.s);
	else printf("Deleted: %s\n", d.s);
	cli_client_free(c);
	return r;
}

/* transfer.c — `berth push DIR[:NAME] REF`, `berth pull REF DIR[:NAME] [--platform p]`,
 * `berth cp SRC DST`, `berth tag SRC DST`: images between OCI layouts and registries
 * (src/client/ops.h). Exit codes are the berth_cerr values (README "Client"). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client_common.h"

#define COMMON_FLAGS "  --insecure   plain HTTP to the registry (no TLS)\n" \
		     "  -q           no progress; print only the digest\n"   \
		     "  --json       print the result as JSON\n"

static int full_name(const struct berth_ref *r, char *buf, size_t len)
{
	return berth_ref_format_full(r, buf, len) ? -1 : 0;
}

int berth_cmd_push(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth push [--insecure] [-q] [--json] DIR[:NAME] REF\n\n"
		"Pushes the image NAME of the OCI layout DIR (default: REF's tag, or the only image)\n"
		"to REF: blobs the registry lacks, child manifests, then the manifest or index.\n" COMMON_FLAGS;
	struct cli_opts o;
	struct berth_ref dst;
	struct berth_op_result res;
	struct berth_client *c;
	char dir[4096], name[BERTH_REF_STRING_MAX + 1];
	const char *img;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "", 2, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[1], &dst))) return r;
	cli_split_dir(o.positional[0], dir, sizeof dir, &img);
	if (!(c = cli_client(&o, "Pushing"))) return 1;
	rc = berth_op_push(c, dir, img ? img : dst.has_tag ? dst.tag : NULL, &dst, &res);
	if (rc == BERTH_C_ENOTFOUND && !img && dst.has_tag) {
		/* No image named like the tag: the layout's only image, if it has one. */
		berth_client_clear_error(c);
		rc = berth_op_push(c, dir, NULL, &dst, &res);
	}
	if (rc) {
		r = cli_fail(c, rc);
	} else {
		if (full_name(&dst, name, sizeof name)) snprintf(name, sizeof name, "%s", o.positional[1]);
		cli_print_result(&o, name, &res);
		r = 0;
	}
	cli_client_free(c);
	return r;
}

int berth_cmd_pull(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth pull [--insecure] [-q] [--json] [--platform OS/ARCH[/VARIANT]] REF DIR[:NAME]\n\n"
		"Pulls REF into the OCI layout DIR (created when missing) as NAME (default: REF's tag).\n"
		"With --platform, one image is picked out of a multi-platform index.\n" COMMON_FLAGS;
	struct cli_opts o;
	struct berth_ref src;
	struct berth_platform plat;
	struct berth_op_result res;
	struct berth_client *c;
	char dir[4096], name[BERTH_REF_STRING_MAX + 1];
	const char *img;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "platform", 2, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &src))) return r;
	if (o.platform && berth_platform_parse(o.platform, strlen(o.platform), &plat)) {
		fprintf(stderr, "berth: pull: invalid platform '%s' (want os/arch[/variant])\n", o.platform);
		return 2;
	}
	cli_split_dir(o.positional[1], dir, sizeof dir, &img);
	if (!img && src.has_tag) img = src.tag;
	if (!(c = cli_client(&o, "Downloading"))) return 1;
	rc = berth_op_pull(c, &src, dir, img, o.platform ? &plat : NULL, &res);
	if (rc) {
		r = cli_fail(c, rc);
	} else {
		if (full_name(&src, name, sizeof name)) snprintf(name, sizeof name, "%s", o.positional[0]);
		cli_print_result(&o, name, &res);
		r = 0;
	}
	cli_client_free(c);
	return r;
}

static int copy_like(int argc, char **argv, int tag)
{
	static const char cp_usage[] =
		"usage: berth cp [--insecure] [-q] [--json] SRC DST\n\n"
		"Copies an image (or a whole multi-platform index) between repositories and registries,\n"
		"blob by blob: mounted when both are on one registry, streamed otherwise.\n" COMMON_FLAGS;
	static const char tag_usage[] =
		"usage: berth tag [--insecure] [-q] [--json] SRC DST\n\n"
		"Gives SRC's manifest the name DST on the same registry without moving layer bytes\n"
		"(blobs are mounted into DST's repository when it differs).\n" COMMON_FLAGS;
	struct cli_opts o;
	struct berth_ref src, dst;
	struct berth_op_result res;
	struct berth_client *c;
	char name[BERTH_REF_STRING_MAX + 1];
	berth_cerr rc;
	int r = cli_parse(argc, argv, tag ? tag_usage : cp_usage, "", 2, &o);

	if (r) return r < 0 ? 0 : r;
	if ((r = cli_ref(&o, o.positional[0], &src)) || (r = cli_ref(&o, o.positional[1], &dst)))
		return r;
	if (tag && strcmp(src.domain, dst.domain) != 0) {
		fprintf(stderr, "berth: tag: %s and %s are different registries (use berth cp)\n",
			src.domain, dst.domain);
		return 2;
	}
	if (!(c = cli_client(&o, "Copying"))) return 1;
	rc = tag ? berth_op_tag(c, &src, &dst, &res) : berth_op_copy(c, &src, &dst, &res);
	if (rc) {
		r = cli_fail(c, rc);
	} else {
		if (full_name(&dst, name, sizeof name)) snprintf(name, sizeof name, "%s", o.positional[1]);
		cli_print_result(&o, name, &res);
		r = 0;
	}
	cli_client_free(c);
	return r;
}

int berth_cmd_cp(int argc, char **argv)
{
	return copy_like(argc, argv, 0);
}

int berth_cmd_tag(int argc, char **argv)
{
	return copy_like(argc, argv, 1);
}

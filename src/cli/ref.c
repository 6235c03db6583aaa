/* ref.c — `berth ref parse [--json] REF`: show how an image reference is read (Docker's rules,
 * src/core/ref.h): domain, repository, tag, digest, the normalised name and the familiar form.
 * Exit 0 when valid, 1 when the reference is invalid, 2 on a usage error. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ref.h"
#include "cli.h"

static void ref_usage(FILE *f)
{
	fprintf(f, "usage: berth ref parse [--json] REF\n\n"
		   "Reads an image reference the way Docker does (NAME[:TAG][@DIGEST]) and prints\n"
		   "its domain, repository, tag, digest, normalised name and familiar form.\n");
}

/* The reference echoed on one line whatever it holds: control bytes, '"' and '\' escaped. */
static void ref_print_quoted(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* "key: value", or "key:" alone when the value is empty (no tag, no digest). */
static void ref_print_line(const char *key, const char *value)
{
	printf("%s:%s%s\n", key, value[0] ? " " : "", value);
}

static int ref_print_json(const struct berth_ref *r, const char *full, const char *familiar)
{
	json_t *o = NULL;
	char *text = NULL;
	int rc = 1;

	o = json_object();
	if (!o) goto out;
	if (json_object_set_new(o, "domain", json_string(r->domain)) ||
	    json_object_set_new(o, "repository", json_string(r->path)) ||
	    json_object_set_new(o, "tag", r->has_tag ? json_string(r->tag) : json_null()) ||
	    json_object_set_new(o, "digest", r->has_digest ? json_string(r->digest) : json_null()) ||
	    json_object_set_new(o, "name", json_string(full)) ||
	    json_object_set_new(o, "familiar", json_string(familiar)))
		goto out;
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text) goto out;
	printf("%s\n", text);
	rc = 0;
out:
	if (rc) fprintf(stderr, "berth: out of memory\n");
	free(text);
	json_decref(o);
	return rc;
}

static int ref_parse_cmd(int argc, char **argv)
{
	struct berth_ref r;
	char full[BERTH_REF_STRING_MAX + 1], familiar[BERTH_REF_STRING_MAX + 1];
	const char *arg = NULL, *why = NULL;
	int json = 0, opts_done = 0;

	for (int i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (!opts_done && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
			ref_usage(stdout);
			return 0;
		} else if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "berth: ref parse: unknown option '%s' (use -- before a reference "
					"that starts with '-')\n", argv[i]);
			return 2;
		} else if (arg) {
			ref_usage(stderr);
			return 2;
		} else {
			arg = argv[i];
		}
	}
	if (!arg) {
		ref_usage(stderr);
		return 2;
	}
	if (berth_ref_parse(arg, strlen(arg), &r, &why)) {
		fprintf(stderr, "berth: invalid reference ");
		ref_print_quoted(stderr, arg, strlen(arg));
		fprintf(stderr, ": %s\n", why ? why : "invalid reference format");
		return 1;
	}
	if (berth_ref_format_full(&r, full, sizeof full) ||
	    berth_ref_familiar(&r, familiar, sizeof familiar)) {
		fprintf(stderr, "berth: internal error: reference does not fit its buffer\n");
		return 1;
	}
	if (json) return ref_print_json(&r, full, familiar);
	ref_print_line("domain", r.domain);
	ref_print_line("repository", r.path);
	ref_print_line("tag", r.tag);
	ref_print_line("digest", r.digest);
	ref_print_line("name", full);
	ref_print_line("familiar", familiar);
	return 0;
}

int berth_cmd_ref(int argc, char **argv)
{
	if (argc < 2) {
		ref_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "parse") == 0) return ref_parse_cmd(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		ref_usage(stdout);
		return 0;
	}
	fprintf(stderr, "berth: ref: unknown subcommand '%s' (try 'berth ref help')\n", argv[1]);
	return 2;
}

/* client_common.h — what the client verbs (login.c, transfer.c, inspect.c) share: common flags,
 * reference parsing with usage errors, the TTY progress display, error reporting with the
 * documented exit codes (the berth_cerr values). */
#ifndef BERTH_CLI_CLIENT_COMMON_H
#define BERTH_CLI_CLIENT_COMMON_H

#include <stdio.h>

#include "../client/ops.h"
#include "../client/transport.h"
#include "../core/ref.h"

struct cli_opts {
	int insecure, quiet, json;
	const char *verb;          /* "push", ... for messages */
	const char *positional[4];
	int npos;
	/* verb-specific */
	int all, raw, password_stdin, page_size;
	const char *user, *platform;
	const char *golden, *label, *semver, *sort; /* outdated, search, ls */
};

/* Parses common and the allowed verb flags ("all", "raw", "platform", "user",
 * "password-stdin", "page-size", "golden", "label", "semver", "sort"); nargs positionals exactly. Returns 0, or 2 after printing usage
 * (usage text) on stderr; -1 for --help (usage printed on stdout, exit 0). */
int cli_parse(int argc, char **argv, const char *usage, const char *allowed, int nargs,
	      struct cli_opts *o);

/* Parses an image reference; prints "berth: <verb>: invalid reference ..." and returns 2. */
int cli_ref(const struct cli_opts *o, const char *s, struct berth_ref *out);

/* "DIR" or "DIR:NAME" (NAME a valid tag after the last '/'): dir copied into buf. */
void cli_split_dir(const char *arg, char *dir, size_t dirlen, const char **name);

/* A client with progress on stdout when it is a TTY and neither -q nor --json. verb_ing:
 * "Pushing", "Downloading", "Copying". NULL on out of memory (message printed). */
struct berth_client *cli_client(const struct cli_opts *o, const char *verb_ing);
void cli_client_free(struct berth_client *c);

/* Prints "berth: <message>" for the client's recorded error and returns its exit code. */
int cli_fail(struct berth_client *c, berth_cerr rc);

/* Prints a transfer result (text or JSON). */
void cli_print_result(const struct cli_opts *o, const char *ref, const struct berth_op_result *r);

int berth_cmd_login(int argc, char **argv);
int berth_cmd_logout(int argc, char **argv);
int berth_cmd_push(int argc, char **argv);
int berth_cmd_pull(int argc, char **argv);
int berth_cmd_cp(int argc, char **argv);
int berth_cmd_tag(int argc, char **argv);
int berth_cmd_ls(int argc, char **argv);
int berth_cmd_inspect(int argc, char **argv);
int berth_cmd_digest(int argc, char **argv);
int berth_cmd_rm(int argc, char **argv);
/* lineage.c: berth's extension API (/berth/v1) */
int berth_cmd_derived(int argc, char **argv);
int berth_cmd_base(int argc, char **argv);
int berth_cmd_outdated(int argc, char **argv);
int berth_cmd_search(int argc, char **argv);
int berth_cmd_resolve(int argc, char **argv);
/* mirror.c: the pull-through mirror of a berth registry */
int berth_cmd_mirror(int argc, char **argv);

#endif

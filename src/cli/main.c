/* main.c — the berth command: dispatches to one file per command family. Thin by design. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client_common.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berth <command> [args]\n\n"
		   "commands:\n"
		   "  serve [config.yml]   run the registry (default 127.0.0.1:5000, storage ./data)\n"
		   "  reindex [config.yml]  rebuild the image index (lineage, labels) of the store\n"
		   "  gc [--keep-patch N] [--grace S] [--dry-run] [config.yml]\n"
		   "                       offline garbage collection and version retention\n"
		   "  ref parse [--json] REF\n"
		   "                       show how an image reference is read (Docker's rules)\n"
		   "  version              print the version\n\n"
		   "client (any registry; --insecure for plain HTTP, -q, --json):\n"
		   "  login REGISTRY [-u USER] [--password-stdin]\n"
		   "  logout REGISTRY\n"
		   "  push DIR[:NAME] REF    OCI layout -> registry\n"
		   "  pull REF DIR[:NAME] [--platform OS/ARCH[/VARIANT]]\n"
		   "  cp SRC DST             registry -> registry, blob by blob\n"
		   "  tag SRC DST            new name on the same registry, no layer download\n"
		   "  ls REPO [--all] [--page-size N]\n"
		   "  inspect REF [--raw] [--platform P]\n"
		   "  digest REF\n"
		   "  rm REF\n"
		   "  derived REF            images built on REF (berth registries)\n"
		   "  base REF               images REF is built on, golden ones marked\n"
		   "  outdated [--golden PATTERN] REGISTRY\n"
		   "                         images on a golden version that is no longer the newest\n"
		   "  search --label KEY=VALUE REGISTRY\n"
		   "  resolve REPO:TAG       the exact version(s) a floating tag points at\n"
		   "  mirror status REGISTRY the registry's mirror: upstreams up/down, hits, misses\n"
		   "  mirror sync [--semver C] [--platform P|--all] REGISTRY/REPOSITORY\n"
		   "                         cache a mirrored repository's tags before an outage\n");
}

/* The client verbs (src/cli/login.c, transfer.c, inspect.c). */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} client_cmds[] = {
	{"login", berth_cmd_login},     {"logout", berth_cmd_logout}, {"push", berth_cmd_push},
	{"pull", berth_cmd_pull},       {"cp", berth_cmd_cp},         {"tag", berth_cmd_tag},
	{"ls", berth_cmd_ls},           {"inspect", berth_cmd_inspect}, {"digest", berth_cmd_digest},
	{"rm", berth_cmd_rm},           {"derived", berth_cmd_derived}, {"base", berth_cmd_base},
	{"outdated", berth_cmd_outdated}, {"search", berth_cmd_search},
	{"resolve", berth_cmd_resolve}, {"mirror", berth_cmd_mirror},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0) return berth_cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "ref") == 0) return berth_cmd_ref(argc - 1, argv + 1);
	if (strcmp(argv[1], "reindex") == 0) return berth_cmd_reindex(argc - 1, argv + 1);
	if (strcmp(argv[1], "gc") == 0) return berth_cmd_gc(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof client_cmds / sizeof client_cmds[0]; i++)
		if (strcmp(argv[1], client_cmds[i].name) == 0) return client_cmds[i].fn(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "berth: unknown command '%s' (try 'berth help')\n", argv[1]);
	return 2;
}

/* main.c — the berth command: dispatches to one file per command family. Thin by design. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berth <command> [args]\n\n"
		   "commands:\n"
		   "  serve [config.yml]   run the registry (default 127.0.0.1:5000, storage ./data)\n"
		   "  ref parse [--json] REF\n"
		   "                       show how an image reference is read (Docker's rules)\n"
		   "  version              print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0) return berth_cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "ref") == 0) return berth_cmd_ref(argc - 1, argv + 1);
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

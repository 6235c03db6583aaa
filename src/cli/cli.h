/* cli.h — the command families of the berth binary. Each returns the process exit code. */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#define BERTH_VERSION "0.1.0"

int berth_cmd_serve(int argc, char **argv);
int berth_cmd_ref(int argc, char **argv);
/* `berth reindex [config.yml]` (serve.c): rebuild the image index offline. */
int berth_cmd_reindex(int argc, char **argv);
int berth_cmd_gc(int argc, char **argv);
/* Client verbs (login, push, pull, cp, tag, ls, inspect, digest, rm): client_common.h. */

#endif

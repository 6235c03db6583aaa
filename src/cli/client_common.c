/* client_common.c — flags, references, progress display and errors shared by the client verbs.
 * Progress: one line per blob (short digest, bytes/total, rate), redrawn in place with ANSI
 * cursor movement like `docker push`; only on a TTY, never with -q or --json. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_common.h"

static int flag_allowed(const char *allowed, const char *name)
{
	size_t n = strlen(name);
	const char *p = allowed;

	while (p && (p = strstr(p, name))) {
		if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
		p += n;
	}
	return 0;
}

int cli_parse(int argc, char **argv, const char *usage, const char *allowed, int nargs,
	      struct cli_opts *o)
{
	int done = 0;

	memset(o, 0, sizeof *o);
	o->verb = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!done && a[0] == '-' && a[1]) {
			const char *val = NULL;
			char name[32];
			const char *eq = strchr(a, '=');
			size_t nl;

			if (strcmp(a, "--") == 0) {
				done = 1;
				continue;
			}
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				printf("%s", usage);
				return -1;
			}
			if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
				o->quiet = 1;
				continue;
			}
			if (strcmp(a, "--insecure") == 0) {
				o->insecure = 1;
				continue;
			}
			if (strcmp(a, "--json") == 0) {
				o->json = 1;
				continue;
			}
			if (strcmp(a, "-u") == 0) a = "--user";
			nl = eq ? (size_t)(eq - a) : strlen(a);
			if (nl < 3 || nl - 2 >= sizeof name) goto bad;
			memcpy(name, a + 2, nl - 2);
			name[nl - 2] = '\0';
			if (!flag_allowed(allowed, name)) goto bad;
			if (strcmp(name, "all") == 0) {
				o->all = 1;
				continue;
			}
			if (strcmp(name, "raw") == 0) {
				o->raw = 1;
				continue;
			}
			if (strcmp(name, "password-stdin") == 0) {
				o->password_stdin = 1;
				continue;
			}
			if (eq) val = eq + 1;
			else if (i + 1 < argc) val = argv[++i];
			else {
				fprintf(stderr, "berth: %s: %s needs a value\n", o->verb, a);
				fprintf(stderr, "%s", usage);
				return 2;
			}
			if (strcmp(name, "user") == 0) o->user = val;
			else if (strcmp(name, "platform") == 0) o->platform = val;
			else if (strcmp(name, "golden") == 0) o->golden = val;
			else if (strcmp(name, "label") == 0) o->label = val;
			else if (strcmp(name, "semver") == 0) o->semver = val;
			else if (strcmp(name, "sort") == 0) o->sort = val;
			else if (strcmp(name, "page-size") == 0) {
				char *end = NULL;
				long n = strtol(val, &end, 10);

				if (!end || *end || n <= 0 || n > 100000) {
					fprintf(stderr, "berth: %s: invalid --page-size '%s'\n", o->verb, val);
					return 2;
				}
				o->page_size = (int)n;
			}
			continue;
bad:
			fprintf(stderr, "berth: %s: unknown option '%s'\n", o->verb, argv[i]);
			fprintf(stderr, "%s", usage);
			return 2;
		}
		if (o->npos >= 4 || o->npos >= nargs) {
			fprintf(stderr, "berth: %s: unexpected argument '%s'\n", o->verb, a);
			fprintf(stderr, "%s", usage);
			return 2;
		}
		o->positional[o->npos++] = a;
	}
	if (o->npos != nargs) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	return 0;
}

int cli_ref(const struct cli_opts *o, const char *s, struct berth_ref *out)
{
	const char *why = NULL;

	if (berth_ref_parse(s, strlen(s), out, &why)) {
		fprintf(stderr, "berth: %s: invalid reference '%s': %s\n", o->verb, s,
			why ? why : "invalid reference format");
		return 2;
	}
	if (!out->domain[0]) {
		fprintf(stderr, "berth: %s: invalid reference '%s': no registry domain\n", o->verb, s);
		return 2;
	}
	return 0;
}

void cli_split_dir(const char *arg, char *dir, size_t dirlen, const char **name)
{
	const char *slash = strrchr(arg, '/'), *colon = strrchr(arg, ':');

	*name = NULL;
	if (colon && (!slash || colon > slash) &&
	    berth_ref_tag_valid(colon + 1, strlen(colon + 1))) {
		snprintf(dir, dirlen, "%.*s", (int)(colon - arg), arg);
		*name = colon + 1;
		return;
	}
	snprintf(dir, dirlen, "%s", arg);
}

/* ---- progress ----------------------------------------------------------------------------- */

#define PROG_LINES 512

struct prog_line {
	char digest[BERTH_DIGEST_MAX + 1];
	int64_t done, total;
	struct timespec start;
};

struct prog {
	pthread_mutex_t mu;
	const char *verb_ing;
	int n;
	struct prog_line lines[PROG_LINES];
};

static double secs_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void human(int64_t b, char *buf, size_t len)
{
	if (b < 1024) snprintf(buf, len, "%lldB", (long long)b);
	else if (b < 1024 * 1024) snprintf(buf, len, "%.1fkB", (double)b / 1024.0);
	else if (b < 1024LL * 1024 * 1024) snprintf(buf, len, "%.1fMB", (double)b / 1048576.0);
	else snprintf(buf, len, "%.2fGB", (double)b / 1073741824.0);
}

static void prog_draw(struct prog *p, int i, const struct berth_progress *ev)
{
	struct prog_line *l = &p->lines[i];
	const char *hex = strchr(l->digest, ':');
	char d[32], t[32], r[32];
	int up = p->n - i;

	hex = hex ? hex + 1 : l->digest;
	printf("\033[%dA\r\033[2K", up);
	switch (ev->state) {
	case BERTH_PROGRESS_EXISTS: printf("%.12s: Already exists", hex); break;
	case BERTH_PROGRESS_MOUNTED: printf("%.12s: Mounted", hex); break;
	case BERTH_PROGRESS_FAILED: printf("%.12s: Failed", hex); break;
	case BERTH_PROGRESS_DONE:
		human(l->total, t, sizeof t);
		printf("%.12s: Done %s", hex, t);
		break;
	default: {
		double s = secs_since(&l->start);

		human(l->done, d, sizeof d);
		human(l->total, t, sizeof t);
		human(s > 0.05 ? (int64_t)((double)l->done / s) : 0, r, sizeof r);
		printf("%.12s: %s %s/%s  %s/s", hex, p->verb_ing, d, t, r);
	}
	}
	printf("\033[%dB\r", up);
	fflush(stdout);
}

static void prog_cb(void *ud, const struct berth_progress *ev)
{
	struct prog *p = ud;
	int i;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n; i++)
		if (strcmp(p->lines[i].digest, ev->digest) == 0) break;
	if (i == p->n) {
		if (p->n == PROG_LINES) {
			pthread_mutex_unlock(&p->mu);
			return;
		}
		snprintf(p->lines[i].digest, sizeof p->lines[i].digest, "%s", ev->digest);
		clock_gettime(CLOCK_MONOTONIC, &p->lines[i].start);
		p->n++;
		printf("\n");
	}
	if (ev->state == BERTH_PROGRESS_START) clock_gettime(CLOCK_MONOTONIC, &p->lines[i].start);
	p->lines[i].done = ev->done;
	p->lines[i].total = ev->total;
	prog_draw(p, i, ev);
	pthread_mutex_unlock(&p->mu);
}

struct berth_client *cli_client(const struct cli_opts *o, const char *verb_ing)
{
	struct berth_client_opts co;
	struct berth_client *c;
	struct prog *p = NULL;

	memset(&co, 0, sizeof co);
	co.insecure = o->insecure;
	if (verb_ing && !o->quiet && !o->json && isatty(STDOUT_FILENO)) {
		p = calloc(1, sizeof *p);
		if (p) {
			pthread_mutex_init(&p->mu, NULL);
			p->verb_ing = verb_ing;
			co.progress = prog_cb;
			co.progress_ud = p;
		}
	}
	c = berth_client_new(&co);
	if (!c) {
		free(p);
		fprintf(stderr, "berth: out of memory\n");
	}
	return c;
}

void cli_client_free(struct berth_client *c)
{
	struct prog *p;

	if (!c) return;
	p = berth_client_options(c)->progress_ud;
	berth_client_free(c);
	if (p) {
		pthread_mutex_destroy(&p->mu);
		free(p);
	}
}

int cli_fail(struct berth_client *c, berth_cerr rc)
{
	const char *m = berth_client_errmsg(c);

	fprintf(stderr, "berth: %s\n", m[0] ? m : "failed");
	return rc ? (int)rc : 1;
}

void cli_print_result(const struct cli_opts *o, const char *ref, const struct berth_op_result *r)
{
	if (o->json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:I}", "reference", ref,
				      "digest", r->top.digest.s, "mediaType", r->top.media_type, "size",
				      (json_int_t)r->top.size, "manifests", r->manifests, "blobs", r->blobs,
				      "blobsTransferred", r->blobs_sent, "blobsExisting",
				      r->blobs_existing, "blobsMounted", r->blobs_mounted, "bytesTransferred",
				      (json_int_t)r->bytes_sent);
		char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

		if (s) printf("%s\n", s);
		free(s);
		json_decref(j);
		return;
	}
	if (o->quiet) {
		printf("%s\n", r->top.digest.s);
		return;
	}
	printf("%s: digest: %s size: %lld\n", ref, r->top.digest.s, (long long)r->top.size);
}

/* login.c — `berth login REGISTRY [-u USER] [--password-stdin]` and `berth logout REGISTRY`:
 * credentials in Docker's config.json (src/client/creds.h), checked against the registry's
 * /v2/ before they are saved. The password is read without echo from the terminal, or from
 * stdin with --password-stdin; it is wiped from memory after use. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../client/creds.h"
#include "cli.h"
#include "client_common.h"

#define SECRET_MAX 4096

/* "https://index.docker.io/v1/", "registry-1.docker.io" → "docker.io"; scheme and path of a
 * URL dropped: the form references use. */
static int normalize_registry(const char *in, char *out, size_t len)
{
	const char *p = in;
	size_t n;

	if (strncmp(p, "https://", 8) == 0) p += 8;
	else if (strncmp(p, "http://", 7) == 0) p += 7;
	n = strcspn(p, "/");
	if (n == 0 || n >= len) return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (out[i] <= ' ' || out[i] == '@' || out[i] == '?' || out[i] == '#') return -1;
	if (strcmp(out, "index.docker.io") == 0 || strcmp(out, "registry-1.docker.io") == 0)
		snprintf(out, len, "docker.io");
	return 0;
}

/* Reads one line (without the newline) from fd into buf. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR) continue;
		if (r <= 0 || ch == '\n') break;
		if (n + 1 >= len) return -1;
		buf[n++] = ch;
	}
	while (n && buf[n - 1] == '\r') n--;
	buf[n] = '\0';
	return 0;
}

/* Prompts on the terminal; echo off when secret. */
static int prompt(const char *what, int secret, char *buf, size_t len)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), rc, echo_off = 0;

	if (fd < 0) return -1;
	if (write(fd, what, strlen(what)) < 0) { /* the prompt is a courtesy */ }
	if (secret && tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	rc = read_line(fd, buf, len);
	if (echo_off) {
		tcsetattr(fd, TCSAFLUSH, &old);
		if (write(fd, "\n", 1) < 0) { /* cosmetic */ }
	}
	close(fd);
	return rc;
}

int berth_cmd_login(int argc, char **argv)
{
	static const char usage[] =
		"usage: berth login [--insecure] [-q] [-u USER] [--password-stdin] REGISTRY\n\n"
		"Checks USER's password against REGISTRY and saves it in $DOCKER_CONFIG/config.json\n"
		"(default ~/.docker/config.json, mode 0600). The password is prompted for without echo,\n"
		"or read from stdin with --password-stdin.\n";
	struct cli_opts o;
	struct berth_client *c = NULL;
	struct berth_creds *cr = NULL;
	char reg[BERTH_REF_DOMAIN_MAX + 1], user[SECRET_MAX], pass[SECRET_MAX];
	const char *why = NULL;
	berth_cerr rc;
	int r = cli_parse(argc, argv, usage, "user password-stdin", 1, &o);

	user[0] = pass[0] = '\0';
	if (r) return r < 0 ? 0 : r;
	if (normalize_registry(o.positional[0], reg, sizeof reg)) {
		fprintf(stderr, "berth: login: invalid registry '%s'\n", o.positional[0]);
		return 2;
	}
	if (o.user) {
		snprintf(user, sizeof user, "%s", o.user);
	} else if (prompt("Username: ", 0, user, sizeof user)) {
		fprintf(stderr, "berth: login: no terminal to ask for a username (use -u)\n");
		return 2;
	}
	if (!user[0] || strchr(user, ':')) {
		fprintf(stderr, "berth: login: invalid username\n");
		return 2;
	}
	if (o.password_stdin) {
		if (read_line(STDIN_FILENO, pass, sizeof pass)) {
			fprintf(stderr, "berth: login: password too long\n");
			r = 2;
			goto out;
		}
	} else if (prompt("Password: ", 1, pass, sizeof pass)) {
		fprintf(stderr, "berth: login: no terminal to ask for the password (use --password-stdin)\n");
		r = 2;
		goto out;
	}
	if (!pass[0]) {
		fprintf(stderr, "berth: login: empty password\n");
		r = 2;
		goto out;
	}
	if (!(c = cli_client(&o, NULL))) {
		r = 1;
		goto out;
	}
	if (berth_client_set_login(c, reg, user, pass)) {
		r = cli_fail(c, BERTH_C_EFAIL);
		goto out;
	}
	rc = berth_op_login_check(c, reg);
	if (rc) {
		r = cli_fail(c, rc);
		goto out;
	}
	rc = berth_creds_load(NULL, &cr, &why);
	if (!rc) rc = berth_creds_set(cr, reg, user, pass);
	if (!rc) rc = berth_creds_save(cr, &why);
	if (rc) {
		fprintf(stderr, "berth: login: %s\n", why ? why : "cannot store the credentials");
		r = 1;
		goto out;
	}
	if (!o.quiet) printf("Login Succeeded\n");
	r = 0;
out:
	explicit_bzero(pass, sizeof pass);
	explicit_bzero(user, sizeof user);
	berth_creds_free(cr);
	cli_client_free(c);
	return r;
}

int berth_cmd_logout(int argc, char **argv)
{
	static const char usage[] = "usage: berth logout REGISTRY\n\n"
				    "Removes REGISTRY's credentials from the Docker config file.\n";
	struct cli_opts o;
	struct berth_creds *cr = NULL;
	char reg[BERTH_REF_DOMAIN_MAX + 1];
	const char *why = NULL;
	int r = cli_parse(argc, argv, usage, "", 1, &o);

	if (r) return r < 0 ? 0 : r;
	if (normalize_registry(o.positional[0], reg, sizeof reg)) {
		fprintf(stderr, "berth: logout: invalid registry '%s'\n", o.positional[0]);
		return 2;
	}
	if (berth_creds_load(NULL, &cr, &why)) {
		fprintf(stderr, "berth: logout: %s\n", why);
		return 1;
	}
	if (!berth_creds_remove(cr, reg)) {
		if (!o.quiet) printf("Not logged in to %s\n", reg);
		r = 0;
	} else if (berth_creds_save(cr, &why)) {
		fprintf(stderr, "berth: logout: %s\n", why);
		r = 1;
	} else {
		if (!o.quiet) printf("Removing login credentials for %s\n", reg);
		r = 0;
	}
	berth_creds_free(cr);
	return r;
}

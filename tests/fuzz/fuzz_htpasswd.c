/* fuzz_htpasswd.c — berth_htpasswd_parse_line and berth_htpasswd_hash_type on every line of the
 * input, then the whole input as an htpasswd file through berth_auth_new (load_htpasswd: line
 * splitting, bcrypt validation, duplicate users, the dummy salt at the highest cost).
 * Invariants: a parsed entry is a view inside its line with a non-empty user of at most
 * BERTH_USER_MAX bytes, no ':' or NUL in it, trimmed; only blank and '#' lines are skipped; a
 * file with an unparsable line is refused with a one-line message; an accepted file has at most
 * one user per entry line, and every user with a well-formed bcrypt hash exists. */
#include "../../src/core/auth.h"
#include "../../src/core/log.h"
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;
static char path[64];
static struct berth_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	berth_log_level_current = BERTH_LOG_ERROR + 1; /* "entry skipped" warnings would flood */
	memfd = memfd_create("fuzz-htpasswd", MFD_CLOEXEC);
	if (memfd < 0) abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	cfg.htpasswd_realm = (char *)"fuzz";
	cfg.htpasswd_path = path;
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* What bcrypt_valid in auth.c accepts: "$2[aby]$" + cost 04..31 ... well, two digits with the
 * first in 0..3, '$', 53 characters of ./A-Za-z0-9. */
static int bcrypt_shaped(const char *h, size_t n)
{
	if (n != 60 || h[0] != '$' || h[1] != '2' || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') ||
	    h[3] != '$' || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$')
		return 0;
	for (size_t i = 7; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '/'))
			return 0;
	return 1;
}

/* Returns 1 for an entry (and *l filled), 0 skip, -1 invalid. */
static int check_line(const char *s, size_t n, struct berth_htpasswd_line *l)
{
	berth_err e;
	size_t i = 0, m = n;

	memset(l, 0x5a, sizeof *l);
	e = berth_htpasswd_parse_line(s, n, l);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EINVAL);
		return -1;
	}
	FUZZ_ASSERT(n <= BERTH_HTPASSWD_LINE_MAX);
	while (i < m && is_blank(s[i]))
		i++;
	while (m > i && is_blank(s[m - 1]))
		m--;
	if (l->skip) {
		FUZZ_ASSERT(l->skip == 1);
		FUZZ_ASSERT(i == m || s[i] == '#');
		return 0;
	}
	FUZZ_ASSERT(i < m && s[i] != '#');
	FUZZ_ASSERT(l->user == s + i);
	FUZZ_ASSERT(l->user_len >= 1 && l->user_len <= BERTH_USER_MAX);
	FUZZ_ASSERT(!memchr(l->user, ':', l->user_len) && !memchr(l->user, '\0', l->user_len));
	FUZZ_ASSERT(l->hash == l->user + l->user_len + 1 && l->hash[-1] == ':');
	FUZZ_ASSERT(l->hash + l->hash_len == s + m);
	FUZZ_ASSERT(!memchr(l->hash, '\0', l->hash_len));
	{
		const char *t = berth_htpasswd_hash_type(l->hash, l->hash_len);
		FUZZ_ASSERT(t && t[0]);
		if (bcrypt_shaped(l->hash, l->hash_len)) FUZZ_ASSERT(strcmp(t, "bcrypt") == 0);
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t start = 0, entries = 0, bad = 0, maxcost = 0;
	struct berth_auth *a = NULL;
	char err[512];
	berth_err e;

	if (size > 256 * 1024) return 0;
	/* Lines as load_htpasswd splits them. */
	for (size_t i = 0; i <= size; i++) {
		struct berth_htpasswd_line l;
		char *line;
		size_t n;
		int r;

		if (i < size && s[i] != '\n') continue;
		n = i - start;
		line = malloc(n ? n : 1); /* exact-size copy: ASan sees reads past the line */
		if (!line) return 0;
		memcpy(line, s + start, n);
		r = check_line(line, n, &l);
		if (r < 0) bad++;
		if (r > 0) {
			entries++;
			if (bcrypt_shaped(l.hash, l.hash_len)) {
				size_t c = (size_t)(l.hash[4] - '0') * 10 + (size_t)(l.hash[5] - '0');
				if (c > maxcost) maxcost = c;
			}
		}
		free(line);
		start = i + 1;
	}

	/* The whole input as the htpasswd file. */
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) abort();
	memset(err, 'x', sizeof err);
	err[0] = '\0';
	e = berth_auth_new(&cfg, &a, err, sizeof err);
	FUZZ_ASSERT(fuzz_terminated(err, sizeof err));
	if (e != BERTH_OK) {
		FUZZ_ASSERT(a == NULL);
		FUZZ_ASSERT(!strchr(err, '\n'));
		if (e == BERTH_EINVAL) FUZZ_ASSERT(bad > 0);
		/* crypt_gensalt refuses bcrypt costs above 31. */
		else FUZZ_ASSERT(e == BERTH_ENOMEM || (e == BERTH_EINTERNAL && maxcost > 31));
		return 0;
	}
	FUZZ_ASSERT(bad == 0);
	FUZZ_ASSERT(a != NULL && berth_auth_mode(a) == BERTH_AUTH_BASIC);
	FUZZ_ASSERT(berth_auth_user_count(a) <= entries);
	start = 0;
	for (size_t i = 0; i <= size; i++) {
		struct berth_htpasswd_line l;
		char user[BERTH_USER_MAX + 1];

		if (i < size && s[i] != '\n') continue;
		if (check_line(s + start, i - start, &l) > 0 && bcrypt_shaped(l.hash, l.hash_len)) {
			memcpy(user, l.user, l.user_len);
			user[l.user_len] = '\0';
			FUZZ_ASSERT(berth_auth_user_exists(a, user));
		}
		start = i + 1;
	}
	FUZZ_ASSERT(!berth_auth_user_exists(a, ""));
	berth_auth_free(a);
	return 0;
}

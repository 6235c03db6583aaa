/* fuzz_config.c — berth_config_parse_yaml (libyaml, then the key table, value parsers, access
 * rules and groups). Invariants: success gives a config whose every field is inside the range
 * the table allows (the server trusts these numbers), complete auth settings, rules that only
 * name defined groups and header-safe realms, a mirror whose upstreams and sync entries hold
 * together; failure gives no config and a one-line message. */
#include "../../src/core/config.h"
#include "../../src/core/limits.h"
#include "../../src/core/log.h"
#include "../../src/core/ref.h"
#include "fuzz.h"

extern char **environ;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Warnings about unknown keys would flood the output; REGISTRY_* variables would make a
	 * run depend on the shell it started in. */
	berth_log_level_current = BERTH_LOG_ERROR + 1;
	for (;;) {
		char name[256];
		const char *found = NULL;
		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, "REGISTRY_", 9) == 0) found = *e;
		if (!found) break;
		size_t n = strcspn(found, "=");
		if (n >= sizeof name) abort();
		memcpy(name, found, n);
		name[n] = '\0';
		unsetenv(name);
	}
	return 0;
}

/* What the server puts between quotes in WWW-Authenticate. */
static int header_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f) return 0;
	return 1;
}

static void check_strv(char **v, size_t n)
{
	FUZZ_ASSERT(n >= 1 && v);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(v[i] && v[i][0]);
}

static void check_auth(const struct berth_config *c)
{
	FUZZ_ASSERT(c->tokenissuer_enabled == 0 || c->tokenissuer_enabled == 1);
	FUZZ_ASSERT(c->tokenissuer_expiry >= 1 && c->tokenissuer_expiry <= 7 * 86400);
	if (c->htpasswd_realm || c->htpasswd_path) FUZZ_ASSERT(c->htpasswd_realm && c->htpasswd_path);
	if (c->tokenissuer_enabled)
		FUZZ_ASSERT(c->tokenissuer_key && c->htpasswd_path && c->token_realm &&
			    c->token_service && c->token_issuer);
	else if (c->token_realm || c->token_service || c->token_issuer || c->token_rootcertbundle)
		FUZZ_ASSERT(c->token_realm && c->token_service && c->token_issuer &&
			    c->token_rootcertbundle && !c->htpasswd_path && !c->htpasswd_realm);
	if (c->htpasswd_realm) FUZZ_ASSERT(header_safe(c->htpasswd_realm));
	if (c->token_realm) FUZZ_ASSERT(header_safe(c->token_realm));
	if (c->token_service) FUZZ_ASSERT(header_safe(c->token_service));
	if (c->naccess || c->ngroups) FUZZ_ASSERT(berth_config_auth_enabled(c));

	FUZZ_ASSERT(c->naccess <= BERTH_ACCESS_RULES_MAX && (c->naccess == 0 || c->access));
	FUZZ_ASSERT(c->ngroups <= BERTH_GROUPS_MAX && (c->ngroups == 0 || c->groups));
	for (size_t g = 0; g < c->ngroups; g++) {
		FUZZ_ASSERT(c->groups[g].name && c->groups[g].name[0]);
		check_strv(c->groups[g].members, c->groups[g].nmembers);
		for (size_t h = 0; h < g; h++)
			FUZZ_ASSERT(strcmp(c->groups[g].name, c->groups[h].name) != 0);
	}
	for (size_t i = 0; i < c->naccess; i++) {
		const struct berth_access_rule *r = &c->access[i];

		FUZZ_ASSERT(r->actions != 0 && (r->actions & ~(unsigned)BERTH_ACTION_ALL) == 0);
		check_strv(r->users, r->nusers);
		check_strv(r->repos, r->nrepos);
		for (size_t u = 0; u < r->nusers; u++) {
			size_t g = 0;
			if (r->users[u][0] != '@') continue;
			while (g < c->ngroups && strcmp(c->groups[g].name, r->users[u] + 1) != 0)
				g++;
			FUZZ_ASSERT(g < c->ngroups);
		}
		for (size_t p = 0; p < r->nrepos; p++)
			FUZZ_ASSERT(strlen(r->repos[p]) <= BERTH_PATTERN_MAX &&
				    strspn(r->repos[p], "abcdefghijklmnopqrstuvwxyz0123456789._-/*") ==
					    strlen(r->repos[p]));
	}
}

/* What the mirror relies on: prefixes are names, none inside another, at most one default, URLs
 * http(s) without query, credentials in pairs, sync entries under some prefix. */
static void check_mirror(const struct berth_config *c)
{
	size_t defaults = 0;

	FUZZ_ASSERT(c->mirror_timeout_ms >= 1 && c->mirror_timeout_ms <= 600000);
	FUZZ_ASSERT(c->mirror_breaker >= 0 && c->mirror_breaker <= 86400);
	FUZZ_ASSERT(c->mirror_keep_deleted == 0 || c->mirror_keep_deleted == 1);
	FUZZ_ASSERT(c->mirror_maxsize >= 0);
	FUZZ_ASSERT(c->nupstreams == 0 || c->upstreams);
	FUZZ_ASSERT(c->nupstreams <= BERTH_MIRROR_UPSTREAMS_MAX + 1);
	if (c->nmirror_pins) check_strv(c->mirror_pins, c->nmirror_pins);
	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct berth_mirror_upstream *u = &c->upstreams[i];
		size_t ul = strlen(u->prefix), n = strlen(u->url);

		FUZZ_ASSERT(berth_ref_name_valid(u->prefix, ul));
		FUZZ_ASSERT(strncmp(u->url, "http://", 7) == 0 || strncmp(u->url, "https://", 8) == 0);
		FUZZ_ASSERT(!strpbrk(u->url, "?# ") && u->url[n - 1] != '/');
		FUZZ_ASSERT(!u->username == !u->password);
		FUZZ_ASSERT(u->is_default == 0 || u->is_default == 1);
		FUZZ_ASSERT(u->dockerhub == 0 || u->dockerhub == 1);
		defaults += (size_t)u->is_default;
		for (size_t j = 0; j < i; j++) {
			const char *p = c->upstreams[j].prefix;
			size_t pl = strlen(p), sl = ul < pl ? ul : pl;
			FUZZ_ASSERT(memcmp(u->prefix, p, sl) != 0 ||
				    (ul != pl && (ul < pl ? p : u->prefix)[sl] != '/'));
		}
	}
	FUZZ_ASSERT(defaults <= 1);
	FUZZ_ASSERT(c->nmirror_syncs <= BERTH_MIRROR_SYNCS_MAX &&
		    (c->nmirror_syncs == 0 || c->mirror_syncs));
	for (size_t i = 0; i < c->nmirror_syncs; i++) {
		const struct berth_mirror_sync *s = &c->mirror_syncs[i];
		size_t j;

		FUZZ_ASSERT(s->repo && berth_ref_name_valid(s->repo, strlen(s->repo)));
		FUZZ_ASSERT(!s->semver || s->semver[0]);
		FUZZ_ASSERT(!s->platform || strchr(s->platform, '/'));
		FUZZ_ASSERT(s->interval >= 1 && s->interval <= INT32_MAX);
		for (j = 0; j < c->nupstreams; j++) {
			size_t pl = strlen(c->upstreams[j].prefix);
			if (strncmp(s->repo, c->upstreams[j].prefix, pl) == 0 && s->repo[pl] == '/')
				break;
		}
		FUZZ_ASSERT(j < c->nupstreams);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_config *c = (struct berth_config *)&c;
	char err[512];
	berth_err e;

	memset(err, 'x', sizeof err);
	e = berth_config_parse_yaml(data, size, &c, err, sizeof err);
	FUZZ_ASSERT(fuzz_terminated(err, sizeof err));
	if (e != BERTH_OK) {
		FUZZ_ASSERT(c == NULL);
		FUZZ_ASSERT(e == BERTH_EINVAL || e == BERTH_ENOMEM);
		if (e == BERTH_EINVAL) {
			FUZZ_ASSERT(strncmp(err, "config: ", 8) == 0);
			FUZZ_ASSERT(!strchr(err, '\n'));
		}
		return 0;
	}
	FUZZ_ASSERT(c != NULL && err[0] == '\0');
	FUZZ_ASSERT(c->log_level >= BERTH_LOG_DEBUG && c->log_level <= BERTH_LOG_ERROR);
	FUZZ_ASSERT(c->access_log == 0 || c->access_log == 1);
	FUZZ_ASSERT(c->delete_enabled == 0 || c->delete_enabled == 1);
	FUZZ_ASSERT(c->sync_metadata == 0 || c->sync_metadata == 1);
	FUZZ_ASSERT(c->http_addr && c->http_addr[0] && strchr(c->http_addr, ':'));
	FUZZ_ASSERT(c->root && c->root[0]);
	FUZZ_ASSERT(!c->tls_certificate == !c->tls_key);
	FUZZ_ASSERT(!c->tls_certificate || c->tls_certificate[0]);
	FUZZ_ASSERT(c->http_threads >= 1 && c->http_threads <= 256);
	FUZZ_ASSERT(c->connection_timeout <= 86400);
	FUZZ_ASSERT(c->max_connections >= 1 && c->max_connections <= 1048576);
	FUZZ_ASSERT(c->manifest_max >= 1 && c->manifest_max <= 1024ull * 1024 * 1024);
	FUZZ_ASSERT(c->upload_expiry >= 1 && c->upload_expiry <= INT32_MAX);
	check_auth(c);
	check_mirror(c);
	berth_config_free(c);
	return 0;
}

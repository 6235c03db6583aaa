/* ref.c — the name and tag grammars of the OCI distribution-spec ("Pulling manifests"),
 * hand-written so that validation is linear in the input and reads nothing past len. */
#include "ref.h"

#include "limits.h"

static int ref_is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int ref_is_alnum(char c)
{
	return ref_is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A separator between two alphanumeric runs of one path component: "." | "_" | "__" | "-"+ .
 * Any other run ("..", "._", "___", "-_") is not in the grammar. */
static int ref_separator_valid(const char *s, size_t len)
{
	if (len == 1) return s[0] == '.' || s[0] == '_' || s[0] == '-';
	if (len == 2 && s[0] == '_' && s[1] == '_') return 1;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '-') return 0;
	return 1;
}

/* One path component: [a-z0-9]+ ( separator [a-z0-9]+ )* — so it starts and ends with an
 * alphanumeric, which also rules out empty components ("a//b", "/a", "a/"). */
static int ref_component_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !ref_is_lower_alnum(s[0]) || !ref_is_lower_alnum(s[len - 1])) return 0;
	while (i < len) {
		size_t sep;

		if (ref_is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		sep = i;
		while (i < len && !ref_is_lower_alnum(s[i]))
			i++;
		/* i < len here: the component ends with an alphanumeric. */
		if (!ref_separator_valid(s + sep, i - sep)) return 0;
	}
	return 1;
}

int berth_ref_name_valid(const char *s, size_t len)
{
	size_t start = 0;

	if (!s || len == 0 || len > BERTH_NAME_MAX) return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/') continue;
		if (!ref_component_valid(s + start, i - start)) return 0;
		start = i + 1;
	}
	return 1;
}

int berth_ref_tag_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > BERTH_TAG_MAX) return 0;
	if (!ref_is_alnum(s[0]) && s[0] != '_') return 0;
	for (size_t i = 1; i < len; i++)
		if (!ref_is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
	return 1;
}

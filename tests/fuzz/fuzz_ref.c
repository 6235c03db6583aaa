/* fuzz_ref.c — berth_ref_parse (image references read as Docker reads them) and the two
 * formatters. Invariants: every field fits and is terminated; the path is a valid repository
 * name, the tag a valid tag, the digest a valid digest; the full form always fits
 * BERTH_REF_STRING_MAX and parses back to the same reference; a failure zeroes *out and gives a
 * reason. */
#include "../../src/core/digest.h"
#include "../../src/core/limits.h"
#include "../../src/core/ref.h"
#include "fuzz.h"

static void check_fields(const struct berth_ref *r)
{
	struct berth_digest d;
	size_t dl, pl, tl;

	FUZZ_ASSERT(fuzz_terminated(r->domain, sizeof r->domain));
	FUZZ_ASSERT(fuzz_terminated(r->path, sizeof r->path));
	FUZZ_ASSERT(fuzz_terminated(r->tag, sizeof r->tag));
	FUZZ_ASSERT(fuzz_terminated(r->digest, sizeof r->digest));
	dl = strlen(r->domain);
	pl = strlen(r->path);
	tl = strlen(r->tag);
	FUZZ_ASSERT(dl <= BERTH_REF_DOMAIN_MAX && !memchr(r->domain, '/', dl));
	FUZZ_ASSERT(berth_ref_name_valid(r->path, pl));
	FUZZ_ASSERT(r->has_tag == 0 || r->has_tag == 1);
	FUZZ_ASSERT(r->has_digest == 0 || r->has_digest == 1);
	FUZZ_ASSERT(r->has_tag || r->has_digest);
	if (r->has_tag)
		FUZZ_ASSERT(berth_ref_tag_valid(r->tag, tl));
	else
		FUZZ_ASSERT(tl == 0);
	if (r->has_digest)
		FUZZ_ASSERT(berth_digest_parse(r->digest, strlen(r->digest), &d) == BERTH_OK);
	else
		FUZZ_ASSERT(r->digest[0] == '\0');
}

static int ref_same(const struct berth_ref *a, const struct berth_ref *b)
{
	return strcmp(a->domain, b->domain) == 0 && strcmp(a->path, b->path) == 0 &&
	       strcmp(a->tag, b->tag) == 0 && strcmp(a->digest, b->digest) == 0 &&
	       a->has_tag == b->has_tag && a->has_digest == b->has_digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct berth_ref zero;
	struct berth_ref r, again;
	char full[BERTH_REF_STRING_MAX + 1], fam[BERTH_REF_STRING_MAX + 1], tiny[8];
	const char *why = (const char *)&why;

	if (berth_ref_parse((const char *)data, size, &r, &why) != BERTH_OK) {
		FUZZ_ASSERT(why != NULL && why != (const char *)&why && why[0] != '\0');
		FUZZ_ASSERT(memcmp(&r, &zero, sizeof r) == 0);
		return 0;
	}
	FUZZ_ASSERT(why == NULL);
	check_fields(&r);

	FUZZ_ASSERT(berth_ref_format_full(&r, full, sizeof full) == BERTH_OK);
	FUZZ_ASSERT(berth_ref_parse(full, strlen(full), &again, &why) == BERTH_OK);
	FUZZ_ASSERT(ref_same(&r, &again));
	FUZZ_ASSERT(berth_ref_familiar(&r, fam, sizeof fam) == BERTH_OK);
	FUZZ_ASSERT(strlen(fam) <= strlen(full));
	/* The familiar form is ambiguous by design (docker.io/a.b/c prints as a.b/c, which reads
	 * as domain a.b), as in Docker; it must still parse. */
	FUZZ_ASSERT(berth_ref_parse(fam, strlen(fam), &again, &why) == BERTH_OK);

	/* A buffer that is too small yields "" and BERTH_ETOO_LARGE, never a cut string. */
	if (strlen(full) >= sizeof tiny) {
		memset(tiny, 'x', sizeof tiny);
		FUZZ_ASSERT(berth_ref_format_full(&r, tiny, sizeof tiny) == BERTH_ETOO_LARGE);
		FUZZ_ASSERT(tiny[0] == '\0');
	}
	return 0;
}

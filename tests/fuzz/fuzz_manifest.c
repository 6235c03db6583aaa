/* fuzz_manifest.c — berth_manifest_parse. The first input byte picks the request's
 * Content-Type (see content_types), the rest is the body. Invariants on success: a known media
 * type and a kind that matches it; terminated strings; refs = config (first, for images) plus
 * one per layer/child manifest, each a valid digest with a size >= 0; child manifests only in
 * indexes; annotations, when present, are a JSON object of strings. On failure *out is NULL. */
#include <jansson.h>

#include "../../src/core/digest.h"
#include "../../src/core/limits.h"
#include "../../src/core/manifest.h"
#include "fuzz.h"

static const char *const content_types[] = {
	NULL,
	"",
	BERTH_MT_OCI_MANIFEST,
	BERTH_MT_OCI_INDEX,
	BERTH_MT_DOCKER_MANIFEST,
	BERTH_MT_DOCKER_LIST,
	"application/vnd.oci.image.manifest.v1+json; charset=utf-8",
	"  APPLICATION/VND.DOCKER.DISTRIBUTION.MANIFEST.LIST.V2+JSON ",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.oci.artifact.manifest.v1+json",
	"application/json",
	"application/octet-stream",
};

#define N_TYPES (sizeof content_types / sizeof content_types[0])

static void check_digest(const struct berth_digest *d)
{
	struct berth_digest again;

	FUZZ_ASSERT(d->len <= BERTH_DIGEST_MAX && d->s[d->len] == '\0');
	FUZZ_ASSERT(berth_digest_parse(d->s, d->len, &again) == BERTH_OK);
	FUZZ_ASSERT(berth_digest_eq(d, &again));
}

static void check(const struct berth_manifest *m)
{
	int is_index;

	FUZZ_ASSERT(m->kind == BERTH_MANIFEST_IMAGE || m->kind == BERTH_MANIFEST_INDEX);
	FUZZ_ASSERT(fuzz_terminated(m->media_type, sizeof m->media_type));
	FUZZ_ASSERT(fuzz_terminated(m->artifact_type, sizeof m->artifact_type));
	FUZZ_ASSERT(fuzz_terminated(m->config_media_type, sizeof m->config_media_type));
	FUZZ_ASSERT(berth_manifest_media_type_known(m->media_type));
	is_index = strcmp(m->media_type, BERTH_MT_OCI_INDEX) == 0 ||
		   strcmp(m->media_type, BERTH_MT_DOCKER_LIST) == 0;
	FUZZ_ASSERT(is_index == (m->kind == BERTH_MANIFEST_INDEX));

	/* Images have a config, indexes never do. */
	FUZZ_ASSERT(m->has_config == (m->kind == BERTH_MANIFEST_IMAGE));
	if (m->has_config) {
		check_digest(&m->config);
		FUZZ_ASSERT(m->config_media_type[0] != '\0');
		FUZZ_ASSERT(m->n_refs >= 1 && m->refs);
		FUZZ_ASSERT(berth_digest_eq(&m->refs[0].digest, &m->config));
		FUZZ_ASSERT(!m->refs[0].is_manifest);
	} else {
		FUZZ_ASSERT(m->config_media_type[0] == '\0');
	}
	if (m->has_subject) check_digest(&m->subject);
	FUZZ_ASSERT(m->n_refs <= BERTH_MANIFEST_REFS_MAX + 1);
	FUZZ_ASSERT(m->n_refs == 0 || m->refs);
	for (size_t i = 0; i < m->n_refs; i++) {
		const struct berth_manifest_ref *r = &m->refs[i];

		check_digest(&r->digest);
		FUZZ_ASSERT(r->size >= 0);
		FUZZ_ASSERT(r->is_manifest == (is_index ? 1 : 0));
	}
	if (m->annotations_json) {
		json_error_t jerr;
		json_t *a = json_loads(m->annotations_json, JSON_REJECT_DUPLICATES, &jerr);
		const char *key;
		json_t *v;

		FUZZ_ASSERT(a && json_is_object(a));
		json_object_foreach(a, key, v) FUZZ_ASSERT(json_is_string(v));
		json_decref(a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_manifest *m = (struct berth_manifest *)&m;
	const char *ct;
	berth_err e;

	if (size == 0) return 0;
	ct = content_types[data[0] % N_TYPES];
	e = berth_manifest_parse(ct, data + 1, size - 1, &m);
	if (e != BERTH_OK) {
		FUZZ_ASSERT(e == BERTH_EMANIFEST_INVALID || e == BERTH_ENOMEM);
		FUZZ_ASSERT(m == NULL);
		return 0;
	}
	FUZZ_ASSERT(m != NULL);
	check(m);
	berth_manifest_free(m);
	return 0;
}

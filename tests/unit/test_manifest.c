/* test_manifest.c — manifest validation against the committed corpus (tests/testdata/manifests,
 * real documents from public repositories) and hand-made documents for each rule. Run from the
 * repository root. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../src/core/limits.h"
#include "../../src/core/manifest.h"
#include "t.h"

#define CORPUS "tests/testdata/manifests"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DG "sha256:" HEX64
#define DG2 "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define MT_CFG "application/vnd.oci.image.config.v1+json"
#define MT_TGZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define DESC(mt, dg, size) "{\"mediaType\":\"" mt "\",\"digest\":\"" dg "\",\"size\":" size "}"
#define CFG DESC(MT_CFG, DG, "2")
#define LAYER DESC(MT_TGZ, DG2, "3")
/* An OCI image manifest with the given mediaType member ("" for none) and trailing members. */
#define OCI_IMAGE(extra)                                                                           \
	"{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"config\":" CFG          \
	",\"layers\":[" LAYER "]" extra "}"
#define OCI_INDEX(extra)                                                                           \
	"{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX "\",\"manifests\":["            \
	DESC(BERTH_MT_OCI_MANIFEST, DG, "100") "]" extra "}"

/* ---- helpers ---- */

struct file_buf {
	char *data;
	size_t len;
};

static int read_file(const char *path, struct file_buf *out)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, len = 0;
	char *data = NULL;

	out->data = NULL;
	out->len = 0;
	if (!f) return 0;
	data = malloc(cap);
	while (data) {
		size_t n = fread(data + len, 1, cap - len, f);

		len += n;
		if (n == 0) break;
		if (len == cap) {
			char *p = realloc(data, cap * 2);

			if (!p) {
				free(data);
				data = NULL;
				break;
			}
			data = p;
			cap *= 2;
		}
	}
	fclose(f);
	if (!data) return 0;
	out->data = data;
	out->len = len;
	return 1;
}

static struct berth_manifest *load(const char *name, const char *ct)
{
	char path[512];
	struct file_buf fb;
	struct berth_manifest *m = NULL;
	berth_err e;

	snprintf(path, sizeof path, "%s/%s", CORPUS, name);
	if (!read_file(path, &fb)) {
		fprintf(stderr, "  cannot read %s (run from the repository root)\n", path);
		return NULL;
	}
	e = berth_manifest_parse(ct, fb.data, fb.len, &m);
	if (e != BERTH_OK && m) fprintf(stderr, "  %s: failed but set *out\n", name);
	free(fb.data);
	return m;
}

/* Parses a NUL-terminated document (copied to an exact-size heap buffer so ASan sees any read
 * past len) and returns the error; the manifest is freed. */
static berth_err parse_ct(const char *ct, const char *json)
{
	size_t len = strlen(json);
	char *p = malloc(len ? len : 1);
	struct berth_manifest *m = NULL;
	berth_err e;

	if (!p) return BERTH_ENOMEM;
	memcpy(p, json, len);
	e = berth_manifest_parse(ct, p, len, &m);
	if (e != BERTH_OK && m != NULL) e = BERTH_EINTERNAL; /* *out must stay NULL on failure */
	berth_manifest_free(m);
	free(p);
	return e;
}

/* Reports which document failed before CHECK's line number does. */
#define CHECK_PARSE(ct, json, want)                                                                \
	do {                                                                                       \
		berth_err got_ = parse_ct((ct), (json));                                           \
		if (got_ != (want)) fprintf(stderr, "  doc: %s\n", (json));                        \
		CHECK_EQ_INT(got_, (want));                                                        \
	} while (0)

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- the corpus ---- */

static const char *const all_cts[] = {
	NULL,
	"",
	"application/octet-stream",
	BERTH_MT_OCI_MANIFEST,
	BERTH_MT_OCI_INDEX,
	BERTH_MT_DOCKER_MANIFEST,
	BERTH_MT_DOCKER_LIST,
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
};

static void test_corpus_valid(void)
{
	DIR *d = opendir(CORPUS);
	struct dirent *de;
	int n = 0;

	CHECK(d != NULL);
	if (!d) return;
	while ((de = readdir(d)) != NULL) {
		struct berth_manifest *m, *m2;

		if (!has_suffix(de->d_name, ".json")) continue;
		n++;
		m = load(de->d_name, NULL);
		if (!m) fprintf(stderr, "  valid file rejected: %s\n", de->d_name);
		CHECK(m != NULL);
		if (!m) continue;
		CHECK(berth_manifest_media_type_known(m->media_type));
		CHECK_EQ_INT(m->kind == BERTH_MANIFEST_INDEX,
			     strcmp(m->media_type, BERTH_MT_OCI_INDEX) == 0 ||
				     strcmp(m->media_type, BERTH_MT_DOCKER_LIST) == 0);
		CHECK_EQ_INT(m->has_config, m->kind == BERTH_MANIFEST_IMAGE);
		CHECK(m->n_refs == 0 || m->refs != NULL);
		for (size_t i = 0; i < m->n_refs; i++) {
			CHECK(m->refs[i].size >= 0);
			CHECK_EQ_INT(m->refs[i].is_manifest, m->kind == BERTH_MANIFEST_INDEX);
		}
		if (m->has_config) {
			CHECK(m->n_refs >= 1);
			CHECK(berth_digest_eq(&m->refs[0].digest, &m->config));
		}
		/* The same body sent with its own media type as Content-Type is accepted and read
		 * the same way. */
		m2 = load(de->d_name, m->media_type);
		CHECK(m2 != NULL);
		if (m2) {
			CHECK_STR(m2->media_type, m->media_type);
			CHECK_EQ_INT(m2->n_refs, m->n_refs);
		}
		berth_manifest_free(m2);
		berth_manifest_free(m);
	}
	closedir(d);
	/* 21 files when this was written; fewer means the corpus is not where we look. */
	CHECK(n >= 21);
}

static void test_corpus_invalid(void)
{
	DIR *d = opendir(CORPUS "/invalid");
	struct dirent *de;
	int n = 0;

	CHECK(d != NULL);
	if (!d) return;
	while ((de = readdir(d)) != NULL) {
		char path[512];
		struct file_buf fb;

		if (de->d_name[0] == '.') continue;
		snprintf(path, sizeof path, "%s/invalid/%s", CORPUS, de->d_name);
		CHECK(read_file(path, &fb));
		if (!fb.data) continue;
		n++;
		for (size_t i = 0; i < sizeof all_cts / sizeof all_cts[0]; i++) {
			struct berth_manifest *m = NULL;
			berth_err e = berth_manifest_parse(all_cts[i], fb.data, fb.len, &m);

			if (e != BERTH_EMANIFEST_INVALID)
				fprintf(stderr, "  invalid file accepted: %s (Content-Type %s)\n",
					de->d_name, all_cts[i] ? all_cts[i] : "none");
			CHECK_EQ_INT(e, BERTH_EMANIFEST_INVALID);
			CHECK(m == NULL);
			berth_manifest_free(m);
		}
		free(fb.data);
	}
	closedir(d);
	CHECK(n >= 9);
}

static void test_corpus_docker_image(void)
{
	struct berth_manifest *m = load("docker-v2s2-manifest.json", NULL);

	CHECK(m != NULL);
	if (!m) return;
	CHECK_EQ_INT(m->kind, BERTH_MANIFEST_IMAGE);
	CHECK_STR(m->media_type, BERTH_MT_DOCKER_MANIFEST);
	CHECK_STR(m->config_media_type, "application/vnd.docker.container.image.v1+json");
	CHECK_STR(m->artifact_type, "application/vnd.docker.container.image.v1+json");
	CHECK(m->has_config);
	CHECK_STR(m->config.s,
		  "sha256:5329e5b2b9a331cb2ab3a69010d51be386ec05a552afa19ab2c824a7c387140a");
	CHECK(!m->has_subject);
	CHECK(m->annotations_json == NULL);
	CHECK_EQ_INT(m->n_refs, 6);
	if (m->n_refs == 6) {
		CHECK_EQ_INT(m->refs[0].size, 2092);
		CHECK_STR(m->refs[1].digest.s,
			  "sha256:df9b9388f04ad6279a7410b85cedfdcb2208c0a003da7ab5613af71079148139");
		CHECK_EQ_INT(m->refs[1].size, 2814559);
		CHECK_EQ_INT(m->refs[5].size, 32);
		CHECK_EQ_INT(m->refs[5].is_manifest, 0);
	}
	berth_manifest_free(m);
}

static void test_corpus_docker_list(void)
{
	struct berth_manifest *m = load("docker-manifest-list-multiarch.json", NULL);

	CHECK(m != NULL);
	if (!m) return;
	CHECK_EQ_INT(m->kind, BERTH_MANIFEST_INDEX);
	CHECK_STR(m->media_type, BERTH_MT_DOCKER_LIST);
	CHECK_STR(m->artifact_type, "");
	CHECK_STR(m->config_media_type, "");
	CHECK(!m->has_config);
	CHECK_EQ_INT(m->n_refs, 3);
	if (m->n_refs == 3) {
		CHECK_STR(m->refs[0].digest.s,
			  "sha256:2dac842a777320f6b76bd1d6a5305795b1daf0f5b329b6b19fb2c7198a4da188");
		CHECK_EQ_INT(m->refs[0].size, 1363);
		CHECK_EQ_INT(m->refs[0].is_manifest, 1);
		CHECK_EQ_INT(m->refs[2].is_manifest, 1);
	}
	berth_manifest_free(m);

	m = load("docker-manifest-list-busybox-7arch.json", NULL);
	CHECK(m != NULL);
	if (m) CHECK_EQ_INT(m->n_refs, 7);
	berth_manifest_free(m);
}

static void test_corpus_oci_index(void)
{
	struct berth_manifest *m = load("oci-index-empty-manifests.json", NULL);

	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(m->kind, BERTH_MANIFEST_INDEX);
		CHECK_STR(m->media_type, BERTH_MT_OCI_INDEX);
		CHECK_EQ_INT(m->n_refs, 0);
	}
	berth_manifest_free(m);

	m = load("oci-index-artifacttype-subject-everything.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(m->kind, BERTH_MANIFEST_INDEX);
		CHECK_STR(m->artifact_type, "application/our-top-artifact");
		CHECK(m->has_subject);
		CHECK_STR(m->subject.s, "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
					"bbbbbb");
		CHECK_STR(m->annotations_json, "{\"top\":\"0\"}");
		CHECK_EQ_INT(m->n_refs, 1);
	}
	berth_manifest_free(m);

	/* A buildx cache: an index whose "manifests" are layer blobs, one listed three times.
	 * Every entry is reported, duplicates included, as is_manifest=1. */
	m = load("buildx-cache-index-layers-as-manifests.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(m->n_refs, 7);
		if (m->n_refs == 7) {
			CHECK(berth_digest_eq(&m->refs[3].digest, &m->refs[5].digest));
			CHECK_EQ_INT(m->refs[6].size, 1654);
		}
	}
	berth_manifest_free(m);

	m = load("oci-index-multiplatform-with-buildkit-attestation-refs.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_STR(m->annotations_json, "{\"org.example.version\":\"v1\"}");
		CHECK_EQ_INT(m->n_refs, 4);
		CHECK(!m->has_subject);
	}
	berth_manifest_free(m);
}

static void test_corpus_artifacts(void)
{
	struct berth_manifest *m = load("oras-artifact-empty-config-artifacttype.json", NULL);

	CHECK(m != NULL);
	if (m) {
		CHECK_STR(m->media_type, BERTH_MT_OCI_MANIFEST);
		CHECK_STR(m->artifact_type, "application/vnd.unknown.artifact.v1");
		CHECK_STR(m->config_media_type, "application/vnd.oci.empty.v1+json");
		CHECK_STR(m->annotations_json,
			  "{\"org.opencontainers.image.created\":\"2025-01-17T06:32:32Z\"}");
		CHECK(!m->has_subject);
		CHECK_EQ_INT(m->n_refs, 2);
	}
	berth_manifest_free(m);

	m = load("notation-signature-jws-manifest.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK(m->has_subject);
		CHECK_STR(m->subject.s, "sha256:d7b441acd8ea27f3fa22afeb4433c937a22c241f6f61ccc5ce841725"
					"09bf78ae");
		CHECK_STR(m->artifact_type, "application/vnd.cncf.notary.signature");
		CHECK_EQ_INT(m->n_refs, 2);
		/* Annotation values are kept byte for byte, escapes included. */
		CHECK(m->annotations_json &&
		      strstr(m->annotations_json, "\"[\\\"36b3e0e0fee117d33d5664a2f56b147ddbbe8b7ca3"
						  "ad2ae56498703fd782a56e\\\"]\"") != NULL);
	}
	berth_manifest_free(m);

	/* No artifactType: the referrers API reports config.mediaType. */
	m = load("oras-attach-sbom-referrer-no-artifacttype.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_STR(m->artifact_type, "test/sbom.file");
		CHECK(m->has_subject);
		CHECK_STR(m->subject.s, "sha256:fd6ed2f36b5465244d5dc86cb4e7df0ab8a9d24adc57825099f522fe"
					"009a22bb");
	}
	berth_manifest_free(m);

	m = load("oci-artifact-sbom-subject-config-artifacttype.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_STR(m->artifact_type, "application/example.sbom");
		CHECK(m->has_subject);
	}
	berth_manifest_free(m);

	/* The same layer twice: both refs are reported; deduplication is the caller's business. */
	m = load("oras-artifact-duplicate-layer-digests.json", NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(m->n_refs, 4);
		if (m->n_refs == 4) CHECK(berth_digest_eq(&m->refs[1].digest, &m->refs[2].digest));
		CHECK(!m->has_subject);
	}
	berth_manifest_free(m);
}

/* Helm pushes without "mediaType" in the body: the Content-Type decides, else the shape. */
static void test_corpus_helm_no_media_type(void)
{
	const char *f = "helm-chart-manifest-bitnami-nginx.json";
	struct berth_manifest *m = load(f, NULL);

	CHECK(m != NULL);
	if (m) {
		CHECK_STR(m->media_type, BERTH_MT_OCI_MANIFEST);
		CHECK_STR(m->artifact_type, "application/vnd.cncf.helm.config.v1+json");
		CHECK_EQ_INT(m->n_refs, 2);
		CHECK(m->annotations_json != NULL);
	}
	berth_manifest_free(m);
	m = load(f, BERTH_MT_OCI_MANIFEST);
	CHECK(m != NULL);
	if (m) CHECK_STR(m->media_type, BERTH_MT_OCI_MANIFEST);
	berth_manifest_free(m);
	m = load(f, "application/octet-stream");
	CHECK(m != NULL);
	if (m) CHECK_STR(m->media_type, BERTH_MT_OCI_MANIFEST);
	berth_manifest_free(m);
	/* Told it is an index, the body has no "manifests": refused. */
	m = load(f, BERTH_MT_OCI_INDEX);
	CHECK(m == NULL);
	berth_manifest_free(m);
	/* Told it is Docker schema2, the Helm layer type is not a Docker layer type. */
	m = load(f, BERTH_MT_DOCKER_MANIFEST);
	CHECK(m == NULL);
	berth_manifest_free(m);
}

/* ---- media type and Content-Type ---- */

static void test_content_type(void)
{
	const char *img = OCI_IMAGE("");

	CHECK_PARSE(NULL, img, BERTH_OK);
	CHECK_PARSE("", img, BERTH_OK);
	CHECK_PARSE(BERTH_MT_OCI_MANIFEST, img, BERTH_OK);
	CHECK_PARSE("application/octet-stream", img, BERTH_OK);
	CHECK_PARSE("application/json", img, BERTH_OK);
	CHECK_PARSE("text/plain; charset=utf-8", img, BERTH_OK);
	/* Parameters, whitespace and case do not change what a header names (RFC 9110 §8.3.1). */
	CHECK_PARSE(BERTH_MT_OCI_MANIFEST "; charset=utf-8", img, BERTH_OK);
	CHECK_PARSE("  " BERTH_MT_OCI_MANIFEST "\t", img, BERTH_OK);
	CHECK_PARSE("Application/VND.OCI.Image.Manifest.v1+JSON", img, BERTH_OK);
	/* Disagreement between a manifest Content-Type and the body's mediaType. */
	CHECK_PARSE(BERTH_MT_OCI_INDEX, img, BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(BERTH_MT_DOCKER_MANIFEST, img, BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(BERTH_MT_DOCKER_LIST "; charset=utf-8", img, BERTH_EMANIFEST_INVALID);
	/* A Content-Type naming a manifest format we refuse is not ignored. */
	CHECK_PARSE("application/vnd.docker.distribution.manifest.v1+prettyjws", img,
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE("application/vnd.docker.distribution.manifest.v1+json", img,
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE("application/vnd.oci.artifact.manifest.v1+json", img,
		    BERTH_EMANIFEST_INVALID);

	CHECK_PARSE(NULL, OCI_INDEX(""), BERTH_OK);
	CHECK_PARSE(BERTH_MT_OCI_INDEX, OCI_INDEX(""), BERTH_OK);
	CHECK_PARSE(BERTH_MT_OCI_MANIFEST, OCI_INDEX(""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(BERTH_MT_DOCKER_LIST, OCI_INDEX(""), BERTH_EMANIFEST_INVALID);
}

static void test_body_media_type(void)
{
	struct berth_manifest *m = NULL;
	const char *no_mt = "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[" LAYER "]}";
	const char *no_mt_index = "{\"schemaVersion\":2,\"manifests\":[]}";
	static const char ct_docker[] = BERTH_MT_DOCKER_MANIFEST "; x=y";

	/* Unknown, retired or misspelt body media types. */
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest."
			  "v1+jsonx\",\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":\"Application/vnd.oci.image.manifest."
			  "v1+json\",\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
			  "manifest.v1+prettyjws\",\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact."
			  "manifest.v1+json\",\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":7,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":null,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);

	/* No mediaType: Content-Type decides, else the shape. */
	CHECK_EQ_INT(berth_manifest_parse(NULL, no_mt, strlen(no_mt), &m), BERTH_OK);
	if (m) CHECK_STR(m->media_type, BERTH_MT_OCI_MANIFEST);
	berth_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(berth_manifest_parse(ct_docker, no_mt, strlen(no_mt), &m), BERTH_OK);
	if (m) CHECK_STR(m->media_type, BERTH_MT_DOCKER_MANIFEST);
	berth_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(berth_manifest_parse(NULL, no_mt_index, strlen(no_mt_index), &m), BERTH_OK);
	if (m) {
		CHECK_STR(m->media_type, BERTH_MT_OCI_INDEX);
		CHECK_EQ_INT(m->kind, BERTH_MANIFEST_INDEX);
	}
	berth_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(berth_manifest_parse("application/VND.docker.distribution.manifest.list.v2+json",
					  no_mt_index, strlen(no_mt_index), &m),
		     BERTH_OK);
	/* The canonical spelling, not the header's. */
	if (m) CHECK_STR(m->media_type, BERTH_MT_DOCKER_LIST);
	berth_manifest_free(m);

	/* Both shapes, or neither, without a media type to say which. */
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[],\"manifests\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(BERTH_MT_OCI_MANIFEST,
		    "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[],\"manifests\":[]}", BERTH_OK);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"config\":7,\"layers\":[]}", BERTH_EMANIFEST_INVALID);
}

static void test_media_type_known(void)
{
	CHECK(berth_manifest_media_type_known(BERTH_MT_OCI_MANIFEST));
	CHECK(berth_manifest_media_type_known(BERTH_MT_OCI_INDEX));
	CHECK(berth_manifest_media_type_known(BERTH_MT_DOCKER_MANIFEST));
	CHECK(berth_manifest_media_type_known(BERTH_MT_DOCKER_LIST));
	CHECK(!berth_manifest_media_type_known("application/vnd.docker.distribution.manifest.v1+json"));
	CHECK(!berth_manifest_media_type_known("application/vnd.oci.artifact.manifest.v1+json"));
	CHECK(!berth_manifest_media_type_known(BERTH_MT_OCI_MANIFEST "; charset=utf-8"));
	CHECK(!berth_manifest_media_type_known("application/vnd.oci.image.manifest.v1+jso"));
	CHECK(!berth_manifest_media_type_known(""));
	CHECK(!berth_manifest_media_type_known(NULL));
}

/* ---- JSON-level rejections ---- */

static void test_not_json_object(void)
{
	struct berth_manifest *m = (struct berth_manifest *)&m;

	CHECK_EQ_INT(berth_manifest_parse(NULL, "", 0, &m), BERTH_EMANIFEST_INVALID);
	CHECK(m == NULL);
	CHECK_EQ_INT(berth_manifest_parse(NULL, NULL, 0, &m), BERTH_EMANIFEST_INVALID);
	CHECK_EQ_INT(berth_manifest_parse(NULL, "{}", 2, NULL), BERTH_EINVAL);
	CHECK_PARSE(NULL, " ", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "[]", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "[" OCI_IMAGE("") "]", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "2", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "\"x\"", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "null", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "true", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "schemaVersion: 2", BERTH_EMANIFEST_INVALID);
	/* Trailing garbage or a second document. */
	CHECK_PARSE(NULL, OCI_IMAGE("") "x", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE("") OCI_IMAGE(""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE("") ",", BERTH_EMANIFEST_INVALID);
	/* Whitespace around the document is fine (RFC 8259 §2). */
	CHECK_PARSE(NULL, "\r\n\t " OCI_IMAGE("") "\n\n", BERTH_OK);
	/* Not UTF-8. */
	CHECK_PARSE(NULL, OCI_IMAGE(",\"x\":\"\xff\""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"x\":\"\xc3\xa9\""), BERTH_OK);
}

static void test_nul_bytes(void)
{
	const char *img = OCI_IMAGE("");
	size_t len = strlen(img);
	char *p = malloc(len + 1);
	struct berth_manifest *m = NULL;

	CHECK(p != NULL);
	if (!p) return;
	/* The exact bytes plus a NUL: not JSON. */
	memcpy(p, img, len + 1);
	CHECK_EQ_INT(berth_manifest_parse(NULL, p, len + 1, &m), BERTH_EMANIFEST_INVALID);
	/* A NUL inside a string must not cut the document short for C string functions. */
	memcpy(p, img, len + 1);
	p[strstr(img, "config.v1") - img] = '\0';
	CHECK_EQ_INT(berth_manifest_parse(NULL, p, len, &m), BERTH_EMANIFEST_INVALID);
	CHECK(m == NULL);
	free(p);
	/* Escaped NUL too: a media type or annotation with "\u0000" would truncate in C. */
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":{\"a\":\"b\\u0000c\"}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"x\":\"\\u0000\""), BERTH_EMANIFEST_INVALID);
}

static void test_duplicate_keys(void)
{
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"schemaVersion\":2,\"config\":" CFG
			  ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"layers\":[]"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\""),
		    BERTH_EMANIFEST_INVALID);
	/* Inside a descriptor, and deep in an ignored member. */
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DG
			  "\",\"digest\":\"" DG2 "\",\"size\":1},\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"x\":[{\"y\":{\"z\":1,\"z\":1}}]"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":{\"k\":\"1\",\"k\":\"2\"}"),
		    BERTH_EMANIFEST_INVALID);
	/* Same key in different objects is fine. */
	CHECK_PARSE(NULL, OCI_IMAGE(",\"x\":{\"k\":1},\"y\":{\"k\":1}"), BERTH_OK);
}

/* An image manifest whose extra member "x" holds `levels` nested arrays; the root object is
 * level 1, so the document's depth is levels + 1. */
static char *nested_doc(size_t levels)
{
	static const char head[] = "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[],\"x\":";
	size_t hl = sizeof head - 1;
	size_t len = hl + 2 * levels + 1;
	char *p = malloc(len + 1);

	if (!p) return NULL;
	memcpy(p, head, hl);
	memset(p + hl, '[', levels);
	memset(p + hl + levels, ']', levels);
	p[hl + 2 * levels] = '}';
	p[len] = '\0';
	return p;
}

static void test_depth(void)
{
	char *p;
	char *q;
	size_t n = 100000;

	/* Root object is level 1, so 63 nested arrays in "x" is level 64: allowed. */
	p = nested_doc(BERTH_JSON_DEPTH_MAX - 1);
	CHECK(p != NULL);
	if (p) CHECK_PARSE(NULL, p, BERTH_OK);
	free(p);
	p = nested_doc(BERTH_JSON_DEPTH_MAX);
	CHECK(p != NULL);
	if (p) CHECK_PARSE(NULL, p, BERTH_EMANIFEST_INVALID);
	free(p);
	/* A bomb far deeper than jansson's own limit and any stack we want to spend. */
	p = nested_doc(n);
	CHECK(p != NULL);
	if (p) CHECK_PARSE(NULL, p, BERTH_EMANIFEST_INVALID);
	free(p);
	/* Unbalanced: only openers. */
	q = malloc(n + 1);
	CHECK(q != NULL);
	if (!q) return;
	memset(q, '{', n);
	q[n] = '\0';
	CHECK_PARSE(NULL, q, BERTH_EMANIFEST_INVALID);
	memset(q, '[', n);
	CHECK_PARSE(NULL, q, BERTH_EMANIFEST_INVALID);
	free(q);
	/* Brackets inside strings (escaped quotes too) are data, not nesting. */
	q = malloc(n + 200);
	CHECK(q != NULL);
	if (!q) return;
	{
		static const char head[] = "{\"schemaVersion\":2,\"config\":" CFG
					   ",\"layers\":[],\"x\":\"\\\"";
		size_t hl = sizeof head - 1;

		memcpy(q, head, hl);
		memset(q + hl, '[', 1000);
		memcpy(q + hl + 1000, "\"}", 3);
		CHECK_PARSE(NULL, q, BERTH_OK);
	}
	free(q);
}

/* Every proper prefix of a valid document is rejected (and read in bounds). */
static void test_truncated(void)
{
	const char *docs[] = {OCI_IMAGE(",\"annotations\":{\"a\":\"b\"},\"subject\":" LAYER),
			      OCI_INDEX("")};

	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		size_t len = strlen(docs[d]);

		CHECK_PARSE(NULL, docs[d], BERTH_OK);
		for (size_t n = 0; n < len; n++) {
			char *p = malloc(n ? n : 1);
			struct berth_manifest *m = NULL;
			berth_err e;

			CHECK(p != NULL);
			if (!p) return;
			memcpy(p, docs[d], n);
			e = berth_manifest_parse(NULL, p, n, &m);
			if (e != BERTH_EMANIFEST_INVALID) fprintf(stderr, "  prefix %zu accepted\n", n);
			CHECK_EQ_INT(e, BERTH_EMANIFEST_INVALID);
			CHECK(m == NULL);
			berth_manifest_free(m);
			free(p);
		}
	}
}

/* ---- schema rules ---- */

static void test_schema_version(void)
{
	CHECK_PARSE(NULL, "{\"schemaVersion\":1,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":3,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":\"2\",\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2.0,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":null,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":-2,\"config\":" CFG ",\"layers\":[]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"config\":" CFG ",\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]}", BERTH_OK);
}

static void test_image_shape(void)
{
	struct berth_manifest *m = NULL;
	const char *empty = OCI_IMAGE("");
	const char *zero_layers = "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST
				  "\",\"config\":" CFG ",\"layers\":[]}";

	CHECK_EQ_INT(berth_manifest_parse(NULL, zero_layers, strlen(zero_layers), &m), BERTH_OK);
	if (m) {
		CHECK_EQ_INT(m->n_refs, 1);
		CHECK_STR(m->refs[0].digest.s, DG);
		CHECK_EQ_INT(m->refs[0].size, 2);
		CHECK_STR(m->artifact_type, MT_CFG);
		CHECK(m->annotations_json == NULL);
		CHECK(!m->has_subject);
	}
	berth_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(berth_manifest_parse(NULL, empty, strlen(empty), &m), BERTH_OK);
	if (m) {
		CHECK_EQ_INT(m->n_refs, 2);
		if (m->n_refs == 2) {
			CHECK_STR(m->refs[1].digest.s, DG2);
			CHECK_EQ_INT(m->refs[1].size, 3);
			CHECK_EQ_INT(m->refs[1].is_manifest, 0);
		}
	}
	berth_manifest_free(m);

#define IMG_MT "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\""
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":null}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG "}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":{}}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":" LAYER "}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":[null]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":[" LAYER ",1]}",
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":null,\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_MT ",\"config\":[" CFG "],\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	/* An image with a "manifests" member is still an image; the extra member is ignored. */
	CHECK_PARSE(NULL, IMG_MT ",\"config\":" CFG ",\"layers\":[],\"manifests\":7}", BERTH_OK);
#undef IMG_MT
}

static void test_index_shape(void)
{
	struct berth_manifest *m = NULL;
	const char *idx = OCI_INDEX(",\"subject\":" DESC(BERTH_MT_OCI_MANIFEST, DG2, "5"));

	CHECK_EQ_INT(berth_manifest_parse(NULL, idx, strlen(idx), &m), BERTH_OK);
	if (m) {
		CHECK_EQ_INT(m->kind, BERTH_MANIFEST_INDEX);
		CHECK(!m->has_config);
		CHECK_EQ_INT(m->n_refs, 1);
		if (m->n_refs == 1) {
			CHECK_EQ_INT(m->refs[0].is_manifest, 1);
			CHECK_EQ_INT(m->refs[0].size, 100);
		}
		CHECK(m->has_subject);
		CHECK_STR(m->subject.s, DG2);
		CHECK_STR(m->artifact_type, "");
	}
	berth_manifest_free(m);

#define IDX_MT "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX "\""
	CHECK_PARSE(NULL, IDX_MT "}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IDX_MT ",\"manifests\":null}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IDX_MT ",\"manifests\":{}}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IDX_MT ",\"manifests\":[{}]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IDX_MT ",\"config\":" CFG ",\"layers\":[]}", BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IDX_MT ",\"manifests\":[]}", BERTH_OK);
	CHECK_PARSE(BERTH_MT_DOCKER_LIST, "{\"schemaVersion\":2,\"manifests\":[]}", BERTH_OK);
	CHECK_PARSE(BERTH_MT_DOCKER_LIST, "{\"schemaVersion\":2}", BERTH_EMANIFEST_INVALID);
#undef IDX_MT
}

#define IMG_WITH_CONFIG(cfg)                                                                       \
	"{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"config\":" cfg          \
	",\"layers\":[]}"

static void test_descriptors(void)
{
	/* mediaType */
	CHECK_PARSE(NULL, IMG_WITH_CONFIG("{\"digest\":\"" DG "\",\"size\":1}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("foo", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b/c", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("/b", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b; x=y", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a /b", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("+a/b", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/.b", DG, "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL,
		    IMG_WITH_CONFIG("{\"mediaType\":7,\"digest\":\"" DG "\",\"size\":1}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "1")), BERTH_OK);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("A0/b-c.d_e+f!#$&^", DG, "1")), BERTH_OK);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("test/sbom.file", DG, "1")), BERTH_OK);

	/* digest */
	CHECK_PARSE(NULL,
		    IMG_WITH_CONFIG("{\"mediaType\":\"a/b\",\"size\":1}"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", "", "1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL,
		    IMG_WITH_CONFIG(DESC("a/b", "sha256:0123456789ABCDEF0123456789abcdef0123456789"
						"abcdef0123456789abcdef", "1")),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", "sha384:" HEX64, "1")),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", "sha256:" HEX64 "0", "1")),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL,
		    IMG_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":null,\"size\":1}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", "sha512:" HEX64 HEX64, "1")), BERTH_OK);

	/* size */
	CHECK_PARSE(NULL,
		    IMG_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" DG "\"}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "-1")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "1.5")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "1.0")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "1e3")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "\"1\"")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "null")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "9223372036854775808")),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "0")), BERTH_OK);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG(DESC("a/b", DG, "9223372036854775807")), BERTH_OK);
	CHECK_PARSE(NULL, IMG_WITH_CONFIG("\"" DG "\""), BERTH_EMANIFEST_INVALID);
}

static void test_media_type_length(void)
{
	/* 127 + "/" + 127 = 255 = BERTH_MEDIA_TYPE_MAX; 128 on either side is over RFC 6838. */
	char sub[130], top[130], mt[300], doc[1024];

	memset(sub, 'b', sizeof sub);
	memset(top, 'a', sizeof top);
	snprintf(mt, sizeof mt, "%.127s/%.127s", top, sub);
	snprintf(doc, sizeof doc, IMG_WITH_CONFIG("{\"mediaType\":\"%s\",\"digest\":\"" DG
						  "\",\"size\":1}"), mt);
	CHECK_PARSE(NULL, doc, BERTH_OK);
	snprintf(doc, sizeof doc, OCI_IMAGE(",\"artifactType\":\"%s\""), mt);
	CHECK_PARSE(NULL, doc, BERTH_OK);
	snprintf(mt, sizeof mt, "%.128s/%.127s", top, sub);
	snprintf(doc, sizeof doc, IMG_WITH_CONFIG("{\"mediaType\":\"%s\",\"digest\":\"" DG
						  "\",\"size\":1}"), mt);
	CHECK_PARSE(NULL, doc, BERTH_EMANIFEST_INVALID);
	snprintf(mt, sizeof mt, "%.1s/%.128s", top, sub);
	snprintf(doc, sizeof doc, IMG_WITH_CONFIG("{\"mediaType\":\"%s\",\"digest\":\"" DG
						  "\",\"size\":1}"), mt);
	CHECK_PARSE(NULL, doc, BERTH_EMANIFEST_INVALID);
	snprintf(doc, sizeof doc, OCI_IMAGE(",\"artifactType\":\"%s\""), mt);
	CHECK_PARSE(NULL, doc, BERTH_EMANIFEST_INVALID);
}

static void test_subject(void)
{
	struct berth_manifest *m = NULL;
	const char *doc = OCI_IMAGE(",\"subject\":" DESC(BERTH_MT_OCI_MANIFEST, DG2, "9"));

	CHECK_EQ_INT(berth_manifest_parse(NULL, doc, strlen(doc), &m), BERTH_OK);
	if (m) {
		CHECK(m->has_subject);
		CHECK_STR(m->subject.s, DG2);
		/* The subject is not a reference the manifest holds: it may be pushed first. */
		CHECK_EQ_INT(m->n_refs, 2);
	}
	berth_manifest_free(m);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":" DESC("a/b", "sha256:x", "9")),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":{\"digest\":\"" DG "\",\"size\":9}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":" DESC("a/b", DG, "-9")), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":null"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":\"" DG "\""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"subject\":[" DESC("a/b", DG, "9") "]"),
		    BERTH_EMANIFEST_INVALID);
}

static void test_artifact_type(void)
{
	struct berth_manifest *m = NULL;
	const char *doc = OCI_IMAGE(",\"artifactType\":\"application/vnd.example+type\"");

	CHECK_EQ_INT(berth_manifest_parse(NULL, doc, strlen(doc), &m), BERTH_OK);
	if (m) {
		CHECK_STR(m->artifact_type, "application/vnd.example+type");
		CHECK_STR(m->config_media_type, MT_CFG);
	}
	berth_manifest_free(m);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"artifactType\":7"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"artifactType\":null"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"artifactType\":\"\""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"artifactType\":\"not a type\""), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_INDEX(",\"artifactType\":\"x/y\""), BERTH_OK);
}

static void test_annotations(void)
{
	struct berth_manifest *m = NULL;
	const char *doc = OCI_IMAGE(",\"annotations\":{\"b\" : \"2\",\n \"a\":\"\\u00e9\\\"\\n\"}");

	CHECK_EQ_INT(berth_manifest_parse(NULL, doc, strlen(doc), &m), BERTH_OK);
	/* Compact, in document order, escapes re-encoded by jansson. */
	if (m) CHECK_STR(m->annotations_json, "{\"b\":\"2\",\"a\":\"\xc3\xa9\\\"\\n\"}");
	berth_manifest_free(m);
	m = NULL;
	doc = OCI_IMAGE(",\"annotations\":{}");
	CHECK_EQ_INT(berth_manifest_parse(NULL, doc, strlen(doc), &m), BERTH_OK);
	if (m) CHECK_STR(m->annotations_json, "{}");
	berth_manifest_free(m);
	m = NULL;
	doc = OCI_IMAGE(",\"annotations\":null");
	CHECK_EQ_INT(berth_manifest_parse(NULL, doc, strlen(doc), &m), BERTH_OK);
	if (m) CHECK(m->annotations_json == NULL);
	berth_manifest_free(m);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":{\"a\":1}"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":{\"a\":null}"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":{\"a\":{\"b\":\"c\"}}"),
		    BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":[]"), BERTH_EMANIFEST_INVALID);
	CHECK_PARSE(NULL, OCI_IMAGE(",\"annotations\":\"a=b\""), BERTH_EMANIFEST_INVALID);
	/* Descriptor annotations are the descriptor's business, not the manifest's. */
	CHECK_PARSE(NULL, IMG_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" DG
					  "\",\"size\":1,\"annotations\":{\"k\":\"v\"}}"),
		    BERTH_OK);
}

static void test_docker_layer_types(void)
{
	static const char *const ok[] = {
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	};
	static const char *const bad[] = {
		"application/vnd.docker.image.rootfs.diff.tar.invalid",
		"application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.cncf.helm.chart.content.v1.tar+gzip",
		"application/vnd.in-toto+json",
		"application/octet-stream",
		"Application/vnd.docker.image.rootfs.diff.tar.gzip",
	};
	char doc[1024];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		snprintf(doc, sizeof doc,
			 "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST
			 "\",\"config\":" CFG ",\"layers\":[" LAYER ",{\"mediaType\":\"%s\","
			 "\"digest\":\"" DG "\",\"size\":1}]}",
			 ok[i]);
		CHECK_PARSE(NULL, doc, BERTH_OK);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(doc, sizeof doc,
			 "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST
			 "\",\"config\":" CFG ",\"layers\":[" LAYER ",{\"mediaType\":\"%s\","
			 "\"digest\":\"" DG "\",\"size\":1}]}",
			 bad[i]);
		CHECK_PARSE(NULL, doc, BERTH_EMANIFEST_INVALID);
		/* OCI image manifests carry any layer type (artifacts). */
		snprintf(doc, sizeof doc,
			 "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST
			 "\",\"config\":" CFG ",\"layers\":[{\"mediaType\":\"%s\","
			 "\"digest\":\"" DG "\",\"size\":1}]}",
			 bad[i]);
		CHECK_PARSE(NULL, doc, BERTH_OK);
	}
	/* Docker's config type is not restricted (plugins use their own), nor an empty list. */
	CHECK_PARSE(NULL, "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST
			  "\",\"config\":" DESC("application/vnd.docker.plugin.v1+json", DG, "1")
			  ",\"layers\":[]}",
		    BERTH_OK);
}

/* A document with n layers (or index entries), for the refs limit. */
static char *many_refs_doc(size_t n, int index)
{
	static const char img_head[] = "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[";
	static const char idx_head[] = "{\"schemaVersion\":2,\"manifests\":[";
	static const char entry[] = LAYER;
	const char *head = index ? idx_head : img_head;
	size_t hl = strlen(head), el = sizeof entry - 1;
	size_t len = hl + n * (el + 1) + 2;
	char *p = malloc(len + 1), *w;

	if (!p) return NULL;
	memcpy(p, head, hl);
	w = p + hl;
	for (size_t i = 0; i < n; i++) {
		if (i) *w++ = ',';
		memcpy(w, entry, el);
		w += el;
	}
	memcpy(w, "]}", 3);
	return p;
}

static void test_refs_limit(void)
{
	for (int index = 0; index <= 1; index++) {
		struct berth_manifest *m = NULL;
		char *p = many_refs_doc(BERTH_MANIFEST_REFS_MAX, index);

		CHECK(p != NULL);
		if (!p) return;
		CHECK_EQ_INT(berth_manifest_parse(NULL, p, strlen(p), &m), BERTH_OK);
		if (m) CHECK_EQ_INT(m->n_refs, BERTH_MANIFEST_REFS_MAX + (index ? 0 : 1));
		berth_manifest_free(m);
		free(p);
		p = many_refs_doc(BERTH_MANIFEST_REFS_MAX + 1, index);
		CHECK(p != NULL);
		if (!p) return;
		CHECK_PARSE(NULL, p, BERTH_EMANIFEST_INVALID);
		free(p);
	}
}

/* ---- out of memory ---- */

static long oom_budget = -1; /* allocations left before failure; -1 = unlimited */

static void *oom_malloc(size_t n)
{
	if (oom_budget == 0) return NULL;
	if (oom_budget > 0) oom_budget--;
	return malloc(n);
}

/* Every jansson allocation, in turn, fails: parse must report ENOMEM or (when jansson folds a
 * failure into a parse error) INVALID, never crash or leak (ASan's leak check), and succeed
 * once the budget is big enough. */
static void test_out_of_memory(void)
{
	struct file_buf fb;
	int succeeded = 0;

	CHECK(read_file(CORPUS "/oci-index-artifacttype-subject-everything.json", &fb));
	if (!fb.data) return;
	json_set_alloc_funcs(oom_malloc, free);
	for (long budget = 0; budget < 100000 && !succeeded; budget++) {
		struct berth_manifest *m = NULL;
		berth_err e;

		oom_budget = budget;
		e = berth_manifest_parse(NULL, fb.data, fb.len, &m);
		oom_budget = -1;
		CHECK(e == BERTH_OK || e == BERTH_ENOMEM || e == BERTH_EMANIFEST_INVALID);
		CHECK_EQ_INT(e == BERTH_OK, m != NULL);
		if (e == BERTH_OK) {
			succeeded = 1;
			CHECK_STR(m->annotations_json, "{\"top\":\"0\"}");
			CHECK(budget > 0);
		}
		berth_manifest_free(m);
	}
	json_set_alloc_funcs(malloc, free);
	CHECK(succeeded);
	free(fb.data);
}

/* The first allocation jansson makes failing is out-of-memory, not a bad manifest. */
static void test_out_of_memory_is_enomem(void)
{
	const char *doc = OCI_IMAGE("");
	struct berth_manifest *m = NULL;
	berth_err e;

	json_set_alloc_funcs(oom_malloc, free);
	oom_budget = 0;
	e = berth_manifest_parse(NULL, doc, strlen(doc), &m);
	oom_budget = -1;
	json_set_alloc_funcs(malloc, free);
	CHECK_EQ_INT(e, BERTH_ENOMEM);
	CHECK(m == NULL);
	berth_manifest_free(m);
}

int main(void)
{
	berth_manifest_free(NULL);
	T_RUN(test_corpus_valid);
	T_RUN(test_corpus_invalid);
	T_RUN(test_corpus_docker_image);
	T_RUN(test_corpus_docker_list);
	T_RUN(test_corpus_oci_index);
	T_RUN(test_corpus_artifacts);
	T_RUN(test_corpus_helm_no_media_type);
	T_RUN(test_content_type);
	T_RUN(test_body_media_type);
	T_RUN(test_media_type_known);
	T_RUN(test_not_json_object);
	T_RUN(test_nul_bytes);
	T_RUN(test_duplicate_keys);
	T_RUN(test_depth);
	T_RUN(test_truncated);
	T_RUN(test_schema_version);
	T_RUN(test_image_shape);
	T_RUN(test_index_shape);
	T_RUN(test_descriptors);
	T_RUN(test_media_type_length);
	T_RUN(test_subject);
	T_RUN(test_artifact_type);
	T_RUN(test_annotations);
	T_RUN(test_docker_layer_types);
	T_RUN(test_refs_limit);
	T_RUN(test_out_of_memory);
	T_RUN(test_out_of_memory_is_enomem);
	return T_DONE("unit-manifest");
}

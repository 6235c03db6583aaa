/* manifest.c — validates a pushed manifest against the OCI image-spec (manifest.md, index.md,
 * descriptor.md) and Docker's image manifest v2 schema 2, and lists what it references. Only
 * what the registry relies on is checked: shape, descriptors, media types. Fields we do not use
 * are left alone, as the image-spec asks ("MUST ignore unknown properties"). */
#include "manifest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "limits.h"

/* Content-Types that name a manifest format we refuse (schema1, the OCI 1.1-rc artifact
 * manifest). Unlike an unrelated Content-Type they are not ignored: the client says the body is
 * a format we do not store. */
static const char *const manifest_refused_types[] = {
	"application/vnd.docker.distribution.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.oci.artifact.manifest.v1+json",
};

static const char *const manifest_known_types[] = {
	BERTH_MT_OCI_MANIFEST,
	BERTH_MT_OCI_INDEX,
	BERTH_MT_DOCKER_MANIFEST,
	BERTH_MT_DOCKER_LIST,
};

/* Layer types Docker's schema2 allows (Docker's manifest-v2-2.md plus the OCI layer types that
 * Docker 20+ and BuildKit write into schema2 manifests). Anything else in a schema2 manifest
 * is a corrupt or hand-edited document, and the engine would refuse to pull it. */
static const char *const manifest_docker_layer_types[] = {
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
};

/* The longest Content-Type we bother to look at; longer ones cannot be a manifest type. */
#define MANIFEST_CT_SCAN_MAX 1024

#define MANIFEST_N(a) (sizeof(a) / sizeof((a)[0]))

static int manifest_in_list(const char *s, size_t len, const char *const *list, size_t n,
			    int nocase)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(list[i]) != len) continue;
		if (nocase ? strncasecmp(s, list[i], len) == 0 : memcmp(s, list[i], len) == 0)
			return 1;
	}
	return 0;
}

int berth_manifest_media_type_known(const char *mt)
{
	if (!mt) return 0;
	return manifest_in_list(mt, strnlen(mt, BERTH_MEDIA_TYPE_MAX + 1), manifest_known_types,
				MANIFEST_N(manifest_known_types), 0);
}

/* restricted-name-chars of RFC 6838 §4.2; the first character must be alphanumeric. */
static int manifest_mt_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
	if (first) return 0;
	return c != '\0' && strchr("!#$&-^_.+", c) != NULL;
}

/* type "/" subtype, each an RFC 6838 restricted-name of 1..127 characters, no parameters:
 * descriptors name a media type, not a Content-Type header. */
static int manifest_mt_valid(const char *s, size_t len)
{
	size_t slash = len;

	if (len == 0 || len > BERTH_MEDIA_TYPE_MAX) return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/') {
			if (slash != len) return 0;
			slash = i;
			continue;
		}
		if (!manifest_mt_char(s[i], i == 0 || i == slash + 1)) return 0;
	}
	if (slash == len || slash == 0 || slash > 127) return 0;
	if (len - slash - 1 == 0 || len - slash - 1 > 127) return 0;
	return 1;
}

/* The Content-Type's media type without parameters or surrounding whitespace (RFC 9110
 * §8.3.1: "type/subtype *( OWS ; OWS parameter )"). Sets *mt and *mt_len to a view into ct. */
static void manifest_ct_view(const char *ct, const char **mt, size_t *mt_len)
{
	size_t len = strnlen(ct, MANIFEST_CT_SCAN_MAX + 1);
	size_t b = 0, e;

	*mt = ct;
	*mt_len = 0;
	if (len > MANIFEST_CT_SCAN_MAX) return;
	while (b < len && (ct[b] == ' ' || ct[b] == '\t'))
		b++;
	e = b;
	while (e < len && ct[e] != ';')
		e++;
	while (e > b && (ct[e - 1] == ' ' || ct[e - 1] == '\t'))
		e--;
	*mt = ct + b;
	*mt_len = e - b;
}

/* Refuses nesting deeper than BERTH_JSON_DEPTH_MAX before jansson sees the bytes: its parser
 * recurses per level, so a "[[[[…" body must not reach it. Also refuses NUL bytes, which are
 * never valid JSON and would let C string functions see a different document. */
static int manifest_depth_ok(const unsigned char *p, size_t len)
{
	size_t depth = 0;
	int in_string = 0, escaped = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == '\0') return 0;
		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > BERTH_JSON_DEPTH_MAX) return 0;
		} else if (c == ']' || c == '}') {
			if (depth > 0) depth--;
		}
	}
	return 1;
}

/* A JSON string member of obj, by view. 0 when absent or not a string. */
static int manifest_get_string(const json_t *obj, const char *key, const char **s, size_t *len)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v)) return 0;
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

/* Checks one descriptor (image-spec descriptor.md): mediaType, digest and size are REQUIRED.
 * Optional outputs may be NULL. mt_out must hold BERTH_MEDIA_TYPE_MAX + 1 bytes. */
static berth_err manifest_descriptor(const json_t *d, struct berth_digest *digest, int64_t *size,
				     char *mt_out)
{
	const char *mt, *dg;
	size_t mt_len, dg_len;
	const json_t *sz;
	struct berth_digest tmp;

	if (!json_is_object(d)) return BERTH_EMANIFEST_INVALID;
	if (!manifest_get_string(d, "mediaType", &mt, &mt_len) || !manifest_mt_valid(mt, mt_len))
		return BERTH_EMANIFEST_INVALID;
	if (!manifest_get_string(d, "digest", &dg, &dg_len)) return BERTH_EMANIFEST_INVALID;
	if (berth_digest_parse(dg, dg_len, digest ? digest : &tmp) != BERTH_OK)
		return BERTH_EMANIFEST_INVALID;
	sz = json_object_get(d, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0) return BERTH_EMANIFEST_INVALID;
	if (size) *size = (int64_t)json_integer_value(sz);
	if (mt_out) {
		memcpy(mt_out, mt, mt_len);
		mt_out[mt_len] = '\0';
	}
	return BERTH_OK;
}

/* Decides the manifest's media type (see manifest.h) into m->media_type and m->kind. */
static berth_err manifest_media_type(const json_t *root, const char *content_type,
				     struct berth_manifest *m)
{
	const char *ct = NULL, *body = NULL, *mt;
	size_t ct_len = 0, body_len = 0, mt_len;
	const json_t *body_v = json_object_get(root, "mediaType");
	int ct_known = 0;

	if (content_type) {
		manifest_ct_view(content_type, &ct, &ct_len);
		/* Media types are case-insensitive (RFC 6838 §4.2) in a header; the body is data the
		 * digest covers, so there we want the exact spelling. */
		if (manifest_in_list(ct, ct_len, manifest_refused_types,
				     MANIFEST_N(manifest_refused_types), 1))
			return BERTH_EMANIFEST_INVALID;
		ct_known = manifest_in_list(ct, ct_len, manifest_known_types,
					    MANIFEST_N(manifest_known_types), 1);
	}
	if (body_v) {
		if (!json_is_string(body_v)) return BERTH_EMANIFEST_INVALID;
		body = json_string_value(body_v);
		body_len = json_string_length(body_v);
		if (!manifest_in_list(body, body_len, manifest_known_types,
				      MANIFEST_N(manifest_known_types), 0))
			return BERTH_EMANIFEST_INVALID;
		/* distribution-spec "Pushing manifests": the Content-Type must match the body's
		 * mediaType when the body has one. */
		if (ct_known && (ct_len != body_len || strncasecmp(ct, body, body_len) != 0))
			return BERTH_EMANIFEST_INVALID;
		mt = body;
		mt_len = body_len;
	} else if (ct_known) {
		mt = ct;
		mt_len = ct_len;
	} else {
		/* Neither says (the image-spec only SHOULDs "mediaType", and some Helm pushes omit
		 * it): guess from the shape. A body with both shapes is ambiguous. */
		int has_manifests = json_is_array(json_object_get(root, "manifests"));
		int has_config = json_is_object(json_object_get(root, "config"));

		if (has_manifests == has_config) return BERTH_EMANIFEST_INVALID;
		mt = has_manifests ? BERTH_MT_OCI_INDEX : BERTH_MT_OCI_MANIFEST;
		mt_len = strlen(mt);
	}
	/* Canonical spelling from our table, whatever case the Content-Type used. */
	for (size_t i = 0; i < MANIFEST_N(manifest_known_types); i++) {
		if (strlen(manifest_known_types[i]) == mt_len &&
		    strncasecmp(manifest_known_types[i], mt, mt_len) == 0) {
			memcpy(m->media_type, manifest_known_types[i], mt_len + 1);
			break;
		}
	}
	if (strcmp(m->media_type, BERTH_MT_OCI_INDEX) == 0 ||
	    strcmp(m->media_type, BERTH_MT_DOCKER_LIST) == 0)
		m->kind = BERTH_MANIFEST_INDEX;
	else
		m->kind = BERTH_MANIFEST_IMAGE;
	return BERTH_OK;
}

/* "annotations" (image-spec annotations.md): a string-to-string map. Absent or null leaves
 * m->annotations_json NULL; any other non-object is invalid. */
static berth_err manifest_annotations(const json_t *root, struct berth_manifest *m)
{
	const json_t *a = json_object_get(root, "annotations");
	const char *key;
	const json_t *val;
	size_t need;

	if (!a || json_is_null(a)) return BERTH_OK;
	if (!json_is_object(a)) return BERTH_EMANIFEST_INVALID;
	json_object_foreach((json_t *)a, key, val) {
		if (!json_is_string(val)) return BERTH_EMANIFEST_INVALID;
	}
	/* json_dumpb twice (size, then bytes) so the text lives in our allocator, not jansson's,
	 * and berth_manifest_free can free() it whatever json_set_alloc_funcs says. */
	need = json_dumpb(a, NULL, 0, JSON_COMPACT);
	if (need == 0 || need == SIZE_MAX) return BERTH_ENOMEM;
	m->annotations_json = malloc(need + 1);
	if (!m->annotations_json) return BERTH_ENOMEM;
	if (json_dumpb(a, m->annotations_json, need, JSON_COMPACT) != need) return BERTH_ENOMEM;
	m->annotations_json[need] = '\0';
	return BERTH_OK;
}

/* The descriptor array of an image ("layers") or index ("manifests"), appended to m->refs. */
static berth_err manifest_ref_array(const json_t *arr, int is_manifest, int docker_layers,
				    struct berth_manifest *m)
{
	size_t i;
	const json_t *d;

	json_array_foreach(arr, i, d) {
		struct berth_manifest_ref *r = &m->refs[m->n_refs];
		char mt[BERTH_MEDIA_TYPE_MAX + 1];
		berth_err e = manifest_descriptor(d, &r->digest, &r->size, mt);

		if (e != BERTH_OK) return e;
		if (docker_layers && !manifest_in_list(mt, strlen(mt), manifest_docker_layer_types,
						       MANIFEST_N(manifest_docker_layer_types), 0))
			return BERTH_EMANIFEST_INVALID;
		r->is_manifest = is_manifest;
		m->n_refs++;
	}
	return BERTH_OK;
}

/* Everything after the JSON parse; m is freshly zeroed. */
static berth_err manifest_validate(const json_t *root, const char *content_type,
				   struct berth_manifest *m)
{
	const json_t *sv, *arr, *cfg = NULL, *subj, *at;
	size_t n_arr, n_total;
	int64_t cfg_size = 0;
	berth_err e;

	if (!json_is_object(root)) return BERTH_EMANIFEST_INVALID;
	/* image-spec manifest.md / index.md: schemaVersion MUST be 2 (schema1 has 1). */
	sv = json_object_get(root, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2) return BERTH_EMANIFEST_INVALID;

	e = manifest_media_type(root, content_type, m);
	if (e != BERTH_OK) return e;

	if (m->kind == BERTH_MANIFEST_IMAGE) {
		cfg = json_object_get(root, "config");
		/* OCI 1.1 allows "layers": [] (artifacts); null or missing is a schema violation. */
		arr = json_object_get(root, "layers");
	} else {
		arr = json_object_get(root, "manifests");
	}
	if (!json_is_array(arr)) return BERTH_EMANIFEST_INVALID;
	n_arr = json_array_size(arr);
	if (n_arr > BERTH_MANIFEST_REFS_MAX) return BERTH_EMANIFEST_INVALID;
	n_total = n_arr + (cfg ? 1 : 0);

	if (m->kind == BERTH_MANIFEST_IMAGE) {
		e = manifest_descriptor(cfg, &m->config, &cfg_size, m->config_media_type);
		if (e != BERTH_OK) return e;
		m->has_config = 1;
	}

	subj = json_object_get(root, "subject");
	if (subj) {
		e = manifest_descriptor(subj, &m->subject, NULL, NULL);
		if (e != BERTH_OK) return e;
		m->has_subject = 1;
	}

	/* image-spec manifest.md "artifactType": used for referrers; without it the referrers
	 * API reports config.mediaType for image manifests. */
	at = json_object_get(root, "artifactType");
	if (at) {
		const char *s;
		size_t len;

		if (!manifest_get_string(root, "artifactType", &s, &len) || !manifest_mt_valid(s, len))
			return BERTH_EMANIFEST_INVALID;
		memcpy(m->artifact_type, s, len);
		m->artifact_type[len] = '\0';
	} else if (m->kind == BERTH_MANIFEST_IMAGE) {
		memcpy(m->artifact_type, m->config_media_type, sizeof m->artifact_type);
	}

	e = manifest_annotations(root, m);
	if (e != BERTH_OK) return e;

	if (n_total > SIZE_MAX / sizeof *m->refs) return BERTH_EMANIFEST_INVALID;
	if (n_total > 0) {
		m->refs = calloc(n_total, sizeof *m->refs);
		if (!m->refs) return BERTH_ENOMEM;
	}
	if (m->has_config) {
		struct berth_manifest_ref *r = &m->refs[m->n_refs++];

		r->digest = m->config;
		r->size = cfg_size;
		r->is_manifest = 0;
	}
	return manifest_ref_array(arr, m->kind == BERTH_MANIFEST_INDEX,
				  strcmp(m->media_type, BERTH_MT_DOCKER_MANIFEST) == 0, m);
}

berth_err berth_manifest_parse(const char *content_type, const void *buf, size_t len,
			       struct berth_manifest **out)
{
	struct berth_manifest *m = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	berth_err e;

	if (!out) return BERTH_EINVAL;
	*out = NULL;
	if (!buf || len == 0) return BERTH_EMANIFEST_INVALID;
	if (!manifest_depth_ok(buf, len)) return BERTH_EMANIFEST_INVALID;

	/* JSON_REJECT_DUPLICATES: RFC 8259 §4 leaves duplicate names to the parser, so with two
	 * "layers" keys different clients would see different manifests under one digest. */
	memset(&jerr, 0, sizeof jerr);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* Every parse error sets a message; jansson returns with none only when its first
		 * allocation (the lexer buffer) fails, and json_error_code only covers later ones. */
		if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')
			e = BERTH_ENOMEM;
		else
			e = BERTH_EMANIFEST_INVALID;
		goto done;
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		e = BERTH_ENOMEM;
		goto done;
	}
	e = manifest_validate(root, content_type, m);
	if (e == BERTH_OK) {
		*out = m;
		m = NULL;
	}
done:
	berth_manifest_free(m);
	json_decref(root);
	return e;
}

void berth_manifest_free(struct berth_manifest *m)
{
	if (!m) return;
	free(m->refs);
	free(m->annotations_json);
	free(m);
}

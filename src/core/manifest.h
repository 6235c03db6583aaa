/* manifest.h — parse and validate a pushed manifest (OCI image manifest, OCI image index,
 * Docker schema2 manifest and manifest list, artifacts) and list what it references.
 * Pure: bytes in, a description out; no storage access (existence checks are the registry's). */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "digest.h"
#include "err.h"

#define BERTH_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BERTH_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BERTH_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BERTH_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

enum berth_manifest_kind { BERTH_MANIFEST_IMAGE = 1, BERTH_MANIFEST_INDEX = 2 };

/* One descriptor the manifest points at. */
struct berth_manifest_ref {
	struct berth_digest digest;
	int64_t size;
	int is_manifest;   /* 1: a child manifest of an index; 0: a blob (config or layer) */
};

struct berth_manifest {
	enum berth_manifest_kind kind;
	char media_type[BERTH_MEDIA_TYPE_MAX + 1];    /* the manifest's own media type */
	/* The artifact type for referrers: the manifest's artifactType, else (image manifests)
	 * config.mediaType; "" for none. */
	char artifact_type[BERTH_MEDIA_TYPE_MAX + 1];
	char config_media_type[BERTH_MEDIA_TYPE_MAX + 1]; /* "" for indexes */
	int has_config;
	struct berth_digest config;                   /* valid when has_config */
	int has_subject;
	struct berth_digest subject;                  /* valid when has_subject */
	char *annotations_json;   /* compact JSON object text of "annotations", or NULL; owned */
	size_t n_refs;
	struct berth_manifest_ref *refs;              /* config first, then layers/manifests; owned */
};

/* Parse buf (untrusted, len bytes). content_type is the request's Content-Type (may be NULL or
 * empty). The media type is the body's "mediaType" when present; it must then agree with a
 * Content-Type that names a manifest type. Without "mediaType" in the body the Content-Type
 * decides. Rejects: invalid/duplicate-key/too-deep JSON, schemaVersion != 2, unknown or
 * schema1 media types, descriptors without a valid digest/size/mediaType, Docker schema2
 * layers with unknown media types.  On success *out is allocated; free with
 * berth_manifest_free. Errors: BERTH_EMANIFEST_INVALID, BERTH_ENOMEM. */
berth_err berth_manifest_parse(const char *content_type, const void *buf, size_t len,
			       struct berth_manifest **out) BERTH_MUST_CHECK;
void berth_manifest_free(struct berth_manifest *m);

/* 1 if mt (NUL-terminated) is one of the four manifest media types above. */
int berth_manifest_media_type_known(const char *mt);

#endif

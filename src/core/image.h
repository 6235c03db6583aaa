/* image.h — what berth indexes about an image manifest so it can answer lineage and label
 * questions: the config's labels, created time and platform, the OCI base-image annotations,
 * and the chain of layer digests. Pure: bytes in, a description out; no storage access. */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <stddef.h>
#include "digest.h"
#include "err.h"
#include "manifest.h"

/* Largest image config read for indexing. */
#define BERTH_IMAGE_CONFIG_MAX (1024 * 1024)

struct berth_image_info {
	char created[64];          /* config "created", "" when absent */
	char os[32], arch[32], variant[32];
	char *labels_json;         /* compact JSON object of config.Labels, or NULL; owned */
	char base_name[256];       /* org.opencontainers.image.base.name, "" when absent */
	char base_digest[BERTH_DIGEST_MAX + 1];
	size_t n_layers;
	/* chains[i] identifies layers 0..i as a sequence (Docker's ChainID): chains[0] is the
	 * first layer's digest, chains[i] = sha256(chains[i-1] + " " + layers[i]). Image B is
	 * built on image A exactly when B.chains[A.n_layers - 1] == A.chains[A.n_layers - 1]. */
	struct berth_digest *chains; /* owned, n_layers entries */
};

/* m is the parsed image manifest; config/config_len its config blob (may be NULL when it
 * isn't JSON, e.g. an artifact: then only layers and annotations are indexed). */
berth_err berth_image_info_build(const struct berth_manifest *m, const void *config,
				 size_t config_len,
				 struct berth_image_info **out) BERTH_MUST_CHECK;
void berth_image_info_free(struct berth_image_info *info);

#endif

/* image.c — the index entry of an image: config fields, base annotations, layer chains. */
#include "image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t len, json_t *v)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	if (s && strlen(s) < len) memcpy(dst, s, strlen(s) + 1);
	else dst[0] = '\0';
}

/* The config's Labels: Docker writes config.Labels; a null or non-string value is skipped. */
static char *labels_of(json_t *root)
{
	json_t *cfg = json_object_get(root, "config");
	json_t *labels = cfg ? json_object_get(cfg, "Labels") : NULL;
	json_t *clean, *v;
	const char *k;
	char *text;
	if (!json_is_object(labels) || json_object_size(labels) == 0) return NULL;
	clean = json_object();
	if (!clean) return NULL;
	json_object_foreach(labels, k, v)
		if (json_is_string(v)) json_object_set(clean, k, v);
	text = json_object_size(clean) ? json_dumps(clean, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(clean);
	return text;
}

berth_err berth_image_info_build(const struct berth_manifest *m, const void *config,
				 size_t config_len, struct berth_image_info **out)
{
	struct berth_image_info *info = calloc(1, sizeof *info);
	json_t *root = NULL;
	berth_err e = BERTH_ENOMEM;
	size_t first_layer = m->has_config ? 1 : 0, n;

	if (!info) return BERTH_ENOMEM;
	if (config && config_len && config_len <= BERTH_IMAGE_CONFIG_MAX)
		root = json_loadb(config, config_len, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(root)) {
		copy_str(info->created, sizeof info->created, json_object_get(root, "created"));
		copy_str(info->os, sizeof info->os, json_object_get(root, "os"));
		copy_str(info->arch, sizeof info->arch, json_object_get(root, "architecture"));
		copy_str(info->variant, sizeof info->variant, json_object_get(root, "variant"));
		info->labels_json = labels_of(root);
	}
	json_decref(root);
	if (m->annotations_json) {
		json_t *a = json_loads(m->annotations_json, 0, NULL);
		copy_str(info->base_name, sizeof info->base_name,
			 json_object_get(a, "org.opencontainers.image.base.name"));
		copy_str(info->base_digest, sizeof info->base_digest,
			 json_object_get(a, "org.opencontainers.image.base.digest"));
		json_decref(a);
	}
	n = m->n_refs > first_layer ? m->n_refs - first_layer : 0;
	info->n_layers = n;
	if (n) {
		info->chains = calloc(n, sizeof *info->chains);
		if (!info->chains) goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct berth_digest *layer = &m->refs[first_layer + i].digest;
		if (i == 0) {
			info->chains[0] = *layer;
			continue;
		}
		char buf[2 * BERTH_DIGEST_MAX + 2];
		int len = snprintf(buf, sizeof buf, "%s %s", info->chains[i - 1].s, layer->s);
		if (len < 0 || (size_t)len >= sizeof buf) {
			e = BERTH_EINTERNAL;
			goto fail;
		}
		if ((e = berth_digest_of(BERTH_DIGEST_SHA256, buf, (size_t)len, &info->chains[i])))
			goto fail;
	}
	*out = info;
	return BERTH_OK;
fail:
	berth_image_info_free(info);
	return e;
}

void berth_image_info_free(struct berth_image_info *info)
{
	if (!info) return;
	free(info->labels_json);
	free(info->chains);
	free(info);
}

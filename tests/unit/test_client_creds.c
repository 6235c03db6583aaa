/* test_client_creds.c — base64 (RFC 4648 test vectors) and Docker's config.json: read, write
 * (mode 0600, directory 0700), round trip keeping unknown keys, docker.io's key, logout. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/client/creds.h"
#include "t.h"

static void test_base64_vectors(void)
{
	static const char *const v[][2] = {{"", ""},         {"f", "Zg=="},       {"fo", "Zm8="},
					   {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
					   {"foobar", "Zm9vYmFy"}};
	char out[64];
	unsigned char dec[64];
	size_t n;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		CHECK_EQ_INT(berth_base64_encode(v[i][0], strlen(v[i][0]), out, sizeof out), strlen(v[i][1]));
		CHECK_STR(out, v[i][1]);
		CHECK_EQ_INT(berth_base64_decode(v[i][1], strlen(v[i][1]), dec, sizeof dec, &n), 0);
		CHECK_EQ_INT(n, strlen(v[i][0]));
		CHECK(memcmp(dec, v[i][0], n) == 0);
	}
	/* unpadded input is accepted; bad characters, bad lengths, non-canonical bits are not */
	CHECK_EQ_INT(berth_base64_decode("Zm8", 3, dec, sizeof dec, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(berth_base64_decode("Zm9v!", 5, dec, sizeof dec, &n), -1);
	CHECK_EQ_INT(berth_base64_decode("Z", 1, dec, sizeof dec, &n), -1);
	CHECK_EQ_INT(berth_base64_decode("Zh==", 4, dec, sizeof dec, &n), -1);
	CHECK_EQ_INT(berth_base64_decode("Zm9vYmFy", 8, dec, 3, &n), -1);
	/* binary and the output bound */
	{
		unsigned char bin[] = {0, 0xff, 0xfe, 0x80, 1};

		CHECK(berth_base64_encode(bin, sizeof bin, out, sizeof out) == 8);
		CHECK_STR(out, "AP/+gAE=");
		CHECK_EQ_INT(berth_base64_encode(bin, sizeof bin, out, 8), 0);
	}
}

static char dir[256];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) return;
	fputs(text, f);
	fclose(f);
}

static void test_roundtrip_keeps_unknown_keys(void)
{
	char path[512], *user = NULL, *pass = NULL;
	struct berth_creds *cr = NULL;
	const char *why = NULL;
	struct stat st;
	json_t *doc;

	snprintf(path, sizeof path, "%s/cfg/config.json", dir);
	/* missing file: empty config, nothing found */
	CHECK_EQ_INT(berth_creds_load(path, &cr, &why), BERTH_C_OK);
	if (!cr) return;
	CHECK_EQ_INT(berth_creds_get(cr, "r.example:5000", &user, &pass), BERTH_C_ENOTFOUND);
	CHECK_EQ_INT(berth_creds_set(cr, "r.example:5000", "alice", "s3cr:et"), BERTH_C_OK);
	CHECK_EQ_INT(berth_creds_save(cr, &why), BERTH_C_OK);
	berth_creds_free(cr);
	cr = NULL;
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	{
		char d[512];

		snprintf(d, sizeof d, "%s/cfg", dir);
		CHECK_EQ_INT(stat(d, &st), 0);
		CHECK_EQ_INT(st.st_mode & 0777, 0700);
	}
	/* other tools' keys survive our rewrite */
	write_file(path, "{\"auths\":{\"r.example:5000\":{\"auth\":\"YWxpY2U6czNjcjpldA==\","
			 "\"email\":\"a@b\"},\"other:1\":{\"auth\":\"Yjpj\"}},"
			 "\"credsStore\":\"desktop\",\"proxies\":{\"default\":{\"httpProxy\":\"x\"}}}");
	CHECK_EQ_INT(berth_creds_load(path, &cr, &why), BERTH_C_OK);
	if (!cr) return;
	CHECK_EQ_INT(berth_creds_get(cr, "r.example:5000", &user, &pass), BERTH_C_OK);
	CHECK_STR(user, "alice");
	CHECK_STR(pass, "s3cr:et"); /* split at the first ':' only */
	berth_secret_free(user);
	berth_secret_free(pass);
	CHECK_EQ_INT(berth_creds_set(cr, "docker.io", "bob", "pw"), BERTH_C_OK);
	CHECK_EQ_INT(berth_creds_set(cr, "bad", "a:b", "pw"), BERTH_C_EUSAGE);
	CHECK_EQ_INT(berth_creds_save(cr, &why), BERTH_C_OK);
	berth_creds_free(cr);
	doc = json_load_file(path, 0, NULL);
	CHECK(doc != NULL);
	CHECK_STR(json_string_value(json_object_get(doc, "credsStore")), "desktop");
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(doc, "proxies"),
					"default"), "httpProxy")), "x");
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(doc, "auths"),
					"other:1"), "auth")), "Yjpj");
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(doc, "auths"),
					"https://index.docker.io/v1/"), "auth")), "Ym9iOnB3");
	json_decref(doc);
}

static void test_host_matching_and_remove(void)
{
	char path[512], *user = NULL, *pass = NULL;
	struct berth_creds *cr = NULL;
	const char *why = NULL;

	snprintf(path, sizeof path, "%s/m.json", dir);
	write_file(path, "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnB3\"},"
			 "\"http://r:5000/v2/\":{\"username\":\"u\",\"password\":\"p\"}}}");
	CHECK_EQ_INT(berth_creds_load(path, &cr, &why), BERTH_C_OK);
	if (!cr) return;
	CHECK_EQ_INT(berth_creds_get(cr, "docker.io", &user, &pass), BERTH_C_OK);
	CHECK_STR(user, "hub");
	berth_secret_free(user);
	berth_secret_free(pass);
	CHECK_EQ_INT(berth_creds_get(cr, "r:5000", &user, &pass), BERTH_C_OK);
	CHECK_STR(user, "u");
	CHECK_STR(pass, "p");
	berth_secret_free(user);
	berth_secret_free(pass);
	CHECK_EQ_INT(berth_creds_get(cr, "r:5001", &user, &pass), BERTH_C_ENOTFOUND);
	CHECK_EQ_INT(berth_creds_remove(cr, "r:5000"), 1);
	CHECK_EQ_INT(berth_creds_remove(cr, "r:5000"), 0);
	CHECK_EQ_INT(berth_creds_get(cr, "r:5000", &user, &pass), BERTH_C_ENOTFOUND);
	CHECK_EQ_INT(berth_creds_get(cr, "docker.io", &user, &pass), BERTH_C_OK);
	berth_secret_free(user);
	berth_secret_free(pass);
	berth_creds_free(cr);
	/* malformed files are errors, not silently empty */
	write_file(path, "[1,2]");
	CHECK_EQ_INT(berth_creds_load(path, &cr, &why), BERTH_C_EFAIL);
	CHECK(cr == NULL);
	write_file(path, "{\"auths\":{\"r\":{\"auth\":\"!!\"}}}");
	CHECK_EQ_INT(berth_creds_load(path, &cr, &why), BERTH_C_OK);
	if (cr) {
		CHECK_EQ_INT(berth_creds_get(cr, "r", &user, &pass), BERTH_C_EFAIL);
		berth_creds_free(cr);
	}
}

static void test_key_and_default_path(void)
{
	char buf[512];

	berth_creds_key("docker.io", buf, sizeof buf);
	CHECK_STR(buf, "https://index.docker.io/v1/");
	berth_creds_key("index.docker.io", buf, sizeof buf);
	CHECK_STR(buf, "https://index.docker.io/v1/");
	berth_creds_key("127.0.0.1:5000", buf, sizeof buf);
	CHECK_STR(buf, "127.0.0.1:5000");
	setenv("DOCKER_CONFIG", "/x/y", 1);
	CHECK_EQ_INT(berth_creds_default_path(buf, sizeof buf), BERTH_C_OK);
	CHECK_STR(buf, "/x/y/config.json");
	unsetenv("DOCKER_CONFIG");
	setenv("HOME", "/home/z", 1);
	CHECK_EQ_INT(berth_creds_default_path(buf, sizeof buf), BERTH_C_OK);
	CHECK_STR(buf, "/home/z/.docker/config.json");
}

int main(void)
{
	char cmd[300];
	int rc;

	snprintf(dir, sizeof dir, "/tmp/berth-creds-XXXXXX");
	if (!mkdtemp(dir)) return 1;
	T_RUN(test_base64_vectors);
	T_RUN(test_roundtrip_keeps_unknown_keys);
	T_RUN(test_host_matching_and_remove);
	T_RUN(test_key_and_default_path);
	rc = T_DONE("test_client_creds");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) rc = 1;
	return rc;
}

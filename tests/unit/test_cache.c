/* test_cache.c — the response cache's memory rules: a key is kept on its second miss, the byte
 * bound holds, and entries of an older generation are freed once a newer one is seen. (Hits
 * need a libmicrohttpd connection: the e2e suite covers them.) */
#include <stdio.h>
#include <string.h>

#include "../../src/http/cache.h"
#include "t.h"

#define OVERHEAD 1024 /* cache.c's ENTRY_OVERHEAD */

static struct MHD_Response *resp(void)
{
	return MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
}

static size_t key(char *buf, size_t len, int i)
{
	char ref[32];
	snprintf(ref, sizeof ref, "t%06d", i);
	return berth_rcache_key(buf, len, 'm', "library/app", ref);
}

static void test_admitted_on_second_miss(void)
{
	struct berth_rcache *c = berth_rcache_new(64, 4096, 1 << 20);
	char k[128];
	size_t kl = key(k, sizeof k, 1);
	CHECK(c != NULL);
	berth_rcache_put(c, k, kl, 1, 200, resp(), 100);
	CHECK_EQ_INT(berth_rcache_bytes(c), 0);
	berth_rcache_put(c, k, kl, 1, 200, resp(), 100);
	CHECK_EQ_INT(berth_rcache_bytes(c), 100 + kl + OVERHEAD);
	berth_rcache_free(c);
}

static void test_one_off_keys_cost_nothing(void)
{
	struct berth_rcache *c = berth_rcache_new(1024, 4096, 1 << 20);
	char k[128];
	for (int i = 0; i < 2000; i++) berth_rcache_put(c, k, key(k, sizeof k, i), 1, 200, resp(), 0);
	CHECK_EQ_INT(berth_rcache_bytes(c), 0);
	berth_rcache_free(c);
}

static void test_byte_bound(void)
{
	size_t bound = 8 * (4096 + 64 + OVERHEAD);
	struct berth_rcache *c = berth_rcache_new(1024, 4096, bound);
	char k[128];
	for (int i = 0; i < 100; i++) {
		size_t kl = key(k, sizeof k, i);
		berth_rcache_put(c, k, kl, 1, 200, resp(), 4096);
		berth_rcache_put(c, k, kl, 1, 200, resp(), 4096);
		CHECK(berth_rcache_bytes(c) <= bound);
	}
	CHECK(berth_rcache_bytes(c) > 0);
	/* Bodies over max_body are never kept. */
	berth_rcache_free(c);
	c = berth_rcache_new(16, 4096, bound);
	for (int n = 0; n < 2; n++) berth_rcache_put(c, k, key(k, sizeof k, 1), 1, 200, resp(), 4097);
	CHECK_EQ_INT(berth_rcache_bytes(c), 0);
	berth_rcache_free(c);
}

static void test_older_generation_freed(void)
{
	struct berth_rcache *c = berth_rcache_new(64, 4096, 1 << 20);
	char k[128];
	size_t kl;
	for (int i = 0; i < 10; i++) {
		kl = key(k, sizeof k, i);
		berth_rcache_put(c, k, kl, 1, 200, resp(), 10);
		berth_rcache_put(c, k, kl, 1, 200, resp(), 10);
	}
	CHECK(berth_rcache_bytes(c) > 0);
	/* A put of generation 2 frees every generation-1 entry, even of other keys... */
	kl = key(k, sizeof k, 100);
	berth_rcache_put(c, k, kl, 2, 200, resp(), 10);
	CHECK_EQ_INT(berth_rcache_bytes(c), 0);
	/* ...and a late put of generation 1 is not kept. */
	kl = key(k, sizeof k, 1);
	berth_rcache_put(c, k, kl, 1, 200, resp(), 10);
	berth_rcache_put(c, k, kl, 1, 200, resp(), 10);
	CHECK_EQ_INT(berth_rcache_bytes(c), 0);
	berth_rcache_free(c);
}

int main(void)
{
	T_RUN(test_admitted_on_second_miss);
	T_RUN(test_one_off_keys_cost_nothing);
	T_RUN(test_byte_bound);
	T_RUN(test_older_generation_freed);
	return T_DONE("unit-cache");
}

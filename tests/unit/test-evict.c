/* Unit tests: eviction order: unused prefetches, then cold before hot, no duplicates. */
#include <glib.h>

#include "aheadfs/evict.h"

#define N 200

struct fixture {
	struct blockmap *present, *referenced, *ahead[2];
};

static void setup(struct fixture *f)
{
	f->present = blockmap_new(N);
	f->referenced = blockmap_new(N);
	f->ahead[0] = blockmap_new(N);
	f->ahead[1] = blockmap_new(N);
	for (uint64_t b = 0; b < 100; b++)
		blockmap_set(f->present, b);
}

static void teardown(struct fixture *f)
{
	blockmap_free(f->present);
	blockmap_free(f->referenced);
	blockmap_free(f->ahead[0]);
	blockmap_free(f->ahead[1]);
}

static void test_unused_prefetch_first(void)
{
	struct fixture f;
	uint64_t hand = 0, out[10];
	size_t unused, n;

	setup(&f);
	blockmap_set(f.ahead[1], 70);
	blockmap_set(f.ahead[0], 5);
	blockmap_set(f.ahead[0], 150); /* not present: must not be chosen */
	{
		struct evict_maps m = {f.present, f.referenced, f.ahead, 2};

		n = evict_pick(&m, &hand, 4, out, &unused);
	}
	g_assert_cmpuint(n, ==, 4);
	g_assert_cmpuint(unused, ==, 2);
	g_assert_cmpuint(out[0], ==, 5);
	g_assert_cmpuint(out[1], ==, 70);
	g_assert_cmpuint(out[2], ==, 0); /* then the clock, from the hand */
	g_assert_cmpuint(out[3], ==, 1);
	teardown(&f);
}

static void test_hot_kept(void)
{
	struct fixture f;
	uint64_t hand = 0, out[100];
	size_t unused, n;

	setup(&f);
	for (uint64_t b = 0; b < 100; b += 2)
		blockmap_set(f.referenced, b); /* even blocks are hot */
	{
		struct evict_maps m = {f.present, f.referenced, f.ahead, 2};

		n = evict_pick(&m, &hand, 50, out, &unused);
	}
	g_assert_cmpuint(n, ==, 50);
	for (size_t i = 0; i < n; i++)
		g_assert_cmpuint(out[i] % 2, ==, 1);
	teardown(&f);
}

static void test_no_duplicates(void)
{
	struct fixture f;
	uint64_t hand = 37, out[300];
	size_t unused, n;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);

	setup(&f);
	blockmap_set(f.ahead[0], 40);
	for (uint64_t b = 0; b < 100; b += 3)
		blockmap_set(f.referenced, b);
	{
		struct evict_maps m = {f.present, f.referenced, f.ahead, 2};

		n = evict_pick(&m, &hand, 300, out, &unused);
	}
	g_assert_cmpuint(n, <=, 100);
	g_assert_cmpuint(n, >=, 60);
	for (size_t i = 0; i < n; i++) {
		g_assert_true(blockmap_test(f.present, out[i]));
		g_assert_false(g_hash_table_contains(seen, GSIZE_TO_POINTER(out[i] + 1)));
		g_hash_table_add(seen, GSIZE_TO_POINTER(out[i] + 1));
	}
	teardown(&f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/evict/unused-prefetch-first", test_unused_prefetch_first);
	g_test_add_func("/evict/hot-kept", test_hot_kept);
	g_test_add_func("/evict/no-duplicates", test_no_duplicates);
	return g_test_run();
}

/*
 * Unit tests: the heat map: decay, floor, merge rule, memory cap, serialise/parse round
 * trip, corrupt input rejected; and its cost on a 100 GiB image (printed, not asserted).
 */
#include <glib.h>
#include <string.h>
#include <time.h>

#include "aheadfs/checksum.h"
#include "aheadfs/heat.h"

#define S ((uint64_t)G_USEC_PER_SEC)
#define T0 ((uint64_t)1000 * S)

/* CPU time of this thread, us: the figures should not depend on the machine's load. */
static gint64 cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static struct heat *new_heat(uint64_t nblocks, uint32_t max_entries)
{
	struct heat_params p = {
	    .nblocks = nblocks, .half_life_us = 10 * S, .floor = 0.01f, .max_entries = max_entries};
	GError *error = NULL;
	struct heat *h = heat_new(&p, &error);

	g_assert_no_error(error);
	return h;
}

static void merge1(struct heat *h, uint64_t now, uint64_t block, float p)
{
	struct model_prediction pred = {.block = block, .probability = p, .eta_us = now};

	heat_merge(h, now, &pred, 1);
}

static void test_decay_and_merge(void)
{
	struct heat *h = new_heat(1000, 0);

	merge1(h, T0, 7, 0.8f);
	g_assert_cmpfloat_with_epsilon(heat_get(h, 7, T0), 0.8, 1e-6);
	/* One half-life later: half. */
	g_assert_cmpfloat_with_epsilon(heat_get(h, 7, T0 + 10 * S), 0.4, 1e-5);
	/* A lower prediction does not lower the (decayed) heat... */
	merge1(h, T0 + 10 * S, 7, 0.3f);
	g_assert_cmpfloat_with_epsilon(heat_get(h, 7, T0 + 10 * S), 0.4, 1e-5);
	/* ...a higher one raises it. */
	merge1(h, T0 + 20 * S, 7, 0.5f);
	g_assert_cmpfloat_with_epsilon(heat_get(h, 7, T0 + 20 * S), 0.5, 1e-5);
	g_assert_cmpfloat(heat_get(h, 8, T0 + 20 * S), ==, 0.0);
	/* Out of the image: ignored. */
	merge1(h, T0 + 20 * S, 1000, 0.9f);
	g_assert_cmpuint(heat_count(h), ==, 1);
	heat_free(h);
}

static void test_floor(void)
{
	struct heat *h = new_heat(1000, 0);

	merge1(h, T0, 1, 0.005f); /* under the floor: never kept */
	g_assert_cmpuint(heat_count(h), ==, 0);
	merge1(h, T0, 2, 0.04f);
	/* 0.04 -> 0.02 -> 0.01 -> 0.005: gone after three half-lives. */
	g_assert_cmpfloat(heat_get(h, 2, T0 + 19 * S), >, 0.0);
	g_assert_cmpfloat(heat_get(h, 2, T0 + 21 * S), ==, 0.0);
	heat_free(h);
}

/* Long runs rescale the stored values: results must not drift. */
static void test_rebase(void)
{
	struct heat *h = new_heat(1000, 0);

	merge1(h, T0, 3, 1.0f);
	for (uint64_t t = T0; t < T0 + 2000 * S; t += 5 * S)
		merge1(h, t, 3, 0.9f);
	g_assert_cmpfloat_with_epsilon(heat_get(h, 3, T0 + 1995 * S), 0.9, 1e-5);
	g_assert_cmpfloat(heat_get(h, 3, T0 + 3000 * S), ==, 0.0);
	heat_free(h);
}

/* Past max_entries the coldest go, the hottest stay, memory stays bounded. */
static void test_cap(void)
{
	struct heat *h = new_heat(1u << 20, 1024);
	size_t mem0 = heat_memory_bytes(h);

	for (uint64_t b = 0; b < 100000; b++)
		merge1(h, T0, b, b == 77777 ? 1.0f : 0.02f + (float)(b % 100) / 200.0f);
	g_assert_cmpuint(heat_count(h), <=, 1024);
	g_assert_cmpuint(heat_memory_bytes(h), <=, mem0 * 2);
	g_assert_cmpfloat(heat_get(h, 77777, T0), ==, 1.0);
	heat_free(h);
}

static void test_round_trip(void)
{
	struct heat *h = new_heat(5000, 0);
	struct blockmap *cached = blockmap_new(5000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HeatSnapshot) s = NULL;
	gsize len;
	const void *data;

	merge1(h, T0, 0, 1.0f);
	merge1(h, T0, 10, 0.5f);
	merge1(h, T0, 4999, 0.25f);
	merge1(h, T0, 300, 0.015f); /* under the floor by T0 + 10 s */
	for (uint64_t b = 100; b < 200; b++)
		blockmap_set(cached, b);
	blockmap_set(cached, 4999);
	bytes = heat_serialise(h, T0 + 10 * S, 1700000000, 65536, cached);
	data = g_bytes_get_data(bytes, &len);
	s = heat_parse(data, len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(s->block_size, ==, 65536);
	g_assert_cmpuint(s->nblocks, ==, 5000);
	g_assert_cmpint(s->time_s, ==, 1700000000);
	g_assert_cmpuint(s->half_life_ms, ==, 10000);
	g_assert_cmpfloat_with_epsilon(s->floor, 0.01, 1e-4);
	g_assert_cmpuint(s->n_hot, ==, 3);
	g_assert_cmpuint(s->hot[0].block, ==, 0);
	g_assert_cmpfloat_with_epsilon(s->hot[0].probability, 0.5, 1e-4);
	g_assert_cmpuint(s->hot[1].block, ==, 10);
	g_assert_cmpfloat_with_epsilon(s->hot[1].probability, 0.25, 1e-4);
	g_assert_cmpuint(s->hot[2].block, ==, 4999);
	g_assert_cmpuint(s->n_cached, ==, 2);
	g_assert_cmpuint(s->cached[0].first, ==, 100);
	g_assert_cmpuint(s->cached[0].count, ==, 100);
	g_assert_cmpuint(s->cached[1].first, ==, 4999);
	g_assert_cmpuint(s->cached[1].count, ==, 1);
	g_assert_cmpuint(s->cached_blocks, ==, 101);
	blockmap_free(cached);
	heat_free(h);
}

/* Every single-byte change and every truncation is rejected, never trusted. */
static void test_corrupt(void)
{
	struct heat *h = new_heat(5000, 0);
	struct blockmap *cached = blockmap_new(5000);
	g_autoptr(GBytes) bytes = NULL;
	gsize len;
	const uint8_t *data;
	g_autofree uint8_t *copy = NULL;
	GError *error = NULL;
	HeatSnapshot *s;

	for (uint64_t b = 0; b < 50; b++)
		merge1(h, T0, b * 37, 0.5f);
	blockmap_set(cached, 3);
	bytes = heat_serialise(h, T0, 0, 4096, cached);
	data = g_bytes_get_data(bytes, &len);
	copy = g_memdup2(data, len);
	for (gsize i = 0; i < len; i++) {
		copy[i] ^= 0x10;
		s = heat_parse(copy, len, &error);
		g_assert_null(s);
		g_assert_true(error->domain == HEAT_ERROR);
		g_clear_error(&error);
		copy[i] ^= 0x10;
	}
	for (gsize n = 0; n < len; n++) {
		g_assert_null(heat_parse(data, n, &error));
		g_clear_error(&error);
	}
	/* A well-checksummed file that lies: a block past the end. */
	copy[16] = 10; /* nblocks 5000 -> 10 (le: 0x88 0x13 -> 10 0x13...) */
	memset(copy + 17, 0, 7);
	{
		uint32_t crc = checksum_crc32c(0, copy, len - 4);

		for (int i = 0; i < 4; i++)
			copy[len - 4 + i] = (uint8_t)(crc >> (8 * i));
	}
	g_assert_null(heat_parse(copy, len, &error));
	g_assert_error(error, HEAT_ERROR, HEAT_ERROR_CORRUPT);
	g_clear_error(&error);
	/* Another version. */
	copy[8] = 2;
	g_assert_null(heat_parse(copy, len, &error));
	g_assert_error(error, HEAT_ERROR, HEAT_ERROR_VERSION);
	g_clear_error(&error);
	blockmap_free(cached);
	heat_free(h);
}

/*
 * The cost on a 100 GiB image (1,638,400 blocks of 64 KiB): a hot set of 20,000 blocks
 * (a boot and then some), half the image cached in 10,000 fragments.
 */
static void test_cost_100g(void)
{
	const uint64_t nblocks = (100ull << 30) / 65536;
	struct heat *h = new_heat(nblocks, 0);
	struct blockmap *cached = blockmap_new(nblocks);
	struct model_prediction preds[1024];
	g_autoptr(GBytes) bytes = NULL;
	gint64 t0, t1, t2;
	uint64_t rng = 88172645463325252ull;

	t0 = cpu_us();
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 1000; i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			preds[i] = (struct model_prediction){
			    .block = rng % nblocks, .probability = 0.05f + (float)(rng % 90) / 100};
		}
		heat_merge(h, T0 + (uint64_t)round * 20000, preds, 1000);
	}
	t1 = cpu_us();
	for (uint64_t f = 0; f < 10000; f++)
		for (uint64_t b = f * (nblocks / 10000);
		     b < f * (nblocks / 10000) + nblocks / 20000; b++)
			blockmap_set(cached, b);
	t2 = cpu_us();
	bytes = heat_serialise(h, T0 + S, 0, 65536, cached);
	g_test_message("100 GiB image (CPU time): %zu hot entries, state %zu bytes; merge of 1000 "
		       "predictions %.1f us; serialise %.2f ms -> %zu bytes",
		       heat_count(h), heat_memory_bytes(h), (double)(t1 - t0) / 20.0,
		       (double)(cpu_us() - t2) / 1000.0, g_bytes_get_size(bytes));
	g_assert_cmpuint(heat_count(h), >, 19000);
	g_assert_cmpuint(heat_count(h), <=, 20000);
	blockmap_free(cached);
	heat_free(h);
}

/* The worst case: the heat at its cap, every other block cached. */
static void test_cost_100g_worst(void)
{
	const uint64_t nblocks = (100ull << 30) / 65536;
	struct heat *h = new_heat(nblocks, 0);
	struct blockmap *cached = blockmap_new(nblocks);
	struct model_prediction preds[1024];
	g_autoptr(GBytes) bytes = NULL;
	gint64 t0;

	for (uint64_t b = 0; b < 200 * 1024; b += 1024) {
		for (int i = 0; i < 1024; i++)
			preds[i] = (struct model_prediction){.block = (b + (uint64_t)i) * 7 % nblocks,
							     .probability = 0.5f};
		heat_merge(h, T0, preds, 1024);
	}
	for (uint64_t b = 0; b < nblocks; b += 2)
		blockmap_set(cached, b);
	t0 = cpu_us();
	bytes = heat_serialise(h, T0, 0, 65536, cached);
	g_test_message("100 GiB image, worst case (CPU time): %zu hot entries, state %zu bytes; serialise "
		       "%.2f ms -> %zu bytes",
		       heat_count(h), heat_memory_bytes(h),
		       (double)(cpu_us() - t0) / 1000.0, g_bytes_get_size(bytes));
	g_assert_cmpuint(heat_count(h), <=, HEAT_DEFAULT_MAX_ENTRIES);
	blockmap_free(cached);
	heat_free(h);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/heat/decay-and-merge", test_decay_and_merge);
	g_test_add_func("/heat/floor", test_floor);
	g_test_add_func("/heat/rebase", test_rebase);
	g_test_add_func("/heat/cap", test_cap);
	g_test_add_func("/heat/round-trip", test_round_trip);
	g_test_add_func("/heat/corrupt", test_corrupt);
	g_test_add_func("/heat/cost-100g", test_cost_100g);
	g_test_add_func("/heat/cost-100g-worst", test_cost_100g_worst);
	return g_test_run();
}

/* Unit tests: byte range <-> block arithmetic, checked against a brute-force oracle. */
#include <glib.h>

#include "aheadfs/range.h"

static void test_clamp(void)
{
	g_assert_cmpuint(range_clamp(100, 0, 10), ==, 10);
	g_assert_cmpuint(range_clamp(100, 95, 10), ==, 5);
	g_assert_cmpuint(range_clamp(100, 100, 10), ==, 0);
	g_assert_cmpuint(range_clamp(100, 200, 10), ==, 0);
	g_assert_cmpuint(range_clamp(100, 0, UINT64_MAX), ==, 100);
	g_assert_cmpuint(range_clamp(0, 0, 1), ==, 0);
}

static void test_block_count(void)
{
	g_assert_cmpuint(range_block_count(0, 16), ==, 0);
	g_assert_cmpuint(range_block_count(1, 16), ==, 1);
	g_assert_cmpuint(range_block_count(65536, 16), ==, 1);
	g_assert_cmpuint(range_block_count(65537, 16), ==, 2);
	g_assert_cmpuint(range_block_count(UINT64_C(100) << 30, 16), ==, UINT64_C(1638400));
}

/* Every (offset, length) in a small image against the obvious per-byte answer. */
static void test_blocks_exhaustive(void)
{
	const unsigned shift = 3; /* 8-byte blocks */
	const uint64_t size = 37;

	for (uint64_t off = 0; off < size + 10; off++) {
		for (uint64_t len = 0; len < size + 10; len++) {
			struct block_span s = range_blocks(size, shift, off, len);
			uint64_t first = UINT64_MAX, last = 0, n = 0;

			for (uint64_t byte = off; byte < off + len && byte < size; byte++) {
				first = MIN(first, byte >> shift);
				last = MAX(last, byte >> shift);
				n++;
			}
			if (n == 0) {
				g_assert_cmpuint(s.count, ==, 0);
				continue;
			}
			g_assert_cmpuint(s.first, ==, first);
			g_assert_cmpuint(s.count, ==, last - first + 1);
		}
	}
}

static void test_span_bytes(void)
{
	g_assert_cmpuint(range_span_bytes(100000, 16, 0, 1), ==, 65536);
	g_assert_cmpuint(range_span_bytes(100000, 16, 1, 1), ==, 100000 - 65536);
	g_assert_cmpuint(range_span_bytes(100000, 16, 0, 2), ==, 100000);
	g_assert_cmpuint(range_span_bytes(100000, 16, 2, 1), ==, 0);
	g_assert_cmpuint(range_span_bytes(100000, 16, 0, 0), ==, 0);
}

static void test_log2(void)
{
	unsigned s = 99;

	g_assert_true(range_log2(4096, &s));
	g_assert_cmpuint(s, ==, 12);
	g_assert_true(range_log2(1, &s));
	g_assert_cmpuint(s, ==, 0);
	g_assert_false(range_log2(0, &s));
	g_assert_false(range_log2(3000, &s));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/range/clamp", test_clamp);
	g_test_add_func("/range/block-count", test_block_count);
	g_test_add_func("/range/blocks-exhaustive", test_blocks_exhaustive);
	g_test_add_func("/range/span-bytes", test_span_bytes);
	g_test_add_func("/range/log2", test_log2);
	return g_test_run();
}

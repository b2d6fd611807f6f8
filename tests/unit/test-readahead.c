/* Unit tests: the read path's readahead policy (readahead.c). 64 KiB blocks throughout. */
#include <glib.h>

#include "aheadfs/readahead.h"

#define SHIFT 16
#define NBLOCKS 100000

/* Reads [first, first + n); returns the blocks requested, their start in *from. */
static uint64_t rd(struct readahead *ra, uint64_t first, uint64_t n, uint64_t *from)
{
	*from = UINT64_MAX;
	return readahead_follow(ra, first, first + n, from);
}

static void test_stream_starts_on_second_read(void)
{
	struct readahead ra;
	uint64_t from, n;

	readahead_init(&ra, NBLOCKS, SHIFT);
	g_assert_cmpuint(rd(&ra, 100, 2, &from), ==, 0); /* one read is not a stream */
	g_assert_false(readahead_streaming(&ra));
	n = rd(&ra, 102, 2, &from); /* the second, where the first ended: 512 KiB ahead */
	g_assert_true(readahead_streaming(&ra));
	g_assert_cmpuint(from, ==, 104);
	g_assert_cmpuint(n, ==, 8);
	/* a read elsewhere ends it */
	g_assert_cmpuint(rd(&ra, 5000, 2, &from), ==, 0);
	g_assert_false(readahead_streaming(&ra));
	/* block 0 never continues a stream (nothing ended there) */
	readahead_init(&ra, NBLOCKS, SHIFT);
	g_assert_cmpuint(rd(&ra, 0, 2, &from), ==, 0);
}

static void test_window_grows_at_refills_only(void)
{
	struct readahead ra;
	uint64_t from, n, requested_to = 0, read_to = 0, window_was = 0;

	readahead_init(&ra, NBLOCKS, SHIFT);
	rd(&ra, 0 + 10, 1, &from);
	/* A long stream of 1-block reads: the window doubles at each refill up to 32 MiB,
	 * requests are contiguous, and never run more than a window past the reader. */
	for (uint64_t b = 11; b < 11 + 2000; b++) {
		n = rd(&ra, b, 1, &from);
		read_to = b + 1;
		if (n == 0)
			continue;
		g_assert_cmpuint(from, ==, requested_to ? requested_to : 12);
		requested_to = from + n;
		g_assert_cmpuint(ra.window, >=, window_was);
		g_assert_cmpuint(ra.window, <=, MAX(2 * window_was, 8));
		window_was = ra.window;
		g_assert_cmpuint(requested_to - read_to, <=, ra.window);
	}
	g_assert_cmpuint(ra.window, ==, 512); /* 32 MiB of 64 KiB blocks */
	/* five reads of a small file open only the first window (the old rule: 16 MiB) */
	readahead_init(&ra, NBLOCKS, SHIFT);
	for (uint64_t b = 500; b < 505; b++)
		rd(&ra, b, 1, &from);
	g_assert_cmpuint(ra.window, <=, 16);
}

static void test_request_size(void)
{
	struct readahead ra;
	uint64_t from, n;

	/* No stream, a new one, a short one: 2 MiB requests (32 blocks). */
	readahead_init(&ra, NBLOCKS, SHIFT);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 32);
	for (uint64_t b = 500; b < 520; b++)
		rd(&ra, b, 2, &from);
	g_assert_cmpuint(ra.window, <=, 128);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 32);
	/* Random reads never open a window, so never get larger requests. */
	for (uint64_t i = 0; i < 1000; i++) {
		rd(&ra, (i * 7919) % NBLOCKS, 1, &from);
		g_assert_cmpuint(readahead_request_blocks(&ra), ==, 32);
	}
	/* A long stream on a link of unknown or small bandwidth-delay product: 2 MiB pieces
	 * all along, and a refill is whole pieces (the read that crossed the mark does not
	 * add a small one). */
	readahead_init(&ra, NBLOCKS, SHIFT);
	readahead_link(&ra, 16, 6); /* 1 MiB in flight: six 2 MiB requests hold it twice */
	for (uint64_t b = 1000; b < 3000; b += 2) {
		n = rd(&ra, b, 2, &from);
		g_assert_cmpuint(readahead_request_blocks(&ra), ==, 32);
		if (n > 32)
			g_assert_cmpuint(n % 32, ==, 0);
	}
	g_assert_cmpuint(ra.window, ==, 512);
	/* A link that holds 24 MiB (50 ms at 4 Gbit/s): six 8 MiB requests hold it twice,
	 * a quarter of the window at the 32 MiB cap, so that a refill (half the window) is
	 * two requests. */
	readahead_init(&ra, NBLOCKS, SHIFT);
	readahead_link(&ra, 384, 6);
	for (uint64_t b = 1000, was = 0; b < 3000; b += 2, was = ra.window) {
		n = rd(&ra, b, 2, &from);
		g_assert_cmpuint(readahead_request_blocks(&ra), ==, MAX(ra.window / 4, 32));
		if (n > 0 && was == 512)
			g_assert_cmpuint(n, ==, 2 * readahead_request_blocks(&ra));
		if (n > readahead_request_blocks(&ra))
			g_assert_cmpuint(n % readahead_request_blocks(&ra), ==, 0);
	}
	g_assert_cmpuint(ra.window, ==, 512);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 128);
	/* Half that: 4 MiB pieces (six hold 24 MiB); one slot: 8 MiB, the cap. */
	readahead_link(&ra, 192, 6);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 64);
	readahead_link(&ra, 96, 1);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 128);
	/* It ends: back to 2 MiB. */
	rd(&ra, 90000, 2, &from);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 32);
	/* Large blocks: never less than one block. */
	readahead_init(&ra, 100, 22);
	g_assert_cmpuint(readahead_request_blocks(&ra), ==, 1);
}

static void test_out_of_order_within_window(void)
{
	struct readahead ra;
	uint64_t from;

	readahead_init(&ra, NBLOCKS, SHIFT);
	rd(&ra, 100, 1, &from);
	rd(&ra, 101, 1, &from);
	g_assert_true(readahead_streaming(&ra));
	/* the kernel's readahead sends reads on several threads: 104 before 102 */
	rd(&ra, 104, 1, &from);
	g_assert_true(readahead_streaming(&ra));
	rd(&ra, 102, 1, &from);
	g_assert_true(readahead_streaming(&ra));
}

static void test_image_end(void)
{
	struct readahead ra;
	uint64_t from, n;

	readahead_init(&ra, 20, SHIFT);
	rd(&ra, 10, 2, &from);
	n = rd(&ra, 12, 2, &from);
	g_assert_cmpuint(from, ==, 14);
	g_assert_cmpuint(n, ==, 6); /* clipped to the image */
	g_assert_cmpuint(rd(&ra, 14, 6, &from), ==, 0);
}

static void test_ahead_of_stream(void)
{
	struct readahead ra;
	uint64_t from;

	readahead_init(&ra, NBLOCKS, SHIFT);
	g_assert_false(readahead_ahead(&ra, 101));
	rd(&ra, 100, 1, &from);
	g_assert_false(readahead_ahead(&ra, 101)); /* one read is not a stream */
	rd(&ra, 101, 1, &from);
	/* A stream: the blocks after it, for two windows at the cap (1024 blocks), are
	 * readahead's; the one it read, those behind it and those further on are not. */
	g_assert_true(readahead_ahead(&ra, 102));
	g_assert_true(readahead_ahead(&ra, 102 + 1023));
	g_assert_false(readahead_ahead(&ra, 102 + 1024));
	g_assert_false(readahead_ahead(&ra, 101));
	g_assert_false(readahead_ahead(&ra, 5));
	/* It moves with the reader, and ends with the stream. */
	for (uint64_t b = 102; b < 400; b++)
		rd(&ra, b, 1, &from);
	g_assert_false(readahead_ahead(&ra, 300));
	g_assert_true(readahead_ahead(&ra, 400 + 1000));
	rd(&ra, 20000, 1, &from);
	g_assert_false(readahead_ahead(&ra, 20001));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/readahead/stream-starts-on-second-read", test_stream_starts_on_second_read);
	g_test_add_func("/readahead/window-grows-at-refills-only", test_window_grows_at_refills_only);
	g_test_add_func("/readahead/request-size", test_request_size);
	g_test_add_func("/readahead/out-of-order-within-window", test_out_of_order_within_window);
	g_test_add_func("/readahead/image-end", test_image_end);
	g_test_add_func("/readahead/ahead-of-stream", test_ahead_of_stream);
	return g_test_run();
}

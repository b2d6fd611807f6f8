/*
 * readahead: the read path's own readahead, one level below the kernel's.
 *
 * A reader that streams (each read starts where the previous one ended) gets the blocks
 * after it requested before it asks, because every miss costs a round trip and one
 * request at a time cannot fill a link:
 *
 *        reader           requested ahead (prefetch priority, several requests)
 *   ...[########]|[========|========|========]
 *                ^expect                      ^done
 *                <------------ window -------->
 *
 * The window starts at RA_START_BYTES on the second read in a row; a read elsewhere drops
 * it. It is refilled when the reader has consumed half of it, so a stream costs few large
 * requests instead of one per read, and it doubles (up to RA_MAX_BYTES) only at a refill,
 * as the kernel's grows only when the reader reaches its marker: what is requested and
 * never read stays within about one window of what the stream did read. (Doubling on
 * every read reached 16 MiB after five reads of a small file: a first VM boot fetched
 * 1,832 readahead blocks and used 365.) A running stream also takes reads a little
 * behind its head or inside what it already requested: the kernel's own readahead sends a
 * stream's reads on several FUSE threads at once, and they arrive out of order.
 *
 * The window is requested in pieces of RA_REQUEST_BYTES (2 MiB), larger only where the
 * link needs them: the prefetch slots (six of the default eight connections) must hold
 * twice its bandwidth-delay product (link_bdp_bytes()), or a long stream on a distant,
 * fast link is held to six pieces per round trip. Then a piece doubles, up to a quarter
 * of the window (8 MiB at the 32 MiB cap). At 50 ms and 2 Gbit/s (aheadfs-origin) a
 * cold stream read 195-209 MB/s in 2 MiB pieces, 219-233 so sized, 214-249 in 8 MiB
 * (after its first 32 MiB; six rounds each).
 *
 * Small pieces are the origin's concern too. radosgw here (cold stream, the first 256
 * MiB, -o direct_io) spent 0.59-0.87 s of CPU serving 2 MiB pieces against 1.23-1.47 s
 * for 8 MiB pieces (one GET of it: 1.18-1.73 s), and the stream took 0.57-0.76 s against
 * 1.11-1.34 s (curl: 1.03-1.40 s). Until session 12 every long stream got quarter-window
 * pieces, to pay the origin's first byte fewer times: right on a host where radosgw
 * cost more per request than per byte (RESULTS-S3.md); from nginx 2 MiB pieces are no
 * different (707-719 MB/s against 664-739). A refill is cut to whole pieces
 * (whole_pieces()).
 */
#include "aheadfs/readahead.h"

#include <glib.h>
#include <stdbool.h>

#define RA_START_BYTES (UINT64_C(512) << 10)
#define RA_MAX_BYTES (UINT64_C(32) << 20)
#define RA_REQUEST_BYTES (UINT64_C(2) << 20)

void readahead_init(struct readahead *ra, uint64_t nblocks, unsigned shift)
{
	*ra = (struct readahead){
	    .start = MAX(RA_START_BYTES >> shift, UINT64_C(1)),
	    .max = MAX(RA_MAX_BYTES >> shift, UINT64_C(1)),
	    .request = MAX(RA_REQUEST_BYTES >> shift, UINT64_C(1)),
	    .nblocks = nblocks,
	    .link_slots = 1,
	};
}

void readahead_link(struct readahead *ra, uint64_t bdp_blocks, unsigned slots)
{
	ra->link_need = 2 * bdp_blocks;
	ra->link_slots = MAX(slots, 1u);
}

/* The size of the pieces a window of `window` blocks is requested in. */
static uint64_t piece_blocks(const struct readahead *ra, uint64_t window)
{
	uint64_t piece = ra->request;

	while (piece * ra->link_slots < ra->link_need && piece * 2 <= window / 4)
		piece *= 2;
	return piece;
}

/*
 * Where a refill of [from, to) should end so that it is a whole number of pieces: the
 * last multiple of `piece` past `from` (a refill of one piece or less stays as it is).
 * A refill comes when the reader has consumed half the window, so it is half a window
 * plus the read that crossed the mark: cut into pieces, that read's worth (1 MiB of dd
 * bs=1M) was a third request per refill, each paying the origin's first byte (10-70 ms
 * from radosgw with four requests in flight) for an eighth of the bytes. Cut back, it
 * is requested with the next refill. Once the window is four pieces or more (8 MiB and
 * up) it still reaches three quarters of itself past the reader, so the next refill
 * comes no sooner; it never reaches more than a window.
 */
static uint64_t whole_pieces(uint64_t from, uint64_t to, uint64_t piece)
{
	uint64_t n = to > from ? to - from : 0;

	if (n <= piece)
		return to;
	return from + n / piece * piece;
}

uint64_t readahead_follow(struct readahead *ra, uint64_t first, uint64_t end, uint64_t *from)
{
	uint64_t behind = MAX(ra->window, ra->start);
	bool streaming = ra->window == 0 ? first <= ra->expect && ra->expect <= end && first > 0
					 : first + behind >= ra->expect && first <= ra->done;
	uint64_t window, to;

	if (!streaming) {
		__atomic_store_n(&ra->window, 0, __ATOMIC_RELAXED);
		ra->done = end;
		ra->expect = end;
		return 0;
	}
	ra->expect = MAX(ra->expect, end);
	end = ra->expect;
	if (ra->done < end)
		ra->done = end;
	window = ra->window;
	if (window == 0)
		window = ra->start; /* a new stream */
	else if (ra->done >= MIN(end + window / 2, ra->nblocks))
		return 0; /* half the window still ahead: requests stay large */
	else
		window = MIN(window * 2, ra->max); /* it used half of it: a real stream, grow */
	__atomic_store_n(&ra->window, window, __ATOMIC_RELAXED);
	to = MIN(whole_pieces(ra->done, end + window, piece_blocks(ra, window)),
		 ra->nblocks);
	*from = ra->done;
	ra->done = MAX(ra->done, to);
	return to > *from ? to - *from : 0;
}

uint64_t readahead_request_blocks(const struct readahead *ra)
{
	return piece_blocks(ra, __atomic_load_n(&ra->window, __ATOMIC_RELAXED));
}

bool readahead_ahead(const struct readahead *ra, uint64_t b)
{
	return readahead_streaming(ra) && b >= ra->expect && b - ra->expect < 2 * ra->max;
}

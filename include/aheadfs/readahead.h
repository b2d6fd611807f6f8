/*
 * readahead: follow a reader that streams, and say what to request ahead of it.
 *
 * Pure: no I/O, no locks. The read path (image.c) calls it under its image lock and
 * `aheadfsctl replay` calls it in its simulated reader, so the replay measures the
 * readahead the mount does. See readahead.c for the design.
 */
#ifndef AHEADFS_READAHEAD_H
#define AHEADFS_READAHEAD_H

#include <stdbool.h>
#include <stdint.h>

struct readahead {
	uint64_t start;	  /* window of a new stream, blocks */
	uint64_t max;	  /* the window's cap, blocks */
	uint64_t request; /* the smallest piece a window is requested in, blocks */
	uint64_t nblocks; /* the image's end */
	uint64_t expect;  /* block a streaming reader reads next */
	/* blocks kept requested ahead of it; 0: not streaming. Written with an atomic
	 * store, so that a hit path may test it without the caller's lock. */
	uint64_t window;
	uint64_t done; /* everything before this block has been requested */
	/* What the link needs: blocks in flight to keep it full (its bandwidth-delay product,
	 * twice) and requests it may have in flight for them (0: unknown). */
	uint64_t link_need;
	unsigned link_slots;
};

/* A reader that has not read yet, for an image of @nblocks blocks of 1 << @shift bytes. */
void readahead_init(struct readahead *ra, uint64_t nblocks, unsigned shift);

/*
 * A read of blocks [@first, @end) came in. Returns how many blocks to request now,
 * starting at *@from (0: none). The caller requests those that are neither cached nor
 * in flight.
 */
uint64_t readahead_follow(struct readahead *ra, uint64_t first, uint64_t end, uint64_t *from);

/*
 * What the link to the origin holds in flight when it is full (@bdp_blocks: bandwidth
 * times delay, link_bdp_bytes(); 0 while unknown), and how many prefetch requests may be
 * in flight at once (@slots). Sizes the pieces of a long stream (see below).
 */
void readahead_link(struct readahead *ra, uint64_t bdp_blocks, unsigned slots);

/*
 * The size of one readahead request now, in blocks: RA_REQUEST_BYTES (2 MiB), or more
 * where the link needs larger requests to be kept full: the smallest power-of-two
 * multiple of 2 MiB of which the prefetch slots hold twice the bandwidth-delay product,
 * at most a quarter of the window (8 MiB at the cap). Only a long stream gets more than
 * 2 MiB, so it is not held to the mount's demand cap (max_request_bytes).
 */
uint64_t readahead_request_blocks(const struct readahead *ra);

/*
 * Whether block @b lies ahead of a streaming reader, within the two windows at the cap
 * that readahead will request as the reader comes (false while no reader streams).
 * The learner leaves such blocks to readahead: it would fetch them in pieces of its
 * own size, ahead of readahead's larger ones.
 */
bool readahead_ahead(const struct readahead *ra, uint64_t b);

/* Whether a reader streams now (the window is open); safe without the caller's lock. */
static inline int readahead_streaming(const struct readahead *ra)
{
	return __atomic_load_n(&ra->window, __ATOMIC_RELAXED) != 0;
}

#endif /* AHEADFS_READAHEAD_H */

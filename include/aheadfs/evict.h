/*
 * evict: which cached blocks to give up when the cache is over its size limit.
 *
 * Pure policy over bitmaps; the mechanism (holes punched in the cache file, readers kept
 * safe) is in image.c. Order:
 *   1. blocks fetched ahead and never read (prefetches that did not pay off);
 *   2. then CLOCK (second chance) over the rest: a block read since the hand last passed
 *      loses its referenced bit and is kept this round, so cold blocks go before hot.
 * A prefetched block that got read has lost its ahead bit and gained a referenced one:
 * it is kept like a demanded block.
 */
#ifndef AHEADFS_EVICT_H
#define AHEADFS_EVICT_H

#include <stddef.h>
#include <stdint.h>

#include "aheadfs/blockmap.h"

struct evict_maps {
	const struct blockmap *present;
	struct blockmap *referenced; /* cleared as the clock hand passes */
	struct blockmap *const *ahead; /* n_ahead maps of blocks fetched ahead, unread */
	size_t n_ahead;
};

/*
 * Choose up to `want` present blocks into `out` (ascending within each pass), moving the
 * clock hand `*hand`. Returns how many were chosen; `*unused` says how many of those were
 * prefetched and never read.
 */
size_t evict_pick(const struct evict_maps *maps, uint64_t *hand, size_t want, uint64_t *out,
		  size_t *unused);

#endif

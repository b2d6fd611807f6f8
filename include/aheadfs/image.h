/*
 * image: one remote image as the filesystem sees it. It ties the cache (store) to the
 * network (origin): a read waits only for the blocks it needs, and each missing block is
 * fetched once however many readers want it (single flight).
 *
 * Fetch states of a block (the block map bit is authoritative for "present"):
 *
 *   present bit | in inflight table | meaning
 *   ------------+-------------------+---------------------------------------------
 *        0      |        no         | absent: the next reader starts a fetch
 *        0      |        yes        | being fetched, or landed in the fetch's buffer
 *               |                   | and not yet written: readers join that fetch,
 *               |                   | wait until it has landed and read the buffer
 *        1      |        yes        | present, and still in the fetch's buffer for
 *               |                   | readers to come (retained): served from there
 *        1      |        no         | present: served from the cache file
 *
 * The writer sets the bits (after writing the bytes) before the block leaves the inflight
 * table, so a block is never seen as absent while it is being fetched or after.
 */
#ifndef AHEADFS_IMAGE_H
#define AHEADFS_IMAGE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aheadfs/model.h"
#include "aheadfs/origin.h"
#include "aheadfs/prefetch.h"
#include "aheadfs/stats.h"
#include "aheadfs/store.h"

/* Who fetched a block ahead of its reader: the prefetch tiers, plus streaming readahead. */
#define IMAGE_SOURCE_READAHEAD PREFETCH_N_TIERS
#define IMAGE_N_SOURCES (PREFETCH_N_TIERS + 1)
/* The sources that follow predictions (all but background fill, which fetches unread
 * blocks on purpose): what accuracy, coverage and waste judge. A bit per source. */
#define IMAGE_PREDICTION_SOURCES \
	(((1u << IMAGE_N_SOURCES) - 1) & ~(1u << PREFETCH_TIER_BACKGROUND))

struct link;

/* Told about every demand read, on the reading thread; must be quick and not block. */
typedef void (*image_access_fn)(void *opaque, const struct model_event *event);

struct image_config {
	const char *name;
	const char *url;
	const struct origin_info *info; /* copied */
	struct store *store;		/* owned by the image from now on */
	struct origin *origin;		/* shared, not owned */
	uint64_t max_request_bytes;	/* largest demand or model-prefetch range GET (readahead:
					   readahead_request_blocks()) */
	bool readahead;			/* fetch ahead of streaming readers */
	struct link *link;		/* fed with every finished transfer; may be NULL */
	image_access_fn on_access;	/* may be NULL */
	void *on_access_opaque;
};

/* Counters of one image; see stats.h for the update rules. */
struct image_stats {
	uint64_t reads;		/* demand reads served */
	uint64_t read_bytes;	/* bytes returned to readers */
	uint64_t hit_reads;	/* every block was cached on arrival */
	uint64_t miss_reads;	/* at least one block had to be fetched or waited for */
	uint64_t waited_reads;	/* joined a fetch another reader (or prefetch) had started */
	uint64_t errors;	/* reads answered with an error */
	uint64_t fetches;	/* range requests made for demand */
	uint64_t fetched_bytes; /* bytes those requests brought in */
	uint64_t uncached_fetches; /* fetched but could not be cached (cache disk full) */
	uint64_t readahead_fetches; /* range requests made ahead of a streaming reader */
	uint64_t readahead_bytes;
	uint64_t late_reads;	    /* waited for a block a prefetch had in flight */
	uint64_t demand_blocks;	    /* blocks fetched because a reader missed them */
	/* Per source (IMAGE_SOURCE_* / enum prefetch_tier): fetched ahead, and later read. */
	uint64_t ahead_blocks[IMAGE_N_SOURCES];
	uint64_t ahead_bytes[IMAGE_N_SOURCES];
	uint64_t ahead_used_blocks[IMAGE_N_SOURCES];
	uint64_t ahead_inflight_bytes; /* requested ahead, not arrived yet */
	uint64_t bg_inflight_bytes;    /* ... of which by the background fill */
	uint64_t last_miss_us;	       /* monotonic time of the last demand fetch */
	uint64_t evicted_blocks;       /* given back to stay within cache_size */
	uint64_t evicted_unused_blocks; /* of those, prefetched and never read */
	/* Reads that found blocks fetched ahead of them and fetched nothing themselves, and
	 * the read time that saved them: per such read, what a miss costs now less what
	 * the read took (image_count_saved in image.c). */
	uint64_t helped_reads;
	uint64_t saved_us;
	uint64_t miss_cost_us; /* EWMA of what reads that fetched took; 0: none yet */
	struct stats_histogram hit_latency;
	struct stats_histogram miss_latency;
};

/* Where the bytes of a read are: in the cache file, or in memory (fetch buffers). */
struct image_extent {
	int fd;		  /* cache data file, when data is NULL */
	uint64_t offset;  /* in that file */
	size_t length;	  /* bytes to return; 0 at or past EOF */
	const void *data; /* when not NULL: the bytes, valid until image_read_end */
	void *mem;	  /* what keeps data alive: a buffer of its own ... */
	void *hold;	  /* ... or a fetch's; image_read_end lets go of either */
	unsigned epoch;	  /* for image_read_end */
};

#define IMAGE_NO_EPOCH 2u

struct image;

struct image *image_new(const struct image_config *cfg);
/* Start the thread that writes fetched blocks to the cache (after any fork). */
void image_start(struct image *img);
/* Let go of fetched data kept in memory that no reader came for (periodically). */
void image_trim(struct image *img);
/* Flushes and closes the store. No read may be running. */
void image_free(struct image *img);

const char *image_name(const struct image *img);
/* For display: a presigned URL's signature and credential are redacted. */
const char *image_url(const struct image *img);
uint64_t image_size(const struct image *img);
uint32_t image_block_size(const struct image *img);
/* The remote's Last-Modified time, or 0 when unknown. */
time_t image_mtime(const struct image *img);
struct store *image_store(struct image *img);
const struct image_stats *image_stats(const struct image *img);

/*
 * Make the bytes of [offset, offset + size) available and say where they are. Blocks
 * that are missing are fetched (or waited for). Returns 0 or -errno; -EIO when the
 * origin could not deliver (logged once, with URL, offset and reason).
 */
int image_read(struct image *img, uint64_t offset, size_t size, struct image_extent *out);
/* After image_read, success or not, once the extent's bytes have been consumed. */
void image_read_end(struct image *img, const struct image_extent *ext);

/*
 * Give up to `want` cached blocks back (see evict.h for which), punching holes in the
 * cache file. Safe against concurrent readers. Returns the blocks evicted.
 */
uint64_t image_evict(struct image *img, uint64_t want);

/*
 * For the prefetcher. image_drop_unwanted() removes from `preds` the blocks that are
 * cached, in flight, or ahead of a streaming reader (readahead's: readahead_ahead) and
 * returns how many are left. image_prefetch() starts fetches for the chosen blocks
 * (adjacent ones of one tier coalesced) and returns the bytes asked for. image_fill()
 * asks for the lowest absent blocks, up to `quota` bytes (background).
 */
size_t image_drop_unwanted(struct image *img, struct model_prediction *preds, size_t n);
uint64_t image_prefetch(struct image *img, const struct prefetch_choice *choices, size_t n);
uint64_t image_fill(struct image *img, uint64_t quota);
uint64_t image_block_count(const struct image *img);

#endif

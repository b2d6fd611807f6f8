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
 *        0      |        yes        | being fetched: readers wait on that fetch
 *        1      |      yes or no    | present: served from the cache file
 *
 * A fetch sets the bits (after writing the bytes) before it leaves the inflight table,
 * so a block is never seen as absent while it is being fetched or after.
 */
#ifndef AHEADFS_IMAGE_H
#define AHEADFS_IMAGE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aheadfs/origin.h"
#include "aheadfs/stats.h"
#include "aheadfs/store.h"

struct image_config {
	const char *name;
	const char *url;
	const struct origin_info *info; /* copied */
	struct store *store;		/* owned by the image from now on */
	struct origin *origin;		/* shared, not owned */
	uint64_t max_request_bytes;	/* largest single range GET */
	bool readahead;			/* fetch ahead of streaming readers */
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
	struct stats_histogram hit_latency;
	struct stats_histogram miss_latency;
};

/* Where the bytes of a read are: in the cache file, or in memory (cache disk full). */
struct image_extent {
	int fd;		 /* cache data file, when mem is NULL */
	uint64_t offset; /* in that file */
	size_t length;	 /* bytes to return; 0 at or past EOF */
	void *mem;	 /* when not NULL: the bytes; the caller g_free()s it */
};

struct image;

struct image *image_new(const struct image_config *cfg);
/* Flushes and closes the store. No read may be running. */
void image_free(struct image *img);

const char *image_name(const struct image *img);
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

#endif

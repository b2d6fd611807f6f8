/*
 * store: the local cache of one image: a sparse data file plus its block map.
 *
 * Directory layout, one per image under the cache directory:
 *
 *   CACHE_DIR/<first 20 hex digits of sha256(URL)>/
 *       data   sparse file, image-sized; block b at offset b * block_size; holes = absent
 *       map    block map (see mapfile.h) naming URL, validator, size and block size
 *       lock   flock()ed while mounted, so two mounts never share a cache
 *
 * Crash safety: a block's bytes are written before its bit is set in memory, and the map
 * on disk is only ever written after fdatasync() of the data file covering every bit it
 * contains. A crash can therefore lose bits (blocks fetched again) but never make the
 * map claim bytes that are not in the data file.
 *
 * Thread safety: the bitmap is atomic (see blockmap.h); store_write may be called from
 * any thread for distinct blocks; flushes are serialised by flush_lock.
 */
#ifndef AHEADFS_STORE_H
#define AHEADFS_STORE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "aheadfs/blockmap.h"

struct store_config {
	const char *cache_dir;
	const char *url;
	const char *validator;
	uint64_t image_size;
	uint32_t block_size;
};

struct store;

/*
 * Open or create the cache for one image. A cache written for another validator, size
 * or block size (the remote changed) or a damaged map is discarded as a whole and an
 * empty cache is started; store_discarded() then says why.
 */
struct store *store_open(const struct store_config *cfg, GError **error);

/* Flush, unlock and free. */
void store_close(struct store *store);

int store_fd(const struct store *store);
/*
 * Write bytes to the cache file like store_pwrite, bypassing the page cache (O_DIRECT)
 * where buf and offset are 4 KiB aligned and the filesystem allows. One thread only.
 */
int store_pwrite_aligned(struct store *store, uint64_t offset, const void *buf, size_t len);
const struct blockmap *store_map(const struct store *store);
unsigned store_block_shift(const struct store *store);
uint64_t store_block_count(const struct store *store);
const char *store_dir(const struct store *store);

/* Why the previous cache was discarded at open, or NULL when it was reused or new. */
const char *store_discarded(const struct store *store);

bool store_has(const struct store *store, uint64_t block);
bool store_has_all(const struct store *store, uint64_t first, uint64_t count);
uint64_t store_cached_blocks(const struct store *store);

/*
 * Write the bytes of blocks [first, ...) covering `len` bytes (whole blocks, the last
 * possibly partial at EOF) and mark them present. Returns 0 or -errno (-ENOSPC when the
 * cache disk is full; nothing is marked then).
 */
int store_write(struct store *store, uint64_t first, const void *buf, size_t len);

/*
 * The two halves of store_write, for bytes that arrive in pieces: store_pwrite puts bytes
 * at a byte offset of the data file (nothing is marked), store_mark then marks whole
 * blocks present. Mark only blocks whose every byte was written.
 */
int store_pwrite(struct store *store, uint64_t offset, const void *buf, size_t len);
/* Read `len` bytes of the cache file at `offset` (all of them): 0 or -errno. */
int store_pread(const struct store *store, uint64_t offset, void *buf, size_t len);
/* The same from a descriptor of the data file (an image_extent's): 0 or -errno. */
int store_pread_fd(int fd, uint64_t offset, void *buf, size_t len);
void store_mark(struct store *store, uint64_t first, uint64_t count);

/*
 * Eviction, in this order: store_unmark (the bits go), store_flush (the map on disk no
 * longer names the blocks), then store_punch (the bytes go). Any other order lets a crash
 * leave a map that claims bytes the file no longer has.
 */
void store_unmark(struct store *store, uint64_t first, uint64_t count);
int store_punch(struct store *store, uint64_t first, uint64_t count);

/* Make every present block durable and write the map. */
gboolean store_flush(struct store *store, GError **error);

/* Flush every `interval_ms` from a thread of the store's own while anything changed. */
void store_start_flusher(struct store *store, unsigned interval_ms);

#endif

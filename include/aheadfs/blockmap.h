/*
 * blockmap: one bit per block of an image, safe to read without a lock.
 *
 * Bits are set with release and tested with acquire ordering. The writer sets a bit only
 * after the block's bytes are in the cache file, so a reader that sees the bit can pread
 * the block without taking any lock: that keeps the cached read path lock-free.
 *
 * Memory: one bit per block (a 100 GiB image at 64 KiB blocks: 200 KiB).
 */
#ifndef AHEADFS_BLOCKMAP_H
#define AHEADFS_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockmap {
	uint64_t nblocks;
	size_t nwords;
	uint64_t *words;
};

struct blockmap *blockmap_new(uint64_t nblocks);
void blockmap_free(struct blockmap *map);

bool blockmap_test(const struct blockmap *map, uint64_t block);
void blockmap_set(struct blockmap *map, uint64_t block);
void blockmap_clear(struct blockmap *map, uint64_t block);
/* Clear every bit; for a map no other thread uses meanwhile. */
void blockmap_clear_all(struct blockmap *map);

/* Clear a bit; true when it was set (atomic, so two readers never both see it set). */
bool blockmap_test_and_clear(struct blockmap *map, uint64_t block);

/* True when any block of [first, first + count) is set. */
bool blockmap_test_any(const struct blockmap *map, uint64_t first, uint64_t count);

/* True when every block of [first, first + count) is set. */
bool blockmap_test_all(const struct blockmap *map, uint64_t first, uint64_t count);

/* First clear block at or after `from`, or map->nblocks when none. */
uint64_t blockmap_next_clear(const struct blockmap *map, uint64_t from);

/* First set block at or after `from`, or map->nblocks when none. */
uint64_t blockmap_next_set(const struct blockmap *map, uint64_t from);

uint64_t blockmap_count(const struct blockmap *map);

/* Size in bytes of the serialised bits, and copies in and out (little-endian words). */
size_t blockmap_bytes(const struct blockmap *map);
void blockmap_export(const struct blockmap *map, uint8_t *out);
void blockmap_import(struct blockmap *map, const uint8_t *in);

#endif

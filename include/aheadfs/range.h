/*
 * range: the arithmetic between byte ranges of an image and its fixed-size blocks.
 *
 * Blocks are numbered from 0; every block is `1 << shift` bytes except the last, which
 * ends at the image size. All functions are pure and total: reads at or past EOF clamp
 * to an empty span instead of failing.
 */
#ifndef AHEADFS_RANGE_H
#define AHEADFS_RANGE_H

#include <stdbool.h>
#include <stdint.h>

struct block_span {
	uint64_t first; /* first block touched */
	uint64_t count; /* number of blocks touched; 0 for an empty read */
};

/* Bytes of [offset, offset + length) that lie inside an image of `size` bytes. */
uint64_t range_clamp(uint64_t size, uint64_t offset, uint64_t length);

/* Number of blocks of an image of `size` bytes. */
uint64_t range_block_count(uint64_t size, unsigned shift);

/* The blocks a read of [offset, offset + length) touches, after clamping to `size`. */
struct block_span range_blocks(uint64_t size, unsigned shift, uint64_t offset, uint64_t length);

/* Byte offset where `block` starts. */
static inline uint64_t range_block_offset(uint64_t block, unsigned shift)
{
	return block << shift;
}

/* Bytes in blocks [first, first + count), the last block possibly partial. */
uint64_t range_span_bytes(uint64_t size, unsigned shift, uint64_t first, uint64_t count);

/* log2 of a power of two; false when `value` is not one. */
bool range_log2(uint64_t value, unsigned *shift);

#endif

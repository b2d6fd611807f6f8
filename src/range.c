/*
 * range: byte ranges <-> blocks. Kept separate and pure because every off-by-one in the
 * read path lives here, and here it is cheap to test exhaustively.
 */
#include "aheadfs/range.h"

uint64_t range_clamp(uint64_t size, uint64_t offset, uint64_t length)
{
	if (offset >= size)
		return 0;
	return length < size - offset ? length : size - offset;
}

uint64_t range_block_count(uint64_t size, unsigned shift)
{
	return (size >> shift) + ((size & ((UINT64_C(1) << shift) - 1)) != 0);
}

struct block_span range_blocks(uint64_t size, unsigned shift, uint64_t offset, uint64_t length)
{
	struct block_span span = {0, 0};
	uint64_t len = range_clamp(size, offset, length);

	if (len == 0)
		return span;
	span.first = offset >> shift;
	span.count = ((offset + len - 1) >> shift) - span.first + 1;
	return span;
}

uint64_t range_span_bytes(uint64_t size, unsigned shift, uint64_t first, uint64_t count)
{
	uint64_t start = range_block_offset(first, shift);

	if (count == 0 || start >= size)
		return 0;
	return range_clamp(size, start, count << shift);
}

bool range_log2(uint64_t value, unsigned *shift)
{
	unsigned s = 0;

	if (value == 0 || (value & (value - 1)) != 0)
		return false;
	while ((UINT64_C(1) << s) != value)
		s++;
	*shift = s;
	return true;
}

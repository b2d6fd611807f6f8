/*
 * evict: victim selection. See the header for the order and why.
 */
#include "aheadfs/evict.h"

#include <stdbool.h>

static bool chosen_already(const uint64_t *out, size_t n, uint64_t b)
{
	/* Pass 1 output is ascending: binary search. */
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (out[mid] == b)
			return true;
		if (out[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static size_t pick_unused(const struct evict_maps *maps, size_t want, uint64_t *out)
{
	const struct blockmap *present = maps->present;
	size_t n = 0;

	for (size_t w = 0; w < present->nwords && n < want; w++) {
		uint64_t word = 0;

		for (size_t a = 0; a < maps->n_ahead; a++)
			word |= __atomic_load_n(&maps->ahead[a]->words[w], __ATOMIC_ACQUIRE);
		word &= __atomic_load_n(&present->words[w], __ATOMIC_ACQUIRE);
		while (word && n < want) {
			unsigned bit = (unsigned)__builtin_ctzll(word);

			out[n++] = (uint64_t)w * 64 + bit;
			word &= word - 1;
		}
	}
	return n;
}

size_t evict_pick(const struct evict_maps *maps, uint64_t *hand, size_t want, uint64_t *out,
		  size_t *unused)
{
	uint64_t nblocks = maps->present->nblocks;
	size_t n = pick_unused(maps, want, out), first_pass = n;

	*unused = n;
	if (nblocks == 0)
		return n;
	/* Two turns of the clock at most: the first may only clear referenced bits. */
	for (uint64_t steps = 0; n < want && steps < 2 * nblocks; steps++) {
		uint64_t b = *hand;

		/* Round again to this run's first clock pick: all after it was seen. */
		if (n > first_pass && b == out[first_pass])
			break;
		*hand = (*hand + 1) % nblocks;
		if (!blockmap_test(maps->present, b) || chosen_already(out, first_pass, b))
			continue;
		if (blockmap_test_and_clear(maps->referenced, b))
			continue; /* second chance */
		out[n++] = b;
	}
	return n;
}

/*
 * blockmap: an atomic bitmap. See the header for the ordering contract.
 */
#include "aheadfs/blockmap.h"

#include <endian.h>
#include <glib.h>
#include <string.h>

struct blockmap *blockmap_new(uint64_t nblocks)
{
	struct blockmap *map = g_new0(struct blockmap, 1);

	map->nblocks = nblocks;
	map->nwords = (nblocks + 63) / 64;
	map->words = g_new0(uint64_t, map->nwords ? map->nwords : 1);
	return map;
}

void blockmap_free(struct blockmap *map)
{
	if (!map)
		return;
	g_free(map->words);
	g_free(map);
}

bool blockmap_test(const struct blockmap *map, uint64_t block)
{
	uint64_t w = __atomic_load_n(&map->words[block / 64], __ATOMIC_ACQUIRE);

	return (w >> (block % 64)) & 1;
}

void blockmap_set(struct blockmap *map, uint64_t block)
{
	__atomic_fetch_or(&map->words[block / 64], UINT64_C(1) << (block % 64), __ATOMIC_RELEASE);
}

void blockmap_clear(struct blockmap *map, uint64_t block)
{
	__atomic_fetch_and(&map->words[block / 64], ~(UINT64_C(1) << (block % 64)),
			   __ATOMIC_RELEASE);
}

void blockmap_clear_all(struct blockmap *map)
{
	memset(map->words, 0, map->nwords * sizeof(*map->words));
}

bool blockmap_test_and_clear(struct blockmap *map, uint64_t block)
{
	uint64_t bit = UINT64_C(1) << (block % 64);

	return __atomic_fetch_and(&map->words[block / 64], ~bit, __ATOMIC_ACQ_REL) & bit;
}

/*
 * Walk [first, first + count) a word at a time: for each word, the bits of the range in
 * it. Stops early when `stop` says so for a (word, mask) pair; returns whether it did.
 */
static bool blockmap_scan(const struct blockmap *map, uint64_t first, uint64_t count,
			  bool (*stop)(uint64_t word, uint64_t mask))
{
	uint64_t b = first, end = first + count;

	while (b < end) {
		uint64_t w = __atomic_load_n(&map->words[b / 64], __ATOMIC_ACQUIRE);
		unsigned bit = b % 64;
		uint64_t n = 64 - bit < end - b ? 64 - bit : end - b;
		uint64_t mask = (n == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << n) - 1)) << bit;

		if (stop(w, mask))
			return true;
		b += n;
	}
	return false;
}

static bool some_set(uint64_t word, uint64_t mask)
{
	return (word & mask) != 0;
}

static bool some_clear(uint64_t word, uint64_t mask)
{
	return (word & mask) != mask;
}

bool blockmap_test_any(const struct blockmap *map, uint64_t first, uint64_t count)
{
	return blockmap_scan(map, first, count, some_set);
}

bool blockmap_test_all(const struct blockmap *map, uint64_t first, uint64_t count)
{
	return !blockmap_scan(map, first, count, some_clear);
}

/* The first block at or after @from whose bit is @set (inverted words when looking for
 * clear ones), or nblocks. */
static uint64_t blockmap_next(const struct blockmap *map, uint64_t from, bool set)
{
	uint64_t b = from;

	while (b < map->nblocks) {
		uint64_t w = __atomic_load_n(&map->words[b / 64], __ATOMIC_ACQUIRE);

		if (!set)
			w = ~w;
		w &= ~UINT64_C(0) << (b % 64);
		if (w) {
			b = (b / 64) * 64 + (uint64_t)__builtin_ctzll(w);
			return b < map->nblocks ? b : map->nblocks;
		}
		b = (b / 64 + 1) * 64;
	}
	return map->nblocks;
}

uint64_t blockmap_next_clear(const struct blockmap *map, uint64_t from)
{
	return blockmap_next(map, from, false);
}

uint64_t blockmap_next_set(const struct blockmap *map, uint64_t from)
{
	return blockmap_next(map, from, true);
}

uint64_t blockmap_count(const struct blockmap *map)
{
	uint64_t n = 0;

	for (size_t i = 0; i < map->nwords; i++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&map->words[i], __ATOMIC_RELAXED));
	return n;
}

size_t blockmap_bytes(const struct blockmap *map)
{
	return map->nwords * sizeof(uint64_t);
}

void blockmap_export(const struct blockmap *map, uint8_t *out)
{
	for (size_t i = 0; i < map->nwords; i++) {
		uint64_t le = htole64(__atomic_load_n(&map->words[i], __ATOMIC_ACQUIRE));

		memcpy(out + i * 8, &le, 8);
	}
}

void blockmap_import(struct blockmap *map, const uint8_t *in)
{
	for (size_t i = 0; i < map->nwords; i++) {
		uint64_t le;

		memcpy(&le, in + i * 8, 8);
		__atomic_store_n(&map->words[i], le64toh(le), __ATOMIC_RELEASE);
	}
	/* Bits past nblocks would claim blocks that do not exist. */
	if (map->nblocks % 64)
		map->words[map->nwords - 1] &= (UINT64_C(1) << (map->nblocks % 64)) - 1;
}

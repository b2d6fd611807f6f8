/*
 * heat: how likely each block of an image is to be read soon, as the model last said,
 * fading with time. It is what `.aheadfs/NAME.heat` shows and `aheadfsctl heatmap` draws.
 *
 * The model thread merges every model_predict() answer into the map:
 *
 *   heat(b) = max(p, heat_before(b) * 2^(-(now - then) / half_life))
 *
 * so a block keeps the highest probability it was recently given, and blocks nobody
 * predicts any more fade out; an entry whose heat falls under the floor is dropped. Only
 * blocks with heat are kept (sparse): a 100 GiB image whose model predicts a few thousand
 * blocks costs a few tens of KiB, not one slot per block.
 *
 * Decay costs nothing per entry: values are stored scaled by 2^((t - base) / half_life)
 * (t the time of the merge), so the merge is a max of two stored values and decay happens
 * once, at read time. `base` moves forward (and every value is rescaled) before the scale
 * leaves float range.
 *
 * Pure: no I/O, no locks, no globals. One owner (the model thread) at a time.
 *
 * Serialised form (heat_serialise / heat_parse), all integers little-endian, "varint" is
 * LEB128 (7 bits per byte, low first, high bit = more):
 *
 *   offset  size  field
 *   0       8     magic "AHFSHEAT"
 *   8       4     version, 1
 *   12      4     block_size, bytes
 *   16      8     nblocks in the image
 *   24      8     time written, seconds since the Unix epoch
 *   32      4     half_life, milliseconds
 *   36      2     floor, probability * 65535
 *   38      2     zero
 *   40      8     n_hot: entries in the heat list
 *   48      8     n_cached: ranges in the cached list
 *   56      ...   heat list, by rising block: varint gap, u16 probability * 65535 (>= 1),
 *                 where gap = block - (previous block + 1), the first: block itself
 *           ...   cached list, by rising block, disjoint and not touching:
 *                 varint gap, varint count (>= 1), gap from the end of the previous range
 *                 (the first: from block 0); a gap of 0 only before the first range
 *   end-4   4     CRC-32C of every byte before it
 *
 * Probabilities are decayed to the time written. A parser rejects any other magic or
 * version, a wrong checksum, a block at or past nblocks, counts that do not match the
 * bytes, and trailing bytes.
 */
#ifndef AHEADFS_HEAT_H
#define AHEADFS_HEAT_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "aheadfs/blockmap.h"
#include "aheadfs/model.h"

#define HEAT_ERROR (heat_error_quark())
GQuark heat_error_quark(void);

enum heat_error_code {
	HEAT_ERROR_CORRUPT, /* not a heat file, truncated, checksum or structure wrong */
	HEAT_ERROR_VERSION, /* a version this build does not know */
};

#define HEAT_DEFAULT_HALF_LIFE_US (60 * G_USEC_PER_SEC)
#define HEAT_DEFAULT_FLOOR 0.01f
#define HEAT_DEFAULT_MAX_ENTRIES (1u << 17)

/* Zero means "the default" for every field but nblocks. */
struct heat_params {
	uint64_t nblocks;      /* 1..MODEL_IMAGE_BLOCKS_MAX */
	uint64_t half_life_us; /* the heat of a block nobody predicts halves in this time */
	float floor;	       /* entries under this are dropped, 0 < floor < 1 */
	uint32_t max_entries;  /* past this, the coldest go first (memory cap) */
};

struct heat;

/* NULL with @error set for bad parameters. */
struct heat *heat_new(const struct heat_params *params, GError **error);
void heat_free(struct heat *heat);

/* Merge one model_predict() answer made at @now_us (monotonic, never going back). */
void heat_merge(struct heat *heat, uint64_t now_us, const struct model_prediction *preds, size_t n);

/* The heat of @block at @now_us: 0 when it has none (or less than the floor). */
float heat_get(const struct heat *heat, uint64_t block, uint64_t now_us);

/* Entries held (some may already be under the floor), and heap bytes. */
size_t heat_count(const struct heat *heat);
size_t heat_memory_bytes(const struct heat *heat);

/*
 * The serialised form above, heat decayed to @now_us, stamped @wall_s; @cached (may be
 * NULL: nothing cached) gives the cached ranges. The caller owns the result.
 */
GBytes *heat_serialise(const struct heat *heat, uint64_t now_us, int64_t wall_s,
		       uint32_t block_size, const struct blockmap *cached);

/* A parsed heat file. */
struct heat_entry {
	uint64_t block;
	float probability;
};

struct heat_range {
	uint64_t first;
	uint64_t count;
};

struct heat_snapshot {
	uint32_t block_size;
	uint64_t nblocks;
	int64_t time_s;
	uint32_t half_life_ms;
	float floor;
	size_t n_hot;
	struct heat_entry *hot; /* by rising block */
	size_t n_cached;
	struct heat_range *cached; /* by rising block, disjoint */
	uint64_t cached_blocks;	   /* sum of the counts */
};

/* NULL with @error set (HEAT_ERROR) for anything but a well-formed heat file. */
struct heat_snapshot *heat_parse(const void *data, size_t len, GError **error);
void heat_snapshot_free(struct heat_snapshot *snap);

typedef struct heat_snapshot HeatSnapshot;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HeatSnapshot, heat_snapshot_free)

#endif /* AHEADFS_HEAT_H */

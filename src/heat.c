/*
 * heat: the decayed per-block probability map. See the header for the rule and the file
 * format.
 *
 * The map is an open-addressing hash table (linear probing, at most half full) of 8-byte
 * slots {block + 1, scaled heat}; key 0 marks an empty slot. Entries are never deleted
 * one by one: when the table fills, it is rebuilt without the entries under the floor,
 * grown while under max_entries, and past that rebuilt with a rising threshold so the
 * coldest entries go first.
 */
#include "aheadfs/heat.h"

#include <endian.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aheadfs/checksum.h"

#define HEAT_MAGIC "AHFSHEAT"
#define HEAT_VERSION 1
#define HEAT_HEADER_BYTES 56
#define HEAT_Q 65535.0f
#define HEAT_MIN_SLOTS 1024u
/* Rescale before stored values (p * 2^(age / half_life)) could leave float range. */
#define HEAT_REBASE_HALF_LIVES 40.0

G_DEFINE_QUARK(aheadfs - heat - error - quark, heat_error)

struct heat_slot {
	uint32_t key; /* block + 1; 0: empty */
	float scaled; /* heat * 2^((t - base) / half_life) */
};

struct heat {
	struct heat_params p;
	uint64_t base_us; /* time at which scaled == heat */
	struct heat_slot *slots;
	uint32_t nslots; /* a power of two */
	uint32_t count;
};

static double heat_exponent(const struct heat *h, uint64_t now_us)
{
	return (double)(int64_t)(now_us - h->base_us) / (double)h->p.half_life_us;
}

/* Multiply a heat at @now_us by this to get its stored value. */
static float heat_scale(const struct heat *h, uint64_t now_us)
{
	return (float)exp2(heat_exponent(h, now_us));
}

static uint32_t heat_hash(uint32_t key, uint32_t nslots)
{
	return (uint32_t)(((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (nslots - 1);
}

static struct heat_slot *heat_find(struct heat_slot *slots, uint32_t nslots, uint32_t key)
{
	uint32_t i = heat_hash(key, nslots);

	while (slots[i].key != 0 && slots[i].key != key)
		i = (i + 1) & (nslots - 1);
	return &slots[i];
}

struct heat *heat_new(const struct heat_params *params, GError **error)
{
	struct heat *h;

	if (params->nblocks == 0 || params->nblocks > MODEL_IMAGE_BLOCKS_MAX || params->floor < 0 ||
	    params->floor >= 1 || !(params->floor == params->floor)) {
		g_set_error(error, HEAT_ERROR, HEAT_ERROR_CORRUPT,
			    "heat map: %" G_GUINT64_FORMAT " blocks, floor %g out of range",
			    params->nblocks, (double)params->floor);
		return NULL;
	}
	h = g_new0(struct heat, 1);
	h->p = *params;
	if (!h->p.half_life_us)
		h->p.half_life_us = HEAT_DEFAULT_HALF_LIFE_US;
	if (h->p.floor <= 0)
		h->p.floor = HEAT_DEFAULT_FLOOR;
	if (!h->p.max_entries)
		h->p.max_entries = HEAT_DEFAULT_MAX_ENTRIES;
	h->p.max_entries = MAX(h->p.max_entries, HEAT_MIN_SLOTS / 2);
	h->nslots = HEAT_MIN_SLOTS;
	h->slots = g_new0(struct heat_slot, h->nslots);
	return h;
}

void heat_free(struct heat *heat)
{
	if (!heat)
		return;
	g_free(heat->slots);
	g_free(heat);
}

/* Rebuild into @nslots slots keeping the entries whose stored value is >= @keep. */
static void heat_rebuild(struct heat *h, uint32_t nslots, float keep)
{
	struct heat_slot *old = h->slots;
	uint32_t oldn = h->nslots;

	h->slots = g_new0(struct heat_slot, nslots);
	h->nslots = nslots;
	h->count = 0;
	for (uint32_t i = 0; i < oldn; i++) {
		if (old[i].key == 0 || old[i].scaled < keep)
			continue;
		*heat_find(h->slots, nslots, old[i].key) = old[i];
		h->count++;
	}
	g_free(old);
}

/* Stored values are divided by 2^exponent: base moves to @now_us. */
static void heat_rebase(struct heat *h, uint64_t now_us)
{
	float down = 1.0f / heat_scale(h, now_us);

	for (uint32_t i = 0; i < h->nslots; i++)
		h->slots[i].scaled *= down;
	h->base_us = now_us;
	heat_rebuild(h, h->nslots, h->p.floor);
}

/* Room for one more entry: drop the faded, grow, or drop the coldest. */
static void heat_make_room(struct heat *h, uint64_t now_us)
{
	float keep = h->p.floor * heat_scale(h, now_us);

	if (h->count + 1 <= h->nslots / 2)
		return;
	heat_rebuild(h, h->nslots, keep);
	if (h->count + 1 <= h->nslots / 4 * 3 / 2)
		return;
	if (h->nslots / 2 < h->p.max_entries) {
		heat_rebuild(h, h->nslots * 2, keep);
		return;
	}
	/* At the cap: each pass doubles the bar; p <= 1 bounds the passes. */
	while (h->count + 1 > h->nslots / 4) {
		keep *= 2;
		heat_rebuild(h, h->nslots, keep);
	}
}

void heat_merge(struct heat *heat, uint64_t now_us, const struct model_prediction *preds, size_t n)
{
	float up;

	if (heat->count == 0)
		heat->base_us = now_us; /* nothing to rescale */
	if (heat_exponent(heat, now_us) > HEAT_REBASE_HALF_LIVES)
		heat_rebase(heat, now_us);
	up = heat_scale(heat, now_us);
	for (size_t i = 0; i < n; i++) {
		float p = MIN(preds[i].probability, 1.0f);
		struct heat_slot *s;

		if (preds[i].block >= heat->p.nblocks || !(p >= heat->p.floor))
			continue;
		s = heat_find(heat->slots, heat->nslots, (uint32_t)preds[i].block + 1);
		if (s->key == 0) {
			heat_make_room(heat, now_us);
			s = heat_find(heat->slots, heat->nslots, (uint32_t)preds[i].block + 1);
			*s = (struct heat_slot){(uint32_t)preds[i].block + 1, 0.0f};
			heat->count++;
		}
		s->scaled = MAX(s->scaled, p * up);
	}
}

static float heat_decayed(const struct heat *h, float scaled, uint64_t now_us)
{
	return (float)((double)scaled * exp2(-heat_exponent(h, now_us)));
}

float heat_get(const struct heat *heat, uint64_t block, uint64_t now_us)
{
	const struct heat_slot *s;
	float v;

	if (block >= heat->p.nblocks)
		return 0.0f;
	s = heat_find(heat->slots, heat->nslots, (uint32_t)block + 1);
	if (s->key == 0)
		return 0.0f;
	v = heat_decayed(heat, s->scaled, now_us);
	return v >= heat->p.floor ? v : 0.0f;
}

size_t heat_count(const struct heat *heat)
{
	return heat->count;
}

size_t heat_memory_bytes(const struct heat *heat)
{
	return sizeof(*heat) + (size_t)heat->nslots * sizeof(struct heat_slot);
}

/* Serialising: into one growing buffer (a file can hold millions of varints). */

struct heat_writer {
	uint8_t *buf;
	size_t len, cap;
};

static uint8_t *heat_reserve(struct heat_writer *w, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = MAX(w->cap * 2, w->len + n);
		w->buf = g_realloc(w->buf, w->cap);
	}
	return w->buf + w->len;
}

static void put_varint(struct heat_writer *w, uint64_t v)
{
	uint8_t *b = heat_reserve(w, 10);
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	w->len += n;
}

static void set_le(uint8_t *at, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		at[i] = (uint8_t)(v >> (8 * i));
}

static void put_le(struct heat_writer *w, uint64_t v, unsigned bytes)
{
	set_le(heat_reserve(w, bytes), v, bytes);
	w->len += bytes;
}

static int heat_entry_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct heat_entry *)a)->block,
		 y = ((const struct heat_entry *)b)->block;

	return x < y ? -1 : x > y;
}

/* The entries at or above the floor at @now_us, by block; their number in @n. */
static struct heat_entry *heat_sorted(const struct heat *h, uint64_t now_us, size_t *n)
{
	struct heat_entry *a = g_new(struct heat_entry, MAX(h->count, 1));
	double down = exp2(-heat_exponent(h, now_us));

	*n = 0;
	for (uint32_t i = 0; i < h->nslots; i++) {
		float p = (float)(h->slots[i].scaled * down);

		if (h->slots[i].key != 0 && p >= h->p.floor)
			a[(*n)++] = (struct heat_entry){h->slots[i].key - 1, MIN(p, 1.0f)};
	}
	qsort(a, *n, sizeof(*a), heat_entry_cmp);
	return a;
}

static uint64_t put_cached(struct heat_writer *w, const struct blockmap *cached, uint64_t nblocks)
{
	uint64_t n = 0, end = 0, b;

	if (!cached)
		return 0;
	nblocks = MIN(nblocks, cached->nblocks);
	for (b = blockmap_next_set(cached, 0); b < nblocks; b = blockmap_next_set(cached, end)) {
		uint64_t stop = MIN(blockmap_next_clear(cached, b), nblocks);

		put_varint(w, b - end);
		put_varint(w, stop - b);
		end = stop;
		n++;
		if (end >= nblocks)
			break;
	}
	return n;
}

GBytes *heat_serialise(const struct heat *heat, uint64_t now_us, int64_t wall_s,
		       uint32_t block_size, const struct blockmap *cached)
{
	size_t n_hot;
	g_autofree struct heat_entry *hot = heat_sorted(heat, now_us, &n_hot);
	struct heat_writer w = {NULL, 0, 0};
	uint64_t next = 0;

	heat_reserve(&w, HEAT_HEADER_BYTES + n_hot * 4 + 4096);
	memcpy(w.buf, HEAT_MAGIC, 8);
	w.len = 8;
	put_le(&w, HEAT_VERSION, 4);
	put_le(&w, block_size, 4);
	put_le(&w, heat->p.nblocks, 8);
	put_le(&w, (uint64_t)wall_s, 8);
	put_le(&w, MIN(heat->p.half_life_us / 1000, G_MAXUINT32), 4);
	put_le(&w, (uint64_t)lrintf(heat->p.floor * HEAT_Q), 2);
	put_le(&w, 0, 2);
	put_le(&w, n_hot, 8);
	put_le(&w, 0, 8); /* n_cached, once known */
	for (size_t i = 0; i < n_hot; i++) {
		put_varint(&w, hot[i].block - next);
		put_le(&w, (uint64_t)MAX(lrintf(hot[i].probability * HEAT_Q), 1), 2);
		next = hot[i].block + 1;
	}
	set_le(w.buf + 48, put_cached(&w, cached, heat->p.nblocks), 8);
	put_le(&w, checksum_crc32c(0, w.buf, w.len), 4);
	return g_bytes_new_take(w.buf, w.len);
}

/* Parsing. */

struct heat_reader {
	const uint8_t *p, *end;
};

static gboolean get_le(struct heat_reader *r, guint bytes, uint64_t *v)
{
	*v = 0;
	if ((size_t)(r->end - r->p) < bytes)
		return FALSE;
	for (guint i = 0; i < bytes; i++)
		*v |= (uint64_t)r->p[i] << (8 * i);
	r->p += bytes;
	return TRUE;
}

static gboolean get_varint(struct heat_reader *r, uint64_t *v)
{
	*v = 0;
	for (guint shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (r->p == r->end)
			return FALSE;
		b = *r->p++;
		if (shift == 63 && b > 1)
			return FALSE;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return TRUE;
	}
	return FALSE;
}

static gboolean heat_corrupt(GError **error, const char *why)
{
	g_set_error(error, HEAT_ERROR, HEAT_ERROR_CORRUPT, "not a valid heat file: %s", why);
	return FALSE;
}

static gboolean heat_parse_header(struct heat_reader *r, struct heat_snapshot *s, uint64_t *n_hot,
				  uint64_t *n_cached, GError **error)
{
	uint64_t version, v, floor_q, zero; /* the length was checked: every get_le succeeds */

	if ((size_t)(r->end - r->p) < 8 || memcmp(r->p, HEAT_MAGIC, 8) != 0)
		return heat_corrupt(error, "no AHFSHEAT magic");
	r->p += 8;
	get_le(r, 4, &version);
	if (version != HEAT_VERSION) {
		g_set_error(error, HEAT_ERROR, HEAT_ERROR_VERSION,
			    "heat file version %" G_GUINT64_FORMAT " (this build reads %d)",
			    version, HEAT_VERSION);
		return FALSE;
	}
	get_le(r, 4, &v);
	s->block_size = (uint32_t)v;
	get_le(r, 8, &s->nblocks);
	get_le(r, 8, &v);
	s->time_s = (int64_t)v;
	get_le(r, 4, &v);
	s->half_life_ms = (uint32_t)v;
	get_le(r, 2, &floor_q);
	get_le(r, 2, &zero);
	get_le(r, 8, n_hot);
	get_le(r, 8, n_cached);
	s->floor = (float)floor_q / HEAT_Q;
	if (s->block_size == 0 || s->nblocks == 0 || s->nblocks > MODEL_IMAGE_BLOCKS_MAX ||
	    floor_q >= 65535 || zero != 0)
		return heat_corrupt(error, "bad header");
	/* Each entry takes at least 3 bytes and each range 2: no huge allocation from lies. */
	if (*n_hot > s->nblocks || *n_cached > s->nblocks ||
	    *n_hot * 3 + *n_cached * 2 > (uint64_t)(r->end - r->p))
		return heat_corrupt(error, "counts larger than the file");
	return TRUE;
}

static gboolean heat_parse_hot(struct heat_reader *r, struct heat_snapshot *s, GError **error)
{
	uint64_t next = 0;

	s->hot = g_new(struct heat_entry, MAX(s->n_hot, 1));
	for (size_t i = 0; i < s->n_hot; i++) {
		uint64_t gap, q;

		if (!get_varint(r, &gap) || !get_le(r, 2, &q))
			return heat_corrupt(error, "truncated heat list");
		if (gap >= s->nblocks - next || q == 0)
			return heat_corrupt(error, "heat entry out of range");
		s->hot[i].block = next + gap;
		s->hot[i].probability = (float)q / HEAT_Q;
		next = s->hot[i].block + 1;
	}
	return TRUE;
}

static gboolean heat_parse_cached(struct heat_reader *r, struct heat_snapshot *s, GError **error)
{
	uint64_t end = 0;

	s->cached = g_new(struct heat_range, MAX(s->n_cached, 1));
	for (size_t i = 0; i < s->n_cached; i++) {
		uint64_t gap, count;

		if (!get_varint(r, &gap) || !get_varint(r, &count))
			return heat_corrupt(error, "truncated cached list");
		if ((i > 0 && gap == 0) || count == 0 || gap > s->nblocks - end ||
		    count > s->nblocks - end - gap)
			return heat_corrupt(error, "cached range out of range");
		s->cached[i] = (struct heat_range){end + gap, count};
		end += gap + count;
		s->cached_blocks += count;
	}
	return TRUE;
}

struct heat_snapshot *heat_parse(const void *data, size_t len, GError **error)
{
	g_autoptr(HeatSnapshot) s = g_new0(struct heat_snapshot, 1);
	struct heat_reader r = {data, (const uint8_t *)data + len};
	uint64_t n_hot = 0, n_cached = 0, crc;
	struct heat_reader tail;

	if (len < HEAT_HEADER_BYTES + 4) {
		heat_corrupt(error, len ? "truncated" : "empty");
		return NULL;
	}
	tail = (struct heat_reader){r.end - 4, r.end};
	get_le(&tail, 4, &crc);
	r.end -= 4;
	if (!heat_parse_header(&r, s, &n_hot, &n_cached, error))
		return NULL;
	if (checksum_crc32c(0, data, len - 4) != (uint32_t)crc) {
		heat_corrupt(error, "checksum mismatch");
		return NULL;
	}
	s->n_hot = (size_t)n_hot;
	s->n_cached = (size_t)n_cached;
	if (!heat_parse_hot(&r, s, error) || !heat_parse_cached(&r, s, error))
		return NULL;
	if (r.p != r.end) {
		heat_corrupt(error, "trailing bytes");
		return NULL;
	}
	return g_steal_pointer(&s);
}

void heat_snapshot_free(struct heat_snapshot *snap)
{
	if (!snap)
		return;
	g_free(snap->hot);
	g_free(snap->cached);
	g_free(snap);
}

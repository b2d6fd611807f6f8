/*
 * model_markov: what came next before, per block and per recent deltas.
 *
 * Design.  Two tables, both updated in O(1) per access and both bounded:
 *
 *   block table   block -> up to 4 successor blocks with decayed counts and access
 *                 lengths.  Set-associative (MARKOV_WAYS entries a set) with a second-chance
 *                 bit per entry: a full set evicts an entry not used since the hand last
 *                 passed.  It starts small and doubles (rehash) until the memory cap;
 *                 from then on cold entries are evicted.
 *   delta table   hash(d1, d2) -> up to 4 next deltas, where d1 and d2 are the last two
 *                 start-to-start deltas.  Direct-mapped; a different context colliding
 *                 halves the resident's counts and takes the slot when they fade.  It
 *                 carries what the block table cannot: strides, and a pattern replayed at
 *                 another offset.
 *
 * Counts are 8.8 fixed point: an observed successor gains one, its rivals lose an eighth,
 * so an entry follows the last few transitions.  A count is not a probability: what one
 * observation is worth differs between a boot replayed exactly and a random stream.  So
 * each source keeps, per bucket of (count, share of the entry's total), the decayed rate at
 * which its top successor was right, and that measured rate is the probability it gives.
 *
 *   bucket = count class (1, 2, 3+ observations) x share class (>= 3/4, >= 2/5, less)
 *
 * Prediction walks the likeliest path for params.markov_steps steps from the latest
 * access, multiplying probabilities, and reports every successor on the way whose path
 * probability stays above MARKOV_P_MIN; step k is expected k mean gaps from now.
 * Re-reads inside the latest access are not transitions and are ignored.
 */
#include <string.h>

#include "aheadfs/model_expert.h"

#define MARKOV_WAYS 8
#define MARKOV_SUCC 4
#define MARKOV_EMPTY UINT32_MAX
#define MARKOV_ONE 256
#define MARKOV_SETS_MIN 64
#define MARKOV_CTX_MAX 4096
#define MARKOV_BUCKETS 9
#define MARKOV_P_MIN 0.02
#define MARKOV_LEN_EMIT_MAX 32
#define MARKOV_RATE_DECAY (1.0 - 1.0 / 512)

struct markov_entry {
	uint32_t block;		    /* MARKOV_EMPTY: free */
	uint32_t succ[MARKOV_SUCC]; /* MARKOV_EMPTY where count is 0 */
	uint16_t count[MARKOV_SUCC];
	uint8_t len[MARKOV_SUCC];
	uint8_t ref; /* second chance */
};

struct markov_ctx {
	uint32_t tag; /* context hash, never 0; 0: free */
	int32_t delta[MARKOV_SUCC];
	uint16_t count[MARKOV_SUCC];
	uint8_t len[MARKOV_SUCC];
};

enum markov_source { MARKOV_BLOCK, MARKOV_DELTA, MARKOV_SOURCES };

struct markov_next {
	uint64_t block;
	double p;
	uint8_t len;
};

struct model_markov {
	struct model base;
	struct markov_entry *table;
	uint32_t sets, sets_max;
	uint32_t used;
	struct markov_ctx *ctx;
	uint32_t nctx;
	uint32_t hand;
	/* short-term context; forgotten at a session start */
	bool have_prev;
	uint64_t prev, prev_end;
	int64_t d1, d2;
	uint8_t prev_len;
	struct model_pace pace;
	struct model_rate calib[MARKOV_SOURCES][MARKOV_BUCKETS];
	struct model_rate top_hit;
	struct model_candidates cand;
};

static struct model_markov *markov_of(struct model *m)
{
	return (struct model_markov *)m;
}

static const struct model_markov *markov_of_const(const struct model *m)
{
	return (const struct model_markov *)m;
}

static void markov_clear_table(struct markov_entry *t, size_t n)
{
	memset(t, 0, n * sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		t[i].block = MARKOV_EMPTY;
		for (int j = 0; j < MARKOV_SUCC; j++)
			t[i].succ[j] = MARKOV_EMPTY;
	}
}

static void markov_reset(struct model *m)
{
	struct model_markov *k = markov_of(m);

	k->sets = MIN(MARKOV_SETS_MIN, k->sets_max);
	k->table = g_renew(struct markov_entry, k->table, (size_t)k->sets * MARKOV_WAYS);
	markov_clear_table(k->table, (size_t)k->sets * MARKOV_WAYS);
	k->used = 0;
	memset(k->ctx, 0, k->nctx * sizeof(*k->ctx));
	k->hand = 0;
	k->have_prev = false;
	k->d1 = k->d2 = 0;
	memset(&k->pace, 0, sizeof(k->pace));
	/* Until measured, one observation is taken as a fair coin, more as better. */
	for (int s = 0; s < MARKOV_SOURCES; s++)
		for (int b = 0; b < MARKOV_BUCKETS; b++)
			model_rate_init(&k->calib[s][b],
					(0.5 + 0.15 * (b % 3)) * (b / 3 == 0   ? 1.0
								  : b / 3 == 1 ? 0.6
									       : 0.3),
					2.0);
	model_rate_init(&k->top_hit, 0.0, 1.0);
}

static uint32_t markov_pow2_floor(size_t x)
{
	uint32_t p = 1;

	while ((size_t)p * 2 <= x && p < (1u << 30))
		p *= 2;
	return p;
}

static struct model *markov_create(const struct model_params *params, GError **error G_GNUC_UNUSED)
{
	struct model_markov *k = g_new0(struct model_markov, 1);
	size_t cap = params->memory_cap_bytes;
	size_t ctx_bytes, left;

	/* The delta table takes up to an eighth; the block table the rest but slack for the
	 * struct and a warm candidate buffer. */
	k->nctx = markov_pow2_floor(MIN(cap / 8 / sizeof(struct markov_ctx), MARKOV_CTX_MAX));
	ctx_bytes = k->nctx * sizeof(struct markov_ctx);
	left =
	    cap > ctx_bytes + sizeof(*k) + 64 * 1024 ? cap - ctx_bytes - sizeof(*k) - 64 * 1024 : 0;
	k->sets_max = markov_pow2_floor(left / (MARKOV_WAYS * sizeof(struct markov_entry)));
	/* No more sets than could ever fill: the image has only so many blocks. */
	while (k->sets_max > MARKOV_SETS_MIN &&
	       (uint64_t)k->sets_max / 2 * MARKOV_WAYS >= params->image_blocks * 2)
		k->sets_max /= 2;
	k->ctx = g_new0(struct markov_ctx, k->nctx);
	model_candidates_init(&k->cand);
	markov_reset(&k->base);
	return &k->base;
}

static void markov_destroy(struct model *m)
{
	struct model_markov *k = markov_of(m);

	model_candidates_fini(&k->cand);
	g_free(k->table);
	g_free(k->ctx);
	g_free(k);
}

static struct markov_entry *markov_set(const struct model_markov *k, uint32_t block)
{
	uint32_t set = (uint32_t)(model_hash64(block) & (k->sets - 1));

	return &k->table[(size_t)set * MARKOV_WAYS];
}

static struct markov_entry *markov_lookup(const struct model_markov *k, uint64_t block)
{
	struct markov_entry *set = markov_set(k, (uint32_t)block);

	for (int i = 0; i < MARKOV_WAYS; i++)
		if (set[i].block == block)
			return &set[i];
	return NULL;
}

/* Places @e into the table of @k without growing; evicts a cold entry if the set is full. */
static struct markov_entry *markov_place(struct model_markov *k, uint32_t block, bool evict)
{
	struct markov_entry *set = markov_set(k, block);

	for (int i = 0; i < MARKOV_WAYS; i++) {
		if (set[i].block == MARKOV_EMPTY) {
			k->used++;
			return &set[i];
		}
	}
	if (!evict)
		return NULL;
	for (int i = 0; i < 2 * MARKOV_WAYS; i++) {
		struct markov_entry *e = &set[(k->hand + i) % MARKOV_WAYS];

		if (!e->ref || i >= MARKOV_WAYS) {
			k->hand++;
			return e;
		}
		e->ref = 0;
	}
	return &set[0];
}

static void markov_grow(struct model_markov *k)
{
	struct markov_entry *old = k->table;
	size_t n = (size_t)k->sets * MARKOV_WAYS;

	k->sets *= 2;
	k->table = g_new(struct markov_entry, (size_t)k->sets * MARKOV_WAYS);
	markov_clear_table(k->table, (size_t)k->sets * MARKOV_WAYS);
	k->used = 0;
	for (size_t i = 0; i < n; i++) {
		struct markov_entry *e;

		if (old[i].block == MARKOV_EMPTY)
			continue;
		e = markov_place(k, old[i].block, false);
		if (e)
			*e = old[i];
	}
	g_free(old);
}

static struct markov_entry *markov_insert(struct model_markov *k, uint32_t block)
{
	struct markov_entry *e = markov_lookup(k, block);

	if (e)
		return e;
	e = markov_place(k, block, false);
	if (!e && k->sets < k->sets_max && k->used >= k->sets * (MARKOV_WAYS / 2)) {
		markov_grow(k);
		e = markov_place(k, block, false);
	}
	if (!e)
		e = markov_place(k, block, true);
	markov_clear_table(e, 1);
	e->block = block;
	return e;
}

static struct markov_ctx *markov_ctx_slot(const struct model_markov *k, int64_t d1, int64_t d2,
					  uint32_t *tag)
{
	uint64_t h = model_hash64((uint64_t)d1 * 0x9e3779b97f4a7c15ULL ^ (uint64_t)d2);

	*tag = (uint32_t)(h >> 32) | 1;
	return &k->ctx[h & (k->nctx - 1)];
}

static int markov_bucket(uint16_t count, uint32_t total)
{
	int c = count < MARKOV_ONE * 3 / 2 ? 0 : count < MARKOV_ONE * 5 / 2 ? 1 : 2;
	double share = total ? (double)count / total : 0.0;
	int s = share >= 0.75 ? 0 : share >= 0.4 ? 1 : 2;

	return s * 3 + c;
}

/* Counts: the observed one gains one, its rivals fade; a new one replaces the weakest. */
static int markov_bump(uint16_t count[MARKOV_SUCC], int found)
{
	int weakest = 0;

	if (found < 0) {
		for (int i = 1; i < MARKOV_SUCC; i++)
			if (count[i] < count[weakest])
				weakest = i;
		found = weakest;
		count[found] = 0;
	}
	for (int i = 0; i < MARKOV_SUCC; i++)
		if (i != found)
			count[i] -= count[i] >> 3;
	count[found] = (uint16_t)MIN((uint32_t)count[found] + MARKOV_ONE, UINT16_MAX);
	return found;
}

/* The successors of @block after deltas @d1, @d2, by source, probabilities calibrated. */
static int markov_next(const struct model_markov *k, uint64_t block, int64_t d1, int64_t d2,
		       struct markov_next next[2 * MARKOV_SUCC])
{
	const struct markov_entry *e = markov_lookup(k, block);
	uint32_t tag;
	const struct markov_ctx *c = markov_ctx_slot(k, d1, d2, &tag);
	int n = 0;

	if (e) {
		uint32_t total = 0;

		for (int i = 0; i < MARKOV_SUCC; i++)
			total += e->count[i];
		for (int i = 0; i < MARKOV_SUCC; i++) {
			if (e->count[i] < MARKOV_ONE / 4 || e->succ[i] == MARKOV_EMPTY)
				continue;
			next[n].block = e->succ[i];
			next[n].p = model_rate_get(
			    &k->calib[MARKOV_BLOCK][markov_bucket(e->count[i], total)]);
			next[n].len = e->len[i];
			n++;
		}
	}
	if (c->tag == tag) {
		uint32_t total = 0;

		for (int i = 0; i < MARKOV_SUCC; i++)
			total += c->count[i];
		for (int i = 0; i < MARKOV_SUCC; i++) {
			int64_t to = (int64_t)block + c->delta[i];
			double p;
			int j;

			if (c->count[i] < MARKOV_ONE / 4 || to < 0 ||
			    (uint64_t)to >= k->base.params.image_blocks)
				continue;
			p = model_rate_get(
			    &k->calib[MARKOV_DELTA][markov_bucket(c->count[i], total)]);
			for (j = 0; j < n && next[j].block != (uint64_t)to; j++)
				;
			if (j < n) {
				next[j].p = MAX(next[j].p, p);
				continue;
			}
			next[n].block = (uint64_t)to;
			next[n].p = p;
			next[n].len = c->len[i];
			n++;
		}
	}
	return n;
}

/* Scores each source's top guess for the step just taken, to calibrate its buckets. */
static void markov_score(struct model_markov *k, uint64_t b)
{
	const struct markov_entry *e = markov_lookup(k, k->prev);
	uint32_t tag;
	const struct markov_ctx *c = markov_ctx_slot(k, k->d1, k->d2, &tag);
	bool any = false, hit = false;

	if (e) {
		uint32_t total = 0;
		int top = 0;

		for (int i = 0; i < MARKOV_SUCC; i++) {
			total += e->count[i];
			if (e->count[i] > e->count[top])
				top = i;
		}
		if (e->count[top] >= MARKOV_ONE / 4) {
			bool h = e->succ[top] == b;

			model_rate_add(&k->calib[MARKOV_BLOCK][markov_bucket(e->count[top], total)],
				       h, MARKOV_RATE_DECAY);
			any = true;
			hit |= h;
		}
	}
	if (c->tag == tag) {
		uint32_t total = 0;
		int top = 0;

		for (int i = 0; i < MARKOV_SUCC; i++) {
			total += c->count[i];
			if (c->count[i] > c->count[top])
				top = i;
		}
		if (c->count[top] >= MARKOV_ONE / 4) {
			bool h = (int64_t)k->prev + c->delta[top] == (int64_t)b;

			model_rate_add(&k->calib[MARKOV_DELTA][markov_bucket(c->count[top], total)],
				       h, MARKOV_RATE_DECAY);
			any = true;
			hit |= h;
		}
	}
	model_rate_add(&k->top_hit, any && hit, 1.0 - 1.0 / 64);
}

static void markov_learn(struct model_markov *k, uint64_t b, uint8_t len)
{
	struct markov_entry *e = markov_insert(k, (uint32_t)k->prev);
	int64_t d = (int64_t)(b - k->prev);
	uint32_t tag;
	struct markov_ctx *c = markov_ctx_slot(k, k->d1, k->d2, &tag);
	int found = -1, i;

	e->ref = 1;
	for (i = 0; i < MARKOV_SUCC; i++)
		if (e->succ[i] == b && e->count[i])
			found = i;
	i = markov_bump(e->count, found);
	e->succ[i] = (uint32_t)b;
	e->len[i] = len;

	if (d < INT32_MIN || d > INT32_MAX)
		return;
	if (c->tag != tag) {
		uint16_t top = 0;

		for (i = 0; i < MARKOV_SUCC; i++) {
			c->count[i] /= 2;
			top = MAX(top, c->count[i]);
		}
		if (c->tag && top >= MARKOV_ONE / 4)
			return;
		memset(c, 0, sizeof(*c));
		c->tag = tag;
	}
	found = -1;
	for (i = 0; i < MARKOV_SUCC; i++)
		if (c->delta[i] == d && c->count[i])
			found = i;
	i = markov_bump(c->count, found);
	c->delta[i] = (int32_t)d;
	c->len[i] = len;
}

static void markov_observe(struct model *m, const struct model_event *ev)
{
	struct model_markov *k = markov_of(m);
	uint64_t b = ev->block;
	uint8_t len = (uint8_t)MIN(ev->nblocks, UINT8_MAX);

	model_pace_observe(&k->pace, ev->time_us);
	if (k->have_prev && b >= k->prev && b < k->prev_end)
		return; /* a re-read inside the latest access */
	if (k->have_prev) {
		markov_score(k, b);
		markov_learn(k, b, len);
		k->d2 = k->d1;
		k->d1 = (int64_t)(b - k->prev);
	}
	k->have_prev = true;
	k->prev = b;
	k->prev_end = b + ev->nblocks;
	k->prev_len = len;
}

static size_t markov_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
			     struct model_prediction *out, size_t max)
{
	struct model_markov *k = markov_of(m);
	uint64_t gap = model_pace_gap_us(&k->pace);
	uint64_t cur = k->prev;
	int64_t d1 = k->d1, d2 = k->d2;
	double path = 1.0;

	if (!k->have_prev)
		return 0;
	for (uint32_t step = 1; step <= m->params.markov_steps; step++) {
		struct markov_next next[2 * MARKOV_SUCC];
		int n = markov_next(k, cur, d1, d2, next), top = 0;
		uint64_t eta = now_us + step * gap;

		if (n == 0 || (horizon_us < UINT64_MAX - now_us && eta > now_us + horizon_us))
			break;
		for (int i = 0; i < n; i++) {
			double p = path * next[i].p;
			uint32_t len = MIN(MAX(next[i].len, 1), MARKOV_LEN_EMIT_MAX);

			if (next[i].p > next[top].p)
				top = i;
			if (p < MARKOV_P_MIN)
				continue;
			for (uint32_t j = 0; j < len && next[i].block + j < m->params.image_blocks;
			     j++)
				model_candidates_add(&k->cand, next[i].block + j, (float)p, eta,
						     MODEL_EXPERT_MARKOV);
		}
		path *= next[top].p;
		if (path < MARKOV_P_MIN)
			break;
		d2 = d1;
		d1 = (int64_t)(next[top].block - cur);
		cur = next[top].block;
	}
	return model_candidates_emit(&k->cand, now_us, horizon_us, false, out, max);
}

static double markov_confidence(const struct model *m)
{
	return model_rate_get(&markov_of_const(m)->top_hit);
}

static void markov_session_start(struct model *m, uint64_t now_us G_GNUC_UNUSED)
{
	struct model_markov *k = markov_of(m);

	/* The last access of the previous mount does not lead to the first of this one. */
	k->have_prev = false;
	k->d1 = k->d2 = 0;
	model_pace_restart(&k->pace);
}

/*
 * Payload v1:
 *   pace; rate top_hit; rate calib[2][9]
 *   u32 sets; u32 n; n x { u32 slot; u32 block; u32 succ[4]; u16 count[4]; u8 len[4]; u8 ref }
 *   u32 nctx; u32 n; n x { u32 slot; u32 tag; i32 delta[4]; u16 count[4]; u8 len[4] }
 */
#define MARKOV_ENTRY_BYTES (4 + 4 + 16 + 8 + 4 + 1)
#define MARKOV_CTX_BYTES (4 + 4 + 16 + 8 + 4)

static void markov_save(const struct model *m, GByteArray *out)
{
	const struct model_markov *k = markov_of_const(m);
	size_t n = (size_t)k->sets * MARKOV_WAYS;
	uint32_t count = 0;

	model_put_pace(out, &k->pace);
	model_put_rate(out, &k->top_hit);
	for (int s = 0; s < MARKOV_SOURCES; s++)
		for (int b = 0; b < MARKOV_BUCKETS; b++)
			model_put_rate(out, &k->calib[s][b]);
	model_put_u32(out, k->sets);
	model_put_u32(out, k->used);
	for (size_t i = 0; i < n; i++) {
		const struct markov_entry *e = &k->table[i];

		if (e->block == MARKOV_EMPTY)
			continue;
		count++;
		model_put_u32(out, (uint32_t)i);
		model_put_u32(out, e->block);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u32(out, e->succ[j]);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u16(out, e->count[j]);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u8(out, e->len[j]);
		model_put_u8(out, e->ref);
	}
	g_assert(count == k->used);
	count = 0;
	for (uint32_t i = 0; i < k->nctx; i++)
		count += k->ctx[i].tag != 0;
	model_put_u32(out, k->nctx);
	model_put_u32(out, count);
	for (uint32_t i = 0; i < k->nctx; i++) {
		const struct markov_ctx *c = &k->ctx[i];

		if (!c->tag)
			continue;
		model_put_u32(out, i);
		model_put_u32(out, c->tag);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u32(out, (uint32_t)c->delta[j]);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u16(out, c->count[j]);
		for (int j = 0; j < MARKOV_SUCC; j++)
			model_put_u8(out, c->len[j]);
	}
}

static bool markov_load_entry(struct model_markov *k, struct model_reader *r, uint64_t blocks)
{
	uint32_t slot = model_get_u32(r);
	struct markov_entry e;

	e.block = model_get_u32(r);
	for (int j = 0; j < MARKOV_SUCC; j++)
		e.succ[j] = model_get_u32(r);
	for (int j = 0; j < MARKOV_SUCC; j++)
		e.count[j] = model_get_u16(r);
	for (int j = 0; j < MARKOV_SUCC; j++)
		e.len[j] = model_get_u8(r);
	e.ref = model_get_u8(r);
	if (r->bad || slot >= (size_t)k->sets * MARKOV_WAYS || e.block >= blocks || e.ref > 1 ||
	    k->table[slot].block != MARKOV_EMPTY ||
	    markov_set(k, e.block) != &k->table[slot / MARKOV_WAYS * MARKOV_WAYS])
		return false;
	for (int j = 0; j < MARKOV_SUCC; j++)
		if (e.succ[j] != MARKOV_EMPTY && e.succ[j] >= blocks)
			return false;
	k->table[slot] = e;
	k->used++;
	return true;
}

static bool markov_load(struct model *m, struct model_reader *r)
{
	struct model_markov *k = markov_of(m);
	uint64_t blocks = m->params.image_blocks;
	uint32_t sets, n, nctx;

	model_get_pace(r, &k->pace);
	model_get_rate(r, &k->top_hit);
	for (int s = 0; s < MARKOV_SOURCES; s++)
		for (int b = 0; b < MARKOV_BUCKETS; b++)
			model_get_rate(r, &k->calib[s][b]);
	sets = model_get_u32(r);
	if (r->bad || sets < k->sets || sets > k->sets_max || (sets & (sets - 1)))
		return false; /* a smaller cap than at save time: start afresh */
	while (k->sets < sets)
		markov_grow(k);
	n = model_get_count(r, sets * MARKOV_WAYS, MARKOV_ENTRY_BYTES);
	for (uint32_t i = 0; i < n; i++)
		if (!markov_load_entry(k, r, blocks))
			return false;
	nctx = model_get_u32(r);
	if (r->bad || nctx != k->nctx)
		return false;
	n = model_get_count(r, nctx, MARKOV_CTX_BYTES);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = model_get_u32(r);
		struct markov_ctx c;

		c.tag = model_get_u32(r);
		for (int j = 0; j < MARKOV_SUCC; j++)
			c.delta[j] = (int32_t)model_get_u32(r);
		for (int j = 0; j < MARKOV_SUCC; j++)
			c.count[j] = model_get_u16(r);
		for (int j = 0; j < MARKOV_SUCC; j++)
			c.len[j] = model_get_u8(r);
		if (r->bad || slot >= nctx || c.tag == 0 || k->ctx[slot].tag != 0)
			return false;
		k->ctx[slot] = c;
	}
	return !r->bad;
}

static size_t markov_memory_bytes(const struct model *m)
{
	const struct model_markov *k = markov_of_const(m);

	return sizeof(*k) + (size_t)k->sets * MARKOV_WAYS * sizeof(struct markov_entry) +
	       k->nctx * sizeof(struct markov_ctx) + model_candidates_memory_bytes(&k->cand);
}

const struct model_ops model_markov_ops = {
    .name = "markov",
    .expert = MODEL_EXPERT_MARKOV,
    .version = 1,
    .memory_share = 8,
    .create = markov_create,
    .destroy = markov_destroy,
    .reset = markov_reset,
    .observe = markov_observe,
    .predict = markov_predict,
    .confidence = markov_confidence,
    .session_start = markov_session_start,
    .save = markov_save,
    .load = markov_load,
    .memory_bytes = markov_memory_bytes,
};

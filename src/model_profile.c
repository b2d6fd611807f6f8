/*
 * model_profile: the order in which earlier sessions first read their blocks.
 *
 * Design.  A VM boot reads much the same blocks in much the same order every time, and
 * before it has read anything no other expert has a clue.  This one records, per session
 * (a mount or open, announced by model_session_start()), each block's first read and its
 * time since the session started.  When the next session starts, that list is merged into
 * the learned profile: a block seen again gets its count of sessions raised and its time
 * averaged with the recent ones; a new block is added; then the profile is sorted by time.
 *
 *   learned profile (sorted by time)           this session
 *   pos:  0     1     2     3     4     5
 *         b17   b3    b90   b4    b5    b61    reads b17, b3, b90 ...
 *         1.0   1.0   0.5   1.0   1.0   1.0    <- sessions seen / sessions
 *                     ^ latest match: predictions continue from here
 *
 * From the session start, and again after every first read that matches the profile, the
 * blocks after the latest match are predicted with probability = how often they repeated,
 * and eta = the time of the latest match + their learned distance from it, stretched by
 * the measured speed of this session against the learned one (a slower or faster VM).
 * A short look-back (PROFILE_LOOKBACK) keeps blocks that were read slightly out of order.
 * Blocks already read this session are never predicted.
 *
 * Bounded: at most entries_max blocks are learned and recorded per session (the start of a
 * session is what matters); blocks that repeat in fewer than a quarter of the sessions are
 * dropped, and session counts are halved every PROFILE_SESSIONS_MAX sessions so that an
 * image whose boot changed forgets the old one.
 */
#include <string.h>

#include "aheadfs/model_expert.h"

#define PROFILE_LOOKBACK 32
#define PROFILE_SPEED_STEPS 16
#define PROFILE_SESSIONS_MAX 32
#define PROFILE_BLOCKS_PER_EVENT 64
#define PROFILE_KEEP_SHARE 0.25
#define PROFILE_EMPTY UINT32_MAX

struct profile_entry {
	uint32_t block;
	uint32_t seen;	 /* sessions that read it */
	uint64_t rel_us; /* learned time of its first read after the session start */
};

struct profile_first {
	uint32_t block;
	uint64_t rel_us;
};

/* block -> u32, open addressing with linear probing; no deletion, only clearing. */
struct profile_slot {
	uint32_t key, val;
};
struct profile_map {
	struct profile_slot *slots;
	uint32_t cap, n;
};

struct model_profile {
	struct model base;
	uint32_t entries_max;
	struct profile_entry *learned;
	uint32_t nlearned, learned_cap;
	uint32_t sessions;
	struct profile_map index;  /* block -> position in learned */
	struct profile_first *cur; /* this session's first reads, in order */
	uint32_t ncur, cur_cap;
	struct profile_map seen; /* blocks read this session */
	bool active;
	uint64_t start_us;
	/* progress through the profile this session */
	int64_t pos;
	uint64_t anchor_us, anchor_rel;
	double speed;		   /* this session's time / the learned time */
	struct model_rate matched; /* first reads that were in the profile */
	struct model_candidates cand;
};

static struct model_profile *profile_of(struct model *m)
{
	return (struct model_profile *)m;
}

static const struct model_profile *profile_of_const(const struct model *m)
{
	return (const struct model_profile *)m;
}

static void profile_map_init(struct profile_map *map, uint32_t cap)
{
	map->cap = cap;
	map->n = 0;
	map->slots = g_renew(struct profile_slot, map->slots, cap);
	for (uint32_t i = 0; i < cap; i++)
		map->slots[i].key = PROFILE_EMPTY;
}

static const struct profile_slot *profile_map_find(const struct profile_map *map, uint32_t key)
{
	uint32_t mask = map->cap - 1;

	for (uint32_t i = (uint32_t)model_hash64(key) & mask;; i = (i + 1) & mask) {
		if (map->slots[i].key == key)
			return &map->slots[i];
		if (map->slots[i].key == PROFILE_EMPTY)
			return NULL;
	}
}

static void profile_map_put(struct profile_map *map, uint32_t key, uint32_t val)
{
	uint32_t mask;

	if ((map->n + 1) * 2 > map->cap) {
		struct profile_map bigger = {0};

		profile_map_init(&bigger, map->cap * 2);
		for (uint32_t i = 0; i < map->cap; i++)
			if (map->slots[i].key != PROFILE_EMPTY)
				profile_map_put(&bigger, map->slots[i].key, map->slots[i].val);
		g_free(map->slots);
		*map = bigger;
	}
	mask = map->cap - 1;
	for (uint32_t i = (uint32_t)model_hash64(key) & mask;; i = (i + 1) & mask) {
		if (map->slots[i].key == key) {
			map->slots[i].val = val;
			return;
		}
		if (map->slots[i].key == PROFILE_EMPTY) {
			map->slots[i].key = key;
			map->slots[i].val = val;
			map->n++;
			return;
		}
	}
}

static void profile_index_rebuild(struct model_profile *pr)
{
	uint32_t cap = 64;

	while (cap < pr->nlearned * 2 + 2)
		cap *= 2;
	profile_map_init(&pr->index, cap);
	for (uint32_t i = 0; i < pr->nlearned; i++)
		profile_map_put(&pr->index, pr->learned[i].block, i);
}

static void profile_forget_session(struct model_profile *pr)
{
	pr->ncur = 0;
	if (pr->cur_cap > 64) {
		pr->cur_cap = 64;
		pr->cur = g_renew(struct profile_first, pr->cur, pr->cur_cap);
	}
	profile_map_init(&pr->seen, 64);
	pr->active = false;
	pr->pos = -1;
	pr->speed = 1.0;
	model_rate_init(&pr->matched, 1.0, 4.0);
}

static void profile_reset(struct model *m)
{
	struct model_profile *pr = profile_of(m);

	pr->nlearned = 0;
	pr->learned_cap = 64;
	pr->learned = g_renew(struct profile_entry, pr->learned, pr->learned_cap);
	pr->sessions = 0;
	profile_index_rebuild(pr);
	profile_forget_session(pr);
}

static struct model *profile_create(const struct model_params *params, GError **error G_GNUC_UNUSED)
{
	struct model_profile *pr = g_new0(struct model_profile, 1);
	/* Per block, at worst: learned (merging doubles it, growth doubles again), this
	 * session's list (doubled), the index and the session's set (4 slots each). */
	size_t per_entry = 4 * sizeof(struct profile_entry) + 2 * sizeof(struct profile_first) +
			   2 * 4 * sizeof(struct profile_slot);
	size_t slack = sizeof(*pr) + 64 * 1024;
	size_t usable = params->memory_cap_bytes > slack ? params->memory_cap_bytes - slack : 0;

	pr->entries_max = (uint32_t)MIN(usable / per_entry, (size_t)1 << 24);
	pr->entries_max = MAX(pr->entries_max, 64);
	pr->cur_cap = 64;
	pr->cur = g_new(struct profile_first, pr->cur_cap);
	model_candidates_init(&pr->cand);
	profile_reset(&pr->base);
	return &pr->base;
}

static void profile_destroy(struct model *m)
{
	struct model_profile *pr = profile_of(m);

	model_candidates_fini(&pr->cand);
	g_free(pr->learned);
	g_free(pr->cur);
	g_free(pr->index.slots);
	g_free(pr->seen.slots);
	g_free(pr);
}

static gint profile_cmp_time(gconstpointer a, gconstpointer b, gpointer data G_GNUC_UNUSED)
{
	const struct profile_entry *x = a, *y = b;

	return x->rel_us < y->rel_us ? -1 : x->rel_us > y->rel_us;
}

static gint profile_cmp_seen(gconstpointer a, gconstpointer b, gpointer data G_GNUC_UNUSED)
{
	const struct profile_entry *x = a, *y = b;

	return x->seen > y->seen ? -1 : x->seen < y->seen;
}

static void profile_learned_reserve(struct model_profile *pr, uint32_t n)
{
	if (n <= pr->learned_cap)
		return;
	while (pr->learned_cap < n)
		pr->learned_cap *= 2;
	pr->learned = g_renew(struct profile_entry, pr->learned, pr->learned_cap);
}

/* Folds this session's first reads into the learned profile.  O(n log n), once a session. */
static void profile_merge(struct model_profile *pr)
{
	uint32_t kept = 0;

	if (pr->ncur == 0)
		return; /* a session that read nothing says nothing */
	profile_learned_reserve(pr, pr->nlearned + pr->ncur);
	for (uint32_t i = 0; i < pr->ncur; i++) {
		const struct profile_first *f = &pr->cur[i];
		const struct profile_slot *s = profile_map_find(&pr->index, f->block);

		if (s) {
			struct profile_entry *e = &pr->learned[s->val];
			uint64_t w = MIN(e->seen, 3);

			/* Recent sessions weigh more: a boot that got faster is followed. */
			e->rel_us = (e->rel_us * w + f->rel_us) / (w + 1);
			e->seen++;
		} else {
			pr->learned[pr->nlearned++] = (struct profile_entry){
			    .block = f->block, .seen = 1, .rel_us = f->rel_us};
		}
	}
	pr->sessions++;
	if (pr->sessions >= PROFILE_SESSIONS_MAX) {
		pr->sessions = (pr->sessions + 1) / 2;
		for (uint32_t i = 0; i < pr->nlearned; i++)
			pr->learned[i].seen = (pr->learned[i].seen + 1) / 2;
	}
	for (uint32_t i = 0; i < pr->nlearned; i++) {
		if (pr->sessions >= 4 && pr->learned[i].seen < PROFILE_KEEP_SHARE * pr->sessions)
			continue;
		pr->learned[kept++] = pr->learned[i];
	}
	pr->nlearned = kept;
	if (pr->nlearned > pr->entries_max) {
		g_qsort_with_data(pr->learned, (gint)pr->nlearned, sizeof(*pr->learned),
				  profile_cmp_seen, NULL);
		pr->nlearned = pr->entries_max;
	}
	g_qsort_with_data(pr->learned, (gint)pr->nlearned, sizeof(*pr->learned), profile_cmp_time,
			  NULL);
	if (pr->learned_cap > 64 && pr->nlearned < pr->learned_cap / 4) {
		pr->learned_cap = MAX(64, pr->learned_cap / 2);
		pr->learned = g_renew(struct profile_entry, pr->learned, pr->learned_cap);
	}
	profile_index_rebuild(pr);
	pr->ncur = 0;
}

static void profile_session_start(struct model *m, uint64_t now_us)
{
	struct model_profile *pr = profile_of(m);

	profile_merge(pr);
	profile_forget_session(pr);
	pr->active = true;
	pr->start_us = now_us;
	pr->anchor_us = now_us;
	pr->anchor_rel = 0;
}

/* A first read of block @j of the profile at @t: move the position, learn the speed. */
static void profile_advance(struct model_profile *pr, uint32_t j, uint64_t t)
{
	const struct profile_entry *e = &pr->learned[j];

	/* Speed from steps forward only: a jump is a different path, not a faster VM. */
	if ((int64_t)j > pr->pos && (int64_t)j <= pr->pos + PROFILE_SPEED_STEPS &&
	    e->rel_us >= pr->anchor_rel + 1000 && t >= pr->anchor_us) {
		double sample = (double)(t - pr->anchor_us) / (double)(e->rel_us - pr->anchor_rel);

		pr->speed += (CLAMP(sample, 0.1, 10.0) - pr->speed) / 8.0;
	}
	pr->pos = j;
	pr->anchor_us = MAX(t, pr->start_us);
	pr->anchor_rel = e->rel_us;
}

static void profile_observe(struct model *m, const struct model_event *ev)
{
	struct model_profile *pr = profile_of(m);
	uint32_t n = MIN(ev->nblocks, PROFILE_BLOCKS_PER_EVENT);

	if (!pr->active)
		profile_session_start(m, ev->time_us);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = (uint32_t)(ev->block + i);
		const struct profile_slot *s;

		if (pr->seen.n >= pr->entries_max || profile_map_find(&pr->seen, b))
			continue;
		profile_map_put(&pr->seen, b, 0);
		if (pr->ncur == pr->cur_cap) {
			pr->cur_cap *= 2;
			pr->cur = g_renew(struct profile_first, pr->cur, pr->cur_cap);
		}
		pr->cur[pr->ncur++] = (struct profile_first){
		    .block = b,
		    .rel_us = ev->time_us > pr->start_us ? ev->time_us - pr->start_us : 0,
		};
		s = profile_map_find(&pr->index, b);
		if (pr->sessions)
			model_rate_add(&pr->matched, s != NULL, 1.0 - 1.0 / 32);
		if (s)
			profile_advance(pr, s->val, ev->time_us);
	}
}

static size_t profile_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
			      struct model_prediction *out, size_t max)
{
	struct model_profile *pr = profile_of(m);
	uint64_t end = now_us + horizon_us;
	double trust = 0.5 + 0.5 * model_rate_get(&pr->matched);
	size_t added = 0;

	if (!pr->active || pr->sessions == 0)
		return 0;
	for (int64_t j = MAX(pr->pos - PROFILE_LOOKBACK, 0); j < pr->nlearned; j++) {
		const struct profile_entry *e = &pr->learned[j];
		uint64_t eta = now_us;

		if (e->rel_us > pr->anchor_rel)
			eta = pr->anchor_us +
			      (uint64_t)((double)(e->rel_us - pr->anchor_rel) * pr->speed);
		eta = MAX(eta, now_us);
		if (eta > end) {
			if (j > pr->pos)
				break;
			continue;
		}
		if (profile_map_find(&pr->seen, e->block))
			continue;
		/* Skipped blocks behind the latest match may still come, but less surely. */
		model_candidates_add(
		    &pr->cand, e->block,
		    (float)(trust * e->seen / pr->sessions * (j < pr->pos ? 0.5 : 1.0)), eta,
		    MODEL_EXPERT_PROFILE);
		if (++added >= max + PROFILE_LOOKBACK)
			break;
	}
	return model_candidates_emit(&pr->cand, now_us, horizon_us, false, out, max);
}

/*
 * The eta profile_predict() would give the last learned block, plus an eighth of the
 * learned session: the last first read is not the end of what the session reads (a
 * boot's application phase re-reads what it has, and a measured benchmark boot printed
 * its ready marker a second after this eta without the margin).
 */
static uint64_t profile_learned_end_us(const struct model *m)
{
	const struct model_profile *pr = profile_of_const(m);
	uint64_t last, end;

	if (!pr->active || pr->sessions == 0 || pr->nlearned == 0)
		return 0;
	last = pr->learned[pr->nlearned - 1].rel_us;
	end = pr->anchor_us;
	if (last > pr->anchor_rel)
		end += (uint64_t)((double)(last - pr->anchor_rel) * pr->speed);
	return end + (uint64_t)((double)last * pr->speed / 8.0);
}

static double profile_confidence(const struct model *m)
{
	const struct model_profile *pr = profile_of_const(m);

	return pr->sessions ? model_rate_get(&pr->matched) : 0.0;
}

/*
 * Payload v1:
 *   u32 sessions
 *   u32 n; n x { u32 block; u32 seen; u64 rel_us }     learned, sorted by rel_us
 *   u32 n; n x { u32 block; u64 rel_us }               the open session, merged at load
 */
static void profile_save(const struct model *m, GByteArray *out)
{
	const struct model_profile *pr = profile_of_const(m);

	model_put_u32(out, pr->sessions);
	model_put_u32(out, pr->nlearned);
	for (uint32_t i = 0; i < pr->nlearned; i++) {
		model_put_u32(out, pr->learned[i].block);
		model_put_u32(out, pr->learned[i].seen);
		model_put_u64(out, pr->learned[i].rel_us);
	}
	model_put_u32(out, pr->ncur);
	for (uint32_t i = 0; i < pr->ncur; i++) {
		model_put_u32(out, pr->cur[i].block);
		model_put_u64(out, pr->cur[i].rel_us);
	}
}

static bool profile_load(struct model *m, struct model_reader *r)
{
	struct model_profile *pr = profile_of(m);
	uint64_t blocks = m->params.image_blocks;
	uint32_t n;

	pr->sessions = model_get_u32(r);
	n = model_get_count(r, pr->entries_max, 16);
	if (r->bad || pr->sessions > PROFILE_SESSIONS_MAX || (n && !pr->sessions))
		return false;
	profile_learned_reserve(pr, n);
	for (uint32_t i = 0; i < n; i++) {
		struct profile_entry *e = &pr->learned[i];

		e->block = model_get_u32(r);
		e->seen = model_get_u32(r);
		e->rel_us = model_get_u64(r);
		if (r->bad || e->block >= blocks || e->seen == 0 || e->seen > pr->sessions ||
		    (i && e->rel_us < e[-1].rel_us))
			return false;
		pr->nlearned = i + 1;
		if (profile_map_find(&pr->index, e->block))
			return false;
		profile_map_put(&pr->index, e->block, i);
	}
	n = model_get_count(r, pr->entries_max, 12);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = model_get_u32(r);
		uint64_t rel = model_get_u64(r);

		if (r->bad || b >= blocks || profile_map_find(&pr->seen, b))
			return false;
		profile_map_put(&pr->seen, b, 0);
		if (pr->ncur == pr->cur_cap) {
			pr->cur_cap *= 2;
			pr->cur = g_renew(struct profile_first, pr->cur, pr->cur_cap);
		}
		pr->cur[pr->ncur++] = (struct profile_first){.block = b, .rel_us = rel};
	}
	if (r->bad)
		return false;
	/* Whoever saved it has moved on: that session is over. */
	profile_merge(pr);
	profile_forget_session(pr);
	return true;
}

static size_t profile_memory_bytes(const struct model *m)
{
	const struct model_profile *pr = profile_of_const(m);

	return sizeof(*pr) + pr->learned_cap * sizeof(*pr->learned) +
	       pr->cur_cap * sizeof(*pr->cur) +
	       (pr->index.cap + pr->seen.cap) * sizeof(struct profile_slot) +
	       model_candidates_memory_bytes(&pr->cand);
}

const struct model_ops model_profile_ops = {
    .name = "profile",
    .expert = MODEL_EXPERT_PROFILE,
    .version = 1,
    .memory_share = 4,
    .create = profile_create,
    .destroy = profile_destroy,
    .reset = profile_reset,
    .observe = profile_observe,
    .predict = profile_predict,
    .confidence = profile_confidence,
    .session_start = profile_session_start,
    .learned_end_us = profile_learned_end_us,
    .save = profile_save,
    .load = profile_load,
    .memory_bytes = profile_memory_bytes,
};

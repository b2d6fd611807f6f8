/*
 * model_hybrid: the experts together, each weighted by how often it has been right.
 *
 * Design.  The hybrid runs every expert in params.hybrid_experts on the same events and
 * merges their predictions into one probability per block.  It needs no word from the
 * prefetcher about which predictions were used: it remembers what each expert predicted
 * and scores it against the accesses it then observes.
 *
 *   predict():  expert predictions ---> pending ring (block, experts, their buckets)
 *                                  \--> calibrate ---> merge per block ---> out
 *   observe():  accessed blocks ---> pending hit?  credit those experts
 *               pending older than the window and past its eta, never hit: debit them
 *
 * A pending prediction is resolved as a hit when its block is read, or as a miss once
 * both params.hybrid_window events have passed since it was issued and the clock is past
 * twice its lead time (so that a profile prediction seconds ahead is not judged after a
 * burst of 64 fast reads).  A block predicted again while pending counts once.
 *
 * Calibration: each expert's predictions fall into buckets by the probability the expert
 * gave; a bucket's decayed hit rate is what the hybrid believes.  A block counts once in
 * every bucket it went through: an expert grows surer as an access nears (a run's next
 * block, the next step of a path), and what matters is the chance of a block now in
 * bucket b, whether or not it was seen lower before.
 *
 * Weighting (MODEL_COMBINE_RELATIVE, the default): the calibrated probability, capped at
 * the expert's own, times exp(-20 x (best expert's precision - this one's)), where
 * precision is that of the blocks the expert gave p >= 0.5; the strongest per block wins.
 * Calibration alone says how often an expert is right, not whether it adds anything: the
 * sequential expert's far window is right 85% of the time but mostly repeats what Markov
 * says later, and costs precision.  Measured by test-model-hybrid (best F1 over
 * thresholds, window 64 events, horizon 32 gaps; the LSTM in the set, 0.620, 0.688 and 0
 * alone on these three):
 *
 *   workload                      best single       noisy-or  max    hedge  relative
 *   runs + repeated pattern       markov     0.975  0.950     0.949  0.975  0.975
 *   interleaved runs / pattern    markov     0.848  0.983     0.983  0.853  0.980
 *   boots + random tail           markov     0.748  0.747     0.743  0.748  0.748
 *
 * Hedge (exp(0.05 x (hits - predictions / 2)), relative to the best) follows the leader and
 * loses the complementary expert in the second workload; calibration alone keeps every
 * redundant prediction in the first.  An expert that stops being right drops out within a
 * few hundred resolved predictions (test /model/hybrid/expert-loses-say).
 *
 * One exception: a profile prediction HYBRID_LONG_LEAD_US or more ahead, or any before
 * HYBRID_PROFILE_SCORED_MIN of them have been scored, keeps the profile's own probability
 * (the share of earlier sessions that read the block).  Unscored, the profile's precision
 * is the prior, and against Markov's measured one that silenced the profile in its first
 * useful session, the learned boot (tests/integration/replay.sh: 1.79 s of stall against
 * 0.56 s for the profile alone; now 0.56 s).  Far ahead, the window scoring asks "read
 * within 64 events and twice the lead?" where a block cache asks "read in this session?",
 * which is what the profile answers.  A session that reads the same blocks in another
 * order (the second half of an ARC trace) scores the profile at 0.1-0.2 here while 50-93%
 * of what it predicts is read: weighted like the others it dropped out, and the mix lost
 * to the profile alone.  aheadfsctl replay --split --reads-only --no-background, 20 ms,
 * 200 Mbit/s, stall seconds:
 *
 *   trace            profile alone   hybrid, before this   hybrid
 *   cloudPhysicsIO   24.5            32.5                  29.7
 *   P3               116.0           144.4                 100.1
 *   P6               59.8            102.8                 59.8
 *   OLTP             15.0            5.7                   5.6
 *
 * "Far" is relative to the window: a lead of more than hybrid_window events at the recent
 * pace (model_pace) is beyond what the window sees, whatever the clock says.  On an ARC
 * trace replayed back to back, 64 events pass in milliseconds, and the profile's
 * predictions a few hundred ms ahead were judged (and cut) by the window: P6, 50.9 s of
 * stall -> 50.0 s (profile alone 49.1 s).
 *
 * Nearer than that, the profile's p is calibrated like the others' but not weighed
 * against them (the relative weight below): its precision there still measures order,
 * and on P6 the LSTM's few sure guesses (precision 0.73 against the profile's 0.08) set a
 * bar that took the profile's near predictions under HYBRID_Q_MIN.  Dropped, they were
 * not fetched, where alone the prefetcher fetches them as critical (critical_window):
 * P6 49.70 s -> 49.28 s of stall (profile alone 49.10).  Kept at the profile's own p
 * instead, P6 came to 49.05 s, but the boots workload here lost 0.005 of F1 to Markov
 * (calibrated: 0.003) and P3 lost 0.3% to the profile alone.
 *
 * The leader.  That still left P6 0.4% behind the profile alone: its near predictions,
 * calibrated by the window to 0.61-0.67, fell under the prefetcher's critical_p (0.64-0.71
 * while the running accuracy is low), while its far ones stood at ~1.0; the critical tier,
 * which walks in eta order, fetched the later blocks and passed over those coming due.
 * The window cannot rank the profile (it measures order), so the mix measures what
 * matters to a block cache instead: of this session's first reads, the share each expert
 * had predicted (p >= HYBRID_LEAD_P) at any time before.  When one expert's share is
 * HYBRID_LEAD_MARGIN above every other's (after HYBRID_LEAD_MIN_READS first reads), it
 * leads: its predictions stand as it gave them (probability and eta), the others'
 * predictions of its blocks are neither merged nor scored (they cannot change what is
 * fetched, and scored they vouched for what the others add alone), and an expert that
 * caught under HYBRID_FOLLOW_MIN of the first reads the leader missed is not heard.  On
 * the second half of the ARC traces the profile covers 0.55-0.99 of first reads against
 * 0.03-0.30 for the next (cloudPhysicsIO: 0.94 against Markov's 0.81, a lead only early);
 * on test-model-hybrid's boots workload the profile and Markov tie, and nobody leads.
 * Measured in contrib/bench/REPLAY.md, section 10.
 *
 *   pending entry      block, event issued, deadline, mask of experts (bit 7: the mix),
 *                      mask already credited, per expert the set of buckets it used
 *   pending lookup     open addressing over ring sequence numbers, 4 probes; a slot whose
 *                      entry has left the ring is free
 *
 * Blocks read this session are cached (the read path keeps what it reads), so guessing
 * that one is read again saves nothing: such predictions are passed on (the caller drops
 * what it has) but not scored.  Scored, they made the sequential expert and Markov look
 * sure on P6, whose reader re-reads a loop from its cache, and their fresh guesses,
 * mostly wrong, went out with that weight.  A miss on blocks all read before proves the
 * caller does not keep them (no cache, a full disk, eviction): from then on, for the
 * session, everything is scored again.  One bit per image block; above an eighth of the
 * memory cap (a 16 MiB cap: 16M blocks, 1 TiB at 64 KiB) nothing is left out.
 * contrib/bench/REPLAY.md, section 5, has the measurements.
 *
 * The first mount (nothing learned, contrib/bench/ablation.sh "boot-first": 9.60 s of
 * stall against 9.25 s for the sequential expert alone).  Two things silenced the
 * sequential expert, the only one with anything to say:
 *   - the bar of the relative weighting was set by experts scored on a handful of sure
 *     predictions (Markov: 4 in the whole boot), whose precision is the prior's 0.8; an
 *     expert sets the bar once its precision weighs HYBRID_BAR_WEIGHT (~64 scored);
 *   - calibration took the sequential expert's p >= 0.6 down to its measured ~0.4, into
 *     the predictive tier, which yields to waiting demand.  A wrong sequential guess
 *     costs one block of link time inside a range being fetched anyway; a right one saves
 *     a round trip.  So while no expert has learned this session (model_learned_end_us
 *     is 0) and the sequential expert is the best measured, its p stands, and the mix
 *     fetches what it alone would (9.19 s; test /model/hybrid/first-mount-runs).
 *
 * Confidence is the geometric mean of the mix's precision (of the blocks it output with
 * probability >= HYBRID_MIX_TRACK, the share then read) and its coverage (of the blocks
 * read, the share it had output): a mix that is right but silent is no more trusted than
 * one that talks but is wrong.
 */
#include <math.h>
#include <string.h>

#include "aheadfs/blockmap.h"
#include "aheadfs/model_expert.h"

#define HYBRID_EXPERTS_MAX 6 /* 6 x HYBRID_BUCKETS bits in a pending entry */
#define HYBRID_MIX_BIT 7 /* in a pending entry's mask: the mix's own output */
#define HYBRID_LED_BIT 7 /* in predicted_by: the leader's, at this predict() */
#define HYBRID_BUCKETS 6
#define HYBRID_PROBES 4
/* Predictions asked of each expert: as many as the learner asks of the mix.  At 512 the
 * profile's ten-second horizon was cut short on busy traces, and the mix started its far
 * prefetches later than the profile alone (cloudPhysicsIO, replay: 22.3 s of stall
 * against the profile's 20.7; at 1024, 20.3). */
#define HYBRID_SUB_MAX 1024
#define HYBRID_Q_MIN 0.01
#define HYBRID_MIX_TRACK 0.25
#define HYBRID_CALIB_DECAY (1.0 - 1.0 / 256)
#define HYBRID_RATE_DECAY (1.0 - 1.0 / 128)
#define HYBRID_HEDGE_ETA 0.05
#define HYBRID_HEDGE_THETA 0.5
#define HYBRID_HEDGE_FLOOR 20.0
#define HYBRID_CONFIDENT_BUCKETS 0x38 /* the expert said p >= 0.5 */
#define HYBRID_RELATIVE_SHARPNESS 20.0
#define HYBRID_BLOCKS_PER_EVENT 256
#define HYBRID_LONG_LEAD_US 1000000
#define HYBRID_PROFILE_SCORED_MIN 256
/* The largest share of the memory cap the blocks-read-this-session bitmap may take. */
#define HYBRID_READ_MAP_SHARE 8
/* The leader (see the design above): an expert "predicted" a block when it gave it this
 * probability or more; it leads once this many first reads are in and its share of them
 * is this much above every other expert's. */
#define HYBRID_LEAD_P 0.5
#define HYBRID_LEAD_MIN_READS 32
#define HYBRID_LEAD_MARGIN 0.25
/* Under a leader, another expert that predicted less than this share of the first reads
 * the leader missed adds nothing worth its fetches. */
#define HYBRID_FOLLOW_MIN 0.05
/* The weight of an expert's precision (decayed count of sure predictions scored, prior
 * 2, at most 128) from which it sets the bar: about 64 predictions scored. */
#define HYBRID_BAR_WEIGHT 50.0

struct hybrid_expert {
	struct model *model;
	struct model_rate calib[HYBRID_BUCKETS];
	struct model_rate precision;
	double log_weight;
	uint64_t issued, hits;
	uint64_t covered; /* this session's first reads it had predicted (p >= HYBRID_LEAD_P) */
	/* ... and of those, how many expert j had not: what it adds to j */
	uint64_t covered_without[HYBRID_EXPERTS_MAX];
};

struct hybrid_pending {
	uint32_t block;
	uint32_t event; /* low bits of the event count at issue */
	uint64_t deadline_us;
	uint64_t buckets; /* per expert, 6 bits: the buckets it gave the block */
	uint8_t mask;	  /* who predicted it */
	uint8_t hit;	  /* who has been credited */
};

struct model_hybrid {
	struct model base;
	struct hybrid_expert experts[HYBRID_EXPERTS_MAX];
	unsigned nexperts;
	enum model_combine combine;
	double best_log_weight; /* at the latest predict() */
	double best_precision;	/* likewise */
	bool learned;		/* likewise: an expert knows this session (learned_end_us) */
	/* pending predictions: a ring of sequence numbers [head, tail) */
	struct hybrid_pending *ring;
	uint32_t ring_cap, head, tail;
	uint32_t *lookup; /* ring sequence + 1; 0: free */
	uint32_t lookup_cap;
	uint64_t now_us; /* time of the latest event */
	struct model_pace pace; /* between events: how far ahead the window sees */
	/* Blocks read this session; NULL when the map would take more than
	 * HYBRID_READ_MAP_SHARE of the memory cap (then nothing is left out). */
	struct blockmap *session_read;
	bool reads_uncached; /* a re-read missed this session: reads are not (all) kept */
	/* Per block, the experts that predicted it this session at p >= HYBRID_LEAD_P (one
	 * bit each), and HYBRID_LED_BIT while a predict() runs: the leader's blocks, which
	 * the others do not touch.  NULL when a byte per block would take more than
	 * HYBRID_READ_MAP_SHARE of the memory cap (then no expert leads). */
	uint8_t *predicted_by;
	uint64_t first_reads; /* blocks read this session for the first time */
	int leader;	      /* at the latest predict(): the leading expert, or -1 */
	uint32_t *led_blocks; /* the blocks with HYBRID_LED_BIT set, to clear it */
	size_t nled;
	struct model_rate mix_precision, mix_coverage;
	struct model_prediction *buf;
	struct model_candidates cand;
};

static struct model_hybrid *hybrid_of(struct model *m)
{
	return (struct model_hybrid *)m;
}

static const struct model_hybrid *hybrid_of_const(const struct model *m)
{
	return (const struct model_hybrid *)m;
}

static int hybrid_bucket(double p)
{
	return p < 0.1 ? 0 : p < 0.3 ? 1 : p < 0.5 ? 2 : p < 0.7 ? 3 : p < 0.9 ? 4 : 5;
}

/* Read this session: cached, so a prediction of it can save nothing. */
static bool hybrid_read_before(const struct model_hybrid *h, uint64_t block)
{
	return h->session_read && !h->reads_uncached && blockmap_test(h->session_read, block);
}

/* @ev is validated (model_observe): its blocks lie within the image. */
static void hybrid_mark_read(struct model_hybrid *h, const struct model_event *ev)
{
	uint64_t count = MAX(ev->nblocks, 1u);

	if (!h->session_read)
		return;
	/* Every block of a miss read before: the caller does not keep what is read (no
	 * cache, a full disk, or eviction), so re-reads are worth predicting again. */
	if (ev->kind == MODEL_ACCESS_MISS && blockmap_test_all(h->session_read, ev->block, count))
		h->reads_uncached = true;
	for (uint64_t b = ev->block; b < ev->block + count; b++)
		blockmap_set(h->session_read, b);
}

/* What this session read and who predicted it: gone at a session start. */
static void hybrid_forget_session(struct model_hybrid *h)
{
	if (h->session_read)
		blockmap_clear_all(h->session_read);
	h->reads_uncached = false;
	if (h->predicted_by)
		memset(h->predicted_by, 0, h->base.params.image_blocks);
	h->first_reads = 0;
	for (unsigned i = 0; i < h->nexperts; i++) {
		h->experts[i].covered = 0;
		memset(h->experts[i].covered_without, 0, sizeof(h->experts[i].covered_without));
	}
	h->leader = -1;
}

/* Before hybrid_mark_read: which of the event's blocks are first reads, and who saw
 * them coming. */
static void hybrid_count_first_reads(struct model_hybrid *h, const struct model_event *ev)
{
	uint32_t n = MIN(ev->nblocks, HYBRID_BLOCKS_PER_EVENT);

	if (!h->predicted_by)
		return;
	for (uint64_t b = ev->block; b < ev->block + n; b++) {
		if (blockmap_test(h->session_read, b))
			continue;
		h->first_reads++;
		for (unsigned i = 0; i < h->nexperts; i++) {
			struct hybrid_expert *x = &h->experts[i];
			unsigned by = h->predicted_by[b];

			if (!(by & (1u << i)))
				continue;
			x->covered++;
			for (unsigned j = 0; j < h->nexperts; j++)
				x->covered_without[j] += !(by & (1u << j));
		}
	}
}

/*
 * Under a leader, whether @x has caught enough of what the leader missed to be heard;
 * until the leader has missed HYBRID_LEAD_MIN_READS first reads, it is.
 */
static bool hybrid_follower_adds(const struct model_hybrid *h, const struct hybrid_expert *x)
{
	const struct hybrid_expert *lead = &h->experts[h->leader];
	uint64_t missed = h->first_reads - lead->covered;

	return missed < HYBRID_LEAD_MIN_READS ||
	       (double)x->covered_without[h->leader] >= HYBRID_FOLLOW_MIN * (double)missed;
}

/* The expert whose predictions stand, by what it covered this session, or -1. */
static int hybrid_choose_leader(const struct model_hybrid *h)
{
	double best = 0.0, second = 0.0;
	int lead = -1;

	if (!h->predicted_by || h->combine != MODEL_COMBINE_RELATIVE ||
	    h->first_reads < HYBRID_LEAD_MIN_READS)
		return -1;
	for (unsigned i = 0; i < h->nexperts; i++) {
		double c = (double)h->experts[i].covered / (double)h->first_reads;

		if (c > best) {
			second = best;
			best = c;
			lead = (int)i;
		} else if (c > second) {
			second = c;
		}
	}
	return best - second >= HYBRID_LEAD_MARGIN ? lead : -1;
}

static void hybrid_forget_pending(struct model_hybrid *h)
{
	h->head = h->tail = 0;
	memset(h->lookup, 0, h->lookup_cap * sizeof(*h->lookup));
}

/* An expert's scores as if it had never predicted; its model is left alone. */
static void hybrid_expert_forget(struct hybrid_expert *x)
{
	static const double mid[HYBRID_BUCKETS] = {0.05, 0.2, 0.4, 0.6, 0.8, 0.95};

	/* Until measured, believe a little less than the expert says. */
	for (int b = 0; b < HYBRID_BUCKETS; b++)
		model_rate_init(&x->calib[b], 0.8 * mid[b], 2.0);
	model_rate_init(&x->precision, 0.8, 2.0);
	x->log_weight = 0.0;
	x->issued = x->hits = 0;
}

static void hybrid_reset_scores(struct model_hybrid *h)
{
	for (unsigned i = 0; i < h->nexperts; i++)
		hybrid_expert_forget(&h->experts[i]);
	model_rate_init(&h->mix_precision, 0.1, 5.0);
	model_rate_init(&h->mix_coverage, 0.0, 5.0);
}

static void hybrid_reset(struct model *m)
{
	struct model_hybrid *h = hybrid_of(m);

	for (unsigned i = 0; i < h->nexperts; i++)
		h->experts[i].model->ops->reset(h->experts[i].model);
	hybrid_forget_pending(h);
	hybrid_forget_session(h);
	hybrid_reset_scores(h);
	h->now_us = 0;
	h->pace = (struct model_pace){0};
}

static void hybrid_destroy(struct model *m)
{
	struct model_hybrid *h = hybrid_of(m);

	for (unsigned i = 0; i < h->nexperts; i++)
		model_free(h->experts[i].model);
	model_candidates_fini(&h->cand);
	g_free(h->ring);
	g_free(h->lookup);
	g_free(h->buf);
	if (h->session_read)
		blockmap_free(h->session_read);
	g_free(h->led_blocks);
	g_free(h->predicted_by);
	g_free(h);
}

/* The leader's map, a byte per block, and the led blocks of one predict(). */
static size_t hybrid_lead_bytes(const struct model_hybrid *h, uint64_t image_blocks)
{
	if (!h->predicted_by)
		return 0;
	return image_blocks + HYBRID_SUB_MAX * sizeof(*h->led_blocks);
}

static struct model *hybrid_create(const struct model_params *params, GError **error)
{
	struct model_hybrid *h = g_new0(struct model_hybrid, 1);
	const struct model_ops *ops[HYBRID_EXPERTS_MAX];
	size_t cap = params->memory_cap_bytes, own, left;
	unsigned shares = 0, n = 0;

	for (int e = 0; e < MODEL_EXPERT_COUNT; e++) {
		if (!(params->hybrid_experts & (1u << e)))
			continue;
		if (!model_ops_find(e) || n == HYBRID_EXPERTS_MAX) {
			g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
				    "hybrid: no expert %s in this build",
				    model_expert_to_string(e));
			g_free(h);
			return NULL;
		}
		ops[n] = model_ops_find(e);
		shares += ops[n++]->memory_share;
	}
	h->combine = params->hybrid_combine;
	/* The pending ring gets a sixteenth of the cap, within reason. */
	h->ring_cap = 256;
	while (h->ring_cap < 16384 &&
	       (size_t)h->ring_cap * 2 * (sizeof(*h->ring) + 4 * sizeof(*h->lookup)) <= cap / 16)
		h->ring_cap *= 2;
	h->lookup_cap = h->ring_cap * 4;
	h->ring = g_new0(struct hybrid_pending, h->ring_cap);
	h->lookup = g_new0(uint32_t, h->lookup_cap);
	h->buf = g_new(struct model_prediction, HYBRID_SUB_MAX);
	if ((params->image_blocks + 63) / 64 * sizeof(uint64_t) <= cap / HYBRID_READ_MAP_SHARE)
		h->session_read = blockmap_new(params->image_blocks);
	if (h->session_read && params->image_blocks <= cap / HYBRID_READ_MAP_SHARE) {
		h->predicted_by = g_malloc0(params->image_blocks);
		h->led_blocks = g_new(uint32_t, HYBRID_SUB_MAX);
	}
	h->leader = -1;
	model_candidates_init(&h->cand);
	own = sizeof(*h) + h->ring_cap * sizeof(*h->ring) + h->lookup_cap * sizeof(*h->lookup) +
	      (h->session_read ? blockmap_bytes(h->session_read) : 0) +
	      hybrid_lead_bytes(h, params->image_blocks) +
	      HYBRID_SUB_MAX * (sizeof(*h->buf) + 2 * n * sizeof(struct model_candidate));
	left = cap > own ? cap - own : 0;
	for (unsigned i = 0; i < n; i++) {
		struct model_params p = *params;

		p.memory_cap_bytes = shares ? left / shares * ops[i]->memory_share : 0;
		h->experts[i].model = model_new_inner(ops[i], &p, error);
		if (!h->experts[i].model) {
			hybrid_destroy(&h->base);
			return NULL;
		}
		h->nexperts = i + 1;
	}
	hybrid_forget_pending(h);
	hybrid_reset_scores(h);
	return &h->base;
}

static struct hybrid_pending *hybrid_find(const struct model_hybrid *h, uint32_t block,
					  uint32_t **slot_out)
{
	uint32_t mask = h->lookup_cap - 1;
	uint32_t i = (uint32_t)model_hash64(block) & mask;
	uint32_t *free_slot = NULL, *oldest = NULL;

	for (int probe = 0; probe < HYBRID_PROBES; probe++, i = (i + 1) & mask) {
		uint32_t *slot = &h->lookup[i];
		uint32_t seq = *slot - 1;
		bool live = *slot && seq - h->head < h->tail - h->head;

		if (live && h->ring[seq & (h->ring_cap - 1)].block == block)
			return &h->ring[seq & (h->ring_cap - 1)];
		if (!live) {
			if (!free_slot)
				free_slot = slot;
		} else if (!oldest || seq - h->head < *oldest - 1 - h->head) {
			oldest = slot;
		}
	}
	if (slot_out)
		*slot_out = free_slot ? free_slot : oldest;
	return NULL;
}

static void hybrid_credit(struct model_hybrid *h, const struct hybrid_pending *pe, uint8_t bits,
			  bool hit)
{
	for (unsigned i = 0; i < h->nexperts; i++) {
		struct hybrid_expert *x = &h->experts[i];
		unsigned visited = (unsigned)(pe->buckets >> (HYBRID_BUCKETS * i)) & 0x3f;

		if (!(bits & (1u << i)))
			continue;
		for (int b = 0; b < HYBRID_BUCKETS; b++)
			if (visited & (1u << b))
				model_rate_add(&x->calib[b], hit, HYBRID_CALIB_DECAY);
		if (visited & HYBRID_CONFIDENT_BUCKETS)
			model_rate_add(&x->precision, hit, HYBRID_RATE_DECAY);
		x->issued++;
		x->hits += hit;
		x->log_weight += HYBRID_HEDGE_ETA * ((hit ? 1.0 : 0.0) - HYBRID_HEDGE_THETA);
	}
	if (bits & (1u << HYBRID_MIX_BIT))
		model_rate_add(&h->mix_precision, hit, HYBRID_RATE_DECAY);
}

static void hybrid_normalise_weights(struct model_hybrid *h)
{
	double best = -INFINITY;

	for (unsigned i = 0; i < h->nexperts; i++)
		best = MAX(best, h->experts[i].log_weight);
	for (unsigned i = 0; i < h->nexperts; i++) {
		double *w = &h->experts[i].log_weight;

		*w = MAX(*w - best, -HYBRID_HEDGE_FLOOR);
	}
}

/* Resolves the oldest pending prediction as a miss for whoever it has not been a hit for. */
static void hybrid_expire_one(struct model_hybrid *h)
{
	const struct hybrid_pending *pe = &h->ring[h->head & (h->ring_cap - 1)];

	hybrid_credit(h, pe, pe->mask & ~pe->hit, false);
	h->head++;
}

static void hybrid_expire(struct model_hybrid *h)
{
	uint32_t now_event = (uint32_t)h->base.events;
	bool any = false;

	while (h->head != h->tail) {
		const struct hybrid_pending *pe = &h->ring[h->head & (h->ring_cap - 1)];

		if (now_event - pe->event <= h->base.params.hybrid_window ||
		    h->now_us <= pe->deadline_us)
			break;
		hybrid_expire_one(h);
		any = true;
	}
	if (any)
		hybrid_normalise_weights(h);
}

static void hybrid_observe(struct model *m, const struct model_event *ev)
{
	struct model_hybrid *h = hybrid_of(m);
	uint32_t n = MIN(ev->nblocks, HYBRID_BLOCKS_PER_EVENT);
	bool covered = false;

	h->now_us = MAX(h->now_us, ev->time_us);
	model_pace_observe(&h->pace, ev->time_us);
	for (uint32_t i = 0; i < n; i++) {
		struct hybrid_pending *pe = hybrid_find(h, (uint32_t)(ev->block + i), NULL);
		uint8_t fresh;

		if (!pe)
			continue;
		covered |= i == 0 && (pe->mask & (1u << HYBRID_MIX_BIT));
		fresh = pe->mask & ~pe->hit;
		if (fresh)
			hybrid_credit(h, pe, fresh, true);
		pe->hit |= fresh;
	}
	model_rate_add(&h->mix_coverage, covered, HYBRID_RATE_DECAY);
	hybrid_count_first_reads(h, ev);
	hybrid_mark_read(h, ev);
	hybrid_expire(h);
	for (unsigned i = 0; i < h->nexperts; i++)
		model_observe(h->experts[i].model, ev);
}

/* Remembers that @bit predicted @p, to score it when the block is read or the time is up. */
static void hybrid_remember(struct model_hybrid *h, const struct model_prediction *p,
			    uint64_t now_us, unsigned bit, int bucket)
{
	uint32_t *slot = NULL;
	struct hybrid_pending *pe = hybrid_find(h, (uint32_t)p->block, &slot);

	if (!pe) {
		uint64_t lead = p->eta_us > now_us ? p->eta_us - now_us : 0;

		if (h->tail - h->head == h->ring_cap) {
			hybrid_expire_one(h);
			hybrid_normalise_weights(h);
		}
		pe = &h->ring[h->tail & (h->ring_cap - 1)];
		*pe = (struct hybrid_pending){
		    .block = (uint32_t)p->block,
		    .event = (uint32_t)h->base.events,
		    .deadline_us = p->eta_us + lead,
		};
		*slot = ++h->tail; /* sequence + 1 */
	}
	pe->mask |= (uint8_t)(1u << bit);
	if (bit < HYBRID_MIX_BIT)
		pe->buckets |= 1ull << (HYBRID_BUCKETS * bit + (unsigned)bucket);
}

static uint64_t hybrid_learned_end_us(const struct model *m);

/*
 * The profile is not weighed against the others: near, the window judges its order, not
 * its blocks, and its precision is not comparable with theirs (see the design above).
 */
static double hybrid_relative_weight(const struct model_hybrid *h, const struct hybrid_expert *x)
{
	double gap = h->best_precision - model_rate_get(&x->precision);

	if (x->model->ops->expert == MODEL_EXPERT_PROFILE)
		return 1.0;

	return exp(-HYBRID_RELATIVE_SHARPNESS * MAX(gap, 0.0));
}

/* How far ahead the window can judge: what its events take at the recent pace. */
static uint64_t hybrid_sight_us(const struct model_hybrid *h)
{
	if (!h->pace.measured)
		return HYBRID_LONG_LEAD_US;
	return MIN((uint64_t)HYBRID_LONG_LEAD_US,
		   (uint64_t)h->base.params.hybrid_window * model_pace_gap_us(&h->pace));
}

static double hybrid_weigh(const struct model_hybrid *h, const struct hybrid_expert *x, double p,
			   uint64_t lead_us)
{
	/* The leader's predictions stand, and the others are heard for what they add; see
	 * the design above. */
	if (h->leader >= 0 && x == &h->experts[h->leader])
		return p;
	if (h->leader >= 0 && !hybrid_follower_adds(h, x))
		return 0.0;
	/* The profile's probability is the share of earlier sessions that read the block:
	 * already measured, on the scale that matters to a block cache (read in this
	 * session).  Far ahead, where the window scoring here only sees that the order
	 * changed, and before that scoring has anything to say, it stands as it is; see the
	 * design above. */
	if (h->combine == MODEL_COMBINE_RELATIVE && x->model->ops->expert == MODEL_EXPERT_PROFILE &&
	    (lead_us >= hybrid_sight_us(h) || x->issued < HYBRID_PROFILE_SCORED_MIN))
		return p;
	/* Nothing learned about this session and the sequential expert the best measured:
	 * its sure guesses go as they would alone (critical), not calibrated down into the
	 * tier that yields to demand.  They are cheap: each extends a run being read.  See
	 * the design above. */
	if (h->combine == MODEL_COMBINE_RELATIVE && x->model->ops->expert == MODEL_EXPERT_SEQUENTIAL &&
	    !h->learned && model_rate_get(&x->precision) >= h->best_precision)
		return p;
	if (h->combine == MODEL_COMBINE_HEDGE)
		return p * exp(MIN(x->log_weight - h->best_log_weight, 0.0));
	if (h->combine == MODEL_COMBINE_RELATIVE)
		return MIN(model_rate_get(&x->calib[hybrid_bucket(p)]), p) *
		       hybrid_relative_weight(h, x);
	return model_rate_get(&x->calib[hybrid_bucket(p)]);
}

/*
 * Expert @i's predictions into the candidates.  The leader's blocks are marked led;
 * another expert's prediction of a led block is neither added nor scored: it cannot change
 * what is fetched, so it says nothing about what that expert adds.
 */
static void hybrid_predict_expert(struct model_hybrid *h, unsigned i, uint64_t now_us,
				  uint64_t horizon_us)
{
	struct hybrid_expert *x = &h->experts[i];
	bool leader = h->leader == (int)i;
	size_t k = x->model->ops->predict(x->model, now_us, horizon_us, h->buf, HYBRID_SUB_MAX);

	for (size_t j = 0; j < k; j++) {
		const struct model_prediction *p = &h->buf[j];
		double q = hybrid_weigh(h, x, p->probability,
					p->eta_us > now_us ? p->eta_us - now_us : 0);

		if (h->predicted_by && p->probability >= HYBRID_LEAD_P)
			h->predicted_by[p->block] |= (uint8_t)(1u << i);
		if (leader && !(h->predicted_by[p->block] & (1u << HYBRID_LED_BIT))) {
			h->predicted_by[p->block] |= 1u << HYBRID_LED_BIT;
			h->led_blocks[h->nled++] = (uint32_t)p->block;
		} else if (!leader && h->nled &&
			   (h->predicted_by[p->block] & (1u << HYBRID_LED_BIT))) {
			continue;
		}
		/* Not scored: see the design above. */
		if (!hybrid_read_before(h, p->block))
			hybrid_remember(h, p, now_us, i, hybrid_bucket(p->probability));
		if (q >= HYBRID_Q_MIN)
			model_candidates_add(&h->cand, p->block, (float)q, p->eta_us,
					     x->model->ops->expert);
	}
}

static size_t hybrid_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
			     struct model_prediction *out, size_t max)
{
	struct model_hybrid *h = hybrid_of(m);
	size_t n;

	h->best_log_weight = -INFINITY;
	h->best_precision = 0.0;
	h->learned = hybrid_learned_end_us(m) != 0;
	for (unsigned i = 0; i < h->nexperts; i++) {
		h->best_log_weight = MAX(h->best_log_weight, h->experts[i].log_weight);
		/* An expert scored on a handful of sure predictions sets no bar: its
		 * precision is mostly the prior's. */
		if (h->experts[i].precision.total >= HYBRID_BAR_WEIGHT)
			h->best_precision =
			    MAX(h->best_precision, model_rate_get(&h->experts[i].precision));
	}
	h->leader = hybrid_choose_leader(h);
	/* The leader first, so that the others know which blocks are its. */
	if (h->leader >= 0)
		hybrid_predict_expert(h, (unsigned)h->leader, now_us, horizon_us);
	for (unsigned i = 0; i < h->nexperts; i++)
		if ((int)i != h->leader)
			hybrid_predict_expert(h, i, now_us, horizon_us);
	for (size_t j = 0; j < h->nled; j++)
		h->predicted_by[h->led_blocks[j]] &= (uint8_t)~(1u << HYBRID_LED_BIT);
	h->nled = 0;
	n = model_candidates_emit(&h->cand, now_us, horizon_us,
				  h->combine == MODEL_COMBINE_CALIBRATED_NOISY_OR, out, max);
	for (size_t j = 0; j < n; j++)
		if (out[j].probability >= HYBRID_MIX_TRACK)
			hybrid_remember(h, &out[j], now_us, HYBRID_MIX_BIT, 0);
	return n;
}

static double hybrid_confidence(const struct model *m)
{
	const struct model_hybrid *h = hybrid_of_const(m);

	return sqrt(model_rate_get(&h->mix_precision) * model_rate_get(&h->mix_coverage));
}

static void hybrid_session_start(struct model *m, uint64_t now_us)
{
	struct model_hybrid *h = hybrid_of(m);

	/* What was predicted for the last mount cannot come true in this one: drop it
	 * unscored rather than blame the experts for the remount. */
	hybrid_forget_pending(h);
	hybrid_forget_session(h);
	h->now_us = now_us;
	model_pace_restart(&h->pace);
	for (unsigned i = 0; i < h->nexperts; i++)
		model_session_start(h->experts[i].model, now_us);
}

static void hybrid_set_cpu_scale(struct model *m, double scale)
{
	struct model_hybrid *h = hybrid_of(m);

	for (unsigned i = 0; i < h->nexperts; i++)
		model_set_cpu_scale(h->experts[i].model, scale);
}

static uint64_t hybrid_learned_end_us(const struct model *m)
{
	const struct model_hybrid *h = hybrid_of_const(m);
	uint64_t end = 0;

	for (unsigned i = 0; i < h->nexperts; i++)
		end = MAX(end, model_learned_end_us(h->experts[i].model));
	return end;
}

/*
 * Payload v1:
 *   rate mix_precision, mix_coverage
 *   u32 n; n x {
 *     u32 expert; rate calib[6]; rate precision; f64 log_weight; u64 issued; u64 hits;
 *     u32 payload version; u64 length; the expert's payload
 *   }
 * Experts in the state but not in this hybrid, or saved in another payload version, are
 * skipped; those in this hybrid but not in the state (or skipped) start empty.
 */
static void hybrid_save(const struct model *m, GByteArray *out)
{
	const struct model_hybrid *h = hybrid_of_const(m);

	model_put_rate(out, &h->mix_precision);
	model_put_rate(out, &h->mix_coverage);
	model_put_u32(out, h->nexperts);
	for (unsigned i = 0; i < h->nexperts; i++) {
		const struct hybrid_expert *x = &h->experts[i];
		size_t at;

		model_put_u32(out, x->model->ops->expert);
		for (int b = 0; b < HYBRID_BUCKETS; b++)
			model_put_rate(out, &x->calib[b]);
		model_put_rate(out, &x->precision);
		model_put_f64(out, x->log_weight);
		model_put_u64(out, x->issued);
		model_put_u64(out, x->hits);
		model_put_u32(out, x->model->ops->version);
		model_put_u64(out, 0);
		at = out->len;
		x->model->ops->save(x->model, out);
		for (int k = 0; k < 8; k++)
			out->data[at - 8 + k] = (uint8_t)((uint64_t)(out->len - at) >> (8 * k));
	}
}

static bool hybrid_load(struct model *m, struct model_reader *r)
{
	struct model_hybrid *h = hybrid_of(m);
	uint32_t n, done = 0;

	model_get_rate(r, &h->mix_precision);
	model_get_rate(r, &h->mix_coverage);
	n = model_get_count(r, MODEL_EXPERT_COUNT, 4);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t id = model_get_u32(r);
		struct hybrid_expert tmp = {0}, *x = &tmp;
		struct model_reader sub;
		uint32_t version;
		uint64_t len;
		const uint8_t *p;

		for (unsigned i = 0; i < h->nexperts; i++)
			if (h->experts[i].model->ops->expert == id)
				x = &h->experts[i];
		if (x != &tmp) {
			unsigned bit = (unsigned)(x - h->experts);

			if (done & (1u << bit))
				return false;
			done |= 1u << bit;
		}
		for (int b = 0; b < HYBRID_BUCKETS; b++)
			model_get_rate(r, &x->calib[b]);
		model_get_rate(r, &x->precision);
		/* Weights are normalised now and then, so a saved one may sit above 0. */
		x->log_weight = model_get_f64_in(r, -1e6, 1e6);
		x->issued = model_get_u64(r);
		x->hits = model_get_u64(r);
		version = model_get_u32(r);
		len = model_get_u64(r);
		if (r->bad || len > r->len - r->off || x->hits > x->issued)
			return false;
		p = model_get_bytes(r, (size_t)len);
		/* An expert this build does not have, or whose format changed since: it
		 * starts empty, the others keep what they learned. */
		if (x != &tmp && version != x->model->ops->version)
			hybrid_expert_forget(x);
		if (x == &tmp || version != x->model->ops->version)
			continue;
		sub = (struct model_reader){.p = p, .len = (size_t)len};
		if (!x->model->ops->load(x->model, &sub) || sub.bad || sub.off != sub.len)
			return false;
	}
	hybrid_normalise_weights(h);
	return !r->bad;
}

static size_t hybrid_memory_bytes(const struct model *m)
{
	const struct model_hybrid *h = hybrid_of_const(m);
	size_t bytes = sizeof(*h) + h->ring_cap * sizeof(*h->ring) +
		       h->lookup_cap * sizeof(*h->lookup) + HYBRID_SUB_MAX * sizeof(*h->buf) +
		       (h->session_read ? blockmap_bytes(h->session_read) : 0) +
		       hybrid_lead_bytes(h, h->base.params.image_blocks) +
		       model_candidates_memory_bytes(&h->cand);

	for (unsigned i = 0; i < h->nexperts; i++)
		bytes += model_memory_bytes(h->experts[i].model);
	return bytes;
}

/* An expert's say in the mix, 0..1, as hybrid_weigh() gives it (for stats). */
static double hybrid_say(const struct model_hybrid *h, const struct hybrid_expert *x)
{
	if (h->combine == MODEL_COMBINE_HEDGE)
		return exp(x->log_weight);
	if (h->leader >= 0 && x == &h->experts[h->leader])
		return 1.0;
	if (h->leader >= 0 && !hybrid_follower_adds(h, x))
		return 0.0;
	return h->combine == MODEL_COMBINE_RELATIVE ? hybrid_relative_weight(h, x) : 1.0;
}

static void hybrid_stats(const struct model *m, struct model_stats *st)
{
	const struct model_hybrid *h = hybrid_of_const(m);

	st->precision = model_rate_get(&h->mix_precision);
	st->coverage = model_rate_get(&h->mix_coverage);
	st->nexperts = h->nexperts;
	st->leader = h->leader >= 0 ? h->experts[h->leader].model->ops->expert : MODEL_EXPERT_NONE;
	for (unsigned i = 0; i < h->nexperts; i++) {
		const struct hybrid_expert *x = &h->experts[i];

		st->experts[i].expert = x->model->ops->expert;
		st->experts[i].precision = model_rate_get(&x->precision);
		st->experts[i].coverage =
		    h->first_reads ? (double)x->covered / (double)h->first_reads : 0.0;
		st->experts[i].weight = hybrid_say(h, x);
		st->experts[i].issued = x->issued;
		st->experts[i].hits = x->hits;
	}
}

const struct model_ops model_hybrid_ops = {
    .name = "hybrid",
    .expert = MODEL_EXPERT_HYBRID,
    .version = 1,
    .memory_share = 0,
    .create = hybrid_create,
    .destroy = hybrid_destroy,
    .reset = hybrid_reset,
    .observe = hybrid_observe,
    .predict = hybrid_predict,
    .confidence = hybrid_confidence,
    .session_start = hybrid_session_start,
    .learned_end_us = hybrid_learned_end_us,
    .set_cpu_scale = hybrid_set_cpu_scale,
    .save = hybrid_save,
    .load = hybrid_load,
    .memory_bytes = hybrid_memory_bytes,
    .stats = hybrid_stats,
};

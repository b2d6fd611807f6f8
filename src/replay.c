/*
 * replay: the mount's learner, prefetch policy and origin queue on a simulated link.
 *
 * Design. A discrete-event simulation in simulated nanoseconds: no threads, no I/O, no
 * clock but for timing the model calls. What the mount does with real transfers happens
 * here to requests that only have a size, so one trace can be replayed against every model
 * and link in seconds, and two runs with the same inputs agree to the last byte. The model
 * (model_*), the policy (prefetch_plan, prefetch_background_quota) and the link estimator
 * (link_rtt, link_body_*, link_get) are the mount's own; what is simulated copies
 * image.c, origin.c and learner.c:
 *
 *   reader --read--> blocks cached?  all: HIT, done at once (local reads take no time)
 *     |              in flight:      LATE, wait for the prefetch to arrive
 *     |              absent:         MISS, one demand request per run of absent blocks
 *     |                              (at most max_request_bytes, 4 MiB)
 *     v
 *   model_observe(HIT|MISS|LATE) --> model_predict(now, horizon) --> drop cached and
 *   in-flight blocks --> prefetch_plan --> one request per run of consecutive blocks of
 *   one tier, in the order chosen (at most 2 MiB) --> background quota --> fill from the
 *   lowest block not cached (image_fill)
 *
 * The learner hears of a read when it is answered (image_tell() runs after the wait),
 * stamped with the read's start: a hit at once, a miss or late read one wait later.
 * observe_at_issue tells it at the start instead, to measure what that lead time is worth.
 * It plans on every event and every tick_us (20 ms, learner.c's TICK_US) after its last
 * plan, so profile blocks coming due and a budget freed by arrivals are acted on while
 * the reader thinks or waits.
 *
 * Link. `connections` transfers run at once; prefetches may hold at most
 * connections - max(1, connections / 4) of them (origin.c), queued demand starts before
 * any queued prefetch, and a running transfer is never preempted. A request costs rtt_us
 * to its first byte, then its bytes share the bandwidth with every transfer past its first
 * byte: processor sharing, each of n such transfers gets bandwidth / n (what TCP flows
 * sharing one bottleneck get), so a demand read is slowed, not blocked, by prefetches.
 * Bandwidth 0 is infinite: a request takes exactly one RTT. Every transfer tells link.c
 * its time to first byte, the bytes it receives as the clock moves and its end, counted
 * from the moment it went to the link, as origin.c does in the mount.
 *
 * Reader. One read at a time, in trace order (a booting guest mostly waits for each read),
 * as contrib/bench/replay.c replays: read i is issued at
 *     max(issue[i-1] + (time[i] - time[i-1]) x scale,  end of read i-1)
 * or, for a trace without timestamps, max(issue[i-1] + gap_us, end of read i-1). A read
 * that finds a block in flight waits for it to arrive, and one that finds a prefetch
 * merely queued waits for it too (image.c attaches to the fetch), but the fetch moves to
 * the demand queue, as origin_promote() moves it in the mount. The read path's readahead
 * (readahead.c) follows a streaming reader as in image.c, whatever the model; its
 * requests count as prefetches (tiers.readahead), as in the mount's stats.
 * stall is the time each read waited for blocks; local reads cost nothing, so a run of
 * hits takes no simulated time. Write records are skipped and counted: a write would
 * only make blocks local, which says nothing about prediction, and the mount serves
 * reads only. Reads past the image end are clipped to it.
 *
 * Sessions. Each training trace, then the measured one, is a new mount: empty data
 * cache, a fresh link estimate, in-flight requests forgotten, and model_session_start()
 * on the one model that keeps learning throughout (the "learned boot"). Sessions follow
 * one another on one clock, one simulated second apart; the clock starts at 1 s so that
 * 0 keeps meaning "never" for the policy.
 *
 * Measures (measured session only). The background tier completes the image whatever
 * is read; it is counted apart, in tiers.background, and left out of these:
 *   prefetched_blocks       blocks requested by the critical and predictive tiers
 *                           (arrived or not when the trace ended)
 *   prefetched_used_blocks  ... and then demanded, arrived or still in flight
 *   accuracy                prefetched_used / prefetched
 *   coverage                prefetched_used / distinct demanded blocks (none were cached
 *                           at the session start): report.c's used / (used + missed)
 *   coverage_timely         the same for blocks that had arrived when first demanded
 *   wasted_bytes            (prefetched - prefetched_used) x block size
 * The running accuracy the policy sees is learner.c's: used / arrived over the tiers that
 * follow predictions (not the background fill), unknown below 32 arrived.
 *
 * Per block, one byte:
 *
 *   bits  meaning
 *   0-1   BLK_ABSENT, BLK_INFLIGHT (queued or running), BLK_CACHED
 *   2-4   who requested it: 0 demand, 1 + enum prefetch_tier, SOURCE_READAHEAD
 *   5     demanded this session
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "aheadfs/link.h"
#include "aheadfs/readahead.h"
#include "aheadfs/replay.h"

#define BLK_STATE 0x03u
#define BLK_ABSENT 0x00u
#define BLK_INFLIGHT 0x01u
#define BLK_CACHED 0x02u
#define BLK_SOURCE_SHIFT 2
#define BLK_SOURCE 0x1cu
#define BLK_DEMANDED 0x20u
#define SOURCE_READAHEAD (1 + REPLAY_SOURCE_READAHEAD)

#define SOURCE_DEMAND 0u /* else 1 + enum prefetch_tier */

#define REPLAY_PREFETCH_REQUEST (2u * 1024 * 1024) /* image.c RA_REQUEST_BYTES */
#define REPLAY_ACCURACY_MIN_BLOCKS 32		   /* learner.c ACCURACY_MIN_BLOCKS */
#define REPLAY_BG_WINDOW_NS 1000000000ull
#define REPLAY_SESSION_GAP_NS 1000000000ull
/* Bytes left that count as none: ceil() of the finishing time overshoots by < 1 ns. */
#define REPLAY_DONE_BYTES 1e-6
#define REPLAY_NEVER UINT64_MAX

G_DEFINE_QUARK(aheadfs_replay_error, replay_error)

struct replay_request {
	uint64_t first;
	uint64_t count;
	unsigned source;    /* SOURCE_DEMAND or 1 + tier */
	uint64_t submit_ns; /* entered the queue */
	uint64_t start_ns;  /* went to the link */
	uint64_t ttfb_ns;   /* first byte; set when it starts */
	double remaining;   /* bytes still to arrive after the first byte */
	bool receiving;	    /* past the first byte */
	bool promoted;	    /* a prefetch a read joined while queued: moved to demand */
	bool prefetch_slot; /* started from the prefetch queue, in one of its slots */
};

struct replay_sim {
	const struct replay_params *p;
	struct prefetch_params pf;
	struct model *model;
	struct link link;
	uint64_t nblocks;
	uint64_t max_demand_blocks, max_prefetch_blocks;
	uint8_t *blk;
	uint8_t *blk_expert; /* enum model_expert of a block's prediction */
	uint64_t now;	  /* ns */
	double bw_per_ns; /* bytes per ns; 0: infinite */
	unsigned prefetch_slots;

	/* The origin: queues by priority, then the transfers running, in start order. */
	GQueue demand_q, prefetch_q;
	struct replay_request **running;
	unsigned nrunning, nrunning_prefetch;
	unsigned demand_outstanding;	  /* queued + running: the policy's demand_waiting */
	uint64_t prefetch_inflight_bytes; /* queued + running prefetch bytes */
	uint64_t bg_inflight_bytes;	  /* ... of which background fill */

	/* The learner. */
	uint64_t last_miss_us;
	uint64_t next_plan_ns;
	/* for the running accuracy, per tier (background never counted) */
	uint64_t arrived_prefetch[REPLAY_N_SOURCES], arrived_used[REPLAY_N_SOURCES];
	struct readahead ra;
	uint64_t fill_cursor, cached_blocks;
	uint64_t bg_window_start_us, bg_window_bytes;
	struct model_prediction *preds;
	struct prefetch_choice *choices;

	/* The reader: blocks it still waits for. */
	bool waiting;
	uint64_t wait_first, wait_end, wait_pending;
	uint64_t read_issue_ns;
	enum model_access_kind read_kind;
	struct model_event read_event; /* for the learner, once the read is answered */

	struct replay_result *res; /* of the session running */
	uint64_t obs_ns, pred_ns;
};

void replay_params_init(struct replay_params *p)
{
	memset(p, 0, sizeof(*p));
	p->model = "hybrid";
	p->block_size = REPLAY_DEFAULT_BLOCK_SIZE;
	prefetch_params_init(&p->prefetch, p->block_size);
	p->background = true;
	p->readahead = true;
	p->connections = REPLAY_DEFAULT_CONNECTIONS;
	p->max_request_bytes = REPLAY_DEFAULT_MAX_REQUEST;
	p->scale = 1.0;
	p->horizon_us = REPLAY_DEFAULT_HORIZON_US;
	p->tick_us = REPLAY_DEFAULT_TICK_US;
	p->max_predictions = REPLAY_DEFAULT_MAX_PREDICTIONS;
}

static uint64_t replay_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned blk_state(const struct replay_sim *s, uint64_t b)
{
	return s->blk[b] & BLK_STATE;
}

static inline unsigned blk_source(const struct replay_sim *s, uint64_t b)
{
	return (s->blk[b] & BLK_SOURCE) >> BLK_SOURCE_SHIFT;
}

static inline void blk_set_state(struct replay_sim *s, uint64_t b, unsigned state)
{
	s->blk[b] = (uint8_t)((s->blk[b] & ~BLK_STATE) | state);
}

/* Queue a request for blocks [first, first + count), all absent; they are in flight now. */
static void sim_submit(struct replay_sim *s, uint64_t first, uint64_t count, unsigned source)
{
	struct replay_request *r = g_new0(struct replay_request, 1);
	uint64_t bytes = count * s->p->block_size;

	r->first = first;
	r->count = count;
	r->source = source;
	r->submit_ns = s->now;
	for (uint64_t b = first; b < first + count; b++)
		s->blk[b] = (uint8_t)((s->blk[b] & BLK_DEMANDED) | BLK_INFLIGHT |
				      source << BLK_SOURCE_SHIFT);
	s->res->requests++;
	s->res->bytes_fetched += bytes;
	if (source == SOURCE_DEMAND) {
		s->res->demand_requests++;
		s->res->demand_fetched_blocks += count;
		s->demand_outstanding++;
		g_queue_push_tail(&s->demand_q, r);
	} else {
		struct replay_tier_stats *t = &s->res->tiers[source - 1];

		t->blocks += count;
		t->bytes += bytes;
		if (source != 1 + PREFETCH_TIER_BACKGROUND)
			s->res->prefetched_blocks += count;
		s->prefetch_inflight_bytes += bytes;
		if (source == 1 + PREFETCH_TIER_BACKGROUND)
			s->bg_inflight_bytes += bytes;
		g_queue_push_tail(&s->prefetch_q, r);
	}
}

/* Start what may start: demand first, prefetch only within its slots (origin.c). */
static void sim_start_ready(struct replay_sim *s)
{
	while (s->nrunning < s->p->connections) {
		struct replay_request *r = g_queue_pop_head(&s->demand_q);

		if (!r) {
			if (s->nrunning_prefetch >= s->prefetch_slots)
				break;
			r = g_queue_pop_head(&s->prefetch_q);
			if (!r)
				break;
			s->nrunning_prefetch++;
			r->prefetch_slot = true;
		}
		r->start_ns = s->now;
		r->ttfb_ns = s->now + s->p->rtt_us * 1000;
		r->remaining = (double)(r->count * s->p->block_size);
		r->receiving = false;
		s->running[s->nrunning++] = r;
	}
}

static unsigned sim_receiving(const struct replay_sim *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->nrunning; i++)
		n += s->running[i]->receiving;
	return n;
}

/* When the next transfer reaches its first byte or its end; REPLAY_NEVER if none runs. */
static uint64_t sim_next_transfer_event(const struct replay_sim *s)
{
	unsigned n = sim_receiving(s);
	uint64_t next = REPLAY_NEVER;

	for (unsigned i = 0; i < s->nrunning; i++) {
		const struct replay_request *r = s->running[i];
		uint64_t t;

		if (!r->receiving)
			t = r->ttfb_ns;
		else if (s->bw_per_ns == 0 || r->remaining <= REPLAY_DONE_BYTES)
			t = s->now;
		else
			t = s->now + (uint64_t)ceil(r->remaining * n / s->bw_per_ns);
		next = MIN(next, t);
	}
	return next;
}

/* Move the clock to @t, no event before it: the receiving transfers share the bandwidth. */
static void sim_advance(struct replay_sim *s, uint64_t t)
{
	unsigned n = sim_receiving(s);
	double moved = 0;

	if (t > s->now && n > 0 && s->bw_per_ns > 0) {
		double each = s->bw_per_ns * (double)(t - s->now) / n;

		for (unsigned i = 0; i < s->nrunning; i++)
			if (s->running[i]->receiving)
				s->running[i]->remaining -= each;
		moved = each * n;
	}
	s->now = MAX(s->now, t);
	if (moved > 0)
		link_body_bytes(&s->link, s->now / 1000, (uint64_t)llround(moved));
}

/* A transfer has all its bytes: the blocks are cached, the reader may go on. */
static void sim_complete(struct replay_sim *s, struct replay_request *r)
{
	uint64_t bytes = r->count * s->p->block_size;

	bool background = r->source == 1 + PREFETCH_TIER_BACKGROUND;

	link_body_end(&s->link, s->now / 1000);
	for (uint64_t b = r->first; b < r->first + r->count; b++) {
		blk_set_state(s, b, BLK_CACHED);
		s->cached_blocks++;
		if (r->source != SOURCE_DEMAND && !background && (s->blk[b] & BLK_DEMANDED))
			s->arrived_used[r->source - 1]++;
		if (s->waiting && b >= s->wait_first && b < s->wait_end)
			s->wait_pending--;
	}
	if (r->source == SOURCE_DEMAND) {
		s->demand_outstanding--;
	} else {
		if (!background)
			s->arrived_prefetch[r->source - 1] += r->count;
		else
			s->bg_inflight_bytes -= bytes;
		s->prefetch_inflight_bytes -= bytes;
		if (r->prefetch_slot)
			s->nrunning_prefetch--;
		if (r->promoted)
			s->demand_outstanding--;
	}
	g_free(r);
}

/* Everything due at s->now: first bytes, then ends, then what may start in their place. */
static void sim_settle(struct replay_sim *s)
{
	bool again = true;

	while (again) {
		unsigned kept = 0;

		again = false;
		for (unsigned i = 0; i < s->nrunning; i++) {
			struct replay_request *r = s->running[i];

			if (!r->receiving && r->ttfb_ns <= s->now) {
				r->receiving = true;
				link_rtt(&s->link, (r->ttfb_ns - r->start_ns) / 1000);
				link_body_begin(&s->link, s->now / 1000);
				if (s->bw_per_ns == 0)
					r->remaining = 0;
			}
		}
		for (unsigned i = 0; i < s->nrunning; i++) {
			struct replay_request *r = s->running[i];

			if (r->receiving && r->remaining <= REPLAY_DONE_BYTES) {
				sim_complete(s, r);
				again = true;
			} else {
				s->running[kept++] = r;
			}
		}
		s->nrunning = kept;
		if (again)
			sim_start_ready(s);
	}
}

/* Prefetch choices as requests: runs of consecutive blocks of one tier (image_prefetch). */
static void sim_prefetch(struct replay_sim *s, const struct prefetch_choice *c, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i + 1;

		while (j < n && j - i < s->max_prefetch_blocks && c[j].tier == c[i].tier &&
		       c[j].block == c[j - 1].block + 1)
			j++;
		/* Within the run, skip what is no longer absent (a choice listed twice). */
		for (uint64_t b = c[i].block; b <= c[j - 1].block;) {
			uint64_t e;

			if (b >= s->nblocks || blk_state(s, b) != BLK_ABSENT) {
				b++;
				continue;
			}
			for (e = b + 1;
			     e <= c[j - 1].block && e < s->nblocks && blk_state(s, e) == BLK_ABSENT;
			     e++)
				;
			sim_submit(s, b, e - b, 1 + (unsigned)c[i].tier);
			/* the run's choices are consecutive blocks: b's is c[i + b - c[i].block] */
			for (; b < e; b++) {
				enum model_expert x = c[i + (b - c[i].block)].expert;

				s->blk_expert[b] = (uint8_t)x;
				s->res->experts[x].blocks++;
			}
		}
		i = j;
	}
}

/* Background fill of up to @quota bytes from the lowest block not cached (image_fill). */
static uint64_t sim_fill(struct replay_sim *s, uint64_t quota)
{
	uint64_t want = MAX(quota / s->p->block_size, 1), before = s->prefetch_inflight_bytes;

	if (s->fill_cursor >= s->nblocks && s->cached_blocks < s->nblocks)
		s->fill_cursor = 0;
	while (want > 0 && s->fill_cursor < s->nblocks) {
		uint64_t b = s->fill_cursor, e;

		while (b < s->nblocks && blk_state(s, b) == BLK_CACHED)
			b++;
		if (b >= s->nblocks) {
			s->fill_cursor = s->nblocks;
			break;
		}
		e = MIN(b + want, s->nblocks);
		for (uint64_t x = b; x < e;) {
			uint64_t y;

			if (blk_state(s, x) != BLK_ABSENT) {
				x++;
				continue;
			}
			for (y = x + 1; y < e && y - x < s->max_prefetch_blocks &&
					blk_state(s, y) == BLK_ABSENT;
			     y++)
				;
			sim_submit(s, x, y - x, 1 + PREFETCH_TIER_BACKGROUND);
			x = y;
		}
		want -= e - b;
		s->fill_cursor = e;
	}
	return s->prefetch_inflight_bytes - before;
}

/* The running accuracy of the sources in @mask (learner.c image_accuracy); -1: too early. */
static double sim_accuracy(const struct replay_sim *s, unsigned mask)
{
	uint64_t ahead = 0, used = 0;

	for (int t = 0; t < REPLAY_N_SOURCES; t++) {
		if (!(mask & (1u << t)))
			continue;
		ahead += s->arrived_prefetch[t];
		used += s->arrived_used[t];
	}
	return ahead < REPLAY_ACCURACY_MIN_BLOCKS ? -1.0 : (double)used / (double)ahead;
}

/* One round of the learner (learner_prefetch): predictions -> tiers -> requests. */
static void sim_plan(struct replay_sim *s)
{
	uint64_t now_us = s->now / 1000, t0, quota;
	struct prefetch_state st = {.now_us = now_us};
	size_t n, kept = 0, k;

	link_get(&s->link, &st.rtt_us, &st.bandwidth);
	st.inflight_bytes = s->prefetch_inflight_bytes;
	st.urgent_inflight_bytes = s->prefetch_inflight_bytes - s->bg_inflight_bytes;
	st.demand_waiting = s->demand_outstanding;
	st.last_demand_us = s->last_miss_us;
	st.accuracy = sim_accuracy(s, 1u << PREFETCH_TIER_CRITICAL | 1u << PREFETCH_TIER_PREDICTIVE |
					  1u << REPLAY_SOURCE_READAHEAD);
	st.predictive_accuracy = sim_accuracy(s, 1u << PREFETCH_TIER_PREDICTIVE);
	st.host_pressure = 0;
	st.learned_end_us = model_learned_end_us(s->model);

	t0 = replay_clock_ns();
	n = model_predict(s->model, now_us, s->p->horizon_us, s->preds, s->p->max_predictions);
	s->pred_ns += replay_clock_ns() - t0;
	s->res->predicts++;
	for (size_t i = 0; i < n; i++)
		if (s->preds[i].block < s->nblocks && blk_state(s, s->preds[i].block) == BLK_ABSENT &&
		    !(s->p->readahead && readahead_ahead(&s->ra, s->preds[i].block)))
			s->preds[kept++] = s->preds[i];
	k = prefetch_plan(&s->pf, &st, s->preds, kept, s->choices, s->p->max_predictions);
	if (k > 0) {
		uint64_t before = s->prefetch_inflight_bytes;

		sim_prefetch(s, s->choices, k);
		st.inflight_bytes += s->prefetch_inflight_bytes - before;
	}

	if (s->p->background) {
		if (now_us - s->bg_window_start_us >= REPLAY_BG_WINDOW_NS / 1000) {
			s->bg_window_start_us = now_us;
			s->bg_window_bytes = 0;
		}
		quota = prefetch_background_quota(&s->pf, &st, s->bg_window_bytes);
		if (quota > 0)
			s->bg_window_bytes += sim_fill(s, quota);
	}
	sim_start_ready(s);
	s->next_plan_ns = s->now + s->p->tick_us * 1000;
}

/*
 * The learner hears of the read: image_tell() reports a read when it is answered, stamped
 * with its start, and the learner plans as soon as it has the event.
 */
static void sim_tell(struct replay_sim *s)
{
	uint64_t t0 = replay_clock_ns();

	model_observe(s->model, &s->read_event);
	s->obs_ns += replay_clock_ns() - t0;
	s->res->observes++;
	sim_plan(s);
}

/* One request per run of absent blocks in [first, end), each at most @chunk blocks. */
static void sim_submit_absent(struct replay_sim *s, uint64_t first, uint64_t end, uint64_t chunk,
			      unsigned source)
{
	for (uint64_t b = first; b < end;) {
		uint64_t e;

		if (blk_state(s, b) != BLK_ABSENT) {
			b++;
			continue;
		}
		for (e = b + 1; e < end && e - b < chunk && blk_state(s, e) == BLK_ABSENT; e++)
			;
		sim_submit(s, b, e - b, source);
		b = e;
	}
}

/* image_readahead_locked(): the absent blocks readahead wants, in its request size. */
static void sim_readahead(struct replay_sim *s, uint64_t first, uint64_t end)
{
	uint64_t from, n;

	readahead_link(&s->ra, link_bdp_bytes(&s->link) / s->p->block_size, s->prefetch_slots);
	n = readahead_follow(&s->ra, first, end, &from);

	sim_submit_absent(s, from, MIN(from + n, s->nblocks), readahead_request_blocks(&s->ra),
			  SOURCE_READAHEAD);
}

/*
 * A read joined queued prefetches for blocks in [first, end): move them to the demand
 * queue, as image.c's origin_promote() does, so the reader does not wait behind other
 * prefetches.  They still count as prefetches of their tier.
 */
static void sim_promote(struct replay_sim *s, uint64_t first, uint64_t end)
{
	GList *l = s->prefetch_q.head;

	while (l) {
		GList *next = l->next;
		struct replay_request *r = l->data;

		if (r->first < end && first < r->first + r->count) {
			g_queue_delete_link(&s->prefetch_q, l);
			r->promoted = true;
			s->demand_outstanding++;
			g_queue_push_tail(&s->demand_q, r);
		}
		l = next;
	}
}

/* The reader issues one read now. Returns false if it fell wholly past the image. */
static bool sim_read(struct replay_sim *s, const struct tracefile_record *rec)
{
	uint64_t bs = s->p->block_size, first, end, absent = 0, inflight = 0;
	struct replay_result *res = s->res;

	if (rec->length == 0 || rec->offset >= s->nblocks * bs) {
		res->skipped_reads++;
		return false;
	}
	first = rec->offset / bs;
	end = MIN((rec->offset + rec->length - 1) / bs + 1, s->nblocks);
	for (uint64_t b = first; b < end; b++) {
		unsigned state = blk_state(s, b), source = blk_source(s, b);

		absent += state == BLK_ABSENT;
		inflight += state == BLK_INFLIGHT;
		if (s->blk[b] & BLK_DEMANDED)
			continue;
		s->blk[b] |= BLK_DEMANDED;
		res->distinct_blocks++;
		if (state == BLK_ABSENT || source == SOURCE_DEMAND)
			continue;
		res->tiers[source - 1].used_blocks++;
		if (source == 1 + PREFETCH_TIER_BACKGROUND)
			continue;
		if (state == BLK_CACHED)
			s->arrived_used[source - 1]++;
		res->prefetched_used_blocks++;
		if (source != SOURCE_READAHEAD)
			res->experts[s->blk_expert[b]].used_blocks++;
		if (state == BLK_CACHED)
			res->prefetched_hit_blocks++;
		else
			res->late_blocks++;
	}
	/* A prefetch still queued for a block this read needs goes out as demand now. */
	if (inflight)
		sim_promote(s, first, end);
	/* The read path follows a streaming reader on its slow path, and on hits while
	 * the stream lasts (image.c). */
	if (s->p->readahead && (absent || inflight || readahead_streaming(&s->ra)))
		sim_readahead(s, first, end);
	/* One demand request per run of absent blocks (image_plan_locked). */
	sim_submit_absent(s, first, end, s->max_demand_blocks, SOURCE_DEMAND);

	res->ops++;
	res->demand_blocks += end - first;
	s->read_kind = absent ? MODEL_ACCESS_MISS : inflight ? MODEL_ACCESS_LATE : MODEL_ACCESS_HIT;
	if (absent) {
		res->demand_misses++;
		s->last_miss_us = s->now / 1000;
	} else if (inflight) {
		res->late++;
	} else {
		res->hits++;
	}
	s->waiting = absent + inflight > 0;
	s->wait_first = first;
	s->wait_end = end;
	s->wait_pending = absent + inflight;
	s->read_issue_ns = s->now;

	s->read_event = (struct model_event){
	    .time_us = s->now / 1000,
	    .block = first,
	    .nblocks = (uint32_t)MIN(end - first, UINT32_MAX),
	    .kind = s->read_kind,
	};
	sim_start_ready(s);
	if (!s->waiting || s->p->observe_at_issue)
		sim_tell(s);
	return true;
}

static void sim_read_done(struct replay_sim *s)
{
	uint64_t waited = s->now - s->read_issue_ns;

	s->res->stall_s += (double)waited / 1e9;
	if (s->read_kind == MODEL_ACCESS_LATE)
		s->res->stall_late_s += (double)waited / 1e9;
	s->waiting = false;
	if (!s->p->observe_at_issue)
		sim_tell(s);
}

static void sim_drop_requests(struct replay_sim *s)
{
	struct replay_request *r;

	while ((r = g_queue_pop_head(&s->demand_q)))
		g_free(r);
	while ((r = g_queue_pop_head(&s->prefetch_q)))
		g_free(r);
	for (unsigned i = 0; i < s->nrunning; i++)
		g_free(s->running[i]);
	s->nrunning = 0;
	s->nrunning_prefetch = 0;
	s->demand_outstanding = 0;
	s->prefetch_inflight_bytes = 0;
	s->bg_inflight_bytes = 0;
}

/* One mount replaying @trace from an empty cache; the counters go to s->res. */
static void sim_session(struct replay_sim *s, const struct tracefile *trace)
{
	const struct replay_params *p = s->p;
	uint64_t start = s->now, issue = s->now, prev_issue = s->now, last_done = s->now;
	double prev_time = 0;
	bool have_prev = false;
	size_t i = 0;

	memset(s->blk, 0, s->nblocks);
	s->cached_blocks = 0;
	s->fill_cursor = 0;
	s->last_miss_us = 0;
	memset(s->arrived_prefetch, 0, sizeof(s->arrived_prefetch));
	readahead_init(&s->ra, s->nblocks, (unsigned)__builtin_ctz(s->p->block_size));
	memset(s->arrived_used, 0, sizeof(s->arrived_used));
	s->bg_window_start_us = 0;
	s->bg_window_bytes = 0;
	s->waiting = false;
	link_init(&s->link);
	model_session_start(s->model, s->now / 1000);
	sim_plan(s); /* the profile's critical tier goes out before the first read */

	for (;;) {
		uint64_t t;

		/* Issue every read due now; hits take no time, so many may be. */
		while (!s->waiting && i < trace->n_records && issue <= s->now) {
			const struct tracefile_record *rec = &trace->records[i++];

			if (rec->op == 'W') {
				s->res->writes_skipped++;
				continue;
			}
			if (have_prev) {
				double gap =
				    trace->has_timestamps
					? MAX(rec->time_s - prev_time, 0.0) * p->scale * 1e9
					: (double)p->gap_us * 1000;

				issue = MAX(prev_issue + (uint64_t)llround(gap), last_done);
				if (issue > s->now) {
					i--; /* not yet: come back for it at `issue` */
					break;
				}
			}
			have_prev = true;
			prev_time = rec->time_s;
			prev_issue = s->now;
			sim_read(s, rec);
			if (!s->waiting)
				last_done = s->now;
		}
		if (!s->waiting && i >= trace->n_records)
			break;

		t = MIN(sim_next_transfer_event(s), s->next_plan_ns);
		if (!s->waiting)
			t = MIN(t, issue);
		sim_advance(s, t);
		sim_settle(s);
		if (s->waiting && s->wait_pending == 0) {
			sim_read_done(s);
			last_done = s->now;
		}
		/* A waiting reader always has a transfer running for it: demand starts first. */
		g_assert(!s->waiting || s->nrunning > 0);
		if (s->now >= s->next_plan_ns)
			sim_plan(s);
	}
	s->res->elapsed_s = (double)(last_done - start) / 1e9;
	link_get(&s->link, &s->res->link_rtt_us, &s->res->link_bandwidth);
	link_clear(&s->link);
	sim_drop_requests(s);
	s->now = last_done + REPLAY_SESSION_GAP_NS;
}

static gboolean replay_check_params(const struct replay_params *p, GError **error)
{
	if (p->block_size < 4096 || p->block_size > (64u << 20) ||
	    (p->block_size & (p->block_size - 1))) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID,
			    "block size %u: a power of two from 4K to 64M", p->block_size);
		return FALSE;
	}
	if (p->connections < 1 || p->connections > 1024) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID, "%u connections: 1 to 1024",
			    p->connections);
		return FALSE;
	}
	if (!(p->scale >= 0) || !isfinite(p->scale)) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID,
			    "time scale %g: a finite number >= 0", p->scale);
		return FALSE;
	}
	if (p->tick_us == 0 || p->max_predictions == 0 || p->max_request_bytes == 0) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID,
			    "tick, prediction count and request size must be > 0");
		return FALSE;
	}
	if (p->rtt_us > 3600u * G_USEC_PER_SEC) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID,
			    "RTT of %" G_GUINT64_FORMAT " us: at most an hour", p->rtt_us);
		return FALSE;
	}
	return TRUE;
}

static uint64_t replay_image_size(const struct replay_params *p,
				  const struct tracefile *const *train, size_t ntrain,
				  const struct tracefile *trace)
{
	uint64_t size = p->image_size;

	if (size == 0) {
		size = tracefile_extent(trace);
		for (size_t i = 0; i < ntrain; i++)
			size = MAX(size, tracefile_extent(train[i]));
	}
	return (size + p->block_size - 1) / p->block_size * p->block_size;
}

gboolean replay_run(const struct replay_params *params, const struct tracefile *const *train,
		    size_t ntrain, const struct tracefile *trace, struct replay_result *result,
		    GError **error)
{
	struct replay_sim s = {.p = params};
	struct replay_result scratch;
	struct model_params mp = params->model_params;
	gboolean ok = FALSE;

	memset(result, 0, sizeof(*result));
	if (!replay_check_params(params, error))
		return FALSE;
	result->model = params->model;
	result->image_size = replay_image_size(params, train, ntrain, trace);
	result->image_blocks = result->image_size / params->block_size;
	if (result->image_blocks == 0) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_EMPTY,
			    "nothing to replay: no access in the traces");
		return FALSE;
	}
	if (result->image_blocks > REPLAY_IMAGE_BLOCKS_MAX) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_SIZE,
			    "image of %" G_GUINT64_FORMAT
			    " blocks: the simulator takes at most %" G_GUINT64_FORMAT
			    " (use a larger block size)",
			    result->image_blocks, REPLAY_IMAGE_BLOCKS_MAX);
		return FALSE;
	}
	mp.image_blocks = result->image_blocks;
	s.model = model_new(params->model, &mp, error);
	if (!s.model)
		return FALSE;

	s.pf = params->prefetch;
	s.pf.block_size = params->block_size;
	s.nblocks = result->image_blocks;
	s.max_demand_blocks = MAX(params->max_request_bytes / params->block_size, 1);
	s.max_prefetch_blocks =
	    MIN(s.max_demand_blocks, MAX(REPLAY_PREFETCH_REQUEST / params->block_size, 1));
	s.bw_per_ns = (double)params->bandwidth / 1e9;
	s.prefetch_slots =
	    params->connections > 1 ? params->connections - MAX(1, params->connections / 4) : 1;
	s.blk = g_malloc(s.nblocks);
	s.blk_expert = g_malloc0(s.nblocks);
	s.running = g_new(struct replay_request *, params->connections);
	s.preds = g_new(struct model_prediction, params->max_predictions);
	s.choices = g_new(struct prefetch_choice, params->max_predictions);
	g_queue_init(&s.demand_q);
	g_queue_init(&s.prefetch_q);
	s.now = G_USEC_PER_SEC * 1000ull;

	for (size_t i = 0; i < ntrain; i++) {
		memset(&scratch, 0, sizeof(scratch));
		s.res = &scratch;
		sim_session(&s, train[i]);
		result->train_sessions++;
		result->train_ops += scratch.ops;
		result->observes += scratch.observes;
		result->predicts += scratch.predicts;
	}
	{
		uint64_t observes = result->observes, predicts = result->predicts;

		s.res = result;
		result->observes = result->predicts = 0;
		sim_session(&s, trace);
		result->observes += observes;
		result->predicts += predicts;
	}
	if (result->ops == 0) {
		g_set_error(error, REPLAY_ERROR, REPLAY_ERROR_EMPTY,
			    "nothing to replay: no read in the measured trace");
		goto out;
	}
	result->wasted_bytes =
	    (result->prefetched_blocks - result->prefetched_used_blocks) * params->block_size;
	result->accuracy = result->prefetched_blocks ? (double)result->prefetched_used_blocks /
							   (double)result->prefetched_blocks
						     : 0.0;
	result->coverage = result->distinct_blocks ? (double)result->prefetched_used_blocks /
							 (double)result->distinct_blocks
						   : 0.0;
	result->coverage_timely = result->distinct_blocks ? (double)result->prefetched_hit_blocks /
								(double)result->distinct_blocks
							  : 0.0;
	result->confidence = model_confidence(s.model);
	result->model_bytes = model_memory_bytes(s.model);
	result->ns_per_observe = result->observes ? (double)s.obs_ns / result->observes : 0;
	result->ns_per_predict = result->predicts ? (double)s.pred_ns / result->predicts : 0;
	ok = TRUE;
out:
	model_free(s.model);
	g_free(s.blk);
	g_free(s.blk_expert);
	g_free(s.running);
	g_free(s.preds);
	g_free(s.choices);
	return ok;
}

static void json_number(GString *out, const char *key, double v, int decimals)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	char fmt[8];

	g_snprintf(fmt, sizeof(fmt), "%%.%df", decimals);
	g_string_append_printf(out, "\"%s\": %s", key,
			       g_ascii_formatd(buf, sizeof(buf), fmt, isfinite(v) ? v : 0.0));
}

static void json_u64(GString *out, const char *key, uint64_t v)
{
	g_string_append_printf(out, "\"%s\": %" G_GUINT64_FORMAT, key, v);
}

char *replay_result_to_json(const struct replay_result *r, const struct replay_params *p)
{
	GString *out = g_string_new("{");
	g_autofree char *model = g_strescape(r->model ? r->model : "", NULL);

	g_string_append_printf(out, "\"model\": \"%s\", ", model);
	json_u64(out, "ops", r->ops);
	g_string_append(out, ", ");
	json_u64(out, "demand_blocks", r->demand_blocks);
	g_string_append(out, ", ");
	json_u64(out, "distinct_blocks", r->distinct_blocks);
	g_string_append(out, ", ");
	json_u64(out, "demand_misses", r->demand_misses);
	g_string_append(out, ", ");
	json_u64(out, "late", r->late);
	g_string_append(out, ", ");
	json_u64(out, "hits", r->hits);
	g_string_append(out, ", ");
	json_u64(out, "prefetched_blocks", r->prefetched_blocks);
	g_string_append(out, ", ");
	json_u64(out, "prefetched_used_blocks", r->prefetched_used_blocks);
	g_string_append(out, ", ");
	json_u64(out, "prefetched_hit_blocks", r->prefetched_hit_blocks);
	g_string_append(out, ", ");
	json_u64(out, "late_blocks", r->late_blocks);
	g_string_append(out, ", ");
	json_number(out, "accuracy", r->accuracy, 4);
	g_string_append(out, ", ");
	json_number(out, "coverage", r->coverage, 4);
	g_string_append(out, ", ");
	json_number(out, "coverage_timely", r->coverage_timely, 4);
	g_string_append(out, ", ");
	json_u64(out, "wasted_bytes", r->wasted_bytes);
	g_string_append(out, ", ");
	json_u64(out, "bytes_fetched", r->bytes_fetched);
	g_string_append(out, ", ");
	json_u64(out, "requests", r->requests);
	g_string_append(out, ", ");
	json_u64(out, "demand_requests", r->demand_requests);
	g_string_append(out, ", ");
	json_u64(out, "demand_fetched_blocks", r->demand_fetched_blocks);
	g_string_append(out, ", ");
	json_number(out, "stall_s", r->stall_s, 6);
	g_string_append(out, ", ");
	json_number(out, "stall_late_s", r->stall_late_s, 6);
	g_string_append(out, ", ");
	json_number(out, "elapsed_s", r->elapsed_s, 6);
	g_string_append(out, ", ");
	json_u64(out, "writes_skipped", r->writes_skipped);
	g_string_append(out, ", ");
	json_u64(out, "skipped_reads", r->skipped_reads);
	g_string_append(out, ", \"tiers\": {");
	for (int t = 0; t < REPLAY_N_SOURCES; t++)
		g_string_append_printf(
		    out,
		    "%s\"%s\": {\"blocks\": %" G_GUINT64_FORMAT ", \"bytes\": %" G_GUINT64_FORMAT
		    ", \"used_blocks\": %" G_GUINT64_FORMAT "}",
		    t ? ", " : "",
		    t == REPLAY_SOURCE_READAHEAD ? "readahead"
						 : prefetch_tier_to_string((enum prefetch_tier)t),
		    r->tiers[t].blocks, r->tiers[t].bytes, r->tiers[t].used_blocks);
	g_string_append(out, "}, \"experts\": {");
	for (int x = 0, first = 1; x < MODEL_EXPERT_COUNT; x++) {
		if (r->experts[x].blocks == 0)
			continue;
		g_string_append_printf(out,
				       "%s\"%s\": {\"blocks\": %" G_GUINT64_FORMAT
				       ", \"used_blocks\": %" G_GUINT64_FORMAT "}",
				       first ? "" : ", ", model_expert_to_string((enum model_expert)x),
				       r->experts[x].blocks, r->experts[x].used_blocks);
		first = 0;
	}
	g_string_append(out, "}, \"link\": {");
	json_number(out, "rtt_ms", r->link_rtt_us / 1e3, 3);
	g_string_append(out, ", ");
	json_number(out, "bandwidth_mbit", r->link_bandwidth * 8 / 1e6, 3);
	g_string_append(out, "}, ");
	json_number(out, "confidence", r->confidence, 4);
	g_string_append(out, ", ");
	json_u64(out, "model_bytes", r->model_bytes);
	g_string_append(out, ", ");
	json_u64(out, "train_sessions", r->train_sessions);
	g_string_append(out, ", ");
	json_u64(out, "train_ops", r->train_ops);
	g_string_append(out, ", ");
	json_number(out, "ns_per_observe", r->ns_per_observe, 1);
	g_string_append(out, ", ");
	json_number(out, "ns_per_predict", r->ns_per_predict, 1);
	g_string_append(out, ", \"sim\": {");
	json_number(out, "rtt_ms", (double)p->rtt_us / 1e3, 3);
	g_string_append(out, ", ");
	json_number(out, "bandwidth_mbit", (double)p->bandwidth * 8 / 1e6, 3);
	g_string_append_printf(out, ", \"connections\": %u, \"block_size\": %u, ", p->connections,
			       p->block_size);
	json_u64(out, "image_size", r->image_size);
	g_string_append(out, ", ");
	json_number(out, "scale", p->scale, 4);
	g_string_append(out, ", ");
	json_number(out, "gap_ms", (double)p->gap_us / 1e3, 3);
	g_string_append(out, ", ");
	json_number(out, "horizon_s", (double)p->horizon_us / 1e6, 3);
	g_string_append(out, ", ");
	json_number(out, "tick_ms", (double)p->tick_us / 1e3, 3);
	g_string_append_printf(out,
			       ", \"background\": %s, \"readahead\": %s, \"observe_at_issue\": %s}}",
			       p->background ? "true" : "false", p->readahead ? "true" : "false",
			       p->observe_at_issue ? "true" : "false");
	return g_string_free(out, FALSE);
}

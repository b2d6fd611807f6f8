/*
 * model_seq: the sequential and stride expert, the baseline every tool has.
 *
 * Design.  A few streams (params.seq_streams slots, replaced least recently used) each
 * remember where their latest access started and ended and what start-to-start stride
 * they are trying.  An access that lands where a stream expects confirms it; confirmed
 * streams predict ahead with a window that grows like Linux readahead (mm/readahead.c):
 * small at first, doubled on each confirmation, capped at params.seq_window_max.
 *
 *        confirmed run                       window (grows 4, 8, 16, 32 ...)
 *   |--access--|--access--|--access--|[ predicted blocks ............ ]
 *                                     ^ end: the next access should start here
 *
 *   stride d: start, start+d, start+2d: after two equal steps, predict start+3d, +4d, ...
 *
 * Each access is, in this order:
 *   - a stride hit:  it starts at start + stride of a stride stream;
 *   - a run hit:     it starts at the stream's end (a contiguous read), or a skip forward
 *                    within the predicted window (continues, without growing);
 *   - a touch:       it starts inside the stream's latest access (small reads of one block);
 *   - a candidate:   near (within SEQ_STRIDE_MAX) an unconfirmed stream: try that stride;
 *   - new:           otherwise it takes the least recently used slot.
 * A break (an access that continues nothing) halves every window; a stream not continued
 * for SEQ_STALE_EVENTS events is dropped back to unconfirmed.  Nothing here is worth
 * keeping across mounts but the pace: streams start afresh each session.
 */
#include <string.h>

#include "aheadfs/model_expert.h"

#define SEQ_STRIDE_MAX 64
#define SEQ_STALE_EVENTS 32
#define SEQ_WINDOW_INIT 4
#define SEQ_LENGTH_MAX 256

struct seq_stream {
	uint64_t start; /* first block of the latest access */
	uint64_t end;	/* one past its last block */
	int64_t stride; /* start-to-start step tried; 0 = none yet */
	uint64_t last_us;
	uint64_t touched; /* event number of the latest access */
	double gap_us;	  /* this stream's time between accesses */
	double len;	  /* mean access length, blocks */
	uint32_t hits;	  /* confirmations in a row; 0 = unconfirmed */
	uint32_t window;  /* blocks (runs) or steps (strides) predicted */
	uint32_t gaps;	  /* gaps measured */
	bool run;	  /* contiguous reads rather than a stride */
	bool used;
};

struct model_seq {
	struct model base;
	struct seq_stream *streams;
	uint32_t nstreams;
	uint32_t window_max;
	struct model_pace pace;
	struct model_rate continued; /* share of accesses that continued a stream */
	struct model_candidates cand;
};

static struct model_seq *seq_of(struct model *m)
{
	return (struct model_seq *)m;
}

static const struct model_seq *seq_of_const(const struct model *m)
{
	return (const struct model_seq *)m;
}

static void seq_forget_streams(struct model_seq *s)
{
	memset(s->streams, 0, s->nstreams * sizeof(*s->streams));
}

static void seq_reset(struct model *m)
{
	struct model_seq *s = seq_of(m);

	seq_forget_streams(s);
	memset(&s->pace, 0, sizeof(s->pace));
	model_rate_init(&s->continued, 0.0, 1.0);
}

static struct model *seq_create(const struct model_params *params, GError **error G_GNUC_UNUSED)
{
	struct model_seq *s = g_new0(struct model_seq, 1);

	s->nstreams = params->seq_streams;
	s->window_max = params->seq_window_max;
	s->streams = g_new0(struct seq_stream, s->nstreams);
	model_candidates_init(&s->cand);
	seq_reset(&s->base);
	return &s->base;
}

static void seq_destroy(struct model *m)
{
	struct model_seq *s = seq_of(m);

	model_candidates_fini(&s->cand);
	g_free(s->streams);
	g_free(s);
}

static uint32_t seq_window_start(const struct model_seq *s, const struct seq_stream *st)
{
	uint32_t w = st->run ? (uint32_t)(2.0 * st->len) : 1;

	return MIN(MAX(w, SEQ_WINDOW_INIT), s->window_max);
}

/* A stream has just been continued by @ev; @grow is false for a skip within the window. */
static void seq_confirm(struct model_seq *s, struct seq_stream *st,
			const struct model_event *ev G_GNUC_UNUSED, bool grow)
{
	if (st->hits == 0)
		st->window = seq_window_start(s, st);
	else if (grow)
		st->window = MIN(st->window * 2, s->window_max);
	st->hits++;
}

static void seq_place(struct model_seq *s, struct seq_stream *st, const struct model_event *ev)
{
	if (!st->used) {
		st->gap_us = (double)model_pace_gap_us(&s->pace);
		st->len = ev->nblocks;
	} else if (ev->time_us >= st->last_us) {
		double gap = (double)MIN(ev->time_us - st->last_us, MODEL_PACE_GAP_MAX_US);

		/* The stream's first gap is a measurement; before it, the global pace. */
		st->gap_us = st->gaps++ ? st->gap_us + (gap - st->gap_us) / 4.0 : gap;
	}
	st->len += ((double)MIN(ev->nblocks, SEQ_LENGTH_MAX) - st->len) / 4.0;
	st->start = ev->block;
	st->end = ev->block + ev->nblocks;
	st->last_us = ev->time_us;
	st->touched = s->base.events;
	st->used = true;
}

static struct seq_stream *seq_victim(struct model_seq *s)
{
	struct seq_stream *victim = &s->streams[0];

	/* Free slots first, then unconfirmed ones, then the least recently used. */
	for (uint32_t i = 0; i < s->nstreams; i++) {
		struct seq_stream *st = &s->streams[i];

		if (!st->used)
			return st;
		if ((st->hits == 0) != (victim->hits == 0)) {
			if (st->hits == 0)
				victim = st;
		} else if (st->touched < victim->touched) {
			victim = st;
		}
	}
	return victim;
}

static void seq_observe(struct model *m, const struct model_event *ev)
{
	struct model_seq *s = seq_of(m);
	struct seq_stream *cand = NULL;
	uint64_t b = ev->block;

	model_pace_observe(&s->pace, ev->time_us);
	for (uint32_t i = 0; i < s->nstreams; i++) {
		struct seq_stream *st = &s->streams[i];

		if (!st->used)
			continue;
		if (st->hits && s->base.events - st->touched > SEQ_STALE_EVENTS)
			st->hits = 0, st->window = 0, st->stride = 0, st->run = false;
	}
	for (uint32_t i = 0; i < s->nstreams; i++) {
		struct seq_stream *st = &s->streams[i];

		if (!st->used)
			continue;
		/* stride hit */
		if (st->stride && !st->run && (int64_t)(b - st->start) == st->stride) {
			seq_confirm(s, st, ev, true);
			seq_place(s, st, ev);
			model_rate_add(&s->continued, st->hits > 1, 1.0 - 1.0 / 32);
			return;
		}
		/* run hit */
		if (b == st->end && (st->run || st->hits == 0)) {
			if (!st->run)
				st->hits = 0, st->run = true, st->stride = 0;
			seq_confirm(s, st, ev, true);
			seq_place(s, st, ev);
			model_rate_add(&s->continued, st->hits > 1, 1.0 - 1.0 / 32);
			return;
		}
		/* a skip forward within the window */
		if (st->run && st->hits && b > st->end && b < st->end + st->window) {
			seq_confirm(s, st, ev, false);
			seq_place(s, st, ev);
			model_rate_add(&s->continued, true, 1.0 - 1.0 / 32);
			return;
		}
		/* touch */
		if (b >= st->start && b < st->end) {
			uint64_t end = MAX(st->end, b + ev->nblocks);

			st->touched = s->base.events;
			st->last_us = ev->time_us;
			st->end = end;
			return;
		}
		if (st->hits == 0 && b + SEQ_STRIDE_MAX >= st->start &&
		    b <= st->start + SEQ_STRIDE_MAX && (!cand || st->touched > cand->touched))
			cand = st;
	}
	/* a break: nothing continued */
	model_rate_add(&s->continued, false, 1.0 - 1.0 / 32);
	for (uint32_t i = 0; i < s->nstreams; i++) {
		struct seq_stream *st = &s->streams[i];

		if (st->hits)
			st->window = MAX(st->window / 2, SEQ_WINDOW_INIT);
	}
	if (cand) {
		cand->stride = (int64_t)(b - cand->start);
		cand->run = false;
		seq_place(s, cand, ev);
		return;
	}
	cand = seq_victim(s);
	memset(cand, 0, sizeof(*cand));
	seq_place(s, cand, ev);
}

static float seq_probability(const struct seq_stream *st, uint32_t k)
{
	double p = 1.0 - 1.0 / (st->hits + 2.0);

	p = MIN(p, 0.95);
	for (uint32_t i = 0; i < k; i += 8)
		p *= 0.92; /* farther ahead, the run is likelier to have ended */
	return (float)p;
}

static size_t seq_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
			  struct model_prediction *out, size_t max)
{
	struct model_seq *s = seq_of(m);
	uint64_t blocks = m->params.image_blocks;

	for (uint32_t i = 0; i < s->nstreams; i++) {
		const struct seq_stream *st = &s->streams[i];
		double len = MAX(st->len, 1.0);

		if (!st->used || st->hits == 0)
			continue;
		if (st->run) {
			for (uint32_t k = 0; k < st->window && st->end + k < blocks; k++) {
				uint64_t steps = (uint64_t)(k / len) + 1;
				uint64_t eta = st->last_us + steps * (uint64_t)st->gap_us;

				if (!model_candidates_add(&s->cand, st->end + k,
							  seq_probability(st, k), eta,
							  MODEL_EXPERT_SEQUENTIAL))
					break;
			}
			continue;
		}
		for (uint32_t k = 1; k <= st->window; k++) {
			int64_t at = (int64_t)st->start + st->stride * (int64_t)k;
			uint64_t eta = st->last_us + k * (uint64_t)st->gap_us;

			if (at < 0 || (uint64_t)at >= blocks)
				break;
			for (uint64_t j = 0; j < (uint64_t)len && (uint64_t)at + j < blocks; j++)
				model_candidates_add(&s->cand, (uint64_t)at + j,
						     seq_probability(st, k - 1), eta,
						     MODEL_EXPERT_SEQUENTIAL);
		}
	}
	return model_candidates_emit(&s->cand, now_us, horizon_us, false, out, max);
}

static double seq_confidence(const struct model *m)
{
	return model_rate_get(&seq_of_const(m)->continued);
}

static void seq_session_start(struct model *m, uint64_t now_us G_GNUC_UNUSED)
{
	struct model_seq *s = seq_of(m);

	seq_forget_streams(s);
	model_pace_restart(&s->pace);
}

/* Payload v1: pace, rate continued. */
static void seq_save(const struct model *m, GByteArray *out)
{
	const struct model_seq *s = seq_of_const(m);

	model_put_pace(out, &s->pace);
	model_put_rate(out, &s->continued);
}

static bool seq_load(struct model *m, struct model_reader *r)
{
	struct model_seq *s = seq_of(m);

	model_get_pace(r, &s->pace);
	model_get_rate(r, &s->continued);
	return !r->bad;
}

static size_t seq_memory_bytes(const struct model *m)
{
	const struct model_seq *s = seq_of_const(m);

	return sizeof(*s) + s->nstreams * sizeof(*s->streams) +
	       model_candidates_memory_bytes(&s->cand);
}

const struct model_ops model_seq_ops = {
    .name = "sequential",
    .expert = MODEL_EXPERT_SEQUENTIAL,
    .version = 1,
    .memory_share = 1,
    .create = seq_create,
    .destroy = seq_destroy,
    .reset = seq_reset,
    .observe = seq_observe,
    .predict = seq_predict,
    .confidence = seq_confidence,
    .session_start = seq_session_start,
    .save = seq_save,
    .load = seq_load,
    .memory_bytes = seq_memory_bytes,
};

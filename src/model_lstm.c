/*
 * model_lstm: the next block delta given a long context, learned online by a small LSTM.
 *
 * Design.  Markov tables know what followed one block or the last two deltas; they cannot
 * tell apart two places where the last two deltas agree but what came before differs (a
 * record walker whose skip depends on the record type read three steps back; a boot that
 * took another branch a few reads ago).  A recurrent net carries that context in its state.
 *
 *   access --> delta = start - end of the previous access --> class --> LSTM step
 *                                                                         |
 *   prediction <-- blocks <-- rollout (beam) <-- softmax over next classes <--/
 *
 * Classes: a vocabulary of the most frequent deltas, learned online, and three reserved:
 *
 *   class     meaning
 *   0         START: the first access of a session (no delta)
 *   1         NEAR: a delta not in the vocabulary, |delta| <= LSTM_NEAR_MAX
 *   2         FAR: a delta not in the vocabulary, further
 *   3..V-1    learned: one delta each, with the mean length of its accesses
 *
 * A delta not in the vocabulary is counted in a space-saving table of LSTM_CANDIDATES;
 * seen twice and more than twice as often as the weakest learned class (or with a class
 * free), it takes that class: its input and output weights start afresh.  Counts halve
 * every LSTM_HALVE_EVENTS accesses, so the vocabulary follows the workload.  Classes not
 * yet learned are left out of the softmax.  Re-reads inside the latest access are not
 * steps, as for Markov.
 *
 * Net: one LSTM layer over the classes (lstm_net.c), trained on the learner thread inside
 * observe() by truncated BPTT over the last LSTM_BPTT steps, from the state at the window's
 * start as it was computed then (kept in a ring of the last LSTM_BPTT + 1 inputs and
 * states).  The expert owns the running state, the vocabulary and the budget; the net
 * only steps, scores and learns classes.
 *
 * Prediction: a beam of LSTM_BEAM paths rolled out up to LSTM_ROLLOUT steps from the
 * current state; every learned class on the way whose path probability stays above
 * LSTM_P_MIN is a predicted access at step k, expected k mean gaps from now.  The softmax
 * is calibrated: per bucket of raw probability, the decayed share of first-step guesses
 * that came true over the raw probabilities given.  The rollout is made once per access
 * and cached for the predictions that follow before the next one.
 *
 * Cost: a budget of params.lstm_cpu_permille of the time the events span (not measured
 * time: replay must come out the same every run, so costs are estimated from the
 * multiply-adds, LSTM_NS_PER_MAC each).  Half goes to training: an update is made when
 * its cost is in the bucket, at most every params.lstm_train_every accesses.  The other
 * half pays for the net step of each access and for rollouts: those are cut to their first
 * step while the bucket is empty, and if the steps alone empty it (tens of thousands of
 * reads a second), the net sleeps, predicting nothing, until LSTM_RESUME_NS have come
 * back, then starts from a fresh state.  Each bucket holds at most LSTM_BURST_NS.
 * On a mount the learner thread measures what it really spends and scales both buckets'
 * income down when over its cap (model_set_cpu_scale(), cpu_budget.h).
 */
#include <math.h>
#include <string.h>

#include "aheadfs/lstm_net.h"
#include "aheadfs/model_expert.h"
#include "aheadfs/model_lstm.h"

#define LSTM_CLASS_START 0
#define LSTM_CLASS_NEAR 1
#define LSTM_CLASS_FAR 2
#define LSTM_RESERVED 3
#define LSTM_NEAR_MAX 256
#define LSTM_CANDIDATES 256
#define LSTM_HALVE_EVENTS 512
#define LSTM_BPTT 12
#define LSTM_BEAM 2
#define LSTM_ROLLOUT 16
#define LSTM_P_MIN 0.02
#define LSTM_CACHE_MAX 1024
#define LSTM_CACHE_MIN 128
#define LSTM_LEN_EMIT_MAX 32
#define LSTM_BUCKETS 6
#define LSTM_CALIB_DECAY (1.0 - 1.0 / 512)
#define LSTM_RATE_DECAY (1.0 - 1.0 / 256)
#define LSTM_NS_PER_MAC 0.5
#define LSTM_NS_PER_EXP 4.0
#define LSTM_NS_PER_STEP 1000.0
#define LSTM_BURST_NS 20e6
#define LSTM_RESUME_NS (LSTM_BURST_NS / 8)
#define LSTM_HIDDEN_MIN 8
#define LSTM_VOCAB_MIN 16
#define LSTM_SEED 0x6c73746d2d763121ULL

struct lstm_class {
	int64_t delta;
	double len;   /* mean blocks per access */
	double count; /* decayed */
	bool used;
};

struct lstm_cand {
	int64_t delta;
	double count;
};

struct lstm_beam {
	float *h, *c, *p;
	uint64_t end; /* one past the path's latest access */
	double path;  /* probability of the path so far */
};

struct lstm_cached {
	uint64_t block;
	float p;
	uint32_t step;
};

/* Calibration of raw softmax probabilities in one bucket: hits / sum of raw p. */
struct lstm_calib {
	double hits, psum;
};

struct lstm_bucket {
	double credit_ns;
	double share; /* of elapsed time */
};

struct model_lstm {
	struct model base;
	struct lstm_net *net; /* NULL: inert, the memory cap is too small */
	unsigned H, V, T;
	uint64_t seed;
	struct lstm_class *classes; /* [V] */
	struct lstm_cand *cands;    /* [LSTM_CANDIDATES]; count 0: free */
	/* the last T + 1 inputs and the state before each */
	uint16_t *ring_x;
	float *ring_h, *ring_c;
	uint64_t steps;		/* net steps fed, all sessions */
	uint64_t session_steps; /* ... this session */
	/* running state and the next-class distribution */
	float *h, *c, *p, *tmp;
	bool have_prev;
	uint64_t prev_start, prev_end;
	struct model_pace pace;
	struct lstm_calib calib[LSTM_BUCKETS];
	struct model_rate top1;
	double loss;
	uint64_t since_halve;
	/* budget, in estimated ns of CPU */
	struct lstm_bucket train, infer;
	double cpu_scale; /* model_set_cpu_scale(): the learner's measured feedback */
	uint64_t budget_us;
	bool budget_started;
	double cost_step_ns, cost_train_ns;
	uint32_t since_train;
	bool paused; /* the inference bucket ran dry: no net steps until it refills */
	uint64_t train_steps, train_skipped, rollout_steps, promotions, skipped;
	/* rollout */
	struct lstm_beam beam[2][LSTM_BEAM];
	struct lstm_cached *cache;
	size_t ncache, cache_max;
	bool cache_valid;
	struct model_candidates cand;
};

static struct model_lstm *lstm_of(struct model *m)
{
	return (struct model_lstm *)m;
}

static const struct model_lstm *lstm_of_const(const struct model *m)
{
	return (const struct model_lstm *)m;
}

static int lstm_bucket(double p)
{
	return p < 0.1 ? 0 : p < 0.3 ? 1 : p < 0.5 ? 2 : p < 0.7 ? 3 : p < 0.9 ? 4 : 5;
}

static double lstm_calibrated(const struct model_lstm *l, double raw)
{
	const struct lstm_calib *c = &l->calib[lstm_bucket(raw)];

	return MIN(1.0, raw * c->hits / c->psum);
}

/* The candidate buffer once warm: entries and sort scratch, twice as many hash slots. */
static size_t lstm_cand_bytes(unsigned cache_max)
{
	return cache_max * (2 * sizeof(struct model_candidate) + 2 * sizeof(uint32_t));
}

static size_t lstm_expert_bytes(unsigned H, unsigned V, unsigned T, unsigned cache_max)
{
	return sizeof(struct model_lstm) + lstm_net_bytes(H, V, T) + V * sizeof(struct lstm_class) +
	       LSTM_CANDIDATES * sizeof(struct lstm_cand) +
	       (T + 1) * (sizeof(uint16_t) + 2 * H * sizeof(float)) +
	       (2 * H + V + 4 * H + 3 * H) * sizeof(float) +
	       2 * LSTM_BEAM * (2 * H + V) * sizeof(float) +
	       cache_max * sizeof(struct lstm_cached) + lstm_cand_bytes(cache_max);
}

static void lstm_forget_session(struct model_lstm *l)
{
	/* The budget starts afresh too: the clock may be another one, and a loaded model
	 * must then do exactly what the saved one does. */
	l->budget_started = false;
	l->since_train = 0;
	l->paused = false;
	l->have_prev = false;
	l->session_steps = 0;
	l->cache_valid = false;
	l->ncache = 0;
	if (l->net) {
		memset(l->h, 0, l->H * sizeof(float));
		memset(l->c, 0, l->H * sizeof(float));
	}
}

static void lstm_reset(struct model *m)
{
	struct model_lstm *l = lstm_of(m);
	static const double mid[LSTM_BUCKETS] = {0.05, 0.2, 0.4, 0.6, 0.8, 0.95};

	l->seed = LSTM_SEED;
	if (l->net) {
		lstm_net_reset(l->net, l->seed);
		for (unsigned k = 0; k < l->V; k++)
			lstm_net_set_active(l->net, k, k < LSTM_RESERVED);
		memset(l->classes, 0, l->V * sizeof(*l->classes));
		memset(l->cands, 0, LSTM_CANDIDATES * sizeof(*l->cands));
	}
	l->steps = 0;
	lstm_forget_session(l);
	memset(&l->pace, 0, sizeof(l->pace));
	/* Until measured, believe a little less than the softmax says. */
	for (int b = 0; b < LSTM_BUCKETS; b++)
		l->calib[b] = (struct lstm_calib){.hits = 0.8 * mid[b] * 2.0, .psum = mid[b] * 2.0};
	model_rate_init(&l->top1, 0.0, 1.0);
	l->loss = 0.0;
	l->since_halve = 0;
	l->train_steps = l->train_skipped = l->rollout_steps = l->promotions = l->skipped = 0;
}

static void lstm_destroy(struct model *m)
{
	struct model_lstm *l = lstm_of(m);

	lstm_net_free(l->net);
	g_free(l->classes);
	g_free(l->cands);
	g_free(l->ring_x);
	g_free(l->ring_h);
	g_free(l->ring_c);
	g_free(l->h);
	g_free(l->c);
	g_free(l->p);
	g_free(l->tmp);
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < LSTM_BEAM; i++) {
			g_free(l->beam[s][i].h);
			g_free(l->beam[s][i].c);
			g_free(l->beam[s][i].p);
		}
	g_free(l->cache);
	model_candidates_fini(&l->cand);
	g_free(l);
}

static struct model *lstm_create(const struct model_params *params, GError **error G_GNUC_UNUSED)
{
	struct model_lstm *l = g_new0(struct model_lstm, 1);
	unsigned H = params->lstm_hidden, V = params->lstm_vocab, T = LSTM_BPTT;
	double share = params->lstm_cpu_permille / 1000.0;

	unsigned cache_max = LSTM_CACHE_MAX;

	/* Smaller until it fits the cap: fewer units, fewer classes, fewer blocks predicted. */
	while (lstm_expert_bytes(H, V, T, cache_max) > params->memory_cap_bytes &&
	       H > LSTM_HIDDEN_MIN)
		H = MAX(H / 2 / LSTM_LANES * LSTM_LANES, LSTM_HIDDEN_MIN);
	while (lstm_expert_bytes(H, V, T, cache_max) > params->memory_cap_bytes &&
	       V > LSTM_VOCAB_MIN)
		V = MAX(V / 2, LSTM_VOCAB_MIN);
	while (lstm_expert_bytes(H, V, T, cache_max) > params->memory_cap_bytes &&
	       cache_max > LSTM_CACHE_MIN)
		cache_max /= 2;
	l->T = T;
	l->train.share = share / 2.0;
	l->infer.share = share / 2.0;
	l->cpu_scale = 1.0;
	model_candidates_init(&l->cand);
	l->cache_max = cache_max;
	if (lstm_expert_bytes(H, V, T, cache_max) <= params->memory_cap_bytes) {
		size_t G = 4 * (size_t)H;

		l->H = H;
		l->V = V;
		l->net = lstm_net_new(H, V, T, LSTM_SEED);
		l->classes = g_new0(struct lstm_class, V);
		l->cands = g_new0(struct lstm_cand, LSTM_CANDIDATES);
		l->ring_x = g_new0(uint16_t, T + 1);
		l->ring_h = g_new0(float, (size_t)(T + 1) * H);
		l->ring_c = g_new0(float, (size_t)(T + 1) * H);
		l->h = g_new0(float, H);
		l->c = g_new0(float, H);
		l->p = g_new0(float, V);
		l->tmp = g_new0(float, G + 3 * H);
		for (int s = 0; s < 2; s++)
			for (int i = 0; i < LSTM_BEAM; i++) {
				l->beam[s][i].h = g_new0(float, H);
				l->beam[s][i].c = g_new0(float, H);
				l->beam[s][i].p = g_new0(float, V);
			}
		l->cache = g_new(struct lstm_cached, cache_max);
		/* multiply-adds: a step is the cell and the softmax, its exponentials and the
		 * bookkeeping around it; an update unrolls the window, goes back through it
		 * (twice the work) and touches every weight */
		l->cost_step_ns = LSTM_NS_PER_MAC * (double)(G * H + G + (size_t)V * H) +
				  LSTM_NS_PER_EXP * (double)(5 * H + V) + LSTM_NS_PER_STEP;
		l->cost_train_ns =
		    LSTM_NS_PER_MAC * ((double)T * 3.0 * (double)(G * H + (size_t)V * H) +
				       8.0 * (double)lstm_net_nparams(l->net));
	}
	lstm_reset(&l->base);
	return &l->base;
}

/* Time passes: each bucket earns its share of it. */
static void lstm_budget_advance(struct model_lstm *l, uint64_t now_us)
{
	double gap;

	if (!l->budget_started) {
		l->budget_started = true;
		l->budget_us = now_us;
		l->train.credit_ns = l->infer.credit_ns = LSTM_BURST_NS / 4;
		return;
	}
	if (now_us <= l->budget_us)
		return;
	gap = (double)MIN(now_us - l->budget_us, G_USEC_PER_SEC) * 1000.0;
	l->budget_us = now_us;
	gap *= l->cpu_scale;
	l->train.credit_ns = MIN(l->train.credit_ns + gap * l->train.share, LSTM_BURST_NS);
	l->infer.credit_ns = MIN(l->infer.credit_ns + gap * l->infer.share, LSTM_BURST_NS);
}

/* The estimate and the machine disagree: the learner scales the budget to what it measures. */
static void lstm_set_cpu_scale(struct model *m, double scale)
{
	lstm_of(m)->cpu_scale = scale;
}

static void lstm_budget_spend(struct lstm_bucket *b, double ns)
{
	b->credit_ns = MAX(b->credit_ns - ns, -LSTM_BURST_NS);
}

/* A learned class for @delta from now on: class @k, weights fresh. */
static void lstm_assign(struct model_lstm *l, unsigned k, int64_t delta, double count, double len)
{
	int64_t old = l->classes[k].delta;
	bool was = l->classes[k].used;

	/* History that read class k meant the old delta: it is now out of the vocabulary. */
	for (unsigned i = 0; was && i <= l->T; i++)
		if (l->ring_x[i] == k)
			l->ring_x[i] = old >= -LSTM_NEAR_MAX && old <= LSTM_NEAR_MAX
					   ? LSTM_CLASS_NEAR
					   : LSTM_CLASS_FAR;
	l->classes[k] =
	    (struct lstm_class){.delta = delta, .len = len, .count = count, .used = true};
	lstm_net_set_active(l->net, k, true);
	lstm_net_init_class(l->net, k, &l->seed);
	l->promotions++;
}

/* The class of @delta; learns the vocabulary on the way. */
static unsigned lstm_classify(struct model_lstm *l, int64_t delta, uint32_t len)
{
	struct lstm_cand *cand = NULL, *low = &l->cands[0];
	unsigned weakest = 0;

	for (unsigned k = LSTM_RESERVED; k < l->V; k++) {
		struct lstm_class *c = &l->classes[k];

		if (c->used && c->delta == delta) {
			c->count += 1.0;
			c->len += ((double)len - c->len) / 8.0;
			return k;
		}
	}
	/* Not learned: count it among the candidates, space-saving. */
	for (unsigned i = 0; i < LSTM_CANDIDATES && !cand; i++) {
		if (l->cands[i].count > 0.0 && l->cands[i].delta == delta)
			cand = &l->cands[i];
		else if (l->cands[i].count < low->count)
			low = &l->cands[i];
	}
	if (!cand) {
		cand = low;
		*cand = (struct lstm_cand){.delta = delta, .count = 0.0};
	}
	cand->count += 1.0;
	if (cand->count >= 2.0) {
		for (unsigned k = LSTM_RESERVED; k < l->V; k++) {
			if (!l->classes[k].used) {
				weakest = k;
				break;
			}
			if (!weakest || l->classes[k].count < l->classes[weakest].count)
				weakest = k;
		}
		if (weakest && (!l->classes[weakest].used ||
				cand->count > 2.0 * l->classes[weakest].count + 1.0)) {
			struct lstm_class old = l->classes[weakest];
			double count = cand->count;

			*cand = (struct lstm_cand){.delta = old.delta,
						   .count = old.used ? old.count : 0.0};
			lstm_assign(l, weakest, delta, count, (double)len);
			return weakest;
		}
	}
	return delta >= -LSTM_NEAR_MAX && delta <= LSTM_NEAR_MAX ? LSTM_CLASS_NEAR : LSTM_CLASS_FAR;
}

static void lstm_halve_counts(struct model_lstm *l)
{
	for (unsigned k = 0; k < l->V; k++)
		l->classes[k].count /= 2.0;
	for (unsigned i = 0; i < LSTM_CANDIDATES; i++)
		l->cands[i].count = l->cands[i].count >= 1.0 ? l->cands[i].count / 2.0 : 0.0;
}

/* How the distribution before this access did: calibration, top guess, loss. */
static void lstm_score(struct model_lstm *l, unsigned x)
{
	unsigned top = 0;

	for (unsigned k = 0; k < l->V; k++) {
		double p = l->p[k];

		if (p > l->p[top])
			top = k;
		if (k < LSTM_RESERVED || p < 0.05) {
			continue;
		} else {
			struct lstm_calib *c = &l->calib[lstm_bucket(p)];

			c->hits = c->hits * LSTM_CALIB_DECAY + (k == x ? 1.0 : 0.0);
			c->psum = c->psum * LSTM_CALIB_DECAY + p;
		}
	}
	model_rate_add(&l->top1, top == x && top >= LSTM_RESERVED, LSTM_RATE_DECAY);
	l->loss += (-log(MAX((double)l->p[x], 1e-30)) - l->loss) / 256.0;
}

/* The running state reads class @x; the next-class distribution follows. */
static void lstm_advance(struct model_lstm *l, unsigned x)
{
	const unsigned H = l->H;
	float *h = l->tmp, *c = h + H, *scratch = c + H;

	lstm_net_step(l->net, x, l->h, l->c, h, c, scratch);
	memcpy(l->h, h, H * sizeof(float));
	memcpy(l->c, c, H * sizeof(float));
	lstm_net_output(l->net, l->h, l->p);
}

/* One BPTT update over the window that ends with the input just pushed. */
static void lstm_train(struct model_lstm *l)
{
	const unsigned R = l->T + 1, H = l->H;
	unsigned len = (unsigned)MIN((uint64_t)l->T, l->session_steps - 1);
	uint16_t x[LSTM_BPTT], y[LSTM_BPTT];
	uint64_t first = l->steps - 1 - len; /* ring step of the window's first input */

	for (unsigned t = 0; t < len; t++) {
		x[t] = l->ring_x[(first + t) % R];
		y[t] = l->ring_x[(first + t + 1) % R];
	}
	lstm_net_train(l->net, x, y, len, l->ring_h + (first % R) * H, l->ring_c + (first % R) * H);
	l->train_steps++;
}

static void lstm_observe(struct model *m, const struct model_event *ev)
{
	struct model_lstm *l = lstm_of(m);
	const unsigned R = l->T + 1, H = l->H;
	unsigned x;

	model_pace_observe(&l->pace, ev->time_us);
	if (!l->net)
		return;
	lstm_budget_advance(l, ev->time_us);
	if (l->have_prev && ev->block >= l->prev_start && ev->block < l->prev_end)
		return; /* a re-read inside the latest access */
	if (l->paused && l->infer.credit_ns < LSTM_RESUME_NS) {
		/* Over budget: the net sleeps, and this access only moves the position. */
		l->skipped++;
		l->prev_start = ev->block;
		l->prev_end = ev->block + ev->nblocks;
		return;
	}
	if (l->paused) {
		/* Awake again: a fresh context, since the state did not see what was skipped. */
		l->paused = false;
		l->session_steps = 0;
		memset(l->h, 0, H * sizeof(float));
		memset(l->c, 0, H * sizeof(float));
	}
	if (l->have_prev) {
		x = lstm_classify(l, (int64_t)ev->block - (int64_t)l->prev_end, ev->nblocks);
		if (l->session_steps > 0)
			lstm_score(l, x);
	} else {
		x = LSTM_CLASS_START;
	}
	/* Remember the input and the state it met, for the updates to come. */
	l->ring_x[l->steps % R] = (uint16_t)x;
	memcpy(l->ring_h + (l->steps % R) * H, l->h, H * sizeof(float));
	memcpy(l->ring_c + (l->steps % R) * H, l->c, H * sizeof(float));
	l->steps++;
	l->session_steps++;
	if (l->session_steps >= 2 && ++l->since_train >= m->params.lstm_train_every) {
		if (l->train.credit_ns >= l->cost_train_ns) {
			lstm_train(l);
			lstm_budget_spend(&l->train, l->cost_train_ns);
			l->since_train = 0;
		} else {
			l->train_skipped++;
		}
	}
	lstm_advance(l, x);
	lstm_budget_spend(&l->infer, l->cost_step_ns);
	l->paused = l->infer.credit_ns < 0.0;
	l->have_prev = true;
	l->prev_start = ev->block;
	l->prev_end = ev->block + ev->nblocks;
	l->cache_valid = false;
	if (++l->since_halve >= LSTM_HALVE_EVENTS) {
		l->since_halve = 0;
		lstm_halve_counts(l);
	}
}

/* Puts the blocks of class @k after @end in the rollout cache; the end of that access, or
 * 0 if it falls outside the image. */
static uint64_t lstm_cache_class(struct model_lstm *l, unsigned k, uint64_t end, double q,
				 uint32_t step)
{
	const struct lstm_class *c = &l->classes[k];
	int64_t start = (int64_t)end + c->delta;
	uint64_t len = (uint64_t)MAX(llround(c->len), 1);

	if (start < 0 || (uint64_t)start >= l->base.params.image_blocks)
		return 0;
	for (uint64_t j = 0;
	     j < MIN(len, LSTM_LEN_EMIT_MAX) && (uint64_t)start + j < l->base.params.image_blocks &&
	     l->ncache < l->cache_max;
	     j++)
		l->cache[l->ncache++] =
		    (struct lstm_cached){.block = (uint64_t)start + j, .p = (float)q, .step = step};
	return (uint64_t)start + len;
}

/*
 * The likeliest paths from the current state: at each step every beam's learned classes
 * above LSTM_P_MIN go to the cache, and the LSTM_BEAM likeliest continue.
 */
static void lstm_rollout(struct model_lstm *l)
{
	struct lstm_beam *cur = l->beam[0], *next = l->beam[1], *swap;
	unsigned ncur = 1;

	l->ncache = 0;
	memcpy(cur[0].h, l->h, l->H * sizeof(float));
	memcpy(cur[0].c, l->c, l->H * sizeof(float));
	memcpy(cur[0].p, l->p, l->V * sizeof(float));
	cur[0].end = l->prev_end;
	cur[0].path = 1.0;
	for (uint32_t step = 1; step <= LSTM_ROLLOUT; step++) {
		struct {
			unsigned from, k;
			double q;
			uint64_t end;
		} best[LSTM_BEAM];
		unsigned nbest = 0;

		for (unsigned b = 0; b < ncur; b++) {
			for (unsigned k = LSTM_RESERVED; k < l->V; k++) {
				double q;
				uint64_t end;
				unsigned at;

				if (!l->classes[k].used || cur[b].p[k] <= 0.0f)
					continue;
				q = cur[b].path * lstm_calibrated(l, cur[b].p[k]);
				if (q < LSTM_P_MIN)
					continue;
				end = lstm_cache_class(l, k, cur[b].end, q, step);
				if (end == 0)
					continue;
				/* keep the LSTM_BEAM likeliest, in falling order */
				if (nbest == LSTM_BEAM && q <= best[nbest - 1].q)
					continue;
				at = nbest < LSTM_BEAM ? nbest++ : nbest - 1;
				for (; at > 0 && best[at - 1].q < q; at--)
					best[at] = best[at - 1];
				best[at].from = b;
				best[at].k = k;
				best[at].q = q;
				best[at].end = end;
			}
		}
		/* With the inference budget spent, the first step only. */
		if (nbest == 0 || step == LSTM_ROLLOUT || l->infer.credit_ns < 0.0 ||
		    l->ncache == l->cache_max)
			break;
		for (unsigned i = 0; i < nbest; i++) {
			const struct lstm_beam *from = &cur[best[i].from];

			lstm_net_step(l->net, best[i].k, from->h, from->c, next[i].h, next[i].c,
				      l->tmp);
			lstm_net_output(l->net, next[i].h, next[i].p);
			next[i].end = best[i].end;
			next[i].path = best[i].q;
			lstm_budget_spend(&l->infer, l->cost_step_ns);
			l->rollout_steps++;
		}
		swap = cur;
		cur = next;
		next = swap;
		ncur = nbest;
	}
	l->cache_valid = true;
}

static size_t lstm_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
			   struct model_prediction *out, size_t max)
{
	struct model_lstm *l = lstm_of(m);
	uint64_t gap = model_pace_gap_us(&l->pace);

	if (!l->net || !l->have_prev || l->paused)
		return 0;
	lstm_budget_advance(l, now_us);
	if (!l->cache_valid)
		lstm_rollout(l);
	for (size_t i = 0; i < l->ncache; i++) {
		uint64_t lead = l->cache[i].step * gap;

		model_candidates_add(&l->cand, l->cache[i].block, l->cache[i].p,
				     lead > UINT64_MAX - now_us ? UINT64_MAX : now_us + lead,
				     MODEL_EXPERT_LSTM);
	}
	return model_candidates_emit(&l->cand, now_us, horizon_us, false, out, max);
}

static double lstm_confidence(const struct model *m)
{
	return model_rate_get(&lstm_of_const(m)->top1);
}

static void lstm_session_start(struct model *m, uint64_t now_us G_GNUC_UNUSED)
{
	struct model_lstm *l = lstm_of(m);

	/* The last access of the previous mount does not lead to the first of this one. */
	lstm_forget_session(l);
	model_pace_restart(&l->pace);
}

/*
 * Payload v1 (the running state and the CPU budget are not kept: a load ends the session):
 *   u32 hidden, vocab, bptt (0, 0, 0: inert)
 *   pace; rate top1; f64 loss; 6 x { f64 hits, f64 psum }
 *   u64 steps, train_steps, promotions, adam_t, seed; u32 since_halve
 *   vocab x { u8 used; u64 delta; f64 len; f64 count }
 *   u32 n; n x { u32 slot; u64 delta; f64 count }     candidates
 *   the net's weights and Adam state (lstm_net_save(): 3 x nparams f32)
 * 232 KB at hidden 32, vocabulary 64.  A valid shape other than this model's (hidden or
 * vocabulary changed since the save, or a cap too small for it now) reads as "start
 * afresh", not as an error, so that a hybrid keeps its other experts' state.
 */
static void lstm_save(const struct model *m, GByteArray *out)
{
	const struct model_lstm *l = lstm_of_const(m);
	uint32_t n = 0;

	model_put_u32(out, l->net ? l->H : 0);
	model_put_u32(out, l->net ? l->V : 0);
	model_put_u32(out, l->net ? l->T : 0);
	if (!l->net)
		return;
	model_put_pace(out, &l->pace);
	model_put_rate(out, &l->top1);
	model_put_f64(out, l->loss);
	for (int b = 0; b < LSTM_BUCKETS; b++) {
		model_put_f64(out, l->calib[b].hits);
		model_put_f64(out, l->calib[b].psum);
	}
	model_put_u64(out, l->steps);
	model_put_u64(out, l->train_steps);
	model_put_u64(out, l->promotions);
	model_put_u64(out, lstm_net_adam_steps(l->net));
	model_put_u64(out, l->seed);
	model_put_u32(out, (uint32_t)l->since_halve);
	for (unsigned k = 0; k < l->V; k++) {
		model_put_u8(out, l->classes[k].used);
		model_put_u64(out, (uint64_t)l->classes[k].delta);
		model_put_f64(out, l->classes[k].len);
		model_put_f64(out, l->classes[k].count);
	}
	for (unsigned i = 0; i < LSTM_CANDIDATES; i++)
		n += l->cands[i].count > 0.0;
	model_put_u32(out, n);
	for (unsigned i = 0; i < LSTM_CANDIDATES; i++) {
		if (l->cands[i].count <= 0.0)
			continue;
		model_put_u32(out, i);
		model_put_u64(out, (uint64_t)l->cands[i].delta);
		model_put_f64(out, l->cands[i].count);
	}
	lstm_net_save(l->net, out);
}

static bool lstm_load(struct model *m, struct model_reader *r)
{
	struct model_lstm *l = lstm_of(m);
	int64_t blocks = (int64_t)m->params.image_blocks;
	uint32_t H = model_get_u32(r), V = model_get_u32(r), T = model_get_u32(r), n;

	if (r->bad)
		return false;
	if (!(H == 0 && V == 0 && T == 0) && (H < LSTM_HIDDEN_MIN || H > 256 || H % LSTM_LANES ||
					      V <= LSTM_RESERVED || V > 1024 || T != LSTM_BPTT))
		return false;
	if (!l->net || H != l->H || V != l->V || T != l->T) {
		model_get_bytes(r, r->len - r->off); /* another shape: start afresh */
		return true;
	}
	model_get_pace(r, &l->pace);
	model_get_rate(r, &l->top1);
	l->loss = model_get_f64_in(r, 0.0, 1000.0);
	for (int b = 0; b < LSTM_BUCKETS; b++) {
		l->calib[b].hits = model_get_f64_in(r, 0.0, 1e6);
		l->calib[b].psum = model_get_f64_in(r, 1e-9, 1e6);
	}
	l->steps = model_get_u64(r);
	l->train_steps = model_get_u64(r);
	l->promotions = model_get_u64(r);
	lstm_net_set_adam_steps(l->net, model_get_u64(r));
	l->seed = model_get_u64(r);
	l->since_halve = model_get_u32(r);
	if (l->since_halve >= LSTM_HALVE_EVENTS || l->seed == 0)
		return false;
	for (unsigned k = 0; k < V; k++) {
		struct lstm_class *c = &l->classes[k];
		uint8_t used = model_get_u8(r);

		c->delta = (int64_t)model_get_u64(r);
		c->len = model_get_f64_in(r, 0.0, (double)UINT32_MAX);
		c->count = model_get_f64_in(r, 0.0, 1e12);
		if (r->bad || used > 1 || (used && k < LSTM_RESERVED) ||
		    (used && (c->delta < -blocks || c->delta > blocks || c->len < 1.0)))
			return false;
		c->used = used;
		lstm_net_set_active(l->net, k, k < LSTM_RESERVED || used);
		for (unsigned j = LSTM_RESERVED; j < k && used; j++)
			if (l->classes[j].used && l->classes[j].delta == c->delta)
				return false;
	}
	n = model_get_count(r, LSTM_CANDIDATES, 20);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = model_get_u32(r);
		struct lstm_cand *c = &l->cands[slot < LSTM_CANDIDATES ? slot : 0];

		if (slot >= LSTM_CANDIDATES || c->count > 0.0)
			return false;
		c->delta = (int64_t)model_get_u64(r);
		c->count = model_get_f64_in(r, 1e-12, 1e12);
	}
	if (r->bad)
		return false;
	/* weights finite and in range: a damaged file must not feed NaN to the net */
	return lstm_net_load(l->net, r);
}

static size_t lstm_memory_bytes(const struct model *m)
{
	const struct model_lstm *l = lstm_of_const(m);

	if (!l->net)
		return sizeof(*l) + model_candidates_memory_bytes(&l->cand);
	/* the candidate buffer as it is, not as it may grow */
	return lstm_expert_bytes(l->H, l->V, l->T, (unsigned)l->cache_max) -
	       lstm_cand_bytes((unsigned)l->cache_max) + model_candidates_memory_bytes(&l->cand);
}

const struct model_ops model_lstm_ops = {
    .name = "lstm",
    .expert = MODEL_EXPERT_LSTM,
    .version = 1,
    .memory_share = 1,
    .create = lstm_create,
    .destroy = lstm_destroy,
    .reset = lstm_reset,
    .observe = lstm_observe,
    .predict = lstm_predict,
    .confidence = lstm_confidence,
    .session_start = lstm_session_start,
    .set_cpu_scale = lstm_set_cpu_scale,
    .save = lstm_save,
    .load = lstm_load,
    .memory_bytes = lstm_memory_bytes,
};

bool model_lstm_get_counters(const struct model *m, struct model_lstm_counters *out)
{
	const struct model_lstm *l;

	if (m->ops != &model_lstm_ops)
		return false;
	l = lstm_of_const(m);
	*out = (struct model_lstm_counters){
	    .hidden = l->net ? l->H : 0,
	    .vocab = l->net ? l->V : 0,
	    .steps = l->steps,
	    .train_steps = l->train_steps,
	    .train_skipped = l->train_skipped,
	    .rollout_steps = l->rollout_steps,
	    .promotions = l->promotions,
	    .skipped = l->skipped,
	    .loss = l->loss,
	    .top1 = model_rate_get(&l->top1),
	    .cost_ns_train = l->cost_train_ns,
	    .cost_ns_step = l->cost_step_ns,
	};
	return true;
}

struct lstm_net *model_lstm_get_net(struct model *m)
{
	return m->ops == &model_lstm_ops ? lstm_of(m)->net : NULL;
}

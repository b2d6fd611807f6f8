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
 * Net: one LSTM layer (gates i f g o, forget bias 1), one-hot input, softmax output; trained
 * on the learner thread inside observe() by truncated BPTT over the last LSTM_BPTT steps
 * (the state at the window's start as it was computed then), mean cross-entropy, the
 * gradient clipped to norm LSTM_CLIP, Adam.  Float weights; about 4 x (4H(V + H + 1) +
 * V(H + 1)) floats with the optimizer state and the gradient: 232 KB at H 32, V 64.
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
 */
#include <math.h>
#include <string.h>

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
#define LSTM_LR 3e-3
#define LSTM_BETA1 0.9
#define LSTM_BETA2 0.999
#define LSTM_ADAM_EPS 1e-8
#define LSTM_CLIP 5.0
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
#define LSTM_WEIGHT_MAX 1e4f
#define LSTM_SEED 0x6c73746d2d763121ULL

/* The network. */

struct lstm_span {
	size_t at, len;
};

struct lstm_net {
	unsigned H, V, G, T; /* hidden, classes, 4H, steps unrolled at most */
	size_t n;	     /* parameters */
	float *w, *dw, *m, *v;
	float *wx, *wh, *b, *wy, *by; /* in w: [V][G], [G][H], [G], [V][H], [V] */
	uint8_t *active;	      /* [V]: class in the softmax */
	uint8_t *touched;	      /* [V]: class read by the latest backward pass */
	struct lstm_span *spans;      /* [V + 2 + V]: lstm_adam()'s scratch */
	uint64_t adam_t;
	/* unrolled: step t reads hs[t], cs[t] and writes hs[t + 1], cs[t + 1] */
	float *gates;			      /* [T][G]: i f g o after their nonlinearity */
	float *hs, *cs, *tcs;		      /* [T + 1][H]; tcs = tanh(cs) */
	float *ps;			      /* [T][V] */
	float *dh, *dc, *dhn, *dcn, *dz, *dy; /* scratch: H x 4, G, V */
};

static float lstm_sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* tanhf through expf: glibc's tanhf costs four times as much, for digits we do not use. */
static float lstm_tanh(float x)
{
	return 2.0f / (1.0f + expf(-2.0f * x)) - 1.0f;
}

/*
 * Vector kernels over n, a multiple of LSTM_LANES: the fixed inner trip count lets gcc and
 * clang use SIMD at -O2, and the lane accumulators let a dot product do so without
 * reassociating a single sum (which needs -ffast-math).
 */
#define LSTM_LANES 8

static float lstm_dot(const float *restrict a, const float *restrict b, unsigned n)
{
	float acc[LSTM_LANES] = {0};

	for (unsigned i = 0; i < n; i += LSTM_LANES, a += LSTM_LANES, b += LSTM_LANES)
		for (unsigned j = 0; j < LSTM_LANES; j++)
			acc[j] += a[j] * b[j];
	return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* y += a x */
static void lstm_axpy(float *restrict y, float a, const float *restrict x, unsigned n)
{
	for (unsigned i = 0; i < n; i += LSTM_LANES, y += LSTM_LANES, x += LSTM_LANES)
		for (unsigned j = 0; j < LSTM_LANES; j++)
			y[j] += a * x[j];
}

static float lstm_uniform(uint64_t *s, float a)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return a * (2.0f * (float)((*s * 0x2545f4914f6cdd1dULL) >> 40) / (float)(1 << 24) - 1.0f);
}

static size_t lstm_net_count(unsigned H, unsigned V)
{
	size_t G = 4 * (size_t)H;

	return (size_t)V * G + G * H + G + (size_t)V * H + V;
}

static size_t lstm_net_bytes(unsigned H, unsigned V, unsigned T)
{
	return sizeof(struct lstm_net) + 4 * lstm_net_count(H, V) * sizeof(float) + 2 * V +
	       (2 * (size_t)V + 2) * sizeof(struct lstm_span) +
	       ((size_t)T * (4 * H + V) + 3 * (size_t)(T + 1) * H + 4 * H + 4 * H + V) *
		   sizeof(float);
}

/* Fresh weights for class @k: what it meant before is no guide to its new delta. */
static void lstm_net_init_class(struct lstm_net *net, unsigned k, uint64_t *seed)
{
	float a = 1.0f / sqrtf((float)net->H);

	for (unsigned j = 0; j < net->G; j++) {
		size_t at = (size_t)k * net->G + j;

		net->wx[at] = lstm_uniform(seed, a);
		net->m[at] = net->v[at] = 0.0f;
	}
	for (unsigned j = 0; j < net->H; j++) {
		size_t at = (size_t)(net->wy - net->w) + (size_t)k * net->H + j;

		net->w[at] = lstm_uniform(seed, a);
		net->m[at] = net->v[at] = 0.0f;
	}
	net->by[k] = 0.0f;
	net->m[net->by - net->w + k] = net->v[net->by - net->w + k] = 0.0f;
}

static void lstm_net_init(struct lstm_net *net, uint64_t seed)
{
	float a = 1.0f / sqrtf((float)net->H);

	memset(net->m, 0, net->n * sizeof(float));
	memset(net->v, 0, net->n * sizeof(float));
	memset(net->dw, 0, net->n * sizeof(float));
	for (size_t i = 0; i < net->n; i++)
		net->w[i] = lstm_uniform(&seed, a);
	for (unsigned j = 0; j < net->G; j++)
		net->b[j] = j >= net->H && j < 2 * net->H ? 1.0f : 0.0f; /* forget gate open */
	for (unsigned k = 0; k < net->V; k++)
		net->by[k] = 0.0f;
	net->adam_t = 0;
}

struct lstm_net *lstm_net_new(unsigned hidden, unsigned vocab, unsigned steps, uint64_t seed)
{
	struct lstm_net *net = g_new0(struct lstm_net, 1);
	unsigned H = hidden, G = 4 * hidden, V = vocab, T = MAX(steps, 1);

	g_assert(H % LSTM_LANES == 0 && H > 0 && V > 0);

	net->H = H;
	net->V = V;
	net->G = G;
	net->T = T;
	net->n = lstm_net_count(H, V);
	net->w = g_new(float, net->n);
	net->dw = g_new(float, net->n);
	net->m = g_new(float, net->n);
	net->v = g_new(float, net->n);
	net->wx = net->w;
	net->wh = net->wx + (size_t)V * G;
	net->b = net->wh + (size_t)G * H;
	net->wy = net->b + G;
	net->by = net->wy + (size_t)V * H;
	net->active = g_malloc(V);
	memset(net->active, 1, V);
	net->touched = g_malloc0(V);
	net->spans = g_new(struct lstm_span, 2 * (size_t)V + 2);
	net->gates = g_new0(float, (size_t)T *G);
	net->hs = g_new0(float, (size_t)(T + 1) * H);
	net->cs = g_new0(float, (size_t)(T + 1) * H);
	net->tcs = g_new0(float, (size_t)(T + 1) * H);
	net->ps = g_new0(float, (size_t)T *V);
	net->dh = g_new0(float, H);
	net->dc = g_new0(float, H);
	net->dhn = g_new0(float, H);
	net->dcn = g_new0(float, H);
	net->dz = g_new0(float, G);
	net->dy = g_new0(float, V);
	lstm_net_init(net, seed);
	return net;
}

void lstm_net_free(struct lstm_net *net)
{
	if (!net)
		return;
	g_free(net->w);
	g_free(net->dw);
	g_free(net->m);
	g_free(net->v);
	g_free(net->active);
	g_free(net->touched);
	g_free(net->spans);
	g_free(net->gates);
	g_free(net->hs);
	g_free(net->cs);
	g_free(net->tcs);
	g_free(net->ps);
	g_free(net->dh);
	g_free(net->dc);
	g_free(net->dhn);
	g_free(net->dcn);
	g_free(net->dz);
	g_free(net->dy);
	g_free(net);
}

size_t lstm_net_nparams(const struct lstm_net *net)
{
	return net->n;
}

float *lstm_net_params(struct lstm_net *net)
{
	return net->w;
}

const float *lstm_net_grads(const struct lstm_net *net)
{
	return net->dw;
}

/* One step: class @x after state (@h0, @c0) gives @gates, (@h, @c) and tanh(@c) in @tc.
 * The outputs must not alias the inputs. */
static void lstm_cell(const struct lstm_net *net, unsigned x, const float *restrict h0,
		      const float *restrict c0, float *restrict gates, float *restrict h,
		      float *restrict c, float *restrict tc)
{
	const unsigned H = net->H, G = net->G;
	const float *restrict wx = net->wx + (size_t)x * G;

	for (unsigned r = 0; r < G; r++)
		gates[r] = net->b[r] + wx[r] + lstm_dot(net->wh + (size_t)r * H, h0, H);
	for (unsigned j = 0; j < H; j++) {
		float i = lstm_sigmoid(gates[j]), f = lstm_sigmoid(gates[H + j]);
		float g = lstm_tanh(gates[2 * H + j]), o = lstm_sigmoid(gates[3 * H + j]);

		gates[j] = i;
		gates[H + j] = f;
		gates[2 * H + j] = g;
		gates[3 * H + j] = o;
		c[j] = f * c0[j] + i * g;
		tc[j] = lstm_tanh(c[j]);
		h[j] = o * tc[j];
	}
}

/* The softmax over active classes after state @h. */
static void lstm_output(const struct lstm_net *net, const float *restrict h, float *restrict p)
{
	const unsigned H = net->H;
	float top = -INFINITY, sum = 0.0f;

	for (unsigned k = 0; k < net->V; k++) {
		if (!net->active[k]) {
			p[k] = -INFINITY;
			continue;
		}
		p[k] = net->by[k] + lstm_dot(net->wy + (size_t)k * H, h, H);
		top = MAX(top, p[k]);
	}
	for (unsigned k = 0; k < net->V; k++) {
		p[k] = net->active[k] ? expf(p[k] - top) : 0.0f;
		sum += p[k];
	}
	for (unsigned k = 0; k < net->V; k++)
		p[k] /= sum;
}

/* Runs @len steps of @x from (@h0, @c0) (zeros if NULL), keeping every activation. */
static void lstm_unroll(struct lstm_net *net, const uint16_t *x, unsigned len, const float *h0,
			const float *c0)
{
	const unsigned H = net->H;

	if (h0) {
		memcpy(net->hs, h0, H * sizeof(float));
		memcpy(net->cs, c0, H * sizeof(float));
	} else {
		memset(net->hs, 0, H * sizeof(float));
		memset(net->cs, 0, H * sizeof(float));
	}
	for (unsigned t = 0; t < len; t++) {
		lstm_cell(net, x[t], net->hs + (size_t)t * H, net->cs + (size_t)t * H,
			  net->gates + (size_t)t * net->G, net->hs + (size_t)(t + 1) * H,
			  net->cs + (size_t)(t + 1) * H, net->tcs + (size_t)(t + 1) * H);
		lstm_output(net, net->hs + (size_t)(t + 1) * H, net->ps + (size_t)t * net->V);
	}
}

/* Mean cross-entropy of @y over the unrolled steps; with @backprop its gradient in dw. */
static double lstm_backward(struct lstm_net *net, const uint16_t *x, const uint16_t *y,
			    unsigned len, bool backprop)
{
	const unsigned H = net->H, G = net->G, V = net->V;
	float *restrict dh = net->dh, *restrict dc = net->dc, *restrict dz = net->dz,
			*restrict dy = net->dy;
	float *restrict dwh = net->dw + (net->wh - net->w), *restrict db =
								net->dw + (net->b - net->w);
	float *restrict dwy = net->dw + (net->wy - net->w), *restrict dby =
								net->dw + (net->by - net->w);
	float *restrict dhn = net->dhn, *restrict dcn = net->dcn;
	double loss = 0.0;

	for (unsigned t = 0; t < len; t++)
		loss -= log(MAX((double)net->ps[(size_t)t * V + y[t]], 1e-30));
	loss /= len;
	if (!backprop)
		return loss;
	memset(net->dw, 0, net->n * sizeof(float));
	memset(net->touched, 0, V);
	memset(dhn, 0, H * sizeof(float));
	memset(dcn, 0, H * sizeof(float));
	for (unsigned t = len; t-- > 0;) {
		const float *restrict p = net->ps + (size_t)t * V;
		const float *restrict h = net->hs + (size_t)(t + 1) * H;
		const float *restrict hp = net->hs + (size_t)t * H;
		const float *restrict cp = net->cs + (size_t)t * H;
		const float *restrict tc = net->tcs + (size_t)(t + 1) * H;
		const float *restrict gt = net->gates + (size_t)t * G;
		float *restrict dwx = net->dw + (size_t)x[t] * G;

		net->touched[x[t]] = 1;
		for (unsigned k = 0; k < V; k++)
			dy[k] = (p[k] - (k == y[t] ? 1.0f : 0.0f)) / (float)len;
		memcpy(dh, dhn, H * sizeof(float));
		for (unsigned k = 0; k < V; k++) {
			if (!net->active[k])
				continue;
			lstm_axpy(dwy + (size_t)k * H, dy[k], h, H);
			lstm_axpy(dh, dy[k], net->wy + (size_t)k * H, H);
			dby[k] += dy[k];
		}
		for (unsigned j = 0; j < H; j++) {
			float i = gt[j], f = gt[H + j], g = gt[2 * H + j], o = gt[3 * H + j];

			dc[j] = dcn[j] + dh[j] * o * (1.0f - tc[j] * tc[j]);
			dz[j] = dc[j] * g * i * (1.0f - i);
			dz[H + j] = dc[j] * cp[j] * f * (1.0f - f);
			dz[2 * H + j] = dc[j] * i * (1.0f - g * g);
			dz[3 * H + j] = dh[j] * tc[j] * o * (1.0f - o);
			dcn[j] = dc[j] * f;
		}
		memset(dhn, 0, H * sizeof(float));
		for (unsigned r = 0; r < G; r++) {
			dwx[r] += dz[r];
			db[r] += dz[r];
			lstm_axpy(dwh + (size_t)r * H, dz[r], hp, H);
			lstm_axpy(dhn, dz[r], net->wh + (size_t)r * H, H);
		}
	}
	return loss;
}

double lstm_net_loss(struct lstm_net *net, const uint16_t *inputs, const uint16_t *targets,
		     unsigned len, bool backprop)
{
	len = MIN(len, net->T);
	if (len == 0)
		return 0.0;
	lstm_unroll(net, inputs, len, NULL, NULL);
	return lstm_backward(net, inputs, targets, len, backprop);
}

/*
 * One Adam step on dw, clipped to global norm LSTM_CLIP.  Lazy: only the weights the window
 * can have touched move (the input rows of the classes it read, the output rows of the
 * classes in the softmax, the rest whole), so a class unseen for a while keeps its weights
 * rather than drift on stale momentum, and an update costs what the window used.
 */
static unsigned lstm_spans(const struct lstm_net *net, struct lstm_span *spans)
{
	unsigned n = 0;
	size_t wy = (size_t)(net->wy - net->w), by = (size_t)(net->by - net->w);

	for (unsigned k = 0; k < net->V; k++)
		if (net->touched[k])
			spans[n++] = (struct lstm_span){(size_t)k * net->G, net->G};
	spans[n++] =
	    (struct lstm_span){(size_t)(net->wh - net->w), (size_t)net->G * net->H + net->G};
	for (unsigned k = 0; k < net->V; k++)
		if (net->active[k])
			spans[n++] = (struct lstm_span){wy + (size_t)k * net->H, net->H};
	spans[n++] = (struct lstm_span){by, net->V};
	return n;
}

/*
 * 1/sqrt(x) for x > 0 to 5e-6 relative (two Newton steps), in plain float and integer
 * arithmetic so that it vectorises: sqrtf() may set errno, which keeps gcc scalar.
 */
static inline float lstm_rsqrt(float x)
{
	uint32_t bits;
	float y;

	memcpy(&bits, &x, sizeof(bits));
	bits = 0x5f3759dfu - (bits >> 1);
	memcpy(&y, &bits, sizeof(y));
	y = y * (1.5f - 0.5f * x * y * y);
	return y * (1.5f - 0.5f * x * y * y);
}

/* Adam on @n weights, gradient scaled by @s; m / (sqrt(v) + eps) taken as m / sqrt(v +
 * eps^2).  A step moves a weight by about lr at most, so weights stay far below
 * LSTM_WEIGHT_MAX (which only a damaged file reaches) without a clamp here.  The arrays
 * are parameters, not locals, for gcc to trust restrict and use SIMD. */
static void lstm_adam_span(float *restrict w, float *restrict m, float *restrict v,
			   const float *restrict g, size_t n, float s, float lr1)
{
	const float b1 = (float)LSTM_BETA1, b2 = (float)LSTM_BETA2;
	const float eps2 = (float)(LSTM_ADAM_EPS * LSTM_ADAM_EPS);
	size_t i = 0, end = n / LSTM_LANES * LSTM_LANES;

#define LSTM_ADAM_ONE(k)                                                                           \
	do {                                                                                       \
		float gk = g[k] * s;                                                               \
		m[k] = b1 * m[k] + (1.0f - b1) * gk;                                               \
		v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;                                          \
		w[k] -= lr1 * m[k] * lstm_rsqrt(v[k] + eps2);                                      \
	} while (0)
	for (; i < end; i += LSTM_LANES)
		for (unsigned j = 0; j < LSTM_LANES; j++)
			LSTM_ADAM_ONE(i + j);
	for (; i < n; i++)
		LSTM_ADAM_ONE(i);
#undef LSTM_ADAM_ONE
}

static void lstm_adam(struct lstm_net *net)
{
	struct lstm_span *spans = net->spans;
	unsigned nspans = lstm_spans(net, spans);
	double norm = 0.0, bc1, bc2;
	float lr1, s;

	for (unsigned k = 0; k < nspans; k++) {
		size_t at = spans[k].at, n = spans[k].len, whole = n / LSTM_LANES * LSTM_LANES;

		norm += lstm_dot(net->dw + at, net->dw + at, (unsigned)whole);
		for (size_t i = at + whole; i < at + n; i++)
			norm += (double)net->dw[i] * net->dw[i];
	}
	norm = sqrt(norm);
	s = (float)(norm > LSTM_CLIP ? LSTM_CLIP / norm : 1.0);
	net->adam_t++;
	bc1 = 1.0 - pow(LSTM_BETA1, (double)MIN(net->adam_t, 100000));
	bc2 = 1.0 - pow(LSTM_BETA2, (double)MIN(net->adam_t, 100000));
	lr1 = (float)(LSTM_LR * sqrt(bc2) / bc1);
	for (unsigned k = 0; k < nspans; k++)
		lstm_adam_span(net->w + spans[k].at, net->m + spans[k].at, net->v + spans[k].at,
			       net->dw + spans[k].at, spans[k].len, s, lr1);
}

/* The expert. */

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
		lstm_net_init(l->net, l->seed);
		memset(l->net->active, 0, l->V);
		for (unsigned k = 0; k < LSTM_RESERVED; k++)
			l->net->active[k] = 1;
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
		    LSTM_NS_PER_MAC *
		    ((double)T * 3.0 * (double)(G * H + (size_t)V * H) + 8.0 * (double)l->net->n);
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
	l->train.credit_ns = MIN(l->train.credit_ns + gap * l->train.share, LSTM_BURST_NS);
	l->infer.credit_ns = MIN(l->infer.credit_ns + gap * l->infer.share, LSTM_BURST_NS);
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
	l->net->active[k] = 1;
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
	float *gates = l->tmp, *h = gates + l->net->G, *c = h + H, *tc = c + H;

	lstm_cell(l->net, x, l->h, l->c, gates, h, c, tc);
	memcpy(l->h, h, H * sizeof(float));
	memcpy(l->c, c, H * sizeof(float));
	lstm_output(l->net, l->h, l->p);
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
	lstm_unroll(l->net, x, len, l->ring_h + (first % R) * H, l->ring_c + (first % R) * H);
	lstm_backward(l->net, x, y, len, true);
	lstm_adam(l->net);
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
			float *gates = l->tmp, *tc = l->tmp + l->net->G + 2 * l->H;

			lstm_cell(l->net, best[i].k, from->h, from->c, gates, next[i].h, next[i].c,
				  tc);
			lstm_output(l->net, next[i].h, next[i].p);
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
 *   nparams x f32 weights; nparams x f32 Adam m; nparams x f32 Adam v
 * 232 KB at hidden 32, vocabulary 64.  A valid shape other than this model's (hidden or
 * vocabulary changed since the save, or a cap too small for it now) reads as "start
 * afresh", not as an error, so that a hybrid keeps its other experts' state.
 */
static void lstm_put_f32(GByteArray *out, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, sizeof(bits));
	model_put_u32(out, bits);
}

static float lstm_get_f32(struct model_reader *r)
{
	uint32_t bits = model_get_u32(r);
	float v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

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
	model_put_u64(out, l->net->adam_t);
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
	for (size_t i = 0; i < l->net->n; i++)
		lstm_put_f32(out, l->net->w[i]);
	for (size_t i = 0; i < l->net->n; i++)
		lstm_put_f32(out, l->net->m[i]);
	for (size_t i = 0; i < l->net->n; i++)
		lstm_put_f32(out, l->net->v[i]);
}

/* Weights finite and in range: a damaged file must not feed NaN to the net. */
static bool lstm_load_floats(struct model_reader *r, float *v, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++) {
		v[i] = lstm_get_f32(r);
		if (!(v[i] >= lo && v[i] <= hi))
			return false;
	}
	return !r->bad;
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
	l->net->adam_t = model_get_u64(r);
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
		l->net->active[k] = k < LSTM_RESERVED || used;
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
	return lstm_load_floats(r, l->net->w, l->net->n, -LSTM_WEIGHT_MAX, LSTM_WEIGHT_MAX) &&
	       lstm_load_floats(r, l->net->m, l->net->n, -1e6f, 1e6f) &&
	       lstm_load_floats(r, l->net->v, l->net->n, 0.0f, 1e12f);
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

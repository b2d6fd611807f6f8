/*
 * lstm_net: the LSTM expert's network (model_lstm.c), a one-layer LSTM over delta classes
 * with a softmax output, trained by truncated backpropagation through time with Adam.  It
 * knows classes, not deltas: what a class means, when to train and what to predict are the
 * expert's.  Single-threaded, owned by its caller (the expert, on the learner thread).
 *
 * Design.  Gates i f g o (forget bias 1), a one-hot input (a row of wx per class), softmax
 * output over the active classes only (a class not yet learned is left out).  Training
 * (lstm_net_train) unrolls a window from the state it started in as computed then, takes
 * the mean cross-entropy's gradient back through it, clips it to global norm LSTM_CLIP
 * and makes one lazy Adam step: only the weights the window can have touched move.
 * Float weights; about 4 x (4H(V + H + 1) + V(H + 1)) floats with the optimizer state and
 * the gradient: 232 KB at H 32, V 64.
 *
 *   parameter vector w (and dw, m, v alike):
 *   wx [V][4H] | wh [4H][H] | b [4H] | wy [V][H] | by [V]
 *
 * Speed: the kernels run over multiples of LSTM_LANES floats so that gcc and clang use
 * SIMD at -O2 without -ffast-math; the sums keep one fixed order, so a run is
 * reproducible bit for bit (replay and the persistence tests depend on it).
 */
#include <math.h>
#include <string.h>

#include "aheadfs/lstm_net.h"
#include "aheadfs/model_expert.h"

#define LSTM_LR 3e-3
#define LSTM_BETA1 0.9
#define LSTM_BETA2 0.999
#define LSTM_ADAM_EPS 1e-8
#define LSTM_CLIP 5.0
#define LSTM_WEIGHT_MAX 1e4f

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

size_t lstm_net_bytes(unsigned H, unsigned V, unsigned T)
{
	return sizeof(struct lstm_net) + 4 * lstm_net_count(H, V) * sizeof(float) + 2 * V +
	       (2 * (size_t)V + 2) * sizeof(struct lstm_span) +
	       ((size_t)T * (4 * H + V) + 3 * (size_t)(T + 1) * H + 4 * H + 4 * H + V) *
		   sizeof(float);
}

void lstm_net_init_class(struct lstm_net *net, unsigned k, uint64_t *seed)
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

void lstm_net_reset(struct lstm_net *net, uint64_t seed)
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
	lstm_net_reset(net, seed);
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

void lstm_net_set_active(struct lstm_net *net, unsigned k, bool active)
{
	net->active[k] = active;
}

void lstm_net_step(const struct lstm_net *net, unsigned x, const float *restrict h0,
		   const float *restrict c0, float *restrict h, float *restrict c,
		   float *restrict scratch)
{
	lstm_cell(net, x, h0, c0, scratch, h, c, scratch + net->G);
}

void lstm_net_output(const struct lstm_net *net, const float *restrict h, float *restrict p)
{
	lstm_output(net, h, p);
}

void lstm_net_train(struct lstm_net *net, const uint16_t *inputs, const uint16_t *targets,
		    unsigned len, const float *h0, const float *c0)
{
	lstm_unroll(net, inputs, len, h0, c0);
	lstm_backward(net, inputs, targets, len, true);
	lstm_adam(net);
}

uint64_t lstm_net_adam_steps(const struct lstm_net *net)
{
	return net->adam_t;
}

void lstm_net_set_adam_steps(struct lstm_net *net, uint64_t steps)
{
	net->adam_t = steps;
}

/* Saved: nparams x f32 weights, nparams x f32 Adam m, nparams x f32 Adam v. */
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

void lstm_net_save(const struct lstm_net *net, GByteArray *out)
{
	for (size_t i = 0; i < net->n; i++)
		lstm_put_f32(out, net->w[i]);
	for (size_t i = 0; i < net->n; i++)
		lstm_put_f32(out, net->m[i]);
	for (size_t i = 0; i < net->n; i++)
		lstm_put_f32(out, net->v[i]);
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

bool lstm_net_load(struct lstm_net *net, struct model_reader *r)
{
	return lstm_load_floats(r, net->w, net->n, -LSTM_WEIGHT_MAX, LSTM_WEIGHT_MAX) &&
	       lstm_load_floats(r, net->m, net->n, -1e6f, 1e6f) &&
	       lstm_load_floats(r, net->v, net->n, 0.0f, 1e12f);
}

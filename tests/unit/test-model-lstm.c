/*
 * The LSTM expert: its gradient against finite differences, a stream it learns and a Markov
 * table cannot, persistence (identical predictions after a round trip; damaged weights
 * rejected), its CPU budget and its memory.
 */
#include <math.h>
#include <string.h>

#include "aheadfs/model_lstm.h"
#include "test-model-common.h"

#define BLOCKS 1000000

/* Backpropagation against central differences on a tiny net, every parameter. */
static void test_lstm_gradient(void)
{
	const unsigned H = 8, V = 5, T = 7;
	struct lstm_net *net = lstm_net_new(H, V, T, 7);
	struct test_rng rng = {3};
	uint16_t x[7], y[7];
	size_t n = lstm_net_nparams(net), checked = 0;
	float *w = lstm_net_params(net);
	g_autofree float *grad = g_new(float, n);
	double worst = 0.0, sum = 0.0, loss;

	for (unsigned t = 0; t < T; t++) {
		x[t] = (uint16_t)test_rng_below(&rng, V);
		y[t] = (uint16_t)test_rng_below(&rng, V);
	}
	/* weights larger than at init, so that every gate is off its linear part */
	for (size_t i = 0; i < n; i++)
		w[i] *= 3.0f;
	loss = lstm_net_loss(net, x, y, T, true);
	memcpy(grad, lstm_net_grads(net), n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		const float eps = 1e-2f;
		float keep = w[i];
		double up, down, numeric, err;

		w[i] = keep + eps;
		up = lstm_net_loss(net, x, y, T, false);
		w[i] = keep - eps;
		down = lstm_net_loss(net, x, y, T, false);
		w[i] = keep;
		numeric = (up - down) / (2.0 * (double)eps);
		/* relative, but not below what float rounding of the loss allows */
		err = fabs(numeric - grad[i]) / MAX(fabs(numeric) + fabs(grad[i]), 1e-3);
		worst = MAX(worst, err);
		sum += err;
		checked++;
	}
	g_test_message("gradient check: %zu parameters, loss %.4f, relative error max %.2e "
		       "mean %.2e",
		       checked, loss, worst, sum / (double)checked);
	g_assert_cmpfloat(worst, <, 1e-2);
	g_assert_cmpfloat(sum / (double)checked, <, 1e-3);
	lstm_net_free(net);
}

/*
 * Fresh blocks (the stream drifts forward, so no block repeats and the Markov block table
 * is no help) whose deltas follow x[t] = x[t-2] xor x[t-3], period 7: 0010111.  The next
 * delta is a function of the last three; the last two leave it open at four steps of
 * seven, which is all Markov's delta table keys on.
 */
static void make_order3(struct test_stream *s, size_t n)
{
	static const int bits[7] = {0, 0, 1, 0, 1, 1, 1};
	uint64_t b = 1000;

	test_stream_init(s, 0);
	for (size_t i = 0; i < n; i++) {
		test_stream_add(s, b, 1);
		b += 1 + (bits[i % 7] ? 5 : 1); /* deltas from the access's end: 1 or 5 */
	}
}

static const float thresholds[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};

static struct test_eval eval_best(const char *name, const struct test_stream *s)
{
	g_autoptr(Model) m = test_model_new(name, BLOCKS, 0);
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r[G_N_ELEMENTS(thresholds)];
	size_t best = 0;

	o.from = s->n / 2;
	test_eval_sweep(m, s->ev, s->n, &o, thresholds, G_N_ELEMENTS(thresholds), r);
	for (size_t t = 1; t < G_N_ELEMENTS(thresholds); t++)
		if (r[t].f1 > r[best].f1)
			best = t;
	g_test_message("%-10s best at %.1f: precision %.3f recall %.3f f1 %.3f; at 0.3: %.3f "
		       "%.3f %.3f, %.1f/event",
		       name, thresholds[best], r[best].precision, r[best].recall, r[best].f1,
		       r[2].precision, r[2].recall, r[2].f1, r[2].per_event);
	return r[best];
}

static void test_lstm_learns_order3(void)
{
	struct test_stream s;
	struct test_eval lstm, markov, seq;

	make_order3(&s, 6000);
	lstm = eval_best("lstm", &s);
	markov = eval_best("markov", &s);
	seq = eval_best("sequential", &s);
	g_assert_cmpfloat(lstm.f1, >=, 0.9);
	g_assert_cmpfloat(lstm.f1, >=, markov.f1 + 0.2);
	g_assert_cmpfloat(lstm.f1, >=, seq.f1 + 0.2);
	test_stream_fini(&s);
}

/* The same after a round trip: bytes, and every prediction while both keep learning. */
static void test_lstm_round_trip(void)
{
	g_autoptr(Model) a = test_model_new("lstm", BLOCKS, 0);
	g_autoptr(Model) b = test_model_new("lstm", BLOCKS, 0);
	g_autoptr(GBytes) saved = NULL, again_a = NULL, again_b = NULL;
	g_autoptr(GError) error = NULL;
	struct model_prediction pa[256], pb[256];
	struct model_lstm_counters ca, cb;
	struct test_stream s;
	uint64_t t;
	size_t compared = 0;

	make_order3(&s, 3000);
	test_feed(a, s.ev, 2000);
	saved = model_save(a);
	g_assert_true(model_load(b, saved, &error));
	g_assert_no_error(error);
	t = s.ev[2000].time_us;
	model_session_start(a, t);
	model_session_start(b, t);
	again_a = model_save(a);
	again_b = model_save(b);
	g_assert_true(g_bytes_equal(saved, again_b));
	g_assert_true(g_bytes_equal(again_a, again_b));
	for (size_t i = 2000; i < s.n; i++) {
		size_t na, nb;

		model_observe(a, &s.ev[i]);
		model_observe(b, &s.ev[i]);
		na = model_predict(a, s.ev[i].time_us, 32 * TEST_GAP_US, pa, G_N_ELEMENTS(pa));
		nb = model_predict(b, s.ev[i].time_us, 32 * TEST_GAP_US, pb, G_N_ELEMENTS(pb));
		g_assert_cmpuint(na, ==, nb);
		for (size_t j = 0; j < na; j++) {
			g_assert_cmpuint(pa[j].block, ==, pb[j].block);
			g_assert_cmpuint(pa[j].eta_us, ==, pb[j].eta_us);
			g_assert_cmpuint(pa[j].expert, ==, pb[j].expert);
			g_assert_true(
			    memcmp(&pa[j].probability, &pb[j].probability, sizeof(float)) == 0);
		}
		compared += na;
	}
	model_lstm_get_counters(a, &ca);
	model_lstm_get_counters(b, &cb);
	g_test_message("round trip: %zu bytes, %zu predictions identical, %" G_GUINT64_FORMAT
		       " updates in all",
		       g_bytes_get_size(saved), compared, ca.train_steps);
	g_assert_cmpuint(compared, >, 1000);
	g_assert_cmpuint(ca.train_steps, ==, cb.train_steps);
	test_stream_fini(&s);
}

/* Loading @bytes fails with @code and leaves a model that predicts nothing. */
static void assert_load_fails(GBytes *bytes, int code)
{
	g_autoptr(Model) m = test_model_new("lstm", BLOCKS, 0);
	g_autoptr(GError) error = NULL;
	struct model_prediction out[16];

	g_assert_false(model_load(m, bytes, &error));
	g_assert_error(error, MODEL_ERROR, code);
	model_session_start(m, 1);
	g_assert_cmpuint(model_predict(m, 1, G_USEC_PER_SEC, out, G_N_ELEMENTS(out)), ==, 0);
}

/* A NaN, an infinity or an absurd weight saved with a valid checksum is refused. */
static void test_lstm_corrupt(void)
{
	const float bad[] = {NAN, INFINITY, -INFINITY, 1e9f};
	struct test_stream s;

	make_order3(&s, 500);
	for (size_t k = 0; k < G_N_ELEMENTS(bad); k++) {
		g_autoptr(Model) a = test_model_new("lstm", BLOCKS, 0);
		g_autoptr(GBytes) saved = NULL;
		struct lstm_net *net;
		float *w;

		test_feed(a, s.ev, s.n);
		net = model_lstm_get_net(a);
		g_assert_nonnull(net);
		w = lstm_net_params(net);
		w[lstm_net_nparams(net) / 3 + k] = bad[k];
		saved = model_save(a);
		assert_load_fails(saved, MODEL_ERROR_CORRUPT);
	}
	/* and a flipped bit, caught by the envelope's checksum */
	{
		g_autoptr(Model) a = test_model_new("lstm", BLOCKS, 0);
		g_autoptr(GBytes) saved = NULL, flipped = NULL;
		gsize n;
		const uint8_t *orig;
		uint8_t *p;

		test_feed(a, s.ev, s.n);
		saved = model_save(a);
		orig = g_bytes_get_data(saved, &n);
		p = g_memdup2(orig, n);
		p[n / 2] ^= 0x10;
		flipped = g_bytes_new_take(p, n);
		assert_load_fails(flipped, MODEL_ERROR_CORRUPT);
	}
	test_stream_fini(&s);
}

/* A state saved with another hidden size is not an error: the LSTM starts afresh. */
static void test_lstm_other_shape(void)
{
	struct model_params p16 = {.image_blocks = BLOCKS, .lstm_hidden = 16};
	struct model_params p32 = {.image_blocks = BLOCKS};
	g_autoptr(Model) a = model_new("lstm", &p16, NULL);
	g_autoptr(Model) b = model_new("lstm", &p32, NULL);
	g_autoptr(Model) fresh = model_new("lstm", &p32, NULL);
	g_autoptr(GBytes) saved = NULL, empty = NULL, now = NULL;
	g_autoptr(GError) error = NULL;
	struct test_stream s;

	make_order3(&s, 500);
	test_feed(a, s.ev, s.n);
	saved = model_save(a);
	g_assert_true(model_load(b, saved, &error));
	g_assert_no_error(error);
	empty = model_save(fresh);
	now = model_save(b);
	g_assert_true(g_bytes_equal(empty, now));
	test_stream_fini(&s);
}

/*
 * Dense reads (10 us apart, as in a replay of hits) cannot all be trained on: updates are
 * subsampled to the budget.  Sparse ones (a boot: ~55 reads a second) are all trained on.
 */
static void run_paced(uint64_t gap_us, size_t n, double scale, struct model_lstm_counters *c,
		      double *share)
{
	g_autoptr(Model) m = test_model_new("lstm", BLOCKS, 0);
	struct model_prediction out[64];
	struct model_event ev = {.nblocks = 1};
	double spent = 0.0;

	model_set_cpu_scale(m, scale);
	for (size_t i = 0; i < n; i++) {
		struct model_lstm_counters before;

		model_lstm_get_counters(m, &before);
		ev.time_us += gap_us;
		ev.block = i % 5 ? ev.block + 1 : (ev.block * 7919 + 13) % BLOCKS;
		model_observe(m, &ev);
		model_predict(m, ev.time_us, 200000, out, G_N_ELEMENTS(out));
		model_lstm_get_counters(m, c);
		spent +=
		    (double)(c->train_steps - before.train_steps) * c->cost_ns_train +
		    (double)(c->steps - before.steps + c->rollout_steps - before.rollout_steps) *
			c->cost_ns_step;
	}
	*share = spent / ((double)gap_us * 1e3 * (double)n);
}

static void test_lstm_budget(void)
{
	struct model_lstm_counters dense, boot;
	double dense_share, boot_share;

	run_paced(10, 200000, 1.0, &dense, &dense_share);
	run_paced(18000, 1100, 1.0, &boot, &boot_share);
	g_test_message("dense: %" G_GUINT64_FORMAT " accesses fed to the net, %" G_GUINT64_FORMAT
		       " skipped, %" G_GUINT64_FORMAT
		       " updates, estimated CPU %.1f%%; boot: %" G_GUINT64_FORMAT
		       " fed, %" G_GUINT64_FORMAT " updates, %.2f%%",
		       dense.steps, dense.skipped, dense.train_steps, 100.0 * dense_share,
		       boot.steps, boot.train_steps, 100.0 * boot_share);
	g_assert_cmpuint(dense.skipped, >, 10 * dense.steps);
	g_assert_cmpuint(dense.train_steps, <, dense.steps);
	/* the budget's 8%, plus the bursts it may hold, plus the steps it cannot skip */
	g_assert_cmpfloat(dense_share, <, 0.10);
	g_assert_cmpuint(boot.train_skipped, ==, 0);
	g_assert_cmpuint(boot.skipped, ==, 0);
	g_assert_cmpuint(boot.train_steps, ==, boot.steps - 1);
	g_assert_cmpfloat(boot_share, <, 0.02);
}

/*
 * The learner measured its thread over its CPU cap and scaled the LSTM down: at the same
 * read rate, fewer updates and less estimated CPU, in proportion.
 */
static void test_lstm_cpu_scale(void)
{
	struct model_lstm_counters full, eighth;
	double full_share, eighth_share;

	run_paced(500, 20000, 1.0, &full, &full_share);
	run_paced(500, 20000, 1.0 / 8, &eighth, &eighth_share);
	g_test_message("2000 reads/s: %" G_GUINT64_FORMAT " updates, %.2f%% at scale 1; %"
		       G_GUINT64_FORMAT " updates, %.2f%% at 1/8",
		       full.train_steps, 100.0 * full_share, eighth.train_steps,
		       100.0 * eighth_share);
	g_assert_cmpuint(eighth.train_steps, <, full.train_steps / 4);
	g_assert_cmpfloat(eighth_share, <, full_share / 4);
	g_assert_cmpfloat(eighth_share, <, 0.08 / 8 * 1.5);
}

/* Within its cap: smaller nets for smaller caps, inert below the least one. */
static void test_lstm_memory(void)
{
	const size_t caps[] = {16u << 20, 256u << 10, 64u << 10};
	struct test_stream s;

	make_order3(&s, 2000);
	for (size_t k = 0; k < G_N_ELEMENTS(caps); k++) {
		g_autoptr(Model) m = test_model_new("lstm", BLOCKS, caps[k]);
		struct model_lstm_counters c;
		struct model_prediction out[256];

		for (size_t i = 0; i < s.n; i++) {
			model_observe(m, &s.ev[i]);
			model_predict(m, s.ev[i].time_us, 32 * TEST_GAP_US, out, G_N_ELEMENTS(out));
		}
		model_lstm_get_counters(m, &c);
		g_test_message("cap %zu: hidden %u, vocabulary %u, %zu bytes", caps[k], c.hidden,
			       c.vocab, model_memory_bytes(m));
		g_assert_cmpuint(model_memory_bytes(m), <=, caps[k]);
	}
	test_stream_fini(&s);
}

/* Random reads: hardly anything predicted with confidence. */
static void test_lstm_random(void)
{
	g_autoptr(Model) m = test_model_new("lstm", 20000, 0);
	struct test_rng rng = {99};
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	test_stream_init(&s, 0);
	for (int i = 0; i < 20000; i++)
		test_stream_add(&s, test_rng_below(&rng, 20000), 1);
	o.from = 5000;
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("lstm random: %.3f predictions/event above 0.3, confidence %.3f",
		       r.per_event, model_confidence(m));
	g_assert_cmpfloat(r.per_event, <, 0.2);
	g_assert_cmpfloat(model_confidence(m), <, 0.1);
	test_stream_fini(&s);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/lstm/gradient", test_lstm_gradient);
	g_test_add_func("/model/lstm/learns-order3", test_lstm_learns_order3);
	g_test_add_func("/model/lstm/round-trip", test_lstm_round_trip);
	g_test_add_func("/model/lstm/corrupt", test_lstm_corrupt);
	g_test_add_func("/model/lstm/other-shape", test_lstm_other_shape);
	g_test_add_func("/model/lstm/budget", test_lstm_budget);
	g_test_add_func("/model/lstm/cpu-scale", test_lstm_cpu_scale);
	g_test_add_func("/model/lstm/memory", test_lstm_memory);
	g_test_add_func("/model/lstm/random", test_lstm_random);
	return g_test_run();
}

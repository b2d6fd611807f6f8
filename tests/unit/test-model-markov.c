/* The Markov expert: repeats, shifted repeats, strides, noise, memory bound. */
#include "test-model-common.h"

#define BLOCKS 1000000

static void test_markov_repeat(void)
{
	g_autoptr(Model) m = test_model_new("markov", BLOCKS, 0);
	struct test_rng rng = {42};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 500, BLOCKS);
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	test_stream_init(&s, 1000000);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < 500; i++)
			test_stream_add(&s, pat[i], 1);
	o.from = 500;
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("markov repeat: precision %.3f recall %.3f", r.precision, r.recall);
	g_assert_cmpfloat(r.precision, >=, 0.9);
	g_assert_cmpfloat(r.recall, >=, 0.9);
	g_assert_cmpfloat(model_confidence(m), >=, 0.8);
	test_stream_fini(&s);
}

/* The same walk replayed elsewhere on the disk: the delta table carries it. */
static void test_markov_shifted(void)
{
	g_autoptr(Model) m = test_model_new("markov", BLOCKS, 0);
	struct test_rng rng = {7};
	int64_t deltas[300];
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	for (size_t i = 0; i < G_N_ELEMENTS(deltas); i++)
		deltas[i] = (int64_t)test_rng_below(&rng, 2001) - 1000;
	test_stream_init(&s, 0);
	for (uint64_t base = 100000; base <= 700000; base += 200000) {
		uint64_t b = base;

		for (size_t i = 0; i < G_N_ELEMENTS(deltas); i++) {
			test_stream_add(&s, b, 1);
			b += deltas[i];
		}
	}
	o.from = G_N_ELEMENTS(deltas) * 2;
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("markov shifted: precision %.3f recall %.3f", r.precision, r.recall);
	g_assert_cmpfloat(r.precision, >=, 0.8);
	g_assert_cmpfloat(r.recall, >=, 0.8);
	test_stream_fini(&s);
}

static void test_markov_chain_eta(void)
{
	g_autoptr(Model) m = test_model_new("markov", BLOCKS, 0);
	struct test_rng rng = {3};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 50, BLOCKS);
	struct model_prediction out[64];
	struct test_stream s;
	size_t n;

	test_stream_init(&s, 0);
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < 50; i++)
			test_stream_add(&s, pat[i], 1);
	/* stop right after pat[9]: the next steps are pat[10], pat[11], ... */
	test_feed(m, s.ev, 100 + 10);
	n = model_predict(m, s.ev[109].time_us, 1000000, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, >=, 8);
	for (size_t i = 0; i < 8; i++) {
		g_assert_cmpuint(out[i].block, ==, pat[10 + i]);
		g_assert_cmpuint(out[i].expert, ==, MODEL_EXPERT_MARKOV);
		/* step k is k mean gaps away */
		g_assert_cmpuint(out[i].eta_us, ==, s.ev[109].time_us + (i + 1) * TEST_GAP_US);
		if (i)
			g_assert_cmpfloat(out[i].probability, <=, out[i - 1].probability);
	}
	/* a horizon of 3 gaps holds 3 steps */
	n = model_predict(m, s.ev[109].time_us, 3 * TEST_GAP_US, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 3);
	test_stream_fini(&s);
}

static void test_markov_multiblock(void)
{
	g_autoptr(Model) m = test_model_new("markov", BLOCKS, 0);
	struct model_prediction out[64];
	struct test_stream s;
	size_t n;

	/* 10 -> 500 (4 blocks) -> 90, twice: the successor's length is predicted too */
	test_stream_init(&s, 0);
	for (int pass = 0; pass < 2; pass++) {
		test_stream_add(&s, 10, 1);
		test_stream_add(&s, 500, 4);
		test_stream_add(&s, 90, 2);
	}
	test_stream_add(&s, 10, 1);
	test_feed(m, s.ev, s.n);
	n = model_predict(m, s.now_us, 1000000, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, >=, 6);
	for (int i = 0; i < 4; i++)
		g_assert_cmpuint(out[i].block, ==, 500 + i);
	g_assert_cmpuint(out[4].block, ==, 90);
	g_assert_cmpuint(out[5].block, ==, 91);
	test_stream_fini(&s);
}

static void test_markov_random(void)
{
	g_autoptr(Model) m = test_model_new("markov", 20000, 0);
	struct test_rng rng = {99};
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	/* a small image, so that blocks recur and the table has something to be wrong on */
	test_stream_init(&s, 0);
	for (int i = 0; i < 100000; i++)
		test_stream_add(&s, test_rng_below(&rng, 20000), 1);
	o.from = 50000;
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("markov random: %.3f predictions/event, precision %.3f, confidence %.3f",
		       r.per_event, r.precision, model_confidence(m));
	g_assert_cmpfloat(r.per_event, <, 0.5);
	g_assert_cmpfloat(model_confidence(m), <, 0.2);
	test_stream_fini(&s);
}

static void test_markov_memory_cap(void)
{
	const size_t cap = 1 << 20;
	g_autoptr(Model) m = test_model_new("markov", 1u << 30, cap);
	struct test_rng rng = {5};
	struct model_prediction out[64];
	struct model_event ev = {0};
	size_t before = model_memory_bytes(m);

	for (int i = 0; i < 1000000; i++) {
		ev.time_us += 100;
		ev.block = test_rng_below(&rng, 1u << 30);
		ev.nblocks = 1;
		model_observe(m, &ev);
		if (i % 64 == 0)
			model_predict(m, ev.time_us, 100000, out, G_N_ELEMENTS(out));
	}
	g_test_message("markov memory: %zu bytes at start, %zu after 1M events, cap %zu", before,
		       model_memory_bytes(m), cap);
	g_assert_cmpuint(model_memory_bytes(m), <=, cap);
	g_assert_cmpuint(model_memory_bytes(m), >, cap / 2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/markov/repeat", test_markov_repeat);
	g_test_add_func("/model/markov/shifted", test_markov_shifted);
	g_test_add_func("/model/markov/chain-eta", test_markov_chain_eta);
	g_test_add_func("/model/markov/multiblock", test_markov_multiblock);
	g_test_add_func("/model/markov/random", test_markov_random);
	g_test_add_func("/model/markov/memory-cap", test_markov_memory_cap);
	return g_test_run();
}

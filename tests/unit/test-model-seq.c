/* The sequential / stride expert: runs, strides, window growth, breaks, noise. */
#include "test-model-common.h"

#define BLOCKS 100000

static size_t predict_all(struct model *m, uint64_t now, struct model_prediction *out, size_t max)
{
	return model_predict(m, now, 10 * G_USEC_PER_SEC, out, max);
}

static void test_seq_run_window_grows(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct model_prediction out[256];
	struct test_stream s;
	size_t expect[] = {0, 4, 8, 16, 32, 32, 32};

	test_stream_init(&s, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(expect); i++) {
		size_t n;

		test_stream_add(&s, 1000 + i, 1);
		model_observe(m, &s.ev[i]);
		n = predict_all(m, s.now_us, out, G_N_ELEMENTS(out));
		g_assert_cmpuint(n, ==, expect[i]);
		for (size_t j = 0; j < n; j++) {
			g_assert_cmpuint(out[j].block, ==, 1000 + i + 1 + j);
			g_assert_cmpuint(out[j].expert, ==, MODEL_EXPERT_SEQUENTIAL);
			g_assert_cmpuint(out[j].eta_us, ==, s.now_us + (j + 1) * TEST_GAP_US);
		}
	}
	test_stream_fini(&s);
}

static void test_seq_image_end(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct model_prediction out[256];
	struct test_stream s;

	test_stream_init(&s, 0);
	for (uint64_t b = BLOCKS - 10; b < BLOCKS - 3; b++)
		test_stream_add(&s, b, 1);
	test_feed(m, s.ev, s.n);
	g_assert_cmpuint(predict_all(m, s.now_us, out, G_N_ELEMENTS(out)), ==, 3);
	g_assert_cmpuint(out[2].block, ==, BLOCKS - 1);
	test_stream_fini(&s);
}

static void test_seq_strides(void)
{
	const int64_t strides[] = {3, -2, 17, -1};

	for (size_t k = 0; k < G_N_ELEMENTS(strides); k++) {
		g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
		struct model_prediction out[256];
		struct test_stream s;
		uint64_t b = 50000;
		size_t last = 0;

		test_stream_init(&s, 0);
		for (int i = 0; i < 8; i++, b += strides[k])
			test_stream_add(&s, b, 1);
		for (size_t i = 0; i < s.n; i++) {
			size_t n;

			model_observe(m, &s.ev[i]);
			n = predict_all(m, s.ev[i].time_us, out, G_N_ELEMENTS(out));
			/* two accesses make a candidate; the third confirms it */
			if (i < 2)
				g_assert_cmpuint(n, ==, 0);
			else
				g_assert_cmpuint(n, >=, MAX(last, 4));
			for (size_t j = 0; j < n; j++)
				g_assert_cmpint((int64_t)out[j].block, ==,
						(int64_t)s.ev[i].block +
						    strides[k] * (int64_t)(j + 1));
			last = n;
		}
		g_assert_cmpuint(last, ==, 32);
		test_stream_fini(&s);
	}
}

static void test_seq_multiblock_run(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct model_prediction out[256];
	struct test_stream s;
	size_t n;

	/* 4-block reads back to back: the run is in blocks, a step is 4 of them */
	test_stream_init(&s, 0);
	for (int i = 0; i < 4; i++)
		test_stream_add(&s, 200 + 4 * i, 4);
	test_feed(m, s.ev, s.n);
	n = predict_all(m, s.now_us, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 32);
	for (size_t j = 0; j < n; j++) {
		g_assert_cmpuint(out[j].block, ==, 216 + j);
		g_assert_cmpuint(out[j].eta_us, ==, s.now_us + (j / 4 + 1) * TEST_GAP_US);
	}
	/* small reads within the latest access do not break the run */
	test_stream_add(&s, 213, 1);
	test_stream_add(&s, 214, 1);
	test_feed(m, s.ev + 4, 2);
	g_assert_cmpuint(predict_all(m, s.now_us, out, G_N_ELEMENTS(out)), ==, 32);
	test_stream_fini(&s);
}

static void test_seq_break_resets(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct model_prediction out[256];
	struct test_stream s;
	size_t n;

	test_stream_init(&s, 0);
	for (int i = 0; i < 20; i++)
		test_stream_add(&s, 100 + i, 1);
	/* the reader jumps away and starts a new run there */
	test_stream_add(&s, 70000, 1);
	test_stream_add(&s, 70001, 1);
	test_feed(m, s.ev, s.n);
	n = predict_all(m, s.now_us, out, G_N_ELEMENTS(out));
	/* the new run starts small; the old one has halved */
	g_assert_cmpuint(n, ==, 4 + 16);
	for (size_t j = 0, seen = 0; j < n; j++)
		if (out[j].block > 70001 && out[j].block <= 70005)
			g_assert_cmpuint(++seen, <=, 4);
	/* the old run, not continued, goes stale */
	for (int i = 0; i < 40; i++)
		test_stream_add(&s, 70002 + i, 1);
	test_feed(m, s.ev + 22, 40);
	n = predict_all(m, s.now_us, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 32);
	for (size_t j = 0; j < n; j++)
		g_assert_cmpuint(out[j].block, >, 70000);
	test_stream_fini(&s);
}

static void test_seq_interleaved(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	/* four readers, far apart, taking turns */
	test_stream_init(&s, 0);
	for (int i = 0; i < 2000; i++)
		test_stream_add(&s, (uint64_t)(i % 4) * 20000 + (uint64_t)i / 4, 1);
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("sequential interleaved: precision %.3f recall %.3f", r.precision, r.recall);
	g_assert_cmpfloat(r.precision, >=, 0.9);
	g_assert_cmpfloat(r.recall, >=, 0.9);
	g_assert_cmpfloat(model_confidence(m), >=, 0.8);
	test_stream_fini(&s);
}

static void test_seq_random(void)
{
	g_autoptr(Model) m = test_model_new("sequential", BLOCKS, 0);
	struct test_rng rng = {11};
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	test_stream_init(&s, 0);
	for (int i = 0; i < 50000; i++)
		test_stream_add(&s, test_rng_below(&rng, BLOCKS), 1);
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("sequential random: %.3f predictions/event, confidence %.3f", r.per_event,
		       model_confidence(m));
	g_assert_cmpfloat(r.per_event, <, 0.5);
	g_assert_cmpfloat(model_confidence(m), <, 0.05);
	test_stream_fini(&s);
}

static void test_seq_memory_cap(void)
{
	const size_t cap = 1 << 20;
	g_autoptr(Model) m = test_model_new("sequential", 1u << 30, cap);
	struct test_rng rng = {5};
	struct model_prediction out[64];
	struct model_event ev = {0};

	for (int i = 0; i < 1000000; i++) {
		ev.time_us += 100;
		ev.block = i % 3 ? ev.block + 1 : test_rng_below(&rng, 1u << 30);
		ev.nblocks = 1;
		model_observe(m, &ev);
		if (i % 64 == 0)
			model_predict(m, ev.time_us, 100000, out, G_N_ELEMENTS(out));
	}
	g_assert_cmpuint(model_memory_bytes(m), <=, cap);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/sequential/run-window-grows", test_seq_run_window_grows);
	g_test_add_func("/model/sequential/image-end", test_seq_image_end);
	g_test_add_func("/model/sequential/strides", test_seq_strides);
	g_test_add_func("/model/sequential/multiblock-run", test_seq_multiblock_run);
	g_test_add_func("/model/sequential/break-resets", test_seq_break_resets);
	g_test_add_func("/model/sequential/interleaved", test_seq_interleaved);
	g_test_add_func("/model/sequential/random", test_seq_random);
	g_test_add_func("/model/sequential/memory-cap", test_seq_memory_cap);
	return g_test_run();
}

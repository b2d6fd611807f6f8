/* The first-access profile: replay at session start, repeat frequency, pace, bounds. */
#include "test-model-common.h"

#define BLOCKS 1000000

/* One session: start at @start_us, read @pat[0..n) one block each @gap_us apart. */
static void run_session(struct model *m, const uint64_t *pat, size_t n, uint64_t start_us,
			uint64_t gap_us)
{
	model_session_start(m, start_us);
	for (size_t i = 0; i < n; i++) {
		struct model_event ev = {
		    .time_us = start_us + (i + 1) * gap_us, .block = pat[i], .nblocks = 1};

		model_observe(m, &ev);
	}
}

static void test_profile_replay_at_start(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	struct test_rng rng = {1};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 300, BLOCKS);
	struct model_prediction out[64];
	const uint64_t t3 = 100 * G_USEC_PER_SEC;
	size_t n;

	/* nothing learned: nothing to say, even at a session start */
	model_session_start(m, 0);
	g_assert_cmpuint(model_predict(m, 0, G_USEC_PER_SEC, out, 64), ==, 0);
	run_session(m, pat, 300, 0, TEST_GAP_US);
	run_session(m, pat, 300, 10 * G_USEC_PER_SEC, TEST_GAP_US);
	model_session_start(m, t3);
	/* before any event, the first K blocks, in order, one gap apart */
	n = model_predict(m, t3, 2 * G_USEC_PER_SEC, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(out));
	for (size_t i = 0; i < n; i++) {
		g_assert_cmpuint(out[i].block, ==, pat[i]);
		g_assert_cmpfloat(out[i].probability, ==, 1.0f);
		g_assert_cmpuint(out[i].eta_us, ==, t3 + (i + 1) * TEST_GAP_US);
		g_assert_cmpuint(out[i].expert, ==, MODEL_EXPERT_PROFILE);
	}
	/* the horizon bounds it by learned time */
	n = model_predict(m, t3, 10 * TEST_GAP_US, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 10);
}

static void test_profile_repeat(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	struct test_rng rng = {2};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 500, BLOCKS);
	struct test_stream s;
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r;

	run_session(m, pat, 500, 0, TEST_GAP_US);
	model_session_start(m, G_USEC_PER_SEC);
	test_stream_init(&s, G_USEC_PER_SEC);
	for (size_t i = 0; i < 500; i++)
		test_stream_add(&s, pat[i], 1);
	test_eval_run(m, s.ev, s.n, &o, &r);
	g_test_message("profile repeat: precision %.3f recall %.3f", r.precision, r.recall);
	g_assert_cmpfloat(r.precision, >=, 0.9);
	g_assert_cmpfloat(r.recall, >=, 0.9);
	g_assert_cmpfloat(model_confidence(m), >=, 0.9);
	test_stream_fini(&s);
}

static void test_profile_frequency(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	const uint64_t a[] = {10, 20, 30, 40}, b[] = {10, 20, 35, 40};
	struct model_prediction out[16];
	size_t n;

	run_session(m, a, 4, 0, TEST_GAP_US);
	run_session(m, b, 4, G_USEC_PER_SEC, TEST_GAP_US);
	model_session_start(m, 2 * G_USEC_PER_SEC);
	n = model_predict(m, 2 * G_USEC_PER_SEC, G_USEC_PER_SEC, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 5);
	for (size_t i = 0; i < n; i++) {
		bool once = out[i].block == 30 || out[i].block == 35;

		g_assert_cmpfloat(out[i].probability, ==, once ? 0.5f : 1.0f);
	}
	g_assert_cmpuint(out[4].block, ==, 40);
}

static void test_profile_progress_and_pace(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	struct test_rng rng = {3};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 400, BLOCKS);
	struct model_prediction out[8];
	const uint64_t t = 50 * G_USEC_PER_SEC, slow = 3 * TEST_GAP_US;
	size_t n;

	run_session(m, pat, 400, 0, TEST_GAP_US);
	/* the first session taught nothing yet: no learned end */
	g_assert_cmpuint(model_learned_end_us(m), ==, 0);
	/* this session runs three times slower; after 100 reads the profile knows */
	model_session_start(m, t);
	/* the last learned read's eta, and an eighth of the learned session for margin */
	g_assert_cmpuint(model_learned_end_us(m), ==, t + 400 * TEST_GAP_US + 400 * TEST_GAP_US / 8);
	for (size_t i = 0; i < 100; i++) {
		struct model_event ev = {.time_us = t + (i + 1) * slow, .block = pat[i]};

		model_observe(m, &ev);
	}
	/* ... and so does its idea of when the learned reads end */
	g_assert_cmpuint(model_learned_end_us(m), >=, t + 400 * slow * 9 / 8 - 400 * slow / 10);
	g_assert_cmpuint(model_learned_end_us(m), <=, t + 400 * slow * 9 / 8 + 400 * slow / 10);
	n = model_predict(m, t + 100 * slow, G_USEC_PER_SEC, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(out));
	for (size_t i = 0; i < n; i++) {
		uint64_t want = t + (100 + i + 1) * slow;

		g_assert_cmpuint(out[i].block, ==, pat[100 + i]);
		g_assert_cmpuint(out[i].eta_us, >=, want - slow / 10);
		g_assert_cmpuint(out[i].eta_us, <=, want + slow / 10);
	}
	/* a VM that skips ahead: the profile follows the latest match, and keeps what it
	 * skipped just behind it, less sure */
	{
		struct model_event ev = {.time_us = t + 101 * slow, .block = pat[300]};
		struct model_prediction all[64];
		size_t next = 301;

		model_observe(m, &ev);
		n = model_predict(m, t + 101 * slow, 5 * slow, all, G_N_ELEMENTS(all));
		g_assert_cmpuint(n, ==, 32 + 5);
		for (size_t i = 0; i < n; i++) {
			if (all[i].probability < 0.6f)
				continue;
			g_assert_cmpuint(all[i].block, ==, pat[next++]);
		}
		g_assert_cmpuint(next, ==, 306);
	}
}

static void test_profile_skips_read_blocks(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	const uint64_t pat[] = {5, 6, 7, 8, 9};
	const uint64_t now = G_USEC_PER_SEC;
	struct model_prediction out[8];
	struct model_event ev = {.time_us = now, .block = 8, .nblocks = 1};
	size_t n;

	run_session(m, pat, 5, 0, TEST_GAP_US);
	model_session_start(m, now);
	model_observe(m, &ev);
	/* 5, 6, 7 are behind the match but not read yet: kept; 8 is read: never predicted */
	n = model_predict(m, now, G_USEC_PER_SEC, out, G_N_ELEMENTS(out));
	g_assert_cmpuint(n, ==, 4);
	for (size_t i = 0; i < n; i++)
		g_assert_cmpuint(out[i].block, !=, 8);
}

static void test_profile_different_session(void)
{
	g_autoptr(Model) m = test_model_new("profile", BLOCKS, 0);
	struct test_rng rng = {4};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 200, BLOCKS);
	struct model_prediction out[64];

	run_session(m, pat, 200, 0, TEST_GAP_US);
	/* a session that reads something else entirely: trust falls */
	model_session_start(m, G_USEC_PER_SEC);
	for (int i = 0; i < 200; i++) {
		struct model_event ev = {.time_us = G_USEC_PER_SEC + (uint64_t)i * TEST_GAP_US,
					 .block = test_rng_below(&rng, BLOCKS)};

		model_observe(m, &ev);
	}
	g_assert_cmpfloat(model_confidence(m), <, 0.1);
	g_assert_cmpuint(model_predict(m, 2 * G_USEC_PER_SEC, G_USEC_PER_SEC, out, 64), >, 0);
	g_assert_cmpfloat(out[0].probability, <=, 0.55f);
}

static void test_profile_memory_cap(void)
{
	const size_t cap = 1 << 20;
	g_autoptr(Model) m = test_model_new("profile", 1u << 30, cap);
	struct test_rng rng = {5};
	struct model_prediction out[64];
	struct model_event ev = {0};

	for (int i = 0; i < 1000000; i++) {
		if (i % 100000 == 0)
			model_session_start(m, ev.time_us);
		ev.time_us += 100;
		ev.block = test_rng_below(&rng, 1u << 30);
		ev.nblocks = 1;
		model_observe(m, &ev);
		if (i % 64 == 0)
			model_predict(m, ev.time_us, 100000, out, G_N_ELEMENTS(out));
		if (i % 10000 == 0)
			g_assert_cmpuint(model_memory_bytes(m), <=, cap);
	}
	g_test_message("profile memory: %zu bytes, cap %zu", model_memory_bytes(m), cap);
	g_assert_cmpuint(model_memory_bytes(m), <=, cap);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/profile/replay-at-start", test_profile_replay_at_start);
	g_test_add_func("/model/profile/repeat", test_profile_repeat);
	g_test_add_func("/model/profile/frequency", test_profile_frequency);
	g_test_add_func("/model/profile/progress-and-pace", test_profile_progress_and_pace);
	g_test_add_func("/model/profile/skips-read-blocks", test_profile_skips_read_blocks);
	g_test_add_func("/model/profile/different-session", test_profile_different_session);
	g_test_add_func("/model/profile/memory-cap", test_profile_memory_cap);
	return g_test_run();
}

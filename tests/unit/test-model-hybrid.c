/* The hybrid: at least as good as its best expert, quiet on noise, quick to drop a failing
 * expert, bounded. */
#include <math.h>
#include <string.h>

#include "test-model-common.h"

#define BLOCKS 1000000

static const char *const experts[] = { "none", "sequential", "markov", "profile" };

/* Sequential stretches at fresh places, a pattern that repeats, a little noise. */
static void make_mixture(struct test_stream *s, uint64_t seed, int rounds)
{
	struct test_rng rng = { seed };
	g_autofree uint64_t *pat = test_pattern_new(&rng, 200, BLOCKS);

	test_stream_init(s, 0);
	for (int r = 0; r < rounds; r++) {
		uint64_t start = test_rng_below(&rng, BLOCKS - 1000);
		uint64_t len = 50 + test_rng_below(&rng, 250);

		for (uint64_t i = 0; i < len; i++)
			test_stream_add(s, start + i, 1);
		for (size_t i = 0; i < 200; i++) {
			test_stream_add(s, pat[i], 1);
			if (test_rng_below(&rng, 20) == 0)
				test_stream_add(s, test_rng_below(&rng, BLOCKS), 1);
		}
	}
}

static const float thresholds[] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f };

/*
 * Experts' probabilities are calibrated differently, so each model is compared at its own
 * best threshold (best F1), and at the prefetcher's default of 0.3 for information.
 */
static struct test_eval eval_one(const char *name, enum model_combine combine,
				 const struct test_stream *s)
{
	struct model_params p = { .image_blocks = BLOCKS, .hybrid_combine = combine };
	g_autoptr(GError) error = NULL;
	g_autoptr(Model) m = model_new(name, &p, &error);
	struct test_eval_opts o = test_eval_defaults();
	struct test_eval r[G_N_ELEMENTS(thresholds)];
	size_t best = 0;

	g_assert_no_error(error);
	o.from = s->n / 4;
	test_eval_sweep(m, s->ev, s->n, &o, thresholds, G_N_ELEMENTS(thresholds), r);
	for (size_t t = 1; t < G_N_ELEMENTS(thresholds); t++)
		if (r[t].f1 > r[best].f1)
			best = t;
	g_test_message("%-10s %-19s best at %.1f: precision %.3f recall %.3f f1 %.3f; "
		       "at 0.3: %.3f %.3f %.3f, %.1f/event",
		       name, strcmp(name, "hybrid") ? "" : model_combine_to_string(combine),
		       thresholds[best], r[best].precision, r[best].recall, r[best].f1,
		       r[2].precision, r[2].recall, r[2].f1, r[2].per_event);
	return r[best];
}

static void compare(const struct test_stream *s)
{
	struct test_eval best = { 0 }, r;
	const enum model_combine combines[] = { MODEL_COMBINE_CALIBRATED_NOISY_OR,
						MODEL_COMBINE_CALIBRATED_MAX, MODEL_COMBINE_HEDGE,
						MODEL_COMBINE_RELATIVE };

	for (size_t i = 0; i < G_N_ELEMENTS(experts); i++) {
		r = eval_one(experts[i], MODEL_COMBINE_DEFAULT, s);
		if (r.f1 > best.f1)
			best = r;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(combines); i++)
		eval_one("hybrid", combines[i], s);
	r = eval_one("hybrid", MODEL_COMBINE_DEFAULT, s);
	g_assert_cmpfloat(r.f1, >=, best.f1);
}

static void test_hybrid_mixture(void)
{
	struct test_stream s;

	make_mixture(&s, 1234, 40);
	compare(&s);
	test_stream_fini(&s);
}

/* Phases: four interleaved sequential readers (the Markov tables cannot follow them), then
 * a repeated pattern (no run for the sequential expert), and again. */
static void test_hybrid_phases(void)
{
	struct test_rng rng = { 77 };
	g_autofree uint64_t *pat = test_pattern_new(&rng, 300, BLOCKS);
	struct test_stream s;

	test_stream_init(&s, 0);
	for (int phase = 0; phase < 6; phase++) {
		uint64_t base = test_rng_below(&rng, BLOCKS / 2);

		for (int i = 0; i < 2000; i++)
			test_stream_add(&s, base + (uint64_t)(i % 4) * 100000 + (uint64_t)i / 4, 1);
		for (int rep = 0; rep < 5; rep++)
			for (size_t i = 0; i < 300; i++)
				test_stream_add(&s, pat[i], 1);
	}
	compare(&s);
	test_stream_fini(&s);
}

/* Boots: each session starts with a mostly fixed first-read order (what the profile
 * knows before any read), then wanders at random. */
static void test_hybrid_sessions(void)
{
	struct test_rng rng = { 5 };
	g_autofree uint64_t *boot = test_pattern_new(&rng, 400, BLOCKS);
	struct test_stream s;

	test_stream_init(&s, 0);
	for (int session = 0; session < 8; session++) {
		s.now_us += 10 * G_USEC_PER_SEC;
		/* a session start is an event with no block: marked by nblocks = 0 here */
		test_stream_add(&s, 0, 0);
		for (size_t i = 0; i < 400; i++)
			if (test_rng_below(&rng, 10) != 0)
				test_stream_add(&s, boot[i], 1);
		for (int i = 0; i < 200; i++)
			test_stream_add(&s, test_rng_below(&rng, BLOCKS), 1);
	}
	compare(&s);
	test_stream_fini(&s);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_set_nonfatal_assertions();
	g_test_add_func("/model/hybrid/mixture", test_hybrid_mixture);
	g_test_add_func("/model/hybrid/phases", test_hybrid_phases);
	g_test_add_func("/model/hybrid/sessions", test_hybrid_sessions);
	return g_test_run();
}

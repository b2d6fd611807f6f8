/* Saving and loading every model, rejecting damaged state; the API's edges and "none". */
#include <string.h>

#include "test-model-common.h"

#define BLOCKS 100000

static const char *const names[] = {"none", "sequential", "markov", "profile", "lstm", "hybrid"};

/* Two sessions of a boot-like order with runs in it, so that every expert learns. */
static void make_training(struct test_stream *s)
{
	struct test_rng rng = {31};
	g_autofree uint64_t *pat = test_pattern_new(&rng, 300, BLOCKS - 100);

	test_stream_init(s, 0);
	for (int session = 0; session < 3; session++) {
		s->now_us += G_USEC_PER_SEC;
		test_stream_add(s, 0, 0);
		for (size_t i = 0; i < 300; i++) {
			test_stream_add(s, pat[i], 1 + (uint32_t)(i % 3 == 0));
			if (i % 50 == 0)
				for (uint64_t k = 1; k < 8; k++)
					test_stream_add(s, pat[i] + k, 1);
		}
	}
}

static void feed_sessions(struct model *m, const struct test_stream *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->ev[i].nblocks == 0)
			model_session_start(m, s->ev[i].time_us);
		else
			model_observe(m, &s->ev[i]);
	}
}

static bool bytes_equal(GBytes *a, GBytes *b)
{
	return g_bytes_equal(a, b);
}

static void assert_same_predictions(struct model *a, struct model *b, uint64_t now)
{
	struct model_prediction pa[256], pb[256];
	size_t na = model_predict(a, now, G_USEC_PER_SEC, pa, G_N_ELEMENTS(pa));
	size_t nb = model_predict(b, now, G_USEC_PER_SEC, pb, G_N_ELEMENTS(pb));

	g_assert_cmpuint(na, ==, nb);
	for (size_t i = 0; i < na; i++) {
		g_assert_cmpuint(pa[i].block, ==, pb[i].block);
		g_assert_cmpuint(pa[i].eta_us, ==, pb[i].eta_us);
		g_assert_cmpuint(pa[i].expert, ==, pb[i].expert);
		g_assert_true(memcmp(&pa[i].probability, &pb[i].probability, sizeof(float)) == 0);
	}
}

static void test_persist_round_trip(void)
{
	struct test_stream s;

	make_training(&s);
	for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
		g_autoptr(Model) a = test_model_new(names[k], BLOCKS, 0);
		g_autoptr(Model) b = test_model_new(names[k], BLOCKS, 0);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) saved = NULL, again_a = NULL, again_b = NULL;
		uint64_t t = s.now_us + G_USEC_PER_SEC;
		size_t predicted = 0;

		feed_sessions(a, &s);
		saved = model_save(a);
		g_assert_true(model_load(b, saved, &error));
		g_assert_no_error(error);
		/* the next mount: both start a session and see the same reads */
		model_session_start(a, t);
		model_session_start(b, t);
		again_a = model_save(a);
		again_b = model_save(b);
		g_assert_true(bytes_equal(again_a, again_b));
		assert_same_predictions(a, b, t);
		for (size_t i = 1; i < 400 && i < s.n; i++) {
			struct model_event ev = s.ev[i];
			struct model_prediction out[8];

			if (ev.nblocks == 0)
				continue;
			ev.time_us = t + i * TEST_GAP_US;
			model_observe(a, &ev);
			model_observe(b, &ev);
			assert_same_predictions(a, b, ev.time_us);
			predicted += model_predict(a, ev.time_us, G_USEC_PER_SEC, out, 8);
		}
		g_test_message("%s: %zu bytes saved, %zu predictions compared", names[k],
			       g_bytes_get_size(saved), predicted);
		if (strcmp(names[k], "none") != 0)
			g_assert_cmpuint(predicted, >, 0);
	}
	test_stream_fini(&s);
}

/* Loading @bytes fails with @code, and @m is left as empty as a new model. */
static void assert_rejected(struct model *m, const char *name, GBytes *bytes, int code)
{
	g_autoptr(Model) fresh = test_model_new(name, BLOCKS, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) empty = NULL, now = NULL;
	struct model_prediction out[16];

	g_assert_false(model_load(m, bytes, &error));
	g_assert_error(error, MODEL_ERROR, code);
	g_assert_nonnull(error->message);
	empty = model_save(fresh);
	now = model_save(m);
	g_assert_true(bytes_equal(empty, now));
	model_session_start(m, 1);
	g_assert_cmpuint(model_predict(m, 1, G_USEC_PER_SEC, out, G_N_ELEMENTS(out)), ==, 0);
}

static GBytes *patch(GBytes *orig, size_t at, const void *data, size_t len, bool fix_digest)
{
	gsize n;
	const uint8_t *p = g_bytes_get_data(orig, &n);
	uint8_t *q = g_memdup2(p, n);

	memcpy(q + at, data, len);
	if (fix_digest) {
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		gsize dlen = 32;

		g_checksum_update(sum, q, n - 32);
		g_checksum_get_digest(sum, q + n - 32, &dlen);
	}
	return g_bytes_new_take(q, n);
}

static void test_persist_rejects(void)
{
	struct test_stream s;

	make_training(&s);
	for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
		g_autoptr(Model) a = test_model_new(names[k], BLOCKS, 0);
		g_autoptr(GBytes) saved = NULL;
		gsize n;
		const uint8_t *p;

		feed_sessions(a, &s);
		saved = model_save(a);
		p = g_bytes_get_data(saved, &n);

		/* truncated anywhere */
		for (gsize len = 0; len < n; len += 1 + len / 3) {
			g_autoptr(GBytes) cut = g_bytes_new(p, len);
			g_autoptr(Model) m = test_model_new(names[k], BLOCKS, 0);

			feed_sessions(m, &s);
			assert_rejected(m, names[k], cut, MODEL_ERROR_CORRUPT);
		}
		/* one bit flipped anywhere: header, payload, digest */
		for (gsize at = 0; at < n; at += 1 + at / 2) {
			uint8_t b = p[at] ^ (uint8_t)(1u << (at % 8));
			g_autoptr(GBytes) flipped = patch(saved, at, &b, 1, false);
			g_autoptr(Model) m = test_model_new(names[k], BLOCKS, 0);

			feed_sessions(m, &s);
			assert_rejected(m, names[k], flipped, MODEL_ERROR_CORRUPT);
		}
		/* well-formed but another version of the envelope or of the payload */
		{
			uint32_t v = 99;
			g_autoptr(GBytes) env = patch(saved, 8, &v, 4, true);
			g_autoptr(GBytes) pay = patch(saved, 16, &v, 4, true);
			g_autoptr(Model) m = test_model_new(names[k], BLOCKS, 0);

			assert_rejected(m, names[k], env, MODEL_ERROR_VERSION);
			assert_rejected(m, names[k], pay, MODEL_ERROR_VERSION);
		}
		/* another image size; another expert's state */
		{
			g_autoptr(Model) other = test_model_new(names[k], BLOCKS + 1, 0);
			g_autoptr(GError) error = NULL;
			g_autoptr(Model) m =
			    test_model_new(names[(k + 1) % G_N_ELEMENTS(names)], BLOCKS, 0);
			g_autoptr(GError) error2 = NULL;

			g_assert_false(model_load(other, saved, &error));
			g_assert_error(error, MODEL_ERROR, MODEL_ERROR_MISMATCH);
			g_assert_false(model_load(m, saved, &error2));
			g_assert_error(error2, MODEL_ERROR, MODEL_ERROR_MISMATCH);
		}
		/* a checksum that matches but a payload that lies */
		if (n > 40 + 32 + 8) {
			uint8_t junk[8];
			g_autoptr(GBytes) lying = NULL;
			g_autoptr(Model) m = test_model_new(names[k], BLOCKS, 0);

			memset(junk, 0xff, sizeof(junk));
			lying = patch(saved, 40, junk, sizeof(junk), true);
			assert_rejected(m, names[k], lying, MODEL_ERROR_CORRUPT);
		}
	}
	test_stream_fini(&s);
}

static void test_api_new_errors(void)
{
	struct model_params p = {.image_blocks = BLOCKS};
	struct {
		const char *name;
		uint64_t blocks;
		size_t cap;
		uint32_t experts;
		uint32_t lstm_hidden, lstm_vocab;
	} bad[] = {
	    {"nonsense", BLOCKS, 0, 0, 0, 0},
	    {NULL, BLOCKS, 0, 0, 0, 0},
	    {"markov", 0, 0, 0, 0, 0},
	    {"markov", MODEL_IMAGE_BLOCKS_MAX + 1, 0, 0, 0, 0},
	    {"markov", BLOCKS, 1000, 0, 0, 0},
	    {"hybrid", BLOCKS, 0, 1u << MODEL_EXPERT_HYBRID, 0, 0},
	    {"hybrid", BLOCKS, 0, 1u << MODEL_EXPERT_COUNT, 0, 0},
	    {"lstm", BLOCKS, 0, 0, 12, 0},
	    {"lstm", BLOCKS, 0, 0, 512, 0},
	    {"hybrid", BLOCKS, 0, 0, 0, 4},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;

		p.image_blocks = bad[i].blocks;
		p.memory_cap_bytes = bad[i].cap;
		p.hybrid_experts = bad[i].experts;
		p.lstm_hidden = bad[i].lstm_hidden;
		p.lstm_vocab = bad[i].lstm_vocab;
		g_assert_null(model_new(bad[i].name, &p, &error));
		g_assert_error(error, MODEL_ERROR, MODEL_ERROR_INVALID);
	}
	p = (struct model_params){.image_blocks = MODEL_IMAGE_BLOCKS_MAX};
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(Model) m = model_new(names[i], &p, &error);
		enum model_expert e;

		g_assert_no_error(error);
		g_assert_true(model_expert_from_string(names[i], &e));
		g_assert_cmpuint(model_get_expert(m), ==, e);
		g_assert_cmpstr(model_expert_to_string(e), ==, names[i]);
	}
}

static void test_api_strings(void)
{
	enum model_expert e;

	g_assert_cmpstr(model_access_kind_to_string(MODEL_ACCESS_LATE), ==, "late");
	g_assert_cmpstr(model_combine_to_string(MODEL_COMBINE_RELATIVE), ==, "relative");
	g_assert_cmpstr(model_expert_to_string(MODEL_EXPERT_LSTM), ==, "lstm");
	g_assert_true(model_expert_from_string("lstm", &e));
	g_assert_cmpuint(e, ==, MODEL_EXPERT_LSTM);
	g_assert_false(model_expert_from_string("gru", &e));
}

static void test_api_events_checked(void)
{
	g_autoptr(Model) m = test_model_new("hybrid", 1000, 0);
	struct model_prediction out[64];
	struct model_stats st;
	struct model_event ev = {.time_us = 1000, .block = 1000, .nblocks = 1};
	size_t n;

	/* past the end: ignored */
	model_observe(m, &ev);
	model_get_stats(m, &st);
	g_assert_cmpuint(st.events, ==, 0);
	/* a run to the last block, nblocks 0 as 1, one running over the end clipped */
	for (uint64_t b = 990; b < 999; b++) {
		ev = (struct model_event){.time_us = 2000 + b, .block = b, .nblocks = 0};
		model_observe(m, &ev);
	}
	ev = (struct model_event){.time_us = 3000, .block = 999, .nblocks = 50};
	model_observe(m, &ev);
	n = model_predict(m, 3000, G_USEC_PER_SEC, out, G_N_ELEMENTS(out));
	for (size_t i = 0; i < n; i++)
		g_assert_cmpuint(out[i].block, <, 1000);
	model_get_stats(m, &st);
	g_assert_cmpuint(st.events, ==, 10);
	g_assert_cmpuint(st.nexperts, ==, 4);
	g_assert_cmpuint(st.memory_bytes, ==, model_memory_bytes(m));
	g_assert_cmpuint(model_predict(m, 3000, G_USEC_PER_SEC, out, 0), ==, 0);
	/* far-future now and horizon do not overflow */
	model_predict(m, UINT64_MAX - 5, UINT64_MAX, out, G_N_ELEMENTS(out));
}

static void test_api_none(void)
{
	g_autoptr(Model) m = test_model_new("none", BLOCKS, 0);
	struct model_prediction out[8];
	struct test_stream s;

	make_training(&s);
	feed_sessions(m, &s);
	g_assert_cmpuint(model_predict(m, s.now_us, G_USEC_PER_SEC, out, 8), ==, 0);
	g_assert_cmpfloat(model_confidence(m), ==, 0.0);
	test_stream_fini(&s);
}

/*
 * Regression: after two sessions of a mixed stream with predictions, the hybrid's Hedge
 * weights sat above 0 between normalisations and its saved state was refused at load.
 */
static void test_hybrid_two_sessions_reload(void)
{
	struct model_params p = {.image_blocks = 8192};
	struct model_prediction out[1024];
	struct model *m = model_new("hybrid", &p, NULL);
	GRand *r = g_rand_new_with_seed(1);
	uint64_t t = 1000000, b = 0;

	for (int sess = 0; sess < 2; sess++) {
		g_autoptr(GError) error = NULL;
		struct model *copy;
		GBytes *saved;

		model_session_start(m, t);
		for (int i = 0; i < 8000; i++) {
			struct model_event ev = {.time_us = t, .block = b,
						 .nblocks = 1 + (uint32_t)g_rand_int_range(r, 0, 4),
						 .kind = MODEL_ACCESS_MISS};

			if (ev.block + ev.nblocks > 8192)
				ev.block = 8192 - ev.nblocks;
			model_observe(m, &ev);
			if (i % 7 == 0)
				model_predict(m, t, 10000000, out, G_N_ELEMENTS(out));
			t += (uint64_t)g_rand_int_range(r, 100, 5000);
			b = g_rand_int_range(r, 0, 10) < 6 ? (b + ev.nblocks) % 8000
							    : (uint64_t)g_rand_int_range(r, 0, 8100);
		}
		saved = model_save(m);
		copy = model_new("hybrid", &p, NULL);
		g_assert_true(model_load(copy, saved, &error));
		g_assert_no_error(error);
		model_free(copy);
		g_bytes_unref(saved);
	}
	g_rand_free(r);
	model_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/persist/round-trip", test_persist_round_trip);
	g_test_add_func("/model/persist/rejects", test_persist_rejects);
	g_test_add_func("/model/api/new-errors", test_api_new_errors);
	g_test_add_func("/model/api/strings", test_api_strings);
	g_test_add_func("/model/api/events-checked", test_api_events_checked);
	g_test_add_func("/model/api/none", test_api_none);
	g_test_add_func("/model/persist/hybrid-two-sessions", test_hybrid_two_sessions_reload);
	return g_test_run();
}

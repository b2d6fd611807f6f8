/* Helpers for the model tests: see test-model-common.h. */
#include <stdbool.h>
#include <string.h>

#include "test-model-common.h"

uint64_t test_rng_next(struct test_rng *rng)
{
	/* xorshift64*: deterministic, good enough for synthetic streams */
	rng->s ^= rng->s >> 12;
	rng->s ^= rng->s << 25;
	rng->s ^= rng->s >> 27;
	return rng->s * 0x2545f4914f6cdd1dULL;
}

uint64_t test_rng_below(struct test_rng *rng, uint64_t n)
{
	return test_rng_next(rng) % n;
}

void test_stream_init(struct test_stream *s, uint64_t start_us)
{
	memset(s, 0, sizeof(*s));
	s->now_us = start_us;
}

void test_stream_fini(struct test_stream *s)
{
	g_free(s->ev);
	memset(s, 0, sizeof(*s));
}

void test_stream_add(struct test_stream *s, uint64_t block, uint32_t nblocks)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->ev = g_renew(struct model_event, s->ev, s->cap);
	}
	s->now_us += TEST_GAP_US;
	s->ev[s->n++] = (struct model_event){
	    .time_us = s->now_us, .block = block, .nblocks = nblocks, .kind = MODEL_ACCESS_MISS};
}

uint64_t *test_pattern_new(struct test_rng *rng, size_t n, uint64_t image_blocks)
{
	g_autoptr(GHashTable) used = g_hash_table_new(g_int64_hash, g_int64_equal);
	uint64_t *p = g_new(uint64_t, n);

	for (size_t i = 0; i < n;) {
		p[i] = test_rng_below(rng, image_blocks);
		if (g_hash_table_contains(used, &p[i]))
			continue;
		g_hash_table_add(used, &p[i]);
		i++;
	}
	return p;
}

struct test_eval_opts test_eval_defaults(void)
{
	return (struct test_eval_opts){
	    .window = 64,
	    .threshold = 0.3f,
	    .max = 256,
	    .horizon_us = 32 * TEST_GAP_US,
	    .from = 0,
	};
}

static void test_eval_finish(struct test_eval *r, size_t n, size_t from)
{
	r->precision = r->issued ? (double)r->hits / (double)r->issued : 0.0;
	r->recall = r->reads ? (double)r->covered / (double)r->reads : 0.0;
	r->f1 = r->precision + r->recall > 0
		    ? 2 * r->precision * r->recall / (r->precision + r->recall)
		    : 0.0;
	r->per_event = n > from ? (double)r->predicted_above / (double)(n - from) : 0.0;
}

void test_eval_sweep(struct model *m, const struct model_event *ev, size_t n,
		     const struct test_eval_opts *o, const float *thresholds, size_t nthr,
		     struct test_eval *out)
{
	/* per threshold: block -> { block, event issued after, counted } */
	g_autofree GHashTable **pending = g_new(GHashTable *, nthr);
	g_autofree struct model_prediction *pred = g_new(struct model_prediction, o->max);

	for (size_t t = 0; t < nthr; t++) {
		pending[t] = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
		memset(&out[t], 0, sizeof(out[t]));
	}
	for (size_t i = 0; i < n; i++) {
		size_t k;

		if (ev[i].nblocks == 0) {
			/* a session start: predictions are asked before any read */
			model_session_start(m, ev[i].time_us);
			k = model_predict(m, ev[i].time_us, o->horizon_us, pred, o->max);
			goto issue;
		}
		for (size_t t = 0; t < nthr; t++) {
			struct test_eval *r = &out[t];

			for (uint32_t j = 0; j < MAX(ev[i].nblocks, 1); j++) {
				uint64_t b = ev[i].block + j;
				uint64_t *issue = g_hash_table_lookup(pending[t], &b);
				bool live = issue && i - issue[1] <= o->window;

				if (i >= o->from) {
					r->reads++;
					r->covered += live;
				}
				if (issue) {
					r->hits += live && issue[2];
					g_hash_table_remove(pending[t], &b);
				}
			}
		}
		model_observe(m, &ev[i]);
		k = model_predict(m, ev[i].time_us, o->horizon_us, pred, o->max);
	issue:
		for (size_t j = 0; j < k; j++) {
			if (j)
				g_assert_cmpuint(pred[j].eta_us, >=, pred[j - 1].eta_us);
			g_assert_cmpuint(pred[j].eta_us, >=, ev[i].time_us);
			g_assert_cmpfloat(pred[j].probability, >, 0.0f);
			g_assert_cmpfloat(pred[j].probability, <=, 1.0f);
			for (size_t t = 0; t < nthr; t++) {
				struct test_eval *r = &out[t];
				uint64_t *issue;

				if (pred[j].probability < thresholds[t])
					continue;
				if (i >= o->from)
					r->predicted_above++;
				issue = g_hash_table_lookup(pending[t], &pred[j].block);
				if (issue && i - issue[1] <= o->window)
					continue;
				issue = g_new(uint64_t, 3);
				issue[0] = pred[j].block;
				issue[1] = i;
				issue[2] = i >= o->from && i + o->window < n;
				r->issued += issue[2];
				g_hash_table_replace(pending[t], issue, issue);
			}
		}
	}
	for (size_t t = 0; t < nthr; t++) {
		test_eval_finish(&out[t], n, o->from);
		g_hash_table_unref(pending[t]);
	}
}

void test_eval_run(struct model *m, const struct model_event *ev, size_t n,
		   const struct test_eval_opts *o, struct test_eval *out)
{
	test_eval_sweep(m, ev, n, o, &o->threshold, 1, out);
}

struct model *test_model_new(const char *name, uint64_t image_blocks, size_t cap)
{
	struct model_params p = {.image_blocks = image_blocks, .memory_cap_bytes = cap};
	GError *error = NULL;
	struct model *m = model_new(name, &p, &error);

	g_assert_no_error(error);
	g_assert_nonnull(m);
	return m;
}

void test_feed(struct model *m, const struct model_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		model_observe(m, &ev[i]);
}

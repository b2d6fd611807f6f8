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
	    .window = 32,
	    .threshold = 0.3f,
	    .max = 256,
	    .horizon_us = 32 * TEST_GAP_US,
	    .from = 0,
	};
}

void test_eval_run(struct model *m, const struct model_event *ev, size_t n,
		   const struct test_eval_opts *o, struct test_eval *r)
{
	/* block -> { block, event issued after, counted } */
	g_autoptr(GHashTable) pending =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_autofree struct model_prediction *out = g_new(struct model_prediction, o->max);

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (uint32_t j = 0; j < MAX(ev[i].nblocks, 1); j++) {
			uint64_t b = ev[i].block + j;
			uint64_t *issue = g_hash_table_lookup(pending, &b);
			bool live = issue && i - issue[1] <= o->window;

			if (i >= o->from) {
				r->reads++;
				r->covered += live;
			}
			if (issue) {
				r->hits += live && issue[2];
				g_hash_table_remove(pending, &b);
			}
		}
		model_observe(m, &ev[i]);
		k = model_predict(m, ev[i].time_us, o->horizon_us, out, o->max);
		for (size_t j = 0; j < k; j++) {
			uint64_t *issue;

			if (j)
				g_assert_cmpuint(out[j].eta_us, >=, out[j - 1].eta_us);
			g_assert_cmpuint(out[j].eta_us, >=, ev[i].time_us);
			g_assert_cmpfloat(out[j].probability, >, 0.0f);
			g_assert_cmpfloat(out[j].probability, <=, 1.0f);
			if (out[j].probability < o->threshold)
				continue;
			if (i >= o->from)
				r->predicted_above++;
			issue = g_hash_table_lookup(pending, &out[j].block);
			if (issue && i - issue[1] <= o->window)
				continue;
			issue = g_new(uint64_t, 3);
			issue[0] = out[j].block;
			issue[1] = i;
			issue[2] = i >= o->from && i + o->window < n;
			r->issued += issue[2];
			g_hash_table_replace(pending, issue, issue);
		}
	}
	r->precision = r->issued ? (double)r->hits / (double)r->issued : 0.0;
	r->recall = r->reads ? (double)r->covered / (double)r->reads : 0.0;
	r->f1 = r->precision + r->recall > 0
		    ? 2 * r->precision * r->recall / (r->precision + r->recall)
		    : 0.0;
	r->per_event = n > o->from ? (double)r->predicted_above / (double)(n - o->from) : 0.0;
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

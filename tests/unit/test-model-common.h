/*
 * Shared by the model tests: synthetic access streams and an offline evaluator that scores
 * a model the way the prefetcher would use it.
 */
#ifndef AHEADFS_TEST_MODEL_COMMON_H
#define AHEADFS_TEST_MODEL_COMMON_H

#include <stdbool.h>

#include "aheadfs/model.h"

/* Events are this far apart unless a test says otherwise. */
#define TEST_GAP_US 1000

struct test_rng {
	uint64_t s;
};
uint64_t test_rng_next(struct test_rng *rng);
uint64_t test_rng_below(struct test_rng *rng, uint64_t n);

/* A growable event list with a clock that advances TEST_GAP_US per event. */
struct test_stream {
	struct model_event *ev;
	size_t n, cap;
	uint64_t now_us;
};
void test_stream_init(struct test_stream *s, uint64_t start_us);
void test_stream_fini(struct test_stream *s);
void test_stream_add(struct test_stream *s, uint64_t block, uint32_t nblocks);
/* @n distinct pseudo-random blocks below @image_blocks. */
uint64_t *test_pattern_new(struct test_rng *rng, size_t n, uint64_t image_blocks);

/*
 * At each event: observe, then predict(now, horizon, max).  A predicted block with
 * probability >= threshold is issued (once while pending); it is a hit if read within
 * the next @window events.  Precision = hits / issued; recall = blocks read that were
 * pending / blocks read.  Only predictions issued from event @from on, and reads from
 * @from on, count; predictions with less than a full window left are not counted.
 * The defaults give the window twice the horizon: an eta is an estimate, and a
 * prediction due at the horizon and read a little late is still a good one.
 * An event with nblocks == 0 stands for model_session_start() at its time, followed by a
 * predict() before any read.
 */
struct test_eval_opts {
	uint32_t window;
	float threshold;
	size_t max;
	uint64_t horizon_us;
	size_t from;
};
struct test_eval {
	uint64_t issued, hits, reads, covered, predicted_above;
	double precision, recall, f1, per_event;
};
void test_eval_run(struct model *m, const struct model_event *ev, size_t n,
		   const struct test_eval_opts *opts, struct test_eval *out);
struct test_eval_opts test_eval_defaults(void);
/* The same at several thresholds at once (opts->threshold unused): out[i] for thr[i]. */
void test_eval_sweep(struct model *m, const struct model_event *ev, size_t n,
		     const struct test_eval_opts *opts, const float *thr, size_t nthr,
		     struct test_eval *out);

struct model *test_model_new(const char *name, uint64_t image_blocks, size_t cap);
void test_feed(struct model *m, const struct model_event *ev, size_t n);

#endif

/*
 * The replay simulator (replay.c): the link is honoured to the microsecond, a repeated
 * sequence is learned and prefetched, the baseline prefetches nothing, a random stream
 * wastes little, and the same inputs give the same result.
 */
#include <math.h>
#include <string.h>

#include "aheadfs/replay.h"

#define BS (64 * 1024)
#define US 1e-6 /* seconds */

/* A trace made here, not read from a file: records on the heap, freed by test_trace_free. */
static struct tracefile *test_trace_new(gboolean timestamps)
{
	struct tracefile *t = g_new0(struct tracefile, 1);

	t->format = TRACEFILE_FORMAT_CSV;
	t->has_timestamps = timestamps;
	return t;
}

static void test_trace_add(struct tracefile *t, double time_s, uint64_t offset, uint64_t length,
			   char op)
{
	t->records = g_renew(struct tracefile_record, t->records, t->n_records + 1);
	t->records[t->n_records++] = (struct tracefile_record){time_s, offset, length, op};
}

static void test_trace_free(struct tracefile *t)
{
	g_free(t->records);
	g_free(t);
}

/* Only for g_autoptr(): these traces are not tracefile_load()'s. */
typedef struct tracefile tracefile;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(tracefile, test_trace_free)

static uint64_t test_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/*
 * A boot-like sequence: @n one-block reads @gap_s apart over @blocks blocks, in a fixed
 * scattered order with a few short runs, as a VM boot reads its image.
 */
static struct tracefile *test_boot_trace(size_t n, uint64_t blocks, double gap_s)
{
	struct tracefile *t = test_trace_new(TRUE);
	uint64_t seed = 42, b = 0;

	for (size_t i = 0; i < n; i++) {
		b = test_rand(&seed) % 4 == 0 ? (b + 1) % blocks : test_rand(&seed) % blocks;
		test_trace_add(t, (double)i * gap_s, b * BS, BS, 'R');
	}
	return t;
}

static void test_params(struct replay_params *p, const char *model, double rtt_ms, double mbit)
{
	replay_params_init(p);
	p->model = model;
	p->rtt_us = (uint64_t)(rtt_ms * 1000);
	p->bandwidth = (uint64_t)(mbit * 1e6 / 8);
	/* The background tier fills the image whatever is read, and the read path's
	 * readahead follows any stream whatever the model: both are measured apart
	 * (test_replay_readahead) and would only blur what these tests look at. */
	p->background = false;
	p->readahead = false;
}

static void test_run(const struct replay_params *p, const struct tracefile *train,
		     const struct tracefile *trace, struct replay_result *r)
{
	g_autoptr(GError) error = NULL;
	const struct tracefile *tr[1] = {train};

	g_assert_true(replay_run(p, tr, train ? 1 : 0, trace, r, &error));
	g_assert_no_error(error);
	g_test_message("%s: ops %" G_GUINT64_FORMAT " misses %" G_GUINT64_FORMAT
		       " late %" G_GUINT64_FORMAT " hits %" G_GUINT64_FORMAT
		       " prefetched %" G_GUINT64_FORMAT
		       " accuracy %.3f coverage %.3f wasted %" G_GUINT64_FORMAT " stall %.3f s",
		       r->model, r->ops, r->demand_misses, r->late, r->hits, r->prefetched_blocks,
		       r->accuracy, r->coverage, r->wasted_bytes, r->stall_s);
	/* Every predicted block is counted for the one expert whose prediction won it. */
	{
		uint64_t blocks = 0, used = 0;

		for (int x = 0; x < MODEL_EXPERT_COUNT; x++) {
			blocks += r->experts[x].blocks;
			used += r->experts[x].used_blocks;
		}
		g_assert_cmpuint(blocks, ==,
				 r->prefetched_blocks - r->tiers[REPLAY_SOURCE_READAHEAD].blocks);
		g_assert_cmpuint(used, ==,
				 r->prefetched_used_blocks -
				     r->tiers[REPLAY_SOURCE_READAHEAD].used_blocks);
	}
}

/* A single 1 MiB demand read at 10 ms / 80 Mbit/s: one RTT, then 1 MiB at 10 MB/s. */
static void test_replay_link_honoured(void)
{
	g_autoptr(tracefile) one = test_trace_new(TRUE);
	g_autoptr(tracefile) eight = test_trace_new(TRUE);
	struct replay_params p;
	struct replay_result r;

	test_trace_add(one, 0, 0, 1 << 20, 'R');
	test_params(&p, "none", 10, 80);
	test_run(&p, NULL, one, &r);
	g_assert_cmpuint(r.demand_misses, ==, 1);
	g_assert_cmpuint(r.requests, ==, 1);
	g_assert_cmpfloat_with_epsilon(r.stall_s, 0.010 + 1048576 / 10e6, 2 * US);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, r.stall_s, 1e-12);
	/* The estimator saw what the mount would see. */
	g_assert_cmpfloat_with_epsilon(r.link_rtt_us, 10000, 1);
	g_assert_cmpfloat_with_epsilon(r.link_bandwidth, 10e6, 1e3);

	/* 8 MiB: two 4 MiB requests at once, sharing the bandwidth. */
	test_trace_add(eight, 0, 0, 8 << 20, 'R');
	test_run(&p, NULL, eight, &r);
	g_assert_cmpuint(r.demand_requests, ==, 2);
	g_assert_cmpfloat_with_epsilon(r.stall_s, 0.010 + 8 * 1048576 / 10e6, 2 * US);

	/* Bandwidth 0 is infinite: a request costs exactly one RTT. */
	p.bandwidth = 0;
	test_run(&p, NULL, eight, &r);
	g_assert_cmpfloat_with_epsilon(r.stall_s, 0.010, US);
}

/* The baseline prefetches nothing; each miss costs a round trip plus its transfer. */
static void test_replay_none_baseline(void)
{
	g_autoptr(tracefile) boot = test_boot_trace(400, 4096, 0.005);
	struct replay_params p;
	struct replay_result r;

	test_params(&p, "none", 20, 200);
	test_run(&p, boot, boot, &r);
	g_assert_cmpuint(r.ops, ==, 400);
	g_assert_cmpuint(r.prefetched_blocks, ==, 0);
	g_assert_cmpfloat(r.accuracy, ==, 0);
	g_assert_cmpfloat(r.coverage, ==, 0);
	g_assert_cmpuint(r.wasted_bytes, ==, 0);
	g_assert_cmpuint(r.late, ==, 0);
	g_assert_cmpuint(r.demand_misses + r.hits, ==, r.ops);
	g_assert_cmpuint(r.demand_misses, ==, r.distinct_blocks);
	g_assert_cmpfloat_with_epsilon(r.stall_s, r.demand_misses * (0.020 + BS / 25e6),
				       r.demand_misses * US);
}

/* The read path's readahead: a stream of 1-block reads is fetched ahead of the reader
 * in growing windows, whatever the model; a scattered trace gets none. */
static void test_replay_readahead(void)
{
	g_autoptr(tracefile) stream = test_trace_new(TRUE);
	g_autoptr(tracefile) scattered = test_trace_new(TRUE);
	struct replay_params p;
	struct replay_result r;

	for (int i = 0; i < 512; i++) {
		test_trace_add(stream, i * 0.001, (uint64_t)(1000 + i) * BS, BS, 'R');
		test_trace_add(scattered, i * 0.001, (uint64_t)(1000 + 7 * i) * BS, BS, 'R');
	}
	test_params(&p, "none", 20, 200);
	p.readahead = true;
	test_run(&p, NULL, stream, &r);
	g_assert_cmpuint(r.tiers[REPLAY_SOURCE_READAHEAD].blocks, >=, 500);
	g_assert_cmpuint(r.tiers[REPLAY_SOURCE_READAHEAD].used_blocks, >=, 500);
	g_assert_cmpuint(r.demand_misses, <=, 8);
	/* what it requested and nobody read is at most the last window (16 MiB) */
	g_assert_cmpuint(r.wasted_bytes, <=, 16u << 20);
	test_run(&p, NULL, scattered, &r);
	g_assert_cmpuint(r.tiers[REPLAY_SOURCE_READAHEAD].blocks, ==, 0);
	g_assert_cmpuint(r.demand_misses, ==, 512);
}

/* Learned boot: trained on a sequence, measured on the same sequence. */
static void test_replay_learned_repeat(void)
{
	g_autoptr(tracefile) boot = test_boot_trace(600, 4096, 0.005);
	struct replay_params p;
	struct replay_result none, hybrid, cold;

	test_params(&p, "none", 20, 200);
	test_run(&p, boot, boot, &none);
	test_params(&p, "hybrid", 20, 200);
	test_run(&p, boot, boot, &hybrid);
	g_assert_cmpuint(hybrid.train_sessions, ==, 1);
	g_assert_cmpuint(hybrid.train_ops, ==, 600);
	g_assert_cmpfloat(hybrid.accuracy, >=, 0.8);
	g_assert_cmpfloat(hybrid.coverage, >=, 0.9);
	g_assert_cmpfloat(hybrid.stall_s, <, none.stall_s / 4);
	g_assert_cmpuint(hybrid.tiers[PREFETCH_TIER_CRITICAL].blocks, >, 0);
	g_assert_cmpuint(hybrid.wasted_bytes, ==,
			 (hybrid.prefetched_blocks - hybrid.prefetched_used_blocks) * BS);

	/* Not trained: no profile to follow, so much less is covered. */
	test_run(&p, NULL, boot, &cold);
	g_assert_cmpfloat(cold.coverage, <, hybrid.coverage);
	g_assert_cmpfloat(cold.stall_s, >, hybrid.stall_s);
}

/*
 * Random reads over 64K blocks, trained on another random stream: nothing to learn. The
 * bound: prefetches waste at most 15% of the bytes the reads demanded (9% measured).
 */
static void test_replay_random_waste(void)
{
	g_autoptr(tracefile) a = test_trace_new(TRUE);
	g_autoptr(tracefile) b = test_trace_new(TRUE);
	uint64_t seed = 7;
	struct replay_params p;
	struct replay_result r;

	for (size_t i = 0; i < 3000; i++) {
		test_trace_add(a, i * 0.002, test_rand(&seed) % 65536 * BS, BS, 'R');
		test_trace_add(b, i * 0.002, test_rand(&seed) % 65536 * BS, BS, 'R');
	}
	test_params(&p, "hybrid", 20, 200);
	test_run(&p, a, b, &r);
	g_assert_cmpuint(r.wasted_bytes, <=, r.demand_blocks * BS * 15 / 100);
}

/* Same inputs, same output, to the byte (the cost figures aside: real clock). */
static void test_replay_deterministic(void)
{
	g_autoptr(tracefile) boot = test_boot_trace(500, 2048, 0.002);
	g_autofree char *first = NULL;
	struct replay_params p;

	test_params(&p, "hybrid", 20, 200);
	p.background = true;
	for (int i = 0; i < 3; i++) {
		struct replay_result r;
		g_autofree char *json = NULL;

		test_run(&p, boot, boot, &r);
		r.ns_per_observe = r.ns_per_predict = 0;
		json = replay_result_to_json(&r, &p);
		if (!first)
			first = g_steal_pointer(&json);
		else
			g_assert_cmpstr(json, ==, first);
	}
	g_assert_nonnull(strstr(first, "\"accuracy\": "));
	g_assert_nonnull(strstr(first, "\"tiers\": {\"critical\": {"));
}

/* A demand miss does not queue behind prefetches: it has connections of its own. */
static void test_replay_demand_first(void)
{
	g_autoptr(tracefile) boot = test_trace_new(TRUE);
	g_autoptr(tracefile) other = test_trace_new(TRUE);
	struct replay_params p;
	struct replay_result r;

	/* A profile of 400 scattered blocks due in the first second... */
	for (size_t i = 0; i < 400; i++)
		test_trace_add(boot, i * 0.0025, (i * 37 % 4000) * BS, BS, 'R');
	/* ... and a session that starts with a block not in it. */
	test_trace_add(other, 0, 5000 * BS, BS, 'R');
	test_params(&p, "profile", 20, 0);
	test_run(&p, boot, other, &r);
	g_assert_cmpuint(r.prefetched_blocks, >, 100);
	g_assert_cmpuint(r.demand_misses, ==, 1);
	g_assert_cmpfloat_with_epsilon(r.stall_s, 0.020, US);
}

/* Think time: gaps between records, scaled; writes skipped; no timestamps: back to back. */
static void test_replay_think_time(void)
{
	g_autoptr(tracefile) t = test_trace_new(TRUE);
	g_autoptr(tracefile) arc = test_trace_new(FALSE);
	struct replay_params p;
	struct replay_result r;

	test_trace_add(t, 10.0, 0, BS, 'R');
	test_trace_add(t, 11.0, BS * 100, BS, 'W');
	test_trace_add(t, 12.0, BS * 200, BS, 'R');
	test_params(&p, "none", 20, 0);
	test_run(&p, NULL, t, &r);
	g_assert_cmpuint(r.ops, ==, 2);
	g_assert_cmpuint(r.writes_skipped, ==, 1);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, 2.0 + 0.020, US);
	g_assert_cmpfloat_with_epsilon(r.stall_s, 0.040, US);

	p.scale = 0.5;
	test_run(&p, NULL, t, &r);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, 1.0 + 0.020, US);

	/* A gap shorter than the previous read: the next read waits for it to end. */
	p.scale = 0.005;
	test_run(&p, NULL, t, &r);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, 0.040, US);

	test_trace_add(arc, 0, 0, BS, 'R');
	test_trace_add(arc, 0, BS * 9, BS, 'R');
	p.scale = 1;
	p.gap_us = 1000;
	test_run(&p, NULL, arc, &r);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, 0.040, US);
	g_assert_cmpuint(r.skipped_reads, ==, 0);

	/* A read wholly past a given image size is skipped and counted. */
	p.image_size = 5 * BS;
	test_run(&p, NULL, arc, &r);
	g_assert_cmpuint(r.ops, ==, 1);
	g_assert_cmpuint(r.skipped_reads, ==, 1);
	g_assert_cmpfloat_with_epsilon(r.elapsed_s, 0.020, US);
}

/* The background tier fills an idle image; it is counted apart from the predictions. */
static void test_replay_background_apart(void)
{
	g_autoptr(tracefile) t = test_trace_new(TRUE);
	struct replay_params p;
	struct replay_result r;

	test_trace_add(t, 0, 10 * BS, BS, 'R');
	test_trace_add(t, 5, 90 * BS, BS, 'R');
	test_params(&p, "none", 20, 200);
	p.image_size = 100 * BS;
	p.background = true;
	test_run(&p, NULL, t, &r);
	/* Idle from the start: the fill completes the image, a few blocks at a time (the
	 * link is unmeasured at first); the first read may beat it to its block. */
	g_test_message("background %" G_GUINT64_FORMAT " blocks, %" G_GUINT64_FORMAT
		       " used; %" G_GUINT64_FORMAT " misses, %" G_GUINT64_FORMAT " late",
		       r.tiers[PREFETCH_TIER_BACKGROUND].blocks,
		       r.tiers[PREFETCH_TIER_BACKGROUND].used_blocks, r.demand_misses, r.late);
	g_assert_cmpuint(r.tiers[PREFETCH_TIER_BACKGROUND].blocks + r.demand_misses, ==, 100);
	g_assert_cmpuint(r.tiers[PREFETCH_TIER_BACKGROUND].blocks, >=, 99);
	g_assert_cmpuint(r.tiers[PREFETCH_TIER_BACKGROUND].used_blocks, >=, 1);
	g_assert_cmpuint(r.prefetched_blocks, ==, 0);
	g_assert_cmpuint(r.wasted_bytes, ==, 0);
	g_assert_cmpfloat(r.accuracy, ==, 0);
	g_assert_cmpuint(r.late + r.hits + r.demand_misses, ==, 2);
	g_assert_cmpuint(r.bytes_fetched, ==, 100 * BS);
}

static void test_replay_errors(void)
{
	g_autoptr(tracefile) t = test_trace_new(TRUE);
	g_autoptr(tracefile) writes = test_trace_new(TRUE);
	struct replay_params p;
	struct replay_result r;
	GError *error = NULL;

	test_trace_add(t, 0, 0, BS, 'R');
	test_trace_add(writes, 0, 0, BS, 'W');
	test_params(&p, "none", 20, 200);

	p.block_size = 3000;
	g_assert_false(replay_run(&p, NULL, 0, t, &r, &error));
	g_assert_error(error, REPLAY_ERROR, REPLAY_ERROR_INVALID);
	g_clear_error(&error);

	test_params(&p, "oracle", 20, 200);
	g_assert_false(replay_run(&p, NULL, 0, t, &r, &error));
	g_assert_error(error, MODEL_ERROR, MODEL_ERROR_INVALID);
	g_clear_error(&error);

	test_params(&p, "none", 20, 200);
	g_assert_false(replay_run(&p, NULL, 0, writes, &r, &error));
	g_assert_error(error, REPLAY_ERROR, REPLAY_ERROR_EMPTY);
	g_clear_error(&error);

	/* A block size that makes the image too large for one byte of state per block. */
	p.block_size = 4096;
	p.image_size = (REPLAY_IMAGE_BLOCKS_MAX + 1) * 4096;
	g_assert_false(replay_run(&p, NULL, 0, t, &r, &error));
	g_assert_error(error, REPLAY_ERROR, REPLAY_ERROR_SIZE);
	g_clear_error(&error);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/replay/link-honoured", test_replay_link_honoured);
	g_test_add_func("/replay/none-baseline", test_replay_none_baseline);
	g_test_add_func("/replay/learned-repeat", test_replay_learned_repeat);
	g_test_add_func("/replay/random-waste", test_replay_random_waste);
	g_test_add_func("/replay/deterministic", test_replay_deterministic);
	g_test_add_func("/replay/demand-first", test_replay_demand_first);
	g_test_add_func("/replay/think-time", test_replay_think_time);
	g_test_add_func("/replay/background-apart", test_replay_background_apart);
	g_test_add_func("/replay/readahead", test_replay_readahead);
	g_test_add_func("/replay/errors", test_replay_errors);
	return g_test_run();
}

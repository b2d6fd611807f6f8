/* Unit tests: prefetch policy decisions (table-driven), link estimates, host load. */
#include <glib.h>

#include "aheadfs/link.h"
#include "aheadfs/load.h"
#include "aheadfs/prefetch.h"

#define BS 65536
#define MS 1000
#define S 1000000

static const struct model_prediction preds[] = {
	{.block = 10, .probability = 0.9f, .eta_us = 10 * S + 1 * MS, .expert = MODEL_EXPERT_MARKOV},
	{.block = 11, .probability = 0.4f, .eta_us = 10 * S + 2 * MS, .expert = MODEL_EXPERT_MARKOV},
	{.block = 12, .probability = 0.3f, .eta_us = 10 * S + 2 * S, .expert = MODEL_EXPERT_PROFILE},
	{.block = 13, .probability = 0.1f, .eta_us = 10 * S + 3 * MS, .expert = MODEL_EXPERT_MARKOV},
	{.block = 14, .probability = 0.3f, .eta_us = 10 * S + 9 * S, .expert = MODEL_EXPERT_PROFILE},
};

struct policy_case {
	const char *name;
	struct prefetch_state st;
	/* expected tier per prediction above: -1 not chosen */
	int tier[G_N_ELEMENTS(preds)];
};

#define IDLE_LINK .now_us = 10 * S, .bandwidth = 25e6, .rtt_us = 20 * MS
#define UNKNOWN_ACCURACY .accuracy = -1, .predictive_accuracy = -1

static const struct policy_case cases[] = {
	{"fresh: high p critical, profile-due critical, moderate predictive, low none",
	 {IDLE_LINK, UNKNOWN_ACCURACY},
	 {PREFETCH_TIER_CRITICAL, PREFETCH_TIER_PREDICTIVE, PREFETCH_TIER_CRITICAL, -1,
	  PREFETCH_TIER_PREDICTIVE}},
	{"demand waiting: only critical",
	 {IDLE_LINK, UNKNOWN_ACCURACY, .demand_waiting = 1},
	 {PREFETCH_TIER_CRITICAL, -1, -1, -1, -1}},
	{"host busy: only critical",
	 {IDLE_LINK, UNKNOWN_ACCURACY, .host_pressure = 0.8},
	 {PREFETCH_TIER_CRITICAL, -1, -1, -1, -1}},
	{"accuracy 0.1: predictive off, critical raised but 0.9 still passes",
	 {IDLE_LINK, .accuracy = 0.1, .predictive_accuracy = -1},
	 {PREFETCH_TIER_CRITICAL, -1, -1, -1, -1}},
	{"accuracy 0.9: as fresh",
	 {IDLE_LINK, .accuracy = 0.9, .predictive_accuracy = -1},
	 {PREFETCH_TIER_CRITICAL, PREFETCH_TIER_PREDICTIVE, PREFETCH_TIER_CRITICAL, -1,
	  PREFETCH_TIER_PREDICTIVE}},
	{"predictive tier right 10% of the time, the mix 90%: sure blocks only",
	 {IDLE_LINK, .accuracy = 0.9, .predictive_accuracy = 0.1},
	 {PREFETCH_TIER_CRITICAL, -1, -1, -1, -1}},
	{"predictive tier right half the time: as fresh",
	 {IDLE_LINK, .accuracy = 0.9, .predictive_accuracy = 0.5},
	 {PREFETCH_TIER_CRITICAL, PREFETCH_TIER_PREDICTIVE, PREFETCH_TIER_CRITICAL, -1,
	  PREFETCH_TIER_PREDICTIVE}},
	{"budget used up: critical may go to 2x budget, predictive not",
	 {IDLE_LINK, UNKNOWN_ACCURACY, .inflight_bytes = 9 << 20},
	 {PREFETCH_TIER_CRITICAL, -1, PREFETCH_TIER_CRITICAL, -1, -1}},
	{"everything in flight up to 2x budget: nothing",
	 {IDLE_LINK, UNKNOWN_ACCURACY, .inflight_bytes = 17 << 20},
	 {-1, -1, -1, -1, -1}},
};

static void test_policy_table(void)
{
	struct prefetch_params params;

	prefetch_params_init(&params, BS);
	for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
		struct prefetch_choice out[16];
		size_t n = prefetch_plan(&params, &cases[c].st, preds, G_N_ELEMENTS(preds), out, 16);

		for (gsize i = 0; i < G_N_ELEMENTS(preds); i++) {
			int got = -1;

			for (size_t k = 0; k < n; k++)
				if (out[k].block == preds[i].block)
					got = (int)out[k].tier;
			if (got != cases[c].tier[i])
				g_error("%s: block %" G_GUINT64_FORMAT ": tier %d, want %d",
					cases[c].name, preds[i].block, got, cases[c].tier[i]);
		}
		/* Critical blocks come before predictive ones. */
		for (size_t k = 1; k < n; k++)
			g_assert_cmpint(out[k - 1].tier, <=, out[k].tier);
	}
}

static void test_budget_follows_link(void)
{
	struct prefetch_params params;
	struct prefetch_limits lim;
	struct prefetch_state slow = {IDLE_LINK, UNKNOWN_ACCURACY}, fat = {IDLE_LINK, UNKNOWN_ACCURACY};

	prefetch_params_init(&params, BS);
	prefetch_limits(&params, &slow, &lim);
	g_assert_cmpuint(lim.budget_bytes, ==, params.min_budget_bytes);
	fat.bandwidth = 125e6; /* 1 Gbit/s */
	fat.rtt_us = 50 * MS;
	prefetch_limits(&params, &fat, &lim);
	g_assert_cmpuint(lim.budget_bytes, ==, (uint64_t)(125e6 * 0.05 * 4));
}

static void test_background_only_when_idle(void)
{
	struct prefetch_params params;
	struct prefetch_state st = {IDLE_LINK, UNKNOWN_ACCURACY};

	prefetch_params_init(&params, BS);
	/* Up to the cap per second, and in flight at most two round trips of the link
	 * (25 MB/s x 20 ms x 2 = 1 MB). */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 1000000);
	g_assert_cmpuint(prefetch_background_quota(&params, &st, params.bg_bandwidth - 1000), ==,
			 1000);
	g_assert_cmpuint(prefetch_background_quota(&params, &st, params.bg_bandwidth), ==, 0);
	st.inflight_bytes = 1000000; /* two round trips of fill on their way */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.inflight_bytes = 0;
	/* Unmeasured link: 1 MiB in flight, enough to keep it busy long enough to measure. */
	st.bandwidth = st.rtt_us = 0;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 1 << 20);
	st.bandwidth = 125e3; /* 1 Mbit/s, measured: a few blocks at a time */
	st.rtt_us = 20 * MS;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 4 * BS);
	st.bandwidth = 25e6;
	st.rtt_us = 20 * MS;
	st.learned_end_us = st.now_us + 1; /* the learned boot is not over */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.learned_end_us = st.now_us;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	st.last_demand_us = st.now_us - 100 * MS; /* a miss 100 ms ago: not idle */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.last_demand_us = st.now_us - 2 * S;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	st.urgent_inflight_bytes = BS; /* a predicted block on its way: the link is not idle */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.urgent_inflight_bytes = 0;
	st.host_pressure = 0.3;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.host_pressure = 0;
	params.bg_bandwidth = 0;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
}

/* One TCG vCPU thread busy on 2 cores: PSI stays near 0, yet the host is not idle. */
static void test_background_waits_for_cpu(void)
{
	struct prefetch_params params;
	struct prefetch_state st = {IDLE_LINK, UNKNOWN_ACCURACY, .host_cpus = 2};

	prefetch_params_init(&params, BS);
	st.host_cpu = 0.55; /* the guest's vCPU and its I/O thread */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	st.host_cpu = 0.05; /* the guest idles after its boot */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	st.host_cpu = 0.55; /* the same load on 8 CPUs leaves 3.6 of them free */
	st.host_cpus = 8;
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	st.host_cpu = 0.80; /* 1.6 free: not two */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), ==, 0);
	params.idle_pressure = 1; /* told to ignore the host's load */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	params.idle_pressure = 0.10;
	params.idle_cpu = 0.9; /* a looser idle_cpu= */
	g_assert_cmpuint(prefetch_background_quota(&params, &st, 0), >, 0);
	/* The predictive tier does not wait for the CPU: only fill does. */
	{
		struct prefetch_limits lim;

		prefetch_params_init(&params, BS);
		prefetch_limits(&params, &st, &lim);
		g_assert_cmpfloat(lim.predictive_p, <=, 1.0);
		g_assert_false(lim.background);
	}
}

static void test_cpu_share(void)
{
	/* The 4.x+ layout: 10 numbers; guest time is already inside user. */
	static const char stat[] = "cpu  1000 10 300 5000 200 5 15 20 40 0\n"
				   "cpu0 500 5 150 2500 100 2 7 10 20 0\n";
	/* A command name with a space and a ')' in it. */
	static const char self[] = "4242 (aheadfs (x) y) S 1 4242 4242 0 -1 4194560 "
				   "900 0 3 0 120 30 0 0 20 0 12 0 555 1000000 300 "
				   "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
	struct load_cpu_sample a, b, real;
	uint64_t total = 0, busy = 0, ticks = 0;

	g_assert_true(load_parse_proc_stat(stat, &total, &busy));
	g_assert_cmpuint(total, ==, 1000 + 10 + 300 + 5000 + 200 + 5 + 15 + 20);
	g_assert_cmpuint(busy, ==, total - 5000 - 200);
	g_assert_false(load_parse_proc_stat("cpu0 1 2 3 4\n", &total, &busy));
	g_assert_false(load_parse_proc_stat("cpu  1 2\n", &total, &busy));
	g_assert_false(load_parse_proc_stat(NULL, &total, &busy));
	g_assert_true(load_parse_self_stat(self, &ticks));
	g_assert_cmpuint(ticks, ==, 150);
	g_assert_false(load_parse_self_stat("4242 (x S 1\n", &ticks));
	g_assert_false(load_parse_self_stat("4242 (x) S 1 2\n", &ticks));

	/* 200 ticks of host time (2 CPUs x 100), 120 busy, 20 of them ours: others 0.5. */
	a = (struct load_cpu_sample){.total = 1000, .busy = 400, .self = 50};
	b = (struct load_cpu_sample){.total = 1200, .busy = 520, .self = 70};
	g_assert_cmpfloat_with_epsilon(load_cpu_others_share(&a, &b), 0.5, 1e-9);
	/* Only we were busy: 0, and skew (ours above the host's) never goes negative. */
	b.busy = 420;
	g_assert_cmpfloat(load_cpu_others_share(&a, &b), ==, 0);
	b.self = 90;
	g_assert_cmpfloat(load_cpu_others_share(&a, &b), ==, 0);
	/* No time passed, or counters went back: 0. */
	g_assert_cmpfloat(load_cpu_others_share(&a, &a), ==, 0);
	g_assert_cmpfloat(load_cpu_others_share(&b, &a), ==, 0);
	/* This machine's counters parse. */
	g_assert_true(load_cpu_sample(&real));
	g_assert_cmpuint(real.total, >, 0);
	g_assert_cmpuint(real.busy, <=, real.total);
}

/* One body for the link tests: received evenly over [start, end). */
struct body {
	uint64_t start, end;
	double bytes;
};

/*
 * Tell the link of bodies as origin.c would: each one's first byte, its bytes every
 * 100 us as they arrive, and its end; all on one clock, in time order, up to `until`.
 */
static void feed_range(struct link *link, const struct body *b, int n, uint64_t rtt,
		       uint64_t after, uint64_t until)
{
	uint64_t from = UINT64_MAX, to = 0;

	for (int i = 0; i < n; i++) {
		from = MIN(from, b[i].start);
		to = MAX(to, b[i].end);
	}
	from = MAX(from, after);
	for (uint64_t t = from; t <= MIN(to, until); t += 100) {
		for (int i = 0; i < n; i++)
			if (t == b[i].start) {
				link_rtt(link, rtt);
				link_body_begin(link, t);
			}
		for (int i = 0; i < n; i++)
			if (t > b[i].start && t <= b[i].end)
				link_body_bytes(link, t,
						(uint64_t)(b[i].bytes * 100 / (double)(b[i].end - b[i].start)));
		for (int i = 0; i < n; i++)
			if (t == b[i].end)
				link_body_end(link, t);
	}
}

static void feed(struct link *link, const struct body *b, int n, uint64_t rtt)
{
	feed_range(link, b, n, rtt, 0, UINT64_MAX);
}

/* `n` bodies of `bytes` each, back to back from t0, each `len` long. */
static uint64_t feed_stream(struct link *link, uint64_t t0, int n, double bytes, uint64_t rtt,
			    uint64_t len)
{
	g_autofree struct body *b = g_new(struct body, n);

	for (int i = 0; i < n; i++)
		b[i] = (struct body){t0 + (uint64_t)i * len, t0 + (uint64_t)(i + 1) * len, bytes};
	feed(link, b, n, rtt);
	return t0 + (uint64_t)n * len;
}

static void test_link_rtt_and_stream(void)
{
	struct link link;
	double rtt, bw;

	link_init(&link);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat(rtt, ==, 0);
	g_assert_cmpfloat(bw, ==, 0);
	g_assert_cmpuint(link_bdp_bytes(&link), ==, 0);
	link_rtt(&link, 20 * MS);
	g_assert_cmpuint(link_bdp_bytes(&link), ==, 0); /* no bandwidth yet */
	/* 1 MiB every 40 ms, bodies back to back (the next in flight behind each). */
	feed_stream(&link, 1000 * MS, 50, 1 << 20, 20 * MS, 40 * MS);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat_with_epsilon(rtt, 20 * MS, 1);
	g_assert_cmpfloat_with_epsilon(bw, (1 << 20) / 0.04, (1 << 20) / 0.04 * 0.01);
	/* 20 ms at 25 MiB/s: half a MiB in flight */
	g_assert_cmpuint(link_bdp_bytes(&link), >=, (1 << 19) - 5300);
	g_assert_cmpuint(link_bdp_bytes(&link), <=, (1 << 19) + 5300);
	/* Queueing at the origin lengthens the EWMA, not the link's own delay. */
	for (int i = 0; i < 20; i++)
		link_rtt(&link, 200 * MS);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat(rtt, >, 150 * MS);
	g_assert_cmpuint(link_bdp_bytes(&link), <=, (1 << 19) + 5300);
	link_clear(&link);
}

/* Short transfers after pauses say nothing of the bandwidth, however fast they go. */
static void test_link_short_spells_unknown(void)
{
	struct link link;
	double rtt, bw;

	link_init(&link);
	for (uint64_t i = 1; i <= 1000; i++) { /* 256 KiB in 0.2 ms, every 50 ms */
		struct body b = {i * 50 * MS, i * 50 * MS + 200, 256 << 10};

		feed(&link, &b, 1, 20 * MS);
	}
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat_with_epsilon(rtt, 20 * MS, 1);
	g_assert_cmpfloat(bw, ==, 0);
	/* What the transfers got is known: 256 KiB per 50 ms, for 20 ms of delay. */
	g_assert_cmpfloat_with_epsilon((double)link_bdp_bytes(&link), 0.020 * (256 << 10) / 0.050,
				       0.020 * (256 << 10) / 0.050 * 0.05);
	link_clear(&link);
}

/*
 * A stream in requests too small for its link: 2 MiB at 50 ms, each received in 8 ms, one
 * every 60 ms. The link never receives for 100 ms on end, so its bandwidth stays unknown,
 * but the goodput (the waits included) tells link_bdp_bytes() a lower bound: 2 MiB per
 * 60 ms for 50 ms. An idle spell between two such streams counts for neither.
 */
static void test_link_goodput_when_never_full(void)
{
	struct link link;
	double rtt, bw, want = 0.050 * (2 << 20) / 0.060;

	link_init(&link);
	for (int round = 0; round < 2; round++) {
		uint64_t t0 = 1000 * MS + (uint64_t)round * 10000 * MS;

		for (uint64_t i = 0; i < 30; i++) {
			struct body b = {t0 + i * 60 * MS, t0 + i * 60 * MS + 8 * MS, 2 << 20};

			feed(&link, &b, 1, 50 * MS);
		}
		link_get(&link, &rtt, &bw);
		g_assert_cmpfloat(bw, ==, 0);
		g_assert_cmpfloat_with_epsilon((double)link_bdp_bytes(&link), want, want * 0.05);
	}
	link_clear(&link);
}

/*
 * Bodies that receive at the same time share the link, and each is counted as its bytes
 * come, not when it ends: a cold stream keeps four 8 MB readahead requests receiving,
 * staggered, at 25 MB/s in all (6.25 MB/s each, 1.28 s per body, one ending every
 * 0.32 s), read while the stream runs. Counted at their ends, each body was measured
 * over time the others shared with bytes they received before it uncounted: under a
 * third of the link.
 */
static void test_link_overlapping_bodies(void)
{
	struct link link;
	struct body b[24];
	double rtt, bw;

	link_init(&link);
	for (int i = 0; i < 24; i++) {
		uint64_t start = 1000 * MS + (uint64_t)i * 320 * MS;

		b[i] = (struct body){start, start + 1280 * MS, 8e6};
	}
	feed_range(&link, b, 24, 20 * MS, 0, 1000 * MS + 24 * 320 * MS);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat_with_epsilon(bw, 25e6, 25e6 * 0.02);
	link_clear(&link);
}

/* A burst let through after an idle spell inflates only the first sample, and little. */
static void test_link_burst_credit(void)
{
	struct link link;
	struct body b[41];
	double rtt, bw;

	link_init(&link);
	b[0] = (struct body){1000 * MS, 1000 * MS + 100, 500000}; /* 500 KB at once */
	for (int i = 0; i < 40; i++) /* then 25 MB/s, in the same spell */
		b[i + 1] = (struct body){1000 * MS + 100 + (uint64_t)i * 10 * MS,
					 1000 * MS + 100 + (uint64_t)(i + 1) * 10 * MS, 250000};
	feed_range(&link, b, 41, 20 * MS, 0, 1040 * MS);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat(bw, ==, 0); /* 40 ms: not long enough yet */
	feed_range(&link, b, 41, 20 * MS, 1040 * MS + 100, UINT64_MAX);
	link_get(&link, &rtt, &bw);
	g_assert_cmpfloat(bw, >, 25e6);
	g_assert_cmpfloat(bw, <=, 25e6 * 1.25);
	link_clear(&link);
}

static void test_psi(void)
{
	double v = -1;

	g_assert_true(load_parse_psi("some avg10=12.50 avg60=1.00 avg300=0.00 total=5\n"
				     "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
				     &v));
	g_assert_cmpfloat_with_epsilon(v, 0.125, 1e-9);
	g_assert_false(load_parse_psi("garbage", &v));
	g_assert_false(load_parse_psi(NULL, &v));
	v = load_host_pressure();
	g_assert_cmpfloat(v, >=, 0);
	g_assert_cmpfloat(v, <=, 1);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/prefetch/policy-table", test_policy_table);
	g_test_add_func("/prefetch/budget-follows-link", test_budget_follows_link);
	g_test_add_func("/prefetch/background-only-when-idle", test_background_only_when_idle);
	g_test_add_func("/prefetch/background-waits-for-cpu", test_background_waits_for_cpu);
	g_test_add_func("/prefetch/cpu-share", test_cpu_share);
	g_test_add_func("/prefetch/link/rtt-and-stream", test_link_rtt_and_stream);
	g_test_add_func("/prefetch/link/goodput-when-never-full", test_link_goodput_when_never_full);
	g_test_add_func("/prefetch/link/short-spells-unknown", test_link_short_spells_unknown);
	g_test_add_func("/prefetch/link/overlapping-bodies", test_link_overlapping_bodies);
	g_test_add_func("/prefetch/link/burst-credit", test_link_burst_credit);
	g_test_add_func("/prefetch/psi", test_psi);
	return g_test_run();
}

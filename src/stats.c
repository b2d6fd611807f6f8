/*
 * stats: log2 latency histograms. 32 buckets of powers of two cover 1 us to over an hour
 * with a relative error under 2x, which is what "how long did misses take" needs, and
 * adding a sample is two relaxed atomic increments.
 */
#include "aheadfs/stats.h"

void stats_histogram_add(struct stats_histogram *h, uint64_t us)
{
	unsigned b = us ? 63 - (unsigned)__builtin_clzll(us) : 0;

	if (b >= STATS_LATENCY_BUCKETS)
		b = STATS_LATENCY_BUCKETS - 1;
	stats_add(&h->buckets[b], 1);
	stats_add(&h->count, 1);
	stats_add(&h->sum_us, us);
}

void stats_histogram_snapshot(const struct stats_histogram *h, struct stats_histogram *out)
{
	for (int i = 0; i < STATS_LATENCY_BUCKETS; i++)
		out->buckets[i] = stats_get(&h->buckets[i]);
	out->count = stats_get(&h->count);
	out->sum_us = stats_get(&h->sum_us);
}

uint64_t stats_histogram_quantile(const struct stats_histogram *h, double q)
{
	uint64_t total = 0, seen = 0, want;

	for (int i = 0; i < STATS_LATENCY_BUCKETS; i++)
		total += h->buckets[i];
	if (total == 0)
		return 0;
	want = (uint64_t)(q * (double)total + 0.5);
	if (want == 0)
		want = 1;
	for (int i = 0; i < STATS_LATENCY_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= want)
			return (UINT64_C(2) << i) - 1;
	}
	return UINT64_MAX;
}

void stats_histogram_json(GString *out, const char *name, const struct stats_histogram *h)
{
	struct stats_histogram s;

	stats_histogram_snapshot(h, &s);
	g_string_append_printf(out,
			       "\"%s\": {\"count\": %" G_GUINT64_FORMAT ", \"sum_us\": %" G_GUINT64_FORMAT
			       ", \"mean_us\": %" G_GUINT64_FORMAT
			       ", \"p50_us\": %" G_GUINT64_FORMAT ", \"p90_us\": %" G_GUINT64_FORMAT
			       ", \"p99_us\": %" G_GUINT64_FORMAT "}",
			       name, s.count, s.sum_us, s.count ? s.sum_us / s.count : 0,
			       stats_histogram_quantile(&s, 0.5), stats_histogram_quantile(&s, 0.9),
			       stats_histogram_quantile(&s, 0.99));
}

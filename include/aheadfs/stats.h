/*
 * stats: counters that say what aheadfs did, cheap enough to bump on every read.
 *
 * Counters are plain uint64_t updated with relaxed atomics by whichever thread does the
 * work; a reader gets a snapshot that is consistent per counter (not across counters),
 * which is all a progress display needs.
 */
#ifndef AHEADFS_STATS_H
#define AHEADFS_STATS_H

#include <glib.h>
#include <stdint.h>

/* Latency histogram: bucket i counts samples in [2^i, 2^(i+1)) microseconds. */
#define STATS_LATENCY_BUCKETS 32

struct stats_histogram {
	uint64_t buckets[STATS_LATENCY_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
};

void stats_histogram_add(struct stats_histogram *h, uint64_t us);
/* Upper bound of the bucket holding the q-quantile (0 < q <= 1), in microseconds. */
uint64_t stats_histogram_quantile(const struct stats_histogram *h, double q);
void stats_histogram_snapshot(const struct stats_histogram *h, struct stats_histogram *out);

static inline void stats_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t stats_get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* Append `"name": {count, sum, mean, p50, p90, p99}` (microseconds) to a JSON object. */
void stats_histogram_json(GString *out, const char *name, const struct stats_histogram *h);

#endif

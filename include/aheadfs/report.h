/*
 * report: what aheadfs tells about itself, as JSON (the control file
 * MOUNTPOINT/.aheadfs/stats) and as text for people (MOUNTPOINT/.aheadfs/summary).
 *
 * JSON layout:
 *   { "version": 1, "uptime_s": N,
 *     "origin": { requests, bytes, retries, failures, queued, in_flight },
 *     "total":  { image counters summed },
 *     "link":   { rtt_ms, bandwidth_mbit }  (estimates; 0 until measured)
 *     "images": [ { "name", "url", "size", "block_size", "cached_blocks", "blocks",
 *                   "fill", <image counters>, "hit_latency": {...},
 *                   "miss_latency": {...},
 *                   "prefetch": { "accuracy", "coverage", "wasted_bytes", "late_reads",
 *                                 "inflight_bytes", "miss_cost_ms",
 *                                 "tiers": { critical|predictive|background|readahead:
 *                                            {blocks, bytes, used_blocks} } },
 *                   "model": { name, confidence, entropy, bytes, events, dropped_events,
 *                              state_loaded, heat_entries, heat_bytes,
 *                              cpu_share, cpu_scale } }, ... ] }
 *   cpu_share = the learner thread's measured CPU over the last 1 s, share of one core
 *   cpu_scale = the part of the LSTM's budget it keeps under model_cpu (1 = all)
 *
 *   accuracy = blocks fetched ahead and then read / blocks fetched ahead
 *   coverage = blocks fetched ahead and then read / (those + blocks a reader missed)
 *   wasted_bytes = bytes fetched ahead and not read (yet)
 *   image counters: reads, read_bytes, hit_reads, miss_reads, waited_reads, errors,
 *     fetches, fetched_bytes, uncached_fetches, readahead_fetches, readahead_bytes,
 *     evicted_blocks, evicted_unused_blocks, helped_reads, latency_saved_s (reads that
 *     found blocks fetched ahead and fetched nothing, and the read time that saved:
 *     image.c, image_count_saved); latency histograms {count, sum_us, mean_us, p50_us,
 *     p90_us, p99_us}
 */
#ifndef AHEADFS_REPORT_H
#define AHEADFS_REPORT_H

#include <glib.h>

#include "aheadfs/image.h"
#include "aheadfs/learner.h"
#include "aheadfs/link.h"
#include "aheadfs/origin.h"

char *report_json(struct image *const *images, struct learner_image *const *learned,
		  guint n_images, struct origin *origin, struct link *link, gint64 started_us);

/* The same figures as a few lines of text: the origin and link, then per image what is
 * local, how reads fared, and what prefetching did (read time saved, accuracy). */
char *report_summary(struct image *const *images, struct learner_image *const *learned,
		     guint n_images, struct origin *origin, struct link *link, gint64 started_us);

#endif

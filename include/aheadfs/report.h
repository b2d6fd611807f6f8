/*
 * report: what aheadfs tells about itself, as JSON (the control file
 * MOUNTPOINT/.aheadfs/stats) and as a one-line summary for the log.
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

#endif

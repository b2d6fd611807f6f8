/*
 * report: what aheadfs tells about itself, as JSON (the control file
 * MOUNTPOINT/.aheadfs/stats) and as a one-line summary for the log.
 *
 * JSON layout:
 *   { "version": 1, "uptime_s": N,
 *     "origin": { requests, bytes, retries, failures, queued, in_flight },
 *     "total":  { image counters summed },
 *     "images": [ { "name", "url", "size", "block_size", "cached_blocks", "blocks",
 *                   "fill", <image counters>, "hit_latency": {...},
 *                   "miss_latency": {...} }, ... ] }
 */
#ifndef AHEADFS_REPORT_H
#define AHEADFS_REPORT_H

#include <glib.h>

#include "aheadfs/image.h"
#include "aheadfs/origin.h"

char *report_json(struct image *const *images, guint n_images, struct origin *origin,
		  gint64 started_us);

#endif

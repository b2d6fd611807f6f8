/*
 * learner: the model thread. It learns each image's access sequence from the demand
 * reads and drives the prefetcher.
 *
 *   image_read (FUSE threads) --learner_record--> event ring --> learner thread:
 *       model_observe; append to the access log
 *       model_predict --> image_drop_unwanted --> prefetch_plan --> image_prefetch
 *                     \--> heat_merge (published once a second as .aheadfs/NAME.heat)
 *       background quota --> image_fill (completes the image while idle)
 *
 * What is learned lives apart from the data, under STATE_DIR, per image version:
 *
 *   STATE_DIR/<first 20 hex digits of sha256(URL "\n" validator "\n" block size)>/
 *       model        the predictor's state (model_save format), loaded at mount
 *       access.log   the demand accesses of every mount (tracefile ACCESS_LOG format),
 *                    rotated to access.log.1 past 32 MiB
 *       source       the URL and validator, for people copying state between hosts
 *
 * so a host can start with learned state and an empty data cache, and a state directory
 * copied from another host applies to the same image version only.
 */
#ifndef AHEADFS_LEARNER_H
#define AHEADFS_LEARNER_H

#include <glib.h>
#include <stdbool.h>

#include "aheadfs/image.h"
#include "aheadfs/link.h"
#include "aheadfs/model.h"
#include "aheadfs/origin.h"
#include "aheadfs/prefetch.h"

struct learner_config {
	const char *state_dir;
	const char *model;	/* model name, e.g. "hybrid" */
	/* Per image model: memory cap and LSTM sizes; image_blocks is set per image. */
	struct model_params model_params;
	double cpu_cap;		/* the thread's CPU, share of one core (0.10) */
	bool prefetch;		/* act on predictions; off: learn only */
	struct prefetch_params params;
	uint64_t horizon_us;	/* how far ahead predictions look */
	uint64_t cache_size;	/* evict above this many cached bytes (all images); 0: never */
	struct origin *origin;	/* for the demand queue */
	struct link *link;
};

/* One image's hook: pass as image_config.on_access / on_access_opaque. */
struct learner_image;

struct learner;

struct learner *learner_new(const struct learner_config *cfg, GError **error);

/*
 * Register an image before the thread starts: loads its learned state (a missing file is
 * a fresh start, an unusable one is logged, discarded and rebuilt). The returned hook is
 * what image_config.on_access_opaque must be.
 */
struct learner_image *learner_add_image(struct learner *l, const char *url, const char *validator,
					uint64_t nblocks, uint32_t block_size, GError **error);
void learner_attach(struct learner_image *li, struct image *img);
void learner_on_access(void *opaque, const struct model_event *event);

/* Start the thread: a new session for every image (the profile fires its critical tier). */
void learner_start(struct learner *l);
/* Stop the thread, save every model, close the logs, free. */
void learner_free(struct learner *l);

/* Ask the thread to write a summary line to the log (async-signal-safe). */
void learner_request_summary(struct learner *l);

struct learner_image_stats {
	const char *model;
	const char *leader; /* the hybrid's leading expert, or NULL */
	double confidence;
	double entropy;
	size_t model_bytes;
	uint64_t events;
	uint64_t dropped_events;
	bool state_loaded;
	double cpu_share;    /* the learner thread's measured CPU, share of one core */
	double cpu_scale;    /* what it leaves the LSTM of its budget, 1/64..1 */
	size_t heat_entries; /* blocks in the heat map */
	size_t heat_bytes;   /* its memory, the published file included */
};

void learner_image_stats(struct learner_image *li, struct learner_image_stats *out);

/*
 * The image's heat map in the heat file format (heat.h), as the thread last published it
 * (once a second); a new reference, or NULL before the thread's first tick.
 */
GBytes *learner_image_heat(struct learner_image *li);

#endif

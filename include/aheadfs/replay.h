/*
 * replay: run block-access traces through a model and the prefetch policy on a simulated
 * link, and measure what a mount would have done.
 *
 * `aheadfsctl replay` is the front end; the unit tests call it directly. The simulation is
 * pure and deterministic: no threads, no I/O, a discrete-event simulation in simulated
 * time, so the same inputs always give the same result (but for the cost figures, which
 * time the model calls with the real clock). The model (model.h), the policy (prefetch.h)
 * and the link estimator (link.h) are the mount's own code, called as the mount calls
 * them. See replay.c for the simulated link, reader and learner.
 */
#ifndef AHEADFS_REPLAY_H
#define AHEADFS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "aheadfs/model.h"
#include "aheadfs/prefetch.h"
#include "aheadfs/tracefile.h"

#define REPLAY_ERROR (replay_error_quark())
GQuark replay_error_quark(void);

enum replay_error_code {
	REPLAY_ERROR_INVALID, /* bad parameters */
	REPLAY_ERROR_EMPTY,   /* nothing to replay: no read in the measured trace */
	REPLAY_ERROR_SIZE,    /* the image is too large for the simulator */
};

#define REPLAY_DEFAULT_BLOCK_SIZE (64u * 1024)
#define REPLAY_DEFAULT_CONNECTIONS 8u
#define REPLAY_DEFAULT_MAX_REQUEST (4u * 1024 * 1024) /* the mount's largest range GET */
/* The mount's learner (main.c, learner.c): horizon, tick, predictions per round. */
#define REPLAY_DEFAULT_HORIZON_US (10u * 1000 * 1000)
#define REPLAY_DEFAULT_TICK_US (20u * 1000)
#define REPLAY_DEFAULT_MAX_PREDICTIONS 1024u
#define REPLAY_IMAGE_BLOCKS_MAX ((uint64_t)1 << 28) /* one byte of state per block */

/* Who requested blocks ahead of the reader: a prefetch tier, or readahead. */
#define REPLAY_SOURCE_READAHEAD PREFETCH_N_TIERS
#define REPLAY_N_SOURCES (PREFETCH_N_TIERS + 1)

/* replay_params_init() sets every default; change fields after it. */
struct replay_params {
	const char *model;		  /* model name (model.h); default "hybrid" */
	struct model_params model_params; /* image_blocks is set by replay_run() */
	struct prefetch_params prefetch;  /* block_size is set by replay_run() */
	bool background;		  /* background fill tier at all (default true) */
	bool readahead;			  /* the read path's readahead (default true) */
	uint32_t block_size;		  /* power of two, 4 KiB..64 MiB; default 64 KiB */
	uint64_t image_size;		  /* bytes; 0: the furthest access of all the traces */
	uint64_t rtt_us;		  /* request to first byte, per request */
	uint64_t bandwidth;		  /* bytes/s shared by all transfers; 0: infinite */
	unsigned connections;		  /* parallel transfers; default 8 */
	uint64_t max_request_bytes;	  /* largest request (demand runs, prefetch runs); 4 MiB */
	double scale;			  /* think-time factor on record gaps; default 1 */
	uint64_t gap_us;		  /* think time between records without timestamps; 0 */
	uint64_t horizon_us;		  /* model_predict() horizon; default 10 s */
	uint64_t tick_us;		  /* the learner also plans every tick; default 20 ms */
	size_t max_predictions;		  /* per model_predict() call; default 1024 */
	bool observe_at_issue;		  /* tell the model of a read when it starts, not when it is
					   * answered as the mount does (default false) */
};

void replay_params_init(struct replay_params *params);

struct replay_tier_stats {
	uint64_t blocks; /* prefetched in this tier */
	uint64_t bytes;
	uint64_t used_blocks; /* ... and then demanded */
};

/* What the measured session did (training sessions only count in `train_*`). */
struct replay_result {
	const char *model; /* params->model, not owned */
	uint64_t image_size, image_blocks;
	uint64_t train_sessions, train_ops;
	uint64_t ops;		  /* reads replayed */
	uint64_t writes_skipped;  /* write records: not replayed (see replay.c) */
	uint64_t skipped_reads;	  /* empty, or wholly past image_size: not replayed */
	uint64_t demand_blocks;	  /* blocks the reads touched, repeats included */
	uint64_t distinct_blocks; /* distinct blocks demanded (none cached at start) */
	uint64_t hits;		  /* reads served from the cache at once */
	uint64_t demand_misses;	  /* reads that had to fetch */
	uint64_t late;		  /* reads that fetched nothing but waited for a prefetch */
	uint64_t demand_requests, demand_fetched_blocks;
	/* Critical and predictive tiers; background only in tiers[]. */
	uint64_t prefetched_blocks;	 /* requested */
	uint64_t prefetched_used_blocks; /* ... and later demanded (arrived or not) */
	uint64_t prefetched_hit_blocks;	 /* ... and arrived before their first demand */
	uint64_t late_blocks;		 /* ... demanded while still in flight */
	uint64_t wasted_bytes;		 /* prefetched, never demanded */
	double accuracy;		 /* prefetched_used / prefetched, 0..1 */
	double coverage;		 /* prefetched_used / distinct, 0..1 */
	double coverage_timely;		 /* prefetched_hit / distinct: arrived in time */
	uint64_t bytes_fetched;		 /* requested, demand and prefetch */
	uint64_t requests;
	double stall_s;	     /* time reads waited for blocks */
	double stall_late_s; /* ... of it, in reads that only waited for prefetches */
	double elapsed_s;    /* simulated, session start to the last read's end */
	/* The three tiers, then the read path's readahead (REPLAY_SOURCE_READAHEAD). */
	struct replay_tier_stats tiers[REPLAY_N_SOURCES];
	/* Critical and predictive blocks by the expert whose prediction won each (bytes
	 * unused here): where a mix's waste comes from. */
	struct replay_tier_stats experts[MODEL_EXPERT_COUNT];
	double link_rtt_us, link_bandwidth; /* link_get() at the end */
	double confidence;		    /* model_confidence() at the end */
	size_t model_bytes;
	/* Cost, over every session, training included; real clock, so not deterministic. */
	uint64_t observes, predicts;
	double ns_per_observe, ns_per_predict;
};

/*
 * Replays each of @train (may be NULL when @ntrain is 0) as an earlier session, then
 * @trace as the measured one, on one model, each session with an empty cache and a fresh
 * link estimate (a new mount that kept only the learned state). Fills @result. FALSE
 * with @error set for bad parameters, a model that cannot be built, an image too large,
 * or a measured trace without a read.
 */
gboolean replay_run(const struct replay_params *params, const struct tracefile *const *train,
		    size_t ntrain, const struct tracefile *trace, struct replay_result *result,
		    GError **error);

/* @result as one JSON object (no newline), with the parameters under "sim". Caller frees. */
char *replay_result_to_json(const struct replay_result *result, const struct replay_params *params);

#endif /* AHEADFS_REPLAY_H */

/*
 * prefetch: the policy that turns predictions into fetches, in three tiers.
 *
 * Pure: it sees a snapshot of the world (struct prefetch_state) and a list of predictions
 * and answers which blocks to fetch now and in which tier. The mount's learner thread and
 * `aheadfsctl replay` call the same function, so what replay measures is what the mount
 * does. See prefetch.c for the design.
 */
#ifndef AHEADFS_PREFETCH_H
#define AHEADFS_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aheadfs/model.h"

enum prefetch_tier {
	PREFETCH_TIER_CRITICAL,	  /* high probability, or due soon in the learned profile */
	PREFETCH_TIER_PREDICTIVE, /* moderate probability, while the link has headroom */
	PREFETCH_TIER_BACKGROUND, /* everything else, only while link and host are idle */
	PREFETCH_N_TIERS,
};

const char *prefetch_tier_to_string(enum prefetch_tier tier);

/* The knobs (mount options); prefetch_params_init() sets the defaults. */
struct prefetch_params {
	double critical_p;	     /* p at or above this: critical (default 0.6) */
	double predictive_p;	     /* p at or above this: predictive (default 0.2) */
	uint64_t critical_window_us; /* profile blocks due within this: critical (3 s) */
	uint64_t bg_bandwidth;	     /* background fill cap, bytes/s; 0: no fill (12.5 MB/s) */
	double budget_factor;	     /* in-flight prefetch <= bandwidth x RTT x this (4) */
	uint64_t min_budget_bytes;   /* ... but never less than this (8 MiB) */
	uint64_t idle_us;	     /* no demand miss for this long: the link is idle (1 s) */
	double idle_pressure;	     /* host pressure below this: the host is idle (0.10);
				      * >= 1: background never waits for an idle host */
	double idle_cpu;	     /* others' CPU share below this: the host is idle (0.25) */
	double busy_pressure;	     /* above this: predictive tier paused (0.50) */
	uint32_t block_size;
};

void prefetch_params_init(struct prefetch_params *params, uint32_t block_size);

/* What the policy knows of the moment. */
struct prefetch_state {
	uint64_t now_us;
	double bandwidth;	    /* bytes/s estimate; 0 = not measured yet */
	double rtt_us;		    /* round-trip estimate; 0 = not measured yet */
	uint64_t inflight_bytes;    /* prefetch bytes requested and not yet arrived */
	uint64_t urgent_inflight_bytes; /* ... of those, for predictions (not the fill) */
	unsigned demand_waiting;    /* demand fetches queued or running */
	uint64_t last_demand_us;    /* time of the last demand miss; 0 = none yet */
	double accuracy;	    /* recent used/prefetched, 0..1; < 0 = not known yet */
	double predictive_accuracy; /* ... of the predictive tier alone */
	double host_pressure;	    /* 0..1 (PSI avg10 or load per CPU) */
	double host_cpu;	    /* 0..1: share of all CPUs other processes used lately */
	unsigned host_cpus;	    /* CPUs online; 0 = not known */
	uint64_t learned_end_us;    /* model_learned_end_us(); 0 = nothing learned */
};

struct prefetch_choice {
	uint64_t block;
	enum prefetch_tier tier;
	enum model_expert expert; /* whose prediction won the block */
};

/* The thresholds and budget the policy applies in `st` (for stats and tests). */
struct prefetch_limits {
	double critical_p;
	double predictive_p; /* > 1 when the predictive tier is paused */
	uint64_t budget_bytes;
	uint64_t bg_budget_bytes; /* background fill in flight, at most */
	bool background;	  /* background fill allowed now */
};

void prefetch_limits(const struct prefetch_params *params, const struct prefetch_state *st,
		     struct prefetch_limits *out);

/*
 * Choose among `preds` (which must exclude blocks already cached or in flight) the
 * blocks to fetch now, most urgent first, within the in-flight budget. Returns how many
 * were written to `out` (at most `max`).
 */
size_t prefetch_plan(const struct prefetch_params *params, const struct prefetch_state *st,
		     const struct model_prediction *preds, size_t n, struct prefetch_choice *out,
		     size_t max);

/*
 * Background fill: how many bytes may be requested now (0 when not idle), given the
 * bytes background requested in the last second.
 */
uint64_t prefetch_background_quota(const struct prefetch_params *params,
				   const struct prefetch_state *st, uint64_t bytes_last_second);

#endif

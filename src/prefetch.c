/*
 * prefetch: from predictions to fetches, in tiers.
 *
 * Design. Every miss costs the VM a round trip; every useless prefetch costs link time a
 * later miss may need. The policy spends link time in three tiers, most urgent first:
 *
 *   tier         takes a predicted block when ...               limited by
 *   ----------   ---------------------------------------------  ------------------------
 *   critical     p >= critical_p, or the learned first-access   2 x budget
 *                profile expects it within critical_window
 *   predictive   p >= predictive_p                              budget; paused while
 *                                                               demand waits or host busy
 *   background   (any absent block, lowest first: fill)         bg_bandwidth, and 2 x
 *                                                               bandwidth x RTT in
 *                                                               flight; only while link
 *                                                               and host are idle: no
 *                                                               miss for idle_us, no
 *                                                               prediction in flight,
 *                                                               and the learned boot over
 *
 *   budget = max(min_budget, bandwidth x RTT x budget_factor): the bytes in flight that
 *   keep the link busy without queueing far beyond what one round trip delivers.
 *
 * The thresholds move with what is measured:
 *   - accuracy: when fewer prefetched blocks get used, predictive_p rises towards 1 (at
 *     accuracy 0 the tier is off) and, below 0.25, critical_p rises too. The predictive
 *     tier is also held to its own accuracy: a mix whose sure predictions are right
 *     but whose moderate ones are mostly wrong (cloudPhysicsIO: 0.87 against 0.15)
 *     keeps the first and drops the second, instead of spending link time on both;
 *   - host load: above busy_pressure (PSI) the predictive tier pauses; background
 *     needs pressure below idle_pressure and the CPU to spare: other processes using
 *     under idle_cpu of it, or leaving two CPUs free. PSI alone misses the case that
 *     matters most: one TCG vCPU thread busy on a 2-core host waits for nobody, yet a
 *     first boot's fill, run at full speed during the kernel's quiet 10 s, slowed it;
 *   - demand: while a demand fetch waits, only the critical tier adds work, and
 *     background needs no demand miss for idle_us;
 *   - what was learned: while the learned first-access profile still expects reads
 *     (model_learned_end_us), the VM is in a phase the model knows and background
 *     waits. A boot has long quiet spells (the kernel boots from -kernel for 10 s
 *     before the first disk read) that look idle but are not the end of it.
 * Background's in-flight bytes stay within two round trips of the link, so a demand
 * miss that arrives meanwhile shares the link with at most that much fill. Until the
 * link's bandwidth is measured (link.c needs it kept busy for 100 ms) the fill keeps
 * BG_UNMEASURED_BYTES in flight: a few blocks would never keep it busy that long.
 * A demand miss never waits for prefetches: the origin starts demand first and keeps
 * connections free for it (origin.c).
 */
#include "aheadfs/prefetch.h"

#include <glib.h>

/* Background in flight never below this many blocks: an unmeasured link still fills. */
#define BG_MIN_BLOCKS 4
#define BG_UNMEASURED_BYTES (UINT64_C(1) << 20)
/* Other processes leaving this many CPUs free: the host counts as idle for fill. */
#define IDLE_FREE_CPUS 2.0

const char *prefetch_tier_to_string(enum prefetch_tier tier)
{
	switch (tier) {
	case PREFETCH_TIER_CRITICAL:
		return "critical";
	case PREFETCH_TIER_PREDICTIVE:
		return "predictive";
	case PREFETCH_TIER_BACKGROUND:
		return "background";
	default:
		return "unknown";
	}
}

void prefetch_params_init(struct prefetch_params *params, uint32_t block_size)
{
	*params = (struct prefetch_params){
		.critical_p = 0.6,
		.predictive_p = 0.2,
		.critical_window_us = 3 * G_USEC_PER_SEC,
		.bg_bandwidth = 12500000, /* 100 Mbit/s */
		.budget_factor = 4.0,
		.min_budget_bytes = 8 << 20,
		.idle_us = G_USEC_PER_SEC,
		.idle_pressure = 0.10,
		.idle_cpu = 0.25,
		.busy_pressure = 0.50,
		.block_size = block_size,
	};
}

/*
 * Idle enough for fill: nothing waits for a resource (PSI), and other processes leave
 * the CPU to spare: they use under idle_cpu of it, or leave two whole CPUs free. Fill
 * costs CPU (the transfer, the cache writes); on a small host that CPU comes out of a
 * busy guest's share even when nobody queues for it.
 */
static bool prefetch_host_idle(const struct prefetch_params *params,
			       const struct prefetch_state *st)
{
	double free_cpus = (1.0 - st->host_cpu) * st->host_cpus;

	if (params->idle_pressure >= 1.0)
		return true;
	return st->host_pressure < params->idle_pressure &&
	       (st->host_cpu < params->idle_cpu || free_cpus >= IDLE_FREE_CPUS);
}

void prefetch_limits(const struct prefetch_params *params, const struct prefetch_state *st,
		     struct prefetch_limits *out)
{
	double bdp = st->bandwidth * st->rtt_us / 1e6 * params->budget_factor;
	/* Idle: no reader missed lately and no prediction is being fetched. */
	bool link_idle = st->demand_waiting == 0 && st->urgent_inflight_bytes == 0 &&
			 (st->last_demand_us == 0 || st->now_us - st->last_demand_us >= params->idle_us);

	out->budget_bytes = MAX(params->min_budget_bytes, (uint64_t)bdp);
	out->critical_p = params->critical_p;
	out->predictive_p = params->predictive_p;
	/* Throttle on measured accuracy (unknown accuracy: trust the defaults). */
	if (st->accuracy >= 0 && st->accuracy < 0.5)
		out->predictive_p += (1.0 - out->predictive_p) * (0.5 - st->accuracy) / 0.5;
	if (st->predictive_accuracy >= 0 && st->predictive_accuracy < 0.5)
		out->predictive_p += (1.0 - out->predictive_p) * (0.5 - st->predictive_accuracy) / 0.5;
	if (st->accuracy >= 0 && st->accuracy < 0.25)
		out->critical_p += (1.0 - out->critical_p) * (0.25 - st->accuracy) / 0.25 * 0.5;
	/* The VM's own reads and a busy host come first. */
	if (st->demand_waiting > 0 || st->host_pressure > params->busy_pressure)
		out->predictive_p = 1.01;
	out->bg_budget_bytes = MIN(out->budget_bytes,
				   st->bandwidth > 0
					   ? MAX(2 * (uint64_t)(st->bandwidth * st->rtt_us / 1e6),
						 (uint64_t)BG_MIN_BLOCKS * params->block_size)
					   : BG_UNMEASURED_BYTES);
	out->background = params->bg_bandwidth > 0 && link_idle &&
			  st->now_us >= st->learned_end_us && prefetch_host_idle(params, st) &&
			  st->inflight_bytes < out->bg_budget_bytes;
}

static bool in_critical_window(const struct prefetch_params *params,
			       const struct prefetch_state *st, const struct model_prediction *p)
{
	return p->expert == MODEL_EXPERT_PROFILE && p->eta_us <= st->now_us + params->critical_window_us;
}

size_t prefetch_plan(const struct prefetch_params *params, const struct prefetch_state *st,
		     const struct model_prediction *preds, size_t n, struct prefetch_choice *out,
		     size_t max)
{
	struct prefetch_limits lim;
	uint64_t inflight = st->inflight_bytes;
	size_t chosen = 0;

	prefetch_limits(params, st, &lim);
	/* Two passes: all critical blocks first, then predictive ones, each in eta order. */
	for (int tier = PREFETCH_TIER_CRITICAL; tier <= PREFETCH_TIER_PREDICTIVE; tier++) {
		uint64_t cap = tier == PREFETCH_TIER_CRITICAL ? 2 * lim.budget_bytes
							      : lim.budget_bytes;

		for (size_t i = 0; i < n && chosen < max && inflight < cap; i++) {
			const struct model_prediction *p = &preds[i];
			bool critical = p->probability >= lim.critical_p ||
					(p->probability >= lim.predictive_p &&
					 in_critical_window(params, st, p));
			bool predictive = !critical && p->probability >= lim.predictive_p;

			if ((tier == PREFETCH_TIER_CRITICAL && !critical) ||
			    (tier == PREFETCH_TIER_PREDICTIVE && !predictive))
				continue;
			out[chosen].block = p->block;
			out[chosen].tier = (enum prefetch_tier)tier;
			out[chosen].expert = p->expert;
			chosen++;
			inflight += params->block_size;
		}
	}
	return chosen;
}

uint64_t prefetch_background_quota(const struct prefetch_params *params,
				   const struct prefetch_state *st, uint64_t bytes_last_second)
{
	struct prefetch_limits lim;

	prefetch_limits(params, st, &lim);
	if (!lim.background || bytes_last_second >= params->bg_bandwidth)
		return 0;
	return MIN(params->bg_bandwidth - bytes_last_second,
		   lim.bg_budget_bytes - st->inflight_bytes);
}

/*
 * cpu_budget: a multiplicative controller on the measured CPU share (see cpu_budget.h).
 * Down in proportion, so one window over the cap brings the next under it; up by a fixed
 * step, so a short lull does not let the work jump back to full at once.
 */
#include "aheadfs/cpu_budget.h"

#include <glib.h>

/* Under this share of the cap, the elastic work may grow again. */
#define CPU_BUDGET_GROW_BELOW 0.7
#define CPU_BUDGET_GROW 1.25
#define CPU_BUDGET_SPARE 0.9

void cpu_budget_init(struct cpu_budget *b, double cap)
{
	*b = (struct cpu_budget){.cap = cap, .scale = 1.0, .share = -1};
}

bool cpu_budget_update(struct cpu_budget *b, uint64_t now_us, uint64_t cpu_ns)
{
	if (!b->started || now_us < b->start_us || cpu_ns < b->start_ns) {
		b->started = true;
		b->start_us = now_us;
		b->start_ns = cpu_ns;
		return false;
	}
	if (now_us - b->start_us < CPU_BUDGET_WINDOW_US)
		return false;
	b->share = (double)(cpu_ns - b->start_ns) / 1000.0 / (double)(now_us - b->start_us);
	b->start_us = now_us;
	b->start_ns = cpu_ns;
	if (b->share > b->cap)
		b->scale *= b->cap / b->share * CPU_BUDGET_SPARE;
	else if (b->share < b->cap * CPU_BUDGET_GROW_BELOW)
		b->scale *= CPU_BUDGET_GROW;
	b->scale = CLAMP(b->scale, CPU_BUDGET_SCALE_MIN, 1.0);
	return true;
}

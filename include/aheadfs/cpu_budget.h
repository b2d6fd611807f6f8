/*
 * cpu_budget: keeps a thread's measured CPU share under a cap by scaling its elastic
 * work (the LSTM's training and rollouts) up and down.
 *
 * The LSTM paces itself with costs estimated from multiply-adds, so that a replay comes
 * out the same on every run. Estimates drift from what a machine really spends, and the
 * rest of the learner's work (the other experts, the heat map, the access log) grows with
 * the read rate, not with the LSTM's budget. The learner thread therefore measures its
 * own CPU time and feeds it here; the scale it gets back multiplies the LSTM's budget.
 * Pure: the caller reads the clocks.
 */
#ifndef AHEADFS_CPU_BUDGET_H
#define AHEADFS_CPU_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

/* The smallest scale: the LSTM keeps learning, slowly, when the rest alone is over. */
#define CPU_BUDGET_SCALE_MIN (1.0 / 64)
/* Measurement window. */
#define CPU_BUDGET_WINDOW_US (1000 * 1000)

struct cpu_budget {
	double cap;	   /* share of one core, 0..1 */
	double scale;	   /* for the elastic work, CPU_BUDGET_SCALE_MIN..1 */
	double share;	   /* measured over the last full window; < 0 until one ends */
	uint64_t start_us; /* current window: wall clock ... */
	uint64_t start_ns; /* ... and thread CPU clock at its start */
	bool started;
};

void cpu_budget_init(struct cpu_budget *b, double cap);

/*
 * The thread has used @cpu_ns of CPU in total by wall time @now_us. At the end of each
 * window: over the cap, the scale shrinks in proportion (with 10% to spare); under 70% of
 * it, the scale grows by a quarter, up to 1. Returns true when a window ended (share and
 * scale are new; the scale may be the same).
 */
bool cpu_budget_update(struct cpu_budget *b, uint64_t now_us, uint64_t cpu_ns);

#endif

/* Unit tests: the learner's CPU budget controller (measured share -> LSTM scale). */
#include <glib.h>

#include "aheadfs/cpu_budget.h"

#define S 1000000ull /* us */
#define MS_NS 1000000ull

/* Feed @windows windows in which the thread used @share of a core; return the scale. */
static double run(struct cpu_budget *b, uint64_t *now, uint64_t *cpu, double share, int windows)
{
	for (int i = 0; i < windows; i++) {
		*now += CPU_BUDGET_WINDOW_US;
		*cpu += (uint64_t)(share * CPU_BUDGET_WINDOW_US * 1000);
		cpu_budget_update(b, *now, *cpu);
	}
	return b->scale;
}

static void test_over_cap_shrinks_in_proportion(void)
{
	struct cpu_budget b;
	uint64_t now = 5 * S, cpu = 7 * MS_NS;

	cpu_budget_init(&b, 0.10);
	g_assert_false(cpu_budget_update(&b, now, cpu)); /* the first call starts a window */
	g_assert_cmpfloat(b.share, <, 0);
	/* Half a window: nothing decided yet. */
	g_assert_false(cpu_budget_update(&b, now + CPU_BUDGET_WINDOW_US / 2, cpu + 100 * MS_NS));
	g_assert_cmpfloat(b.scale, ==, 1.0);
	/* 25% of a core against a 10% cap: 0.1 / 0.25 x 0.9 = 0.36. */
	g_assert_true(cpu_budget_update(&b, now + CPU_BUDGET_WINDOW_US,
					cpu + (uint64_t)(0.25 * CPU_BUDGET_WINDOW_US * 1000)));
	g_assert_cmpfloat_with_epsilon(b.share, 0.25, 1e-9);
	g_assert_cmpfloat_with_epsilon(b.scale, 0.36, 1e-9);
}

static void test_floor_and_recovery(void)
{
	struct cpu_budget b;
	uint64_t now = 0, cpu = 0;

	cpu_budget_init(&b, 0.10);
	cpu_budget_update(&b, now, cpu);
	/* The rest of the learner alone is over the cap: the scale stops at its floor. */
	g_assert_cmpfloat(run(&b, &now, &cpu, 0.5, 20), ==, CPU_BUDGET_SCALE_MIN);
	/* Between 70% and 100% of the cap: it holds. */
	g_assert_cmpfloat(run(&b, &now, &cpu, 0.08, 3), ==, CPU_BUDGET_SCALE_MIN);
	/* Quiet: it grows back by a quarter a window, to 1 and no further. */
	run(&b, &now, &cpu, 0.01, 1);
	g_assert_cmpfloat_with_epsilon(b.scale, CPU_BUDGET_SCALE_MIN * 1.25, 1e-12);
	g_assert_cmpfloat(run(&b, &now, &cpu, 0.01, 40), ==, 1.0);
}

static void test_clock_going_back_restarts(void)
{
	struct cpu_budget b;

	cpu_budget_init(&b, 0.10);
	cpu_budget_update(&b, 10 * S, 500 * MS_NS);
	/* The CPU clock went back (a thread restarted): a new window, no verdict. */
	g_assert_false(cpu_budget_update(&b, 10 * S + CPU_BUDGET_WINDOW_US, 0));
	g_assert_cmpfloat(b.scale, ==, 1.0);
	g_assert_true(cpu_budget_update(&b, 10 * S + 2 * CPU_BUDGET_WINDOW_US,
					(uint64_t)CPU_BUDGET_WINDOW_US * 1000)); /* a whole core */
	g_assert_cmpfloat(b.scale, <, 0.1);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/cpu-budget/over-cap-shrinks-in-proportion",
			test_over_cap_shrinks_in_proportion);
	g_test_add_func("/cpu-budget/floor-and-recovery", test_floor_and_recovery);
	g_test_add_func("/cpu-budget/clock-going-back-restarts", test_clock_going_back_restarts);
	return g_test_run();
}

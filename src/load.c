/*
 * load: host pressure from PSI (/proc/pressure), load average where PSI is missing, and
 * the CPU share of other processes from /proc/stat and /proc/self/stat.
 */
#include "aheadfs/load.h"

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool load_parse_psi(const char *text, double *share)
{
	const char *p = text ? strstr(text, "some avg10=") : NULL;
	char *end;
	double v;

	if (!p)
		return false;
	v = g_ascii_strtod(p + strlen("some avg10="), &end);
	if (end == p + strlen("some avg10="))
		return false;
	*share = CLAMP(v / 100.0, 0.0, 1.0);
	return true;
}

double load_host_pressure(void)
{
	static const char *const files[] = {"/proc/pressure/cpu", "/proc/pressure/io",
					    "/proc/pressure/memory"};
	double worst = 0, share, avg[1];
	bool any = false;

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *text = NULL;

		if (g_file_get_contents(files[i], &text, NULL, NULL) &&
		    load_parse_psi(text, &share)) {
			worst = MAX(worst, share);
			any = true;
		}
	}
	if (any)
		return worst;
	if (getloadavg(avg, 1) == 1) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		return CLAMP(avg[0] / (double)(cpus > 0 ? cpus : 1), 0.0, 1.0);
	}
	return 0;
}

bool load_parse_proc_stat(const char *text, uint64_t *total, uint64_t *busy)
{
	/* user nice system idle iowait irq softirq steal (guest time is inside user). */
	uint64_t v[8] = {0};
	int n;

	if (!text || strncmp(text, "cpu ", 4) != 0)
		return false;
	n = sscanf(text + 4,
		   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64,
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	if (n < 4)
		return false;
	*total = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(v); i++)
		*total += v[i];
	/* Steal counts as busy: the hypervisor gave the CPU to someone else. */
	*busy = *total - v[3] - v[4];
	return true;
}

bool load_parse_self_stat(const char *text, uint64_t *ticks)
{
	/* The command name may hold spaces and parentheses: fields follow the last ')'. */
	const char *p = text ? strrchr(text, ')') : NULL;
	uint64_t utime, stime;

	if (!p)
		return false;
	/* Skip fields 3..13 (state .. cmajflt) as words; then utime (14) and stime (15). */
	if (sscanf(p + 1, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %" SCNu64 " %" SCNu64,
		   &utime, &stime) != 2)
		return false;
	*ticks = utime + stime;
	return true;
}

bool load_cpu_sample(struct load_cpu_sample *out)
{
	g_autofree char *stat = NULL;
	g_autofree char *self = NULL;

	return g_file_get_contents("/proc/stat", &stat, NULL, NULL) &&
	       g_file_get_contents("/proc/self/stat", &self, NULL, NULL) &&
	       load_parse_proc_stat(stat, &out->total, &out->busy) &&
	       load_parse_self_stat(self, &out->self);
}

double load_cpu_others_share(const struct load_cpu_sample *prev,
			     const struct load_cpu_sample *cur)
{
	uint64_t total, busy, self;

	if (cur->total <= prev->total || cur->busy < prev->busy || cur->self < prev->self)
		return 0;
	total = cur->total - prev->total;
	busy = cur->busy - prev->busy;
	self = cur->self - prev->self;
	/* Ticks are sampled per CPU and per task at different moments: clamp the skew. */
	return busy > self ? CLAMP((double)(busy - self) / (double)total, 0.0, 1.0) : 0.0;
}

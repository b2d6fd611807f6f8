/*
 * load: how busy the host is.
 *
 * Two figures, because one does not see what the other sees:
 *   - pressure, 0 (idle) to 1 (saturated): the largest of the PSI "some avg10" shares of
 *     cpu, io and memory (/proc/pressure), or, where PSI is missing, the 1-minute load
 *     average per CPU. It rises when tasks wait for a resource.
 *   - the CPU share of everyone else: the fraction of all the host's CPU time, over the
 *     last sampling interval, spent by processes other than aheadfs. PSI shows nothing
 *     when one busy thread (a TCG guest's vCPU) runs alone on a 2-core host: nobody
 *     waits, yet the host is not idle, and fill that takes CPU slows that thread down.
 */
#ifndef AHEADFS_LOAD_H
#define AHEADFS_LOAD_H

#include <stdbool.h>
#include <stdint.h>

/* Parse a /proc/pressure file's "some avg10=" as a fraction 0..1. Pure. */
bool load_parse_psi(const char *text, double *share);

/* Sample the host's pressure now (reads /proc). */
double load_host_pressure(void);

/* CPU time counters at one moment, in clock ticks. */
struct load_cpu_sample {
	uint64_t total; /* all CPUs, every state */
	uint64_t busy;	/* all CPUs, not idle and not waiting for I/O */
	uint64_t self;	/* this process, user + system */
};

/* Parse /proc/stat's aggregate "cpu" line into total and busy ticks. Pure. */
bool load_parse_proc_stat(const char *text, uint64_t *total, uint64_t *busy);

/* Parse /proc/PID/stat into the process's utime + stime ticks. Pure. */
bool load_parse_self_stat(const char *text, uint64_t *ticks);

/* Read the counters now (reads /proc). */
bool load_cpu_sample(struct load_cpu_sample *out);

/*
 * The share, 0..1 of all CPUs, that other processes used between two samples; 0 when
 * no time passed or the counters went backwards. Pure.
 */
double load_cpu_others_share(const struct load_cpu_sample *prev,
			     const struct load_cpu_sample *cur);

#endif

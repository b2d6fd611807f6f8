/*
 * load: how busy the host is, as one figure from 0 (idle) to 1 (saturated): the largest
 * of the PSI "some avg10" shares of cpu, io and memory (/proc/pressure), or, where PSI is
 * missing, the 1-minute load average per CPU.
 */
#ifndef AHEADFS_LOAD_H
#define AHEADFS_LOAD_H

#include <stdbool.h>

/* Parse a /proc/pressure file's "some avg10=" as a fraction 0..1. Pure. */
bool load_parse_psi(const char *text, double *share);

/* Sample the host now (reads /proc). */
double load_host_pressure(void);

#endif

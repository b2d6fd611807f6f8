/*
 * link: what the network to the origin does now: round-trip time and bandwidth,
 * estimated (EWMA) from finished transfers. Fed by the origin's completions, read by the
 * prefetcher. Thread-safe.
 */
#ifndef AHEADFS_LINK_H
#define AHEADFS_LINK_H

#include <glib.h>
#include <stdint.h>

struct link {
	GMutex lock; /* protects everything below */
	double rtt_us;	  /* EWMA of time to first byte */
	double bandwidth; /* EWMA of bytes/s after the first byte, large transfers only */
	uint64_t samples;
};

void link_init(struct link *link);
void link_clear(struct link *link);

/*
 * One finished transfer: `bytes` long, first byte after ttfb_us, done after elapsed_us,
 * while `sharing` transfers (itself included) shared the link: the link's bandwidth is
 * about the transfer's rate times that.
 */
void link_observe(struct link *link, uint64_t bytes, uint64_t ttfb_us, uint64_t elapsed_us,
		  unsigned sharing);

void link_get(struct link *link, double *rtt_us, double *bandwidth);

#endif

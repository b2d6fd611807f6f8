/*
 * link: what the network to the origin does now: round-trip time and bandwidth,
 * estimated (EWMA) from finished transfers. Fed by the origin's completions, read by the
 * prefetcher. Thread-safe.
 */
#ifndef AHEADFS_LINK_H
#define AHEADFS_LINK_H

#include <glib.h>
#include <stdint.h>

/* Bandwidth is sampled over this much time with bytes arriving (see link.c). */
#define LINK_SPELL_US UINT64_C(100000)

struct link {
	GMutex lock;	  /* protects everything below */
	double rtt_us;	  /* EWMA of time to first byte */
	double bandwidth; /* EWMA of bytes/s over busy spells; 0 until one lasted LINK_SPELL_US */
	/*
	 * The busy spell being measured: the union of the bodies (first byte to last) of
	 * transfers that overlap, from spell_start_us to spell_end_us, and their bytes.
	 * Nothing before floor_us (the last sample's end) is counted again.
	 */
	uint64_t spell_start_us, spell_end_us, floor_us;
	double spell_bytes;
};

void link_init(struct link *link);
void link_clear(struct link *link);

/*
 * One transfer finished at now_us (monotonic; calls come in the order transfers finish):
 * `bytes` long, first byte ttfb_us after it started, done elapsed_us after it started.
 */
void link_observe(struct link *link, uint64_t now_us, uint64_t bytes, uint64_t ttfb_us,
		  uint64_t elapsed_us);

/* bandwidth is 0 while unknown. */
void link_get(struct link *link, double *rtt_us, double *bandwidth);

#endif

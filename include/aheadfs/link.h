/*
 * link: what the network to the origin does now: round-trip time and bandwidth,
 * estimated (EWMA) from the transfers as their bytes arrive. Fed by the origin thread
 * (origin.c), read by the prefetcher. Thread-safe.
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
	double rtt_min_us; /* the shortest time to first byte seen; 0 before any */
	double bandwidth; /* EWMA of bytes/s while receiving; 0 until LINK_SPELL_US of it */
	/*
	 * Bodies being received now (first byte seen, last not yet); while there are any,
	 * the sample being measured began at busy_since_us, and its bytes.
	 */
	unsigned bodies;
	uint64_t busy_since_us;
	double sample_bytes;
	/*
	 * Goodput: bytes/s over LINK_SPELL_US (or two round trips) of wall time with bytes
	 * arriving, the waits for first bytes included, held at its highest recent sample.
	 * What the transfers got, which a link kept short of full (requests too small or
	 * too few for its delay) shows when bandwidth cannot; 0 until one sample is
	 * complete. The sample began at goodput_since_us, bytes last came at goodput_last_us.
	 */
	double goodput;
	uint64_t goodput_since_us, goodput_last_us;
	double goodput_bytes;
};

void link_init(struct link *link);
void link_clear(struct link *link);

/*
 * What the transfers tell it, all on one clock (monotonic, in the order things happen):
 * a body's first byte came ttfb_us after its request went out (link_rtt) at now_us
 * (link_body_begin); bytes of any body arrived (link_body_bytes); a body ended, done or
 * failed (link_body_end).
 */
void link_rtt(struct link *link, uint64_t ttfb_us);
void link_body_begin(struct link *link, uint64_t now_us);
void link_body_bytes(struct link *link, uint64_t now_us, uint64_t bytes);
void link_body_end(struct link *link, uint64_t now_us);

/* bandwidth is 0 while unknown. */
void link_get(struct link *link, double *rtt_us, double *bandwidth);

/*
 * The bytes the link holds in flight when it is full: its rate times the shortest time
 * to first byte (the link's own delay, without the queueing in the EWMA). The rate is
 * the bandwidth, or the goodput when that is more (or the bandwidth unknown): a lower
 * bound either way. 0 until both the rate and the delay are known.
 */
uint64_t link_bdp_bytes(struct link *link);

#endif

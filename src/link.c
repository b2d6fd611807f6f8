/*
 * link: EWMA estimates of round-trip time and bandwidth.
 *
 * RTT is the time to first byte of any transfer (it includes the server's think time,
 * which is what a miss costs). Bandwidth is measured only on transfers of at least
 * LINK_MIN_BW_BYTES, after their first byte, since small ones are all latency.
 */
#include "aheadfs/link.h"

#define LINK_ALPHA 0.2
#define LINK_MIN_BW_BYTES (256 * 1024)

void link_init(struct link *link)
{
	g_mutex_init(&link->lock);
	link->rtt_us = 0;
	link->bandwidth = 0;
	link->samples = 0;
}

void link_clear(struct link *link)
{
	g_mutex_clear(&link->lock);
}

static double ewma(double old, double sample)
{
	return old == 0 ? sample : old + LINK_ALPHA * (sample - old);
}

void link_observe(struct link *link, uint64_t bytes, uint64_t ttfb_us, uint64_t elapsed_us,
		  unsigned sharing)
{
	g_mutex_lock(&link->lock);
	link->rtt_us = ewma(link->rtt_us, (double)ttfb_us);
	if (bytes >= LINK_MIN_BW_BYTES && elapsed_us > ttfb_us)
		link->bandwidth = ewma(link->bandwidth, (double)bytes * 1e6 * MAX(sharing, 1) /
							 (double)(elapsed_us - ttfb_us));
	link->samples++;
	g_mutex_unlock(&link->lock);
}

void link_get(struct link *link, double *rtt_us, double *bandwidth)
{
	g_mutex_lock(&link->lock);
	*rtt_us = link->rtt_us;
	*bandwidth = link->bandwidth;
	g_mutex_unlock(&link->lock);
}

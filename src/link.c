/*
 * link: EWMA estimates of round-trip time and bandwidth.
 *
 * RTT is the time to first byte of any transfer (it includes the server's think time,
 * which is what a miss costs).
 *
 * Bandwidth is what the link delivers while it is kept busy: the bytes that arrived during
 * a spell in which at least one transfer was receiving all along (its body: first byte
 * to last), sampled each time the spell has lasted LINK_SPELL_US more; the rest of a
 * spell, shorter than that, is dropped when the link goes idle. Bytes and time are
 * counted as they happen, not when a transfer ends:
 *   - counted at the end, overlapping bodies are lost: a body that ends first was
 *     measured alone over a time the others shared, and their bytes from before it were
 *     never counted. A cold stream (four 8 MiB readahead requests receiving at once) at
 *     20 ms / 200 Mbit read 68-87 Mbit/s while it moved 200 (dd through a mount of
 *     aheadfs-origin, 2026-11-26);
 *   - transfers waiting for their first byte share nothing, so scaling a transfer's rate
 *     by the transfers running (as this file did before) counts them as sharers: 3-13
 *     Gbit/s on a 200 Mbit link;
 *   - a link that has been idle lets a burst through at once (a token bucket's credit;
 *     the benchmark origin keeps 20 ms of it), so a short transfer after a pause looks
 *     arbitrarily fast. Over a spell of 100 ms, 20 ms of credit inflates by 1.2x at
 *     most, and only the first sample of a spell. Summed over the short spells of a
 *     boot instead, it read 750-800 Mbit/s on a 200 Mbit link.
 * TCP's slow start errs the other way on short transfers; a long sample is right for
 * both. Until one sample is complete the bandwidth is unknown (0), and the prefetcher
 * uses its floors.
 *
 * A link that is never kept busy never gives a bandwidth sample: a stream in 2 MiB
 * requests at 50 ms (six in flight) receives for ~8 ms of every ~60 at 2 Gbit/s.
 * Goodput is measured for that: the bytes of LINK_SPELL_US or two shortest round trips
 * of wall time, whichever is longer, the waits for first bytes included, restarted (not
 * diluted) after as long without a byte. It is a lower bound of the bandwidth (kept at
 * its highest recent sample: see link_goodput), which is all link_bdp_bytes() needs to
 * see that a link wants more in flight.
 */
#include "aheadfs/link.h"

#include <string.h>

#define LINK_ALPHA 0.2

void link_init(struct link *link)
{
	memset(link, 0, sizeof(*link));
	g_mutex_init(&link->lock);
}

void link_clear(struct link *link)
{
	g_mutex_clear(&link->lock);
}

static double ewma(double old, double sample)
{
	return old == 0 ? sample : old + LINK_ALPHA * (sample - old);
}

/* Close the sample once it has lasted long enough; the next starts at now_us. Locked. */
static void link_maybe_sample(struct link *link, uint64_t now_us)
{
	uint64_t busy = now_us > link->busy_since_us ? now_us - link->busy_since_us : 0;

	if (link->bodies == 0 || busy < LINK_SPELL_US || link->sample_bytes <= 0)
		return;
	link->bandwidth = ewma(link->bandwidth, link->sample_bytes * 1e6 / (double)busy);
	link->sample_bytes = 0;
	link->busy_since_us = now_us;
}

void link_rtt(struct link *link, uint64_t ttfb_us)
{
	g_mutex_lock(&link->lock);
	link->rtt_us = ewma(link->rtt_us, (double)ttfb_us);
	if (link->rtt_min_us == 0 || (double)ttfb_us < link->rtt_min_us)
		link->rtt_min_us = MAX((double)ttfb_us, 1.0);
	g_mutex_unlock(&link->lock);
}

void link_body_begin(struct link *link, uint64_t now_us)
{
	g_mutex_lock(&link->lock);
	if (link->bodies++ == 0)
		link->busy_since_us = now_us; /* sample_bytes is 0: dropped when it went idle */
	g_mutex_unlock(&link->lock);
}

/* Bytes arrived at now_us: count them toward goodput (see above). Locked. */
static void link_goodput(struct link *link, uint64_t now_us, uint64_t bytes)
{
	/* Two round trips at least: a stream's waits for first bytes are part of it. */
	uint64_t span = MAX(LINK_SPELL_US, (uint64_t)(2 * link->rtt_min_us));

	if (link->goodput_last_us == 0 || now_us - link->goodput_last_us >= span) {
		link->goodput_since_us = now_us; /* after an idle spell: a new sample */
		link->goodput_bytes = 0;
	}
	link->goodput_last_us = now_us;
	link->goodput_bytes += (double)bytes;
	if (now_us - link->goodput_since_us >= span) {
		double sample = link->goodput_bytes * 1e6 / (double)(now_us - link->goodput_since_us);

		/* Up at once, down slowly: a stream's ramp gives low samples, and a lower bound
		 * of the bandwidth that lags a fast stream by seconds (an EWMA from the ramp
		 * reached half its rate after 2 s at 200 ms) would never size its pieces. */
		link->goodput = MAX(sample, ewma(link->goodput, sample));
		link->goodput_bytes = 0;
		link->goodput_since_us = now_us;
	}
}

void link_body_bytes(struct link *link, uint64_t now_us, uint64_t bytes)
{
	g_mutex_lock(&link->lock);
	link->sample_bytes += (double)bytes;
	link_goodput(link, now_us, bytes);
	link_maybe_sample(link, now_us);
	g_mutex_unlock(&link->lock);
}

void link_body_end(struct link *link, uint64_t now_us)
{
	g_mutex_lock(&link->lock);
	link_maybe_sample(link, now_us);
	/* The last one: the link goes idle. What it received since the last sample is
	 * dropped: a spell shorter than a sample says nothing (see above). */
	if (link->bodies > 0 && --link->bodies == 0)
		link->sample_bytes = 0;
	g_mutex_unlock(&link->lock);
}

void link_get(struct link *link, double *rtt_us, double *bandwidth)
{
	g_mutex_lock(&link->lock);
	*rtt_us = link->rtt_us;
	*bandwidth = link->bandwidth;
	g_mutex_unlock(&link->lock);
}

uint64_t link_bdp_bytes(struct link *link)
{
	double bytes;

	g_mutex_lock(&link->lock);
	bytes = link->rtt_min_us * MAX(link->bandwidth, link->goodput) / 1e6;
	g_mutex_unlock(&link->lock);
	return (uint64_t)bytes;
}

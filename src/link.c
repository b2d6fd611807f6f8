/*
 * link: EWMA estimates of round-trip time and bandwidth.
 *
 * RTT is the time to first byte of any transfer (it includes the server's think time,
 * which is what a miss costs).
 *
 * Bandwidth is what the link delivers while it is kept busy: bytes over the time during
 * which at least one transfer was receiving (its body: first byte to last), measured
 * over spells of LINK_SPELL_US or more. Not the rate of single transfers, which is wrong
 * both ways:
 *   - transfers waiting for their first byte share nothing, so scaling a transfer's rate
 *     by the transfers running (as this file once did) counts them as sharers: at 20 ms
 *     with eight prefetches queued behind a round trip, 3-13 Gbit/s on a 200 Mbit link;
 *   - a link that has been idle lets a burst through at once (a token bucket's credit;
 *     the benchmark origin keeps 20 ms of it), so a short transfer after a pause looks
 *     arbitrarily fast. Over a spell of 100 ms, 20 ms of credit inflates by 1.2x at most,
 *     and only the first sample of a spell.
 * TCP's slow start errs the other way on short transfers; a long spell is right for both.
 * Until a spell has lasted that long the bandwidth is unknown (0), and the prefetcher
 * uses its floors.
 */
#include "aheadfs/link.h"

#include <stdbool.h>
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

static bool link_spell_long(const struct link *link)
{
	return link->spell_bytes > 0 && link->spell_end_us - link->spell_start_us >= LINK_SPELL_US;
}

/* The estimate with the spell so far counted in, if it is long enough. Locked. */
static double link_bandwidth_now(const struct link *link)
{
	if (!link_spell_long(link))
		return link->bandwidth;
	return ewma(link->bandwidth,
		    link->spell_bytes * 1e6 / (double)(link->spell_end_us - link->spell_start_us));
}

/* The spell so far is long enough: one sample, and the next starts where it ends. Locked. */
static void link_sample(struct link *link)
{
	link->bandwidth = link_bandwidth_now(link);
	link->floor_us = link->spell_end_us;
	link->spell_start_us = link->spell_end_us;
	link->spell_bytes = 0;
}

/*
 * Add one body, [start, end) with `bytes`, to the spell. A spell is sampled only once a
 * body ends after it, so transfers that finish together all count in the same sample.
 * Locked.
 */
static void link_add_body(struct link *link, uint64_t start, uint64_t end, double bytes)
{
	if (end > link->spell_end_us && link_spell_long(link))
		link_sample(link);
	if (start < link->floor_us) {
		/* Partly measured already: keep the share of its bytes that came after. */
		if (end <= link->floor_us)
			return;
		bytes *= (double)(end - link->floor_us) / (double)(end - start);
		start = link->floor_us;
	}
	if (link->spell_bytes == 0 || start > link->spell_end_us) {
		/* The link was idle in between: a new spell (and any credit is spent anew). */
		link->spell_start_us = start;
		link->spell_end_us = end;
		link->spell_bytes = bytes;
	} else {
		link->spell_start_us = MIN(link->spell_start_us, start);
		link->spell_end_us = MAX(link->spell_end_us, end);
		link->spell_bytes += bytes;
	}
}

void link_observe(struct link *link, uint64_t now_us, uint64_t bytes, uint64_t ttfb_us,
		  uint64_t elapsed_us)
{
	uint64_t body_us = elapsed_us > ttfb_us ? elapsed_us - ttfb_us : 0;

	g_mutex_lock(&link->lock);
	link->rtt_us = ewma(link->rtt_us, (double)ttfb_us);
	if (bytes > 0 && body_us > 0 && now_us >= body_us)
		link_add_body(link, now_us - body_us, now_us, (double)bytes);
	g_mutex_unlock(&link->lock);
}

void link_get(struct link *link, double *rtt_us, double *bandwidth)
{
	g_mutex_lock(&link->lock);
	*rtt_us = link->rtt_us;
	*bandwidth = link_bandwidth_now(link);
	g_mutex_unlock(&link->lock);
}

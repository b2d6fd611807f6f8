/*
 * log: stderr in the foreground, syslog once daemonized, and a rate limiter for errors
 * that repeat while the origin is unreachable.
 */
#include "aheadfs/log.h"

#include <stdarg.h>
#include <stdio.h>

static bool log_to_syslog;
static bool log_debug_enabled;

void log_init(bool use_syslog, bool debug)
{
	log_to_syslog = use_syslog;
	log_debug_enabled = debug;
	if (use_syslog)
		openlog("aheadfs", LOG_PID, LOG_DAEMON);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	if (priority == LOG_DEBUG && !log_debug_enabled)
		return;
	va_start(ap, fmt);
	if (log_to_syslog) {
		vsyslog(priority, fmt, ap);
	} else {
		char line[1024];

		vsnprintf(line, sizeof(line), fmt, ap);
		/* One fprintf per line so lines from several threads do not interleave. */
		fprintf(stderr, "aheadfs: %s\n", line);
	}
	va_end(ap);
}

bool log_ratelimit_allow(struct log_ratelimit *rl)
{
	gint64 now = g_get_monotonic_time();
	int dropped = 0;
	bool allow;

	g_mutex_lock(&rl->lock);
	if (now - rl->window_start_us >= rl->interval_us) {
		dropped = rl->suppressed;
		rl->window_start_us = now;
		rl->used = 0;
		rl->suppressed = 0;
	}
	allow = rl->used < rl->burst;
	if (allow)
		rl->used++;
	else
		rl->suppressed++;
	g_mutex_unlock(&rl->lock);

	if (dropped > 0)
		log_msg(LOG_WARNING, "%d similar messages suppressed", dropped);
	return allow;
}

/*
 * log: one place where aheadfs talks to the operator.
 *
 * In the foreground (-f) messages go to stderr; once daemonized they go to syslog.
 * Errors that repeat at runtime (an origin that is down) go through a rate limiter so
 * a dead link produces a few lines, not one per read.
 */
#ifndef AHEADFS_LOG_H
#define AHEADFS_LOG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

void log_init(bool use_syslog, bool debug);
void log_msg(int priority, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * A token bucket for one kind of message: at most `burst` messages, then one per
 * `interval_us`. Callers keep one per message site (static is fine: it is atomic).
 */
struct log_ratelimit {
	gint64 interval_us;
	int burst;
	gint64 window_start_us; /* protected by lock */
	int used;		/* protected by lock */
	int suppressed;		/* protected by lock */
	GMutex lock;
};

#define LOG_RATELIMIT_INIT(interval_s, burst_) {.interval_us = (interval_s) * G_USEC_PER_SEC, .burst = (burst_)}

/*
 * True when the caller may log now. When earlier messages were dropped, the next
 * allowed one is preceded by a line saying how many.
 */
bool log_ratelimit_allow(struct log_ratelimit *rl);

#endif

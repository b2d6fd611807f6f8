/*
 * origin: everything that talks HTTP(S) to the server holding the images.
 *
 * One thread owns a curl multi handle (so connections are reused across requests and
 * images) and runs at most `connections` transfers at a time. Other threads hand it
 * requests through origin_submit(); it calls each request's done() from its own thread
 * when the request has succeeded, or failed after its retries.
 *
 * Every range answer is verified before its bytes are handed out: status 206, a
 * Content-Range naming exactly the asked range and the expected total size, the exact
 * byte count, and the validator. Requests carry If-Range, so a changed remote answers
 * 200 instead of mixing versions; that and any mismatch fail the request (never retried,
 * never served).
 */
#ifndef AHEADFS_ORIGIN_H
#define AHEADFS_ORIGIN_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct s3_signing;

struct link;

struct origin_config {
	unsigned connections; /* parallel transfers (and connections) to the origin */
	unsigned timeout_s;   /* connect timeout, and longest stall of a transfer */
	unsigned retries;     /* extra attempts after a transient failure */
	char **headers;       /* extra request headers "Name: value", NULL-terminated */
	char *cafile;	      /* CA bundle for https, or NULL for the system's */
	bool insecure;	      /* skip TLS certificate checks */
	/*
	 * Sign every request with AWS Signature V4, or NULL. Borrowed, not copied: it must
	 * outlive the origin (main.c's options do).
	 */
	const struct s3_signing *s3;
	/* Told of every body as its bytes arrive (link.h), or NULL. Borrowed likewise. */
	struct link *link;
};

/* What a probe learns about a remote image. Owned by the caller; origin_info_clear frees. */
struct origin_info {
	uint64_t size;
	char *etag;	     /* strong ETag, or NULL */
	char *last_modified; /* Last-Modified, or NULL */
	char *validator;     /* etag when there is one, else last_modified, else "" */
	bool head_refused;   /* HEAD failed (or was skipped: presigned) and a one-byte GET answered */
};

void origin_info_clear(struct origin_info *info);

#define ORIGIN_ERROR (origin_error_quark())
GQuark origin_error_quark(void);

enum origin_error_code {
	ORIGIN_ERROR_UNREACHABLE, /* DNS, connect, TLS, timeout */
	ORIGIN_ERROR_HTTP,	  /* an HTTP error status */
	ORIGIN_ERROR_NO_RANGES,	  /* the server ignores Range */
	ORIGIN_ERROR_PROTOCOL,	  /* an answer that makes no sense (no size, bad Content-Range) */
};

/*
 * Find the size, range support and validator of `url` with a HEAD (a one-byte GET when
 * HEAD is refused). An answer that says "later" (origin_status_transient) is asked again
 * up to cfg->retries times, with origin_backoff_us() between. Blocking; used at mount
 * time, before the origin thread runs.
 */
gboolean origin_probe(const struct origin_config *cfg, const char *url, struct origin_info *info,
		      GError **error);

/* Whether an HTTP status says the same request may succeed later: 5xx (but 501 Not
 * Implemented and 505), 429, 408. */
bool origin_status_transient(long status);

/* The wait before retrying after failed attempt number @attempt (from 1): 100 ms,
 * doubling up to 2 s, with jitter so that many failed requests do not return together. */
gint64 origin_backoff_us(unsigned attempt);

enum origin_priority {
	ORIGIN_PRIORITY_DEMAND,	  /* a reader is waiting */
	ORIGIN_PRIORITY_PREFETCH, /* nobody waits yet */
	ORIGIN_N_PRIORITIES,
};

struct origin_request;
typedef void (*origin_done_fn)(struct origin_request *req, int err, const char *reason);
/*
 * Where body bytes go when not into `buf`: called on the origin thread, in order, with
 * bytes [at, at + len) of the range as libcurl hands them over (16 KiB at most), only
 * after the answer's status, Content-Range and ETag were verified. A retry starts again
 * at 0. Returns 0, or -errno to fail the request.
 */
typedef int (*origin_sink_fn)(struct origin_request *req, uint64_t at, const void *data,
			      size_t len);

/*
 * One range GET. The caller fills the public part and keeps the request (and the
 * strings it points to) alive until done() has been called; origin writes only `buf`
 * and the result fields.
 */
struct origin_request {
	const char *url;
	const struct origin_info *info; /* validator and total size to check against */
	uint64_t offset;
	uint64_t length;
	void *buf;	     /* `length` bytes, filled on success; or NULL with sink */
	origin_sink_fn sink; /* when not NULL, receives the bytes instead of buf */
	enum origin_priority priority;
	/*
	 * Called on the origin thread, with no origin lock held, exactly once: err is 0,
	 * -EIO (failed after the retries), -ESTALE (the remote changed: never retried) or
	 * -ECANCELED (unmounting); `reason` says why in a few words (valid during the call).
	 */
	origin_done_fn done;
	void *opaque;

	/* Results, valid in done(). */
	unsigned attempts;
	gint64 ttfb_us;	    /* start of the last attempt to its first byte: the RTT */
	gint64 elapsed_us;  /* submit to done, queueing and retries included */
};

struct origin_counters {
	uint64_t requests;  /* range GETs sent, retries included */
	uint64_t bytes;	    /* body bytes received */
	uint64_t retries;   /* attempts after a transient failure */
	uint64_t connects;  /* connections opened: the rest of the requests reused one */
	uint64_t failures;  /* requests that failed for good */
	uint64_t queued;    /* waiting for a connection */
	uint64_t in_flight; /* transfers running */
	uint64_t demand;    /* demand requests queued or running */
};

struct origin;

struct origin *origin_new(const struct origin_config *cfg, GError **error);
/* Start the I/O thread. Call after fork (daemonizing), never before. */
void origin_start(struct origin *origin);
/* Stop the thread; requests still queued fail with -ECANCELED. Then free. */
void origin_free(struct origin *origin);

void origin_submit(struct origin *origin, struct origin_request *req);
/*
 * A reader now waits for `req`: if it is still queued as a prefetch, it becomes demand
 * and goes ahead of every queued prefetch. No-op when it has started or finished; `req`
 * must stay valid during the call.
 */
void origin_promote(struct origin *origin, struct origin_request *req);
void origin_get_counters(struct origin *origin, struct origin_counters *out);
/* How many prefetches may run at once: the connections less those kept for demand. */
unsigned origin_prefetch_slots(const struct origin *origin);

/* The parsed Content-Range "bytes A-B/T" (T may be "*": total = UINT64_MAX). Pure. */
bool origin_parse_content_range(const char *value, uint64_t *first, uint64_t *last,
				uint64_t *total);

#endif

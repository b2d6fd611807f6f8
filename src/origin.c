/*
 * origin: the transfer thread. One curl multi handle, owned by one thread; the rest of
 * aheadfs talks to it through a locked queue and curl_multi_wakeup().
 *
 *   submit (any thread) ──▶ queue[priority] ──▶ thread: start while slots free
 *                                                  │
 *   done() ◀── verify (status, Content-Range, ◀── curl_multi_info_read
 *              length, validator) or retry later
 *
 * Demand requests always start before prefetch requests, and prefetches may only use
 * prefetch_slots of the connections, so a demand miss never waits behind them; a failed attempt that may
 * succeed later (connection refused, timeout, 5xx, 429) is retried with exponential
 * backoff, `retries` times. Answers that prove the remote changed are never retried.
 */
#include "aheadfs/origin.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <string.h>

#include "aheadfs/http.h"
#include "aheadfs/link.h"
#include "aheadfs/log.h"

#define BACKOFF_FIRST_US (100 * 1000)
#define BACKOFF_MAX_US (2 * 1000 * 1000)
#define POLL_MAX_MS 1000
/* The longest body of a "later" answer (an S3 <Error> is ~300 bytes) read and dropped. */
#define LATER_BODY_MAX (64 * 1024)
/*
 * libcurl mallocs its receive buffer (CURLOPT_BUFFERSIZE, 512 KiB) for every transfer
 * and frees it when the transfer is done. With glibc's defaults that memory goes back
 * to the kernel (munmap, or MADV_DONTNEED when a thread arena shrinks) and every
 * transfer faults in and zeroes 128 fresh pages: measured, clear_page under recv() was
 * 5% of aheadfs's CPU in a cold sequential read. Fixed thresholds keep it in the heap.
 */
#define MALLOC_MMAP_THRESHOLD (1024 * 1024)
#define MALLOC_TRIM_THRESHOLD (8 * 1024 * 1024)

/* One attempt of one request; lives on the origin thread only. */
struct transfer {
	struct origin_request *req;
	CURL *easy;
	struct curl_slist *headers;
	struct http_response resp;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t received; /* accepted bytes */
	struct link *link; /* the origin's (or NULL), told of this attempt's body */
	bool receiving;	   /* the link heard of its first byte and not yet of its end */
	bool checked;	/* the headers were verified at the first body byte */
	bool rejected;	/* ... and found wrong: no byte was accepted */
	uint64_t dropped; /* body bytes of a "later" answer, read to keep the connection */
	bool overflow;
	int sink_err;
	gint64 submitted_us;
	gint64 started_us;    /* this attempt went to the network */
	gint64 not_before_us; /* backoff: do not start before */
};

struct origin {
	struct origin_config cfg;
	CURLM *multi;
	GThread *thread;

	GMutex lock; /* protects queue, stopping; never held while calling curl or done() */
	GQueue queue[ORIGIN_N_PRIORITIES]; /* of struct transfer, waiting to start */
	bool stopping;

	/* Owned by the origin thread (active is written there only, read atomically). */
	unsigned active;
	unsigned active_prefetch;
	unsigned prefetch_slots; /* at most this many prefetches run at once */
	GPtrArray *running;   /* transfers added to the multi handle */
	GPtrArray *idle_easy; /* reusable handles: keeps TLS session and DNS caches warm */

	/* Counters, updated with atomics. */
	uint64_t n_requests, n_bytes, n_retries, n_failures, n_queued, n_connects;
	uint64_t n_demand; /* demand requests submitted and not finished */
};

static void config_copy(struct origin_config *dst, const struct origin_config *src)
{
	*dst = *src;
	dst->headers = g_strdupv(src->headers);
	dst->cafile = g_strdup(src->cafile);
}

struct origin *origin_new(const struct origin_config *cfg, GError **error)
{
	struct origin *o = g_new0(struct origin, 1);

	mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
	config_copy(&o->cfg, cfg);
	if (o->cfg.connections == 0)
		o->cfg.connections = 1;
	g_mutex_init(&o->lock);
	for (int p = 0; p < ORIGIN_N_PRIORITIES; p++)
		g_queue_init(&o->queue[p]);
	o->idle_easy = g_ptr_array_new();
	o->running = g_ptr_array_new();
	o->multi = curl_multi_init();
	if (!o->multi) {
		g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_UNREACHABLE, "curl_multi_init failed");
		origin_free(o);
		return NULL;
	}
	/* A quarter of the connections (at least one) stay free for demand misses. */
	o->prefetch_slots = o->cfg.connections > 1
				    ? o->cfg.connections - MAX(1, o->cfg.connections / 4)
				    : 1;
	curl_multi_setopt(o->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->cfg.connections);
	curl_multi_setopt(o->multi, CURLMOPT_MAXCONNECTS, (long)o->cfg.connections * 2);
	return o;
}

void origin_submit(struct origin *o, struct origin_request *req)
{
	struct transfer *t = g_new0(struct transfer, 1);

	t->req = req;
	t->submitted_us = g_get_monotonic_time();
	req->attempts = 0;
	__atomic_fetch_add(&o->n_queued, 1, __ATOMIC_RELAXED);
	if (req->priority == ORIGIN_PRIORITY_DEMAND)
		__atomic_fetch_add(&o->n_demand, 1, __ATOMIC_RELAXED);
	g_mutex_lock(&o->lock);
	g_queue_push_tail(&o->queue[req->priority], t);
	g_mutex_unlock(&o->lock);
	curl_multi_wakeup(o->multi);
}

/*
 * Check the answer's headers against the request: Content-Range names exactly the asked
 * range of an image of the expected size, and the ETag (when sent) is the one probed.
 * Returns 0, -ESTALE (the remote changed) or -EIO, with `reason` filled.
 */
static int transfer_check_headers(const struct transfer *t, char *reason, size_t len)
{
	const struct origin_request *req = t->req;
	uint64_t first, last, total;

	if (!origin_parse_content_range(t->resp.content_range, &first, &last, &total) ||
	    first != req->offset || last != req->offset + req->length - 1 ||
	    total != req->info->size) {
		g_snprintf(reason, len, "unexpected Content-Range \"%s\"",
			   t->resp.content_range ? t->resp.content_range : "");
		return -EIO;
	}
	if (req->info->etag && t->resp.etag && strcmp(req->info->etag, t->resp.etag) != 0) {
		g_snprintf(reason, len, "remote image changed (ETag %s, expected %s)", t->resp.etag,
			   req->info->etag);
		return -ESTALE;
	}
	return 0;
}

void origin_promote(struct origin *o, struct origin_request *req)
{
	bool moved = false;

	g_mutex_lock(&o->lock);
	for (GList *l = o->queue[ORIGIN_PRIORITY_PREFETCH].head; l; l = l->next) {
		struct transfer *t = l->data;

		if (t->req != req)
			continue;
		g_queue_delete_link(&o->queue[ORIGIN_PRIORITY_PREFETCH], l);
		req->priority = ORIGIN_PRIORITY_DEMAND;
		g_queue_push_tail(&o->queue[ORIGIN_PRIORITY_DEMAND], t);
		moved = true;
		break;
	}
	g_mutex_unlock(&o->lock);
	if (moved) {
		__atomic_fetch_add(&o->n_demand, 1, __ATOMIC_RELAXED);
		curl_multi_wakeup(o->multi);
	}
}

/* The link hears of a body as it arrives: its first byte, then every chunk accepted. */
static void transfer_tell_link(struct transfer *t, size_t len)
{
	uint64_t now;

	if (!t->link)
		return;
	now = (uint64_t)g_get_monotonic_time();
	if (!t->receiving) {
		t->receiving = true;
		link_rtt(t->link, (uint64_t)t->req->ttfb_us);
		link_body_begin(t->link, now);
	}
	link_body_bytes(t->link, now, len);
}

static size_t transfer_body_cb(char *data, size_t size, size_t n, void *opaque)
{
	struct transfer *t = opaque;
	struct origin_request *req = t->req;
	size_t len = size * n;

	if (!t->checked) {
		char reason[256];

		/* Anything but a verified 206 is an error whose body we do not want. */
		t->checked = true;
		t->rejected = t->resp.status != 206 || transfer_check_headers(t, reason, sizeof(reason));
		req->ttfb_us = g_get_monotonic_time() - t->started_us;
	}
	if (t->rejected) {
		/*
		 * A "later" answer's short body is read and dropped so that its connection can
		 * carry the retry: aborting closes it, and a store that throttles (S3's 503
		 * SlowDown) would see a new connection, and for https a new handshake, per retry.
		 */
		if (origin_status_transient(t->resp.status) && t->dropped + len <= LATER_BODY_MAX) {
			t->dropped += len;
			return len;
		}
		return 0;
	}
	if (t->received + len > req->length) {
		t->overflow = true;
		return 0;
	}
	if (req->sink) {
		/* Straight from libcurl's buffer: the sink copies it once, where it belongs. */
		t->sink_err = req->sink(req, t->received, data, len);
		if (t->sink_err)
			return 0;
	} else {
		memcpy((char *)req->buf + t->received, data, len);
	}
	t->received += len;
	transfer_tell_link(t, len);
	return len;
}

static void transfer_start(struct origin *o, struct transfer *t)
{
	struct origin_request *req = t->req;
	const char *if_range = req->info->etag ? req->info->etag : req->info->last_modified;
	char range[64];

	t->easy = o->idle_easy->len ? g_ptr_array_steal_index_fast(o->idle_easy, o->idle_easy->len - 1)
				    : curl_easy_init();
	curl_easy_reset(t->easy);
	http_configure(t->easy, &o->cfg, &t->resp, t->errbuf);
	t->headers = http_request_headers(&o->cfg, if_range);
	g_snprintf(range, sizeof(range), "%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, req->offset,
		   req->offset + req->length - 1);
	curl_easy_setopt(t->easy, CURLOPT_URL, req->url);
	curl_easy_setopt(t->easy, CURLOPT_RANGE, range);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, transfer_body_cb);
	curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	t->received = 0;
	t->link = o->cfg.link;
	t->receiving = false;
	t->checked = false;
	t->rejected = false;
	t->dropped = 0;
	t->overflow = false;
	t->sink_err = 0;
	req->attempts++;
	t->started_us = g_get_monotonic_time();
	__atomic_fetch_add(&o->n_requests, 1, __ATOMIC_RELAXED);
	curl_multi_add_handle(o->multi, t->easy);
	g_ptr_array_add(o->running, t);
	if (req->priority == ORIGIN_PRIORITY_PREFETCH)
		o->active_prefetch++;
	__atomic_fetch_add(&o->active, 1, __ATOMIC_RELAXED);
}

/* Release the attempt's curl state, keeping the easy handle for the next transfer. */
static void transfer_detach(struct origin *o, struct transfer *t)
{
	curl_multi_remove_handle(o->multi, t->easy);
	g_ptr_array_remove_fast(o->running, t);
	if (t->receiving) {
		link_body_end(t->link, (uint64_t)g_get_monotonic_time());
		t->receiving = false;
	}
	if (t->req->priority == ORIGIN_PRIORITY_PREFETCH)
		o->active_prefetch--;
	g_ptr_array_add(o->idle_easy, t->easy);
	t->easy = NULL;
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	__atomic_fetch_sub(&o->active, 1, __ATOMIC_RELAXED);
}

static void transfer_finish(struct origin *o, struct transfer *t, int err, const char *reason)
{
	struct origin_request *req = t->req;

	http_response_clear(&t->resp);
	req->elapsed_us = g_get_monotonic_time() - t->submitted_us;
	if (err)
		__atomic_fetch_add(&o->n_failures, 1, __ATOMIC_RELAXED);
	if (req->priority == ORIGIN_PRIORITY_DEMAND)
		__atomic_fetch_sub(&o->n_demand, 1, __ATOMIC_RELAXED);
	g_free(t);
	req->done(req, err, reason);
}

/*
 * Decide what a finished attempt means. Returns 0 (bytes verified), -EAGAIN (transient:
 * may be retried), -ESTALE (the remote changed) or -EIO (final); `reason` says why.
 */
static int transfer_verdict(struct transfer *t, CURLcode result, char *reason, size_t len)
{
	const struct origin_request *req = t->req;
	long status = t->resp.status;
	int err;

	if (t->sink_err) {
		g_snprintf(reason, len, "storing the answer failed: %s", g_strerror(-t->sink_err));
		return -EIO;
	}
	if (t->overflow) {
		g_snprintf(reason, len, "server sent more bytes than the range asked for");
		return -EIO;
	}
	if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && t->rejected)) {
		g_snprintf(reason, len, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(result));
		return -EAGAIN;
	}
	if (status == 200 || status == 412 || status == 416) {
		g_snprintf(reason, len, "remote image changed (HTTP %ld to a conditional range)",
			   status);
		return -ESTALE;
	}
	if (origin_status_transient(status)) {
		g_snprintf(reason, len, "HTTP %ld", status);
		return -EAGAIN;
	}
	if (status != 206) {
		g_snprintf(reason, len, "HTTP %ld", status);
		return -EIO;
	}
	err = transfer_check_headers(t, reason, len);
	if (err)
		return err;
	if (t->received != req->length) {
		g_snprintf(reason, len, "short answer: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			   " bytes", t->received, req->length);
		return -EAGAIN;
	}
	return 0;
}

bool origin_status_transient(long status)
{
	/* 501 and 505: the server does not do what was asked, and never will. */
	return (status >= 500 && status != 501 && status != 505) || status == 429 || status == 408;
}

gint64 origin_backoff_us(unsigned attempt)
{
	gint64 d = BACKOFF_FIRST_US << (attempt > 5 ? 5 : attempt - 1);

	d = d > BACKOFF_MAX_US ? BACKOFF_MAX_US : d;
	/* Jitter so many failed requests do not come back in lockstep. */
	return d / 2 + g_random_int_range(0, (gint32)(d / 2) + 1);
}

static void transfer_done(struct origin *o, struct transfer *t, CURLcode result)
{
	char reason[256];
	int verdict = transfer_verdict(t, result, reason, sizeof(reason));
	long connects = 0;

	/* The connections this attempt had to open (0: it reused one); read while the
	 * handle is still the transfer's. */
	if (curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		__atomic_fetch_add(&o->n_connects, (uint64_t)connects, __ATOMIC_RELAXED);
	transfer_detach(o, t);
	if (verdict == 0) {
		__atomic_fetch_add(&o->n_bytes, t->received, __ATOMIC_RELAXED);
		transfer_finish(o, t, 0, NULL);
		return;
	}
	if (verdict == -EAGAIN && t->req->attempts <= o->cfg.retries) {
		__atomic_fetch_add(&o->n_retries, 1, __ATOMIC_RELAXED);
		log_debug("retrying %s at %" G_GUINT64_FORMAT ": %s", t->req->url, t->req->offset,
			  reason);
		http_response_clear(&t->resp);
		t->not_before_us = g_get_monotonic_time() + origin_backoff_us(t->req->attempts);
		g_mutex_lock(&o->lock);
		g_queue_push_head(&o->queue[t->req->priority], t);
		g_mutex_unlock(&o->lock);
		__atomic_fetch_add(&o->n_queued, 1, __ATOMIC_RELAXED);
		return;
	}
	transfer_finish(o, t, verdict == -EAGAIN ? -EIO : verdict, reason);
}

/* Next transfer allowed to start now, in priority order. Called with o->lock held. */
static struct transfer *next_ready_locked(struct origin *o, gint64 now, gint64 *next_due)
{
	for (int p = 0; p < ORIGIN_N_PRIORITIES; p++) {
		if (p == ORIGIN_PRIORITY_PREFETCH && o->active_prefetch >= o->prefetch_slots)
			break;
		for (GList *l = o->queue[p].head; l; l = l->next) {
			struct transfer *t = l->data;

			if (t->not_before_us <= now) {
				g_queue_delete_link(&o->queue[p], l);
				return t;
			}
			if (*next_due == 0 || t->not_before_us < *next_due)
				*next_due = t->not_before_us;
		}
	}
	return NULL;
}

/* Start what may start; returns how long the thread may sleep, in ms. */
static int origin_start_ready(struct origin *o)
{
	gint64 now = g_get_monotonic_time(), next_due = 0;
	int wait_ms = POLL_MAX_MS;

	g_mutex_lock(&o->lock);
	while (o->active < o->cfg.connections) {
		struct transfer *t = next_ready_locked(o, now, &next_due);

		if (!t)
			break;
		__atomic_fetch_sub(&o->n_queued, 1, __ATOMIC_RELAXED);
		g_mutex_unlock(&o->lock);
		transfer_start(o, t);
		g_mutex_lock(&o->lock);
	}
	g_mutex_unlock(&o->lock);
	if (next_due && (next_due - now) / 1000 < wait_ms)
		wait_ms = (int)((next_due - now) / 1000) + 1;
	return wait_ms;
}

static void origin_reap(struct origin *o)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(o->multi, &left))) {
		struct transfer *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		transfer_done(o, t, msg->data.result);
	}
}

/* At stop: nobody waits any more (FUSE has gone); fail what is left, started or not. */
static void origin_cancel_all(struct origin *o)
{
	while (o->running->len > 0) {
		struct transfer *t = o->running->pdata[0];

		transfer_detach(o, t);
		transfer_finish(o, t, -ECANCELED, "unmounting");
	}
	for (int p = 0; p < ORIGIN_N_PRIORITIES; p++) {
		struct transfer *t;

		while ((t = g_queue_pop_head(&o->queue[p])))
			transfer_finish(o, t, -ECANCELED, "unmounting");
	}
}

static gpointer origin_thread_main(gpointer data)
{
	struct origin *o = data;

	for (;;) {
		int still_running = 0, wait_ms;
		bool stop;

		g_mutex_lock(&o->lock);
		stop = o->stopping;
		g_mutex_unlock(&o->lock);
		if (stop)
			break;
		wait_ms = origin_start_ready(o);
		curl_multi_perform(o->multi, &still_running);
		origin_reap(o);
		curl_multi_poll(o->multi, NULL, 0, wait_ms, NULL);
	}
	origin_cancel_all(o);
	return NULL;
}

void origin_start(struct origin *o)
{
	o->thread = g_thread_new("aheadfs-origin", origin_thread_main, o);
}

unsigned origin_prefetch_slots(const struct origin *o)
{
	return o->prefetch_slots;
}

void origin_free(struct origin *o)
{
	if (!o)
		return;
	if (o->thread) {
		g_mutex_lock(&o->lock);
		o->stopping = true;
		g_mutex_unlock(&o->lock);
		curl_multi_wakeup(o->multi);
		g_thread_join(o->thread);
	} else {
		origin_cancel_all(o);
	}
	for (guint i = 0; i < o->idle_easy->len; i++)
		curl_easy_cleanup(o->idle_easy->pdata[i]);
	g_ptr_array_free(o->idle_easy, TRUE);
	g_ptr_array_free(o->running, TRUE);
	if (o->multi)
		curl_multi_cleanup(o->multi);
	g_mutex_clear(&o->lock);
	g_strfreev(o->cfg.headers);
	g_free(o->cfg.cafile);
	g_free(o);
}

void origin_get_counters(struct origin *o, struct origin_counters *out)
{
	out->requests = __atomic_load_n(&o->n_requests, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&o->n_bytes, __ATOMIC_RELAXED);
	out->retries = __atomic_load_n(&o->n_retries, __ATOMIC_RELAXED);
	out->connects = __atomic_load_n(&o->n_connects, __ATOMIC_RELAXED);
	out->failures = __atomic_load_n(&o->n_failures, __ATOMIC_RELAXED);
	out->queued = __atomic_load_n(&o->n_queued, __ATOMIC_RELAXED);
	out->in_flight = __atomic_load_n(&o->active, __ATOMIC_RELAXED);
	out->demand = __atomic_load_n(&o->n_demand, __ATOMIC_RELAXED);
}

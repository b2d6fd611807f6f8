/*
 * image: the read path of one remote image. See the header for the block states.
 *
 * A read first checks the block map without any lock: when every block is present and
 * none is held in memory (the common case once warm) it returns at once with the cache
 * file as the source. When every block has landed in a fetch's buffer (or is cached) it
 * is answered from memory, a hit. Otherwise it takes img->lock, joins the fetches already
 * in flight for its blocks, starts one range request per run of absent blocks, drops the
 * lock, and waits.
 *
 * Readahead: a reader that streams gets the blocks after it requested before it asks,
 * in requests of readahead_request_blocks() at prefetch priority; readahead.c holds the
 * policy (shared with `aheadfsctl replay`). Misses on the way still go out as demand,
 * which the origin starts before any prefetch.
 */
#include "aheadfs/image.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "aheadfs/evict.h"
#include "aheadfs/link.h"
#include "aheadfs/log.h"
#include "aheadfs/range.h"
#include "aheadfs/readahead.h"
#include "aheadfs/s3.h"

/* Prefetches the model chose are requested in pieces of at most this size. */
#define PREFETCH_REQUEST_BYTES (UINT64_C(2) << 20)

/*
 * One range request covering blocks [first, first + count). Its bytes arrive in req.buf
 * (pooled memory); the image's writer thread copies them to the cache file.
 *
 * Blocks land as they arrive: once a block's last byte is in the buffer, readers that
 * wanted only blocks up to it are answered from the buffer, without waiting for the rest
 * of the request (a reader behind an 8 MiB readahead at 50 Mbit/s would otherwise wait
 * 1.3 s for a block that came in the first 10 ms) or for the cache write. Once a block is
 * in the cache file it is marked present and leaves the inflight table.
 *
 * Once written, a readahead fetch is retained (img->retained, RETAIN_BYTES) with its
 * blocks still in the inflight table and set in img->resident, so the stream that comes
 * for them is answered from memory too; once readers have had all of it (the stream has
 * passed), or it is the oldest past RETAIN_BYTES, its blocks leave the table and the
 * cache file serves them, and its buffer goes back to the pool. An eviction that wants a
 * retained block takes it out.
 *
 * Why: the origin thread used to write each run to the cache file through the page cache,
 * and on a cold sequential read that write (a copy into new page-cache pages, which on a
 * VM costs a host fault each) was a third of all CPU time and the serial bottleneck.
 * Now the origin thread only receives into reused buffers, and the writer writes what
 * streams past with O_DIRECT (no page cache: see fetch_streams_past), so no reader of a
 * stream needs the page cache to see fresh blocks. Cold 2 GiB from nginx (readpath.sh):
 * 793-970 MB/s with -o direct_io, 320-507 without, against 199-512 and 163-354 before.
 * O_DIRECT alone, on the origin thread and without retention, was slower (the thread
 * waited for the disk, and late readers read from it): both halves are needed.
 */
struct fetch {
	struct origin_request req;
	struct image *img;
	uint64_t first, count;
	uint64_t landed;  /* blocks [first, first + landed) are in req.buf; under img->lock,
			     written by the origin thread only */
	uint64_t written; /* ... and [first, first + written) in the cache file; writer only */
	uint64_t queued;  /* ... and [first, first + queued) handed to the writer; under
			     img->lock, written by the origin thread only */
	int refs;    /* waiters, queued writes and the origin's; protected by img->lock */
	bool done;   /* protected by img->lock */
	int err;     /* valid once done */
	bool cached; /* the cache file took every write so far; writer only */
	bool retained; /* in img->retained; under lock */
	gint64 retained_us; /* when it was */
	uint64_t served; /* bytes of req.buf given to readers; under lock */
	int source;  /* FETCH_DEMAND, or the IMAGE_SOURCE_* that fetched ahead */
	unsigned waiting; /* readers in image_wait for it; under img->lock */
	uint64_t wake_at; /* landed blocks enough for at least one of them; under img->lock */
};

#define BUF_CLASSES 40
#define BUF_MIN_SHIFT 16
/* Idle fetch buffers kept for reuse: fresh memory costs a fault per page. */
#define POOL_MAX_BYTES (UINT64_C(64) << 20)
/*
 * Buffers of this size and more are aligned to it and asked to be backed by transparent
 * huge pages (MADV_HUGEPAGE: under THP's "madvise" setting, this machine's kernel
 * default, only those who ask get them; under "always" the alignment is what lets a
 * buffer have them). The pool cannot help a cold stream's first buffers, and on a VM a
 * new 4 KiB page costs a fault in the guest and another in the host: the first 256 MiB
 * read from a mount faulted in ~25,000 pages, which took aheadfs's CPU for it to
 * 0.7-0.9 s (0.3 s once the pool is warm). In 2 MiB pages: 3,000-8,000 faults,
 * 0.3-0.55 s (cold radosgw reads, A/B in the commit).
 */
#define HUGE_BUF_BYTES ((size_t)2 << 20)
/*
 * Bytes handed to the writer and not written yet that the origin thread may be ahead
 * by before it waits. (Landed bytes not handed over yet are under WRITE_RUN_BYTES per
 * fetch running.)
 */
#define WRITE_BACKLOG_BYTES (UINT64_C(32) << 20)
/*
 * The writer gets a fetch's landed blocks in runs of at least this much (or the rest of
 * the fetch): one write per 64 KiB block made O_DIRECT writes of 64-256 KiB, at which
 * this machine's disk takes 317-568 MB/s against 781 MB/s at 1 MiB (dd/fio, queue depth
 * 1), and woke the writer for every block.
 */
#define WRITE_RUN_BYTES (UINT64_C(1) << 20)
/*
 * Fetches kept after they are written, for readers that come later: twice readahead's
 * largest window (readahead.c, 32 MiB), so a stream finds what was fetched ahead of it
 * in memory; with 32 MiB, half as fast (readpath.sh). Let go after RETAIN_IDLE_US.
 */
#define RETAIN_BYTES (UINT64_C(64) << 20)
#define RETAIN_IDLE_US (2 * G_USEC_PER_SEC)

#define FETCH_DEMAND (-1)
#define FETCH_EVICT (-2) /* not a fetch: blocks being evicted; waiters plan again */

struct image {
	char *name;
	char *url;	 /* what is requested */
	char *shown_url; /* what is shown: a presigned URL's secrets redacted */
	struct origin_info info;
	struct store *store;
	struct origin *origin;
	unsigned shift;
	uint64_t max_request_blocks;
	bool readahead;

	/*
	 * lock protects inflight (block -> struct fetch *), the refs/done fields of every
	 * fetch, and changed. Never held while calling the origin or doing file I/O.
	 * cond is broadcast when a fetch completes, or lands what one of its readers waits
	 * for (fetch_wake_locked).
	 */
	GMutex lock;
	GCond cond;
	GHashTable *inflight;
	bool changed; /* the remote changed under the mount: no more fetches */
	struct readahead ra; /* its window is read without the lock by the hit path */
	uint64_t fill_cursor; /* background fill has looked at every block before this */

	/* Blocks fetched ahead by each source and not read yet (atomic bitmaps). */
	struct blockmap *ahead[IMAGE_N_SOURCES];
	struct blockmap *referenced; /* read since the eviction clock last passed */
	uint64_t clock_hand;	     /* eviction only (one evictor: the learner thread) */
	/*
	 * Readers in flight per epoch: eviction clears bits, flips the epoch, and waits for
	 * the old epoch's readers (who may have seen the bits) before punching holes.
	 */
	uint64_t readers[2];
	unsigned epoch;
	struct link *link;
	image_access_fn on_access;
	void *on_access_opaque;

	/* Idle fetch buffers by size class (log2 of the capacity); under lock. */
	GPtrArray *buf_pool[BUF_CLASSES];
	uint64_t pool_bytes;
	gint64 pool_used_us; /* when a fetch last took a buffer */

	/* The writer: fetches with landed blocks to write (one reference each). */
	GThread *writer;
	GAsyncQueue *writes;
	uint64_t write_backlog; /* bytes handed to the writer, not yet written; under lock */
	GQueue retained;	/* written fetches kept for their readers; under lock */
	uint64_t retained_bytes;
	struct blockmap *resident; /* blocks held by a fetch in the inflight table */
	GCond written_cond;	/* broadcast when write_backlog falls, to backlog_waiting */
	unsigned backlog_waiting;

	struct log_ratelimit error_log;
	struct image_stats stats;
};

static gpointer image_writer_main(gpointer data);
static void fetch_unref_locked(struct fetch *f);

struct image *image_new(const struct image_config *cfg)
{
	struct image *img = g_new0(struct image, 1);

	img->name = g_strdup(cfg->name);
	img->url = g_strdup(cfg->url);
	img->shown_url = s3_url_redact(cfg->url);
	img->info.size = cfg->info->size;
	img->info.etag = g_strdup(cfg->info->etag);
	img->info.last_modified = g_strdup(cfg->info->last_modified);
	img->info.validator = g_strdup(cfg->info->validator);
	img->store = cfg->store;
	img->origin = cfg->origin;
	img->shift = store_block_shift(cfg->store);
	img->readahead = cfg->readahead;
	readahead_init(&img->ra, store_block_count(cfg->store), img->shift);
	img->link = cfg->link;
	img->on_access = cfg->on_access;
	img->on_access_opaque = cfg->on_access_opaque;
	for (int i = 0; i < IMAGE_N_SOURCES; i++)
		img->ahead[i] = blockmap_new(store_block_count(cfg->store));
	img->referenced = blockmap_new(store_block_count(cfg->store));
	img->resident = blockmap_new(store_block_count(cfg->store));
	g_queue_init(&img->retained);
	img->max_request_blocks = cfg->max_request_bytes >> img->shift;
	if (img->max_request_blocks == 0)
		img->max_request_blocks = 1;
	g_mutex_init(&img->lock);
	g_cond_init(&img->cond);
	img->inflight = g_hash_table_new(g_direct_hash, g_direct_equal);
	img->error_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
	g_cond_init(&img->written_cond);
	img->writes = g_async_queue_new();
	return img;
}

void image_free(struct image *img)
{
	if (!img)
		return;
	/* The origin is stopped: what landed is written before the cache is closed. */
	g_async_queue_push(img->writes, img);
	if (img->writer)
		g_thread_join(img->writer);
	else
		image_writer_main(img);
	g_async_queue_unref(img->writes);
	g_mutex_lock(&img->lock);
	while (!g_queue_is_empty(&img->retained))
		fetch_unref_locked(g_queue_pop_head(&img->retained));
	g_mutex_unlock(&img->lock);
	g_cond_clear(&img->written_cond);
	store_close(img->store);
	for (int i = 0; i < IMAGE_N_SOURCES; i++)
		blockmap_free(img->ahead[i]);
	blockmap_free(img->referenced);
	blockmap_free(img->resident);
	g_hash_table_destroy(img->inflight);
	for (int i = 0; i < BUF_CLASSES; i++)
		if (img->buf_pool[i])
			g_ptr_array_free(img->buf_pool[i], TRUE);
	g_mutex_clear(&img->lock);
	g_cond_clear(&img->cond);
	origin_info_clear(&img->info);
	g_free(img->name);
	g_free(img->url);
	g_free(img->shown_url);
	g_free(img);
}

void image_start(struct image *img)
{
	img->writer = g_thread_new("aheadfs-writer", image_writer_main, img);
}

const char *image_name(const struct image *img)
{
	return img->name;
}

const char *image_url(const struct image *img)
{
	return img->shown_url;
}

uint64_t image_size(const struct image *img)
{
	return img->info.size;
}

uint32_t image_block_size(const struct image *img)
{
	return UINT32_C(1) << img->shift;
}

time_t image_mtime(const struct image *img)
{
	time_t t = img->info.last_modified ? curl_getdate(img->info.last_modified, NULL) : 0;

	return t > 0 ? t : 0;
}

struct store *image_store(struct image *img)
{
	return img->store;
}

const struct image_stats *image_stats(const struct image *img)
{
	return &img->stats;
}

#define BLOCK_KEY(b) GSIZE_TO_POINTER((gsize)(b))

static unsigned buf_class(uint64_t length)
{
	unsigned c = BUF_MIN_SHIFT;

	while ((UINT64_C(1) << c) < length)
		c++;
	return c;
}

/* A buffer of at least `length` bytes, from the pool when it has one. Locked. */
static void *image_buf_get_locked(struct image *img, uint64_t length)
{
	unsigned c = buf_class(length);
	size_t size = (size_t)1 << c;
	bool huge = size >= HUGE_BUF_BYTES;
	void *p;

	img->pool_used_us = g_get_monotonic_time();
	if (img->buf_pool[c] && img->buf_pool[c]->len) {
		img->pool_bytes -= size;
		return g_ptr_array_steal_index_fast(img->buf_pool[c], img->buf_pool[c]->len - 1);
	}
	/* Aligned for O_DIRECT (store_pwrite_aligned), and for huge pages when large. */
	if (posix_memalign(&p, huge ? HUGE_BUF_BYTES : 4096, size) != 0)
		g_error("out of memory");
	if (huge)
		madvise(p, size, MADV_HUGEPAGE); /* advice: a kernel without THP ignores it */
	return p;
}

static void image_buf_put_locked(struct image *img, void *buf, uint64_t length)
{
	unsigned c = buf_class(length);

	if (img->pool_bytes + (UINT64_C(1) << c) > POOL_MAX_BYTES) {
		g_free(buf);
		return;
	}
	if (!img->buf_pool[c])
		img->buf_pool[c] = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(img->buf_pool[c], buf);
	img->pool_bytes += UINT64_C(1) << c;
}

/* Drop one reference. Called with img->lock held. */
static void fetch_unref_locked(struct fetch *f)
{
	if (--f->refs > 0)
		return;
	if (f->req.buf) /* not the eviction's sentinel */
		image_buf_put_locked(f->img, f->req.buf, f->req.length);
	g_free(f);
}

static void image_log_failure(struct image *img, struct fetch *f, int err, const char *reason)
{
	bool first_change = false;

	if (err == -ESTALE) {
		g_mutex_lock(&img->lock);
		first_change = !img->changed;
		img->changed = true;
		g_mutex_unlock(&img->lock);
		if (first_change)
			log_error("%s: %s; reads of blocks not yet cached fail with EIO until it "
				  "is mounted again",
				  img->shown_url, reason);
		return;
	}
	if (err != -ECANCELED && log_ratelimit_allow(&img->error_log))
		log_error("%s: read of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			  " failed: %s",
			  img->shown_url, f->req.length, f->req.offset, reason);
}

/* Ahead-fetched blocks [from, to) of f arrived: count them for the tier. Origin thread. */
static void fetch_count_ahead(struct fetch *f, uint64_t from, uint64_t to)
{
	struct image *img = f->img;
	uint64_t lo = MIN(from << img->shift, f->req.length);
	uint64_t hi = MIN(to << img->shift, f->req.length);

	if (f->source == FETCH_DEMAND || from >= to)
		return;
	/* Marked before the waiters wake, so a late reader finds them as used. */
	for (uint64_t b = f->first + from; b < f->first + to; b++)
		blockmap_set(img->ahead[f->source], b);
	stats_add(&img->stats.ahead_blocks[f->source], to - from);
	stats_add(&img->stats.ahead_bytes[f->source], hi - lo);
}

/* The bytes of blocks [from, to) of f (landed). */
static uint64_t fetch_bytes(const struct fetch *f, uint64_t from, uint64_t to)
{
	unsigned shift = f->img->shift;

	return MIN(to << shift, f->req.length) - MIN(from << shift, f->req.length);
}

/*
 * Wake f's readers when one of them can go on. The origin thread lands blocks at every
 * chunk a transfer receives (a 2 GiB stream: ~20,000), and waking every reader at each
 * cost a system call even when nobody waited, and woke a reader of a fetch's last block
 * at each of its chunks. Locked.
 */
static void fetch_wake_locked(struct fetch *f)
{
	if (f->waiting && (f->done || f->landed >= f->wake_at))
		g_cond_broadcast(&f->img->cond);
}

/* Hand f's landed blocks to the writer (one reference, one wake-up). Locked. */
static void fetch_queue_write_locked(struct image *img, struct fetch *f)
{
	img->write_backlog += fetch_bytes(f, f->queued, f->landed);
	f->queued = f->landed;
	f->refs++; /* the writer's */
	g_async_queue_push(img->writes, f);
}

/*
 * The first `bytes` of f are in its buffer: the whole blocks among them land (their
 * readers wake) and go to the writer in runs of WRITE_RUN_BYTES. Origin thread. When
 * the writer is far behind, wait for it: the buffers are memory, and the disk sets the
 * pace in the end.
 */
static void fetch_land(struct fetch *f, uint64_t bytes)
{
	struct image *img = f->img;
	uint64_t whole = bytes >= f->req.length ? f->count : bytes >> img->shift;
	uint64_t from = f->landed; /* only the origin thread writes it */

	if (whole <= from)
		return;
	fetch_count_ahead(f, from, whole);
	for (uint64_t b = f->first + from; b < f->first + whole; b++)
		blockmap_set(img->resident, b);
	g_mutex_lock(&img->lock);
	f->landed = whole;
	fetch_wake_locked(f);
	if (whole == f->count || fetch_bytes(f, f->queued, whole) >= WRITE_RUN_BYTES)
		fetch_queue_write_locked(img, f);
	while (img->write_backlog > WRITE_BACKLOG_BYTES) {
		img->backlog_waiting++;
		g_cond_wait(&img->written_cond, &img->lock);
		img->backlog_waiting--;
	}
	g_mutex_unlock(&img->lock);
}

/*
 * origin_sink_fn: runs on the origin thread. A retry sends from byte 0 again: bytes of
 * blocks already landed are not copied again (readers and the writer may be reading
 * them; they are the same bytes, the validator is checked).
 */
static int fetch_sink(struct origin_request *req, uint64_t at, const void *data, size_t len)
{
	struct fetch *f = req->opaque;
	uint64_t settled = MIN(f->landed << f->img->shift, req->length);
	uint64_t skip = at < settled ? MIN(settled - at, (uint64_t)len) : 0;

	memcpy((char *)req->buf + at + skip, (const char *)data + skip, len - skip);
	fetch_land(f, at + len);
	return 0;
}

/* Blocks [from, to) of f leave the inflight table: readers use the cache file. Locked. */
static void image_release_blocks_locked(struct image *img, struct fetch *f, uint64_t from,
					uint64_t to)
{
	for (uint64_t b = f->first + from; b < f->first + to; b++)
		if (g_hash_table_lookup(img->inflight, BLOCK_KEY(b)) == f) {
			blockmap_clear(img->resident, b);
			g_hash_table_remove(img->inflight, BLOCK_KEY(b));
		}
}

/*
 * Blocks that stream past: readahead (its reader comes within a window, and is answered
 * from the retained buffer) and background fill (no reader expected soon). They go to the
 * cache file with O_DIRECT, so they take no new page-cache pages. Everything else (demand,
 * predicted blocks) goes through the page cache, where a reader that comes seconds later
 * finds it: a learned boot prefetches its blocks well ahead, and reading them back from
 * the disk made it 5-7 s slower (two A/B boots at 20/200, 2026-11-26).
 */
static bool fetch_streams_past(const struct fetch *f)
{
	return f->source == IMAGE_SOURCE_READAHEAD || f->source == PREFETCH_TIER_BACKGROUND;
}

/*
 * Write the blocks of f handed over and not yet written to the cache file and mark them
 * present. They stay in the inflight table (answered from f's buffer) until f is done:
 * then they leave it (image_writer_main), or, fetched by readahead, when f leaves
 * retention. When the cache cannot take them (disk full), they leave the table at once:
 * readers that hold f are answered from its buffer, later ones fetch again. Writer
 * thread.
 */
static void image_write_landed(struct image *img, struct fetch *f)
{
	static struct log_ratelimit full_log = LOG_RATELIMIT_INIT(60, 1);
	uint64_t from = f->written, to, len;
	int r = 0;

	g_mutex_lock(&img->lock);
	to = f->queued;
	g_mutex_unlock(&img->lock);
	if (to <= from)
		return;
	len = fetch_bytes(f, from, to);
	if (f->cached) {
		uint64_t at = MIN(from << img->shift, f->req.length);

		r = fetch_streams_past(f)
			    ? store_pwrite_aligned(img->store, f->req.offset + at,
						   (char *)f->req.buf + at, len)
			    : store_pwrite(img->store, f->req.offset + at, (char *)f->req.buf + at,
					   len);
		if (r == 0) {
			store_mark(img->store, f->first + from, to - from);
		} else {
			f->cached = false;
			stats_add(&img->stats.uncached_fetches, 1);
			if (log_ratelimit_allow(&full_log))
				log_warning("%s: cannot write to the cache (%s); serving reads "
					    "without caching them",
					    store_dir(img->store), g_strerror(-r));
		}
	}
	f->written = to;
	g_mutex_lock(&img->lock);
	if (!f->cached)
		image_release_blocks_locked(img, f, from, to);
	img->write_backlog -= len;
	if (img->backlog_waiting)
		g_cond_broadcast(&img->written_cond);
	g_mutex_unlock(&img->lock);
}

/* A retained fetch leaves retention: readers use the cache file. Locked. */
static void image_unretain_locked(struct image *img, struct fetch *f)
{
	g_queue_remove(&img->retained, f);
	f->retained = false;
	img->retained_bytes -= f->req.length;
	image_release_blocks_locked(img, f, 0, f->landed);
	fetch_unref_locked(f);
}

static void image_unretain_oldest_locked(struct image *img)
{
	image_unretain_locked(img, g_queue_peek_head(&img->retained));
}

/* Readers have had as many bytes of f's buffer as it holds: a stream has passed it. */
static bool fetch_read_through(const struct fetch *f)
{
	return f->served >= f->req.length;
}

/*
 * Bytes of f's buffer were given to a reader. Once a stream has read the whole of a
 * retained fetch it does not come back for it: the fetch leaves retention then, not 64
 * MiB later, and its buffer goes back to the pool for the next fetch. Retention then
 * holds what is still to be read, and a cold stream keeps reusing the same buffers
 * instead of touching new memory (a fault per page, expensive on a VM): a cold 256 MiB
 * read made ~35,000 faults, 130 MiB of new memory. Locked.
 */
static void fetch_served_locked(struct image *img, struct fetch *f, uint64_t bytes)
{
	f->served += bytes;
	if (f->retained && fetch_read_through(f))
		image_unretain_locked(img, f);
}

/* Keep a done, written fetch for readers to come; let the oldest go. Locked. */
static void image_retain_locked(struct image *img, struct fetch *f)
{
	f->retained = true;
	f->retained_us = g_get_monotonic_time();
	f->refs++;
	g_queue_push_tail(&img->retained, f);
	img->retained_bytes += f->req.length;
	while (img->retained_bytes > RETAIN_BYTES)
		image_unretain_oldest_locked(img);
}

void image_trim(struct image *img)
{
	gint64 old = g_get_monotonic_time() - RETAIN_IDLE_US;

	g_mutex_lock(&img->lock);
	while (!g_queue_is_empty(&img->retained) &&
	       ((struct fetch *)g_queue_peek_head(&img->retained))->retained_us < old)
		image_unretain_oldest_locked(img);
	/* Idle: the memory goes back (not while a stream runs with nothing retained). */
	if (g_queue_is_empty(&img->retained) && img->pool_bytes > 0 && img->pool_used_us < old) {
		for (int i = 0; i < BUF_CLASSES; i++)
			if (img->buf_pool[i])
				g_ptr_array_set_size(img->buf_pool[i], 0);
		img->pool_bytes = 0;
	}
	g_mutex_unlock(&img->lock);
}

/* The writer thread: a queued fetch at a time, until the image itself is queued (stop). */
static gpointer image_writer_main(gpointer data)
{
	struct image *img = data;
	gpointer item;

	while ((item = g_async_queue_pop(img->writes)) != img) {
		struct fetch *f = item;

		image_write_landed(img, f);
		g_mutex_lock(&img->lock);
		/* Done, and all that landed is written: keep it for readers, or let it go. */
		if (f->done && f->written == f->landed && !f->retained) {
			if (!f->err && f->cached && f->written == f->count &&
			    f->source == IMAGE_SOURCE_READAHEAD && !fetch_read_through(f))
				image_retain_locked(img, f);
			else
				image_release_blocks_locked(img, f, 0, f->landed);
		}
		fetch_unref_locked(f);
		g_mutex_unlock(&img->lock);
	}
	return NULL;
}

/* origin_done_fn: runs on the origin thread. */
static void fetch_done(struct origin_request *req, int err, const char *reason)
{
	struct fetch *f = req->opaque;
	struct image *img = f->img;

	if (err == 0)
		fetch_land(f, req->length); /* normally landed already, as the bytes came */
	else
		image_log_failure(img, f, err, reason);
	if (f->source != FETCH_DEMAND) {
		__atomic_fetch_sub(&img->stats.ahead_inflight_bytes, req->length, __ATOMIC_RELAXED);
		if (f->source == PREFETCH_TIER_BACKGROUND)
			__atomic_fetch_sub(&img->stats.bg_inflight_bytes, req->length,
					   __ATOMIC_RELAXED);
	}

	g_mutex_lock(&img->lock);
	/* Blocks that never came; the landed ones leave the table once written. */
	for (uint64_t b = f->first + f->landed; b < f->first + f->count; b++)
		g_hash_table_remove(img->inflight, BLOCK_KEY(b));
	f->done = true;
	f->err = err == -ESTALE || err == -ECANCELED ? -EIO : err;
	fetch_wake_locked(f);
	fetch_queue_write_locked(img, f); /* the rest, and the news that f is done */
	fetch_unref_locked(f);
	g_mutex_unlock(&img->lock);
}

/* A fetch for blocks [first, first + count), entered in the inflight table. Locked. */
static struct fetch *fetch_new_locked(struct image *img, uint64_t first, uint64_t count,
				      int source)
{
	struct fetch *f = g_new0(struct fetch, 1);

	f->img = img;
	f->first = first;
	f->count = count;
	f->refs = 1; /* the origin's, dropped in fetch_done */
	f->req.url = img->url;
	f->req.info = &img->info;
	f->req.offset = range_block_offset(first, img->shift);
	f->req.length = range_span_bytes(img->info.size, img->shift, first, count);
	f->req.sink = fetch_sink;
	f->req.buf = image_buf_get_locked(img, f->req.length);
	f->req.priority = source == FETCH_DEMAND ? ORIGIN_PRIORITY_DEMAND : ORIGIN_PRIORITY_PREFETCH;
	f->source = source;
	f->cached = true;
	f->req.done = fetch_done;
	f->req.opaque = f;
	for (uint64_t b = first; b < first + count; b++)
		g_hash_table_insert(img->inflight, BLOCK_KEY(b), f);
	return f;
}

/*
 * For every block of `span` not present: join the fetch that has it, or start a new one
 * for the run of absent blocks it begins. Joined and new fetches go to `waits` (with a
 * reference each), new ones also to `starts`. Returns -EIO when a fetch is needed but
 * the remote has changed. Called with img->lock held.
 */
static int image_plan_locked(struct image *img, struct block_span span, GPtrArray *waits,
			     GPtrArray *starts, bool *late)
{
	uint64_t end = span.first + span.count;
	uint64_t b = span.first;

	while (b < end) {
		struct fetch *f;
		uint64_t e;

		f = g_hash_table_lookup(img->inflight, BLOCK_KEY(b));
		if (!f && store_has(img->store, b)) {
			b++;
			continue;
		}
		if (f && f->source == FETCH_EVICT) {
			/* Its blocks are scattered: wait for it once, look at the next block. */
			if (waits->len == 0 || g_ptr_array_index(waits, waits->len - 1) != f) {
				f->refs++;
				g_ptr_array_add(waits, f);
			}
			b++;
			continue;
		}
		if (f) {
			f->refs++;
			*late = *late || f->source >= 0;
			g_ptr_array_add(waits, f);
			b = f->first + f->count;
			continue;
		}
		if (img->changed)
			return -EIO;
		for (e = b + 1; e < end && e - b < img->max_request_blocks; e++)
			if (store_has(img->store, e) ||
			    g_hash_table_contains(img->inflight, BLOCK_KEY(e)))
				break;
		f = fetch_new_locked(img, b, e - b, FETCH_DEMAND);
		f->refs++;
		g_ptr_array_add(waits, f);
		g_ptr_array_add(starts, f);
		b = e;
	}
	return 0;
}

/* A model prefetch's largest request, in blocks. */
static uint64_t image_prefetch_chunk(const struct image *img)
{
	return MIN(img->max_request_blocks, MAX(PREFETCH_REQUEST_BYTES >> img->shift, UINT64_C(1)));
}

/* Start prefetch fetches for absent blocks of [from, to), in `chunk`s. Locked. */
static void image_prefetch_locked(struct image *img, uint64_t from, uint64_t to, int source,
				  uint64_t chunk, GPtrArray *starts)
{
	uint64_t b = from, e;

	while (b < to) {
		if (store_has(img->store, b) || g_hash_table_contains(img->inflight, BLOCK_KEY(b))) {
			b++;
			continue;
		}
		for (e = b + 1; e < to && e - b < chunk; e++)
			if (store_has(img->store, e) ||
			    g_hash_table_contains(img->inflight, BLOCK_KEY(e)))
				break;
		g_ptr_array_add(starts, fetch_new_locked(img, b, e - b, source));
		b = e;
	}
}

/* Follow a streaming reader (readahead.c). Locked. */
static void image_readahead_locked(struct image *img, struct block_span span, GPtrArray *starts)
{
	uint64_t from, n;

	if (img->changed || !img->readahead)
		return;
	if (img->link && img->origin)
		readahead_link(&img->ra, link_bdp_bytes(img->link) >> img->shift,
			       origin_prefetch_slots(img->origin));
	n = readahead_follow(&img->ra, span.first, span.first + span.count, &from);
	if (n > 0)
		image_prefetch_locked(img, from, from + n, IMAGE_SOURCE_READAHEAD,
				      readahead_request_blocks(&img->ra), starts);
}

/* How many of f's blocks must have landed for the read of `out` (never, for eviction). */
static uint64_t fetch_needed(const struct image *img, const struct fetch *f,
			     const struct image_extent *out)
{
	struct block_span span = range_blocks(img->info.size, img->shift, out->offset, out->length);
	uint64_t end = MIN(f->first + f->count, span.first + span.count);

	if (f->source == FETCH_EVICT)
		return UINT64_MAX;
	return end > f->first ? end - f->first : 0;
}

/*
 * Sleep until f is done or has landed `need` blocks (or a wake for another reader passes
 * by). Locked.
 */
static void fetch_await_locked(struct image *img, struct fetch *f, uint64_t need)
{
	/* Every waiter's need is at least wake_at: whoever it is, the wake comes in time. */
	f->wake_at = f->waiting++ ? MIN(f->wake_at, need) : need;
	g_cond_wait(&img->cond, &img->lock);
	f->waiting--;
}

/* The read of `out` lies in f's buffer: answer it from there. Locked, after the wait. */
static bool image_borrow_locked(struct fetch *f, struct image_extent *out)
{
	if (!f->req.buf || f->req.offset > out->offset ||
	    out->offset + out->length > f->req.offset + f->req.length)
		return false;
	out->data = (const char *)f->req.buf + (out->offset - f->req.offset);
	out->hold = f;
	fetch_served_locked(f->img, f, out->length);
	return true;
}

static unsigned image_enter(struct image *img);
static void image_leave(struct image *img, unsigned e);

/* The fetch in `waits` whose landed blocks hold block b, or NULL. Locked. */
static struct fetch *image_holder_locked(GPtrArray *waits, uint64_t b)
{
	for (guint i = 0; i < waits->len; i++) {
		struct fetch *f = waits->pdata[i];

		if (f->req.buf && b >= f->first && b < f->first + f->landed)
			return f;
	}
	return NULL;
}

/* The bytes [*lo, *hi) of block b that the range [start, end) covers. */
static void block_part(const struct image *img, uint64_t b, uint64_t start, uint64_t end,
		       uint64_t *lo, uint64_t *hi)
{
	*lo = MAX(start, b << img->shift);
	*hi = MIN(end, (b + 1) << img->shift);
}

/*
 * A read over several fetches, or fetches and cached blocks: build the answer in memory,
 * from the fetch buffers where they hold the blocks and from the cache file elsewhere
 * (within a reader epoch, so an eviction cannot punch those blocks meanwhile).
 * -EAGAIN: a block is in neither any more (evicted); plan again.
 */
static int image_assemble(struct image *img, GPtrArray *waits, struct image_extent *out)
{
	struct block_span span = range_blocks(img->info.size, img->shift, out->offset, out->length);
	uint64_t start = out->offset, end = out->offset + out->length;
	g_autofree struct fetch **holder = g_new0(struct fetch *, span.count);
	char *mem = g_malloc(out->length);
	unsigned e = image_enter(img);
	int err = 0;

	g_mutex_lock(&img->lock);
	for (uint64_t i = 0; i < span.count; i++)
		holder[i] = image_holder_locked(waits, span.first + i);
	g_mutex_unlock(&img->lock);
	for (uint64_t i = 0; i < span.count && !err; i++) {
		uint64_t b = span.first + i, lo, hi;
		struct fetch *f = holder[i];

		block_part(img, b, start, end, &lo, &hi);
		if (f)
			memcpy(mem + (lo - start), (char *)f->req.buf + (lo - f->req.offset), hi - lo);
		else if (!store_has(img->store, b))
			err = -EAGAIN;
		else
			err = store_pread(img->store, lo, mem + (lo - start), hi - lo);
	}
	image_leave(img, e);
	if (err) {
		g_free(mem);
		return err;
	}
	out->mem = mem;
	out->data = mem;
	g_mutex_lock(&img->lock);
	for (uint64_t i = 0; i < span.count; i++) {
		uint64_t lo, hi;

		if (!holder[i])
			continue;
		block_part(img, span.first + i, start, end, &lo, &hi);
		fetch_served_locked(img, holder[i], hi - lo);
	}
	g_mutex_unlock(&img->lock);
	return 0;
}

/*
 * Answer the read of `out` from `fetches`, all landed for it: from one fetch's buffer
 * when the read lies in it (the extent then holds that reference, and `fetches` is
 * emptied), else assembled. 0 or -errno (-EAGAIN: plan again).
 */
static int image_answer(struct image *img, GPtrArray *fetches, struct image_extent *out)
{
	bool borrowed;

	g_mutex_lock(&img->lock);
	borrowed = fetches->len == 1 && image_borrow_locked(fetches->pdata[0], out);
	if (borrowed)
		g_ptr_array_set_size(fetches, 0); /* the extent holds the reference now */
	g_mutex_unlock(&img->lock);
	return borrowed ? 0 : image_assemble(img, fetches, out);
}

/* Drop the references of `fetches`. */
static void image_unref_all(struct image *img, GPtrArray *fetches)
{
	g_mutex_lock(&img->lock);
	for (guint i = 0; i < fetches->len; i++)
		fetch_unref_locked(fetches->pdata[i]);
	g_mutex_unlock(&img->lock);
}

/*
 * Every block of the read has landed in a fetch buffer or is cached (and not held): answer
 * it now, from memory, without waiting. False when some block is still to come.
 */
static bool image_read_landed(struct image *img, struct block_span span,
			      struct image_extent *out)
{
	g_autoptr(GPtrArray) holders = g_ptr_array_new();
	bool ok = true;

	g_mutex_lock(&img->lock);
	for (uint64_t b = span.first; b < span.first + span.count && ok; b++) {
		struct fetch *f = g_hash_table_lookup(img->inflight, BLOCK_KEY(b));

		if (!f) {
			ok = store_has(img->store, b);
			continue;
		}
		ok = f->source != FETCH_EVICT && b < f->first + f->landed;
		if (ok && (holders->len == 0 || g_ptr_array_index(holders, holders->len - 1) != f)) {
			f->refs++;
			g_ptr_array_add(holders, f);
		}
	}
	g_mutex_unlock(&img->lock);
	ok = ok && holders->len > 0 && image_answer(img, holders, out) == 0;
	image_unref_all(img, holders);
	return ok;
}

static int image_wait(struct image *img, GPtrArray *waits, struct image_extent *out)
{
	int err = 0;

	g_mutex_lock(&img->lock);
	for (guint i = 0; i < waits->len; i++) {
		struct fetch *f = waits->pdata[i];
		uint64_t need = fetch_needed(img, f, out);

		while (!f->done && f->landed < need)
			fetch_await_locked(img, f, need);
		if (!f->done)
			continue; /* what this read needs has landed; the rest is still coming */
		/* -EAGAIN (an eviction passed by) only matters when nothing failed. */
		if (f->err && (!err || err == -EAGAIN))
			err = f->err;
	}
	g_mutex_unlock(&img->lock);

	if (!err && waits->len > 0)
		err = image_answer(img, waits, out);
	image_unref_all(img, waits);
	return err;
}

/* Hand new fetches to the origin. Called without img->lock. */
static void image_submit(struct image *img, GPtrArray *starts)
{
	for (guint i = 0; i < starts->len; i++) {
		struct fetch *f = starts->pdata[i];

		if (f->source == FETCH_DEMAND) {
			stats_add(&img->stats.fetches, 1);
			stats_add(&img->stats.fetched_bytes, f->req.length);
			stats_add(&img->stats.demand_blocks, f->count);
		} else {
			if (f->source == IMAGE_SOURCE_READAHEAD) {
				stats_add(&img->stats.readahead_fetches, 1);
				stats_add(&img->stats.readahead_bytes, f->req.length);
			}
			stats_add(&img->stats.ahead_inflight_bytes, f->req.length);
			if (f->source == PREFETCH_TIER_BACKGROUND)
				stats_add(&img->stats.bg_inflight_bytes, f->req.length);
		}
		origin_submit(img->origin, &f->req);
	}
}

/* A hit while a reader streams: keep the window ahead of it. */
static void image_hit_readahead(struct image *img, struct block_span span)
{
	g_autoptr(GPtrArray) starts = NULL;

	if (!readahead_streaming(&img->ra))
		return;
	starts = g_ptr_array_new();
	g_mutex_lock(&img->lock);
	image_readahead_locked(img, span, starts);
	g_mutex_unlock(&img->lock);
	image_submit(img, starts);
}

/* Blocks of `span` that were fetched ahead are now used: count them once. */
static bool image_account_use(struct image *img, struct block_span span)
{
	bool any = false;

	for (int src = 0; src < IMAGE_N_SOURCES; src++) {
		if (!blockmap_test_any(img->ahead[src], span.first, span.count))
			continue;
		for (uint64_t b = span.first; b < span.first + span.count; b++) {
			if (blockmap_test_and_clear(img->ahead[src], b)) {
				stats_add(&img->stats.ahead_used_blocks[src], 1);
				any = true;
			}
		}
	}
	return any;
}

static void image_tell(struct image *img, gint64 t0, struct block_span span,
		       enum model_access_kind kind)
{
	struct model_event ev = {
		.time_us = (uint64_t)t0,
		.block = span.first,
		.nblocks = (uint32_t)MIN(span.count, UINT32_MAX),
		.kind = kind,
	};

	if (img->on_access && span.count)
		img->on_access(img->on_access_opaque, &ev);
}

/*
 * What a miss costs a read now: an EWMA (1/8) of the reads that had to fetch. Updated
 * without a lock: readers racing here may lose an update, which a running average of
 * this kind does not mind.
 */
static void image_note_miss_cost(struct image *img, uint64_t us)
{
	uint64_t old = __atomic_load_n(&img->stats.miss_cost_us, __ATOMIC_RELAXED);
	uint64_t cost = old ? old - old / 8 + us / 8 : us;

	__atomic_store_n(&img->stats.miss_cost_us, MAX(cost, UINT64_C(1)), __ATOMIC_RELAXED);
}

/*
 * A read that found blocks fetched ahead of it and fetched nothing itself would
 * otherwise have missed: it saved what a miss costs now, less what it took (it may have
 * waited for a prefetch in flight). Before any miss is measured, the link's estimate of
 * a fetch of the read's bytes stands in; with no estimate either, nothing is counted
 * rather than a guess.
 */
static void image_count_saved(struct image *img, struct block_span span, uint64_t took_us)
{
	uint64_t cost = __atomic_load_n(&img->stats.miss_cost_us, __ATOMIC_RELAXED);

	if (cost == 0 && img->link) {
		double rtt_us, bandwidth;

		link_get(img->link, &rtt_us, &bandwidth);
		if (rtt_us > 0)
			cost = (uint64_t)(rtt_us + (bandwidth > 0 ? (double)(span.count << img->shift) /
									 bandwidth * 1e6
								   : 0.0));
	}
	stats_add(&img->stats.helped_reads, 1);
	if (cost > took_us)
		stats_add(&img->stats.saved_us, cost - took_us);
}

/* Blocks a reader used: eviction keeps them a round longer. */
static void image_reference(struct image *img, struct block_span span)
{
	for (uint64_t b = span.first; b < span.first + span.count; b++)
		if (!blockmap_test(img->referenced, b))
			blockmap_set(img->referenced, b);
}

/*
 * The slow path, one round: fetch or wait for what is missing. Returns 0 when the round
 * is over (the caller looks at the block map again: an eviction may have passed), or
 * -errno. `late` and `missed` say what the round found.
 */
static int image_fetch_round(struct image *img, gint64 t0, struct block_span span,
			     struct image_extent *out, bool *late, bool *demanded)
{
	g_autoptr(GPtrArray) waits = g_ptr_array_new();
	g_autoptr(GPtrArray) starts = g_ptr_array_new();
	guint demand_started;
	int err, werr;

	g_mutex_lock(&img->lock);
	err = image_plan_locked(img, span, waits, starts, late);
	demand_started = starts->len;
	image_readahead_locked(img, span, starts);
	g_mutex_unlock(&img->lock);
	if (demand_started > 0) {
		*demanded = true;
		__atomic_store_n(&img->stats.last_miss_us, (uint64_t)t0, __ATOMIC_RELAXED);
	}
	image_submit(img, starts);
	/* Prefetches a reader now waits for go ahead of the other prefetches. */
	for (guint i = 0; i < waits->len; i++) {
		struct fetch *f = waits->pdata[i];

		if (f->source >= 0)
			origin_promote(img->origin, &f->req);
	}
	if (demand_started < waits->len)
		stats_add(&img->stats.waited_reads, 1);
	/* Even on error, wait: the fetches we joined hold our references. */
	werr = image_wait(img, waits, out);
	err = err ? err : werr;
	return err == -EAGAIN ? 0 : err;
}

/* Enter the current reader epoch; see image_wait_readers. */
static unsigned image_enter(struct image *img)
{
	unsigned e = __atomic_load_n(&img->epoch, __ATOMIC_SEQ_CST);

	__atomic_fetch_add(&img->readers[e], 1, __ATOMIC_SEQ_CST);
	return e;
}

static void image_leave(struct image *img, unsigned e)
{
	__atomic_fetch_sub(&img->readers[e], 1, __ATOMIC_SEQ_CST);
}

/*
 * A read holds a reader epoch only from the moment it finds all its blocks present until
 * its bytes have been consumed (image_read_end), never while it waits for a fetch: so an
 * eviction waits for readers of the file, and readers wait for evictions, never both.
 */
int image_read(struct image *img, uint64_t offset, size_t size, struct image_extent *out)
{
	gint64 t0 = g_get_monotonic_time();
	struct block_span span = range_blocks(img->info.size, img->shift, offset, size);
	bool missed = false, late = false, demanded = false, helped = false;
	uint64_t took_us;
	int err;

	out->fd = store_fd(img->store);
	out->offset = offset;
	out->length = range_clamp(img->info.size, offset, size);
	out->mem = NULL;
	out->data = NULL;
	out->hold = NULL;
	out->epoch = IMAGE_NO_EPOCH;
	stats_add(&img->stats.reads, 1);
	for (;;) {
		unsigned e = image_enter(img);

		if (span.count == 0 || (store_has_all(img->store, span.first, span.count) &&
					!blockmap_test_any(img->resident, span.first, span.count))) {
			out->epoch = e;
			break;
		}
		image_leave(img, e);
		if (!missed && image_read_landed(img, span, out))
			break; /* a hit, on blocks still in fetch buffers */
		if (!missed)
			stats_add(&img->stats.miss_reads, 1);
		missed = true;
		err = image_fetch_round(img, t0, span, out, &late, &demanded);
		if (err) {
			stats_add(&img->stats.errors, 1);
			return err;
		}
		if (out->data)
			break; /* answered from fetch buffers */
	}
	if (span.count) {
		image_reference(img, span);
		helped = image_account_use(img, span);
		if (!missed)
			image_hit_readahead(img, span);
		image_tell(img, t0, span,
			   !missed ? MODEL_ACCESS_HIT
			   : late && !demanded ? MODEL_ACCESS_LATE : MODEL_ACCESS_MISS);
	}
	if (late)
		stats_add(&img->stats.late_reads, 1);
	if (!missed)
		stats_add(&img->stats.hit_reads, 1);
	stats_add(&img->stats.read_bytes, out->length);
	took_us = (uint64_t)(g_get_monotonic_time() - t0);
	if (demanded)
		image_note_miss_cost(img, took_us);
	else if (helped)
		image_count_saved(img, span, took_us);
	stats_histogram_add(missed ? &img->stats.miss_latency : &img->stats.hit_latency, took_us);
	return 0;
}

void image_read_end(struct image *img, const struct image_extent *ext)
{
	if (ext->epoch != IMAGE_NO_EPOCH)
		image_leave(img, ext->epoch);
	g_free(ext->mem);
	if (ext->hold) {
		g_mutex_lock(&img->lock);
		fetch_unref_locked(ext->hold);
		g_mutex_unlock(&img->lock);
	}
}

/* Wait until every reader that may have seen the old bits is done. */
static void image_wait_readers(struct image *img)
{
	unsigned old = __atomic_fetch_xor(&img->epoch, 1, __ATOMIC_SEQ_CST);

	while (__atomic_load_n(&img->readers[old], __ATOMIC_SEQ_CST) != 0)
		g_usleep(200);
}

uint64_t image_evict(struct image *img, uint64_t want)
{
	struct blockmap *const *ahead = img->ahead;
	struct evict_maps maps = {store_map(img->store), img->referenced, ahead, IMAGE_N_SOURCES};
	g_autofree uint64_t *victims = g_new(uint64_t, MAX(want, 1));
	g_autoptr(GError) error = NULL;
	struct fetch *sentinel = g_new0(struct fetch, 1);
	size_t n, unused, kept = 0;

	sentinel->img = img;
	sentinel->source = FETCH_EVICT;
	sentinel->cached = true;
	sentinel->refs = 1;
	g_mutex_lock(&img->lock);
	n = evict_pick(&maps, &img->clock_hand, want, victims, &unused);
	/* Claim the victims: readers that want them now wait for the eviction, then plan
	 * again and fetch them anew. */
	for (size_t i = 0; i < n; i++) {
		struct fetch *f = g_hash_table_lookup(img->inflight, BLOCK_KEY(victims[i]));

		if (f && f->retained) /* written, kept in memory only for later readers */
			image_release_blocks_locked(img, f, victims[i] - f->first,
						    victims[i] - f->first + 1);
		else if (f)
			continue;
		g_hash_table_insert(img->inflight, BLOCK_KEY(victims[i]), sentinel);
		victims[kept++] = victims[i];
	}
	for (size_t i = 0; i < kept; i++) {
		store_unmark(img->store, victims[i], 1);
		for (int src = 0; src < IMAGE_N_SOURCES; src++)
			blockmap_clear(img->ahead[src], victims[i]);
	}
	g_mutex_unlock(&img->lock);

	image_wait_readers(img);
	/* The map on disk must stop naming the blocks before their bytes go. */
	if (kept && store_flush(img->store, &error)) {
		for (size_t i = 0; i < kept; i++)
			store_punch(img->store, victims[i], 1);
	} else if (kept) {
		log_warning("%s: eviction: %s (holes not punched)", store_dir(img->store),
			    error->message);
	}
	stats_add(&img->stats.evicted_blocks, kept);
	stats_add(&img->stats.evicted_unused_blocks, MIN(unused, kept));

	g_mutex_lock(&img->lock);
	for (size_t i = 0; i < kept; i++)
		g_hash_table_remove(img->inflight, BLOCK_KEY(victims[i]));
	sentinel->done = true;
	sentinel->err = -EAGAIN;
	fetch_wake_locked(sentinel);
	fetch_unref_locked(sentinel);
	g_mutex_unlock(&img->lock);
	return kept;
}

uint64_t image_block_count(const struct image *img)
{
	return store_block_count(img->store);
}

size_t image_drop_unwanted(struct image *img, struct model_prediction *preds, size_t n)
{
	uint64_t nblocks = store_block_count(img->store);
	size_t kept = 0;

	g_mutex_lock(&img->lock);
	for (size_t i = 0; i < n; i++) {
		uint64_t b = preds[i].block;

		if (b < nblocks && !store_has(img->store, b) &&
		    !g_hash_table_contains(img->inflight, BLOCK_KEY(b)) &&
		    !(img->readahead && readahead_ahead(&img->ra, b)))
			preds[kept++] = preds[i];
	}
	g_mutex_unlock(&img->lock);
	return kept;
}

uint64_t image_prefetch(struct image *img, const struct prefetch_choice *choices, size_t n)
{
	g_autoptr(GPtrArray) starts = g_ptr_array_new();
	uint64_t chunk = image_prefetch_chunk(img);
	uint64_t bytes = 0;
	size_t i = 0;

	g_mutex_lock(&img->lock);
	while (i < n && !img->changed) {
		/* A run of consecutive blocks of one tier, in the order they were chosen. */
		size_t j = i + 1;

		while (j < n && j - i < chunk && choices[j].tier == choices[i].tier &&
		       choices[j].block == choices[j - 1].block + 1)
			j++;
		image_prefetch_locked(img, choices[i].block, choices[j - 1].block + 1,
				      (int)choices[i].tier, chunk, starts);
		i = j;
	}
	g_mutex_unlock(&img->lock);
	for (guint k = 0; k < starts->len; k++)
		bytes += ((struct fetch *)starts->pdata[k])->req.length;
	image_submit(img, starts);
	return bytes;
}

uint64_t image_fill(struct image *img, uint64_t quota)
{
	g_autoptr(GPtrArray) starts = g_ptr_array_new();
	uint64_t nblocks = store_block_count(img->store);
	uint64_t want = MAX(quota >> img->shift, UINT64_C(1)), bytes = 0;

	g_mutex_lock(&img->lock);
	/* A pass over the image is done but holes remain (failed fetches): start over. */
	if (img->fill_cursor >= nblocks && store_cached_blocks(img->store) < nblocks)
		img->fill_cursor = 0;
	while (want > 0 && img->fill_cursor < nblocks && !img->changed) {
		uint64_t b = blockmap_next_clear(store_map(img->store), img->fill_cursor);
		uint64_t e = MIN(b + want, nblocks);

		if (b >= nblocks) {
			img->fill_cursor = nblocks;
			break;
		}
		image_prefetch_locked(img, b, e, PREFETCH_TIER_BACKGROUND,
				      image_prefetch_chunk(img), starts);
		want -= MIN(want, e - b);
		img->fill_cursor = e;
	}
	g_mutex_unlock(&img->lock);
	for (guint k = 0; k < starts->len; k++)
		bytes += ((struct fetch *)starts->pdata[k])->req.length;
	image_submit(img, starts);
	return bytes;
}

/*
 * store: sparse data file + block map for one image. See the header for the layout and
 * the crash-safety argument.
 */
#include "aheadfs/store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aheadfs/log.h"
#include "aheadfs/mapfile.h"
#include "aheadfs/range.h"

#define LOCK_WAIT_STEP_US (50 * 1000)
#define LOCK_WAIT_TRIES 100 /* 5 s */

struct store {
	char *dir;
	char *data_path;
	char *map_path;
	char *url;
	char *validator;
	uint64_t image_size;
	uint32_t block_size;
	unsigned shift;
	int data_fd;
	int direct_fd; /* the same file opened O_DIRECT, or -1 */
	int lock_fd;
	struct blockmap *map;
	char *discarded;

	/* Bumped after every store_write; the flusher writes when it moved. */
	gint64 generation;

	GMutex flush_lock; /* serialises store_flush; protects flushed_generation */
	gint64 flushed_generation;

	GThread *flusher;
	GMutex stop_lock; /* protects stopping; taken after flush_lock never */
	GCond stop_cond;
	bool stopping;
	unsigned flush_interval_ms;
};

static struct mapfile_identity store_identity(const struct store *s)
{
	struct mapfile_identity id = {
		.url = s->url,
		.validator = s->validator,
		.image_size = s->image_size,
		.block_size = s->block_size,
	};
	return id;
}

static char *store_dir_for(const char *cache_dir, const char *url)
{
	g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, url, -1);

	hash[20] = '\0';
	return g_build_filename(cache_dir, hash, NULL);
}

static gboolean store_lock(struct store *s, GError **error)
{
	g_autofree char *path = g_build_filename(s->dir, "lock", NULL);

	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", path,
			    g_strerror(e));
		return FALSE;
	}
	/* An instance that was just unmounted may still be writing its last map: give it a
	 * moment before calling the cache busy. */
	for (int tries = 0; flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0; tries++) {
		if (tries == LOCK_WAIT_TRIES) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
				    "cache %s is in use by another aheadfs mount", s->dir);
			return FALSE;
		}
		g_usleep(LOCK_WAIT_STEP_US);
	}
	return TRUE;
}

/*
 * Start an empty cache. The new (empty) map is written before the data file is emptied:
 * were it the other way round, a crash in between would leave the old map claiming
 * blocks whose bytes are gone.
 */
static gboolean store_reset(struct store *s, GError **error)
{
	struct mapfile_identity id = store_identity(s);

	blockmap_free(s->map);
	s->map = blockmap_new(range_block_count(s->image_size, s->shift));
	if (!mapfile_write(s->map_path, &id, s->map, error))
		return FALSE;
	if (ftruncate(s->data_fd, 0) != 0 || ftruncate(s->data_fd, (off_t)s->image_size) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s",
			    s->data_path, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

static gboolean store_load(struct store *s, GError **error)
{
	struct mapfile_identity id = store_identity(s);
	g_autoptr(GError) why = NULL;
	struct stat st;

	s->map = mapfile_read(s->map_path, &id, &why);
	if (s->map && fstat(s->data_fd, &st) == 0 && (uint64_t)st.st_size == s->image_size)
		return TRUE;
	if (s->map)
		s->discarded = g_strdup("data file has the wrong size");
	else if (!g_error_matches(why, G_FILE_ERROR, G_FILE_ERROR_NOENT))
		s->discarded = g_strdup(why->message);
	return store_reset(s, error);
}

struct store *store_open(const struct store_config *cfg, GError **error)
{
	struct store *s = g_new0(struct store, 1);

	s->dir = store_dir_for(cfg->cache_dir, cfg->url);
	s->data_path = g_build_filename(s->dir, "data", NULL);
	s->map_path = g_build_filename(s->dir, "map", NULL);
	s->url = g_strdup(cfg->url);
	s->validator = g_strdup(cfg->validator);
	s->image_size = cfg->image_size;
	s->block_size = cfg->block_size;
	s->shift = (unsigned)__builtin_ctz(cfg->block_size);
	s->data_fd = -1;
	s->direct_fd = -1;
	s->lock_fd = -1;
	g_mutex_init(&s->flush_lock);
	g_mutex_init(&s->stop_lock);
	g_cond_init(&s->stop_cond);

	if (g_mkdir_with_parents(s->dir, 0700) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot create cache directory %s: %s", s->dir, g_strerror(e));
		goto fail;
	}
	if (!store_lock(s, error))
		goto fail;
	s->data_fd = open(s->data_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->data_fd < 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s",
			    s->data_path, g_strerror(e));
		goto fail;
	}
	if (!store_load(s, error))
		goto fail;
	s->direct_fd = open(s->data_path, O_RDWR | O_DIRECT | O_CLOEXEC);
	return s;
fail:
	store_close(s);
	return NULL;
}

int store_fd(const struct store *store)
{
	return store->data_fd;
}

const struct blockmap *store_map(const struct store *store)
{
	return store->map;
}

unsigned store_block_shift(const struct store *store)
{
	return store->shift;
}

uint64_t store_block_count(const struct store *store)
{
	return store->map->nblocks;
}

const char *store_dir(const struct store *store)
{
	return store->dir;
}

const char *store_discarded(const struct store *store)
{
	return store->discarded;
}

bool store_has(const struct store *store, uint64_t block)
{
	return blockmap_test(store->map, block);
}

bool store_has_all(const struct store *store, uint64_t first, uint64_t count)
{
	return blockmap_test_all(store->map, first, count);
}

uint64_t store_cached_blocks(const struct store *store)
{
	return blockmap_count(store->map);
}

static int store_pwrite_fd(int fd, uint64_t offset, const void *buf, size_t len)
{
	const char *p = buf;
	off_t off = (off_t)offset;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int store_pwrite(struct store *store, uint64_t offset, const void *buf, size_t len)
{
	return store_pwrite_fd(store->data_fd, offset, buf, len);
}

int store_pread(const struct store *store, uint64_t offset, void *buf, size_t len)
{
	return store_pread_fd(store->data_fd, offset, buf, len);
}

int store_pread_fd(int fd, uint64_t offset, void *buf, size_t len)
{
	char *p = buf;
	off_t off = (off_t)offset;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

#define DIRECT_ALIGN 4096u

/*
 * O_DIRECT for the aligned head (no page cache: on a VM every new page-cache page costs
 * the host a fault), a buffered write for the rest. A filesystem that refuses O_DIRECT
 * writes (EINVAL) gets buffered ones from then on. Only the image's writer thread calls
 * this, so direct_fd needs no lock.
 */
int store_pwrite_aligned(struct store *store, uint64_t offset, const void *buf, size_t len)
{
	size_t head = store->direct_fd >= 0 && offset % DIRECT_ALIGN == 0 &&
				      (uintptr_t)buf % DIRECT_ALIGN == 0
			      ? len / DIRECT_ALIGN * DIRECT_ALIGN
			      : 0;
	int r = head ? store_pwrite_fd(store->direct_fd, offset, buf, head) : 0;

	if (r == -EINVAL) {
		log_debug("%s: O_DIRECT writes refused; writing through the page cache",
			  store->data_path);
		close(store->direct_fd);
		store->direct_fd = -1;
		head = 0;
		r = 0;
	}
	if (r == 0 && head < len)
		r = store_pwrite_fd(store->data_fd, offset + head, (const char *)buf + head,
				    len - head);
	return r;
}

void store_mark(struct store *store, uint64_t first, uint64_t count)
{
	for (uint64_t b = first; b < first + count; b++)
		blockmap_set(store->map, b);
	__atomic_fetch_add(&store->generation, 1, __ATOMIC_RELEASE);
}

void store_unmark(struct store *store, uint64_t first, uint64_t count)
{
	for (uint64_t b = first; b < first + count; b++)
		blockmap_clear(store->map, b);
	__atomic_fetch_add(&store->generation, 1, __ATOMIC_RELEASE);
}

int store_punch(struct store *store, uint64_t first, uint64_t count)
{
	uint64_t off = range_block_offset(first, store->shift);
	uint64_t len = range_span_bytes(store->image_size, store->shift, first, count);

	if (fallocate(store->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) != 0)
		return -errno;
	return 0;
}

int store_write(struct store *store, uint64_t first, const void *buf, size_t len)
{
	int r = store_pwrite(store, range_block_offset(first, store->shift), buf, len);

	/* Only now, with the bytes in the file, may the bits say so. */
	if (r == 0)
		store_mark(store, first, (len + store->block_size - 1) >> store->shift);
	return r;
}

gboolean store_flush(struct store *store, GError **error)
{
	struct mapfile_identity id = store_identity(store);
	struct blockmap *snapshot;
	gint64 gen;
	gboolean ok = TRUE;

	g_mutex_lock(&store->flush_lock);
	gen = __atomic_load_n(&store->generation, __ATOMIC_ACQUIRE);
	if (gen == store->flushed_generation)
		goto out;
	/* Snapshot first: every bit in it had its bytes written before it was set, and the
	 * fdatasync below makes those bytes durable before the map that names them. */
	snapshot = blockmap_new(store->map->nblocks);
	for (size_t i = 0; i < snapshot->nwords; i++)
		snapshot->words[i] = __atomic_load_n(&store->map->words[i], __ATOMIC_ACQUIRE);
	if (fdatasync(store->data_fd) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "fdatasync %s: %s",
			    store->data_path, g_strerror(e));
		ok = FALSE;
	} else {
		ok = mapfile_write(store->map_path, &id, snapshot, error);
	}
	blockmap_free(snapshot);
	if (ok)
		store->flushed_generation = gen;
out:
	g_mutex_unlock(&store->flush_lock);
	return ok;
}

static gpointer store_flusher_main(gpointer data)
{
	struct store *s = data;
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60, 3);

	g_mutex_lock(&s->stop_lock);
	while (!s->stopping) {
		gint64 until = g_get_monotonic_time() + (gint64)s->flush_interval_ms * 1000;
		g_autoptr(GError) error = NULL;

		if (g_cond_wait_until(&s->stop_cond, &s->stop_lock, until) || s->stopping)
			continue;
		g_mutex_unlock(&s->stop_lock);
		if (!store_flush(s, &error) && log_ratelimit_allow(&rl))
			log_warning("%s", error->message);
		g_mutex_lock(&s->stop_lock);
	}
	g_mutex_unlock(&s->stop_lock);
	return NULL;
}

void store_start_flusher(struct store *store, unsigned interval_ms)
{
	store->flush_interval_ms = interval_ms;
	store->flusher = g_thread_new("aheadfs-flush", store_flusher_main, store);
}

void store_close(struct store *store)
{
	g_autoptr(GError) error = NULL;

	if (!store)
		return;
	if (store->flusher) {
		g_mutex_lock(&store->stop_lock);
		store->stopping = true;
		g_cond_signal(&store->stop_cond);
		g_mutex_unlock(&store->stop_lock);
		g_thread_join(store->flusher);
	}
	if (store->map && store->data_fd >= 0 && !store_flush(store, &error))
		log_warning("%s", error->message);
	if (store->data_fd >= 0)
		close(store->data_fd);
	if (store->direct_fd >= 0)
		close(store->direct_fd);
	if (store->lock_fd >= 0)
		close(store->lock_fd);
	blockmap_free(store->map);
	g_mutex_clear(&store->flush_lock);
	g_mutex_clear(&store->stop_lock);
	g_cond_clear(&store->stop_cond);
	g_free(store->dir);
	g_free(store->data_path);
	g_free(store->map_path);
	g_free(store->url);
	g_free(store->validator);
	g_free(store->discarded);
	g_free(store);
}

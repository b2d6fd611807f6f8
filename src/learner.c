/*
 * learner: the model thread. See the header for the data flow and the state layout.
 *
 * The read path only copies an event into a ring (one short critical section); all the
 * learning, logging and prefetch planning happen here, never on a FUSE thread. The ring
 * drops events when the thread falls behind (counted) rather than slow the VM down.
 */
#include "aheadfs/learner.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aheadfs/cpu_budget.h"
#include "aheadfs/heat.h"
#include "aheadfs/load.h"
#include "aheadfs/log.h"
#include "aheadfs/tracefile.h"

#define RING_EVENTS 65536
#define TICK_US (20 * 1000)
#define SAVE_INTERVAL_US (30 * G_USEC_PER_SEC)
#define PRESSURE_INTERVAL_US G_USEC_PER_SEC
#define MAX_PREDICTIONS 1024
#define ACCESS_LOG_MAX_BYTES (32 << 20)
#define ACCURACY_MIN_BLOCKS 32 /* below this, accuracy is not known yet */
#define HEAT_PUBLISH_INTERVAL_US G_USEC_PER_SEC

struct learner_image {
	struct learner *learner;
	struct image *img;
	struct model *model;
	char *dir;
	char *model_path;
	char *log_path;
	FILE *log;
	uint64_t log_bytes;
	uint32_t block_size;
	bool state_loaded;
	uint64_t session_start_us;
	uint64_t dropped;     /* atomic */
	struct model_stats published; /* the thread's latest snapshot; under learner->lock */
	/* Background fill pacing: bytes requested in the current one-second window. */
	uint64_t bg_window_start_us;
	uint64_t bg_window_bytes;
	struct heat *heat;	/* thread only: every prediction, decayed */
	GBytes *heat_file;	/* its latest serialised form; under learner->lock */
	uint64_t heat_at_us;	/* when heat_file was made */
	uint64_t heat_every_us; /* 100 x what making it took: at most 1% of a core */
	size_t heat_entries, heat_bytes; /* as of heat_file; under learner->lock */
};

struct pending_event {
	struct learner_image *li;
	struct model_event ev;
};

struct learner {
	struct learner_config cfg;
	char *state_dir;
	GPtrArray *images; /* of struct learner_image */
	GThread *thread;

	GMutex lock; /* protects ring, head, count, stopping; cond signals new events */
	GCond cond;
	struct pending_event *ring;
	size_t head, count;
	bool stopping;

	int summary_requested; /* set from a signal handler */
	double host_pressure;  /* thread only */
	double host_cpu;       /* thread only: others' CPU share, see load.h */
	struct load_cpu_sample cpu_at; /* thread only: counters at pressure_at_us */
	unsigned host_cpus;
	uint64_t pressure_at_us;
	struct cpu_budget cpu;	 /* thread only: its own CPU against cfg.cpu_cap */
	double cpu_share, cpu_scale; /* as last published; under lock */
};

/* The model counts in blocks, so the block size is part of what it is valid for. */
static char *state_key(const char *url, const char *validator, uint32_t block_size)
{
	g_autofree char *both = g_strdup_printf("%s\n%s\n%u", url, validator, block_size);
	char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, both, -1);

	hash[20] = '\0';
	return hash;
}

struct learner *learner_new(const struct learner_config *cfg, GError **error)
{
	struct learner *l = g_new0(struct learner, 1);

	l->cfg = *cfg;
	l->state_dir = g_strdup(cfg->state_dir);
	l->cfg.state_dir = l->state_dir;
	l->cfg.model = g_strdup(cfg->model);
	l->images = g_ptr_array_new();
	l->host_cpus = g_get_num_processors();
	cpu_budget_init(&l->cpu, cfg->cpu_cap > 0 ? cfg->cpu_cap : 0.10);
	l->cpu_scale = 1.0;
	l->ring = g_new(struct pending_event, RING_EVENTS);
	g_mutex_init(&l->lock);
	g_cond_init(&l->cond);
	if (g_mkdir_with_parents(l->state_dir, 0700) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot create state directory %s: %s", l->state_dir, g_strerror(e));
		learner_free(l);
		return NULL;
	}
	return l;
}

static void learner_load_state(struct learner_image *li, const char *url)
{
	g_autoptr(GError) why = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;
	GBytes *bytes;

	if (!g_file_get_contents(li->model_path, &data, &len, &why)) {
		if (!g_error_matches(why, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			log_warning("%s: cannot read learned state: %s", url, why->message);
		return;
	}
	bytes = g_bytes_new_take(g_steal_pointer(&data), len);
	li->state_loaded = model_load(li->model, bytes, &why);
	g_bytes_unref(bytes);
	if (!li->state_loaded)
		log_warning("%s: learned state %s rejected (%s); learning afresh", url,
			    li->model_path, why->message);
}

struct learner_image *learner_add_image(struct learner *l, const char *url, const char *validator,
					uint64_t nblocks, uint32_t block_size, GError **error)
{
	struct learner_image *li = g_new0(struct learner_image, 1);
	g_autofree char *key = state_key(url, validator, block_size);
	g_autofree char *source_path = NULL;
	g_autofree char *source = NULL;
	/* An empty image still gets a (one-block) model: it simply never sees an access. */
	struct model_params params = l->cfg.model_params;

	params.image_blocks = MAX(nblocks, 1);
	li->learner = l;
	li->block_size = block_size;
	li->dir = g_build_filename(l->state_dir, key, NULL);
	li->model_path = g_build_filename(li->dir, "model", NULL);
	li->log_path = g_build_filename(li->dir, "access.log", NULL);
	g_ptr_array_add(l->images, li);
	if (g_mkdir_with_parents(li->dir, 0700) != 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot create state directory %s: %s", li->dir, g_strerror(e));
		return NULL;
	}
	li->model = model_new(l->cfg.model, &params, error);
	if (!li->model)
		return NULL;
	li->heat = heat_new(&(struct heat_params){.nblocks = params.image_blocks}, error);
	if (!li->heat)
		return NULL;
	learner_load_state(li, url);
	source_path = g_build_filename(li->dir, "source", NULL);
	source = g_strdup_printf("url %s\nvalidator %s\n", url, validator);
	g_file_set_contents(source_path, source, -1, NULL);
	return li;
}

void learner_attach(struct learner_image *li, struct image *img)
{
	li->img = img;
}

void learner_on_access(void *opaque, const struct model_event *event)
{
	struct learner_image *li = opaque;
	struct learner *l = li->learner;
	bool wake;

	g_mutex_lock(&l->lock);
	if (l->count == RING_EVENTS) {
		g_mutex_unlock(&l->lock);
		__atomic_fetch_add(&li->dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	l->ring[(l->head + l->count) % RING_EVENTS] = (struct pending_event){li, *event};
	wake = l->count++ == 0;
	g_mutex_unlock(&l->lock);
	if (wake)
		g_cond_signal(&l->cond);
}

static void access_log_open(struct learner_image *li)
{
	struct stat st;
	bool fresh = stat(li->log_path, &st) != 0 || st.st_size == 0;

	li->log = fopen(li->log_path, "a");
	if (!li->log) {
		log_warning("%s: %s; accesses are not logged", li->log_path, g_strerror(errno));
		return;
	}
	li->log_bytes = fresh ? 0 : (uint64_t)st.st_size;
	if (fresh)
		fprintf(li->log, "%s\n", TRACEFILE_ACCESS_LOG_HEADER);
	fprintf(li->log, "# mount at %ld\n", (long)time(NULL));
}

static void access_log_append(struct learner_image *li, const struct model_event *ev)
{
	struct tracefile_record rec = {
		.time_s = (double)(ev->time_us - li->session_start_us) / 1e6,
		.offset = ev->block * li->block_size,
		.length = (uint64_t)MAX(ev->nblocks, 1) * li->block_size,
		.op = 'R',
	};
	char line[128];
	int n;

	if (!li->log)
		return;
	n = tracefile_format_record(line, sizeof(line), &rec);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	fputs(line, li->log);
	li->log_bytes += (uint64_t)n;
	if (li->log_bytes > ACCESS_LOG_MAX_BYTES) {
		g_autofree char *old = g_strdup_printf("%s.1", li->log_path);

		fclose(li->log);
		rename(li->log_path, old);
		access_log_open(li);
	}
}

static gboolean learner_save_image(struct learner_image *li)
{
	g_autoptr(GError) error = NULL;
	GBytes *bytes = model_save(li->model);
	gsize len;
	const char *data = g_bytes_get_data(bytes, &len);
	gboolean ok = g_file_set_contents(li->model_path, data, (gssize)len, &error);

	if (!ok)
		log_warning("saving learned state: %s", error->message);
	g_bytes_unref(bytes);
	if (li->log)
		fflush(li->log);
	return ok;
}

/* Blocks the sources in @mask fetched ahead, and of those, how many were then read. */
static void image_ahead_counts(const struct image_stats *s, unsigned mask, uint64_t *ahead,
			       uint64_t *used)
{
	*ahead = *used = 0;
	for (int i = 0; i < IMAGE_N_SOURCES; i++) {
		if (!(mask & (1u << i)))
			continue;
		*ahead += stats_get(&s->ahead_blocks[i]);
		*used += stats_get(&s->ahead_used_blocks[i]);
	}
}

/* Of what the sources in @mask fetched ahead, the share used; -1 until enough is known. */
static double image_accuracy(const struct image_stats *s, unsigned mask)
{
	uint64_t ahead, used;

	image_ahead_counts(s, mask, &ahead, &used);
	return ahead < ACCURACY_MIN_BLOCKS ? -1.0 : (double)used / (double)ahead;
}

static uint64_t cached_bytes(struct learner_image *li)
{
	return store_cached_blocks(image_store(li->img)) * li->block_size;
}

/*
 * Keep the cache within cache_size: when over, give back down to 90% of it, from each
 * image in proportion to what it holds. The 10% slack keeps eviction (which flushes the
 * map) from running on every tick.
 */
static void learner_enforce_cache_size(struct learner *l)
{
	uint64_t total = 0, target = l->cfg.cache_size / 10 * 9;

	if (l->cfg.cache_size == 0)
		return;
	for (guint i = 0; i < l->images->len; i++)
		total += cached_bytes(l->images->pdata[i]);
	if (total <= l->cfg.cache_size)
		return;
	for (guint i = 0; i < l->images->len; i++) {
		struct learner_image *li = l->images->pdata[i];
		uint64_t mine = cached_bytes(li);
		uint64_t give = (uint64_t)((double)(total - target) * (double)mine / (double)total);

		if (give >= li->block_size)
			image_evict(li->img, give / li->block_size);
	}
}

/* Background fill would only evict what it fetched: not while the cache is nearly full. */
static bool learner_cache_has_room(struct learner *l)
{
	uint64_t total = 0;

	if (l->cfg.cache_size == 0)
		return true;
	for (guint i = 0; i < l->images->len; i++)
		total += cached_bytes(l->images->pdata[i]);
	return total < l->cfg.cache_size / 10 * 8;
}

/* One round of planning for one image: predictions -> tiers -> fetches. */
static void learner_prefetch(struct learner *l, struct learner_image *li, uint64_t now)
{
	struct model_prediction preds[MAX_PREDICTIONS];
	struct prefetch_choice choices[MAX_PREDICTIONS];
	const struct image_stats *s = image_stats(li->img);
	struct origin_counters oc;
	struct prefetch_state st = {.now_us = now};
	size_t n, k;
	uint64_t quota;

	origin_get_counters(l->cfg.origin, &oc);
	link_get(l->cfg.link, &st.rtt_us, &st.bandwidth);
	st.inflight_bytes = stats_get(&s->ahead_inflight_bytes);
	st.urgent_inflight_bytes = st.inflight_bytes - MIN(st.inflight_bytes,
							   stats_get(&s->bg_inflight_bytes));
	st.demand_waiting = (unsigned)oc.demand;
	st.last_demand_us = stats_get(&s->last_miss_us);
	st.accuracy = image_accuracy(s, IMAGE_PREDICTION_SOURCES);
	st.predictive_accuracy = image_accuracy(s, 1u << PREFETCH_TIER_PREDICTIVE);
	st.host_pressure = l->host_pressure;
	st.host_cpu = l->host_cpu;
	st.host_cpus = l->host_cpus;
	st.learned_end_us = model_learned_end_us(li->model);

	n = model_predict(li->model, now, l->cfg.horizon_us, preds, MAX_PREDICTIONS);
	heat_merge(li->heat, now, preds, n);
	n = image_drop_unwanted(li->img, preds, n);
	k = prefetch_plan(&l->cfg.params, &st, preds, n, choices, MAX_PREDICTIONS);
	if (k > 0)
		st.inflight_bytes += image_prefetch(li->img, choices, k);

	if (now - li->bg_window_start_us >= G_USEC_PER_SEC) {
		li->bg_window_start_us = now;
		li->bg_window_bytes = 0;
	}
	quota = prefetch_background_quota(&l->cfg.params, &st, li->bg_window_bytes);
	if (quota > 0 && learner_cache_has_room(l))
		li->bg_window_bytes += image_fill(li->img, quota);
}

/* A new .aheadfs/NAME.heat for readers: the heat now and what is cached now. */
static void learner_publish_heat(struct learner *l, struct learner_image *li, uint64_t now)
{
	GBytes *fresh, *old;
	gint64 t0;

	if (li->heat_file && now - li->heat_at_us < MAX(HEAT_PUBLISH_INTERVAL_US, li->heat_every_us))
		return;
	t0 = g_get_monotonic_time();
	fresh = heat_serialise(li->heat, now, g_get_real_time() / G_USEC_PER_SEC, li->block_size,
			       store_map(image_store(li->img)));
	li->heat_at_us = now;
	li->heat_every_us = (uint64_t)(g_get_monotonic_time() - t0) * 100;
	g_mutex_lock(&l->lock);
	old = li->heat_file;
	li->heat_file = fresh;
	li->heat_entries = heat_count(li->heat);
	li->heat_bytes = heat_memory_bytes(li->heat) + g_bytes_get_size(fresh);
	g_mutex_unlock(&l->lock);
	if (old)
		g_bytes_unref(old);
}

GBytes *learner_image_heat(struct learner_image *li)
{
	GBytes *b;

	g_mutex_lock(&li->learner->lock);
	b = li->heat_file ? g_bytes_ref(li->heat_file) : NULL;
	g_mutex_unlock(&li->learner->lock);
	return b;
}

static void learner_summary(struct learner *l)
{
	for (guint i = 0; i < l->images->len; i++) {
		struct learner_image *li = l->images->pdata[i];
		const struct image_stats *s = image_stats(li->img);
		uint64_t ahead, used;

		image_ahead_counts(s, IMAGE_PREDICTION_SOURCES, &ahead, &used);
		log_info("%s: %" G_GUINT64_FORMAT " reads, %" G_GUINT64_FORMAT " hits, %" G_GUINT64_FORMAT
			 " misses, %" G_GUINT64_FORMAT " late; predicted and fetched %" G_GUINT64_FORMAT
			 " blocks, %" G_GUINT64_FORMAT " used; %" G_GUINT64_FORMAT
			 " reads helped, %.1f s of read time saved; %.1f%% local; confidence %.2f",
			 image_name(li->img), stats_get(&s->reads), stats_get(&s->hit_reads),
			 stats_get(&s->miss_reads), stats_get(&s->late_reads), ahead, used,
			 stats_get(&s->helped_reads), (double)stats_get(&s->saved_us) / 1e6,
			 100.0 * (double)store_cached_blocks(image_store(li->img)) /
				 (double)MAX(image_block_count(li->img), 1),
			 model_confidence(li->model));
	}
}

/* Take the pending events out of the ring. Called with l->lock held. */
static size_t learner_take_locked(struct learner *l, struct pending_event *out, size_t max)
{
	size_t n = MIN(max, l->count);

	for (size_t i = 0; i < n; i++)
		out[i] = l->ring[(l->head + i) % RING_EVENTS];
	l->head = (l->head + n) % RING_EVENTS;
	l->count -= n;
	return n;
}

/* Host load for the policy: PSI now, and others' CPU share since the last sample. */
static void learner_sample_host(struct learner *l)
{
	struct load_cpu_sample cpu;

	l->host_pressure = load_host_pressure();
	if (load_cpu_sample(&cpu)) {
		l->host_cpu = l->cpu_at.total ? load_cpu_others_share(&l->cpu_at, &cpu) : 0;
		l->cpu_at = cpu;
	}
}

/* This thread's CPU time, ns (0 where the clock is missing: the budget then never acts). */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Measured CPU over the cap: the models' elastic work (the LSTM) gets less of it. The
 * models and the stats hear of it once per budget window, not at every tick.
 */
static void learner_pace_cpu(struct learner *l, uint64_t now)
{
	double before = l->cpu.scale;

	if (!cpu_budget_update(&l->cpu, now, thread_cpu_ns()))
		return;
	if (l->cpu.scale != before)
		for (guint i = 0; i < l->images->len; i++)
			model_set_cpu_scale(((struct learner_image *)l->images->pdata[i])->model,
					    l->cpu.scale);
	g_mutex_lock(&l->lock);
	l->cpu_share = l->cpu.share;
	l->cpu_scale = l->cpu.scale;
	g_mutex_unlock(&l->lock);
}

static void learner_tick(struct learner *l, uint64_t now, uint64_t *saved_at)
{
	learner_enforce_cache_size(l);
	for (guint i = 0; i < l->images->len; i++)
		image_trim(((struct learner_image *)l->images->pdata[i])->img);
	learner_pace_cpu(l, now);
	if (now - l->pressure_at_us >= PRESSURE_INTERVAL_US) {
		learner_sample_host(l);
		l->pressure_at_us = now;
	}
	if (l->cfg.prefetch)
		for (guint i = 0; i < l->images->len; i++)
			learner_prefetch(l, l->images->pdata[i], now);
	for (guint i = 0; i < l->images->len; i++) {
		struct learner_image *li = l->images->pdata[i];
		struct model_stats ms;

		model_get_stats(li->model, &ms);
		g_mutex_lock(&l->lock);
		li->published = ms;
		g_mutex_unlock(&l->lock);
		learner_publish_heat(l, li, now);
	}
	if (__atomic_exchange_n(&l->summary_requested, 0, __ATOMIC_ACQ_REL))
		learner_summary(l);
	if (now - *saved_at >= SAVE_INTERVAL_US) {
		for (guint i = 0; i < l->images->len; i++)
			learner_save_image(l->images->pdata[i]);
		*saved_at = now;
	}
}

static gpointer learner_main(gpointer data)
{
	struct learner *l = data;
	struct pending_event *batch = g_new(struct pending_event, 4096);
	uint64_t saved_at = (uint64_t)g_get_monotonic_time();

	for (;;) {
		size_t n;
		bool stop;

		g_mutex_lock(&l->lock);
		if (l->count == 0 && !l->stopping)
			g_cond_wait_until(&l->cond, &l->lock, g_get_monotonic_time() + TICK_US);
		n = learner_take_locked(l, batch, 4096);
		stop = l->stopping;
		g_mutex_unlock(&l->lock);
		for (size_t i = 0; i < n; i++) {
			model_observe(batch[i].li->model, &batch[i].ev);
			access_log_append(batch[i].li, &batch[i].ev);
		}
		if (stop)
			break;
		learner_tick(l, (uint64_t)g_get_monotonic_time(), &saved_at);
	}
	g_free(batch);
	return NULL;
}

void learner_start(struct learner *l)
{
	uint64_t now = (uint64_t)g_get_monotonic_time();

	for (guint i = 0; i < l->images->len; i++) {
		struct learner_image *li = l->images->pdata[i];

		li->session_start_us = now;
		model_session_start(li->model, now);
		access_log_open(li);
	}
	l->thread = g_thread_new("aheadfs-learn", learner_main, l);
}

void learner_request_summary(struct learner *l)
{
	__atomic_store_n(&l->summary_requested, 1, __ATOMIC_RELAXED);
}

void learner_image_stats(struct learner_image *li, struct learner_image_stats *out)
{
	struct learner *l = li->learner;

	/* The model belongs to the thread: read what it last published. */
	g_mutex_lock(&l->lock);
	out->confidence = li->published.confidence;
	out->entropy = li->published.entropy;
	out->leader = li->published.leader != MODEL_EXPERT_NONE
			  ? model_expert_to_string(li->published.leader)
			  : NULL;
	out->model_bytes = li->published.memory_bytes;
	out->events = li->published.events;
	out->heat_entries = li->heat_entries;
	out->heat_bytes = li->heat_bytes;
	out->cpu_share = l->cpu_share;
	out->cpu_scale = l->cpu_scale;
	g_mutex_unlock(&l->lock);
	out->model = l->cfg.model;
	out->dropped_events = __atomic_load_n(&li->dropped, __ATOMIC_RELAXED);
	out->state_loaded = li->state_loaded;
}

void learner_free(struct learner *l)
{
	if (!l)
		return;
	if (l->thread) {
		g_mutex_lock(&l->lock);
		l->stopping = true;
		g_cond_signal(&l->cond);
		g_mutex_unlock(&l->lock);
		g_thread_join(l->thread);
	}
	for (guint i = 0; i < l->images->len; i++) {
		struct learner_image *li = l->images->pdata[i];

		if (li->model && l->thread)
			learner_save_image(li);
		if (li->log)
			fclose(li->log);
		model_free(li->model);
		heat_free(li->heat);
		if (li->heat_file)
			g_bytes_unref(li->heat_file);
		g_free(li->dir);
		g_free(li->model_path);
		g_free(li->log_path);
		g_free(li);
	}
	g_ptr_array_free(l->images, TRUE);
	g_free(l->ring);
	g_mutex_clear(&l->lock);
	g_cond_clear(&l->cond);
	g_free((char *)l->cfg.model);
	g_free(l->state_dir);
	g_free(l);
}

/*
 * aheadfs: mount remote disk images.
 *
 * Set-up happens in the order that lets every error reach the user's terminal: parse
 * options, probe every origin, open every cache, mount; only then daemonize and start
 * the threads (fork would not carry them over). Teardown runs in reverse.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aheadfs/fs.h"
#include "aheadfs/image.h"
#include "aheadfs/learner.h"
#include "aheadfs/link.h"
#include "aheadfs/log.h"
#include "aheadfs/manifest.h"
#include "aheadfs/options.h"
#include "aheadfs/origin.h"
#include "aheadfs/s3.h"
#include "aheadfs/store.h"

#define MAX_REQUEST_BYTES (4 * 1024 * 1024)
#define FLUSH_INTERVAL_MS 2000

/* fuse_opt treats ',' and '\' specially inside -o values. */
static char *escape_opt_value(const char *s)
{
	GString *out = g_string_new(NULL);

	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *s);
	}
	return g_string_free(out, FALSE);
}

static void add_mount_identity(struct fuse_args *args, const struct options *opts)
{
	const struct manifest_entry *first = &g_array_index(opts->images, struct manifest_entry, 0);
	/* /proc/mounts is world-readable: no presigned URL's signature or session token. */
	g_autofree char *shown = s3_url_redact(first->url);
	g_autofree char *fsname = escape_opt_value(opts->images->len == 1 ? shown : "aheadfs");
	g_autofree char *opt = g_strdup_printf("-osubtype=aheadfs,fsname=%s", fsname);

	fuse_opt_add_arg(args, opt);
}

/* Probe one image's origin; warn when it cannot tell a change of the remote image. */
static gboolean probe_image(const struct manifest_entry *e, const struct origin_config *ocfg,
			    struct origin_info *info, GError **error)
{
	if (!origin_probe(ocfg, e->url, info, error))
		return FALSE;
	if (!*info->validator) {
		g_autofree char *shown = s3_url_redact(e->url);

		log_warning("%s: the server sends neither ETag nor Last-Modified; a change of the "
			    "remote image cannot be detected",
			    shown);
	}
	return TRUE;
}

/* Takes over `info` (cleared on return, success or not). */
static struct image *open_image(const struct options *opts, const struct manifest_entry *e,
				struct fs *fs, struct origin_info *info, GError **error)
{
	/* A presigned URL signed again is the same object: same cache, same model. */
	g_autofree char *key = s3_url_unsigned(e->url);
	g_autofree char *shown = s3_url_redact(e->url);
	struct learner_image *li;
	struct store_config scfg;
	struct image_config icfg;
	struct store *store;
	struct image *img;

	scfg = (struct store_config){
		.cache_dir = opts->cache_dir,
		.url = key,
		.validator = info->validator,
		.image_size = info->size,
		.block_size = opts->block_size,
	};
	store = store_open(&scfg, error);
	if (!store) {
		origin_info_clear(info);
		return NULL;
	}
	if (store_discarded(store))
		log_warning("%s: previous cache discarded: %s", shown, store_discarded(store));
	li = learner_add_image(fs->learner, key, info->validator, store_block_count(store),
			       opts->block_size, error);
	if (!li) {
		store_close(store);
		origin_info_clear(info);
		return NULL;
	}
	icfg = (struct image_config){
		.name = e->name,
		.url = e->url,
		.info = info,
		.store = store,
		.origin = fs->origin,
		.max_request_bytes = MAX_REQUEST_BYTES,
		.readahead = opts->prefetch,
		.link = &fs->link,
		.on_access = learner_on_access,
		.on_access_opaque = li,
	};
	img = image_new(&icfg);
	learner_attach(li, img);
	fs->learned[fs->n_images] = li;
	origin_info_clear(info);
	return img;
}

static gboolean open_images(const struct options *opts, struct fs *fs, GError **error)
{
	struct origin_config ocfg = {
		.connections = opts->connections,
		.timeout_s = opts->timeout_s,
		.retries = opts->retries,
		.headers = opts->headers,
		.cafile = opts->cafile,
		.insecure = opts->insecure,
		.s3 = opts->s3,
		.link = &fs->link,
	};
	g_autofree struct origin_info *infos = g_new0(struct origin_info, opts->images->len);
	gboolean ok = FALSE;

	struct learner_config lcfg = {
		.state_dir = opts->state_dir,
		.model = opts->model,
		.model_params = {.memory_cap_bytes = opts->model_memory,
				 .lstm_hidden = opts->lstm_hidden,
				 .lstm_vocab = opts->lstm_vocab,
				 .lstm_train_every = opts->lstm_train_every,
				 /* The LSTM's own pacing: 80% of the thread's cap. */
				 .lstm_cpu_permille = (uint32_t)MAX(opts->model_cpu * 800.0, 1.0)},
		.cpu_cap = opts->model_cpu,
		.prefetch = opts->prefetch,
		.horizon_us = 10 * G_USEC_PER_SEC,
		.cache_size = opts->cache_size,
		.link = &fs->link,
	};

	/*
	 * Every origin answers before anything is created on disk: a mount that fails here
	 * (403, 404, unreachable) leaves no cache or state directory behind.
	 */
	link_init(&fs->link);
	for (guint i = 0; i < opts->images->len; i++)
		if (!probe_image(&g_array_index(opts->images, struct manifest_entry, i), &ocfg,
				 &infos[i], error))
			goto out;
	fs->origin = origin_new(&ocfg, error);
	if (!fs->origin)
		goto out;
	lcfg.origin = fs->origin;
	prefetch_params_init(&lcfg.params, opts->block_size);
	lcfg.params.critical_p = opts->critical_p;
	lcfg.params.predictive_p = opts->predictive_p;
	lcfg.params.critical_window_us = opts->critical_window_ms * 1000;
	lcfg.params.bg_bandwidth = opts->bg_bandwidth;
	lcfg.params.idle_pressure = opts->idle_pressure;
	lcfg.params.idle_cpu = opts->idle_cpu;
	fs->learner = learner_new(&lcfg, error);
	if (!fs->learner)
		goto out;
	fs->images = g_new0(struct image *, opts->images->len);
	fs->learned = g_new0(struct learner_image *, opts->images->len);
	for (guint i = 0; i < opts->images->len; i++) {
		const struct manifest_entry *e = &g_array_index(opts->images, struct manifest_entry, i);

		fs->images[i] = open_image(opts, e, fs, &infos[i], error);
		if (!fs->images[i])
			goto out;
		fs->n_images++;
	}
	ok = TRUE;
out:
	for (guint i = 0; i < opts->images->len; i++)
		origin_info_clear(&infos[i]);
	return ok;
}

static void close_images(struct fs *fs)
{
	/* The learner first (it starts fetches), then the origin (it completes them), so
	 * nothing touches a freed image. */
	learner_free(fs->learner);
	origin_free(fs->origin);
	for (guint i = 0; i < fs->n_images; i++)
		image_free(fs->images[i]);
	g_free(fs->images);
	g_free(fs->learned);
	link_clear(&fs->link);
}

/* SIGUSR1: a summary in the log. The one mutable global, for the signal handler. */
static struct learner *summary_learner;

static void on_sigusr1(int sig)
{
	(void)sig;
	if (summary_learner)
		learner_request_summary(summary_learner);
}

static int run_session(struct fuse_args *args, struct fs *fs, const struct options *opts,
		       const struct fuse_cmdline_opts *c)
{
	g_autoptr(GError) error = NULL;
	struct fuse_session *se;
	int ret = 1;

	/* Before any network traffic, so a bad FUSE option is reported first. */
	se = fuse_session_new(args, fs_operations(), sizeof(*fs_operations()), fs);
	if (!se)
		return 1;
	if (!open_images(opts, fs, &error)) {
		fprintf(stderr, "aheadfs: %s\n", error->message);
		goto out_destroy;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, c->mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(c->foreground);
	log_init(!c->foreground, c->debug);

	for (guint i = 0; i < fs->n_images; i++) {
		image_start(fs->images[i]);
		store_start_flusher(image_store(fs->images[i]), FLUSH_INTERVAL_MS);
	}
	origin_start(fs->origin);
	learner_start(fs->learner);
	summary_learner = fs->learner;
	signal(SIGUSR1, on_sigusr1);

	if (c->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		fuse_loop_cfg_set_clone_fd(lc, c->clone_fd);
		fuse_loop_cfg_set_max_threads(lc, c->max_threads);
		/* Unset (UINT_MAX) keeps libfuse's default; passed on, libfuse 3.14 logs
		 * "Ignoring invalid max threads value" at every mount. */
		if (c->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, c->max_idle_threads);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fuse_session_unmount(se);
	signal(SIGUSR1, SIG_IGN);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts c = {0};
	g_autoptr(GError) error = NULL;
	struct options opts;
	struct fs fs = {0};
	int ret = 1;

	log_init(false, false);
	if (!options_parse(&args, &opts, &error)) {
		fprintf(stderr, "aheadfs: %s\n", error->message);
		fprintf(stderr, "Try 'aheadfs --help' for more information.\n");
		goto out;
	}
	if (opts.show_help) {
		options_print_help(stdout, "aheadfs");
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (opts.show_version) {
		printf("aheadfs %s (libfuse %s, %s)\n", PACKAGE_VERSION, fuse_pkgversion(),
		       curl_version());
		ret = 0;
		goto out;
	}
	add_mount_identity(&args, &opts);
	if (fuse_parse_cmdline(&args, &c) != 0)
		goto out;
	if (c.debug)
		log_init(false, true);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	fs.started_us = g_get_monotonic_time();
	fs.mounted_at = time(NULL);
	fs.uid = getuid();
	fs.gid = getgid();
	fs.direct_io = opts.direct_io;
	ret = run_session(&args, &fs, &opts, &c);
	close_images(&fs);
	curl_global_cleanup();
out:
	free(c.mountpoint);
	fuse_opt_free_args(&args);
	options_clear(&opts);
	return ret;
}

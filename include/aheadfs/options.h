/*
 * options: the command line and mount options of aheadfs.
 *
 * aheadfs takes its own -o options out of the argument list and leaves the rest (FUSE's
 * own: -f -d -s, allow_other, max_threads, ...) for libfuse, so one list works from the
 * shell, from /etc/fstab through mount.fuse3, and from systemd mount units.
 */
#ifndef AHEADFS_OPTIONS_H
#define AHEADFS_OPTIONS_H

#include <fuse_opt.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aheadfs/s3.h"

#define OPTIONS_DEFAULT_BLOCK_SIZE (64 * 1024)
#define OPTIONS_DEFAULT_CONNECTIONS 8
#define OPTIONS_DEFAULT_TIMEOUT_S 30
#define OPTIONS_DEFAULT_RETRIES 3
#define OPTIONS_DEFAULT_MODEL "hybrid"
#define OPTIONS_DEFAULT_MODEL_MEMORY (16 << 20)

struct options {
	GArray *images; /* of struct manifest_entry: what to mount */
	char *mountpoint;
	char *cache_dir;
	uint32_t block_size;
	unsigned connections;
	unsigned timeout_s;
	unsigned retries;
	char **headers; /* "Name: value", NULL-terminated */
	char *cafile;
	bool insecure;
	bool prefetch; /* fetch ahead of readers (readahead, learned tiers, fill); off: on demand */
	bool direct_io; /* images bypass the kernel's page cache */
	char *state_dir;	   /* learned state; default CACHE_DIR/state */
	char *model;		   /* predictor: none sequential markov profile hybrid */
	uint64_t model_memory;	   /* bytes per image model */
	double critical_p;	   /* prefetch tier thresholds */
	double predictive_p;
	uint64_t critical_window_ms;
	uint64_t bg_bandwidth;	   /* background fill, bytes/s; 0 = off */
	uint64_t cache_size;	   /* bytes the cache may hold, all images; 0 = unbounded */
	double idle_pressure;	   /* host pressure under which the host counts as idle */
	double idle_cpu;	   /* ... and others' CPU share under which it does */
	double model_cpu;	   /* the learner thread's CPU cap, share of one core */
	unsigned lstm_hidden;	   /* LSTM hidden units, 8..256 by 8 */
	unsigned lstm_vocab;	   /* LSTM delta classes, 8..1024 */
	unsigned lstm_train_every; /* at most one LSTM update per N accesses */
	/*
	 * Sign every request with SigV4, or NULL. Set when an image is s3:// (credentials
	 * from credentials_file= or the AWS_* environment) or credentials_file= is given.
	 * s3:// URLs in `images` are already resolved to http(s) URLs.
	 */
	struct s3_signing *s3;
	bool show_help;
	bool show_version;
};

/*
 * Parse and validate. On success `args` holds what is left for libfuse (with the
 * mountpoint), and `opts` is filled (free with options_clear). With --help or --version
 * only those flags are guaranteed to be set.
 */
gboolean options_parse(struct fuse_args *args, struct options *opts, GError **error);
void options_clear(struct options *opts);

/* "64K", "4M", "1G", "65536": a byte count with an optional binary suffix. */
gboolean options_parse_size(const char *text, uint64_t *out, GError **error);

/* The cache directory used when -o cache_dir is not given. */
char *options_default_cache_dir(void);

void options_print_help(FILE *out, const char *argv0);

#endif

/*
 * options: fuse_opt tables for aheadfs's own options, then validation with messages that
 * name the option and the value. Numbers are parsed here rather than with fuse_opt's
 * scanf templates so "connections=lots" is an error, not a silent zero.
 */
#include "config.h"

#include "aheadfs/options.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "aheadfs/manifest.h"

/* What fuse_opt fills in: raw strings, validated afterwards. */
struct raw_options {
	char *cache_dir;
	char *block_size;
	char *connections;
	char *timeout;
	char *retries;
	char *cafile;
	char *name;
	char *manifest;
	char *prefetch;
	char *state_dir;
	char *model;
	char *model_memory;
	char *critical_p;
	char *predictive_p;
	char *critical_window;
	char *bg_bandwidth;
	char *cache_size;
	char *idle_pressure;
	char *idle_cpu;
	char *model_cpu;
	char *lstm_hidden;
	char *lstm_vocab;
	char *lstm_train_every;
	char *region;
	char *endpoint;
	char *credentials_file;
	int path_style;
	int insecure;
	int direct_io;
	GPtrArray *headers;
	GPtrArray *positional;
	bool help;
	bool version;
};

enum {
	KEY_HEADER,
	KEY_HELP,
	KEY_VERSION,
};

#define RAW(t, field) {t, offsetof(struct raw_options, field), 1}

static const struct fuse_opt option_specs[] = {
	RAW("cache_dir=%s", cache_dir),
	RAW("block_size=%s", block_size),
	RAW("connections=%s", connections),
	RAW("timeout=%s", timeout),
	RAW("retries=%s", retries),
	RAW("cafile=%s", cafile),
	RAW("name=%s", name),
	RAW("manifest=%s", manifest),
	RAW("prefetch=%s", prefetch),
	RAW("state_dir=%s", state_dir),
	RAW("model=%s", model),
	RAW("model_memory=%s", model_memory),
	RAW("critical_p=%s", critical_p),
	RAW("predictive_p=%s", predictive_p),
	RAW("critical_window=%s", critical_window),
	RAW("bg_bandwidth=%s", bg_bandwidth),
	RAW("cache_size=%s", cache_size),
	RAW("idle_pressure=%s", idle_pressure),
	RAW("idle_cpu=%s", idle_cpu),
	RAW("model_cpu=%s", model_cpu),
	RAW("lstm_hidden=%s", lstm_hidden),
	RAW("lstm_vocab=%s", lstm_vocab),
	RAW("lstm_train_every=%s", lstm_train_every),
	RAW("region=%s", region),
	RAW("endpoint=%s", endpoint),
	RAW("credentials_file=%s", credentials_file),
	RAW("path_style", path_style),
	RAW("insecure", insecure),
	RAW("direct_io", direct_io),
	FUSE_OPT_KEY("header=", KEY_HEADER),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	/* fstab options meant for mount(8) or systemd, not for the filesystem. */
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END,
};

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs G_GNUC_UNUSED)
{
	struct raw_options *raw = data;

	switch (key) {
	case KEY_HEADER:
		g_ptr_array_add(raw->headers, g_strdup(arg + strlen("header=")));
		return 0;
	case KEY_HELP:
		raw->help = true;
		return 0;
	case KEY_VERSION:
		raw->version = true;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		g_ptr_array_add(raw->positional, g_strdup(arg));
		return 0;
	default:
		return 1; /* for libfuse */
	}
}

gboolean options_parse_size(const char *text, uint64_t *out, GError **error)
{
	char *end = NULL;
	uint64_t v, mult = 1;

	if (!text || !g_ascii_isdigit(*text))
		goto bad;
	errno = 0;
	v = g_ascii_strtoull(text, &end, 10);
	if (errno == ERANGE)
		goto bad;
	switch (g_ascii_toupper(*end)) {
	case 'K':
		mult = UINT64_C(1) << 10;
		break;
	case 'M':
		mult = UINT64_C(1) << 20;
		break;
	case 'G':
		mult = UINT64_C(1) << 30;
		break;
	case 'T':
		mult = UINT64_C(1) << 40;
		break;
	case '\0':
		break;
	default:
		goto bad;
	}
	if (mult > 1) {
		end++;
		if (g_ascii_toupper(*end) == 'I' && g_ascii_toupper(end[1]) == 'B')
			end += 2;
		else if (g_ascii_toupper(*end) == 'B')
			end++;
	}
	if (*end != '\0' || v > UINT64_MAX / mult)
		goto bad;
	*out = v * mult;
	return TRUE;
bad:
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "\"%s\" is not a size (examples: 65536, 64K, 4M, 1G)", text ? text : "");
	return FALSE;
}

static gboolean parse_uint(const char *name, const char *text, unsigned min, unsigned max,
			   unsigned *out, GError **error)
{
	char *end = NULL;
	guint64 v;

	if (!text)
		return TRUE; /* not given: keep the default */
	v = g_ascii_strtoull(text, &end, 10);
	if (!g_ascii_isdigit(*text) || *end != '\0' || v < min || v > max) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s: \"%s\" is not a whole number from %u to %u", name, text, min, max);
		return FALSE;
	}
	*out = (unsigned)v;
	return TRUE;
}

static gboolean check_block_size(const char *text, uint32_t *out, GError **error)
{
	g_autoptr(GError) why = NULL;
	uint64_t v;

	if (!text)
		return TRUE;
	if (!options_parse_size(text, &v, &why)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "block_size: %s",
			    why->message);
		return FALSE;
	}
	if (v < 4096 || v > 4 * 1024 * 1024 || (v & (v - 1)) != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "block_size: %s is not a power of two from 4K to 4M", text);
		return FALSE;
	}
	*out = (uint32_t)v;
	return TRUE;
}

static gboolean parse_fraction(const char *name, const char *text, double *out, GError **error)
{
	char *end = NULL;
	double v;

	if (!text)
		return TRUE;
	v = g_ascii_strtod(text, &end);
	if (end == text || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s: \"%s\" is not a probability from 0 to 1", name, text);
		return FALSE;
	}
	*out = v;
	return TRUE;
}

/* The learner's CPU cap and the LSTM's size and training rate (model.h's ranges). */
static gboolean check_lstm(const struct raw_options *raw, struct options *opts, GError **error)
{
	if (!parse_fraction("model_cpu", raw->model_cpu, &opts->model_cpu, error) ||
	    !parse_uint("lstm_hidden", raw->lstm_hidden, 8, 256, &opts->lstm_hidden, error) ||
	    !parse_uint("lstm_vocab", raw->lstm_vocab, 8, 1024, &opts->lstm_vocab, error) ||
	    !parse_uint("lstm_train_every", raw->lstm_train_every, 1, 1u << 20,
			&opts->lstm_train_every, error))
		return FALSE;
	if (opts->model_cpu < 0.01) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "model_cpu: \"%s\" is under 0.01 of a core", raw->model_cpu);
		return FALSE;
	}
	if (opts->lstm_hidden % 8 != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "lstm_hidden: \"%s\" is not a multiple of 8", raw->lstm_hidden);
		return FALSE;
	}
	return TRUE;
}

static gboolean parse_size_option(const char *name, const char *text, uint64_t *out,
				  GError **error)
{
	g_autoptr(GError) why = NULL;

	if (!text)
		return TRUE;
	if (!options_parse_size(text, out, &why)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: %s", name,
			    why->message);
		return FALSE;
	}
	return TRUE;
}

static gboolean check_model(const char *text, GError **error)
{
	static const char *const names[] = {"none", "sequential", "markov", "profile", "lstm",
					    "hybrid"};

	if (!text)
		return TRUE;
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
		if (strcmp(text, names[i]) == 0)
			return TRUE;
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "model: \"%s\" is not one of none, sequential, markov, profile, lstm, hybrid",
		    text);
	return FALSE;
}

static gboolean check_headers(GPtrArray *headers, GError **error)
{
	for (guint i = 0; i < headers->len; i++) {
		const char *h = headers->pdata[i];
		const char *colon = strchr(h, ':');

		/* A name is a token: no white space before the colon, no line breaks at all. */
		if (!colon || colon == h || strpbrk(h, "\r\n") ||
		    strcspn(h, " \t") < (size_t)(colon - h)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "header: \"%s\" is not NAME:VALUE", h);
			return FALSE;
		}
	}
	return TRUE;
}

char *options_default_cache_dir(void)
{
	if (geteuid() == 0)
		return g_strdup("/var/cache/aheadfs");
	return g_build_filename(g_get_user_cache_dir(), "aheadfs", NULL);
}

/*
 * Positional arguments: URL MOUNTPOINT, or with a manifest just MOUNTPOINT (a first
 * argument is then the fstab "source" field and is ignored unless it is a URL).
 */
static gboolean options_take_images(struct raw_options *raw, struct options *opts,
				    GError **error)
{
	GPtrArray *pos = raw->positional;
	g_autofree char *name = NULL;

	opts->images = manifest_new();
	if (raw->manifest) {
		if (pos->len < 1 || pos->len > 2 || (pos->len == 2 && strstr(pos->pdata[0], "://"))) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "with -o manifest give only the mountpoint");
			return FALSE;
		}
		opts->mountpoint = g_strdup(pos->pdata[pos->len - 1]);
		return manifest_load(opts->images, raw->manifest, error);
	}
	if (pos->len != 2) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    pos->len < 2 ? "missing URL or mountpoint (usage: aheadfs [options] "
					   "URL MOUNTPOINT)"
					 : "too many arguments (usage: aheadfs [options] URL "
					   "MOUNTPOINT)");
		return FALSE;
	}
	opts->mountpoint = g_strdup(pos->pdata[1]);
	if (!manifest_url_valid(pos->pdata[0], error))
		return FALSE;
	name = raw->name ? g_strdup(raw->name) : manifest_name_from_url(pos->pdata[0], error);
	return name && manifest_add(opts->images, name, pos->pdata[0], error);
}

/* The signing region: -o region=, else AWS_REGION, else AWS_DEFAULT_REGION, else AWS's. */
static const char *s3_region(const struct raw_options *raw)
{
	const char *env = g_getenv("AWS_REGION");

	if (raw->region)
		return raw->region;
	if (!env || !*env)
		env = g_getenv("AWS_DEFAULT_REGION");
	return env && *env ? env : S3_DEFAULT_REGION;
}

/*
 * S3: resolve s3:// URLs to the store's http(s) URLs and load the credentials. Signing is
 * for the whole mount, so a presigned URL (it carries its own signature, and a store
 * refuses a request signed twice) cannot share a mount with signed requests.
 */
static gboolean options_setup_s3(struct raw_options *raw, struct options *opts, GError **error)
{
	struct s3_endpoint ep = {
		.region = s3_region(raw),
		.endpoint = raw->endpoint,
		.path_style = raw->path_style != 0,
	};
	struct s3_credentials creds = {0};
	g_autoptr(GError) why = NULL;
	const char *presigned = NULL;
	bool any_s3 = false;

	for (guint i = 0; i < opts->images->len; i++) {
		const char *url = g_array_index(opts->images, struct manifest_entry, i).url;

		any_s3 |= s3_url_is_s3(url);
		if (!presigned && s3_url_is_presigned(url))
			presigned = url;
	}
	if (!any_s3 && (raw->endpoint || raw->path_style)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s: only for s3:// URLs", raw->endpoint ? "endpoint" : "path_style");
		return FALSE;
	}
	if (!any_s3 && !raw->credentials_file) {
		if (raw->region) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "region: only for s3:// URLs or with credentials_file");
			return FALSE;
		}
		return TRUE;
	}
	if (raw->credentials_file) {
		if (!s3_credentials_load_file(raw->credentials_file, &creds, &why)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "credentials_file: %s", why->message);
			return FALSE;
		}
	} else if (!s3_credentials_from_env(&creds, error)) {
		return FALSE;
	}
	opts->s3 = s3_signing_new(ep.region, &creds);
	if (presigned) {
		g_autofree char *shown = s3_url_redact(presigned);

		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s is presigned: it cannot be mounted with credentials (mount it "
			    "without s3:// images and without credentials_file)",
			    shown);
		return FALSE;
	}
	for (guint i = 0; i < opts->images->len; i++) {
		struct manifest_entry *e = &g_array_index(opts->images, struct manifest_entry, i);
		char *url;

		if (!s3_url_is_s3(e->url))
			continue;
		url = s3_url_resolve(e->url, &ep, error);
		if (!url)
			return FALSE;
		g_free(e->url);
		e->url = url;
	}
	return TRUE;
}

static gboolean options_validate(struct raw_options *raw, struct options *opts, GError **error)
{
	if (!check_block_size(raw->block_size, &opts->block_size, error) ||
	    !parse_uint("connections", raw->connections, 1, 64, &opts->connections, error) ||
	    !parse_uint("timeout", raw->timeout, 1, 3600, &opts->timeout_s, error) ||
	    !parse_uint("retries", raw->retries, 0, 100, &opts->retries, error) ||
	    !check_headers(raw->headers, error))
		return FALSE;
	if (raw->prefetch && strcmp(raw->prefetch, "on") != 0 && strcmp(raw->prefetch, "off") != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "prefetch: \"%s\" is neither on nor off", raw->prefetch);
		return FALSE;
	}
	opts->prefetch = !raw->prefetch || strcmp(raw->prefetch, "on") == 0;
	opts->direct_io = raw->direct_io != 0;
	if (!check_model(raw->model, error) ||
	    !parse_size_option("model_memory", raw->model_memory, &opts->model_memory, error) ||
	    !parse_fraction("critical_p", raw->critical_p, &opts->critical_p, error) ||
	    !parse_fraction("predictive_p", raw->predictive_p, &opts->predictive_p, error) ||
	    !parse_fraction("idle_pressure", raw->idle_pressure, &opts->idle_pressure, error) ||
	    !parse_fraction("idle_cpu", raw->idle_cpu, &opts->idle_cpu, error) ||
	    !parse_size_option("bg_bandwidth", raw->bg_bandwidth, &opts->bg_bandwidth, error) ||
	    !parse_size_option("cache_size", raw->cache_size, &opts->cache_size, error) ||
	    !check_lstm(raw, opts, error))
		return FALSE;
	if (raw->critical_window) {
		unsigned ms = 0;

		if (!parse_uint("critical_window", raw->critical_window, 0, 600000, &ms, error))
			return FALSE;
		opts->critical_window_ms = ms;
	}
	if (opts->model_memory < (64 << 10)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "model_memory: at least 64K");
		return FALSE;
	}
	opts->model = g_strdup(raw->model ? raw->model : OPTIONS_DEFAULT_MODEL);
	if (raw->state_dir && !g_path_is_absolute(raw->state_dir)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "state_dir: \"%s\" is not an absolute path", raw->state_dir);
		return FALSE;
	}
	if (raw->cafile && access(raw->cafile, R_OK) != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "cafile: cannot read %s", raw->cafile);
		return FALSE;
	}
	if (raw->cache_dir && !g_path_is_absolute(raw->cache_dir)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "cache_dir: \"%s\" is not an absolute path", raw->cache_dir);
		return FALSE;
	}
	opts->cache_dir = raw->cache_dir ? g_strdup(raw->cache_dir) : options_default_cache_dir();
	opts->state_dir = raw->state_dir ? g_strdup(raw->state_dir)
					 : g_build_filename(opts->cache_dir, "state", NULL);
	opts->cafile = g_strdup(raw->cafile);
	opts->insecure = raw->insecure != 0;
	g_ptr_array_add(raw->headers, NULL);
	opts->headers = g_strdupv((char **)raw->headers->pdata);
	return options_take_images(raw, opts, error) && options_setup_s3(raw, opts, error);
}

static void raw_options_clear(struct raw_options *raw)
{
	free(raw->cache_dir);
	free(raw->block_size);
	free(raw->connections);
	free(raw->timeout);
	free(raw->retries);
	free(raw->cafile);
	free(raw->name);
	free(raw->manifest);
	free(raw->prefetch);
	free(raw->state_dir);
	free(raw->model);
	free(raw->model_memory);
	free(raw->critical_p);
	free(raw->predictive_p);
	free(raw->critical_window);
	free(raw->bg_bandwidth);
	free(raw->cache_size);
	free(raw->idle_pressure);
	free(raw->idle_cpu);
	free(raw->model_cpu);
	free(raw->lstm_hidden);
	free(raw->lstm_vocab);
	free(raw->lstm_train_every);
	free(raw->region);
	free(raw->endpoint);
	free(raw->credentials_file);
	g_ptr_array_free(raw->headers, TRUE);
	g_ptr_array_free(raw->positional, TRUE);
}

gboolean options_parse(struct fuse_args *args, struct options *opts, GError **error)
{
	struct raw_options raw = {0};
	gboolean ok;

	memset(opts, 0, sizeof(*opts));
	opts->block_size = OPTIONS_DEFAULT_BLOCK_SIZE;
	opts->connections = OPTIONS_DEFAULT_CONNECTIONS;
	opts->timeout_s = OPTIONS_DEFAULT_TIMEOUT_S;
	opts->retries = OPTIONS_DEFAULT_RETRIES;
	opts->model_memory = OPTIONS_DEFAULT_MODEL_MEMORY;
	opts->critical_p = 0.6;
	opts->predictive_p = 0.2;
	opts->critical_window_ms = 3000;
	opts->bg_bandwidth = 12500000;
	opts->idle_pressure = 0.10;
	opts->idle_cpu = 0.25;
	opts->model_cpu = 0.10;
	opts->lstm_hidden = 32;
	opts->lstm_vocab = 64;
	opts->lstm_train_every = 1;
	raw.headers = g_ptr_array_new_with_free_func(g_free);
	raw.positional = g_ptr_array_new_with_free_func(g_free);

	if (fuse_opt_parse(args, &raw, option_specs, option_proc) != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "bad options");
		raw_options_clear(&raw);
		return FALSE;
	}
	opts->show_help = raw.help;
	opts->show_version = raw.version;
	ok = raw.help || raw.version || options_validate(&raw, opts, error);
	if (ok && opts->mountpoint)
		fuse_opt_add_arg(args, opts->mountpoint);
	raw_options_clear(&raw);
	return ok;
}

void options_clear(struct options *opts)
{
	if (opts->images)
		g_array_unref(opts->images);
	g_free(opts->mountpoint);
	g_free(opts->cache_dir);
	g_free(opts->state_dir);
	g_free(opts->model);
	g_strfreev(opts->headers);
	g_free(opts->cafile);
	s3_signing_free(opts->s3);
	memset(opts, 0, sizeof(*opts));
}

void options_print_help(FILE *out, const char *argv0)
{
	fprintf(out,
		"usage: %s [options] URL MOUNTPOINT\n"
		"       %s [options] -o manifest=FILE MOUNTPOINT\n"
		"\n"
		"Presents the disk image at URL (http:// or https://, served with range\n"
		"requests, or s3://BUCKET/KEY) as the file MOUNTPOINT/NAME, fetching blocks on\n"
		"demand into a persistent local cache.\n"
		"\n"
		"aheadfs options:\n"
		"    -o cache_dir=DIR       cache directory (default: /var/cache/aheadfs as root,\n"
		"                           else $XDG_CACHE_HOME/aheadfs)\n"
		"    -o block_size=SIZE     cache block size, a power of two from 4K to 4M\n"
		"                           (default: 64K)\n"
		"    -o connections=N       parallel connections to the origin, 1-64 (default: %d)\n"
		"    -o timeout=SECONDS     connect timeout and longest stall of a transfer\n"
		"                           (default: %d)\n"
		"    -o retries=N           retries of a failed request, 0-100 (default: %d)\n"
		"    -o header=NAME:VALUE   extra request header, e.g. for authorization\n"
		"                           (repeatable)\n"
		"    -o cafile=FILE         CA certificates for https\n"
		"    -o insecure            do not verify the server's TLS certificate\n"
		"    -o name=NAME           file name of the image (default: the URL's last\n"
		"                           path segment)\n"
		"    -o manifest=FILE       mount several images: one \"NAME URL\" per line\n"
		"    -o prefetch=on|off     learn the access pattern and fetch ahead of the\n"
		"                           reader (default: on); off fetches only what is read\n"
		"    -o direct_io           images bypass the kernel's page cache: held in memory\n"
		"                           once (the cache file's pages), every read reaches\n"
		"                           aheadfs; no shared mmap (default: off)\n"
		"    -o state_dir=DIR       learned state (default: CACHE_DIR/state)\n"
		"    -o model=NAME          predictor: none, sequential, markov, profile, lstm\n"
		"                           or hybrid (default: hybrid)\n"
		"    -o model_memory=SIZE   memory cap of each image's model (default: 16M)\n"
		"    -o model_cpu=F         CPU cap of the learner thread, share of one core;\n"
		"                           over it, the LSTM learns less (default: 0.10)\n"
		"    -o lstm_hidden=N       LSTM hidden units, 8..256 by 8 (default: 32)\n"
		"    -o lstm_vocab=N        LSTM block-delta classes, 8..1024 (default: 64)\n"
		"    -o lstm_train_every=N  at most one LSTM update per N reads (default: 1)\n"
		"    -o critical_p=P        probability for the critical tier (default: 0.6)\n"
		"    -o predictive_p=P      probability for the predictive tier (default: 0.2)\n"
		"    -o critical_window=MS  profile blocks due within MS go critical (default: 3000)\n"
		"    -o cache_size=SIZE     bound the cache (all images of the mount); when it is\n"
		"                           full, unused prefetched and cold blocks are evicted\n"
		"                           (default: 0, unbounded)\n"
		"    -o bg_bandwidth=SIZE   background fill rate per second while idle, 0 = no\n"
		"                           fill (default: 12500000, 100 Mbit/s)\n"
		"    -o idle_pressure=F     the host is idle (background fill may run) while its\n"
		"                           PSI pressure is below F (default: 0.10; 1 = ignore\n"
		"                           the host's load, CPU included)\n"
		"    -o idle_cpu=F          ... and other processes use under F of its CPUs, or\n"
		"                           leave two CPUs free (default: 0.25)\n"
		"\n"
		"S3 (s3://BUCKET/KEY URLs, requests signed with AWS Signature V4):\n"
		"    -o credentials_file=FILE  AWS-style credentials, [default] section, mode\n"
		"                           0600 (default: $AWS_ACCESS_KEY_ID,\n"
		"                           $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN)\n"
		"    -o region=REGION       signing region (default: $AWS_REGION, else\n"
		"                           us-east-1)\n"
		"    -o endpoint=URL        the store, http(s)://HOST[:PORT] (default: AWS's\n"
		"                           endpoint of the region)\n"
		"    -o path_style          URLs ENDPOINT/BUCKET/KEY rather than BUCKET.HOST/KEY\n"
		"                           (always for an IP address or localhost)\n"
		"A presigned URL is mounted as a plain https:// URL, without credentials.\n"
		"    -h, --help             this help\n"
		"    -V, --version          print the version\n"
		"\n"
		"Sizes accept the suffixes K, M, G and T (powers of 1024).\n"
		"\n",
		argv0, argv0, OPTIONS_DEFAULT_CONNECTIONS, OPTIONS_DEFAULT_TIMEOUT_S,
		OPTIONS_DEFAULT_RETRIES);
}

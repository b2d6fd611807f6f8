/*
 * aheadfsctl: tools for aheadfs.
 *
 *   aheadfsctl replay [OPTION...] TRACE
 *
 * runs a block-access trace through a model and the prefetch policy on a simulated link
 * (replay.c) and prints one JSON object on stdout.
 *
 *   aheadfsctl heatmap [OPTION...] MOUNTPOINT/NAME -o FILE.png
 *
 * draws an image's heat map (ctl_heatmap.c). Errors are one line on stderr; the exit
 * status is 0 on success, 1 when the command fails (a trace that cannot be read, a model
 * that cannot be built, no heat file), 2 for a bad command line.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "aheadfs/ctl_heatmap.h"
#include "aheadfs/options.h"
#include "aheadfs/replay.h"
#include "aheadfs/tracefile.h"

#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE 2

#define CTL_DEFAULT_RTT_MS "20"
#define CTL_DEFAULT_BANDWIDTH_MBIT "200"

struct ctl_replay_args {
	char *model;
	char *rtt_ms;
	char *bandwidth_mbit;
	char *connections;
	char *block_size;
	char *image_size;
	char *scale;
	char *gap_ms;
	char *horizon_ms;
	char *skip_ops;
	char *max_ops;
	char *format;
	char **train;
	char **rest;
	gboolean split;
	gboolean reads_only;
	gboolean no_background;
	gboolean no_readahead;
	gboolean observe_at_issue;
};

static void ctl_replay_args_clear(struct ctl_replay_args *a)
{
	g_free(a->model);
	g_free(a->rtt_ms);
	g_free(a->bandwidth_mbit);
	g_free(a->connections);
	g_free(a->block_size);
	g_free(a->image_size);
	g_free(a->scale);
	g_free(a->gap_ms);
	g_free(a->horizon_ms);
	g_free(a->skip_ops);
	g_free(a->max_ops);
	g_free(a->format);
	g_strfreev(a->train);
	g_strfreev(a->rest);
}

/* A number >= 0 (and <= max): "--rtt-ms=20", "--scale=0.5". */
static gboolean ctl_parse_double(const char *option, const char *text, double max, double *out,
				 GError **error)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = g_ascii_strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || v > max) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--%s=%s: expected a number from 0 to %.15g", option, text, max);
		return FALSE;
	}
	*out = v;
	return TRUE;
}

static gboolean ctl_parse_count(const char *option, const char *text, guint64 min, guint64 max,
				guint64 *out, GError **error)
{
	if (!g_ascii_string_to_unsigned(text, 10, min, max, out, NULL)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--%s=%s: expected a whole number from %" G_GUINT64_FORMAT
			    " to %" G_GUINT64_FORMAT,
			    option, text, min, max);
		return FALSE;
	}
	return TRUE;
}

static gboolean ctl_parse_size(const char *option, const char *text, uint64_t *out, GError **error)
{
	g_autoptr(GError) why = NULL;

	if (!options_parse_size(text, out, &why)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--%s=%s: %s", option,
			    text, why->message);
		return FALSE;
	}
	return TRUE;
}

/* The command line's numbers into @p. */
static gboolean ctl_replay_params(const struct ctl_replay_args *a, struct replay_params *p,
				  GError **error)
{
	double v;
	guint64 n;
	uint64_t size;
	enum model_expert expert;

	replay_params_init(p);
	if (a->model) {
		if (!model_expert_from_string(a->model, &expert)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--model=%s: not a model (none, sequential, markov, profile, "
				    "hybrid)",
				    a->model);
			return FALSE;
		}
		p->model = a->model;
	}
	if (!ctl_parse_double("rtt-ms", a->rtt_ms ? a->rtt_ms : CTL_DEFAULT_RTT_MS, 3600e3, &v,
			      error))
		return FALSE;
	p->rtt_us = (uint64_t)llround(v * 1e3);
	if (!ctl_parse_double("bandwidth-mbit",
			      a->bandwidth_mbit ? a->bandwidth_mbit : CTL_DEFAULT_BANDWIDTH_MBIT,
			      1e7, &v, error))
		return FALSE;
	p->bandwidth = (uint64_t)llround(v * 1e6 / 8);
	if (a->connections) {
		if (!ctl_parse_count("connections", a->connections, 1, 1024, &n, error))
			return FALSE;
		p->connections = (unsigned)n;
	}
	if (a->block_size) {
		if (!ctl_parse_size("block-size", a->block_size, &size, error))
			return FALSE;
		if (size < 4096 || size > (64u << 20) || (size & (size - 1))) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--block-size=%s: a power of two from 4K to 64M",
				    a->block_size);
			return FALSE;
		}
		p->block_size = (uint32_t)size;
	}
	if (a->image_size && !ctl_parse_size("image-size", a->image_size, &p->image_size, error))
		return FALSE;
	if (a->scale && !ctl_parse_double("scale", a->scale, 1e6, &p->scale, error))
		return FALSE;
	if (a->gap_ms) {
		if (!ctl_parse_double("gap-ms", a->gap_ms, 3600e3, &v, error))
			return FALSE;
		p->gap_us = (uint64_t)llround(v * 1e3);
	}
	if (a->horizon_ms) {
		if (!ctl_parse_double("horizon-ms", a->horizon_ms, 3600e3, &v, error))
			return FALSE;
		p->horizon_us = (uint64_t)llround(v * 1e3);
	}
	p->background = !a->no_background;
	p->readahead = !a->no_readahead;
	p->observe_at_issue = a->observe_at_issue;
	return TRUE;
}

/*
 * Load one trace and cut it to the records asked for. @view shares the records of the
 * returned trace: free only the trace.
 */
static struct tracefile *ctl_load_trace(const char *path, enum tracefile_format format,
					const struct ctl_replay_args *a, guint64 skip, guint64 max,
					struct tracefile *view, GError **error)
{
	struct tracefile *t = tracefile_load(path, format, error);
	size_t n;

	if (!t)
		return NULL;
	if (a->reads_only)
		tracefile_reads_only(t);
	*view = *t;
	n = t->n_records;
	skip = MIN(skip, n);
	view->records += skip;
	view->n_records = max ? MIN(max, n - skip) : n - skip;
	return t;
}

static const char ctl_replay_summary[] =
    "Runs TRACE through the model and prefetch policy of the mount on a simulated link\n"
    "and prints one JSON object: accuracy, coverage, wasted_bytes, demand_misses, stall_s,\n"
    "tiers, link estimates, model cost.\n"
    "\n"
    "Traces: CSV \"time_s,offset,length[,op]\", the aheadfs access log, cloudPhysicsIO.csv,\n"
    "ARC .lis and .lis.zst. --train traces are replayed first on the same model, each as an\n"
    "earlier mount with an empty cache; only TRACE is measured. --skip-ops and --max-ops\n"
    "cut every trace (after --reads-only); --split then trains on the first half of TRACE\n"
    "and measures the second half. Defaults: hybrid, 20 ms, 200 Mbit/s, 8 connections,\n"
    "64K blocks, horizon 10 s.";

static int ctl_replay(int argc, char **argv)
{
	struct ctl_replay_args a = {0};
	GOptionEntry entries[] = {
	    {"model", 0, 0, G_OPTION_ARG_STRING, &a.model,
	     "none, sequential, markov, profile, lstm or hybrid", "NAME"},
	    {"rtt-ms", 0, 0, G_OPTION_ARG_STRING, &a.rtt_ms, "round trip to first byte", "N"},
	    {"bandwidth-mbit", 0, 0, G_OPTION_ARG_STRING, &a.bandwidth_mbit,
	     "link bandwidth shared by all transfers; 0: infinite", "N"},
	    {"connections", 0, 0, G_OPTION_ARG_STRING, &a.connections,
	     "parallel transfers (a quarter kept for demand)", "N"},
	    {"block-size", 0, 0, G_OPTION_ARG_STRING, &a.block_size, "cache block size", "SIZE"},
	    {"image-size", 0, 0, G_OPTION_ARG_STRING, &a.image_size,
	     "image size (default: the furthest access)", "SIZE"},
	    {"train", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.train,
	     "replay first to learn (repeatable)", "TRACE"},
	    {"split", 0, 0, G_OPTION_ARG_NONE, &a.split,
	     "train on the first half of TRACE, measure the second", NULL},
	    {"scale", 0, 0, G_OPTION_ARG_STRING, &a.scale,
	     "multiply the trace's think times (0: back to back)", "F"},
	    {"gap-ms", 0, 0, G_OPTION_ARG_STRING, &a.gap_ms,
	     "think time between records of a trace without timestamps (0)", "N"},
	    {"horizon-ms", 0, 0, G_OPTION_ARG_STRING, &a.horizon_ms,
	     "how far ahead the model is asked", "N"},
	    {"reads-only", 0, 0, G_OPTION_ARG_NONE, &a.reads_only,
	     "drop writes before counting ops", NULL},
	    {"skip-ops", 0, 0, G_OPTION_ARG_STRING, &a.skip_ops,
	     "skip the first N records of each trace", "N"},
	    {"max-ops", 0, 0, G_OPTION_ARG_STRING, &a.max_ops,
	     "replay at most N records of each trace", "N"},
	    {"format", 0, 0, G_OPTION_ARG_STRING, &a.format,
	     "auto, csv, access-log, cloudphysics or arc", "FMT"},
	    {"no-readahead", 0, 0, G_OPTION_ARG_NONE, &a.no_readahead,
	     "no readahead of streaming reads (the mount always has it)", NULL},
	    {"no-background", 0, 0, G_OPTION_ARG_NONE, &a.no_background, "no background fill tier",
	     NULL},
	    {"observe-at-issue", 0, 0, G_OPTION_ARG_NONE, &a.observe_at_issue,
	     "tell the model of a read when it starts (the mount: when it is answered)", NULL},
	    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.rest, NULL, "TRACE"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("TRACE");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) loaded =
	    g_ptr_array_new_with_free_func((GDestroyNotify)tracefile_free);
	g_autoptr(GArray) views = g_array_new(FALSE, FALSE, sizeof(struct tracefile));
	g_autofree const struct tracefile **train = NULL;
	g_autofree char *json = NULL;
	struct replay_params params;
	struct replay_result result;
	struct tracefile measured;
	enum tracefile_format format = TRACEFILE_FORMAT_AUTO;
	guint64 skip = 0, max = 0;
	size_t ntrain = 0;
	int status = CTL_EXIT_USAGE;

	g_set_prgname("aheadfsctl replay");
	g_option_context_set_summary(ctx, ctl_replay_summary);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_help_enabled(ctx, TRUE);
	if (!g_option_context_parse(ctx, &argc, &argv, &error))
		goto out;
	if (!a.rest || !a.rest[0] || a.rest[1]) {
		g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
			    a.rest && a.rest[0] ? "one TRACE only (more to learn from: --train)"
						: "no TRACE given");
		goto out;
	}
	if (!ctl_replay_params(&a, &params, &error))
		goto out;
	if (a.skip_ops && !ctl_parse_count("skip-ops", a.skip_ops, 0, G_MAXUINT64, &skip, &error))
		goto out;
	if (a.max_ops && !ctl_parse_count("max-ops", a.max_ops, 1, G_MAXUINT64, &max, &error))
		goto out;
	if (a.format && !tracefile_format_from_string(a.format, &format, &error))
		goto out;

	status = CTL_EXIT_FAILURE;
	for (size_t i = 0; a.train && a.train[i]; i++) {
		struct tracefile view;
		struct tracefile *t =
		    ctl_load_trace(a.train[i], format, &a, skip, max, &view, &error);

		if (!t)
			goto out;
		g_ptr_array_add(loaded, t);
		g_array_append_val(views, view);
	}
	{
		struct tracefile *t =
		    ctl_load_trace(a.rest[0], format, &a, skip, max, &measured, &error);

		if (!t)
			goto out;
		g_ptr_array_add(loaded, t);
	}
	if (a.split) {
		struct tracefile first = measured;

		first.n_records = measured.n_records / 2;
		measured.records += first.n_records;
		measured.n_records -= first.n_records;
		g_array_append_val(views, first);
	}
	/* The views are all in place now: the array will not move again. */
	ntrain = views->len;
	train = g_new(const struct tracefile *, MAX(ntrain, 1));
	for (size_t i = 0; i < ntrain; i++)
		train[i] = &g_array_index(views, struct tracefile, i);

	if (!replay_run(&params, train, ntrain, &measured, &result, &error))
		goto out;
	json = replay_result_to_json(&result, &params);
	printf("%s\n", json);
	status = fflush(stdout) == 0 ? 0 : CTL_EXIT_FAILURE;
	if (status)
		g_set_error(&error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "writing the result: %s", g_strerror(errno));
out:
	if (error)
		fprintf(stderr, "aheadfsctl replay: %s%s\n", error->message,
			status == CTL_EXIT_USAGE ? " (see aheadfsctl replay --help)" : "");
	ctl_replay_args_clear(&a);
	return status;
}

struct ctl_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct ctl_command ctl_commands[] = {
    {"replay", ctl_replay, "replay a trace through a model and the prefetcher, simulated"},
    {"heatmap", ctl_heatmap, "draw an image's heat map (predicted blocks, cached blocks) as PNG"},
};

static void ctl_usage(FILE *out)
{
	fprintf(out, "Usage: aheadfsctl COMMAND [OPTION...]\n"
		     "       aheadfsctl --help | --version\n\nCommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(ctl_commands); i++)
		fprintf(out, "  %-10s %s\n", ctl_commands[i].name, ctl_commands[i].summary);
	fprintf(out, "\n'aheadfsctl COMMAND --help' for a command's options; man aheadfsctl.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		ctl_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("aheadfsctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(ctl_commands); i++)
		if (strcmp(argv[1], ctl_commands[i].name) == 0)
			return ctl_commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "aheadfsctl: unknown command '%s' (aheadfsctl --help lists them)\n",
		argv[1]);
	return CTL_EXIT_USAGE;
}

/*
 * aheadfs-replay: replay a recorded block-access trace against a file under test and
 * report what it cost, as one JSON object on stdout.
 *
 *   aheadfs-replay [--scale F] [--reads-only] [--max-ops N] [--max-seconds S] [--wrap]
 *                  [--o-direct] [--format FMT] TRACE FILE
 *
 * The reads are issued one at a time with pread(2), in trace order: the order is the
 * workload (a booting guest mostly waits for each read before asking for the next), so
 * there is deliberately no queue depth.
 *
 * Think time. The gap between two requests in the trace is what the recorded system
 * spent on the previous I/O plus whatever the workload did in between. The replayer
 * issues request i at   issue[i-1] + gap[i] * scale   or, if the previous read is still
 * running at that point, as soon as it returns:
 *
 *   trace:   |--gap--|--gap--|
 *   local:   [io]....[io]....[io]          (think = gap - io)
 *   remote:  [io-----]...[io]....          (a slow read eats into the think time;
 *   slower:  [io----------][io]...          past the gap, the excess is a stall)
 *
 * So against the local image elapsed_s approximates the recorded run, and against a
 * slower system elapsed_s grows by exactly the stalls: time the I/O took beyond the gap.
 * --scale 0 replays back to back (pure I/O time); traces without timestamps (ARC) always
 * replay back to back.
 *
 * --max-seconds bounds a replay in time: no read starts after S seconds, and the JSON says
 * "truncated": true with the ops done out of "ops_planned". A benchmark uses it so that a
 * slow system cannot stretch a fixed-size replay without end; its elapsed_s is then a
 * lower bound, while the latencies still describe the reads it did.
 *
 * The replayer never writes. Write records are skipped and counted (their time passes
 * as part of the gap); --reads-only drops them before --max-ops is applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "aheadfs/tracefile.h"

/* O_DIRECT needs offsets, lengths and buffers aligned to the logical block size; 4 KiB
 * covers every device and filesystem this is run on. */
#define REPLAY_DIRECT_ALIGN 4096u
/* Longer reads are split into pieces of this size (still one after another). */
#define REPLAY_MAX_IO (64u << 20)

struct replay_options {
	double scale;
	gboolean reads_only;
	gint64 max_ops;
	double max_seconds;
	gboolean wrap;
	gboolean o_direct;
	char *format;
};

struct replay_stats {
	uint64_t ops;
	uint64_t bytes;
	uint64_t skipped_beyond_eof;
	uint64_t writes_skipped;
	uint64_t short_reads;
	uint64_t errors;
	uint64_t planned; /* records the replay would issue without --max-seconds */
	bool truncated;
	int first_errno;
	double io_s;
	double sleep_s;
	double *lat_ms; /* one per issued read */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Read [off, off + len) completely (or to EOF). Returns bytes read or -errno. */
static int64_t read_range(int fd, char *buf, uint64_t off, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		size_t want = len - done > REPLAY_MAX_IO ? REPLAY_MAX_IO : (size_t)(len - done);
		ssize_t r = pread(fd, buf, want, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (uint64_t)r;
	}
	return (int64_t)done;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const char *trace_path, const char *file_path, const struct tracefile *trace,
		       const struct replay_options *o, struct replay_stats *st, uint64_t file_size,
		       double elapsed)
{
	qsort(st->lat_ms, st->ops, sizeof(double), cmp_double);
	printf("{\"trace\": ");
	json_string(trace_path);
	printf(", \"file\": ");
	json_string(file_path);
	printf(", \"format\": \"%s\", \"has_timestamps\": %s, \"scale\": %g, \"o_direct\": %s, "
	       "\"wrap\": %s, \"file_size\": %" PRIu64 ", ",
	       tracefile_format_to_string(trace->format), trace->has_timestamps ? "true" : "false",
	       o->scale, o->o_direct ? "true" : "false", o->wrap ? "true" : "false", file_size);
	printf("\"ops\": %" PRIu64 ", \"ops_planned\": %" PRIu64 ", \"truncated\": %s, "
	       "\"bytes\": %" PRIu64 ", \"elapsed_s\": %.6f, \"io_s\": %.6f, \"sleep_s\": %.6f, ",
	       st->ops, st->planned, st->truncated ? "true" : "false", st->bytes, elapsed, st->io_s,
	       st->sleep_s);
	printf("\"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, "
	       "\"mean_ms\": %.4f, ",
	       percentile(st->lat_ms, st->ops, 50), percentile(st->lat_ms, st->ops, 90),
	       percentile(st->lat_ms, st->ops, 99), st->ops ? st->lat_ms[st->ops - 1] : 0.0,
	       st->ops ? st->io_s * 1e3 / (double)st->ops : 0.0);
	printf("\"skipped_beyond_eof\": %" PRIu64 ", \"writes_skipped\": %" PRIu64
	       ", \"short_reads\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"first_error\": ",
	       st->skipped_beyond_eof, st->writes_skipped, st->short_reads, st->errors);
	if (st->errors)
		json_string(g_strerror(st->first_errno));
	else
		printf("null");
	printf("}\n");
	fflush(stdout);
}

static gboolean parse_options(int *argc, char ***argv, struct replay_options *o, GError **error)
{
	GOptionEntry entries[] = {
	    {"scale", 0, 0, G_OPTION_ARG_DOUBLE, &o->scale,
	     "Think-time factor: 1 as recorded (default), 0 back to back", "F"},
	    {"reads-only", 0, 0, G_OPTION_ARG_NONE, &o->reads_only,
	     "Drop write records before replaying (they are never written anyway)", NULL},
	    {"max-ops", 0, 0, G_OPTION_ARG_INT64, &o->max_ops,
	     "Replay at most N records (default all)", "N"},
	    {"max-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &o->max_seconds,
	     "Start no read after S seconds; the JSON then says truncated (default: no limit)",
	     "S"},
	    {"wrap", 0, 0, G_OPTION_ARG_NONE, &o->wrap,
	     "Wrap offsets beyond the file size modulo the size instead of skipping them", NULL},
	    {"o-direct", 0, 0, G_OPTION_ARG_NONE, &o->o_direct,
	     "Open FILE with O_DIRECT (reads aligned to 4 KiB)", NULL},
	    {"format", 0, 0, G_OPTION_ARG_STRING, &o->format,
	     "Trace format: auto (default), csv, access-log, cloudphysics, arc", "FMT"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("TRACE FILE");

	g_option_context_set_summary(ctx,
				     "Replay a block-access trace against FILE with pread(2), one "
				     "read at a time, and print one JSON object.");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, error))
		return FALSE;
	if (*argc != 3) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
			    "expected TRACE FILE (see --help)");
		return FALSE;
	}
	if (!isfinite(o->scale) || o->scale < 0 || o->max_ops < 0 || !isfinite(o->max_seconds) ||
	    o->max_seconds < 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--scale, --max-ops and --max-seconds must not be negative");
		return FALSE;
	}
	return TRUE;
}

int main(int argc, char **argv)
{
	struct replay_options o = {.scale = 1.0};
	struct replay_stats st = {0};
	enum tracefile_format format = TRACEFILE_FORMAT_AUTO;
	g_autoptr(GError) error = NULL;
	struct tracefile *trace;
	const char *trace_path, *file_path;
	uint64_t file_size, max_len = 0, align;
	size_t i, n;
	double start, prev_issue = 0, prev_time = 0;
	bool first = true, ok;
	off_t end;
	char *buf;
	int fd;

	ok = parse_options(&argc, &argv, &o, &error) &&
	     (!o.format || tracefile_format_from_string(o.format, &format, &error));
	g_clear_pointer(&o.format, g_free);
	if (!ok) {
		fprintf(stderr, "aheadfs-replay: %s\n", error->message);
		return 2;
	}
	trace_path = argv[1];
	file_path = argv[2];

	trace = tracefile_load(trace_path, format, &error);
	if (!trace) {
		fprintf(stderr, "aheadfs-replay: %s\n", error->message);
		return 2;
	}
	if (o.reads_only)
		tracefile_reads_only(trace);
	n = trace->n_records;
	if (o.max_ops > 0 && (uint64_t)o.max_ops < n)
		n = (size_t)o.max_ops;

	fd = open(file_path, O_RDONLY | O_CLOEXEC | (o.o_direct ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "aheadfs-replay: %s: %s\n", file_path, g_strerror(errno));
		tracefile_free(trace);
		return 2;
	}
	/* lseek rather than fstat so block devices report their size too. */
	end = lseek(fd, 0, SEEK_END);
	if (end <= 0) {
		fprintf(stderr, "aheadfs-replay: %s: empty or size unknown\n", file_path);
		close(fd);
		tracefile_free(trace);
		return 2;
	}
	file_size = (uint64_t)end;

	align = o.o_direct ? REPLAY_DIRECT_ALIGN : 1;
	for (i = 0; i < n; i++) {
		uint64_t len = trace->records[i].length + 2 * align;

		if (len > max_len)
			max_len = len;
	}
	if (max_len > REPLAY_MAX_IO)
		max_len = REPLAY_MAX_IO;
	if (posix_memalign((void **)&buf, REPLAY_DIRECT_ALIGN, max_len ? max_len : align)) {
		fprintf(stderr, "aheadfs-replay: out of memory\n");
		return 2;
	}
	st.lat_ms = g_new(double, n ? n : 1);

	start = now_mono();
	for (i = 0; i < n; i++) {
		const struct tracefile_record *r = &trace->records[i];
		uint64_t off = r->offset, len = r->length;
		double due, t0, dt;
		int64_t got;

		if (r->op != 'R') {
			st.writes_skipped++;
			continue;
		}
		if (off >= file_size) {
			if (!o.wrap) {
				st.skipped_beyond_eof++;
				continue;
			}
			off %= file_size;
		}
		if (off + len > file_size)
			len = file_size - off;
		if (o.o_direct) {
			uint64_t a = off & ~(uint64_t)(align - 1);

			len = ((off + len - a) + align - 1) & ~(uint64_t)(align - 1);
			off = a;
		}
		st.planned++;
		if (st.truncated)
			continue; /* only counted, for ops_planned */
		/* Think time: see the top of this file. */
		due = now_mono();
		if (!first && o.scale > 0 && trace->has_timestamps) {
			double gap = (r->time_s - prev_time) * o.scale;

			if (gap > 0 && prev_issue + gap > due)
				due = prev_issue + gap;
		}
		if (o.max_seconds > 0 && due - start >= o.max_seconds) {
			st.truncated = true;
			continue;
		}
		if (due > now_mono()) {
			double before = now_mono();

			sleep_until(due);
			st.sleep_s += now_mono() - before;
		}
		t0 = now_mono();
		got = read_range(fd, buf, off, len);
		dt = now_mono() - t0;
		first = false;
		prev_issue = t0;
		prev_time = r->time_s;

		st.lat_ms[st.ops++] = dt * 1e3;
		st.io_s += dt;
		if (got < 0) {
			if (!st.errors)
				st.first_errno = (int)-got;
			st.errors++;
			continue;
		}
		if ((uint64_t)got < len)
			st.short_reads++;
		st.bytes += (uint64_t)got;
	}
	print_json(trace_path, file_path, trace, &o, &st, file_size, now_mono() - start);

	free(buf);
	g_free(st.lat_ms);
	close(fd);
	tracefile_free(trace);
	/* The JSON is printed either way; the exit status keeps failed reads from passing
	 * unnoticed in scripts that do not read it. */
	return st.errors ? 3 : 0;
}

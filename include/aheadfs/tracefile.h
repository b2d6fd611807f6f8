/*
 * tracefile: read block-access traces into one in-memory form.
 *
 * Used by the benchmark's replayer (contrib/bench/replay.c) and by anything that wants to
 * feed recorded accesses to a predictor. Pure parsing: no I/O beyond reading the trace.
 *
 * Formats (TRACEFILE_FORMAT_AUTO picks one from the contents, then the file name):
 *
 *   CSV           "time_s,offset,length[,op]" per line, bytes and seconds; op is R or W
 *                 (default R). An optional header line (first field not a number) is
 *                 skipped, as are blank lines and lines starting with '#'.
 *
 *   ACCESS_LOG    aheadfs's own access log. Line 1 is exactly TRACEFILE_ACCESS_LOG_HEADER;
 *                 every other line is '#' comment, the optional column line
 *                 "time_s,offset,length,op", or a record "time_s,offset,length,op":
 *                   time_s  seconds since the mount started, decimal (e.g. 12.000345)
 *                   offset  byte offset into the image, decimal
 *                   length  bytes, decimal
 *                   op      R or W
 *                 Write it with tracefile_format_record() so reader and writer agree.
 *
 *   CLOUDPHYSICS  cloudPhysicsIO.csv: header "version,time,op,size,lbn"; op is a SCSI
 *                 opcode in hex (28/88/a8/08 read, 2a/8a/aa/0a write; others skipped), size
 *                 in bytes, lbn in 512-byte sectors. time is kept as given: its unit is
 *                 undocumented, so time_s holds the raw value.
 *
 *   ARC           The ARC paper's .lis traces, usually zstd-compressed (.lis.zst):
 *                 "start_block block_count ignored request_no", 512-byte blocks, reads
 *                 only. They carry no timestamps: every record gets time_s = 0 and the
 *                 trace has has_timestamps = false, so a replay runs back to back.
 *
 * zstd input (by magic number, any format inside) is decompressed by running "zstd -dc"
 * from PATH.
 */
#ifndef AHEADFS_TRACEFILE_H
#define AHEADFS_TRACEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define TRACEFILE_ACCESS_LOG_HEADER "# aheadfs access log v1"

enum tracefile_format {
	TRACEFILE_FORMAT_AUTO,
	TRACEFILE_FORMAT_CSV,
	TRACEFILE_FORMAT_ACCESS_LOG,
	TRACEFILE_FORMAT_CLOUDPHYSICS,
	TRACEFILE_FORMAT_ARC,
};

#define TRACEFILE_ERROR (tracefile_error_quark())

enum tracefile_error {
	TRACEFILE_ERROR_IO,	/* the trace could not be read or decompressed */
	TRACEFILE_ERROR_PARSE,	/* a line does not match the format */
	TRACEFILE_ERROR_FORMAT, /* unknown format name, or the contents fit no format */
};

struct tracefile_record {
	double time_s;	 /* when the request was issued; unit per format, see above */
	uint64_t offset; /* bytes */
	uint64_t length; /* bytes */
	char op;	 /* 'R' or 'W' */
};

struct tracefile {
	struct tracefile_record *records; /* in file order; times need not be monotonic */
	size_t n_records;
	enum tracefile_format format; /* the format actually parsed, never AUTO */
	bool has_timestamps;	      /* false for ARC: all times are 0 */
};

GQuark tracefile_error_quark(void);

const char *tracefile_format_to_string(enum tracefile_format format);

/* Parse "auto", "csv", "access-log", "cloudphysics" or "arc". */
gboolean tracefile_format_from_string(const char *name, enum tracefile_format *format,
				      GError **error);

/*
 * Read the trace at path. Returns a new trace owned by the caller (tracefile_free()), or
 * NULL with error set, naming the file and line for parse errors.
 */
struct tracefile *tracefile_load(const char *path, enum tracefile_format format, GError **error);

/*
 * Parse a trace already in memory (data need not be NUL-terminated; it is not kept).
 * name is only used in error messages and, for AUTO, to look at the extension.
 */
struct tracefile *tracefile_parse(const char *data, size_t len, enum tracefile_format format,
				  const char *name, GError **error);

void tracefile_free(struct tracefile *trace);

/* Drop every write record in place, keeping the order. Returns the records left. */
size_t tracefile_reads_only(struct tracefile *trace);

/* Sum of lengths, and the first byte past the furthest access (0 for an empty trace). */
uint64_t tracefile_bytes(const struct tracefile *trace);
uint64_t tracefile_extent(const struct tracefile *trace);

/*
 * Write one ACCESS_LOG record line, newline included, into buf. Returns what snprintf
 * returns: the length needed, which may exceed len. 80 bytes always suffice.
 */
int tracefile_format_record(char *buf, size_t len, const struct tracefile_record *record);

#endif

/*
 * tracefile: read block-access traces (CSV, aheadfs access log, cloudPhysicsIO, ARC .lis)
 * into an array of records. The formats are described in include/aheadfs/tracefile.h.
 *
 * The whole trace is read into memory and parsed in place, one pass, no per-line
 * allocation: the ARC OLTP trace (914k lines) loads in a fraction of a second, most of it
 * spent in zstd.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aheadfs/tracefile.h"

#define TRACEFILE_SECTOR 512u
#define CLOUDPHYSICS_HEADER "version,time,op,size,lbn"
#define ACCESS_LOG_COLUMNS "time_s,offset,length,op"

G_DEFINE_QUARK(aheadfs_tracefile_error, tracefile_error)

static const char *const format_names[] = {
    [TRACEFILE_FORMAT_AUTO] = "auto",
    [TRACEFILE_FORMAT_CSV] = "csv",
    [TRACEFILE_FORMAT_ACCESS_LOG] = "access-log",
    [TRACEFILE_FORMAT_CLOUDPHYSICS] = "cloudphysics",
    [TRACEFILE_FORMAT_ARC] = "arc",
};

const char *tracefile_format_to_string(enum tracefile_format format)
{
	if ((size_t)format >= G_N_ELEMENTS(format_names))
		return "unknown";
	return format_names[format];
}

gboolean tracefile_format_from_string(const char *name, enum tracefile_format *format,
				      GError **error)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(format_names); i++) {
		if (!g_ascii_strcasecmp(name, format_names[i])) {
			*format = (enum tracefile_format)i;
			return TRUE;
		}
	}
	g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_FORMAT,
		    "unknown trace format '%s' (auto, csv, access-log, cloudphysics, arc)", name);
	return FALSE;
}

/* ---- Field scanners: each advances *p past what it consumed. ---- */

static void skip_blanks(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static bool scan_u64(const char **p, uint64_t *out)
{
	const char *s;
	uint64_t v = 0;

	skip_blanks(p);
	s = *p;
	if (!g_ascii_isdigit(*s))
		return false;
	for (; g_ascii_isdigit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

static bool scan_double(const char **p, double *out)
{
	char *end;
	double v;

	skip_blanks(p);
	/* A cheap check first: g_ascii_strtod also takes "inf", "nan" and hex floats. */
	if (!g_ascii_isdigit(**p) && **p != '.' && **p != '-' && **p != '+')
		return false;
	v = g_ascii_strtod(*p, &end);
	if (end == *p || !isfinite(v))
		return false;
	*p = end;
	*out = v;
	return true;
}

static bool scan_char(const char **p, char c)
{
	skip_blanks(p);
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool scan_end(const char **p)
{
	skip_blanks(p);
	return **p == '\0';
}

static bool scan_op(const char **p, char *op)
{
	skip_blanks(p);
	switch (**p) {
	case 'R':
	case 'r':
		*op = 'R';
		break;
	case 'W':
	case 'w':
		*op = 'W';
		break;
	default:
		return false;
	}
	(*p)++;
	return true;
}

/* ---- Per-format line parsers. Return false on a malformed line. ---- */

/* "time_s,offset,length[,op]"; op is required for the access log. */
static bool parse_csv_line(const char *p, bool need_op, struct tracefile_record *r)
{
	r->op = 'R';
	if (!scan_double(&p, &r->time_s) || !scan_char(&p, ',') || !scan_u64(&p, &r->offset) ||
	    !scan_char(&p, ',') || !scan_u64(&p, &r->length))
		return false;
	if (scan_char(&p, ',')) {
		if (!scan_op(&p, &r->op))
			return false;
	} else if (need_op) {
		return false;
	}
	return scan_end(&p);
}

static bool scsi_opcode_to_op(unsigned code, char *op)
{
	switch (code) {
	case 0x08: /* READ(6) */
	case 0x28: /* READ(10) */
	case 0xa8: /* READ(12) */
	case 0x88: /* READ(16) */
		*op = 'R';
		return true;
	case 0x0a: /* WRITE(6) */
	case 0x2a: /* WRITE(10) */
	case 0xaa: /* WRITE(12) */
	case 0x8a: /* WRITE(16) */
		*op = 'W';
		return true;
	default:
		return false;
	}
}

/*
 * "version,time,op,size,lbn". Returns 1 for a record, 0 for a valid line that is not a
 * read or write (another SCSI command), -1 for a malformed line.
 */
static int parse_cloudphysics_line(const char *p, struct tracefile_record *r)
{
	uint64_t version, lbn;
	char *end;
	unsigned long code;

	if (!scan_u64(&p, &version) || !scan_char(&p, ',') || !scan_double(&p, &r->time_s) ||
	    !scan_char(&p, ','))
		return -1;
	skip_blanks(&p);
	if (!g_ascii_isxdigit(*p))
		return -1;
	code = strtoul(p, &end, 16);
	p = end;
	if (!scan_char(&p, ',') || !scan_u64(&p, &r->length) || !scan_char(&p, ',') ||
	    !scan_u64(&p, &lbn) || !scan_end(&p))
		return -1;
	if (lbn > UINT64_MAX / TRACEFILE_SECTOR)
		return -1;
	r->offset = lbn * TRACEFILE_SECTOR;
	return scsi_opcode_to_op((unsigned)code, &r->op) ? 1 : 0;
}

/* "start_block block_count ignored request_no": only the first two matter. */
static bool parse_arc_line(const char *p, struct tracefile_record *r)
{
	uint64_t start, count, ignored;

	if (!scan_u64(&p, &start) || !scan_u64(&p, &count))
		return false;
	while (scan_u64(&p, &ignored))
		;
	if (!scan_end(&p) || start > UINT64_MAX / TRACEFILE_SECTOR ||
	    count > UINT64_MAX / TRACEFILE_SECTOR)
		return false;
	r->time_s = 0;
	r->offset = start * TRACEFILE_SECTOR;
	r->length = count * TRACEFILE_SECTOR;
	r->op = 'R';
	return true;
}

/* ---- Format detection ---- */

/* The first line that is neither blank nor a '#' comment, copied out (or NULL). */
static char *first_data_line(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *eol = strchrnul(p, '\n');
		const char *s = p;

		while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s < eol && *s != '#')
			return g_strstrip(g_strndup(s, (gsize)(eol - s)));
		p = *eol ? eol + 1 : eol;
	}
	return NULL;
}

static bool detect_format(const char *text, const char *name, enum tracefile_format *format)
{
	g_autofree char *line = NULL;

	if (g_str_has_prefix(text, TRACEFILE_ACCESS_LOG_HEADER)) {
		*format = TRACEFILE_FORMAT_ACCESS_LOG;
		return true;
	}
	line = first_data_line(text);
	if (line && !strcmp(line, CLOUDPHYSICS_HEADER)) {
		*format = TRACEFILE_FORMAT_CLOUDPHYSICS;
		return true;
	}
	if (name && (g_str_has_suffix(name, ".lis") || g_str_has_suffix(name, ".lis.zst"))) {
		*format = TRACEFILE_FORMAT_ARC;
		return true;
	}
	if (!line)
		return false;
	if (strchr(line, ',') || (name && g_str_has_suffix(name, ".csv"))) {
		*format = TRACEFILE_FORMAT_CSV;
		return true;
	}
	if (g_ascii_isdigit(line[0]) && strspn(line, "0123456789 \t") == strlen(line)) {
		*format = TRACEFILE_FORMAT_ARC;
		return true;
	}
	return false;
}

/* ---- Parsing ---- */

static size_t count_lines(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t n = 1;

	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		n++;
		p++;
	}
	return n;
}

/* Parse NUL-terminated text, which is modified (line ends are overwritten). */
static struct tracefile *parse_text(char *text, size_t len, enum tracefile_format format,
				    const char *name, GError **error)
{
	struct tracefile *trace;
	char *p = text, *end = text + len;
	size_t lineno = 0;
	bool header_allowed = true;
	const char *label = name ? name : "trace";

	if (strlen(text) != len) {
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_FORMAT,
			    "%s: binary data (NUL byte at %zu), not a text trace", label,
			    strlen(text));
		return NULL;
	}
	if (format == TRACEFILE_FORMAT_AUTO && !detect_format(text, name, &format)) {
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_FORMAT,
			    "%s: cannot tell the trace format (empty, or not CSV, access log, "
			    "cloudPhysics or ARC .lis)",
			    label);
		return NULL;
	}

	trace = g_new0(struct tracefile, 1);
	trace->format = format;
	trace->has_timestamps = format != TRACEFILE_FORMAT_ARC;
	trace->records = g_new(struct tracefile_record, count_lines(text, len));

	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		struct tracefile_record *r = &trace->records[trace->n_records];
		const char *expected = NULL;
		char *line = p, *s;

		if (!eol)
			eol = end;
		*eol = '\0';
		if (eol > p && eol[-1] == '\r')
			eol[-1] = '\0';
		p = eol + 1;
		lineno++;

		if (lineno == 1 && format == TRACEFILE_FORMAT_ACCESS_LOG) {
			if (strcmp(g_strchomp(line), TRACEFILE_ACCESS_LOG_HEADER)) {
				expected = "the header '" TRACEFILE_ACCESS_LOG_HEADER "'";
				goto bad;
			}
			continue;
		}
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '\0' || *s == '#')
			continue;

		switch (format) {
		case TRACEFILE_FORMAT_CSV:
			if (parse_csv_line(s, false, r))
				break;
			/* One header line before the first record, whatever its columns. */
			if (header_allowed && !g_ascii_isdigit(*s) && *s != '.') {
				header_allowed = false;
				continue;
			}
			expected = "time_s,offset,length[,op]";
			goto bad;
		case TRACEFILE_FORMAT_ACCESS_LOG:
			if (parse_csv_line(s, true, r))
				break;
			if (header_allowed && !strcmp(g_strchomp(s), ACCESS_LOG_COLUMNS)) {
				header_allowed = false;
				continue;
			}
			expected = "time_s,offset,length,op";
			goto bad;
		case TRACEFILE_FORMAT_CLOUDPHYSICS: {
			int rc;

			if (header_allowed && !strcmp(g_strchomp(s), CLOUDPHYSICS_HEADER)) {
				header_allowed = false;
				continue;
			}
			rc = parse_cloudphysics_line(s, r);
			if (rc == 0)
				continue;
			if (rc > 0)
				break;
			expected = "version,time,op,size,lbn";
			goto bad;
		}
		case TRACEFILE_FORMAT_ARC:
			if (parse_arc_line(s, r))
				break;
			expected = "start_block block_count ignored request_no";
			goto bad;
		case TRACEFILE_FORMAT_AUTO:
		default:
			g_assert_not_reached();
		}
		header_allowed = false;
		trace->n_records++;
		continue;
	bad:
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_PARSE,
			    "%s:%zu: %s line does not match %s: '%.60s'", label, lineno,
			    tracefile_format_to_string(format), expected, line);
		tracefile_free(trace);
		return NULL;
	}
	return trace;
}

struct tracefile *tracefile_parse(const char *data, size_t len, enum tracefile_format format,
				  const char *name, GError **error)
{
	g_autofree char *text = g_strndup(data, len);

	/* g_strndup stops at a NUL; let parse_text report it with its position. */
	return parse_text(text, len, format, name, error);
}

/* zstd's frame magic, little-endian 0xFD2FB528. */
static bool is_zstd(const char *data, size_t len)
{
	return len >= 4 && (unsigned char)data[0] == 0x28 && (unsigned char)data[1] == 0xb5 &&
	       (unsigned char)data[2] == 0x2f && (unsigned char)data[3] == 0xfd;
}

static char *decompress_zstd(const char *path, size_t *len, GError **error)
{
	const char *argv[] = {"zstd", "-dcq", "--", path, NULL};
	g_autofree char *err = NULL;
	g_autoptr(GError) local = NULL;
	char *out = NULL;
	int status;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
			  &status, &local)) {
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_IO,
			    "%s: cannot run zstd to decompress it: %s", path, local->message);
		return NULL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_IO, "%s: zstd -dc failed: %s",
			    path, g_strstrip(err));
		g_free(out);
		return NULL;
	}
	/* Captured output is NUL-terminated but may contain NULs; strlen finds them later. */
	*len = out ? strlen(out) : 0;
	return out ? out : g_strdup("");
}

struct tracefile *tracefile_load(const char *path, enum tracefile_format format, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, &local)) {
		g_set_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_IO, "%s", local->message);
		return NULL;
	}
	if (is_zstd(text, len)) {
		g_free(text);
		text = decompress_zstd(path, &len, error);
		if (!text)
			return NULL;
	}
	return parse_text(text, len, format, path, error);
}

void tracefile_free(struct tracefile *trace)
{
	if (!trace)
		return;
	g_free(trace->records);
	g_free(trace);
}

size_t tracefile_reads_only(struct tracefile *trace)
{
	size_t i, n = 0;

	for (i = 0; i < trace->n_records; i++) {
		if (trace->records[i].op == 'R')
			trace->records[n++] = trace->records[i];
	}
	trace->n_records = n;
	return n;
}

uint64_t tracefile_bytes(const struct tracefile *trace)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < trace->n_records; i++)
		sum += trace->records[i].length;
	return sum;
}

uint64_t tracefile_extent(const struct tracefile *trace)
{
	uint64_t max = 0;
	size_t i;

	for (i = 0; i < trace->n_records; i++) {
		const struct tracefile_record *r = &trace->records[i];
		uint64_t end = r->offset + r->length;

		if (end < r->offset)
			end = UINT64_MAX;
		if (end > max)
			max = end;
	}
	return max;
}

int tracefile_format_record(char *buf, size_t len, const struct tracefile_record *record)
{
	/* %.6f is microseconds: finer than any clock the core reads, and locale-free output
	 * matters because the reader uses g_ascii_strtod. */
	char t[G_ASCII_DTOSTR_BUF_SIZE];

	g_ascii_formatd(t, sizeof(t), "%.6f", record->time_s);
	return snprintf(buf, len, "%s,%" PRIu64 ",%" PRIu64 ",%c\n", t, record->offset,
			record->length, record->op == 'W' ? 'W' : 'R');
}

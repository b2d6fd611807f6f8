/*
 * Unit tests for src/tracefile.c: one tiny fixture per format, written to a temporary
 * directory, plus malformed input. The public traces in ../shared/traces are checked when
 * AHEADFS_TRACES points at them (they are never copied into the repository).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "aheadfs/tracefile.h"

static char *tmpdir;

static char *write_fixture(const char *name, const char *contents)
{
	char *path = g_build_filename(tmpdir, name, NULL);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	return path;
}

static struct tracefile *load_fixture(const char *name, const char *contents,
				      enum tracefile_format format)
{
	g_autofree char *path = write_fixture(name, contents);
	g_autoptr(GError) error = NULL;
	struct tracefile *t = tracefile_load(path, format, &error);

	g_assert_no_error(error);
	g_assert_nonnull(t);
	return t;
}

static void assert_record(const struct tracefile_record *r, double time_s, uint64_t offset,
			  uint64_t length, char op)
{
	g_assert_cmpfloat_with_epsilon(r->time_s, time_s, 1e-9);
	g_assert_cmpuint(r->offset, ==, offset);
	g_assert_cmpuint(r->length, ==, length);
	g_assert_cmpint(r->op, ==, op);
}

static void test_csv(void)
{
	struct tracefile *t = load_fixture("plain.csv",
					   "time_s,offset,length,op\n"
					   "0.5,4096,512,R\n"
					   "\n"
					   "# a comment\n"
					   "1.25, 8192 ,4096,w\r\n"
					   "2,0,1\n",
					   TRACEFILE_FORMAT_AUTO);

	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_CSV);
	g_assert_true(t->has_timestamps);
	g_assert_cmpuint(t->n_records, ==, 3);
	assert_record(&t->records[0], 0.5, 4096, 512, 'R');
	assert_record(&t->records[1], 1.25, 8192, 4096, 'W');
	assert_record(&t->records[2], 2, 0, 1, 'R');
	g_assert_cmpuint(tracefile_bytes(t), ==, 512 + 4096 + 1);
	g_assert_cmpuint(tracefile_extent(t), ==, 8192 + 4096);
	g_assert_cmpuint(tracefile_reads_only(t), ==, 2);
	assert_record(&t->records[1], 2, 0, 1, 'R');
	tracefile_free(t);

	/* No header, no op column, no extension. */
	t = load_fixture("noheader", "0,0,4096\n0.001,4096,4096\n", TRACEFILE_FORMAT_AUTO);
	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_CSV);
	g_assert_cmpuint(t->n_records, ==, 2);
	assert_record(&t->records[1], 0.001, 4096, 4096, 'R');
	tracefile_free(t);
}

static void test_access_log(void)
{
	struct tracefile_record in = {
	    .time_s = 3.000125, .offset = 1ull << 33, .length = 65536, .op = 'R'};
	g_autofree char *text = NULL;
	char line[80];
	struct tracefile *t;
	int n = tracefile_format_record(line, sizeof(line), &in);

	g_assert_cmpint(n, >, 0);
	g_assert_cmpint(n, <, (int)sizeof(line));
	g_assert_cmpstr(line, ==, "3.000125,8589934592,65536,R\n");
	text = g_strconcat(TRACEFILE_ACCESS_LOG_HEADER "\n", "time_s,offset,length,op\n", line,
			   "# mount options: foo\n", "3.5,0,4096,W\n", NULL);
	t = load_fixture("boot.trace", text, TRACEFILE_FORMAT_AUTO);
	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_ACCESS_LOG);
	g_assert_cmpuint(t->n_records, ==, 2);
	assert_record(&t->records[0], 3.000125, 1ull << 33, 65536, 'R');
	assert_record(&t->records[1], 3.5, 0, 4096, 'W');
	tracefile_free(t);
}

static void test_cloudphysics(void)
{
	struct tracefile *t = load_fixture("cloudPhysicsIO.csv",
					   "version,time,op,size,lbn\n"
					   "1,5633898,2a,512,42932745\n"
					   "1,5633899,28,65536,100\n"
					   "1,5633900,35,0,0\n" /* SYNCHRONIZE CACHE: skipped */
					   "1,5633901,88,4096,1\n",
					   TRACEFILE_FORMAT_AUTO);

	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_CLOUDPHYSICS);
	g_assert_cmpuint(t->n_records, ==, 3);
	assert_record(&t->records[0], 5633898, 42932745ull * 512, 512, 'W');
	assert_record(&t->records[1], 5633899, 100 * 512, 65536, 'R');
	assert_record(&t->records[2], 5633901, 512, 4096, 'R');
	tracefile_free(t);
}

static void test_arc(void)
{
	const char *lis = "230027 8 0 0\n1842745 64 0 1\n216082 8 0 2\n";
	g_autofree char *plain = write_fixture("P0.lis", lis);
	g_autofree char *zst = g_strconcat(plain, ".zst", NULL);
	g_autofree char *cmd = g_strdup_printf("zstd -q -f -o %s %s", zst, plain);
	g_autoptr(GError) error = NULL;
	struct tracefile *t;
	int status;

	t = load_fixture("noext", lis, TRACEFILE_FORMAT_AUTO);
	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_ARC);
	g_assert_false(t->has_timestamps);
	g_assert_cmpuint(t->n_records, ==, 3);
	assert_record(&t->records[1], 0, 1842745ull * 512, 64 * 512, 'R');
	tracefile_free(t);

	if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) || status != 0) {
		g_test_skip("zstd not available");
		return;
	}
	t = tracefile_load(zst, TRACEFILE_FORMAT_AUTO, &error);
	g_assert_no_error(error);
	g_assert_cmpint(t->format, ==, TRACEFILE_FORMAT_ARC);
	g_assert_cmpuint(t->n_records, ==, 3);
	assert_record(&t->records[2], 0, 216082ull * 512, 8 * 512, 'R');
	tracefile_free(t);
}

static void assert_bad(const char *name, const char *contents, enum tracefile_format format,
		       int code, const char *needle)
{
	g_autofree char *path = write_fixture(name, contents);
	g_autoptr(GError) error = NULL;
	struct tracefile *t = tracefile_load(path, format, &error);

	g_assert_null(t);
	g_assert_error(error, TRACEFILE_ERROR, code);
	if (g_test_verbose())
		g_printerr("%s\n", error->message);
	g_assert_nonnull(strstr(error->message, needle));
}

static void test_bad_input(void)
{
	g_autoptr(GError) error = NULL;
	enum tracefile_format f;

	assert_bad("short.csv", "0,0,4096\n1,2\n", TRACEFILE_FORMAT_AUTO, TRACEFILE_ERROR_PARSE,
		   "short.csv:2:");
	assert_bad("op.csv", "0,0,4096,X\n", TRACEFILE_FORMAT_CSV, TRACEFILE_ERROR_PARSE,
		   "op.csv:1:");
	assert_bad("huge.csv", "0,99999999999999999999999,1\n", TRACEFILE_FORMAT_CSV,
		   TRACEFILE_ERROR_PARSE, "huge.csv:1:");
	assert_bad("log", TRACEFILE_ACCESS_LOG_HEADER "\n1,2,3\n", TRACEFILE_FORMAT_AUTO,
		   TRACEFILE_ERROR_PARSE, "log:2:");
	assert_bad("nolog", "1,2,3,R\n", TRACEFILE_FORMAT_ACCESS_LOG, TRACEFILE_ERROR_PARSE,
		   "nolog:1:");
	assert_bad("cp.csv", "version,time,op,size,lbn\n1,2,zz,3,4\n", TRACEFILE_FORMAT_AUTO,
		   TRACEFILE_ERROR_PARSE, "cp.csv:2:");
	assert_bad("x.lis", "1 2 0 0\n1 two\n", TRACEFILE_FORMAT_AUTO, TRACEFILE_ERROR_PARSE,
		   "x.lis:2:");
	assert_bad("empty", "", TRACEFILE_FORMAT_AUTO, TRACEFILE_ERROR_FORMAT, "empty");
	assert_bad("prose", "hello world\n", TRACEFILE_FORMAT_AUTO, TRACEFILE_ERROR_FORMAT,
		   "cannot tell");
	assert_bad("fake.zst", "\x28\xb5\x2f\xfdnot really zstd", TRACEFILE_FORMAT_AUTO,
		   TRACEFILE_ERROR_IO, "zstd");

	g_assert_null(tracefile_parse("0,0,1\0garbage", 13, TRACEFILE_FORMAT_CSV, "nul", &error));
	g_assert_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_FORMAT);
	g_clear_error(&error);

	g_assert_null(tracefile_load("/nonexistent/trace", TRACEFILE_FORMAT_AUTO, &error));
	g_assert_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_IO);
	g_clear_error(&error);

	g_assert_true(tracefile_format_from_string("cloudphysics", &f, NULL));
	g_assert_cmpint(f, ==, TRACEFILE_FORMAT_CLOUDPHYSICS);
	g_assert_false(tracefile_format_from_string("blktrace", &f, &error));
	g_assert_error(error, TRACEFILE_ERROR, TRACEFILE_ERROR_FORMAT);
	g_assert_cmpstr(tracefile_format_to_string(TRACEFILE_FORMAT_ACCESS_LOG), ==, "access-log");
}

/*
 * The real traces, read in place: $AHEADFS_TRACES, else ../shared/traces next to the
 * source tree, where the project keeps them.
 */
static void test_public_traces(void)
{
	const char *env = g_getenv("AHEADFS_TRACES");
	const char *top = g_getenv("top_srcdir");
	g_autofree char *dir = env   ? g_strdup(env)
			       : top ? g_build_filename(top, "..", "shared", "traces", NULL)
				     : NULL;
	static const struct {
		const char *file;
		size_t records;
	} expect[] = {
	    {"cloudPhysicsIO.csv", 113872},
	    {"P3.lis.zst", 238578},
	    {"OLTP.lis.zst", 914145},
	};
	size_t i;

	if (!dir || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		g_test_skip("public traces not found: set AHEADFS_TRACES");
		return;
	}
	for (i = 0; i < G_N_ELEMENTS(expect); i++) {
		g_autofree char *path = g_build_filename(dir, expect[i].file, NULL);
		g_autoptr(GError) error = NULL;
		gint64 start = g_get_monotonic_time();
		struct tracefile *t = tracefile_load(path, TRACEFILE_FORMAT_AUTO, &error);

		g_assert_no_error(error);
		g_assert_cmpuint(t->n_records, ==, expect[i].records);
		g_test_message("%s: %zu records in %.3f s", expect[i].file, t->n_records,
			       (g_get_monotonic_time() - start) / 1e6);
		if (i == 0)
			g_assert_cmpuint(tracefile_reads_only(t), ==, 46974);
		tracefile_free(t);
	}
}

/* The fixtures are plain files in one flat directory. */
static void remove_tmpdir(void)
{
	GDir *dir = g_dir_open(tmpdir, 0, NULL);
	const char *name;

	while (dir && (name = g_dir_read_name(dir))) {
		g_autofree char *path = g_build_filename(tmpdir, name, NULL);

		g_unlink(path);
	}
	if (dir)
		g_dir_close(dir);
	g_rmdir(tmpdir);
	g_free(tmpdir);
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("test-tracefile-XXXXXX", &error);
	g_assert_no_error(error);

	g_test_add_func("/tracefile/csv", test_csv);
	g_test_add_func("/tracefile/access-log", test_access_log);
	g_test_add_func("/tracefile/cloudphysics", test_cloudphysics);
	g_test_add_func("/tracefile/arc", test_arc);
	g_test_add_func("/tracefile/bad-input", test_bad_input);
	g_test_add_func("/tracefile/public-traces", test_public_traces);
	rc = g_test_run();

	remove_tmpdir();
	return rc;
}

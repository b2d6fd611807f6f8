/* Unit tests: the block map in memory and on disk (persist, reload, reject). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "aheadfs/blockmap.h"
#include "aheadfs/mapfile.h"

static const struct mapfile_identity ident = {
	.url = "http://127.0.0.1/vm.raw",
	.validator = "\"5f3a-1234\"",
	.image_size = 1000 * 65536 + 123,
	.block_size = 65536,
};

static void test_set_test(void)
{
	struct blockmap *m = blockmap_new(130);

	g_assert_false(blockmap_test(m, 0));
	blockmap_set(m, 0);
	blockmap_set(m, 63);
	blockmap_set(m, 64);
	blockmap_set(m, 129);
	g_assert_true(blockmap_test(m, 0) && blockmap_test(m, 63) && blockmap_test(m, 64));
	g_assert_false(blockmap_test(m, 1));
	g_assert_cmpuint(blockmap_count(m), ==, 4);
	g_assert_true(blockmap_test_all(m, 63, 2));
	g_assert_false(blockmap_test_all(m, 62, 3));
	g_assert_cmpuint(blockmap_next_clear(m, 0), ==, 1);
	g_assert_cmpuint(blockmap_next_clear(m, 63), ==, 65);
	g_assert_cmpuint(blockmap_next_set(m, 1), ==, 63);
	g_assert_cmpuint(blockmap_next_set(m, 65), ==, 129);
	g_assert_cmpuint(blockmap_next_set(m, 130), ==, 130);
	blockmap_clear(m, 63);
	g_assert_false(blockmap_test(m, 63));
	for (uint64_t b = 0; b < 130; b++)
		blockmap_set(m, b);
	g_assert_true(blockmap_test_all(m, 0, 130));
	g_assert_cmpuint(blockmap_next_clear(m, 0), ==, 130);
	blockmap_clear_all(m);
	g_assert_cmpuint(blockmap_count(m), ==, 0);
	g_assert_cmpuint(blockmap_next_set(m, 0), ==, 130);
	blockmap_free(m);
}

static char *tmp_path(const char *name)
{
	char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	char *path = g_build_filename(dir, name, NULL);

	g_free(dir);
	return path;
}

static void remove_with_dir(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_unlink(path);
	g_rmdir(dir);
}

static struct blockmap *sample_map(void)
{
	struct blockmap *m = blockmap_new(1001);

	for (uint64_t b = 0; b < 1001; b += 7)
		blockmap_set(m, b);
	blockmap_set(m, 1000);
	return m;
}

static void test_persist_reload(void)
{
	g_autofree char *path = tmp_path("map");
	g_autoptr(GError) error = NULL;
	struct blockmap *m = sample_map(), *r;

	g_assert_true(mapfile_write(path, &ident, m, &error));
	g_assert_no_error(error);
	r = mapfile_read(path, &ident, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
	g_assert_cmpuint(r->nblocks, ==, 1001);
	for (uint64_t b = 0; b < 1001; b++)
		g_assert_cmpint(blockmap_test(r, b), ==, blockmap_test(m, b));
	blockmap_free(m);
	blockmap_free(r);
	remove_with_dir(path);
}

static void expect_rejected(const char *path, const struct mapfile_identity *id, int code)
{
	g_autoptr(GError) error = NULL;
	struct blockmap *r = mapfile_read(path, id, &error);

	g_assert_null(r);
	g_assert_error(error, MAPFILE_ERROR, code);
}

static void test_foreign_rejected(void)
{
	g_autofree char *path = tmp_path("map");
	struct blockmap *m = sample_map();
	struct mapfile_identity other;

	g_assert_true(mapfile_write(path, &ident, m, NULL));
	other = ident;
	other.validator = "\"5f3a-9999\"";
	expect_rejected(path, &other, MAPFILE_ERROR_FOREIGN);
	other = ident;
	other.url = "http://127.0.0.1/other.raw";
	expect_rejected(path, &other, MAPFILE_ERROR_FOREIGN);
	other = ident;
	other.image_size++;
	expect_rejected(path, &other, MAPFILE_ERROR_FOREIGN);
	other = ident;
	other.block_size = 4096;
	expect_rejected(path, &other, MAPFILE_ERROR_FOREIGN);
	blockmap_free(m);
	remove_with_dir(path);
}

/* Every single-bit flip and every truncation is caught. */
static void test_corrupt_rejected(void)
{
	g_autofree char *path = tmp_path("map");
	g_autofree char *orig = NULL;
	struct blockmap *m = sample_map();
	gsize len;

	g_assert_true(mapfile_write(path, &ident, m, NULL));
	g_assert_true(g_file_get_contents(path, &orig, &len, NULL));
	for (gsize i = 0; i < len; i += 3) {
		g_autofree char *bad = g_memdup2(orig, len);
		g_autoptr(GError) error = NULL;

		bad[i] ^= 0x10;
		g_assert_true(g_file_set_contents(path, bad, (gssize)len, NULL));
		g_assert_null(mapfile_read(path, &ident, &error));
		g_assert_nonnull(error);
		g_assert_true(error->domain == MAPFILE_ERROR);
	}
	for (gsize cut = 0; cut < len; cut += 37) {
		g_assert_true(g_file_set_contents(path, orig, (gssize)cut, NULL));
		expect_rejected(path, &ident, MAPFILE_ERROR_CORRUPT);
	}
	/* Another format version is named as such. */
	orig[8] = 2;
	g_assert_true(g_file_set_contents(path, orig, (gssize)len, NULL));
	expect_rejected(path, &ident, MAPFILE_ERROR_VERSION);
	blockmap_free(m);
	remove_with_dir(path);
}

static void test_missing_file(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_null(mapfile_read("/nonexistent/aheadfs/map", &ident, &error));
	g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/blockmap/set-test", test_set_test);
	g_test_add_func("/blockmap/persist-reload", test_persist_reload);
	g_test_add_func("/blockmap/foreign-rejected", test_foreign_rejected);
	g_test_add_func("/blockmap/corrupt-rejected", test_corrupt_rejected);
	g_test_add_func("/blockmap/missing-file", test_missing_file);
	return g_test_run();
}

/* Unit tests: the cache store: write, flush, reopen, discard on a changed remote. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "aheadfs/store.h"

#define BS 4096

static struct store_config config(const char *dir, const char *validator)
{
	struct store_config c = {
		.cache_dir = dir,
		.url = "http://127.0.0.1/t.raw",
		.validator = validator,
		.image_size = 10 * BS + 100,
		.block_size = BS,
	};
	return c;
}

static void fill(char *buf, size_t len, int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i * 31 + (size_t)seed);
}

static void test_write_reopen(void)
{
	g_autofree char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	struct store_config c = config(dir, "\"v1\"");
	g_autoptr(GError) error = NULL;
	char buf[2 * BS], back[2 * BS];
	struct store *s = store_open(&c, &error);

	g_assert_no_error(error);
	g_assert_null(store_discarded(s));
	g_assert_cmpuint(store_block_count(s), ==, 11);
	fill(buf, sizeof(buf), 1);
	g_assert_cmpint(store_write(s, 3, buf, sizeof(buf)), ==, 0);
	fill(buf, 100, 2);
	g_assert_cmpint(store_write(s, 10, buf, 100), ==, 0); /* the partial last block */
	g_assert_true(store_has_all(s, 3, 2) && store_has(s, 10) && !store_has(s, 5));
	store_close(s);

	s = store_open(&c, &error);
	g_assert_no_error(error);
	g_assert_null(store_discarded(s));
	g_assert_cmpuint(store_cached_blocks(s), ==, 3);
	g_assert_true(store_has_all(s, 3, 2) && store_has(s, 10));
	fill(buf, sizeof(buf), 1);
	g_assert_cmpint(pread(store_fd(s), back, sizeof(back), 3 * BS), ==, sizeof(back));
	g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
	store_close(s);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

static void test_changed_remote_discards(void)
{
	g_autofree char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	struct store_config c = config(dir, "\"v1\"");
	char buf[BS];
	struct store *s = store_open(&c, NULL);

	fill(buf, BS, 3);
	g_assert_cmpint(store_write(s, 0, buf, BS), ==, 0);
	store_close(s);

	c.validator = "\"v2\"";
	s = store_open(&c, NULL);
	g_assert_nonnull(store_discarded(s));
	g_assert_nonnull(strstr(store_discarded(s), "validator"));
	g_assert_cmpuint(store_cached_blocks(s), ==, 0);
	/* The old bytes are gone, not just unmarked. */
	{
		char back[BS], zero[BS] = {0};

		g_assert_cmpint(pread(store_fd(s), back, BS, 0), ==, BS);
		g_assert_cmpmem(back, BS, zero, BS);
	}
	store_close(s);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

static void test_second_open_refused(void)
{
	g_autofree char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	struct store_config c = config(dir, "\"v1\"");
	g_autoptr(GError) error = NULL;
	struct store *s = store_open(&c, NULL);
	struct store *t;

	g_test_message("a second open waits ~5 s for the first to go, then fails");
	t = store_open(&c, &error);
	g_assert_null(t);
	g_assert_nonnull(strstr(error->message, "in use by another aheadfs mount"));
	store_close(s);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/store/write-reopen", test_write_reopen);
	g_test_add_func("/store/changed-remote-discards", test_changed_remote_discards);
	g_test_add_func("/store/second-open-refused", test_second_open_refused);
	return g_test_run();
}

/*
 * ctl_heatmap: the `aheadfsctl heatmap` command (see the header): finds and reads the
 * heat file, checks it (heat_parse), draws it, and prints one summary line.
 */
#include "aheadfs/ctl_heatmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "aheadfs/heat.h"
#include "aheadfs/heatmap.h"

#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE 2
#define HEAT_FILE_MAX_BYTES ((gsize)1 << 30)

/*
 * The heat file of @arg: @arg itself when it is a *.heat file, else the control folder's
 * file for the image @arg names. @name gets the image's name, for the title.
 */
static char *ctl_heat_path(const char *arg, char **name, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(arg);
	g_autofree char *base = g_path_get_basename(arg);
	char *path;

	if (g_str_has_suffix(base, ".heat") && g_file_test(arg, G_FILE_TEST_IS_REGULAR)) {
		*name = g_strndup(base, strlen(base) - strlen(".heat"));
		return g_strdup(arg);
	}
	path = g_strdup_printf("%s/.aheadfs/%s.heat", dir, base);
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
			    "%s: no heat map at %s (not an image of an aheadfs mount?)", arg, path);
		g_free(path);
		return NULL;
	}
	*name = g_steal_pointer(&base);
	return path;
}

/*
 * Read to the end: the file's size as stat() saw it may be of an earlier snapshot than
 * the one this open() reads (g_file_get_contents would stop at the stat size).
 */
static GBytes *ctl_read_all(const char *path, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	guint8 chunk[65536];
	ssize_t n = -1;

	if (fd < 0)
		goto fail;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf->len + (gsize)n > HEAT_FILE_MAX_BYTES)
			goto fail;
		g_byte_array_append(buf, chunk, (guint)n);
	}
	close(fd);
	return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
fail : {
	int e = n > 0 ? EFBIG : errno;

	if (fd >= 0)
		close(fd);
	g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", path, g_strerror(e));
}
	return NULL;
}

static const char ctl_heatmap_summary[] =
    "Draws the heat map of an image of a running mount: every block on a grid, coloured by\n"
    "the probability the model gives it (decayed over time), cached and not yet cached\n"
    "blocks told apart; with a title and a legend. IMAGE is MOUNTPOINT/NAME (its data is\n"
    "read from MOUNTPOINT/.aheadfs/NAME.heat) or a copy of such a .heat file. Prints one\n"
    "line: the picture's size and where the grid is.";

int ctl_heatmap(int argc, char **argv)
{
	g_autofree char *output = NULL, *name = NULL, *path = NULL;
	g_auto(GStrv) rest = NULL;
	gint width = 1024;
	GOptionEntry entries[] = {
	    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "write the PNG here (required)",
	     "FILE"},
	    {"width", 0, 0, G_OPTION_ARG_INT, &width, "picture width in pixels (1024)", "N"},
	    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, "IMAGE"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("IMAGE -o FILE.png");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HeatSnapshot) snap = NULL;
	struct heatmap_layout layout;
	int status = CTL_EXIT_USAGE;

	g_set_prgname("aheadfsctl heatmap");
	g_option_context_set_summary(ctx, ctl_heatmap_summary);
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error))
		goto out;
	if (!rest || !rest[0] || rest[1]) {
		g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
			    rest && rest[0] ? "one IMAGE only" : "no IMAGE given");
		goto out;
	}
	if (!output) {
		g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
			    "no output file given (-o FILE.png)");
		goto out;
	}
	if (width < HEATMAP_MIN_WIDTH || width > HEATMAP_MAX_WIDTH) {
		g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--width=%d: expected %d to %d pixels", width, HEATMAP_MIN_WIDTH,
			    HEATMAP_MAX_WIDTH);
		goto out;
	}
	status = CTL_EXIT_FAILURE;
	path = ctl_heat_path(rest[0], &name, &error);
	if (!path || !(bytes = ctl_read_all(path, &error)))
		goto out;
	snap = heat_parse(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), &error);
	if (!snap) {
		g_prefix_error(&error, "%s: ", path);
		goto out;
	}
	if (!heatmap_write_png(snap, &(struct heatmap_options){.name = name, .width = width},
			       output, &layout, &error))
		goto out;
	printf("%s: %dx%d px, grid at %d,%d size %dx%d, %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
	       " cells of %d px, %" G_GUINT64_FORMAT " block(s) per cell; %zu blocks predicted, "
	       "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " cached\n",
	       output, layout.width, layout.height, layout.grid_x, layout.grid_y, layout.grid_width,
	       layout.grid_height, layout.cols, layout.rows, layout.cell_px, layout.blocks_per_cell,
	       snap->n_hot, snap->cached_blocks, snap->nblocks);
	status = fflush(stdout) == 0 ? 0 : CTL_EXIT_FAILURE;
out:
	if (error)
		fprintf(stderr, "aheadfsctl heatmap: %s%s\n", error->message,
			status == CTL_EXIT_USAGE ? " (see aheadfsctl heatmap --help)" : "");
	return status;
}

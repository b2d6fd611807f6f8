/*
 * heatmap: draws a parsed heat file (heat.h) as a PNG with cairo, for `aheadfsctl heatmap`.
 * Built into aheadfsctl only: the mount does not link cairo.
 *
 * The image's blocks fill a grid row by row from the top left (block 0 first). A cell is
 * one block while the image fits at one pixel or more per block; past that a cell stands
 * for several blocks, showing their highest probability, shaded between the cached and
 * the not-cached colour by the share of its blocks that are cached.
 *
 *   cell colour                              meaning
 *   ramp yellow -> orange -> red -> dark red  predicted, probability floor .. 1, cached
 *   the same ramp, pale                      predicted, not cached yet
 *   mid grey                                 no prediction, cached
 *   light grey                               no prediction, not cached
 *
 * A title (image name, size, time of the snapshot) and a legend of the above sit above
 * and below the grid.
 */
#ifndef AHEADFS_HEATMAP_H
#define AHEADFS_HEATMAP_H

#include <glib.h>

#include "aheadfs/heat.h"

struct heatmap_options {
	const char *name; /* for the title */
	int width;	  /* pixels; the height follows */
};

/* Where the grid went, for the caller's summary (and tests that read the pixels). */
struct heatmap_layout {
	int width, height;	     /* of the whole picture */
	int grid_x, grid_y;	     /* top left of the grid */
	int grid_width, grid_height; /* pixels the cells cover */
	int cell_px;		     /* side of a cell */
	uint64_t cols, rows;	     /* cells */
	uint64_t blocks_per_cell;
};

#define HEATMAP_MIN_WIDTH 320
#define HEATMAP_MAX_WIDTH 8192

/* Draw @snap into the PNG file @path. FALSE with @error set when it cannot be written. */
gboolean heatmap_write_png(const struct heat_snapshot *snap, const struct heatmap_options *opts,
			   const char *path, struct heatmap_layout *layout, GError **error);

#endif /* AHEADFS_HEATMAP_H */

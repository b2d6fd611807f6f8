/*
 * heatmap: a heat snapshot drawn with cairo. See the header for what the picture means.
 *
 * Cells are written straight into the image surface's pixels (exact colours, no
 * antialiasing between neighbours, fast for the ~150,000 cells of a large image); cairo
 * draws the text and the legend and writes the PNG.
 */
#include "aheadfs/heatmap.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define MARGIN 16
#define TITLE_H 54   /* title and subtitle above the grid */
#define LEGEND_H 150 /* legend below the grid */
#define CELL_MAX_PX 32
#define CELL_AGGREGATED_PX 2
#define BAR_W 256

struct rgb {
	double r, g, b;
};

static const struct rgb colour_cached_cold = {0x8c / 255.0, 0x8c / 255.0, 0x8c / 255.0};
static const struct rgb colour_uncached_cold = {0xec / 255.0, 0xec / 255.0, 0xec / 255.0};
#define PALE 0.6 /* how far a not-cached cell's colour moves towards white */

/* Yellow-orange-red: light for unlikely, dark for certain (colour-blind safe). */
static struct rgb heatmap_ramp(double t)
{
	static const struct rgb stops[] = {
	    {254 / 255.0, 217 / 255.0, 118 / 255.0},
	    {253 / 255.0, 141 / 255.0, 60 / 255.0},
	    {227 / 255.0, 26 / 255.0, 28 / 255.0},
	    {128 / 255.0, 0 / 255.0, 38 / 255.0},
	};
	double x = CLAMP(t, 0.0, 1.0) * (G_N_ELEMENTS(stops) - 1);
	int i = MIN((int)x, (int)G_N_ELEMENTS(stops) - 2);
	double f = x - i;

	return (struct rgb){stops[i].r + f * (stops[i + 1].r - stops[i].r),
			    stops[i].g + f * (stops[i + 1].g - stops[i].g),
			    stops[i].b + f * (stops[i + 1].b - stops[i].b)};
}

/* @cached: the share of the cell's blocks that are cached, 0..1. */
static struct rgb heatmap_colour(float p, double cached, float floor)
{
	struct rgb c;
	double pale = PALE * (1 - cached);

	if (p <= 0) {
		const struct rgb *a = &colour_cached_cold, *b = &colour_uncached_cold;

		return (struct rgb){a->r + (1 - cached) * (b->r - a->r),
				    a->g + (1 - cached) * (b->g - a->g),
				    a->b + (1 - cached) * (b->b - a->b)};
	}
	c = heatmap_ramp((p - floor) / (1 - floor));
	return (struct rgb){c.r + pale * (1 - c.r), c.g + pale * (1 - c.g), c.b + pale * (1 - c.b)};
}

/* Cell size and count: one block per cell while each gets a pixel, else several. */
static void heatmap_plan(uint64_t nblocks, int width, struct heatmap_layout *l)
{
	int grid_w = width - 2 * MARGIN, grid_h_max = MAX(width * 3 / 5, 120);

	l->blocks_per_cell = 1;
	for (int s = CELL_MAX_PX; s >= 1; s--) {
		uint64_t cols = (uint64_t)(grid_w / s), rows = (nblocks + cols - 1) / cols;

		if (rows * (uint64_t)s <= (uint64_t)grid_h_max) {
			l->cell_px = s;
			l->cols = MIN(cols, nblocks);
			l->rows = rows;
			goto placed;
		}
	}
	l->cell_px = CELL_AGGREGATED_PX;
	l->cols = (uint64_t)(grid_w / CELL_AGGREGATED_PX);
	{
		uint64_t cells = l->cols * (uint64_t)(grid_h_max / CELL_AGGREGATED_PX);

		l->blocks_per_cell = (nblocks + cells - 1) / cells;
		l->rows = ((nblocks + l->blocks_per_cell - 1) / l->blocks_per_cell + l->cols - 1) /
			  l->cols;
	}
placed:
	l->width = width;
	l->grid_x = MARGIN;
	l->grid_y = MARGIN + TITLE_H;
	l->grid_width = (int)l->cols * l->cell_px;
	l->grid_height = (int)l->rows * l->cell_px;
	l->height = l->grid_y + l->grid_height + LEGEND_H + MARGIN;
}

struct heatmap_cells {
	uint64_t n;
	float *p;	  /* highest probability in the cell */
	uint64_t *cached; /* cached blocks in the cell */
};

static void heatmap_fill_cells(const struct heat_snapshot *s, uint64_t bpc, struct heatmap_cells *c)
{
	c->n = (s->nblocks + bpc - 1) / bpc;
	c->p = g_new0(float, c->n);
	c->cached = g_new0(uint64_t, c->n);
	for (size_t i = 0; i < s->n_hot; i++) {
		uint64_t cell = s->hot[i].block / bpc;

		c->p[cell] = MAX(c->p[cell], s->hot[i].probability);
	}
	for (size_t i = 0; i < s->n_cached; i++) {
		uint64_t b = s->cached[i].first, end = b + s->cached[i].count;

		while (b < end) {
			uint64_t cell = b / bpc, stop = MIN(end, (cell + 1) * bpc);

			c->cached[cell] += stop - b;
			b = stop;
		}
	}
}

static void heatmap_draw_cells(cairo_surface_t *surface, const struct heat_snapshot *s,
			       const struct heatmap_layout *l)
{
	struct heatmap_cells c;
	unsigned char *data;
	int stride, gap = l->cell_px >= 6 ? 1 : 0;

	heatmap_fill_cells(s, l->blocks_per_cell, &c);
	cairo_surface_flush(surface);
	data = cairo_image_surface_get_data(surface);
	stride = cairo_image_surface_get_stride(surface);
	for (uint64_t i = 0; i < c.n; i++) {
		uint64_t in_cell = MIN(l->blocks_per_cell, s->nblocks - i * l->blocks_per_cell);
		struct rgb rgb =
		    heatmap_colour(c.p[i], (double)c.cached[i] / (double)in_cell, s->floor);
		uint32_t px = (uint32_t)lround(rgb.r * 255) << 16 |
			      (uint32_t)lround(rgb.g * 255) << 8 | (uint32_t)lround(rgb.b * 255);
		int x0 = l->grid_x + (int)(i % l->cols) * l->cell_px;
		int y0 = l->grid_y + (int)(i / l->cols) * l->cell_px;

		for (int y = y0; y < y0 + l->cell_px - gap; y++) {
			uint32_t *row = (uint32_t *)(void *)(data + (size_t)y * (size_t)stride);

			for (int x = x0; x < x0 + l->cell_px - gap; x++)
				row[x] = px;
		}
	}
	cairo_surface_mark_dirty(surface);
	g_free(c.p);
	g_free(c.cached);
}

static void heatmap_text(cairo_t *cr, double x, double y, double size, bool bold, const char *text)
{
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	cairo_move_to(cr, x, y);
	cairo_show_text(cr, text);
}

static void heatmap_title(cairo_t *cr, const struct heat_snapshot *s,
			  const struct heatmap_options *o)
{
	g_autofree char *size =
	    g_format_size_full(s->nblocks * s->block_size, G_FORMAT_SIZE_IEC_UNITS);
	g_autofree char *bs = g_format_size_full(s->block_size, G_FORMAT_SIZE_IEC_UNITS);
	g_autofree char *title = g_strdup_printf("aheadfs heat map: %s", o->name);
	g_autofree char *sub = NULL;
	char when[64] = "unknown time";
	time_t t = (time_t)s->time_s;
	struct tm tm;
	float top = 0;

	for (size_t i = 0; i < s->n_hot; i++)
		top = MAX(top, s->hot[i].probability);
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	sub = g_strdup_printf("%s, %" G_GUINT64_FORMAT " blocks of %s; %s; %zu predicted "
			      "(highest p %.2f, half-life %.0f s); %.2f%% cached",
			      size, s->nblocks, bs, when, s->n_hot, (double)top,
			      s->half_life_ms / 1000.0,
			      100.0 * (double)s->cached_blocks / (double)s->nblocks);
	heatmap_text(cr, MARGIN, MARGIN + 16, 16, true, title);
	heatmap_text(cr, MARGIN, MARGIN + 38, 11, false, sub);
}

static void heatmap_swatch(cairo_t *cr, double x, double y, struct rgb c, const char *label)
{
	cairo_set_source_rgb(cr, c.r, c.g, c.b);
	cairo_rectangle(cr, x, y, 12, 12);
	cairo_fill(cr);
	heatmap_text(cr, x + 20, y + 10, 11, false, label);
}

static void heatmap_bar(cairo_t *cr, double x, double y, bool cached, float floor,
			const char *label)
{
	heatmap_text(cr, x, y + 10, 11, false, label);
	for (int i = 0; i < BAR_W; i++) {
		struct rgb c = heatmap_colour(floor + (1 - floor) * (float)i / (BAR_W - 1),
					      cached ? 1.0 : 0.0, floor);

		cairo_set_source_rgb(cr, c.r, c.g, c.b);
		cairo_rectangle(cr, x + 110 + i, y, 1, 12);
		cairo_fill(cr);
	}
}

static void heatmap_legend(cairo_t *cr, const struct heat_snapshot *s,
			   const struct heatmap_layout *l)
{
	double x = MARGIN, y = l->grid_y + l->grid_height + 14;
	g_autofree char *bs =
	    g_format_size_full(s->block_size * l->blocks_per_cell, G_FORMAT_SIZE_IEC_UNITS);
	g_autofree char *cells = NULL;

	heatmap_bar(cr, x, y, true, s->floor, "predicted, cached");
	heatmap_bar(cr, x, y + 18, false, s->floor, "predicted, not yet");
	for (int i = 0; i <= 4; i++) {
		char tick[16];
		double p = i == 0 ? s->floor : i / 4.0;

		g_snprintf(tick, sizeof(tick), i == 0 ? "p %.2f" : "%.2f", p);
		heatmap_text(cr, x + 110 + (BAR_W - 1) * (p - s->floor) / (1 - s->floor) - 10,
			     y + 44, 10, false, tick);
	}
	heatmap_swatch(cr, x, y + 56, colour_cached_cold, "no prediction, cached");
	heatmap_swatch(cr, x, y + 74, colour_uncached_cold, "no prediction, not cached");
	cells = g_strdup_printf(
	    "Cells row by row from the top left, block 0 first; one cell = "
	    "%" G_GUINT64_FORMAT " block%s (%s)%s.",
	    l->blocks_per_cell, l->blocks_per_cell == 1 ? "" : "s", bs,
	    l->blocks_per_cell == 1 ? "" : ": their highest p, shaded by the share cached");
	heatmap_text(cr, x, y + 108, 11, false, cells);
}

gboolean heatmap_write_png(const struct heat_snapshot *snap, const struct heatmap_options *opts,
			   const char *path, struct heatmap_layout *layout, GError **error)
{
	cairo_surface_t *surface;
	cairo_t *cr;
	cairo_status_t st;

	/* The parser keeps floor < 1; the ramp divides by 1 - floor. */
	heatmap_plan(snap->nblocks, CLAMP(opts->width, HEATMAP_MIN_WIDTH, HEATMAP_MAX_WIDTH),
		     layout);
	surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, layout->width, layout->height);
	cr = cairo_create(surface);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	heatmap_title(cr, snap, opts);
	heatmap_legend(cr, snap, layout);
	cairo_destroy(cr);
	heatmap_draw_cells(surface, snap, layout);
	st = cairo_surface_write_to_png(surface, path);
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(surface);
	cairo_surface_destroy(surface);
	/* Cairo's and fontconfig's caches (once per process), so leak checkers see ours only. */
	cairo_debug_reset_static_data();
	FcFini();
	if (st != CAIRO_STATUS_SUCCESS) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "%s: cannot write the PNG: %s", path, cairo_status_to_string(st));
		return FALSE;
	}
	return TRUE;
}

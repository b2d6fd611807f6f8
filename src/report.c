/*
 * report: the stats JSON. Built on demand (when the control file is opened), never on
 * the read path.
 */
#include "aheadfs/report.h"

#include "aheadfs/store.h"

static void counters_json(GString *out, const struct image_stats *s)
{
	g_string_append_printf(
		out,
		"\"reads\": %" G_GUINT64_FORMAT ", \"read_bytes\": %" G_GUINT64_FORMAT
		", \"hit_reads\": %" G_GUINT64_FORMAT ", \"miss_reads\": %" G_GUINT64_FORMAT
		", \"waited_reads\": %" G_GUINT64_FORMAT ", \"errors\": %" G_GUINT64_FORMAT
		", \"fetches\": %" G_GUINT64_FORMAT ", \"fetched_bytes\": %" G_GUINT64_FORMAT
		", \"uncached_fetches\": %" G_GUINT64_FORMAT
		", \"readahead_fetches\": %" G_GUINT64_FORMAT ", \"readahead_bytes\": %" G_GUINT64_FORMAT,
		stats_get(&s->reads), stats_get(&s->read_bytes), stats_get(&s->hit_reads),
		stats_get(&s->miss_reads), stats_get(&s->waited_reads), stats_get(&s->errors),
		stats_get(&s->fetches), stats_get(&s->fetched_bytes),
		stats_get(&s->uncached_fetches), stats_get(&s->readahead_fetches),
		stats_get(&s->readahead_bytes));
}

static void sum_into(struct image_stats *sum, const struct image_stats *s)
{
	sum->reads += stats_get(&s->reads);
	sum->read_bytes += stats_get(&s->read_bytes);
	sum->hit_reads += stats_get(&s->hit_reads);
	sum->miss_reads += stats_get(&s->miss_reads);
	sum->waited_reads += stats_get(&s->waited_reads);
	sum->errors += stats_get(&s->errors);
	sum->fetches += stats_get(&s->fetches);
	sum->fetched_bytes += stats_get(&s->fetched_bytes);
	sum->uncached_fetches += stats_get(&s->uncached_fetches);
	sum->readahead_fetches += stats_get(&s->readahead_fetches);
	sum->readahead_bytes += stats_get(&s->readahead_bytes);
}

static void image_json(GString *out, struct image *img)
{
	struct store *store = image_store(img);
	uint64_t blocks = store_block_count(store), cached = store_cached_blocks(store);
	g_autofree char *name = g_strescape(image_name(img), NULL);
	g_autofree char *url = g_strescape(image_url(img), NULL);

	g_string_append_printf(out,
			       "{\"name\": \"%s\", \"url\": \"%s\", \"size\": %" G_GUINT64_FORMAT
			       ", \"block_size\": %u, \"blocks\": %" G_GUINT64_FORMAT
			       ", \"cached_blocks\": %" G_GUINT64_FORMAT ", \"fill\": %.4f, ",
			       name, url, image_size(img), image_block_size(img), blocks, cached,
			       blocks ? (double)cached / (double)blocks : 1.0);
	counters_json(out, image_stats(img));
	g_string_append(out, ", ");
	stats_histogram_json(out, "hit_latency", &image_stats(img)->hit_latency);
	g_string_append(out, ", ");
	stats_histogram_json(out, "miss_latency", &image_stats(img)->miss_latency);
	g_string_append(out, "}");
}

char *report_json(struct image *const *images, guint n_images, struct origin *origin,
		  gint64 started_us)
{
	GString *out = g_string_new("{\"version\": 1, ");
	struct origin_counters oc = {0};
	struct image_stats total = {0};

	if (origin)
		origin_get_counters(origin, &oc);
	g_string_append_printf(out, "\"uptime_s\": %.3f, ",
			       (double)(g_get_monotonic_time() - started_us) / 1e6);
	g_string_append_printf(out,
			       "\"origin\": {\"requests\": %" G_GUINT64_FORMAT
			       ", \"bytes\": %" G_GUINT64_FORMAT ", \"retries\": %" G_GUINT64_FORMAT
			       ", \"failures\": %" G_GUINT64_FORMAT ", \"queued\": %" G_GUINT64_FORMAT
			       ", \"in_flight\": %" G_GUINT64_FORMAT "}, ",
			       oc.requests, oc.bytes, oc.retries, oc.failures, oc.queued,
			       oc.in_flight);
	for (guint i = 0; i < n_images; i++)
		sum_into(&total, image_stats(images[i]));
	g_string_append(out, "\"total\": {");
	counters_json(out, &total);
	g_string_append(out, "}, \"images\": [");
	for (guint i = 0; i < n_images; i++) {
		if (i)
			g_string_append(out, ", ");
		image_json(out, images[i]);
	}
	g_string_append(out, "]}\n");
	return g_string_free(out, FALSE);
}

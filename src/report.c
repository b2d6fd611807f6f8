/*
 * report: the stats JSON and its text summary. Built on demand (when a control file is
 * opened), never on the read path.
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
		", \"readahead_fetches\": %" G_GUINT64_FORMAT ", \"readahead_bytes\": %" G_GUINT64_FORMAT
		", \"evicted_blocks\": %" G_GUINT64_FORMAT ", \"evicted_unused_blocks\": %" G_GUINT64_FORMAT
		", \"helped_reads\": %" G_GUINT64_FORMAT ", \"latency_saved_s\": %.3f",
		stats_get(&s->reads), stats_get(&s->read_bytes), stats_get(&s->hit_reads),
		stats_get(&s->miss_reads), stats_get(&s->waited_reads), stats_get(&s->errors),
		stats_get(&s->fetches), stats_get(&s->fetched_bytes),
		stats_get(&s->uncached_fetches), stats_get(&s->readahead_fetches),
		stats_get(&s->readahead_bytes), stats_get(&s->evicted_blocks),
		stats_get(&s->evicted_unused_blocks), stats_get(&s->helped_reads),
		(double)stats_get(&s->saved_us) / 1e6);
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
	sum->evicted_blocks += stats_get(&s->evicted_blocks);
	sum->evicted_unused_blocks += stats_get(&s->evicted_unused_blocks);
	sum->helped_reads += stats_get(&s->helped_reads);
	sum->saved_us += stats_get(&s->saved_us);
}

static const char *const source_names[IMAGE_N_SOURCES] = {"critical", "predictive",
							   "background", "readahead"};

/* What prefetching's predictions came to, in report.h's terms. */
struct prefetch_figures {
	double accuracy, coverage;
	uint64_t wasted_bytes;
};

/* Over the prediction sources only: fill is judged by fill and by its tier's used_blocks. */
static struct prefetch_figures prefetch_figures(struct image *img)
{
	const struct image_stats *s = image_stats(img);
	uint64_t ahead = 0, used = 0, wasted = 0, missed = stats_get(&s->demand_blocks);

	for (int i = 0; i < IMAGE_N_SOURCES; i++) {
		uint64_t b = stats_get(&s->ahead_blocks[i]), u = stats_get(&s->ahead_used_blocks[i]);

		if (!(IMAGE_PREDICTION_SOURCES & (1u << i)))
			continue;
		ahead += b;
		used += u;
		wasted += b > u ? (b - u) * image_block_size(img) : 0;
	}
	return (struct prefetch_figures){
	    .accuracy = ahead ? (double)used / (double)ahead : 0.0,
	    .coverage = used + missed ? (double)used / (double)(used + missed) : 0.0,
	    .wasted_bytes = wasted,
	};
}

static void prefetch_json(GString *out, struct image *img)
{
	const struct image_stats *s = image_stats(img);
	struct prefetch_figures pf = prefetch_figures(img);

	g_string_append(out, "\"prefetch\": {\"tiers\": {");
	for (int i = 0; i < IMAGE_N_SOURCES; i++)
		g_string_append_printf(out,
				       "%s\"%s\": {\"blocks\": %" G_GUINT64_FORMAT
				       ", \"bytes\": %" G_GUINT64_FORMAT ", \"used_blocks\": %" G_GUINT64_FORMAT
				       "}",
				       i ? ", " : "", source_names[i], stats_get(&s->ahead_blocks[i]),
				       stats_get(&s->ahead_bytes[i]), stats_get(&s->ahead_used_blocks[i]));
	g_string_append_printf(out,
			       "}, \"accuracy\": %.4f, \"coverage\": %.4f, \"wasted_bytes\": %" G_GUINT64_FORMAT
			       ", \"late_reads\": %" G_GUINT64_FORMAT ", \"inflight_bytes\": %" G_GUINT64_FORMAT
			       ", \"miss_cost_ms\": %.3f}",
			       pf.accuracy, pf.coverage, pf.wasted_bytes, stats_get(&s->late_reads),
			       stats_get(&s->ahead_inflight_bytes),
			       (double)stats_get(&s->miss_cost_us) / 1e3);
}

static void model_json(GString *out, struct learner_image *li)
{
	struct learner_image_stats ls;

	learner_image_stats(li, &ls);
	g_string_append_printf(out,
			       "\"model\": {\"name\": \"%s\", \"leader\": %s%s%s"
			       ", \"confidence\": %.4f, \"entropy\": %.4f"
			       ", \"bytes\": %" G_GSIZE_FORMAT ", \"events\": %" G_GUINT64_FORMAT
			       ", \"dropped_events\": %" G_GUINT64_FORMAT ", \"state_loaded\": %s"
			       ", \"heat_entries\": %" G_GSIZE_FORMAT ", \"heat_bytes\": %" G_GSIZE_FORMAT
			       ", \"cpu_share\": %.4f, \"cpu_scale\": %.4f}",
			       ls.model, ls.leader ? "\"" : "", ls.leader ? ls.leader : "null",
			       ls.leader ? "\"" : "", ls.confidence, ls.entropy, ls.model_bytes, ls.events,
			       ls.dropped_events, ls.state_loaded ? "true" : "false", ls.heat_entries,
			       ls.heat_bytes, ls.cpu_share, ls.cpu_scale);
}

static void image_json(GString *out, struct image *img, struct learner_image *li)
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
	g_string_append(out, ", ");
	prefetch_json(out, img);
	if (li) {
		g_string_append(out, ", ");
		model_json(out, li);
	}
	g_string_append(out, "}");
}

char *report_json(struct image *const *images, struct learner_image *const *learned,
		  guint n_images, struct origin *origin, struct link *link, gint64 started_us)
{
	double rtt_us = 0, bandwidth = 0;
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
			       ", \"failures\": %" G_GUINT64_FORMAT ", \"connects\": %" G_GUINT64_FORMAT
			       ", \"queued\": %" G_GUINT64_FORMAT ", \"in_flight\": %" G_GUINT64_FORMAT
			       "}, ",
			       oc.requests, oc.bytes, oc.retries, oc.failures, oc.connects, oc.queued,
			       oc.in_flight);
	if (link)
		link_get(link, &rtt_us, &bandwidth);
	g_string_append_printf(out, "\"link\": {\"rtt_ms\": %.3f, \"bandwidth_mbit\": %.1f}, ",
			       rtt_us / 1000.0, bandwidth * 8 / 1e6);
	for (guint i = 0; i < n_images; i++)
		sum_into(&total, image_stats(images[i]));
	g_string_append(out, "\"total\": {");
	counters_json(out, &total);
	g_string_append(out, "}, \"images\": [");
	for (guint i = 0; i < n_images; i++) {
		if (i)
			g_string_append(out, ", ");
		image_json(out, images[i], learned ? learned[i] : NULL);
	}
	g_string_append(out, "]}\n");
	return g_string_free(out, FALSE);
}

static void image_summary(GString *out, struct image *img, struct learner_image *li)
{
	const struct image_stats *s = image_stats(img);
	struct store *store = image_store(img);
	uint64_t blocks = store_block_count(store), cached = store_cached_blocks(store);
	struct prefetch_figures pf = prefetch_figures(img);
	struct stats_histogram miss;

	stats_histogram_snapshot(&s->miss_latency, &miss);
	g_string_append_printf(out,
			       "%s: %.1f%% local (%.1f of %.1f MiB)\n"
			       "  reads: %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " hits, %" G_GUINT64_FORMAT
			       " misses, %" G_GUINT64_FORMAT " of them waiting for a prefetch); misses took %.1f ms"
			       " on average\n"
			       "  prefetch: %" G_GUINT64_FORMAT " reads found their blocks fetched ahead,"
			       " %.1f s of read time saved; accuracy %.2f, coverage %.2f, %.1f MiB fetched"
			       " ahead and not read\n",
			       image_name(img), blocks ? 100.0 * (double)cached / (double)blocks : 100.0,
			       (double)(cached * image_block_size(img)) / 1048576.0,
			       (double)image_size(img) / 1048576.0, stats_get(&s->reads),
			       stats_get(&s->hit_reads), stats_get(&s->miss_reads),
			       stats_get(&s->late_reads),
			       miss.count ? (double)miss.sum_us / (double)miss.count / 1e3 : 0.0,
			       stats_get(&s->helped_reads), (double)stats_get(&s->saved_us) / 1e6,
			       pf.accuracy, pf.coverage, (double)pf.wasted_bytes / 1048576.0);
	if (li) {
		struct learner_image_stats ls;

		learner_image_stats(li, &ls);
		g_string_append_printf(out, "  model: %s, confidence %.2f, %s\n", ls.model,
				       ls.confidence,
				       ls.state_loaded ? "learned state loaded at mount"
						       : "nothing learned before this mount");
	}
}

char *report_summary(struct image *const *images, struct learner_image *const *learned,
		     guint n_images, struct origin *origin, struct link *link, gint64 started_us)
{
	double rtt_us = 0, bandwidth = 0;
	struct origin_counters oc = {0};
	GString *out = g_string_new(NULL);

	if (origin)
		origin_get_counters(origin, &oc);
	if (link)
		link_get(link, &rtt_us, &bandwidth);
	g_string_append_printf(out,
			       "up %.1f s; origin: %" G_GUINT64_FORMAT " requests on %" G_GUINT64_FORMAT
			       " connection%s, %.1f MiB, %" G_GUINT64_FORMAT " retries, %" G_GUINT64_FORMAT
			       " failures; link: %.1f ms, ",
			       (double)(g_get_monotonic_time() - started_us) / 1e6, oc.requests,
			       oc.connects, oc.connects == 1 ? "" : "s", (double)oc.bytes / 1048576.0,
			       oc.retries, oc.failures, rtt_us / 1000.0);
	if (bandwidth > 0)
		g_string_append_printf(out, "%.0f Mbit/s\n", bandwidth * 8 / 1e6);
	else
		g_string_append(out, "bandwidth not measured yet\n");
	for (guint i = 0; i < n_images; i++)
		image_summary(out, images[i], learned ? learned[i] : NULL);
	return g_string_free(out, FALSE);
}

/*
 * bench-model: the cost of each model on a synthetic stream of 1M events (sequential runs,
 * a repeated boot-like pattern, random reads, a session start every 100k events):
 * ns per observe, ns per predict (every event, horizon 50 ms, up to 256 blocks), and the
 * bytes the model holds at the end.  For the LSTM, observes that made a training step are
 * timed apart (ns/train) from those that did not (ns/step), and the CPU share it used
 * against the time the events span.  Usage: bench-model [EVENTS [IMAGE_BLOCKS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aheadfs/model.h"
#include "aheadfs/model_lstm.h"

static uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static struct model_event *bench_stream(size_t n, uint64_t blocks)
{
	struct model_event *ev = g_new(struct model_event, n);
	uint64_t seed = 12345, t = 0, pattern[2000];
	size_t i = 0;

	for (size_t k = 0; k < G_N_ELEMENTS(pattern); k++)
		pattern[k] = bench_rand(&seed) % blocks;
	while (i < n) {
		uint64_t kind = bench_rand(&seed) % 3, start = bench_rand(&seed) % (blocks - 512);

		for (size_t k = 0; k < 500 && i < n; k++, i++) {
			t += 200 + bench_rand(&seed) % 800;
			ev[i].time_us = t;
			ev[i].nblocks = 1;
			ev[i].kind = MODEL_ACCESS_MISS;
			ev[i].block = kind == 0	  ? start + k
				      : kind == 1 ? pattern[(i / 500 * 500 + k) % 2000]
						  : bench_rand(&seed) % blocks;
		}
	}
	return ev;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"none",    "sequential", "markov",
					    "profile", "lstm",	     "hybrid"};
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	uint64_t blocks = argc > 2 ? strtoull(argv[2], NULL, 10) : 163840; /* 10 GiB of 64 KiB */
	g_autofree struct model_event *ev = NULL;
	struct model_prediction out[256];
	struct model_params p = {.image_blocks = blocks};

	if (n == 0 || blocks < 1024) {
		fprintf(stderr, "usage: bench-model [EVENTS >= 1] [IMAGE_BLOCKS >= 1024]\n");
		return 2;
	}
	ev = bench_stream(n, blocks);
	printf("%zu events, image of %" G_GUINT64_FORMAT " blocks, memory cap %d MiB\n", n, blocks,
	       16);
	printf("%-11s %12s %12s %14s %12s %11s\n", "model", "ns/observe", "ns/predict",
	       "predictions/ev", "bytes", "confidence");
	for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(Model) m = model_new(names[k], &p, &error);
		uint64_t t_obs = 0, t_pred = 0, predicted = 0, t_train = 0, n_train = 0;
		struct model_lstm_counters lc = {0}, lc2;
		bool lstm = model_lstm_get_counters(m, &lc);

		if (!m) {
			fprintf(stderr, "bench-model: %s\n", error->message);
			return 1;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t a, b, c;

			if (i % 100000 == 0)
				model_session_start(m, ev[i].time_us);
			a = bench_now_ns();
			model_observe(m, &ev[i]);
			b = bench_now_ns();
			predicted += model_predict(m, ev[i].time_us, 50000, out, G_N_ELEMENTS(out));
			c = bench_now_ns();
			t_obs += b - a;
			t_pred += c - b;
			if (lstm && model_lstm_get_counters(m, &lc2) &&
			    lc2.train_steps != lc.train_steps) {
				t_train += b - a;
				n_train++;
				lc = lc2;
			}
		}
		printf("%-11s %12.0f %12.0f %14.1f %12zu %11.3f\n", names[k], (double)t_obs / n,
		       (double)t_pred / n, (double)predicted / n, model_memory_bytes(m),
		       model_confidence(m));
		if (lstm) {
			double span_ns = (double)(ev[n - 1].time_us - ev[0].time_us) * 1e3;

			model_lstm_get_counters(m, &lc);
			printf("  lstm: hidden %u, vocabulary %u; %.0f ns/observe with a training "
			       "step (%" G_GUINT64_FORMAT " of them, %" G_GUINT64_FORMAT
			       " skipped over budget), %.0f ns without; estimated %.0f and %.0f; "
			       "CPU %.1f%% of the events' span; loss %.3f, top-1 %.3f\n",
			       lc.hidden, lc.vocab, n_train ? (double)t_train / n_train : 0.0,
			       n_train, lc.train_skipped,
			       n > n_train ? (double)(t_obs - t_train) / (n - n_train) : 0.0,
			       lc.cost_ns_train, lc.cost_ns_step,
			       span_ns > 0 ? 100.0 * (double)(t_obs + t_pred) / span_ns : 0.0,
			       lc.loss, lc.top1);
		}
	}
	return 0;
}

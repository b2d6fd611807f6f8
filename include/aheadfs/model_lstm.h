/*
 * model_lstm: the LSTM expert's internals that its tests and benchmark look at.  Everyone
 * else uses it through model.h as model_new("lstm", ...) or as a part of the hybrid.
 *
 * The expert's network is lstm_net.h's; model_lstm_get_net() hands it to a test, which
 * then uses that header's functions (included here for that reason).
 */
#ifndef AHEADFS_MODEL_LSTM_H
#define AHEADFS_MODEL_LSTM_H

#include <stdbool.h>
#include <stdint.h>

#include "aheadfs/lstm_net.h"
#include "aheadfs/model.h"

/* What one LSTM expert has done, for tests and the benchmark. */
struct model_lstm_counters {
	unsigned hidden, vocab; /* as sized for its memory cap; 0: too small a cap, inert */
	uint64_t steps;		/* accesses fed to the net */
	uint64_t skipped;	/* accesses not fed: the net slept, over budget */
	uint64_t train_steps;	/* BPTT updates made */
	uint64_t train_skipped; /* updates skipped: over the CPU budget */
	uint64_t rollout_steps; /* net steps run to predict */
	uint64_t promotions;	/* deltas given a class of their own */
	double loss;		/* recent mean cross-entropy of the next class, nats */
	double top1;		/* recent share of accesses whose class was the top guess */
	double cost_ns_train;	/* estimated cost of one update, as the budget counts it */
	double cost_ns_step;	/* ... of one net step */
};

/* FALSE if @model is not an LSTM expert. */
bool model_lstm_get_counters(const struct model *model, struct model_lstm_counters *out);
/* The expert's net, or NULL (not an LSTM, or inert): for tests that damage weights. */
struct lstm_net *model_lstm_get_net(struct model *model);

#endif /* AHEADFS_MODEL_LSTM_H */

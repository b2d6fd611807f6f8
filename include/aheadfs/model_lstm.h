/*
 * model_lstm: the LSTM expert's internals that its tests and benchmark look at.  Everyone
 * else uses it through model.h as model_new("lstm", ...) or as a part of the hybrid.
 *
 * The network (struct lstm_net) is a one-layer LSTM over delta classes with a softmax
 * output, trained by truncated backpropagation through time with Adam.  The functions
 * below let a test run it on its own: a numerical gradient check, for one.  Like the
 * models, a net is single-threaded and owned by its caller.
 */
#ifndef AHEADFS_MODEL_LSTM_H
#define AHEADFS_MODEL_LSTM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aheadfs/model.h"

struct lstm_net;

/* A net of @hidden units (a multiple of 8) over @vocab classes, unrolled for at most @steps steps,
 * with its weights drawn from @seed.  The caller owns it; free with lstm_net_free(). */
struct lstm_net *lstm_net_new(unsigned hidden, unsigned vocab, unsigned steps, uint64_t seed);
void lstm_net_free(struct lstm_net *net);

/* The parameter vector (read-write) and the gradient of the latest lstm_net_loss(). */
size_t lstm_net_nparams(const struct lstm_net *net);
float *lstm_net_params(struct lstm_net *net);
const float *lstm_net_grads(const struct lstm_net *net);

/*
 * The mean cross-entropy (nats) of predicting @targets[t] after reading @inputs[0..t], for
 * t < @len (<= steps), from the zero state.  With @backprop, the gradient is left in
 * lstm_net_grads() (unclipped) and no weight changes.
 */
double lstm_net_loss(struct lstm_net *net, const uint16_t *inputs, const uint16_t *targets,
		     unsigned len, bool backprop);

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

/*
 * lstm_net: the LSTM expert's network, a one-layer LSTM over delta classes with a softmax
 * output, trained by truncated backpropagation through time with Adam (src/lstm_net.c has
 * the design).  The expert (model_lstm.c) drives it through the functions below; a test can
 * run it on its own, e.g. for a numerical gradient check.
 *
 * The struct is opaque.  A net is single-threaded and owned by its caller, like the models.
 * Classes are 0..vocab-1; hidden state and cell vectors are @hidden floats each.
 */
#ifndef AHEADFS_LSTM_NET_H
#define AHEADFS_LSTM_NET_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hidden units come in multiples of this (the kernels' vector width). */
#define LSTM_LANES 8

struct lstm_net;
struct model_reader;

/* A net of @hidden units (a multiple of LSTM_LANES) over @vocab classes, unrolled for at
 * most @steps steps, every class active, with its weights drawn from @seed.  The caller owns
 * it; free with lstm_net_free(). */
struct lstm_net *lstm_net_new(unsigned hidden, unsigned vocab, unsigned steps, uint64_t seed);
void lstm_net_free(struct lstm_net *net);
/* What lstm_net_new() allocates for that shape, in bytes (for a memory cap). */
size_t lstm_net_bytes(unsigned hidden, unsigned vocab, unsigned steps);

/* Every weight drawn afresh from @seed, the optimizer state zeroed; which classes are
 * active does not change. */
void lstm_net_reset(struct lstm_net *net, uint64_t seed);
/* Fresh input and output weights for class @k, drawn from @seed (advanced): what it meant
 * before is no guide to its new meaning. */
void lstm_net_init_class(struct lstm_net *net, unsigned k, uint64_t *seed);
/* Whether class @k takes part in the softmax (and so in training). */
void lstm_net_set_active(struct lstm_net *net, unsigned k, bool active);

/*
 * One step: class @x read in state (@h0, @c0) gives the state (@h, @c).  @scratch holds
 * 5 x hidden floats.  No output may alias an input.
 */
void lstm_net_step(const struct lstm_net *net, unsigned x, const float *h0, const float *c0,
		   float *h, float *c, float *scratch);
/* The softmax over the active classes in state @h, into @p[vocab] (0 for inactive ones). */
void lstm_net_output(const struct lstm_net *net, const float *h, float *p);
/*
 * One update: predicting @targets[t] after reading @inputs[0..t], t < @len (<= steps), from
 * the state (@h0, @c0) (zeros if NULL): mean cross-entropy, gradient clipped, one Adam step.
 */
void lstm_net_train(struct lstm_net *net, const uint16_t *inputs, const uint16_t *targets,
		    unsigned len, const float *h0, const float *c0);

/* Adam's step count, saved by the expert in its own place in the payload. */
uint64_t lstm_net_adam_steps(const struct lstm_net *net);
void lstm_net_set_adam_steps(struct lstm_net *net, uint64_t steps);
/* The weights and the optimizer state: 3 x nparams little-endian f32. */
void lstm_net_save(const struct lstm_net *net, GByteArray *out);
/* FALSE if short or a value is out of range (a damaged file); the net is then partly
 * overwritten and the caller must reset it. */
bool lstm_net_load(struct lstm_net *net, struct model_reader *r);

/* For tests: the parameter vector (read-write) and the gradient of the latest
 * lstm_net_loss(). */
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

#endif /* AHEADFS_LSTM_NET_H */

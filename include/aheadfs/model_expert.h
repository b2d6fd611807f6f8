/*
 * model_expert: what an expert implements, and the helpers they share.  Only model*.c
 * include this; everyone else uses model.h.
 *
 * An expert embeds struct model first and fills a struct model_ops; model.c dispatches,
 * validates events, wraps saved state in the versioned, checksummed envelope and keeps the
 * registry of experts by name.  To add one (as the LSTM was): write model_NAME.c with
 * `const struct model_ops model_NAME_ops`, declare it below, add it to the registry in
 * model.c, and add its bit to the hybrid's default expert set (model_params_resolve()).  The
 * hybrid then scores and weights it like the others with no other change.
 */
#ifndef AHEADFS_MODEL_EXPERT_H
#define AHEADFS_MODEL_EXPERT_H

#include <stdbool.h>

#include "aheadfs/model.h"

struct model_reader;

struct model_ops {
	const char *name;
	enum model_expert expert;
	uint32_t version;      /* of the payload save() writes; bump on any change */
	unsigned memory_share; /* relative share of the hybrid's memory cap */

	/* @params has its defaults filled in and was validated. */
	struct model *(*create)(const struct model_params *params, GError **error);
	void (*destroy)(struct model *model);
	/* Back to the state right after create(). */
	void (*reset)(struct model *model);
	/* @event is validated: block < image_blocks, 1 <= nblocks, within the image. */
	void (*observe)(struct model *model, const struct model_event *event);
	size_t (*predict)(struct model *model, uint64_t now_us, uint64_t horizon_us,
			  struct model_prediction *out, size_t max);
	double (*confidence)(const struct model *model);
	void (*session_start)(struct model *model, uint64_t now_us);
	/* Optional: model_set_cpu_scale(); NULL: the expert has no elastic work. */
	void (*set_cpu_scale)(struct model *model, double scale);
	/* Optional: model_learned_end_us(); NULL means 0. */
	uint64_t (*learned_end_us)(const struct model *model);
	/* The payload only; model.c writes the envelope. */
	void (*save)(const struct model *model, GByteArray *out);
	/* Reads what save() wrote; FALSE on anything inconsistent (the reader is marked bad). */
	bool (*load)(struct model *model, struct model_reader *reader);
	size_t (*memory_bytes)(const struct model *model);
	/* Optional: fill the hybrid-specific part of @stats. */
	void (*stats)(const struct model *model, struct model_stats *stats);
};

struct model {
	const struct model_ops *ops;
	struct model_params params;
	uint64_t events;
	double entropy;
};

extern const struct model_ops model_none_ops;
extern const struct model_ops model_seq_ops;
extern const struct model_ops model_markov_ops;
extern const struct model_ops model_profile_ops;
extern const struct model_ops model_lstm_ops;
extern const struct model_ops model_hybrid_ops;

/* The expert called @expert in this build, or NULL. */
const struct model_ops *model_ops_find(enum model_expert expert);
/* model_new() for an inner expert: @params already resolved, any memory cap. */
struct model *model_new_inner(const struct model_ops *ops, const struct model_params *params,
			      GError **error);

/* Fills zero fields of @params with defaults; FALSE with @error if unusable. */
bool model_params_resolve(struct model_params *params, GError **error);

/*
 * Pace: the recent mean time between accesses, to turn "k steps ahead" into an eta.  Gaps
 * are capped at MODEL_PACE_GAP_MAX_US so that an idle minute does not stretch the next
 * burst's etas.
 */
#define MODEL_PACE_GAP_MAX_US 200000
struct model_pace {
	uint64_t last_us;
	double gap_us;
	bool started;
	bool measured; /* gap_us holds a measurement, not the zero of a new model */
};
void model_pace_observe(struct model_pace *pace, uint64_t time_us);
uint64_t model_pace_gap_us(const struct model_pace *pace);
/* A session restarts the clock but keeps the learned gap. */
void model_pace_restart(struct model_pace *pace);

/*
 * Candidates: an expert adds every block it would predict, in its preferred order, then
 * emits them: duplicates merged (max probability or noisy-or, earliest eta), those past the
 * horizon dropped, sorted by eta, falling probability, then order added.  The buffer is
 * reused so that predicting allocates nothing once warm.
 */
#define MODEL_CANDIDATES_MAX 8192
struct model_candidate {
	struct model_prediction p;
	uint32_t seq;
	float tmp_max; /* emit's scratch */
};
struct model_candidates {
	struct model_candidate *v;
	struct model_candidate *tmp; /* merge sort scratch, cap entries */
	uint32_t *slots;	     /* dedup hash: index + 1; 0 free */
	size_t n, cap, nslots;
};
void model_candidates_init(struct model_candidates *c);
void model_candidates_fini(struct model_candidates *c);
void model_candidates_clear(struct model_candidates *c);
/* FALSE once MODEL_CANDIDATES_MAX are held: the caller can stop looking. */
bool model_candidates_add(struct model_candidates *c, uint64_t block, float probability,
			  uint64_t eta_us, enum model_expert expert);
size_t model_candidates_emit(struct model_candidates *c, uint64_t now_us, uint64_t horizon_us,
			     bool noisy_or, struct model_prediction *out, size_t max);
size_t model_candidates_memory_bytes(const struct model_candidates *c);

/* Mean binary entropy (bits) of @n predictions' probabilities; 1 when there are none. */
double model_predictions_entropy(const struct model_prediction *p, size_t n);

/*
 * Payload encoding: little-endian fixed-width fields appended to a GByteArray, read back
 * through a bounds-checked reader that turns "bad" on the first short or out-of-range read
 * and then returns zeros, so a loader can read everything and check once.
 */
void model_put_u8(GByteArray *out, uint8_t v);
void model_put_u16(GByteArray *out, uint16_t v);
void model_put_u32(GByteArray *out, uint32_t v);
void model_put_u64(GByteArray *out, uint64_t v);
void model_put_f64(GByteArray *out, double v);

struct model_reader {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};
uint8_t model_get_u8(struct model_reader *r);
uint16_t model_get_u16(struct model_reader *r);
uint32_t model_get_u32(struct model_reader *r);
uint64_t model_get_u64(struct model_reader *r);
double model_get_f64(struct model_reader *r);
/* A count of records of @record_bytes each: bad if over @max or the bytes left. */
uint32_t model_get_count(struct model_reader *r, uint32_t max, size_t record_bytes);
/* A finite double in [lo, hi]; bad otherwise. */
double model_get_f64_in(struct model_reader *r, double lo, double hi);
/* Points at the next @len bytes and skips them; NULL (and bad) if short. */
const uint8_t *model_get_bytes(struct model_reader *r, size_t len);

/* Decayed hit rate: a cheap, persisted estimate of a precision. */
struct model_rate {
	double hits, total;
};
void model_rate_init(struct model_rate *rate, double prior_rate, double prior_weight);
void model_rate_add(struct model_rate *rate, bool hit, double decay);
double model_rate_get(const struct model_rate *rate);
void model_put_rate(GByteArray *out, const struct model_rate *rate);
void model_get_rate(struct model_reader *r, struct model_rate *rate);
/* The learned gap of a pace (9 bytes); the clock is not kept. */
void model_put_pace(GByteArray *out, const struct model_pace *pace);
void model_get_pace(struct model_reader *r, struct model_pace *pace);

/* 64-bit mix for hashing block numbers and contexts. */
static inline uint64_t model_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif /* AHEADFS_MODEL_EXPERT_H */

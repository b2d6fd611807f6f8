/*
 * model: predictors of one image's block accesses.
 *
 * A model learns from the stream of demand accesses to one image and says which blocks will
 * be read next, how likely, and when.  The model thread owns each model (nothing here locks,
 * allocates globals or does I/O): it feeds every demand access to model_observe(), asks
 * model_predict() for the blocks expected within a horizon and hands them to the prefetcher.
 * Learned state goes out with model_save() and comes back at the next mount with
 * model_load(), followed by model_session_start().
 *
 *   name         what it knows                                          file
 *   none         nothing; the ablation baseline                        model.c
 *   sequential   forward runs and constant strides, readahead window   model_seq.c
 *   markov       successors per block, next delta given recent deltas  model_markov.c
 *   profile      the first-access order of earlier sessions            model_profile.c
 *   lstm         next delta given a long context, a small online LSTM  model_lstm.c
 *   hybrid       all of the above, weighted by measured precision      model_hybrid.c
 *
 * The hybrid needs no feedback about which prefetched blocks were used: it scores each
 * expert's earlier predictions against the accesses it then observes.
 *
 * Limits: image_blocks <= MODEL_IMAGE_BLOCKS_MAX (2^32 - 1 blocks, 256 TiB at 64 KiB);
 * events past the end of the image are ignored.
 */
#ifndef AHEADFS_MODEL_H
#define AHEADFS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define MODEL_ERROR (model_error_quark())
GQuark model_error_quark(void);

enum model_error_code {
	MODEL_ERROR_INVALID,  /* bad name or parameters */
	MODEL_ERROR_CORRUPT,  /* truncated, checksum or structure wrong */
	MODEL_ERROR_VERSION,  /* a format this build does not know */
	MODEL_ERROR_MISMATCH, /* another expert's or another image size's state */
};

#define MODEL_IMAGE_BLOCKS_MAX ((uint64_t)UINT32_MAX - 1)

enum model_access_kind {
	MODEL_ACCESS_HIT,
	MODEL_ACCESS_MISS,
	MODEL_ACCESS_LATE, /* a prefetch was in flight when the block was demanded */
};
const char *model_access_kind_to_string(enum model_access_kind kind);

/* Values are stored in saved state and in predictions: append only. */
enum model_expert {
	MODEL_EXPERT_NONE,
	MODEL_EXPERT_SEQUENTIAL,
	MODEL_EXPERT_MARKOV,
	MODEL_EXPERT_PROFILE,
	MODEL_EXPERT_HYBRID,
	MODEL_EXPERT_LSTM,
	MODEL_EXPERT_COUNT,
};
const char *model_expert_to_string(enum model_expert expert);
/* FALSE if @name is not a model this build has. */
gboolean model_expert_from_string(const char *name, enum model_expert *expert);

/* How the hybrid turns the experts' probabilities into one per block (model_hybrid.c). */
enum model_combine {
	MODEL_COMBINE_DEFAULT,		   /* MODEL_COMBINE_RELATIVE */
	MODEL_COMBINE_CALIBRATED_NOISY_OR, /* per-expert measured precision, noisy-or */
	MODEL_COMBINE_CALIBRATED_MAX,	   /* same, the strongest expert wins */
	MODEL_COMBINE_HEDGE,		   /* multiplicative weights, the strongest wins */
	MODEL_COMBINE_RELATIVE,		   /* calibrated, scaled down by distance to the best */
};
const char *model_combine_to_string(enum model_combine combine);

/* One demand access: blocks [block, block + nblocks). */
struct model_event {
	uint64_t time_us; /* monotonic */
	uint64_t block;
	uint32_t nblocks; /* 0 counts as 1 */
	enum model_access_kind kind;
};

struct model_prediction {
	uint64_t block;
	float probability; /* of an access within the horizon asked for */
	uint64_t eta_us;   /* expected access time, absolute, >= the now asked for */
	uint8_t expert;	   /* enum model_expert that contributed most */
};

/* Zero means "the default" for every field but image_blocks. */
struct model_params {
	uint64_t image_blocks;	 /* required, 1..MODEL_IMAGE_BLOCKS_MAX */
	size_t memory_cap_bytes; /* whole model, hybrid included; default 16 MiB */
	uint32_t seq_streams;	 /* concurrent streams tracked; default 8 */
	uint32_t seq_window_max; /* readahead window cap, blocks; default 32 */
	uint32_t markov_steps;	 /* successor path length walked; default 8 */
	uint32_t hybrid_experts; /* bit (1 << enum model_expert); default all four experts */
	uint32_t hybrid_window;	 /* events a prediction has to come true; default 64 */
	enum model_combine hybrid_combine;
	uint32_t lstm_hidden;	    /* LSTM hidden units, 8..256 by 8; default 32 */
	uint32_t lstm_vocab;	    /* LSTM delta classes, 8..1024, 3 reserved; default 64 */
	uint32_t lstm_train_every;  /* LSTM: at most one update per N accesses; default 1 */
	uint32_t lstm_cpu_permille; /* LSTM: CPU budget, 1/1000 of one core; default 80 */
};

#define MODEL_STATS_EXPERTS_MAX 6

struct model_stats {
	enum model_expert expert;
	uint64_t events;
	double confidence; /* model_confidence() */
	double entropy;	   /* mean binary entropy of the last predictions, bits, 0..1 */
	size_t memory_bytes;
	/* Hybrid only: of the blocks it predicted, the share then read (precision); of the
	 * blocks read, the share it had predicted (coverage).  Recent, decayed. */
	double precision;
	double coverage;
	/* The hybrid's view of its experts; nexperts is 0 for the others.  leader: the
	 * expert whose predictions stand as they are (MODEL_EXPERT_NONE: none leads). */
	unsigned nexperts;
	enum model_expert leader;
	struct {
		enum model_expert expert;
		double precision; /* recent, of the predictions it issued */
		double coverage;  /* of this session's first reads, the share it predicted */
		double weight;	  /* its say in the mix, 0..1 */
		uint64_t issued;  /* distinct predictions scored so far */
		uint64_t hits;
	} experts[MODEL_STATS_EXPERTS_MAX];
};

struct model;

/*
 * A new, empty model.  @name is one of the names above.  NULL with @error set for an
 * unknown name or bad parameters.  The caller owns the result; free it with model_free().
 */
struct model *model_new(const char *name, const struct model_params *params, GError **error);
void model_free(struct model *model);

enum model_expert model_get_expert(const struct model *model);

/* Learns from one demand access.  O(1) amortised. */
void model_observe(struct model *model, const struct model_event *event);

/*
 * Fills @out with at most @max distinct blocks expected in [now_us, now_us + horizon_us],
 * ordered by eta, then by falling probability; returns how many.  Not const: the hybrid
 * remembers what it predicted to score it later.
 */
size_t model_predict(struct model *model, uint64_t now_us, uint64_t horizon_us,
		     struct model_prediction *out, size_t max);

/* 0..1: how far the model's recent predictions have come true. */
double model_confidence(const struct model *model);

/*
 * A new mount or open of the image starts at @now_us.  The profile expert closes the
 * session before and replays its learned first-access order from here; the others forget
 * their short-term context.
 */
void model_session_start(struct model *model, uint64_t now_us);

/*
 * When this session is expected to have made its last learned first read: the learned
 * first-access profile's end, stretched by this session's measured speed.  0 when nothing
 * is learned (a first mount) or the model has no profile.  Background fill waits for it, so
 * that migrating the rest of the image does not compete with a boot the model knows.
 */
uint64_t model_learned_end_us(const struct model *model);

/*
 * Scales the CPU the model may spend on its elastic work (the LSTM's training and
 * rollouts) by @scale, 0 < scale <= 1 (default 1). The learner sets it from the thread's
 * measured CPU share (cpu_budget.h); replay never does, so a replay stays deterministic.
 */
void model_set_cpu_scale(struct model *model, double scale);

/* The learned state, versioned and checksummed.  The caller owns the result. */
GBytes *model_save(const struct model *model);

/*
 * Replaces the learned state with @bytes from model_save() of the same expert and image
 * size.  On FALSE (@error set) the model is left empty: a bad file is never trusted.
 * A profile session open in @bytes counts as finished.
 */
gboolean model_load(struct model *model, GBytes *bytes, GError **error);

/* Heap bytes the model holds now; stays under memory_cap_bytes. */
size_t model_memory_bytes(const struct model *model);

void model_get_stats(const struct model *model, struct model_stats *stats);

/* Only for g_autoptr(Model); the code spells struct model. */
typedef struct model Model;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Model, model_free)

#endif /* AHEADFS_MODEL_H */

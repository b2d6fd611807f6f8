/*
 * model: the experts' common frame.  Dispatches the public calls to an expert's ops,
 * validates events once for all experts, wraps saved state in a versioned, checksummed
 * envelope, and holds the helpers every expert uses (pace, candidate lists, payload
 * encoding, decayed rates).  The experts themselves live in model_*.c.
 */
#include <math.h>
#include <string.h>

#include "aheadfs/model.h"
#include "aheadfs/model_expert.h"

#define MODEL_DEFAULT_MEMORY_CAP (16u << 20)
#define MODEL_MEMORY_CAP_MIN (64u << 10)

G_DEFINE_QUARK(aheadfs_model_error, model_error)

static const struct model_ops *const model_registry[] = {
    &model_none_ops,	&model_seq_ops,	 &model_markov_ops,
    &model_profile_ops, &model_lstm_ops, &model_hybrid_ops,
};

static const struct model_ops *model_find_ops(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(model_registry); i++)
		if (name && strcmp(model_registry[i]->name, name) == 0)
			return model_registry[i];
	return NULL;
}

const char *model_access_kind_to_string(enum model_access_kind kind)
{
	switch (kind) {
	case MODEL_ACCESS_HIT:
		return "hit";
	case MODEL_ACCESS_MISS:
		return "miss";
	case MODEL_ACCESS_LATE:
		return "late";
	}
	return "unknown";
}

const char *model_expert_to_string(enum model_expert expert)
{
	switch (expert) {
	case MODEL_EXPERT_NONE:
		return "none";
	case MODEL_EXPERT_SEQUENTIAL:
		return "sequential";
	case MODEL_EXPERT_MARKOV:
		return "markov";
	case MODEL_EXPERT_PROFILE:
		return "profile";
	case MODEL_EXPERT_HYBRID:
		return "hybrid";
	case MODEL_EXPERT_LSTM:
		return "lstm";
	case MODEL_EXPERT_COUNT:
		break;
	}
	return "unknown";
}

gboolean model_expert_from_string(const char *name, enum model_expert *expert)
{
	const struct model_ops *ops = model_find_ops(name);

	if (!ops)
		return FALSE;
	*expert = ops->expert;
	return TRUE;
}

const char *model_combine_to_string(enum model_combine combine)
{
	switch (combine) {
	case MODEL_COMBINE_DEFAULT:
		return "default";
	case MODEL_COMBINE_CALIBRATED_NOISY_OR:
		return "calibrated-noisy-or";
	case MODEL_COMBINE_CALIBRATED_MAX:
		return "calibrated-max";
	case MODEL_COMBINE_HEDGE:
		return "hedge";
	case MODEL_COMBINE_RELATIVE:
		return "relative";
	}
	return "unknown";
}

bool model_params_resolve(struct model_params *p, GError **error)
{
	if (p->image_blocks == 0 || p->image_blocks > MODEL_IMAGE_BLOCKS_MAX) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
			    "image of %" G_GUINT64_FORMAT
			    " blocks: the model needs 1 to %" G_GUINT64_FORMAT,
			    p->image_blocks, MODEL_IMAGE_BLOCKS_MAX);
		return false;
	}
	if (p->memory_cap_bytes == 0)
		p->memory_cap_bytes = MODEL_DEFAULT_MEMORY_CAP;
	if (p->memory_cap_bytes < MODEL_MEMORY_CAP_MIN) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
			    "model memory cap of %zu bytes: at least %u needed",
			    p->memory_cap_bytes, MODEL_MEMORY_CAP_MIN);
		return false;
	}
	if (p->seq_streams == 0)
		p->seq_streams = 8;
	if (p->seq_window_max == 0)
		p->seq_window_max = 32;
	if (p->markov_steps == 0)
		p->markov_steps = 8;
	if (p->hybrid_experts == 0)
		p->hybrid_experts = 1u << MODEL_EXPERT_SEQUENTIAL | 1u << MODEL_EXPERT_MARKOV |
				    1u << MODEL_EXPERT_PROFILE | 1u << MODEL_EXPERT_LSTM;
	if (p->hybrid_window == 0)
		p->hybrid_window = 64;
	if (p->hybrid_combine == MODEL_COMBINE_DEFAULT)
		p->hybrid_combine = MODEL_COMBINE_RELATIVE;
	if (p->lstm_hidden == 0)
		p->lstm_hidden = 32;
	if (p->lstm_vocab == 0)
		p->lstm_vocab = 64;
	if (p->lstm_train_every == 0)
		p->lstm_train_every = 1;
	if (p->lstm_cpu_permille == 0)
		p->lstm_cpu_permille = 80;
	if (p->lstm_hidden < 8 || p->lstm_hidden > 256 || p->lstm_hidden % 8 || p->lstm_vocab < 8 ||
	    p->lstm_vocab > 1024 || p->lstm_train_every > 1u << 20 || p->lstm_cpu_permille > 1000) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
			    "LSTM parameters out of range (hidden %u, vocabulary %u, train every "
			    "%u, CPU %u per mille)",
			    p->lstm_hidden, p->lstm_vocab, p->lstm_train_every,
			    p->lstm_cpu_permille);
		return false;
	}
	if (p->seq_streams > 64 || p->seq_window_max > 1024 || p->markov_steps > 64 ||
	    p->hybrid_window > 1u << 20 || p->hybrid_combine > MODEL_COMBINE_RELATIVE) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
			    "model parameters out of range (streams %u, window %u, steps %u, "
			    "hybrid window %u, combine %d)",
			    p->seq_streams, p->seq_window_max, p->markov_steps, p->hybrid_window,
			    (int)p->hybrid_combine);
		return false;
	}
	if (p->hybrid_experts & (1u << MODEL_EXPERT_HYBRID | 1u << MODEL_EXPERT_NONE) ||
	    p->hybrid_experts >> MODEL_EXPERT_COUNT) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_INVALID,
			    "hybrid expert set %#x: only sequential, markov, profile, lstm",
			    p->hybrid_experts);
		return false;
	}
	return true;
}

const struct model_ops *model_ops_find(enum model_expert expert)
{
	for (size_t i = 0; i < G_N_ELEMENTS(model_registry); i++)
		if (model_registry[i]->expert == expert)
			return model_registry[i];
	return NULL;
}

struct model *model_new_inner(const struct model_ops *ops, const struct model_params *params,
			      GError **error)
{
	struct model *m = ops->create(params, error);

	if (!m)
		return NULL;
	m->ops = ops;
	m->params = *params;
	m->events = 0;
	m->entropy = 1.0;
	return m;
}

struct model *model_new(const char *name, const struct model_params *params, GError **error)
{
	const struct model_ops *ops = model_find_ops(name);
	struct model_params p = *params;

	if (!ops) {
		g_set_error(
		    error, MODEL_ERROR, MODEL_ERROR_INVALID,
		    "unknown model \"%s\" (none, sequential, markov, profile, lstm, hybrid)",
		    name ? name : "(null)");
		return NULL;
	}
	if (!model_params_resolve(&p, error))
		return NULL;
	return model_new_inner(ops, &p, error);
}

void model_free(struct model *m)
{
	if (m)
		m->ops->destroy(m);
}

enum model_expert model_get_expert(const struct model *m)
{
	return m->ops->expert;
}

void model_observe(struct model *m, const struct model_event *event)
{
	struct model_event ev = *event;

	/* One check here so that no expert has to trust the caller's block numbers. */
	if (ev.block >= m->params.image_blocks)
		return;
	if (ev.nblocks == 0)
		ev.nblocks = 1;
	if (ev.nblocks > m->params.image_blocks - ev.block)
		ev.nblocks = (uint32_t)(m->params.image_blocks - ev.block);
	m->events++;
	m->ops->observe(m, &ev);
}

size_t model_predict(struct model *m, uint64_t now_us, uint64_t horizon_us,
		     struct model_prediction *out, size_t max)
{
	size_t n;

	if (max == 0)
		return 0;
	if (horizon_us > UINT64_MAX - now_us)
		horizon_us = UINT64_MAX - now_us;
	n = m->ops->predict(m, now_us, horizon_us, out, max);
	m->entropy = model_predictions_entropy(out, n);
	return n;
}

double model_confidence(const struct model *m)
{
	double c = m->ops->confidence(m);

	return CLAMP(c, 0.0, 1.0);
}

void model_session_start(struct model *m, uint64_t now_us)
{
	m->ops->session_start(m, now_us);
}

void model_set_cpu_scale(struct model *m, double scale)
{
	if (m->ops->set_cpu_scale)
		m->ops->set_cpu_scale(m, CLAMP(scale, 1e-3, 1.0));
}

uint64_t model_learned_end_us(const struct model *m)
{
	return m->ops->learned_end_us ? m->ops->learned_end_us(m) : 0;
}

size_t model_memory_bytes(const struct model *m)
{
	return m->ops->memory_bytes(m);
}

void model_get_stats(const struct model *m, struct model_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->expert = m->ops->expert;
	st->events = m->events;
	st->confidence = model_confidence(m);
	st->entropy = m->entropy;
	st->memory_bytes = model_memory_bytes(m);
	if (m->ops->stats)
		m->ops->stats(m, st);
}

/*
 * The saved envelope (little-endian):
 *
 *   offset  size  field
 *   0       8     magic "AHDMODEL"
 *   8       4     envelope version (MODEL_SAVE_VERSION)
 *   12      4     expert (enum model_expert)
 *   16      4     expert payload version (ops->version)
 *   20      4     zero
 *   24      8     image_blocks
 *   32      8     payload length L
 *   40      L     payload (the expert's save())
 *   40+L    32    SHA-256 of bytes 0 .. 40+L
 *
 * The checksum is checked before any other field is believed, so a flipped bit anywhere
 * reads as corruption, not as some other version or size.
 */
#define MODEL_SAVE_MAGIC "AHDMODEL"
#define MODEL_SAVE_VERSION 1
#define MODEL_SAVE_HEADER 40
#define MODEL_SAVE_DIGEST 32

static void model_digest(const uint8_t *p, size_t len, uint8_t digest[MODEL_SAVE_DIGEST])
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	gsize dlen = MODEL_SAVE_DIGEST;

	g_checksum_update(sum, p, len);
	g_checksum_get_digest(sum, digest, &dlen);
}

GBytes *model_save(const struct model *m)
{
	GByteArray *out = g_byte_array_new();
	uint8_t digest[MODEL_SAVE_DIGEST];
	uint64_t payload;

	g_byte_array_append(out, (const guint8 *)MODEL_SAVE_MAGIC, 8);
	model_put_u32(out, MODEL_SAVE_VERSION);
	model_put_u32(out, m->ops->expert);
	model_put_u32(out, m->ops->version);
	model_put_u32(out, 0);
	model_put_u64(out, m->params.image_blocks);
	model_put_u64(out, 0); /* patched below */
	m->ops->save(m, out);
	payload = out->len - MODEL_SAVE_HEADER;
	for (int i = 0; i < 8; i++)
		out->data[32 + i] = (uint8_t)(payload >> (8 * i));
	model_digest(out->data, out->len, digest);
	g_byte_array_append(out, digest, sizeof(digest));
	return g_byte_array_free_to_bytes(out);
}

static bool model_load_payload(struct model *m, const uint8_t *p, size_t len, GError **error)
{
	struct model_reader r = {.p = p, .len = len};
	uint8_t digest[MODEL_SAVE_DIGEST];
	uint32_t version, expert, payload_version;
	uint64_t image_blocks, payload;

	if (len < MODEL_SAVE_HEADER + MODEL_SAVE_DIGEST || memcmp(p, MODEL_SAVE_MAGIC, 8) != 0) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_CORRUPT,
			    "model state of %zu bytes: not a model file or truncated", len);
		return false;
	}
	model_digest(p, len - MODEL_SAVE_DIGEST, digest);
	if (memcmp(digest, p + len - MODEL_SAVE_DIGEST, MODEL_SAVE_DIGEST) != 0) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_CORRUPT,
			    "model state of %zu bytes: checksum mismatch (truncated or damaged)",
			    len);
		return false;
	}
	r.len = len - MODEL_SAVE_DIGEST;
	model_get_bytes(&r, 8);
	version = model_get_u32(&r);
	expert = model_get_u32(&r);
	payload_version = model_get_u32(&r);
	model_get_u32(&r);
	image_blocks = model_get_u64(&r);
	payload = model_get_u64(&r);
	if (version != MODEL_SAVE_VERSION) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_VERSION,
			    "model state version %u: this build reads version %u", version,
			    MODEL_SAVE_VERSION);
		return false;
	}
	if (expert != m->ops->expert) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_MISMATCH,
			    "model state is for expert %s, not %s",
			    model_expert_to_string(
				expert < MODEL_EXPERT_COUNT ? expert : MODEL_EXPERT_COUNT),
			    m->ops->name);
		return false;
	}
	if (payload_version != m->ops->version) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_VERSION,
			    "%s model state version %u: this build reads version %u", m->ops->name,
			    payload_version, m->ops->version);
		return false;
	}
	if (image_blocks != m->params.image_blocks) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_MISMATCH,
			    "model state is for an image of %" G_GUINT64_FORMAT
			    " blocks, this one has %" G_GUINT64_FORMAT,
			    image_blocks, m->params.image_blocks);
		return false;
	}
	if (payload != r.len - r.off) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_CORRUPT,
			    "model state payload of %" G_GUINT64_FORMAT " bytes, %zu present",
			    payload, r.len - r.off);
		return false;
	}
	if (!m->ops->load(m, &r) || r.bad || r.off != r.len) {
		g_set_error(error, MODEL_ERROR, MODEL_ERROR_CORRUPT,
			    "%s model state inconsistent at byte %zu of %zu", m->ops->name, r.off,
			    r.len);
		return false;
	}
	return true;
}

gboolean model_load(struct model *m, GBytes *bytes, GError **error)
{
	gsize len;
	const uint8_t *p = g_bytes_get_data(bytes, &len);

	m->ops->reset(m);
	m->events = 0;
	m->entropy = 1.0;
	if (!model_load_payload(m, p, len, error)) {
		m->ops->reset(m);
		return FALSE;
	}
	return TRUE;
}

/* none: the ablation baseline. */

static struct model *model_none_create(const struct model_params *params G_GNUC_UNUSED,
				       GError **error G_GNUC_UNUSED)
{
	return g_new0(struct model, 1);
}

static void model_none_destroy(struct model *m)
{
	g_free(m);
}

static void model_none_reset(struct model *m G_GNUC_UNUSED)
{
}

static void model_none_observe(struct model *m G_GNUC_UNUSED,
			       const struct model_event *ev G_GNUC_UNUSED)
{
}

static size_t model_none_predict(struct model *m G_GNUC_UNUSED, uint64_t now_us G_GNUC_UNUSED,
				 uint64_t horizon_us G_GNUC_UNUSED,
				 struct model_prediction *out G_GNUC_UNUSED,
				 size_t max G_GNUC_UNUSED)
{
	return 0;
}

static double model_none_confidence(const struct model *m G_GNUC_UNUSED)
{
	return 0.0;
}

static void model_none_session_start(struct model *m G_GNUC_UNUSED, uint64_t now_us G_GNUC_UNUSED)
{
}

static void model_none_save(const struct model *m G_GNUC_UNUSED, GByteArray *out G_GNUC_UNUSED)
{
}

static bool model_none_load(struct model *m G_GNUC_UNUSED, struct model_reader *r G_GNUC_UNUSED)
{
	return true;
}

static size_t model_none_memory_bytes(const struct model *m)
{
	return sizeof(*m);
}

const struct model_ops model_none_ops = {
    .name = "none",
    .expert = MODEL_EXPERT_NONE,
    .version = 1,
    .memory_share = 0,
    .create = model_none_create,
    .destroy = model_none_destroy,
    .reset = model_none_reset,
    .observe = model_none_observe,
    .predict = model_none_predict,
    .confidence = model_none_confidence,
    .session_start = model_none_session_start,
    .save = model_none_save,
    .load = model_none_load,
    .memory_bytes = model_none_memory_bytes,
};

/* Pace. */

void model_pace_observe(struct model_pace *pace, uint64_t time_us)
{
	if (pace->started) {
		double gap = time_us > pace->last_us ? (double)(time_us - pace->last_us) : 0.0;

		gap = MIN(gap, (double)MODEL_PACE_GAP_MAX_US);
		pace->gap_us = pace->measured ? pace->gap_us + (gap - pace->gap_us) / 16.0 : gap;
		pace->measured = true;
	}
	pace->started = true;
	pace->last_us = time_us;
}

uint64_t model_pace_gap_us(const struct model_pace *pace)
{
	return (uint64_t)(pace->gap_us + 0.5);
}

void model_pace_restart(struct model_pace *pace)
{
	pace->started = false;
}

/* Candidates. */

void model_candidates_init(struct model_candidates *c)
{
	memset(c, 0, sizeof(*c));
}

void model_candidates_fini(struct model_candidates *c)
{
	g_free(c->v);
	g_free(c->tmp);
	g_free(c->slots);
	memset(c, 0, sizeof(*c));
}

void model_candidates_clear(struct model_candidates *c)
{
	c->n = 0;
}

bool model_candidates_add(struct model_candidates *c, uint64_t block, float probability,
			  uint64_t eta_us, enum model_expert expert)
{
	struct model_candidate *cand;

	if (c->n >= MODEL_CANDIDATES_MAX)
		return false;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = g_renew(struct model_candidate, c->v, c->cap);
		c->tmp = g_renew(struct model_candidate, c->tmp, c->cap);
		c->nslots = 2 * c->cap;
		c->slots = g_renew(uint32_t, c->slots, c->nslots);
	}
	cand = &c->v[c->n];
	cand->p.block = block;
	cand->p.probability = probability;
	cand->p.eta_us = eta_us;
	cand->p.expert = (uint8_t)expert;
	cand->seq = (uint32_t)c->n++;
	return c->n < MODEL_CANDIDATES_MAX;
}

static inline bool model_candidate_before(const struct model_candidate *x,
					  const struct model_candidate *y)
{
	if (x->p.eta_us != y->p.eta_us)
		return x->p.eta_us < y->p.eta_us;
	if (x->p.probability != y->p.probability)
		return x->p.probability > y->p.probability;
	return x->seq < y->seq;
}

/*
 * Stable bottom-up merge sort of @v by eta, probability, order added.  Experts add their
 * blocks mostly in eta order, so most merges find their runs already in order and are
 * skipped; and the comparison inlines, which qsort's cannot.
 */
static void model_candidates_sort(struct model_candidate *v, struct model_candidate *tmp, size_t n)
{
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo + width < n; lo += 2 * width) {
			size_t mid = lo + width, hi = MIN(lo + 2 * width, n);
			size_t i = lo, j = mid, k = lo;

			if (!model_candidate_before(&v[mid], &v[mid - 1]))
				continue;
			while (i < mid && j < hi)
				tmp[k++] = model_candidate_before(&v[j], &v[i]) ? v[j++] : v[i++];
			while (i < mid)
				tmp[k++] = v[i++];
			while (j < hi)
				tmp[k++] = v[j++];
			memcpy(&v[lo], &tmp[lo], (hi - lo) * sizeof(*v));
		}
	}
}

size_t model_candidates_emit(struct model_candidates *c, uint64_t now_us, uint64_t horizon_us,
			     bool noisy_or, struct model_prediction *out, size_t max)
{
	uint64_t end = horizon_us > UINT64_MAX - now_us ? UINT64_MAX : now_us + horizon_us;
	size_t mask = c->nslots - 1, n = 0;

	if (c->n == 0)
		return 0;
	/* Merge duplicates into the first occurrence: max probability (or noisy-or, kept as
	 * the probability of a miss until the end), earliest eta, expert of the strongest. */
	memset(c->slots, 0, c->nslots * sizeof(*c->slots));
	for (size_t i = 0; i < c->n; i++) {
		struct model_candidate *x = &c->v[i];
		size_t h = (size_t)model_hash64(x->p.block) & mask;
		float p = x->p.probability;

		for (; c->slots[h]; h = (h + 1) & mask) {
			struct model_candidate *first = &c->v[c->slots[h] - 1];

			if (first->p.block != x->p.block)
				continue;
			if (noisy_or)
				first->p.probability *= 1.0f - p;
			if (p > first->tmp_max) {
				first->tmp_max = p;
				first->p.expert = x->p.expert;
			}
			first->p.eta_us = MIN(first->p.eta_us, x->p.eta_us);
			x->p.probability = -1.0f; /* merged */
			break;
		}
		if (!c->slots[h]) {
			c->slots[h] = (uint32_t)i + 1;
			x->tmp_max = p;
			if (noisy_or)
				x->p.probability = 1.0f - p;
		}
	}
	for (size_t i = 0; i < c->n; i++) {
		struct model_candidate x = c->v[i];

		if (x.p.probability < 0.0f)
			continue;
		x.p.probability = noisy_or ? 1.0f - x.p.probability : x.tmp_max;
		x.p.eta_us = MAX(x.p.eta_us, now_us);
		if (x.p.eta_us <= end && x.p.probability > 0.0f)
			c->v[n++] = x;
	}
	model_candidates_sort(c->v, c->tmp, n);
	n = MIN(n, max);
	for (size_t i = 0; i < n; i++)
		out[i] = c->v[i].p;
	c->n = 0;
	return n;
}

size_t model_candidates_memory_bytes(const struct model_candidates *c)
{
	return c->cap * 2 * sizeof(*c->v) + c->nslots * sizeof(*c->slots);
}

double model_predictions_entropy(const struct model_prediction *p, size_t n)
{
	double sum = 0.0;

	if (n == 0)
		return 1.0;
	for (size_t i = 0; i < n; i++) {
		double q = CLAMP((double)p[i].probability, 1e-9, 1.0 - 1e-9);

		sum += -(q * log2(q) + (1.0 - q) * log2(1.0 - q));
	}
	return sum / (double)n;
}

/* Payload encoding. */

void model_put_u8(GByteArray *out, uint8_t v)
{
	g_byte_array_append(out, &v, 1);
}

void model_put_u16(GByteArray *out, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	g_byte_array_append(out, b, sizeof(b));
}

void model_put_u32(GByteArray *out, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	g_byte_array_append(out, b, sizeof(b));
}

void model_put_u64(GByteArray *out, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	g_byte_array_append(out, b, sizeof(b));
}

void model_put_f64(GByteArray *out, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	model_put_u64(out, bits);
}

const uint8_t *model_get_bytes(struct model_reader *r, size_t len)
{
	const uint8_t *p;

	if (r->bad || len > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += len;
	return p;
}

static uint64_t model_get_le(struct model_reader *r, size_t len)
{
	const uint8_t *p = model_get_bytes(r, len);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (size_t i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t model_get_u8(struct model_reader *r)
{
	return (uint8_t)model_get_le(r, 1);
}

uint16_t model_get_u16(struct model_reader *r)
{
	return (uint16_t)model_get_le(r, 2);
}

uint32_t model_get_u32(struct model_reader *r)
{
	return (uint32_t)model_get_le(r, 4);
}

uint64_t model_get_u64(struct model_reader *r)
{
	return model_get_le(r, 8);
}

double model_get_f64(struct model_reader *r)
{
	uint64_t bits = model_get_u64(r);
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

double model_get_f64_in(struct model_reader *r, double lo, double hi)
{
	double v = model_get_f64(r);

	if (!(v >= lo && v <= hi)) {
		r->bad = true;
		return lo;
	}
	return v;
}

uint32_t model_get_count(struct model_reader *r, uint32_t max, size_t record_bytes)
{
	uint32_t n = model_get_u32(r);

	if (r->bad || n > max || (record_bytes && n > (r->len - r->off) / record_bytes)) {
		r->bad = true;
		return 0;
	}
	return n;
}

/* Decayed rates. */

void model_rate_init(struct model_rate *rate, double prior_rate, double prior_weight)
{
	rate->hits = prior_rate * prior_weight;
	rate->total = prior_weight;
}

void model_rate_add(struct model_rate *rate, bool hit, double decay)
{
	rate->hits = rate->hits * decay + (hit ? 1.0 : 0.0);
	rate->total = rate->total * decay + 1.0;
}

double model_rate_get(const struct model_rate *rate)
{
	return rate->total > 0.0 ? rate->hits / rate->total : 0.0;
}

void model_put_rate(GByteArray *out, const struct model_rate *rate)
{
	model_put_f64(out, rate->hits);
	model_put_f64(out, rate->total);
}

void model_get_rate(struct model_reader *r, struct model_rate *rate)
{
	rate->hits = model_get_f64_in(r, 0.0, 1e12);
	rate->total = model_get_f64_in(r, 0.0, 1e12);
	/* Decayed sums of equal additions drift by rounding: hits may pass total by an ulp. */
	if (rate->hits > rate->total * (1.0 + 1e-9) + 1e-12)
		r->bad = true;
	else if (rate->hits > rate->total)
		rate->hits = rate->total;
}

void model_put_pace(GByteArray *out, const struct model_pace *pace)
{
	model_put_f64(out, pace->gap_us);
	model_put_u8(out, pace->measured);
}

void model_get_pace(struct model_reader *r, struct model_pace *pace)
{
	uint8_t measured;

	pace->gap_us = model_get_f64_in(r, 0.0, MODEL_PACE_GAP_MAX_US);
	measured = model_get_u8(r);
	if (measured > 1)
		r->bad = true;
	pace->measured = measured;
	pace->started = false;
}

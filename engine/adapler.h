/* adapler.h: AdapLeR's Contribution Predictors and learned thresholds (Modarressi et al.,
 * ACL 2022), and the pruning strategy that applies them at inference.
 *
 * Before every layer l = 0..L-1 a Contribution Predictor (CP) scores the layer's input
 * rows:  z_j = w2 . GELU(W1 h_j + b1) + b2   (W1: 32 x H, w2: 32), then
 *        c_j = softmax over the sequence's live rows ([CLS] included) of z.
 * Token j is dropped before layer l when c_j < delta_l = eta_l / n_l, n_l the live rows
 * including [CLS]; [CLS] is never dropped and dropped tokens never return.  The etas are
 * learned (one per layer, initialised at 0.25, kept in [0.01, 1]); eta_scale multiplies
 * them all at inference to trace a speed/accuracy curve without retraining.
 *
 * Checkpoint layout: extra F32 tensors in the model's model.safetensors, beside the BERT
 * weights (a model without them still loads as a plain BERT; loaders ignore them):
 *   adapler.predictor.<l>.dense1.weight  (32, H)
 *   adapler.predictor.<l>.dense1.bias    (32)
 *   adapler.predictor.<l>.dense2.weight  (1, 32)
 *   adapler.predictor.<l>.dense2.bias    (1)
 *   adapler.eta                          (L)
 * Linear layers use Hugging Face's (out, in) convention, so PyTorch loads them by name into
 * nn.Linear modules. */
#ifndef ADP_ADAPLER_H
#define ADP_ADAPLER_H

#include <stddef.h>
#include <stdint.h>

#include "gemm.h"
#include "model.h"
#include "prune.h"
#include "safetensors.h"

#define ADAPLER_CP_DIM 32
#define ADAPLER_ETA_INIT 0.25f
#define ADAPLER_ETA_MIN 0.01f
#define ADAPLER_ETA_MAX 1.0f

typedef struct {
    float *w1, *b1, *w2, *b2; /* (32, H), (32), (1, 32), (1) */
} adapler_cp;

typedef struct {
    int n_layers, hidden;
    float *arena; /* every CP's weights, then eta */
    size_t n_params;
    adapler_cp *cp; /* (L) */
    float *eta;     /* (L) */
    linear_w *dense1; /* (L) the CPs' first layers as linear layers (packed) */
    float *packed;
} adapler_weights;

/* Allocate for L layers of width H (zeros). */
void adapler_weights_alloc(adapler_weights *a, int n_layers, int hidden);
/* The reference code's initialisation: weights N(0, 0.02) truncated at 2 sigma, biases 0,
 * eta 0.25. */
void adapler_weights_init_random(adapler_weights *a, uint64_t seed);
/* Read the tensors above from an open checkpoint.  ADP_ERR naming the first missing or
 * misshapen tensor ("... has no AdapLeR predictors" when there are none at all). */
int adapler_weights_load(adapler_weights *a, const st_file *st, int n_layers, int hidden);
/* The tensors to save with bert_model_save; *out is allocated (free it), the names stay
 * valid until the next call on this thread. */
int adapler_weights_extra(const adapler_weights *a, bert_extra_tensor **out);
/* Repack the first CP layers after their weights change (training). */
void adapler_weights_pack(adapler_weights *a);
/* Drop the packed copies (before the weights change again). */
void adapler_weights_unpack(adapler_weights *a);
void adapler_weights_free(adapler_weights *a);

/* CP logits z (T) of rows h (T, H) for layer l; work: T * 32 floats. */
void adapler_cp_forward(float *z, float *work, const adapler_weights *a, int layer, const float *h, int T);
/* FLOPs of scoring one row with a CP (both dense layers). */
double adapler_cp_flops(int hidden);

/* Optional trace of what the strategy saw: for every token of the batch (index
 * sum(orig_len[0..s)) + original position) and layer, the CP's softmax score when the token
 * entered that layer, NaN once it has been dropped.  (L, T_in), owned by the strategy,
 * valid until the next batch. */
typedef struct {
    float *score;
    size_t cap, n_tokens;
    int n_layers;
} adapler_trace;

/* The inference strategy.  a must outlive ps.  trace may be NULL. */
int adapler_strategy_create(prune_strategy *ps, const adapler_weights *a, double eta_scale, adapler_trace *trace);
void adapler_trace_free(adapler_trace *t);

#endif

/* bert_train.h: the encoder's training forward and backward pass over packed
 * variable-length batches, with everything the pruning methods need to train.
 *
 *   bert_train_ctx c;  bert_train_ctx_init(&c);
 *   bert_train_opts o = {.hidden_dropout = 0.1f, .attn_dropout = 0.1f, .seed = step_seed};
 *   bert_train_forward(&c, &m, &batch, &o);          // c.logits (n_seq, C); c.out (final rows)
 *   ... loss, d_logits (n_seq, C) and/or d_out (final rows, H) ...
 *   memset(grad_arena, 0, ...);                      // gradients accumulate
 *   bert_train_backward(&c, &m, &grads, d_logits, d_out);
 *   bert_train_ctx_free(&c);
 *
 * linear_forward() uses the model's packed panels when present (gemm.h), so after changing
 * the weights either repack them (bert_model_pack(); the trainers do it after every update,
 * since the packed kernel with its fused bias repays the copy) or drop them
 * (bert_model_unpack(): cblas_sgemm on the HF-layout weights).
 *
 * What happens before layer l = 0..L-1 (the layer's *input* rows are the previous layer's
 * output, or the embeddings' output for l = 0; "before dropping" means these rows):
 *   1. opts.prune (a prune.h strategy, e.g. the schedule control, PoWER-BERT's hard
 *      extraction) may clear keep[] for rows to drop at PRUNE_AT_INPUT;
 *   2. opts.layer_input(user, view) sees the input rows, keep[] (which it may clear
 *      further) and a zeroed key_logmask[] it may fill: log m_t <= 0 added to every query's
 *      score against key t in this layer's attention (AdapLeR's soft removal; the caller
 *      accumulates it over layers if the mask is a running product);
 *   3. [CLS] is forced to stay, and the kept rows (with their logmask) are gathered.
 * After the attention block (Add & LayerNorm) opts.prune may drop rows again at
 * PRUNE_AFTER_ATTENTION, seeing the attention probabilities (before dropout).  Dropped rows
 * never return.  The pooler and classifier read the final [CLS] rows.
 *
 * Row scales (PoWER-BERT's soft extract, LTP's soft mask multiply rows of a layer's
 * *output*, which a key log-mask cannot express): opts.row_scale(user, view) is called at
 * two points of every layer, BERT_SCALE_ATTENTION on the attention block's output (after its
 * Add & LayerNorm, before the drop after attention) and BERT_SCALE_OUTPUT on the layer's
 * output, with scale[] = 1 and the layer's attention probabilities (before dropout); the
 * rows are then multiplied by scale[t] and what follows (FFN, residual, next layer) reads
 * the scaled rows.  In the backward pass, before the layer's attention backward,
 * opts.row_scale_grad(user, view, d_scale, d_probs_key) is called at each point (OUTPUT
 * first) with d_scale[t] = d loss / d scale[t] (the row's gradient dotted with its
 * unscaled values); the hook may add to d_probs_key (the layer's attention rows, zero on
 * entry): g_t there adds g_t to d loss / d P_h[q, t] for every head h and query q (the
 * probabilities before dropout), which is the gradient of any loss term that depends on
 * the attention a token receives (LTP's mask is a function of it).  Without row_scale
 * nothing is stored or called.
 *
 * The backward pass mirrors this: gradients are scattered back through every gather
 * (dropped rows get zero), and after a layer's backward -- when the gradient with respect
 * to its input rows is complete except for what the caller adds --
 * opts.layer_input_grad(user, view, d_hidden, d_key_logmask) is called with the same view as
 * in the forward pass (keep and key_logmask as they were set), d_hidden (T, H) the gradient
 * with respect to those input rows, to which the caller may add (e.g. AdapLeR's predictor
 * loss, which flows into the encoder through the hidden states the predictors read; and the
 * task loss's gradient through the soft mask into the predictors), and d_key_logmask (T)
 * the gradient with respect to key_logmask (0 for rows dropped at this layer).  Layers are
 * visited L-1 down to 0, so a caller whose layer-l mask depends on earlier layers' masks has
 * all later gradients when layer l's arrive.
 *
 * Dropout (HF BERT's five sites: embeddings, attention probabilities, attention output,
 * FFN output, pooler output) uses hashed masks keyed by (seed, layer, site)
 * (engine/dropout.h): same seed, same masks, whatever the thread count.  Pass a new seed
 * every step.  With both dropouts 0 the forward pass computes exactly what bert_forward()
 * computes (up to the order of floating-point sums).
 *
 * Determinism: every reduction (bias, LayerNorm and embedding gradients, the logmask
 * gradient over heads) runs in a fixed order; GEMMs go to OpenBLAS, which never splits the
 * summed dimension.  Same inputs, seed and thread count give the same bits. */
#ifndef ADP_BERT_TRAIN_H
#define ADP_BERT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "model.h"
#include "prune.h"

/* The rows entering layer `layer`, before anything is dropped there. */
typedef struct {
    int layer, n_layers;
    int n_seq, T, hidden_size;
    const int *off;       /* (n_seq + 1) sequence s owns rows [off[s], off[s+1]) */
    const int32_t *pos;   /* (T) original position of each row in its sequence */
    const int *orig_len;  /* (n_seq) lengths before any pruning */
    const float *hidden;  /* (T, H) the layer's input hidden states */
    uint8_t *keep;        /* (T) forward: 1 (or the strategy's choice) on entry; clear to drop.
                             Backward: what was decided (read only) */
    float *key_logmask;   /* (T) forward: 0 on entry; fill to soft-mask keys.  Backward: as set */
} bert_layer_view;

/* Where a row-scale hook acts in layer l. */
typedef enum { BERT_SCALE_ATTENTION = 0, BERT_SCALE_OUTPUT = 1 } bert_scale_point;

/* The rows of layer `layer` at a scale point, and that layer's attention. */
typedef struct {
    int layer, n_layers;
    bert_scale_point point;
    int n_seq, T, hidden_size, n_heads;
    const int *off;        /* (n_seq + 1) the rows at this point */
    const int32_t *pos;    /* (T) original positions */
    const int *orig_len;   /* (n_seq) */
    const float *hidden;   /* (T, H) the rows before scaling */
    float *scale;          /* (T) forward: 1 on entry, set the rows' factors.  Backward: as set */
    int T_attn;            /* rows of the layer's attention (T_attn >= T at OUTPUT if rows were
                              dropped after the attention) */
    const int *attn_off;   /* (n_seq + 1) */
    const int32_t *attn_pos; /* (T_attn) */
    const float *probs;    /* sequence s, head h at probs + prob_off[s] + h n_s^2, (query, key) */
    const size_t *prob_off;
} bert_scale_view;

typedef int (*bert_scale_fn)(void *user, const bert_scale_view *v);
/* d_scale (T): d loss / d scale.  d_probs_key (T_attn): add to it, see above. */
typedef int (*bert_scale_grad_fn)(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key);

/* Forward hook, before layer l.  Return ADP_OK or ADP_ERR (with adp_seterr). */
typedef int (*bert_layer_fn)(void *user, const bert_layer_view *v);
/* Backward hook, after layer l's backward.  d_hidden (T, H) may be added to. */
typedef int (*bert_layer_grad_fn)(void *user, const bert_layer_view *v, float *d_hidden, const float *d_key_logmask);

typedef struct {
    float hidden_dropout, attn_dropout; /* probabilities; 0 = off (evaluation, gradient checks) */
    uint64_t seed;                      /* dropout masks; change it every step */
    const prune_strategy *prune;        /* hard drops, as in bert_forward (NULL: none) */
    int batch_first;                    /* passed to the strategy */
    bert_layer_fn layer_input;          /* may be NULL */
    bert_layer_grad_fn layer_input_grad;/* may be NULL */
    bert_scale_fn row_scale;            /* may be NULL */
    bert_scale_grad_fn row_scale_grad;  /* may be NULL */
    void *user;
    int keep_input_grads;               /* store d loss / d (layer input) for every layer */
} bert_train_opts;

/* Stored activations of one layer (T_in rows enter, T reach the attention, Tf the FFN). */
typedef struct {
    int T_in, T, Tf, dropped_in, dropped_mid;
    float *x_in;               /* (T_in, H) input rows (owned by the previous stage) */
    uint8_t *keep_in;          /* (T_in) */
    float *logmask_in;         /* (T_in) as the hook left it */
    float *x, *logmask;        /* (T, H), (T): rows entering the attention (alias x_in when none dropped) */
    float *qkv;                /* (T, 3H) */
    float *probs;              /* attention probabilities, sequence s head h at prob_off[s] + h n_s^2 */
    float *ctx;                /* (T, H) attention output before the output projection */
    float *pre1, *mean1, *rstd1; /* (T, H), (T), (T): input of the attention LayerNorm */
    float *x1;                 /* (T, H) attention block output */
    uint8_t *keep_mid;         /* (T) */
    float *x1g;                /* (Tf, H) rows entering the FFN (alias x1 when none dropped) */
    float *f_pre, *f;          /* (Tf, I) FFN pre-activation and GELU output */
    float *pre2, *mean2, *rstd2; /* (Tf, H), (Tf), (Tf): input of the output LayerNorm */
    float *d_in;               /* (T_in, H) with keep_input_grads: d loss / d x_in */
    float *d_logmask_in;       /* (T_in) d loss / d key_logmask */
    int *off_in, *off, *off_ffn;     /* (n_seq + 1) */
    int32_t *pos_in, *pos, *pos_ffn; /* (T_in), (T), (Tf) */
    size_t *prob_off;          /* (n_seq) */
    size_t cap_probs;
    /* with opts.row_scale: the unscaled rows and the factors at the two points */
    float *x1_raw, *scale_mid;   /* (T, H), (T) */
    float *out_raw, *scale_out;  /* (Tf, H), (Tf) */
    /* owned storage the aliases above point into */
    float *x_in_own, *x_own, *x1g_own, *logmask_own;
} bert_train_layer;

typedef struct {
    const bert_config *cfg;    /* of the last forward */
    bert_train_opts opts;      /* of the last forward */
    int n_seq, T0, max_len;
    int dims[5];               /* H, I, L, A, C the buffers are sized for */
    size_t cap_tokens, cap_scratch;
    int cap_seq, cap_layers, cap_dgrads, cap_scales;
    /* inputs */
    int32_t *ids, *types, *pos0;
    int *off0, *orig_len;
    /* embeddings */
    float *emb_pre, *emb_mean, *emb_rstd; /* sum before LayerNorm and its statistics; the output
                                             (after dropout) is layer 0's x_in */
    bert_train_layer *layer;   /* (L) */
    /* final rows: the last layer's output */
    int T_out;
    float *out;                /* (T_out, H) */
    const int *off_out;        /* (n_seq + 1) */
    const int32_t *pos_out;    /* (T_out) */
    /* pooler and classifier */
    float *pool_in, *pooled, *pooled_drop, *logits; /* (n_seq, H), (n_seq, H), (n_seq, H), (n_seq, C) */
    int *layer_tokens, *ffn_tokens; /* (n_seq, L) rows entering each layer's attention and FFN */
    /* backward scratch */
    float *g_a, *g_b, *g_c, *g_y, *g_ctx, *g_qkv, *g_f, *g_lm, *g_pool, *scratch;
    uint8_t *keep_tmp;
    double *flops_tmp;
    float *g_scale, *g_pk;     /* (T0) row-scale gradients, d_probs_key */
} bert_train_ctx;

void bert_train_ctx_init(bert_train_ctx *c);
void bert_train_ctx_free(bert_train_ctx *c);

/* Forward pass storing what the backward needs.  Validates the batch (error names the
 * sequence).  Results: c->logits, c->out / c->off_out / c->pos_out (final rows),
 * c->layer_tokens.  opts is copied (its hooks are called again by the backward). */
int bert_train_forward(bert_train_ctx *c, const bert_model *m, const bert_batch *b, const bert_train_opts *opts);

/* Backward pass of the last forward (it may be run several times per forward, e.g. once
 * per loss whose gradients must stay apart).  d_logits (n_seq, C) and d_out (T_out, H), the
 * gradients of the loss with respect to the logits and to the final rows, may each be
 * NULL.  Parameter gradients ACCUMULATE into g (a bert_weights laid out by
 * bert_weights_point on a gradient arena; zero it first); g = NULL computes only the
 * gradients with respect to hidden states and logmasks (saliency).  ADP_ERR if a hook
 * fails. */
int bert_train_backward(bert_train_ctx *c, const bert_model *m, bert_weights *g, const float *d_logits,
                        const float *d_out);

/* Layer l's input rows as stored by the last forward (l = 0..L-1; l = L: the final rows). */
const float *bert_train_hidden(const bert_train_ctx *c, int l, int *T, const int **off, const int32_t **pos);
/* After a backward with opts.keep_input_grads: d loss / d (layer l's input rows), indexed as
 * bert_train_hidden(c, l); l = 0 is also the embedding output's gradient. */
const float *bert_train_hidden_grad(const bert_train_ctx *c, int l);
/* d loss / d key_logmask of layer l, indexed as its input rows. */
const float *bert_train_logmask_grad(const bert_train_ctx *c, int l);

/* Saliency gradients: d logit_{cls[s]} / d h_l for every token of every layer input (and so
 * of the embedding output, l = 0), sequence by sequence, with dropout off and no parameter
 * gradients.  opts may carry a pruning strategy and hooks (their drops and masks apply);
 * its dropout, keep_input_grads and seed are overridden.  Read the result with
 * bert_train_hidden_grad() and the rows with bert_train_hidden(). */
int bert_logit_grads(bert_train_ctx *c, const bert_model *m, const bert_batch *b, const int32_t *cls,
                     const bert_train_opts *opts);

#endif

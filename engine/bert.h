/* bert.h: the encoder forward pass over packed variable-length batches, with the pruning
 * step (prune.h) at two points of every layer. */
#ifndef ADP_BERT_H
#define ADP_BERT_H

#include "barrier.h"
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "prune.h"

/* A packed batch: sequence s is ids[off[s] .. off[s+1]), [CLS] first.  No padding. */
typedef struct {
    int n_seq;
    const int32_t *ids;   /* (T) */
    const int32_t *types; /* (T) token type ids, or NULL for all 0 */
    const int *off;       /* (n_seq + 1), off[0] = 0 */
} bert_batch;

/* Per-batch results.  Arrays are owned by the bert_ctx and valid until the next forward. */
typedef struct {
    int n_seq, n_layers, n_labels;
    float *logits;        /* (n_seq, C) */
    int *layer_tokens;    /* (n_seq, L): tokens entering layer l (its attention) */
    int *ffn_tokens;      /* (n_seq, L): tokens entering layer l's feed-forward block */
    uint8_t *drop_stage;  /* (T_in): for the token at original position p of sequence s, index
                             off[s] + p: the stage 2l + point before which it was dropped, or 2L
                             if it reached the end.  Alive at stage k iff drop_stage > k. */
    double *flops;        /* (n_seq): exact FLOPs (flops.c), strategy overhead included */
} bert_result;

/* Called with the hidden states after the embeddings (layer = -1) and after each layer:
 * x (T, H) packed by off, pos = original positions.  For tests and tracing. */
typedef void (*bert_hook)(void *user, int layer, const float *x, int T, const int *off, const int32_t *pos);

typedef struct {
    const prune_strategy *prune; /* NULL: dense */
    int batch_first;             /* passed to the strategy */
    bert_hook hook;
    void *hook_user;
} bert_run_opts;

/* Activations arena, sized for the largest batch seen; reused across batches. */
typedef struct {
    size_t cap_tokens, cap_probs, cap_scratch, cap_priv, cap_pair;
    int cap_seq, cap_labels, cap_layers;
    float *x, *x_alt, *y, *qkv, *ctxv, *ffn, *scratch, *probs, *pool_in, *pooled;
    float *priv;      /* per thread, a few-token layer's own attention output and LN1 (bert.c) */
    float *pair;      /* a layer split between two threads: partial sums and LN1s (bert.c layer_pair) */
    float *scores;    /* (T) prune.h score_rows' scores for layer scores_layer's input, or -1 */
    int scores_layer;
    int n_seq;        /* sequences in the current batch */
    int32_t *pos, *pos_alt, *pos_ids;
    int *off, *off_alt, *orig_len;
    size_t *prob_off;
    uint8_t *keep;
    bert_result res;
    /* result storage */
    float *logits;
    int *layer_tokens, *ffn_tokens;
    uint8_t *drop_stage;
    double *flops;
    adp_barrier bar; /* ends each op of a layer's parallel region (engine/barrier.h) */
} bert_ctx;

void bert_ctx_init(bert_ctx *c);
void bert_ctx_free(bert_ctx *c);

/* Run the classifier on a batch.  Validates ids, types and lengths (error names the
 * sequence).  On success *out points into ctx. */
int bert_forward(bert_ctx *ctx, const bert_model *m, const bert_batch *b, const bert_run_opts *opts,
                 const bert_result **out);

#endif

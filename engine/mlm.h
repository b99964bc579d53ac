/* mlm.h: the masked-language-model head of BertForMaskedLM, and the pretrained backbone
 * checkpoint that carries it.
 *
 *   t      = LayerNorm(gelu(h W_d^T + b_d))        cls.predictions.transform.{dense, LayerNorm}
 *   logits = t E^T + b                             E: the word embeddings (tied decoder),
 *                                                  b: cls.predictions.bias
 * on the rows of the encoder's final hidden states whose token was masked.  The decoder
 * weight is not stored (it is the word embeddings, as Hugging Face ties it). */
#ifndef ADP_MLM_H
#define ADP_MLM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "safetensors.h"

typedef struct {
    int hidden, vocab;
    float *dense_w, *dense_b; /* (H, H), (H) */
    float *ln_g, *ln_b;       /* (H) */
    float *bias;              /* (V) */
} mlm_weights;

size_t mlm_weights_count(int hidden, int vocab);
/* Point w into base (mlm_weights_count floats); the same layout serves gradients and moments. */
void mlm_weights_point(mlm_weights *w, int hidden, int vocab, float *base);
/* N(0, init_range) dense weight, zero biases, LayerNorm 1 / 0; deterministic from seed. */
void mlm_weights_init(mlm_weights *w, float init_range, uint64_t seed);
/* Read the head from a checkpoint (names above, LayerNorm weight/bias or gamma/beta).
 * ADP_ERR naming the tensor if one is missing or misshapen. */
int mlm_weights_load(mlm_weights *w, const st_file *st);
/* The head's parameters with their checkpoint names (for the optimizer); *out allocated. */
int mlm_param_list(const mlm_weights *w, bert_param **out);

/* Activations of the head for M rows (reused across batches). */
typedef struct {
    int M, cap_rows, H, V;
    int *rows;
    int32_t *labels;
    float *x, *t_pre, *t_act, *t, *mean, *rstd, *probs, *loss; /* (M,H) x4, (M), (M), (M,V), (M) */
    float *g_t, *g_act, *g_x, *g_logits;                        /* backward scratch */
} mlm_ctx;

void mlm_ctx_init(mlm_ctx *c);
void mlm_ctx_free(mlm_ctx *c);

/* Forward on rows[k] of hidden (T, H) with targets labels[k] (k < M, every label in
 * [0, V)).  Returns the mean cross-entropy over the M rows; *correct (if not NULL) counts
 * rows whose argmax is the label. */
float mlm_forward(mlm_ctx *c, const mlm_weights *w, const float *word_emb, const float *hidden, const int *rows,
                  const int32_t *labels, int M, float ln_eps, int *correct);
/* Backward of scale * (the mean loss): d_hidden rows += , g (head gradients) += ,
 * d_word_emb (V, H) += (the tied decoder's share). */
void mlm_backward(mlm_ctx *c, mlm_weights *g, float *d_word_emb, float *d_hidden, const mlm_weights *w,
                  const float *word_emb, float scale);

/* Save a pretrained backbone in Hugging Face BertForMaskedLM layout: config.json,
 * model.safetensors with the embeddings, the encoder and (if head is not NULL) the MLM head,
 * without pooler and classifier; vocab_src copied to DIR/vocab.txt.  Creates dir. */
int bert_backbone_save(const bert_model *m, const mlm_weights *head, const char *dir, const char *vocab_src);

#endif

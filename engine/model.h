/* model.h: BERT weights (one arena with named pointers) and checkpoints in Hugging Face
 * layout: DIR/config.json, DIR/model.safetensors, DIR/vocab.txt. */
#ifndef ADP_MODEL_H
#define ADP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gemm.h"
#include "safetensors.h"

/* One encoder layer.  Q, K and V are stored one after the other, so wqkv is the fused
 * (3H, H) projection and bqkv its (3H) bias: one GEMM computes all three. */
typedef struct {
    float *wqkv, *bqkv;  /* (3H, H), (3H): rows [0,H) query, [H,2H) key, [2H,3H) value */
    float *wo, *bo;      /* (H, H), (H)   attention.output.dense */
    float *ln1_g, *ln1_b;/* (H)           attention.output.LayerNorm */
    float *w1, *b1;      /* (I, H), (I)   intermediate.dense */
    float *w2, *b2;      /* (H, I), (H)   output.dense */
    float *ln2_g, *ln2_b;/* (H)           output.LayerNorm */
} bert_layer_w;

typedef struct {
    float *word_emb;  /* (V, H) */
    float *pos_emb;   /* (P, H) */
    float *type_emb;  /* (T, H) */
    float *emb_ln_g, *emb_ln_b; /* (H) */
    bert_layer_w *layer;        /* (L) */
    float *pool_w, *pool_b;     /* (H, H), (H) */
    float *cls_w, *cls_b;       /* (C, H), (C) */
} bert_weights;

/* Number of floats of all weights of a config, in arena order. */
size_t bert_weights_count(const bert_config *c);
/* Point w's named pointers into base (bert_weights_count floats).  The same layout serves
 * parameters, gradients and optimizer moments.  w->layer is allocated; free with
 * bert_weights_free_layout(). */
void bert_weights_point(bert_weights *w, const bert_config *c, float *base);
void bert_weights_free_layout(bert_weights *w);

/* A parameter as it is named in a checkpoint. */
typedef enum { PARAM_CORE, PARAM_POOLER, PARAM_CLASSIFIER } param_group;
typedef struct {
    char name[96]; /* canonical HF name, e.g. "bert.encoder.layer.3.attention.self.key.weight" */
    float *ptr;
    int ndim;
    int64_t shape[2];
    param_group group;
    int no_decay; /* biases and LayerNorm: excluded from weight decay */
} bert_param;
/* All parameters, in checkpoint order (query, key and value listed separately: they are
 * slices of wqkv).  Returns the count; *out is allocated. */
int bert_param_list(const bert_config *c, const bert_weights *w, bert_param **out);

/* The projections of one layer as linear layers (weights point into the arena). */
typedef struct {
    linear_w qkv, o, ffn1, ffn2;
} bert_layer_lin;

typedef struct {
    bert_config cfg;
    float *arena; /* bert_weights_count(cfg) floats */
    size_t n_params;
    bert_weights w;
    bert_layer_lin *lin; /* (L) */
    linear_w pool, cls;
    float *packed;       /* packed panels of every layer projection (gemm.h), or NULL */
    uint16_t *packed16;  /* with half or bfloat16 weights: the projections' and pooler's panels */
    int8_t *packed8;     /* with int8 weights: their int8 panels, */
    float *scale8;       /* the panels' column scales, */
    float *row_scale;    /* and each quantized linear's row scales, in layer order, pooler last */
    int weights;         /* FMT_F32, or FMT_F16 / FMT_BF16 / FMT_I8 after bert_model_use_f16 / _bf16 / _i8 */
    char *vocab_path;    /* DIR/vocab.txt if present, else NULL */
} bert_model;

/* Allocate a model for a config (weights zero, not packed). */
void bert_model_alloc(bert_model *m, const bert_config *c);
/* (Re)build the packed panels of every layer projection from the current weights.  The
 * loader and bert_model_init_random call it; anything that changes weights afterwards
 * (training) must call it again, or bert_model_unpack() to fall back to plain sgemm. */
void bert_model_pack(bert_model *m);
void bert_model_unpack(bert_model *m);
/* Half-precision weights for inference (`--weights f16`, gemm.h): round the encoder's
 * projections (query, key, value, attention output, both FFN layers) and the pooler to
 * IEEE half in place, and pack them as half panels: half the bytes to read per token.
 * Embeddings, LayerNorm, biases, the classifier and AdapLeR's predictors stay fp32, as do
 * activations and sums.  Results then equal those of the fp32 model with those weights
 * rounded.  For a loaded model that is not trained further; on CPUs without the packed
 * kernel the rounding still applies (same results, no speed-up).  Fails, naming the
 * tensor, if a weight is beyond the half range (65504). */
int bert_model_use_f16(bert_model *m);
/* Bfloat16 weights (`--weights bf16`, gemm.h gemm_round_bf16): the same, rounded to
 * bfloat16 (fp32's range, 8 significant bits) and packed as column pairs, which the kernel
 * converts with a shift and an AND.  Fails, naming the tensor, on a weight that is not
 * finite or beyond the bfloat16 range, before changing any. */
int bert_model_use_bf16(bert_model *m);
/* Int8 weights (`--weights i8`, gemm.h gemm_quant_i8): the same projections and pooler
 * quantized per output row (symmetric, scale max |w| / 127) in place, and packed as int8
 * panels with their scales: a quarter of fp32's bytes.  Results equal those of the fp32
 * model holding the quantized weights.  Fails, naming the tensor, on a non-finite weight,
 * before changing any. */
int bert_model_use_i8(bert_model *m);
/* fmt FMT_F32 (nothing to do), FMT_F16, FMT_BF16 or FMT_I8; and the name of each (f32,
 * f16, bf16, i8). */
int bert_model_use_weights(bert_model *m, int fmt);
const char *weights_fmt_name(int fmt);
/* The inverse: the FMT_* value of "f32", "f16", "bf16" or "i8" (WEIGHTS_FMT_NAMES), -1 for
 * anything else (NULL included). */
int weights_fmt_from_name(const char *name);
#define WEIGHTS_FMT_NAMES "f32, f16, bf16 or i8"
/* Initialise as transformers does: N(0, initializer_range) weights, zero biases, LayerNorm
 * gamma 1 and beta 0; deterministic from seed. */
void bert_model_init_random(bert_model *m, uint64_t seed);
void bert_model_free(bert_model *m);

/* Loading flags. */
enum {
    BERT_LOAD_HEAD_OPTIONAL = 1, /* a backbone without pooler/classifier loads; those stay as initialised */
};
/* Load DIR/config.json and DIR/model.safetensors.  Tensor names may carry the "bert."
 * prefix or not, LayerNorm parameters may be named weight/bias or gamma/beta, integer
 * buffers (position_ids) and unknown tensors (e.g. an MLM head) are ignored.  A missing or
 * misshapen tensor is an error naming it.  If st is not NULL the safetensors file stays open
 * there (for extra tensors, e.g. AdapLeR's predictors); close it with st_close(). */
int bert_model_load(bert_model *m, const char *dir, int flags, st_file *st);
/* Look up a tensor by canonical name with the same aliasing rules as the loader. */
const st_tensor *bert_find_tensor(const st_file *st, const char *canonical);

/* Extra tensors to save next to the model's own (e.g. AdapLeR predictors). */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} bert_extra_tensor;
/* Save config.json and model.safetensors (F32, canonical names with the "bert." prefix,
 * LayerNorm weight/bias) into dir, creating it.  vocab_src, if not NULL, is copied to
 * DIR/vocab.txt (unless it is that file already). */
int bert_model_save(const bert_model *m, const char *dir, const bert_extra_tensor *extra, int n_extra,
                    const char *vocab_src);

#endif

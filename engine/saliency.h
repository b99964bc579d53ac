/* saliency.h: gradient x input token saliency, and its cache.
 *
 * s_j = || (d z_c / d e_j) * e_j ||_2, e_j the embedding layer's output for token j (the
 * first layer's input, after the embedding LayerNorm), z_c the pre-softmax logit of class
 * c (the gold label for AdapLeR's training targets, the predicted one for the saliency
 * baseline), the norm over the hidden dimension; dropout off.  (adapler-method.md 3.1)
 *
 * Cache file (safetensors, F32 and I64 tensors):
 *   saliency  (n_tok)      scores of the split's tokens, packed as dataset_pack packs them
 *   seq_off   (n_seq + 1)  sequence i is [seq_off[i], seq_off[i+1])
 *   __metadata__: model_hash (FNV-1a 64 of model.safetensors, hex), dataset, split,
 *                 max_len, class ("gold" or "pred"), n_seq, n_tok
 * A cache whose model hash, dataset, split, max_len, class or sequence offsets differ from
 * what is asked for is stale: loading it fails with the reason, and the caller recomputes.
 * Default place: <model dir>/saliency-<dataset>-<split>-<max_len>.safetensors, so a retrained
 * model in the same directory invalidates it through the hash. */
#ifndef ADP_SALIENCY_H
#define ADP_SALIENCY_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "model.h"

/* Scores of every token of pk (n_tok), computed in batches of `batch` sequences.
 * cls (n_seq): the class whose logit is differentiated for each sequence. */
int saliency_compute(float *out, const bert_model *m, const packed_tokens *pk, const int32_t *cls, int batch);

/* FNV-1a 64 of a file's bytes. */
int file_hash64(const char *path, uint64_t *out);

typedef struct {
    char model_hash[17];
    const char *dataset, *split, *cls; /* cls: "gold" or "pred" */
    long max_len;
} saliency_key;

/* Fill key->model_hash from DIR/model.safetensors. */
int saliency_key_model(saliency_key *key, const char *model_dir);
void saliency_cache_path(char *buf, size_t cap, const char *model_dir, const char *ds_name, const char *split,
                         long max_len);
int saliency_save(const char *path, const float *scores, const packed_tokens *pk, const saliency_key *key);
/* Load if the cache matches key and pk; *out (n_tok) is allocated. */
int saliency_load(float **out, const char *path, const packed_tokens *pk, const saliency_key *key);

/* The cached scores for key at path if the cache is valid, else computed (and saved).
 * *computed tells which; *out (n_tok) is allocated.  A stale cache's reason goes to
 * stderr when verbose. */
int saliency_cached(float **out, int *computed, const char *path, const saliency_key *key, const bert_model *m,
                    const packed_tokens *pk, const int32_t *cls, int batch, int verbose);

#endif

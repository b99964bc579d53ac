/* ops.h: the encoder's kernels, one function per op and direction, outputs first.
 * Every kernel takes the current token count, so pruning never reallocates.  Each hot
 * kernel has a plain *_naive twin used by the tests.  Row loops run under OpenMP; GEMMs
 * go to OpenBLAS (which, in its OpenMP build, runs single-threaded when called inside a
 * parallel region, so the two never oversubscribe the cores). */
#ifndef ADP_OPS_H
#define ADP_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Hot element-wise kernels are compiled for AVX-512, AVX2 and baseline x86-64 and the
 * best one is picked at load time (no -march=native needed). */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define ADP_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ADP_HOT
#endif

/* The projections themselves are linear_forward() in gemm.h.
 * out = inp @ w^T + b, computed row by row with plain loops (the reference twin). */
void matmul_forward_naive(float *out, const float *inp, const float *w, const float *b, int n, int in, int out_dim);

/* Embeddings: out[t] = word[ids[t]] + pos[pos_ids[t]] + type[types[t]] (types may be NULL = 0).
 * out (n, d). */
void embedding_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                       const float *word, const float *pos, const float *type, int n, int d);

/* LayerNorm over rows: out = (x - mean) * rstd * g + b.  mean, rstd (n) may be NULL.
 * inp, out (n, d); out may alias inp. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *g, const float *b,
                       int n, int d, float eps);
void layernorm_forward_naive(float *out, const float *inp, const float *g, const float *b, int n, int d, float eps);

/* Fused epilogue of the attention-output and FFN-output projections (post-LN BERT):
 * out = LayerNorm(y + res).  y, res, out (n, d); out may alias y or res.
 * If pre is not NULL the sum before normalisation is stored there (for backward). */
void residual_layernorm_forward(float *out, float *pre, float *mean, float *rstd, const float *y, const float *res,
                                const float *g, const float *b, int n, int d, float eps);

/* Exact erf GELU: 0.5 x (1 + erf(x / sqrt 2)), in place on x (n). */
void gelu_forward(float *x, size_t n);
/* The same on one thread (for use inside parallel regions and GEMM epilogues). */
void gelu_inplace(float *x, size_t n);
float gelu_naive(float x); /* with libm erff */

/* Multi-head self-attention over a packed batch.
 *   qkv   (T, 3d): per token [q | k | v]
 *   scale: multiplies Q K^T (1/sqrt(head_dim))
 *   off   (n_seq + 1): sequence s owns rows [off[s], off[s+1])
 *   key_logmask (T) or NULL: added to the score of every query against key t (a soft
 *         removal mask log m_t; 0 = present)
 *   ctx   (T, d): output, per token the heads' outputs side by side
 *   probs: if not NULL, the softmax probabilities are written there: sequence s, head h at
 *         probs + prob_off[s] + h * n_s * n_s, row-major (query, key); prob_off (n_seq)
 *   scratch: per-thread workspace of at least max_s(n_s)^2 floats for each of
 *         omp_get_max_threads() threads (used when probs is NULL)
 * Runs one (sequence, head) pair per OpenMP task; never computes a padding position. */
void attention_forward(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                       int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch);
/* The same with plain loops (reference twin); probs as above, may be NULL. */
void attention_forward_naive(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                             int n_seq, int d, int n_heads, float scale, const float *key_logmask);

/* Softmax of one row in place (max-subtracted). */
void softmax_row(float *x, int n);

/* tanh in place on x (n). */
void tanh_forward(float *x, int n);
/* Add b (d) to every row of x (n, d). */
void bias_forward(float *x, const float *b, int n, int d);

#endif

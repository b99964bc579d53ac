/* ops.h: the encoder's kernels, one function per op and direction, outputs first.
 * Every kernel takes the current token count, so pruning never reallocates.  Each hot
 * kernel has a plain *_naive twin used by the tests.  Row loops run under OpenMP; GEMMs
 * go to OpenBLAS (which, in its OpenMP build, runs single-threaded when called inside a
 * parallel region, so the two never oversubscribe the cores). */
#ifndef ADP_OPS_H
#define ADP_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "barrier.h"

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
/* Team variants of embedding_forward and layernorm_forward (no mean, rstd), called by every
 * thread of an enclosing parallel region: each thread computes its static share of the rows,
 * as `omp for schedule(static)` splits them, and returns without a barrier, so a thread may
 * go on to read only the rows it wrote.  Same results as the above. */
void embedding_forward_team(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                            const float *word, const float *pos, const float *type, int n, int d);
void layernorm_forward_team(float *out, const float *inp, const float *g, const float *b, int n, int d, float eps);

/* Fused epilogue of the attention-output and FFN-output projections (post-LN BERT):
 * out = LayerNorm(y + res).  y, res, out (n, d); out may alias y or res.
 * If pre is not NULL the sum before normalisation is stored there (for backward). */
void residual_layernorm_forward(float *out, float *pre, float *mean, float *rstd, const float *y, const float *res,
                                const float *g, const float *b, int n, int d, float eps);
/* Team variant (out = LN(y + res), nothing kept for backward): called by every thread of an
 * enclosing parallel region; with sync it returns after a barrier (bar, see barrier.h, or
 * OpenMP's when NULL), without it the caller's region end is the barrier (each thread has
 * then written only its static share of the rows).  Same result as the above. */
void residual_layernorm_forward_team(float *out, const float *y, const float *res, const float *g, const float *b,
                                     int n, int d, float eps, int sync, adp_barrier *bar);
/* Every row on the calling thread alone (inside a region, into a buffer of its own). */
void residual_layernorm_forward_serial(float *out, const float *y, const float *res, const float *g, const float *b,
                                       int n, int d, float eps);

/* Exact erf GELU: 0.5 x (1 + erf(x / sqrt 2)), in place on x (n). */
void gelu_forward(float *x, size_t n);
/* The same on one thread (for use inside parallel regions and GEMM epilogues).  With
 * AVX-512 erf comes from a piecewise polynomial (elementwise.c, max abs error 6e-8), else
 * from fast_erff (fastmath.h, 1.5e-7); gelu_uses_avx512() says which. */
void gelu_inplace(float *x, size_t n);
int gelu_uses_avx512(void);
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
/* Team variant: called by every thread of an enclosing parallel region with the same
 * arguments (scratch holding max_n^2 floats per thread of that region); returns after a
 * barrier (bar, or OpenMP's when NULL); same result as attention_forward. */
/* Serial variant for one thread of an enclosing region that computes the (sequence, head)
 * pairs of heads [h0, h1) itself (bert.c's few-token layers: every head, redundantly, into
 * a ctx of its own instead of a barrier; or half the heads each, layer_pair), writing only
 * those heads' columns of ctx; no probabilities, no mask; scratch as for the team variant.
 * Same result. */
void attention_forward_serial(float *ctx, const float *qkv, const int *off, int n_seq, int d, int n_heads, int h0,
                              int h1, float scale, float *scratch);
void attention_forward_team(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                            int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch,
                            adp_barrier *bar);
/* The same with plain loops (reference twin); probs as above, may be NULL. */
void attention_forward_naive(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                             int n_seq, int d, int n_heads, float scale, const float *key_logmask);

/* Softmax of one row in place (max-subtracted). */
void softmax_row(float *x, int n);

/* tanh in place on x (n). */
void tanh_forward(float *x, int n);
/* Add b (d) to every row of x (n, d). */
void bias_forward(float *x, const float *b, int n, int d);

/* ---- Training: dropout and the backward passes (used by engine/bert_train.c) ----
 * Gradient outputs come first.  Kernels marked "+=" ACCUMULATE into their gradient outputs
 * (the caller zeroes them, as in llm.c); those marked "=" overwrite and may work in place.
 * Every reduction over rows runs in a fixed order (fixed-size row blocks summed in
 * sequence, or one column range per thread), so results do not depend on scheduling. */

/* Dropout (engine/dropout.c, masks in engine/dropout.h): out = inp * mask / (1 - p), n
 * elements, mask regenerated from key; p = 0 copies.  "=", may work in place.  The
 * backward multiplies the gradient by the same mask. */
void dropout_forward(float *out, const float *inp, size_t n, float p, uint32_t key);
void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint32_t key);

/* Linear layer out = inp w^T + b (engine/linear_backward.c), dout (n, out):
 *   dinp (n, in) += dout w;  dw (out, in) += dout^T inp;  db (out) += column sums of dout.
 * Any of dinp, dw, db may be NULL (not computed).  GEMMs go to cblas_sgemm (multithreaded
 * by OpenBLAS): call outside parallel regions. */
void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int n,
                     int in, int out);
void linear_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           int n, int in, int out);

/* LayerNorm backward, "+=": inp (n, d) is the forward's input, mean and rstd (n) its
 * statistics; dg, db (d) may be NULL. */
void layernorm_backward(float *dinp, float *dg, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *g, int n, int d);
void layernorm_backward_naive(float *dinp, float *dg, float *db, const float *dout, const float *inp,
                              const float *g, int n, int d, float eps);

/* GELU backward, "=": dinp = dout * gelu'(inp), inp the pre-activation (n); may alias dout. */
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* tanh backward from the forward's output, "=": dinp = dout * (1 - out^2); may alias dout. */
void tanh_backward(float *dinp, const float *out, const float *dout, int n);
/* Embeddings backward, "+=": row t of dout (n, d) goes to dword[ids[t]], dpos[pos_ids[t]] and
 * dtype[types[t]] (types NULL = 0).  Any table may be NULL.  One column range per thread. */
void embedding_backward(float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                        const int32_t *pos_ids, const int32_t *types, int n, int d);

/* Attention with dropout on the probabilities (training).  As attention_forward, but probs
 * (required) receives the softmax probabilities *before* dropout and ctx = dropout(P) V
 * with the mask of site key (element prob_off[s] + (h n + i) n + j).  p = 0: no dropout.
 * scratch: omp_get_max_threads() * max_s(n_s)^2 floats. */
void attention_forward_train(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                             int n_seq, int d, int n_heads, float scale, const float *key_logmask, float p,
                             uint32_t key, float *scratch);
/* Its backward.  dqkv (T, 3d) "=" (every element written); dlogmask (T) "+=" (the sum of
 * the score gradients over heads and queries), may be NULL; dctx (T, d); dprobs_key (T) or
 * NULL: an extra gradient on the probabilities (before dropout), the same for every head
 * and query of key t; probs, p, key as in the forward.
 * scratch: omp_get_max_threads() * 2 * max_s(n_s)^2 + n_heads * T floats. */
void attention_backward(float *dqkv, float *dlogmask, const float *dctx, const float *dprobs_key, const float *qkv,
                        const float *probs, const size_t *prob_off, const int *off, int n_seq, int d, int n_heads,
                        float scale, float p, uint32_t key, float *scratch);
void attention_backward_naive(float *dqkv, float *dlogmask, const float *dctx, const float *dprobs_key,
                              const float *qkv, const float *probs, const size_t *prob_off, const int *off, int n_seq,
                              int d, int n_heads, float scale, float p, uint32_t key);

/* Softmax cross-entropy (engine/loss.c).  Forward: probs (n, C) = softmax(logits) (may alias
 * logits), loss (n) = -log probs[target]; a row with target < 0 is ignored (loss 0).  Backward, "+=":
 * dlogits += scale * (probs - onehot(target)) on rows with target >= 0. */
void softmax_xent_forward(float *loss, float *probs, const float *logits, const int32_t *target, int n, int C);
void softmax_xent_backward(float *dlogits, const float *probs, const int32_t *target, float scale, int n, int C);

#endif

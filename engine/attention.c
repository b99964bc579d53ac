/* attention.c: multi-head self-attention over a packed variable-length batch.
 *
 * For sequence s (rows [r0, r0+n)) and head h (columns [h*dh, (h+1)*dh)):
 *   S = scale Q_h K_h^T + 1 logmask^T  (n, n)   scale = 1/sqrt(dh), applied by the GEMM
 *   P = softmax_rows(S)              (n, n)
 *   ctx_h = P V_h                    (n, dh)
 * Q, K, V are read in place from the fused (T, 3d) projection with leading dimension 3d,
 * and ctx_h is written in place into (T, d) with leading dimension d: no copies, no
 * padding.  Each (s, h) pair is one OpenMP iteration, dynamically scheduled since lengths
 * differ; the two small GEMMs inside run single-threaded. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "common.h"
#include "ops.h"

ADP_HOT static void softmax_row_masked(float *x, const float *logmask, int n) {
    if (logmask) {
#pragma omp simd
        for (int i = 0; i < n; i++) x[i] += logmask[i];
    }
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) {
        float e = fast_expf(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void softmax_row(float *x, int n) { softmax_row_masked(x, NULL, n); }

/* Short sequences (n <= ATTN_SMALL_N, dh <= ATTN_SMALL_DH): both products without BLAS.
 * At the lengths pruning leaves, a cblas_sgemm call costs more in its fixed overhead
 * (buffer allocation, packing) than in arithmetic, and it is paid per sequence and head
 * however few tokens remain.  K_h is transposed once into Kt (dh, n) so that each score
 * row is a sum of dh axpys over the keys, and each context row a sum of n axpys over V. */
#define ATTN_SMALL_N 48
#define ATTN_SMALL_DH 128
ADP_HOT static void attend_small(float *C, int ldc, float *S, const float *Q, const float *K, const float *V, int ld,
                                 int n, int dh, float scale, const float *lm) {
    float Kt[ATTN_SMALL_DH * ATTN_SMALL_N];
    for (int j = 0; j < n; j++)
        for (int e = 0; e < dh; e++) Kt[(size_t)e * n + j] = K[(size_t)j * ld + e];
    for (int i = 0; i < n; i++) {
        const float *q = Q + (size_t)i * ld;
        float *srow = S + (size_t)i * n;
#pragma omp simd
        for (int j = 0; j < n; j++) srow[j] = 0.0f;
        for (int e = 0; e < dh; e++) {
            const float qe = q[e] * scale, *kt = Kt + (size_t)e * n;
#pragma omp simd
            for (int j = 0; j < n; j++) srow[j] += qe * kt[j];
        }
        softmax_row_masked(srow, lm, n);
        float *c = C + (size_t)i * ldc;
#pragma omp simd
        for (int e = 0; e < dh; e++) c[e] = 0.0f;
        for (int j = 0; j < n; j++) {
            const float pj = srow[j], *v = V + (size_t)j * ld;
#pragma omp simd
            for (int e = 0; e < dh; e++) c[e] += pj * v[e];
        }
    }
}

static void attend_one(float *ctx, float *S, const float *qkv, int r0, int n, int d, int dh, int h, float scale,
                       const float *key_logmask) {
    const int ld = 3 * d;
    const float *Q = qkv + (size_t)r0 * ld + (size_t)h * dh;
    const float *K = Q + d, *V = Q + 2 * d;
    if (n <= ATTN_SMALL_N && dh <= ATTN_SMALL_DH) {
        attend_small(ctx + (size_t)r0 * d + (size_t)h * dh, d, S, Q, K, V, ld, n, dh, scale,
                     key_logmask ? key_logmask + r0 : NULL);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, scale, Q, ld, K, ld, 0.0f, S, n);
    const float *lm = key_logmask ? key_logmask + r0 : NULL;
    for (int i = 0; i < n; i++) softmax_row_masked(S + (size_t)i * n, lm, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, 1.0f, S, n, V, ld, 0.0f,
                ctx + (size_t)r0 * d + (size_t)h * dh, d);
}

/* The (sequence, head) loop as an orphaned worksharing loop, dynamically scheduled since
 * lengths differ; each thread of the enclosing region (or the one thread outside any) uses
 * its own per_thread floats of scratch. */
static void attention_for(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                          int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch,
                          size_t per_thread) {
    const int dh = d / n_heads, pairs = n_seq * n_heads;
#pragma omp for schedule(dynamic, 1)
    for (int p = 0; p < pairs; p++) {
        int s = p / n_heads, h = p % n_heads;
        int r0 = off[s], n = off[s + 1] - off[s];
        if (n <= 0) continue;
        float *S = probs ? probs + prob_off[s] + (size_t)h * n * n : scratch + (size_t)omp_get_thread_num() * per_thread;
        attend_one(ctx, S, qkv, r0, n, d, dh, h, scale, key_logmask);
    }
}

void attention_forward(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                       int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch) {
    int max_n = 0;
    for (int s = 0; s < n_seq; s++) max_n = off[s + 1] - off[s] > max_n ? off[s + 1] - off[s] : max_n;
    const size_t per_thread = (size_t)max_n * max_n;
    const int pairs = n_seq * n_heads;
    /* Parallel over pairs, unless there is a single pair (BLAS then uses the threads) or
     * so little work (a few pruned tokens) that waking a second thread costs more than it
     * saves: a few microseconds spinning, tens with OMP_WAIT_POLICY=passive. */
    size_t work = 0;
    for (int s = 0; s < n_seq; s++) work += (size_t)(off[s + 1] - off[s]) * (size_t)(off[s + 1] - off[s]);
    work *= (size_t)d;
#pragma omp parallel if (pairs > 1 && work > 65536)
    attention_for(ctx, probs, prob_off, qkv, off, n_seq, d, n_heads, scale, key_logmask, scratch, per_thread);
}

void attention_forward_team(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                            int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch) {
    int max_n = 0;
    for (int s = 0; s < n_seq; s++) max_n = off[s + 1] - off[s] > max_n ? off[s + 1] - off[s] : max_n;
    attention_for(ctx, probs, prob_off, qkv, off, n_seq, d, n_heads, scale, key_logmask, scratch,
                  (size_t)max_n * max_n);
}

void attention_forward_naive(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                             int n_seq, int d, int n_heads, float scale, const float *key_logmask) {
    const int dh = d / n_heads, ld = 3 * d;
    for (int s = 0; s < n_seq; s++) {
        int r0 = off[s], n = off[s + 1] - off[s];
        double *row = mallocCheck(sizeof(double) * (size_t)(n ? n : 1));
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < n; i++) {
                const float *q = qkv + (size_t)(r0 + i) * ld + (size_t)h * dh;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    const float *k = qkv + (size_t)(r0 + j) * ld + d + (size_t)h * dh;
                    double acc = 0;
                    for (int e = 0; e < dh; e++) acc += (double)q[e] * k[e];
                    acc *= scale;
                    if (key_logmask) acc += key_logmask[r0 + j];
                    row[j] = acc;
                    if (acc > mx) mx = acc;
                }
                for (int j = 0; j < n; j++) sum += (row[j] = exp(row[j] - mx));
                for (int j = 0; j < n; j++) row[j] /= sum;
                if (probs)
                    for (int j = 0; j < n; j++) probs[prob_off[s] + ((size_t)h * n + i) * n + j] = (float)row[j];
                for (int e = 0; e < dh; e++) {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += row[j] * qkv[(size_t)(r0 + j) * ld + 2 * d + (size_t)h * dh + e];
                    ctx[(size_t)(r0 + i) * d + (size_t)h * dh + e] = (float)acc;
                }
            }
        free(row);
    }
}

/* ---- training: dropout on the probabilities, and the backward pass ----
 *
 * Backward for one (sequence, head), with D = dropout(P) the matrix the forward multiplied
 * V by, and dC the gradient of ctx_h:
 *   dD = dC V^T,  dV = D^T dC,  dP = dD * mask / (1 - p) + 1 dprobs_key^T,
 *   dS = P * (dP - rowsum(dP * P))   (softmax backward, row by row),
 *   dQ = scale dS K,  dK = scale dS^T Q,  dlogmask[j] += sum_i dS[i, j].
 * dprobs_key (optional) is a gradient on the probabilities P (before dropout) that every
 * query and head receive for key j: a loss term that depends on the attention a token
 * receives (LTP's soft mask).  The dropout mask is regenerated from its key
 * (engine/dropout.h), never stored. */

#include "dropout.h"

/* D = P * mask / (1 - p) over n2 elements whose mask indices start at base; D may be P. */
ADP_HOT static void drop_probs(float *D, const float *P, size_t n2, uint32_t base, uint32_t thr, float sc,
                               uint32_t key) {
#pragma omp simd
    for (size_t i = 0; i < n2; i++) D[i] = dropout_hash(key, base + (uint32_t)i) >= thr ? P[i] * sc : 0.0f;
}

static int max_len_of(const int *off, int n_seq) {
    int m = 0;
    for (int s = 0; s < n_seq; s++) m = off[s + 1] - off[s] > m ? off[s + 1] - off[s] : m;
    return m;
}

void attention_forward_train(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                             int n_seq, int d, int n_heads, float scale, const float *key_logmask, float p,
                             uint32_t key, float *scratch) {
    if (p <= 0.0f) {
        attention_forward(ctx, probs, prob_off, qkv, off, n_seq, d, n_heads, scale, key_logmask, scratch);
        return;
    }
    const int dh = d / n_heads, ld = 3 * d, max_n = max_len_of(off, n_seq);
    const size_t per_thread = (size_t)max_n * max_n;
    const uint32_t thr = dropout_threshold(p);
    const float sc = 1.0f / (1.0f - p);
    const int pairs = n_seq * n_heads;
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1)
    for (int q = 0; q < pairs; q++) {
        int s = q / n_heads, h = q % n_heads;
        int r0 = off[s], n = off[s + 1] - off[s];
        if (n <= 0) continue;
        size_t base = prob_off[s] + (size_t)h * n * n;
        float *S = probs + base, *D = scratch + (size_t)omp_get_thread_num() * per_thread;
        const float *Q = qkv + (size_t)r0 * ld + (size_t)h * dh, *K = Q + d, *V = Q + 2 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, scale, Q, ld, K, ld, 0.0f, S, n);
        const float *lm = key_logmask ? key_logmask + r0 : NULL;
        for (int i = 0; i < n; i++) softmax_row_masked(S + (size_t)i * n, lm, n);
        drop_probs(D, S, (size_t)n * n, (uint32_t)base, thr, sc, key);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, 1.0f, D, n, V, ld, 0.0f,
                    ctx + (size_t)r0 * d + (size_t)h * dh, d);
    }
}

/* dS = P * (dP - rowsum(dP * P)) in place on dP (n x n); column sums of dS into dlm (n) if
 * not NULL. */
ADP_HOT static void softmax_back(float *dP, const float *P, int n, float *dlm) {
    for (int i = 0; i < n; i++) {
        float *dr = dP + (size_t)i * n;
        const float *pr = P + (size_t)i * n;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < n; j++) dot += dr[j] * pr[j];
#pragma omp simd
        for (int j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - dot);
        if (dlm) {
#pragma omp simd
            for (int j = 0; j < n; j++) dlm[j] += dr[j];
        }
    }
}

void attention_backward(float *dqkv, float *dlogmask, const float *dctx, const float *dprobs_key, const float *qkv,
                        const float *probs, const size_t *prob_off, const int *off, int n_seq, int d, int n_heads,
                        float scale, float p, uint32_t key, float *scratch) {
    const int dh = d / n_heads, ld = 3 * d, max_n = max_len_of(off, n_seq), T = off[n_seq];
    const size_t nn = (size_t)max_n * max_n, per_thread = 2 * nn;
    float *dlm = dlogmask ? scratch + (size_t)omp_get_max_threads() * per_thread : NULL;
    if (dlm) memset(dlm, 0, sizeof(float) * (size_t)n_heads * T);
    const uint32_t thr = dropout_threshold(p);
    const float sc = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    const int pairs = n_seq * n_heads;
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1)
    for (int q = 0; q < pairs; q++) {
        int s = q / n_heads, h = q % n_heads;
        int r0 = off[s], n = off[s + 1] - off[s];
        if (n <= 0) continue;
        size_t base = prob_off[s] + (size_t)h * n * n;
        const float *P = probs + base;
        float *dP = scratch + (size_t)omp_get_thread_num() * per_thread, *D = dP + nn;
        const float *Q = qkv + (size_t)r0 * ld + (size_t)h * dh, *K = Q + d, *V = Q + 2 * d;
        const float *dC = dctx + (size_t)r0 * d + (size_t)h * dh;
        float *dQ = dqkv + (size_t)r0 * ld + (size_t)h * dh, *dK = dQ + d, *dV = dQ + 2 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, 1.0f, dC, d, V, ld, 0.0f, dP, n);
        const float *Pd = P;
        if (p > 0.0f) {
            drop_probs(D, P, (size_t)n * n, (uint32_t)base, thr, sc, key);
            drop_probs(dP, dP, (size_t)n * n, (uint32_t)base, thr, sc, key);
            Pd = D;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, n, 1.0f, Pd, n, dC, d, 0.0f, dV, ld);
        if (dprobs_key) {
            const float *u = dprobs_key + r0;
            for (int i = 0; i < n; i++) {
                float *dr = dP + (size_t)i * n;
#pragma omp simd
                for (int j = 0; j < n; j++) dr[j] += u[j];
            }
        }
        softmax_back(dP, P, n, dlm ? dlm + (size_t)h * T + r0 : NULL);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, scale, dP, n, K, ld, 0.0f, dQ, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, n, scale, dP, n, Q, ld, 0.0f, dK, ld);
    }
    if (dlm) /* heads summed in order */
        for (int h = 0; h < n_heads; h++)
            for (int t = 0; t < T; t++) dlogmask[t] += dlm[(size_t)h * T + t];
}

void attention_backward_naive(float *dqkv, float *dlogmask, const float *dctx, const float *dprobs_key,
                              const float *qkv, const float *probs, const size_t *prob_off, const int *off, int n_seq,
                              int d, int n_heads, float scale, float p, uint32_t key) {
    const int dh = d / n_heads, ld = 3 * d;
    const uint32_t thr = dropout_threshold(p);
    const double sc = p > 0.0f ? 1.0 / (1.0 - (double)p) : 1.0;
    for (int s = 0; s < n_seq; s++) {
        int r0 = off[s], n = off[s + 1] - off[s];
        double *dS = mallocCheck(sizeof(double) * (size_t)(n ? n * n : 1));
        double *M = mallocCheck(sizeof(double) * (size_t)(n ? n * n : 1));
        for (int h = 0; h < n_heads; h++) {
            size_t base = prob_off[s] + (size_t)h * n * n;
            const float *P = probs + base;
            for (int k = 0; k < n * n; k++)
                M[k] = p > 0.0f && dropout_hash(key, (uint32_t)(base + (size_t)k)) < thr ? 0.0 : sc;
            for (int i = 0; i < n; i++) {
                double dot = 0;
                for (int j = 0; j < n; j++) {
                    double a = 0;
                    for (int e = 0; e < dh; e++)
                        a += (double)dctx[(size_t)(r0 + i) * d + h * dh + e] * qkv[(size_t)(r0 + j) * ld + 2 * d + h * dh + e];
                    dS[i * n + j] = a * M[i * n + j] + (dprobs_key ? dprobs_key[r0 + j] : 0.0);
                    dot += dS[i * n + j] * P[i * n + j];
                }
                for (int j = 0; j < n; j++) dS[i * n + j] = P[i * n + j] * (dS[i * n + j] - dot);
            }
            for (int j = 0; j < n; j++)
                for (int e = 0; e < dh; e++) {
                    double dv = 0, dq = 0, dk = 0;
                    for (int i = 0; i < n; i++) {
                        dv += P[i * n + j] * M[i * n + j] * dctx[(size_t)(r0 + i) * d + h * dh + e];
                        dq += dS[j * n + i] * qkv[(size_t)(r0 + i) * ld + d + h * dh + e];
                        dk += dS[i * n + j] * qkv[(size_t)(r0 + i) * ld + h * dh + e];
                    }
                    dqkv[(size_t)(r0 + j) * ld + 2 * d + h * dh + e] = (float)dv;
                    dqkv[(size_t)(r0 + j) * ld + h * dh + e] = (float)(scale * dq);
                    dqkv[(size_t)(r0 + j) * ld + d + h * dh + e] = (float)(scale * dk);
                }
            if (dlogmask)
                for (int j = 0; j < n; j++) {
                    double a = 0;
                    for (int i = 0; i < n; i++) a += dS[i * n + j];
                    dlogmask[r0 + j] += (float)a;
                }
        }
        free(dS);
        free(M);
    }
}

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

static void attend_one(float *ctx, float *S, const float *qkv, int r0, int n, int d, int dh, int h, float scale,
                       const float *key_logmask) {
    const int ld = 3 * d;
    const float *Q = qkv + (size_t)r0 * ld + (size_t)h * dh;
    const float *K = Q + d, *V = Q + 2 * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, scale, Q, ld, K, ld, 0.0f, S, n);
    const float *lm = key_logmask ? key_logmask + r0 : NULL;
    for (int i = 0; i < n; i++) softmax_row_masked(S + (size_t)i * n, lm, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, 1.0f, S, n, V, ld, 0.0f,
                ctx + (size_t)r0 * d + (size_t)h * dh, d);
}

void attention_forward(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                       int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch) {
    const int dh = d / n_heads;
    int max_n = 0;
    for (int s = 0; s < n_seq; s++) max_n = off[s + 1] - off[s] > max_n ? off[s + 1] - off[s] : max_n;
    const size_t per_thread = (size_t)max_n * max_n;
    const int pairs = n_seq * n_heads;
    /* Parallel over pairs unless there is a single pair (let BLAS use the threads then). */
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1)
    for (int p = 0; p < pairs; p++) {
        int s = p / n_heads, h = p % n_heads;
        int r0 = off[s], n = off[s + 1] - off[s];
        if (n <= 0) continue;
        float *S = probs ? probs + prob_off[s] + (size_t)h * n * n : scratch + (size_t)omp_get_thread_num() * per_thread;
        attend_one(ctx, S, qkv, r0, n, d, dh, h, scale, key_logmask);
    }
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

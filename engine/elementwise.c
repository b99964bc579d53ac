/* elementwise.c: GELU, biases, tanh, embeddings: the cheap per-element passes. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "fastmath.h"
#include "ops.h"

ADP_HOT void gelu_inplace(float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + fast_erff(v * 0.70710678118654752f));
    }
}

void gelu_forward(float *x, size_t n) {
    const size_t chunk = 4096;
    const long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long c = 0; c < chunks; c++) gelu_inplace(x + (size_t)c * chunk, ADP_MIN(chunk, n - (size_t)c * chunk));
}

float gelu_naive(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

void bias_forward(float *x, const float *b, int n, int d) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++) x[(size_t)t * d + i] += b[i];
}

ADP_HOT void tanh_forward(float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] = fast_tanhf(x[i]);
}

/* The rows of a batch are scattered over a table (16000 x 256 floats for the small shape)
 * that the layers' weights push out of cache between batches: at batch 1, reading them one
 * after the other cost about 7 us for 25 tokens, almost all of it waiting on memory.  Asking
 * for the rows EMB_AHEAD tokens ahead of use (the first ones before the loop) lets the
 * loads overlap. */
#define EMB_AHEAD 8
static void prefetch_rows(const float *word, const float *pos, const int32_t *ids, const int32_t *pos_ids, int t,
                          int d) {
    const char *w = (const char *)(word + (size_t)ids[t] * d), *p = (const char *)(pos + (size_t)pos_ids[t] * d);
    for (size_t b = 0; b < sizeof(float) * (size_t)d; b += 64) __builtin_prefetch(w + b, 0, 3), __builtin_prefetch(p + b, 0, 3);
}

void embedding_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                       const float *word, const float *pos, const float *type, int n, int d) {
    for (int t = 0; t < n && t < EMB_AHEAD; t++) prefetch_rows(word, pos, ids, pos_ids, t, d);
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++) {
        if (t + EMB_AHEAD < n) prefetch_rows(word, pos, ids, pos_ids, t + EMB_AHEAD, d);
        const float *w = word + (size_t)ids[t] * d, *p = pos + (size_t)pos_ids[t] * d;
        const float *ty = type + (size_t)(types ? types[t] : 0) * d;
        float *o = out + (size_t)t * d;
        for (int i = 0; i < d; i++) o[i] = (w[i] + ty[i]) + p[i]; /* HF order: word + type, then + position */
    }
}

/* ---- backward ---- */

/* gelu'(x) = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi) */
ADP_HOT static void gelu_backward_chunk(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + fast_erff(x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * fast_expf(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    const size_t chunk = 4096;
    const long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * chunk;
        gelu_backward_chunk(dinp + i0, inp + i0, dout + i0, ADP_MIN(chunk, n - i0));
    }
}

void tanh_backward(float *dinp, const float *out, const float *dout, int n) {
    for (int i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

void embedding_backward(float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                        const int32_t *pos_ids, const int32_t *types, int n, int d) {
    /* Rows of one table may repeat (the same word twice): each thread owns a column range
     * and walks all rows in order, so there are no races and the sums have a fixed order. */
    const int span = 32, ranges = (d + span - 1) / span;
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int r = 0; r < ranges; r++) {
        int c0 = r * span, c1 = ADP_MIN(d, c0 + span);
        for (int t = 0; t < n; t++) {
            const float *g = dout + (size_t)t * d;
            float *w = dword ? dword + (size_t)ids[t] * d : NULL;
            float *p = dpos ? dpos + (size_t)pos_ids[t] * d : NULL;
            float *ty = dtype ? dtype + (size_t)(types ? types[t] : 0) * d : NULL;
            for (int i = c0; i < c1; i++) {
                if (w) w[i] += g[i];
                if (p) p[i] += g[i];
                if (ty) ty[i] += g[i];
            }
        }
    }
}

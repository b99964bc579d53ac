/* elementwise.c: GELU, biases, tanh, embeddings: the cheap per-element passes. */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "ops.h"

ADP_HOT static void bias_gelu_row(float *x, const float *b, int d) {
#pragma omp simd
    for (int i = 0; i < d; i++) {
        float v = x[i] + b[i];
        x[i] = 0.5f * v * (1.0f + fast_erff(v * 0.70710678118654752f));
    }
}

void bias_gelu_forward(float *x, const float *b, int n, int d) {
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++) bias_gelu_row(x + (size_t)t * d, b, d);
}

float gelu_naive(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

ADP_HOT static void qkv_bias_row(float *x, const float *b, int d, float scale) {
#pragma omp simd
    for (int i = 0; i < d; i++) x[i] = (x[i] + b[i]) * scale;
#pragma omp simd
    for (int i = d; i < 3 * d; i++) x[i] = x[i] + b[i];
}

void qkv_bias_forward(float *qkv, const float *bqkv, int n, int d, float scale) {
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++) qkv_bias_row(qkv + (size_t)t * 3 * d, bqkv, d, scale);
}

void bias_forward(float *x, const float *b, int n, int d) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++) x[(size_t)t * d + i] += b[i];
}

void tanh_forward(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

void embedding_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                       const float *word, const float *pos, const float *type, int n, int d) {
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++) {
        const float *w = word + (size_t)ids[t] * d, *p = pos + (size_t)pos_ids[t] * d;
        const float *ty = type + (size_t)(types ? types[t] : 0) * d;
        float *o = out + (size_t)t * d;
        for (int i = 0; i < d; i++) o[i] = (w[i] + ty[i]) + p[i]; /* HF order: word + type, then + position */
    }
}

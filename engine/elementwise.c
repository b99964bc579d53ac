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

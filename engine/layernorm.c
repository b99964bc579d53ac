/* layernorm.c: LayerNorm and the fused residual + LayerNorm epilogue. */
#include <math.h>

#include "ops.h"

/* One row: two passes (mean, then variance of the centred values), as PyTorch does, so
 * large offsets do not cancel. */
ADP_HOT static void ln_row(float *out, float *mean_out, float *rstd_out, const float *x, const float *g,
                           const float *b, int d, float eps) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < d; i++) sum += x[i];
    float mean = sum / (float)d;
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int i = 0; i < d; i++) {
        float c = x[i] - mean;
        var += c * c;
    }
    float rstd = 1.0f / sqrtf(var / (float)d + eps);
#pragma omp simd
    for (int i = 0; i < d; i++) out[i] = (x[i] - mean) * rstd * g[i] + b[i];
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *g, const float *b,
                       int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int t = 0; t < n; t++)
        ln_row(out + (size_t)t * d, mean ? mean + t : NULL, rstd ? rstd + t : NULL, inp + (size_t)t * d, g, b, d, eps);
}

ADP_HOT static void add_row(float *s, const float *y, const float *res, int d) {
#pragma omp simd
    for (int i = 0; i < d; i++) s[i] = y[i] + res[i];
}

void residual_layernorm_forward(float *out, float *pre, float *mean, float *rstd, const float *y, const float *res,
                                const float *g, const float *b, int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * d;
        /* the sum goes to `pre` when kept for backward, else into out itself */
        float *s = pre ? pre + o : out + o;
        add_row(s, y + o, res + o, d);
        ln_row(out + o, mean ? mean + t : NULL, rstd ? rstd + t : NULL, s, g, b, d, eps);
    }
}

void layernorm_forward_naive(float *out, const float *inp, const float *g, const float *b, int n, int d, float eps) {
    for (int t = 0; t < n; t++) {
        const float *x = inp + (size_t)t * d;
        double m = 0, v = 0;
        for (int i = 0; i < d; i++) m += x[i];
        m /= d;
        for (int i = 0; i < d; i++) v += (x[i] - m) * (x[i] - m);
        v /= d;
        double rs = 1.0 / sqrt(v + eps);
        for (int i = 0; i < d; i++) out[(size_t)t * d + i] = (float)((x[i] - m) * rs * g[i] + b[i]);
    }
}

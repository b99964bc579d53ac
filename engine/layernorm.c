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
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++)
        ln_row(out + (size_t)t * d, mean ? mean + t : NULL, rstd ? rstd + t : NULL, inp + (size_t)t * d, g, b, d, eps);
}

void layernorm_forward_team(float *out, const float *inp, const float *g, const float *b, int n, int d, float eps) {
#pragma omp for schedule(static) nowait
    for (int t = 0; t < n; t++) ln_row(out + (size_t)t * d, NULL, NULL, inp + (size_t)t * d, g, b, d, eps);
}

ADP_HOT static void add_row(float *s, const float *y, const float *res, int d) {
#pragma omp simd
    for (int i = 0; i < d; i++) s[i] = y[i] + res[i];
}

/* The row loop as an orphaned worksharing loop (see residual_layernorm_forward_team); with
 * `sync` it ends at a barrier (bar, or OpenMP's when NULL), without it the caller's region
 * end is the barrier. */
static void residual_layernorm_for(float *out, float *pre, float *mean, float *rstd, const float *y, const float *res,
                                   const float *g, const float *b, int n, int d, float eps, int sync,
                                   adp_barrier *bar) {
#pragma omp for schedule(static) nowait
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * d;
        /* the sum goes to `pre` when kept for backward, else into out itself */
        float *s = pre ? pre + o : out + o;
        add_row(s, y + o, res + o, d);
        ln_row(out + o, mean ? mean + t : NULL, rstd ? rstd + t : NULL, s, g, b, d, eps);
    }
    if (sync) adp_team_sync(bar);
}

void residual_layernorm_forward(float *out, float *pre, float *mean, float *rstd, const float *y, const float *res,
                                const float *g, const float *b, int n, int d, float eps) {
#pragma omp parallel if ((size_t)n * d > 32768)
    residual_layernorm_for(out, pre, mean, rstd, y, res, g, b, n, d, eps, 0, NULL);
}

void residual_layernorm_forward_team(float *out, const float *y, const float *res, const float *g, const float *b,
                                     int n, int d, float eps, int sync, adp_barrier *bar) {
    residual_layernorm_for(out, NULL, NULL, NULL, y, res, g, b, n, d, eps, sync, bar);
}

void residual_layernorm_forward_serial(float *out, const float *y, const float *res, const float *g, const float *b,
                                       int n, int d, float eps) {
    for (int t = 0; t < n; t++) { /* as residual_layernorm_for's rows, out holding the sum */
        size_t o = (size_t)t * d;
        add_row(out + o, y + o, res + o, d);
        ln_row(out + o, NULL, NULL, out + o, g, b, d, eps);
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

/* ---- backward ---- */

#include <stdlib.h>

#include "common.h"

#define LN_BLOCK 64 /* rows per partial sum of dg, db: fixed, so the sum order never changes */

/* One row: dinp += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dout g;
 * dg += dout xhat and db += dout into the block's partial sums (if not NULL). */
ADP_HOT static void ln_back_row(float *dinp, float *dg, float *db, const float *dout, const float *x, float mean,
                                float rstd, const float *g, int d) {
    float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
    for (int i = 0; i < d; i++) {
        float xhat = (x[i] - mean) * rstd, dxh = dout[i] * g[i];
        s1 += dxh;
        s2 += dxh * xhat;
    }
    if (dg) {
#pragma omp simd
        for (int i = 0; i < d; i++) {
            dg[i] += dout[i] * ((x[i] - mean) * rstd);
            db[i] += dout[i];
        }
    }
    float m1 = s1 / (float)d, m2 = s2 / (float)d;
#pragma omp simd
    for (int i = 0; i < d; i++) {
        float xhat = (x[i] - mean) * rstd;
        dinp[i] += rstd * (dout[i] * g[i] - m1 - xhat * m2);
    }
}

void layernorm_backward(float *dinp, float *dg, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *g, int n, int d) {
    if (n <= 0) return;
    const int blocks = (n + LN_BLOCK - 1) / LN_BLOCK;
    const int want = dg != NULL || db != NULL;
    float *part = want ? callocCheck((size_t)blocks * 2 * (size_t)d, sizeof(float)) : NULL;
#pragma omp parallel for schedule(static) if (n > 16)
    for (int k = 0; k < blocks; k++) {
        float *pg = want ? part + (size_t)k * 2 * d : NULL, *pb = want ? pg + d : NULL;
        int t1 = n < (k + 1) * LN_BLOCK ? n : (k + 1) * LN_BLOCK;
        for (int t = k * LN_BLOCK; t < t1; t++)
            ln_back_row(dinp + (size_t)t * d, pg, pb, dout + (size_t)t * d, inp + (size_t)t * d, mean[t], rstd[t],
                        g, d);
    }
    if (want) {
        for (int k = 0; k < blocks; k++) {
            const float *pg = part + (size_t)k * 2 * d, *pb = pg + d;
            if (dg)
                for (int i = 0; i < d; i++) dg[i] += pg[i];
            if (db)
                for (int i = 0; i < d; i++) db[i] += pb[i];
        }
        free(part);
    }
}

void layernorm_backward_naive(float *dinp, float *dg, float *db, const float *dout, const float *inp,
                              const float *g, int n, int d, float eps) {
    for (int t = 0; t < n; t++) {
        const float *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
        double m = 0, v = 0;
        for (int i = 0; i < d; i++) m += x[i];
        m /= d;
        for (int i = 0; i < d; i++) v += (x[i] - m) * (x[i] - m);
        v /= d;
        double rs = 1.0 / sqrt(v + eps), s1 = 0, s2 = 0;
        for (int i = 0; i < d; i++) {
            double xh = (x[i] - m) * rs;
            s1 += (double)dy[i] * g[i];
            s2 += (double)dy[i] * g[i] * xh;
            if (dg) dg[i] += (float)(dy[i] * xh);
            if (db) db[i] += dy[i];
        }
        for (int i = 0; i < d; i++) {
            double xh = (x[i] - m) * rs;
            dinp[(size_t)t * d + i] += (float)(rs * ((double)dy[i] * g[i] - s1 / d - xh * s2 / d));
        }
    }
}

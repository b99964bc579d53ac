/* elementwise.c: GELU, biases, tanh, embeddings: the cheap per-element passes. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "fastmath.h"
#include "ops.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* GELU with AVX-512: erf(|x| / sqrt 2) from a piecewise polynomial instead of fast_erff's
 * two fits, a division and an exponential.  [0, 4) is cut into 16 pieces of 1/4; on each,
 * erf(c + u) for |u| <= 1/8 around the piece's centre c is a degree-6 polynomial (least
 * squares on 200 Chebyshev nodes in float64, made for this project with numpy; max abs error
 * 5.8e-8 evaluated in float32 on [0, 6]); 1 beyond 4 (erf(4) = 1 - 1.5e-8).  The piece's
 * coefficients come from 16-entry registers by one permute each, so a vector of 16 values
 * costs 7 permutes and 6 FMAs for erf.  GELU_ERF[j][i]: coefficient of u^(6 - j) on piece i.
 * Measured (small shape, 8 x 128 tokens, 2 threads): see gelu_inplace. */
static const float GELU_ERF[7][16] = {
    {-2.248836122e-02f, -4.975650460e-02f, -4.113639519e-02f, -1.042486355e-02f, 1.534914970e-02f, 2.202830091e-02f,
     1.439652219e-02f, 4.149623681e-03f, -1.778267790e-03f, -3.095474793e-03f, -2.245698590e-03f, -1.144288108e-03f,
     -4.557882203e-04f, -1.481254731e-04f, -4.015897503e-05f, -9.204060916e-06f},
    {1.035279930e-01f, 4.532615095e-02f, -2.703504823e-02f, -6.670918316e-02f, -6.106119603e-02f, -3.064391576e-02f,
     -2.303251997e-03f, 1.132802200e-02f, 1.244421210e-02f, 8.360578679e-03f, 4.236414097e-03f, 1.727707335e-03f,
     5.842620158e-04f, 1.665797754e-04f, 4.045957030e-05f, 8.430406524e-06f},
    {6.870539486e-02f, 1.665799767e-01f, 1.764578223e-01f, 1.123971194e-01f, 2.797512710e-02f, -3.049931303e-02f,
     -4.971868545e-02f, -4.226031527e-02f, -2.636124939e-02f, -1.313339546e-02f, -5.414305255e-03f, -1.881718985e-03f,
     -5.575400428e-04f, -1.418712491e-04f, -3.116243170e-05f, -5.930731731e-06f},
    {-3.587182760e-01f, -2.348750234e-01f, -5.567479134e-02f, 9.291964769e-02f, 1.624502838e-01f, 1.579380035e-01f,
     1.148419306e-01f, 6.744214147e-02f, 3.303780779e-02f, 1.373050921e-02f, 4.890281707e-03f, 1.502423198e-03f,
     3.999627079e-04f, 9.256100020e-05f, 1.866695493e-05f, 3.286753554e-06f},
    {-1.388606578e-01f, -3.676322997e-01f, -4.771872163e-01f, -4.591519237e-01f, -3.580582142e-01f, -2.342446893e-01f,
     -1.307674199e-01f, -6.289842725e-02f, -2.622424252e-02f, -9.515384212e-03f, -3.013172187e-03f, -8.344064699e-04f,
     -2.023709967e-04f, -4.303717651e-05f, -8.032729966e-06f, -1.316817247e-06f},
    {1.110885262e+00f, 9.803528190e-01f, 7.634995580e-01f, 5.247450471e-01f, 3.182739615e-01f, 1.703597754e-01f,
     8.047225326e-02f, 3.354582563e-02f, 1.234081946e-02f, 4.006478004e-03f, 1.147875446e-03f, 2.902284905e-04f,
     6.475879491e-05f, 1.275178329e-05f, 2.215933591e-06f, 3.398257888e-07f},
    {1.403162032e-01f, 4.041168988e-01f, 6.232408881e-01f, 7.840750813e-01f, 8.883882165e-01f, 9.481700659e-01f,
     9.784437418e-01f, 9.919900298e-01f, 9.973459840e-01f, 9.992170334e-01f, 9.997946024e-01f, 9.999521375e-01f,
     9.999901056e-01f, 9.999982119e-01f, 9.999997020e-01f, 9.999999404e-01f},
};

__attribute__((target("avx512f"))) static void gelu_avx512(float *x, size_t n) {
    __m512 c[7];
    for (int j = 0; j < 7; j++) c[j] = _mm512_loadu_ps(GELU_ERF[j]);
    const __m512 rsqrt2 = _mm512_set1_ps(0.70710678118654752f), half = _mm512_set1_ps(0.5f);
    const __m512 top = _mm512_set1_ps(3.99999976f), four = _mm512_set1_ps(4.0f), one = _mm512_set1_ps(1.0f);
    const __m512 quarter = _mm512_set1_ps(0.25f), eighth = _mm512_set1_ps(0.125f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 a = _mm512_abs_ps(_mm512_mul_ps(v, rsqrt2));
        const __m512 ac = _mm512_min_ps(a, top); /* NaN -> top: the NaN comes back through hv */
        const __m512i k = _mm512_cvttps_epi32(_mm512_mul_ps(ac, four));
        const __m512 u = _mm512_sub_ps(ac, _mm512_fmadd_ps(_mm512_cvtepi32_ps(k), quarter, eighth));
        __m512 r = _mm512_permutexvar_ps(k, c[0]);
        for (int j = 1; j < 7; j++) r = _mm512_fmadd_ps(r, u, _mm512_permutexvar_ps(k, c[j]));
        r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, four, _CMP_GE_OQ), _mm512_abs_ps(r), one);
        r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(v), sign)));
        const __m512 hv = _mm512_mul_ps(v, half);
        _mm512_mask_storeu_ps(x + i, m, _mm512_fmadd_ps(hv, r, hv)); /* x/2 (1 + erf(x / sqrt 2)) */
    }
}
#endif

ADP_HOT static void gelu_portable(float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + fast_erff(v * 0.70710678118654752f));
    }
}

/* Every thread must take the same path (results would otherwise depend on which thread
 * ran a tile), so the answer is computed whole and then published once. */
int gelu_uses_avx512(void) {
    static _Atomic int state = -1;
    int v = atomic_load_explicit(&state, memory_order_relaxed);
    if (v < 0) {
        v = 0;
#if defined(__x86_64__)
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") != 0;
#endif
        atomic_store_explicit(&state, v, memory_order_relaxed);
    }
    return v;
}

void gelu_inplace(float *x, size_t n) {
#if defined(__x86_64__)
    if (gelu_uses_avx512()) {
        gelu_avx512(x, n);
        return;
    }
#endif
    gelu_portable(x, n);
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

static void embedding_row(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                          const float *word, const float *pos, const float *type, int t, int d) {
    const float *w = word + (size_t)ids[t] * d, *p = pos + (size_t)pos_ids[t] * d;
    const float *ty = type + (size_t)(types ? types[t] : 0) * d;
    float *o = out + (size_t)t * d;
    for (int i = 0; i < d; i++) o[i] = (w[i] + ty[i]) + p[i]; /* HF order: word + type, then + position */
}

void embedding_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                       const float *word, const float *pos, const float *type, int n, int d) {
    for (int t = 0; t < n && t < EMB_AHEAD; t++) prefetch_rows(word, pos, ids, pos_ids, t, d);
#pragma omp parallel for schedule(static) if ((size_t)n * d > 32768)
    for (int t = 0; t < n; t++) {
        if (t + EMB_AHEAD < n) prefetch_rows(word, pos, ids, pos_ids, t + EMB_AHEAD, d);
        embedding_row(out, ids, pos_ids, types, word, pos, type, t, d);
    }
}

void embedding_forward_team(float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *types,
                            const float *word, const float *pos, const float *type, int n, int d) {
#pragma omp for schedule(static) nowait
    for (int t = 0; t < n; t++) {
        if (t + EMB_AHEAD < n) prefetch_rows(word, pos, ids, pos_ids, t + EMB_AHEAD, d);
        embedding_row(out, ids, pos_ids, types, word, pos, type, t, d);
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

/* fastmath.h: vectorisable exp and erf in fp32, accurate to a few ulp, for the hot
 * element-wise kernels (softmax, GELU).  glibc's expf/erff are exact to < 1 ulp but are
 * scalar calls the compiler cannot vectorise without -ffast-math, and at 8 x 512 tokens the
 * FFN applies GELU to 4M values per layer.  Tests compare these against expf/erff.
 *
 * fast_expf: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, then the degree-7
 *   Taylor polynomial for e^r (truncation error < 1e-8 relative), scaled by 2^n through the
 *   exponent bits.  Inputs are clamped to [-87.3, 88.3] (the normal range).
 * fast_erff: two least-squares polynomial fits (made for this project with numpy, in
 *   float64 on dense grids, then checked in float32): for |x| < 1, erf(x) = x P(x^2) with P
 *   of degree 6 (relative error 5e-9); for 1 <= |x|, erf(x) = 1 - exp(-x^2) R(1/|x|) with
 *   R of degree 9 fitting erfc(x) exp(x^2) on [1, 4] (relative error 4e-8), and 1 beyond 4.
 *   Measured in float32 against math.erf on [-6, 6]: max abs error 1.5e-7 (about 1 ulp at 1).
 *   Both branches are computed and blended, so loops over it vectorise.
 * fast_tanhf: for |x| < 0.5 the Taylor series of tanh to x^17 (truncation < 5e-9), else
 *   1 - 2 / (1 + e^(2|x|)) with fast_expf (no cancellation to speak of: tanh(0.5) = 0.46);
 *   sign restored; 1 beyond |x| = 9.  The pooler applies it to every [CLS] row: glibc's
 *   tanhf, about 15 ns a value here, cost 4 us a sequence, as much as a pruned layer's
 *   predictor.
 * Every step a + b c is fmaf(b, c, a): one rounding instead of two, and in the AVX2/AVX-512
 * clones of the hot kernels (ADP_HOT) one instruction instead of two (GELU 0.92 -> 0.62 ns
 * an element here); elsewhere glibc's fmaf picks the FMA instruction when the CPU has it. */
#ifndef ADP_FASTMATH_H
#define ADP_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float fast_expf(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    if (x < -87.3f) x = -87.3f;
    if (x > 88.3f) x = 88.3f;
    /* round to nearest without a libm call: adding 1.5 * 2^23 forces rounding */
    float t = fmaf(x, log2e, 12582912.0f);
    float n = t - 12582912.0f;
    float r = fmaf(-n, ln2_hi, x);
    r = fmaf(-n, ln2_lo, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}


static inline float fast_erff(float x) {
    float ax = x < 0 ? -x : x;
    float z = ax * ax;
    float p = 8.006842262e-05f;
    p = fmaf(p, z, -8.053741175e-04f);
    p = fmaf(p, z, 5.192956679e-03f);
    p = fmaf(p, z, -2.685606889e-02f);
    p = fmaf(p, z, 1.128363462e-01f);
    p = fmaf(p, z, -3.761262976e-01f);
    p = fmaf(p, z, 1.128379166e+00f);
    float small = ax * p;
    float t = 1.0f / (ax > 1.0f ? ax : 1.0f);
    float q = 2.999423991e-02f;
    q = fmaf(q, t, -1.750636688e-01f);
    q = fmaf(q, t, 4.254124175e-01f);
    q = fmaf(q, t, -5.170658007e-01f);
    q = fmaf(q, t, 2.192375149e-01f);
    q = fmaf(q, t, 2.421846038e-01f);
    q = fmaf(q, t, -3.805414631e-01f);
    q = fmaf(q, t, 2.168639538e-02f);
    q = fmaf(q, t, 5.616088448e-01f);
    q = fmaf(q, t, 1.305089367e-04f);
    float large = 1.0f - fast_expf(-(z < 16.0f ? z : 16.0f)) * q;
    float r = ax < 1.0f ? small : ax < 4.0f ? large : 1.0f;
    if (r > 1.0f) r = 1.0f;
    return x < 0 ? -r : r;
}

static inline float fast_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float z = ax * ax;
    float p = 6404582.0f / 10854718875.0f;
    p = fmaf(p, z, -929569.0f / 638512875.0f);
    p = fmaf(p, z, 21844.0f / 6081075.0f);
    p = fmaf(p, z, -1382.0f / 155925.0f);
    p = fmaf(p, z, 62.0f / 2835.0f);
    p = fmaf(p, z, -17.0f / 315.0f);
    p = fmaf(p, z, 2.0f / 15.0f);
    p = fmaf(p, z, -1.0f / 3.0f);
    float small = fmaf(ax * z, p, ax);
    float large = 1.0f - 2.0f / (1.0f + fast_expf(2.0f * (ax < 9.0f ? ax : 9.0f)));
    float r = ax < 0.5f ? small : ax < 9.0f ? large : 1.0f;
    return x < 0 ? -r : r;
}

#endif

/* gemm.c: packed-panel GEMM for the projections (see gemm.h for why).
 *
 * Panel layout: for panel p (output columns [64p, 64p + 64)), element (k, j) is
 * W[64p + j][k] at packed[(p * in + k) * 64 + j]; columns past `out` are zero.  The
 * micro-kernel computes a 6-row x 64-column block of Y: 24 AVX-512 accumulators, and for
 * every k one 256-byte contiguous panel row (4 loads), 6 broadcasts of X and 24 FMAs (a
 * panel of at most 32 live columns: 2 loads and 12 FMAs); blocks of 7 to 12 rows take 32
 * columns at a time, also 24 accumulators (gemm_tile_wide).  The
 * accumulators start from the bias, so the bias costs nothing.  A block of fewer rows runs
 * a kernel for exactly that many rows (gemm_tile sizes the blocks); columns past `out` are
 * masked.
 *
 * The first block of rows of a (tile, panel) pair reads the panel from L3 or memory, the
 * others from L2.  That first pass asks for the panel GEMM_PREFETCH_BYTES (8 KB) ahead of
 * use: the hardware prefetcher stops at every 4 KB page, and a layer with few rows is one
 * such pass per panel, bound by the stream (a layer of the small shape on 1 to 8 tokens at
 * batch 1 took 6-12% less time; past about 16 rows no change within this host's noise).
 * Where a thread sums part of a panel's k range (layer_pair's split projections) or skips
 * panels (its heads' Q, K and V), the rows past a panel's end are not the ones it reads
 * next: 8 KB of every panel's stream were fetched for nothing and the next one's start
 * not at all.  Kernels of at most 6 rows prefetch from where the thread goes next
 * (stream_next): a layer of the small shape on 3 tokens, 2 threads, 3-4% less time in
 * f16, f32 and bf16 (alternating runs of `adapler bench --seq 3`), int8 the same.
 *
 * Half panels (gemm.h, `--weights f16`) have the same layout with 2-byte elements: a panel
 * row is 128 bytes, converted to four fp32 vectors as it is loaded.  Bfloat16 panels
 * (`--weights bf16`) have 2-byte elements too, each 32-column group of a row stored as
 * column pairs (i and 16 + i in one 32-bit word: gemm_pack_bf16), so that a shift and an
 * AND make two fp32 vectors of one 64-byte line.  Int8 panels (`--weights i8`) have
 * 1-byte elements, a row being one 64-byte line, each vector sign-extended, converted and
 * multiplied by its columns' scales as it is loaded. */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "common.h"
#include "ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

int gemm_packed_enabled(void) {
    static int state = -1;
    if (state < 0) {
        const char *env = getenv("ADAPLER_GEMM");
        int avx512 = 0;
#if HAVE_X86
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f");
#endif
        state = avx512 && !(env && strcmp(env, "blas") == 0);
    }
    return state;
}

size_t gemm_packed_size(int out, int in) {
    return (size_t)((out + GEMM_PANEL - 1) / GEMM_PANEL) * (size_t)in * GEMM_PANEL;
}

void gemm_pack(float *dst, const float *w, int out, int in) {
    int panels = (out + GEMM_PANEL - 1) / GEMM_PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < in; k++) {
            float *row = dst + ((size_t)p * in + k) * GEMM_PANEL;
            for (int j = 0; j < GEMM_PANEL; j++) {
                int o = p * GEMM_PANEL + j;
                row[j] = o < out ? w[(size_t)o * in + k] : 0.0f;
            }
        }
}

/* Half-precision conversions (_Float16, a GCC/Clang extension; with F16C on x86, which
 * every AVX-512 CPU has, each is one instruction). */
#if HAVE_X86
#define F16_TARGET __attribute__((target("f16c")))
#else
#define F16_TARGET
#endif

F16_TARGET size_t gemm_round_f16(float *w, size_t n) {
    size_t overflow = 0;
    for (size_t i = 0; i < n; i++) {
        float r = (float)(_Float16)w[i];
        overflow += isinf(r) && !isinf(w[i]);
        w[i] = r;
    }
    return overflow;
}

F16_TARGET void gemm_pack16(uint16_t *dst, const float *w, int out, int in) {
    int panels = (out + GEMM_PANEL - 1) / GEMM_PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < in; k++) {
            uint16_t *row = dst + ((size_t)p * in + k) * GEMM_PANEL;
            for (int j = 0; j < GEMM_PANEL; j++) {
                int o = p * GEMM_PANEL + j;
                _Float16 h = (_Float16)(o < out ? w[(size_t)o * in + k] : 0.0f);
                memcpy(&row[j], &h, sizeof h);
            }
        }
}

size_t gemm_round_bf16(float *w, size_t n) {
    size_t overflow = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &w[i], sizeof u);
        if (isnan(w[i])) continue;
        u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u; /* to nearest, ties to even */
        float r;
        memcpy(&r, &u, sizeof r);
        overflow += isinf(r) && !isinf(w[i]);
        w[i] = r;
    }
    return overflow;
}

void gemm_pack_bf16(uint16_t *dst, const float *w, int out, int in) {
    int panels = (out + GEMM_PANEL - 1) / GEMM_PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < in; k++) {
            uint16_t *row = dst + ((size_t)p * in + k) * GEMM_PANEL;
            for (int j = 0; j < GEMM_PANEL; j++) {
                int o = p * GEMM_PANEL + j, c = j % 32;
                float f = o < out ? w[(size_t)o * in + k] : 0.0f;
                uint32_t u;
                memcpy(&u, &f, sizeof u);
                /* column c of its group: the low half of word c, or the high half of word c - 16 */
                row[j - c + (c < 16 ? 2 * c : 2 * (c - 16) + 1)] = (uint16_t)(u >> 16);
            }
        }
}

/* Symmetric int8 per output row: s = max |w| / 127, q = round(w / s), and w becomes the
 * float product q * s, which is what the kernel forms from q and s (one IEEE multiply). */
size_t gemm_quant_i8(float *scale, float *w, int out, int in) {
    size_t bad = 0;
    for (int o = 0; o < out; o++) {
        float *row = w + (size_t)o * in, amax = 0.0f;
        for (int k = 0; k < in; k++) {
            if (!isfinite(row[k])) bad++;
            else amax = fmaxf(amax, fabsf(row[k]));
        }
        /* a row that small is zero to every sum it enters; a subnormal scale would make
         * q * s inexact, and q no longer recoverable from it */
        float s = amax >= 1e-30f ? amax / 127.0f : 0.0f;
        scale[o] = s;
        for (int k = 0; k < in; k++) {
            if (!isfinite(row[k])) continue;
            float q = s > 0.0f ? fminf(127.0f, fmaxf(-127.0f, rintf(row[k] / s))) : 0.0f;
            row[k] = q * s;
        }
    }
    return bad;
}

void gemm_pack8(int8_t *dst, float *dst_scale, const float *w, const float *scale, int out, int in) {
    int panels = (out + GEMM_PANEL - 1) / GEMM_PANEL;
    for (int o = 0; o < panels * GEMM_PANEL; o++) dst_scale[o] = o < out ? scale[o] : 0.0f;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < in; k++) {
            int8_t *row = dst + ((size_t)p * in + k) * GEMM_PANEL;
            for (int j = 0; j < GEMM_PANEL; j++) {
                int o = p * GEMM_PANEL + j;
                /* w = q * s exactly as rounded, so w / s is q within far less than 1/2 */
                float v = o < out && scale[o] > 0.0f ? w[(size_t)o * in + k] / scale[o] : 0.0f;
                row[j] = (int8_t)(isfinite(v) ? lrintf(fminf(127.0f, fmaxf(-127.0f, v))) : 0);
            }
        }
}

#if HAVE_X86
#define GEMM_PREFETCH_BYTES 8192
#define WIDE_ROWS 12 /* rows of the 32-column kernels */

/* Y[0..R) x [o0, o0 + width) of one panel, R <= 6 (or up to 12 with V == 2) a
 * compile-time constant in each instance below, so a block of 1 or 2 rows (what pruning
 * often leaves) does 1 or 2 rows of work, not 6.  V (4, or 2 when width <= 32: AdapLeR's
 * 32-wide predictor, or a half panel of gemm_tile_wide, panel and bias and qs then
 * pointing at its first column) is how many 16-column vectors of the panel row are used:
 * the zero padding past 32 columns is then neither loaded nor multiplied.  Either way
 * each output element is the same chain of FMAs.  x[r] point at the input rows.  bias may
 * be NULL.  stream: the first pass over this panel, which prefetches 8 KB ahead; past the
 * end of its `in` rows, kernels of at most 6 rows and 64 columns (the few-token layers,
 * bound by the stream) prefetch from next (stream_next: where this thread streams next;
 * NULL: nowhere new, the rows already read), the others straight on (the next panel when the whole k range is
 * summed; their blocks are bound by the FMAs, and the two registers the jump takes cost
 * 12-row blocks 3% at 29 tokens).  Prefetches never fault.  FMT_F16 / FMT_I8: the panel
 * holds halves (a row is 128 bytes) or int8 with column scales qs (64 bytes), converted as
 * loaded; conv, if not NULL, receives the converted panel (in x 64 floats) for the tile's
 * later blocks.  add: Y += the block's sums (the second k range of a split product). */
__attribute__((target("avx512f"), always_inline)) static inline void
kernel_rx64(float *y, int ldy, const float *const x[12], const void *panel, const float *bias, int in, int width,
            int stream, const void *next, float *conv, const float *qs, int add, const int R, const int V,
            const int FMT) {
    /* a panel row's bytes; from row k_jump on, the prefetch 8 KB ahead is past the end */
    const size_t row_bytes = (size_t)GEMM_PANEL * (FMT == FMT_F32 ? 4 : FMT == FMT_I8 ? 1 : 2);
    const int k_jump = in - (int)(GEMM_PREFETCH_BYTES / row_bytes);
    /* next NULL: back onto this panel's own rows, already read (a prefetch of cached lines) */
    const ptrdiff_t jump = next ? (const char *)next - ((const char *)panel + (size_t)in * row_bytes)
                                : -(ptrdiff_t)((size_t)in * row_bytes);
    __mmask16 m[4];
    for (int b = 0; b < 4; b++) {
        int rem = width - 16 * b;
        m[b] = rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1);
    }
    __m512 z0 = bias ? _mm512_maskz_loadu_ps(m[0], bias) : _mm512_setzero_ps();
    __m512 z1 = bias ? _mm512_maskz_loadu_ps(m[1], bias + 16) : _mm512_setzero_ps();
    __m512 z2 = bias ? _mm512_maskz_loadu_ps(m[2], bias + 32) : _mm512_setzero_ps();
    __m512 z3 = bias ? _mm512_maskz_loadu_ps(m[3], bias + 48) : _mm512_setzero_ps();
    __m512 a00 = z0, a01 = z1, a02 = z2, a03 = z3, a10 = z0, a11 = z1, a12 = z2, a13 = z3;
    __m512 a20 = z0, a21 = z1, a22 = z2, a23 = z3, a30 = z0, a31 = z1, a32 = z2, a33 = z3;
    __m512 a40 = z0, a41 = z1, a42 = z2, a43 = z3, a50 = z0, a51 = z1, a52 = z2, a53 = z3;
    /* rows 6-11: only with V == 2 (24 accumulators, as 6 rows of 4 vectors) */
    __m512 a60 = z0, a61 = z1, a70 = z0, a71 = z1, a80 = z0, a81 = z1, a90 = z0, a91 = z1;
    __m512 a100 = z0, a101 = z1, a110 = z0, a111 = z1;
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5];
    const float *x6 = x[R > 6 ? 6 : 0], *x7 = x[R > 7 ? 7 : 0], *x8 = x[R > 8 ? 8 : 0];
    const float *x9 = x[R > 9 ? 9 : 0], *x10 = x[R > 10 ? 10 : 0], *x11 = x[R > 11 ? 11 : 0];
    __m512 s0 = z0, s1 = z0, s2 = z0, s3 = z0;
    if (FMT == FMT_I8) /* the panel's column scales */
        s0 = _mm512_load_ps(qs), s1 = _mm512_load_ps(qs + 16);
    if (FMT == FMT_I8 && V > 2) s2 = _mm512_load_ps(qs + 32), s3 = _mm512_load_ps(qs + 48);
    for (int k = 0; k < in; k++) {
        __m512 w0, w1, w2, w3, b;
        w2 = w3 = _mm512_setzero_ps();
#define AHEAD ((const char *)w + GEMM_PREFETCH_BYTES + (V > 2 && R <= 6 && k >= k_jump ? jump : 0))
        if (FMT == FMT_I8) { /* a panel row is one 64-byte line */
            const int8_t *w = (const int8_t *)panel + (size_t)k * GEMM_PANEL;
            if (stream) _mm_prefetch(AHEAD, _MM_HINT_T0);
            w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)w))), s0);
            w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 16)))), s1);
            if (V > 2) {
                const __m128i q2 = _mm_load_si128((const __m128i *)(w + 32));
                const __m128i q3 = _mm_load_si128((const __m128i *)(w + 48));
                w2 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q2)), s2);
                w3 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q3)), s3);
            }
        } else if (FMT == FMT_F16) {
            const uint16_t *w = (const uint16_t *)panel + (size_t)k * GEMM_PANEL;
            if (stream) {
                const char *ahead = AHEAD;
                _mm_prefetch(ahead, _MM_HINT_T0), _mm_prefetch(ahead + 64, _MM_HINT_T0);
            }
            w0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)w));
            w1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(w + 16)));
            if (V > 2) {
                w2 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(w + 32)));
                w3 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(w + 48)));
            }
        } else if (FMT == FMT_BF16) { /* column pairs (gemm_pack_bf16): a shift and an AND a line */
            const uint16_t *w = (const uint16_t *)panel + (size_t)k * GEMM_PANEL;
            if (stream) {
                const char *ahead = AHEAD;
                _mm_prefetch(ahead, _MM_HINT_T0), _mm_prefetch(ahead + 64, _MM_HINT_T0);
            }
            const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u), l0 = _mm512_load_si512((const void *)w);
            w0 = _mm512_castsi512_ps(_mm512_slli_epi32(l0, 16));
            w1 = _mm512_castsi512_ps(_mm512_and_si512(l0, high));
            if (V > 2) {
                const __m512i l1 = _mm512_load_si512((const void *)(w + 32));
                w2 = _mm512_castsi512_ps(_mm512_slli_epi32(l1, 16));
                w3 = _mm512_castsi512_ps(_mm512_and_si512(l1, high));
            }
        } else {
            const float *w = (const float *)panel + (size_t)k * GEMM_PANEL;
            if (stream) {
                const char *ahead = AHEAD;
                _mm_prefetch(ahead, _MM_HINT_T0);
                _mm_prefetch(ahead + 64, _MM_HINT_T0);
                if (V > 2) _mm_prefetch(ahead + 128, _MM_HINT_T0), _mm_prefetch(ahead + 192, _MM_HINT_T0);
            }
            w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16);
            w2 = V > 2 ? _mm512_load_ps(w + 32) : w0, w3 = V > 2 ? _mm512_load_ps(w + 48) : w0;
        }
        if (FMT != FMT_F32 && conv) { /* the converted row, for the tile's later blocks */
            float *c = conv + (size_t)k * GEMM_PANEL;
            _mm512_store_ps(c, w0), _mm512_store_ps(c + 16, w1);
            _mm512_store_ps(c + 32, w2), _mm512_store_ps(c + 48, w3);
        }
#undef AHEAD
#define ROW(i)                                                                                                 \
    if (R > i) {                                                                                               \
        b = _mm512_set1_ps(x##i[k]);                                                                           \
        a##i##0 = _mm512_fmadd_ps(b, w0, a##i##0);                                                             \
        a##i##1 = _mm512_fmadd_ps(b, w1, a##i##1);                                                             \
        if (V > 2) a##i##2 = _mm512_fmadd_ps(b, w2, a##i##2);                                                  \
        if (V > 2) a##i##3 = _mm512_fmadd_ps(b, w3, a##i##3);                                                  \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
#define ROW2(i)                                                                                                \
    if (R > i) {                                                                                               \
        b = _mm512_set1_ps(x##i[k]);                                                                           \
        a##i##0 = _mm512_fmadd_ps(b, w0, a##i##0);                                                             \
        a##i##1 = _mm512_fmadd_ps(b, w1, a##i##1);                                                             \
    }
        ROW2(6) ROW2(7) ROW2(8) ROW2(9) ROW2(10) ROW2(11)
#undef ROW2
    }
#define STORE(i)                                                                                               \
    if (R > i) {                                                                                               \
        float *yr = y + (size_t)i * ldy;                                                                       \
        if (add) {                                                                                             \
            a##i##0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[0], yr), a##i##0);                                 \
            a##i##1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[1], yr + 16), a##i##1);                           \
            a##i##2 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[2], yr + 32), a##i##2);                            \
            a##i##3 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[3], yr + 48), a##i##3);                            \
        }                                                                                                      \
        _mm512_mask_storeu_ps(yr, m[0], a##i##0);                                                              \
        _mm512_mask_storeu_ps(yr + 16, m[1], a##i##1);                                                         \
        _mm512_mask_storeu_ps(yr + 32, m[2], a##i##2);                                                         \
        _mm512_mask_storeu_ps(yr + 48, m[3], a##i##3);                                                         \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
#define STORE2(i)                                                                                              \
    if (R > i) {                                                                                               \
        float *yr = y + (size_t)i * ldy;                                                                       \
        if (add) {                                                                                             \
            a##i##0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[0], yr), a##i##0);                                 \
            a##i##1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m[1], yr + 16), a##i##1);                           \
        }                                                                                                      \
        _mm512_mask_storeu_ps(yr, m[0], a##i##0);                                                              \
        _mm512_mask_storeu_ps(yr + 16, m[1], a##i##1);                                                         \
    }
    STORE2(6) STORE2(7) STORE2(8) STORE2(9) STORE2(10) STORE2(11)
#undef STORE2
}

/* One kernel instance: R rows, NV vectors of 16 columns, panel format FMT. */
#define KERNEL_ONE(NAME, R, NV, FMT)                                                                          \
    __attribute__((target("avx512f"))) static void NAME(float *y, int ldy, const float *const x[12],          \
                                                        const void *panel, const float *bias, int in,          \
                                                        int width, int stream, const void *next, float *conv,  \
                                                        const float *qs, int add) {                            \
        kernel_rx64(y, ldy, x, panel, bias, in, width, stream, next, conv, qs, add, R, NV, FMT);              \
    }
/* Every format at R rows and NV vectors (64 columns: NV 4; 32: NV 2) */
#define KERNEL_FMTS(R, NV, W)                                                                                  \
    KERNEL_ONE(k##W##_f32_##R, R, NV, FMT_F32)                                                                 \
    KERNEL_ONE(k##W##_f16_##R, R, NV, FMT_F16)                                                                 \
    KERNEL_ONE(k##W##_i8_##R, R, NV, FMT_I8)                                                                   \
    KERNEL_ONE(k##W##_bf16_##R, R, NV, FMT_BF16)
/* 1-6 rows by 64 columns, in every format */
KERNEL_FMTS(1, 4, 64)
KERNEL_FMTS(2, 4, 64)
KERNEL_FMTS(3, 4, 64)
KERNEL_FMTS(4, 4, 64)
KERNEL_FMTS(5, 4, 64)
KERNEL_FMTS(6, 4, 64)
/* 1-5 rows by 32 columns, fp32 (AdapLeR's 32-wide predictor) */
KERNEL_ONE(k32_f32_1, 1, 2, FMT_F32)
KERNEL_ONE(k32_f32_2, 2, 2, FMT_F32)
KERNEL_ONE(k32_f32_3, 3, 2, FMT_F32)
KERNEL_ONE(k32_f32_4, 4, 2, FMT_F32)
KERNEL_ONE(k32_f32_5, 5, 2, FMT_F32)
/* 6-12 rows by 32 columns (half a panel a call, gemm_tile_wide; 6 rows also the predictor's) */
KERNEL_FMTS(6, 2, 32)
KERNEL_FMTS(7, 2, 32)
KERNEL_FMTS(8, 2, 32)
KERNEL_FMTS(9, 2, 32)
KERNEL_FMTS(10, 2, 32)
KERNEL_FMTS(11, 2, 32)
KERNEL_FMTS(12, 2, 32)
#undef KERNEL_FMTS
#undef KERNEL_ONE

typedef void (*kernel_fn)(float *, int, const float *const[12], const void *, const float *, int, int, int,
                          const void *, float *, const float *, int);
/* The kernels by format and rows: KERNELS64 for 64 columns, KERNELS32 for 32. */
#define ROWS64(F) {NULL, k64_##F##_1, k64_##F##_2, k64_##F##_3, k64_##F##_4, k64_##F##_5, k64_##F##_6}
static const kernel_fn KERNELS64[4][7] = {
    [FMT_F32] = ROWS64(f32), [FMT_F16] = ROWS64(f16), [FMT_I8] = ROWS64(i8), [FMT_BF16] = ROWS64(bf16)};
#undef ROWS64
#define ROWS32(F) [6] = k32_##F##_6, k32_##F##_7, k32_##F##_8, k32_##F##_9, k32_##F##_10, k32_##F##_11, k32_##F##_12
static const kernel_fn KERNELS32[4][13] = {
    [FMT_F32] = {NULL, k32_f32_1, k32_f32_2, k32_f32_3, k32_f32_4, k32_f32_5, ROWS32(f32)},
    [FMT_F16] = {ROWS32(f16)}, [FMT_I8] = {ROWS32(i8)}, [FMT_BF16] = {ROWS32(bf16)}};
#undef ROWS32

/* This thread's buffer for one converted int8 panel (in x 64 floats), grown on demand and
 * kept for the thread's life; NULL if it cannot grow (the tile then converts on every pass). */
static float *conv_scratch(int in) {
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    size_t need = (size_t)in * GEMM_PANEL;
    if (cap < need) {
        free(buf);
        buf = aligned_alloc(64, need * sizeof(float));
        cap = buf ? need : 0;
    }
    return buf;
}

/* The (tile, panel) loop as an orphaned worksharing loop: called by every thread of the
 * enclosing parallel region (or by one thread outside any); with `sync` it ends at a
 * barrier (bar, or OpenMP's when NULL), without it the caller's region end is the barrier.
 * Parallel over panels when there are enough of them and few rows (each thread streams its
 * panels once); otherwise over (tile, panel) pairs, tiles of at most 48 rows, which keeps
 * a tile's rows of X in cache while both threads stay busy.  The tiles are of equal size
 * (300 rows: 7 of 42-43, not 6 of 48 and one of 12): the static split gives each thread
 * the same number of pairs, so with a short last tile one thread had up to a quarter more
 * rows to do than the other and that one waited at the barrier.  Every output element is
 * computed the same way whatever the tiling, so results do not depend on the thread count. */
static int tile_rows_for(int n, int panels, int threads) {
    if (n <= 256 && panels >= 2 * threads) return n;
    const int tiles = (n + 47) / 48;
    return (n + tiles - 1) / tiles;
}

/* Panel p of lw from row k and column j on, in its format. */
static const void *panel_at(const linear_w *lw, int p, int k, int j) {
    const size_t at = ((size_t)p * lw->in + (size_t)k) * GEMM_PANEL + (size_t)j;
    return (const char *)lw->panels + at * (lw->fmt == FMT_F32 ? 4 : lw->fmt == FMT_I8 ? 1 : 2);
}

/* The k ranges a product sums for `part` (gemm.h: GEMM_K_ALL, GEMM_K_LOW, GEMM_K_HIGH), in
 * order: [k0, k1) from the bias, then [k1, k2) from zero when k2 > k1 (the kernel adding
 * the second sum to the first).  GEMM_K_HIGH has no bias. */
static void k_ranges(const linear_w *lw, int part, int *k0, int *k1, int *k2) {
    *k0 = 0, *k1 = *k2 = lw->in;
    if (part == GEMM_K_ALL && lw->k_split > 0) *k1 = lw->k_split;
    if (part == GEMM_K_LOW) *k1 = *k2 = lw->k_split;
    if (part == GEMM_K_HIGH) *k0 = lw->k_split;
}

/* Where the stream over segment seg of kr (k_ranges) of panel p, from column j, goes next,
 * for the kernel to prefetch past the segment's end: the rest of the panel's k range, then
 * panel pnext (the one this thread streams next, over the same k range; -1: none).  Past
 * the end of a part's range (GEMM_K_LOW, GEMM_K_HIGH) the next rows belong to the other
 * thread: the 8 KB fetched there were wasted bandwidth and the next panel's start was not
 * fetched at all. */
static const void *stream_next(const linear_w *lw, int p, int pnext, const int kr[3], int seg, int j) {
    if (seg == 0 && kr[2] > kr[1]) return panel_at(lw, p, kr[1], j);
    return pnext >= 0 ? panel_at(lw, pnext, kr[0], j) : NULL;
}

/* Rows [t0, t0 + n) of panel p, 7 <= n, in blocks of 6-12 rows of nearly equal size (13:
 * 7 + 6, 25: 9 + 8 + 8), each block over the panel's two 32-column halves in turn (KERNELS32:
 * 24 accumulators either way); the first block streams the panel.  Every block reads and
 * converts the panel's rows itself: against 6-row blocks of 64 columns, where the first
 * converted half and int8 panels into a buffer for the others, this converts half as
 * often per multiply and stores nothing.  Layers of the small shape at batch 1, f16, timed
 * inside bert_forward: 7-12 tokens took 7-30% less time (7 tokens: 6 + 1 rows had cost as
 * much as 9); BERT-base 8 x 128 f16 3-5% less, fp32 the same; int8, three instructions a
 * vector to convert, keeps its buffer past 12 rows (6-8% slower without it). */
static void gemm_tile_wide(float *out, const float *inp, const linear_w *lw, int t0, int n, int p, int pnext,
                           linear_act act, int part) {
    const int in = lw->in, od = lw->out, width = ADP_MIN(GEMM_PANEL, od - p * GEMM_PANEL);
    const int fmt = lw->fmt;
    const int nb = (n + WIDE_ROWS - 1) / WIDE_ROWS;
    const float *bias = lw->b && part != GEMM_K_HIGH ? lw->b + (size_t)p * GEMM_PANEL : NULL;
    const float *qs = lw->fmt == FMT_I8 ? lw->scale8 + (size_t)p * GEMM_PANEL : NULL;
    int kr[3];
    k_ranges(lw, part, &kr[0], &kr[1], &kr[2]);
    const float *x[12];
    for (int blk = 0, t = t0; blk < nb; blk++) {
        const int rows = n / nb + (blk < n % nb);
        const kernel_fn f = KERNELS32[fmt][rows];
        for (int j = 0; j < width; j += 32) {
            float *y = out + (size_t)t * od + (size_t)p * GEMM_PANEL + j;
            for (int seg = 0; seg < 2; seg++) {
                const int a = kr[seg], e = kr[seg + 1];
                if (e <= a) continue;
                for (int r = 0; r < 12; r++) x[r] = inp + (size_t)(t + (r < rows ? r : 0)) * in + a;
                f(y, od, x, panel_at(lw, p, a, j), seg || !bias ? NULL : bias + j, e - a, ADP_MIN(32, width - j),
                  blk == 0, stream_next(lw, p, pnext, kr, seg, j), NULL, qs ? qs + j : NULL, seg);
            }
        }
        if (act == ACT_GELU)
            for (int r = 0; r < rows; r++)
                gelu_inplace(out + (size_t)(t + r) * od + (size_t)p * GEMM_PANEL, (size_t)width);
        t += rows;
    }
}

/* Rows [t0, t_end) of panel p over the k of `part` (k_ranges).  With a split (lw->k_split)
 * and GEMM_K_ALL each block sums the lower k into Y from the bias, then the upper k from
 * zero, and adds the two: what GEMM_K_LOW and GEMM_K_HIGH give separately, so two threads
 * can each do one part and the sum of theirs is this one's, bit for bit.  Up to 6 rows:
 * one block of exactly that many rows; more: gemm_tile_wide, except int8 panels past 12
 * rows, which run blocks of at most 6 rows, the first streaming the panel and converting
 * it into the thread's buffer, the others reading that.  Every output element is the
 * same chain of FMAs whichever way its block ran. */
static void gemm_tile(float *out, const float *inp, const linear_w *lw, int t0, int t_end, int p, int pnext,
                      linear_act act, int part) {
    const int in = lw->in, od = lw->out, n = t_end - t0;
    if (n > 6 && (lw->fmt != FMT_I8 || n <= WIDE_ROWS)) {
        gemm_tile_wide(out, inp, lw, t0, n, p, pnext, act, part);
        return;
    }
    const float *bias = lw->b && part != GEMM_K_HIGH ? lw->b + (size_t)p * GEMM_PANEL : NULL;
    const float *qs = lw->fmt == FMT_I8 ? lw->scale8 + (size_t)p * GEMM_PANEL : NULL;
    const int width = ADP_MIN(GEMM_PANEL, od - p * GEMM_PANEL);
    const kernel_fn *kernels = lw->fmt == FMT_F32 && width <= 32 ? KERNELS32[FMT_F32] : KERNELS64[lw->fmt];
    float *conv = lw->fmt == FMT_I8 && n > 6 ? conv_scratch(in) : NULL;
    int kr[3];
    k_ranges(lw, part, &kr[0], &kr[1], &kr[2]);
    /* The first block has 6 rows (it streams the panel; fewer rows leave that stream less
     * arithmetic to hide behind), the rest is split into blocks of nearly equal size: 19
     * rows are 6, 5, 4, 4, not 6, 6, 6, 1.  A block of one row waits on its FMA chains (4
     * per k, each the previous one's input) and costs half a block of six; from 3 rows a
     * block is bound by the FMA units' throughput, a fixed time a row. */
    const int rest = n > 6 ? n - 6 : 0, blocks = (rest + 5) / 6;
    const int base = blocks ? rest / blocks : 0, extra = blocks ? rest % blocks : 0;
    for (int i = -1, t = t0; t < t_end; i++) {
        const int rows = i < 0 ? ADP_MIN(6, n) : base + (i < extra);
        const float *x[12];
        float *y = out + (size_t)t * od + (size_t)p * GEMM_PANEL;
        for (int seg = 0; seg < 2; seg++) {
            const int a = kr[seg], e = kr[seg + 1];
            if (e <= a) continue;
            for (int r = 0; r < 12; r++) x[r] = inp + (size_t)(t + (r < rows ? r : 0)) * in + a;
            const float *bs = seg ? NULL : bias;
            if (t == t0 || !conv)
                kernels[rows](y, od, x, panel_at(lw, p, a, 0), bs, e - a, width, t == t0,
                              stream_next(lw, p, pnext, kr, seg, 0), conv ? conv + (size_t)a * GEMM_PANEL : NULL, qs,
                              seg);
            else
                KERNELS64[FMT_F32][rows](y, od, x, conv + (size_t)a * GEMM_PANEL, bs, e - a, width, 0, NULL, NULL, NULL, seg);
        }
        if (act == ACT_GELU)
            for (int r = 0; r < rows; r++) gelu_inplace(y + (size_t)r * od, (size_t)width);
        t += rows;
    }
}

static void gemm_packed_for(float *out, const float *inp, const linear_w *lw, int n, linear_act act, int threads,
                            int sync, adp_barrier *bar) {
    const int panels = (lw->out + GEMM_PANEL - 1) / GEMM_PANEL;
    const int tile_rows = tile_rows_for(n, panels, threads);
    const int tiles = (n + tile_rows - 1) / tile_rows;
#pragma omp for schedule(static) collapse(2) nowait
    for (int tt = 0; tt < tiles; tt++)
        for (int p = 0; p < panels; p++)
            gemm_tile(out, inp, lw, tt * tile_rows, ADP_MIN(n, (tt + 1) * tile_rows), p, p + 1 < panels ? p + 1 : -1,
                      act, GEMM_K_ALL);
    if (sync) adp_team_sync(bar);
}

static void gemm_packed_run(float *out, const float *inp, const linear_w *lw, int n, linear_act act) {
    const int threads = omp_get_max_threads();
    /* one (tile, panel) pair (AdapLeR's 32-wide predictor on up to 48 rows) leaves every
     * thread but one idle, and a small product costs less than waking them: no region then */
    const int panels = (lw->out + GEMM_PANEL - 1) / GEMM_PANEL;
    const int tr = tile_rows_for(n, panels, threads), pairs = panels * ((n + tr - 1) / tr);
    if (pairs > 1 && ((size_t)n * lw->in * lw->out > 200000 || (size_t)lw->in * lw->out >= 65536)) {
#pragma omp parallel
        gemm_packed_for(out, inp, lw, n, act, threads, 0, NULL);
    } else { /* not `parallel if (0)`: even a team of one costs 0.4 us here */
        gemm_packed_for(out, inp, lw, n, act, 1, 0, NULL);
    }
}
#endif

static inline int has_panels(const linear_w *lw) { return lw->panels != NULL; }

int linear_team_ok(const linear_w *lw) {
#if HAVE_X86
    return has_panels(lw) && gemm_packed_enabled();
#else
    (void)lw;
    return 0;
#endif
}

void linear_forward_team(float *out, const float *inp, const linear_w *lw, int n, linear_act act, adp_barrier *bar) {
#if HAVE_X86
    if (n > 0) gemm_packed_for(out, inp, lw, n, act, omp_get_num_threads(), 1, bar);
#else
    (void)out, (void)inp, (void)lw, (void)n, (void)act, (void)bar;
#endif
}

static void linear_forward_blas(float *out, const float *inp, const linear_w *lw, int n, linear_act act) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, lw->out, lw->in, 1.0f, inp, lw->in, lw->w, lw->in, 0.0f,
                out, lw->out);
    if (lw->b || act != ACT_NONE) {
        const int od = lw->out;
        const float *b = lw->b;
#pragma omp parallel for schedule(static) if ((size_t)n * od > 65536)
        for (int t = 0; t < n; t++) {
            float *o = out + (size_t)t * od;
            if (b)
                for (int i = 0; i < od; i++) o[i] += b[i];
            if (act == ACT_GELU) gelu_inplace(o, (size_t)od);
        }
    }
}

void linear_forward(float *out, const float *inp, const linear_w *lw, int n, linear_act act) {
    if (n <= 0) return;
#if HAVE_X86
    if (has_panels(lw) && gemm_packed_enabled()) {
        gemm_packed_run(out, inp, lw, n, act);
        return;
    }
#endif
    linear_forward_blas(out, inp, lw, n, act);
}

void linear_forward_serial(float *out, const float *inp, const linear_w *lw, int n, linear_act act) {
    if (n <= 0) return;
#if HAVE_X86
    if (has_panels(lw) && gemm_packed_enabled()) {
        linear_forward_part(out, inp, lw, n, 0, (lw->out + GEMM_PANEL - 1) / GEMM_PANEL, act, GEMM_K_ALL);
        return;
    }
#endif
    linear_forward_blas(out, inp, lw, n, act); /* unpacked: the engine's team path never gets here */
}

void linear_forward_part(float *out, const float *inp, const linear_w *lw, int n, int p0, int p1, linear_act act,
                         int part) {
#if HAVE_X86
    for (int p = p0; p < p1; p++) gemm_tile(out, inp, lw, 0, n, p, p + 1 < p1 ? p + 1 : -1, act, part);
#else
    (void)out, (void)inp, (void)lw, (void)n, (void)p0, (void)p1, (void)act, (void)part;
#endif
}

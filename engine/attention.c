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
#include "gemm.h"
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

#if defined(__x86_64__)
#include <immintrin.h>
/* The same with AVX-512 and register blocking, for any length: the loops above keep a score
 * or context row in memory and load and store it for every term (about 15 GFLOP/s on one
 * core here), so at 25 tokens attention took a fifth of a pass for 2% of its FLOPs, and
 * above 48 tokens OpenBLAS's speed depended on the kernels OPENBLAS_CORETYPE picks.
 *   scores: keys in chunks of 48, each transposed once into Kt (dh, 48; zero past the
 *     chunk); a block of R <= 4 queries keeps its scores against the chunk (NV <= 3 vectors
 *     of 16) in registers over the dh terms.  With a single chunk (n <= 48) the softmax is
 *     done on those registers too; otherwise the scaled scores are stored and each row is
 *     normalised afterwards.
 *   context: a block of R <= 4 queries keeps 64 columns of its context rows in registers
 *     over the n keys.
 * Same sums as attend_small up to the order of the terms (scale multiplies each finished
 * dot product). */
#define KT_STRIDE 48

/* fast_expf (fastmath.h) on 16 lanes, operation for operation. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    static const float c[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    for (int k = 0; k < 7; k++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[k]));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

static inline __mmask16 mask_of(int rem) {
    return rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1);
}

/* R query rows (q[r]) against the kn <= 16 NV keys of Kt: S[r * lds + j] for j < kn gets
 * scale q.k + lm[j]; with `normalise` (the chunk is the whole row) the softmax of it. */
__attribute__((target("avx512f"), always_inline)) static inline void
score_block(float *S, int lds, const float *Kt, const float *const q[4], int kn, int dh, float scale, const float *lm,
            int normalise, const int R, const int NV) {
    __m512 a[4][3];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) a[r][v] = _mm512_setzero_ps();
    for (int e = 0; e < dh; e++) {
        __m512 k[3];
        for (int v = 0; v < NV; v++) k[v] = _mm512_load_ps(Kt + (size_t)e * KT_STRIDE + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(q[r][e]);
            for (int v = 0; v < NV; v++) a[r][v] = _mm512_fmadd_ps(b, k[v], a[r][v]);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    __mmask16 m[3];
    __m512 lmv[3];
    for (int v = 0; v < NV; v++) {
        m[v] = mask_of(kn - 16 * v);
        lmv[v] = lm ? _mm512_maskz_loadu_ps(m[v], lm + 16 * v) : _mm512_setzero_ps();
    }
    for (int r = 0; r < R; r++) {
        float *row = S + (size_t)r * lds;
        if (!normalise) {
            for (int v = 0; v < NV; v++)
                _mm512_mask_storeu_ps(row + 16 * v, m[v], _mm512_add_ps(_mm512_mul_ps(a[r][v], sc), lmv[v]));
            continue;
        }
        __m512 mx = ninf;
        for (int v = 0; v < NV; v++) {
            a[r][v] = _mm512_mask_blend_ps(m[v], ninf, _mm512_add_ps(_mm512_mul_ps(a[r][v], sc), lmv[v]));
            mx = _mm512_max_ps(mx, a[r][v]);
        }
        const __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int v = 0; v < NV; v++) {
            a[r][v] = _mm512_maskz_mov_ps(m[v], exp512(_mm512_sub_ps(a[r][v], mxv)));
            sum = _mm512_add_ps(sum, a[r][v]);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(row + 16 * v, m[v], _mm512_mul_ps(a[r][v], inv));
    }
}

/* Softmax of one stored row of n scores, in place. */
__attribute__((target("avx512f"))) static void softmax_row512(float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; j += 16)
        mx = _mm512_mask_max_ps(mx, mask_of(n - j), mx, _mm512_maskz_loadu_ps(mask_of(n - j), x + j));
    const __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = mask_of(n - j);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), mxv)));
        _mm512_mask_storeu_ps(x + j, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = mask_of(n - j);
        _mm512_mask_storeu_ps(x + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), inv));
    }
}

/* C rows [0, R) x columns [c0, c0 + 64) (masked past dh) = P rows (stride n) x V. */
__attribute__((target("avx512f"), always_inline)) static inline void
context_block(float *C, int ldc, const float *P, const float *V, int ld, int n, int c0, int dh, const int R) {
    __mmask16 m[4];
    for (int k = 0; k < 4; k++) m[k] = mask_of(dh - c0 - 16 * k);
    __m512 a[4][4];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 4; k++) a[r][k] = _mm512_setzero_ps();
    for (int j = 0; j < n; j++) {
        const float *v = V + (size_t)j * ld + c0;
        __m512 x[4];
        for (int k = 0; k < 4; k++) x[k] = _mm512_maskz_loadu_ps(m[k], v + 16 * k);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(P[(size_t)r * n + j]);
            for (int k = 0; k < 4; k++) a[r][k] = _mm512_fmadd_ps(b, x[k], a[r][k]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 4; k++) _mm512_mask_storeu_ps(C + (size_t)r * ldc + c0 + 16 * k, m[k], a[r][k]);
}

#define SCORE_CASE(R, NV)                                                                                      \
    case (R) * 4 + (NV):                                                                                       \
        score_block(S + (size_t)i0 * n + k0, n, Kt, q, kn, dh, scale, lmk, single, R, NV);                    \
        break;
#define CONTEXT_CASE(R)                                                                                        \
    case R:                                                                                                    \
        for (int c0 = 0; c0 < dh; c0 += 64) context_block(C + (size_t)i0 * ldc, ldc, P, V, ld, n, c0, dh, R);  \
        break;

/* dh <= ATTN_SMALL_DH; S (n, n) receives the probabilities. */
__attribute__((target("avx512f"))) static void attend_avx512(float *C, int ldc, float *S, const float *Q, const float *K,
                                                             const float *V, int ld, int n, int dh, float scale,
                                                             const float *lm) {
    float Kt[ATTN_SMALL_DH * KT_STRIDE] __attribute__((aligned(64)));
    const int single = n <= KT_STRIDE;
    for (int k0 = 0; k0 < n; k0 += KT_STRIDE) {
        const int kn = n - k0 < KT_STRIDE ? n - k0 : KT_STRIDE, nv = (kn + 15) / 16;
        if (kn % 16)
            for (int e = 0; e < dh; e++) _mm512_store_ps(Kt + (size_t)e * KT_STRIDE + 16 * (nv - 1), _mm512_setzero_ps());
        for (int j = 0; j < kn; j++)
            for (int e = 0; e < dh; e++) Kt[(size_t)e * KT_STRIDE + j] = K[(size_t)(k0 + j) * ld + e];
        const float *lmk = lm ? lm + k0 : NULL;
        for (int i0 = 0; i0 < n; i0 += 4) {
            const int R = n - i0 < 4 ? n - i0 : 4;
            const float *q[4];
            for (int r = 0; r < 4; r++) q[r] = Q + (size_t)(i0 + (r < R ? r : 0)) * ld;
            switch (R * 4 + nv) {
                SCORE_CASE(1, 1) SCORE_CASE(1, 2) SCORE_CASE(1, 3)
                SCORE_CASE(2, 1) SCORE_CASE(2, 2) SCORE_CASE(2, 3)
                SCORE_CASE(3, 1) SCORE_CASE(3, 2) SCORE_CASE(3, 3)
                SCORE_CASE(4, 1) SCORE_CASE(4, 2) SCORE_CASE(4, 3)
            }
        }
    }
    if (!single)
        for (int i = 0; i < n; i++) softmax_row512(S + (size_t)i * n, n);
    for (int i0 = 0; i0 < n; i0 += 4) {
        const int R = n - i0 < 4 ? n - i0 : 4;
        const float *P = S + (size_t)i0 * n;
        switch (R) { CONTEXT_CASE(1) CONTEXT_CASE(2) CONTEXT_CASE(3) CONTEXT_CASE(4) }
    }
}
#undef SCORE_CASE
#undef CONTEXT_CASE

/* Where the packed projections run (AVX-512, not ADAPLER_GEMM=blas), so does this. */
static int attn_avx512(void) { return gemm_packed_enabled(); }
#else
static int attn_avx512(void) { return 0; }
static void attend_avx512(float *C, int ldc, float *S, const float *Q, const float *K, const float *V, int ld, int n,
                          int dh, float scale, const float *lm) {
    (void)C, (void)ldc, (void)S, (void)Q, (void)K, (void)V, (void)ld, (void)n, (void)dh, (void)scale, (void)lm;
}
#endif

static void attend_one(float *ctx, float *S, const float *qkv, int r0, int n, int d, int dh, int h, float scale,
                       const float *key_logmask) {
    const int ld = 3 * d;
    const float *Q = qkv + (size_t)r0 * ld + (size_t)h * dh;
    const float *K = Q + d, *V = Q + 2 * d;
    const float *lm = key_logmask ? key_logmask + r0 : NULL;
    if (dh <= ATTN_SMALL_DH && attn_avx512()) {
        attend_avx512(ctx + (size_t)r0 * d + (size_t)h * dh, d, S, Q, K, V, ld, n, dh, scale, lm);
        return;
    }
    if (n <= ATTN_SMALL_N && dh <= ATTN_SMALL_DH) {
        attend_small(ctx + (size_t)r0 * d + (size_t)h * dh, d, S, Q, K, V, ld, n, dh, scale, lm);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, scale, Q, ld, K, ld, 0.0f, S, n);
    for (int i = 0; i < n; i++) softmax_row_masked(S + (size_t)i * n, lm, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, 1.0f, S, n, V, ld, 0.0f,
                ctx + (size_t)r0 * d + (size_t)h * dh, d);
}

/* The longest sequence of a packed batch. */
static int max_len_of(const int *off, int n_seq) {
    int m = 0;
    for (int s = 0; s < n_seq; s++) m = off[s + 1] - off[s] > m ? off[s + 1] - off[s] : m;
    return m;
}

/* Estimated cost of one (sequence, head) pair of n tokens: scores and weighted sum grow as
 * n^2, the softmax and the copies as n, and a call has its own overhead. */
static int64_t pair_cost(int n) { return (int64_t)n * n + 8 * (int64_t)n + 32; }

/* This thread's share [*lo, *hi) of the pairs: they split, in order, into num_threads
 * contiguous ranges of about equal estimated cost; thread k's range starts at the first pair
 * with cost total * k / nt before it, so neighbours agree on their common boundary. */
static void pair_share(const int *off, int n_seq, int n_heads, int id, int nt, int *lo, int *hi) {
    int64_t total = 0, acc = 0;
    for (int s = 0; s < n_seq; s++) total += pair_cost(off[s + 1] - off[s]) * n_heads;
    const int64_t from = total * id / nt, to = total * (id + 1) / nt;
    *lo = *hi = n_seq * n_heads;
    for (int p = 0; p < n_seq * n_heads; p++) {
        if (*lo == n_seq * n_heads && acc >= from) *lo = p;
        if (acc >= to) {
            *hi = p;
            break;
        }
        acc += pair_cost(off[p / n_heads + 1] - off[p / n_heads]);
    }
}

/* The (sequence, head) loop, split among the threads of the enclosing region (or run by
 * the one thread outside any) into contiguous ranges of about equal cost, since lengths
 * differ (a split fixed in advance: at batch 32 a pruned layer has a hundred pairs of a
 * few tokens each, too little work each for a shared counter); each thread uses its own
 * per_thread floats of scratch.  With `sync` it ends at a barrier (bar, or OpenMP's when
 * NULL); without, the caller's region end is the barrier. */
static void attention_for(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                          int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch,
                          size_t per_thread, int sync, adp_barrier *bar) {
    const int dh = d / n_heads;
    int lo, hi;
    pair_share(off, n_seq, n_heads, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (int p = lo; p < hi; p++) {
        int s = p / n_heads, h = p % n_heads;
        int r0 = off[s], n = off[s + 1] - off[s];
        if (n <= 0) continue;
        float *S = probs ? probs + prob_off[s] + (size_t)h * n * n : scratch + (size_t)omp_get_thread_num() * per_thread;
        attend_one(ctx, S, qkv, r0, n, d, dh, h, scale, key_logmask);
    }
    if (sync) adp_team_sync(bar);
}

void attention_forward(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                       int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch) {
    const int max_n = max_len_of(off, n_seq);
    const size_t per_thread = (size_t)max_n * max_n;
    const int pairs = n_seq * n_heads;
    /* Parallel over pairs, unless there is a single pair (BLAS then uses the threads) or
     * so little work (a few pruned tokens) that waking a second thread costs more than it
     * saves: a few microseconds spinning, tens with OMP_WAIT_POLICY=passive. */
    size_t work = 0;
    for (int s = 0; s < n_seq; s++) work += (size_t)(off[s + 1] - off[s]) * (size_t)(off[s + 1] - off[s]);
    work *= (size_t)d;
#pragma omp parallel if (pairs > 1 && work > 65536)
    attention_for(ctx, probs, prob_off, qkv, off, n_seq, d, n_heads, scale, key_logmask, scratch, per_thread, 0, NULL);
}

void attention_forward_team(float *ctx, float *probs, const size_t *prob_off, const float *qkv, const int *off,
                            int n_seq, int d, int n_heads, float scale, const float *key_logmask, float *scratch,
                            adp_barrier *bar) {
    const int max_n = max_len_of(off, n_seq);
    attention_for(ctx, probs, prob_off, qkv, off, n_seq, d, n_heads, scale, key_logmask, scratch,
                  (size_t)max_n * max_n, 1, bar);
}

void attention_forward_serial(float *ctx, const float *qkv, const int *off, int n_seq, int d, int n_heads, int h0,
                              int h1, float scale, float *scratch) {
    const int max_n = max_len_of(off, n_seq);
    float *S = scratch + (size_t)omp_get_thread_num() * (size_t)max_n * max_n;
    for (int s = 0; s < n_seq; s++) {
        const int n = off[s + 1] - off[s];
        for (int h = h0; h < h1 && n > 0; h++) attend_one(ctx, S, qkv, off[s], n, d, d / n_heads, h, scale, NULL);
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

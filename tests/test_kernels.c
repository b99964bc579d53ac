/* test_kernels.c: each hot kernel against its plain twin, and the fast exp/erf against libm. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fastmath.h"
#include "gemm.h"
#include "ops.h"
#include "prune.h"
#include "test.h"

TEST(kernel_fast_exp_and_erf_match_libm) {
    double max_rel_exp = 0, max_abs_erf = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double want = exp((double)x);
        double rel = fabs(fast_expf(x) - want) / want;
        if (rel > max_rel_exp) max_rel_exp = rel;
        float y = -7.0f + 14.0f * (float)i / 2000000.0f;
        double e = fabs((double)fast_erff(y) - erf((double)y));
        if (e > max_abs_erf) max_abs_erf = e;
    }
    if (test_verbose()) fprintf(stderr, "    exp max rel err %.3g, erf max abs err %.3g\n", max_rel_exp, max_abs_erf);
    CHECK_MSG(max_rel_exp < 4e-7, "fast_expf relative error %g", max_rel_exp);
    CHECK_MSG(max_abs_erf < 3e-7, "fast_erff absolute error %g", max_abs_erf);
    CHECK(fast_expf(-1000.0f) < 1e-37f);
    CHECK(fast_erff(0.0f) == 0.0f);
    CHECK(fast_erff(10.0f) == 1.0f && fast_erff(-10.0f) == -1.0f);
}

TEST(kernel_fast_tanh_matches_libm) {
    double max_abs = 0, max_rel = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -12.0f + 24.0f * (float)i / 2000000.0f;
        double want = tanh((double)x), got = fast_tanhf(x);
        if (fabs(got - want) > max_abs) max_abs = fabs(got - want);
        if (want != 0 && fabs(got - want) / fabs(want) > max_rel) max_rel = fabs(got - want) / fabs(want);
    }
    if (test_verbose()) fprintf(stderr, "    tanh max abs err %.3g, max rel err %.3g\n", max_abs, max_rel);
    CHECK_MSG(max_abs < 2e-7, "fast_tanhf absolute error %g", max_abs);
    CHECK_MSG(max_rel < 4e-7, "fast_tanhf relative error %g", max_rel);
    CHECK(fast_tanhf(0.0f) == 0.0f && fast_tanhf(1e-20f) == 1e-20f && fast_tanhf(-1e-20f) == -1e-20f);
    CHECK(fast_tanhf(20.0f) == 1.0f && fast_tanhf(-20.0f) == -1.0f);
}

/* gelu_inplace on a dense grid of [-10, 10] (every length mod 16 for the masked tail),
 * against x/2 (1 + erf(x / sqrt 2)) in float64: within 0.5 |x| 8e-8 (erf's error) plus 1.5
 * ulp of the result, whichever path this CPU takes; zero, NaN and infinities as libm's. */
TEST(kernel_gelu_grid_and_specials) {
    enum { N = 200001 };
    float *x = mallocCheck(sizeof(float) * N);
    double worst = 0;
    for (int i = 0; i < N; i++) x[i] = -10.0f + 20.0f * (float)i / (N - 1);
    float *y = mallocCheck(sizeof(float) * N);
    memcpy(y, x, sizeof(float) * N);
    for (size_t done = 0, len = 1; done < N; done += len, len = len % 37 + 1)
        gelu_inplace(y + done, ADP_MIN(len, (size_t)N - done));
    for (int i = 0; i < N; i++) {
        double v = x[i], want = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        double tol = 0.5 * fabs(v) * 8e-8 + 1.5 * (nextafterf((float)fabs(want), INFINITY) - (float)fabs(want));
        double e = fabs(y[i] - want);
        worst = fmax(worst, e / tol);
        if (e > tol) {
            CHECK_MSG(0, "gelu(%.9g) = %.9g, want %.9g (avx512 %d)", v, y[i], want, gelu_uses_avx512());
            break;
        }
    }
    if (test_verbose()) fprintf(stderr, "    gelu worst error / tolerance %.3f (avx512 %d)\n", worst, gelu_uses_avx512());
    float sp[5] = {0.0f, NAN, INFINITY, -1e30f, 3.0f};
    gelu_inplace(sp, 5);
    CHECK(sp[0] == 0.0f && isnan(sp[1]) && sp[2] == INFINITY && sp[3] == 0.0f);
    CHECK(fabsf(sp[4] - gelu_naive(3.0f)) < 1e-6f);
    free(x), free(y);
}

TEST(kernel_gelu_matches_erf_gelu) {
    int n = 3, d = 1000;
    float *x = mallocCheck(sizeof(float) * n * d), *want = mallocCheck(sizeof(float) * n * d);
    float *b = mallocCheck(sizeof(float) * d);
    unsigned s = 7;
    for (int i = 0; i < d; i++) b[i] = 0.1f * test_randf(&s);
    for (int i = 0; i < n * d; i++) {
        x[i] = 6.0f * test_randf(&s) + b[i % d];
        want[i] = gelu_naive(x[i]);
    }
    gelu_forward(x, (size_t)n * d);
    test_compare("gelu", x, want, (size_t)n * d, 1e-6); /* values up to 6: 1e-6 is 2 ulp */
    free(x), free(want), free(b);
}

TEST(kernel_layernorm_matches_naive) {
    int n = 37, d = 200;
    unsigned s = 3;
    float *x = mallocCheck(sizeof(float) * n * d), *y = mallocCheck(sizeof(float) * n * d);
    float *res = mallocCheck(sizeof(float) * n * d), *out = mallocCheck(sizeof(float) * n * d);
    float *want = mallocCheck(sizeof(float) * n * d), *sum = mallocCheck(sizeof(float) * n * d);
    float *g = mallocCheck(sizeof(float) * d), *b = mallocCheck(sizeof(float) * d), *bias = mallocCheck(sizeof(float) * d);
    for (int i = 0; i < d; i++) g[i] = 1 + 0.3f * test_randf(&s), b[i] = test_randf(&s), bias[i] = test_randf(&s);
    for (int i = 0; i < n * d; i++) x[i] = 100.0f + 3 * test_randf(&s), y[i] = test_randf(&s), res[i] = test_randf(&s);
    layernorm_forward_naive(want, x, g, b, n, d, 1e-12f);
    layernorm_forward(out, NULL, NULL, x, g, b, n, d, 1e-12f);
    test_compare("layernorm (offset 100)", out, want, (size_t)n * d, 2e-4);
    for (int i = 0; i < n * d; i++) sum[i] = y[i] + bias[i % d] + res[i];
    layernorm_forward_naive(want, sum, g, b, n, d, 1e-5f);
    memcpy(out, res, sizeof(float) * n * d);
    for (int i = 0; i < n * d; i++) y[i] += bias[i % d];
    residual_layernorm_forward(out, NULL, NULL, NULL, y, out, g, b, n, d, 1e-5f); /* in place on res */
    test_compare("residual layernorm", out, want, (size_t)n * d, 1e-5);
    free(x), free(y), free(res), free(out), free(want), free(sum), free(g), free(b), free(bias);
}

/* attention_forward against the float64 naive twin on one packed batch of the given lengths,
 * with and without a key log-mask and kept probabilities. */
static void attention_case(int d, int A, const int *lens, int n_seq) {
    int off[16] = {0}, max_n = 0;
    for (int s = 0; s < n_seq; s++) off[s + 1] = off[s] + lens[s], max_n = lens[s] > max_n ? lens[s] : max_n;
    int T = off[n_seq];
    unsigned st = 11;
    float *qkv = mallocCheck(sizeof(float) * T * 3 * d), *mask = mallocCheck(sizeof(float) * T);
    for (int i = 0; i < T * 3 * d; i++) qkv[i] = 0.7f * test_randf(&st);
    for (int t = 0; t < T; t++) mask[t] = t % 3 == 0 ? -3.0f * (1 + test_randf(&st)) : 0.0f;
    size_t prob_off[16], np = 0;
    for (int s = 0; s < n_seq; s++) prob_off[s] = np, np += (size_t)A * lens[s] * lens[s];
    float *ctx = mallocCheck(sizeof(float) * T * d), *want = mallocCheck(sizeof(float) * T * d);
    float *p = mallocCheck(sizeof(float) * np), *pw = mallocCheck(sizeof(float) * np);
    float *scratch = mallocCheck(sizeof(float) * (size_t)omp_get_max_threads() * max_n * max_n);
    for (int masked = 0; masked < 2; masked++) {
        attention_forward_naive(want, pw, prob_off, qkv, off, n_seq, d, A, 0.25f, masked ? mask : NULL);
        attention_forward(ctx, NULL, prob_off, qkv, off, n_seq, d, A, 0.25f, masked ? mask : NULL, scratch);
        test_compare("attention ctx", ctx, want, (size_t)T * d, 1e-5);
        memset(ctx, 0, sizeof(float) * T * d);
        attention_forward(ctx, p, prob_off, qkv, off, n_seq, d, A, 0.25f, masked ? mask : NULL, scratch);
        test_compare("attention ctx (probs kept)", ctx, want, (size_t)T * d, 1e-5);
        test_compare("attention probs", p, pw, np, 2e-6);
    }
    /* probabilities of every query row sum to one */
    for (int s = 0; s < n_seq; s++)
        for (int r = 0; r < A * lens[s]; r++) {
            double sum = 0;
            for (int j = 0; j < lens[s]; j++) sum += p[prob_off[s] + (size_t)r * lens[s] + j];
            CHECK_NEAR(sum, 1.0, 1e-5);
        }
    free(qkv), free(mask), free(ctx), free(want), free(p), free(pw), free(scratch);
}

/* Head sizes 16, 64 and 128 (two 64-column blocks) and 40 (a masked tail); lengths around
 * the kernel's 16-key vectors, 4-query blocks and 48-key chunks. */
static void attention_cases(void) {
    const int a[] = {1, 2, 17, 64, 5}, b[] = {3, 16, 47, 48, 49, 100, 4}, c[] = {1, 31, 97, 130};
    attention_case(48, 3, a, 5);
    attention_case(256, 4, b, 7);
    attention_case(256, 2, c, 4);
    attention_case(120, 3, b, 7);
}

TEST(kernel_attention_matches_naive_packed) { attention_cases(); }

/* The same on the portable path (loops up to 48 tokens, cblas_sgemm above): what CPUs
 * without AVX-512, and ADAPLER_GEMM=blas, run. */
TEST(kernel_attention_portable_path_matches_naive) {
    setenv("ADAPLER_GEMM", "blas", 1);
    REQUIRE(!gemm_packed_enabled());
    attention_cases();
}

/* linear_forward on every path (packed kernel, sgemm) and awkward sizes: rows not a
 * multiple of 6, outputs not a multiple of 64 (a last panel of at most 32 columns takes
 * the half-width kernel, as AdapLeR's 32-wide predictor does), with and without bias; the
 * packed kernel gives the same bits on one thread as on all. */
TEST(kernel_linear_matches_naive) {
    int shapes[][3] = {{1, 70, 45},    {5, 64, 64},    {6, 96, 288},   {13, 33, 130},
                       {33, 200, 96},  {300, 128, 200}, {25, 256, 32}, {61, 256, 20}};
    unsigned s = 5;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int n = shapes[k][0], in = shapes[k][1], out = shapes[k][2];
        float *x = mallocCheck(sizeof(float) * n * in), *w = mallocCheck(sizeof(float) * out * in);
        float *b = mallocCheck(sizeof(float) * out), *y = mallocCheck(sizeof(float) * (n * out + 64));
        float *want = mallocCheck(sizeof(float) * n * out);
        float *packed = alignedCheck(sizeof(float) * gemm_packed_size(out, in));
        for (int i = 0; i < n * in; i++) x[i] = test_randf(&s);
        for (int i = 0; i < out * in; i++) w[i] = test_randf(&s);
        for (int i = 0; i < out; i++) b[i] = test_randf(&s);
        gemm_pack(packed, w, out, in);
        for (int variant = 0; variant < 4; variant++) {
            linear_w lw = {.w = w, .b = variant & 1 ? b : NULL, .panels = variant & 2 ? packed : NULL, .in = in, .out = out};
            for (int i = 0; i < 64; i++) y[n * out + i] = 12345.0f; /* guard: nothing written past the end */
            linear_act act = k % 2 ? ACT_GELU : ACT_NONE;
            linear_forward(y, x, &lw, n, act);
            matmul_forward_naive(want, x, w, lw.b, n, in, out);
            if (act == ACT_GELU)
                for (int i = 0; i < n * out; i++) want[i] = gelu_naive(want[i]);
            char what[96];
            snprintf(what, sizeof what, "linear %dx%d->%d bias=%d packed=%d gelu=%d", n, in, out, variant & 1, variant >> 1,
                     act == ACT_GELU);
            test_compare(what, y, want, (size_t)n * out, 1e-4); /* |y| up to ~30 */
            for (int i = 0; i < 64; i++) CHECK(y[n * out + i] == 12345.0f);
            if (lw.panels && gemm_packed_enabled()) { /* the tiling changes with the threads, the sums do not */
                float *y1 = mallocCheck(sizeof(float) * n * out);
                int threads = adp_get_threads();
                adp_set_threads(1);
                linear_forward(y1, x, &lw, n, act);
                adp_set_threads(threads);
                CHECK(memcmp(y1, y, sizeof(float) * n * out) == 0);
                free(y1);
            }
        }
        free(x), free(w), free(b), free(y), free(want), free(packed);
    }
}

/* A projection summed in two halves over k (gemm.h k_split, what the attention output and
 * second FFN projections have): the whole product still matches the naive one; its lower
 * part (with the bias) plus its upper part equals it bit for bit, in fp32, half and int8
 * panels, for blocks of 1-6 rows, of 7-12 rows by 32 columns (a last panel of 36 columns
 * leaves a half of 4), 13 = 7 + 6 and 25 = 9 + 8 + 8 rows, and 300 rows (tiles; int8
 * reuses a converted panel); a part over panels [p0, p1) writes those columns only; and
 * every row is the same bits as when it is computed alone (batching changes nothing). */
TEST(kernel_linear_split_k_parts_sum_to_whole) {
    if (!gemm_packed_enabled()) return;
    int shapes[][3] = {{3, 128, 256}, {7, 1024, 256}, {9, 256, 100}, {12, 64, 64},
                       {13, 96, 160}, {16, 256, 200}, {25, 130, 70}, {300, 130, 96}};
    unsigned s = 11;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int n = shapes[k][0], in = shapes[k][1], out = shapes[k][2], panels = (out + 63) / 64;
        float *x = mallocCheck(sizeof(float) * n * in), *w = mallocCheck(sizeof(float) * out * in);
        float *b = mallocCheck(sizeof(float) * out), *want = mallocCheck(sizeof(float) * n * out);
        float *whole = mallocCheck(sizeof(float) * n * out), *lo = mallocCheck(sizeof(float) * n * out);
        float *hi = mallocCheck(sizeof(float) * n * out), *scale = alignedCheck(sizeof(float) * panels * 64);
        float *packed = alignedCheck(sizeof(float) * gemm_packed_size(out, in));
        uint16_t *p16 = alignedCheck(sizeof(uint16_t) * gemm_packed_size(out, in));
        int8_t *p8 = alignedCheck(gemm_packed_size(out, in));
        for (int i = 0; i < n * in; i++) x[i] = test_randf(&s);
        for (int i = 0; i < out; i++) b[i] = test_randf(&s);
        for (int fmt = 0; fmt < 3; fmt++) {
            for (int i = 0; i < out * in; i++) w[i] = test_randf(&s);
            linear_w lw = {.w = w, .b = b, .in = in, .out = out, .k_split = in / 2};
            if (fmt == FMT_F16) {
                gemm_round_f16(w, (size_t)out * in);
                gemm_pack16(p16, w, out, in);
                lw.panels = p16, lw.fmt = FMT_F16;
            } else if (fmt == FMT_I8) {
                float *rs = mallocCheck(sizeof(float) * out);
                gemm_quant_i8(rs, w, out, in);
                gemm_pack8(p8, scale, w, rs, out, in);
                free(rs);
                lw.panels = p8, lw.fmt = FMT_I8, lw.scale8 = scale;
            } else {
                gemm_pack(packed, w, out, in);
                lw.panels = packed;
            }
            linear_forward(whole, x, &lw, n, ACT_NONE);
            matmul_forward_naive(want, x, w, b, n, in, out);
            char what[96];
            snprintf(what, sizeof what, "split linear %dx%d->%d format %d", n, in, out, fmt);
            test_compare(what, whole, want, (size_t)n * out, 1e-4);
            for (int i = 0; i < n * out; i++) lo[i] = hi[i] = 777.0f;
            linear_forward_part(lo, x, &lw, n, 0, panels, ACT_NONE, GEMM_K_LOW);
            const int p0 = panels > 1 ? 1 : 0; /* the upper part in two calls: panels [p0, end), then [0, p0) */
            linear_forward_part(hi, x, &lw, n, p0, panels, ACT_NONE, GEMM_K_HIGH);
            for (int t = 0; t < n; t++)
                for (int j = 0; j < 64 * p0; j++) CHECK(hi[(size_t)t * out + j] == 777.0f);
            linear_forward_part(hi, x, &lw, n, 0, p0, ACT_NONE, GEMM_K_HIGH);
            int same = 1;
            for (int i = 0; i < n * out; i++) same &= lo[i] + hi[i] == whole[i];
            CHECK_MSG(same, "%s: lower + upper part != whole", what);
            linear_forward_part(lo, x, &lw, n, 0, panels, ACT_NONE, GEMM_K_ALL);
            CHECK(memcmp(lo, whole, sizeof(float) * n * out) == 0);
            for (int t = 0; t < n; t++) linear_forward_part(lo + (size_t)t * out, x + (size_t)t * in, &lw, 1, 0, panels,
                                                            ACT_NONE, GEMM_K_ALL);
            CHECK_MSG(memcmp(lo, whole, sizeof(float) * n * out) == 0, "%s: a row alone differs", what);
        }
        free(x), free(w), free(b), free(want), free(whole), free(lo), free(hi), free(scale), free(packed), free(p16);
        free(p8);
    }
}

TEST(kernel_gather_keeps_order_and_offsets) {
    int off[4] = {0, 3, 3 + 1, 3 + 1 + 4}, d = 2;
    float src[16];
    int32_t pos[8] = {0, 1, 2, 0, 0, 1, 2, 3}, pos2[8];
    for (int i = 0; i < 16; i++) src[i] = (float)i;
    uint8_t keep[8] = {1, 0, 1, 1, 1, 1, 0, 1};
    float dst[16];
    int off2[4];
    int T = prune_gather(dst, pos2, off2, src, pos, off, 3, d, keep);
    CHECK_INT(T, 6);
    int want_off[4] = {0, 2, 3, 6};
    for (int s = 0; s < 4; s++) CHECK_INT(off2[s], want_off[s]);
    int32_t want_pos[6] = {0, 2, 0, 0, 1, 3};
    int rows[6] = {0, 2, 3, 4, 5, 7};
    for (int i = 0; i < 6; i++) {
        CHECK_INT(pos2[i], want_pos[i]);
        CHECK(dst[2 * i] == src[2 * rows[i]] && dst[2 * i + 1] == src[2 * rows[i] + 1]);
    }
}

TEST(kernel_schedule_rule_counts) {
    /* floor((n - 1) f) of the n - 1 non-[CLS] rows survive, evenly spread */
    float frac[2] = {0.5f, 0.3f};
    prune_strategy ps;
    REQUIRE(prune_schedule_create(&ps, 2, frac, PRUNE_AT_INPUT) == ADP_OK);
    for (int n = 1; n < 60; n++)
        for (int l = 0; l < 2; l++) {
            int off[2] = {0, n};
            uint8_t keep[64];
            memset(keep, 1, sizeof keep);
            prune_step st = {.layer = l, .n_seq = 1, .off = off};
            REQUIRE(ps.select(&ps, &st, keep, NULL) == ADP_OK);
            int k = 0;
            for (int i = 1; i < n; i++) k += keep[i];
            CHECK_INT(k, (int)floor((n - 1) * (double)frac[l]));
            CHECK(keep[0] == 1);
        }
    ps.destroy(&ps);
    float bad[1] = {1.5f};
    CHECK(prune_schedule_create(&ps, 1, bad, PRUNE_AT_INPUT) == ADP_ERR);
}

/* The team barrier (engine/barrier.h): in each round every thread writes its slot, waits,
 * checks that it sees every other thread's write of this round, and waits again before the
 * next round's write.  A barrier that let a thread through early shows up as a stale slot;
 * two, three and four threads (more than the cores: the yielding path), spinning and
 * OpenMP's. */
TEST(kernel_team_barrier_orders_every_write) {
    for (int threads = 2; threads <= 4; threads++)
        for (int spin = 0; spin < 2; spin++) {
            adp_barrier bar;
            adp_barrier_init(&bar);
            volatile long slot[4] = {0};
            long stale = 0;
            const long rounds = threads <= 2 ? 20000 : 1000; /* more threads than cores: slow rounds */
#pragma omp parallel num_threads(threads) reduction(+ : stale)
            {
                const int me = omp_get_thread_num(), n = omp_get_num_threads();
                for (long r = 1; r <= rounds; r++) {
                    slot[me] = r;
                    adp_team_sync(spin ? &bar : NULL);
                    for (int u = 0; u < n; u++) stale += slot[u] != r;
                    adp_team_sync(spin ? &bar : NULL);
                }
            }
            CHECK_MSG(stale == 0, "%d threads, %s barrier: %ld stale reads", threads, spin ? "spinning" : "OpenMP",
                      stale);
            if (test_verbose())
                printf("    %d threads, %s barrier: %ld rounds, %ld stale reads\n", threads,
                       spin ? "spinning" : "OpenMP", rounds, stale);
        }
}

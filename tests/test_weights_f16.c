/* test_weights_f16.c: half-precision weights (`--weights f16`, gemm.h / model.h
 * bert_model_use_f16).  The claim is exact: a product with half panels is, bit for bit,
 * the product with fp32 panels of the weights rounded to half; so is a whole forward pass,
 * pruned or not, on one thread or two.  Plus the rounding itself, the range check and the
 * command line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "gemm.h"
#include "model.h"
#include "test.h"
#include "weights_check.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

TEST(f16_rounding_is_ieee_half_nearest_even) {
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1);
     * 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: to 1 + 2^-9.  1e-6 is a
     * half subnormal: 17 * 2^-24.  65504 is the largest half; 70000 overflows. */
    float v[] = {0.1f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1e-6f, -2.5f, 65504.0f, 70000.0f, -1e9f, 0.0f};
    const float want[] = {0x1.998p-4f, 1.0f, 1.0f + 0x1p-9f, 17 * 0x1p-24f, -2.5f, 65504.0f, INFINITY, -INFINITY, 0.0f};
    size_t n = sizeof v / sizeof v[0];
    CHECK(gemm_round_f16(v, n) == 2);
    for (size_t i = 0; i < n; i++) CHECK_MSG(v[i] == want[i], "value %zu: got %a, want %a", i, v[i], want[i]);
}

/* y = x W^T + b through half panels against fp32 panels of the rounded weights: equal bits,
 * at row counts that take one block of 64 columns (1-6 rows) and blocks of 32 columns
 * (7+), on one thread and on all (weights_check.c check_packed_linear). */
TEST(f16_linear_equals_rounded_fp32_bits) {
    static const int shapes[][3] = {{1, 64, 64},    {5, 256, 130}, {6, 96, 256},  {7, 256, 64},
                                    {13, 64, 200},  {40, 128, 20}, {300, 96, 96}};
    check_packed_linear("half", FMT_F16, shapes, sizeof shapes / sizeof shapes[0], 7);
}

/* The projections bert_model_use_f16 rounds: four per layer and the pooler. */
static void round_f16(bert_model *m) { round_projections(m, gemm_round_f16); }

static void model_equals_rounded_fp32_model(void) {
    check_converted_model("half", FMT_F16, bert_model_use_f16, round_f16, NULL, 1e-2);
}

TEST(f16_model_equals_rounded_fp32_model_bits) { model_equals_rounded_fp32_model(); }

/* Without the packed kernel (CPUs without AVX-512, ADAPLER_GEMM=blas) the weights
 * themselves are rounded, so --weights f16 means the same model there. */
TEST(f16_model_on_the_sgemm_path_is_the_rounded_model) {
    setenv("ADAPLER_GEMM", "blas", 1);
    REQUIRE(!gemm_packed_enabled());
    model_equals_rounded_fp32_model();
}

TEST(f16_rejects_weights_beyond_half_range) {
    bert_config cfg;
    bert_config_init(&cfg, 100, 64, 2, 2, 128, 64, 2);
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_model_init_random(&m, 3);
    m.w.layer[1].w1[17] = 1e6f;
    float before[8];
    memcpy(before, m.w.layer[0].wqkv, sizeof before);
    CHECK(bert_model_use_f16(&m) == ADP_ERR);
    /* nothing was rounded: the check comes first (a N(0, 0.02) draw is not a half value) */
    CHECK(memcmp(before, m.w.layer[0].wqkv, sizeof before) == 0);
    float probe[8];
    memcpy(probe, before, sizeof probe);
    gemm_round_f16(probe, 8);
    CHECK(memcmp(probe, before, sizeof probe) != 0);
    CHECK_MSG(strstr(adp_errmsg(), "bert.encoder.layer.1.intermediate.dense.weight") != NULL, "message: %s",
              adp_errmsg());
    CHECK(m.weights == FMT_F32);
    bert_model_free(&m);
    bert_config_free(&cfg);
}

TEST(f16_on_the_command_line) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 2 --hidden 64 --heads 2 --inter 128", dir) ==
            0);
    for (int k = 0; k < 2; k++) {
        const char *w = k ? "f16" : "f32";
        REQUIRE(test_sh("%s eval --model %s/m --dataset planted --planted-n 40 --repeats 0 --weights %s", bin(), dir, w) ==
                0);
        char want[32];
        snprintf(want, sizeof want, "\"weights\": \"%s\"", w);
        CHECK_MSG(strstr(test_sh_output(), want) != NULL, "eval --weights %s: %s", w, test_sh_output());
        REQUIRE(test_sh("%s bench --layers 1 --hidden 64 --heads 2 --inter 128 --batch 1 --seq 9 --min-time 0 --json "
                        "--weights %s",
                        bin(), w) == 0);
        CHECK_MSG(strstr(test_sh_output(), want) != NULL, "bench --weights %s: %s", w, test_sh_output());
    }
    REQUIRE(test_sh("echo '{\"text\": \"a b c\"}' | %s predict --model %s/m --weights f16", bin(), dir) == 0);
    CHECK(strstr(test_sh_output(), "\"logits\"") != NULL);
    const char *cmds[3] = {"eval --dataset planted --model", "predict --model", "bench --seq"};
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/m", dir);
    const char *args[3] = {mdir, mdir, "3"};
    for (int k = 0; k < 3; k++) {
        CHECK(test_sh("%s %s %s --weights f8 < /dev/null", bin(), cmds[k], args[k]) == 2);
        CHECK_MSG(strstr(test_sh_output(), "--weights: expected f32, f16, bf16 or i8, got 'f8'") != NULL, "%s: %s", cmds[k],
                  test_sh_output());
    }
}

/* test_weights_bf16.c: bfloat16 weights (`--weights bf16`, gemm.h / model.h
 * bert_model_use_bf16).  As for half weights the claim is exact: a product with bfloat16
 * column-pair panels is, bit for bit, the product with fp32 panels of the weights rounded
 * to bfloat16; so is a whole forward pass, pruned or not, on one thread or two.  Plus the
 * rounding itself, the range check and the command line. */
#include <float.h>
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

TEST(bf16_rounding_is_nearest_even) {
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3 *
     * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6.  0.1 = 0x1.99999ap-4 keeps
     * 7 fraction bits, rounded up.  0x1.fep127 is the largest bfloat16; 3.4e38 is past the
     * midpoint to 2^128 and overflows, as FLT_MAX does.  0x1.23p-133, an fp32 subnormal, keeps its top 7 bits: 2^-133. */
    float v[] = {0.1f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 0x1.fep127f, 3.4e38f, -FLT_MAX, 0x1.23p-133f, 0.0f};
    const float want[] = {0x1.9ap-4f, 1.0f, 1.0f + 0x1p-6f, -2.5f, 0x1.fep127f, INFINITY, -INFINITY, 0x1p-133f, 0.0f};
    size_t n = sizeof v / sizeof v[0];
    CHECK(gemm_round_bf16(v, n) == 2);
    for (size_t i = 0; i < n; i++) CHECK_MSG(v[i] == want[i], "value %zu: got %a, want %a", i, v[i], want[i]);
    float nan = NAN;
    CHECK(gemm_round_bf16(&nan, 1) == 0 && isnan(nan));
}

/* y = x W^T + b through bfloat16 panels against fp32 panels of the rounded weights: equal
 * bits, at row counts that take one block of 64 columns (1-6 rows), blocks of 32 columns
 * (7-12, 13 = 7 + 6, 40 rows in tiles) and a last panel of 4 or 20 columns, on one thread
 * and on all; and both are the product (weights_check.c check_packed_linear). */
TEST(bf16_linear_equals_rounded_fp32_bits) {
    static const int shapes[][3] = {{1, 64, 64},   {3, 256, 130}, {6, 96, 256},  {7, 256, 68},
                                    {12, 64, 200}, {13, 64, 96},  {40, 128, 20}, {300, 96, 96}};
    check_packed_linear("bfloat16", FMT_BF16, shapes, sizeof shapes / sizeof shapes[0], 9);
}

/* The projections bert_model_use_bf16 rounds: four per layer and the pooler. */
static void round_bf16(bert_model *m) { round_projections(m, gemm_round_bf16); }

TEST(bf16_model_equals_rounded_fp32_model_bits) {
    check_converted_model("bfloat16", FMT_BF16, bert_model_use_bf16, round_bf16, NULL, 5e-2);
}

TEST(bf16_rejects_weights_beyond_its_range) {
    bert_config cfg;
    bert_config_init(&cfg, 100, 64, 2, 2, 128, 64, 2);
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_model_init_random(&m, 3);
    m.w.layer[1].w2[5] = 3.4e38f;
    float before[8];
    memcpy(before, m.w.layer[0].wqkv, sizeof before);
    CHECK(bert_model_use_bf16(&m) == ADP_ERR);
    CHECK(memcmp(before, m.w.layer[0].wqkv, sizeof before) == 0); /* the check comes first */
    CHECK_MSG(strstr(adp_errmsg(), "bert.encoder.layer.1.output.dense.weight") != NULL, "message: %s", adp_errmsg());
    CHECK(m.weights == FMT_F32);
    m.w.layer[1].w2[5] = 0.5f;
    CHECK(bert_model_use_bf16(&m) == ADP_OK && m.weights == FMT_BF16);
    CHECK(bert_model_use_bf16(&m) == ADP_ERR); /* once */
    bert_model_free(&m);
    bert_config_free(&cfg);
}

TEST(bf16_on_the_command_line) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 2 --hidden 64 --heads 2 --inter 128", dir) ==
            0);
    REQUIRE(test_sh("%s eval --model %s/m --dataset planted --planted-n 40 --repeats 0 --weights bf16", bin(), dir) == 0);
    CHECK_MSG(strstr(test_sh_output(), "\"weights\": \"bf16\"") != NULL, "eval: %s", test_sh_output());
    REQUIRE(test_sh("%s bench --layers 1 --hidden 64 --heads 2 --inter 128 --batch 1 --seq 9 --min-time 0 --json "
                    "--weights bf16",
                    bin()) == 0);
    CHECK_MSG(strstr(test_sh_output(), "\"weights\": \"bf16\"") != NULL, "bench: %s", test_sh_output());
    REQUIRE(test_sh("echo '{\"text\": \"a b c\"}' | %s predict --model %s/m --weights bf16", bin(), dir) == 0);
    CHECK(strstr(test_sh_output(), "\"logits\"") != NULL);
}

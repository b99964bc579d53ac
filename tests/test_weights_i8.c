/* test_weights_i8.c: int8 weights (`--weights i8`, gemm.h gemm_quant_i8 / model.h
 * bert_model_use_i8).  The quantization itself (symmetric, one scale per output row), and
 * the exact claim: a product with int8 panels is, bit for bit, the product with fp32
 * panels of the quantized weights; so is a whole forward pass, pruned or not, on one
 * thread or two.  Plus the check on non-finite weights and the command line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "gemm.h"
#include "model.h"
#include "ops.h"
#include "test.h"
#include "weights_check.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

TEST(i8_quantization_is_symmetric_per_row) {
    /* row 0: max 1.27, so s = 0.01 and each weight becomes the nearest multiple of it;
     * row 1: all zero (scale 0); row 2: negative maximum, scale 2 / 127; row 3: a NaN,
     * counted and skipped, the rest quantized on the finite maximum */
    enum { IN = 5 };
    float w[4 * IN] = {1.27f, -0.5f, 0.014f, 0.016f, -1.27f, 0, 0, 0, 0, 0, 0.3f, -2.0f, 1.0f, 0.0f, 0.999f,
                       0.5f,  NAN,   -0.25f, 0.0f,   0.1f};
    float orig[4 * IN], scale[4];
    memcpy(orig, w, sizeof w);
    CHECK(gemm_quant_i8(scale, w, 4, IN) == 1);
    CHECK(scale[0] == 1.27f / 127.0f && scale[1] == 0.0f && scale[2] == 2.0f / 127.0f && scale[3] == 0.5f / 127.0f);
    const float q0[IN] = {127, -50, 1, 2, -127};
    for (int k = 0; k < IN; k++) CHECK_MSG(w[k] == q0[k] * scale[0], "row 0 col %d: %a", k, w[k]);
    for (int k = 0; k < IN; k++) CHECK(w[IN + k] == 0.0f);
    CHECK(w[2 * IN + 1] == -127 * scale[2] && w[2 * IN + 2] == 64 * scale[2] && w[2 * IN + 3] == 0.0f);
    CHECK(isnan(w[3 * IN + 1]) && w[3 * IN] == 127 * scale[3] && w[3 * IN + 2] == -64 * scale[3]);
    /* every finite weight moved by at most half a step, and is q * s with |q| <= 127 */
    for (int o = 0; o < 4; o++)
        for (int k = 0; k < IN; k++) {
            float v = w[o * IN + k], s = scale[o];
            if (isnan(v)) continue;
            CHECK_MSG(fabsf(v - orig[o * IN + k]) <= 0.5f * s * 1.0001f, "row %d col %d", o, k);
            if (s > 0) {
                float q = rintf(v / s);
                CHECK(fabsf(q) <= 127 && q * s == v);
            }
        }
}

/* y = x W^T + b through int8 panels against fp32 panels of the quantized weights: equal
 * bits, at row counts that take one block (1-6 rows: converted as loaded), blocks of 32
 * columns (7-12, each converting as loaded) and several blocks past 12 (the panel converted
 * once into the thread's buffer), on one thread and on all (weights_check.c
 * check_packed_linear). */
TEST(i8_linear_equals_quantized_fp32_bits) {
    static const int shapes[][3] = {{1, 64, 64},   {2, 256, 130}, {6, 96, 256}, {7, 256, 64},
                                    {13, 64, 200}, {40, 128, 20}, {300, 96, 96}};
    check_packed_linear("int8", FMT_I8, shapes, sizeof shapes / sizeof shapes[0], 11);
}

/* The projections bert_model_use_i8 quantizes: four per layer and the pooler. */
static void quantize_projections(bert_model *m) {
    const bert_config *c = &m->cfg;
    int H = c->hidden, I = c->inter;
    float *sc = mallocCheck(sizeof(float) * (size_t)(3 * H + I));
    for (int l = 0; l < c->layers; l++) {
        bert_layer_w *w = &m->w.layer[l];
        gemm_quant_i8(sc, w->wqkv, 3 * H, H), gemm_quant_i8(sc, w->wo, H, H);
        gemm_quant_i8(sc, w->w1, I, H), gemm_quant_i8(sc, w->w2, H, I);
    }
    gemm_quant_i8(sc, m->w.pool_w, H, H);
    free(sc);
}

static int use_i8(bert_model *m) { return bert_model_use_weights(m, FMT_I8); }

static void inspect_i8(bert_model *q8) {
    CHECK(!strcmp(weights_fmt_name(q8->weights), "i8"));
    CHECK(bert_model_use_f16(q8) == ADP_ERR); /* converted once only */
}

static void model_equals_quantized_fp32_model(void) {
    check_converted_model("int8", FMT_I8, use_i8, quantize_projections, inspect_i8, 5e-2);
}

TEST(i8_model_equals_quantized_fp32_model_bits) { model_equals_quantized_fp32_model(); }

/* Without the packed kernel the weights themselves are quantized: the same model there. */
TEST(i8_model_on_the_sgemm_path_is_the_quantized_model) {
    setenv("ADAPLER_GEMM", "blas", 1);
    REQUIRE(!gemm_packed_enabled());
    model_equals_quantized_fp32_model();
}

TEST(i8_rejects_non_finite_weights_before_changing_any) {
    bert_config cfg;
    bert_config_init(&cfg, 100, 64, 2, 2, 128, 64, 2);
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_model_init_random(&m, 3);
    m.w.layer[1].wo[17] = INFINITY;
    float before[8];
    memcpy(before, m.w.layer[0].wqkv, sizeof before);
    CHECK(bert_model_use_i8(&m) == ADP_ERR);
    CHECK(memcmp(before, m.w.layer[0].wqkv, sizeof before) == 0); /* a N(0, 0.02) draw is not q * s */
    CHECK_MSG(strstr(adp_errmsg(), "bert.encoder.layer.1.attention.output.dense.weight") != NULL, "message: %s",
              adp_errmsg());
    CHECK(m.weights == FMT_F32);
    bert_model_free(&m);
    bert_config_free(&cfg);
}

TEST(i8_on_the_command_line) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 2 --hidden 64 --heads 2 --inter 128", dir) ==
            0);
    REQUIRE(test_sh("%s eval --model %s/m --dataset planted --planted-n 40 --repeats 0 --weights i8", bin(), dir) == 0);
    CHECK_MSG(strstr(test_sh_output(), "\"weights\": \"i8\"") != NULL, "eval: %s", test_sh_output());
    REQUIRE(test_sh("%s bench --layers 1 --hidden 64 --heads 2 --inter 128 --batch 1 --seq 9 --min-time 0 --json "
                    "--weights i8",
                    bin()) == 0);
    CHECK_MSG(strstr(test_sh_output(), "\"weights\": \"i8\"") != NULL, "bench: %s", test_sh_output());
    /* predict: the same logits as eval's model would give are not printed by eval, so
     * compare with f32: close, and not equal (the weights were quantized) */
    char l8[256] = "", l32[256] = "";
    REQUIRE(test_sh("echo '{\"text\": \"a b c\"}' | %s predict --model %s/m --weights i8", bin(), dir) == 0);
    const char *p = strstr(test_sh_output(), "\"logits\"");
    REQUIRE(p != NULL);
    snprintf(l8, sizeof l8, "%s", p);
    REQUIRE(test_sh("echo '{\"text\": \"a b c\"}' | %s predict --model %s/m", bin(), dir) == 0);
    p = strstr(test_sh_output(), "\"logits\"");
    REQUIRE(p != NULL);
    snprintf(l32, sizeof l32, "%s", p);
    CHECK_MSG(strcmp(l8, l32) != 0, "i8 logits equal f32's: %s", l8);
    double a8[2], a32[2];
    REQUIRE(sscanf(l8, "\"logits\": [%lf, %lf", &a8[0], &a8[1]) == 2 && sscanf(l32, "\"logits\": [%lf, %lf", &a32[0], &a32[1]) == 2);
    CHECK_MSG(fabs(a8[0] - a32[0]) < 0.05 && fabs(a8[1] - a32[1]) < 0.05, "%s vs %s", l8, l32);
}

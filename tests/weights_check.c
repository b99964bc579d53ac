/* weights_check.c: the checks shared by the f16, bf16 and i8 tests (weights_check.h). */
#include "weights_check.h"

#include <math.h>
#include <string.h>

#include "bert.h"
#include "common.h"
#include "config.h"
#include "gemm.h"
#include "ops.h"
#include "prune.h"
#include "test.h"

void round_projections(bert_model *m, size_t (*round)(float *, size_t)) {
    const bert_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, I = (size_t)c->inter;
    for (int l = 0; l < c->layers; l++) {
        bert_layer_w *w = &m->w.layer[l];
        round(w->wqkv, 3 * H * H), round(w->wo, H * H), round(w->w1, I * H), round(w->w2, H * I);
    }
    round(m->w.pool_w, H * H);
}

void check_converted_model(const char *what, int fmt, int (*convert)(bert_model *), void (*reference)(bert_model *),
                           void (*inspect)(bert_model *), double max_diff) {
    bert_config cfg;
    bert_config_init(&cfg, 300, 128, 3, 2, 256, 128, 3);
    bert_model conv, ref, full;
    bert_model_alloc(&conv, &cfg), bert_model_alloc(&ref, &cfg), bert_model_alloc(&full, &cfg);
    bert_model_init_random(&conv, 5), bert_model_init_random(&ref, 5), bert_model_init_random(&full, 5);
    REQUIRE(convert(&conv) == ADP_OK);
    reference(&ref);
    bert_model_pack(&ref);
    CHECK(conv.weights == fmt);
    if (gemm_packed_enabled()) { /* the converted panels are in use, the classifier stays fp32 */
        CHECK_MSG(conv.lin[0].qkv.panels && conv.lin[0].qkv.fmt == fmt && conv.lin[2].ffn2.fmt == fmt,
                  "%s: the projections' panels", what);
        CHECK_MSG(conv.pool.fmt == fmt && (fmt != FMT_I8 || conv.pool.scale8), "%s: the pooler's panels", what);
        CHECK(conv.cls.panels && conv.cls.fmt == FMT_F32);
    }
    if (inspect) inspect(&conv);
    enum { NS = 5 };
    int len[NS] = {1, 7, 13, 40, 100}, off[NS + 1] = {0};
    for (int s = 0; s < NS; s++) off[s + 1] = off[s] + len[s];
    const int T = off[NS], C = cfg.num_labels;
    int32_t *ids = mallocCheck(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = 5 + (i * 41) % 290;
    bert_batch b = {.n_seq = NS, .ids = ids, .off = off};
    float frac[3] = {1.0f, 0.4f, 0.5f};
    prune_strategy sched;
    REQUIRE(prune_schedule_create(&sched, cfg.layers, frac, PRUNE_AT_INPUT) == ADP_OK);
    for (int pruned = 0; pruned < 2; pruned++)
        for (int th = 1; th <= 2; th++) {
            adp_set_threads(th);
            bert_run_opts o = {.prune = pruned ? &sched : NULL};
            float lc[NS * 3], lr[NS * 3], lf[NS * 3];
            const bert_model *ms[3] = {&conv, &ref, &full};
            float *dst[3] = {lc, lr, lf};
            for (int k = 0; k < 3; k++) {
                bert_ctx c;
                bert_ctx_init(&c);
                const bert_result *r;
                REQUIRE(bert_forward(&c, ms[k], &b, &o, &r) == ADP_OK);
                memcpy(dst[k], r->logits, sizeof(float) * NS * C);
                bert_ctx_free(&c);
            }
            CHECK_MSG(memcmp(lc, lr, sizeof lc) == 0, "pruned=%d threads=%d: %s weights differ from the reference",
                      pruned, th, what);
            /* the conversion is real: the fp32 model's logits differ, by little */
            double diff = 0;
            for (int i = 0; i < NS * C; i++) diff = fmax(diff, fabs((double)lc[i] - lf[i]));
            CHECK_MSG(diff > 0 && diff < max_diff, "pruned=%d threads=%d: %s vs fp32 max |diff| %g", pruned, th, what,
                      diff);
        }
    adp_set_threads(0);
    sched.destroy(&sched);
    free(ids);
    bert_model_free(&conv), bert_model_free(&ref), bert_model_free(&full);
    bert_config_free(&cfg);
}

void check_packed_linear(const char *what, int fmt, const int (*shapes)[3], size_t n_shapes, unsigned seed) {
    if (!gemm_packed_enabled()) return; /* no packed kernel on this CPU: nothing to test */
    unsigned s = seed;
    for (size_t k = 0; k < n_shapes; k++) {
        int n = shapes[k][0], in = shapes[k][1], out = shapes[k][2];
        const size_t np = gemm_packed_size(out, in);
        float *x = mallocCheck(sizeof(float) * n * in), *w = mallocCheck(sizeof(float) * out * in);
        float *b = mallocCheck(sizeof(float) * out), *sc = mallocCheck(sizeof(float) * out);
        float *yh = mallocCheck(sizeof(float) * n * out), *y32 = mallocCheck(sizeof(float) * n * out);
        float *y1 = mallocCheck(sizeof(float) * n * out), *want = mallocCheck(sizeof(float) * n * out);
        float *p32 = alignedCheck(sizeof(float) * np), *ps = alignedCheck(sizeof(float) * (np / (size_t)in));
        void *ph = alignedCheck(fmt == FMT_I8 ? np : sizeof(uint16_t) * np);
        for (int i = 0; i < n * in; i++) x[i] = test_randf(&s);
        if (fmt == FMT_I8) { /* rows of different scales, and one row of zeros */
            for (int i = 0; i < out * in; i++) w[i] = (0.05f + (float)(i / in % 7)) * test_randf(&s);
            for (int i = 0; i < out; i++) b[i] = test_randf(&s);
            for (int i = 0; i < in; i++) w[(size_t)(out / 2) * in + i] = 0.0f;
            CHECK(gemm_quant_i8(sc, w, out, in) == 0);
            gemm_pack8(ph, ps, w, sc, out, in);
        } else {
            for (int i = 0; i < out * in; i++) w[i] = 0.3f * test_randf(&s);
            for (int i = 0; i < out; i++) b[i] = test_randf(&s);
            CHECK((fmt == FMT_BF16 ? gemm_round_bf16 : gemm_round_f16)(w, (size_t)out * in) == 0);
            (fmt == FMT_BF16 ? gemm_pack_bf16 : gemm_pack16)(ph, w, out, in);
        }
        gemm_pack(p32, w, out, in);
        for (int variant = 0; variant < 2; variant++) {
            linear_act act = (k + variant) % 2 ? ACT_GELU : ACT_NONE;
            const float *bias = variant ? b : NULL;
            linear_w lh = {.w = w, .b = bias, .panels = ph, .fmt = fmt, .scale8 = ps, .in = in, .out = out};
            linear_w l32 = {.w = w, .b = bias, .panels = p32, .in = in, .out = out};
            linear_forward(yh, x, &lh, n, act);
            linear_forward(y32, x, &l32, n, act);
            CHECK_MSG(memcmp(yh, y32, sizeof(float) * n * out) == 0, "%dx%d->%d bias=%d: %s panels differ", n, in,
                      out, variant, what);
            int threads = adp_get_threads();
            adp_set_threads(1);
            linear_forward(y1, x, &lh, n, act);
            adp_set_threads(threads);
            CHECK_MSG(memcmp(yh, y1, sizeof(float) * n * out) == 0, "%dx%d->%d: one thread differs", n, in, out);
            /* and both are the product (not merely the same mistake twice) */
            matmul_forward_naive(want, x, w, bias, n, in, out);
            if (act == ACT_GELU)
                for (int i = 0; i < n * out; i++) want[i] = gelu_naive(want[i]);
            test_compare(what, yh, want, (size_t)n * out, 1e-4);
        }
        free(x), free(w), free(b), free(sc), free(yh), free(y32), free(y1), free(want), free(p32), free(ps), free(ph);
    }
}

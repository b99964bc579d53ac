/* test_adapler_train.c: AdapLeR's soft-removal training step against PyTorch autograd
 * (tests/ref_adapler_train.py): soft masks, the three losses, every encoder and predictor
 * gradient of L_task + gamma L_CP, and the etas' gradient of L_task + phi L_len. */
#include <math.h>
#include <string.h>

#include "adapler_train.h"
#include "common.h"
#include "ops.h"
#include "test.h"

static float *fixture(const st_file *f, const char *name, int64_t n) {
    const st_tensor *t = st_find(f, name);
    if (!t || st_numel(t) != n) {
        test_fail(__FILE__, __LINE__, "fixture tensor %s missing or not %lld values", name, (long long)n);
        return NULL;
    }
    float *v = mallocCheck(sizeof(float) * (size_t)(n ? n : 1));
    int64_t shape[ST_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    if (st_read_f32(f, t, v, shape, t->ndim) != ADP_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* Relative error of a gradient tensor: max |got - want| / max(max |want|, 1e-6). */
static void check_grad(const char *name, const float *got, const float *want, size_t n, double tol) {
    double num = 0, den = 1e-4; /* some gradients are 0 in theory (softmax is shift-invariant): float noise */
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)got[i] - want[i]));
        den = fmax(den, fabs((double)want[i]));
    }
    if (!(num / den <= tol))
        test_fail(__FILE__, __LINE__, "%s: relative error %.3g (max abs %.3g, scale %.3g)", name, num / den, num, den);
    else if (test_verbose())
        fprintf(stderr, "    %-60s rel err %.2e\n", name, num / den);
}

static void soft_removal_case(const char *make, const char *lengths, float lambda, float gamma, float phi) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 %s", dir, make) == 0);
    REQUIRE(test_python("ref_adapler_train.py", "--model %s/m --out %s/g.safetensors --lengths %s --lambda %g --gamma %g --phi %g",
                        dir, dir, lengths, lambda, gamma, phi) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    st_file st, fx;
    REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
    bert_model_unpack(&m);
    adapler_weights aw;
    REQUIRE(adapler_weights_load(&aw, &st, m.cfg.layers, m.cfg.hidden) == ADP_OK);
    snprintf(path, sizeof path, "%s/g.safetensors", dir);
    REQUIRE(st_open(&fx, path) == ADP_OK);
    const st_tensor *ti = st_find(&fx, "input_ids"), *to = st_find(&fx, "offsets"), *tl = st_find(&fx, "labels");
    REQUIRE(ti && to && tl);
    int64_t T = st_numel(ti), no = st_numel(to);
    int n_seq = (int)no - 1;
    int32_t *ids = mallocCheck(4 * T), *off32 = mallocCheck(4 * no), *labels = mallocCheck(4 * n_seq);
    REQUIRE(st_read_i32(&fx, ti, ids, T) == ADP_OK && st_read_i32(&fx, to, off32, no) == ADP_OK &&
            st_read_i32(&fx, tl, labels, n_seq) == ADP_OK);
    int *off = mallocCheck(sizeof(int) * (size_t)no);
    for (int i = 0; i < no; i++) off[i] = off32[i];
    float *sal = fixture(&fx, "saliency", T);
    REQUIRE(sal);

    adapler_weights ag;
    adapler_weights_alloc(&ag, m.cfg.layers, m.cfg.hidden);
    memset(ag.arena, 0, ag.n_params * sizeof(float));
    adapler_train_state s;
    adapler_train_state_init(&s);
    s.w = &aw, s.g = &ag, s.lambda = lambda, s.gamma = gamma, s.phi = phi, s.saliency = sal;
    bert_train_ctx c;
    bert_train_ctx_init(&c);
    bert_train_opts o = {.layer_input = adapler_train_layer_input, .layer_input_grad = adapler_train_layer_grad,
                         .user = &s};
    bert_batch b = {.n_seq = n_seq, .ids = ids, .off = off};
    REQUIRE(bert_train_forward(&c, &m, &b, &o) == ADP_OK);

    /* losses and masks */
    int C = m.cfg.num_labels;
    float *probs = mallocCheck(sizeof(float) * n_seq * C), *lossv = mallocCheck(sizeof(float) * n_seq);
    float *dlogits = callocCheck((size_t)n_seq * C, sizeof(float));
    softmax_xent_forward(lossv, probs, c.logits, labels, n_seq, C);
    double task = 0;
    for (int i = 0; i < n_seq; i++) task += lossv[i] / n_seq;
    float *want = fixture(&fx, "loss_task", 1);
    CHECK_NEAR(task, want[0], 1e-4 * fabs(want[0]) + 1e-6);
    free(want);
    want = fixture(&fx, "loss_cp", 1);
    CHECK_NEAR(s.loss_cp, want[0], 1e-3 * fabs(want[0]) + 1e-6);
    free(want);
    want = fixture(&fx, "loss_len", 1);
    CHECK_NEAR(s.loss_len, want[0], 1e-4 * fabs(want[0]) + 1e-6);
    free(want);
    for (int l = 0; l < m.cfg.layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "mask_%d", l);
        want = fixture(&fx, name, T);
        REQUIRE(want);
        test_compare(name, s.a + (size_t)(l + 1) * T, want, (size_t)T, 2e-3); /* log-masks down to -1e4 */
        free(want);
    }
    softmax_xent_backward(dlogits, probs, labels, 1.0f / n_seq, n_seq, C);

    /* channel A: encoder and predictor gradients */
    float *garena = alignedCheck(m.n_params * sizeof(float));
    memset(garena, 0, m.n_params * sizeof(float));
    bert_weights gw;
    bert_weights_point(&gw, &m.cfg, garena);
    s.channel = 0;
    REQUIRE(bert_train_backward(&c, &m, &gw, dlogits, NULL) == ADP_OK);
    bert_param *ps;
    int np = bert_param_list(&m.cfg, &gw, &ps);
    for (int i = 0; i < np; i++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", ps[i].name);
        size_t n = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
        want = fixture(&fx, name, (int64_t)n);
        REQUIRE(want);
        check_grad(name, ps[i].ptr, want, n, 1e-3);
        free(want);
    }
    free(ps);
    bert_extra_tensor *ex, *exg;
    int ne = adapler_weights_extra(&aw, &ex);
    adapler_weights_extra(&ag, &exg);
    for (int i = 0; i < ne; i++) {
        if (!strcmp(ex[i].name, "adapler.eta")) continue;
        char name[160];
        snprintf(name, sizeof name, "grad.%s", ex[i].name);
        size_t n = (size_t)ex[i].shape[0] * (size_t)(ex[i].ndim == 2 ? ex[i].shape[1] : 1);
        want = fixture(&fx, name, (int64_t)n);
        REQUIRE(want);
        check_grad(name, exg[i].data, want, n, 1e-3);
        free(want);
    }
    free(ex), free(exg);
    for (int l = 0; l < m.cfg.layers; l++) CHECK(ag.eta[l] == 0.0f); /* channel A leaves the etas alone */

    /* channel B: the etas */
    s.channel = 1;
    REQUIRE(bert_train_backward(&c, &m, NULL, dlogits, NULL) == ADP_OK);
    want = fixture(&fx, "grad.adapler.eta", m.cfg.layers);
    REQUIRE(want);
    check_grad("grad.adapler.eta", ag.eta, want, (size_t)m.cfg.layers, 1e-3);
    free(want);

    free(garena), free(probs), free(lossv), free(dlogits), free(ids), free(off32), free(off), free(labels), free(sal);
    bert_weights_free_layout(&gw);
    adapler_train_state_free(&s);
    bert_train_ctx_free(&c);
    adapler_weights_free(&aw), adapler_weights_free(&ag);
    st_close(&fx), st_close(&st);
    bert_model_free(&m);
}

TEST(adapler_train_gradients_match_pytorch) {
    soft_removal_case("--layers 2 --hidden 32 --heads 2 --inter 64 --seed 1", "1,7,30", 10.0f, 0.5f, 0.05f);
}

TEST(adapler_train_gradients_sharper_mask_more_layers) {
    soft_removal_case("--layers 3 --hidden 48 --heads 3 --inter 80 --seed 2", "2,5,17,40,9", 100.0f, 0.1f, 0.5f);
}

TEST(adapler_soft_S_shape) {
    /* continuous at delta (value -beta/lambda), 0 at x = 1, steep below delta */
    float d = 0.2f, lam = 10.0f, dx, dd;
    CHECK_NEAR(adapler_soft_S(d - 1e-6f, d, lam, NULL, NULL), -ADAPLER_BETA / lam, 1e-3);
    CHECK_NEAR(adapler_soft_S(d, d, lam, NULL, NULL), -ADAPLER_BETA / lam, 1e-6);
    CHECK_NEAR(adapler_soft_S(1.0f, d, lam, NULL, NULL), 0.0, 1e-7);
    adapler_soft_S(0.1f, d, lam, &dx, &dd);
    CHECK_NEAR(dx, lam / d, 1e-3);
    /* finite differences of both partials on both pieces */
    float xs[2] = {0.05f, 0.6f};
    for (int k = 0; k < 2; k++) {
        float h = 1e-3f;
        adapler_soft_S(xs[k], d, lam, &dx, &dd);
        double fx = (adapler_soft_S(xs[k] + h, d, lam, NULL, NULL) - adapler_soft_S(xs[k] - h, d, lam, NULL, NULL)) / (2 * h);
        double fd = (adapler_soft_S(xs[k], d + h, lam, NULL, NULL) - adapler_soft_S(xs[k], d - h, lam, NULL, NULL)) / (2 * h);
        CHECK_NEAR(dx, fx, 1e-2 * fabs(fx) + 1e-4);
        CHECK_NEAR(dd, fd, 1e-2 * fabs(fd) + 1e-4);
    }
}

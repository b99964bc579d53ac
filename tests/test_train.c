/* test_train.c: the training code against PyTorch autograd (tests/ref_train.py) and the
 * backward kernels against their naive twins.
 *
 * Gradient parity: every parameter's gradient, the gradient with respect to every layer's
 * input rows and to the soft mask, on random models of several shapes, packed batches of
 * mixed lengths (no padding), tokens dropped before some layers or after the attention
 * block, a soft mask on the keys, gradients injected on the layer inputs, and the MLM head.
 * The measure is the relative error of a tensor: max |C - ref| / max |ref|.  Except for the
 * attention key biases, whose gradient is exactly zero in theory (a bias on the keys adds
 * the same q.b to every score of a query row, which the softmax ignores): the reference
 * gives 1e-17, float32 rounding 1e-8, so there the absolute error must stay below 1e-6. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "bert_train.h"
#include "common.h"
#include "dropout.h"
#include "mlm.h"
#include "ops.h"
#include "optim.h"
#include "test.h"
#include "train_util.h"

#define GRAD_TOL 1e-3

static double rel_error(const float *got, const float *want, size_t n, double *ref_max, double *abs_err) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= num)) num = isnan(e) ? INFINITY : e;
        if (fabs((double)want[i]) > den) den = fabs((double)want[i]);
    }
    *ref_max = den, *abs_err = num;
    return den > 0 ? num / den : num;
}

/* Records a failure if the relative error exceeds tol; returns it. */
static double check_rel(const char *what, const float *got, const float *want, size_t n, double tol) {
    double ref_max, a;
    double e = rel_error(got, want, n, &ref_max, &a);
    if (strstr(what, "attention.self.key.bias")) { /* zero in theory: absolute error */
        if (!(a <= 1e-6)) test_fail(__FILE__, __LINE__, "%s: absolute error %.3g > 1e-6 (zero in theory)", what, a);
        return 0;
    }
    if (!(e <= tol))
        test_fail(__FILE__, __LINE__, "%s: relative error %.3g > %g (max |ref| %.3g)", what, e, tol, ref_max);
    else if (test_verbose())
        fprintf(stderr, "    %-56s %7zu values, max |ref| %.2e, rel err %.2e\n", what, n, ref_max, e);
    return e;
}

static float *read_f32(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        test_fail(__FILE__, __LINE__, "fixture lacks %s", name);
        return NULL;
    }
    int64_t n = st_numel(t);
    float *buf = mallocCheck(sizeof(float) * (size_t)(n ? n : 1));
    if (st_read_f32(f, t, buf, t->shape, t->ndim) != ADP_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", name, adp_errmsg());
        free(buf);
        return NULL;
    }
    if (numel) *numel = n;
    return buf;
}

static int32_t *read_i32(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        test_fail(__FILE__, __LINE__, "fixture lacks %s", name);
        return NULL;
    }
    int64_t n = st_numel(t);
    int32_t *buf = mallocCheck(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (st_read_i32(f, t, buf, n) != ADP_OK) {
        free(buf);
        return NULL;
    }
    if (numel) *numel = n;
    return buf;
}

/* Hooks driven by the fixture: the soft mask and injected gradients, by original position. */
typedef struct {
    int T0, H;
    const int32_t *off0;
    const float *logmask; /* (L, T0) or NULL */
    const float *inject;  /* (L, T0, H) or NULL */
    int calls_fwd, calls_bwd;
} fx_hooks;

static int seq_of(const int *off, int n_seq, int t) {
    int s = 0;
    while (s + 1 < n_seq && off[s + 1] <= t) s++;
    return s;
}

static int hook_fwd(void *user, const bert_layer_view *v) {
    fx_hooks *h = user;
    h->calls_fwd++;
    if (!h->logmask) return ADP_OK;
    for (int t = 0; t < v->T; t++) {
        int s = seq_of(v->off, v->n_seq, t);
        v->key_logmask[t] = h->logmask[(size_t)v->layer * h->T0 + h->off0[s] + v->pos[t]];
    }
    return ADP_OK;
}

static int hook_bwd(void *user, const bert_layer_view *v, float *d_hidden, const float *d_key_logmask) {
    fx_hooks *h = user;
    h->calls_bwd++;
    (void)d_key_logmask;
    if (!h->inject) return ADP_OK;
    for (int t = 0; t < v->T; t++) {
        int s = seq_of(v->off, v->n_seq, t);
        const float *g = h->inject + ((size_t)v->layer * h->T0 + h->off0[s] + v->pos[t]) * h->H;
        for (int i = 0; i < h->H; i++) d_hidden[(size_t)t * h->H + i] += g[i];
    }
    return ADP_OK;
}

static void parse_schedule(const char *s, int L, float *frac) {
    for (int l = 0; l < L; l++) frac[l] = 1.0f;
    if (!s) return;
    for (const char *p = s; *p;) {
        int l = atoi(p);
        const char *colon = strchr(p, ':');
        frac[l] = strtof(colon + 1, NULL);
        const char *comma = strchr(colon, ',');
        if (!comma) break;
        p = comma + 1;
    }
}

/* Make a model and fixture with ref_train.py, run the C forward and backward the same way,
 * compare.  flags: "softmask", "inject", "mlm" substrings. */
static void grad_case(const char *model_args, const char *lengths, int pairs, const char *schedule, const char *point,
                      const char *flags) {
    const char *dir = test_tmpdir();
    int softmask = strstr(flags, "softmask") != NULL, inject = strstr(flags, "inject") != NULL;
    int mlm = strstr(flags, "mlm") != NULL, saliency = strstr(flags, "saliency") != NULL;
    REQUIRE(test_python("ref_train.py", "grads --out %s %s --lengths %s %s %s%s --point %s %s %s %s %s", dir,
                        model_args, lengths, pairs ? "--pairs" : "", schedule ? "--schedule " : "",
                        schedule ? schedule : "", point, softmask ? "--softmask" : "", inject ? "--inject" : "",
                        mlm ? "--mlm" : "", saliency ? "--saliency" : "") == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/model", dir);
    bert_model m;
    st_file mst;
    REQUIRE(bert_model_load(&m, path, 0, &mst) == ADP_OK);
    bert_model_unpack(&m);
    const bert_config *cfg = &m.cfg;
    const int L = cfg->layers, H = cfg->hidden, C = cfg->num_labels;
    float *mlm_arena = NULL, *mlm_grad = NULL;
    mlm_weights hw, hg;
    if (mlm) {
        size_t n = mlm_weights_count(H, cfg->vocab_size);
        mlm_arena = mallocCheck(sizeof(float) * n);
        mlm_grad = callocCheck(n, sizeof(float));
        mlm_weights_point(&hw, H, cfg->vocab_size, mlm_arena);
        mlm_weights_point(&hg, H, cfg->vocab_size, mlm_grad);
        REQUIRE(mlm_weights_load(&hw, &mst) == ADP_OK);
    }
    st_close(&mst);

    snprintf(path, sizeof path, "%s/fx.safetensors", dir);
    st_file fx;
    REQUIRE(st_open(&fx, path) == ADP_OK);
    int64_t T0 = 0, n_off = 0, n_lab = 0;
    int32_t *ids = read_i32(&fx, "input_ids", &T0), *types = read_i32(&fx, "token_type_ids", NULL);
    int32_t *off32 = read_i32(&fx, "offsets", &n_off), *labels = read_i32(&fx, "labels", &n_lab);
    REQUIRE(ids && types && off32 && labels);
    const int n_seq = (int)n_off - 1;
    int *off = mallocCheck(sizeof(int) * (size_t)n_off);
    for (int s = 0; s < n_off; s++) off[s] = off32[s];
    fx_hooks hk = {.T0 = (int)T0, .H = H, .off0 = off32};
    float *logmask = softmask ? read_f32(&fx, "logmask", NULL) : NULL;
    float *inj = inject ? read_f32(&fx, "inject", NULL) : NULL;
    hk.logmask = logmask, hk.inject = inj;

    prune_strategy ps;
    float *frac = mallocCheck(sizeof(float) * (size_t)L);
    parse_schedule(schedule, L, frac);
    REQUIRE(prune_schedule_create(&ps, L, frac, !strcmp(point, "attention") ? PRUNE_AFTER_ATTENTION : PRUNE_AT_INPUT) ==
            ADP_OK);
    bert_train_opts o = {.prune = schedule ? &ps : NULL, .layer_input = hook_fwd, .layer_input_grad = hook_bwd,
                         .user = &hk, .keep_input_grads = 1};
    bert_batch b = {.n_seq = n_seq, .ids = ids, .types = types, .off = off};
    bert_train_ctx c;
    bert_train_ctx_init(&c);
    if (saliency) /* d logit_label / d h_l: its own forward, then the same comparisons */
        REQUIRE(bert_logit_grads(&c, &m, &b, labels, &o) == ADP_OK);
    else
        REQUIRE(bert_train_forward(&c, &m, &b, &o) == ADP_OK);
    float *want_logits = read_f32(&fx, "logits", NULL);
    check_rel("logits", c.logits, want_logits, (size_t)n_seq * C, 1e-4);

    /* loss = mean CE over sequences (+ mean MLM CE over masked tokens) (+ inject term) */
    float *lossv = mallocCheck(sizeof(float) * (size_t)n_seq), *probs = mallocCheck(sizeof(float) * (size_t)n_seq * C);
    float *dlogits = callocCheck((size_t)n_seq * C, sizeof(float));
    softmax_xent_forward(lossv, probs, c.logits, labels, n_seq, C);
    softmax_xent_backward(dlogits, probs, labels, 1.0f / (float)n_seq, n_seq, C);
    size_t n_w = bert_weights_count(cfg);
    float *garena = callocCheck(n_w, sizeof(float));
    bert_weights g;
    bert_weights_point(&g, cfg, garena);
    float *d_out = NULL;
    double loss = 0;
    for (int s = 0; s < n_seq; s++) loss += lossv[s] / n_seq;
    mlm_ctx mc;
    mlm_ctx_init(&mc);
    if (mlm) {
        int32_t *ml = read_i32(&fx, "mlm_labels", NULL);
        REQUIRE(ml && c.T_out == T0);
        int *rows = mallocCheck(sizeof(int) * (size_t)T0), M = 0;
        int32_t *tg = mallocCheck(sizeof(int32_t) * (size_t)T0);
        for (int t = 0; t < T0; t++)
            if (ml[t] >= 0) rows[M] = t, tg[M++] = ml[t];
        REQUIRE(M > 0);
        loss += mlm_forward(&mc, &hw, m.w.word_emb, c.out, rows, tg, M, cfg->ln_eps, NULL);
        d_out = callocCheck((size_t)T0 * H, sizeof(float));
        mlm_backward(&mc, &hg, g.word_emb, d_out, &hw, m.w.word_emb, 1.0f);
        free(rows), free(tg), free(ml);
    }
    if (!saliency) REQUIRE(bert_train_backward(&c, &m, &g, dlogits, d_out) == ADP_OK);
    CHECK_INT(hk.calls_fwd, L);
    CHECK_INT(hk.calls_bwd, L);
    if (!inject && !saliency) {
        float *want_loss = read_f32(&fx, "loss", NULL);
        if (want_loss) CHECK_NEAR(loss, want_loss[0], 1e-4 * fabs(want_loss[0]) + 1e-6);
        free(want_loss);
    }

    /* every parameter */
    bert_param *pl;
    int np = bert_param_list(cfg, &m.w, &pl);
    double worst = 0;
    char name[200];
    for (int i = 0; i < np && !saliency; i++) {
        snprintf(name, sizeof name, "grad.%s", pl[i].name);
        int64_t n;
        float *want = read_f32(&fx, name, &n);
        if (!want) continue;
        double e = check_rel(pl[i].name, garena + (pl[i].ptr - m.arena), want, (size_t)n, GRAD_TOL);
        worst = e > worst ? e : worst;
        free(want);
    }
    free(pl);
    if (mlm) {
        int nh = mlm_param_list(&hw, &pl);
        for (int i = 0; i < nh; i++) {
            snprintf(name, sizeof name, "grad.%s", pl[i].name);
            int64_t n;
            float *want = read_f32(&fx, name, &n);
            if (!want) continue;
            double e = check_rel(pl[i].name, mlm_grad + (pl[i].ptr - mlm_arena), want, (size_t)n, GRAD_TOL);
            worst = e > worst ? e : worst;
            free(want);
        }
        free(pl);
    }
    /* layer inputs and soft masks */
    for (int l = 0; l < L; l++) {
        int T;
        const int32_t *pos;
        bert_train_hidden(&c, l, &T, NULL, &pos);
        int64_t n;
        snprintf(name, sizeof name, "positions_%d", l);
        int32_t *wp = read_i32(&fx, name, &n);
        REQUIRE(wp);
        CHECK_INT(n, T);
        for (int t = 0; t < T && t < n; t++)
            if (pos[t] != wp[t]) {
                test_fail(__FILE__, __LINE__, "layer %d row %d: position %d, reference %d", l, t, pos[t], wp[t]);
                break;
            }
        free(wp);
        snprintf(name, sizeof name, "dhidden_%d", l);
        float *want = read_f32(&fx, name, &n);
        if (want && n == (int64_t)T * H) {
            double e = check_rel(name, bert_train_hidden_grad(&c, l), want, (size_t)n, GRAD_TOL);
            worst = e > worst ? e : worst;
        }
        free(want);
        if (softmask) {
            snprintf(name, sizeof name, "dlogmask_%d", l);
            want = read_f32(&fx, name, &n);
            if (want && n == T) {
                double e = check_rel(name, bert_train_logmask_grad(&c, l), want, (size_t)n, GRAD_TOL);
                worst = e > worst ? e : worst;
            }
            free(want);
        }
    }
    if (test_verbose()) fprintf(stderr, "    worst relative error %.2e\n", worst);

    ps.destroy(&ps);
    mlm_ctx_free(&mc);
    bert_train_ctx_free(&c);
    st_close(&fx);
    free(ids), free(types), free(off32), free(labels), free(off), free(logmask), free(inj), free(frac);
    free(want_logits), free(lossv), free(probs), free(dlogits), free(garena), free(d_out), free(mlm_arena), free(mlm_grad);
    bert_weights_free_layout(&g);
    bert_model_free(&m);
}

#define MIXED "1,5,17,40"

TEST(grad_parity_dense) {
    grad_case("--layers 2 --hidden 32 --heads 2 --inter 64 --seed 1", MIXED, 1, NULL, "input", "");
}

TEST(grad_parity_shapes) {
    grad_case("--layers 3 --hidden 48 --heads 4 --inter 96 --seed 2", "3,9,64", 0, NULL, "input", "");
    grad_case("--layers 1 --hidden 16 --heads 1 --inter 40 --seed 3", "2,2,7,1", 1, NULL, "input", "");
}

TEST(grad_parity_soft_mask_and_injected_grads) {
    grad_case("--layers 3 --hidden 32 --heads 4 --inter 64 --seed 4", MIXED, 1, NULL, "input", "softmask inject");
}

TEST(grad_parity_dropped_at_input) {
    grad_case("--layers 4 --hidden 32 --heads 2 --inter 64 --seed 5", "2,9,30,33", 1, "1:0.5,2:0.3,3:0.7", "input",
              "softmask inject");
}

TEST(grad_parity_dropped_after_attention) {
    grad_case("--layers 3 --hidden 32 --heads 2 --inter 48 --seed 6", "2,9,30", 0, "0:0.5,1:0.6", "attention",
              "softmask");
}

TEST(grad_parity_dropped_to_cls_only) {
    grad_case("--layers 3 --hidden 24 --heads 3 --inter 48 --seed 7", "1,2,20", 0, "0:0.5,1:0", "input", "inject");
}

TEST(saliency_grads_match_autograd) {
    /* d logit_c / d h_l (bert_logit_grads), with tokens dropped and a soft mask */
    grad_case("--layers 3 --hidden 32 --heads 2 --inter 64 --seed 9", MIXED, 1, "1:0.5", "input", "saliency softmask");
}

TEST(grad_parity_mlm_head) {
    grad_case("--layers 2 --hidden 32 --heads 2 --inter 64 --seed 8", "3,12,25", 1, NULL, "input", "mlm");
}

/* ---- dropout: the PyTorch parity runs without it, so check the gradient with dropout on
 * against finite differences of the same function (same seed = same masks) ---- */

static int fd_logmask(void *user, const bert_layer_view *v) {
    (void)user;
    for (int t = 0; t < v->T; t++) v->key_logmask[t] = -0.5f * (float)(v->pos[t] % 3); /* a fixed soft mask */
    return ADP_OK;
}

#define REQUIRE_RET(x)                                                                     \
    do {                                                                                   \
        if (!(x)) {                                                                        \
            test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #x);                              \
            return NAN;                                                                    \
        }                                                                                  \
    } while (0)

static double fd_loss(bert_train_ctx *c, const bert_model *m, const bert_batch *b, const bert_train_opts *o,
                      const int32_t *labels) {
    REQUIRE_RET(bert_train_forward(c, m, b, o) == ADP_OK);
    const int C = m->cfg.num_labels;
    double loss = 0;
    for (int s = 0; s < b->n_seq; s++) {
        const float *z = c->logits + (size_t)s * C;
        double mx = z[0], sum = 0;
        for (int k = 1; k < C; k++) mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < C; k++) sum += exp(z[k] - mx);
        loss += (log(sum) + mx - z[labels[s]]) / b->n_seq;
    }
    return loss;
}

TEST(grad_with_dropout_matches_finite_differences) {
    bert_config cfg;
    bert_config_init(&cfg, 50, 16, 2, 2, 32, 64, 3);
    cfg.init_range = 0.3f;
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_config_free(&cfg);
    bert_model_init_random(&m, 11);
    bert_model_unpack(&m);
    int32_t ids[40], labels[3] = {0, 2, 1};
    int off[4] = {0, 7, 25, 40};
    unsigned rs = 5;
    for (int t = 0; t < 40; t++) ids[t] = 5 + (int32_t)(test_rand(&rs) % 45);
    bert_batch b = {.n_seq = 3, .ids = ids, .types = NULL, .off = off};
    float frac[2] = {1.0f, 0.6f};
    prune_strategy ps;
    REQUIRE(prune_schedule_create(&ps, 2, frac, PRUNE_AT_INPUT) == ADP_OK);
    bert_train_opts o = {.hidden_dropout = 0.3f, .attn_dropout = 0.2f, .seed = 99, .prune = &ps,
                         .layer_input = fd_logmask};
    bert_train_ctx c;
    bert_train_ctx_init(&c);
    REQUIRE(bert_train_forward(&c, &m, &b, &o) == ADP_OK);
    float probs[9], lossv[3], dlog[9] = {0};
    softmax_xent_forward(lossv, probs, c.logits, labels, 3, 3);
    softmax_xent_backward(dlog, probs, labels, 1.0f / 3, 3, 3);
    float *garena = callocCheck(m.n_params, sizeof(float));
    bert_weights g;
    bert_weights_point(&g, &m.cfg, garena);
    REQUIRE(bert_train_backward(&c, &m, &g, dlog, NULL) == ADP_OK);
    /* a few random directions over all parameters */
    float *w0 = mallocCheck(sizeof(float) * m.n_params), *u = mallocCheck(sizeof(float) * m.n_params);
    memcpy(w0, m.arena, sizeof(float) * m.n_params);
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        double dir = 0, norm = 0;
        for (size_t i = 0; i < m.n_params; i++) u[i] = test_randf(&rs), norm += (double)u[i] * u[i];
        norm = sqrt(norm);
        for (size_t i = 0; i < m.n_params; i++) u[i] = (float)(u[i] / norm), dir += (double)garena[i] * u[i];
        const double eps = 2e-3;
        for (size_t i = 0; i < m.n_params; i++) m.arena[i] = w0[i] + (float)eps * u[i];
        double lp = fd_loss(&c, &m, &b, &o, labels);
        for (size_t i = 0; i < m.n_params; i++) m.arena[i] = w0[i] - (float)eps * u[i];
        double lm = fd_loss(&c, &m, &b, &o, labels);
        memcpy(m.arena, w0, sizeof(float) * m.n_params);
        double num = (lp - lm) / (2 * eps), e = fabs(num - dir) / fabs(dir);
        if (test_verbose()) fprintf(stderr, "    direction %d: analytic %.6g, finite differences %.6g (rel %.2e)\n", k, dir, num, e);
        CHECK_MSG(e < 1e-2, "direction %d: analytic %.6g vs finite differences %.6g", k, dir, num);
        worst = e > worst ? e : worst;
    }
    /* a different dropout seed changes the loss (the masks are live) */
    o.seed = 100;
    double l2 = fd_loss(&c, &m, &b, &o, labels);
    o.seed = 99;
    CHECK(fabs(l2 - fd_loss(&c, &m, &b, &o, labels)) > 1e-4);
    ps.destroy(&ps);
    bert_train_ctx_free(&c);
    bert_weights_free_layout(&g);
    free(garena), free(w0), free(u);
    bert_model_free(&m);
}

/* ---- AdamW: a few full steps (forward, backward, clipping, AdamW, schedule) against
 * torch.optim.AdamW + clip_grad_norm_ + LambdaLR on the same batch ---- */

TEST(adamw_steps_match_torch) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_train.py", "grads --out %s --layers 2 --hidden 32 --heads 2 --inter 64 --seed 12 --lengths 3,10,21 --pairs",
                        dir) == 0);
    REQUIRE(test_python("ref_train.py", "steps --model %s/model --fx %s/fx.safetensors --out %s/after.safetensors --steps 4 "
                        "--lr 1e-3 --warmup 2 --total 10 --wd 0.1 --clip 0.5 --eps 1e-6", dir, dir, dir) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/model", dir);
    bert_model m;
    REQUIRE(bert_model_load(&m, path, 0, NULL) == ADP_OK);
    bert_model_unpack(&m);
    float *w0 = mallocCheck(sizeof(float) * m.n_params);
    memcpy(w0, m.arena, sizeof(float) * m.n_params);
    snprintf(path, sizeof path, "%s/fx.safetensors", dir);
    st_file fx;
    REQUIRE(st_open(&fx, path) == ADP_OK);
    int64_t n_off = 0;
    int32_t *ids = read_i32(&fx, "input_ids", NULL), *types = read_i32(&fx, "token_type_ids", NULL);
    int32_t *off32 = read_i32(&fx, "offsets", &n_off), *labels = read_i32(&fx, "labels", NULL);
    REQUIRE(ids && types && off32 && labels);
    st_close(&fx);
    const int n_seq = (int)n_off - 1, C = m.cfg.num_labels;
    int off[16];
    for (int s = 0; s <= n_seq; s++) off[s] = off32[s];
    bert_batch b = {.n_seq = n_seq, .ids = ids, .types = types, .off = off};
    float *garena = callocCheck(m.n_params, sizeof(float));
    bert_weights g;
    bert_weights_point(&g, &m.cfg, garena);
    adamw opt;
    adamw_init(&opt, 0.9f, 0.999f, 1e-6f, 0.1f);
    adamw_add_bert(&opt, &m, garena, 0);
    bert_train_ctx c;
    bert_train_ctx_init(&c);
    float probs[64], lossv[16], dlog[64];
    for (int step = 0; step < 4; step++) {
        REQUIRE(bert_train_forward(&c, &m, &b, NULL) == ADP_OK);
        softmax_xent_forward(lossv, probs, c.logits, labels, n_seq, C);
        memset(dlog, 0, sizeof dlog);
        softmax_xent_backward(dlog, probs, labels, 1.0f / (float)n_seq, n_seq, C);
        grad_zero(&opt);
        REQUIRE(bert_train_backward(&c, &m, &g, dlog, NULL) == ADP_OK);
        double norm = grad_clip(&opt, 0.5);
        if (test_verbose()) fprintf(stderr, "    step %d: grad norm %.4f, lr %.3g\n", step, norm, lr_linear_schedule(1e-3, step, 2, 10));
        if (step == 0) CHECK(norm > 0.5); /* clipping is exercised */
        adamw_step(&opt, (float)lr_linear_schedule(1e-3, step, 2, 10));
    }
    snprintf(path, sizeof path, "%s/after.safetensors", dir);
    REQUIRE(st_open(&fx, path) == ADP_OK);
    bert_param *pl;
    int np = bert_param_list(&m.cfg, &m.w, &pl);
    double worst = 0;
    for (int i = 0; i < np; i++) {
        int64_t n;
        float *want = read_f32(&fx, pl[i].name, &n);
        if (!want) continue;
        size_t at = (size_t)(pl[i].ptr - m.arena);
        float *dc = mallocCheck(sizeof(float) * (size_t)n), *dt = mallocCheck(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) dc[k] = pl[i].ptr[k] - w0[at + k], dt[k] = want[k] - w0[at + k];
        char what[160];
        snprintf(what, sizeof what, "update of %s", pl[i].name);
        if (!strstr(pl[i].name, "attention.self.key.bias")) { /* zero gradient in theory: eps-dominated */
            double e = check_rel(what, dc, dt, (size_t)n, 1e-3);
            worst = e > worst ? e : worst;
        }
        free(want), free(dc), free(dt);
    }
    if (test_verbose()) fprintf(stderr, "    worst relative error of the parameter updates %.2e\n", worst);
    free(pl);
    st_close(&fx);
    bert_train_ctx_free(&c);
    bert_weights_free_layout(&g);
    adamw_free(&opt);
    free(garena), free(w0), free(ids), free(types), free(off32), free(labels);
    bert_model_free(&m);
}

/* ---- kernels against their naive twins ---- */

static void fill(float *x, size_t n, unsigned *s, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * test_randf(s);
}

TEST(linear_backward_matches_naive) {
    unsigned s = 3;
    const int n = 37, in = 70, out = 45;
    float *dout = mallocCheck(sizeof(float) * n * out), *inp = mallocCheck(sizeof(float) * n * in);
    float *w = mallocCheck(sizeof(float) * out * in);
    fill(dout, (size_t)n * out, &s, 1), fill(inp, (size_t)n * in, &s, 1), fill(w, (size_t)out * in, &s, 1);
    float *a[3], *b[3];
    size_t sz[3] = {(size_t)n * in, (size_t)out * in, (size_t)out};
    for (int k = 0; k < 3; k++) {
        a[k] = mallocCheck(sizeof(float) * sz[k]), b[k] = mallocCheck(sizeof(float) * sz[k]);
        fill(a[k], sz[k], &s, 1); /* both accumulate onto the same non-zero start */
        memcpy(b[k], a[k], sizeof(float) * sz[k]);
    }
    linear_backward(a[0], a[1], a[2], dout, inp, w, n, in, out);
    linear_backward_naive(b[0], b[1], b[2], dout, inp, w, n, in, out);
    test_compare("dinp", a[0], b[0], sz[0], 1e-4);
    test_compare("dw", a[1], b[1], sz[1], 1e-4);
    test_compare("db", a[2], b[2], sz[2], 1e-4);
    for (int k = 0; k < 3; k++) free(a[k]), free(b[k]);
    free(dout), free(inp), free(w);
}

TEST(layernorm_backward_matches_naive) {
    unsigned s = 4;
    const int n = 300, d = 48; /* several row blocks */
    float *x = mallocCheck(sizeof(float) * n * d), *dout = mallocCheck(sizeof(float) * n * d), g[48], y[48 * 300];
    float mean[300], rstd[300], b0[48] = {0};
    fill(x, (size_t)n * d, &s, 3), fill(dout, (size_t)n * d, &s, 1), fill(g, d, &s, 1);
    for (int i = 0; i < n * d; i++) x[i] += 2.0f;
    layernorm_forward(y, mean, rstd, x, g, b0, n, d, 1e-12f);
    float *da = callocCheck((size_t)n * d, sizeof(float)), *db_ = callocCheck((size_t)n * d, sizeof(float));
    float ga[48] = {0}, gb[48] = {0}, ba[48] = {0}, bb[48] = {0};
    layernorm_backward(da, ga, ba, dout, x, mean, rstd, g, n, d);
    layernorm_backward_naive(db_, gb, bb, dout, x, g, n, d, 1e-12f);
    test_compare("dinp", da, db_, (size_t)n * d, 1e-4);
    test_compare("dg", ga, gb, d, 1e-3);
    test_compare("db", ba, bb, d, 1e-3);
    free(x), free(dout), free(da), free(db_);
}

TEST(attention_backward_matches_naive) {
    unsigned s = 5;
    const int d = 24, A = 3, n_seq = 3, off[4] = {0, 1, 9, 40}, T = 40;
    float *qkv = mallocCheck(sizeof(float) * T * 3 * d), *dctx = mallocCheck(sizeof(float) * T * d), lm[40];
    fill(qkv, (size_t)T * 3 * d, &s, 1.5f), fill(dctx, (size_t)T * d, &s, 1);
    for (int t = 0; t < T; t++) lm[t] = -2.0f * (float)(test_rand(&s) % 3);
    size_t prob_off[3], po = 0;
    for (int q = 0; q < n_seq; q++) prob_off[q] = po, po += (size_t)A * (off[q + 1] - off[q]) * (off[q + 1] - off[q]);
    float *probs = mallocCheck(sizeof(float) * po), *ctx = mallocCheck(sizeof(float) * T * d);
    float *scratch = mallocCheck(sizeof(float) * ((size_t)omp_get_max_threads() * 2 * 31 * 31 + (size_t)A * T));
    float dpk[40];
    for (int t = 0; t < T; t++) dpk[t] = test_randf(&s);
    for (int k = 0; k < 3; k++) { /* no dropout; dropout 0.25; dropout and a gradient on P by key */
        float p = k ? 0.25f : 0.0f;
        const float *u = k == 2 ? dpk : NULL;
        attention_forward_train(ctx, probs, prob_off, qkv, off, n_seq, d, A, 0.4f, lm, p, 77, scratch);
        float *ga = mallocCheck(sizeof(float) * T * 3 * d), *gb = mallocCheck(sizeof(float) * T * 3 * d);
        float la[40] = {0}, lb[40] = {0};
        attention_backward(ga, la, dctx, u, qkv, probs, prob_off, off, n_seq, d, A, 0.4f, p, 77, scratch);
        attention_backward_naive(gb, lb, dctx, u, qkv, probs, prob_off, off, n_seq, d, A, 0.4f, p, 77);
        const char *what[3][2] = {{"dqkv", "dlogmask"}, {"dqkv (dropout 0.25)", "dlogmask (dropout 0.25)"},
                                  {"dqkv (dropout, dprobs_key)", "dlogmask (dropout, dprobs_key)"}};
        test_compare(what[k][0], ga, gb, (size_t)T * 3 * d, 1e-4);
        test_compare(what[k][1], la, lb, T, 1e-4);
        free(ga), free(gb);
    }
    /* dprobs_key's meaning: the gradient of sum_t u_t sum_{h,q} P_h[q, t] (dctx = 0, no
     * dropout), against central differences in double */
    float *g = mallocCheck(sizeof(float) * T * 3 * d), *zero = callocCheck((size_t)T * d, sizeof(float));
    attention_forward_train(ctx, probs, prob_off, qkv, off, n_seq, d, A, 0.4f, lm, 0.0f, 77, scratch);
    attention_backward(g, NULL, zero, dpk, qkv, probs, prob_off, off, n_seq, d, A, 0.4f, 0.0f, 77, scratch);
    double worst = 0, scale = 1e-6;
    for (int e = 0; e < T * 3 * d; e += 7) {
        double f[2];
        const float keep = qkv[e];
        for (int side = 0; side < 2; side++) {
            qkv[e] = keep + (side ? 1e-2f : -1e-2f);
            attention_forward_naive(ctx, probs, prob_off, qkv, off, n_seq, d, A, 0.4f, lm);
            f[side] = 0;
            for (int q = 0; q < n_seq; q++) {
                int n = off[q + 1] - off[q];
                for (int h = 0; h < A; h++)
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j < n; j++)
                            f[side] += (double)dpk[off[q] + j] * probs[prob_off[q] + ((size_t)h * n + i) * n + j];
            }
        }
        qkv[e] = keep;
        double num = (f[1] - f[0]) / 2e-2;
        worst = fmax(worst, fabs(num - g[e]));
        scale = fmax(scale, fabs(num));
    }
    CHECK_MSG(worst <= 2e-3 * scale, "dprobs_key: max |analytic - numeric| %.3g (scale %.3g)", worst, scale);
    if (test_verbose()) fprintf(stderr, "    dprobs_key vs central differences: %.2e (scale %.2e)\n", worst, scale);
    free(g), free(zero);
    free(qkv), free(dctx), free(probs), free(ctx), free(scratch);
}

TEST(elementwise_backward_kernels) {
    /* gelu' against a central difference of the libm GELU */
    float x[200], dx[200], one[200];
    for (int i = 0; i < 200; i++) x[i] = -6.0f + 12.0f * (float)i / 199.0f, one[i] = 1.0f;
    gelu_backward(dx, x, one, 200);
    double worst = 0;
    for (int i = 0; i < 200; i++) {
        double h = 1e-3, num = ((double)gelu_naive(x[i] + (float)h) - gelu_naive(x[i] - (float)h)) / (2 * h);
        worst = fmax(worst, fabs(num - dx[i]));
    }
    CHECK_MSG(worst < 2e-3, "gelu' vs central difference: %g", worst);
    /* embeddings: repeated ids accumulate */
    const int n = 6, d = 40;
    int32_t ids[6] = {3, 1, 3, 3, 0, 1}, pos[6] = {0, 1, 2, 0, 1, 2}, types[6] = {0, 0, 1, 1, 0, 1};
    float dout[240], dw[4 * 40] = {0}, dp[3 * 40] = {0}, dt[2 * 40] = {0};
    unsigned s = 9;
    fill(dout, 240, &s, 1);
    embedding_backward(dw, dp, dt, dout, ids, pos, types, n, d);
    for (int i = 0; i < d; i++) {
        CHECK_NEAR(dw[3 * d + i], dout[0 * d + i] + dout[2 * d + i] + dout[3 * d + i], 1e-6);
        CHECK_NEAR(dp[1 * d + i], dout[1 * d + i] + dout[4 * d + i], 1e-6);
        CHECK_NEAR(dt[1 * d + i], dout[2 * d + i] + dout[3 * d + i] + dout[5 * d + i], 1e-6);
        CHECK_NEAR(dw[2 * d + i], 0.0, 0);
    }
    /* dropout: rate, scaling, and the backward uses the forward's mask */
    const size_t N = 200000;
    float *a = mallocCheck(sizeof(float) * N), *b = mallocCheck(sizeof(float) * N);
    for (size_t i = 0; i < N; i++) a[i] = 1.0f;
    dropout_forward(b, a, N, 0.1f, 1234);
    size_t zeros = 0, same = 0;
    for (size_t i = 0; i < N; i++) zeros += b[i] == 0.0f;
    CHECK_MSG(fabs((double)zeros / N - 0.1) < 0.005, "dropped %zu of %zu", zeros, N);
    float *c2 = mallocCheck(sizeof(float) * N);
    dropout_backward(c2, a, N, 0.1f, 1234);
    for (size_t i = 0; i < N; i++) same += c2[i] == b[i];
    CHECK_INT(same, N);
    CHECK_NEAR(b[zeros == N ? 0 : 0] == 0.0f ? 1.0f / 0.9f : b[0], 1.0f / 0.9f, 1e-6);
    free(a), free(b), free(c2);
}

/* ---- schedule, scores, batch plans ---- */

TEST(lr_schedule_and_scores) {
    /* warm-up over 4 steps of 10, then linear decay; no step has lr 0 */
    double want[10] = {0.25, 0.5, 0.75, 1.0, 1.0, 5.0 / 6, 4.0 / 6, 3.0 / 6, 2.0 / 6, 1.0 / 6};
    for (int s = 0; s < 10; s++) CHECK_NEAR(lr_linear_schedule(1.0, s, 4, 10), want[s], 1e-12);
    CHECK_NEAR(lr_linear_schedule(2e-4, 0, 0, 5), 2e-4, 1e-15);
    /* macro-F1 as sklearn's f1_score(average="macro") over labels in gold or predictions:
     * gold 0 0 1 1 2, pred 0 1 1 1 1 -> F1 per class 2/3, 2*2/(2+4), 0 -> mean 0.4444; the
     * row with gold -1 is skipped, label 3 appears nowhere */
    int32_t gold[6] = {0, 0, 1, 1, 2, -1}, pred[6] = {0, 1, 1, 1, 1, 2};
    double acc, f1;
    train_scores(gold, pred, 6, 4, &acc, &f1);
    CHECK_NEAR(acc, 3.0 / 5, 1e-12);
    CHECK_NEAR(f1, (2.0 / 3 + 2.0 / 3 + 0.0) / 3, 1e-12);
}

TEST(batch_plan_covers_every_example_once) {
    enum { N = 1000 };
    int len[N];
    unsigned s = 21;
    for (int i = 0; i < N; i++) len[i] = 2 + (int)(test_rand(&s) % 120);
    batch_plan p;
    batch_plan_make(&p, len, N, 32, 2000, 7);
    static int seen[N];
    memset(seen, 0, sizeof seen);
    CHECK_INT(p.boff[p.n_batches], N);
    size_t spread = 0;
    for (size_t b = 0; b < p.n_batches; b++) {
        size_t n = p.boff[b + 1] - p.boff[b], tok = 0;
        int lo = 1 << 30, hi = 0;
        CHECK(n >= 1 && n <= 32);
        for (size_t i = p.boff[b]; i < p.boff[b + 1]; i++) {
            seen[p.order[i]]++;
            tok += (size_t)len[p.order[i]];
            lo = ADP_MIN(lo, len[p.order[i]]), hi = ADP_MAX(hi, len[p.order[i]]);
        }
        CHECK(tok <= 2000 || n == 1);
        spread += (size_t)(hi - lo);
    }
    for (int i = 0; i < N; i++) CHECK_INT(seen[i], 1);
    /* bucketing: sequences in a batch have similar lengths (random batches would spread ~110) */
    CHECK_MSG((double)spread / p.n_batches < 20, "mean length spread per batch %.1f", (double)spread / p.n_batches);
    /* the same seed gives the same plan, another seed another order */
    batch_plan q;
    batch_plan_make(&q, len, N, 32, 2000, 7);
    CHECK(q.n_batches == p.n_batches && memcmp(q.order, p.order, sizeof(size_t) * N) == 0);
    batch_plan_free(&q);
    batch_plan_make(&q, len, N, 32, 2000, 8);
    CHECK(memcmp(q.order, p.order, sizeof(size_t) * N) != 0);
    batch_plan_free(&q);
    batch_plan_free(&p);
}

/* A tensor's lr_scale is its own learning rate: after the same gradients, a tensor at scale
 * s moves as the same tensor in an optimizer run at s times the rate (decay included), and
 * tensors left at scale 1 move exactly as without any scale. */
TEST(adamw_lr_scale_is_a_group_rate) {
    enum { N = 257 };
    float w0[N], g[N];
    unsigned st = 3;
    for (int i = 0; i < N; i++) w0[i] = test_randf(&st), g[i] = 0.1f * test_randf(&st);
    float a[N], b[N], c[N], d[N];
    memcpy(a, w0, sizeof a), memcpy(b, w0, sizeof b), memcpy(c, w0, sizeof c), memcpy(d, w0, sizeof d);
    adamw o1, o2, o3;
    adamw_init(&o1, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_add(&o1, "enc.w", a, g, N, 0);
    adamw_add(&o1, "cp.w", b, g, N, 0);
    CHECK_INT(adamw_set_lr_scale(&o1, "cp.", 3.0f), 1);
    adamw_init(&o2, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_add(&o2, "cp.w", c, g, N, 0);
    adamw_init(&o3, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_add(&o3, "enc.w", d, g, N, 0);
    for (int k = 0; k < 4; k++) {
        adamw_step(&o1, 1e-3f);
        adamw_step(&o2, 3e-3f);
        adamw_step(&o3, 1e-3f);
    }
    test_compare("scaled tensor against an optimizer at 3x the rate", b, c, N, 1e-6);
    CHECK(memcmp(a, d, sizeof a) == 0); /* scale 1: bit for bit */
    double moved_a = 0, moved_b = 0;
    for (int i = 0; i < N; i++) moved_a += fabs(a[i] - w0[i]), moved_b += fabs(b[i] - w0[i]);
    CHECK(moved_b > 2.5 * moved_a);
    adamw_free(&o1), adamw_free(&o2), adamw_free(&o3);
}

/* test_row_scale_train.c: the training forward's row-scale hooks (bert_train.h) and the two
 * methods built on them, PoWER-BERT's Soft-Extract and LTP's soft mask (baselines/fit.h),
 * against PyTorch autograd (tests/ref_row_scale_train.py): losses, every encoder gradient,
 * the method's own parameters' gradients, and for the bare mechanism d loss / d scale at
 * both points; then `adapler train --method power|ltp` end to end on the planted task. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines/baselines.h"
#include "baselines/fit.h"
#include "bert_train.h"
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

/* Relative error of a gradient: max |got - want| / max(max |want|, 1e-4); returns it. */
static double check_grad(const char *name, const float *got, const float *want, size_t n, double tol) {
    double num = 0, den = 1e-4;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > num) num = e, worst = i;
        den = fmax(den, fabs((double)want[i]));
    }
    if (!(num / den <= tol))
        test_fail(__FILE__, __LINE__, "%s: relative error %.3g at [%zu] (%.6g, want %.6g; scale %.3g)", name, num / den,
                  worst, (double)got[worst], (double)want[worst], den);
    else if (test_verbose())
        fprintf(stderr, "    %-60s rel err %.2e\n", name, num / den);
    return num / den;
}

/* ---- the bare mechanism: fixed scales at both points, a loss on attention received ---- */
typedef struct {
    int L;
    float **mid, **out, **w;       /* (L) fixture arrays, by batch token */
    float **d_mid, **d_out;        /* (L) captured d loss / d scale */
    double loss_recv;
} hook_case;

static int hook_scale(void *user, const bert_scale_view *v) {
    hook_case *h = user;
    const float *src = v->point == BERT_SCALE_OUTPUT ? h->out[v->layer] : h->mid[v->layer];
    for (int t = 0; t < v->T; t++) v->scale[t] = src[t]; /* nothing dropped: row t is token t */
    if (v->point == BERT_SCALE_OUTPUT) {
        double *recv = mallocCheck(sizeof(double) * (size_t)v->T_attn);
        for (int s = 0; s < v->n_seq; s++) {
            int r0 = v->attn_off[s], n = v->attn_off[s + 1] - r0;
            attn_received(recv + r0, NULL, v->probs + v->prob_off[s], n, v->n_heads);
        }
        for (int t = 0; t < v->T_attn; t++) h->loss_recv += h->w[v->layer][t] * recv[t];
        free(recv);
    }
    return ADP_OK;
}

static int hook_grad(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key) {
    hook_case *h = user;
    float *dst = v->point == BERT_SCALE_OUTPUT ? h->d_out[v->layer] : h->d_mid[v->layer];
    memcpy(dst, d_scale, sizeof(float) * (size_t)v->T);
    if (v->point == BERT_SCALE_OUTPUT)
        for (int t = 0; t < v->T_attn; t++) d_probs_key[t] += h->w[v->layer][t];
    return ADP_OK;
}

typedef enum { MODE_HOOK, MODE_POWER, MODE_LTP } row_mode;

static void row_scale_case(row_mode mode, const char *make, const char *lengths, const char *ref_args) {
    static const char *names[] = {"hook", "power", "ltp"};
    const char *dir = test_tmpdir();
    setenv("OMP_NUM_THREADS", "1", 1);
    adp_set_threads(1);
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 3 %s", dir, make) == 0);
    REQUIRE(test_python("ref_row_scale_train.py", "%s --model %s/m --out %s/g.safetensors --lengths %s %s", names[mode], dir,
                        dir, lengths, ref_args) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    st_file st, fx;
    REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
    bert_model_unpack(&m);
    snprintf(path, sizeof path, "%s/g.safetensors", dir);
    REQUIRE(st_open(&fx, path) == ADP_OK);
    const st_tensor *ti = st_find(&fx, "input_ids"), *to = st_find(&fx, "offsets"), *tl = st_find(&fx, "labels");
    REQUIRE(ti && to && tl);
    const int64_t T = st_numel(ti), no = st_numel(to);
    const int n_seq = (int)no - 1, L = m.cfg.layers, C = m.cfg.num_labels;
    int32_t *ids = mallocCheck(4 * T), *off32 = mallocCheck(4 * no), *labels = mallocCheck(4 * n_seq);
    REQUIRE(st_read_i32(&fx, ti, ids, T) == ADP_OK && st_read_i32(&fx, to, off32, no) == ADP_OK &&
            st_read_i32(&fx, tl, labels, n_seq) == ADP_OK);
    int *off = mallocCheck(sizeof(int) * (size_t)no);
    for (int i = 0; i < no; i++) off[i] = off32[i];

    /* the method's state from the fixture's parameters */
    power_soft pw = {0};
    ltp_soft lt = {0};
    hook_case hc = {.L = L};
    bert_train_opts o = {0};
    float *lambda = fixture(&fx, "loss_reg", 1); /* read below; here only to check presence */
    REQUIRE(lambda);
    free(lambda);
    if (mode == MODE_POWER) {
        const st_tensor *tr = st_find(&fx, "r");
        REQUIRE(tr && tr->ndim == 2 && tr->shape[0] == L);
        const int N = (int)tr->shape[1];
        double lam = 0;
        REQUIRE(sscanf(strstr(ref_args, "--lambda") + 8, "%lf", &lam) == 1);
        power_soft_init(&pw, L, N, (float)lam);
        float *r = fixture(&fx, "r", (int64_t)L * N);
        REQUIRE(r);
        memcpy(pw.r, r, sizeof(float) * (size_t)L * N);
        free(r);
        float *margin = fixture(&fx, "min_margin", 1);
        REQUIRE(margin);
        /* ranks from float32 attention can only differ from float64's at a near tie */
        CHECK_MSG(margin[0] > 5e-5, "the fixture has a near tie in significance (%.3g): pick another --seed", margin[0]);
        free(margin);
        o.row_scale = power_soft_scale, o.row_scale_grad = power_soft_scale_grad, o.user = &pw;
    } else if (mode == MODE_LTP) {
        double lam = 0, temp = 0;
        REQUIRE(sscanf(strstr(ref_args, "--lambda") + 8, "%lf", &lam) == 1);
        REQUIRE(sscanf(strstr(ref_args, "--temperature") + 13, "%lf", &temp) == 1);
        float *th = fixture(&fx, "theta", L);
        REQUIRE(th);
        double theta0[64];
        for (int l = 0; l < L; l++) theta0[l] = th[l];
        free(th);
        ltp_soft_init(&lt, L, (float)lam, (float)temp, theta0);
        o.row_scale = ltp_soft_scale, o.row_scale_grad = ltp_soft_scale_grad, o.user = &lt;
    } else {
        hc.mid = mallocCheck(sizeof(float *) * (size_t)L), hc.out = mallocCheck(sizeof(float *) * (size_t)L);
        hc.w = mallocCheck(sizeof(float *) * (size_t)L);
        hc.d_mid = mallocCheck(sizeof(float *) * (size_t)L), hc.d_out = mallocCheck(sizeof(float *) * (size_t)L);
        for (int l = 0; l < L; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "scale_mid_%d", l), hc.mid[l] = fixture(&fx, nm, T);
            snprintf(nm, sizeof nm, "scale_out_%d", l), hc.out[l] = fixture(&fx, nm, T);
            snprintf(nm, sizeof nm, "w_%d", l), hc.w[l] = fixture(&fx, nm, T);
            REQUIRE(hc.mid[l] && hc.out[l] && hc.w[l]);
            hc.d_mid[l] = callocCheck((size_t)T, sizeof(float)), hc.d_out[l] = callocCheck((size_t)T, sizeof(float));
        }
        o.row_scale = hook_scale, o.row_scale_grad = hook_grad, o.user = &hc;
    }

    bert_train_ctx c;
    bert_train_ctx_init(&c);
    bert_batch b = {.n_seq = n_seq, .ids = ids, .off = off};
    REQUIRE(bert_train_forward(&c, &m, &b, &o) == ADP_OK);
    float *probs = mallocCheck(sizeof(float) * n_seq * C), *lossv = mallocCheck(sizeof(float) * n_seq);
    float *dlogits = callocCheck((size_t)n_seq * C, sizeof(float));
    softmax_xent_forward(lossv, probs, c.logits, labels, n_seq, C);
    softmax_xent_backward(dlogits, probs, labels, 1.0f / n_seq, n_seq, C);
    double task = 0;
    for (int i = 0; i < n_seq; i++) task += lossv[i] / n_seq;
    float *garena = alignedCheck(m.n_params * sizeof(float));
    memset(garena, 0, m.n_params * sizeof(float));
    bert_weights gw;
    bert_weights_point(&gw, &m.cfg, garena);
    REQUIRE(bert_train_backward(&c, &m, &gw, dlogits, NULL) == ADP_OK);
    double reg = mode == MODE_POWER ? power_soft_penalty(&pw) : mode == MODE_LTP ? lt.loss_reg : hc.loss_recv;

    float *want = fixture(&fx, "loss_task", 1);
    CHECK_NEAR(task, want[0], 1e-4 * fabs(want[0]) + 1e-6);
    free(want);
    want = fixture(&fx, "loss_reg", 1);
    CHECK_NEAR(reg, want[0], 1e-4 * fabs(want[0]) + 1e-6);
    if (test_verbose()) fprintf(stderr, "    %s: task loss %.6f, penalty %.6g (reference %.6g)\n", names[mode], task, reg, want[0]);
    free(want);
    bert_param *ps;
    int np = bert_param_list(&m.cfg, &gw, &ps);
    double worst = 0;
    for (int i = 0; i < np; i++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", ps[i].name);
        size_t n = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
        want = fixture(&fx, name, (int64_t)n);
        REQUIRE(want);
        worst = fmax(worst, check_grad(name, ps[i].ptr, want, n, 1e-3));
        free(want);
    }
    free(ps);
    if (mode == MODE_POWER) {
        want = fixture(&fx, "grad.power.r", (int64_t)L * pw.max_len);
        REQUIRE(want);
        check_grad("grad.power.r", pw.g, want, (size_t)L * pw.max_len, 1e-3);
        free(want);
    } else if (mode == MODE_LTP) {
        want = fixture(&fx, "grad.ltp.theta", L);
        REQUIRE(want);
        check_grad("grad.ltp.theta", lt.g, want, (size_t)L, 1e-3);
        CHECK(lt.g[0] == 0.0f); /* layer 0: threshold 0, no mask, no gradient */
        free(want);
    } else {
        for (int l = 0; l < L; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "grad.scale_mid_%d", l);
            want = fixture(&fx, nm, T);
            REQUIRE(want);
            check_grad(nm, hc.d_mid[l], want, (size_t)T, 1e-3);
            free(want);
            snprintf(nm, sizeof nm, "grad.scale_out_%d", l);
            want = fixture(&fx, nm, T);
            REQUIRE(want);
            check_grad(nm, hc.d_out[l], want, (size_t)T, 1e-3);
            free(want);
        }
    }
    if (test_verbose()) fprintf(stderr, "    %s: worst encoder gradient rel err %.2e\n", names[mode], worst);

    if (mode == MODE_HOOK) {
        for (int l = 0; l < L; l++)
            free(hc.mid[l]), free(hc.out[l]), free(hc.w[l]), free(hc.d_mid[l]), free(hc.d_out[l]);
        free(hc.mid), free(hc.out), free(hc.w), free(hc.d_mid), free(hc.d_out);
    }
    power_soft_free(&pw);
    ltp_soft_free(&lt);
    bert_weights_free_layout(&gw);
    free(garena), free(probs), free(lossv), free(dlogits), free(ids), free(off32), free(off), free(labels);
    bert_train_ctx_free(&c);
    st_close(&fx), st_close(&st);
    bert_model_free(&m);
}

#define M3 "--layers 3 --hidden 48 --heads 3 --inter 80"

TEST(row_scale_hooks_match_pytorch) {
    /* scales at both points of every layer and a loss on attention received: the engine's
     * d scale, d_probs_key path and every encoder gradient */
    row_scale_case(MODE_HOOK, M3 " --seed 51", "1,6,23,40", "");
}

TEST(power_soft_extract_gradients_match_pytorch) {
    /* the data seeds give fixtures whose significance values are 5e-5 (relative) or more
     * apart, so float32 ranks cannot differ from float64's (r has exact zeros, see the reference) */
    row_scale_case(MODE_POWER, M3 " --seed 52", "1,5,17,33", "--lambda 1e-3 --max-len 48 --seed 12");
    row_scale_case(MODE_POWER, "--layers 2 --hidden 32 --heads 4 --inter 64 --seed 53", "2,9,30",
                   "--lambda 0.02 --max-len 48 --seed 11");
}

TEST(ltp_soft_mask_gradients_match_pytorch) {
    /* thresholds near the scores (masks far from 0 and 1) and a temperature that makes the
     * sigmoid's slope matter */
    row_scale_case(MODE_LTP, M3 " --seed 54", "1,5,17,33", "--lambda 0.1 --temperature 1e-2");
    row_scale_case(MODE_LTP, "--layers 4 --hidden 32 --heads 2 --inter 64 --seed 55 --std 0.3", "3,8,30",
                   "--lambda 0.5 --temperature 5e-3");
}

/* ---- `adapler train --method power|ltp` on the planted task ---- */

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

/* The JSON object on the last non-empty line of s (owned by the caller), or NULL. */
static cJSON *last_json(const char *s) {
    char *copy = strdupCheck(s), *save = NULL, *last = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (line[0] == '{') last = line;
    cJSON *j = last ? cJSON_Parse(last) : NULL;
    free(copy);
    return j;
}

TEST(train_power_and_ltp_end_to_end) {
    const char *dir = test_tmpdir();
    const char *data = "--dataset planted --planted-n 1000 --threads 2";
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train %s --config tiny --epochs 2 --lr 1e-3 --vocab-size 3000 --out %s/ft",
                    bin(), data, dir) == 0);
    struct {
        const char *method, *args, *config;
        double min_speedup;
    } runs[2] = {
        {"power", "--lambda 1e-2 --soft-lr 0.05 --soft-epochs 3", "retention", 2.0},
        {"ltp", "--lambda 0.5 --final-threshold 0.03 --temperature 1e-3 --soft-lr 1e-3 --soft-epochs 2", "thresholds", 1.1},
    };
    for (int k = 0; k < 2; k++) {
        REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train --method %s --init %s/ft %s %s --lr 3e-4 --epochs 2 --out %s/%s",
                        bin(), runs[k].method, dir, data, runs[k].args, dir, runs[k].method) == 0);
        /* the progress line counts both phases' steps: the last one reads total/total (the
         * hard phase once restarted the count, so its ETA scaled the soft phase's time by
         * the whole run's steps: 3 h for a 45-minute model) */
        const char *last = NULL, *at = test_sh_output();
        while ((at = strstr(at, "hard epoch 2/2 ["))) last = at++;
        long done = -1, total = -2;
        CHECK_MSG(last && sscanf(strchr(last, ']') + 1, " %ld/%ld", &done, &total) == 2 && done == total,
                  "%s: last progress line %ld/%ld", runs[k].method, done, total);
        cJSON *tj = last_json(test_sh_output());
        REQUIRE(tj);
        const cJSON *cfg = cJSON_GetObjectItem(tj, runs[k].config);
        REQUIRE(cJSON_GetArraySize(cfg) == 2);
        if (k == 0) /* a non-increasing configuration of counts that prunes the ~48-token inputs */
            CHECK(cJSON_GetArrayItem(cfg, 0)->valuedouble >= cJSON_GetArrayItem(cfg, 1)->valuedouble &&
                  cJSON_GetArrayItem(cfg, 0)->valuedouble < 40);
        else /* layer 0 never prunes; the last layer's threshold was learned from 0.015 */
            CHECK(cJSON_GetArrayItem(cfg, 0)->valuedouble == 0 && cJSON_GetArrayItem(cfg, 1)->valuedouble > 0 &&
                  cJSON_GetArrayItem(cfg, 1)->valuedouble != 0.015);
        double train_acc = cJSON_GetObjectItem(tj, "dev_accuracy")->valuedouble;
        double train_speed = cJSON_GetObjectItem(tj, "flops_speedup")->valuedouble;
        CHECK_MSG(train_acc >= cJSON_GetObjectItem(tj, "finetuned_dev_accuracy")->valuedouble - 0.02,
                  "%s: dev accuracy %.4f", runs[k].method, train_acc);
        CHECK_MSG(train_speed >= runs[k].min_speedup, "%s: FLOPs speedup %.3f", runs[k].method, train_speed);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/train.json", dir, runs[k].method);
        char *buf = NULL;
        REQUIRE(adp_read_file(path, &buf, NULL) == ADP_OK);
        cJSON *full = cJSON_Parse(buf);
        REQUIRE(full);
        const cJSON *h = cJSON_GetObjectItem(full, "history");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(h, "soft")) >= 2 && cJSON_GetArraySize(cJSON_GetObjectItem(h, "hard")) == 2);
        cJSON_Delete(full);
        free(buf);
        /* eval with no knob reads the configuration from the checkpoint and reproduces the
         * training's dev numbers */
        REQUIRE(test_sh("%s eval --model %s/%s %s --method %s --repeats 0 2>/dev/null", bin(), dir, runs[k].method, data,
                        runs[k].method) == 0);
        cJSON *ej = cJSON_Parse(test_sh_output());
        REQUIRE(ej);
        CHECK(strstr(cJSON_GetObjectItem(ej, "knob")->valuestring, "checkpoint") != NULL);
        CHECK_NEAR(cJSON_GetObjectItem(ej, "accuracy")->valuedouble, train_acc, 1e-9);
        CHECK_NEAR(cJSON_GetObjectItem(ej, "flops_speedup")->valuedouble, train_speed, 1e-5 * train_speed);
        if (test_verbose()) {
            char *txt = cJSON_PrintUnformatted(cfg);
            fprintf(stderr, "    %s: %s %s, dev accuracy %.4f, FLOPs speedup %.3f\n", runs[k].method, runs[k].config, txt,
                    train_acc, train_speed);
            free(txt);
        }
        cJSON_Delete(ej);
        cJSON_Delete(tj);
    }
    /* bad input: one line, exit 2 */
    const char *bad[][2] = {
        {"--method power --dataset planted --out x", "needs --init"},
        {"--method power --init x --dataset planted --out x --temperature 1e-3", "unknown or incomplete option '--temperature'"},
        {"--method ltp --init x --dataset planted --out x --temperature 0", "--temperature"},
        {"--method ltp --init x --dataset planted --out x --lambda -1", "--lambda"},
        {"--method random --init x", "expected none, adapler, power or ltp"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(test_sh("%s train %s", bin(), bad[i][0]) == 2, "%s: %s", bad[i][0], test_sh_output());
        const char *out = test_sh_output(), *nl = strchr(out, '\n');
        CHECK_MSG(strstr(out, bad[i][1]) && nl && nl[1] == 0, "%s: expected one line with '%s': %s", bad[i][0], bad[i][1],
                  out);
    }
    CHECK(test_sh("%s train --method ltp --help", bin()) == 0 && strstr(test_sh_output(), "--temperature"));
    CHECK(test_sh("%s train --method power --help", bin()) == 0 && strstr(test_sh_output(), "power.retention"));
}

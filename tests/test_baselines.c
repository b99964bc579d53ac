/* test_baselines.c: the training-free baselines (baselines/) against the PyTorch
 * reference (tests/ref_bert.py run --baseline ...): every layer's hidden states, the
 * surviving positions, the logits and the scores each rule computed; their scoring FLOPs;
 * [CLS] and order; --match reproducing another run's counts; bad knobs and files. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "baselines/baselines.h"
#include "bert.h"
#include "common.h"
#include "flops.h"
#include "method.h"
#include "test.h"

#define TOL 1e-4

static const char *MIXED = "1,2,3,9,17,64,100,128,200,255,511,512";

typedef struct {
    st_file fx;
    int H;
    int stages;
    double max_err;
} hook_state;

static int read_i32(const st_file *f, const char *name, int32_t **out, int64_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) return adp_seterr("fixture has no tensor %s", name);
    *n = st_numel(t);
    *out = mallocCheck(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    return st_read_i32(f, t, *out, *n);
}

/* After every layer: hidden states, positions and offsets against the reference's; every
 * sequence starts with [CLS] and its positions increase. */
static void hook(void *user, int layer, const float *x, int T, const int *off, const int32_t *pos) {
    hook_state *h = user;
    char tn[80], sfx[16];
    if (layer < 0) snprintf(sfx, sizeof sfx, "emb");
    else snprintf(sfx, sizeof sfx, "%d", layer);
    h->stages++;
    snprintf(tn, sizeof tn, "positions_%s", sfx);
    int32_t *wpos = NULL, *woff = NULL;
    int64_t np = 0, no = 0;
    REQUIRE(read_i32(&h->fx, tn, &wpos, &np) == ADP_OK);
    snprintf(tn, sizeof tn, "offsets_%s", sfx);
    REQUIRE(read_i32(&h->fx, tn, &woff, &no) == ADP_OK);
    CHECK_MSG(np == T, "stage %s: C kept %d rows, the reference %lld", sfx, T, (long long)np);
    for (int i = 0; i < T && i < np; i++)
        if (pos[i] != wpos[i]) {
            test_fail(__FILE__, __LINE__, "stage %s: row %d is position %d, reference %d", sfx, i, pos[i], wpos[i]);
            break;
        }
    for (int s = 0; s + 1 < no; s++) {
        CHECK_INT(off[s + 1], woff[s + 1]);
        CHECK_MSG(off[s + 1] > off[s] && pos[off[s]] == 0, "stage %s: sequence %d lost [CLS]", sfx, s);
        for (int t = off[s] + 1; t < off[s + 1]; t++) CHECK(pos[t] > pos[t - 1]);
    }
    if (np == T) {
        snprintf(tn, sizeof tn, "hidden_%s", sfx);
        float *want = mallocCheck(sizeof(float) * (size_t)(T ? T : 1) * h->H);
        int64_t shape[2] = {T, h->H};
        REQUIRE(st_read_f32(&h->fx, st_find(&h->fx, tn), want, shape, 2) == ADP_OK);
        double e = test_compare(tn, x, want, (size_t)T * h->H, TOL);
        if (e > h->max_err) h->max_err = e;
        free(want);
    }
    free(wpos), free(woff);
}

/* The scoring FLOPs each rule documents, for a sequence of n0 tokens with n rows at a layer
 * l it scored.  Saliency: its gradient pass at layer 0 (the dense forward F, the backward
 * of input gradients F + 4 L n0^2 H, 3 H n0 per scored representation), and 2n per layer
 * for the eta rule. */
static double scoring_flops(const method_opts *o, const bert_config *c, int l, double n, double n0) {
    const int A = c->heads;
    if (!strcmp(o->name, "cascade")) return A * n * n;
    if (!strcmp(o->name, "ltp")) return A * n * n + n;
    if (!strcmp(o->name, "power")) return A * n * n + A * n + 2 * n;
    if (!strcmp(o->name, "saliency")) {
        const int each = o->saliency_layer && !strcmp(o->saliency_layer, "each");
        double f = o->eta > 0 ? 2 * n : 0;
        if (l == 0) {
            double F = flops_dense(c, (int)n0);
            f += F + (F + 4.0 * c->layers * n0 * n0 * c->hidden) + 3.0 * c->hidden * n0 * (each ? c->layers : 1);
        }
        return f;
    }
    return 0;
}

/* Largest relative error allowed between the C scores and the reference's: attention sums
 * agree to float rounding; gradients through the whole encoder accumulate more. */
static double g_score_tol = 1e-4;

/* Make a model, run the reference with `ref_args`, build the C method from `opts`, run the
 * lengths as one batch (checking every stage) and in batches of `batch`, compare. */
static void baseline_case(const char *make_args, const char *lengths, int pairs, const char *ref_args,
                          const method_opts *opts, int batch, const char *counts_path) {
    const char *dir = test_tmpdir();
    /* one thread each: a loaded machine (tests run beside other jobs) makes spinning
     * OpenMP teams wait on descheduled peers */
    adp_set_threads(1);
    setenv("OMP_NUM_THREADS", "1", 1);
    REQUIRE(test_python("ref_bert.py", "make --out %s/model %s", dir, make_args) == 0);
    REQUIRE(test_python("ref_bert.py", "run --model %s/model --out %s/fx.safetensors --lengths %s %s %s", dir, dir,
                        lengths, pairs ? "--pairs" : "", ref_args) == 0);
    char path[4200];
    bert_model m;
    st_file st;
    snprintf(path, sizeof path, "%s/model", dir);
    REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
    const int L = m.cfg.layers, C = m.cfg.num_labels;
    hook_state hs = {.H = m.cfg.hidden};
    snprintf(path, sizeof path, "%s/fx.safetensors", dir);
    REQUIRE(st_open(&hs.fx, path) == ADP_OK);
    float margin;
    int64_t one[1] = {1};
    REQUIRE(st_read_f32(&hs.fx, st_find(&hs.fx, "min_margin"), &margin, one, 1) == ADP_OK);
    int32_t *ids = NULL, *types = NULL, *off32 = NULL;
    int64_t nt = 0, no = 0;
    REQUIRE(read_i32(&hs.fx, "input_ids", &ids, &nt) == ADP_OK);
    REQUIRE(read_i32(&hs.fx, "token_type_ids", &types, &nt) == ADP_OK);
    REQUIRE(read_i32(&hs.fx, "offsets", &off32, &no) == ADP_OK);
    const int n_seq = (int)no - 1;
    int *off = mallocCheck(sizeof(int) * (size_t)no);
    for (int i = 0; i < no; i++) off[i] = off32[i];

    method me;
    REQUIRE(method_create(&me, opts, &m, &st) == ADP_OK);
    REQUIRE(me.ps);
    bert_ctx ctx;
    bert_ctx_init(&ctx);

    /* one batch: every stage, the scores and the FLOPs */
    bert_batch b = {.n_seq = n_seq, .ids = ids, .types = types, .off = off};
    bert_run_opts ro = {.prune = me.ps, .hook = hook, .hook_user = &hs};
    const bert_result *r;
    REQUIRE(bert_forward(&ctx, &m, &b, &ro, &r) == ADP_OK);
    CHECK_INT(hs.stages, L + 1);
    int alive_end = 0;
    for (int s = 0; s < n_seq; s++) alive_end += r->ffn_tokens[(size_t)s * L + L - 1];
    CHECK_MSG(alive_end < off[n_seq] && alive_end > n_seq, "nothing or everything dropped (%d of %d rows left)",
              alive_end, off[n_seq]);
    if (counts_path) {
        /* --match: the counts of the matched run, at the points documented in baselines.h */
        match_counts mc;
        REQUIRE(match_counts_load(&mc, counts_path, L) == ADP_OK);
        REQUIRE(mc.n == (size_t)n_seq);
        int at_input = !strcmp(opts->name, "random") || !strcmp(opts->name, "saliency");
        for (int s = 0; s < n_seq; s++)
            for (int l = 0; l < L; l++) {
                const int *want = mc.tokens + (size_t)s * L, *lt = r->layer_tokens + (size_t)s * L,
                          *ft = r->ffn_tokens + (size_t)s * L;
                int n0 = off[s + 1] - off[s];
                CHECK_INT(lt[l], at_input || l > 0 ? want[l] : n0);
                CHECK_INT(ft[l], at_input || l == L - 1 ? want[l] : want[l + 1]);
            }
        match_counts_free(&mc);
    }
    float *want_logits = mallocCheck(sizeof(float) * (size_t)n_seq * C);
    int64_t lshape[2] = {n_seq, C};
    REQUIRE(st_read_f32(&hs.fx, st_find(&hs.fx, "logits"), want_logits, lshape, 2) == ADP_OK);
    double e_logits = test_compare("logits", r->logits, want_logits, (size_t)n_seq * C, TOL);
    const baseline_trace *tr = &me.scores;
    int scored = 0;
    double max_rel = 0;
    for (int l = 0; l < L; l++) {
        char tn[64];
        int32_t *pos = NULL, *poff = NULL;
        int64_t np = 0, npo = 0;
        snprintf(tn, sizeof tn, l == 0 ? "positions_emb" : "positions_%d", l - 1);
        REQUIRE(read_i32(&hs.fx, tn, &pos, &np) == ADP_OK);
        snprintf(tn, sizeof tn, l == 0 ? "offsets_emb" : "offsets_%d", l - 1);
        REQUIRE(read_i32(&hs.fx, tn, &poff, &npo) == ADP_OK);
        float *want = mallocCheck(sizeof(float) * (size_t)(np ? np : 1));
        snprintf(tn, sizeof tn, "score_%d", l);
        int64_t shp[1] = {np};
        REQUIRE(st_read_f32(&hs.fx, st_find(&hs.fx, tn), want, shp, 1) == ADP_OK);
        for (int s = 0; s < n_seq; s++) {
            for (int i = poff[s]; i < poff[s + 1]; i++) {
                float got = tr->score ? tr->score[(size_t)l * tr->n_tokens + (size_t)off[s] + (size_t)pos[i]] : NAN;
                if (isnan(got) != isnan(want[i])) {
                    test_fail(__FILE__, __LINE__, "layer %d sequence %d row %d: C %s, the reference %s", l, s, i,
                              isnan(got) ? "did not score" : "scored", isnan(want[i]) ? "did not" : "did");
                    break;
                }
                if (isnan(got)) continue;
                scored++;
                double rel = fabs(got - want[i]) / (fabs(want[i]) + 1e-6);
                if (rel > max_rel) max_rel = rel;
            }
        }
        free(pos), free(poff), free(want);
    }
    CHECK_MSG(max_rel < g_score_tol, "scores: max relative error %.3g", max_rel);
    /* the closest keep decision of the reference is far from the scores' float error, so
     * C and the reference cannot legitimately decide differently */
    CHECK_MSG(margin > 20 * max_rel + 1e-6, "min_margin %.3g is within float error %.3g of a decision", margin, max_rel);
    /* the strategy's scoring FLOPs, as documented, at the layers where it scored */
    for (int s = 0; s < n_seq; s++) {
        double want_f = flops_sequence(&m.cfg, r->layer_tokens + (size_t)s * L, r->ffn_tokens + (size_t)s * L);
        for (int l = 0; l < L; l++)
            if (tr->score && !isnan(tr->score[(size_t)l * tr->n_tokens + (size_t)off[s]])) {
                /* rows the rule saw: at layer input (saliency), those before its drop there */
                int n0 = off[s + 1] - off[s], n = r->layer_tokens[(size_t)s * L + l];
                if (!strcmp(opts->name, "saliency")) n = l == 0 ? n0 : r->ffn_tokens[(size_t)s * L + l - 1];
                want_f += scoring_flops(opts, &m.cfg, l, n, n0);
            }
        CHECK_NEAR(r->flops[s], want_f, 1e-9 * want_f);
    }
    if (test_verbose())
        fprintf(stderr, "    %s: %d scores (max rel err %.2e), logits %.2e, hidden %.2e, margin %.2e\n", opts->name,
                scored, max_rel, e_logits, hs.max_err, margin);

    /* in batches: the same logits (per-example decisions do not depend on the batch) */
    if (batch > 0) {
        for (int s0 = 0; s0 < n_seq; s0 += batch) {
            int k = ADP_MIN(batch, n_seq - s0);
            int *boff = mallocCheck(sizeof(int) * (size_t)(k + 1));
            for (int i = 0; i <= k; i++) boff[i] = off[s0 + i] - off[s0];
            bert_batch bb = {.n_seq = k, .ids = ids + off[s0], .types = types + off[s0], .off = boff};
            bert_run_opts o2 = {.prune = me.ps, .batch_first = s0};
            REQUIRE(bert_forward(&ctx, &m, &bb, &o2, &r) == ADP_OK);
            char what[64];
            snprintf(what, sizeof what, "logits of batch at %d", s0);
            test_compare(what, r->logits, want_logits + (size_t)s0 * C, (size_t)k * C, TOL);
            free(boff);
        }
    }
    free(want_logits), free(off), free(ids), free(types), free(off32);
    method_free(&me);
    bert_ctx_free(&ctx);
    st_close(&hs.fx);
    st_close(&st);
    bert_model_free(&m);
}

static method_opts opts_for(const char *name) {
    method_opts o;
    method_opts_init(&o);
    o.name = name;
    return o;
}

#define M6 "--layers 6 --hidden 64 --heads 4 --inter 128"

TEST(baseline_cascade_parity) {
    method_opts o = opts_for("cascade");
    o.keep_rate = "0.3";
    baseline_case(M6 " --seed 21", MIXED, 1, "--baseline cascade --keep-rate 0.3", &o, 5, NULL);
}

TEST(baseline_cascade_parity_24_layers) {
    /* 24 layers: max(3, ceil(3.6)) = 4 unpruned layers */
    REQUIRE(cascade_layer_rate(3, 24, 0.5) == 1.0 && cascade_layer_rate(4, 24, 0.5) < 1.0);
    CHECK_NEAR(cascade_layer_rate(23, 24, 0.5), 0.5, 1e-15);
    CHECK_NEAR(cascade_layer_rate(4, 24, 0.5), 1.0 - 0.5 / 20, 1e-15);
    CHECK_NEAR(cascade_layer_rate(11, 12, 0.1), 0.1, 1e-15);
    CHECK_NEAR(cascade_layer_rate(11, 12, 0.001), 0.01, 1e-15); /* LTP's floor */
    CHECK(cascade_layer_rate(2, 12, 0.1) == 1.0 && cascade_layer_rate(3, 12, 0.1) < 1.0);
    method_opts o = opts_for("cascade");
    o.keep_rate = "0.2";
    baseline_case("--layers 24 --hidden 32 --heads 2 --inter 64 --seed 22", "1,5,9,30,64", 0,
                  "--baseline cascade --keep-rate 0.2", &o, 2, NULL);
}

TEST(baseline_ltp_parity) {
    method_opts o = opts_for("ltp");
    o.final_threshold = 0.05;
    baseline_case("--layers 4 --hidden 64 --heads 4 --inter 128 --std 0.3 --seed 23", MIXED, 1,
                  "--baseline ltp --final-threshold 0.05", &o, 4, NULL);
}

TEST(baseline_ltp_learned_thresholds_from_checkpoint) {
    method_opts o = opts_for("ltp");
    baseline_case("--layers 4 --hidden 64 --heads 4 --inter 128 --std 0.3 --seed 24 "
                  "--ltp-threshold 0.002,0,0.01,0.03",
                  MIXED, 0, "--baseline ltp", &o, 0, NULL);
}

TEST(baseline_power_parity_fractions) {
    method_opts o = opts_for("power");
    o.retention = "0.9,0.7,0.7,0.5,0.4,0.2";
    baseline_case(M6 " --seed 25", MIXED, 1, "--baseline power --retention 0.9,0.7,0.7,0.5,0.4,0.2", &o, 3, NULL);
}

TEST(baseline_power_parity_counts_and_checkpoint) {
    method_opts o = opts_for("power");
    o.retention = "100,64,64,20,8,2";
    baseline_case(M6 " --seed 26", MIXED, 0, "--baseline power --retention 100,64,64,20,8,2", &o, 0, NULL);
    method_opts c = opts_for("power");
    baseline_case(M6 " --seed 27 --power-retention 200,50,50,9,9,2", MIXED, 0, "--baseline power", &c, 0, NULL);
}

TEST(baseline_random_parity) {
    method_opts o = opts_for("random");
    o.keep_rate = "0.7";
    o.seed = 5;
    baseline_case(M6 " --seed 28", MIXED, 1, "--baseline random --keep-rate 0.7 --method-seed 5", &o, 5, NULL);
    method_opts p = opts_for("random");
    p.keep_rate = "1,0.5,1,0.9,0.3,1";
    baseline_case(M6 " --seed 29", MIXED, 0, "--baseline random --keep-rate 1,0.5,1,0.9,0.3,1", &p, 1, NULL);
}

TEST(baseline_truncate_parity) {
    method_opts o = opts_for("truncate");
    o.keep = "40";
    baseline_case(M6 " --seed 30", MIXED, 1, "--baseline truncate --keep 40", &o, 0, NULL);
    method_opts f = opts_for("truncate");
    f.keep = "0.25";
    baseline_case(M6 " --seed 30", MIXED, 0, "--baseline truncate --keep 0.25", &f, 0, NULL);
}

TEST(baseline_saliency_parity_eta) {
    /* AdapLeR's rule on gradient x input at the embedding output, before every layer; the
     * scores (the trace) against PyTorch autograd on the dense model */
    g_score_tol = 1e-5;
    method_opts o = opts_for("saliency");
    o.eta = 0.5;
    baseline_case(M6 " --seed 31", MIXED, 1, "--baseline saliency --eta 0.5", &o, 5, NULL);
}

TEST(baseline_saliency_parity_each_layer_keep_rate) {
    /* the scores of layer l's input (dense model) for layer l, top-k at compounding rates */
    g_score_tol = 1e-5;
    method_opts o = opts_for("saliency");
    o.keep_rate = "0.8";
    o.saliency_layer = "each";
    baseline_case(M6 " --seed 32", "1,5,9,30,64,100", 0, "--baseline saliency --keep-rate 0.8 --saliency-layer each", &o,
                  3, NULL);
    method_opts e = opts_for("saliency");
    e.eta = 0.3;
    e.saliency_layer = "each";
    baseline_case(M6 " --seed 34", MIXED, 1, "--baseline saliency --eta 0.3 --saliency-layer each", &e, 0, NULL);
}

/* A matched run's counts for the MIXED lengths: n_l = max(1, floor(n0 * 0.75^(l+1))). */
static void write_counts(const char *path, int L) {
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    char *spec = strdupCheck(MIXED), *save = NULL;
    int i = 0;
    for (char *t = strtok_r(spec, ",", &save); t; t = strtok_r(NULL, ",", &save), i++) {
        int n0 = atoi(t);
        fprintf(f, "{\"index\": %d, \"id\": \"s%d\", \"length\": %d, \"layer_tokens\": [", i, i, n0);
        double v = n0;
        for (int l = 0; l < L; l++) {
            v *= 0.75;
            fprintf(f, "%s%d", l ? ", " : "", ADP_MAX(1, (int)v));
        }
        fprintf(f, "]}\n");
    }
    free(spec);
    fclose(f);
}

TEST(baseline_match_parity_and_counts) {
    /* random, cascade and power keep the matched counts exactly: random before every layer;
     * the attention methods after layer l's attention with layer l + 1's count */
    char counts[4200], ref[4400];
    snprintf(counts, sizeof counts, "%s/counts.jsonl", test_tmpdir());
    write_counts(counts, 6);
    const char *names[4] = {"random", "cascade", "power", "saliency"};
    g_score_tol = 1e-5;
    for (int k = 0; k < 4; k++) {
        method_opts o = opts_for(names[k]);
        o.match = counts;
        snprintf(ref, sizeof ref, "--baseline %s --match %s", names[k], counts);
        baseline_case(M6 " --seed 33", MIXED, 1, ref, &o, 5, counts);
    }
}

/* ---- select() on its own: [CLS] kept even when it receives the least attention ---- */

TEST(baseline_strategies_keep_cls_and_exact_counts) {
    enum { NS = 4, A = 2, L = 6 };
    const int len[NS] = {1, 2, 7, 40};
    int off[NS + 1] = {0};
    for (int s = 0; s < NS; s++) off[s + 1] = off[s] + len[s];
    int32_t pos[64];
    int orig[NS];
    size_t prob_off[NS], np = 0;
    for (int s = 0; s < NS; s++) {
        orig[s] = len[s];
        prob_off[s] = np;
        np += (size_t)A * len[s] * len[s];
        for (int i = 0; i < len[s]; i++) pos[off[s] + i] = i;
    }
    float *probs = mallocCheck(sizeof(float) * np);
    unsigned rs = 7;
    for (int s = 0; s < NS; s++)
        for (int h = 0; h < A; h++)
            for (int q = 0; q < len[s]; q++) {
                float *row = probs + prob_off[s] + ((size_t)h * len[s] + q) * len[s];
                double z = 0;
                for (int i = 0; i < len[s]; i++) z += row[i] = i == 0 ? 1e-6f : 0.5f + 0.5f * test_randf(&rs) + 0.6f;
                for (int i = 0; i < len[s]; i++) row[i] = (float)(row[i] / z);
            }
    prune_step st = {.layer = L - 1, .n_layers = L, .point = PRUNE_AFTER_ATTENTION, .n_seq = NS, .off = off,
                     .pos = pos, .orig_len = orig, .probs = probs, .prob_off = prob_off, .n_heads = A};
    prune_strategy ps[5];
    double theta[L] = {0, 0, 0, 0, 0, 0.5}, ret[L] = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4}, rate[L] = {1, 1, 1, 1, 1, 0.3};
    REQUIRE(cascade_strategy_create(&ps[0], L, 0.3, NULL, NULL) == ADP_OK);
    REQUIRE(ltp_strategy_create(&ps[1], L, theta, NULL) == ADP_OK);
    REQUIRE(power_strategy_create(&ps[2], L, ret, 1, NULL, NULL) == ADP_OK);
    REQUIRE(random_strategy_create(&ps[3], L, rate, NULL, 3) == ADP_OK);
    REQUIRE(truncate_strategy_create(&ps[4], 0.3, 1) == ADP_OK);
    for (int k = 0; k < 5; k++) {
        prune_point pt = PRUNE_AFTER_ATTENTION;
        int layer = L - 1;
        if (k >= 3) pt = PRUNE_AT_INPUT, layer = k == 4 ? 0 : L - 1;
        REQUIRE(ps[k].wants(&ps[k], layer, pt) != PRUNE_SKIP);
        CHECK(ps[k].wants(&ps[k], layer, pt == PRUNE_AT_INPUT ? PRUNE_AFTER_ATTENTION : PRUNE_AT_INPUT) == PRUNE_SKIP);
        st.layer = layer, st.point = pt;
        uint8_t keep[64];
        memset(keep, 1, sizeof keep);
        double fl[NS] = {0};
        REQUIRE(ps[k].select(&ps[k], &st, keep, fl) == ADP_OK);
        for (int s = 0; s < NS; s++) {
            CHECK_MSG(keep[off[s]] == 1, "%s dropped [CLS] of sequence %d", ps[k].name, s);
            int kept = 0;
            for (int t = off[s]; t < off[s + 1]; t++) kept += keep[t];
            /* the documented counts: cascade keeps round(0.3 n), power round(0.4 n), random
             * round(0.3 n), truncate round(0.3 n), all at least 1; ltp drops what is below 0.5 */
            double f = k == 2 ? 0.4 : 0.3;
            int want = ADP_MAX(1, (int)nearbyint(f * len[s]));
            if (k == 1) { /* [CLS] and the rows whose mean attention received is >= 0.5 */
                want = 1;
                for (int i = 1; i < len[s]; i++) {
                    double sc = 0;
                    for (int h = 0; h < A; h++)
                        for (int q = 0; q < len[s]; q++) sc += probs[prob_off[s] + ((size_t)h * len[s] + q) * len[s] + i];
                    want += sc / (A * len[s]) >= 0.5;
                }
            }
            CHECK_MSG(kept == want, "%s, sequence of %d: kept %d, expected %d", ps[k].name, len[s], kept, want);
            if (k == 0 || k == 2) { /* the kept rows are the best-scored ones */
                double worst_kept = 1e30, best_dropped = -1e30;
                for (int i = 1; i < len[s]; i++) {
                    double sc = 0;
                    for (int h = 0; h < A; h++)
                        for (int q = 0; q < len[s]; q++)
                            sc += probs[prob_off[s] + ((size_t)h * len[s] + q) * len[s] + i] -
                                  (k == 2 && q == i ? probs[prob_off[s] + ((size_t)h * len[s] + q) * len[s] + i] : 0);
                    if (keep[off[s] + i]) worst_kept = ADP_MIN(worst_kept, sc);
                    else best_dropped = ADP_MAX(best_dropped, sc);
                }
                CHECK_MSG(worst_kept >= best_dropped, "%s kept a lower score than it dropped", ps[k].name);
            }
            if (k <= 2 && len[s] > want) CHECK(fl[s] > 0); /* scored, and said so */
            if (k >= 3) CHECK(fl[s] == 0);
        }
        ps[k].destroy(&ps[k]);
    }
    free(probs);
}

/* ---- the CLI: eval with every baseline, --match against an AdapLeR run, bad knobs ---- */

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

/* layer_tokens of every example of an --examples file, (n, L); returns n. */
static int read_examples(const char *path, int L, int **out, char ***kept_json) {
    char *buf = NULL, *save = NULL;
    if (adp_read_file(path, &buf, NULL) != ADP_OK) return -1;
    int n = 0, cap = 64;
    int *lt = mallocCheck(sizeof(int) * (size_t)cap * L);
    char **kj = mallocCheck(sizeof(char *) * (size_t)cap);
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        if (!e) break;
        if (n == cap) {
            cap *= 2;
            lt = reallocCheck(lt, sizeof(int) * (size_t)cap * L);
            kj = reallocCheck(kj, sizeof(char *) * (size_t)cap);
        }
        const cJSON *a = cJSON_GetObjectItem(e, "layer_tokens");
        for (int l = 0; l < L; l++) lt[n * L + l] = cJSON_GetArrayItem(a, l) ? cJSON_GetArrayItem(a, l)->valueint : -1;
        kj[n] = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "kept"));
        cJSON_Delete(e);
        n++;
    }
    free(buf);
    *out = lt;
    *kept_json = kj;
    return n;
}

static void free_kept(char **kj, int n) {
    for (int i = 0; i < n; i++) free(kj[i]);
    free(kj);
}

#define EVAL_ARGS "--dataset planted --planted-n 200 --threads 1 --repeats 0"

TEST(baseline_eval_match_reproduces_counts) {
    const char *dir = test_tmpdir();
    const int L = 6;
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 " M6 " --seed 40", dir) == 0);
    REQUIRE(test_sh("%s eval --model %s/m " EVAL_ARGS " --method none --examples %s/none.jsonl", bin(), dir, dir) == 0);
    REQUIRE(test_sh("%s eval --model %s/m " EVAL_ARGS " --method adapler --eta-scale 0.3 --examples %s/ad.jsonl", bin(),
                    dir, dir) == 0);
    int *dense, *ad;
    char **kd, **ka;
    char path[4200];
    snprintf(path, sizeof path, "%s/none.jsonl", dir);
    int n = read_examples(path, L, &dense, &kd);
    snprintf(path, sizeof path, "%s/ad.jsonl", dir);
    REQUIRE(read_examples(path, L, &ad, &ka) == n && n == 50);
    int pruned_at_0 = 0;
    for (int i = 0; i < n; i++) pruned_at_0 += ad[i * L] < dense[i * L];
    CHECK(pruned_at_0 > 0 && ad[0 * L + L - 1] < dense[0]); /* the matched run really pruned */
    const char *names[4] = {"random", "cascade", "power", "saliency"};
    for (int k = 0; k < 4; k++) {
        for (int b = 0; b < 2; b++) {
            const int batch = b ? 7 : 1;
            REQUIRE(test_sh("%s eval --model %s/m " EVAL_ARGS " --method %s --match %s/ad.jsonl --batch %d --examples "
                            "%s/%s%d.jsonl",
                            bin(), dir, names[k], dir, batch, dir, names[k], batch) == 0);
            int *got;
            char **kg;
            snprintf(path, sizeof path, "%s/%s%d.jsonl", dir, names[k], batch);
            REQUIRE(read_examples(path, L, &got, &kg) == n);
            for (int i = 0; i < n; i++)
                for (int l = 0; l < L; l++) {
                    /* random and saliency prune at layer input: every layer; the attention
                     * methods run layer 0's attention on every token, then match from layer 1 on */
                    int want = k == 0 || k == 3 || l > 0 ? ad[i * L + l] : dense[i * L];
                    CHECK_MSG(got[i * L + l] == want, "%s --batch %d example %d layer %d: %d tokens, matched run %d",
                              names[k], batch, i, l, got[i * L + l], want);
                }
            free(got);
            if (b == 0) free_kept(kg, n);
            else {
                /* the same tokens survive whatever the batch composition */
                int *g1;
                char **k1;
                snprintf(path, sizeof path, "%s/%s1.jsonl", dir, names[k]);
                REQUIRE(read_examples(path, L, &g1, &k1) == n);
                for (int i = 0; i < n; i++) CHECK_STR(kg[i], k1[i]);
                free(g1);
                free_kept(k1, n), free_kept(kg, n);
            }
        }
    }
    /* a run over other examples is an error naming the file */
    CHECK(test_sh("%s eval --model %s/m --dataset planted --planted-n 400 --threads 1 --repeats 0 --method power "
                  "--match %s/ad.jsonl", bin(), dir, dir) == 1);
    CHECK(strstr(test_sh_output(), "ad.jsonl has 50 examples") != NULL);
    /* and so is a run over fewer examples than the file holds */
    CHECK(test_sh("%s eval --model %s/m --dataset planted --planted-n 100 --threads 1 --repeats 0 --method power "
                  "--match %s/ad.jsonl", bin(), dir, dir) == 1);
    CHECK(strstr(test_sh_output(), "ad.jsonl") != NULL);
    free(dense), free(ad);
    free_kept(kd, n), free_kept(ka, n);
}

TEST(baseline_eval_every_method_and_bad_knobs) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 " M6 " --seed 41", dir) == 0);
    const char *ok[] = {"--method cascade --keep-rate 0.5", "--method ltp --final-threshold 0.05",
                        "--method power --retention 0.9,0.8,0.7,0.6,0.5,0.4", "--method power --retention 30,30,20,20,10,5",
                        "--method random --keep-rate 0.8", "--method random --keep-rate 1,1,0.5,1,1,0.5",
                        "--method truncate --keep 10", "--method truncate --keep 0.5"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK_MSG(test_sh("%s eval --model %s/m " EVAL_ARGS " %s", bin(), dir, ok[i]) == 0, "%s: %s", ok[i],
                  test_sh_output());
        cJSON *j = cJSON_Parse(test_sh_output());
        CHECK_MSG(j && cJSON_GetObjectItem(j, "flops_speedup")->valuedouble > 1.0, "%s did not prune", ok[i]);
        cJSON_Delete(j);
    }
    struct {
        const char *args, *msg;
    } bad[] = {
        {"--method cascade", "needs --keep-rate"},
        {"--method cascade --keep-rate 0", "outside (0, 1]"},
        {"--method cascade --keep-rate 0.5,0.4", "takes one rate"},
        {"--method cascade --keep-rate abc", "'abc' is not a number"},
        {"--method cascade --keep-rate 0.5 --match x.jsonl", "not both"},
        {"--method ltp", "needs --final-threshold"},
        {"--method ltp --final-threshold 2", "--final-threshold"},
        {"--method ltp --keep-rate 0.5", "--keep-rate does not apply to --method ltp"},
        {"--method power", "needs --retention"},
        {"--method power --retention 10,20,5,5,5,5", "must be non-increasing"},
        {"--method power --retention 0.9,0.8", "needs 6 values"},
        {"--method power --retention 10,0.5,5,5,5,5", "mixes token counts and fractions"},
        {"--method power --retention 10,5,5,5,5,2.5e0", "mixes token counts and fractions"},
        {"--method power --retention 10,5,5,5,5,0", "retention[5] = 0 is not a token count"},
        {"--method power --retention 0.9,0.8,0.7,0.6,0.5,0.0", "not a fraction in (0, 1]"},
        {"--method power --match /nonexistent/x.jsonl", "/nonexistent/x.jsonl"},
        {"--method random", "needs --keep-rate"},
        {"--method random --keep-rate 0.5,0.5", "one rate or 6"},
        {"--method random --keep-rate 1.5", "outside (0, 1]"},
        {"--method truncate", "needs --keep"},
        {"--method truncate --keep 0", "not a token count"},
        {"--method truncate --keep 2.5", "not a fraction"},
        {"--method truncate --keep 5x", "--keep: expected one number"},
        {"--method none --retention 5", "--retention does not apply to --method none"},
        {"--method adapler --keep 5", "--keep does not apply"},
        {"--method truncate --keep 5 --match x.jsonl", "--match does not apply to --method truncate"},
        {"--method saliency", "needs --eta E, --keep-rate R or --match FILE"},
        {"--method saliency --eta 0.5 --keep-rate 0.5", "not several"},
        {"--method saliency --eta 0", "--eta must be > 0"},
        {"--method saliency --eta -1", "--eta: expected a number"},
        {"--method saliency --eta 0.5 --saliency-layer all", "expected input or each"},
        {"--method saliency --keep-rate 0.5,0.5", "one rate or 6"},
        {"--method saliency --keep-rate 0", "outside (0, 1]"},
        {"--method cascade --keep-rate 0.5 --eta 1", "--eta does not apply to --method cascade"},
        {"--method power --retention 5,5,5,5,5,5 --saliency-layer each", "--saliency-layer does not apply"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = test_sh("%s eval --model %s/m " EVAL_ARGS " %s", bin(), dir, bad[i].args);
        const char *out = test_sh_output();
        CHECK_MSG(rc == 1 || rc == 2, "%s: exit %d", bad[i].args, rc);
        CHECK_MSG(strstr(out, bad[i].msg) != NULL, "%s: expected '%s' in: %s", bad[i].args, bad[i].msg, out);
        const char *nl = strchr(out, '\n');
        CHECK_MSG(nl && nl[1] == 0, "%s: not one line: %s", bad[i].args, out);
    }
    /* saliency prunes, but its gradient pass costs more than the dense model, and the JSON
     * says it is a quality reference (the others are not) */
    const char *sal[] = {"--method saliency --eta 0.5", "--method saliency --keep-rate 0.7 --saliency-layer each"};
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(test_sh("%s eval --model %s/m " EVAL_ARGS " %s", bin(), dir, sal[i]) == 0, "%s: %s", sal[i],
                  test_sh_output());
        cJSON *j = cJSON_Parse(test_sh_output());
        REQUIRE(j);
        const cJSON *lt = cJSON_GetObjectItem(j, "layer_tokens");
        double speed = cJSON_GetObjectItem(j, "flops_speedup")->valuedouble;
        CHECK_MSG(cJSON_GetArrayItem(lt, 5)->valuedouble < cJSON_GetObjectItem(j, "mean_length")->valuedouble,
                  "%s did not prune", sal[i]);
        CHECK_MSG(speed > 0.2 && speed < 0.5, "%s: flops_speedup %g, expected below 0.5 (gradient pass counted)", sal[i],
                  speed);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "quality_reference")));
        cJSON_Delete(j);
    }
    REQUIRE(test_sh("%s eval --model %s/m " EVAL_ARGS " --method cascade --keep-rate 0.5", bin(), dir) == 0);
    CHECK(strstr(test_sh_output(), "\"quality_reference\": false") != NULL);
    CHECK(test_sh("%s eval --help", bin()) == 0);
    const char *knobs[] = {"cascade", "ltp", "power", "random", "saliency", "truncate", "--keep-rate",
                           "--final-threshold", "--retention", "--keep K", "--match FILE", "--eta E",
                           "--saliency-layer"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        CHECK_MSG(strstr(test_sh_output(), knobs[i]) != NULL, "--help lacks %s", knobs[i]);
}

/* ---- --match files and learned parameters: malformed input is a one-line error ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

TEST(baseline_match_file_errors) {
    char path[4200];
    snprintf(path, sizeof path, "%s/m.jsonl", test_tmpdir());
    struct {
        const char *text, *msg;
    } bad[] = {
        {"", "no examples"},
        {"not json\n", ":1: not a JSON object"},
        {"{\"id\": \"a\", \"layer_tokens\": [3, 2]}\n", ":1: \"layer_tokens\" is not an array of 3"},
        {"{\"id\": \"a\", \"layer_tokens\": [3, 2, 1]}\n{\"id\": \"b\", \"layer_tokens\": [3, 4, 1]}\n",
         ":2: layer_tokens[1] = 4 exceeds layer_tokens[0] = 3"},
        {"{\"id\": \"a\", \"layer_tokens\": [3, 0, 0]}\n", "layer_tokens[1] is not a count"},
        {"{\"id\": \"a\", \"layer_tokens\": [3, 2.5, 1]}\n", "layer_tokens[1] is not a count"},
        {"{\"layer_tokens\": [3, 2, 1]}\n", "no string \"id\""},
        {"{\"index\": 1, \"id\": \"a\", \"layer_tokens\": [3, 2, 1]}\n", "\"index\" is not 0"},
        {"{\"id\": \"a\", \"length\": 2, \"layer_tokens\": [3, 2, 1]}\n", "exceeds \"length\" 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text);
        match_counts mc;
        CHECK(match_counts_load(&mc, path, 3) == ADP_ERR);
        CHECK_MSG(strstr(adp_errmsg(), bad[i].msg) && strstr(adp_errmsg(), "m.jsonl") && !strchr(adp_errmsg(), '\n'),
                  "case %zu: %s", i, adp_errmsg());
    }
    write_file(path, "{\"index\": 0, \"id\": \"a\", \"length\": 5, \"layer_tokens\": [5, 2, 1], \"kept\": [0]}\n\n"
                     "{\"index\": 1, \"id\": \"b\", \"layer_tokens\": [4, 4, 4]}\n");
    match_counts mc;
    REQUIRE(match_counts_load(&mc, path, 3) == ADP_OK);
    CHECK_INT(mc.n, 2);
    CHECK_INT(mc.tokens[3 + 2], 4);
    const char *ids[2] = {"a", "b"}, *other[2] = {"a", "c"};
    CHECK(match_counts_check(&mc, 2, ids) == ADP_OK);
    CHECK(match_counts_check(&mc, 3, ids) == ADP_ERR && strstr(adp_errmsg(), "has 2 examples, this run has 3"));
    CHECK(match_counts_check(&mc, 2, other) == ADP_ERR && strstr(adp_errmsg(), "example 1 is 'b' in the file but 'c'"));
    const int *row;
    CHECK(match_counts_row(&mc, 0, 5, &row) == ADP_OK && row[1] == 2);
    CHECK(match_counts_row(&mc, 0, 6, &row) == ADP_ERR && strstr(adp_errmsg(), "had 5 tokens in the matched run, 6 here"));
    CHECK(match_counts_row(&mc, 1, 3, &row) == ADP_ERR && strstr(adp_errmsg(), "kept 4 tokens at layer 0"));
    CHECK(match_counts_row(&mc, 2, 9, &row) == ADP_ERR && strstr(adp_errmsg(), "example 2 was run"));
    /* through the registry: method_check_examples */
    method me = {0};
    me.match = mc;
    me.has_match = 1;
    CHECK(method_check_examples(&me, 2, ids) == ADP_OK);
    CHECK(method_check_examples(&me, 1, NULL) == ADP_ERR && strstr(adp_errmsg(), "m.jsonl"));
    match_counts_free(&me.match);
}

TEST(baseline_learned_parameters_validated) {
    const char *dir = test_tmpdir();
    setenv("OMP_NUM_THREADS", "1", 1);
    struct {
        const char *make, *method, *msg;
    } bad[] = {
        {"--power-retention 10,20,5,5", "power", "must be non-increasing"},
        {"--power-retention 10,5.5,5,5", "power", "power.retention[1] = 5.5 is not a token count"},
        {"--power-retention 10,5,5", "power", "power.retention"},
        {"--ltp-threshold 0,0.1,-1,0", "ltp", "ltp.threshold[2] = -1 is outside [0, 1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE(test_python("ref_bert.py", "make --out %s/m%zu --layers 4 --hidden 32 --heads 2 --inter 64 %s", dir, i,
                            bad[i].make) == 0);
        char path[4200];
        snprintf(path, sizeof path, "%s/m%zu", dir, i);
        bert_model m;
        st_file st;
        REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
        method_opts o = opts_for(bad[i].method);
        method me;
        CHECK(method_create(&me, &o, &m, &st) == ADP_ERR);
        CHECK_MSG(strstr(adp_errmsg(), bad[i].msg) != NULL, "case %zu: %s", i, adp_errmsg());
        st_close(&st);
        bert_model_free(&m);
    }
}

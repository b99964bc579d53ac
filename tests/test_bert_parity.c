/* test_bert_parity.c: the C encoder against the PyTorch reference (tests/ref_bert.py):
 * logits and every layer's hidden states, packed batches of mixed lengths, sentence pairs,
 * both LayerNorm naming styles, F16/BF16 checkpoints, and tokens dropped before layers
 * or after the attention block. */
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "adapler.h"
#include "gemm.h"
#include "common.h"
#include "test.h"

#define TOL 1e-4

typedef struct {
    st_file fx;
    int L, H;
    int stage_seen[130];
    double max_err;
} hook_state;

static int read_i32(const st_file *f, const char *name, int32_t **out, int64_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) return adp_seterr("fixture has no tensor %s", name);
    *n = st_numel(t);
    *out = mallocCheck(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    return st_read_i32(f, t, *out, *n);
}

static void hook(void *user, int layer, const float *x, int T, const int *off, const int32_t *pos) {
    hook_state *h = user;
    char name[64];
    if (layer < 0)
        snprintf(name, sizeof name, "emb");
    else
        snprintf(name, sizeof name, "%d", layer);
    char tn[80];
    snprintf(tn, sizeof tn, "hidden_%s", name);
    const st_tensor *t = st_find(&h->fx, tn);
    if (!t) {
        test_fail(__FILE__, __LINE__, "fixture lacks %s", tn);
        return;
    }
    h->stage_seen[layer + 1] = 1;
    if (t->shape[0] != T) {
        test_fail(__FILE__, __LINE__, "%s: C has %d rows, reference %lld", tn, T, (long long)t->shape[0]);
        return;
    }
    float *want = mallocCheck(sizeof(float) * (size_t)T * h->H);
    int64_t shape[2] = {T, h->H};
    CHECK(st_read_f32(&h->fx, t, want, shape, 2) == ADP_OK);
    double e = test_compare(tn, x, want, (size_t)T * h->H, TOL);
    if (e > h->max_err) h->max_err = e;
    free(want);
    /* surviving positions and offsets */
    int32_t *wpos = NULL, *woff = NULL;
    int64_t np = 0, no = 0;
    snprintf(tn, sizeof tn, "positions_%s", name);
    REQUIRE(read_i32(&h->fx, tn, &wpos, &np) == ADP_OK);
    snprintf(tn, sizeof tn, "offsets_%s", name);
    REQUIRE(read_i32(&h->fx, tn, &woff, &no) == ADP_OK);
    CHECK_INT(np, T);
    for (int i = 0; i < T && i < np; i++)
        if (pos[i] != wpos[i]) {
            test_fail(__FILE__, __LINE__, "%s: row %d position %d, reference %d", tn, i, pos[i], wpos[i]);
            break;
        }
    for (int s = 0; s < no; s++)
        if (off[s] != woff[s]) {
            test_fail(__FILE__, __LINE__, "%s: offset %d is %d, reference %d", tn, s, off[s], woff[s]);
            break;
        }
    free(wpos);
    free(woff);
}

/* Make a model with the reference, run both, compare.  `make_args` go to `ref_bert.py make`,
 * `run_args` to `ref_bert.py run`; schedule/point configure the C strategy the same way. */
static void parity_case(const char *make_args, const char *lengths, int pairs, const char *schedule,
                        const char *point, int batch_size, double eta_scale) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/model %s", dir, make_args) == 0);
    char adapler_args[64] = "";
    if (eta_scale >= 0) snprintf(adapler_args, sizeof adapler_args, "--adapler --eta-scale %.17g", eta_scale);
    REQUIRE(test_python("ref_bert.py", "run --model %s/model --out %s/fx.safetensors --lengths %s %s %s%s --point %s %s",
                        dir, dir, lengths, pairs ? "--pairs" : "", schedule ? "--schedule " : "",
                        schedule ? schedule : "", point, adapler_args) == 0);
    char path[4200];
    bert_model m;
    st_file st;
    snprintf(path, sizeof path, "%s/model", dir);
    REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
    adapler_weights aw = {0};
    adapler_trace trace = {0};
    hook_state hs = {.L = m.cfg.layers, .H = m.cfg.hidden};
    snprintf(path, sizeof path, "%s/fx.safetensors", dir);
    REQUIRE(st_open(&hs.fx, path) == ADP_OK);
    int32_t *ids = NULL, *types = NULL, *off32 = NULL;
    int64_t nt = 0, nt2 = 0, no = 0;
    REQUIRE(read_i32(&hs.fx, "input_ids", &ids, &nt) == ADP_OK);
    REQUIRE(read_i32(&hs.fx, "token_type_ids", &types, &nt2) == ADP_OK);
    REQUIRE(read_i32(&hs.fx, "offsets", &off32, &no) == ADP_OK);
    int n_seq = (int)no - 1;
    int *off = mallocCheck(sizeof(int) * (size_t)no);
    for (int i = 0; i < no; i++) off[i] = off32[i];

    prune_strategy ps;
    int have_ps = 0;
    float *frac = mallocCheck(sizeof(float) * (size_t)m.cfg.layers);
    for (int l = 0; l < m.cfg.layers; l++) frac[l] = 1.0f;
    if (schedule) {
        char *spec = strdupCheck(schedule), *save = NULL;
        for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int l;
            float f;
            REQUIRE(sscanf(tok, "%d:%f", &l, &f) == 2);
            frac[l] = f;
        }
        free(spec);
        REQUIRE(prune_schedule_create(&ps, m.cfg.layers, frac,
                                      !strcmp(point, "input") ? PRUNE_AT_INPUT : PRUNE_AFTER_ATTENTION) == ADP_OK);
        have_ps = 1;
    }
    if (eta_scale >= 0) {
        REQUIRE(adapler_weights_load(&aw, &st, m.cfg.layers, m.cfg.hidden) == ADP_OK);
        REQUIRE(adapler_strategy_create(&ps, &aw, eta_scale, &trace) == ADP_OK);
        have_ps = 1;
        /* a keep decision this close to its threshold may round either way */
        const st_tensor *mm = st_find(&hs.fx, "min_margin");
        float margin;
        int64_t one[1] = {1};
        REQUIRE(mm && st_read_f32(&hs.fx, mm, &margin, one, 1) == ADP_OK);
        REQUIRE(margin > 1e-4f);
    }
    /* logits of the whole set, batch by batch; the hook only checks when the whole set
     * runs as one batch (the fixture's hidden states are packed over all sequences) */
    float *logits = mallocCheck(sizeof(float) * (size_t)n_seq * m.cfg.num_labels);
    bert_ctx ctx;
    bert_ctx_init(&ctx);
    int bs = batch_size > 0 ? batch_size : n_seq;
    for (int s0 = 0; s0 < n_seq; s0 += bs) {
        int k = ADP_MIN(bs, n_seq - s0);
        int *boff = mallocCheck(sizeof(int) * (size_t)(k + 1));
        for (int i = 0; i <= k; i++) boff[i] = off[s0 + i] - off[s0];
        bert_batch b = {.n_seq = k, .ids = ids + off[s0], .types = types + off[s0], .off = boff};
        bert_run_opts o = {.prune = have_ps ? &ps : NULL, .hook = k == n_seq ? hook : NULL, .hook_user = &hs};
        const bert_result *r;
        REQUIRE(bert_forward(&ctx, &m, &b, &o, &r) == ADP_OK);
        memcpy(logits + (size_t)s0 * m.cfg.num_labels, r->logits, sizeof(float) * (size_t)k * m.cfg.num_labels);
        /* recorded token counts agree with the surviving positions */
        for (int i = 0; i < k; i++) {
            int alive_end = 0;
            for (int p = 0; p < boff[i + 1] - boff[i]; p++) alive_end += r->drop_stage[boff[i] + p] == 2 * m.cfg.layers;
            int last = r->ffn_tokens[i * m.cfg.layers + m.cfg.layers - 1];
            CHECK_INT(alive_end, last);
        }
        free(boff);
    }
    if (bs == n_seq)
        for (int l = -1; l < m.cfg.layers; l++) CHECK_MSG(hs.stage_seen[l + 1], "stage %d not checked", l);
    if (eta_scale >= 0 && bs == n_seq) {
        /* the CPs' scores of the live rows before every layer, against the reference's */
        for (int l = 0; l < m.cfg.layers; l++) {
            char tn[64];
            int32_t *pos = NULL, *poff = NULL;
            int64_t np = 0, npo = 0;
            if (l == 0) snprintf(tn, sizeof tn, "positions_emb");
            else snprintf(tn, sizeof tn, "positions_%d", l - 1);
            REQUIRE(read_i32(&hs.fx, tn, &pos, &np) == ADP_OK);
            if (l == 0) snprintf(tn, sizeof tn, "offsets_emb");
            else snprintf(tn, sizeof tn, "offsets_%d", l - 1);
            REQUIRE(read_i32(&hs.fx, tn, &poff, &npo) == ADP_OK);
            float *want_s = mallocCheck(sizeof(float) * (size_t)(np ? np : 1)), *got_s = mallocCheck(sizeof(float) * (size_t)(np ? np : 1));
            snprintf(tn, sizeof tn, "cp_score_%d", l);
            int64_t shp[1] = {np};
            REQUIRE(st_read_f32(&hs.fx, st_find(&hs.fx, tn), want_s, shp, 1) == ADP_OK);
            for (int sq = 0; sq < n_seq; sq++)
                for (int r = poff[sq]; r < poff[sq + 1]; r++)
                    got_s[r] = trace.score[(size_t)l * trace.n_tokens + (size_t)off[sq] + (size_t)pos[r]];
            test_compare(tn, got_s, want_s, (size_t)np, 1e-5);
            free(want_s), free(got_s), free(pos), free(poff);
        }
    }
    const st_tensor *lt = st_find(&hs.fx, "logits");
    REQUIRE(lt);
    float *want = mallocCheck(sizeof(float) * (size_t)n_seq * m.cfg.num_labels);
    int64_t shape[2] = {n_seq, m.cfg.num_labels};
    REQUIRE(st_read_f32(&hs.fx, lt, want, shape, 2) == ADP_OK);
    double e = test_compare("logits", logits, want, (size_t)n_seq * m.cfg.num_labels, TOL);
    if (test_verbose()) fprintf(stderr, "    max abs error: logits %.2e, hidden %.2e\n", e, hs.max_err);
    free(want), free(logits), free(frac), free(off), free(ids), free(types), free(off32);
    if (have_ps) ps.destroy(&ps);
    adapler_weights_free(&aw);
    adapler_trace_free(&trace);
    bert_ctx_free(&ctx);
    st_close(&hs.fx);
    st_close(&st);
    bert_model_free(&m);
}

static const char *MIXED = "1,2,3,9,17,64,100,128,200,255,511,512";

TEST(parity_L2_H64_A4_mixed_lengths_pairs) {
    parity_case("--layers 2 --hidden 64 --heads 4 --inter 256 --seed 1", MIXED, 1, NULL, "input", 0, -1);
}

TEST(parity_L4_H128_A2_gamma_beta_no_prefix) {
    parity_case("--layers 4 --hidden 128 --heads 2 --inter 512 --seed 2 --ln-style gamma --no-prefix", MIXED, 1, NULL,
                "input", 0, -1);
}

TEST(parity_L3_H96_A6_odd_intermediate) {
    parity_case("--layers 3 --hidden 96 --heads 6 --inter 200 --seed 3 --eps 1e-5", MIXED, 0, NULL, "input", 0, -1);
}

TEST(parity_small_batches_match_one_batch) {
    parity_case("--layers 2 --hidden 64 --heads 4 --inter 256 --seed 4", "5,1,40,12,7,3,90,2", 1, NULL, "input", 3, -1);
}

TEST(parity_f16_and_bf16_checkpoints) {
    parity_case("--layers 2 --hidden 64 --heads 4 --inter 128 --seed 5 --dtype F16", "1,8,33", 1, NULL, "input", 0, -1);
    parity_case("--layers 2 --hidden 64 --heads 4 --inter 128 --seed 6 --dtype BF16", "1,8,33", 1, NULL, "input", 0, -1);
}

TEST(parity_pruned_at_layer_input) {
    parity_case("--layers 4 --hidden 128 --heads 2 --inter 512 --seed 7", MIXED, 1, "1:0.5,3:0.3", "input", 0, -1);
}

TEST(parity_pruned_after_attention) {
    parity_case("--layers 4 --hidden 128 --heads 2 --inter 512 --seed 8", MIXED, 1, "0:0.5,2:0.7", "attention", 0, -1);
}

TEST(parity_pruned_to_cls_only) {
    parity_case("--layers 3 --hidden 96 --heads 6 --inter 200 --seed 9", "1,2,50", 0, "0:0.5,1:0", "input", 0, -1);
}

TEST(parity_plain_sgemm_path) {
    /* ADAPLER_GEMM=blas sends every projection to cblas_sgemm (the path CPUs without
     * AVX-512 take); it must agree with the reference just the same. */
    setenv("ADAPLER_GEMM", "blas", 1);
    REQUIRE(!gemm_packed_enabled());
    parity_case("--layers 3 --hidden 96 --heads 6 --inter 200 --seed 10", MIXED, 1, "1:0.6", "input", 0, -1);
}

TEST(parity_keepall_strategy_is_exactly_dense) {
    /* A strategy that acts everywhere but keeps every row changes nothing, bit for bit. */
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 3 --hidden 64 --heads 4 --inter 128", dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    REQUIRE(bert_model_load(&m, path, 0, NULL) == ADP_OK);
    int off[4] = {0, 5, 6, 70};
    int32_t ids[70];
    for (int i = 0; i < 70; i++) ids[i] = 5 + (i * 37) % 290;
    bert_batch b = {.n_seq = 3, .ids = ids, .off = off};
    bert_ctx c1, c2;
    bert_ctx_init(&c1), bert_ctx_init(&c2);
    const bert_result *r1, *r2;
    REQUIRE(bert_forward(&c1, &m, &b, NULL, &r1) == ADP_OK);
    for (int with_probs = 0; with_probs < 2; with_probs++) {
        prune_strategy ka;
        prune_keepall_create(&ka, with_probs);
        bert_run_opts o = {.prune = &ka};
        REQUIRE(bert_forward(&c2, &m, &b, &o, &r2) == ADP_OK);
        CHECK(memcmp(r1->logits, r2->logits, sizeof(float) * 3 * m.cfg.num_labels) == 0);
        for (int s = 0; s < 3; s++) CHECK(r1->flops[s] == r2->flops[s]);
        for (int t = 0; t < 70; t++) CHECK_INT(r2->drop_stage[t], 2 * m.cfg.layers);
        ka.destroy(&ka);
    }
    bert_ctx_free(&c1), bert_ctx_free(&c2);
    bert_model_free(&m);
}

TEST(parity_adapler_hard_removal) {
    /* AdapLeR's rule before every layer, in packed batches, against the reference running
     * each sequence alone; at two eta scales (heavy and light pruning). */
    parity_case("--layers 3 --hidden 64 --heads 4 --inter 128 --seed 11 --adapler", MIXED, 1, NULL, "input", 0, 1.0);
}

TEST(parity_adapler_light_pruning_small_batches) {
    parity_case("--layers 4 --hidden 64 --heads 2 --inter 96 --seed 12 --adapler", "1,7,33,64,150,3", 0, NULL, "input",
                0, 0.2);
    parity_case("--layers 4 --hidden 64 --heads 2 --inter 96 --seed 12 --adapler", "1,7,33,64,150,3", 0, NULL, "input",
                2, 0.2);
}

/* Wraps AdapLeR's strategy and records, per layer, whether select found the engine's
 * scores (prune.h score_rows) and how many rows score_rows was asked for. */
typedef struct {
    prune_strategy inner;
    int got_scores[16], scored_rows[16];
} spy_state;

static int spy_wants(const prune_strategy *ps, int layer, prune_point point) {
    const spy_state *sp = ps->state;
    return sp->inner.wants(&sp->inner, layer, point);
}
static int spy_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    spy_state *sp = ps->state;
    sp->got_scores[st->layer] += st->scores != NULL;
    return sp->inner.select(&sp->inner, st, keep, flops);
}
static void spy_score_rows(const prune_strategy *ps, int layer, const float *x, int hidden, int r0, int r1,
                           float *scores) {
    spy_state *sp = ps->state;
#pragma omp atomic
    sp->scored_rows[layer] += r1 - r0;
    sp->inner.score_rows(&sp->inner, layer, x, hidden, r0, r1, scores);
}

TEST(parity_adapler_predictor_in_the_layer_team_same_bits) {
    /* With two threads the engine scores each layer's input inside the parallel region that
     * computed it (the pass's one region, bert.c forward_one_region): the predictions, the
     * kept rows and the FLOPs must be those of one thread, where AdapLeR scores each layer
     * itself, bit for bit, at light and heavy pruning. */
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 4 --hidden 128 --heads 2 --inter 256 --seed 21 %s",
                        dir, "--adapler") == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    st_file st;
    REQUIRE(bert_model_load(&m, path, 0, &st) == ADP_OK);
    adapler_weights aw = {0};
    REQUIRE(adapler_weights_load(&aw, &st, m.cfg.layers, m.cfg.hidden) == ADP_OK);
    enum { NS = 5 };
    int len[NS] = {40, 1, 17, 96, 3}, off[NS + 1] = {0};
    for (int s = 0; s < NS; s++) off[s + 1] = off[s] + len[s];
    const int T = off[NS], C = m.cfg.num_labels, L = m.cfg.layers;
    int32_t *ids = mallocCheck(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = 5 + (i * 53) % 290;
    for (int s = 0; s < NS; s++) ids[off[s]] = 2; /* [CLS]-like first token */
    bert_batch b = {.n_seq = NS, .ids = ids, .off = off};
    const double scales[2] = {0.3, 1.0};
    for (int k = 0; k < 2; k++) {
        float logits[2][NS * 8];
        uint8_t stage[2][256];
        double flops[2][NS];
        int tokens[2][NS * 16];
        spy_state sp[2];
        for (int th = 0; th < 2; th++) {
            adp_set_threads(th + 1);
            memset(&sp[th], 0, sizeof sp[th]);
            REQUIRE(adapler_strategy_create(&sp[th].inner, &aw, scales[k], NULL) == ADP_OK);
            prune_strategy spy = {.name = "spy", .state = &sp[th], .wants = spy_wants, .select = spy_select,
                                  .score_rows = spy_score_rows};
            bert_ctx c;
            bert_ctx_init(&c);
            const bert_result *r;
            bert_run_opts o = {.prune = &spy};
            REQUIRE(bert_forward(&c, &m, &b, &o, &r) == ADP_OK);
            memcpy(logits[th], r->logits, sizeof(float) * NS * C);
            memcpy(stage[th], r->drop_stage, (size_t)T);
            memcpy(flops[th], r->flops, sizeof(double) * NS);
            memcpy(tokens[th], r->layer_tokens, sizeof(int) * NS * L);
            bert_ctx_free(&c);
            sp[th].inner.destroy(&sp[th].inner);
        }
        adp_set_threads(0);
        CHECK(memcmp(logits[0], logits[1], sizeof(float) * NS * C) == 0);
        CHECK(memcmp(stage[0], stage[1], (size_t)T) == 0);
        CHECK(memcmp(flops[0], flops[1], sizeof(double) * NS) == 0);
        CHECK(memcmp(tokens[0], tokens[1], sizeof(int) * NS * L) == 0);
        /* one thread: AdapLeR scored every layer itself; two: the engine did, every row */
        for (int l = 0; l < L; l++) {
            int rows_in = 0; /* rows entering layer l's pruning step: those that left layer l - 1 */
            for (int s = 0; s < NS; s++) rows_in += l == 0 ? len[s] : tokens[1][s * L + l - 1];
            CHECK_INT(sp[0].got_scores[l], 0);
            CHECK_INT(sp[0].scored_rows[l], 0);
            if (gemm_packed_enabled()) {
                CHECK_INT(sp[1].got_scores[l], 1);
                CHECK_INT(sp[1].scored_rows[l], rows_in);
            }
        }
        /* and the pruning was real: the last layer saw fewer rows than the first */
        int first = 0, last = 0;
        for (int s = 0; s < NS; s++) first += tokens[0][s * L], last += tokens[0][s * L + L - 1];
        CHECK_MSG(last < first, "eta scale %g: %d rows at the first layer, %d at the last", scales[k], first, last);
    }
    free(ids);
    adapler_weights_free(&aw);
    st_close(&st);
    bert_model_free(&m);
}

/* test_eraser_export.c: `adapler eraser export` on tiny random models (tests/ref_bert.py),
 * over the planted task, a few real movie reviews (windows) and HateXplain.  What the file
 * says is checked against other paths through the code:
 *   - `adapler eval`'s last-layer FPR/TPR and accuracy (same rule, same keys);
 *   - `adapler predict` on texts the test builds itself (words deleted as documented): its
 *     probabilities must be the classification, comprehensiveness, sufficiency and AOPC
 *     scores, its layer_positions the hard rationale, and (AdapLeR) the soft scores must
 *     put every word on the right side of the layer-0 threshold;
 *   - the windows: the test cuts each review into the documented windows, runs predict on
 *     every window and merges them by the max-context rule;
 *   - the extremes: keep everything (token recall 1, sufficiency 0), drop everything (empty
 *     rationale, comprehensiveness 0), a method without scores (no soft predictions). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "eraser/align.h"
#include "eraser/eraser.h"
#include "safetensors.h"
#include "test.h"
#include "wordpiece.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

static const char *data_root(void) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/data/eraser_movies/test.jsonl", test_root());
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        snprintf(path, sizeof path, "%s/data", test_root());
    } else {
        snprintf(path, sizeof path, "%s/../shared/data", test_root());
    }
    return path;
}

static cJSON *read_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *read_json(const char *fmt, ...) {
    char path[4200], *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (adp_read_file(path, &buf, NULL) != ADP_OK) return NULL;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

/* j["a"]["b"]... as a number (NAN if missing or null); numeric parts index arrays. */
static double jnum(const cJSON *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && j; k = strtok_r(NULL, "/", &save))
        j = (k[0] >= '0' && k[0] <= '9') ? cJSON_GetArrayItem(j, atoi(k)) : cJSON_GetObjectItemCaseSensitive(j, k);
    return j && cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static int load_results(eraser_results *r, const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(r, 0, sizeof *r);
    int rc = eraser_results_read(r, path);
    if (rc != ADP_OK) test_fail(__FILE__, __LINE__, "%s", adp_errmsg());
    return rc;
}

static void softmax(double *p, const cJSON *logits) {
    int C = cJSON_GetArraySize(logits);
    double mx = -INFINITY, z = 0;
    for (int c = 0; c < C; c++) mx = fmax(mx, cJSON_GetArrayItem(logits, c)->valuedouble);
    for (int c = 0; c < C; c++) z += p[c] = exp(cJSON_GetArrayItem(logits, c)->valuedouble - mx);
    for (int c = 0; c < C; c++) p[c] /= z;
}

/* The words w with in[w] set, joined by single spaces: a document with the other words deleted. */
static char *join_words(const eraser_doc *d, const uint8_t *in) {
    size_t len = 1;
    for (size_t w = 0; w < d->n_words; w++) len += strlen(d->words[w]) + 1;
    char *s = mallocCheck(len), *p = s;
    for (size_t w = 0; w < d->n_words; w++) {
        if (in && !in[w]) continue;
        if (p > s) *p++ = ' ';
        size_t k = strlen(d->words[w]);
        memcpy(p, d->words[w], k);
        p += k;
    }
    *p = 0;
    return s;
}

/* One predict input line: the text, or [CLS] [SEP] as ids for an empty document (predict
 * refuses an empty text; the export runs [CLS] [SEP]). */
static void put_text_line(FILE *f, const char *text, const wordpiece *wp) {
    if (!text[0]) {
        fprintf(f, "{\"input_ids\": [%d, %d]}\n", wp->cls_id, wp->sep_id);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", text);
    char *s = cJSON_PrintUnformatted(j);
    fprintf(f, "%s\n", s);
    cJSON_free(s);
    cJSON_Delete(j);
}

/* Run predict on DIR/pin.jsonl; returns the output lines as a JSON array (or NULL). */
static cJSON *run_predict(const char *dir, const char *model, const char *method_args) {
    if (test_sh("%s predict --model %s --threads 1 %s < %s/pin.jsonl > %s/pout.jsonl", bin(), model, method_args, dir,
                dir) != 0) {
        test_fail(__FILE__, __LINE__, "predict failed: %s", test_sh_output());
        return NULL;
    }
    char path[4200], *buf = NULL, *save = NULL;
    snprintf(path, sizeof path, "%s/pout.jsonl", dir);
    if (adp_read_file(path, &buf, NULL) != ADP_OK) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        cJSON_AddItemToArray(arr, cJSON_Parse(line));
    free(buf);
    return arr;
}

static double max_diff(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* Hard mask of a result's (single) document. */
static void hard_mask(uint8_t *mask, const eraser_result *r, size_t n_words) {
    eraser_spans_to_mask(mask, n_words, r->docs[0].hard, r->docs[0].n_hard);
}

typedef struct {
    size_t w;
    double s;
} ranked;

static int cmp_ranked(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->w > b->w) - (a->w < b->w);
}

/* top[w] = 1 for the ceil(pct% of n) words with the highest soft scores (ties: earlier word). */
static void top_words(uint8_t *top, const double *soft, size_t n, int pct) {
    ranked *r = mallocCheck((n ? n : 1) * sizeof *r);
    for (size_t w = 0; w < n; w++) r[w] = (ranked){w, soft[w]};
    qsort(r, n, sizeof *r, cmp_ranked);
    size_t k = ((size_t)pct * n + 99) / 100;
    memset(top, 0, n);
    for (size_t i = 0; i < k; i++) top[r[i].w] = 1;
    free(r);
}

static const int BINS[5] = {1, 5, 10, 20, 50};

/* Words whose pieces include one of the original positions in `positions` (a predict
 * layer_positions entry) of the encoding of text. */
static void words_at(uint8_t *mask, size_t n_words, const wordpiece *wp, const char *text, const cJSON *positions) {
    wp_encoding enc = {0};
    memset(mask, 0, n_words);
    if (wordpiece_encode(wp, &enc, text, strlen(text), NULL, 0, 0) != ADP_OK) {
        test_fail(__FILE__, __LINE__, "%s", adp_errmsg());
        return;
    }
    for (const cJSON *p = positions ? positions->child : NULL; p; p = p->next) {
        int pos = p->valueint;
        if (pos >= 0 && (size_t)pos < enc.n && enc.word_ids[pos] >= 0 && (size_t)enc.word_ids[pos] < n_words)
            mask[enc.word_ids[pos]] = 1;
    }
    wp_encoding_free(&enc);
}

TEST(eraser_export_planted_agrees_with_eval_and_predict) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 3 --hidden 64 --heads 4 --inter 128",
                        dir) == 0);
    const int L = 3;
    REQUIRE(test_sh("%s eraser export --model %s/m --dataset planted --planted-n 200 --split test --method adapler "
                    "--eta-scale 0.3 --threads 1 --batch 7 --gold-out %s/gold --out %s/r.jsonl > %s/sum.json",
                    bin(), dir, dir, dir, dir) == 0);
    cJSON *sum = read_json("%s/sum.json", dir);
    REQUIRE(sum);
    CHECK_NEAR(jnum(sum, "annotations"), 50, 0);
    CHECK_NEAR(jnum(sum, "windowed_documents"), 0, 0);
    CHECK_NEAR(jnum(sum, "unscored_windows"), 0, 0);
    REQUIRE(test_sh("%s eraser score --data %s/gold --split test --results %s/r.jsonl > %s/score.json", bin(), dir, dir,
                    dir) == 0);
    REQUIRE(test_sh("%s eval --model %s/m --dataset planted --planted-n 200 --split test --method adapler "
                    "--eta-scale 0.3 --threads 1 --repeats 0 > %s/eval.json", bin(), dir, dir) == 0);
    cJSON *score = read_json("%s/score.json", dir), *ev = read_json("%s/eval.json", dir);
    REQUIRE(score && ev);
    /* the hard rationale is eval's last layer: same FPR/TPR over the same keys */
    const cJSON *er = cJSON_GetObjectItem(ev, "eraser");
    CHECK_NEAR(jnum(er, "keys"), jnum(score, "keep_rates/n_keys"), 0);
    char key[64];
    static const char *rates[][2] = {{"fpr", "micro/fpr"}, {"tpr", "micro/tpr"}, {"fpr_macro", "macro/fpr"},
                                     {"tpr_macro", "macro/tpr"}};
    for (int k = 0; k < 4; k++) {
        snprintf(key, sizeof key, "%s/%d", rates[k][0], L - 1);
        char sk[64];
        snprintf(sk, sizeof sk, "keep_rates/%s", rates[k][1]);
        CHECK_NEAR(jnum(er, key), jnum(score, sk), 5e-7); /* eval prints 6 decimals */
    }
    CHECK_NEAR(jnum(ev, "accuracy"), jnum(score, "classification_scores/accuracy"), 5e-7);
    /* the pruning did something, so the comparisons above mean something */
    snprintf(key, sizeof key, "fpr/%d", L - 1);
    CHECK(jnum(er, key) < 0.9);

    /* the file, read back: every field, one document per line, one soft score per word */
    char gold[4200];
    snprintf(gold, sizeof gold, "%s/gold", dir);
    eraser_dataset ds;
    eraser_dataset_init(&ds);
    REQUIRE(eraser_load_split(&ds, gold, "test") == ADP_OK);
    eraser_results r;
    REQUIRE(load_results(&r, dir, "r.jsonl") == ADP_OK);
    REQUIRE(r.n == ds.n_anns && r.n == 50);
    CHECK(r.has_hard && r.has_soft && r.has_cls && r.has_comp && r.has_suff && r.has_thresholded);
    CHECK(!r.has_soft_sent && !r.has_tokens_to_flip);
    for (size_t i = 0; i < r.n; i++) {
        const eraser_result *x = &r.v[i];
        REQUIRE(x->n_docs == 1);
        const eraser_doc *d = eraser_find_doc(&ds, x->docs[0].docid);
        REQUIRE(d != NULL);
        CHECK_STR(x->annotation_id, ds.anns[i].annotation_id);
        CHECK_INT(x->docs[0].n_soft, d->n_words);
        CHECK_INT(x->n_thresholds, 5);
        for (int b = 0; b < 5; b++) CHECK_NEAR(x->thresholds[b], BINS[b] / 100.0, 0);
        CHECK_STR(x->cls.labels[0], "negative");
    }

    wordpiece wp;
    char path[4200];
    snprintf(path, sizeof path, "%s/m/vocab.txt", dir);
    REQUIRE(wordpiece_load(&wp, path, 1) == ADP_OK);
    /* predict on the documents with words deleted, built here from the gold documents */
    const size_t n_check = 8;
    const int per = 3 + 2 * 5; /* full, comp, suff, then comp/suff per bin */
    snprintf(path, sizeof path, "%s/pin.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (size_t i = 0; i < n_check; i++) {
        const eraser_result *x = &r.v[i];
        const eraser_doc *d = eraser_find_doc(&ds, x->docs[0].docid);
        size_t n = d->n_words;
        uint8_t *hard = mallocCheck(n), *not_hard = mallocCheck(n), *top = mallocCheck(n), *rest = mallocCheck(n);
        hard_mask(hard, x, n);
        for (size_t w = 0; w < n; w++) not_hard[w] = !hard[w];
        char *t[3] = {join_words(d, NULL), join_words(d, not_hard), join_words(d, hard)};
        for (int k = 0; k < 3; k++) put_text_line(f, t[k], &wp), free(t[k]);
        for (int b = 0; b < 5; b++) {
            top_words(top, x->docs[0].soft, n, BINS[b]);
            for (size_t w = 0; w < n; w++) rest[w] = !top[w];
            char *c = join_words(d, rest), *s = join_words(d, top);
            put_text_line(f, c, &wp), put_text_line(f, s, &wp);
            free(c), free(s);
        }
        free(hard), free(not_hard), free(top), free(rest);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/m", dir);
    cJSON *pred = run_predict(dir, path, "--method adapler --eta-scale 0.3");
    REQUIRE(pred && cJSON_GetArraySize(pred) == (int)(n_check * per));

    st_file st;
    snprintf(path, sizeof path, "%s/m/model.safetensors", dir);
    REQUIRE(st_open(&st, path) == ADP_OK);
    float eta_l[3];
    int64_t shape[1] = {3};
    REQUIRE(st_read_f32(&st, st_find(&st, "adapler.eta"), eta_l, shape, 1) == ADP_OK);
    st_close(&st);
    const double eta0 = 0.3 * eta_l[0]; /* --eta-scale 0.3 */

    double worst = 0;
    size_t kept_words = 0, layer0_checked = 0;
    for (size_t i = 0; i < n_check; i++) {
        const eraser_result *x = &r.v[i];
        const eraser_doc *d = eraser_find_doc(&ds, x->docs[0].docid);
        const size_t n = d->n_words;
        double p[2];
        const double *want[3] = {x->cls.p, x->comp.p, x->suff.p};
        for (int k = 0; k < per; k++) {
            const cJSON *o = cJSON_GetArrayItem(pred, (int)(i * per + (size_t)k));
            softmax(p, cJSON_GetObjectItem(o, "logits"));
            const double *w = k < 3 ? want[k] : (k - 3) % 2 == 0 ? x->thr_comp[(k - 3) / 2].p : x->thr_suff[(k - 3) / 2].p;
            double e = max_diff(p, w, 2);
            worst = fmax(worst, e);
            CHECK_MSG(e < 1e-5, "annotation %zu, edited document %d: predict %.9g/%.9g, export %.9g/%.9g", i, k, p[0],
                      p[1], w[0], w[1]);
        }
        /* hard rationale = the words predict has entering the last layer */
        const cJSON *full = cJSON_GetArrayItem(pred, (int)(i * per));
        const cJSON *lp = cJSON_GetObjectItem(full, "layer_positions");
        REQUIRE(cJSON_GetArraySize(lp) == L);
        char *text = join_words(d, NULL);
        uint8_t *want_keep = mallocCheck(n), *got = mallocCheck(n), *alive0 = mallocCheck(n);
        words_at(want_keep, n, &wp, text, cJSON_GetArrayItem(lp, L - 1));
        words_at(alive0, n, &wp, text, cJSON_GetArrayItem(lp, 0));
        hard_mask(got, x, n);
        for (size_t w = 0; w < n; w++) {
            CHECK_MSG(got[w] == want_keep[w], "annotation %zu word %zu: export %d, predict %d", i, w, got[w],
                      want_keep[w]);
            kept_words += got[w];
            /* soft = predictor score x window length: a word enters layer 0 iff it reaches eta_0 */
            double s = x->docs[0].soft[w];
            if (fabs(s - eta0) < 1e-4 * eta0) continue;
            CHECK_MSG(alive0[w] == (s >= eta0), "annotation %zu word %zu: soft %.9g, eta_0 %.9g, alive %d", i, w, s,
                      eta0, alive0[w]);
            layer0_checked++;
        }
        free(text), free(want_keep), free(got), free(alive0);
    }
    CHECK(kept_words > 0);
    CHECK(layer0_checked > 100);
    if (test_verbose())
        fprintf(stderr, "    %zu annotations x %d edited documents: max |p_export - p_predict| %.3g; %zu kept words\n",
                n_check, per, worst, kept_words);
    wordpiece_free(&wp);
    cJSON_Delete(pred);
    eraser_results_free(&r);
    eraser_dataset_free(&ds);
    cJSON_Delete(sum), cJSON_Delete(score), cJSON_Delete(ev);
}

/* export + score with extra arguments; returns the score file (NULL on failure). */
static cJSON *export_and_score(const char *dir, const char *name, const char *args) {
    if (test_sh("%s eraser export --model %s/m --dataset planted --planted-n 40 --split test --threads 1 %s "
                "--gold-out %s/gold --out %s/%s.jsonl > %s/%s.sum", bin(), dir, args, dir, dir, name, dir, name) != 0) {
        test_fail(__FILE__, __LINE__, "export %s failed: %s", args, test_sh_output());
        return NULL;
    }
    if (test_sh("%s eraser score --data %s/gold --split test --results %s/%s.jsonl > %s/%s.score", bin(), dir, dir,
                name, dir, name) != 0) {
        test_fail(__FILE__, __LINE__, "score of %s failed: %s", args, test_sh_output());
        return NULL;
    }
    return read_json("%s/%s.score", dir, name);
}

TEST(eraser_export_extremes) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 2 --hidden 64 --heads 4 --inter 128",
                        dir) == 0);
    char model[4200];
    snprintf(model, sizeof model, "%s/m", dir);
    /* the empty document under each method, for the edited documents that lose every word */
    char path[4200];
    wordpiece wp;
    snprintf(path, sizeof path, "%s/m/vocab.txt", dir);
    REQUIRE(wordpiece_load(&wp, path, 1) == ADP_OK);
    snprintf(path, sizeof path, "%s/pin.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    put_text_line(f, "", &wp);
    fclose(f);
    wordpiece_free(&wp);
    double empty_keep[2], empty_drop[2];
    cJSON *pk = run_predict(dir, model, "--method adapler --eta-scale 0");
    cJSON *pd = run_predict(dir, model, "--method adapler --eta-scale 1000000");
    REQUIRE(pk && pd);
    softmax(empty_keep, cJSON_GetObjectItem(cJSON_GetArrayItem(pk, 0), "logits"));
    softmax(empty_drop, cJSON_GetObjectItem(cJSON_GetArrayItem(pd, 0), "logits"));
    cJSON_Delete(pk), cJSON_Delete(pd);

    /* keep everything: the rationale is the whole document */
    cJSON *s = export_and_score(dir, "keep", "--method adapler --eta-scale 0");
    REQUIRE(s);
    CHECK_NEAR(jnum(s, "token_prf/instance_micro/r"), 1, 0);
    CHECK_NEAR(jnum(s, "keep_rates/micro/tpr"), 1, 0);
    CHECK_NEAR(jnum(s, "keep_rates/micro/fpr"), 1, 0);
    CHECK_NEAR(jnum(s, "classification_scores/sufficiency"), 0, 0);
    cJSON_Delete(s);
    eraser_results r;
    REQUIRE(load_results(&r, dir, "keep.jsonl") == ADP_OK);
    for (size_t i = 0; i < r.n; i++) /* without its rationale the document is empty */
        CHECK_MSG(max_diff(r.v[i].comp.p, empty_keep, 2) < 1e-6, "line %zu: comprehensiveness scores %.9g vs %.9g", i + 1,
                  r.v[i].comp.p[0], empty_keep[0]);
    eraser_results_free(&r);

    /* drop everything before layer 0: an empty rationale removes nothing */
    s = export_and_score(dir, "drop", "--method adapler --eta-scale 1000000");
    REQUIRE(s);
    CHECK_NEAR(jnum(s, "classification_scores/comprehensiveness"), 0, 0);
    CHECK_NEAR(jnum(s, "classification_scores/comprehensiveness_kl"), 0, 0);
    CHECK_NEAR(jnum(s, "token_prf/instance_micro/r"), 0, 0);
    CHECK_NEAR(jnum(s, "keep_rates/micro/fpr"), 0, 0);
    cJSON_Delete(s);
    cJSON *sum = read_json("%s/drop.sum", dir);
    REQUIRE(sum);
    CHECK_NEAR(jnum(sum, "empty_rationales"), jnum(sum, "annotations"), 0);
    cJSON_Delete(sum);
    REQUIRE(load_results(&r, dir, "drop.jsonl") == ADP_OK);
    for (size_t i = 0; i < r.n; i++) {
        CHECK_INT(r.v[i].docs[0].n_hard, 0);
        CHECK(max_diff(r.v[i].suff.p, empty_drop, 2) < 1e-6);
    }
    eraser_results_free(&r);

    /* no pruning method: no scores, so no soft predictions and no AOPC; the rest is there */
    s = export_and_score(dir, "none", "--method none");
    REQUIRE(s);
    CHECK(cJSON_GetObjectItem(s, "token_soft_metrics") == NULL);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "classification_scores"), "comprehensiveness_aopc")));
    CHECK_NEAR(jnum(s, "token_prf/instance_micro/r"), 1, 0);
    CHECK_NEAR(jnum(s, "classification_scores/sufficiency"), 0, 0);
    cJSON_Delete(s);
    REQUIRE(load_results(&r, dir, "none.jsonl") == ADP_OK);
    CHECK(r.has_hard && !r.has_soft && r.has_cls && r.has_comp && r.has_suff && !r.has_thresholded);
    eraser_results_free(&r);

    /* rationales only: one pass, no faithfulness fields */
    s = export_and_score(dir, "only", "--method adapler --rationales-only");
    REQUIRE(s);
    cJSON_Delete(s);
    REQUIRE(load_results(&r, dir, "only.jsonl") == ADP_OK);
    CHECK(r.has_hard && r.has_soft && r.has_cls && !r.has_comp && !r.has_suff && !r.has_thresholded);
    eraser_results_free(&r);
    sum = read_json("%s/only.sum", dir);
    REQUIRE(sum);
    CHECK_NEAR(jnum(sum, "sequences"), jnum(sum, "annotations"), 0);
    cJSON_Delete(sum);
}

/* A few real movie reviews, cut into windows of 64 pieces: the test windows them itself,
 * runs predict per window and merges by max context. */
TEST(eraser_export_movies_windows) {
    const char *dir = test_tmpdir();
    char src[4200], path[4200];
    snprintf(src, sizeof src, "%s/eraser_movies", data_root());
    snprintf(path, sizeof path, "%s/test.jsonl", src);
    char *all = NULL;
    REQUIRE(adp_read_file(path, &all, NULL) == ADP_OK);
    /* two NEG and two POS reviews: metrics.py takes its classes from the gold labels */
    snprintf(path, sizeof path, "%s/mv", dir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/mv/test.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    int neg = 0, pos = 0;
    char *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line && (neg < 2 || pos < 2); line = strtok_r(NULL, "\n", &save)) {
        int is_neg = strstr(line, "\"classification\": \"NEG\"") != NULL;
        if (is_neg ? neg++ < 2 : pos++ < 2) fprintf(f, "%s\n", line);
    }
    fclose(f);
    free(all);
    REQUIRE(neg >= 2 && pos >= 2);
    char docs[4200];
    snprintf(docs, sizeof docs, "%s/docs", src);
    snprintf(path, sizeof path, "%s/mv/docs", dir);
    REQUIRE(symlink(docs, path) == 0);

    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 2 --hidden 64 --heads 4 --inter 128",
                        dir) == 0);
    /* id2label is L0, L1: the gold labels need --labels */
    CHECK_INT(test_sh("%s eraser export --model %s/m --data %s/mv --out %s/r.jsonl", bin(), dir, dir, dir), 1);
    CHECK(strstr(test_sh_output(), "--labels") != NULL);
    REQUIRE(test_sh("%s eraser export --model %s/m --data %s/mv --labels NEG,POS --method adapler --max-len 64 "
                    "--threads 1 --out %s/r.jsonl > %s/sum.json", bin(), dir, dir, dir, dir) == 0);
    cJSON *sum = read_json("%s/sum.json", dir);
    REQUIRE(sum);
    CHECK_NEAR(jnum(sum, "windowed_documents"), 4, 0);
    CHECK(jnum(sum, "windows") > 40); /* reviews have hundreds of words */
    CHECK_NEAR(jnum(sum, "overlap"), 16, 0);
    cJSON_Delete(sum);
    REQUIRE(test_sh("%s eraser score --data %s/mv --split test --results %s/r.jsonl > %s/score.json", bin(), dir, dir,
                    dir) == 0);
    snprintf(path, sizeof path, "%s/score.json", dir);
    char results[4200], data[4200];
    snprintf(results, sizeof results, "%s/r.jsonl", dir);
    snprintf(data, sizeof data, "%s/mv", dir);
    CHECK_INT(test_python("ref_eraser_metrics.py", "--data '%s' --split test --results '%s' --compare '%s'", data,
                          results, path), 0);

    eraser_dataset ds;
    eraser_dataset_init(&ds);
    REQUIRE(eraser_load_split(&ds, data, "test") == ADP_OK);
    eraser_results r;
    REQUIRE(load_results(&r, dir, "r.jsonl") == ADP_OK);
    REQUIRE(r.n == 4);
    wordpiece wp;
    snprintf(path, sizeof path, "%s/m/vocab.txt", dir);
    REQUIRE(wordpiece_load(&wp, path, 1) == ADP_OK);
    /* the documented windows, one predict line each: [CLS] pieces [SEP] */
    const size_t window = 62, overlap = 16;
    eraser_window *win[4];
    size_t n_win[4];
    wp_encoding enc[4];
    memset(enc, 0, sizeof enc);
    snprintf(path, sizeof path, "%s/pin.jsonl", dir);
    f = fopen(path, "w");
    REQUIRE(f);
    for (size_t i = 0; i < 4; i++) {
        const eraser_doc *d = eraser_find_doc(&ds, r.v[i].docs[0].docid);
        REQUIRE(d);
        char *text = join_words(d, NULL);
        REQUIRE(wordpiece_tokenize(&wp, &enc[i], text, strlen(text)) == ADP_OK);
        free(text);
        REQUIRE(enc[i].n_words_a == d->n_words);
        REQUIRE(eraser_plan_windows(&win[i], &n_win[i], enc[i].word_ids, enc[i].n, window, overlap) == ADP_OK);
        for (size_t k = 0; k < n_win[i]; k++) {
            fprintf(f, "{\"input_ids\": [%d", wp.cls_id);
            for (size_t t = win[i][k].start; t < win[i][k].end; t++) fprintf(f, ", %d", enc[i].ids[t]);
            fprintf(f, ", %d]}\n", wp.sep_id);
        }
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/m", dir);
    cJSON *pred = run_predict(dir, path, "--method adapler");
    REQUIRE(pred);
    int line = 0;
    for (size_t i = 0; i < 4; i++) {
        const eraser_doc *d = eraser_find_doc(&ds, r.v[i].docs[0].docid);
        size_t np = enc[i].n;
        double mean[2] = {0, 0}, p[2];
        uint8_t **wk = mallocCheck(n_win[i] * sizeof *wk);
        for (size_t k = 0; k < n_win[i]; k++, line++) {
            const cJSON *o = cJSON_GetArrayItem(pred, line);
            REQUIRE(o);
            softmax(p, cJSON_GetObjectItem(o, "logits"));
            mean[0] += p[0] / (double)n_win[i], mean[1] += p[1] / (double)n_win[i];
            size_t len = win[i][k].end - win[i][k].start;
            wk[k] = callocCheck(len ? len : 1, 1);
            const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "layer_positions"), 1);
            for (const cJSON *q = last ? last->child : NULL; q; q = q->next)
                if (q->valueint >= 1 && (size_t)q->valueint <= len) wk[k][q->valueint - 1] = 1;
        }
        CHECK_MSG(max_diff(mean, r.v[i].cls.p, 2) < 1e-5, "review %zu: mean of %zu windows %.9g, export %.9g", i,
                  n_win[i], mean[0], r.v[i].cls.p[0]);
        uint8_t *piece_keep = mallocCheck(np), *want = mallocCheck(d->n_words), *got = mallocCheck(d->n_words);
        REQUIRE(eraser_merge_windows(NULL, piece_keep, win[i], n_win[i], NULL, (const uint8_t *const *)wk, np) == ADP_OK);
        REQUIRE(eraser_word_keep_from_pieces(want, d->n_words, piece_keep, enc[i].word_ids, np) == ADP_OK);
        hard_mask(got, &r.v[i], d->n_words);
        size_t differ = 0, kept = 0;
        for (size_t w = 0; w < d->n_words; w++) differ += got[w] != want[w], kept += got[w];
        CHECK_MSG(differ == 0, "review %zu: %zu of %zu words differ from the merged predict windows", i, differ,
                  d->n_words);
        CHECK(kept > 0 && kept < d->n_words);
        CHECK_INT(r.v[i].docs[0].n_soft, d->n_words);
        for (size_t k = 0; k < n_win[i]; k++) free(wk[k]);
        free(wk), free(piece_keep), free(want), free(got);
    }
    CHECK_INT(line, cJSON_GetArraySize(pred));
    for (size_t i = 0; i < 4; i++) free(win[i]), wp_encoding_free(&enc[i]);
    cJSON_Delete(pred);
    eraser_results_free(&r);
    wordpiece_free(&wp);

    /* traced scores as soft rationale: attention (ltp scores from layer 1 on, power from layer
     * 0) and gradient x input */
    static const char *attn[] = {"--method ltp --final-threshold 0.1", "--method power --retention 0.6,0.3",
                                 "--method saliency --eta 1"};
    for (int k = 0; k < 3; k++) {
        REQUIRE(test_sh("%s eraser export --model %s/m --data %s/mv --labels NEG,POS %s --max-len 128 --threads 1 "
                        "--out %s/a.jsonl > %s/a.json", bin(), dir, dir, attn[k], dir, dir) == 0);
        cJSON *a = read_json("%s/a.json", dir);
        REQUIRE(a);
        CHECK_NEAR(jnum(a, "unscored_windows"), 0, 0);
        cJSON_Delete(a);
        REQUIRE(test_sh("%s eraser score --data %s/mv --split test --results %s/a.jsonl > %s/a.score", bin(), dir, dir,
                        dir) == 0);
        cJSON *s = read_json("%s/a.score", dir);
        REQUIRE(s);
        CHECK(jnum(s, "token_soft_metrics/auprc") > 0);
        CHECK(isfinite(jnum(s, "classification_scores/comprehensiveness_aopc")));
        cJSON_Delete(s);
    }
    eraser_dataset_free(&ds);
}

/* HateXplain: per-word rationales become annotations; with --all-examples the normal posts
 * too, so every predicted class is a gold class and the file can be scored. */
TEST(eraser_export_hatexplain) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 3 --layers 2 --hidden 64 --heads 4 --inter 128",
                        dir) == 0);
    REQUIRE(test_sh("%s eraser export --model %s/m --dataset hatexplain --data-dir %s --split test --method adapler "
                    "--rationales-only --all-examples --threads 1 --gold-out %s/gold --out %s/r.jsonl > %s/sum.json",
                    bin(), dir, data_root(), dir, dir, dir) == 0);
    REQUIRE(test_sh("%s eraser score --data %s/gold --split test --results %s/r.jsonl > %s/score.json", bin(), dir, dir,
                    dir) == 0);
    REQUIRE(test_sh("%s eval --model %s/m --dataset hatexplain --data-dir %s --split test --method adapler --threads 1 "
                    "--repeats 0 > %s/eval.json", bin(), dir, data_root(), dir) == 0);
    cJSON *sum = read_json("%s/sum.json", dir), *score = read_json("%s/score.json", dir),
          *ev = read_json("%s/eval.json", dir);
    REQUIRE(sum && score && ev);
    /* labels from the dataset (config.json says L0..L2), every post an annotation */
    CHECK_NEAR(jnum(sum, "annotations"), jnum(ev, "examples"), 0);
    CHECK_NEAR(jnum(score, "classification_scores/accuracy"), jnum(ev, "accuracy"), 5e-7);
    /* posts without a rationale are all-negative keys here, so only the TPR is eval's.  Not to
     * the digit: eval counts a post's words up to its last word that has a piece, export all
     * its words (as metrics.py), and one gold word of the test split, U+FEFF at the end of
     * post 13748729_gab, has none: one more missed gold word in ~10,000. */
    CHECK_NEAR(jnum(score, "keep_rates/micro/tpr"), jnum(cJSON_GetObjectItem(ev, "eraser"), "tpr/1"), 2e-5);
    eraser_dataset ds;
    eraser_dataset_init(&ds);
    char gold[4200];
    snprintf(gold, sizeof gold, "%s/gold", dir);
    REQUIRE(eraser_load_split(&ds, gold, "test") == ADP_OK);
    size_t without = 0;
    for (size_t i = 0; i < ds.n_anns; i++) without += ds.anns[i].n_evidences == 0;
    CHECK(without > 0 && without < ds.n_anns);
    eraser_dataset_free(&ds);
    cJSON_Delete(sum), cJSON_Delete(score), cJSON_Delete(ev);
}

TEST(eraser_export_rejects_bad_arguments) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 2 --hidden 32 --heads 2 --inter 64", dir) == 0);
    /* args, then --out DIR/out.jsonl unless no_out */
    static const struct {
        const char *args, *msg;
        int no_out;
    } bad[] = {
        {"--dataset planted", "--model and --out are required", 1},
        {"--dataset planted --data x", "one of --data DIR", 0},
        {"--dataset planted --method random --match x", "--match is not supported", 0},
        {"--dataset planted --method none --aopc-thresholds 0.1", "--aopc-thresholds needs", 0},
        {"--dataset planted --max-len 2", "--max-len", 0},
        {"--dataset planted --labels a,b,c", "--labels: more than", 0},
        {"--dataset planted --method adapler", "no AdapLeR predictors", 0},
        {"--dataset planted --method frob", "unknown method 'frob'", 0},
        {"--data /nonexistent", "/nonexistent", 0},
        {"--dataset planted --gold-out /nonexistent/x/y", "/nonexistent/x/y", 0},
        {"--data /tmp --gold-out x", "--gold-out is for --dataset", 0},
    };
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s/out.jsonl.tmp", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = test_sh("%s eraser export --model %s/m --planted-n 8 %s%s%s", bin(), dir, bad[i].args,
                         bad[i].no_out ? "" : " --out ", bad[i].no_out ? "" : path);
        const char *out = test_sh_output();
        CHECK_MSG(rc == 1 || rc == 2, "%s: exit %d", bad[i].args, rc);
        CHECK_MSG(strstr(out, bad[i].msg) != NULL, "%s: stderr '%s'", bad[i].args, out);
        CHECK_MSG(strchr(out, '\n') == out + strlen(out) - 1, "%s: not one line: '%s'", bad[i].args, out);
        CHECK_MSG(access(path, F_OK) != 0, "%s: wrote %s", bad[i].args, path);
        CHECK_MSG(access(tmp, F_OK) != 0, "%s: left %s", bad[i].args, tmp);
    }
    CHECK_INT(test_sh("%s eraser export --help", bin()), 0);
    CHECK(strstr(test_sh_output(), "--gold-out") != NULL);
}

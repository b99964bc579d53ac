/* test_eraser_score.c: the score file end to end.  A small dataset whose every number is
 * worked out by hand; the CLI (`adapler eraser score`); and randomized predictions over the
 * real movie-review annotations compared with an independent Python implementation
 * (tests/ref_eraser_metrics.py, Debian's sklearn/scipy) within 1e-6. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common.h"
#include "eraser/eraser.h"
#include "test.h"

static const char *movies_dir(void) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/data/eraser_movies/test.jsonl", test_root());
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        snprintf(path, sizeof path, "%s/data/eraser_movies", test_root());
    } else {
        snprintf(path, sizeof path, "%s/../shared/data/eraser_movies", test_root());
    }
    return path;
}

static void write_file(const char *path, const char *fmt, ...) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* ---- the hand-computed fixture -------------------------------------------------------------
 * docs: d1 = 10 words in 2 sentences (5 + 5), d2 = 8 words (4 + 4), d3 = 6 words (1).
 * a1 (POS): group 1 = d1 [0,3) (sentence 0); group 2 = d1 [5,7) (sentence 1) + d2 [2,4)
 *           (sentence 0): a group spanning two documents, as in e-SNLI.
 * a2 (NEG): no evidence (like movies posR_161).
 * results:
 *   a1: d1 hard [1,4) [5,7), d2 hard [] ; classification POS (.8/.2)
 *   a2: d3 hard [0,2)                    ; classification POS (NEG .4, POS .6)
 * Hard metrics are test_eraser_metrics.c's fixture A (same three keys):
 *   token micro 4/7, macro 0.8/3; span micro 1/3, macro 1/6;
 *   IOU@0.5 micro 2/3, macro 0.5; IOU@0.6 micro 1/3, macro 0.25.
 * keep rates: (a1,d1) tp 4 fp 1 pos 5 neg 5; (a1,d2) tp 0 fp 0 pos 2 neg 6;
 *   (a2,d3) fp 2 pos 0 neg 6 -> micro FPR 3/17, TPR 4/7; macro FPR (1/5+0+2/6)/3, TPR 0.8/2.
 * soft (words): d1 = the gold mask -> AUPRC 1, AP 1, ROC 1; d2 all ones (2 of 8 gold) ->
 *   P = [1/4, 1], R = [1, 0]: AUPRC 5/8, AP 1/4, ROC 1/2; d3 no gold -> AUPRC 1/2 only.
 *   auprc = (1 + 5/8 + 1/2)/3 = 17/24, AP = (1 + 1/4)/2 = 5/8, ROC = 3/4.
 * soft (sentences): truth (a1,d1) [1,1], (a1,d2) [1,0], (a2,d3) [0];
 *   d1 [.2,.9] -> AUPRC 1; d2 [.3,.7] -> P = [1/2,0,1], R = [1,0,0]: AUPRC 1/4, AP 1/2, ROC 0;
 *   d3 [.5] -> 1/2.  auprc = 7/12, AP 1/2, ROC 0.
 * classification: accuracy 1/2; NEG p 0 r 0 f1 0 (support 1), POS p 1/2 r 1 f1 2/3 (1);
 *   macro = weighted = p 1/4, r 1/2, f1 1/3.
 * faithfulness (pred POS both): comp .8-.3, .6-.5 -> .3; suff .8-.6, .6-.8 -> 0.
 *   AOPC at 0.1, 0.5 (0.3 is in the file but not asked for; entries are out of order):
 *   comp deltas a1 (.1, .3), a2 (-.1, .2) -> .125, points (0, .25);
 *   suff deltas a1 (-.1, 0), a2 (.1, -.3) -> -.075, points (0, -.15).
 * tokens_to_flip: a1 9 of 18 words (d1 + d2), a2 3 of 6 (its result's d3) -> 0.5. */
static void write_fixture(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/docs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/docs/d1", dir);
    write_file(p, "w0 w1 w2 w3 w4\nw5 w6 w7 w8 w9\n");
    snprintf(p, sizeof p, "%s/docs/d2", dir);
    write_file(p, "v0 v1 v2 v3\nv4 v5 v6 v7");
    snprintf(p, sizeof p, "%s/docs/d3", dir);
    write_file(p, "u0 u1 u2 u3 u4 u5");
    snprintf(p, sizeof p, "%s/test.jsonl", dir);
    write_file(p,
               "{\"annotation_id\": \"a1\", \"query\": \"q\", \"classification\": \"POS\", \"evidences\": ["
               "[{\"docid\": \"d1\", \"start_token\": 0, \"end_token\": 3, \"start_sentence\": 0, \"end_sentence\": 1, "
               "\"text\": \"w0 w1 w2\"}], "
               "[{\"docid\": \"d1\", \"start_token\": 5, \"end_token\": 7, \"start_sentence\": 1, \"end_sentence\": 2, "
               "\"text\": \"w5 w6\"}, {\"docid\": \"d2\", \"start_token\": 2, \"end_token\": 4, \"start_sentence\": 0, "
               "\"end_sentence\": 1, \"text\": \"v2 v3\"}]], \"query_type\": null, \"docids\": null}\n"
               "{\"annotation_id\": \"a2\", \"query\": \"q\", \"classification\": \"NEG\", \"evidences\": []}\n");
    snprintf(p, sizeof p, "%s/results.jsonl", dir);
    write_file(p,
               "{\"annotation_id\": \"a1\", \"rationales\": ["
               "{\"docid\": \"d1\", \"hard_rationale_predictions\": [{\"start_token\": 5, \"end_token\": 7}, "
               "{\"start_token\": 1, \"end_token\": 4}], \"soft_rationale_predictions\": [1,1,1,0,0,1,1,0,0,0], "
               "\"soft_sentence_predictions\": [0.2, 0.9]}, "
               "{\"docid\": \"d2\", \"hard_rationale_predictions\": [], \"soft_rationale_predictions\": [1,1,1,1,1,1,1,1], "
               "\"soft_sentence_predictions\": [0.3, 0.7]}], "
               "\"classification\": \"POS\", \"classification_scores\": {\"POS\": 0.8, \"NEG\": 0.2}, "
               "\"comprehensiveness_classification_scores\": {\"NEG\": 0.7, \"POS\": 0.3}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.6, \"NEG\": 0.4}, "
               "\"thresholded_scores\": ["
               "{\"threshold\": 0.5, \"comprehensiveness_classification_scores\": {\"POS\": 0.5, \"NEG\": 0.5}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.8, \"NEG\": 0.2}}, "
               "{\"threshold\": 0.3, \"comprehensiveness_classification_scores\": {\"POS\": 0.0, \"NEG\": 1.0}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.0, \"NEG\": 1.0}}, "
               "{\"threshold\": 0.1, \"comprehensiveness_classification_scores\": {\"POS\": 0.7, \"NEG\": 0.3}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.9, \"NEG\": 0.1}}], \"tokens_to_flip\": 9}\n"
               "{\"annotation_id\": \"a2\", \"rationales\": ["
               "{\"docid\": \"d3\", \"hard_rationale_predictions\": [{\"start_token\": 0, \"end_token\": 2}], "
               "\"soft_rationale_predictions\": [0.6, 0.5, 0.4, 0.3, 0.2, 0.1], \"soft_sentence_predictions\": [0.5]}], "
               "\"classification\": \"POS\", \"classification_scores\": {\"NEG\": 0.4, \"POS\": 0.6}, "
               "\"comprehensiveness_classification_scores\": {\"POS\": 0.5, \"NEG\": 0.5}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.8, \"NEG\": 0.2}, "
               "\"thresholded_scores\": ["
               "{\"threshold\": 0.1, \"comprehensiveness_classification_scores\": {\"POS\": 0.7, \"NEG\": 0.3}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.5, \"NEG\": 0.5}}, "
               "{\"threshold\": 0.3, \"comprehensiveness_classification_scores\": {\"POS\": 0.0, \"NEG\": 1.0}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.0, \"NEG\": 1.0}}, "
               "{\"threshold\": 0.5, \"comprehensiveness_classification_scores\": {\"POS\": 0.4, \"NEG\": 0.6}, "
               "\"sufficiency_classification_scores\": {\"POS\": 0.9, \"NEG\": 0.1}}], \"tokens_to_flip\": 3}\n");
}

/* j["a"]["b"]... as a number (NAN if missing or null). */
static double jnum(const cJSON *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && j; k = strtok_r(NULL, "/", &save))
        j = (k[0] >= '0' && k[0] <= '9') ? cJSON_GetArrayItem(j, atoi(k)) : cJSON_GetObjectItemCaseSensitive(j, k);
    return j && cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static void check_fixture_scores(const cJSON *s) {
    static const struct {
        const char *path;
        double want;
    } want[] = {
        {"token_prf/instance_micro/p", 4.0 / 7},
        {"token_prf/instance_micro/r", 4.0 / 7},
        {"token_prf/instance_micro/f1", 4.0 / 7},
        {"token_prf/instance_macro/p", 0.8 / 3},
        {"token_prf/instance_macro/f1", 0.8 / 3},
        {"rationale_prf/instance_micro/f1", 1.0 / 3},
        {"rationale_prf/instance_macro/p", 1.0 / 6},
        {"iou_scores/0/threshold", 0.5},
        {"iou_scores/0/micro/p", 2.0 / 3},
        {"iou_scores/0/micro/r", 2.0 / 3},
        {"iou_scores/0/macro/f1", 0.5},
        {"iou_scores/1/threshold", 0.6},
        {"iou_scores/1/micro/f1", 1.0 / 3},
        {"iou_scores/1/macro/r", 0.25},
        {"keep_rates/micro/fpr", 3.0 / 17},
        {"keep_rates/micro/tpr", 4.0 / 7},
        {"keep_rates/macro/fpr", (0.2 + 0 + 2.0 / 6) / 3},
        {"keep_rates/macro/tpr", 0.4},
        {"keep_rates/n_keys", 3},
        {"token_soft_metrics/auprc", 17.0 / 24},
        {"token_soft_metrics/average_precision", 5.0 / 8},
        {"token_soft_metrics/roc_auc_score", 0.75},
        {"sentence_soft_metrics/auprc", 7.0 / 12},
        {"sentence_soft_metrics/average_precision", 0.5},
        {"sentence_soft_metrics/roc_auc_score", 0.0},
        {"classification_scores/accuracy", 0.5},
        {"classification_scores/prf/accuracy", 0.5},
        {"classification_scores/prf/NEG/precision", 0},
        {"classification_scores/prf/NEG/support", 1},
        {"classification_scores/prf/POS/precision", 0.5},
        {"classification_scores/prf/POS/recall", 1},
        {"classification_scores/prf/POS/f1-score", 2.0 / 3},
        {"classification_scores/prf/macro avg/precision", 0.25},
        {"classification_scores/prf/macro avg/f1-score", 1.0 / 3},
        {"classification_scores/prf/weighted avg/recall", 0.5},
        {"classification_scores/prf/weighted avg/support", 2},
        {"classification_scores/comprehensiveness", 0.3},
        {"classification_scores/sufficiency", 0.0},
        {"classification_scores/comprehensiveness_aopc", 0.125},
        {"classification_scores/comprehensiveness_aopc_points/0", 0.0},
        {"classification_scores/comprehensiveness_aopc_points/1", 0.25},
        {"classification_scores/sufficiency_aopc", -0.075},
        {"classification_scores/sufficiency_aopc_points/1", -0.15},
        {"classification_scores/tokens_to_flip", 0.5},
        {"classification_scores/comprehensiveness_entropy",
         ((-(.8 * log(.8) + .2 * log(.2)) + (.3 * log(.3) + .7 * log(.7))) +
          (-(.4 * log(.4) + .6 * log(.6)) + (.5 * log(.5) + .5 * log(.5)))) / 2},
        {"classification_scores/sufficiency_kl",
         ((.6 * log(.6 / .8) + .4 * log(.4 / .2)) + (.8 * log(.8 / .6) + .2 * log(.2 / .4))) / 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double got = jnum(s, want[i].path);
        CHECK_MSG(fabs(got - want[i].want) <= 1e-12, "%s: got %.17g, want %.17g", want[i].path, got, want[i].want);
    }
    /* json.dump(sort_keys=True) order */
    const char *order[] = {"classification_scores", "iou_scores", "keep_rates", "rationale_prf",
                           "sentence_soft_metrics", "token_prf", "token_soft_metrics"};
    int k = 0;
    for (const cJSON *c = s->child; c; c = c->next, k++) CHECK_STR(c->string, k < 7 ? order[k] : "(extra)");
    CHECK_INT(k, 7);
}

static int score_dir(cJSON **out, const char *dir, const char *split, const char *results, const eraser_score_opts *opt) {
    eraser_dataset ds;
    eraser_results r;
    eraser_dataset_init(&ds);
    int rc = eraser_load_split(&ds, dir, split);
    if (rc == ADP_OK) rc = eraser_results_read(&r, results);
    else memset(&r, 0, sizeof r);
    for (size_t i = 0; rc == ADP_OK && i < r.n; i++)
        for (size_t k = 0; rc == ADP_OK && k < r.v[i].n_docs; k++) {
            const char *id = r.v[i].docs[k].docid;
            rc = eraser_load_docs(&ds, dir, &id, 1);
        }
    if (rc == ADP_OK) rc = eraser_score(out, &ds, &r, opt);
    eraser_results_free(&r);
    eraser_dataset_free(&ds);
    return rc;
}

TEST(eraser_score_fixture_by_hand) {
    const char *dir = test_tmpdir();
    write_fixture(dir);
    char res[4200];
    snprintf(res, sizeof res, "%s/results.jsonl", dir);
    static const double iou[] = {0.5, 0.6}, aopc[] = {0.5, 0.1};
    eraser_score_opts opt = {iou, 2, aopc, 2};
    cJSON *s = NULL;
    int rc = score_dir(&s, dir, "test", res, &opt);
    CHECK_MSG(rc == ADP_OK, "%s", adp_errmsg());
    if (rc != ADP_OK) return;
    check_fixture_scores(s);
    /* aopc_thresholds are reported as given (0.5, 0.1); the points follow ascending thresholds */
    CHECK_NEAR(jnum(s, "classification_scores/aopc_thresholds/0"), 0.5, 0);
    CHECK_NEAR(jnum(s, "classification_scores/aopc_thresholds/1"), 0.1, 0);
    /* the independent Python implementation agrees on the fixture too */
    char out[4200];
    snprintf(out, sizeof out, "%s/scores.json", dir);
    char *text = cJSON_PrintUnformatted(s);
    CHECK(adp_write_file_atomic(out, text, strlen(text)) == ADP_OK);
    cJSON_free(text);
    cJSON_Delete(s);
    CHECK_INT(test_python("ref_eraser_metrics.py", "--data '%s' --split test --results '%s' --iou-thresholds 0.5 0.6 "
                          "--aopc-thresholds 0.5 0.1 --compare '%s'", dir, res, out), 0);
    /* an AOPC threshold the file lacks is an error naming the line */
    static const double missing[] = {0.2};
    eraser_score_opts bad = {NULL, 0, missing, 1};
    CHECK_INT(score_dir(&s, dir, "test", res, &bad), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "results.jsonl:1: thresholded_scores has 0 entries for AOPC threshold 0.2") != NULL);
}

TEST(eraser_score_cli) {
    const char *bin = getenv("ADAPLER_BIN");
    REQUIRE(bin != NULL);
    const char *dir = test_tmpdir();
    write_fixture(dir);
    CHECK_INT(test_sh("'%s' eraser score --data '%s' --split test --results '%s/results.jsonl' --iou-thresholds 0.5 0.6 "
                      "--aopc-thresholds 0.1,0.5 > '%s/scores.json'",
                      bin, dir, dir, dir), 0);
    char path[4200], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/scores.json", dir);
    REQUIRE(adp_read_file(path, &text, &len) == ADP_OK);
    CHECK(len > 0 && text[len - 1] == '\n' && strchr(text, '\n') == text + len - 1); /* one line */
    cJSON *s = cJSON_Parse(text);
    free(text);
    REQUIRE(s != NULL);
    check_fixture_scores(s);
    CHECK_NEAR(jnum(s, "classification_scores/aopc_thresholds/0"), 0.1, 0);
    CHECK_NEAR(jnum(s, "classification_scores/aopc_thresholds/1"), 0.5, 0);
    cJSON_Delete(s);
    CHECK_INT(test_python("ref_eraser_metrics.py", "--data '%s' --split test --results '%s/results.jsonl' "
                          "--iou-thresholds 0.5 0.6 --aopc-thresholds 0.1 0.5 --compare '%s'",
                          dir, dir, path), 0);

    CHECK_INT(test_sh("'%s' eraser --help", bin), 0);
    CHECK(strstr(test_sh_output(), "eraser score") != NULL);
    CHECK_INT(test_sh("'%s' eraser score --help", bin), 0);
    CHECK(strstr(test_sh_output(), "--iou-thresholds") != NULL);
    CHECK_INT(test_sh("'%s' eraser score --data '%s'", bin, dir), 2);
    CHECK_INT(test_sh("'%s' eraser score --data '%s' --split test --results x --iou-thresholds 1.5", bin, dir), 2);
    CHECK_INT(test_sh("'%s' eraser frobnicate", bin), 2);
    /* a malformed line: exit 1, one line on stderr naming file and line */
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    write_file(path, "{\"annotation_id\": \"a1\", \"rationales\": []}\n{\"annotation_id\": \"a2\", \"rationales\": [}\n");
    CHECK_INT(test_sh("'%s' eraser score --data '%s' --split test --results '%s'", bin, dir, path), 1);
    const char *out = test_sh_output();
    CHECK_MSG(strstr(out, "bad.jsonl:2: invalid JSON") != NULL && strchr(out, '\n') == out + strlen(out) - 1,
              "stderr: %s", out);
    /* optional fields all-or-none */
    write_file(path, "{\"annotation_id\": \"a1\", \"rationales\": [], \"classification\": \"POS\", "
                     "\"classification_scores\": {\"POS\": 1}}\n{\"annotation_id\": \"a2\", \"rationales\": []}\n");
    CHECK_INT(test_sh("'%s' eraser score --data '%s' --split test --results '%s'", bin, dir, path), 1);
    CHECK(strstr(test_sh_output(), "bad.jsonl:2: 'classification' is missing, but line 1 has it") != NULL);
    /* classification scores need every annotation of the split */
    write_file(path, "{\"annotation_id\": \"a1\", \"rationales\": [], \"classification\": \"POS\", "
                     "\"classification_scores\": {\"POS\": 1}}\n");
    CHECK_INT(test_sh("'%s' eraser score --data '%s' --split test --results '%s'", bin, dir, path), 1);
    CHECK(strstr(test_sh_output(), "no result for annotation 'a2'") != NULL);
    /* check: counts of the fixture */
    CHECK_INT(test_sh("'%s' eraser check --data '%s' --split test", bin, dir), 0);
    CHECK(strstr(test_sh_output(), "\"evidence_spans\":3") != NULL);
    CHECK(strstr(test_sh_output(), "\"rationale_words\":7") != NULL);
}

/* ---- randomized predictions over the real annotations ---------------------------------- */

static double urand(unsigned *s) { return (double)(test_rand(s) >> 8) / 16777216.0; }

/* Random disjoint spans over n words, built from a mask so they never overlap. */
static void put_spans(FILE *f, const uint8_t *mask, size_t n, unsigned *seed) {
    eraser_span *s;
    size_t k;
    eraser_mask_to_spans(&s, &k, mask, n);
    fprintf(f, "\"hard_rationale_predictions\": [");
    for (size_t i = 0; i < k; i++) {
        fprintf(f, "%s{\"start_token\": %zu, \"end_token\": %zu}", i ? ", " : "", s[i].start, s[i].end);
        if (test_rand(seed) % 40 == 0) /* an identical repeat: tolerated, counted once */
            fprintf(f, ", {\"end_token\": %zu, \"start_token\": %zu}", s[i].end, s[i].start);
    }
    if (k && test_rand(seed) % 30 == 0) fprintf(f, ", {\"start_token\": %zu, \"end_token\": %zu}", s[0].end, s[0].end);
    fprintf(f, "]");
    free(s);
}

static void put_probs(FILE *f, const char *name, const char *pred, unsigned *seed, int allow_zero) {
    double p = urand(seed);
    if (allow_zero && test_rand(seed) % 10 == 0) p = 0;
    if (test_rand(seed) % 2) fprintf(f, "\"%s\": {\"POS\": %.17g, \"NEG\": %.17g}", name, p, 1 - p);
    else fprintf(f, "\"%s\": {\"NEG\": %.17g, \"POS\": %.17g}", name, 1 - p, p);
    (void)pred;
}

/* One results line per annotation of ds (plus `extra` lines for annotations of other
 * splits), exercising: empty predictions, exact and partial span matches, repeats, empty
 * spans, ties and all-equal scores, documents without gold, misclassifications. */
static void write_random_results(const char *path, const eraser_dataset *ds, const eraser_dataset *docs, unsigned seed,
                                 int sentences) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    static const double thr[] = {0.5, 0.01, 0.3, 0.1, 0.2, 0.05}; /* 0.3 is not an AOPC bin */
    for (size_t i = 0; i < ds->n_anns; i++) {
        const eraser_annotation *a = &ds->anns[i];
        const char *docid = a->n_evidences ? a->evidences[0].docid : a->annotation_id;
        const char *ids[2] = {docid, NULL};
        /* sometimes a second document without gold: a multi-document key */
        if (test_rand(&seed) % 12 == 0) {
            const eraser_annotation *b = &ds->anns[(i + 1) % ds->n_anns];
            if (b->n_evidences && strcmp(b->evidences[0].docid, docid)) ids[1] = b->evidences[0].docid;
        }
        fprintf(f, "{\"annotation_id\": \"%s\", \"rationales\": [", a->annotation_id);
        for (int d = 0; d < 2 && ids[d]; d++) {
            const eraser_doc *doc = eraser_find_doc(docs, ids[d]);
            size_t n = doc->n_words;
            uint8_t *gold = calloc(n, 1), *m = calloc(n, 1);
            for (size_t e = 0; e < a->n_evidences; e++)
                if (!strcmp(a->evidences[e].docid, ids[d]))
                    memset(gold + a->evidences[e].start_token, 1, a->evidences[e].end_token - a->evidences[e].start_token);
            unsigned mode = test_rand(&seed) % 10;
            if (mode == 0) {
                /* empty prediction */
            } else if (mode <= 2) { /* a subset of the gold spans, exactly */
                for (size_t e = 0; e < a->n_evidences; e++)
                    if (!strcmp(a->evidences[e].docid, ids[d]) && test_rand(&seed) % 2)
                        memset(m + a->evidences[e].start_token, 1, a->evidences[e].end_token - a->evidences[e].start_token);
            } else if (mode <= 4) { /* gold spans shifted: partial IOU */
                for (size_t e = 0; e < a->n_evidences; e++) {
                    if (strcmp(a->evidences[e].docid, ids[d])) continue;
                    long s0 = (long)a->evidences[e].start_token + (long)(test_rand(&seed) % 5) - 2;
                    long e0 = (long)a->evidences[e].end_token + (long)(test_rand(&seed) % 5) - 2;
                    for (long w = s0 < 0 ? 0 : s0; w < e0 && w < (long)n; w++) m[w] = 1;
                }
            } else if (mode == 5) { /* everything */
                memset(m, 1, n);
            } else { /* random runs */
                for (size_t w = test_rand(&seed) % 30; w < n;) {
                    size_t len = 1 + test_rand(&seed) % 12;
                    for (size_t k = w; k < w + len && k < n; k++) m[k] = 1;
                    w += len + 1 + test_rand(&seed) % 60;
                }
            }
            fprintf(f, "%s{\"docid\": \"%s\", ", d ? ", " : "", ids[d]);
            put_spans(f, m, n, &seed);
            fprintf(f, ", \"soft_rationale_predictions\": [");
            unsigned smode = test_rand(&seed) % 6;
            for (size_t w = 0; w < n; w++) {
                double v;
                if (smode == 0) v = 1.0;                                       /* all-one scores */
                else if (smode == 1) v = (double)(test_rand(&seed) % 4) / 4.0; /* heavy ties */
                else if (smode == 2) v = gold[w] ? 0.5 + 0.5 * urand(&seed) : 0.6 * urand(&seed);
                else v = urand(&seed) * 2 - 0.5;
                fprintf(f, "%s%.17g", w ? ", " : "", v);
            }
            fprintf(f, "]");
            if (sentences) {
                fprintf(f, ", \"soft_sentence_predictions\": [");
                for (size_t s = 0; s < doc->n_sentences; s++)
                    fprintf(f, "%s%.17g", s ? ", " : "", test_rand(&seed) % 5 == 0 ? 0.5 : urand(&seed));
                fprintf(f, "]");
            }
            fprintf(f, "}");
            free(gold);
            free(m);
        }
        const char *gold_label = a->classification;
        const char *pred = test_rand(&seed) % 10 < 7 ? gold_label : (!strcmp(gold_label, "POS") ? "NEG" : "POS");
        fprintf(f, "], \"classification\": \"%s\", ", pred);
        put_probs(f, "classification_scores", pred, &seed, 0);
        fprintf(f, ", ");
        put_probs(f, "comprehensiveness_classification_scores", pred, &seed, 1);
        fprintf(f, ", ");
        put_probs(f, "sufficiency_classification_scores", pred, &seed, 1);
        fprintf(f, ", \"thresholded_scores\": [");
        size_t first = test_rand(&seed) % 6; /* rotated: entries come in any order */
        for (size_t t = 0; t < 6; t++) {
            fprintf(f, "%s{\"threshold\": %.17g, ", t ? ", " : "", thr[(first + t) % 6]);
            put_probs(f, "comprehensiveness_classification_scores", pred, &seed, 1);
            fprintf(f, ", ");
            put_probs(f, "sufficiency_classification_scores", pred, &seed, 1);
            fprintf(f, "}");
        }
        const eraser_doc *doc = eraser_find_doc(docs, docid);
        fprintf(f, "], \"tokens_to_flip\": %u}\n", test_rand(&seed) % (unsigned)(doc->n_words + 1));
    }
    fclose(f);
}

/* Randomized results over one split of the movie reviews, scored by the library (or the
 * CLI) and by tests/ref_eraser_metrics.py; every number must agree within 1e-6. */
static void compare_with_python(const char *split, unsigned seed, int use_cli, int sentences) {
    const char *dir = movies_dir();
    eraser_dataset ds, train;
    eraser_dataset_init(&ds);
    eraser_dataset_init(&train);
    int rc = eraser_load_split(&ds, dir, split);
    CHECK_MSG(rc == ADP_OK, "%s", adp_errmsg());
    rc = rc == ADP_OK ? eraser_load_split(&train, dir, "train") : rc;
    CHECK_MSG(rc == ADP_OK, "%s", adp_errmsg());
    if (rc != ADP_OK) {
        eraser_dataset_free(&ds), eraser_dataset_free(&train);
        return;
    }
    char res[4200], out[4200];
    snprintf(res, sizeof res, "%s/results.jsonl", test_tmpdir());
    snprintf(out, sizeof out, "%s/scores.json", test_tmpdir());
    write_random_results(res, &ds, &ds, seed, sentences);
    /* 3 more lines for train reviews (posR_161 has no evidence): results whose annotation
     * is not in the split count as predictions without gold, as in metrics.py */
    eraser_dataset extra;
    eraser_dataset_init(&extra);
    const char *ids[] = {"posR_161.txt", "negR_000.txt", "posR_500.txt"};
    REQUIRE(eraser_load_docs(&train, dir, ids, 3) == ADP_OK);
    for (int k = 0; k < 3; k++) {
        const eraser_annotation *a = eraser_find_annotation(&train, ids[k]);
        const eraser_doc *d = eraser_find_doc(&train, ids[k]);
        REQUIRE(a && d);
        REQUIRE(eraser_add_doc(&extra, ids[k], (const char *const *)d->words, d->n_words) == ADP_OK);
        uint8_t *m = calloc(d->n_words, 1);
        for (size_t e = 0; e < a->n_evidences; e++)
            memset(m + a->evidences[e].start_token, 1, a->evidences[e].end_token - a->evidences[e].start_token);
        REQUIRE(eraser_add_mask_annotation(&extra, ids[k], ids[k], a->classification, NULL, m, d->n_words) == ADP_OK);
        free(m);
    }
    CHECK_INT(extra.anns[0].n_evidences, 0);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/extra.jsonl", test_tmpdir());
    write_random_results(tmp, &extra, &train, seed + 1, sentences);
    CHECK_INT(test_sh("cat '%s' >> '%s'", tmp, res), 0);
    if (use_cli) {
        const char *bin = getenv("ADAPLER_BIN");
        REQUIRE(bin != NULL);
        CHECK_INT(test_sh("'%s' eraser score --data '%s' --split %s --results '%s' --iou-thresholds 0.1 0.5 0.9 > '%s'",
                          bin, dir, split, res, out), 0);
    } else {
        static const double iou[] = {0.1, 0.5, 0.9};
        eraser_score_opts opt = {iou, 3, NULL, 0};
        cJSON *s = NULL;
        rc = score_dir(&s, dir, split, res, &opt);
        CHECK_MSG(rc == ADP_OK, "%s", adp_errmsg());
        if (rc == ADP_OK) {
            char *text = cJSON_PrintUnformatted(s);
            CHECK(adp_write_file_atomic(out, text, strlen(text)) == ADP_OK);
            cJSON_free(text);
            cJSON_Delete(s);
        }
    }
    int st = test_python("ref_eraser_metrics.py", "--data '%s' --split %s --results '%s' --iou-thresholds 0.1 0.5 0.9 "
                         "--compare '%s'", dir, split, res, out);
    CHECK_INT(st, 0);
    if (test_verbose() || st) fprintf(stderr, "    %s: %s", split, test_sh_output());
    eraser_dataset_free(&extra);
    eraser_dataset_free(&ds);
    eraser_dataset_free(&train);
}

TEST(eraser_random_vs_python_test_split) { compare_with_python("test", 2024, 1, 0); }
TEST(eraser_random_vs_python_val_split) { compare_with_python("val", 77, 0, 1); }

/* export -> read back -> same spans, scores and probabilities */
TEST(eraser_export_round_trip) {
    static const uint8_t keep[] = {0, 1, 1, 0, 1, 0};
    static const float soft[] = {0.1f, 0.9f, 0.8f, 0.2f, 0.7f, 0.0f};
    const char *labels[] = {"NEG", "POS"};
    static const double cls[] = {0.25, 0.75}, comp[] = {0.6, 0.4}, suff[] = {0.3, 0.7}, th[] = {0.1, 0.5};
    static const double tc[] = {0.5, 0.5, 0.9, 0.1}, ts[] = {0.2, 0.8, 0.3, 0.7};
    eraser_export_row row = {"a1", "d3", 6, keep, soft, "POS", labels, 2, cls, comp, suff, th, 2, tc, ts, 1, 4};
    char *line = NULL;
    REQUIRE(eraser_export_line(&line, &row) == ADP_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s/exported.jsonl", test_tmpdir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fprintf(f, "%s\n", line);
    fclose(f);
    free(line);
    eraser_results r;
    REQUIRE(eraser_results_read(&r, path) == ADP_OK);
    REQUIRE(r.n == 1 && r.v[0].n_docs == 1);
    const eraser_result_doc *d = &r.v[0].docs[0];
    REQUIRE(d->n_hard == 2);
    CHECK(d->hard[0].start == 1 && d->hard[0].end == 3 && d->hard[1].start == 4 && d->hard[1].end == 5);
    REQUIRE(d->n_soft == 6);
    for (int i = 0; i < 6; i++) CHECK((float)d->soft[i] == soft[i]); /* printed with 9 digits: exact as float */
    CHECK_STR(r.v[0].classification, "POS");
    CHECK_INT(r.v[0].pred, 1);
    CHECK_NEAR(r.v[0].suff.p[1], 0.7, 0);
    CHECK_INT(r.v[0].n_thresholds, 2);
    CHECK_NEAR(r.v[0].thr_comp[1].p[0], 0.9, 0);
    CHECK_INT(r.v[0].tokens_to_flip, 4);
    CHECK(r.has_hard && r.has_soft && r.has_cls && r.has_comp && r.has_suff && r.has_thresholded && r.has_tokens_to_flip);
    eraser_results_free(&r);
    /* only the rationale fields */
    eraser_export_row bare = {"a1", "d3", 6, keep, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0};
    REQUIRE(eraser_export_line(&line, &bare) == ADP_OK);
    CHECK_STR(line, "{\"annotation_id\":\"a1\",\"rationales\":[{\"docid\":\"d3\",\"hard_rationale_predictions\":"
                    "[{\"start_token\":1,\"end_token\":3},{\"start_token\":4,\"end_token\":5}]}]}");
    free(line);
    row.classification = "MAYBE";
    CHECK_INT(eraser_export_line(&line, &row), ADP_ERR);
    row.classification = "POS";
    static const float nan_soft[] = {0, NAN, 0, 0, 0, 0};
    row.soft = nan_soft;
    CHECK_INT(eraser_export_line(&line, &row), ADP_ERR);
    bare.has_tokens_to_flip = 1;
    CHECK_INT(eraser_export_line(&line, &bare), ADP_ERR);
}

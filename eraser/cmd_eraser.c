/* cmd_eraser.c: `adapler eraser`, ERASER rationale data and metrics.
 *
 *   adapler eraser score --data DIR --split SPLIT --results FILE.jsonl
 *                        [--iou-thresholds T ...] [--aopc-thresholds T ...]
 *     prints one JSON object: the score file of rationale_benchmark/metrics.py (same keys
 *     and nesting, keys sorted) plus "keep_rates" (FPR/TPR of the hard predictions).
 *   adapler eraser check --data DIR
 *     loads and validates every split and its documents; prints counts as one JSON object. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "eraser/eraser.h"

static void usage(FILE *f) {
    fprintf(f, "usage: adapler eraser score --data DIR --split SPLIT --results FILE [--iou-thresholds T ...]\n"
               "                            [--aopc-thresholds T ...]\n"
               "       adapler eraser check --data DIR [--split SPLIT ...]\n\n"
               "ERASER rationale benchmark (DeYoung et al. 2020).\n\n"
               "  score   score a results file (ERASER's format, one JSON object per line) against the human\n"
               "          rationales of DIR/SPLIT.jsonl, exactly as rationale_benchmark/metrics.py; prints one\n"
               "          JSON object with metrics.py's keys (token_prf, rationale_prf, iou_scores,\n"
               "          token_soft_metrics, sentence_soft_metrics, classification_scores) for the fields the\n"
               "          results carry, plus keep_rates (FPR/TPR of the kept words; README.md defines them)\n"
               "  check   validate the annotations (train, val, test by default) and the documents they use\n\n"
               "  --data DIR              dataset folder: SPLIT.jsonl and docs/ or docs.jsonl\n"
               "  --split SPLIT           train, val or test (any SPLIT.jsonl)\n"
               "  --results FILE          predictions, one line per annotation\n"
               "  --iou-thresholds T ...  IOU thresholds for iou_scores (default 0.5); values in [0, 1],\n"
               "                          space- or comma-separated\n"
               "  --aopc-thresholds T ... AOPC bins (default 0.01 0.05 0.1 0.2 0.5)\n");
}

#define MAX_THRESHOLDS 64

/* Values after an option, until the next "--" option; commas also separate. */
static int parse_list(const char *opt, int argc, char **argv, int *i, double *v, size_t *n) {
    *n = 0;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", argv[++*i]);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (*n == MAX_THRESHOLDS) {
                fprintf(stderr, "adapler eraser: %s: at most %d values\n", opt, MAX_THRESHOLDS);
                return 0;
            }
            if (!cli_parse_double("adapler eraser", opt, tok, 0.0, 1.0, &v[(*n)++])) return 0;
        }
    }
    if (*n == 0) {
        fprintf(stderr, "adapler eraser: %s needs at least one value\n", opt);
        return 0;
    }
    return 1;
}

static int cmd_score(int argc, char **argv) {
    const char *data = NULL, *split = NULL, *results = NULL;
    double iou[MAX_THRESHOLDS], aopc[MAX_THRESHOLDS];
    size_t n_iou = 0, n_aopc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(a, "--split") && i + 1 < argc) {
            split = argv[++i];
        } else if (!strcmp(a, "--results") && i + 1 < argc) {
            results = argv[++i];
        } else if (!strcmp(a, "--iou-thresholds")) {
            if (!parse_list(a, argc, argv, &i, iou, &n_iou)) return 2;
        } else if (!strcmp(a, "--aopc-thresholds")) {
            if (!parse_list(a, argc, argv, &i, aopc, &n_aopc)) return 2;
        } else {
            fprintf(stderr, "adapler eraser score: unknown or incomplete option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (!data || !split || !results) {
        fprintf(stderr, "adapler eraser score: --data, --split and --results are required (try --help)\n");
        return 2;
    }
    eraser_dataset ds;
    eraser_results r;
    eraser_dataset_init(&ds);
    memset(&r, 0, sizeof r);
    cJSON *out = NULL;
    int rc = eraser_load_split(&ds, data, split);
    if (rc == ADP_OK) rc = eraser_results_read(&r, results);
    if (rc == ADP_OK) { /* the documents the results name, beyond those with evidence */
        size_t n = 0;
        for (size_t i = 0; i < r.n; i++) n += r.v[i].n_docs;
        const char **ids = mallocCheck((n ? n : 1) * sizeof *ids);
        n = 0;
        for (size_t i = 0; i < r.n; i++)
            for (size_t k = 0; k < r.v[i].n_docs; k++) ids[n++] = r.v[i].docs[k].docid;
        rc = eraser_load_docs(&ds, data, ids, n);
        free(ids);
    }
    eraser_score_opts opt = {n_iou ? iou : NULL, n_iou, n_aopc ? aopc : NULL, n_aopc};
    if (rc == ADP_OK) rc = eraser_score(&out, &ds, &r, &opt);
    if (rc == ADP_OK) {
        size_t foreign = 0;
        for (size_t i = 0; i < r.n; i++) foreign += !eraser_find_annotation(&ds, r.v[i].annotation_id);
        if (foreign)
            fprintf(stderr, "adapler eraser score: note: %zu of %zu results have no annotation in %s.jsonl "
                            "(counted as predictions without gold, as metrics.py does)\n", foreign, r.n, split);
        char *s = cJSON_PrintUnformatted(out);
        if (!s) {
            fprintf(stderr, "adapler eraser score: cannot format the scores\n");
            rc = ADP_ERR;
        } else {
            printf("%s\n", s);
            cJSON_free(s);
        }
    } else {
        fprintf(stderr, "adapler eraser score: %s\n", adp_errmsg());
    }
    cJSON_Delete(out);
    eraser_results_free(&r);
    eraser_dataset_free(&ds);
    return rc == ADP_OK ? 0 : 1;
}

static int cmd_check(int argc, char **argv) {
    const char *data = NULL;
    const char *splits[16];
    int n_splits = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc && n_splits < 16) {
            splits[n_splits++] = argv[++i];
        } else {
            fprintf(stderr, "adapler eraser check: unknown or incomplete option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "adapler eraser check: --data is required (try --help)\n");
        return 2;
    }
    if (!n_splits) splits[n_splits++] = "train", splits[n_splits++] = "val", splits[n_splits++] = "test";
    cJSON *out = cJSON_CreateObject();
    int rc = ADP_OK;
    for (int s = 0; s < n_splits && rc == ADP_OK; s++) {
        eraser_dataset ds;
        eraser_dataset_init(&ds);
        rc = eraser_load_split(&ds, data, splits[s]);
        if (rc == ADP_OK) {
            size_t spans = 0, groups = 0, words = 0, marked = 0, no_ev = 0;
            for (size_t i = 0; i < ds.n_anns; i++) {
                spans += ds.anns[i].n_evidences;
                groups += ds.anns[i].n_groups;
                no_ev += ds.anns[i].n_evidences == 0;
            }
            uint8_t **mask = callocCheck(ds.n_docs ? ds.n_docs : 1, sizeof *mask);
            for (size_t d = 0; d < ds.n_docs; d++) {
                words += ds.docs[d].n_words;
                mask[d] = callocCheck(ds.docs[d].n_words ? ds.docs[d].n_words : 1, 1);
            }
            for (size_t i = 0; i < ds.n_anns; i++)
                for (size_t e = 0; e < ds.anns[i].n_evidences; e++) {
                    const eraser_evidence *ev = &ds.anns[i].evidences[e];
                    uint8_t *m = mask[eraser_find_doc(&ds, ev->docid) - ds.docs];
                    memset(m + ev->start_token, 1, ev->end_token - ev->start_token);
                }
            for (size_t d = 0; d < ds.n_docs; d++) {
                for (size_t w = 0; w < ds.docs[d].n_words; w++) marked += mask[d][w];
                free(mask[d]);
            }
            free(mask);
            cJSON *o = cJSON_AddObjectToObject(out, splits[s]);
            cJSON_AddNumberToObject(o, "annotations", (double)ds.n_anns);
            cJSON_AddNumberToObject(o, "annotations_without_evidence", (double)no_ev);
            cJSON_AddNumberToObject(o, "evidence_groups", (double)groups);
            cJSON_AddNumberToObject(o, "evidence_spans", (double)spans);
            cJSON_AddNumberToObject(o, "documents", (double)ds.n_docs);
            cJSON_AddNumberToObject(o, "document_words", (double)words);
            cJSON_AddNumberToObject(o, "rationale_words", (double)marked);
            cJSON_AddNumberToObject(o, "evidence_text_mismatches", (double)eraser_count_text_mismatches(&ds, NULL));
        } else {
            fprintf(stderr, "adapler eraser check: %s\n", adp_errmsg());
        }
        eraser_dataset_free(&ds);
    }
    if (rc == ADP_OK) {
        char *s = cJSON_PrintUnformatted(out);
        printf("%s\n", s ? s : "{}");
        cJSON_free(s);
    }
    cJSON_Delete(out);
    return rc == ADP_OK ? 0 : 1;
}

int cmd_eraser(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(sub, "check")) return cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "adapler eraser: unknown subcommand '%s' (try adapler eraser --help)\n", sub);
    return 2;
}

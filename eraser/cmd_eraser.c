/* cmd_eraser.c: `adapler eraser`, ERASER rationale data and metrics.
 *
 *   adapler eraser score --data DIR --split SPLIT --results FILE.jsonl
 *                        [--iou-thresholds T ...] [--aopc-thresholds T ...]
 *     prints one JSON object: the score file of rationale_benchmark/metrics.py (same keys
 *     and nesting, keys sorted) plus "keep_rates" (FPR/TPR of the hard predictions).
 *   adapler eraser check --data DIR
 *     loads and validates every split and its documents; prints counts as one JSON object.
 *   adapler eraser export --model DIR (--data DIR | --dataset NAME) --out FILE.jsonl ...
 *     runs a model with a pruning method over a split's annotations and writes ERASER's
 *     results file (rules in eraser/export_model.h); prints one JSON line with the settings
 *     and counts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "eraser/eraser.h"
#include "eraser/export_model.h"
#include "method.h"
#include "model.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
               "usage: adapler eraser score --data DIR --split SPLIT --results FILE [--iou-thresholds T ...]\n"
               "                            [--aopc-thresholds T ...]\n"
               "       adapler eraser check --data DIR [--split SPLIT ...]\n"
               "       adapler eraser export --model DIR (--data DIR | --dataset NAME) [--split S] --out FILE\n"
               "                             [--method NAME [knob]] [--labels A,B,...] [--batch N] [--threads N]\n"
               "                             [--max-len N] [--aopc-thresholds T ...] [--rationales-only]\n"
               "                             [--gold-out DIR] [--all-examples]\n\n"
               "ERASER rationale benchmark (DeYoung et al. 2020).\n\n"
               "  score   score a results file (ERASER's format, one JSON object per line) against the human\n"
               "          rationales of DIR/SPLIT.jsonl, exactly as rationale_benchmark/metrics.py; prints one\n"
               "          JSON object with metrics.py's keys (token_prf, rationale_prf, iou_scores,\n"
               "          token_soft_metrics, sentence_soft_metrics, classification_scores) for the fields the\n"
               "          results carry, plus keep_rates (FPR/TPR of the kept words; README.md defines them)\n"
               "  check   validate the annotations (train, val, test by default) and the documents they use\n"
               "  export  run a model with a pruning method on every annotation of a split and write its\n"
               "          predictions in ERASER's results format (README.md, ERASER, \"Export\"): hard rationale =\n"
               "          the words whose pieces enter the last layer, soft = the method's token scores\n"
               "          (adapler, cascade, ltp, power, saliency; none for the others), classification, and\n"
               "          comprehensiveness/sufficiency/AOPC from re-running on documents with words deleted.\n"
               "          Prints one JSON line: settings and counts\n\n"
               "  --data DIR              dataset folder: SPLIT.jsonl and docs/ or docs.jsonl\n"
               "  --split SPLIT           train, val or test (any SPLIT.jsonl)\n"
               "  --results FILE          predictions, one line per annotation\n"
               "  --iou-thresholds T ...  IOU thresholds for iou_scores (default 0.5); values in [0, 1],\n"
               "                          space- or comma-separated\n"
               "  --aopc-thresholds T ... AOPC bins (default 0.01 0.05 0.1 0.2 0.5)\n\n"
               "export options:\n"
               "  --model DIR             classifier (config.json, model.safetensors, vocab.txt)\n"
               "  --data DIR              an ERASER folder (SPLIT.jsonl, docs/ or docs.jsonl), or\n"
               "  --dataset NAME          eraser_movies (its ERASER folder under the data root), hatexplain or\n"
               "                          planted (per-word rationales become ERASER annotations)\n"
               "  --split S               test (default), val/dev or train\n"
               "  --out FILE              the results file (written whole or not at all)\n"
               "  --labels A,B,...        label string of each model output (default: config.json's id2label\n"
               "                          when it names every gold label, else the dataset's label names)\n"
               "  --batch N               sequences per packed batch (default 32)\n"
               "  --threads N             OpenMP/OpenBLAS threads (default: $OMP_NUM_THREADS, else all cores)\n"
               "  --max-len N             pieces per window, [CLS] and [SEP] included (default: 512 or the\n"
               "                          model's positions); longer documents run as overlapping windows\n"
               "  --aopc-thresholds T ... AOPC bins written to thresholded_scores (default 0.01 0.05 0.1 0.2\n"
               "                          0.5; metrics.py must be given the same); only with soft scores\n"
               "  --rationales-only       no comprehensiveness, sufficiency or thresholded scores (one pass)\n"
               "  --gold-out DIR          --dataset hatexplain/planted: also write the annotations and documents\n"
               "                          in ERASER layout (DIR/SPLIT.jsonl, DIR/docs.jsonl), for `eraser score\n"
               "                          --data DIR` and metrics.py\n"
               "  --all-examples          hatexplain/planted: also export examples without a rationale (as\n"
               "                          annotations without evidence), so every class is among the gold labels\n\n"
               "%s\n%s",
            METHOD_OPTS_HELP, DATASET_OPTS_HELP);
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

/* ---- export ---------------------------------------------------------------------------- */

/* A JSON string literal (RFC 8259 escapes; UTF-8 passes through). */
static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* The label string of each model output: --labels; else config.json's id2label when it names
 * every gold label; else the dataset's names (the order the model was trained with). */
static int resolve_labels(char **out, const char *arg, const bert_model *m, const eraser_dataset *eds,
                          const dataset *ds) {
    const int C = m->cfg.num_labels;
    for (int c = 0; c < C; c++) out[c] = NULL;
    if (arg) {
        char *copy = strdupCheck(arg), *save = NULL;
        int n = 0, rc = ADP_OK;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == C) {
                rc = adp_seterr("--labels: more than the model's %d outputs in '%s'", C, arg);
                break;
            }
            out[n++] = strdupCheck(t);
        }
        free(copy);
        if (rc == ADP_OK && n != C) rc = adp_seterr("--labels: %d names for the model's %d outputs in '%s'", n, C, arg);
        return rc;
    }
    int config_ok = 1;
    for (int c = 0; c < C && config_ok; c++) config_ok = m->cfg.labels[c] != NULL;
    for (size_t i = 0; i < eds->n_anns && config_ok; i++) {
        int c = 0;
        while (c < C && strcmp(m->cfg.labels[c], eds->anns[i].classification) != 0) c++;
        config_ok = c < C;
    }
    if (config_ok) {
        for (int c = 0; c < C; c++) out[c] = strdupCheck(m->cfg.labels[c]);
        return ADP_OK;
    }
    if (ds && ds->n_labels == C) {
        for (int c = 0; c < C; c++) out[c] = strdupCheck(ds->label_names[c]);
        return ADP_OK;
    }
    return adp_seterr("cannot tell which model output is which gold label: config.json's id2label does not name "
                      "them all; pass --labels with one name per output");
}

static int cmd_export(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *split_arg = "test", *out_path = NULL, *labels_arg = NULL,
               *gold_out = NULL;
    long batch = 32, threads = 0, max_len = 0;
    int faithfulness = 1, all_examples = 0;
    double aopc[MAX_THRESHOLDS] = {0.01, 0.05, 0.1, 0.2, 0.5};
    size_t n_aopc = 5;
    int aopc_given = 0;
    dataset_opts dopt;
    method_opts mopt;
    dataset_opts_init(&dopt);
    method_opts_init(&mopt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r == 0) r = method_opts_parse(&mopt, argc, argv, &i);
        if (r == ADP_ERR) {
            fprintf(stderr, "adapler eraser export: %s\n", adp_errmsg());
            return 2;
        }
        if (r == 1) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && v) model_dir = v, i++;
        else if (!strcmp(a, "--data") && v) data = v, i++;
        else if (!strcmp(a, "--split") && v) split_arg = v, i++;
        else if (!strcmp(a, "--out") && v) out_path = v, i++;
        else if (!strcmp(a, "--labels") && v) labels_arg = v, i++;
        else if (!strcmp(a, "--gold-out") && v) gold_out = v, i++;
        else if (!strcmp(a, "--rationales-only")) faithfulness = 0;
        else if (!strcmp(a, "--all-examples")) all_examples = 1;
        else if (!strcmp(a, "--aopc-thresholds")) {
            if (!parse_list(a, argc, argv, &i, aopc, &n_aopc)) return 2;
            aopc_given = 1;
        } else if (!strcmp(a, "--batch") && v) {
            if (!cli_parse_int("adapler eraser export", "--batch", v, 1, 1000000, &batch)) return 2;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_int("adapler eraser export", "--threads", v, 0, 1024, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--max-len") && v) {
            if (!cli_parse_int("adapler eraser export", "--max-len", v, 3, 1000000, &max_len)) return 2;
            i++;
        } else {
            fprintf(stderr, "adapler eraser export: unknown or incomplete option '%s' (try --help)\n", a);
            return 2;
        }
    }
    const char *why = NULL;
    if (!model_dir || !out_path) why = "--model and --out are required";
    else if (!data == !dopt.name) why = "give one of --data DIR (an ERASER folder) or --dataset NAME";
    else if (gold_out && (data || !strcmp(dopt.name, "eraser_movies")))
        why = "--gold-out is for --dataset hatexplain/planted (an ERASER folder is on disk already)";
    else if (all_examples && (data || !strcmp(dopt.name, "eraser_movies")))
        why = "--all-examples is for --dataset hatexplain/planted";
    else if (mopt.match)
        why = "--match is not supported: per-example counts do not carry over to windows and edited documents";
    int soft = eraser_export_soft_kind(mopt.name);
    if (!why && aopc_given && (soft == ERASER_SOFT_NONE || !faithfulness))
        why = "--aopc-thresholds needs a method with token scores (adapler, cascade, ltp, power, saliency) and the "
              "faithfulness runs";
    if (why) {
        fprintf(stderr, "adapler eraser export: %s (try --help)\n", why);
        return 2;
    }
    if (soft == ERASER_SOFT_NONE || !faithfulness) n_aopc = 0;
    int nthreads = adp_set_threads((int)threads);

    int rc = ADP_ERR, have_model = 0, have_ds = 0, have_wp = 0;
    bert_model m;
    st_file st;
    method me = {0};
    dataset ds = {0};
    wordpiece wp = {0};
    eraser_dataset eds;
    eraser_dataset_init(&eds);
    char *labels[BERT_MAX_LABELS] = {0};
    char tmp_path[4200] = "", data_dir[4200] = "", split_stem[256];
    FILE *out = NULL;
    eraser_export_stats stats = {0};
    double t0 = adp_now();

    if (bert_model_load(&m, model_dir, 0, &st) != ADP_OK) goto done;
    have_model = 1;
    if (!m.vocab_path) {
        adp_seterr("%s: no vocab.txt next to the model", model_dir);
        goto done;
    }
    if (method_create(&me, &mopt, &m, &st) != ADP_OK) goto done;
    if (wordpiece_load(&wp, m.vocab_path, 1) != ADP_OK) goto done;
    have_wp = 1;

    /* the annotations: an ERASER folder, or a dataset's per-word rationales */
    snprintf(split_stem, sizeof split_stem, "%s", split_arg);
    if (dopt.name) {
        split_id sid;
        if (split_parse(split_arg, &sid) != ADP_OK) {
            adp_preferr("--split: ");
            goto done;
        }
        snprintf(split_stem, sizeof split_stem, "%s", sid == SPLIT_DEV ? "val" : split_name(sid));
        if (!strcmp(dopt.name, "eraser_movies")) {
            snprintf(data_dir, sizeof data_dir, "%s/eraser_movies", dataset_data_root(&dopt));
        } else {
            if (dataset_load(&ds, &dopt, sid) != ADP_OK) goto done;
            have_ds = 1;
            if (!ds.has_rationales) {
                adp_seterr("%s has no human rationales (export needs hatexplain, planted or an ERASER folder)", ds.name);
                goto done;
            }
            if (eraser_dataset_from_examples(&eds, &ds, all_examples) != ADP_OK) goto done;
            if (gold_out && eraser_write_split(&eds, gold_out, split_stem) != ADP_OK) goto done;
        }
    } else {
        snprintf(data_dir, sizeof data_dir, "%s", data);
    }
    if (data_dir[0]) {
        if (eraser_load_split(&eds, data_dir, split_stem) != ADP_OK) goto done;
        const char **ids = mallocCheck((eds.n_anns ? eds.n_anns : 1) * sizeof *ids);
        int ok = 1;
        for (size_t i = 0; i < eds.n_anns && ok; i++) ok = eraser_annotation_docid(&ids[i], &eds.anns[i]) == ADP_OK;
        /* documents of annotations without evidence are not loaded with the split */
        if (ok) ok = eraser_load_docs(&eds, data_dir, ids, eds.n_anns) == ADP_OK;
        free(ids);
        if (!ok) goto done;
    }
    if (eds.n_anns == 0) {
        adp_seterr("%s %s: no annotations", data_dir[0] ? data_dir : ds.name, split_stem);
        goto done;
    }
    if (resolve_labels(labels, labels_arg, &m, &eds, have_ds ? &ds : NULL) != ADP_OK) goto done;

    size_t ml = (size_t)(max_len ? ADP_MIN(max_len, m.cfg.max_pos) : ADP_MIN(512, m.cfg.max_pos));
    eraser_export_opts eo = {
        .m = &m, .me = &me, .wp = &wp, .labels = (const char *const *)labels, .max_len = ml, .batch = (int)batch,
        .soft = soft, .faithfulness = faithfulness, .aopc = n_aopc ? aopc : NULL, .n_aopc = n_aopc,
    };
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out_path);
    if (!(out = fopen(tmp_path, "w"))) {
        adp_seterr("%s: cannot create: %s", tmp_path, strerror(errno));
        tmp_path[0] = 0;
        goto done;
    }
    if (eraser_export_model(out, &eds, &eo, &stats) != ADP_OK) goto done;
    int bad = fclose(out) != 0;
    out = NULL;
    if (bad) {
        adp_seterr("%s: write failed", tmp_path);
        goto done;
    }
    if (rename(tmp_path, out_path) != 0) {
        adp_seterr("%s: cannot rename to %s: %s", tmp_path, out_path, strerror(errno));
        goto done;
    }
    tmp_path[0] = 0;

    static const char *soft_names[] = {"none", "adapler predictor score at layer 0 / window mean",
                                       "the method's traced score at its first scoring layer / window mean"};
    printf("{\"model\": ");
    put_json_string(stdout, model_dir);
    printf(", \"data\": ");
    put_json_string(stdout, data_dir[0] ? data_dir : ds.name);
    printf(", \"split\": ");
    put_json_string(stdout, split_stem);
    printf(", \"method\": ");
    put_json_string(stdout, mopt.name);
    printf(", \"knob\": ");
    put_json_string(stdout, me.label);
    printf(", \"out\": ");
    put_json_string(stdout, out_path);
    printf(", \"labels\": [");
    for (int c = 0; c < m.cfg.num_labels; c++) {
        if (c) printf(", ");
        put_json_string(stdout, labels[c]);
    }
    printf("], \"soft\": \"%s\", \"faithfulness\": %s, \"aopc_thresholds\": [", soft_names[soft],
           faithfulness ? "true" : "false");
    for (size_t b = 0; b < n_aopc; b++) printf("%s%.15g", b ? ", " : "", aopc[b]);
    printf("], \"annotations\": %zu, \"windowed_documents\": %zu, \"windows\": %zu, \"sequences\": %zu, "
           "\"reused\": %zu, \"unscored_windows\": %zu, \"words_without_pieces\": %zu, \"empty_rationales\": %zu, "
           "\"max_len\": %zu, \"overlap\": %zu, \"batch\": %ld, \"threads\": %d, \"seconds\": %.3f}\n",
           stats.annotations, stats.windowed, stats.windows, stats.sequences, stats.reused, stats.unscored_windows,
           stats.words_without_pieces, stats.empty_rationales, ml, ADP_MIN(ml / 4, ml - 3), batch, nthreads,
           adp_now() - t0);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? ADP_OK : adp_seterr("stdout: write failed");
done:
    if (rc != ADP_OK) fprintf(stderr, "adapler eraser export: %s\n", adp_errmsg());
    if (out) fclose(out);
    if (tmp_path[0]) unlink(tmp_path);
    for (int c = 0; c < BERT_MAX_LABELS; c++) free(labels[c]);
    eraser_dataset_free(&eds);
    if (have_ds) dataset_free(&ds);
    if (have_wp) wordpiece_free(&wp);
    method_free(&me);
    if (have_model) {
        st_close(&st);
        bert_model_free(&m);
    }
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
    if (!strcmp(sub, "export")) return cmd_export(argc - 1, argv + 1);
    fprintf(stderr, "adapler eraser: unknown subcommand '%s' (try adapler eraser --help)\n", sub);
    return 2;
}

/* cmd_eval.c: `adapler eval`: accuracy, FLOPs speedup and measured wall-clock speedup of
 * a model with a pruning method on a dataset split. */
#include <math.h>
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "eraser/metrics.h"
#include "flops.h"
#include "method.h"
#include "train_util.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler eval --model DIR --dataset NAME [--split dev|test] [--method NAME [knob]]\n"
            "                    [--batch N] [--threads N] [--max-len N] [--repeats R] [--weights W]\n"
            "                    [--examples FILE]\n\n"
            "Evaluate a classifier with a pruning method on a split and print one JSON object (one line):\n"
            "  accuracy, macro_f1 (and f1 of label 1 for two-class tasks)\n"
            "  flops_speedup   total FLOPs of the same model unpruned on the unpadded lengths, over\n"
            "                  the total FLOPs with the method (its own scoring included)\n"
            "  wall_speedup    measured: the whole split run dense and pruned in turn, R times, in\n"
            "                  this process, same batches and threads; median(dense) / median(pruned),\n"
            "                  with the lowest and highest per-repeat ratio in wall_speedup_range\n"
            "  layer_tokens    mean tokens entering each layer\n"
            "  eraser          datasets with human rationales: per layer, the words still alive entering\n"
            "                  it against the rationale words: fpr, tpr (micro), fpr_macro, tpr_macro,\n"
            "                  precision and f1 (micro), over the keys (examples with a rationale) and\n"
            "                  the words the model sees (after --max-len)\n\n"
            "A knob list runs one pass per value after a single model load and prints one JSON line\n"
            "per value, in order: the method option's value is a comma-separated list (--eta-scale\n"
            "0,0.5,1) or, for values that contain commas themselves, ';'-separated\n"
            "(--schedule '1:0.5;1:0.25').  The dense reference is timed again for every value.\n\n"
            "  --split S       dev (default) or test\n"
            "  --batch N       sequences per packed batch (default 32)\n"
            "  --threads N     OpenMP/OpenBLAS threads (default: $OMP_NUM_THREADS, else all cores)\n"
            "  --max-len N     truncate to N WordPieces (default: 512 or the model's positions)\n"
            "  --repeats R     wall-clock repeats (default 3; 0 skips timing)\n" CLI_WEIGHTS_HELP
            "  --examples FILE also write one JSON line per example: index, id, label, pred,\n"
            "                  layer_tokens, flops, kept (original positions reaching the last layer),\n"
            "                  token_layers (per WordPiece: layers it entered, L = all), pieces, knob;\n"
            "                  with a knob list, every value's lines in turn, each value's complete\n"
            "                  before its summary line is printed\n\n"
            "%s\n%s",
            METHOD_OPTS_HELP, DATASET_OPTS_HELP);
}

typedef struct {
    const bert_model *m;
    const packed_tokens *pk;
    int batch;
    int *off; /* scratch (batch + 1) */
} runner;

/* One pass over the split.  If preds is not NULL, fills predictions, layer tokens (n, L),
 * flops (n) and drop stages (n_tok). */
static int run_split(runner *R, bert_ctx *ctx, const prune_strategy *ps, int32_t *preds, int *layer_tokens,
                     double *flops, uint8_t *drop) {
    const packed_tokens *pk = R->pk;
    const int L = R->m->cfg.layers, C = R->m->cfg.num_labels;
    for (size_t s0 = 0; s0 < pk->n_seq; s0 += (size_t)R->batch) {
        int k = (int)ADP_MIN((size_t)R->batch, pk->n_seq - s0);
        size_t base = pk->seq_off[s0];
        for (int i = 0; i <= k; i++) R->off[i] = (int)(pk->seq_off[s0 + i] - base);
        bert_batch b = {.n_seq = k, .ids = pk->ids + base, .types = pk->type_ids + base, .off = R->off};
        bert_run_opts o = {.prune = ps, .batch_first = (int)s0};
        const bert_result *r;
        if (bert_forward(ctx, R->m, &b, &o, &r) != ADP_OK) return adp_preferr("example %zu..: ", s0);
        if (!preds) continue;
        for (int i = 0; i < k; i++) {
            const float *lg = r->logits + (size_t)i * C;
            int best = 0;
            for (int c = 1; c < C; c++) best = lg[c] > lg[best] ? c : best;
            preds[s0 + i] = best;
            memcpy(layer_tokens + (s0 + i) * (size_t)L, r->layer_tokens + (size_t)i * L, sizeof(int) * (size_t)L);
            flops[s0 + i] = r->flops[i];
        }
        memcpy(drop + base, r->drop_stage, (size_t)R->off[k]);
    }
    return ADP_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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

static void put_json_number(double v, const char *fmt) {
    if (isfinite(v)) printf(fmt, v);
    else printf("null");
}

/* A knob list: the method option at argv[opt] whose value argv[opt + 1] holds several
 * values.  Same rule as sweep files: a value with ';' is a ';'-list; a value with ',' that
 * the option does not accept whole is a ','-list.  Returns 1 and the values if it is a
 * list, 0 if not, ADP_ERR (message set) if a list value is bad. */
static int knob_list(char **argv, int opt, char ***vals, int *n) {
    const char *v = argv[opt + 1];
    *vals = NULL, *n = 0;
    int semi = strchr(v, ';') != NULL;
    if (!semi && !strchr(v, ',')) return 0;
    method_opts scratch;
    method_opts_init(&scratch);
    char *pair[2] = {argv[opt], (char *)v};
    int i = 0;
    int whole = method_opts_parse(&scratch, 2, pair, &i);
    if (whole == 0) return 0; /* not a method option */
    if (whole == 1 && !semi) return 0;
    char *copy = strdupCheck(v), *save = NULL;
    int rc = 1;
    for (char *tok = strtok_r(copy, semi ? ";" : ",", &save); tok; tok = strtok_r(NULL, semi ? ";" : ",", &save)) {
        method_opts_init(&scratch);
        pair[1] = tok, i = 0;
        if (method_opts_parse(&scratch, 2, pair, &i) != 1) {
            rc = ADP_ERR;
            break;
        }
        *vals = reallocCheck(*vals, sizeof(char *) * (size_t)(*n + 1));
        (*vals)[(*n)++] = strdupCheck(tok);
    }
    free(copy);
    if (rc == 1 && *n == 0) rc = adp_seterr("%s: empty list '%s'", argv[opt], v);
    if (rc != 1) {
        for (int k = 0; k < *n; k++) free((*vals)[k]);
        free(*vals);
        *vals = NULL, *n = 0;
    }
    return rc;
}

/* Everything one value of the knob needs, loaded once. */
typedef struct {
    const char *model_dir;
    bert_model *m;
    const dataset *ds;
    const wordpiece *wp;
    const packed_tokens *pk;
    split_id split;
    runner *R;
    bert_ctx *ctx;
    long batch, repeats;
    int nthreads, many;
    size_t ml;
    FILE *ex;
    int32_t *preds;
    int *ltok;
    double *fl, *t_dense, *t_pruned;
    uint8_t *drop, *keep;
    int32_t *wid;
} eval_state;

/* ERASER keep rates per layer: words alive entering layer l (drop stage > 2l) against the
 * human rationale, over the examples that have one and the words the model sees. */
static int rationale_rates(eval_state *E, eraser_keep_rates *kr, size_t *keys) {
    const packed_tokens *pk = E->pk;
    const int L = E->m->cfg.layers;
    *keys = 0;
    eraser_keep_rates_init(kr, (size_t)L);
    for (size_t i = 0; i < pk->n_seq; i++) {
        const example *x = &E->ds->ex[i];
        if (!x->rationale) continue;
        size_t a = pk->seq_off[i], n = pk->seq_off[i + 1] - a, n_words = 0;
        for (size_t t = 0; t < n; t++) {
            E->wid[t] = pk->type_ids[a + t] == 0 ? pk->word_ids[a + t] : -1;
            if (E->wid[t] >= 0 && (size_t)E->wid[t] + 1 > n_words) n_words = (size_t)E->wid[t] + 1;
        }
        if (n_words == 0 || n_words > x->n_words) continue;
        for (int l = 0; l < L; l++) {
            for (size_t t = 0; t < n; t++) E->keep[t] = E->drop[a + t] > 2 * l;
            if (eraser_keep_rates_add_pieces(kr, (size_t)l, x->rationale, n_words, E->keep, E->wid, n) != ADP_OK)
                return adp_preferr("example %zu: ", i + 1);
        }
        (*keys)++;
    }
    return ADP_OK;
}

static int eval_value(eval_state *E, const method_opts *mopt, const st_file *st) {
    const packed_tokens *pk = E->pk;
    const int L = E->m->cfg.layers, C = E->m->cfg.num_labels;
    method me = {0};
    if (method_create(&me, mopt, E->m, st) != ADP_OK) return ADP_ERR;
    const char **ids = mallocCheck(sizeof(char *) * (pk->n_seq ? pk->n_seq : 1));
    for (size_t i = 0; i < pk->n_seq; i++) ids[i] = E->ds->ex[i].id;
    int crc = method_check_examples(&me, pk->n_seq, ids);
    free(ids);
    if (crc != ADP_OK) {
        method_free(&me);
        return ADP_ERR;
    }
    int rc = ADP_ERR;
    double *mean_tok = callocCheck((size_t)L, sizeof(double));
    eraser_keep_rates kr = {0};
    int have_kr = 0;
    size_t keys = 0;
    if (run_split(E->R, E->ctx, me.ps, E->preds, E->ltok, E->fl, E->drop) != ADP_OK) goto done;

    /* scores: accuracy and macro-F1 as sklearn computes them (train_scores); f1 of label 1 */
    double accuracy = 0, macro_f1 = 0, f1_pos = 0;
    train_scores(pk->labels, E->preds, pk->n_seq, C, &accuracy, &macro_f1);
    if (C == 2) {
        long tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < pk->n_seq; i++) {
            tp += pk->labels[i] == 1 && E->preds[i] == 1;
            fp += pk->labels[i] != 1 && E->preds[i] == 1;
            fn += pk->labels[i] == 1 && E->preds[i] != 1;
        }
        f1_pos = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0.0;
    }
    double flops_dense_total = 0, flops_total = 0, mean_len = 0;
    for (size_t i = 0; i < pk->n_seq; i++) {
        int n = (int)(pk->seq_off[i + 1] - pk->seq_off[i]);
        flops_dense_total += flops_dense(&E->m->cfg, n);
        flops_total += E->fl[i];
        mean_len += n;
        for (int l = 0; l < L; l++) mean_tok[l] += E->ltok[i * (size_t)L + l];
    }
    if (E->ds->has_rationales) {
        have_kr = 1;
        if (rationale_rates(E, &kr, &keys) != ADP_OK) goto done;
    }

    /* wall clock: dense and pruned passes in turn, same process, batches and threads */
    double wall = NAN, wall_lo = NAN, wall_hi = NAN, dense_med = NAN, pruned_med = NAN;
    if (E->repeats > 0) {
        if (run_split(E->R, E->ctx, NULL, NULL, NULL, NULL, NULL) != ADP_OK) goto done; /* warm-up */
        for (long r = 0; r < E->repeats; r++) {
            double t0 = adp_now();
            if (run_split(E->R, E->ctx, NULL, NULL, NULL, NULL, NULL) != ADP_OK) goto done;
            double t1 = adp_now();
            if (run_split(E->R, E->ctx, me.ps, NULL, NULL, NULL, NULL) != ADP_OK) goto done;
            double t2 = adp_now();
            E->t_dense[r] = t1 - t0, E->t_pruned[r] = t2 - t1;
            double ratio = E->t_dense[r] / E->t_pruned[r];
            if (r == 0 || ratio < wall_lo) wall_lo = ratio;
            if (r == 0 || ratio > wall_hi) wall_hi = ratio;
        }
        qsort(E->t_dense, (size_t)E->repeats, sizeof(double), cmp_double);
        qsort(E->t_pruned, (size_t)E->repeats, sizeof(double), cmp_double);
        dense_med = E->t_dense[E->repeats / 2], pruned_med = E->t_pruned[E->repeats / 2];
        wall = dense_med / pruned_med;
    }

    if (E->ex) {
        FILE *ex = E->ex;
        for (size_t i = 0; i < pk->n_seq; i++) {
            fprintf(ex, "{\"index\": %zu, \"id\": ", i);
            put_json_string(ex, E->ds->ex[i].id);
            fprintf(ex, ", \"label\": %d, \"pred\": %d, \"layer_tokens\": [", pk->labels[i], E->preds[i]);
            for (int l = 0; l < L; l++) fprintf(ex, "%s%d", l ? ", " : "", E->ltok[i * (size_t)L + l]);
            fprintf(ex, "], \"flops\": %.0f, \"kept\": [", E->fl[i]);
            int first = 1;
            for (size_t t = pk->seq_off[i]; t < pk->seq_off[i + 1]; t++)
                if (E->drop[t] == 2 * L) fprintf(ex, "%s%zu", first ? "" : ", ", t - pk->seq_off[i]), first = 0;
            fprintf(ex, "], \"token_layers\": [");
            for (size_t t = pk->seq_off[i]; t < pk->seq_off[i + 1]; t++)
                fprintf(ex, "%s%d", t > pk->seq_off[i] ? ", " : "", (E->drop[t] + 1) / 2);
            fprintf(ex, "], \"pieces\": [");
            for (size_t t = pk->seq_off[i]; t < pk->seq_off[i + 1]; t++) {
                const char *piece = wordpiece_token(E->wp, pk->ids[t]);
                if (t > pk->seq_off[i]) fputs(", ", ex);
                put_json_string(ex, piece ? piece : "[?]");
            }
            fprintf(ex, "], \"knob\": ");
            put_json_string(ex, me.label);
            fprintf(ex, "}\n");
        }
        if (fflush(ex) != 0 || ferror(ex)) {
            adp_seterr("--examples: write failed");
            goto done;
        }
    }

    printf("{\"model\": ");
    put_json_string(stdout, E->model_dir);
    printf(", \"dataset\": \"%s\", \"split\": \"%s\", \"method\": \"%s\", \"knob\": ", E->ds->name,
           split_name(E->split), mopt->name);
    put_json_string(stdout, me.label);
    /* a quality reference (saliency's gradient pass) costs more than the dense model */
    printf(", \"quality_reference\": %s", me.quality_reference ? "true" : "false");
    printf(", \"examples\": %zu, \"accuracy\": %.6f, \"macro_f1\": %.6f", pk->n_seq, accuracy, macro_f1);
    if (C == 2) printf(", \"f1\": %.6f", f1_pos);
    printf(", \"flops_speedup\": %.9g, \"gflops_dense\": %.12g, \"gflops\": %.12g", flops_dense_total / flops_total,
           flops_dense_total * 1e-9, flops_total * 1e-9);
    if (E->repeats > 0)
        printf(", \"wall_speedup\": %.6f, \"wall_speedup_range\": [%.6f, %.6f], \"dense_seconds\": %.6f, "
               "\"pruned_seconds\": %.6f, \"repeats\": %ld",
               wall, wall_lo, wall_hi, dense_med, pruned_med, E->repeats);
    else
        printf(", \"wall_speedup\": null");
    printf(", \"mean_length\": %.4f, \"layer_tokens\": [", mean_len / pk->n_seq);
    for (int l = 0; l < L; l++) printf("%s%.4f", l ? ", " : "", mean_tok[l] / pk->n_seq);
    printf("]");
    if (have_kr) {
        static const char *names[] = {"fpr", "tpr", "fpr_macro", "tpr_macro", "precision", "f1"};
        printf(", \"eraser\": {\"keys\": %zu", keys);
        for (int k = 0; k < 6; k++) {
            printf(", \"%s\": [", names[k]);
            for (int l = 0; l < L; l++) {
                eraser_rates er;
                eraser_keep_rates_get(&er, &kr, (size_t)l);
                const eraser_keep_counts *t = &kr.total[l];
                double prec = t->tp + t->fp ? (double)t->tp / (double)(t->tp + t->fp) : NAN;
                double v[] = {er.fpr_micro, er.tpr_micro, er.fpr_macro, er.tpr_macro, prec,
                              isfinite(prec) && isfinite(er.tpr_micro) ? eraser_f1(prec, er.tpr_micro) : NAN};
                if (l) printf(", ");
                put_json_number(v[k], "%.6f");
            }
            printf("]");
        }
        printf("}");
    }
    printf(", \"batch\": %ld, \"threads\": %d, \"weights\": \"%s\", \"max_len\": %zu, \"truncated\": %zu}\n", E->batch,
           E->nthreads, weights_fmt_name(E->m->weights), E->ml, pk->n_truncated);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? ADP_OK : adp_seterr("stdout: write failed");
done:
    if (have_kr) eraser_keep_rates_free(&kr);
    free(mean_tok);
    method_free(&me);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *examples_path = NULL;
    long batch = 32, threads = 0, max_len = 0, repeats = 3;
    int wfmt = FMT_F32;
    split_id split = SPLIT_DEV;
    dataset_opts dopt;
    method_opts mopt;
    dataset_opts_init(&dopt);
    method_opts_init(&mopt);
    char **knob_vals = NULL;
    int n_knob = 0, knob_opt = -1, status = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--", 2) && i + 1 < argc) {
            char **vals;
            int n;
            int k = knob_list(argv, i, &vals, &n);
            if (k == ADP_ERR) {
                fprintf(stderr, "eval: %s\n", adp_errmsg());
                goto usage_fail;
            }
            if (k == 1) {
                if (knob_opt >= 0) {
                    fprintf(stderr, "eval: only one method option may hold a list (%s and %s do)\n", argv[knob_opt], a);
                    for (int v = 0; v < n; v++) free(vals[v]);
                    free(vals);
                    goto usage_fail;
                }
                knob_opt = i, knob_vals = vals, n_knob = n;
                i++;
                continue;
            }
        }
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r == 0) r = method_opts_parse(&mopt, argc, argv, &i);
        if (r == ADP_ERR) {
            fprintf(stderr, "eval: %s\n", adp_errmsg());
            goto usage_fail;
        }
        if (r == 1) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            status = 0;
            goto usage_fail;
        } else if (!strcmp(a, "--model") && v) model_dir = v, i++;
        else if (!strcmp(a, "--examples") && v) examples_path = v, i++;
        else if (!strcmp(a, "--split") && v) {
            if (split_parse(v, &split) != ADP_OK) {
                fprintf(stderr, "eval: --split: %s\n", adp_errmsg());
                goto usage_fail;
            }
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            if (!cli_parse_int("eval", "--batch", v, 1, 1000000, &batch)) goto usage_fail;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_int("eval", "--threads", v, 0, 1024, &threads)) goto usage_fail;
            i++;
        } else if (!strcmp(a, "--max-len") && v) {
            if (!cli_parse_int("eval", "--max-len", v, 2, 1000000, &max_len)) goto usage_fail;
            i++;
        } else if (!strcmp(a, "--repeats") && v) {
            if (!cli_parse_int("eval", "--repeats", v, 0, 1000, &repeats)) goto usage_fail;
            i++;
        } else if (!strcmp(a, "--weights") && v) {
            if (!cli_parse_weights("eval", v, &wfmt)) goto usage_fail;
            i++;
        } else {
            fprintf(stderr, "eval: unknown or incomplete option '%s' (see adapler eval --help)\n", a);
            goto usage_fail;
        }
    }
    if (!model_dir || !dopt.name) {
        fprintf(stderr, "eval: --model DIR and --dataset NAME are required\n");
        goto usage_fail;
    }
    int nthreads = adp_set_threads((int)threads);

    int rc = 1;
    bert_model m;
    st_file st;
    dataset ds = {0};
    wordpiece wp = {0};
    packed_tokens pk = {0};
    int have_model = 0, have_ds = 0, have_wp = 0, have_pk = 0;
    eval_state E = {0};
    bert_ctx ctx;
    bert_ctx_init(&ctx);

    if (bert_model_load(&m, model_dir, 0, &st) != ADP_OK) goto fail;
    have_model = 1;
    if (bert_model_use_weights(&m, wfmt) != ADP_OK) goto fail;
    if (!m.vocab_path) {
        adp_seterr("%s: no vocab.txt next to the model", model_dir);
        goto fail;
    }
    /* every value's method must be buildable before any output */
    for (int k = 0; k < (knob_opt >= 0 ? n_knob : 1); k++) {
        method_opts mk = mopt;
        if (knob_opt >= 0) {
            char *pair[2] = {argv[knob_opt], knob_vals[k]};
            int j = 0;
            method_opts_parse(&mk, 2, pair, &j);
        }
        method me;
        if (method_create(&me, &mk, &m, &st) != ADP_OK) goto fail;
        method_free(&me);
    }
    if (dataset_load(&ds, &dopt, split) != ADP_OK) goto fail;
    have_ds = 1;
    if (ds.n_labels != m.cfg.num_labels) {
        adp_seterr("%s has %d labels but the model has %d outputs", ds.name, ds.n_labels, m.cfg.num_labels);
        goto fail;
    }
    if (wordpiece_load(&wp, m.vocab_path, 1) != ADP_OK) goto fail;
    have_wp = 1;
    size_t ml = (size_t)(max_len ? ADP_MIN(max_len, m.cfg.max_pos) : ADP_MIN(512, m.cfg.max_pos));
    if (dataset_pack(&pk, &ds, &wp, ml) != ADP_OK) goto fail;
    have_pk = 1;
    if (pk.n_seq == 0) {
        adp_seterr("%s %s: no examples", ds.name, split_name(split));
        goto fail;
    }
    for (size_t i = 0; i < pk.n_seq; i++)
        if (pk.labels[i] < 0) {
            adp_seterr("%s %s: example %zu has no label (an unlabelled split cannot be scored)", ds.name,
                       split_name(split), i + 1);
            goto fail;
        }

    const int L = m.cfg.layers;
    size_t longest = 1;
    for (size_t i = 0; i < pk.n_seq; i++) longest = ADP_MAX(longest, pk.seq_off[i + 1] - pk.seq_off[i]);
    int *off = mallocCheck(sizeof(int) * (size_t)(batch + 1));
    runner R = {.m = &m, .pk = &pk, .batch = (int)batch, .off = off};
    E = (eval_state){.model_dir = model_dir, .m = &m, .ds = &ds, .wp = &wp, .pk = &pk, .split = split, .R = &R,
                     .ctx = &ctx, .batch = batch, .repeats = repeats, .nthreads = nthreads, .many = knob_opt >= 0,
                     .ml = ml};
    E.preds = mallocCheck(sizeof(int32_t) * pk.n_seq);
    E.ltok = mallocCheck(sizeof(int) * pk.n_seq * (size_t)L);
    E.fl = mallocCheck(sizeof(double) * pk.n_seq);
    E.drop = mallocCheck(pk.n_tok);
    E.keep = mallocCheck(longest);
    E.wid = mallocCheck(sizeof(int32_t) * longest);
    E.t_dense = mallocCheck(sizeof(double) * (size_t)(repeats + 1));
    E.t_pruned = mallocCheck(sizeof(double) * (size_t)(repeats + 1));
    if (examples_path && !(E.ex = fopen(examples_path, "w"))) {
        adp_seterr("%s: cannot create", examples_path);
        free(off);
        goto fail;
    }
    int ok = 1;
    for (int k = 0; ok && k < (knob_opt >= 0 ? n_knob : 1); k++) {
        method_opts mk = mopt;
        if (knob_opt >= 0) {
            char *pair[2] = {argv[knob_opt], knob_vals[k]};
            int j = 0;
            method_opts_parse(&mk, 2, pair, &j);
        }
        ok = eval_value(&E, &mk, &st) == ADP_OK;
    }
    free(off);
    if (E.ex) {
        int bad = fclose(E.ex) != 0;
        E.ex = NULL;
        if (bad && ok) {
            adp_seterr("%s: write failed", examples_path);
            ok = 0;
        }
    }
    rc = ok ? 0 : 1;
fail:
    if (rc) fprintf(stderr, "eval: %s\n", adp_errmsg());
    if (E.ex) fclose(E.ex);
    free(E.preds), free(E.ltok), free(E.fl), free(E.drop), free(E.keep), free(E.wid), free(E.t_dense), free(E.t_pruned);
    bert_ctx_free(&ctx);
    if (have_pk) packed_tokens_free(&pk);
    if (have_wp) wordpiece_free(&wp);
    if (have_ds) dataset_free(&ds);
    if (have_model) {
        st_close(&st);
        bert_model_free(&m);
    }
    status = rc;
usage_fail:
    for (int v = 0; v < n_knob; v++) free(knob_vals[v]);
    free(knob_vals);
    return status;
}

/* cmd_eval.c: `adapler eval`: accuracy, FLOPs speedup and measured wall-clock speedup of
 * a model with a pruning method on a dataset split. */
#include <math.h>
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "flops.h"
#include "method.h"
#include "train_util.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler eval --model DIR --dataset NAME [--split dev|test] [--method NAME [knob]]\n"
            "                    [--batch N] [--threads N] [--max-len N] [--repeats R] [--examples FILE]\n\n"
            "Evaluate a classifier with a pruning method on a split and print one JSON object:\n"
            "  accuracy, macro_f1 (and f1 of label 1 for two-class tasks)\n"
            "  flops_speedup   total FLOPs of the same model unpruned on the unpadded lengths, over\n"
            "                  the total FLOPs with the method (its own scoring included)\n"
            "  wall_speedup    measured: the whole split run dense and pruned in turn, R times, in\n"
            "                  this process, same batches and threads; median(dense) / median(pruned),\n"
            "                  with the lowest and highest per-repeat ratio in wall_speedup_range\n"
            "  layer_tokens    mean tokens entering each layer\n\n"
            "  --split S       dev (default) or test\n"
            "  --batch N       sequences per packed batch (default 32)\n"
            "  --threads N     OpenMP/OpenBLAS threads (default: all cores)\n"
            "  --max-len N     truncate to N WordPieces (default: 512 or the model's positions)\n"
            "  --repeats R     wall-clock repeats (default 3; 0 skips timing)\n"
            "  --examples FILE also write one JSON line per example: id, label, pred, layer_tokens,\n"
            "                  flops, kept (original positions reaching the last layer)\n\n"
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

int cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *examples_path = NULL;
    long batch = 32, threads = 0, max_len = 0, repeats = 3;
    split_id split = SPLIT_DEV;
    dataset_opts dopt;
    method_opts mopt;
    dataset_opts_init(&dopt);
    method_opts_init(&mopt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r == 0) r = method_opts_parse(&mopt, argc, argv, &i);
        if (r == ADP_ERR) {
            fprintf(stderr, "eval: %s\n", adp_errmsg());
            return 2;
        }
        if (r == 1) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && v) model_dir = v, i++;
        else if (!strcmp(a, "--examples") && v) examples_path = v, i++;
        else if (!strcmp(a, "--split") && v) {
            if (split_parse(v, &split) != ADP_OK) {
                fprintf(stderr, "eval: --split: %s\n", adp_errmsg());
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            if (!cli_parse_int("eval", "--batch", v, 1, 1000000, &batch)) return 2;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_int("eval", "--threads", v, 0, 1024, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--max-len") && v) {
            if (!cli_parse_int("eval", "--max-len", v, 2, 1000000, &max_len)) return 2;
            i++;
        } else if (!strcmp(a, "--repeats") && v) {
            if (!cli_parse_int("eval", "--repeats", v, 0, 1000, &repeats)) return 2;
            i++;
        } else {
            fprintf(stderr, "eval: unknown or incomplete option '%s' (see adapler eval --help)\n", a);
            return 2;
        }
    }
    if (!model_dir || !dopt.name) {
        fprintf(stderr, "eval: --model DIR and --dataset NAME are required\n");
        return 2;
    }
    int nthreads = adp_set_threads((int)threads);

    int rc = 1;
    bert_model m;
    st_file st;
    dataset ds = {0};
    wordpiece wp = {0};
    packed_tokens pk = {0};
    method me = {0};
    int have_model = 0, have_ds = 0, have_wp = 0, have_pk = 0, have_me = 0;
    int32_t *preds = NULL;
    int *ltok = NULL, *off = NULL;
    double *fl = NULL, *t_dense = NULL, *t_pruned = NULL;
    uint8_t *drop = NULL;
    FILE *ex = NULL;
    bert_ctx ctx;
    bert_ctx_init(&ctx);

    if (bert_model_load(&m, model_dir, 0, &st) != ADP_OK) goto fail;
    have_model = 1;
    if (!m.vocab_path) {
        adp_seterr("%s: no vocab.txt next to the model", model_dir);
        goto fail;
    }
    if (method_create(&me, &mopt, &m, &st) != ADP_OK) goto fail;
    have_me = 1;
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

    const int L = m.cfg.layers, C = m.cfg.num_labels;
    preds = mallocCheck(sizeof(int32_t) * pk.n_seq);
    ltok = mallocCheck(sizeof(int) * pk.n_seq * (size_t)L);
    fl = mallocCheck(sizeof(double) * pk.n_seq);
    drop = mallocCheck(pk.n_tok);
    off = mallocCheck(sizeof(int) * (size_t)(batch + 1));
    runner R = {.m = &m, .pk = &pk, .batch = (int)batch, .off = off};
    if (run_split(&R, &ctx, me.ps, preds, ltok, fl, drop) != ADP_OK) goto fail;

    /* scores: accuracy and macro-F1 as sklearn computes them (train_scores); f1 of label 1 */
    double accuracy = 0, macro_f1 = 0, f1_pos = 0;
    train_scores(pk.labels, preds, pk.n_seq, C, &accuracy, &macro_f1);
    if (C == 2) {
        long tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < pk.n_seq; i++) {
            tp += pk.labels[i] == 1 && preds[i] == 1;
            fp += pk.labels[i] != 1 && preds[i] == 1;
            fn += pk.labels[i] == 1 && preds[i] != 1;
        }
        f1_pos = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0.0;
    }
    double flops_dense_total = 0, flops_total = 0, mean_len = 0;
    double *mean_tok = callocCheck((size_t)L, sizeof(double));
    for (size_t i = 0; i < pk.n_seq; i++) {
        int n = (int)(pk.seq_off[i + 1] - pk.seq_off[i]);
        flops_dense_total += flops_dense(&m.cfg, n);
        flops_total += fl[i];
        mean_len += n;
        for (int l = 0; l < L; l++) mean_tok[l] += ltok[i * (size_t)L + l];
    }

    /* wall clock: dense and pruned passes in turn, same process, batches and threads */
    double wall = NAN, wall_lo = NAN, wall_hi = NAN, dense_med = NAN, pruned_med = NAN;
    if (repeats > 0) {
        t_dense = mallocCheck(sizeof(double) * (size_t)repeats);
        t_pruned = mallocCheck(sizeof(double) * (size_t)repeats);
        if (run_split(&R, &ctx, NULL, NULL, NULL, NULL, NULL) != ADP_OK) goto fail; /* warm-up */
        for (long r = 0; r < repeats; r++) {
            double t0 = adp_now();
            if (run_split(&R, &ctx, NULL, NULL, NULL, NULL, NULL) != ADP_OK) goto fail;
            double t1 = adp_now();
            if (run_split(&R, &ctx, me.ps, NULL, NULL, NULL, NULL) != ADP_OK) goto fail;
            double t2 = adp_now();
            t_dense[r] = t1 - t0, t_pruned[r] = t2 - t1;
            double ratio = t_dense[r] / t_pruned[r];
            if (r == 0 || ratio < wall_lo) wall_lo = ratio;
            if (r == 0 || ratio > wall_hi) wall_hi = ratio;
        }
        qsort(t_dense, (size_t)repeats, sizeof(double), cmp_double);
        qsort(t_pruned, (size_t)repeats, sizeof(double), cmp_double);
        dense_med = t_dense[repeats / 2], pruned_med = t_pruned[repeats / 2];
        wall = dense_med / pruned_med;
    }

    if (examples_path) {
        ex = fopen(examples_path, "w");
        if (!ex) {
            adp_seterr("%s: cannot create", examples_path);
            free(mean_tok);
            goto fail;
        }
        for (size_t i = 0; i < pk.n_seq; i++) {
            fprintf(ex, "{\"index\": %zu, \"id\": \"%s\", \"label\": %d, \"pred\": %d, \"layer_tokens\": [", i,
                    ds.ex[i].id, pk.labels[i], preds[i]);
            for (int l = 0; l < L; l++) fprintf(ex, "%s%d", l ? ", " : "", ltok[i * (size_t)L + l]);
            fprintf(ex, "], \"flops\": %.0f, \"kept\": [", fl[i]);
            int first = 1;
            for (size_t t = pk.seq_off[i]; t < pk.seq_off[i + 1]; t++)
                if (drop[t] == 2 * L) fprintf(ex, "%s%zu", first ? "" : ", ", t - pk.seq_off[i]), first = 0;
            fprintf(ex, "]}\n");
        }
        if (fclose(ex) != 0) {
            ex = NULL;
            adp_seterr("%s: write failed", examples_path);
            free(mean_tok);
            goto fail;
        }
        ex = NULL;
    }

    printf("{\"model\": \"%s\", \"dataset\": \"%s\", \"split\": \"%s\", \"method\": \"%s\", \"knob\": \"%s\", "
           "\"examples\": %zu, \"accuracy\": %.6f, \"macro_f1\": %.6f",
           model_dir, ds.name, split_name(split), mopt.name, me.label, pk.n_seq, accuracy, macro_f1);
    if (C == 2) printf(", \"f1\": %.6f", f1_pos);
    printf(", \"flops_speedup\": %.9g, \"gflops_dense\": %.12g, \"gflops\": %.12g", flops_dense_total / flops_total,
           flops_dense_total * 1e-9, flops_total * 1e-9);
    if (repeats > 0)
        printf(", \"wall_speedup\": %.6f, \"wall_speedup_range\": [%.6f, %.6f], \"dense_seconds\": %.6f, "
               "\"pruned_seconds\": %.6f, \"repeats\": %ld",
               wall, wall_lo, wall_hi, dense_med, pruned_med, repeats);
    else
        printf(", \"wall_speedup\": null");
    printf(", \"mean_length\": %.4f, \"layer_tokens\": [", mean_len / pk.n_seq);
    for (int l = 0; l < L; l++) printf("%s%.4f", l ? ", " : "", mean_tok[l] / pk.n_seq);
    printf("], \"batch\": %ld, \"threads\": %d, \"max_len\": %zu, \"truncated\": %zu}\n", batch, nthreads, ml,
           pk.n_truncated);
    free(mean_tok);
    rc = fflush(stdout) == 0 ? 0 : 1;
fail:
    if (rc) fprintf(stderr, "eval: %s\n", adp_errmsg());
    if (ex) fclose(ex);
    free(preds), free(ltok), free(fl), free(drop), free(off), free(t_dense), free(t_pruned);
    bert_ctx_free(&ctx);
    if (have_me) method_free(&me);
    if (have_pk) packed_tokens_free(&pk);
    if (have_wp) wordpiece_free(&wp);
    if (have_ds) dataset_free(&ds);
    if (have_model) {
        st_close(&st);
        bert_model_free(&m);
    }
    return rc;
}

/* fit.c: the two-phase training of PoWER-BERT and LTP (fit.h): a soft phase with the
 * method's relaxation and penalty, then re-training with hard removal at the configuration
 * it found; the most accurate dev epoch of the hard phase is saved.
 *
 * Both phases: hidden dropout --dropout, attention dropout 0 (LTP scores the attention
 * after dropout, PoWER-BERT before; with 0 they agree), Adam(W) with linear warm-up
 * (--warmup of the phase's steps) and linear decay per phase, the encoder's gradients
 * clipped to --clip (the method's parameters are not clipped: PoWER-BERT clips nothing).
 * The hard phase starts a fresh optimiser from the soft phase's encoder, as both reference
 * pipelines start a new training run there. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "baselines/fit.h"
#include "baselines/fit_driver.h"
#include "bert.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "flops.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"
#include "train_util.h"
#include "wordpiece.h"

static void usage(FILE *f, const fit_spec *sp) {
    fprintf(f,
            "usage: adapler train --method %s --init FINETUNED_DIR --dataset NAME --out DIR [--lambda L]\n"
            "                     [options] [dataset options]\n\n%s"
            "  --soft-epochs E  epochs of the soft phase (default 3)\n"
            "  --epochs E       epochs of the hard phase (default 3)\n"
            "  --lr LR          peak learning rate of the encoder, both phases (default 1e-4)\n"
            "  --batch N        sequences per batch (default 32)\n"
            "  --max-len N      truncate to N pieces (default 128)\n"
            "  --dropout P      hidden dropout (default 0.1; attention dropout is 0)\n"
            "  --warmup F, --wd WD, --clip C, --max-train N, --seed S, --threads T, --eval-batch N\n"
            "                   as for `adapler train` (defaults 0.1, 0.01, 1.0)\n\n"
            "One JSON line on stdout at the end (also DIR/train.json, with the per-epoch history):\n"
            "dev_accuracy, finetuned_dev_accuracy, flops_speedup, layer_tokens, the %s, best_epoch,\n"
            "seconds.\n\n%s",
            sp->name, sp->help, sp->config_name, DATASET_OPTS_HELP);
}

/* Returns 0 to run, 1 after --help, 2 for bad usage (message printed). */
static int parse_args(const fit_spec *sp, fit_args *a, dataset_opts *dopt, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = dataset_opts_parse(dopt, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "train: %s\n", adp_errmsg());
            return 2;
        }
        if (r) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(s, name) && v && (i++, 1))
#define NUM(name, lo, hi, dst) (OPT(name) && (cli_parse_double("train", name, v, lo, hi, dst) ? 1 : (bad = 1)))
#define INT(name, lo, hi, dst) (OPT(name) && (cli_parse_int("train", name, v, lo, hi, dst) ? 1 : (bad = 1)))
        int bad = 0;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout, sp);
            return 1;
        } else if (OPT("--method")) {
            if (strcmp(v, sp->name) != 0) {
                fprintf(stderr, "train: --method %s: this path trains %s\n", v, sp->name);
                return 2;
            }
        } else if (OPT("--init")) a->init = v;
        else if (OPT("--out")) a->out = v;
        else if (NUM("--lambda", 0, 1e6, &a->lambda)) {}
        else if (NUM("--soft-lr", 0, 1, &a->soft_lr)) {}
        else if (sp->has_temperature && NUM("--temperature", 1e-9, 1e3, &a->temperature)) {}
        else if (sp->has_temperature && NUM("--final-threshold", 0, 1, &a->final_threshold)) {}
        else if (INT("--epochs", 1, 1000, &a->epochs)) {}
        else if (INT("--soft-epochs", 1, 1000, &a->soft_epochs)) {}
        else if (NUM("--lr", 0, 1, &a->lr)) {}
        else if (INT("--batch", 1, 1 << 20, &a->batch)) {}
        else if (INT("--max-len", 2, 512, &a->max_len)) {}
        else if (INT("--seed", 0, 1L << 62, &a->seed)) {}
        else if (INT("--threads", 1, 1024, &a->threads)) {}
        else if (INT("--max-train", 1, 1L << 40, &a->max_train)) {}
        else if (INT("--eval-batch", 1, 1 << 16, &a->eval_batch)) {}
        else if (NUM("--warmup", 0, 1, &a->warmup)) {}
        else if (NUM("--wd", 0, 1, &a->wd)) {}
        else if (NUM("--clip", 0, 1e9, &a->clip)) {}
        else if (NUM("--dropout", 0, 0.95, &a->dropout)) {}
        else {
            fprintf(stderr, "train: unknown or incomplete option '%s' for --method %s (try --method %s --help)\n", s,
                    sp->name, sp->name);
            return 2;
        }
        if (bad) return 2;
#undef OPT
#undef NUM
#undef INT
    }
    if (!a->init || !a->out || !dopt->name) {
        fprintf(stderr, "train: --method %s needs --init FINETUNED_DIR, --dataset NAME and --out DIR\n", sp->name);
        return 2;
    }
    return 0;
}


/* Append printf-style text to a growing string. */
static void appendf(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(char **s, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    size_t have = *s ? strlen(*s) : 0;
    *s = reallocCheck(*s, have + (size_t)n + 1);
    vsnprintf(*s + have, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
}

/* One epoch of either phase over the plan's batches.  Soft phase: hooks on, soft optimiser
 * stepped, *pen the mean penalty.  Returns the mean task loss through *task. */
typedef struct {
    const fit_spec *sp;
    void *self;
    const fit_args *a;
    bert_model *m;
    const packed_tokens *pk;
    const size_t *sel;
    const int *lengths;
    size_t n_sel;
    bert_train_ctx *tc;
    bert_weights *gw;
    adamw *enc, *soft;
    train_batch *fb;
    float *probs, *lossv, *dlogits;
    size_t *bidx;
    progress *pg;
    long *step;     /* steps of this phase so far */
    long pg_before; /* steps of the phases before this one (the progress line counts both) */
    long total, warm;
    size_t tokens;
    double seconds;
} epoch_run;

static int run_epoch(epoch_run *E, int ep, int epochs, const prune_strategy *hard, double *task_mean, double *pen_mean) {
    const fit_args *a = E->a;
    const int C = E->m->cfg.num_labels;
    batch_plan plan;
    batch_plan_make(&plan, E->lengths, E->n_sel, (int)a->batch, 0,
                    train_mix_seed((uint64_t)a->seed + (hard ? 7919 : 0), (uint64_t)ep));
    bert_train_opts o = {.hidden_dropout = (float)a->dropout, .attn_dropout = 0.0f, .prune = hard};
    /* the hooks' user is the method's state (its soft struct first, see power_fit.c, ltp_fit.c) */
    if (!hard) o.row_scale = E->sp->scale, o.row_scale_grad = E->sp->scale_grad, o.user = E->self;
    double sum_task = 0, sum_pen = 0, run = 0, t0 = adp_now();
    int rc = ADP_OK;
    for (size_t bi = 0; bi < plan.n_batches && rc == ADP_OK; bi++, (*E->step)++) {
        size_t n = plan.boff[bi + 1] - plan.boff[bi];
        for (size_t i = 0; i < n; i++) E->bidx[i] = E->sel[plan.order[plan.boff[bi] + i]];
        bert_batch b;
        train_batch_fill(E->fb, &b, E->pk, NULL, E->bidx, n);
        o.seed = train_mix_seed((uint64_t)a->seed + (hard ? 2 : 1), (uint64_t)*E->step);
        o.batch_first = 0;
        if ((rc = bert_train_forward(E->tc, E->m, &b, &o)) != ADP_OK) break;
        softmax_xent_forward(E->lossv, E->probs, E->tc->logits, E->fb->labels, (int)n, C);
        memset(E->dlogits, 0, sizeof(float) * n * C);
        softmax_xent_backward(E->dlogits, E->probs, E->fb->labels, 1.0f / (float)n, (int)n, C);
        double task = 0;
        for (size_t s = 0; s < n; s++) task += E->lossv[s] / n;
        grad_zero(E->enc);
        if (!hard) grad_zero(E->soft);
        if ((rc = bert_train_backward(E->tc, E->m, E->gw, E->dlogits, NULL)) != ADP_OK) break;
        double pen = hard ? 0 : E->sp->penalty(E->self);
        const double f = lr_linear_schedule(1.0, *E->step, E->warm, E->total);
        grad_clip(E->enc, a->clip);
        adamw_step(E->enc, (float)(a->lr * f));
        if (!hard) {
            adamw_step(E->soft, (float)(a->soft_lr * f));
            if (E->sp->after_step) E->sp->after_step(E->self);
        }
        if (!isfinite(task) || !isfinite(pen)) {
            rc = adp_seterr("%s phase, epoch %d step %zu: the loss is not finite (task %g, penalty %g); lower --lr?",
                            hard ? "hard" : "soft", ep, bi, task, pen);
            break;
        }
        sum_task += task, sum_pen += pen;
        run = bi == 0 ? task : 0.98 * run + 0.02 * task;
        E->tokens += (size_t)b.off[b.n_seq];
        double el = E->seconds + adp_now() - t0;
        progress_show(E->pg, hard ? "hard" : "soft", ep, epochs, E->pg_before + *E->step + 1, run,
                      E->tokens / (el > 0 ? el : 1));
    }
    E->seconds += adp_now() - t0;
    size_t nb = plan.n_batches ? plan.n_batches : 1;
    *task_mean = sum_task / nb, *pen_mean = sum_pen / nb;
    batch_plan_free(&plan);
    return rc;
}

int fit_run(const fit_spec *sp, int argc, char **argv) {
    fit_args a = {.epochs = 3, .soft_epochs = 3, .batch = 32, .max_len = 128, .seed = 1, .eval_batch = 64,
                  .lr = 1e-4, .soft_lr = sp->soft_lr, .lambda = sp->lambda, .temperature = sp->temperature,
                  .final_threshold = sp->final_threshold, .warmup = 0.1, .wd = 0.01, .clip = 1.0, .dropout = 0.1};
    dataset_opts dopt;
    dataset_opts_init(&dopt);
    int pr = parse_args(sp, &a, &dopt, argc, argv);
    if (pr) return pr == 1 ? 0 : pr;
    if (a.soft_lr < 0) a.soft_lr = a.lr; /* LTP: lr_threshold defaults to the learning rate */
    adp_set_threads((int)a.threads);
    if (mkdir(a.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "train: %s: cannot create directory: %s\n", a.out, strerror(errno));
        return 1;
    }
    const double t_start = adp_now();
    int rc = 1, have_m = 0, have_tr = 0, have_dev = 0, have_wp = 0, have_opt = 0, have_ps = 0, L = 0;
    bert_model m;
    st_file st;
    dataset train, dev;
    wordpiece wp;
    packed_tokens pk_tr = {0}, pk_dev = {0};
    float *garena = NULL, *probs = NULL, *lossv = NULL, *dlogits = NULL;
    size_t *sel = NULL, *bidx = NULL;
    int *lengths = NULL;
    double *ltok = NULL, *best_ltok = NULL;
    char *history = NULL, config[8192] = "[]", best_config[8192] = "[]";
    void *self = NULL;
    adamw enc = {0}, soft = {0};
    bert_weights gw = {0};
    bert_train_ctx tc;
    bert_train_ctx_init(&tc);
    train_batch fb = {0};
    prune_strategy ps;

    if (bert_model_load(&m, a.init, 0, &st) != ADP_OK) goto done;
    have_m = 1;
    st_close(&st);
    L = m.cfg.layers;
    if (!m.vocab_path) {
        adp_seterr("%s: no vocab.txt next to the model", a.init);
        goto done;
    }
    if (dataset_load(&train, &dopt, SPLIT_TRAIN) != ADP_OK) goto done;
    have_tr = 1;
    if (dataset_load(&dev, &dopt, SPLIT_DEV) != ADP_OK) goto done;
    have_dev = 1;
    if (train.n_labels != m.cfg.num_labels) {
        adp_seterr("%s has %d labels but %s has %d outputs", train.name, train.n_labels, a.init, m.cfg.num_labels);
        goto done;
    }
    if (wordpiece_load(&wp, m.vocab_path, 1) != ADP_OK) goto done;
    have_wp = 1;
    if (a.max_len > m.cfg.max_pos) a.max_len = m.cfg.max_pos;
    if (dataset_pack(&pk_tr, &train, &wp, (size_t)a.max_len) != ADP_OK ||
        dataset_pack(&pk_dev, &dev, &wp, (size_t)a.max_len) != ADP_OK)
        goto done;

    ltok = mallocCheck(sizeof(double) * (size_t)L);
    best_ltok = callocCheck((size_t)L, sizeof(double));
    train_dev_scores ft = {.layer_tokens = ltok};
    if (train_evaluate(&ft, &m, &pk_dev, NULL, (int)a.eval_batch) != ADP_OK) goto done;
    fprintf(stderr, "train: fine-tuned model %s: dev accuracy %.4f\n", a.init, ft.acc);

    self = sp->create(&m, &a);
    garena = alignedCheck(sizeof(float) * m.n_params);
    memset(garena, 0, sizeof(float) * m.n_params);
    bert_weights_point(&gw, &m.cfg, garena);
    adamw_init(&enc, 0.9f, 0.999f, 1e-8f, (float)a.wd);
    adamw_add_bert(&enc, &m, garena, 0);
    adamw_init(&soft, 0.9f, 0.999f, 1e-8f, 0.0f);
    sp->params(self, &soft);
    adamw_ready(&enc), adamw_ready(&soft);
    have_opt = 1;

    /* the training subset */
    size_t n_sel = pk_tr.n_seq;
    sel = mallocCheck(sizeof(size_t) * (n_sel ? n_sel : 1));
    for (size_t i = 0; i < n_sel; i++) sel[i] = i;
    if (a.max_train && (size_t)a.max_train < n_sel) {
        adp_rng r;
        rng_seed(&r, (uint64_t)a.seed ^ 0x5EEDull);
        for (size_t i = 0; i < (size_t)a.max_train; i++) {
            size_t j = i + (size_t)rng_below(&r, n_sel - i), t = sel[i];
            sel[i] = sel[j], sel[j] = t;
        }
        n_sel = (size_t)a.max_train;
    }
    if (n_sel == 0) {
        adp_seterr("%s: no training examples", train.name);
        goto done;
    }
    lengths = mallocCheck(sizeof(int) * n_sel);
    for (size_t i = 0; i < n_sel; i++) lengths[i] = (int)(pk_tr.seq_off[sel[i] + 1] - pk_tr.seq_off[sel[i]]);
    const long steps_per_epoch = (long)((n_sel + (size_t)a.batch - 1) / (size_t)a.batch);
    const int C = m.cfg.num_labels;
    probs = mallocCheck(sizeof(float) * (size_t)a.batch * C);
    lossv = mallocCheck(sizeof(float) * (size_t)a.batch);
    dlogits = mallocCheck(sizeof(float) * (size_t)a.batch * C);
    bidx = mallocCheck(sizeof(size_t) * (size_t)a.batch);
    fprintf(stderr,
            "train: %s on %s, %zu examples; soft phase %ld epochs, hard phase %ld, %ld steps of %ld each; lambda %g%s; "
            "lr %g, soft lr %g; model L%d H%d; %d threads\n",
            sp->name, train.name, n_sel, a.soft_epochs, a.epochs, steps_per_epoch, a.batch, a.lambda,
            sp->has_temperature ? ", temperature and initial thresholds below" : "", a.lr, a.soft_lr, L, m.cfg.hidden,
            adp_get_threads());
    if (sp->has_temperature)
        fprintf(stderr, "train: temperature %g, final threshold %g\n", a.temperature, a.final_threshold);

    progress pg;
    progress_init(&pg, steps_per_epoch * (a.soft_epochs + a.epochs));
    long step = 0;
    epoch_run E = {.sp = sp, .self = self, .a = &a, .m = &m, .pk = &pk_tr, .sel = sel, .lengths = lengths,
                   .n_sel = n_sel, .tc = &tc, .gw = &gw, .enc = &enc, .soft = &soft, .fb = &fb, .probs = probs,
                   .lossv = lossv, .dlogits = dlogits, .bidx = bidx, .pg = &pg, .step = &step};
    bert_model_unpack(&m);

    /* 1. the soft phase */
    E.total = steps_per_epoch * a.soft_epochs, E.warm = (long)floor(a.warmup * (double)E.total + 0.5);
    appendf(&history, "\"soft\": [");
    for (int ep = 1; ep <= a.soft_epochs; ep++) {
        double task, pen;
        if (run_epoch(&E, ep, (int)a.soft_epochs, NULL, &task, &pen) != ADP_OK) goto done;
        sp->config(self, config, sizeof config);
        progress_clear(&pg);
        fprintf(stderr, "train: soft epoch %d: task loss %.4f, penalty %.4f; %s %s\n", ep, task, pen, sp->config_name,
                config);
        appendf(&history, "%s{\"epoch\": %d, \"task_loss\": %.6f, \"penalty\": %.6f, \"%s\": %s}", ep > 1 ? ", " : "",
                ep, task, pen, sp->config_name, config);
    }
    const double soft_seconds = E.seconds;

    /* 2. the hard phase at the configuration found: a fresh optimiser for the encoder */
    if (sp->hard(self, &m, &ps) != ADP_OK) goto done;
    have_ps = 1;
    sp->config(self, config, sizeof config);
    adamw_free(&enc);
    adamw_init(&enc, 0.9f, 0.999f, 1e-8f, (float)a.wd);
    adamw_add_bert(&enc, &m, garena, 0);
    adamw_ready(&enc);
    step = 0, E.pg_before = steps_per_epoch * a.soft_epochs;
    E.total = steps_per_epoch * a.epochs, E.warm = (long)floor(a.warmup * (double)E.total + 0.5);
    appendf(&history, "], \"hard\": [");
    train_dev_scores best = {0};
    int best_epoch = 0;
    for (int ep = 1; ep <= a.epochs; ep++) {
        double task, pen;
        if (run_epoch(&E, ep, (int)a.epochs, &ps, &task, &pen) != ADP_OK) goto done;
        bert_model_pack(&m);
        train_dev_scores d = {.layer_tokens = ltok};
        int erc = train_evaluate(&d, &m, &pk_dev, &ps, (int)a.eval_batch);
        if (erc == ADP_OK && (best_epoch == 0 || d.acc > best.acc)) {
            best = d, best_epoch = ep;
            memcpy(best_ltok, ltok, sizeof(double) * (size_t)L);
            snprintf(best_config, sizeof best_config, "%s", config);
            bert_extra_tensor ex[1];
            int ne = sp->extra(self, ex);
            erc = bert_model_save(&m, a.out, ex, ne, m.vocab_path);
        }
        bert_model_unpack(&m);
        if (erc != ADP_OK) goto done;
        const double speed = d.flops > 0 ? d.flops_dense / d.flops : 0;
        progress_clear(&pg);
        fprintf(stderr, "train: hard epoch %d: task loss %.4f; dev accuracy %.4f (fine-tuned %.4f), FLOPs speedup %.3fx%s\n",
                ep, task, d.acc, ft.acc, speed, best_epoch == ep ? ": best so far, saved" : "");
        appendf(&history, "%s{\"epoch\": %d, \"task_loss\": %.6f, \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f, "
                          "\"flops_speedup\": %.6f}",
                ep > 1 ? ", " : "", ep, task, d.acc, d.f1, speed);
    }
    appendf(&history, "]");

    {
        char *summary = NULL;
        appendf(&summary,
                "{\"dataset\": \"%s\", \"method\": \"%s\", \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f, "
                "\"finetuned_dev_accuracy\": %.6f, \"flops_speedup\": %.6f, \"best_epoch\": %d, \"%s\": %s, "
                "\"layer_tokens\": [",
                train.name, sp->name, best.acc, best.f1, ft.acc, best.flops > 0 ? best.flops_dense / best.flops : 0.0,
                best_epoch, sp->config_name, best_config);
        for (int l = 0; l < L; l++) appendf(&summary, "%s%.4f", l ? ", " : "", best_ltok[l]);
        appendf(&summary, "], \"lambda\": %g", a.lambda);
        if (sp->has_temperature)
            appendf(&summary, ", \"temperature\": %g, \"final_threshold\": %g", a.temperature, a.final_threshold);
        appendf(&summary,
                ", \"soft_epochs\": %ld, \"epochs\": %ld, \"seconds\": %.1f, \"train_seconds\": %.1f, "
                "\"soft_seconds\": %.1f, \"tokens_per_s\": %.1f, \"init\": \"%s\", \"lr\": %g, \"soft_lr\": %g, "
                "\"batch\": %ld, \"max_len\": %ld, \"seed\": %ld, \"threads\": %d}",
                a.soft_epochs, a.epochs, adp_now() - t_start, E.seconds, soft_seconds,
                E.tokens / (E.seconds > 0 ? E.seconds : 1), a.init, a.lr, a.soft_lr, a.batch, a.max_len, a.seed,
                adp_get_threads());
        printf("%s\n", summary);
        fflush(stdout);
        char *full = NULL, path[4096];
        appendf(&full, "%.*s, \"history\": {%s}}\n", (int)strlen(summary) - 1, summary, history);
        snprintf(path, sizeof path, "%s/train.json", a.out);
        int wrc = adp_write_file_atomic(path, full, strlen(full));
        free(full), free(summary);
        if (wrc != ADP_OK) goto done;
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "\ntrain: %s\n", adp_errmsg());
    if (have_ps) ps.destroy(&ps);
    if (self) sp->destroy(self);
    free(history), free(garena), free(probs), free(lossv), free(dlogits), free(sel), free(bidx), free(lengths);
    free(ltok), free(best_ltok);
    train_batch_free(&fb);
    if (have_opt) adamw_free(&enc), adamw_free(&soft);
    bert_weights_free_layout(&gw);
    bert_train_ctx_free(&tc);
    packed_tokens_free(&pk_tr), packed_tokens_free(&pk_dev);
    if (have_wp) wordpiece_free(&wp);
    if (have_tr) dataset_free(&train);
    if (have_dev) dataset_free(&dev);
    if (have_m) bert_model_free(&m);
    return rc;
}

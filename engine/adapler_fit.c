/* adapler_fit.c: `adapler train --method adapler`: train AdapLeR's Contribution
 * Predictors, thresholds and encoder jointly from a fine-tuned model (adapler-method.md
 * section 4), keeping the fastest epoch whose dev accuracy is within a point of the
 * fine-tuned model's. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "adapler.h"
#include "adapler_train.h"
#include "bert.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "flops.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"
#include "saliency.h"
#include "train_util.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler train --method adapler --init FINETUNED_DIR --dataset NAME --out DIR\n"
            "                     [--gamma G] [--phi P] [options] [dataset options]\n\n"
            "Train AdapLeR (Modarressi et al., ACL 2022) from a fine-tuned classifier: a Contribution\n"
            "Predictor before every layer, trained towards the fine-tuned model's gradient x input\n"
            "saliency (computed once and cached in FINETUNED_DIR, see `adapler saliency`), one learned\n"
            "threshold eta per layer, and the encoder, with soft token removal whose sharpness lambda\n"
            "rises from 10 to 1e5 over the epochs (log-linearly; 10, 100, ..., 1e5 for 5 epochs).\n"
            "Encoder and predictors minimise task loss + gamma * predictor loss (AdamW); the etas\n"
            "minimise task loss + phi * sum of soft lengths (Adam).  After every epoch the dev split\n"
            "is evaluated with hard removal; the fastest epoch (FLOPs) whose dev accuracy is within\n"
            "--tolerance of the fine-tuned model's is kept in DIR (the model, plus the predictors and\n"
            "etas as extra tensors, see engine/adapler.h), with DIR/train.json.  One JSON line on\n"
            "stdout at the end: dev_accuracy, finetuned_dev_accuracy, flops_speedup, layer_tokens (at the\n"
            "kept epoch's operating point, eta_scale), best_epoch, within_tolerance, seconds, tokens_per_s.\n\n"
            "  --gamma G        weight of the predictor loss (default 0.005; the reference: 0.005 for\n"
            "                   SST-2, 0.1 for AG News)\n"
            "  --phi P          weight of the length loss (default 0.0005; the reference: 0.0005 for\n"
            "                   SST-2, 0.1 for AG News); larger gives shorter sequences\n"
            "  --epochs E       (default 5)\n"
            "  --lr LR          peak learning rate of encoder and predictors (default 1e-4); 0 freezes\n"
            "                   the fine-tuned model (only predictors, at --cp-lr, and etas learn)\n"
            "  --cp-lr LR       peak learning rate of the predictors (default: --lr, as the reference;\n"
            "                   fresh predictors on a small train split learn faster with more)\n"
            "  --eta-lr LR      peak learning rate of the etas (default 5e-4)\n"
            "  --lambda A:B     soft-removal sharpness of the first and last epoch (default 10:1e5)\n"
            "  --tolerance T    accuracy the kept epoch may lose against the fine-tuned model (0.01)\n"
            "  --select-scales S,...  eta scales at which each epoch's dev split is scored (default 1,\n"
            "                   the reference's rule); the kept epoch is the one with the largest\n"
            "                   FLOPs speedup within --tolerance at any of them (the etas are saved as\n"
            "                   learned; train.json gives each epoch's points and the scale chosen)\n"
            "  --batch N        sequences per batch (default 32)\n"
            "  --max-len N      truncate to N pieces (default 128)\n"
            "  --dropout P      hidden dropout (default 0.1; attention dropout is off, as in the reference)\n"
            "  --warmup F, --wd WD, --clip C, --max-train N, --seed S, --threads T, --eval-batch N\n"
            "                   as for `adapler train`\n\n%s",
            DATASET_OPTS_HELP);
}

typedef struct {
    const char *init, *out;
    long epochs, batch, max_len, seed, threads, max_train, eval_batch;
    double gamma, phi, lr, cp_lr, eta_lr, lam0, lam1, tol, warmup, wd, clip, dropout;
    double scales[16];
    int n_scales;
} fit_args;

/* --select-scales: 1 to 16 values in (0, 100], comma-separated, each once */
static int parse_scales(fit_args *a, const char *v) {
    a->n_scales = 0;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !(x > 0) || x > 100 || (*end && *end != ',') || a->n_scales == 16) {
            fprintf(stderr, "train: --select-scales: expected 1 to 16 comma-separated numbers in (0, 100], got '%s'\n", v);
            return 2;
        }
        for (int k = 0; k < a->n_scales; k++)
            if (a->scales[k] == x) {
                fprintf(stderr, "train: --select-scales: %g is listed twice in '%s'\n", x, v);
                return 2;
            }
        a->scales[a->n_scales++] = x;
        p = *end ? end + 1 : end;
        if (*end && !*p) {
            fprintf(stderr, "train: --select-scales: trailing ',' in '%s'\n", v);
            return 2;
        }
    }
    if (!a->n_scales) {
        fprintf(stderr, "train: --select-scales: empty list\n");
        return 2;
    }
    return 0;
}

static int parse_args(fit_args *a, dataset_opts *dopt, int argc, char **argv) {
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
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 1;
        } else if (OPT("--method")) {
            if (strcmp(v, "adapler") != 0) {
                fprintf(stderr, "train: --method %s: this path trains adapler\n", v);
                return 2;
            }
        } else if (OPT("--init")) a->init = v;
        else if (OPT("--out")) a->out = v;
        else if (OPT("--gamma")) { if (!cli_parse_double("train", s, v, 0, 1e6, &a->gamma)) return 2; }
        else if (OPT("--phi")) { if (!cli_parse_double("train", s, v, 0, 1e6, &a->phi)) return 2; }
        else if (OPT("--epochs")) { if (!cli_parse_int("train", s, v, 1, 1000, &a->epochs)) return 2; }
        else if (OPT("--lr")) { if (!cli_parse_double("train", s, v, 0, 1, &a->lr)) return 2; }
        else if (OPT("--eta-lr")) { if (!cli_parse_double("train", s, v, 0, 1, &a->eta_lr)) return 2; }
        else if (OPT("--cp-lr")) { if (!cli_parse_double("train", s, v, 0, 1, &a->cp_lr)) return 2; }
        else if (OPT("--tolerance")) { if (!cli_parse_double("train", s, v, 0, 1, &a->tol)) return 2; }
        else if (OPT("--select-scales")) {
            if (parse_scales(a, v) != 0) return 2;
        }
        else if (OPT("--batch")) { if (!cli_parse_int("train", s, v, 1, 1 << 20, &a->batch)) return 2; }
        else if (OPT("--max-len")) { if (!cli_parse_int("train", s, v, 2, 512, &a->max_len)) return 2; }
        else if (OPT("--seed")) { if (!cli_parse_int("train", s, v, 0, 1L << 62, &a->seed)) return 2; }
        else if (OPT("--threads")) { if (!cli_parse_int("train", s, v, 1, 1024, &a->threads)) return 2; }
        else if (OPT("--max-train")) { if (!cli_parse_int("train", s, v, 1, 1L << 40, &a->max_train)) return 2; }
        else if (OPT("--eval-batch")) { if (!cli_parse_int("train", s, v, 1, 1 << 16, &a->eval_batch)) return 2; }
        else if (OPT("--warmup")) { if (!cli_parse_double("train", s, v, 0, 1, &a->warmup)) return 2; }
        else if (OPT("--wd")) { if (!cli_parse_double("train", s, v, 0, 1, &a->wd)) return 2; }
        else if (OPT("--clip")) { if (!cli_parse_double("train", s, v, 0, 1e9, &a->clip)) return 2; }
        else if (OPT("--dropout")) { if (!cli_parse_double("train", s, v, 0, 0.95, &a->dropout)) return 2; }
        else if (OPT("--lambda")) {
            char extra;
            if (sscanf(v, "%lf:%lf%c", &a->lam0, &a->lam1, &extra) != 2 || !(a->lam0 > 0) || !(a->lam1 >= a->lam0) ||
                a->lam1 > 1e12) {
                fprintf(stderr, "train: --lambda: expected A:B with 0 < A <= B <= 1e12, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "train: unknown or incomplete option '%s' for --method adapler (try --method adapler --help)\n", s);
            return 2;
        }
#undef OPT
    }
    if (a->cp_lr < 0) a->cp_lr = a->lr;
    if (!a->init || !a->out || !dopt->name) {
        fprintf(stderr, "train: --method adapler needs --init FINETUNED_DIR, --dataset NAME and --out DIR\n");
        return 2;
    }
    return 0;
}

int cmd_train_adapler(int argc, char **argv) {
    fit_args a = {.epochs = 5, .batch = 32, .max_len = 128, .seed = 1, .eval_batch = 64, .gamma = 0.005,
                  .phi = 0.0005, .lr = 1e-4, .cp_lr = -1, .eta_lr = 5e-4, .lam0 = 10, .lam1 = 1e5, .tol = 0.01, .warmup = 0.06,
                  .wd = 0.01, .clip = 1.0, .dropout = 0.1, .scales = {1.0}, .n_scales = 1};
    dataset_opts dopt;
    dataset_opts_init(&dopt);
    int pr = parse_args(&a, &dopt, argc, argv);
    if (pr) return pr == 1 ? 0 : pr;
    adp_set_threads((int)a.threads);
    if (mkdir(a.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "train: %s: cannot create directory: %s\n", a.out, strerror(errno));
        return 1;
    }
    double t_start = adp_now();
    int rc = 1, have_m = 0, have_tr = 0, have_dev = 0, have_wp = 0, L = 0;
    bert_model m;
    st_file st;
    dataset train, dev;
    wordpiece wp;
    packed_tokens pk_tr = {0}, pk_dev = {0};
    float *sal = NULL, *garena = NULL, *best_copy = NULL, *best_cp = NULL;
    size_t *sel = NULL, *bidx = NULL;
    int *lengths = NULL;
    char *history = strdupCheck("");
    adapler_weights aw = {0}, ag = {0};
    adapler_train_state ts;
    adapler_train_state_init(&ts);
    bert_train_ctx tc;
    bert_train_ctx_init(&tc);
    adamw opt_a = {0}, opt_b = {0};
    int have_opt = 0;
    bert_weights gw = {0};
    train_batch fb = {0};
    float *probs = NULL, *lossv = NULL, *dlogits = NULL;
    double *ltok = NULL, *best_ltok = NULL, *best_any_ltok = NULL, *sel_ltok = NULL, *tmp_ltok = NULL;

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

    /* the fine-tuned model's dev accuracy: the reference for checkpoint selection */
    ltok = mallocCheck(sizeof(double) * (size_t)L);
    train_dev_scores ft = {.layer_tokens = ltok};
    if (train_evaluate(&ft, &m, &pk_dev, NULL, (int)a.eval_batch) != ADP_OK) goto done;
    fprintf(stderr, "train: fine-tuned model %s: dev accuracy %.4f\n", a.init, ft.acc);

    /* saliency targets of the train split (cached in the fine-tuned model's directory) */
    {
        saliency_key key = {.dataset = train.name, .split = "train", .cls = "gold", .max_len = a.max_len};
        char path[4096];
        if (saliency_key_model(&key, a.init) != ADP_OK) goto done;
        saliency_cache_path(path, sizeof path, a.init, train.name, "train", a.max_len);
        int computed = 0;
        double t0 = adp_now();
        if (saliency_cached(&sal, &computed, path, &key, &m, &pk_tr, pk_tr.labels, 32, 1) != ADP_OK) goto done;
        fprintf(stderr, "train: saliency targets %s (%s, %.1f s)\n", path, computed ? "computed" : "cached",
                adp_now() - t0);
    }

    /* predictors, optimizers */
    adapler_weights_alloc(&aw, L, m.cfg.hidden);
    adapler_weights_init_random(&aw, (uint64_t)a.seed + 17);
    adapler_weights_alloc(&ag, L, m.cfg.hidden);
    garena = alignedCheck(sizeof(float) * m.n_params);
    memset(garena, 0, sizeof(float) * m.n_params);
    bert_weights_point(&gw, &m.cfg, garena);
    adamw_init(&opt_a, 0.9f, 0.999f, 1e-12f, (float)a.wd);
    /* --lr 0 freezes the encoder (and pooler and classifier): the fine-tuned model stays as
       it is, only predictors and etas learn, so what the dev score loses is pruning's alone.
       The encoder's gradients are then not computed and the predictors' rate is the base. */
    const int frozen = !(a.lr > 0);
    if (!frozen) adamw_add_bert(&opt_a, &m, garena, 0);
    for (int l = 0; l < L; l++) {
        char name[64];
        snprintf(name, sizeof name, "adapler.predictor.%d.dense1.weight", l);
        adamw_add(&opt_a, name, aw.cp[l].w1, ag.cp[l].w1, (size_t)ADAPLER_CP_DIM * m.cfg.hidden, 0);
        snprintf(name, sizeof name, "adapler.predictor.%d.dense1.bias", l);
        adamw_add(&opt_a, name, aw.cp[l].b1, ag.cp[l].b1, ADAPLER_CP_DIM, 1);
        snprintf(name, sizeof name, "adapler.predictor.%d.dense2.weight", l);
        adamw_add(&opt_a, name, aw.cp[l].w2, ag.cp[l].w2, ADAPLER_CP_DIM, 0);
        snprintf(name, sizeof name, "adapler.predictor.%d.dense2.bias", l);
        adamw_add(&opt_a, name, aw.cp[l].b2, ag.cp[l].b2, 1, 1);
    }
    if (!frozen) adamw_set_lr_scale(&opt_a, "adapler.predictor.", (float)(a.cp_lr / a.lr));
    adamw_init(&opt_b, 0.9f, 0.999f, 1e-12f, 0.0f);
    adamw_add(&opt_b, "adapler.eta", aw.eta, ag.eta, (size_t)L, 1);
    adamw_ready(&opt_a), adamw_ready(&opt_b);
    have_opt = 1;

    /* the training subset and its batches */
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
    lengths = mallocCheck(sizeof(int) * (n_sel ? n_sel : 1));
    for (size_t i = 0; i < n_sel; i++) lengths[i] = (int)(pk_tr.seq_off[sel[i] + 1] - pk_tr.seq_off[sel[i]]);
    const long steps_per_epoch = (long)((n_sel + (size_t)a.batch - 1) / (size_t)a.batch);
    const long total = steps_per_epoch * a.epochs, warm = (long)floor(a.warmup * (double)total + 0.5);
    fprintf(stderr,
            "train: adapler on %s, %zu examples, %ld epochs x %ld steps of %ld; gamma %g phi %g; lr %g, predictor lr %g, eta lr %g; "
            "lambda %g..%g; model L%d H%d; %d threads\n",
            train.name, n_sel, a.epochs, steps_per_epoch, a.batch, a.gamma, a.phi, a.lr, a.cp_lr, a.eta_lr, a.lam0, a.lam1, L,
            m.cfg.hidden, adp_get_threads());

    const int C = m.cfg.num_labels;
    probs = mallocCheck(sizeof(float) * (size_t)a.batch * C);
    lossv = mallocCheck(sizeof(float) * (size_t)a.batch);
    dlogits = mallocCheck(sizeof(float) * (size_t)a.batch * C);
    bidx = mallocCheck(sizeof(size_t) * (size_t)a.batch);
    best_copy = mallocCheck(sizeof(float) * m.n_params);
    best_cp = mallocCheck(sizeof(float) * aw.n_params);
    ts.w = &aw, ts.g = &ag, ts.gamma = (float)a.gamma, ts.phi = (float)a.phi;
    bert_train_opts o = {.hidden_dropout = (float)a.dropout, .attn_dropout = 0.0f,
                         .layer_input = adapler_train_layer_input, .layer_input_grad = adapler_train_layer_grad,
                         .user = &ts};
    progress pg;
    progress_init(&pg, total);
    double best_speed = 0, best_acc_any = -1, t_train = 0, best_scale = 1.0;
    int best_epoch = 0, best_any_epoch = 0, saved_within = 0;
    train_dev_scores best = {0}, best_any = {0};
    best_ltok = callocCheck((size_t)L, sizeof(double)), best_any_ltok = callocCheck((size_t)L, sizeof(double));
    sel_ltok = callocCheck((size_t)L, sizeof(double)), tmp_ltok = callocCheck((size_t)L, sizeof(double));
    size_t tokens_done = 0;
    long step = 0;
    bert_model_unpack(&m);
    for (int ep = 1; ep <= a.epochs; ep++) {
        ts.lambda = (float)(a.epochs > 1 ? a.lam0 * pow(a.lam1 / a.lam0, (double)(ep - 1) / (a.epochs - 1)) : a.lam1);
        batch_plan plan;
        batch_plan_make(&plan, lengths, n_sel, (int)a.batch, 0, train_mix_seed((uint64_t)a.seed, (uint64_t)ep));
        double sum_task = 0, sum_cp = 0, sum_len = 0, run = 0, t_ep = adp_now();
        for (size_t bi = 0; bi < plan.n_batches; bi++, step++) {
            size_t n = plan.boff[bi + 1] - plan.boff[bi];
            for (size_t i = 0; i < n; i++) bidx[i] = sel[plan.order[plan.boff[bi] + i]];
            bert_batch b;
            train_batch_fill(&fb, &b, &pk_tr, sal, bidx, n);
            ts.saliency = fb.extra;
            o.seed = train_mix_seed((uint64_t)a.seed + 1, (uint64_t)step);
            if (bert_train_forward(&tc, &m, &b, &o) != ADP_OK) {
                batch_plan_free(&plan);
                goto done;
            }
            softmax_xent_forward(lossv, probs, tc.logits, fb.labels, (int)n, C);
            memset(dlogits, 0, sizeof(float) * n * C);
            softmax_xent_backward(dlogits, probs, fb.labels, 1.0f / (float)n, (int)n, C);
            double task = 0;
            for (size_t s = 0; s < n; s++) task += lossv[s] / n;
            grad_zero(&opt_a), grad_zero(&opt_b);
            ts.channel = 0;
            if (bert_train_backward(&tc, &m, frozen ? NULL : &gw, dlogits, NULL) != ADP_OK) {
                batch_plan_free(&plan);
                goto done;
            }
            ts.channel = 1;
            if (bert_train_backward(&tc, &m, NULL, dlogits, NULL) != ADP_OK) {
                batch_plan_free(&plan);
                goto done;
            }
            float lr = (float)lr_linear_schedule(frozen ? a.cp_lr : a.lr, step, warm, total);
            float elr = (float)lr_linear_schedule(a.eta_lr, step, warm, total);
            grad_clip(&opt_a, a.clip);
            adamw_step(&opt_a, lr);
            grad_clip(&opt_b, a.clip);
            adamw_step(&opt_b, elr);
            for (int l = 0; l < L; l++) aw.eta[l] = ADP_MIN(ADP_MAX(aw.eta[l], ADAPLER_ETA_MIN), ADAPLER_ETA_MAX);
            if (!isfinite(task) || !isfinite(ts.loss_cp)) {
                adp_seterr("epoch %d step %zu: the loss is not finite (task %g, predictor %g); lower --lr?", ep, bi, task,
                           ts.loss_cp);
                batch_plan_free(&plan);
                goto done;
            }
            sum_task += task, sum_cp += ts.loss_cp, sum_len += ts.loss_len;
            run = bi == 0 ? task : 0.98 * run + 0.02 * task;
            tokens_done += (size_t)b.off[b.n_seq];
            double el = t_train + adp_now() - t_ep;
            progress_show(&pg, "adapler", ep, (int)a.epochs, step + 1, run, tokens_done / (el > 0 ? el : 1));
        }
        t_train += adp_now() - t_ep;
        size_t nb = plan.n_batches ? plan.n_batches : 1;
        batch_plan_free(&plan);

        /* dev with hard removal, at the learned etas (scale 1, reported) and at every
         * --select-scales value: the epoch's operating point is its fastest within tolerance */
        bert_model_pack(&m);
        adapler_weights_pack(&aw);
        train_dev_scores d = {0}, d_sel = {0};
        double sel_speed = 0, sel_scale = 0;
        char curve[1024];
        int ck = 0, erc = ADP_OK;
        curve[0] = 0;
        for (int k = -1; k < a.n_scales && erc == ADP_OK; k++) {
            double sc = k < 0 ? 1.0 : a.scales[k];
            if (k >= 0 && sc == 1.0) { /* scored already */
                if (d.acc >= ft.acc - a.tol - 1e-12 && d.flops_dense / d.flops > sel_speed)
                    sel_speed = d.flops_dense / d.flops, sel_scale = 1.0, d_sel = d, memcpy(sel_ltok, ltok, sizeof(double) * (size_t)L);
                continue;
            }
            prune_strategy ps;
            adapler_strategy_create(&ps, &aw, sc, NULL);
            train_dev_scores e = {.layer_tokens = k < 0 ? ltok : tmp_ltok};
            erc = train_evaluate(&e, &m, &pk_dev, &ps, (int)a.eval_batch);
            ps.destroy(&ps);
            if (erc != ADP_OK) break;
            if (k < 0) {
                d = e;
                continue;
            }
            double sp = e.flops_dense / e.flops;
            if (ck < (int)sizeof curve - 96)
                ck += snprintf(curve + ck, sizeof curve - ck, "%s{\"eta_scale\": %g, \"dev_accuracy\": %.6f, \"flops_speedup\": %.6f}",
                               ck ? ", " : "", sc, e.acc, sp);
            if (e.acc >= ft.acc - a.tol - 1e-12 && sp > sel_speed)
                sel_speed = sp, sel_scale = sc, d_sel = e, memcpy(sel_ltok, tmp_ltok, sizeof(double) * (size_t)L);
        }
        bert_model_unpack(&m);
        adapler_weights_unpack(&aw);
        if (erc != ADP_OK) goto done;
        double speed = d.flops_dense / d.flops;
        int keep = sel_speed > 0 && sel_speed > best_speed;
        if (keep) {
            best_speed = sel_speed, best_epoch = ep, best = d_sel, best_scale = sel_scale, saved_within = 1;
            memcpy(best_ltok, sel_ltok, sizeof(double) * (size_t)L);
            bert_extra_tensor *ex;
            int ne = adapler_weights_extra(&aw, &ex);
            int src = bert_model_save(&m, a.out, ex, ne, m.vocab_path);
            free(ex);
            if (src != ADP_OK) goto done;
        }
        if (d.acc > best_acc_any) { /* fallback if no epoch is within tolerance (at scale 1) */
            best_acc_any = d.acc, best_any_epoch = ep, best_any = d;
            memcpy(best_any_ltok, ltok, sizeof(double) * (size_t)L);
            memcpy(best_copy, m.arena, sizeof(float) * m.n_params);
            memcpy(best_cp, aw.arena, sizeof(float) * aw.n_params);
        }
        progress_clear(&pg);
        fprintf(stderr,
                "train: epoch %d (lambda %g): task loss %.4f, predictor loss %.4f, soft length %.2f; dev accuracy %.4f "
                "(fine-tuned %.4f), FLOPs speedup %.3fx",
                ep, ts.lambda, sum_task / nb, sum_cp / nb, sum_len / nb / L, d.acc, ft.acc, speed);
        if (a.n_scales > 1 || a.scales[0] != 1.0) {
            if (sel_speed > 0)
                fprintf(stderr, "; fastest within tolerance: %.4f at %.3fx (eta scale %g)", d_sel.acc, sel_speed, sel_scale);
            else
                fprintf(stderr, "; no scale within tolerance");
        }
        fprintf(stderr, "%s\n", keep ? ": fastest so far, saved" : "");
        char item[2048];
        int k = snprintf(item, sizeof item,
                         "%s{\"epoch\": %d, \"lambda\": %g, \"task_loss\": %.6f, \"predictor_loss\": %.6f, "
                         "\"mean_soft_length\": %.4f, \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f, "
                         "\"flops_speedup\": %.6f, \"select\": [%s], \"eta\": [",
                         ep > 1 ? ", " : "", ep, ts.lambda, sum_task / nb, sum_cp / nb, sum_len / nb / L, d.acc, d.f1,
                         speed, curve);
        for (int l = 0; l < L && k < (int)sizeof item - 32; l++) k += snprintf(item + k, sizeof item - k, "%s%.5f", l ? ", " : "", aw.eta[l]);
        snprintf(item + k, sizeof item - k, "]}");
        history = reallocCheck(history, strlen(history) + strlen(item) + 1);
        strcat(history, item);
    }
    if (!saved_within) { /* nothing within tolerance: keep the most accurate epoch, and say so */
        memcpy(m.arena, best_copy, sizeof(float) * m.n_params);
        memcpy(aw.arena, best_cp, sizeof(float) * aw.n_params);
        best = best_any, best_epoch = best_any_epoch;
        memcpy(best_ltok, best_any_ltok, sizeof(double) * (size_t)L);
        bert_extra_tensor *ex;
        int ne = adapler_weights_extra(&aw, &ex);
        int src = bert_model_save(&m, a.out, ex, ne, m.vocab_path);
        free(ex);
        if (src != ADP_OK) goto done;
        fprintf(stderr, "train: no epoch within %.3f of the fine-tuned accuracy; kept the most accurate (epoch %d)\n",
                a.tol, best_epoch);
    }
    {
        /* the etas of the kept epoch are in the saved file; report them from it */
        char summary[8192];
        int k = snprintf(summary, sizeof summary,
                         "{\"dataset\": \"%s\", \"method\": \"adapler\", \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f, "
                         "\"finetuned_dev_accuracy\": %.6f, \"flops_speedup\": %.6f, \"within_tolerance\": %s, "
                         "\"best_epoch\": %d, \"eta_scale\": %g, \"epochs\": %ld, \"gamma\": %g, \"phi\": %g, "
                         "\"layer_tokens\": [",
                         train.name, best.acc, best.f1, ft.acc, best.flops > 0 ? best.flops_dense / best.flops : 0.0,
                         saved_within ? "true" : "false", best_epoch, saved_within ? best_scale : 1.0, a.epochs, a.gamma,
                         a.phi);
        for (int l = 0; l < L; l++) k += snprintf(summary + k, sizeof summary - k, "%s%.4f", l ? ", " : "", best_ltok[l]);
        k += snprintf(summary + k, sizeof summary - k,
                      "], \"seconds\": %.1f, \"train_seconds\": %.1f, \"tokens_per_s\": %.1f, \"init\": \"%s\", "
                      "\"lr\": %g, \"cp_lr\": %g, \"eta_lr\": %g, \"batch\": %ld, \"max_len\": %ld, \"seed\": %ld, \"threads\": %d}",
                      adp_now() - t_start, t_train, tokens_done / (t_train > 0 ? t_train : 1), a.init, a.lr, a.cp_lr, a.eta_lr,
                      a.batch, a.max_len, a.seed, adp_get_threads());
        printf("%s\n", summary);
        fflush(stdout);
        size_t len = strlen(summary) + strlen(history) + 64;
        char *full = mallocCheck(len), path[4096];
        snprintf(full, len, "%.*s, \"history\": [%s]}\n", (int)strlen(summary) - 1, summary, history);
        snprintf(path, sizeof path, "%s/train.json", a.out);
        int wrc = adp_write_file_atomic(path, full, strlen(full));
        free(full);
        if (wrc != ADP_OK) goto done;
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "\ntrain: %s\n", adp_errmsg());
    free(history), free(sal), free(garena), free(best_copy), free(best_cp), free(sel), free(bidx), free(lengths);
    free(probs), free(lossv), free(dlogits), free(ltok), free(best_ltok), free(best_any_ltok), free(sel_ltok), free(tmp_ltok);
    train_batch_free(&fb);
    if (have_opt) adamw_free(&opt_a), adamw_free(&opt_b);
    bert_weights_free_layout(&gw);
    adapler_train_state_free(&ts);
    bert_train_ctx_free(&tc);
    if (aw.arena) adapler_weights_free(&aw);
    if (ag.arena) adapler_weights_free(&ag);
    packed_tokens_free(&pk_tr), packed_tokens_free(&pk_dev);
    if (have_wp) wordpiece_free(&wp);
    if (have_tr) dataset_free(&train);
    if (have_dev) dataset_free(&dev);
    if (have_m) bert_model_free(&m);
    return rc;
}

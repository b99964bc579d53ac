/* cmd_train.c: `adapler train`: fine-tune a sequence classifier on a dataset (from a
 * pretrained backbone or from scratch), keep the best dev checkpoint; `--bench` times
 * training steps on a random model instead. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "baselines/fit.h"
#include "bert_train.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "flops.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"
#include "train_util.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler train --dataset NAME --out DIR [--init DIR | --config NAME] [options] [dataset options]\n"
            "       adapler train --bench [--config NAME] [--batch B] [--seq N] [--threads T] [--min-time S]\n"
            "       adapler train --method adapler --init FINETUNED_DIR ...   (see adapler train --method adapler --help)\n"
            "       adapler train --method power|ltp --init FINETUNED_DIR ... (PoWER-BERT's retention search, LTP's\n"
            "                     thresholds, then re-training with hard removal; see --method power --help)\n\n"
            "Fine-tune BertForSequenceClassification on the train split of a dataset, evaluate on the dev\n"
            "split after every epoch and keep the best epoch (by dev accuracy) in DIR in Hugging Face layout\n"
            "(config.json with id2label, model.safetensors, vocab.txt) with DIR/train.json (settings and\n"
            "per-epoch scores).  Batches hold sequences of similar length, packed without padding.  Progress\n"
            "on stderr; one JSON line on stdout at the end: dev_accuracy, dev_macro_f1, best_epoch, epochs,\n"
            "seconds, tokens_per_s (training tokens per second of training, evaluation excluded).\n\n"
            "  --init DIR       start from this checkpoint (any HF BERT directory, e.g. one `adapler pretrain`\n"
            "                   wrote); a classifier with another label count, or none, is created fresh\n"
            "  --vocab FILE     vocabulary (default: the --init directory's vocab.txt; from scratch: learned\n"
            "                   from the train split, --vocab-size entries, written to DIR/vocab.txt)\n"
            "%s"
            "  --epochs E       (default 5)\n"
            "  --batch N        sequences per batch (default 32)\n"
            "  --max-len N      truncate to N pieces, [CLS]/[SEP] included (default 128)\n"
            "  --lr LR          peak learning rate (default 1e-4), linear warm-up over --warmup of the\n"
            "                   steps (default 0.06), then linear decay\n"
            "  --wd WD          AdamW weight decay (default 0.01; none on biases and LayerNorm)\n"
            "  --clip C         global gradient-norm clipping (default 1.0; 0 = none)\n"
            "  --dropout P      hidden and attention dropout (default: the config's, 0.1 for new models)\n"
            "  --max-train N    train on N examples (a seeded random subset) instead of all\n"
            "  --seed S         initialisation, batch order and dropout (default 1)\n"
            "  --threads T      OpenMP/OpenBLAS threads (default: $OMP_NUM_THREADS, else all cores); same seed and threads give\n"
            "                   the same model bit for bit\n"
            "  --vocab-size N   when learning a vocabulary (default 8000)\n"
            "  --eval-batch N   sequences per dev batch (default 64)\n"
            "  --bench          time forward + backward + AdamW steps on a random model of --config shape,\n"
            "                   B sequences of N tokens (defaults 32 x 128), vocabulary 16000; one JSON line\n"
            "                   with tokens/s, training GFLOP/s (3x the forward's FLOPs) and the measured\n"
            "                   sgemm peak of this machine\n\n%s",
            TRAIN_SHAPES_HELP, DATASET_OPTS_HELP);
}

typedef struct {
    const char *out, *config, *init, *vocab;
    int L, H, A, I;
    long epochs, max_train, seed, threads, batch, max_len, vocab_size, eval_batch, seq;
    double lr, warmup, wd, clip, dropout, min_time;
    int bench;
} train_args;

/* The model to fine-tune: from --init (classifier made fresh when absent or of another
 * size) or random with the given shape. */
static int build_model(bert_model *m, const train_args *a, int n_labels, int vocab_n, char **vocab_out) {
    if (a->init) {
        bert_model src;
        st_file st;
        if (bert_model_load(&src, a->init, BERT_LOAD_HEAD_OPTIONAL, &st) != ADP_OK) return ADP_ERR;
        int has_cls = bert_find_tensor(&st, "classifier.weight") != NULL;
        int has_pool = bert_find_tensor(&st, "bert.pooler.dense.weight") != NULL;
        st_close(&st);
        bert_config c;
        bert_config_copy(&c, &src.cfg);
        int fresh_cls = !has_cls || c.num_labels != n_labels;
        c.num_labels = n_labels;
        bert_model_alloc(m, &c);
        bert_config_free(&c);
        bert_model_init_random(m, (uint64_t)a->seed);
        bert_param *ps, *pd;
        int n = bert_param_list(&src.cfg, &src.w, &ps);
        int nd = bert_param_list(&m->cfg, &m->w, &pd);
        ASSERT(n == nd);
        for (int i = 0; i < n; i++) {
            if (ps[i].group == PARAM_CLASSIFIER && fresh_cls) continue;
            if (ps[i].group == PARAM_POOLER && !has_pool) continue;
            size_t numel = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
            memcpy(pd[i].ptr, ps[i].ptr, sizeof(float) * numel);
        }
        free(ps), free(pd);
        fprintf(stderr, "train: init from %s (%s%s)\n", a->init, fresh_cls ? "new classifier" : "its classifier",
                has_pool ? "" : ", new pooler");
        if (!a->vocab && !src.vocab_path) {
            bert_model_free(&src);
            bert_model_free(m);
            return adp_seterr("%s has no vocab.txt; pass --vocab", a->init);
        }
        *vocab_out = strdupCheck(a->vocab ? a->vocab : src.vocab_path);
        bert_model_free(&src);
    } else {
        bert_config c;
        bert_config_init(&c, vocab_n, a->H, a->L, a->A, a->I, 512, n_labels);
        if (bert_config_validate(&c, "model shape") != ADP_OK) return ADP_ERR;
        bert_model_alloc(m, &c);
        bert_model_init_random(m, (uint64_t)a->seed);
    }
    if (vocab_n > m->cfg.vocab_size) {
        int vs = m->cfg.vocab_size;
        bert_model_free(m);
        return adp_seterr("the vocabulary has %d entries, the model only %d embeddings", vocab_n, vs);
    }
    if (a->dropout >= 0) m->cfg.hidden_dropout = m->cfg.attn_dropout = (float)a->dropout;
    return ADP_OK;
}

/* One optimisation step on a batch: forward with dropout, mean cross-entropy over the
 * sequences, backward, clipping, AdamW.  Returns the batch's mean loss. */
typedef struct {
    bert_train_ctx ctx;
    float *garena, *probs, *lossv, *dlogits;
    size_t cap_seq;
    bert_weights g;
    adamw opt;
    double t_fwd, t_bwd, t_opt;
} trainer;

static int train_step(trainer *tr, bert_model *m, const bert_batch *b, const int32_t *labels, uint64_t step_seed,
                      float lr, double clip, double *loss_out) {
    const int n = b->n_seq, C = m->cfg.num_labels;
    if ((size_t)n > tr->cap_seq) {
        tr->cap_seq = (size_t)n;
        free(tr->probs), free(tr->lossv), free(tr->dlogits);
        tr->probs = mallocCheck(sizeof(float) * (size_t)n * C), tr->lossv = mallocCheck(sizeof(float) * (size_t)n);
        tr->dlogits = mallocCheck(sizeof(float) * (size_t)n * C);
    }
    bert_train_opts o = {.hidden_dropout = m->cfg.hidden_dropout, .attn_dropout = m->cfg.attn_dropout, .seed = step_seed};
    double t0 = adp_now();
    if (bert_train_forward(&tr->ctx, m, b, &o) != ADP_OK) return ADP_ERR;
    softmax_xent_forward(tr->lossv, tr->probs, tr->ctx.logits, labels, n, C);
    memset(tr->dlogits, 0, sizeof(float) * (size_t)n * C);
    softmax_xent_backward(tr->dlogits, tr->probs, labels, 1.0f / (float)n, n, C);
    double loss = 0;
    for (int s = 0; s < n; s++) loss += tr->lossv[s];
    *loss_out = loss / n;
    double t1 = adp_now();
    grad_zero(&tr->opt);
    if (bert_train_backward(&tr->ctx, m, &tr->g, tr->dlogits, NULL) != ADP_OK) return ADP_ERR;
    double t2 = adp_now();
    grad_clip(&tr->opt, clip);
    adamw_step(&tr->opt, lr);
    bert_model_pack(m); /* repack the projections: packed GEMMs with fused bias beat the repacking cost */
    double t3 = adp_now();
    tr->t_fwd += t1 - t0, tr->t_bwd += t2 - t1, tr->t_opt += t3 - t2;
    return ADP_OK;
}

static void trainer_init(trainer *tr, bert_model *m, const train_args *a) {
    memset(tr, 0, sizeof *tr);
    bert_train_ctx_init(&tr->ctx);
    tr->garena = alignedCheck(sizeof(float) * m->n_params);
    memset(tr->garena, 0, sizeof(float) * m->n_params);
    bert_weights_point(&tr->g, &m->cfg, tr->garena);
    adamw_init(&tr->opt, 0.9f, 0.999f, 1e-8f, (float)a->wd);
    adamw_add_bert(&tr->opt, m, tr->garena, 0);
    adamw_ready(&tr->opt);
}

static void trainer_free(trainer *tr) {
    bert_train_ctx_free(&tr->ctx);
    free(tr->garena), free(tr->probs), free(tr->lossv), free(tr->dlogits);
    bert_weights_free_layout(&tr->g);
    adamw_free(&tr->opt);
}

static int cmp_d(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return p < q ? -1 : p > q;
}

static int run_bench(const train_args *a) {
    bert_config c;
    bert_config_init(&c, 16000, a->H, a->L, a->A, a->I, 512, 2);
    if (bert_config_validate(&c, "model shape") != ADP_OK) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        return 2;
    }
    if (a->seq > 512) {
        fprintf(stderr, "train: --seq at most 512\n");
        return 2;
    }
    bert_model m;
    bert_model_alloc(&m, &c);
    bert_config_free(&c);
    bert_model_init_random(&m, 1); /* packed, and repacked after every step */
    const int B = (int)a->batch, N = (int)a->seq;
    int32_t *ids = mallocCheck(sizeof(int32_t) * (size_t)B * N), *labels = mallocCheck(sizeof(int32_t) * (size_t)B);
    int *off = mallocCheck(sizeof(int) * (size_t)(B + 1));
    adp_rng r;
    rng_seed(&r, 7);
    for (int s = 0; s <= B; s++) off[s] = s * N;
    for (int t = 0; t < B * N; t++) ids[t] = t % N == 0 ? 2 : 5 + (int32_t)rng_below(&r, 15995);
    for (int s = 0; s < B; s++) labels[s] = (int32_t)rng_below(&r, 2);
    bert_batch b = {.n_seq = B, .ids = ids, .types = NULL, .off = off};
    trainer tr;
    trainer_init(&tr, &m, a);
    double loss, times[4096];
    int k = 0, rc = 0;
    for (int i = 0; i < 2 && !rc; i++) rc = train_step(&tr, &m, &b, labels, (uint64_t)i, 1e-4f, 1.0, &loss);
    tr.t_fwd = tr.t_bwd = tr.t_opt = 0;
    double t_start = adp_now();
    while (!rc && k < 4096 && (k < 3 || adp_now() - t_start < a->min_time)) {
        double t0 = adp_now();
        rc = train_step(&tr, &m, &b, labels, (uint64_t)k + 2, 1e-4f, 1.0, &loss);
        times[k++] = adp_now() - t0;
    }
    if (rc) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        return 1;
    }
    double fwd = tr.t_fwd / k, bwd = tr.t_bwd / k, opt = tr.t_opt / k;
    qsort(times, (size_t)k, sizeof(double), cmp_d);
    double med = times[k / 2], flops = 3.0 * B * flops_dense(&m.cfg, N);
    double peak = train_sgemm_peak(2048, 1.0);
    printf("{\"what\": \"train_step\", \"layers\": %d, \"hidden\": %d, \"heads\": %d, \"inter\": %d, \"vocab\": %d, "
           "\"batch\": %d, \"seq\": %d, \"threads\": %d, \"steps\": %d, \"step_ms\": %.2f, \"fwd_ms\": %.2f, "
           "\"bwd_ms\": %.2f, \"opt_ms\": %.2f, \"tokens_per_s\": %.1f, \"train_gflops\": %.2f, "
           "\"sgemm_peak_gflops\": %.2f, \"pct_of_sgemm_peak\": %.1f, \"blas\": \"%s\"}\n",
           m.cfg.layers, m.cfg.hidden, m.cfg.heads, m.cfg.inter, m.cfg.vocab_size, B, N, adp_get_threads(), k, 1e3 * med,
           1e3 * fwd, 1e3 * bwd, 1e3 * opt, B * N / med, flops / med / 1e9, peak, 100.0 * flops / med / 1e9 / peak,
           adp_blas_info());
    trainer_free(&tr);
    bert_model_free(&m);
    free(ids), free(labels), free(off);
    return 0;
}

/* Pick a seeded random subset of max_train examples, in their original order. */
static void subset(packed_tokens *pk, size_t max_train, uint64_t seed, size_t **idx_out, size_t *n_out) {
    size_t n = pk->n_seq;
    size_t *idx = mallocCheck(sizeof(size_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) idx[i] = i;
    if (max_train && max_train < n) {
        adp_rng r;
        rng_seed(&r, seed ^ 0x5EEDull);
        for (size_t i = 0; i < max_train; i++) { /* partial Fisher-Yates */
            size_t j = i + (size_t)rng_below(&r, n - i);
            size_t t = idx[i];
            idx[i] = idx[j], idx[j] = t;
        }
        n = max_train;
        for (size_t i = 1; i < n; i++) /* back to file order */
            for (size_t j = i; j > 0 && idx[j] < idx[j - 1]; j--) {
                size_t t = idx[j];
                idx[j] = idx[j - 1], idx[j - 1] = t;
            }
    }
    *idx_out = idx;
    *n_out = n;
}

int cmd_train(int argc, char **argv) {
    /* --method selects what is trained: the plain classifier (none), AdapLeR, or the two
     * baselines that train (PoWER-BERT's retention, LTP's thresholds: baselines/fit.c) */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--method")) {
            if (!strcmp(argv[i + 1], "adapler")) return cmd_train_adapler(argc, argv);
            if (!strcmp(argv[i + 1], "power")) return cmd_train_power(argc, argv);
            if (!strcmp(argv[i + 1], "ltp")) return cmd_train_ltp(argc, argv);
            if (strcmp(argv[i + 1], "none") != 0) {
                fprintf(stderr, "train: --method %s: expected none, adapler, power or ltp\n", argv[i + 1]);
                return 2;
            }
            memmove(argv + i, argv + i + 2, sizeof(char *) * (size_t)(argc - i - 2));
            argc -= 2, i--;
        }
    train_args a = {.config = "small", .epochs = 5, .seed = 1, .batch = 32, .max_len = 128, .vocab_size = 8000,
                    .eval_batch = 64, .seq = 128, .lr = 1e-4, .warmup = 0.06, .wd = 0.01, .clip = 1.0, .dropout = -1,
                    .min_time = 5.0};
    long dims[4] = {0, 0, 0, 0};
    dataset_opts dopt;
    dataset_opts_init(&dopt);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "train: %s\n", adp_errmsg());
            return 2;
        }
        if (r) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(s, name) && v && (i++, 1))
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--bench")) {
            a.bench = 1;
        } else if (OPT("--out")) {
            a.out = v;
        } else if (OPT("--config")) {
            a.config = v;
        } else if (OPT("--init")) {
            a.init = v;
        } else if (OPT("--vocab")) {
            a.vocab = v;
        } else if (OPT("--layers")) {
            if (!cli_parse_int("train", s, v, 1, 127, &dims[0])) return 2;
        } else if (OPT("--hidden")) {
            if (!cli_parse_int("train", s, v, 1, 65536, &dims[1])) return 2;
        } else if (OPT("--heads")) {
            if (!cli_parse_int("train", s, v, 1, 1024, &dims[2])) return 2;
        } else if (OPT("--inter")) {
            if (!cli_parse_int("train", s, v, 1, 262144, &dims[3])) return 2;
        } else if (OPT("--epochs")) {
            if (!cli_parse_int("train", s, v, 1, 1000, &a.epochs)) return 2;
        } else if (OPT("--max-train")) {
            if (!cli_parse_int("train", s, v, 1, 1L << 40, &a.max_train)) return 2;
        } else if (OPT("--seed")) {
            if (!cli_parse_int("train", s, v, 0, 1L << 62, &a.seed)) return 2;
        } else if (OPT("--threads")) {
            if (!cli_parse_int("train", s, v, 1, 1024, &a.threads)) return 2;
        } else if (OPT("--batch")) {
            if (!cli_parse_int("train", s, v, 1, 1 << 20, &a.batch)) return 2;
        } else if (OPT("--seq")) {
            if (!cli_parse_int("train", s, v, 1, 512, &a.seq)) return 2;
        } else if (OPT("--max-len")) {
            if (!cli_parse_int("train", s, v, 2, 512, &a.max_len)) return 2;
        } else if (OPT("--vocab-size")) {
            if (!cli_parse_int("train", s, v, 100, 1 << 22, &a.vocab_size)) return 2;
        } else if (OPT("--eval-batch")) {
            if (!cli_parse_int("train", s, v, 1, 1 << 16, &a.eval_batch)) return 2;
        } else if (OPT("--lr")) {
            if (!cli_parse_double("train", s, v, 0, 1, &a.lr)) return 2;
        } else if (OPT("--warmup")) {
            if (!cli_parse_double("train", s, v, 0, 1, &a.warmup)) return 2;
        } else if (OPT("--wd")) {
            if (!cli_parse_double("train", s, v, 0, 1, &a.wd)) return 2;
        } else if (OPT("--clip")) {
            if (!cli_parse_double("train", s, v, 0, 1e9, &a.clip)) return 2;
        } else if (OPT("--dropout")) {
            if (!cli_parse_double("train", s, v, 0, 0.95, &a.dropout)) return 2;
        } else if (OPT("--min-time")) {
            if (!cli_parse_double("train", s, v, 0, 3600, &a.min_time)) return 2;
        } else {
            fprintf(stderr, "train: unknown or incomplete option '%s' (try --help)\n", s);
            return 2;
        }
#undef OPT
    }
    if (train_shape_by_name(a.config, &a.L, &a.H, &a.A, &a.I) != ADP_OK) {
        fprintf(stderr, "train: --config: %s\n", adp_errmsg());
        return 2;
    }
    if (dims[0]) a.L = (int)dims[0];
    if (dims[1]) a.H = (int)dims[1];
    if (dims[2]) a.A = (int)dims[2];
    if (dims[3]) a.I = (int)dims[3];
    adp_set_threads((int)a.threads);
    if (a.bench) return run_bench(&a);
    if (!dopt.name || !a.out) {
        fprintf(stderr, "train: --dataset NAME and --out DIR are required (try --help)\n");
        return 2;
    }
    if (mkdir(a.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "train: %s: cannot create directory: %s\n", a.out, strerror(errno));
        return 1;
    }
    const double t_start = adp_now(); /* "seconds": the whole run, data loading included */

    /* data */
    dataset train, dev;
    if (dataset_load(&train, &dopt, SPLIT_TRAIN) != ADP_OK) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        return 1;
    }
    if (dataset_load(&dev, &dopt, SPLIT_DEV) != ADP_OK) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        dataset_free(&train);
        return 1;
    }
    const int C = train.n_labels;
    char vocab_path[4096];
    int rc = 0;
    if (a.vocab) {
        snprintf(vocab_path, sizeof vocab_path, "%s", a.vocab);
    } else if (a.init) {
        snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", a.init);
    } else {
        snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", a.out);
        const dataset *dl[1] = {&train};
        double t0 = adp_now();
        if (train_learn_vocab(dl, 1, (size_t)a.vocab_size, vocab_path) != ADP_OK) {
            fprintf(stderr, "train: %s\n", adp_errmsg());
            rc = 1;
        } else
            fprintf(stderr, "train: learned a %ld-entry vocabulary from %s train in %.1f s -> %s\n", a.vocab_size,
                    dopt.name, adp_now() - t0, vocab_path);
    }
    wordpiece wp;
    int wp_loaded = 0, vocab_n = 0;
    if (!rc && wordpiece_load(&wp, vocab_path, 1) != ADP_OK) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        rc = 1;
    }
    wp_loaded = !rc;
    if (wp_loaded) vocab_n = (int)wp.n;
    packed_tokens pk_train = {0}, pk_dev = {0};
    if (!rc && (dataset_pack(&pk_train, &train, &wp, (size_t)a.max_len) != ADP_OK ||
                dataset_pack(&pk_dev, &dev, &wp, (size_t)a.max_len) != ADP_OK)) {
        fprintf(stderr, "train: %s\n", adp_errmsg());
        rc = 1;
    }
    bert_model m;
    char *model_vocab = NULL;
    int have_model = 0;
    if (!rc) {
        if (build_model(&m, &a, C, vocab_n, &model_vocab) != ADP_OK) {
            fprintf(stderr, "train: %s\n", adp_errmsg());
            rc = 1;
        } else
            have_model = 1;
    }
    if (rc) {
        if (wp_loaded) wordpiece_free(&wp);
        packed_tokens_free(&pk_train), packed_tokens_free(&pk_dev);
        dataset_free(&train), dataset_free(&dev);
        return rc;
    }
    for (int k = 0; k < C && k < BERT_MAX_LABELS; k++) {
        free(m.cfg.labels[k]);
        m.cfg.labels[k] = strdupCheck(train.label_names[k]);
    }
    size_t *sel, n_sel;
    subset(&pk_train, (size_t)a.max_train, (uint64_t)a.seed, &sel, &n_sel);
    int *lengths = mallocCheck(sizeof(int) * (n_sel ? n_sel : 1));
    size_t train_tokens = 0;
    for (size_t i = 0; i < n_sel; i++) {
        lengths[i] = (int)(pk_train.seq_off[sel[i] + 1] - pk_train.seq_off[sel[i]]);
        train_tokens += (size_t)lengths[i];
    }
    const long steps_per_epoch = (long)((n_sel + (size_t)a.batch - 1) / (size_t)a.batch);
    const long total = steps_per_epoch * a.epochs, warm = (long)floor(a.warmup * (double)total + 0.5);
    fprintf(stderr,
            "train: %s, %zu train examples (%zu tokens, %zu truncated at %ld), %zu dev; model L%d H%d A%d I%d V%d C%d "
            "(%zu parameters); %ld epochs x %ld steps of %ld, lr %g (warm-up %ld), wd %g, clip %g, dropout %g; "
            "seed %ld; %d threads; %s\n",
            dopt.name, n_sel, train_tokens, pk_train.n_truncated, a.max_len, pk_dev.n_seq, m.cfg.layers, m.cfg.hidden,
            m.cfg.heads, m.cfg.inter, m.cfg.vocab_size, C, m.n_params, a.epochs, steps_per_epoch, a.batch, a.lr, warm,
            a.wd, a.clip, m.cfg.hidden_dropout, a.seed, adp_get_threads(), adp_blas_info());

    trainer tr;
    trainer_init(&tr, &m, &a);
    bert_model_pack(&m); /* kept current: train_step repacks after every update */
    train_batch bb = {0};
    size_t *bidx = mallocCheck(sizeof(size_t) * (size_t)a.batch);
    progress pg;
    progress_init(&pg, total);
    double best_acc = -1, best_f1 = 0, t_train = 0;
    long step = 0;
    int best_epoch = 0;
    size_t tokens_done = 0;
    char *history = strdupCheck("");
    for (int ep = 1; ep <= a.epochs && !rc; ep++) {
        batch_plan plan;
        batch_plan_make(&plan, lengths, n_sel, (int)a.batch, 0, train_mix_seed((uint64_t)a.seed, (uint64_t)ep));
        double loss_sum = 0, run_loss = 0, t_ep = adp_now();
        for (size_t bi = 0; bi < plan.n_batches && !rc; bi++, step++) {
            size_t n = plan.boff[bi + 1] - plan.boff[bi];
            for (size_t i = 0; i < n; i++) bidx[i] = sel[plan.order[plan.boff[bi] + i]];
            bert_batch b;
            train_batch_fill(&bb, &b, &pk_train, NULL, bidx, n);
            double loss;
            float lr = (float)lr_linear_schedule(a.lr, step, warm, total);
            if (train_step(&tr, &m, &b, bb.labels, train_mix_seed((uint64_t)a.seed + 1, (uint64_t)step), lr, a.clip,
                           &loss) != ADP_OK) {
                fprintf(stderr, "\ntrain: epoch %d step %zu: %s\n", ep, bi, adp_errmsg());
                rc = 1;
                break;
            }
            if (!isfinite(loss)) {
                fprintf(stderr, "\ntrain: epoch %d step %zu: the loss is %g; lower --lr?\n", ep, bi, loss);
                rc = 1;
                break;
            }
            loss_sum += loss;
            run_loss = bi == 0 ? loss : 0.98 * run_loss + 0.02 * loss;
            tokens_done += (size_t)b.off[b.n_seq];
            double el = t_train + adp_now() - t_ep;
            progress_show(&pg, "train", ep, (int)a.epochs, step + 1, run_loss, tokens_done / (el > 0 ? el : 1));
        }
        t_train += adp_now() - t_ep;
        if (rc) {
            batch_plan_free(&plan);
            break;
        }
        double acc = 0, f1 = 0, t_ev = adp_now();
        train_dev_scores ds = {0};
        if (train_evaluate(&ds, &m, &pk_dev, NULL, (int)a.eval_batch) == ADP_OK) acc = ds.acc, f1 = ds.f1;
        else {
            fprintf(stderr, "\ntrain: dev evaluation: %s\n", adp_errmsg());
            rc = 1;
        }
        int best = !rc && acc > best_acc;
        if (best) {
            best_acc = acc, best_f1 = f1, best_epoch = ep;
            if (bert_model_save(&m, a.out, NULL, 0, model_vocab ? model_vocab : vocab_path) != ADP_OK) {
                fprintf(stderr, "\ntrain: saving: %s\n", adp_errmsg());
                rc = 1;
            }
        }
        progress_clear(&pg);
        double mean_loss = loss_sum / (double)(plan.n_batches ? plan.n_batches : 1);
        fprintf(stderr, "train: epoch %d: train loss %.4f, dev accuracy %.4f macro-F1 %.4f%s (%.0f s train, %.1f s dev)\n",
                ep, mean_loss, acc, f1, best ? ", best so far: saved" : "", t_ev - t_ep, adp_now() - t_ev);
        char item[256];
        snprintf(item, sizeof item, "%s{\"epoch\": %d, \"train_loss\": %.6f, \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f}",
                 ep > 1 ? ", " : "", ep, mean_loss, acc, f1);
        history = reallocCheck(history, strlen(history) + strlen(item) + 1);
        strcat(history, item);
        batch_plan_free(&plan);
    }
    double seconds = adp_now() - t_start;
    if (!rc) {
        char summary[8192], path[4096];
        snprintf(summary, sizeof summary,
                 "{\"dataset\": \"%s\", \"dev_accuracy\": %.6f, \"dev_macro_f1\": %.6f, \"best_epoch\": %d, \"epochs\": %ld, "
                 "\"seconds\": %.1f, \"train_seconds\": %.1f, \"tokens_per_s\": %.1f, \"train_examples\": %zu, "
                 "\"init\": \"%s\", \"layers\": %d, \"hidden\": %d, \"heads\": %d, \"inter\": %d, \"vocab\": %d, "
                 "\"lr\": %g, \"batch\": %ld, \"max_len\": %ld, \"seed\": %ld, \"threads\": %d, "
                 "\"fwd_s\": %.1f, \"bwd_s\": %.1f, \"opt_s\": %.1f}",
                 dopt.name, best_acc, best_f1, best_epoch, a.epochs, seconds, t_train,
                 (double)tokens_done / (t_train > 0 ? t_train : 1), n_sel, a.init ? a.init : "", m.cfg.layers,
                 m.cfg.hidden, m.cfg.heads, m.cfg.inter, m.cfg.vocab_size, a.lr, a.batch, a.max_len, a.seed,
                 adp_get_threads(), tr.t_fwd, tr.t_bwd, tr.t_opt);
        printf("%s\n", summary);
        fflush(stdout);
        size_t len = strlen(summary) + strlen(history) + 64;
        char *full = mallocCheck(len);
        snprintf(full, len, "%.*s, \"history\": [%s]}\n", (int)strlen(summary) - 1, summary, history);
        snprintf(path, sizeof path, "%s/train.json", a.out);
        if (adp_write_file_atomic(path, full, strlen(full)) != ADP_OK) {
            fprintf(stderr, "train: %s\n", adp_errmsg());
            rc = 1;
        }
        free(full);
    }
    free(history), free(bidx), free(sel), free(lengths), free(model_vocab);
    train_batch_free(&bb);
    trainer_free(&tr);
    if (have_model) bert_model_free(&m);
    wordpiece_free(&wp);
    packed_tokens_free(&pk_train), packed_tokens_free(&pk_dev);
    dataset_free(&train), dataset_free(&dev);
    return rc;
}

/* cmd_pretrain.c: `adapler pretrain`: masked-language-model pretraining (BERT's MLM, no
 * next-sentence task) on the unlabeled text of the datasets' train splits. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "bert_train.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "mlm.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"
#include "train_util.h"
#include "wordpiece.h"

#define DEFAULT_DATASETS "sst2,agnews,hatexplain,eraser_movies,imdb"
/* random replacements are drawn from ids >= this: past [PAD] [UNK] [CLS] [SEP] [MASK], the first
 * entries of every vocabulary `adapler vocab` learns */
#define PRETRAIN_FIRST_PIECE 5

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler pretrain --out DIR [--config NAME] [--datasets LIST] [--epochs E] [options]\n\n"
            "Pretrain a BERT with the masked-language-model objective on the text of the train splits of\n"
            "the datasets (labels unused; dev and test text never seen).  Each text (and text pair) is\n"
            "WordPiece-encoded and cut into pieces of at most --max-len - 2, each one sequence\n"
            "[CLS] ... [SEP].  In every batch --mask-prob of the tokens (specials excepted) are chosen,\n"
            "afresh each epoch; of those 80%% become [MASK], 10%% a random token, 10%% stay; the loss is\n"
            "the mean cross-entropy of predicting them.  A seeded held-out 1%% of the sequences (at most\n"
            "2000) measures MLM loss and accuracy after each epoch.  DIR receives, after every epoch, the\n"
            "backbone in Hugging Face BertForMaskedLM layout: config.json, model.safetensors (embeddings,\n"
            "encoder, MLM head cls.predictions.*; the decoder is tied to the word embeddings; no pooler\n"
            "or classifier) and vocab.txt, plus pretrain.json (settings, per-epoch scores).  Progress on\n"
            "stderr; one JSON line on stdout at the end.\n\n"
            "  --datasets LIST  comma-separated dataset names (default " DEFAULT_DATASETS ")\n"
            "  --vocab FILE     vocabulary to use (default: learn one from the same text, --vocab-size\n"
            "                   entries, written to DIR/vocab.txt)\n"
            "  --vocab-size N   (default 16000)\n"
            "%s"
            "  --epochs E       (default 10)\n"
            "  --max-len N      longest sequence (default 512: every position embedding gets trained)\n"
            "  --batch-tokens N tokens per batch (default 8192; at most 256 sequences)\n"
            "  --lr LR          peak learning rate (default 5e-4), linear warm-up over --warmup of the steps\n"
            "                   (default 0.06), then linear decay\n"
            "  --wd WD          AdamW weight decay (default 0.01; none on biases and LayerNorm)\n"
            "  --clip C         global gradient-norm clipping (default 1.0)\n"
            "  --mask-prob P    (default 0.15)\n"
            "  --seed S         (default 1)\n"
            "  --threads T      OpenMP/OpenBLAS threads (default: $OMP_NUM_THREADS, else all cores)\n\n%s",
            TRAIN_SHAPES_HELP, DATASET_OPTS_HELP);
}

/* The corpus: sequences [CLS] pieces [SEP] back to back. */
typedef struct {
    int32_t *ids;
    size_t *off; /* (n + 1) */
    size_t n, n_tok, cap, cap_tok;
} corpus;

static void corpus_add(corpus *c, const int32_t *pieces, size_t n, int32_t cls, int32_t sep) {
    if (c->n + 1 >= c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4096;
        c->off = reallocCheck(c->off, sizeof(size_t) * c->cap);
    }
    if (c->n_tok + n + 2 > c->cap_tok) {
        while (c->n_tok + n + 2 > c->cap_tok) c->cap_tok = c->cap_tok ? 2 * c->cap_tok : 1 << 20;
        c->ids = reallocCheck(c->ids, sizeof(int32_t) * c->cap_tok);
    }
    if (c->n == 0) c->off[0] = 0;
    c->ids[c->n_tok++] = cls;
    memcpy(c->ids + c->n_tok, pieces, sizeof(int32_t) * n);
    c->n_tok += n;
    c->ids[c->n_tok++] = sep;
    c->off[++c->n] = c->n_tok;
}

/* Tokenize one text and add it as sequences of at most max_len. */
static int add_text(corpus *c, const wordpiece *wp, wp_encoding *enc, const char *text, size_t max_len) {
    if (wordpiece_tokenize(wp, enc, text, strlen(text)) != ADP_OK) return ADP_ERR;
    size_t chunk = max_len - 2;
    for (size_t i = 0; i < enc->n; i += chunk) corpus_add(c, enc->ids + i, ADP_MIN(chunk, enc->n - i), wp->cls_id, wp->sep_id);
    return ADP_OK;
}

/* Masking of one batch: ids_out (T) the input, rows/labels the masked positions. */
static int mask_batch(int32_t *ids_out, int *rows, int32_t *labels, const int32_t *ids, const int *off, int n_seq,
                      double prob, int32_t mask_id, int vocab, adp_rng *r) {
    int M = 0;
    for (int s = 0; s < n_seq; s++)
        for (int t = off[s]; t < off[s + 1]; t++) {
            ids_out[t] = ids[t];
            if (t == off[s] || t == off[s + 1] - 1) continue; /* [CLS], [SEP] */
            if (rng_uniform(r) >= prob) continue;
            rows[M] = t, labels[M++] = ids[t];
            double u = rng_uniform(r);
            if (u < 0.8)
                ids_out[t] = mask_id;
            else if (u < 0.9)
                ids_out[t] = PRETRAIN_FIRST_PIECE + (int32_t)rng_below(r, (uint64_t)(vocab - PRETRAIN_FIRST_PIECE));
        }
    return M;
}

typedef struct {
    bert_train_ctx ctx;
    mlm_ctx mc;
    float *garena, *harena, *hgrad, *d_out;
    size_t cap_out;
    bert_weights g;
    mlm_weights head, ghead;
    adamw opt;
    int32_t *ids_in, *labels;
    int *rows, *off;
    size_t cap_tok, cap_seq;
} pretrainer;

static void batch_reserve(pretrainer *p, size_t tok, size_t n_seq) {
    if (tok > p->cap_tok) {
        p->cap_tok = tok;
        free(p->ids_in), free(p->labels), free(p->rows);
        p->ids_in = mallocCheck(sizeof(int32_t) * tok), p->labels = mallocCheck(sizeof(int32_t) * tok);
        p->rows = mallocCheck(sizeof(int) * tok);
    }
    if (n_seq > p->cap_seq) {
        p->cap_seq = n_seq;
        free(p->off);
        p->off = mallocCheck(sizeof(int) * (n_seq + 1));
    }
}

/* Build batch b of the plan (sequences idx[0..n)) with its masking; returns M. */
static int make_batch(pretrainer *p, bert_batch *b, int32_t *raw, const corpus *c, const size_t *idx, size_t n,
                      double prob, int32_t mask_id, int vocab, uint64_t seed) {
    size_t tok = 0;
    for (size_t i = 0; i < n; i++) tok += c->off[idx[i] + 1] - c->off[idx[i]];
    batch_reserve(p, tok, n);
    size_t at = 0;
    p->off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = c->off[idx[i]], e = c->off[idx[i] + 1];
        memcpy(raw + at, c->ids + a, sizeof(int32_t) * (e - a));
        at += e - a;
        p->off[i + 1] = (int)at;
    }
    adp_rng r;
    rng_seed(&r, seed);
    int M = mask_batch(p->ids_in, p->rows, p->labels, raw, p->off, (int)n, prob, mask_id, vocab, &r);
    *b = (bert_batch){.n_seq = (int)n, .ids = p->ids_in, .types = NULL, .off = p->off};
    return M;
}

int cmd_pretrain(int argc, char **argv) {
    const char *out = NULL, *config = "small", *vocab = NULL, *datasets = DEFAULT_DATASETS;
    long dims[4] = {0, 0, 0, 0}, epochs = 10, vocab_size = 16000, max_len = 512, batch_tokens = 8192, seed = 1,
         threads = 0;
    double lr = 5e-4, warmup = 0.06, wd = 0.01, clip = 1.0, mask_prob = 0.15;
    dataset_opts dopt;
    dataset_opts_init(&dopt);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "pretrain: %s\n", adp_errmsg());
            return 2;
        }
        if (r) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(s, name) && v && (i++, 1))
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (OPT("--out")) {
            out = v;
        } else if (OPT("--config")) {
            config = v;
        } else if (OPT("--vocab")) {
            vocab = v;
        } else if (OPT("--datasets")) {
            datasets = v;
        } else if (OPT("--layers")) {
            if (!cli_parse_int("pretrain", s, v, 1, 127, &dims[0])) return 2;
        } else if (OPT("--hidden")) {
            if (!cli_parse_int("pretrain", s, v, 1, 65536, &dims[1])) return 2;
        } else if (OPT("--heads")) {
            if (!cli_parse_int("pretrain", s, v, 1, 1024, &dims[2])) return 2;
        } else if (OPT("--inter")) {
            if (!cli_parse_int("pretrain", s, v, 1, 262144, &dims[3])) return 2;
        } else if (OPT("--epochs")) {
            if (!cli_parse_int("pretrain", s, v, 1, 10000, &epochs)) return 2;
        } else if (OPT("--vocab-size")) {
            if (!cli_parse_int("pretrain", s, v, 100, 1 << 22, &vocab_size)) return 2;
        } else if (OPT("--max-len")) {
            if (!cli_parse_int("pretrain", s, v, 3, 512, &max_len)) return 2;
        } else if (OPT("--batch-tokens")) {
            if (!cli_parse_int("pretrain", s, v, 16, 1 << 24, &batch_tokens)) return 2;
        } else if (OPT("--seed")) {
            if (!cli_parse_int("pretrain", s, v, 0, 1L << 62, &seed)) return 2;
        } else if (OPT("--threads")) {
            if (!cli_parse_int("pretrain", s, v, 1, 1024, &threads)) return 2;
        } else if (OPT("--lr")) {
            if (!cli_parse_double("pretrain", s, v, 0, 1, &lr)) return 2;
        } else if (OPT("--warmup")) {
            if (!cli_parse_double("pretrain", s, v, 0, 1, &warmup)) return 2;
        } else if (OPT("--wd")) {
            if (!cli_parse_double("pretrain", s, v, 0, 1, &wd)) return 2;
        } else if (OPT("--clip")) {
            if (!cli_parse_double("pretrain", s, v, 0, 1e9, &clip)) return 2;
        } else if (OPT("--mask-prob")) {
            if (!cli_parse_double("pretrain", s, v, 0.01, 0.9, &mask_prob)) return 2;
        } else {
            fprintf(stderr, "pretrain: unknown or incomplete option '%s' (try --help)\n", s);
            return 2;
        }
#undef OPT
    }
    int L, H, A, I;
    if (train_shape_by_name(config, &L, &H, &A, &I) != ADP_OK) {
        fprintf(stderr, "pretrain: --config: %s\n", adp_errmsg());
        return 2;
    }
    if (dims[0]) L = (int)dims[0];
    if (dims[1]) H = (int)dims[1];
    if (dims[2]) A = (int)dims[2];
    if (dims[3]) I = (int)dims[3];
    if (!out) {
        fprintf(stderr, "pretrain: --out DIR is required (try --help)\n");
        return 2;
    }
    adp_set_threads((int)threads);
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "pretrain: %s: cannot create directory: %s\n", out, strerror(errno));
        return 1;
    }
    const double t_start = adp_now(); /* "seconds": the whole run, vocabulary and tokenization included */

    /* the text */
    dataset ds[16];
    const dataset *dl[16];
    int n_ds = 0, rc = 0;
    char *list = strdupCheck(datasets);
    for (char *tok = strtok(list, ","); tok && !rc; tok = strtok(NULL, ",")) {
        if (n_ds == 16) {
            fprintf(stderr, "pretrain: at most 16 datasets\n");
            rc = 2;
            break;
        }
        dataset_opts o = dopt;
        o.name = tok;
        if (dataset_load(&ds[n_ds], &o, SPLIT_TRAIN) != ADP_OK) {
            fprintf(stderr, "pretrain: %s\n", adp_errmsg());
            rc = 1;
            break;
        }
        dl[n_ds] = &ds[n_ds];
        n_ds++;
    }
    char vocab_path[4096];
    if (!rc) {
        if (vocab)
            snprintf(vocab_path, sizeof vocab_path, "%s", vocab);
        else {
            snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", out);
            double t0 = adp_now();
            if (train_learn_vocab(dl, n_ds, (size_t)vocab_size, vocab_path) != ADP_OK) {
                fprintf(stderr, "pretrain: %s\n", adp_errmsg());
                rc = 1;
            } else
                fprintf(stderr, "pretrain: learned a vocabulary from %s in %.1f s -> %s\n", datasets, adp_now() - t0,
                        vocab_path);
        }
    }
    wordpiece wp;
    int wp_loaded = 0;
    if (!rc) {
        if (wordpiece_load(&wp, vocab_path, 1) != ADP_OK) {
            fprintf(stderr, "pretrain: %s\n", adp_errmsg());
            rc = 1;
        } else if (wp.mask_id < 0) {
            fprintf(stderr, "pretrain: %s has no [MASK] token\n", vocab_path);
            rc = 1;
            wordpiece_free(&wp);
        } else
            wp_loaded = 1;
    }
    corpus cp = {0};
    if (!rc) {
        wp_encoding enc = {0};
        for (int d = 0; d < n_ds && !rc; d++)
            for (size_t i = 0; i < ds[d].n && !rc; i++) {
                const example *ex = &ds[d].ex[i];
                if (add_text(&cp, &wp, &enc, ex->text, (size_t)max_len) != ADP_OK ||
                    (ex->pair && add_text(&cp, &wp, &enc, ex->pair, (size_t)max_len) != ADP_OK)) {
                    fprintf(stderr, "pretrain: %s train %s: %s\n", ds[d].name, ex->id, adp_errmsg());
                    rc = 1;
                }
            }
        wp_encoding_free(&enc);
    }
    for (int d = 0; d < n_ds; d++) dataset_free(&ds[d]);
    free(list);
    if (rc) {
        if (wp_loaded) wordpiece_free(&wp);
        free(cp.ids), free(cp.off);
        return rc;
    }
    /* held-out sequences: a seeded 1%, at most 2000 */
    size_t n_hold = ADP_MIN((size_t)2000, cp.n / 100), n_train = cp.n - n_hold;
    size_t *perm = mallocCheck(sizeof(size_t) * (cp.n ? cp.n : 1));
    for (size_t i = 0; i < cp.n; i++) perm[i] = i;
    adp_rng hr;
    rng_seed(&hr, (uint64_t)seed ^ 0x401Dull);
    for (size_t i = cp.n; i > 1; i--) {
        size_t j = (size_t)rng_below(&hr, i), t = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = t;
    }
    const size_t *train_idx = perm, *hold_idx = perm + n_train;
    int *lengths = mallocCheck(sizeof(int) * (n_train ? n_train : 1));
    size_t train_tok = 0;
    for (size_t i = 0; i < n_train; i++) {
        lengths[i] = (int)(cp.off[train_idx[i] + 1] - cp.off[train_idx[i]]);
        train_tok += (size_t)lengths[i];
    }

    /* the model */
    int vocab_n = (int)wp.n;
    bert_config cfg;
    bert_config_init(&cfg, vocab_n, H, L, A, I, 512, 2);
    if (bert_config_validate(&cfg, "model shape") != ADP_OK) {
        fprintf(stderr, "pretrain: %s\n", adp_errmsg());
        wordpiece_free(&wp);
        return 2;
    }
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_config_free(&cfg);
    bert_model_init_random(&m, (uint64_t)seed); /* packed, and repacked after every update */
    pretrainer p;
    memset(&p, 0, sizeof p);
    bert_train_ctx_init(&p.ctx);
    mlm_ctx_init(&p.mc);
    size_t nh = mlm_weights_count(H, vocab_n);
    p.harena = alignedCheck(sizeof(float) * nh), p.hgrad = alignedCheck(sizeof(float) * nh);
    mlm_weights_point(&p.head, H, vocab_n, p.harena);
    mlm_weights_point(&p.ghead, H, vocab_n, p.hgrad);
    mlm_weights_init(&p.head, m.cfg.init_range, (uint64_t)seed + 1);
    p.garena = alignedCheck(sizeof(float) * m.n_params);
    memset(p.garena, 0, sizeof(float) * m.n_params);
    bert_weights_point(&p.g, &m.cfg, p.garena);
    adamw_init(&p.opt, 0.9f, 0.999f, 1e-6f, (float)wd);
    adamw_add_bert(&p.opt, &m, p.garena, (1u << PARAM_POOLER) | (1u << PARAM_CLASSIFIER));
    bert_param *hp;
    int n_hp = mlm_param_list(&p.head, &hp);
    for (int k = 0; k < n_hp; k++) {
        size_t numel = (size_t)hp[k].shape[0] * (size_t)(hp[k].ndim == 2 ? hp[k].shape[1] : 1);
        adamw_add(&p.opt, hp[k].name, hp[k].ptr, p.hgrad + (hp[k].ptr - p.harena), numel, hp[k].no_decay);
    }
    free(hp);
    adamw_ready(&p.opt);

    /* steps: plans have the same number of batches every epoch up to the shuffle; count epoch 1 */
    batch_plan plan;
    batch_plan_make(&plan, lengths, n_train, 256, (size_t)batch_tokens, train_mix_seed((uint64_t)seed, 1));
    const long steps_est = (long)plan.n_batches * epochs, warm = (long)floor(warmup * (double)steps_est + 0.5);
    batch_plan_free(&plan);
    fprintf(stderr,
            "pretrain: %s: %zu sequences (%zu tokens) for training, %zu held out; vocabulary %d; model L%d H%d A%d "
            "I%d (%zu encoder parameters + %zu MLM head); %ld epochs of ~%ld steps of %ld tokens, lr %g (warm-up %ld), "
            "wd %g, mask %g; seed %ld; %d threads; %s\n",
            datasets, n_train, train_tok, n_hold, vocab_n, L, H, A, I, m.n_params, nh, epochs,
            steps_est / epochs, batch_tokens, lr, warm, wd, mask_prob, seed, adp_get_threads(), adp_blas_info());

    int32_t *raw = NULL;
    size_t cap_raw = 0;
    progress pg;
    progress_init(&pg, steps_est);
    double t_train = 0, last_loss = 0, last_acc = 0;
    size_t tokens_done = 0;
    long step = 0;
    char *history = strdupCheck("");
    size_t *bidx = mallocCheck(sizeof(size_t) * 256);
    for (int ep = 1; ep <= epochs && !rc; ep++) {
        batch_plan_make(&plan, lengths, n_train, 256, (size_t)batch_tokens, train_mix_seed((uint64_t)seed, (uint64_t)ep));
        double t_ep = adp_now(), run_loss = 0, loss_sum = 0;
        for (size_t bi = 0; bi < plan.n_batches && !rc; bi++, step++) {
            size_t n = plan.boff[bi + 1] - plan.boff[bi], tok = 0;
            for (size_t i = 0; i < n; i++) {
                bidx[i] = train_idx[plan.order[plan.boff[bi] + i]];
                tok += cp.off[bidx[i] + 1] - cp.off[bidx[i]];
            }
            if (tok > cap_raw) cap_raw = tok, raw = reallocCheck(raw, sizeof(int32_t) * tok);
            bert_batch b;
            int M = make_batch(&p, &b, raw, &cp, bidx, n, mask_prob, wp.mask_id, vocab_n,
                               train_mix_seed((uint64_t)seed + 2, (uint64_t)step));
            bert_train_opts o = {.hidden_dropout = m.cfg.hidden_dropout, .attn_dropout = m.cfg.attn_dropout,
                                 .seed = train_mix_seed((uint64_t)seed + 3, (uint64_t)step)};
            if (bert_train_forward(&p.ctx, &m, &b, &o) != ADP_OK) {
                fprintf(stderr, "\npretrain: %s\n", adp_errmsg());
                rc = 1;
                break;
            }
            double loss = mlm_forward(&p.mc, &p.head, m.w.word_emb, p.ctx.out, p.rows, p.labels, M, m.cfg.ln_eps, NULL);
            size_t need = tok * (size_t)H;
            if (need > p.cap_out) p.cap_out = need, free(p.d_out), p.d_out = alignedCheck(sizeof(float) * need);
            memset(p.d_out, 0, sizeof(float) * need);
            grad_zero(&p.opt);
            mlm_backward(&p.mc, &p.ghead, p.g.word_emb, p.d_out, &p.head, m.w.word_emb, 1.0f);
            if (bert_train_backward(&p.ctx, &m, &p.g, NULL, p.d_out) != ADP_OK) {
                fprintf(stderr, "\npretrain: %s\n", adp_errmsg());
                rc = 1;
                break;
            }
            grad_clip(&p.opt, clip);
            adamw_step(&p.opt, (float)lr_linear_schedule(lr, step, warm, steps_est));
            bert_model_pack(&m);
            if (!isfinite(loss)) {
                fprintf(stderr, "\npretrain: step %ld: the loss is %g; lower --lr?\n", step, loss);
                rc = 1;
                break;
            }
            loss_sum += loss;
            run_loss = bi == 0 ? loss : 0.98 * run_loss + 0.02 * loss;
            tokens_done += tok;
            double el = t_train + adp_now() - t_ep;
            progress_show(&pg, "pretrain", ep, (int)epochs, step + 1, run_loss, tokens_done / (el > 0 ? el : 1));
        }
        t_train += adp_now() - t_ep;
        size_t nb = plan.n_batches;
        batch_plan_free(&plan);
        if (rc) break;
        /* held-out MLM loss and accuracy, fixed masking, no dropout */
        double hl = 0;
        long hm = 0, hc = 0;
        for (size_t h0 = 0; h0 < n_hold && !rc; h0 += 64) {
            size_t n = ADP_MIN((size_t)64, n_hold - h0), tok = 0;
            for (size_t i = 0; i < n; i++) {
                bidx[i] = hold_idx[h0 + i];
                tok += cp.off[bidx[i] + 1] - cp.off[bidx[i]];
            }
            if (tok > cap_raw) cap_raw = tok, raw = reallocCheck(raw, sizeof(int32_t) * tok);
            bert_batch b;
            int M = make_batch(&p, &b, raw, &cp, bidx, n, mask_prob, wp.mask_id, vocab_n, (uint64_t)h0 + 77);
            bert_train_opts o = {0};
            if (bert_train_forward(&p.ctx, &m, &b, &o) != ADP_OK) {
                fprintf(stderr, "pretrain: %s\n", adp_errmsg());
                rc = 1;
                break;
            }
            int correct = 0;
            hl += (double)mlm_forward(&p.mc, &p.head, m.w.word_emb, p.ctx.out, p.rows, p.labels, M, m.cfg.ln_eps,
                                      &correct) * M;
            hm += M, hc += correct;
        }
        if (rc) break;
        last_loss = hm ? hl / hm : 0, last_acc = hm ? (double)hc / hm : 0;
        if (bert_backbone_save(&m, &p.head, out, vocab_path) != ADP_OK) {
            fprintf(stderr, "pretrain: saving: %s\n", adp_errmsg());
            rc = 1;
            break;
        }
        progress_clear(&pg);
        fprintf(stderr, "pretrain: epoch %d: train MLM loss %.4f, held-out MLM loss %.4f accuracy %.4f (%.0f s) -> %s\n",
                ep, loss_sum / (double)(nb ? nb : 1), last_loss, last_acc, adp_now() - t_ep, out);
        char item[256];
        snprintf(item, sizeof item, "%s{\"epoch\": %d, \"train_mlm_loss\": %.6f, \"heldout_mlm_loss\": %.6f, "
                 "\"heldout_mlm_accuracy\": %.6f}", ep > 1 ? ", " : "", ep, loss_sum / (double)(nb ? nb : 1), last_loss,
                 last_acc);
        history = reallocCheck(history, strlen(history) + strlen(item) + 1);
        strcat(history, item);
    }
    if (!rc) {
        char summary[4096], path[4096];
        snprintf(summary, sizeof summary,
                 "{\"datasets\": \"%s\", \"sequences\": %zu, \"tokens\": %zu, \"heldout_sequences\": %zu, "
                 "\"epochs\": %ld, \"steps\": %ld, \"mlm_loss\": %.6f, \"mlm_accuracy\": %.6f, \"seconds\": %.1f, "
                 "\"tokens_per_s\": %.1f, \"layers\": %d, \"hidden\": %d, \"heads\": %d, \"inter\": %d, "
                 "\"vocab\": %d, \"lr\": %g, \"batch_tokens\": %ld, \"max_len\": %ld, \"seed\": %ld, \"threads\": %d}",
                 datasets, n_train, train_tok, n_hold, epochs, step, last_loss, last_acc, adp_now() - t_start,
                 (double)tokens_done / (t_train > 0 ? t_train : 1), L, H, A, I, vocab_n, lr, batch_tokens, max_len,
                 seed, adp_get_threads());
        printf("%s\n", summary);
        size_t len = strlen(summary) + strlen(history) + 64;
        char *full = mallocCheck(len);
        snprintf(full, len, "%.*s, \"history\": [%s]}\n", (int)strlen(summary) - 1, summary, history);
        snprintf(path, sizeof path, "%s/pretrain.json", out);
        if (adp_write_file_atomic(path, full, strlen(full)) != ADP_OK) {
            fprintf(stderr, "pretrain: %s\n", adp_errmsg());
            rc = 1;
        }
        free(full);
    }
    free(history), free(bidx), free(raw), free(perm), free(lengths);
    free(p.garena), free(p.harena), free(p.hgrad), free(p.d_out), free(p.ids_in), free(p.labels), free(p.rows), free(p.off);
    bert_weights_free_layout(&p.g);
    adamw_free(&p.opt);
    mlm_ctx_free(&p.mc);
    bert_train_ctx_free(&p.ctx);
    bert_model_free(&m);
    wordpiece_free(&wp);
    free(cp.ids), free(cp.off);
    return rc;
}

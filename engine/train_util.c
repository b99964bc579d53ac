/* train_util.c: shapes, batch plans, progress line, vocabulary learning (train_util.h). */
#include "train_util.h"

#include "flops.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "common.h"
#include "rng.h"
#include "vocab_learn.h"

const char TRAIN_SHAPES_HELP[] =
    "  --config NAME   tiny (L2 H128 A2 I512), mini (L4 H256 A4 I1024), small (L6 H256 A4 I1024,\n"
    "                  the default), base (L12 H768 A12 I3072); --layers/--hidden/--heads/--inter\n"
    "                  override single dims\n";

int train_shape_by_name(const char *name, int *layers, int *hidden, int *heads, int *inter) {
    static const struct {
        const char *name;
        int L, H, A, In;
    } shapes[] = {{"tiny", 2, 128, 2, 512}, {"mini", 4, 256, 4, 1024}, {"small", 6, 256, 4, 1024}, {"base", 12, 768, 12, 3072}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(name, shapes[i].name)) {
            *layers = shapes[i].L, *hidden = shapes[i].H, *heads = shapes[i].A, *inter = shapes[i].In;
            return ADP_OK;
        }
    return adp_seterr("unknown config '%s' (tiny, mini, small, base)", name);
}

uint64_t train_mix_seed(uint64_t a, uint64_t b) {
    adp_rng r;
    rng_seed(&r, a ^ (b * 0xD1B54A32D192ED03ull));
    return rng_u64(&r);
}

static void shuffle(size_t *v, size_t n, adp_rng *r) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
}

static int by_length(const void *a, const void *b, void *lengths) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const int *len = lengths;
    int lx = len[x], ly = len[y];
    return lx != ly ? (lx < ly ? -1 : 1) : (x < y ? -1 : x > y);
}

void batch_plan_make(batch_plan *p, const int *lengths, size_t n, int max_seqs, size_t max_tokens, uint64_t seed) {
    memset(p, 0, sizeof *p);
    adp_rng r;
    rng_seed(&r, seed);
    size_t *idx = mallocCheck(sizeof(size_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) idx[i] = i;
    shuffle(idx, n, &r);
    size_t pool = (size_t)max_seqs * 50;
    for (size_t i = 0; i < n; i += pool) qsort_r(idx + i, ADP_MIN(pool, n - i), sizeof(size_t), by_length, (void *)lengths);
    /* cut into batches */
    size_t *start = mallocCheck(sizeof(size_t) * (n + 1)), nb = 0;
    for (size_t i = 0; i < n;) {
        start[nb++] = i;
        size_t tok = 0;
        int k = 0;
        while (i < n && k < max_seqs && (k == 0 || !max_tokens || tok + (size_t)lengths[idx[i]] <= max_tokens))
            tok += (size_t)lengths[idx[i++]], k++;
    }
    start[nb] = n;
    /* shuffle the batch order */
    size_t *perm = mallocCheck(sizeof(size_t) * (nb ? nb : 1));
    for (size_t b = 0; b < nb; b++) perm[b] = b;
    shuffle(perm, nb, &r);
    p->order = mallocCheck(sizeof(size_t) * (n ? n : 1));
    p->boff = mallocCheck(sizeof(size_t) * (nb + 1));
    size_t at = 0;
    for (size_t b = 0; b < nb; b++) {
        p->boff[b] = at;
        for (size_t i = start[perm[b]]; i < start[perm[b] + 1]; i++) p->order[at++] = idx[i];
    }
    p->boff[nb] = at;
    p->n = n, p->n_batches = nb;
    free(idx), free(start), free(perm);
}

void batch_plan_free(batch_plan *p) {
    free(p->order), free(p->boff);
    memset(p, 0, sizeof *p);
}

void progress_init(progress *p, long total_steps) {
    p->t0 = p->last = adp_now();
    p->tty = isatty(2);
    p->total = total_steps;
}

static void fmt_time(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_show(progress *p, const char *what, int epoch, int epochs, long done, double loss, double tok_s) {
    double now = adp_now();
    if (!p->tty && now - p->last < 30.0 && done < p->total) return;
    if (p->tty && now - p->last < 0.2 && done < p->total) return;
    p->last = now;
    double el = now - p->t0, eta = done > 0 ? el * (double)(p->total - done) / (double)done : 0;
    char e1[32], e2[32], bar[21];
    fmt_time(e1, sizeof e1, el);
    fmt_time(e2, sizeof e2, eta);
    int fill = p->total > 0 ? (int)(20.0 * (double)done / (double)p->total) : 0;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "%s%s epoch %d/%d [%s] %ld/%ld loss %.4f %.0f tok/s elapsed %s ETA %s%s", p->tty ? "\r" : "",
            what, epoch, epochs, bar, done, p->total, loss, tok_s, e1, e2, p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void progress_clear(progress *p) {
    if (p->tty) fprintf(stderr, "\r\033[K");
}

int train_learn_vocab(const dataset *const *ds, int n_ds, size_t size, const char *path) {
    vocab_learner vl;
    vocab_learner_init(&vl, 1);
    int rc = ADP_OK;
    for (int d = 0; d < n_ds && rc == ADP_OK; d++)
        for (size_t i = 0; i < ds[d]->n && rc == ADP_OK; i++) {
            const example *ex = &ds[d]->ex[i];
            if (vocab_learner_add(&vl, ex->text, strlen(ex->text)) != ADP_OK ||
                (ex->pair && vocab_learner_add(&vl, ex->pair, strlen(ex->pair)) != ADP_OK))
                rc = adp_preferr("%s train %s: ", ds[d]->name, ex->id);
        }
    char **tokens = NULL;
    size_t n_tokens = 0, n_alpha = 0;
    if (rc == ADP_OK) rc = vocab_learner_build(&vl, size, 2, &tokens, &n_tokens, &n_alpha);
    if (rc == ADP_OK) rc = vocab_write(path, tokens, n_tokens);
    if (tokens) vocab_tokens_free(tokens, n_tokens);
    vocab_learner_free(&vl);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double train_sgemm_peak(int n, double min_time) {
    float *a = alignedCheck(sizeof(float) * (size_t)n * n), *b = alignedCheck(sizeof(float) * (size_t)n * n);
    float *c = alignedCheck(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double times[256];
    int k = 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double t_start = adp_now();
    while (k < 256 && (k < 5 || adp_now() - t_start < min_time)) {
        double t0 = adp_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        times[k++] = adp_now() - t0;
    }
    qsort(times, (size_t)k, sizeof(double), cmp_double);
    free(a), free(b), free(c);
    return 2.0 * (double)n * n * n / times[k / 2] / 1e9;
}

void train_scores(const int32_t *gold, const int32_t *pred, size_t n, int n_labels, double *accuracy, double *macro_f1) {
    size_t *tp = callocCheck((size_t)n_labels, sizeof(size_t)), *np = callocCheck((size_t)n_labels, sizeof(size_t));
    size_t *ng = callocCheck((size_t)n_labels, sizeof(size_t)), right = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (gold[i] < 0) continue;
        total++;
        ng[gold[i]]++;
        np[pred[i]]++;
        if (gold[i] == pred[i]) tp[gold[i]]++, right++;
    }
    double f1 = 0;
    int classes = 0;
    for (int k = 0; k < n_labels; k++) {
        if (!ng[k] && !np[k]) continue;
        classes++;
        f1 += 2.0 * (double)tp[k] / (double)(ng[k] + np[k]);
    }
    *accuracy = total ? (double)right / (double)total : 0;
    *macro_f1 = classes ? f1 / classes : 0;
    free(tp), free(np), free(ng);
}

void train_batch_fill(train_batch *tb, bert_batch *b, const packed_tokens *pk, const float *extra, const size_t *idx,
                      size_t n) {
    size_t tok = 0;
    for (size_t i = 0; i < n; i++) tok += pk->seq_off[idx[i] + 1] - pk->seq_off[idx[i]];
    if (tok > tb->cap_tok) {
        tb->cap_tok = tok;
        tb->ids = reallocCheck(tb->ids, sizeof(int32_t) * tok), tb->types = reallocCheck(tb->types, sizeof(int32_t) * tok);
        tb->extra = reallocCheck(tb->extra, sizeof(float) * tok);
    }
    if (n > tb->cap_seq) {
        tb->cap_seq = n;
        tb->off = reallocCheck(tb->off, sizeof(int) * (n + 1)), tb->labels = reallocCheck(tb->labels, sizeof(int32_t) * n);
    }
    size_t at = 0;
    tb->off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = pk->seq_off[idx[i]], e = pk->seq_off[idx[i] + 1];
        memcpy(tb->ids + at, pk->ids + s, sizeof(int32_t) * (e - s));
        memcpy(tb->types + at, pk->type_ids + s, sizeof(int32_t) * (e - s));
        if (extra) memcpy(tb->extra + at, extra + s, sizeof(float) * (e - s));
        at += e - s;
        tb->off[i + 1] = (int)at;
        tb->labels[i] = pk->labels[idx[i]];
    }
    *b = (bert_batch){.n_seq = (int)n, .ids = tb->ids, .types = tb->types, .off = tb->off};
}

void train_batch_free(train_batch *tb) {
    free(tb->ids), free(tb->types), free(tb->labels), free(tb->off), free(tb->extra);
    memset(tb, 0, sizeof *tb);
}

int train_evaluate(train_dev_scores *d, const bert_model *m, const packed_tokens *pk, const prune_strategy *ps,
                   int batch) {
    bert_ctx ctx;
    bert_ctx_init(&ctx);
    train_batch tb = {0};
    const int L = m->cfg.layers, C = m->cfg.num_labels;
    int32_t *pred = mallocCheck(sizeof(int32_t) * (pk->n_seq ? pk->n_seq : 1));
    size_t *idx = mallocCheck(sizeof(size_t) * (size_t)batch);
    d->flops = d->flops_dense = 0;
    for (int l = 0; d->layer_tokens && l < L; l++) d->layer_tokens[l] = 0;
    int rc = ADP_OK;
    for (size_t s0 = 0; s0 < pk->n_seq && rc == ADP_OK; s0 += (size_t)batch) {
        size_t n = ADP_MIN((size_t)batch, pk->n_seq - s0);
        for (size_t i = 0; i < n; i++) idx[i] = s0 + i;
        bert_batch b;
        train_batch_fill(&tb, &b, pk, NULL, idx, n);
        bert_run_opts o = {.prune = ps, .batch_first = (int)s0};
        const bert_result *r;
        if ((rc = bert_forward(&ctx, m, &b, &o, &r)) != ADP_OK) break;
        for (size_t i = 0; i < n; i++) {
            int best = 0;
            for (int k = 1; k < C; k++)
                if (r->logits[i * C + k] > r->logits[i * C + best]) best = k;
            pred[s0 + i] = best;
            d->flops += r->flops[i];
            d->flops_dense += flops_dense(&m->cfg, b.off[i + 1] - b.off[i]);
            for (int l = 0; d->layer_tokens && l < L; l++) d->layer_tokens[l] += r->layer_tokens[i * L + l];
        }
    }
    if (rc == ADP_OK) {
        train_scores(pk->labels, pred, pk->n_seq, C, &d->acc, &d->f1);
        for (int l = 0; d->layer_tokens && l < L; l++) d->layer_tokens[l] /= (double)(pk->n_seq ? pk->n_seq : 1);
    }
    free(pred), free(idx);
    train_batch_free(&tb);
    bert_ctx_free(&ctx);
    return rc;
}

/* power_fit.c: PoWER-BERT's configuration search (Goyal et al., ICML 2020; IBM/PoWER-BERT,
 * model/model.py Soft_Extract, training.py configuration_search_step and get_configuration)
 * and its re-training with hard extraction, as `adapler train --method power` (fit.c runs
 * the phases; the equations are in fit.h).
 *
 * As in the reference: the search starts from the fine-tuned model, trains encoder and
 * retention parameters together (Adam with warm-up and linear decay; the retention
 * parameters at their own learning rate, LR_SOFT_EXTRACT, the encoder at LR_BERT), the
 * configuration is read off the parameters' sums, and the re-training starts from the
 * search's encoder with hard extraction at that configuration (power.c), keeping the most
 * accurate dev epoch.  The configuration is saved as the extra tensor power.retention
 * (L counts), which `--method power` reads.
 * Differences: sequences are not padded to N, so a rank k >= n never occurs in a sequence of
 * n tokens (in PoWER-BERT padding tokens take those ranks and, being masked, get no task
 * gradient either); the encoder's AdamW applies the trainer's weight decay (PoWER-BERT's
 * Adam has none; --wd 0 reproduces that). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines/baselines.h"
#include "baselines/fit.h"
#include "baselines/fit_driver.h"
#include "common.h"
#include "optim.h"

void power_soft_init(power_soft *p, int n_layers, int max_len, float lambda) {
    memset(p, 0, sizeof *p);
    p->n_layers = n_layers, p->max_len = max_len, p->lambda = lambda;
    p->r = mallocCheck(sizeof(float) * (size_t)n_layers * max_len);
    p->g = callocCheck((size_t)n_layers * max_len, sizeof(float));
    for (size_t i = 0; i < (size_t)n_layers * max_len; i++) p->r[i] = 1.0f;
}

void power_soft_free(power_soft *p) {
    free(p->r), free(p->g), free(p->rank), free(p->sig), free(p->idx);
    memset(p, 0, sizeof *p);
}

static int by_sig_desc(const void *a, const void *b, void *ctx) {
    const double *s = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (s[i] > s[j]) return -1;
    if (s[i] < s[j]) return 1;
    return (i > j) - (i < j);
}

int power_soft_scale(void *user, const bert_scale_view *v) {
    power_soft *p = user;
    if (v->point != BERT_SCALE_ATTENTION) return ADP_OK;
    const int l = v->layer, T = v->T, A = v->n_heads, N = p->max_len;
    if (l == 0 && (size_t)T > p->cap) {
        free(p->rank), free(p->sig), free(p->idx);
        p->cap = (size_t)T;
        p->rank = mallocCheck(sizeof(int) * p->cap * (size_t)p->n_layers);
        p->sig = mallocCheck(sizeof(double) * p->cap * 2);
        p->idx = mallocCheck(sizeof(int) * p->cap);
    }
    if ((size_t)T > p->cap || v->T_attn != T) return adp_seterr("power soft extract: rows were dropped before layer %d", l);
    int *rank = p->rank + (size_t)l * p->cap;
    const float *r = p->r + (size_t)l * N;
    for (int s = 0; s < v->n_seq; s++) {
        const int r0 = v->off[s], n = v->off[s + 1] - r0;
        if (n > N) return adp_seterr("power soft extract: a sequence of %d tokens, longer than --max-len %d", n, N);
        double *sig = p->sig, *dg = p->sig + p->cap;
        attn_received(sig, dg, v->probs + v->prob_off[s], n, A);
        for (int i = 0; i < n; i++) sig[i] = (sig[i] - dg[i]) / A;
        for (int i = 0; i < n; i++) p->idx[i] = i;
        qsort_r(p->idx, (size_t)n, sizeof(int), by_sig_desc, sig);
        for (int k = 0; k < n; k++) rank[r0 + p->idx[k]] = k;
        for (int i = 0; i < n; i++) v->scale[r0 + i] = r[rank[r0 + i]];
    }
    return ADP_OK;
}

int power_soft_scale_grad(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key) {
    power_soft *p = user;
    (void)d_probs_key; /* the ranks are piecewise constant in the attention */
    if (v->point != BERT_SCALE_ATTENTION) return ADP_OK;
    const int *rank = p->rank + (size_t)v->layer * p->cap;
    float *g = p->g + (size_t)v->layer * p->max_len;
    for (int t = 0; t < v->T; t++) g[rank[t]] += d_scale[t];
    return ADP_OK;
}

double power_soft_penalty(power_soft *p) {
    double total = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const double w = (double)p->lambda * (l + 1);
        const float *r = p->r + (size_t)l * p->max_len;
        float *g = p->g + (size_t)l * p->max_len;
        double sum = 0;
        for (int k = 0; k < p->max_len; k++) {
            sum += fabs(r[k]);
            g[k] += (float)(r[k] > 0 ? w : r[k] < 0 ? -w : 0.0);
        }
        total += w * sum;
    }
    return total;
}

void power_soft_clip(power_soft *p) {
    for (size_t i = 0; i < (size_t)p->n_layers * p->max_len; i++) p->r[i] = ADP_MIN(ADP_MAX(p->r[i], 0.0f), 1.0f);
}

void power_soft_retention(const power_soft *p, int *k) {
    for (int l = 0; l < p->n_layers; l++) {
        double sum = 0;
        for (int i = 0; i < p->max_len; i++) sum += p->r[(size_t)l * p->max_len + i];
        int c = (int)floor(sum);
        if (c < 1) c = 1;
        k[l] = l > 0 && c > k[l - 1] ? k[l - 1] : c;
    }
}

/* ---- the driver's view of the method ---- */

typedef struct {
    power_soft soft;
    int *k;         /* (L) the configuration */
    float *kf;      /* (L) as saved */
} power_fit;

static void *pf_create(const bert_model *m, const fit_args *a) {
    power_fit *f = callocCheck(1, sizeof *f);
    power_soft_init(&f->soft, m->cfg.layers, (int)a->max_len, (float)a->lambda);
    f->k = callocCheck((size_t)m->cfg.layers, sizeof(int));
    f->kf = callocCheck((size_t)m->cfg.layers, sizeof(float));
    return f;
}

static void pf_params(void *self, adamw *opt) {
    power_fit *f = self;
    adamw_add(opt, "power.r", f->soft.r, f->soft.g, (size_t)f->soft.n_layers * f->soft.max_len, 1);
}

static double pf_penalty(void *self) { return power_soft_penalty(&((power_fit *)self)->soft); }
static void pf_after_step(void *self) { power_soft_clip(&((power_fit *)self)->soft); }

static void pf_config(void *self, char *buf, size_t cap) {
    power_fit *f = self;
    power_soft_retention(&f->soft, f->k);
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int l = 0; l < f->soft.n_layers && k < cap; l++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", l ? ", " : "", f->k[l]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int pf_hard(void *self, const bert_model *m, prune_strategy *ps) {
    power_fit *f = self;
    const int L = m->cfg.layers;
    power_soft_retention(&f->soft, f->k);
    double *ret = mallocCheck(sizeof(double) * (size_t)L);
    for (int l = 0; l < L; l++) ret[l] = f->k[l], f->kf[l] = (float)f->k[l];
    int rc = power_strategy_create(ps, L, ret, 0, NULL, NULL);
    free(ret);
    return rc;
}

static int pf_extra(void *self, bert_extra_tensor *ex) {
    power_fit *f = self;
    *ex = (bert_extra_tensor){.name = "power.retention", .data = f->kf, .ndim = 1, .shape = {f->soft.n_layers}};
    return 1;
}

static void pf_free(void *self) {
    power_fit *f = self;
    power_soft_free(&f->soft);
    free(f->k), free(f->kf), free(f);
}

static const fit_spec POWER_SPEC = {
    .name = "power",
    .config_name = "retention",
    .help =
        "Learn PoWER-BERT's retention configuration (Goyal et al., ICML 2020) on a fine-tuned\n"
        "classifier and re-train it with hard extraction.  Search: after every layer's attention\n"
        "block the token of significance rank k (attention received from the others) is scaled\n"
        "by r_l[k] in [0, 1] (N = --max-len values per layer, initialised to 1, clipped after\n"
        "each step); loss = cross-entropy + sum_l lambda (l + 1) sum_k r_l[k].  Configuration:\n"
        "k_l = max(1, floor(sum_k r_l[k])), forced non-increasing.  Re-training: hard extraction\n"
        "at k_l (keep [CLS] and the k_l - 1 most significant tokens after layer l's attention).\n"
        "The most accurate re-training epoch is saved in DIR with the configuration as the tensor\n"
        "power.retention (`adapler eval --method power` uses it).\n\n"
        "  --lambda L       penalty weight (default 2e-4, PoWER-BERT's SST-2 value; larger keeps\n"
        "                   fewer tokens)\n"
        "  --soft-lr LR     learning rate of the retention parameters (default 5e-4, LR_SOFT_EXTRACT)\n",
    .lambda = 2e-4,
    .soft_lr = 5e-4,
    .create = pf_create,
    .params = pf_params,
    .scale = power_soft_scale,
    .scale_grad = power_soft_scale_grad,
    .penalty = pf_penalty,
    .after_step = pf_after_step,
    .config = pf_config,
    .hard = pf_hard,
    .extra = pf_extra,
    .destroy = pf_free,
};

int cmd_train_power(int argc, char **argv) { return fit_run(&POWER_SPEC, argc, argv); }

/* ltp_fit.c: Learned Token Pruning's threshold learning (Kim et al., KDD 2022;
 * kssteven418/LTP, modeling_ltp.py LTPLayer with the soft mask, prune_modules.py
 * AbsoluteThresholdTokenPruner, trainer.py's regulariser and its separate threshold
 * optimiser) as `adapler train --method ltp` (fit.c runs the phases; equations in fit.h).
 *
 * As in the reference: thresholds start at final * l / L (layer 0 at 0: no mask, never
 * trained, as LTP's pruner returns early for a threshold of 0); the soft phase multiplies
 * each layer's output by sigmoid((s - theta_l) / T), does not drop anything, and minimises
 * cross-entropy + lambda sum_l mean(mask_l), the thresholds with their own Adam (lr_threshold,
 * no weight decay); the hard phase fixes the thresholds and re-trains the encoder with
 * tokens whose score is below max(1e-5, theta_l) removed (ltp.c), keeping the most accurate
 * dev epoch.  The thresholds are saved as the extra tensor ltp.threshold.
 * Differences: the score's mean divides by the sequence's own length, not the padded batch
 * length (ltp.c), and so does the penalty's mean (over the batch's real tokens); [CLS] is
 * never masked (our engine never drops it; LTP's mask covers it too); the scores come from
 * the probabilities before attention dropout (LTP's after; the trainer's attention dropout
 * is 0, where they agree); hard removal drops the rows (LTP masks keys with -10000). */
#include <math.h>
#include <string.h>

#include "baselines/baselines.h"
#include "baselines/fit.h"
#include "baselines/fit_driver.h"
#include "common.h"
#include "optim.h"

void ltp_soft_init(ltp_soft *p, int n_layers, float lambda, float temperature, const double *theta0) {
    memset(p, 0, sizeof *p);
    p->n_layers = n_layers, p->lambda = lambda, p->temperature = temperature;
    p->theta = mallocCheck(sizeof(float) * (size_t)n_layers);
    p->g = callocCheck((size_t)n_layers, sizeof(float));
    p->active = mallocCheck((size_t)n_layers);
    p->mask_mean = mallocCheck(sizeof(double) * (size_t)n_layers);
    for (int l = 0; l < n_layers; l++) {
        p->theta[l] = (float)theta0[l];
        p->active[l] = theta0[l] != 0.0;
        p->mask_mean[l] = 1.0;
    }
}

void ltp_soft_free(ltp_soft *p) {
    free(p->theta), free(p->g), free(p->active), free(p->mask), free(p->mask_mean);
    memset(p, 0, sizeof *p);
}

int ltp_soft_scale(void *user, const bert_scale_view *v) {
    ltp_soft *p = user;
    if (v->point != BERT_SCALE_OUTPUT) return ADP_OK;
    const int l = v->layer, T = v->T, A = v->n_heads;
    if (l == 0) {
        if ((size_t)T > p->cap) {
            free(p->mask);
            p->cap = (size_t)T;
            p->mask = mallocCheck(sizeof(float) * p->cap * (size_t)p->n_layers);
        }
        p->loss_reg = 0;
        for (int k = 0; k < p->n_layers; k++) p->mask_mean[k] = 1.0;
    }
    if (!p->active[l]) return ADP_OK;
    if ((size_t)T > p->cap || v->T_attn != T) return adp_seterr("ltp soft mask: rows were dropped in layer %d", l);
    float *m = p->mask + (size_t)l * p->cap;
    double sum = 0, *recv = mallocCheck(sizeof(double) * (size_t)(T ? T : 1));
    for (int s = 0; s < v->n_seq; s++) {
        const int r0 = v->off[s], n = v->off[s + 1] - r0;
        attn_received(recv + r0, NULL, v->probs + v->prob_off[s], n, A);
        m[r0] = 1.0f; /* [CLS] */
        for (int i = 1; i < n; i++) {
            double score = recv[r0 + i] / ((double)A * n);
            m[r0 + i] = (float)(1.0 / (1.0 + exp(-(score - p->theta[l]) / p->temperature)));
        }
        for (int i = 0; i < n; i++) sum += m[r0 + i], v->scale[r0 + i] = m[r0 + i];
    }
    free(recv);
    p->mask_mean[l] = sum / T;
    p->loss_reg += p->lambda * p->mask_mean[l];
    return ADP_OK;
}

int ltp_soft_scale_grad(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key) {
    ltp_soft *p = user;
    if (v->point != BERT_SCALE_OUTPUT || !p->active[v->layer]) return ADP_OK;
    const int l = v->layer, T = v->T, A = v->n_heads;
    const float *m = p->mask + (size_t)l * p->cap;
    const double reg = (double)p->lambda / T, inv_t = 1.0 / p->temperature;
    double dtheta = 0;
    for (int s = 0; s < v->n_seq; s++) {
        const int r0 = v->off[s], n = v->off[s + 1] - r0;
        for (int i = 1; i < n; i++) {
            const double mt = m[r0 + i], dz = ((double)d_scale[r0 + i] + reg) * mt * (1.0 - mt) * inv_t;
            dtheta -= dz;
            d_probs_key[r0 + i] += (float)(dz / ((double)A * n)); /* s = received / (A n) */
        }
    }
    p->g[l] += (float)dtheta;
    return ADP_OK;
}

void ltp_soft_thresholds(const ltp_soft *p, double *theta) {
    for (int l = 0; l < p->n_layers; l++)
        theta[l] = p->active[l] ? ADP_MIN(1.0, ADP_MAX(1e-5, (double)p->theta[l])) : 0.0;
}

/* ---- the driver's view of the method ---- */

typedef struct {
    ltp_soft soft;
    double *theta; /* (L) the configuration */
    float *tf;     /* (L) as saved */
} ltp_fit;

static void *lf_create(const bert_model *m, const fit_args *a) {
    const int L = m->cfg.layers;
    ltp_fit *f = callocCheck(1, sizeof *f);
    f->theta = mallocCheck(sizeof(double) * (size_t)L);
    f->tf = mallocCheck(sizeof(float) * (size_t)L);
    ltp_rising_thresholds(f->theta, L, a->final_threshold);
    ltp_soft_init(&f->soft, L, (float)a->lambda, (float)a->temperature, f->theta);
    return f;
}

static void lf_params(void *self, adamw *opt) {
    ltp_fit *f = self;
    adamw_add(opt, "ltp.threshold", f->soft.theta, f->soft.g, (size_t)f->soft.n_layers, 1);
}

static double lf_penalty(void *self) { return ((ltp_fit *)self)->soft.loss_reg; }

static void lf_config(void *self, char *buf, size_t cap) {
    ltp_fit *f = self;
    ltp_soft_thresholds(&f->soft, f->theta);
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int l = 0; l < f->soft.n_layers && k < cap; l++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%.6g", l ? ", " : "", f->theta[l]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int lf_hard(void *self, const bert_model *m, prune_strategy *ps) {
    ltp_fit *f = self;
    ltp_soft_thresholds(&f->soft, f->theta);
    for (int l = 0; l < m->cfg.layers; l++) f->tf[l] = (float)f->theta[l];
    return ltp_strategy_create(ps, m->cfg.layers, f->theta, NULL);
}

static int lf_extra(void *self, bert_extra_tensor *ex) {
    ltp_fit *f = self;
    *ex = (bert_extra_tensor){.name = "ltp.threshold", .data = f->tf, .ndim = 1, .shape = {f->soft.n_layers}};
    return 1;
}

static void lf_free(void *self) {
    ltp_fit *f = self;
    ltp_soft_free(&f->soft);
    free(f->theta), free(f->tf), free(f);
}

static const fit_spec LTP_SPEC = {
    .name = "ltp",
    .config_name = "thresholds",
    .help =
        "Learn LTP's per-layer thresholds (Kim et al., KDD 2022) on a fine-tuned classifier, then\n"
        "re-train it with hard pruning at them.  Soft phase: every layer's output row t is\n"
        "multiplied by sigmoid((s_t - theta_l) / T), s_t the mean attention the token receives in\n"
        "that layer; loss = cross-entropy + lambda sum_l mean(mask_l); thresholds start at\n"
        "final * l / L (layer 0 never prunes).  Hard phase: thresholds fixed, tokens whose score\n"
        "is below max(1e-5, theta_l) removed after layer l's attention.  The most accurate hard\n"
        "epoch is saved in DIR with the thresholds as the tensor ltp.threshold (`adapler eval\n"
        "--method ltp` uses them).\n\n"
        "  --lambda L          weight of the mask penalty (default 0.1, LTP's README)\n"
        "  --temperature T     sigmoid temperature (default 1e-3; LTP's README: 1e-5 .. 1e-3)\n"
        "  --final-threshold F the last layer's initial threshold is F (L-1)/L (default 0.01)\n"
        "  --soft-lr LR        learning rate of the thresholds (LTP's lr_threshold; default 1e-4)\n",
    .lambda = 0.1,
    .soft_lr = 1e-4,
    .has_temperature = 1,
    .temperature = 1e-3,
    .final_threshold = 0.01,
    .create = lf_create,
    .params = lf_params,
    .scale = ltp_soft_scale,
    .scale_grad = ltp_soft_scale_grad,
    .penalty = lf_penalty,
    .after_step = NULL,
    .config = lf_config,
    .hard = lf_hard,
    .extra = lf_extra,
    .destroy = lf_free,
};

int cmd_train_ltp(int argc, char **argv) { return fit_run(&LTP_SPEC, argc, argv); }

/* saliency.c: the paper's saliency baseline (AdapLeR, Modarressi et al. 2022, section 5 and
 * the ERASER comparison; adapler-method.md 3.1 and 8.6): gradient x input scores from a
 * forward and backward pass of the *unpruned* model, and AdapLeR's keep rule applied to
 * them instead of the Contribution Predictors' scores.  A quality reference: the gradient
 * pass costs more than the whole dense model, so it can never be a speedup.
 *
 * Scores.  Before layer 0 (PRUNE_AT_INPUT; the strategy receives the batch's input ids
 * through prune_step.input_ids) the strategy runs the dense model on the batch with
 * dropout off (bert_train_forward), takes each sequence's predicted class c (argmax of the
 * dense logits, ties to the lower class), and back-propagates z_c (bert_train_backward,
 * input gradients only).  The score of token j at representation h is
 *     s_j = || (d z_c / d h_j) * h_j ||_2      (norm over the hidden dimension)
 * with h the embedding output (--saliency-layer input, the default: one vector, the target
 * AdapLeR trains every predictor towards) or, with --saliency-layer each, layer l's input
 * in the dense model for the decision before layer l.
 *
 * Rule, before every layer l = 0..L-1 on the n tokens still alive ([CLS] included):
 *   --eta E         AdapLeR's: p_j = s_j / sum_live s, keep j iff p_j >= E / n (E is the
 *                   same at every layer; AdapLeR's are learned per layer).  As with
 *                   AdapLeR's predictors, the renormalisation over the survivors makes it
 *                   drop more at later layers.  A sequence whose scores are all 0 keeps
 *                   everything.
 *   --keep-rate R   keep [CLS] and the round(R n) - 1 best-scored others (half to even, at
 *                   least 1; rates compound), or R_0,...,R_{L-1} one rate per layer;
 *   --match FILE    keep exactly the matched run's count for layer l (every layer,
 *                   layer 0 included, since the rule acts at layer input like AdapLeR's).
 * Ties go to the earlier token; kept tokens keep their order; [CLS] always stays.
 *
 * FLOPs added per sequence of n0 tokens (flops.c's conventions: 2 per multiply-add, no
 * softmax/LayerNorm/GELU), on top of the pruned forward pass the engine counts:
 *   forward of the dense model         F = flops_dense(n0)
 *   backward, input gradients only     B = F + 4 L n0^2 H
 *     (no parameter gradients are needed: every linear layer's input gradient is one GEMM
 *      as large as its forward one; the attention backward needs four n^2 dh products per
 *      head where the forward needs two, hence the extra 4 n^2 H per layer; the head's
 *      backward costs its forward.  So B is 1x the forward plus that attention term, not
 *      the 2x of a backward that also computes weight gradients.)
 *   the scores                         3 H n0 per scored representation (1 or L)
 *   the eta rule                       2 n per layer where it decides (sum, divisions)
 * so the method's FLOPs exceed twice the dense model's: its flops_speedup is below 0.5, and
 * eval's JSON says "quality_reference": true. */
#include <math.h>
#include <string.h>

#include "baselines/baselines.h"
#include "bert_train.h"
#include "common.h"
#include "flops.h"

typedef struct {
    const bert_model *m;
    int n_layers, each;
    double eta;     /* > 0: the eta rule */
    double *rate;   /* (L) keep-rates, or NULL */
    const match_counts *match;
    baseline_trace *trace;
    bert_train_ctx tc;
    float *score;   /* (1 or L, T0) raw scores of the batch's input rows */
    float *dlogits; /* (n_seq, C) */
    int32_t *cls;   /* (n_seq) */
    double *sc;     /* (T) scores of the live rows */
    int *idx;       /* (T) */
    size_t cap_tok, cap_live;
    int cap_seq, T0;
} saliency_state;

double saliency_pass_flops(const bert_config *c, int n, int each) {
    const double F = flops_dense(c, n), B = F + 4.0 * c->layers * (double)n * n * c->hidden;
    return F + B + 3.0 * c->hidden * (double)n * (each ? c->layers : 1);
}

static int saliency_wants(const prune_strategy *ps, int layer, prune_point point) {
    const saliency_state *S = ps->state;
    if (point != PRUNE_AT_INPUT) return PRUNE_SKIP;
    if (layer == 0 || S->match || S->eta > 0) return PRUNE_ACT; /* layer 0 computes the scores */
    return S->rate[layer] < 1.0 ? PRUNE_ACT : PRUNE_SKIP;
}

/* The gradient pass over the whole input batch: S->score and the FLOPs it costs. */
static int saliency_scores(saliency_state *S, const prune_step *st, double *flops) {
    const bert_model *m = S->m;
    const int n_seq = st->n_seq, C = m->cfg.num_labels, H = m->cfg.hidden;
    if (!st->input_ids || !st->input_off) return adp_seterr("saliency: the engine passed no input ids");
    const int T0 = st->input_off[n_seq], reps = S->each ? S->n_layers : 1;
    if ((size_t)T0 * reps > S->cap_tok) {
        free(S->score);
        S->cap_tok = (size_t)T0 * reps;
        S->score = mallocCheck(sizeof(float) * S->cap_tok);
    }
    if (n_seq > S->cap_seq) {
        free(S->dlogits), free(S->cls);
        S->cap_seq = n_seq;
        S->dlogits = mallocCheck(sizeof(float) * (size_t)n_seq * C);
        S->cls = mallocCheck(sizeof(int32_t) * (size_t)n_seq);
    }
    S->T0 = T0;
    bert_batch b = {.n_seq = n_seq, .ids = st->input_ids, .types = st->input_types, .off = st->input_off};
    bert_train_opts o = {.keep_input_grads = 1}; /* dropout off, dense */
    if (bert_train_forward(&S->tc, m, &b, &o) != ADP_OK) return adp_preferr("saliency pass: ");
    memset(S->dlogits, 0, sizeof(float) * (size_t)n_seq * C);
    for (int s = 0; s < n_seq; s++) {
        const float *lg = S->tc.logits + (size_t)s * C;
        int best = 0;
        for (int k = 1; k < C; k++)
            if (lg[k] > lg[best]) best = k;
        S->cls[s] = best;
        S->dlogits[(size_t)s * C + best] = 1.0f;
    }
    if (bert_train_backward(&S->tc, m, NULL, S->dlogits, NULL) != ADP_OK) return adp_preferr("saliency pass: ");
    for (int r = 0; r < reps; r++) {
        int T;
        const float *h = bert_train_hidden(&S->tc, r, &T, NULL, NULL), *g = bert_train_hidden_grad(&S->tc, r);
        ASSERT(T == T0); /* nothing is dropped in the dense pass */
        float *out = S->score + (size_t)r * T0;
#pragma omp parallel for schedule(static) if ((size_t)T0 * H > 65536)
        for (int t = 0; t < T0; t++) {
            double acc = 0;
            for (int d = 0; d < H; d++) {
                double v = (double)g[(size_t)t * H + d] * h[(size_t)t * H + d];
                acc += v * v;
            }
            out[t] = (float)sqrt(acc);
        }
    }
    if (flops)
        for (int s = 0; s < n_seq; s++)
            flops[s] += saliency_pass_flops(&m->cfg, st->input_off[s + 1] - st->input_off[s], S->each);
    return ADP_OK;
}

static int saliency_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    saliency_state *S = ps->state;
    const int l = st->layer, T = st->off[st->n_seq];
    if (l == 0 && saliency_scores(S, st, flops) != ADP_OK) return ADP_ERR;
    if (!S->score || st->input_off[st->n_seq] != S->T0)
        return adp_seterr("saliency: layer %d of a batch whose layer 0 it did not see", l);
    if ((size_t)T > S->cap_live) {
        free(S->sc), free(S->idx);
        S->cap_live = (size_t)T;
        S->sc = mallocCheck(sizeof(double) * S->cap_live);
        S->idx = mallocCheck(sizeof(int) * S->cap_live);
    }
    const float *raw = S->score + (size_t)(S->each ? l : 0) * S->T0;
    baseline_trace_step(S->trace, st);
    for (int s = 0; s < st->n_seq; s++) {
        const int r0 = st->off[s], n = st->off[s + 1] - r0;
        double *sc = S->sc + r0, sum = 0;
        for (int i = 0; i < n; i++) sum += sc[i] = raw[st->input_off[s] + st->pos[r0 + i]];
        baseline_trace_put(S->trace, st, s, sc);
        if (S->eta > 0) {
            if (flops) flops[s] += 2.0 * n;
            if (!(sum > 0)) continue;
            const double thr = S->eta / n;
            for (int i = 1; i < n; i++) keep[r0 + i] = sc[i] / sum >= thr;
            continue;
        }
        int k;
        if (S->match) {
            const int *row;
            if (match_counts_row(S->match, st->batch_first + s, st->orig_len[s], &row) != ADP_OK) return ADP_ERR;
            k = row[l];
            if (k > n)
                return adp_seterr("--match %s: example %d had %d tokens entering layer %d, but only %d are left",
                                  S->match->path, st->batch_first + s, k, l, n);
        } else {
            k = round_count(S->rate[l] * n, 1, n);
        }
        keep_top_k(keep + r0, S->idx + r0, sc, n, k);
    }
    return ADP_OK;
}

static void saliency_destroy(prune_strategy *ps) {
    saliency_state *S = ps->state;
    if (S) {
        bert_train_ctx_free(&S->tc);
        free(S->rate), free(S->score), free(S->dlogits), free(S->cls), free(S->sc), free(S->idx);
    }
    free(S);
    ps->state = NULL;
}

int saliency_strategy_create(prune_strategy *ps, const bert_model *m, int each, double eta, const double *rate,
                             const match_counts *match, baseline_trace *trace) {
    const int L = m->cfg.layers;
    if ((eta > 0) + (rate != NULL) + (match != NULL) != 1)
        return adp_seterr("saliency: give exactly one of --eta, --keep-rate and --match");
    if (match && match->n_layers != L)
        return adp_seterr("saliency: --match %s has %d layers, the model %d", match->path, match->n_layers, L);
    if (eta > 0 && !(eta <= 1e6)) return adp_seterr("saliency: --eta %g is outside (0, 1e6]", eta);
    if (rate)
        for (int l = 0; l < L; l++)
            if (!(rate[l] > 0.0 && rate[l] <= 1.0))
                return adp_seterr("saliency: keep-rate %g for layer %d is outside (0, 1]", rate[l], l);
    saliency_state *S = callocCheck(1, sizeof *S);
    S->m = m;
    S->n_layers = L;
    S->each = each;
    S->eta = eta > 0 ? eta : 0;
    S->match = match;
    S->trace = trace;
    bert_train_ctx_init(&S->tc);
    if (rate) {
        S->rate = mallocCheck(sizeof(double) * (size_t)L);
        memcpy(S->rate, rate, sizeof(double) * (size_t)L);
    }
    memset(ps, 0, sizeof *ps);
    ps->name = "saliency";
    ps->state = S;
    ps->wants = saliency_wants;
    ps->select = saliency_select;
    ps->destroy = saliency_destroy;
    return ADP_OK;
}

int saliency_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    (void)st;
    const int L = m->cfg.layers;
    int each = 0;
    if (o->saliency_layer) {
        if (!strcmp(o->saliency_layer, "each")) each = 1;
        else if (strcmp(o->saliency_layer, "input") != 0)
            return adp_seterr("--saliency-layer: expected input or each, got '%s'", o->saliency_layer);
    }
    const int given = (o->eta >= 0) + (o->keep_rate != NULL) + (o->match != NULL);
    if (given == 0) return adp_seterr("--method saliency needs --eta E, --keep-rate R or --match FILE");
    if (given > 1) return adp_seterr("saliency: give one of --eta, --keep-rate and --match, not several");
    if (o->eta == 0) return adp_seterr("saliency: --eta must be > 0 (0 would keep every token)");
    double *rate = NULL;
    int rc = ADP_OK;
    const char *layer = each ? "each" : "input";
    if (o->keep_rate) {
        rate = mallocCheck(sizeof(double) * (size_t)(L + 1));
        int n = 0, frac;
        rc = parse_number_list("--keep-rate", o->keep_rate, rate, L + 1, &n, &frac);
        if (rc == ADP_OK && n != 1 && n != L)
            rc = adp_seterr("saliency: --keep-rate takes one rate or %d (one per layer), got %d values (sweep with "
                            "';')", L, n);
        if (rc == ADP_OK && n == 1)
            for (int l = 1; l < L; l++) rate[l] = rate[0];
        snprintf(me->label, sizeof me->label, "saliency keep_rate=%s layer=%s", o->keep_rate, layer);
    } else if (o->match) {
        rc = baseline_load_match(me, o, L);
        snprintf(me->label, sizeof me->label, "saliency match=%s layer=%s", o->match, layer);
    } else {
        snprintf(me->label, sizeof me->label, "saliency eta=%g layer=%s", o->eta, layer);
    }
    if (rc == ADP_OK)
        rc = saliency_strategy_create(&me->strategy, m, each, o->keep_rate || o->match ? 0 : o->eta, rate,
                                      me->has_match ? &me->match : NULL, &me->scores);
    free(rate);
    if (rc != ADP_OK) {
        method_free(me);
        return ADP_ERR;
    }
    me->ps = &me->strategy;
    me->quality_reference = 1;
    return ADP_OK;
}

/* power.c: PoWER-BERT's word-vector elimination (Goyal et al., ICML 2020; IBM/PoWER-BERT,
 * model/model.py, Hard_Extract) with a given retention configuration.
 *
 * Significance of token i at layer l, from that layer's attention averaged over heads
 * (avg = mean_h P_h):  sig_i = sum_q avg[q, i] - avg[i, i], the attention it receives
 * from the other tokens (atten_col: column sum minus the diagonal).
 * Extraction after layer l's attention block (Add & LayerNorm), before its FFN
 * (PRUNE_AFTER_ATTENTION), keeping [CLS] and the k_l - 1 other tokens of highest
 * significance (ties: the earlier token, as tf.math.top_k), in their original order.
 * Retention k_1 >= ... >= k_L (PoWER-BERT's layer j = our l = j - 1): absolute counts
 * (PoWER-BERT pads every input to one length, where padding, which receives no attention,
 * is extracted last; with unpadded sequences that is min(k_l, n)), or fractions f_l of
 * each sequence's original length n_0, k_l = max(1, round(f_l * n_0)) half to even.
 * PoWER-BERT learns the configuration (Soft-Extract with a layer-scaled L1 penalty) and
 * then re-trains with hard extraction; a trained configuration is stored as the extra
 * checkpoint tensor "power.retention" (L, F32 holding integers), read by
 * power_retention_load.
 * --match: after layer l's attention keep the matched run's count for layer l + 1, so
 * that layer l + 1 sees exactly as many tokens as it did there (l = 0..L-2).
 * Scoring FLOPs per sequence at a layer that can drop something (n = tokens in the
 * layer's attention > k_l): A * n^2 + A * n additions (column sums and diagonals over
 * heads) and 2n for subtracting the diagonal and dividing by A. */
#include <math.h>
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

typedef struct {
    int n_layers;
    double *keep; /* (L) counts or fractions */
    int fractions;
    const match_counts *match;
    baseline_trace *trace;
    double *score, *diag;
    int *idx, *k;
    size_t cap;
    int cap_seq;
} power_state;

int power_retention_load(double *retention, int *found, const st_file *st, int n_layers) {
    *found = 0;
    const st_tensor *t = st ? st_find(st, "power.retention") : NULL;
    if (!t) return ADP_OK;
    float *v = mallocCheck(sizeof(float) * (size_t)n_layers);
    int64_t shape[1] = {n_layers};
    if (st_read_f32(st, t, v, shape, 1) != ADP_OK) {
        free(v);
        return ADP_ERR;
    }
    int rc = ADP_OK;
    for (int l = 0; l < n_layers && rc == ADP_OK; l++) {
        if (!(v[l] >= 1.0f && v[l] <= 1e6f) || v[l] != floorf(v[l]))
            rc = adp_seterr("%s: power.retention[%d] = %g is not a token count >= 1", st->path, l, v[l]);
        else
            retention[l] = v[l];
    }
    free(v);
    if (rc == ADP_OK) *found = 1;
    return rc;
}

static int power_wants(const prune_strategy *ps, int layer, prune_point point) {
    const power_state *S = ps->state;
    if (point != PRUNE_AFTER_ATTENTION) return PRUNE_SKIP;
    if (S->match) return layer < S->n_layers - 1 ? PRUNE_ACT_WITH_PROBS : PRUNE_SKIP;
    if (S->fractions && S->keep[layer] >= 1.0) return PRUNE_SKIP;
    /* the previous layer already cut every sequence to at most this many */
    if (layer > 0 && S->keep[layer] >= S->keep[layer - 1]) return PRUNE_SKIP;
    return PRUNE_ACT_WITH_PROBS;
}

static int power_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    power_state *S = ps->state;
    const int T = st->off[st->n_seq], l = st->layer, A = st->n_heads;
    if ((size_t)T > S->cap) {
        free(S->score), free(S->diag), free(S->idx);
        S->cap = (size_t)T;
        S->score = mallocCheck(sizeof(double) * S->cap);
        S->diag = mallocCheck(sizeof(double) * S->cap);
        S->idx = mallocCheck(sizeof(int) * S->cap);
    }
    if (st->n_seq > S->cap_seq) {
        free(S->k);
        S->cap_seq = st->n_seq;
        S->k = mallocCheck(sizeof(int) * (size_t)S->cap_seq);
    }
    for (int s = 0; s < st->n_seq; s++) {
        const int n0 = st->orig_len[s];
        if (S->match) {
            const int *row;
            if (match_counts_row(S->match, st->batch_first + s, n0, &row) != ADP_OK) return ADP_ERR;
            S->k[s] = row[l + 1];
        } else if (S->fractions) {
            S->k[s] = round_count(S->keep[l] * n0, 1, n0);
        } else {
            S->k[s] = (int)ADP_MIN(S->keep[l], (double)n0);
        }
    }
    baseline_trace_step(S->trace, st);
#pragma omp parallel for schedule(dynamic, 1) if (T > 256)
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0;
        if (S->k[s] >= n) continue;
        double *sig = S->score + r0, *dg = S->diag + r0;
        attn_received(sig, dg, st->probs + st->prob_off[s], n, A);
        for (int i = 0; i < n; i++) sig[i] = (sig[i] - dg[i]) / A;
        if (flops) flops[s] += (double)A * n * n + (double)A * n + 2.0 * n;
        baseline_trace_put(S->trace, st, s, sig);
        keep_top_k(keep + r0, S->idx + r0, sig, n, S->k[s]);
    }
    return ADP_OK;
}

static void power_destroy(prune_strategy *ps) {
    power_state *S = ps->state;
    if (S) free(S->keep), free(S->score), free(S->diag), free(S->idx), free(S->k);
    free(S);
    ps->state = NULL;
}

int power_strategy_create(prune_strategy *ps, int n_layers, const double *retention, int fractions,
                          const match_counts *match, baseline_trace *trace) {
    if (match) {
        if (match->n_layers != n_layers)
            return adp_seterr("power: --match %s has %d layers, the model %d", match->path, match->n_layers, n_layers);
    } else {
        for (int l = 0; l < n_layers; l++) {
            double v = retention[l];
            if (fractions ? !(v > 0.0 && v <= 1.0) : !(v >= 1.0 && v <= 1e6 && v == floor(v)))
                return adp_seterr("power: retention[%d] = %g is not %s", l, v,
                                  fractions ? "a fraction in (0, 1]" : "a token count >= 1");
            if (l > 0 && v > retention[l - 1])
                return adp_seterr("power: retention[%d] = %g exceeds retention[%d] = %g (PoWER-BERT's configuration "
                                  "must be non-increasing)", l, v, l - 1, retention[l - 1]);
        }
    }
    power_state *S = callocCheck(1, sizeof *S);
    S->n_layers = n_layers;
    S->fractions = fractions;
    S->match = match;
    S->trace = trace;
    S->keep = mallocCheck(sizeof(double) * (size_t)n_layers);
    for (int l = 0; l < n_layers; l++) S->keep[l] = match ? 0.0 : retention[l];
    memset(ps, 0, sizeof *ps);
    ps->name = "power";
    ps->state = S;
    ps->wants = power_wants;
    ps->select = power_select;
    ps->destroy = power_destroy;
    return ADP_OK;
}

int power_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    const int L = m->cfg.layers;
    if (o->match && o->retention) return adp_seterr("power: give --retention or --match, not both");
    double *k = mallocCheck(sizeof(double) * (size_t)(L + 1));
    int n = 0, frac = 0, found = 0, rc = ADP_OK;
    if (o->retention) {
        rc = parse_number_list("--retention", o->retention, k, L + 1, &n, &frac);
        if (rc == ADP_OK && n != L)
            rc = adp_seterr("power: --retention needs %d values (one per layer), got %d (sweep with ';')", L, n);
        if (rc == ADP_OK && frac > 0 && frac < n)
            rc = adp_seterr("power: --retention mixes token counts and fractions ('%s')", o->retention);
        frac = frac > 0;
        snprintf(me->label, sizeof me->label, "power retention=%s", o->retention);
    } else if (o->match) {
        rc = baseline_load_match(me, o, L);
        snprintf(me->label, sizeof me->label, "power match=%s", o->match);
    } else if ((rc = power_retention_load(k, &found, st, L)) == ADP_OK && !found) {
        rc = adp_seterr("--method power needs --retention K_0,...,K_%d (or --match FILE, or a checkpoint with a "
                        "learned configuration, tensor power.retention)", L - 1);
    } else if (rc == ADP_OK) {
        snprintf(me->label, sizeof me->label, "power retention=checkpoint");
    }
    if (rc == ADP_OK)
        rc = power_strategy_create(&me->strategy, L, k, frac, me->has_match ? &me->match : NULL, &me->scores);
    free(k);
    if (rc != ADP_OK) {
        method_free(me);
        return ADP_ERR;
    }
    me->ps = &me->strategy;
    return ADP_OK;
}

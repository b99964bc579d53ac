/* cascade.c: SpAtten's cascade token pruning (Wang et al., HPCA 2021) as LTP implements it
 * (kssteven418/LTP, prune_modules.py, CascadeTokenPruner), training-free.
 *
 * Score of token i at layer l: the attention probabilities it receives, summed over heads
 * and query rows, from that layer's own attention (live rows only; LTP zeroes the rows of
 * masked queries, we have none).
 * Schedule: the first max(3, ceil(0.15 L)) layers keep every token; after them the keep
 * rate falls linearly to --keep-rate r at the last layer:
 *     rate_l = max(0.01, 1 + (r - 1) * (l - P + 1) / (L - P)),  P = max(3, ceil(0.15 L)).
 * Where: after layer l's attention block (the engine's PRUNE_AFTER_ATTENTION), as in LTP,
 * where the pruner runs inside the self-attention on its probabilities and its new mask
 * applies from the next layer on (its FFN is token-wise, so running it on the pruned rows
 * changes nothing; LTP counts those FFN FLOPs at the pruned length too).
 * Count: k_l = round(n_0 * rate_l) with n_0 the sequence's original length (LTP's
 * sentence_lengths, computed once from the input mask) rounded half to even (torch.round),
 * at least 1.  We keep [CLS] and the top k_l - 1 other tokens, k_l in all: LTP takes the
 * top k_l of all tokens without forcing [CLS], which our engine always keeps; counting
 * [CLS] inside k_l keeps the count LTP would keep.  Ties go to the earlier token.  A
 * token dropped at one layer is gone for good; LTP's counts never grow (the rates fall and
 * k_l uses n_0), so that changes nothing.
 * --match: after layer l's attention keep the matched run's count for layer l + 1, so that
 * layer l + 1 sees exactly as many tokens as it did in that run (l = 0..L-2).
 * Scoring FLOPs: A * n^2 additions per sequence at every layer where tokens can be dropped
 * (n = tokens in that layer's attention); none where k_l >= n. */
#include <math.h>
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

typedef struct {
    int n_layers;
    double *rate;
    const match_counts *match;
    baseline_trace *trace;
    double *score;
    int *idx, *k;
    size_t cap;
    int cap_seq;
} cascade_state;

double cascade_layer_rate(int layer, int n_layers, double keep_rate) {
    int before = (int)ceil(0.15 * n_layers);
    if (before < 3) before = 3;
    if (layer < before) return 1.0;
    double m = (keep_rate - 1.0) / (n_layers - before);
    double r = m * (layer - before + 1) + 1.0;
    return r > 0.01 ? r : 0.01;
}

static int cascade_wants(const prune_strategy *ps, int layer, prune_point point) {
    const cascade_state *S = ps->state;
    if (point != PRUNE_AFTER_ATTENTION) return PRUNE_SKIP;
    if (S->match) return layer < S->n_layers - 1 ? PRUNE_ACT_WITH_PROBS : PRUNE_SKIP;
    return S->rate[layer] < 1.0 ? PRUNE_ACT_WITH_PROBS : PRUNE_SKIP;
}

static int cascade_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    cascade_state *S = ps->state;
    const int T = st->off[st->n_seq], l = st->layer, A = st->n_heads;
    if ((size_t)T > S->cap) {
        free(S->score), free(S->idx);
        S->cap = (size_t)T;
        S->score = mallocCheck(sizeof(double) * S->cap);
        S->idx = mallocCheck(sizeof(int) * S->cap);
    }
    if (st->n_seq > S->cap_seq) {
        free(S->k);
        S->cap_seq = st->n_seq;
        S->k = mallocCheck(sizeof(int) * (size_t)S->cap_seq);
    }
    for (int s = 0; s < st->n_seq; s++) {
        if (S->match) {
            const int *row;
            if (match_counts_row(S->match, st->batch_first + s, st->orig_len[s], &row) != ADP_OK) return ADP_ERR;
            S->k[s] = row[l + 1];
        } else {
            S->k[s] = round_count(st->orig_len[s] * S->rate[l], 1, st->orig_len[s]);
        }
    }
    baseline_trace_step(S->trace, st);
#pragma omp parallel for schedule(dynamic, 1) if (T > 256)
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0;
        if (S->k[s] >= n) continue;
        attn_received(S->score + r0, NULL, st->probs + st->prob_off[s], n, A);
        if (flops) flops[s] += (double)A * n * n;
        baseline_trace_put(S->trace, st, s, S->score + r0);
        keep_top_k(keep + r0, S->idx + r0, S->score + r0, n, S->k[s]);
    }
    return ADP_OK;
}

static void cascade_destroy(prune_strategy *ps) {
    cascade_state *S = ps->state;
    if (S) free(S->rate), free(S->score), free(S->idx), free(S->k);
    free(S);
    ps->state = NULL;
}

int cascade_strategy_create(prune_strategy *ps, int n_layers, double keep_rate, const match_counts *match,
                            baseline_trace *trace) {
    if (!match) {
        if (!(keep_rate > 0.0 && keep_rate <= 1.0))
            return adp_seterr("cascade: --keep-rate %g is outside (0, 1]", keep_rate);
        int before = ADP_MAX(3, (int)ceil(0.15 * n_layers));
        if (before >= n_layers)
            return adp_seterr("cascade: SpAtten leaves the first %d layers unpruned; a %d-layer model would never be "
                              "pruned", before, n_layers);
    } else if (match->n_layers != n_layers) {
        return adp_seterr("cascade: --match %s has %d layers, the model %d", match->path, match->n_layers, n_layers);
    }
    cascade_state *S = callocCheck(1, sizeof *S);
    S->n_layers = n_layers;
    S->match = match;
    S->trace = trace;
    S->rate = mallocCheck(sizeof(double) * (size_t)n_layers);
    for (int l = 0; l < n_layers; l++) S->rate[l] = match ? 1.0 : cascade_layer_rate(l, n_layers, keep_rate);
    memset(ps, 0, sizeof *ps);
    ps->name = "cascade";
    ps->state = S;
    ps->wants = cascade_wants;
    ps->select = cascade_select;
    ps->destroy = cascade_destroy;
    return ADP_OK;
}

int cascade_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    (void)st;
    const int L = m->cfg.layers;
    double r = 1.0;
    if (o->match && o->keep_rate) return adp_seterr("cascade: give --keep-rate or --match, not both");
    if (!o->match) {
        if (!o->keep_rate) return adp_seterr("--method cascade needs --keep-rate R (or --match FILE)");
        double *v = mallocCheck(sizeof(double) * (size_t)(L + 1));
        int n, frac, rc = parse_number_list("--keep-rate", o->keep_rate, v, L + 1, &n, &frac);
        if (rc == ADP_OK && n != 1)
            rc = adp_seterr("cascade: --keep-rate takes one rate (the last layer's), got %d values (sweep with ';')",
                            n);
        r = v[0];
        free(v);
        if (rc != ADP_OK) return ADP_ERR;
    }
    if (baseline_load_match(me, o, L) != ADP_OK) return ADP_ERR;
    if (cascade_strategy_create(&me->strategy, L, r, me->has_match ? &me->match : NULL, &me->scores) != ADP_OK) {
        method_free(me);
        return ADP_ERR;
    }
    me->ps = &me->strategy;
    if (o->match) snprintf(me->label, sizeof me->label, "cascade match=%s", o->match);
    else snprintf(me->label, sizeof me->label, "cascade keep_rate=%g", r);
    return ADP_OK;
}

/* ltp.c: Learned Token Pruning (Kim et al., KDD 2022; kssteven418/LTP, prune_modules.py,
 * AbsoluteThresholdTokenPruner), with given thresholds: the training-free rising variant
 * (--final-threshold T) or thresholds learned elsewhere (checkpoint tensor ltp.threshold).
 *
 * Importance of token i at layer l: the mean attention it receives over heads and query
 * rows, from layer l's own attention:
 *     s_i = (1 / (A * n_0)) * sum_h sum_q P_h[q, i]
 * with n_0 the sequence's original length.  LTP prunes by masking, so pruned tokens stay
 * in its tensors with their query rows zeroed and the mean divides by every row; on an
 * unpadded batch of one that is n_0, which is what we divide by.  (With padding LTP
 * divides by the padded length, which makes a token's score depend on the batch; we do
 * not copy that.)
 * Rule: token i is dropped when s_i < max(1e-5, theta_l), after layer l's attention block
 * (PRUNE_AFTER_ATTENTION: LTP's pruner runs inside the self-attention and its mask applies
 * from the next layer on); a layer with theta_l = 0 prunes nothing, as in LTP.  [CLS] is
 * kept by the engine (LTP does not force it).
 * Thresholds: LTP module i (0-based, module_num = i) starts at final * i / L, so the
 * rising, training-free variant is theta_l = T * l / L for l = 0..L-1: layer 0 never
 * prunes and the last layer's threshold is T (L-1)/L.  LTP then learns an offset per
 * layer (soft masks, then hard); a trained model stores the resulting thresholds as the
 * extra checkpoint tensor "ltp.threshold" (L, F32), which ltp_thresholds_load reads.
 * Scoring FLOPs: A * n^2 additions and n multiplications per sequence at every layer
 * with theta_l > 0 (n = tokens in that layer's attention). */
#include <math.h>
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

#define LTP_MIN_THRESHOLD 1e-5

typedef struct {
    int n_layers;
    double *theta;
    baseline_trace *trace;
    double *score;
    size_t cap;
} ltp_state;

void ltp_rising_thresholds(double *threshold, int n_layers, double final_threshold) {
    for (int l = 0; l < n_layers; l++) threshold[l] = final_threshold * l / n_layers;
}

int ltp_thresholds_load(double *threshold, int *found, const st_file *st, int n_layers) {
    *found = 0;
    const st_tensor *t = st ? st_find(st, "ltp.threshold") : NULL;
    if (!t) return ADP_OK;
    float *v = mallocCheck(sizeof(float) * (size_t)n_layers);
    int64_t shape[1] = {n_layers};
    if (st_read_f32(st, t, v, shape, 1) != ADP_OK) {
        free(v);
        return ADP_ERR;
    }
    for (int l = 0; l < n_layers; l++) {
        if (!(v[l] >= 0.0f && v[l] <= 1.0f)) {
            double bad = v[l];
            free(v);
            return adp_seterr("%s: ltp.threshold[%d] = %g is outside [0, 1]", st->path, l, bad);
        }
        threshold[l] = v[l];
    }
    free(v);
    *found = 1;
    return ADP_OK;
}

static int ltp_wants(const prune_strategy *ps, int layer, prune_point point) {
    const ltp_state *S = ps->state;
    return point == PRUNE_AFTER_ATTENTION && S->theta[layer] > 0.0 ? PRUNE_ACT_WITH_PROBS : PRUNE_SKIP;
}

static int ltp_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    ltp_state *S = ps->state;
    const int T = st->off[st->n_seq], A = st->n_heads;
    if ((size_t)T > S->cap) {
        free(S->score);
        S->cap = (size_t)T;
        S->score = mallocCheck(sizeof(double) * S->cap);
    }
    const double theta = ADP_MAX(LTP_MIN_THRESHOLD, S->theta[st->layer]);
    baseline_trace_step(S->trace, st);
#pragma omp parallel for schedule(dynamic, 1) if (T > 256)
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0;
        double *sc = S->score + r0;
        attn_received(sc, NULL, st->probs + st->prob_off[s], n, A);
        const double inv = 1.0 / ((double)A * st->orig_len[s]);
        for (int i = 0; i < n; i++) sc[i] *= inv;
        if (flops) flops[s] += (double)A * n * n + n;
        baseline_trace_put(S->trace, st, s, sc);
        for (int i = 1; i < n; i++) keep[r0 + i] = !(sc[i] < theta);
    }
    return ADP_OK;
}

static void ltp_destroy(prune_strategy *ps) {
    ltp_state *S = ps->state;
    if (S) free(S->theta), free(S->score);
    free(S);
    ps->state = NULL;
}

int ltp_strategy_create(prune_strategy *ps, int n_layers, const double *threshold, baseline_trace *trace) {
    for (int l = 0; l < n_layers; l++)
        if (!(threshold[l] >= 0.0 && threshold[l] <= 1.0))
            return adp_seterr("ltp: the threshold of layer %d, %g, is outside [0, 1]", l, threshold[l]);
    ltp_state *S = callocCheck(1, sizeof *S);
    S->n_layers = n_layers;
    S->trace = trace;
    S->theta = mallocCheck(sizeof(double) * (size_t)n_layers);
    memcpy(S->theta, threshold, sizeof(double) * (size_t)n_layers);
    memset(ps, 0, sizeof *ps);
    ps->name = "ltp";
    ps->state = S;
    ps->wants = ltp_wants;
    ps->select = ltp_select;
    ps->destroy = ltp_destroy;
    return ADP_OK;
}

int ltp_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    const int L = m->cfg.layers;
    double *theta = mallocCheck(sizeof(double) * (size_t)L);
    int found = 0, rc = ADP_OK;
    if (o->final_threshold >= 0) {
        ltp_rising_thresholds(theta, L, o->final_threshold);
        snprintf(me->label, sizeof me->label, "ltp final_threshold=%g", o->final_threshold);
    } else if ((rc = ltp_thresholds_load(theta, &found, st, L)) == ADP_OK && !found) {
        rc = adp_seterr("--method ltp needs --final-threshold T (or a checkpoint with learned thresholds, tensor "
                        "ltp.threshold)");
    } else if (rc == ADP_OK) {
        snprintf(me->label, sizeof me->label, "ltp thresholds=checkpoint");
    }
    if (rc == ADP_OK) rc = ltp_strategy_create(&me->strategy, L, theta, &me->scores);
    free(theta);
    if (rc != ADP_OK) return ADP_ERR;
    me->ps = &me->strategy;
    return ADP_OK;
}

/* truncate.c: a positional control: before layer 0 keep the first k tokens of every
 * sequence ([CLS] first) and drop the rest, as if the input had been cut at k WordPieces
 * (the final [SEP] goes too).  k = min(--keep K, n) for a count, or max(1, round(f * n))
 * half to even for a fraction f.  Scoring FLOPs: none. */
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

typedef struct {
    double keep;
    int fraction;
} truncate_state;

static int truncate_wants(const prune_strategy *ps, int layer, prune_point point) {
    (void)ps;
    return layer == 0 && point == PRUNE_AT_INPUT ? PRUNE_ACT : PRUNE_SKIP;
}

static int truncate_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    const truncate_state *S = ps->state;
    (void)flops;
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0;
        int k = S->fraction ? round_count(S->keep * n, 1, n) : (int)ADP_MIN(S->keep, (double)n);
        for (int i = k; i < n; i++) keep[r0 + i] = 0;
    }
    return ADP_OK;
}

static void truncate_destroy(prune_strategy *ps) {
    free(ps->state);
    ps->state = NULL;
}

int truncate_strategy_create(prune_strategy *ps, double keep, int fraction) {
    if (fraction ? !(keep > 0.0 && keep <= 1.0) : !(keep >= 1.0 && keep <= 1e9 && keep == (double)(long)keep))
        return adp_seterr("truncate: --keep %g is not %s", keep,
                          fraction ? "a fraction in (0, 1]" : "a token count >= 1");
    truncate_state *S = callocCheck(1, sizeof *S);
    S->keep = keep;
    S->fraction = fraction;
    memset(ps, 0, sizeof *ps);
    ps->name = "truncate";
    ps->state = S;
    ps->wants = truncate_wants;
    ps->select = truncate_select;
    ps->destroy = truncate_destroy;
    return ADP_OK;
}

int truncate_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    (void)m, (void)st;
    if (!o->keep) return adp_seterr("--method truncate needs --keep K (a count, or a fraction like 0.5)");
    double v[2];
    int n, frac;
    if (parse_number_list("--keep", o->keep, v, 2, &n, &frac) != ADP_OK) return ADP_ERR;
    if (n != 1) return adp_seterr("truncate: --keep takes one value, got %d", n);
    if (truncate_strategy_create(&me->strategy, v[0], frac > 0) != ADP_OK) return ADP_ERR;
    me->ps = &me->strategy;
    snprintf(me->label, sizeof me->label, "truncate keep=%s", o->keep);
    return ADP_OK;
}

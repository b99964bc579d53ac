/* random.c: a content-blind control: before every layer (PRUNE_AT_INPUT) keep [CLS] and a
 * uniformly random subset of the other tokens.
 *
 * Count before layer l, with n tokens alive: k = max(1, round(r_l * n)) half to even
 * (--keep-rate r for every layer, or one rate per layer; the rates compound), or with
 * --match the matched run's count for layer l, so every layer sees exactly the tokens
 * that run's did.
 * The subset is drawn by selection sampling (Knuth's Algorithm S, kept rows in order):
 * walking rows i = 1..n-1 with `need` still to pick among `left` = n - i rows, row i is
 * kept iff below(left) < need, where below(m) = u % m for the next splitmix64 output u.
 * The stream is seeded per example and layer, so an example's draw does not depend on
 * the batch it runs in:
 *     a = u64(seed(S)); b = u64(seed(a ^ e)); stream = seed(b ^ l)
 * (S = --method-seed, e = the example's index, l the layer; seed() and u64() as in
 * engine/rng.h).  Scoring FLOPs: none (integer arithmetic only). */
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"
#include "rng.h"

typedef struct {
    int n_layers;
    double *rate;
    const match_counts *match;
    uint64_t seed;
} random_state;

static void example_rng(adp_rng *r, uint64_t seed, uint64_t example, int layer) {
    adp_rng t;
    rng_seed(&t, seed);
    uint64_t a = rng_u64(&t);
    rng_seed(&t, a ^ example);
    uint64_t b = rng_u64(&t);
    rng_seed(r, b ^ (uint64_t)layer);
}

static int random_wants(const prune_strategy *ps, int layer, prune_point point) {
    const random_state *S = ps->state;
    if (point != PRUNE_AT_INPUT) return PRUNE_SKIP;
    return S->match || S->rate[layer] < 1.0 ? PRUNE_ACT : PRUNE_SKIP;
}

static int random_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    const random_state *S = ps->state;
    (void)flops;
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0, k;
        if (S->match) {
            const int *row;
            if (match_counts_row(S->match, st->batch_first + s, st->orig_len[s], &row) != ADP_OK) return ADP_ERR;
            k = row[st->layer];
            if (k > n)
                return adp_seterr("--match %s: example %d had %d tokens entering layer %d, but only %d are left",
                                  S->match->path, st->batch_first + s, k, st->layer, n);
        } else {
            k = round_count(S->rate[st->layer] * n, 1, n);
        }
        if (k >= n) continue;
        adp_rng r;
        example_rng(&r, S->seed, (uint64_t)(st->batch_first + s), st->layer);
        int need = k - 1;
        for (int i = 1; i < n; i++) {
            int left = n - i;
            int take = need > 0 && (int)rng_below(&r, (uint64_t)left) < need;
            keep[r0 + i] = (uint8_t)take;
            need -= take;
        }
    }
    return ADP_OK;
}

static void random_destroy(prune_strategy *ps) {
    random_state *S = ps->state;
    if (S) free(S->rate);
    free(S);
    ps->state = NULL;
}

int random_strategy_create(prune_strategy *ps, int n_layers, const double *rate, const match_counts *match,
                           uint64_t seed) {
    if (match && match->n_layers != n_layers)
        return adp_seterr("random: --match %s has %d layers, the model %d", match->path, match->n_layers, n_layers);
    if (!match)
        for (int l = 0; l < n_layers; l++)
            if (!(rate[l] > 0.0 && rate[l] <= 1.0))
                return adp_seterr("random: keep-rate %g for layer %d is outside (0, 1]", rate[l], l);
    random_state *S = callocCheck(1, sizeof *S);
    S->n_layers = n_layers;
    S->match = match;
    S->seed = seed;
    S->rate = mallocCheck(sizeof(double) * (size_t)n_layers);
    for (int l = 0; l < n_layers; l++) S->rate[l] = match ? 1.0 : rate[l];
    memset(ps, 0, sizeof *ps);
    ps->name = "random";
    ps->state = S;
    ps->wants = random_wants;
    ps->select = random_select;
    ps->destroy = random_destroy;
    return ADP_OK;
}

int random_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    (void)st;
    const int L = m->cfg.layers;
    if (o->match && o->keep_rate) return adp_seterr("random: give --keep-rate or --match, not both");
    if (!o->match && !o->keep_rate) return adp_seterr("--method random needs --keep-rate R (or --match FILE)");
    double *rate = mallocCheck(sizeof(double) * (size_t)(L + 1));
    int n = 0, frac, rc = ADP_OK;
    if (o->keep_rate) {
        rc = parse_number_list("--keep-rate", o->keep_rate, rate, L + 1, &n, &frac);
        if (rc == ADP_OK && n != 1 && n != L)
            rc = adp_seterr("random: --keep-rate takes one rate or %d (one per layer), got %d values (sweep with "
                            "';')", L, n);
        if (rc == ADP_OK && n == 1)
            for (int l = 1; l < L; l++) rate[l] = rate[0];
        snprintf(me->label, sizeof me->label, "random keep_rate=%s seed=%llu", o->keep_rate,
                 (unsigned long long)o->seed);
    } else {
        rc = baseline_load_match(me, o, L);
        snprintf(me->label, sizeof me->label, "random match=%s seed=%llu", o->match, (unsigned long long)o->seed);
    }
    if (rc == ADP_OK) rc = random_strategy_create(&me->strategy, L, rate, me->has_match ? &me->match : NULL, o->seed);
    free(rate);
    if (rc != ADP_OK) {
        method_free(me);
        return ADP_ERR;
    }
    me->ps = &me->strategy;
    return ADP_OK;
}

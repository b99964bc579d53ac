/* adapler.c: Contribution Predictors, their checkpoint tensors, and the hard-removal
 * strategy (see adapler.h). */
#include "adapler.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "ops.h"
#include "rng.h"

void adapler_weights_alloc(adapler_weights *a, int n_layers, int hidden) {
    memset(a, 0, sizeof *a);
    a->n_layers = n_layers;
    a->hidden = hidden;
    size_t per = (size_t)ADAPLER_CP_DIM * hidden + ADAPLER_CP_DIM + ADAPLER_CP_DIM + 1;
    a->n_params = per * (size_t)n_layers + (size_t)n_layers;
    a->arena = alignedCheck(a->n_params * sizeof(float));
    memset(a->arena, 0, a->n_params * sizeof(float));
    a->cp = mallocCheck(sizeof(adapler_cp) * (size_t)n_layers);
    a->dense1 = callocCheck((size_t)n_layers, sizeof(linear_w));
    float *p = a->arena;
    for (int l = 0; l < n_layers; l++) {
        adapler_cp *c = &a->cp[l];
        c->w1 = p, p += (size_t)ADAPLER_CP_DIM * hidden;
        c->b1 = p, p += ADAPLER_CP_DIM;
        c->w2 = p, p += ADAPLER_CP_DIM;
        c->b2 = p, p += 1;
        a->dense1[l] = (linear_w){.w = c->w1, .b = c->b1, .in = hidden, .out = ADAPLER_CP_DIM};
    }
    a->eta = p, p += n_layers;
    ASSERT((size_t)(p - a->arena) == a->n_params);
    for (int l = 0; l < n_layers; l++) a->eta[l] = ADAPLER_ETA_INIT;
}

void adapler_weights_pack(adapler_weights *a) {
    if (!gemm_packed_enabled()) return;
    size_t per = gemm_packed_size(ADAPLER_CP_DIM, a->hidden);
    if (!a->packed) a->packed = alignedCheck(per * (size_t)a->n_layers * sizeof(float));
    for (int l = 0; l < a->n_layers; l++) {
        gemm_pack(a->packed + per * (size_t)l, a->cp[l].w1, ADAPLER_CP_DIM, a->hidden);
        a->dense1[l].panels = a->packed + per * (size_t)l, a->dense1[l].fmt = FMT_F32;
    }
}

void adapler_weights_unpack(adapler_weights *a) {
    free(a->packed);
    a->packed = NULL;
    for (int l = 0; l < a->n_layers; l++) a->dense1[l].panels = NULL;
}

void adapler_weights_init_random(adapler_weights *a, uint64_t seed) {
    adp_rng r;
    rng_seed(&r, seed);
    for (int l = 0; l < a->n_layers; l++) {
        adapler_cp *c = &a->cp[l];
        float *ws[2] = {c->w1, c->w2};
        size_t ns[2] = {(size_t)ADAPLER_CP_DIM * a->hidden, ADAPLER_CP_DIM};
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < ns[k]; i++) {
                double v;
                do v = rng_normal(&r);
                while (fabs(v) > 2.0);
                ws[k][i] = (float)(0.02 * v);
            }
        memset(c->b1, 0, sizeof(float) * ADAPLER_CP_DIM);
        c->b2[0] = 0;
        a->eta[l] = ADAPLER_ETA_INIT;
    }
    adapler_weights_pack(a);
}

void adapler_weights_free(adapler_weights *a) {
    free(a->arena), free(a->cp), free(a->dense1), free(a->packed);
    memset(a, 0, sizeof *a);
}

static void cp_name(char *buf, size_t cap, int l, const char *what) {
    snprintf(buf, cap, "adapler.predictor.%d.%s", l, what);
}

int adapler_weights_load(adapler_weights *a, const st_file *st, int n_layers, int hidden) {
    if (!st_find(st, "adapler.eta"))
        return adp_seterr("%s has no AdapLeR predictors (no tensor 'adapler.eta'; train one with "
                          "`adapler train --method adapler`)", st->path);
    adapler_weights_alloc(a, n_layers, hidden);
    char name[96];
    for (int l = 0; l < n_layers; l++) {
        adapler_cp *c = &a->cp[l];
        struct {
            const char *what;
            float *dst;
            int ndim;
            int64_t shape[2];
        } t[4] = {{"dense1.weight", c->w1, 2, {ADAPLER_CP_DIM, hidden}},
                  {"dense1.bias", c->b1, 1, {ADAPLER_CP_DIM, 0}},
                  {"dense2.weight", c->w2, 2, {1, ADAPLER_CP_DIM}},
                  {"dense2.bias", c->b2, 1, {1, 0}}};
        for (int k = 0; k < 4; k++) {
            cp_name(name, sizeof name, l, t[k].what);
            const st_tensor *ten = st_find(st, name);
            if (!ten) {
                adapler_weights_free(a);
                return adp_seterr("%s: missing tensor '%s'", st->path, name);
            }
            if (st_read_f32(st, ten, t[k].dst, t[k].shape, t[k].ndim) != ADP_OK) {
                adapler_weights_free(a);
                return ADP_ERR;
            }
        }
    }
    int64_t shape[1] = {n_layers};
    if (st_read_f32(st, st_find(st, "adapler.eta"), a->eta, shape, 1) != ADP_OK) {
        adapler_weights_free(a);
        return ADP_ERR;
    }
    for (int l = 0; l < n_layers; l++)
        if (!(a->eta[l] >= 0.0f && a->eta[l] <= 1e6f)) {
            float bad = a->eta[l];
            adapler_weights_free(a);
            return adp_seterr("%s: adapler.eta[%d] = %g is not a valid threshold", st->path, l, bad);
        }
    adapler_weights_pack(a);
    return ADP_OK;
}

int adapler_weights_extra(const adapler_weights *a, bert_extra_tensor **out) {
    static _Thread_local char names[4 * 128 + 1][64]; /* enough for 128 layers */
    ASSERT(a->n_layers <= 128);
    bert_extra_tensor *e = mallocCheck(sizeof(bert_extra_tensor) * (size_t)(4 * a->n_layers + 1));
    int n = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const adapler_cp *c = &a->cp[l];
        const char *what[4] = {"dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias"};
        const float *data[4] = {c->w1, c->b1, c->w2, c->b2};
        int ndim[4] = {2, 1, 2, 1};
        int64_t s0[4] = {ADAPLER_CP_DIM, ADAPLER_CP_DIM, 1, 1}, s1[4] = {a->hidden, 0, ADAPLER_CP_DIM, 0};
        for (int k = 0; k < 4; k++) {
            cp_name(names[n], sizeof names[n], l, what[k]);
            e[n] = (bert_extra_tensor){.name = names[n], .data = data[k], .ndim = ndim[k], .shape = {s0[k], s1[k]}};
            n++;
        }
    }
    snprintf(names[n], sizeof names[n], "adapler.eta");
    e[n] = (bert_extra_tensor){.name = names[n], .data = a->eta, .ndim = 1, .shape = {a->n_layers}};
    n++;
    *out = e;
    return n;
}

double adapler_cp_flops(int hidden) { return 2.0 * ADAPLER_CP_DIM * hidden + 2.0 * ADAPLER_CP_DIM; }

/* z (T) = dense2(g), g = work (T, CP_DIM) */
static void cp_dense2(float *z, const float *work, const adapler_cp *c, int T) {
    for (int t = 0; t < T; t++) {
        const float *g = work + (size_t)t * ADAPLER_CP_DIM;
        float acc = c->b2[0];
        for (int k = 0; k < ADAPLER_CP_DIM; k++) acc += c->w2[k] * g[k];
        z[t] = acc;
    }
}

void adapler_cp_forward(float *z, float *work, const adapler_weights *a, int layer, const float *h, int T) {
    linear_forward(work, h, &a->dense1[layer], T, ACT_GELU);
    cp_dense2(z, work, &a->cp[layer], T);
}

typedef struct {
    const adapler_weights *a;
    double eta_scale;
    adapler_trace *trace;
    float *z, *work;
    size_t cap;
    size_t *in_off; /* per sequence: index of its first token in the trace */
    int cap_seq;
} adapler_state;

static int adapler_wants(const prune_strategy *ps, int layer, prune_point point) {
    (void)ps, (void)layer;
    return point == PRUNE_AT_INPUT ? PRUNE_ACT : PRUNE_SKIP;
}

static int adapler_select(const prune_strategy *ps, const prune_step *st, uint8_t *keep, double *flops) {
    adapler_state *S = ps->state;
    const int T = st->off[st->n_seq];
    if ((size_t)T > S->cap) {
        free(S->z), free(S->work);
        S->cap = (size_t)T;
        S->z = mallocCheck(sizeof(float) * S->cap);
        S->work = mallocCheck(sizeof(float) * S->cap * ADAPLER_CP_DIM);
    }
    adapler_trace *tr = S->trace;
    if (tr) {
        if (st->n_seq > S->cap_seq) {
            free(S->in_off);
            S->in_off = mallocCheck(sizeof(size_t) * (size_t)st->n_seq);
            S->cap_seq = st->n_seq;
        }
        size_t total = 0;
        for (int s = 0; s < st->n_seq; s++) S->in_off[s] = total, total += (size_t)st->orig_len[s];
        if (st->layer == 0) { /* first call of a batch: fresh trace */
            size_t need = total * (size_t)st->n_layers;
            if (need > tr->cap) {
                free(tr->score);
                tr->score = mallocCheck(sizeof(float) * need);
                tr->cap = need;
            }
            for (size_t i = 0; i < need; i++) tr->score[i] = NAN;
            tr->n_tokens = total;
            tr->n_layers = st->n_layers;
        }
    }
    if (st->scores) memcpy(S->z, st->scores, sizeof(float) * (size_t)T);
    else adapler_cp_forward(S->z, S->work, S->a, st->layer, st->hidden, T);
    const double eta = S->a->eta[st->layer] * S->eta_scale;
    const double cp_flops = adapler_cp_flops(st->hidden_size);
    for (int s = 0; s < st->n_seq; s++) {
        int r0 = st->off[s], n = st->off[s + 1] - r0;
        float *z = S->z + r0;
        softmax_row(z, n);
        double delta = eta / n;
        for (int i = 1; i < n; i++) keep[r0 + i] = z[i] >= delta;
        if (flops) flops[s] += cp_flops * n;
        if (tr)
            for (int i = 0; i < n; i++)
                tr->score[(size_t)st->layer * tr->n_tokens + S->in_off[s] + (size_t)st->pos[r0 + i]] = z[i];
    }
    return ADP_OK;
}

/* prune.h score_rows: the predictor's logits (before the softmax over each sequence) for
 * rows [r0, r1), on the calling thread, through a stack buffer of 48 rows: the same bits as
 * adapler_cp_forward's. */
static void adapler_score_rows(const prune_strategy *ps, int layer, const float *x, int hidden, int r0, int r1,
                               float *scores) {
    const adapler_state *S = ps->state;
    float work[48 * ADAPLER_CP_DIM];
    for (int t = r0; t < r1; t += 48) {
        int n = ADP_MIN(48, r1 - t);
        linear_forward_serial(work, x + (size_t)t * hidden, &S->a->dense1[layer], n, ACT_GELU);
        cp_dense2(scores + t, work, &S->a->cp[layer], n);
    }
}

static void adapler_destroy(prune_strategy *ps) {
    adapler_state *S = ps->state;
    if (S) free(S->z), free(S->work), free(S->in_off);
    free(S);
    ps->state = NULL;
}

int adapler_strategy_create(prune_strategy *ps, const adapler_weights *a, double eta_scale, adapler_trace *trace) {
    if (!(eta_scale >= 0.0 && eta_scale <= 1e6))
        return adp_seterr("adapler: --eta-scale %g out of range [0, 1e6]", eta_scale);
    adapler_state *S = callocCheck(1, sizeof *S);
    S->a = a;
    S->eta_scale = eta_scale;
    S->trace = trace;
    memset(ps, 0, sizeof *ps);
    ps->name = "adapler";
    ps->state = S;
    ps->wants = adapler_wants;
    ps->select = adapler_select;
    ps->score_rows = adapler_score_rows;
    ps->destroy = adapler_destroy;
    return ADP_OK;
}

void adapler_trace_free(adapler_trace *t) {
    free(t->score);
    memset(t, 0, sizeof *t);
}

/* prune.c: gathering kept rows, and the fixed "schedule" strategy. */
#include "prune.h"

#include <math.h>
#include <string.h>

#include "common.h"

static void gather_seq(float *dst, int32_t *pos_dst, const float *src, const int32_t *pos_src, int t0, int t1,
                       int at, int d, const uint8_t *keep) {
    for (int t = t0; t < t1; t++) {
        if (!keep[t]) continue;
        memcpy(dst + (size_t)at * d, src + (size_t)t * d, sizeof(float) * (size_t)d);
        pos_dst[at++] = pos_src[t];
    }
}

int prune_gather(float *dst, int32_t *pos_dst, int *off_dst, const float *src, const int32_t *pos_src,
                 const int *off, int n_seq, int d, const uint8_t *keep) {
    off_dst[0] = 0;
    for (int s = 0; s < n_seq; s++) {
        int k = 0;
        for (int t = off[s]; t < off[s + 1]; t++) k += keep[t] != 0;
        off_dst[s + 1] = off_dst[s] + k;
    }
    /* each sequence's kept rows go, in order, to its new range: no shared state.  A small
     * batch is moved on the calling thread, without entering a parallel construct at all
     * (the pruning step runs inside the encoder's region, where even a one-thread region
     * costs a team's set-up) */
    if ((size_t)off[n_seq] * d > 65536 && n_seq > 1) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int s = 0; s < n_seq; s++) gather_seq(dst, pos_dst, src, pos_src, off[s], off[s + 1], off_dst[s], d, keep);
    } else {
        for (int s = 0; s < n_seq; s++) gather_seq(dst, pos_dst, src, pos_src, off[s], off[s + 1], off_dst[s], d, keep);
    }
    return off_dst[n_seq];
}

typedef struct {
    int n_layers;
    prune_point point;
    float *frac;
} schedule_state;

static int schedule_wants(const prune_strategy *ps, int layer, prune_point point) {
    const schedule_state *st = ps->state;
    return point == st->point && layer < st->n_layers && st->frac[layer] < 1.0f ? PRUNE_ACT : PRUNE_SKIP;
}

static int schedule_select(const prune_strategy *ps, const prune_step *step, uint8_t *keep, double *flops) {
    const schedule_state *st = ps->state;
    double f = st->frac[step->layer];
    for (int s = 0; s < step->n_seq; s++) {
        int r0 = step->off[s], n = step->off[s + 1] - r0;
        for (int i = 1; i < n; i++) keep[r0 + i] = floor(i * f) != floor((i - 1) * f);
    }
    (void)flops;
    return ADP_OK;
}

static void schedule_destroy(prune_strategy *ps) {
    schedule_state *st = ps->state;
    if (st) free(st->frac);
    free(st);
    ps->state = NULL;
}

int prune_schedule_create(prune_strategy *ps, int n_layers, const float *frac, prune_point point) {
    for (int l = 0; l < n_layers; l++)
        if (!(frac[l] >= 0.0f && frac[l] <= 1.0f))
            return adp_seterr("schedule: fraction %g for layer %d is outside [0, 1]", frac[l], l);
    schedule_state *st = callocCheck(1, sizeof *st);
    st->n_layers = n_layers;
    st->point = point;
    st->frac = mallocCheck(sizeof(float) * (size_t)n_layers);
    memcpy(st->frac, frac, sizeof(float) * (size_t)n_layers);
    memset(ps, 0, sizeof *ps);
    ps->name = "schedule";
    ps->state = st;
    ps->wants = schedule_wants;
    ps->select = schedule_select;
    ps->destroy = schedule_destroy;
    ps->select_light = 1;
    return ADP_OK;
}

static int keepall_wants(const prune_strategy *ps, int layer, prune_point point) {
    (void)layer;
    return point == PRUNE_AFTER_ATTENTION && ps->state ? PRUNE_ACT_WITH_PROBS : PRUNE_ACT;
}

static int keepall_select(const prune_strategy *ps, const prune_step *step, uint8_t *keep, double *flops) {
    (void)ps, (void)step, (void)keep, (void)flops;
    return ADP_OK;
}

static void keepall_destroy(prune_strategy *ps) { ps->state = NULL; }

void prune_keepall_create(prune_strategy *ps, int with_probs) {
    static int probs_flag;
    memset(ps, 0, sizeof *ps);
    ps->name = "keepall";
    ps->state = with_probs ? &probs_flag : NULL;
    ps->wants = keepall_wants;
    ps->select = keepall_select;
    ps->destroy = keepall_destroy;
}

/* scores.c: what the attention baselines share: attention received per token, top-k
 * selection with [CLS] kept, rounding, knob lists, and the optional score trace. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

void attn_received(double *recv, double *diag, const float *probs, int n, int A) {
    for (int i = 0; i < n; i++) recv[i] = 0.0;
    if (diag)
        for (int i = 0; i < n; i++) diag[i] = 0.0;
    for (int h = 0; h < A; h++) {
        const float *P = probs + (size_t)h * n * n;
        for (int q = 0; q < n; q++) {
            const float *row = P + (size_t)q * n;
            for (int i = 0; i < n; i++) recv[i] += row[i];
        }
        if (diag)
            for (int i = 0; i < n; i++) diag[i] += P[(size_t)i * n + i];
    }
}

static int by_score_desc(const void *a, const void *b, void *ctx) {
    const double *s = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (s[i] > s[j]) return -1;
    if (s[i] < s[j]) return 1;
    return (i > j) - (i < j);
}

void keep_top_k(uint8_t *keep, int *idx, const double *score, int n, int k) {
    if (k >= n) return;
    if (k < 1) k = 1;
    for (int i = 1; i < n; i++) idx[i - 1] = i;
    qsort_r(idx, (size_t)(n - 1), sizeof(int), by_score_desc, (void *)score);
    for (int i = 1; i < n; i++) keep[i] = 0;
    for (int r = 0; r < k - 1; r++) keep[idx[r]] = 1;
}

int round_count(double x, int lo, int hi) {
    double r = nearbyint(x); /* the default rounding mode: half to even */
    if (!(r >= lo)) return lo;
    if (r > hi) return hi;
    return (int)r;
}

int parse_number_list(const char *opt, const char *s, double *out, int max, int *n, int *n_fractions) {
    *n = 0;
    *n_fractions = 0;
    const char *p = s;
    if (!*p) return adp_seterr("%s: empty list", opt);
    for (;;) {
        const char *start = p;
        while (*p && *p != ',') p++;
        size_t len = (size_t)(p - start);
        char tok[64];
        if (len == 0 || len >= sizeof tok) return adp_seterr("%s: bad entry %d in '%s'", opt, *n + 1, s);
        memcpy(tok, start, len);
        tok[len] = 0;
        char *end;
        double v = strtod(tok, &end);
        if (*end || isspace((unsigned char)tok[0]) || strpbrk(tok, "xX") || !isfinite(v))
            return adp_seterr("%s: '%s' is not a number", opt, tok);
        if (*n >= max) return adp_seterr("%s: more than %d values in '%s'", opt, max, s);
        if (strpbrk(tok, ".eE")) (*n_fractions)++;
        out[(*n)++] = v;
        if (!*p) break;
        p++;
    }
    return ADP_OK;
}

void baseline_trace_free(baseline_trace *t) {
    free(t->score), free(t->in_off);
    memset(t, 0, sizeof *t);
}

void baseline_trace_step(baseline_trace *t, const prune_step *st) {
    if (!t) return;
    if (t->score && st->layer > t->last_layer) { /* same batch, a later layer */
        t->last_layer = st->layer;
        return;
    }
    t->last_layer = st->layer;
    if (st->n_seq > t->cap_seq) {
        free(t->in_off);
        t->in_off = mallocCheck(sizeof(size_t) * (size_t)st->n_seq);
        t->cap_seq = st->n_seq;
    }
    size_t total = 0;
    for (int s = 0; s < st->n_seq; s++) t->in_off[s] = total, total += (size_t)st->orig_len[s];
    size_t need = total * (size_t)st->n_layers;
    if (need > t->cap || !t->score) {
        free(t->score);
        t->score = mallocCheck(sizeof(float) * (need ? need : 1));
        t->cap = need ? need : 1;
    }
    for (size_t i = 0; i < need; i++) t->score[i] = NAN;
    t->n_tokens = total;
    t->n_layers = st->n_layers;
}

void baseline_trace_put(baseline_trace *t, const prune_step *st, int s, const double *score) {
    if (!t) return;
    int r0 = st->off[s], n = st->off[s + 1] - r0;
    float *dst = t->score + (size_t)st->layer * t->n_tokens + t->in_off[s];
    for (int i = 0; i < n; i++) dst[st->pos[r0 + i]] = (float)score[i];
}

/* adapler_train.c: soft removal, the CP loss and the length loss, forward and backward
 * (see adapler_train.h for the equations). */
#include "adapler_train.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "ops.h"

#define KL_EPS 1e-7f
#define DELTA_MAX (1.0f - 1e-6f)

void adapler_train_state_init(adapler_train_state *s) { memset(s, 0, sizeof *s); }

void adapler_train_state_free(adapler_train_state *s) {
    free(s->soft_len), free(s->off), free(s->u), free(s->gu), free(s->c), free(s->a), free(s->S), free(s->clamped);
    free(s->t), free(s->gate), free(s->nprev), free(s->carry), free(s->work), free(s->dz);
    memset(s, 0, sizeof *s);
}

float adapler_soft_S(float x, float delta, float lambda, float *dS_dx, float *dS_ddelta) {
    float S, dx, dd;
    if (x < delta) {
        S = (lambda / delta) * (x - delta) - ADAPLER_BETA / lambda;
        dx = lambda / delta;
        dd = -lambda * x / (delta * delta);
    } else {
        S = (ADAPLER_BETA / lambda) * (x - 1.0f) / (1.0f - delta);
        dx = ADAPLER_BETA / (lambda * (1.0f - delta));
        dd = (ADAPLER_BETA / lambda) * (x - 1.0f) / ((1.0f - delta) * (1.0f - delta));
    }
    if (S > 0.0f) S = 0.0f, dx = dd = 0.0f; /* min(0, ...): only reachable for x > 1 */
    if (dS_dx) *dS_dx = dx;
    if (dS_ddelta) *dS_ddelta = dd;
    return S;
}

static void reserve(adapler_train_state *s, int n_seq, int T, int L, int H) {
    (void)H;
    if ((size_t)T > s->cap_T || L > s->cap_L) {
        size_t Tn = ADP_MAX((size_t)T, s->cap_T);
        int Ln = ADP_MAX(L, s->cap_L);
        free(s->u), free(s->gu), free(s->c), free(s->a), free(s->S), free(s->clamped), free(s->t);
        free(s->carry), free(s->work), free(s->dz), free(s->soft_len);
        s->u = mallocCheck(sizeof(float) * (size_t)Ln * Tn * ADAPLER_CP_DIM);
        s->gu = mallocCheck(sizeof(float) * (size_t)Ln * Tn * ADAPLER_CP_DIM);
        s->c = mallocCheck(sizeof(float) * (size_t)Ln * Tn);
        s->a = mallocCheck(sizeof(float) * (size_t)(Ln + 1) * Tn);
        s->S = mallocCheck(sizeof(float) * (size_t)Ln * Tn);
        s->clamped = mallocCheck((size_t)Ln * Tn);
        s->t = mallocCheck(sizeof(float) * (size_t)Ln * Tn);
        s->carry = mallocCheck(sizeof(float) * Tn);
        s->work = mallocCheck(sizeof(float) * Tn * ADAPLER_CP_DIM);
        s->dz = mallocCheck(sizeof(float) * Tn);
        s->soft_len = mallocCheck(sizeof(double) * (size_t)Ln);
        s->cap_T = Tn, s->cap_L = Ln;
        s->cap_seq = 0; /* per-(layer, sequence) arrays depend on L too */
    }
    if (n_seq > s->cap_seq) {
        free(s->off), free(s->gate), free(s->nprev);
        s->off = mallocCheck(sizeof(int) * (size_t)(n_seq + 1));
        s->gate = mallocCheck(sizeof(float) * (size_t)s->cap_L * (size_t)n_seq);
        s->nprev = mallocCheck(sizeof(float) * (size_t)s->cap_L * (size_t)n_seq);
        s->cap_seq = n_seq;
    }
}

int adapler_train_layer_input(void *user, const bert_layer_view *v) {
    adapler_train_state *s = user;
    const int l = v->layer, T = v->T, H = v->hidden_size, L = v->n_layers;
    if (l == 0) {
        if (!s->w || !s->saliency) return adp_seterr("adapler training: predictors or saliency targets missing");
        if (s->w->n_layers != L || s->w->hidden != H)
            return adp_seterr("adapler training: predictors for L%d H%d, model is L%d H%d", s->w->n_layers,
                              s->w->hidden, L, H);
        reserve(s, v->n_seq, T, L, H);
        s->n_seq = v->n_seq, s->T = T, s->L = L, s->H = H;
        memcpy(s->off, v->off, sizeof(int) * (size_t)(v->n_seq + 1));
        memset(s->a, 0, sizeof(float) * (size_t)T);
        s->loss_cp = s->loss_len = 0;
        for (int k = 0; k < L; k++) s->soft_len[k] = 0;
    }
    if (T != s->T) return adp_seterr("adapler training: rows were dropped before layer %d (soft removal only)", l);
    const adapler_cp *cp = &s->w->cp[l];
    float *u = s->u + (size_t)l * T * ADAPLER_CP_DIM, *gu = s->gu + (size_t)l * T * ADAPLER_CP_DIM;
    /* CP weights change every step: plain sgemm on the (out, in) weights, no packed copy */
    linear_w lw = {.w = cp->w1, .b = cp->b1, .in = H, .out = ADAPLER_CP_DIM};
    linear_forward(u, v->hidden, &lw, T, ACT_NONE);
    memcpy(gu, u, sizeof(float) * (size_t)T * ADAPLER_CP_DIM);
    gelu_forward(gu, (size_t)T * ADAPLER_CP_DIM);
    const float *a_prev = s->a + (size_t)l * T;
    float *a_new = s->a + (size_t)(l + 1) * T, *c = s->c + (size_t)l * T, *S = s->S + (size_t)l * T;
    float *tgt = s->t + (size_t)l * T;
    uint8_t *cl = s->clamped + (size_t)l * T;
    const float eta = s->w->eta[l];
    const double inv_b = 1.0 / s->n_seq;
    for (int q = 0; q < s->n_seq; q++) {
        const int r0 = s->off[q], n = s->off[q + 1] - r0;
        /* CP logits, masked softmax c = softmax(z + a_prev) */
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
            const float *g = gu + (size_t)(r0 + j) * ADAPLER_CP_DIM;
            float z = cp->b2[0];
            for (int k = 0; k < ADAPLER_CP_DIM; k++) z += cp->w2[k] * g[k];
            c[r0 + j] = z + a_prev[r0 + j];
            if (c[r0 + j] > mx) mx = c[r0 + j];
        }
        for (int j = 0; j < n; j++) sum += (c[r0 + j] = (float)exp(c[r0 + j] - mx));
        for (int j = 0; j < n; j++) c[r0 + j] = (float)(c[r0 + j] / sum);
        /* soft length before this layer, gate, targets, KL */
        double nprev = 1.0, gate = 0.0, tsum = 0.0;
        for (int j = 1; j < n; j++) {
            double m = exp(a_prev[r0 + j]);
            nprev += m;
            if (m > gate) gate = m;
        }
        for (int j = 0; j < n; j++) tsum += (tgt[r0 + j] = s->saliency[r0 + j] * expf(a_prev[r0 + j]));
        double kl = 0;
        for (int j = 0; j < n; j++) {
            tgt[r0 + j] = tsum > 0 ? (float)(tgt[r0 + j] / tsum) : 1.0f / n;
            float tc = ADP_MIN(ADP_MAX(tgt[r0 + j], KL_EPS), 1.0f), cc = ADP_MIN(ADP_MAX(c[r0 + j], KL_EPS), 1.0f);
            kl += tc * log((double)tc / cc);
        }
        s->gate[(size_t)l * s->n_seq + q] = (float)gate;
        s->nprev[(size_t)l * s->n_seq + q] = (float)nprev;
        s->loss_cp += (L - l) * gate * kl * inv_b;
        /* soft removal */
        float delta = ADP_MIN((float)(eta / nprev), DELTA_MAX);
        double len = 1.0;
        S[r0] = 0, a_new[r0] = 0, cl[r0] = 0;
        for (int j = 1; j < n; j++) {
            S[r0 + j] = adapler_soft_S(c[r0 + j], delta, s->lambda, NULL, NULL);
            float an = a_prev[r0 + j] + S[r0 + j];
            cl[r0 + j] = an < ADAPLER_MASK_FLOOR;
            a_new[r0 + j] = cl[r0 + j] ? ADAPLER_MASK_FLOOR : an;
            len += exp(a_new[r0 + j]);
        }
        s->loss_len += len * inv_b;
        s->soft_len[l] += len * inv_b;
        memcpy(v->key_logmask + r0, a_new + r0, sizeof(float) * (size_t)n);
    }
    return ADP_OK;
}

int adapler_train_layer_grad(void *user, const bert_layer_view *v, float *d_hidden, const float *d_key_logmask) {
    adapler_train_state *s = user;
    const int l = v->layer, T = s->T, H = s->H, L = s->L, A = s->channel == 0;
    if (v->T != T) return adp_seterr("adapler training: rows were dropped before layer %d", l);
    if (l == L - 1) memset(s->carry, 0, sizeof(float) * (size_t)T);
    const adapler_cp *cp = &s->w->cp[l];
    adapler_cp *gcp = s->g ? &s->g->cp[l] : NULL;
    const float *a_prev = s->a + (size_t)l * T, *a_new = s->a + (size_t)(l + 1) * T;
    const float *c = s->c + (size_t)l * T, *tgt = s->t + (size_t)l * T;
    const uint8_t *cl = s->clamped + (size_t)l * T;
    const float eta = s->w->eta[l];
    const double inv_b = 1.0 / s->n_seq;
    float *carry = s->carry, *dz = s->dz;
    for (int q = 0; q < s->n_seq; q++) {
        const int r0 = s->off[q], n = s->off[q + 1] - r0;
        const float nprev = s->nprev[(size_t)l * s->n_seq + q], gate = s->gate[(size_t)l * s->n_seq + q];
        const float delta_raw = (float)(eta / nprev);
        const float delta = ADP_MIN(delta_raw, DELTA_MAX);
        double ddelta = 0, dot = 0;
        float *dc = dz + r0; /* d objective / d c, then d / d z, in place */
        dc[0] = 0;
        for (int j = 1; j < n; j++) {
            /* total gradient on a_l,j: this layer's attention, later layers, the length loss */
            float da = d_key_logmask[r0 + j] + carry[r0 + j];
            if (!A) da += (float)(s->phi * inv_b * exp(a_new[r0 + j]));
            float dS = cl[r0 + j] ? 0.0f : da;
            carry[r0 + j] = dS; /* a_l = a_{l-1} + S_l: the same gradient reaches a_{l-1} */
            float sx, sd;
            adapler_soft_S(c[r0 + j], delta, s->lambda, &sx, &sd);
            dc[j] = dS * sx;
            ddelta += (double)dS * sd;
        }
        carry[r0] = 0;
        if (A) /* gamma * (L - l) * gate * KL(t || c), c inside Keras' clip range */
            for (int j = 0; j < n; j++)
                if (c[r0 + j] > KL_EPS && c[r0 + j] < 1.0f) {
                    float tc = ADP_MIN(ADP_MAX(tgt[r0 + j], KL_EPS), 1.0f);
                    dc[j] += (float)(s->gamma * (L - l) * gate * inv_b * (-(double)tc / c[r0 + j]));
                }
        /* delta = eta / n_{l-1} */
        if (delta_raw >= DELTA_MAX) ddelta = 0;
        if (!A && s->g) s->g->eta[l] += (float)(ddelta / nprev);
        double dn = -ddelta * eta / ((double)nprev * nprev);
        for (int j = 1; j < n; j++) carry[r0 + j] += (float)(dn * exp(a_prev[r0 + j]));
        /* c = softmax(z + a_{l-1}) */
        for (int j = 0; j < n; j++) dot += (double)c[r0 + j] * dc[j];
        for (int j = 0; j < n; j++) dc[j] = c[r0 + j] * (float)(dc[j] - dot);
        for (int j = 1; j < n; j++) carry[r0 + j] += dc[j];
    }
    /* the CP: z = w2 . GELU(u) + b2, u = W1 h + b1 */
    const float *u = s->u + (size_t)l * T * ADAPLER_CP_DIM, *gu = s->gu + (size_t)l * T * ADAPLER_CP_DIM;
    float *du = s->work;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < ADAPLER_CP_DIM; k++) du[(size_t)t * ADAPLER_CP_DIM + k] = dz[t] * cp->w2[k];
    if (A && gcp) {
        for (int t = 0; t < T; t++) {
            gcp->b2[0] += dz[t];
            for (int k = 0; k < ADAPLER_CP_DIM; k++) gcp->w2[k] += dz[t] * gu[(size_t)t * ADAPLER_CP_DIM + k];
        }
    }
    gelu_backward(du, u, du, (size_t)T * ADAPLER_CP_DIM);
    linear_backward(d_hidden, A && gcp ? gcp->w1 : NULL, A && gcp ? gcp->b1 : NULL, du, v->hidden, cp->w1, T, H,
                    ADAPLER_CP_DIM);
    return ADP_OK;
}

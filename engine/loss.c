/* loss.c: softmax cross-entropy over rows of logits. */
#include <math.h>

#include "ops.h"

void softmax_xent_forward(float *loss, float *probs, const float *logits, const int32_t *target, int n, int C) {
#pragma omp parallel for schedule(static) if ((size_t)n * C > 65536)
    for (int t = 0; t < n; t++) {
        const float *z = logits + (size_t)t * C;
        float *p = probs + (size_t)t * C;
        const float zt = target[t] >= 0 ? z[target[t]] : 0.0f; /* before probs may overwrite logits */
        float mx = -INFINITY;
        for (int k = 0; k < C; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0.0;
        for (int k = 0; k < C; k++) {
            p[k] = expf(z[k] - mx);
            sum += p[k];
        }
        float inv = (float)(1.0 / sum);
        for (int k = 0; k < C; k++) p[k] *= inv;
        /* log-sum-exp directly, so a tiny probability does not lose precision */
        loss[t] = target[t] >= 0 ? (float)(log(sum) + mx - zt) : 0.0f;
    }
}

void softmax_xent_backward(float *dlogits, const float *probs, const int32_t *target, float scale, int n, int C) {
#pragma omp parallel for schedule(static) if ((size_t)n * C > 65536)
    for (int t = 0; t < n; t++) {
        if (target[t] < 0) continue;
        const float *p = probs + (size_t)t * C;
        float *d = dlogits + (size_t)t * C;
        for (int k = 0; k < C; k++) d[k] += scale * p[k];
        d[target[t]] -= scale;
    }
}

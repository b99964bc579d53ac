/* flops.c: the FLOP count we report, exact for our kernels.
 *
 * One multiply-add is 2 FLOPs.  With H = hidden, I = intermediate, A heads of size
 * dh = H/A, C labels, a layer whose attention sees n tokens and whose FFN sees m tokens
 * (m < n when a strategy prunes between the two blocks) costs
 *
 *   Q, K, V projections     2 * n * H * 3H   = 6 n H^2
 *   scores Q K^T            2 * A * n * n * dh = 2 n^2 H
 *   context P V             2 * A * n * n * dh = 2 n^2 H
 *   attention output        2 * n * H * H    = 2 n H^2
 *   FFN up and down         2 * m * H * I * 2 = 4 m H I
 *   ---------------------------------------------------------
 *   layer(n, m)           = 8 n H^2 + 4 n^2 H + 4 m H I
 *
 * and the head (pooler on [CLS], classifier) 2 H^2 + 2 H C per sequence.  For BERT-base
 * (I = 4H) and m = n this is 24 n H^2 + 4 n^2 H, the standard count (22.35 GFLOP at
 * n = 128).  Element-wise work (biases, LayerNorm, softmax, GELU, residuals) is under 1%
 * and not counted; embedding lookups are not arithmetic.  A pruning strategy adds the
 * FLOPs of its own scoring (AdapLeR's predictors, saliency's backward pass) itself. */
#include "flops.h"

double flops_layer(const bert_config *c, double n, double m) {
    double H = c->hidden, I = c->inter;
    return 8.0 * n * H * H + 4.0 * n * n * H + 4.0 * m * H * I;
}

double flops_head(const bert_config *c) {
    double H = c->hidden;
    return 2.0 * H * H + 2.0 * H * c->num_labels;
}

double flops_sequence(const bert_config *c, const int *n, const int *m) {
    double f = flops_head(c);
    for (int l = 0; l < c->layers; l++) f += flops_layer(c, n[l], m[l]);
    return f;
}

double flops_dense(const bert_config *c, int n) { return c->layers * flops_layer(c, n, n) + flops_head(c); }

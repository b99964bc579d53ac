/* matmul.c: the reference twin of linear_forward (gemm.c). */

#include "ops.h"

void matmul_forward_naive(float *out, const float *inp, const float *w, const float *b, int n, int in, int out_dim) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < out_dim; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++) acc += (double)inp[(size_t)t * in + i] * w[(size_t)o * in + i];
            out[(size_t)t * out_dim + o] = (float)acc;
        }
}

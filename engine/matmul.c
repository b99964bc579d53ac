/* matmul.c: the token-wise projections, through OpenBLAS sgemm. */
#include <cblas.h>

#include "ops.h"

/* HF linear weights are (out, in): Y = X W^T is sgemm(RowMajor, NoTrans, Trans). */
void matmul_forward(float *out, const float *inp, const float *w, int n, int in, int out_dim) {
    if (n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_dim, in, 1.0f, inp, in, w, in, 0.0f, out, out_dim);
}

void matmul_forward_naive(float *out, const float *inp, const float *w, const float *b, int n, int in, int out_dim) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < out_dim; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++) acc += (double)inp[(size_t)t * in + i] * w[(size_t)o * in + i];
            out[(size_t)t * out_dim + o] = (float)acc;
        }
}

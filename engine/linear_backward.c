/* linear_backward.c: backward of the linear layer out = inp w^T + b (HF weight layout
 * (out, in)), three GEMM-shaped pieces:
 *   dinp += dout w          cblas_sgemm(NoTrans, NoTrans): (n, out) x (out, in)
 *   dw   += dout^T inp      cblas_sgemm(Trans, NoTrans):   (out, n) x (n, in)
 *   db   += sum_rows dout   fixed 256-row blocks, block sums added in order
 * OpenBLAS splits an sgemm over rows and columns of the result, never over the summed
 * dimension, so every element is summed in a fixed order. */
#include <cblas.h>
#include <string.h>

#include "common.h"
#include "ops.h"

#define DB_BLOCK 256

/* db += column sums of dout (n, out), independent of the thread count. */
static void bias_backward(float *db, const float *dout, int n, int out) {
    const int blocks = (n + DB_BLOCK - 1) / DB_BLOCK;
    float *part = mallocCheck(sizeof(float) * (size_t)blocks * (size_t)out);
#pragma omp parallel for schedule(static) if ((size_t)n * out > 65536)
    for (int k = 0; k < blocks; k++) {
        float *acc = part + (size_t)k * out;
        memset(acc, 0, sizeof(float) * (size_t)out);
        int t1 = ADP_MIN(n, (k + 1) * DB_BLOCK);
        for (int t = k * DB_BLOCK; t < t1; t++) {
            const float *r = dout + (size_t)t * out;
#pragma omp simd
            for (int o = 0; o < out; o++) acc[o] += r[o];
        }
    }
    for (int k = 0; k < blocks; k++) {
        const float *acc = part + (size_t)k * out;
#pragma omp simd
        for (int o = 0; o < out; o++) db[o] += acc[o];
    }
    free(part);
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int n,
                     int in, int out) {
    if (n <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dout, out, w, in, 1.0f, dinp, in);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dout, out, inp, in, 1.0f, dw, in);
    if (db) bias_backward(db, dout, n, out);
}

void linear_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           int n, int in, int out) {
    if (dinp)
        for (int t = 0; t < n; t++)
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int o = 0; o < out; o++) acc += (double)dout[(size_t)t * out + o] * w[(size_t)o * in + i];
                dinp[(size_t)t * in + i] += (float)acc;
            }
    if (dw)
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int t = 0; t < n; t++) acc += (double)dout[(size_t)t * out + o] * inp[(size_t)t * in + i];
                dw[(size_t)o * in + i] += (float)acc;
            }
    if (db)
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int t = 0; t < n; t++) acc += dout[(size_t)t * out + o];
            db[o] += (float)acc;
        }
}

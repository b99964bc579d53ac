/* dropout.c: dropout with hashed masks (engine/dropout.h). */
#include <string.h>

#include "dropout.h"
#include "ops.h"

ADP_HOT static void dropout_chunk(float *out, const float *inp, size_t i0, size_t n, uint32_t thr, float scale,
                                  uint32_t key) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint32_t h = dropout_hash(key, (uint32_t)(i0 + i));
        out[i] = h >= thr ? inp[i] * scale : 0.0f;
    }
}

static void dropout_apply(float *out, const float *inp, size_t n, float p, uint32_t key) {
    if (p <= 0.0f) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        return;
    }
    const uint32_t thr = dropout_threshold(p);
    const float scale = 1.0f / (1.0f - p);
    const size_t chunk = 8192;
    const long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * chunk;
        dropout_chunk(out + i0, inp + i0, i0, (n - i0 < chunk ? n - i0 : chunk), thr, scale, key);
    }
}

void dropout_forward(float *out, const float *inp, size_t n, float p, uint32_t key) {
    dropout_apply(out, inp, n, p, key);
}

void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint32_t key) {
    dropout_apply(dinp, dout, n, p, key);
}

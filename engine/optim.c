/* optim.c: AdamW, gradient clipping and the learning-rate schedule (see optim.h). */
#include "optim.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "common.h"
#include "ops.h"

void adamw_init(adamw *o, float beta1, float beta2, float eps, float weight_decay) {
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
}

void adamw_add(adamw *o, const char *name, float *w, float *g, size_t n, int no_decay) {
    ASSERT(!o->moments);
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->t = reallocCheck(o->t, sizeof(opt_tensor) * (size_t)o->cap);
    }
    opt_tensor *t = &o->t[o->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->w = w, t->g = g, t->n = n, t->no_decay = no_decay, t->lr_scale = 1.0f;
    o->n_elems += n;
}

int adamw_set_lr_scale(adamw *o, const char *prefix, float scale) {
    int k = 0;
    for (int i = 0; i < o->n; i++)
        if (!strncmp(o->t[i].name, prefix, strlen(prefix))) o->t[i].lr_scale = scale, k++;
    return k;
}

void adamw_add_bert(adamw *o, const bert_model *m, float *g_arena, unsigned skip_mask) {
    bert_param *ps;
    int n = bert_param_list(&m->cfg, &m->w, &ps);
    for (int i = 0; i < n; i++) {
        if (skip_mask & (1u << ps[i].group)) continue;
        size_t numel = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
        adamw_add(o, ps[i].name, ps[i].ptr, g_arena + (ps[i].ptr - m->arena), numel, ps[i].no_decay);
    }
    free(ps);
}

void adamw_ready(adamw *o) {
    if (o->moments) return;
    o->moments = alignedCheck(sizeof(float) * 2 * (o->n_elems ? o->n_elems : 1));
    memset(o->moments, 0, sizeof(float) * 2 * o->n_elems);
    float *p = o->moments;
    for (int i = 0; i < o->n; i++) {
        o->t[i].m = p;
        o->t[i].v = p + o->t[i].n;
        p += 2 * o->t[i].n;
    }
}

/* The update of n consecutive parameters, vectorised for the best ISA at load time: it
 * streams four arrays the size of the model every step, which for short-text fine-tuning
 * (steps of a few hundred tokens) was a third of the training time. */
ADP_HOT static void adamw_range(float *restrict w, float *restrict m, float *restrict v, const float *restrict g,
                                long n, float decay, float b1, float b2, float ss, float bc2_sqrt, float eps) {
#pragma omp simd
    for (long k = 0; k < n; k++) {
        float wk = w[k] * decay;
        float mk = m[k] * b1 + g[k] * (1.0f - b1);
        float vk = v[k] * b2 + g[k] * g[k] * (1.0f - b2);
        m[k] = mk, v[k] = vk;
        w[k] = wk - ss * (mk / (sqrtf(vk) / bc2_sqrt + eps));
    }
}

void adamw_step(adamw *o, float lr) {
    adamw_ready(o);
    o->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    /* one parallel region for all tensors (each thread takes its static share of every
     * tensor, no barrier in between): ~100 tensors would otherwise be ~100 fork/joins */
#pragma omp parallel if (o->n_elems > 65536)
    {
        const long nt = omp_get_num_threads(), id = omp_get_thread_num();
        for (int i = 0; i < o->n; i++) {
            opt_tensor *t = &o->t[i];
            const float tlr = lr * t->lr_scale, ss = step_size * t->lr_scale;
            const float decay = t->no_decay ? 1.0f : 1.0f - tlr * o->weight_decay;
            const long n = (long)t->n, k0 = n * id / nt, k1 = n * (id + 1) / nt;
            adamw_range(t->w + k0, t->m + k0, t->v + k0, t->g + k0, k1 - k0, decay, b1, b2, ss, bc2_sqrt, eps);
        }
    }
}

void adamw_free(adamw *o) {
    free(o->t);
    free(o->moments);
    memset(o, 0, sizeof *o);
}

#define NORM_BLOCK 16384

/* Sum of squares of n floats in double, in a fixed order of vector lanes (the same on every
 * run and thread count; the scalar loop it replaces ran at a twentieth of the speed). */
ADP_HOT static double sum_squares(const float *g, long n) {
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (long k = 0; k < n; k++) acc += (double)g[k] * g[k];
    return acc;
}

double grad_global_norm(const adamw *o) {
    /* fixed blocks of every tensor, summed in order: the result does not depend on threads */
    long total_blocks = 0;
    for (int i = 0; i < o->n; i++) total_blocks += (long)((o->t[i].n + NORM_BLOCK - 1) / NORM_BLOCK);
    double *part = mallocCheck(sizeof(double) * (size_t)(total_blocks ? total_blocks : 1));
#pragma omp parallel if (o->n_elems > 65536)
    {
        long first = 0;
        for (int i = 0; i < o->n; i++) {
            const float *g = o->t[i].g;
            const size_t n = o->t[i].n;
            const long blocks = (long)((n + NORM_BLOCK - 1) / NORM_BLOCK);
#pragma omp for schedule(static) nowait
            for (long b = 0; b < blocks; b++) {
                size_t k0 = (size_t)b * NORM_BLOCK, k1 = ADP_MIN(n, k0 + NORM_BLOCK);
                part[first + b] = sum_squares(g + k0, (long)(k1 - k0));
            }
            first += blocks;
        }
    }
    double total = 0.0;
    for (long b = 0; b < total_blocks; b++) total += part[b];
    free(part);
    return sqrt(total);
}

double grad_clip(adamw *o, double max_norm) {
    double norm = grad_global_norm(o);
    if (max_norm > 0 && norm > max_norm) {
        const float s = (float)(max_norm / (norm + 1e-6));
#pragma omp parallel if (o->n_elems > 65536)
        for (int i = 0; i < o->n; i++) {
            float *g = o->t[i].g;
            const long n = (long)o->t[i].n;
#pragma omp for simd schedule(static) nowait
            for (long k = 0; k < n; k++) g[k] *= s;
        }
    }
    return norm;
}

void grad_zero(adamw *o) {
    for (int i = 0; i < o->n; i++) memset(o->t[i].g, 0, sizeof(float) * o->t[i].n);
}

double lr_linear_schedule(double peak, long s, long warmup, long total) {
    if (s < warmup) return peak * (double)(s + 1) / (double)warmup;
    if (total <= warmup) return peak;
    double f = (double)(total - s) / (double)(total - warmup);
    return peak * (f > 0 ? f : 0);
}

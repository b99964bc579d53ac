/* optim.h: AdamW with decoupled weight decay, the linear warm-up/decay schedule, and global
 * gradient-norm clipping, as torch.optim.AdamW, transformers' linear schedule and
 * torch.nn.utils.clip_grad_norm_ define them.
 *
 * An optimizer holds a list of tensors: parameter, gradient, size, and whether weight decay
 * applies.  One step, for every element, with t the step number (1-based):
 *   w -= lr * wd * w                        (decoupled decay; not for biases and LayerNorm)
 *   m  = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *   w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with lr the step's rate times the tensor's lr_scale (a parameter group's own rate).
 * Every loop is element-wise or a fixed-order reduction: bit-identical for the same inputs
 * at any thread count. */
#ifndef ADP_OPTIM_H
#define ADP_OPTIM_H

#include <stddef.h>

#include "model.h"

typedef struct {
    char name[96];
    float *w, *g, *m, *v; /* (n) parameter, gradient, first and second moments */
    size_t n;
    int no_decay;
    float lr_scale; /* this tensor's learning rate is lr * lr_scale (1 unless set) */
} opt_tensor;

typedef struct {
    float beta1, beta2, eps, weight_decay;
    long step;          /* steps taken */
    opt_tensor *t;
    int n, cap;
    float *moments;     /* one block for every tensor's m and v */
    size_t n_elems;
} adamw;

void adamw_init(adamw *o, float beta1, float beta2, float eps, float weight_decay);
/* Register a tensor (before the first step). */
void adamw_add(adamw *o, const char *name, float *w, float *g, size_t n, int no_decay);
/* Scale the learning rate (and so the decoupled decay) of every tensor registered so far
 * whose name starts with prefix; returns how many. */
int adamw_set_lr_scale(adamw *o, const char *prefix, float scale);
/* Register every parameter of a BERT model whose weights live in w_arena and gradients in
 * the same layout in g_arena (bert_param_list names, no_decay for biases and LayerNorm).
 * Groups in skip_mask (1 << PARAM_POOLER etc.) are left out (e.g. the unused pooler and
 * classifier when pretraining). */
void adamw_add_bert(adamw *o, const bert_model *m, float *g_arena, unsigned skip_mask);
/* Allocate the moments (zero).  Called by the first step if needed. */
void adamw_ready(adamw *o);
void adamw_step(adamw *o, float lr);
void adamw_free(adamw *o);

/* Global L2 norm of every registered gradient (double accumulation in fixed blocks). */
double grad_global_norm(const adamw *o);
/* Scale every gradient by max_norm / (norm + 1e-6) when the norm exceeds max_norm
 * (max_norm <= 0: no clipping).  Returns the norm before clipping. */
double grad_clip(adamw *o, double max_norm);
/* Zero every registered gradient. */
void grad_zero(adamw *o);

/* Learning rate of step s (0-based) of total: peak (s+1)/warmup during warm-up, then
 * falling linearly, peak (total - s)/(total - warmup), to peak/(total - warmup) at the last
 * step.  (transformers' linear schedule, shifted by one so no step has lr 0.) */
double lr_linear_schedule(double peak, long s, long warmup, long total);

#endif

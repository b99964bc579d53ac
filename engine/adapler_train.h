/* adapler_train.h: AdapLeR's soft-removal training step (adapler-method.md sections 3-4),
 * as hooks on the training forward/backward (bert_train.h).
 *
 * Forward, before layer l = 0..L-1, on the layer's input rows h_l (no row is dropped while
 * training: removal is soft), per sequence, with a_{-1} = 0:
 *   z_l   = w2 . GELU(W1 h_l + b1) + b2                      the CP logits
 *   c_l   = softmax(z_l + a_{l-1})                           = m e^z / sum m e^z, m = e^a
 *   n_l-1 = 1 + sum_{j != CLS} e^{a_{l-1,j}}                 soft length, [CLS] included
 *   delta = eta_l / n_{l-1}
 *   S_lj  = S(c_lj; delta, lambda) for j != [CLS], 0 for [CLS], where
 *           S(x) = (lambda/delta)(x - delta) - beta/lambda           if x < delta
 *                  (beta/lambda)(x - 1)/(1 - delta)                  otherwise,  beta = 0.1
 *   a_l   = max(-10000, a_{l-1} + S_l)                       the running log-mask; layer l's
 *           attention adds a_lj to every query's score against key j
 * Losses (means over the batch's sequences):
 *   L_CP  = sum_l (L - l) * g * KL(t_l || c_l), t_l = s e^{a_{l-1}} / sum (s the saliency
 *           target), both clipped to [1e-7, 1] as Keras' kl_divergence does, and the gate
 *           g = max_{j != CLS} e^{a_{l-1,j}} (0 once everything is removed);
 *   L_len = sum_l (1 + sum_{j != CLS} e^{a_lj})             the soft lengths after each layer.
 * Two objectives, as in the reference: encoder + CPs minimise L_task + gamma L_CP; the etas
 * minimise L_task + phi L_len.  Their gradients differ along every path through the masks,
 * so a step runs the backward pass twice: channel A (parameter gradients of the encoder and
 * the CPs) and channel B (gradients of the etas only, no parameter gradients).
 *
 * Differences from the reference code, on purpose: the KL targets t_l are constants (the
 * reference lets gradients flow into them through the masks; the method's report allows
 * either), and the [CLS] weight Theta of the targets is not learned (it starts at 1, only
 * changes targets, and has no effect at inference).  delta is kept below 1 - 1e-6 so S stays
 * finite when the soft length approaches 1. */
#ifndef ADP_ADAPLER_TRAIN_H
#define ADP_ADAPLER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "adapler.h"
#include "bert_train.h"

#define ADAPLER_BETA 0.1f
#define ADAPLER_MASK_FLOOR (-10000.0f)

typedef struct {
    /* set by the caller before each forward */
    const adapler_weights *w; /* CPs and etas */
    adapler_weights *g;       /* their gradients (same layout): CP parts in channel A, eta in B */
    float lambda, gamma, phi;
    const float *saliency;    /* (T0) target scores of the batch's tokens, packed like it */
    int channel;              /* 0: A (L_task + gamma L_CP), 1: B (L_task + phi L_len) */
    /* results of the forward */
    double loss_cp, loss_len; /* batch means, unweighted by gamma/phi */
    double *soft_len;         /* (L) mean soft length after each layer */
    /* internal state, sized by the forward */
    int n_seq, T, L, H;
    size_t cap_T;
    int cap_L, cap_seq;
    int *off;          /* (n_seq + 1) */
    float *u;          /* (L, T, 32) CP hidden pre-activation */
    float *gu;         /* (L, T, 32) GELU(u) */
    float *c;          /* (L, T) CP softmax scores */
    float *a;          /* (L + 1, T) running log-masks: a[0] = 0, a[l + 1] after layer l */
    float *S;          /* (L, T) */
    uint8_t *clamped;  /* (L, T) a hit the floor */
    float *t;          /* (L, T) KL targets */
    float *gate;       /* (L, n_seq) */
    float *nprev;      /* (L, n_seq) */
    float *carry;      /* (T) d objective / d a_{l-1}, carried down the layers */
    float *work;       /* (T, 32) */
    float *dz;         /* (T) */
} adapler_train_state;

void adapler_train_state_init(adapler_train_state *s);
void adapler_train_state_free(adapler_train_state *s);

/* The hooks: set opts->layer_input = adapler_train_layer_input, opts->layer_input_grad =
 * adapler_train_layer_grad and opts->user = &state.  The forward hook fills the soft
 * masks and the losses; the backward hook, called from layer L-1 down to 0, backpropagates
 * the current channel's objective through masks and CPs and adds the CP path to the
 * encoder's hidden-state gradient. */
int adapler_train_layer_input(void *user, const bert_layer_view *v);
int adapler_train_layer_grad(void *user, const bert_layer_view *v, float *d_hidden, const float *d_key_logmask);

/* The soft-removal function and its partial derivatives (exported for tests). */
float adapler_soft_S(float x, float delta, float lambda, float *dS_dx, float *dS_ddelta);

#endif

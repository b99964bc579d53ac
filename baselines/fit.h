/* fit.h: `adapler train --method power|ltp`: the training PoWER-BERT and LTP need, as
 * their papers do it, in two phases on a fine-tuned classifier:
 *   1. a soft phase: the method's differentiable relaxation, applied through the training
 *      forward's row-scale hook (bert_train.h), trained with the task loss plus the
 *      method's penalty; encoder and the method's parameters move together;
 *   2. a hard phase: the configuration the soft phase found (PoWER's retention, LTP's
 *      thresholds) fixed, the encoder re-trained with hard token removal (the method's
 *      prune strategy in the training forward), the most accurate dev epoch kept.
 * The driver is fit.c; each method's relaxation and configuration is one file
 * (power_fit.c, ltp_fit.c).  The soft hooks are exported for the gradient tests
 * (tests/test_row_scale_train.c against tests/ref_row_scale_train.py). */
#ifndef ADP_BASELINES_FIT_H
#define ADP_BASELINES_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "bert_train.h"
#include "model.h"
#include "prune.h"

/* ---- PoWER-BERT's Soft-Extract (power_fit.c) -------------------------------------------
 * After layer l's attention block (BERT_SCALE_ATTENTION) every token is ranked by its
 * significance (head-averaged attention received from the other tokens, power.c's score;
 * rank 0 the most significant, ties to the earlier token, [CLS] ranked like any token as in
 * PoWER-BERT's Soft_Extract) and its vector multiplied by r_l[rank], r_l in [0, 1]^N
 * (N = the maximum length), initialised to 1.  Penalty: sum_l lambda (l + 1) sum_k |r_l[k]|
 * (Keras' L1 regulariser scaled by the 1-based layer index; its gradient is 0 where
 * r = 0, as tf.abs's).  After each optimiser step r is clipped to [0, 1].  The ranks are
 * piecewise constant: no gradient flows through the attention into them. */
typedef struct {
    int n_layers, max_len;
    float lambda;
    float *r, *g;     /* (L, N) retention parameters and their gradients */
    int *rank;        /* (L, T) rank of each row of the last forward */
    double *sig;      /* (T) */
    int *idx;         /* (T) */
    size_t cap;
} power_soft;

void power_soft_init(power_soft *p, int n_layers, int max_len, float lambda);
void power_soft_free(power_soft *p);
int power_soft_scale(void *user, const bert_scale_view *v);
int power_soft_scale_grad(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key);
/* The penalty's value; its gradient is added to p->g. */
double power_soft_penalty(power_soft *p);
void power_soft_clip(power_soft *p);
/* The configuration: k_l = max(1, floor(sum_k r_l[k])), then forced non-increasing. */
void power_soft_retention(const power_soft *p, int *k);

/* ---- LTP's soft mask (ltp_fit.c) ---------------------------------------------------------
 * On layer l's output (BERT_SCALE_OUTPUT), for a layer with theta_l != 0:
 *   s_t = mean attention token t receives (over heads and the n query rows, ltp.c's score,
 *         from the probabilities before dropout),
 *   mask_t = sigmoid((s_t - theta_l) / T), and the row is multiplied by mask_t;
 * [CLS] keeps mask 1 (the engine never drops it).  Penalty: lambda sum_l (sum of the
 * batch's masks / the batch's tokens), [CLS] counting 1.  Gradients reach theta, the
 * encoder through the rows, and the encoder through s_t (d_probs_key). */
typedef struct {
    int n_layers;
    float lambda, temperature;
    float *theta, *g;  /* (L) thresholds and their gradients */
    unsigned char *active; /* (L) layers with a mask: those whose initial threshold is not 0 */
    float *mask;       /* (L, T) masks of the last forward */
    double loss_reg;   /* the penalty of the last forward */
    double *mask_mean; /* (L) mean mask of the last forward, 1 at layers without one */
    size_t cap;
} ltp_soft;

void ltp_soft_init(ltp_soft *p, int n_layers, float lambda, float temperature, const double *theta0);
void ltp_soft_free(ltp_soft *p);
int ltp_soft_scale(void *user, const bert_scale_view *v);
int ltp_soft_scale_grad(void *user, const bert_scale_view *v, const float *d_scale, float *d_probs_key);
/* The thresholds the hard phase and the checkpoint use: 0 stays 0 (no pruning at that
 * layer, as LTP's pruner does for threshold 0), others max(1e-5, theta) (LTP's hard rule),
 * at most 1. */
void ltp_soft_thresholds(const ltp_soft *p, double *theta);

/* ---- the driver (fit.c) ------------------------------------------------------------------ */
int cmd_train_power(int argc, char **argv);
int cmd_train_ltp(int argc, char **argv);

#endif

/* baselines.h: the training-free baselines of issue 7, each a pruning strategy (prune.h)
 * in its own file, and what they share: attention-received scores, top-k selection, the
 * per-example token counts of another run (--match), and the score trace.
 *
 *   cascade   SpAtten's cascade top-k as in LTP's CascadeTokenPruner     (cascade.c)
 *   ltp       LTP's threshold on mean attention received, rising T*l/L   (ltp.c)
 *   power     PoWER-BERT's significance, keep [CLS] + top (k_l - 1)      (power.c)
 *   random    a seeded random subset before every layer                  (random.c)
 *   saliency  gradient x input of the dense model, AdapLeR's keep rule   (saliency.c)
 *   truncate  the first k tokens                                         (truncate.c)
 *
 * Layers are numbered l = 0..L-1 as in the engine.  All counts include [CLS].  "Round"
 * means round half to even (torch.round), computed in double.  Every strategy adds the
 * floating-point operations of its own scoring to select()'s flops[]: one per add,
 * subtract, multiply or divide on a score; comparisons made while selecting (sorting,
 * thresholds) are not counted, as flops.c does not count softmax or LayerNorm either. */
#ifndef ADP_BASELINES_H
#define ADP_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "baselines/shared.h"
#include "method.h"
#include "prune.h"
#include "safetensors.h"

/* ---- scores and selection (scores.c) ------------------------------------------------ */

/* Attention received by each of the n rows of one sequence, from the probabilities of its
 * A heads (probs: head h at probs + h*n*n, (query, key) row-major):
 *   recv[i] = sum_h sum_q P_h[q, i]      diag[i] = sum_h P_h[i, i]  (if diag != NULL).
 * Accumulated in double.  Costs A*n*n additions (+ A*n with diag). */
void attn_received(double *recv, double *diag, const float *probs, int n, int A);

/* keep[0..n) for one sequence: row 0 ([CLS]) and the k - 1 other rows with the highest
 * score stay, the rest are cleared; ties go to the earlier row (as tf.math.top_k).  Kept
 * rows keep their order (the engine gathers in order).  k >= n keeps every row, k <= 1
 * only [CLS].  idx: scratch for n ints. */
void keep_top_k(uint8_t *keep, int *idx, const double *score, int n, int k);

/* round(x) half to even, as an int clamped to [lo, hi]. */
int round_count(double x, int lo, int hi);

/* Parse a comma-separated list of numbers for option `opt` into out[0..max); *n gets the
 * count, *n_fractions how many were written as fractions (with '.', 'e' or 'E').  ADP_ERR
 * with a one-line message naming the option. */
int parse_number_list(const char *opt, const char *s, double *out, int max, int *n, int *n_fractions);

/* ---- the score trace (type in shared.h) ---- */

void baseline_trace_free(baseline_trace *t);
/* Called by a strategy at the start of every select(); resets on a new batch. */
void baseline_trace_step(baseline_trace *t, const prune_step *st);
void baseline_trace_put(baseline_trace *t, const prune_step *st, int s, const double *score);

/* ---- the strategies ---------------------------------------------------------------- */

/* cascade: keep_rate in (0, 1], or match != NULL (then keep_rate is ignored). */
int cascade_strategy_create(prune_strategy *ps, int n_layers, double keep_rate, const match_counts *match,
                            baseline_trace *trace);
/* The keep-rate of layer l under LTP's CascadeTokenPruner schedule. */
double cascade_layer_rate(int layer, int n_layers, double keep_rate);

/* ltp: threshold[l] per layer (>= 0; 0 = no pruning at that layer). */
int ltp_strategy_create(prune_strategy *ps, int n_layers, const double *threshold, baseline_trace *trace);
/* The training-free rising thresholds: threshold[l] = final * l / L. */
void ltp_rising_thresholds(double *threshold, int n_layers, double final_threshold);
/* Learned thresholds from a checkpoint's extra tensor "ltp.threshold" (L).  *found = 0
 * and ADP_OK when the tensor is absent; ADP_ERR when it is malformed. */
int ltp_thresholds_load(double *threshold, int *found, const st_file *st, int n_layers);

/* power: retention[l] for l = 0..L-1, absolute counts (fractions = 0) or fractions of each
 * sequence's original length (fractions = 1); non-increasing, counts >= 1, fractions in
 * (0, 1].  Or match != NULL. */
int power_strategy_create(prune_strategy *ps, int n_layers, const double *retention, int fractions,
                          const match_counts *match, baseline_trace *trace);
/* A retention configuration from a checkpoint's extra tensor "power.retention" (L,
 * integral counts); *found = 0 and ADP_OK when absent. */
int power_retention_load(double *retention, int *found, const st_file *st, int n_layers);

/* random: rate[l] in (0, 1] per layer, or match != NULL; seed for --method-seed. */
int random_strategy_create(prune_strategy *ps, int n_layers, const double *rate, const match_counts *match,
                           uint64_t seed);

/* saliency: scores from a gradient pass of the dense model m (kept by the strategy), at
 * the embedding output (each = 0) or at every layer's input (each = 1); exactly one of
 * eta > 0 (AdapLeR's rule), rate (L keep-rates) and match. */
int saliency_strategy_create(prune_strategy *ps, const bert_model *m, int each, double eta, const double *rate,
                             const match_counts *match, baseline_trace *trace);
/* FLOPs of the gradient pass and scoring for one sequence of n tokens (saliency.c). */
double saliency_pass_flops(const bert_config *c, int n, int each);

/* truncate: keep the first `keep` tokens (fraction = 0; keep >= 1) or the first
 * round(keep * n) (fraction = 1; keep in (0, 1]) before layer 0. */
int truncate_strategy_create(prune_strategy *ps, double keep, int fraction);

/* ---- the --method rows (engine/method.c): knobs from method_opts, one-line errors ---- */
int cascade_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
int ltp_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
int power_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
int random_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
int saliency_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
int truncate_method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
/* Load o->match (if given) into me->match for a model of n_layers; ADP_OK if none. */
int baseline_load_match(method *me, const method_opts *o, int n_layers);

#endif

/* metrics.h: the ERASER metrics (rationale_benchmark/metrics.py, sklearn 1.2 and scipy 1.10
 * semantics) and our false/true-positive keep rates, as pure functions over arrays.
 *
 * A *key* is one (annotation_id, docid) pair.  Gold spans are the evidence spans of that
 * annotation in that document, all evidence groups unioned; predicted spans are the hard
 * rationale predictions.  Span lists are read as sets (repeats count once, as in
 * metrics.py, which puts Rationale objects in sets).  Each key must appear once.  Where
 * metrics.py divides by zero (it raises ZeroDivisionError) these functions return 0; where
 * numpy would produce NaN they return NaN.  The README defines every metric. */
#ifndef ERASER_METRICS_H
#define ERASER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "eraser.h"

typedef struct {
    double p, r, f1;
} eraser_prf;

typedef struct {
    size_t n_words; /* document length; spans lie in [0, n_words) */
    const eraser_span *gold;
    size_t n_gold;
    const eraser_span *pred;
    size_t n_pred;
} eraser_hard_key;

/* F1 as metrics.py's _f1: 0 if p or r is 0, else 2pr/(p+r). */
double eraser_f1(double p, double r);

/* token_prf: units are single words.  A key takes part if it has a gold or a predicted
 * word.  micro: pooled counts; macro: mean of per-key p, r and f1 (mean of F1s). */
void eraser_token_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n);
/* rationale_prf: the same with whole spans as units (exact span match). */
void eraser_span_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n);
/* iou_scores at one threshold: a predicted span is a true positive if its best IOU with a
 * gold span of its key is >= threshold.  micro: pooled span counts; macro: R averaged over
 * keys with gold spans, P over keys with predicted spans, F1 of the two averages. */
void eraser_iou_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n, double threshold);
/* IOU of two spans as token sets (0 when both are empty). */
double eraser_span_iou(eraser_span a, eraser_span b);

/* Soft scores of one key: truth[i] in {0,1}, score[i] finite. */
typedef struct {
    size_t n;
    const uint8_t *truth;
    const double *score;
} eraser_soft_key;

/* sklearn auc(recall, precision) over precision_recall_curve(truth, score).  sklearn >= 1.1
 * semantics: the curve is not cut at full recall, and a key without positives has recall
 * 1 everywhere (area 0.5).  n must be > 0. */
double eraser_auprc(const uint8_t *truth, const double *score, size_t n);
/* sklearn average_precision_score: -sum(diff(recall) * precision[:-1]). */
double eraser_average_precision(const uint8_t *truth, const double *score, size_t n);
/* sklearn roc_auc_score (roc_curve with drop_intermediate, then auc); NaN for one class. */
double eraser_roc_auc(const uint8_t *truth, const double *score, size_t n);

typedef struct {
    double auprc;             /* mean over all keys (0 with no keys) */
    double average_precision; /* mean over keys with both classes (NaN if none) */
    double roc_auc;           /* idem */
    size_t n_keys, n_two_class;
} eraser_soft_scores;
void eraser_soft_metrics(eraser_soft_scores *out, const eraser_soft_key *keys, size_t n);

/* scipy.stats.entropy(p): p is normalised to sum 1, 0 log 0 = 0 (NaN if the sum is 0). */
double eraser_entropy(const double *p, size_t n);
/* scipy.stats.entropy(p, q) = KL(p || q), both normalised; +inf where q = 0 < p. */
double eraser_kl(const double *p, const double *q, size_t n);

/* One instance for the faithfulness metrics; all tables share the label order of full. */
typedef struct {
    size_t n_labels, pred; /* pred: index of the predicted label */
    const double *full;    /* classification_scores */
    const double *comp;    /* comprehensiveness_classification_scores, or NULL */
    const double *suff;    /* sufficiency_classification_scores, or NULL */
    const double *thr_comp, *thr_suff; /* n_aopc rows of n_labels, ascending thresholds, or NULL */
} eraser_faith_instance;

typedef struct {
    double comprehensiveness, sufficiency;                     /* mean of p(pred) - p'(pred) */
    double comprehensiveness_entropy, sufficiency_entropy;     /* mean of H(full) - H(p') */
    double comprehensiveness_kl, sufficiency_kl;               /* mean of KL(p' || full) */
    double comprehensiveness_aopc, sufficiency_aopc;           /* mean over instances and bins */
} eraser_faith;

/* Means over the n instances; a quantity is NaN unless every instance has its table.
 * comp_points/suff_points (n_aopc each, may be NULL) get the per-bin means. */
void eraser_faithfulness(eraser_faith *out, double *comp_points, double *suff_points,
                         const eraser_faith_instance *inst, size_t n, size_t n_aopc);

/* sklearn classification_report(output_dict=True) and accuracy_score. */
typedef struct {
    double precision, recall, f1;
    size_t support;
} eraser_class_prf;

typedef struct {
    size_t n_labels;
    char **labels; /* the distinct gold labels, sorted */
    eraser_class_prf *per_label;
    eraser_class_prf macro, weighted;
    double accuracy;
} eraser_class_report;

/* gold[i], pred[i] for n instances; labels are the distinct gold strings (as metrics.py
 * does); a predicted label outside them is an error. */
int eraser_class_report_compute(eraser_class_report *rep, const char *const *gold, const char *const *pred, size_t n);
void eraser_class_report_free(eraser_class_report *rep);

/* ---- keep rates: what a token selection keeps, against the human rationale ------------
 * Over the ERASER words of one key: pos = gold words, neg = the other words,
 * tp = kept gold words, fp = kept non-gold words.
 *   TPR = tp / pos (recall of the kept set), FPR = fp / neg (the paper's false-positive
 *   rate: the fraction of non-rationale words that survive).
 * micro pools the counts over keys; macro averages per-key rates over the keys where the
 * rate is defined (pos > 0 for TPR, neg > 0 for FPR).  Undefined rates are NaN. */
typedef struct {
    uint64_t tp, fp, pos, neg;
} eraser_keep_counts;

void eraser_keep_count(eraser_keep_counts *c, const uint8_t *gold, const uint8_t *kept, size_t n);

typedef struct {
    double fpr_micro, tpr_micro, fpr_macro, tpr_macro;
    size_t n_keys;
} eraser_rates;

/* Per-layer accumulator: call eraser_keep_rates_add once per (key, layer) with the words
 * kept entering/after that layer (see eraser_word_keep_from_pieces to map pieces to words). */
typedef struct {
    size_t n_layers;
    eraser_keep_counts *total; /* pooled per layer */
    double *sum_fpr, *sum_tpr;
    size_t *n_fpr, *n_tpr, *n_keys;
} eraser_keep_rates;

void eraser_keep_rates_init(eraser_keep_rates *r, size_t n_layers);
void eraser_keep_rates_free(eraser_keep_rates *r);
int eraser_keep_rates_add(eraser_keep_rates *r, size_t layer, const uint8_t *gold, const uint8_t *kept, size_t n_words);
void eraser_keep_rates_get(eraser_rates *out, const eraser_keep_rates *r, size_t layer);
/* The same from a piece-level keep mask of one encoding (or of the merged windows): a word
 * counts as kept if any of its pieces is (eraser_word_keep_from_pieces). */
int eraser_keep_rates_add_pieces(eraser_keep_rates *r, size_t layer, const uint8_t *gold, size_t n_words,
                                 const uint8_t *piece_keep, const int32_t *word_ids, size_t n_pieces);

/* tokens_to_flip: mean of tokens[i] / doc_words[i] (doc_words > 0). */
double eraser_tokens_to_flip(const double *tokens, const size_t *doc_words, size_t n);

#endif

/* export_model.h: `adapler eraser export`: run a classifier with a pruning method over the
 * annotations of an ERASER split and write ERASER's results file (format in eraser.h), the
 * input of `adapler eraser score` and of rationale_benchmark/metrics.py.
 *
 * Per annotation (README.md, "ERASER export", gives the reasons):
 *   document   the one document the annotation names (its `docids`, else its evidences'
 *              docid, else its annotation_id); the query is not given to the model.  Each
 *              ERASER word is WordPiece-tokenized on its own (BERT never joins pieces across
 *              whitespace, so this is the tokenization of the whole text), so every piece
 *              knows its ERASER word.
 *   windows    documents longer than max_len - 2 pieces run as overlapping windows
 *              (eraser_plan_windows, overlap max_len / 4); each window is [CLS] pieces [SEP].
 *   hard       a word is in the hard rationale if a piece of it, in the window that owns the
 *              piece (eraser_piece_owners), enters the LAST layer (drop stage > 2(L-1)):
 *              those are the tokens the [CLS] row attends to in the last layer, i.e. every
 *              token that still shapes the prediction (eval's last fpr/tpr entry uses the
 *              same rule).  Maximal runs of such words are the spans.
 *   soft       AdapLeR: the Contribution Predictor's softmax score at layer 0 (every token
 *              is alive there); cascade, ltp, power (attention) and saliency (gradient x
 *              input): the score the method traced at the first layer where it scored the
 *              window (every token is alive there: these methods drop only what they have
 *              scored); none, schedule, random, truncate: no score, so no soft predictions
 *              and no thresholded scores.  Scores are divided
 *              by their window's mean over all its tokens ([CLS] and [SEP] included), so 1
 *              is "average" in every window (AdapLeR: c_j * n, the score relative to the
 *              1/n a uniform predictor gives) and windows of different lengths compare.  A
 *              window the method never scored (it had nothing to drop) gets 1 everywhere.
 *              A word's score is the max of its owned pieces'; a word without pieces gets 0.
 *   classes    per window, softmax of the logits; a document's probabilities are the mean
 *              over its windows; the predicted class is their argmax (first on ties).
 *   faithfulness  the same model with the same method (the classifier whose rationale it
 *              is) runs again on edited documents, where a "removed" word is deleted (its
 *              pieces are left out and the rest re-windowed; an empty document is [CLS]
 *              [SEP]): comprehensiveness = the document without the hard-rationale words,
 *              sufficiency = the hard-rationale words alone; for each AOPC bin b the top
 *              k = ceil(b * words) words by soft score (ties: the earlier word) removed /
 *              kept alone.  An edited document identical to the original (nothing removed)
 *              reuses the original's probabilities.
 *   not written  soft_sentence_predictions, tokens_to_flip. */
#ifndef ERASER_EXPORT_MODEL_H
#define ERASER_EXPORT_MODEL_H

#include <stdio.h>

#include "dataset.h"
#include "eraser.h"
#include "method.h"
#include "model.h"
#include "wordpiece.h"

/* Where soft scores come from. */
enum {
    ERASER_SOFT_NONE = 0,    /* the method scores nothing */
    ERASER_SOFT_ADAPLER = 1, /* method.trace: the Contribution Predictors' scores */
    ERASER_SOFT_TRACE = 2    /* method.scores: a baseline's score trace (baselines/shared.h) */
};

/* The soft-score source of a --method name (ERASER_SOFT_*). */
int eraser_export_soft_kind(const char *method_name);

typedef struct {
    const bert_model *m;
    method *me;                 /* made for m; its trace gives the soft scores */
    const wordpiece *wp;
    const char *const *labels;  /* (m->cfg.num_labels): the label string of each output */
    size_t max_len;             /* pieces per sequence, [CLS] and [SEP] included; >= 3 */
    int batch;                  /* sequences per forward pass */
    int soft;                   /* ERASER_SOFT_* */
    int faithfulness;           /* write comprehensiveness, sufficiency (and thresholded) */
    const double *aopc;         /* AOPC bins in (0, 1], ascending; need soft and faithfulness */
    size_t n_aopc;
} eraser_export_opts;

typedef struct {
    size_t annotations;
    size_t windowed;            /* documents cut into more than one window */
    size_t windows;             /* windows of the original documents */
    size_t sequences;           /* sequences run, edited documents included */
    size_t reused;              /* edited documents equal to the original (not run) */
    size_t unscored_windows;    /* windows the method never scored (uniform soft scores) */
    size_t words_without_pieces;
    size_t empty_rationales;    /* annotations whose hard rationale is empty */
} eraser_export_stats;

/* The document an annotation is about: its single docid, else the single docid of its
 * evidences, else its annotation_id.  ADP_ERR naming the annotation when it names several. */
int eraser_annotation_docid(const char **docid, const eraser_annotation *a);

/* Write one results line per annotation of ds (in order) to out.  Every annotation's
 * document must be loaded.  ADP_ERR with a message naming the annotation. */
int eraser_export_model(FILE *out, const eraser_dataset *ds, const eraser_export_opts *o, eraser_export_stats *st);

/* ERASER annotations from a dataset with per-word rationales (hatexplain, planted): for every
 * example with a rationale (every example if all_examples; those without get no evidence) a
 * document (docid = the example id, words = the text split at BERT's whitespace, the
 * numbering of example.rationale) and an annotation (id = the example id, classification =
 * its label name, query "") through eraser_add_mask_annotation.  eds must be initialised. */
int eraser_dataset_from_examples(eraser_dataset *eds, const dataset *ds, int all_examples);

#endif

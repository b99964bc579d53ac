/* eraser.h: ERASER rationale data in memory: documents, annotations (human rationales),
 * model results, and the score file of rationale_benchmark/metrics.py.
 *
 * Layout of an ERASER dataset directory (DeYoung et al. 2020, jayded/eraserbenchmark
 * rationale_benchmark/utils.py):
 *
 *   train.jsonl, val.jsonl, test.jsonl   one annotation per line:
 *     {"annotation_id": str, "query": str, "classification": str,
 *      "evidences": [[{"docid": str, "start_token": int, "end_token": int,
 *                      "start_sentence": int, "end_sentence": int, "text": str}, ...], ...],
 *      "query_type": str|null (optional), "docids": [str]|null (optional)}
 *     `evidences` is a list of evidence groups; every group on its own justifies the label,
 *     and the metrics union all groups.  start_token is inclusive, end_token exclusive,
 *     both index the flattened whitespace words of the document ("tokens" in ERASER;
 *     "words" here, to keep them apart from WordPieces).
 *   docs/<docid>   one file per document: sentences on lines, words separated by spaces;
 *     or docs.jsonl: {"docid": str, "document": str} per line (never both).
 *
 * Words are split exactly as utils.py does, because the offsets index its word list:
 *   docs/<docid>: lines split at \n, \r\n or \r (Python universal newlines); each line is
 *     stripped of Python whitespace (str.strip()); empty lines are dropped; the line is
 *     split at single spaces and empty strings are dropped.
 *   docs.jsonl: the document is split at \n only; each line is stripped and split at
 *     single spaces WITHOUT dropping empty strings (an empty line is one empty word), as
 *     load_documents_from_file does.
 *
 * Validation goes beyond utils.py (which validates almost nothing): unknown or duplicate
 * JSON keys, wrong types, duplicate annotation ids or docids, evidence spans outside
 * their document (0 <= start_token <= end_token <= length), unknown docids, docids that
 * are not plain file names, files that are not UTF-8, and blank lines are all one-line
 * errors naming the file and line.  Sentence indices are checked to be -1 (unknown) or
 * within the document. */
#ifndef ERASER_ERASER_H
#define ERASER_ERASER_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

/* A span of words [start, end) of one document. */
typedef struct {
    size_t start, end;
} eraser_span;

typedef struct {
    char *docid;
    char *text;
    size_t start_token, end_token;     /* [start_token, end_token) in the flattened document */
    long start_sentence, end_sentence; /* [start, end) sentences; -1 when unknown */
} eraser_evidence;

typedef struct {
    char *annotation_id;
    char *query;
    char *classification;
    char *query_type; /* NULL when absent or null */
    char **docids;    /* NULL when absent or null */
    size_t n_docids;
    eraser_evidence *evidences; /* every group, flattened in file order */
    size_t n_evidences;
    size_t *group_end; /* group g = evidences[g ? group_end[g-1] : 0, group_end[g]) */
    size_t n_groups;
    size_t line; /* 1-based line in the annotation file; 0 when built in memory */
} eraser_annotation;

typedef struct {
    char *docid;
    char **words; /* n_words NUL-terminated words (pointing into buf) */
    size_t n_words;
    size_t *sentence_end; /* sentence s = words[s ? sentence_end[s-1] : 0, sentence_end[s]) */
    size_t n_sentences;
    char *buf;
} eraser_doc;

enum { ERASER_DOCS_NONE, ERASER_DOCS_DIR, ERASER_DOCS_JSONL };

/* Annotations of one split (or built in memory) plus the documents they and the results
 * refer to.  Pointers into anns/docs stay valid until the next add or load. */
typedef struct {
    eraser_annotation *anns;
    size_t n_anns, cap_anns;
    eraser_doc *docs;
    size_t n_docs, cap_docs;
    strmap ann_index, doc_index;
    char *ann_path; /* the annotation file read last (for messages) */
    char *dir;      /* dataset directory documents are loaded from */
    int layout;     /* ERASER_DOCS_* */
} eraser_dataset;

/* init before any load; free after, also when a load failed (it keeps what it read). */
void eraser_dataset_init(eraser_dataset *ds);
void eraser_dataset_free(eraser_dataset *ds);

/* Read <dir>/<split>.jsonl, then every document its evidences name, then check every
 * evidence against its document.  split is a file stem ("train", "val", "test"). */
int eraser_load_split(eraser_dataset *ds, const char *dir, const char *split);
/* The three steps of eraser_load_split, for callers that need more documents. */
int eraser_read_annotations(eraser_dataset *ds, const char *path);
/* Load the named documents that are not loaded yet (docids == NULL: every document of
 * the dataset).  The first call fixes the directory and detects docs/ vs docs.jsonl. */
int eraser_load_docs(eraser_dataset *ds, const char *dir, const char *const *docids, size_t n);
int eraser_check_annotations(const eraser_dataset *ds);

const eraser_doc *eraser_find_doc(const eraser_dataset *ds, const char *docid);
const eraser_annotation *eraser_find_annotation(const eraser_dataset *ds, const char *annotation_id);
/* Number of evidences whose `text` differs from the words it spans joined by spaces
 * (ERASER's own consistency check; 0 on the movies data).  *first (if not NULL) gets the
 * first offending annotation, or NULL. */
size_t eraser_count_text_mismatches(const eraser_dataset *ds, const eraser_annotation **first);

/* Split a document's text into words and sentences as utils.py does (see the comment at
 * the top); layout is ERASER_DOCS_DIR or ERASER_DOCS_JSONL.  Fails on invalid UTF-8 and
 * NUL bytes. */
int eraser_doc_parse(eraser_doc *doc, const char *docid, const char *text, size_t len, int layout);
void eraser_doc_free(eraser_doc *doc);

/* Constructors for data that is not in ERASER files (HateXplain, the planted task).
 * Add a document from its words (one sentence); fails if the docid exists. */
int eraser_add_doc(eraser_dataset *ds, const char *docid, const char *const *words, size_t n_words);
/* Add an annotation over one existing document from a per-word 0/1 rationale mask:
 * each maximal run of 1s becomes one evidence span, all in a single evidence group (like
 * ERASER's "comprehensive" test rationales; groups are unioned by every metric anyway).
 * An all-zero mask gives an annotation with no evidence.  query may be NULL (""). */
int eraser_add_mask_annotation(eraser_dataset *ds, const char *annotation_id, const char *docid,
                               const char *classification, const char *query,
                               const uint8_t *mask, size_t n_words);

/* Write ds in ERASER's layout (write.c): <dir>/<split>.jsonl with every annotation (exactly
 * the fields of utils.py's Annotation and Evidence, so utils.py can load it) and
 * <dir>/docs.jsonl with every document (sentences joined by \n, words by spaces).  dir is
 * created if missing; a dir holding docs/ is refused (ERASER reads one or the other).  Each
 * document is parsed back as docs.jsonl first and must give the same words. */
int eraser_write_split(const eraser_dataset *ds, const char *dir, const char *split);

/* mask[w] = 1 for the words of document docid (n_words long) inside any evidence of a, in
 * any group (the gold rationale of the key (a, docid)).  Evidence must fit in n_words. */
int eraser_gold_mask(uint8_t *mask, size_t n_words, const eraser_annotation *a, const char *docid);

/* Maximal runs of nonzero mask entries as spans.  *spans is malloc'd (free it), *n_spans
 * their count. */
void eraser_mask_to_spans(eraser_span **spans, size_t *n_spans, const uint8_t *mask, size_t n);
/* mask[w] = 1 for w in the union of the spans, else 0 (spans must lie inside [0, n)). */
void eraser_spans_to_mask(uint8_t *mask, size_t n, const eraser_span *spans, size_t n_spans);

/* ---- results files (the input of metrics.py) --------------------------------------------
 * One JSON object per line:
 *   {"annotation_id": str,
 *    "rationales": [{"docid": str,
 *                    "hard_rationale_predictions": [{"start_token": int, "end_token": int}],
 *                    "soft_rationale_predictions": [float, one per word],
 *                    "soft_sentence_predictions": [float, one per sentence]}],
 *    "classification": str, "classification_scores": {label: prob},
 *    "comprehensiveness_classification_scores": {label: prob},
 *    "sufficiency_classification_scores": {label: prob},
 *    "thresholded_scores": [{"threshold": float,
 *                            "comprehensiveness_classification_scores": {...},
 *                            "sufficiency_classification_scores": {...}}],
 *    "tokens_to_flip": int}
 * Everything but annotation_id and rationales is optional; an optional field (null counts
 * as absent) must be present in every line or in none.  classification and
 * classification_scores go together, the faithfulness fields need them.  Hard spans must
 * lie in the document and not overlap (identical repeats are tolerated and counted once,
 * as upstream); soft predictions need one finite value per word (per sentence).  Every
 * score table must hold the same labels as classification_scores, the predicted label
 * among them, with finite values >= 0; every line must have the same set of thresholds.
 * Unknown keys are errors. */
typedef struct {
    char **labels; /* in classification_scores order */
    double *p;
    size_t n;
} eraser_probs;

typedef struct {
    char *docid;
    int has_hard, has_soft, has_soft_sent;
    eraser_span *hard; /* sorted by start, duplicates removed */
    size_t n_hard;
    double *soft; /* n_soft values */
    size_t n_soft;
    double *soft_sent;
    size_t n_soft_sent;
} eraser_result_doc;

typedef struct {
    char *annotation_id;
    size_t line;
    eraser_result_doc *docs;
    size_t n_docs;
    char *classification; /* NULL when absent */
    eraser_probs cls, comp, suff;
    size_t pred; /* index of classification in cls.labels */
    double *thresholds; /* n_thresholds, as in the file */
    eraser_probs *thr_comp, *thr_suff;
    size_t n_thresholds;
    long tokens_to_flip;
} eraser_result;

typedef struct {
    char *path;
    eraser_result *v;
    size_t n;
    int has_hard, has_soft, has_soft_sent, has_cls, has_comp, has_suff, has_thresholded,
        has_tokens_to_flip;
    strmap index; /* annotation_id -> result */
} eraser_results;

/* Parse and validate a results file on its own (structure, types, all-or-none fields).
 * Call eraser_results_free() afterwards, also when it fails. */
int eraser_results_read(eraser_results *r, const char *path);
/* Check the results against loaded documents: docids exist, spans and soft lengths fit. */
int eraser_results_check(const eraser_results *r, const eraser_dataset *ds);
void eraser_results_free(eraser_results *r);
const eraser_result *eraser_find_result(const eraser_results *r, const char *annotation_id);

/* ---- scoring ------------------------------------------------------------------------------ */
typedef struct {
    const double *iou_thresholds; /* default {0.5} */
    size_t n_iou;
    const double *aopc_thresholds; /* default {0.01, 0.05, 0.1, 0.2, 0.5} */
    size_t n_aopc;
} eraser_score_opts;

/* Score results against the dataset's annotations (one split) the way metrics.py does,
 * and build its score file as a JSON object (keys sorted, as json.dump(sort_keys=True)
 * writes them), plus "keep_rates" (our FPR/TPR of the hard predictions).  Undefined
 * numbers (NaN upstream) are JSON null.  *out is freed with cJSON_Delete. */
int eraser_score(cJSON **out, const eraser_dataset *ds, const eraser_results *r,
                 const eraser_score_opts *opt);

/* ---- export (the producer side of the results format) ------------------------------------ */
typedef struct {
    const char *annotation_id, *docid;
    size_t n_words;
    const uint8_t *keep; /* per word 0/1 -> hard_rationale_predictions (runs); NULL: omit */
    const float *soft;   /* per word -> soft_rationale_predictions; NULL: omit */
    const char *classification; /* NULL: omit every classification field */
    const char *const *labels;  /* n_labels */
    size_t n_labels;
    const double *cls, *comp, *suff; /* n_labels each; comp/suff may be NULL */
    const double *thresholds;        /* n_thresholds */
    size_t n_thresholds;
    const double *thr_comp, *thr_suff; /* n_thresholds x n_labels, row-major */
    int has_tokens_to_flip;
    long tokens_to_flip;
} eraser_export_row;

/* One results line (JSON, no newline) for row; *line is malloc'd.  Fails on NaN or
 * infinite values and on a classification that is not one of the labels. */
int eraser_export_line(char **line, const eraser_export_row *row);

#endif

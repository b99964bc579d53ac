/* export.c: one line of an ERASER results file (the format read by results.c and by
 * metrics.py) from per-word keep masks, soft scores and class probabilities.  `eraser
 * export` (export_model.c) calls this once per annotation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eraser.h"

static int finite_all(const double *v, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return adp_seterr("export: %s[%zu] is not finite", what, i);
    return ADP_OK;
}

/* Numbers are written so that they read back exactly (cJSON's own printing keeps 15
 * digits), in the fewest significant digits that do (at most 17 for doubles, 9 for floats),
 * as Python's repr: a threshold of 0.05 is written 0.05, and metrics.py, which matches
 * thresholds with ==, finds it. */
static cJSON *exact_double(double v) {
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *exact_float(float v) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *probs_json(const char *const *labels, const double *p, size_t n) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToObject(o, labels[i], exact_double(p[i]));
    return o;
}

int eraser_export_line(char **line, const eraser_export_row *row) {
    *line = NULL;
    if (!row->annotation_id || !row->docid) return adp_seterr("export: annotation_id and docid are required");
    for (size_t i = 0; row->soft && i < row->n_words; i++)
        if (!isfinite(row->soft[i])) return adp_seterr("export: '%s': soft score of word %zu is not finite", row->annotation_id, i);
    if (row->classification) {
        size_t k = 0;
        while (k < row->n_labels && strcmp(row->labels[k], row->classification) != 0) k++;
        if (k == row->n_labels)
            return adp_seterr("export: '%s': classification '%s' is not one of the labels", row->annotation_id,
                              row->classification);
        if (!row->cls) return adp_seterr("export: '%s': classification without classification scores", row->annotation_id);
        if (finite_all(row->cls, row->n_labels, "classification_scores") != ADP_OK) return ADP_ERR;
        if (row->comp && finite_all(row->comp, row->n_labels, "comprehensiveness_classification_scores") != ADP_OK)
            return ADP_ERR;
        if (row->suff && finite_all(row->suff, row->n_labels, "sufficiency_classification_scores") != ADP_OK)
            return ADP_ERR;
        if (row->n_thresholds) {
            if (!row->thr_comp || !row->thr_suff || !row->comp || !row->suff)
                return adp_seterr("export: '%s': thresholded scores need both tables and the comprehensiveness and "
                                  "sufficiency scores", row->annotation_id);
            if (finite_all(row->thresholds, row->n_thresholds, "thresholds") != ADP_OK ||
                finite_all(row->thr_comp, row->n_thresholds * row->n_labels, "thresholded comprehensiveness") != ADP_OK ||
                finite_all(row->thr_suff, row->n_thresholds * row->n_labels, "thresholded sufficiency") != ADP_OK)
                return ADP_ERR;
        }
    } else if (row->comp || row->suff || row->n_thresholds || row->has_tokens_to_flip)
        return adp_seterr("export: '%s': faithfulness fields need a classification", row->annotation_id);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "annotation_id", row->annotation_id);
    cJSON *rats = cJSON_AddArrayToObject(j, "rationales");
    cJSON *rat = cJSON_CreateObject();
    cJSON_AddItemToArray(rats, rat);
    cJSON_AddStringToObject(rat, "docid", row->docid);
    if (row->keep) {
        eraser_span *s;
        size_t n;
        eraser_mask_to_spans(&s, &n, row->keep, row->n_words);
        cJSON *hard = cJSON_AddArrayToObject(rat, "hard_rationale_predictions");
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "start_token", (double)s[i].start);
            cJSON_AddNumberToObject(o, "end_token", (double)s[i].end);
            cJSON_AddItemToArray(hard, o);
        }
        free(s);
    }
    if (row->soft) {
        cJSON *soft = cJSON_AddArrayToObject(rat, "soft_rationale_predictions");
        for (size_t i = 0; i < row->n_words; i++) cJSON_AddItemToArray(soft, exact_float(row->soft[i]));
    }
    if (row->classification) {
        cJSON_AddStringToObject(j, "classification", row->classification);
        cJSON_AddItemToObject(j, "classification_scores", probs_json(row->labels, row->cls, row->n_labels));
        if (row->comp)
            cJSON_AddItemToObject(j, "comprehensiveness_classification_scores", probs_json(row->labels, row->comp, row->n_labels));
        if (row->suff)
            cJSON_AddItemToObject(j, "sufficiency_classification_scores", probs_json(row->labels, row->suff, row->n_labels));
        if (row->n_thresholds) {
            cJSON *ts = cJSON_AddArrayToObject(j, "thresholded_scores");
            for (size_t t = 0; t < row->n_thresholds; t++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddItemToObject(o, "threshold", exact_double(row->thresholds[t]));
                cJSON_AddItemToObject(o, "comprehensiveness_classification_scores",
                                      probs_json(row->labels, row->thr_comp + t * row->n_labels, row->n_labels));
                cJSON_AddItemToObject(o, "sufficiency_classification_scores",
                                      probs_json(row->labels, row->thr_suff + t * row->n_labels, row->n_labels));
                cJSON_AddItemToArray(ts, o);
            }
        }
        if (row->has_tokens_to_flip) cJSON_AddNumberToObject(j, "tokens_to_flip", (double)row->tokens_to_flip);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return adp_seterr("export: cannot format the JSON line");
    *line = s;
    return ADP_OK;
}

/* results.c: ERASER results files, the input of metrics.py (format and rules in eraser.h). */
#include <math.h>
#include <string.h>

#include "common.h"
#include "eraser.h"
#include "jsonv.h"

static void probs_free(eraser_probs *p) {
    for (size_t i = 0; i < p->n; i++) free(p->labels[i]);
    free(p->labels);
    free(p->p);
    memset(p, 0, sizeof *p);
}

static void result_free(eraser_result *r) {
    free(r->annotation_id);
    for (size_t i = 0; i < r->n_docs; i++) {
        free(r->docs[i].docid);
        free(r->docs[i].hard);
        free(r->docs[i].soft);
        free(r->docs[i].soft_sent);
    }
    free(r->docs);
    free(r->classification);
    probs_free(&r->cls);
    probs_free(&r->comp);
    probs_free(&r->suff);
    for (size_t i = 0; i < r->n_thresholds; i++) {
        if (r->thr_comp) probs_free(&r->thr_comp[i]);
        if (r->thr_suff) probs_free(&r->thr_suff[i]);
    }
    free(r->thresholds);
    free(r->thr_comp);
    free(r->thr_suff);
    memset(r, 0, sizeof *r);
}

void eraser_results_free(eraser_results *r) {
    for (size_t i = 0; i < r->n; i++) result_free(&r->v[i]);
    free(r->v);
    free(r->path);
    strmap_free(&r->index);
    memset(r, 0, sizeof *r);
}

const eraser_result *eraser_find_result(const eraser_results *r, const char *annotation_id) {
    size_t i = strmap_get(&r->index, annotation_id, strlen(annotation_id));
    return i == (size_t)-1 ? NULL : &r->v[i];
}

/* {label: prob} with finite probabilities >= 0. */
static int parse_probs(eraser_probs *p, const cJSON *j, const char *name) {
    if (!cJSON_IsObject(j)) return adp_seterr("%s: expected an object {label: probability}", name);
    size_t n = (size_t)cJSON_GetArraySize(j);
    p->labels = callocCheck(n, sizeof *p->labels);
    p->p = callocCheck(n, sizeof *p->p);
    for (cJSON *c = j->child; c; c = c->next) {
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->labels[i], c->string)) return adp_seterr("%s: label '%s' appears twice", name, c->string);
        double v;
        if (jv_number(c, c->string, &v) != ADP_OK) return adp_preferr("%s: ", name);
        if (v < 0) return adp_seterr("%s: %s: negative probability %g", name, c->string, v);
        p->labels[p->n] = strdupCheck(c->string);
        p->p[p->n++] = v;
    }
    if (!p->n) return adp_seterr("%s: no labels", name);
    return ADP_OK;
}

/* Reorder q to the label order of ref; the label sets must be equal. */
static int align_probs(eraser_probs *q, const eraser_probs *ref, const char *name) {
    if (q->n != ref->n) return adp_seterr("%s: has %zu labels, classification_scores has %zu", name, q->n, ref->n);
    double *v = mallocCheck(ref->n * sizeof *v);
    for (size_t i = 0; i < ref->n; i++) {
        size_t k = 0;
        while (k < q->n && strcmp(q->labels[k], ref->labels[i]) != 0) k++;
        if (k == q->n) {
            free(v);
            return adp_seterr("%s: lacks label '%s' of classification_scores", name, ref->labels[i]);
        }
        v[i] = q->p[k];
    }
    for (size_t i = 0; i < ref->n; i++) {
        free(q->labels[i]);
        q->labels[i] = strdupCheck(ref->labels[i]);
    }
    free(q->p);
    q->p = v;
    return ADP_OK;
}

static int cmp_span(const void *a, const void *b) {
    const eraser_span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_floats(double **out, size_t *n, const cJSON *j, const char *name) {
    if (!cJSON_IsArray(j)) return adp_seterr("%s: expected a list of numbers", name);
    size_t m = (size_t)cJSON_GetArraySize(j), k = 0;
    double *v = mallocCheck((m ? m : 1) * sizeof *v);
    for (cJSON *c = j->child; c; c = c->next, k++)
        if (jv_number(c, name, &v[k]) != ADP_OK) {
            free(v);
            return adp_preferr("[%zu] ", k);
        }
    *out = v;
    *n = m;
    return ADP_OK;
}

static int parse_result_doc(eraser_result_doc *d, const cJSON *j) {
    static const char *const names[] = {"docid", "hard_rationale_predictions", "soft_rationale_predictions",
                                        "soft_sentence_predictions"};
    cJSON *it[4];
    if (jv_members(j, "rationale", names, it, 4) != ADP_OK) return ADP_ERR;
    if (!it[0]) return adp_seterr("rationale: missing 'docid'");
    if (jv_string(it[0], "docid", &d->docid) != ADP_OK) return ADP_ERR;
    if (it[1]) {
        if (!cJSON_IsArray(it[1])) return adp_seterr("hard_rationale_predictions: expected a list of spans");
        d->has_hard = 1;
        size_t m = (size_t)cJSON_GetArraySize(it[1]);
        d->hard = mallocCheck((m ? m : 1) * sizeof *d->hard);
        static const char *const sn[] = {"start_token", "end_token"};
        for (cJSON *c = it[1]->child; c; c = c->next) {
            cJSON *s[2];
            long a, b;
            if (jv_members(c, "hard_rationale_predictions[]", sn, s, 2) != ADP_OK) return ADP_ERR;
            if (!s[0] || !s[1]) return adp_seterr("hard_rationale_predictions[]: needs start_token and end_token");
            if (jv_long(s[0], "start_token", 0, 1L << 40, &a) != ADP_OK || jv_long(s[1], "end_token", 0, 1L << 40, &b) != ADP_OK)
                return ADP_ERR;
            if (a > b) return adp_seterr("hard_rationale_predictions: start_token %ld > end_token %ld", a, b);
            d->hard[d->n_hard++] = (eraser_span){(size_t)a, (size_t)b};
        }
        /* Identical repeats pass upstream's overlap check (it skips h1 == h2) and vanish in
         * its sets; any other overlap is an error there and here. */
        qsort(d->hard, d->n_hard, sizeof *d->hard, cmp_span);
        size_t k = 0, max_end = 0, at = 0; /* max_end: furthest end of the non-empty spans kept, at its index */
        for (size_t i = 0; i < d->n_hard; i++) {
            if (k && !cmp_span(&d->hard[i], &d->hard[k - 1])) continue;
            if (d->hard[i].start < d->hard[i].end) {
                if (d->hard[i].start < max_end)
                    return adp_seterr("hard_rationale_predictions: spans [%zu, %zu) and [%zu, %zu) overlap",
                                      d->hard[at].start, d->hard[at].end, d->hard[i].start, d->hard[i].end);
                max_end = d->hard[i].end;
                at = k;
            }
            d->hard[k++] = d->hard[i];
        }
        d->n_hard = k;
    }
    if (it[2]) {
        d->has_soft = 1;
        if (parse_floats(&d->soft, &d->n_soft, it[2], "soft_rationale_predictions") != ADP_OK) return ADP_ERR;
    }
    if (it[3]) {
        d->has_soft_sent = 1;
        if (parse_floats(&d->soft_sent, &d->n_soft_sent, it[3], "soft_sentence_predictions") != ADP_OK) return ADP_ERR;
    }
    return ADP_OK;
}

enum { F_CLS, F_COMP, F_SUFF, F_THR, F_TTF, F_HARD, F_SOFT, F_SENT, F_COUNT };
static const char *const FIELD_NAMES[F_COUNT] = {
    "classification", "comprehensiveness_classification_scores", "sufficiency_classification_scores",
    "thresholded_scores", "tokens_to_flip", "hard_rationale_predictions", "soft_rationale_predictions",
    "soft_sentence_predictions"};

/* One line; has[] gets which optional fields it carries. */
static int parse_result(eraser_result *r, const cJSON *j, int has[F_COUNT]) {
    static const char *const names[] = {"annotation_id", "rationales", "classification", "classification_scores",
                                        "comprehensiveness_classification_scores", "sufficiency_classification_scores",
                                        "thresholded_scores", "tokens_to_flip"};
    cJSON *it[8];
    memset(has, 0, F_COUNT * sizeof *has);
    if (jv_members(j, "result", names, it, 8) != ADP_OK) return ADP_ERR;
    if (!it[0]) return adp_seterr("result: missing 'annotation_id'");
    if (!it[1]) return adp_seterr("result: missing 'rationales'");
    if (jv_string(it[0], "annotation_id", &r->annotation_id) != ADP_OK) return ADP_ERR;
    if (!cJSON_IsArray(it[1])) return adp_seterr("rationales: expected a list");
    size_t m = (size_t)cJSON_GetArraySize(it[1]);
    r->docs = callocCheck(m, sizeof *r->docs);
    for (cJSON *c = it[1]->child; c; c = c->next) {
        eraser_result_doc *d = &r->docs[r->n_docs++];
        if (parse_result_doc(d, c) != ADP_OK) return adp_preferr("rationales[%zu]: ", r->n_docs - 1);
        for (size_t k = 0; k + 1 < r->n_docs; k++)
            if (!strcmp(r->docs[k].docid, d->docid))
                return adp_seterr("rationales: docid '%s' appears twice", d->docid);
        /* within a line, every document must carry the same prediction fields */
        int f[3] = {d->has_hard, d->has_soft, d->has_soft_sent};
        for (int k = 0; k < 3; k++) {
            if (r->n_docs > 1 && f[k] != has[F_HARD + k])
                return adp_seterr("rationales: '%s' is given for some documents but not all", FIELD_NAMES[F_HARD + k]);
            has[F_HARD + k] = f[k];
        }
    }
    if (!!it[2] != !!it[3]) return adp_seterr("classification and classification_scores must be given together");
    if (it[2]) {
        has[F_CLS] = 1;
        if (jv_string(it[2], "classification", &r->classification) != ADP_OK ||
            parse_probs(&r->cls, it[3], "classification_scores") != ADP_OK)
            return ADP_ERR;
        r->pred = r->cls.n;
        for (size_t k = 0; k < r->cls.n; k++)
            if (!strcmp(r->cls.labels[k], r->classification)) r->pred = k;
        if (r->pred == r->cls.n)
            return adp_seterr("classification '%s' is not a label of classification_scores", r->classification);
    }
    if (it[4]) {
        has[F_COMP] = 1;
        if (parse_probs(&r->comp, it[4], names[4]) != ADP_OK) return ADP_ERR;
    }
    if (it[5]) {
        has[F_SUFF] = 1;
        if (parse_probs(&r->suff, it[5], names[5]) != ADP_OK) return ADP_ERR;
    }
    if ((it[4] || it[5] || it[6] || it[7]) && !it[2])
        return adp_seterr("faithfulness fields (comprehensiveness, sufficiency, thresholded_scores, tokens_to_flip) "
                          "need classification and classification_scores");
    if (it[4] && align_probs(&r->comp, &r->cls, names[4]) != ADP_OK) return ADP_ERR;
    if (it[5] && align_probs(&r->suff, &r->cls, names[5]) != ADP_OK) return ADP_ERR;
    if (it[6]) {
        has[F_THR] = 1;
        if (!it[4] || !it[5])
            return adp_seterr("thresholded_scores needs comprehensiveness_ and sufficiency_classification_scores");
        if (!cJSON_IsArray(it[6])) return adp_seterr("thresholded_scores: expected a list");
        size_t n = (size_t)cJSON_GetArraySize(it[6]);
        r->thresholds = callocCheck(n, sizeof *r->thresholds);
        r->thr_comp = callocCheck(n, sizeof *r->thr_comp);
        r->thr_suff = callocCheck(n, sizeof *r->thr_suff);
        static const char *const tn[] = {"threshold", "comprehensiveness_classification_scores",
                                         "sufficiency_classification_scores"};
        for (cJSON *c = it[6]->child; c; c = c->next) {
            cJSON *t[3];
            size_t k = r->n_thresholds++;
            if (jv_members(c, "thresholded_scores[]", tn, t, 3) != ADP_OK) return ADP_ERR;
            if (!t[0] || !t[1] || !t[2])
                return adp_seterr("thresholded_scores[%zu]: needs threshold and both score tables", k);
            if (jv_number(t[0], "threshold", &r->thresholds[k]) != ADP_OK ||
                parse_probs(&r->thr_comp[k], t[1], tn[1]) != ADP_OK || parse_probs(&r->thr_suff[k], t[2], tn[2]) != ADP_OK ||
                align_probs(&r->thr_comp[k], &r->cls, tn[1]) != ADP_OK || align_probs(&r->thr_suff[k], &r->cls, tn[2]) != ADP_OK)
                return adp_preferr("thresholded_scores[%zu]: ", k);
        }
    }
    if (it[7]) {
        has[F_TTF] = 1;
        if (jv_long(it[7], "tokens_to_flip", 0, 1L << 40, &r->tokens_to_flip) != ADP_OK) return ADP_ERR;
    }
    return ADP_OK;
}

/* Same set of thresholds (as doubles, compared exactly as Python compares floats). */
static int same_threshold_set(const eraser_result *a, const eraser_result *b) {
    for (int pass = 0; pass < 2; pass++) {
        const eraser_result *x = pass ? b : a, *y = pass ? a : b;
        for (size_t i = 0; i < x->n_thresholds; i++) {
            size_t k = 0;
            while (k < y->n_thresholds && y->thresholds[k] != x->thresholds[i]) k++;
            if (k == y->n_thresholds) return 0;
        }
    }
    return 1;
}

int eraser_results_read(eraser_results *r, const char *path) {
    memset(r, 0, sizeof *r);
    strmap_init(&r->index);
    r->path = strdupCheck(path);
    char *text = NULL;
    size_t len = 0;
    if (adp_read_file(path, &text, &len) != ADP_OK) return ADP_ERR;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    r->v = callocCheck(lines + 1, sizeof *r->v);
    unsigned *fields = callocCheck(lines + 1, sizeof *fields); /* bit f: line has field f */
    int rc = ADP_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && rc == ADP_OK;) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n') eol++;
        lineno++;
        cJSON *j = NULL;
        eraser_result *res = &r->v[r->n];
        int has[F_COUNT];
        if (eol == pos || (eol == pos + 1 && text[pos] == '\r'))
            rc = adp_seterr("empty line");
        else if (jv_parse_line(&j, text + pos, eol - pos) != ADP_OK)
            rc = ADP_ERR;
        else if (parse_result(res, j, has) != ADP_OK)
            rc = ADP_ERR;
        else if (!strmap_put(&r->index, res->annotation_id, strlen(res->annotation_id), r->n, NULL))
            rc = adp_seterr("annotation_id '%s' appears twice", res->annotation_id);
        if (rc == ADP_OK) {
            res->line = lineno;
            for (int f = 0; f < F_COUNT; f++) fields[r->n] |= (unsigned)has[f] << f;
            r->n++;
        } else {
            result_free(res);
            adp_preferr("%s:%zu: ", path, lineno);
        }
        cJSON_Delete(j);
        pos = eol + 1;
    }
    free(text);
    if (rc == ADP_OK && r->n == 0) rc = adp_seterr("%s: no results", path);
    /* Optional fields: in every line or in none.  A line with an empty `rationales` list
     * cannot show prediction fields, so it does not count for them. */
    int *flag[F_COUNT] = {&r->has_cls, &r->has_comp, &r->has_suff, &r->has_thresholded, &r->has_tokens_to_flip,
                          &r->has_hard, &r->has_soft, &r->has_soft_sent};
    for (int f = 0; f < F_COUNT && rc == ADP_OK; f++) {
        size_t with = r->n, without = r->n;
        for (size_t i = 0; i < r->n; i++) {
            if (f >= F_HARD && r->v[i].n_docs == 0) continue;
            if (fields[i] >> f & 1) {
                if (with == r->n) with = i;
            } else if (without == r->n)
                without = i;
        }
        if (with < r->n && without < r->n)
            rc = adp_seterr("%s:%zu: '%s' is missing, but line %zu has it (optional fields must be in every line or none)",
                            path, r->v[without].line, FIELD_NAMES[f], r->v[with].line);
        *flag[f] = with < r->n;
    }
    for (size_t i = 1; rc == ADP_OK && r->has_thresholded && i < r->n; i++)
        if (!same_threshold_set(&r->v[i], &r->v[0]))
            rc = adp_seterr("%s:%zu: thresholded_scores has other thresholds than line %zu", path, r->v[i].line,
                            r->v[0].line);
    free(fields);
    return rc;
}

int eraser_results_check(const eraser_results *r, const eraser_dataset *ds) {
    for (size_t i = 0; i < r->n; i++) {
        const eraser_result *res = &r->v[i];
        for (size_t k = 0; k < res->n_docs; k++) {
            const eraser_result_doc *d = &res->docs[k];
            const eraser_doc *doc = eraser_find_doc(ds, d->docid);
            if (!doc) return adp_seterr("%s:%zu: unknown docid '%s'", r->path, res->line, d->docid);
            for (size_t s = 0; s < d->n_hard; s++)
                if (d->hard[s].end > doc->n_words)
                    return adp_seterr("%s:%zu: hard_rationale_predictions: span [%zu, %zu) outside document '%s' of %zu words",
                                      r->path, res->line, d->hard[s].start, d->hard[s].end, d->docid, doc->n_words);
            if (d->has_soft && d->n_soft != doc->n_words)
                return adp_seterr("%s:%zu: soft_rationale_predictions: %zu values for document '%s' of %zu words", r->path,
                                  res->line, d->n_soft, d->docid, doc->n_words);
            if (d->has_soft_sent && d->n_soft_sent != doc->n_sentences)
                return adp_seterr("%s:%zu: soft_sentence_predictions: %zu values for document '%s' of %zu sentences",
                                  r->path, res->line, d->n_soft_sent, d->docid, doc->n_sentences);
        }
    }
    return ADP_OK;
}

/* score.c: the score file of rationale_benchmark/metrics.py from a dataset split and a
 * results file: which keys and units enter each metric, and the JSON layout.  The metric
 * arithmetic is in metrics.c.
 *
 * Where we differ from metrics.py on purpose (README.md lists the same):
 *   - metrics.py scores hard predictions only if the FIRST line's first document has a
 *     non-empty hard_rationale_predictions list, so one empty first prediction silently
 *     drops every hard metric; here they are scored whenever the field is present.
 *   - divisions by zero (no gold, no predicted units) give 0 instead of a crash.
 *   - tokens_to_flip: metrics.py computes the mean fraction but never writes it to the
 *     score file; we write it as classification_scores.tokens_to_flip.  For an annotation
 *     without evidence (movies train posR_161) metrics.py divides by zero; we take the
 *     documents of its `docids` field, else those of its result line.
 *   - upstream's check that each docid appears once per line is dead code (it never fills
 *     its list) and unknown docids are not caught (`docid not in docid`); both are errors. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "eraser.h"
#include "metrics.h"

static const double DEFAULT_IOU[] = {0.5};
static const double DEFAULT_AOPC[] = {0.01, 0.05, 0.1, 0.2, 0.5};

/* ---- JSON helpers ------------------------------------------------------------------------- */

static void add_num(cJSON *o, const char *name, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, name, v);
    else cJSON_AddNullToObject(o, name); /* Python's json writes NaN, which is not JSON */
}

static cJSON *prf_json(const eraser_prf *p) {
    cJSON *o = cJSON_CreateObject();
    add_num(o, "f1", p->f1);
    add_num(o, "p", p->p);
    add_num(o, "r", p->r);
    return o;
}

static cJSON *num_array(const double *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

/* Sort every object's members by key (json.dump(sort_keys=True) order: code points, which
 * strcmp on UTF-8 reproduces). */
static void sort_keys(cJSON *j) {
    for (cJSON *c = j->child; c; c = c->next) sort_keys(c);
    if (!cJSON_IsObject(j) || !j->child) return;
    cJSON *sorted = NULL;
    for (cJSON *c = j->child, *next; c; c = next) {
        next = c->next;
        c->prev = c->next = NULL;
        if (!sorted || strcmp(c->string, sorted->string) < 0) {
            c->next = sorted;
            sorted = c;
            continue;
        }
        cJSON *at = sorted;
        while (at->next && strcmp(at->next->string, c->string) <= 0) at = at->next;
        c->next = at->next;
        at->next = c;
    }
    /* cJSON: child->prev is the last element, next of the last is NULL */
    cJSON *last = sorted;
    for (cJSON *c = sorted; c; c = c->next) {
        if (c->next) c->next->prev = c;
        last = c;
    }
    sorted->prev = last;
    j->child = sorted;
}

/* ---- keys ---------------------------------------------------------------------------------- */

typedef struct {
    const char *ann_id, *docid;
    const eraser_doc *doc;
    const eraser_annotation *ann; /* the split's annotation, or NULL */
    eraser_span *gold;
    size_t n_gold, cap_gold;
    const eraser_result_doc *res; /* the result's prediction for this key, or NULL */
} score_key;

typedef struct {
    score_key *v;
    size_t n, cap;
    strmap index;
} key_table;

static size_t key_get(key_table *t, const char *ann_id, const char *docid, const eraser_doc *doc) {
    size_t la = strlen(ann_id), ld = strlen(docid);
    char *k = mallocCheck(la + ld + 1);
    memcpy(k, ann_id, la + 1); /* the NUL separates the two ids */
    memcpy(k + la + 1, docid, ld);
    size_t i = strmap_get(&t->index, k, la + 1 + ld);
    if (i == (size_t)-1) {
        if (t->n == t->cap) t->v = reallocCheck(t->v, (t->cap = t->cap ? 2 * t->cap : 256) * sizeof *t->v);
        i = t->n++;
        memset(&t->v[i], 0, sizeof t->v[i]);
        t->v[i].ann_id = ann_id;
        t->v[i].docid = docid;
        t->v[i].doc = doc;
        strmap_put(&t->index, k, la + 1 + ld, i, NULL);
    }
    free(k);
    return i;
}

static void key_table_free(key_table *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i].gold);
    free(t->v);
    strmap_free(&t->index);
}

/* Gold keys from every evidence of the split, then the results' documents. */
static void build_keys(key_table *t, const eraser_dataset *ds, const eraser_results *r) {
    memset(t, 0, sizeof *t);
    strmap_init(&t->index);
    for (size_t a = 0; a < ds->n_anns; a++) {
        const eraser_annotation *ann = &ds->anns[a];
        for (size_t e = 0; e < ann->n_evidences; e++) {
            const eraser_evidence *ev = &ann->evidences[e];
            size_t ki = key_get(t, ann->annotation_id, ev->docid, eraser_find_doc(ds, ev->docid)); /* may move t->v */
            score_key *k = &t->v[ki];
            k->ann = ann;
            if (k->n_gold == k->cap_gold)
                k->gold = reallocCheck(k->gold, (k->cap_gold = k->cap_gold ? 2 * k->cap_gold : 8) * sizeof *k->gold);
            k->gold[k->n_gold++] = (eraser_span){ev->start_token, ev->end_token};
        }
    }
    for (size_t i = 0; i < r->n; i++)
        for (size_t d = 0; d < r->v[i].n_docs; d++) {
            const eraser_result_doc *rd = &r->v[i].docs[d];
            size_t ki = key_get(t, r->v[i].annotation_id, rd->docid, eraser_find_doc(ds, rd->docid));
            t->v[ki].res = rd;
        }
}

/* ---- parts of the score file --------------------------------------------------------------- */

static void score_hard(cJSON *out, const key_table *t, const eraser_score_opts *opt) {
    eraser_hard_key *hk = mallocCheck((t->n ? t->n : 1) * sizeof *hk);
    for (size_t i = 0; i < t->n; i++) {
        const score_key *k = &t->v[i];
        int pred = k->res && k->res->has_hard;
        hk[i] = (eraser_hard_key){k->doc->n_words, k->gold, k->n_gold, pred ? k->res->hard : NULL,
                                  pred ? k->res->n_hard : 0};
    }
    cJSON *iou = cJSON_AddArrayToObject(out, "iou_scores");
    for (size_t i = 0; i < opt->n_iou; i++) {
        eraser_prf mi, ma;
        eraser_iou_prf(&mi, &ma, hk, t->n, opt->iou_thresholds[i]);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "macro", prf_json(&ma));
        cJSON_AddItemToObject(o, "micro", prf_json(&mi));
        add_num(o, "threshold", opt->iou_thresholds[i]);
        cJSON_AddItemToArray(iou, o);
    }
    const char *names[2] = {"rationale_prf", "token_prf"};
    for (int level = 0; level < 2; level++) {
        eraser_prf mi, ma;
        if (level == 0) eraser_span_prf(&mi, &ma, hk, t->n);
        else eraser_token_prf(&mi, &ma, hk, t->n);
        cJSON *o = cJSON_AddObjectToObject(out, names[level]);
        cJSON_AddItemToObject(o, "instance_macro", prf_json(&ma));
        cJSON_AddItemToObject(o, "instance_micro", prf_json(&mi));
    }
    free(hk);

    /* keep rates over the documents the results cover (gold: the split's rationale) */
    eraser_keep_rates kr;
    eraser_keep_rates_init(&kr, 1);
    for (size_t i = 0; i < t->n; i++) {
        const score_key *k = &t->v[i];
        if (!k->res || !k->res->has_hard) continue;
        size_t n = k->doc->n_words;
        uint8_t *g = mallocCheck(n ? n : 1), *p = mallocCheck(n ? n : 1);
        eraser_spans_to_mask(g, n, k->gold, k->n_gold);
        eraser_spans_to_mask(p, n, k->res->hard, k->res->n_hard);
        eraser_keep_rates_add(&kr, 0, g, p, n);
        free(g);
        free(p);
    }
    eraser_rates rt;
    eraser_keep_rates_get(&rt, &kr, 0);
    eraser_keep_rates_free(&kr);
    cJSON *o = cJSON_AddObjectToObject(out, "keep_rates");
    cJSON *mi = cJSON_AddObjectToObject(o, "micro"), *ma = cJSON_AddObjectToObject(o, "macro");
    add_num(mi, "fpr", rt.fpr_micro);
    add_num(mi, "tpr", rt.tpr_micro);
    add_num(ma, "fpr", rt.fpr_macro);
    add_num(ma, "tpr", rt.tpr_macro);
    cJSON_AddNumberToObject(o, "n_keys", (double)rt.n_keys);
}

/* token_soft_metrics (sentences = 0) or sentence_soft_metrics (sentences = 1). */
static void score_soft(cJSON *out, const key_table *t, int sentences) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += t->v[i].res && (sentences ? t->v[i].res->has_soft_sent : t->v[i].res->has_soft);
    eraser_soft_key *sk = mallocCheck((n ? n : 1) * sizeof *sk);
    uint8_t **truth = mallocCheck((n ? n : 1) * sizeof *truth);
    n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const score_key *k = &t->v[i];
        if (!k->res || !(sentences ? k->res->has_soft_sent : k->res->has_soft)) continue;
        size_t len = sentences ? k->doc->n_sentences : k->doc->n_words;
        uint8_t *m = callocCheck(len ? len : 1, 1);
        if (!sentences) eraser_spans_to_mask(m, len, k->gold, k->n_gold);
        for (size_t e = 0; sentences && k->ann && e < k->ann->n_evidences; e++) {
            const eraser_evidence *ev = &k->ann->evidences[e];
            if (strcmp(ev->docid, k->docid) != 0) continue;
            for (long s = ev->start_sentence; s >= 0 && s < ev->end_sentence; s++) m[s] = 1; /* -1: unknown */
        }
        truth[n] = m;
        sk[n++] = (eraser_soft_key){len, m, sentences ? k->res->soft_sent : k->res->soft};
    }
    eraser_soft_scores s;
    eraser_soft_metrics(&s, sk, n);
    for (size_t i = 0; i < n; i++) free(truth[i]);
    free(truth);
    free(sk);
    cJSON *o = cJSON_AddObjectToObject(out, sentences ? "sentence_soft_metrics" : "token_soft_metrics");
    add_num(o, "auprc", s.auprc);
    add_num(o, "average_precision", s.average_precision);
    add_num(o, "roc_auc_score", s.roc_auc);
}

static int score_classification(cJSON *out, const eraser_dataset *ds, const eraser_results *r,
                                 const eraser_score_opts *opt) {
    size_t n = ds->n_anns;
    const char **gold = mallocCheck((n ? n : 1) * sizeof *gold), **pred = mallocCheck((n ? n : 1) * sizeof *pred);
    const eraser_result **res_of = mallocCheck((n ? n : 1) * sizeof *res_of);
    for (size_t a = 0; a < n; a++) {
        const eraser_result *res = eraser_find_result(r, ds->anns[a].annotation_id);
        if (!res) {
            free(gold), free(pred), free(res_of);
            return adp_seterr("%s: no result for annotation '%s' (%s:%zu); classification scores need all of them", r->path,
                              ds->anns[a].annotation_id, ds->ann_path ? ds->ann_path : "", ds->anns[a].line);
        }
        gold[a] = ds->anns[a].classification;
        pred[a] = res->classification;
        res_of[a] = res;
    }
    eraser_class_report rep;
    int rc = eraser_class_report_compute(&rep, gold, pred, n);
    free(gold), free(pred);
    if (rc != ADP_OK) {
        free(res_of);
        return adp_preferr("%s: ", r->path);
    }
    cJSON *o = cJSON_AddObjectToObject(out, "classification_scores");
    add_num(o, "accuracy", rep.accuracy);
    cJSON *prf = cJSON_AddObjectToObject(o, "prf");
    for (size_t k = 0; k <= rep.n_labels + 1; k++) {
        const eraser_class_prf *c = k < rep.n_labels ? &rep.per_label[k] : k == rep.n_labels ? &rep.macro : &rep.weighted;
        cJSON *x = cJSON_AddObjectToObject(prf, k < rep.n_labels ? rep.labels[k] : k == rep.n_labels ? "macro avg" : "weighted avg");
        add_num(x, "f1-score", c->f1);
        add_num(x, "precision", c->precision);
        add_num(x, "recall", c->recall);
        cJSON_AddNumberToObject(x, "support", (double)c->support);
    }
    add_num(prf, "accuracy", rep.accuracy);
    eraser_class_report_free(&rep);

    /* faithfulness over every result line, as metrics.py averages over `instances` */
    eraser_faith_instance *fi = callocCheck(r->n, sizeof *fi);
    size_t n_aopc = r->has_thresholded ? opt->n_aopc : 0;
    size_t max_labels = 1;
    for (size_t i = 0; i < r->n; i++) max_labels = ADP_MAX(max_labels, r->v[i].cls.n);
    double *tc = callocCheck(r->n * (n_aopc ? n_aopc : 1) * max_labels, sizeof *tc);
    double *ts = callocCheck(r->n * (n_aopc ? n_aopc : 1) * max_labels, sizeof *ts);
    for (size_t b = 0; b < n_aopc; b++)
        for (size_t c = 0; c < b; c++)
            if (opt->aopc_thresholds[b] == opt->aopc_thresholds[c]) rc = adp_seterr("AOPC threshold %g given twice", opt->aopc_thresholds[b]);
    /* each line's thresholded entries at the AOPC thresholds, in ascending order */
    size_t *order = mallocCheck((n_aopc ? n_aopc : 1) * sizeof *order);
    for (size_t b = 0; b < n_aopc; b++) order[b] = b;
    for (size_t b = 1; b < n_aopc; b++) /* insertion sort of the thresholds */
        for (size_t c = b; c > 0 && opt->aopc_thresholds[order[c]] < opt->aopc_thresholds[order[c - 1]]; c--) {
            size_t x = order[c];
            order[c] = order[c - 1];
            order[c - 1] = x;
        }
    for (size_t i = 0; i < r->n && rc == ADP_OK; i++) {
        const eraser_result *res = &r->v[i];
        fi[i] = (eraser_faith_instance){res->cls.n, res->pred, res->cls.p, r->has_comp ? res->comp.p : NULL,
                                         r->has_suff ? res->suff.p : NULL, NULL, NULL};
        if (!n_aopc) continue;
        double *comp_rows = tc + i * n_aopc * max_labels, *suff_rows = ts + i * n_aopc * max_labels;
        for (size_t b = 0; b < n_aopc && rc == ADP_OK; b++) {
            double th = opt->aopc_thresholds[order[b]];
            size_t found = res->n_thresholds, count = 0;
            for (size_t k = 0; k < res->n_thresholds; k++)
                if (res->thresholds[k] == th) found = k, count++;
            if (count != 1) {
                rc = adp_seterr("%s:%zu: thresholded_scores has %zu entries for AOPC threshold %g (need exactly 1)", r->path,
                                res->line, count, th);
                break;
            }
            memcpy(comp_rows + b * res->cls.n, res->thr_comp[found].p, res->cls.n * sizeof(double));
            memcpy(suff_rows + b * res->cls.n, res->thr_suff[found].p, res->cls.n * sizeof(double));
        }
        fi[i].thr_comp = comp_rows;
        fi[i].thr_suff = suff_rows;
    }
    if (rc == ADP_OK) {
        eraser_faith f;
        double *cp = callocCheck(n_aopc ? n_aopc : 1, sizeof *cp), *sp = callocCheck(n_aopc ? n_aopc : 1, sizeof *sp);
        eraser_faithfulness(&f, cp, sp, fi, r->n, n_aopc);
        add_num(o, "comprehensiveness", f.comprehensiveness);
        add_num(o, "sufficiency", f.sufficiency);
        add_num(o, "comprehensiveness_entropy", f.comprehensiveness_entropy);
        add_num(o, "comprehensiveness_kl", f.comprehensiveness_kl);
        add_num(o, "sufficiency_entropy", f.sufficiency_entropy);
        add_num(o, "sufficiency_kl", f.sufficiency_kl);
        if (n_aopc) {
            cJSON_AddItemToObject(o, "aopc_thresholds", num_array(opt->aopc_thresholds, opt->n_aopc));
            add_num(o, "comprehensiveness_aopc", f.comprehensiveness_aopc);
            cJSON_AddItemToObject(o, "comprehensiveness_aopc_points", num_array(cp, n_aopc));
            add_num(o, "sufficiency_aopc", f.sufficiency_aopc);
            cJSON_AddItemToObject(o, "sufficiency_aopc_points", num_array(sp, n_aopc));
        } else {
            const char *none[] = {"aopc_thresholds", "comprehensiveness_aopc", "comprehensiveness_aopc_points",
                                  "sufficiency_aopc", "sufficiency_aopc_points"};
            for (int k = 0; k < 5; k++) cJSON_AddNullToObject(o, none[k]);
        }
        free(cp), free(sp);
    }
    free(order), free(fi), free(tc), free(ts);

    /* tokens_to_flip: mean over the split's annotations of tokens / words in its documents */
    if (rc == ADP_OK && r->has_tokens_to_flip) {
        double *tok = mallocCheck((n ? n : 1) * sizeof *tok);
        size_t *len = mallocCheck((n ? n : 1) * sizeof *len);
        for (size_t a = 0; a < n && rc == ADP_OK; a++) {
            const eraser_annotation *ann = &ds->anns[a];
            size_t total = 0;
            /* distinct docids of the evidences (else the docids field, else the result's) */
            const char **ids = mallocCheck((ann->n_evidences + ann->n_docids + res_of[a]->n_docs + 1) * sizeof *ids);
            size_t m = 0;
            for (size_t e = 0; e < ann->n_evidences; e++) ids[m++] = ann->evidences[e].docid;
            for (size_t e = 0; !m && e < ann->n_docids; e++) ids[m++] = ann->docids[e];
            for (size_t e = 0; !m && e < res_of[a]->n_docs; e++) ids[m++] = res_of[a]->docs[e].docid;
            for (size_t e = 0; e < m && rc == ADP_OK; e++) {
                int dup = 0;
                for (size_t f = 0; f < e; f++) dup |= !strcmp(ids[f], ids[e]);
                if (dup) continue;
                const eraser_doc *d = eraser_find_doc(ds, ids[e]);
                if (!d) rc = adp_seterr("tokens_to_flip: annotation '%s': document '%s' is not loaded", ann->annotation_id, ids[e]);
                else total += d->n_words;
            }
            free(ids);
            if (rc == ADP_OK && total == 0)
                rc = adp_seterr("tokens_to_flip: annotation '%s' has no document with words", ann->annotation_id);
            tok[a] = (double)res_of[a]->tokens_to_flip;
            len[a] = total;
        }
        if (rc == ADP_OK) add_num(o, "tokens_to_flip", eraser_tokens_to_flip(tok, len, n));
        free(tok), free(len);
    } else if (rc == ADP_OK)
        cJSON_AddNullToObject(o, "tokens_to_flip");
    free(res_of);
    return rc;
}

int eraser_score(cJSON **out, const eraser_dataset *ds, const eraser_results *r, const eraser_score_opts *opt) {
    eraser_score_opts o = opt ? *opt : (eraser_score_opts){0};
    if (!o.iou_thresholds) o.iou_thresholds = DEFAULT_IOU, o.n_iou = 1;
    if (!o.aopc_thresholds) o.aopc_thresholds = DEFAULT_AOPC, o.n_aopc = 5;
    /* every key needs its document */
    for (size_t a = 0; a < ds->n_anns; a++)
        for (size_t e = 0; e < ds->anns[a].n_evidences; e++)
            if (!eraser_find_doc(ds, ds->anns[a].evidences[e].docid))
                return adp_seterr("document '%s' is not loaded", ds->anns[a].evidences[e].docid);
    if (eraser_results_check(r, ds) != ADP_OK) return ADP_ERR;
    key_table t;
    build_keys(&t, ds, r);
    cJSON *j = cJSON_CreateObject();
    if (r->has_hard) score_hard(j, &t, &o);
    if (r->has_soft) score_soft(j, &t, 0);
    if (r->has_soft_sent) score_soft(j, &t, 1);
    int rc = r->has_cls ? score_classification(j, ds, r, &o) : ADP_OK;
    key_table_free(&t);
    if (rc != ADP_OK) {
        cJSON_Delete(j);
        return ADP_ERR;
    }
    sort_keys(j);
    *out = j;
    return ADP_OK;
}

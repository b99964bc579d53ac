/* metrics.c: ERASER metrics (see metrics.h; definitions in README.md).  Every function
 * follows rationale_benchmark/metrics.py line by line in what it counts; the curve
 * metrics follow sklearn 1.2's _binary_clf_curve, precision_recall_curve, roc_curve and
 * auc (np.trapz), the entropies scipy 1.10's stats.entropy. */
#include "metrics.h"

#include <math.h>
#include <string.h>

#include "align.h"
#include "common.h"

double eraser_f1(double p, double r) { return (p == 0 || r == 0) ? 0 : 2 * p * r / (p + r); }

static int cmp_span(const void *a, const void *b) {
    const eraser_span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The distinct spans of s, sorted (malloc'd; *m their count). */
static eraser_span *unique_spans(const eraser_span *s, size_t n, size_t *m) {
    eraser_span *u = mallocCheck((n ? n : 1) * sizeof *u);
    if (n) memcpy(u, s, n * sizeof *u);
    qsort(u, n, sizeof *u, cmp_span);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || cmp_span(&u[i], &u[k - 1])) u[k++] = u[i];
    *m = k;
    return u;
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0; }

/* Per-key unit counts -> micro and macro P/R/F1, as score_hard_rationale_predictions. */
typedef struct {
    size_t gold, pred, both;
} unit_counts;

static void prf_from_counts(eraser_prf *micro, eraser_prf *macro, const unit_counts *c, size_t n) {
    double g = 0, p = 0, b = 0, sp = 0, sr = 0, sf = 0;
    size_t present = 0;
    for (size_t k = 0; k < n; k++) {
        g += (double)c[k].gold;
        p += (double)c[k].pred;
        b += (double)c[k].both;
        if (!c[k].gold && !c[k].pred) continue; /* not a key of truth or pred */
        double pk = c[k].pred ? (double)c[k].both / (double)c[k].pred : 0;
        double rk = c[k].gold ? (double)c[k].both / (double)c[k].gold : 0;
        sp += pk;
        sr += rk;
        sf += eraser_f1(pk, rk);
        present++;
    }
    micro->p = safe_div(b, p);
    micro->r = safe_div(b, g);
    micro->f1 = eraser_f1(micro->p, micro->r);
    macro->p = safe_div(sp, (double)present);
    macro->r = safe_div(sr, (double)present);
    macro->f1 = safe_div(sf, (double)present);
}

void eraser_token_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n) {
    unit_counts *c = callocCheck(n, sizeof *c);
    size_t cap = 0;
    uint8_t *g = NULL, *p = NULL;
    for (size_t k = 0; k < n; k++) {
        const eraser_hard_key *key = &keys[k];
        if (key->n_words > cap) {
            cap = key->n_words;
            g = reallocCheck(g, cap);
            p = reallocCheck(p, cap);
        }
        eraser_spans_to_mask(g, key->n_words, key->gold, key->n_gold);
        eraser_spans_to_mask(p, key->n_words, key->pred, key->n_pred);
        for (size_t w = 0; w < key->n_words; w++) {
            c[k].gold += g[w];
            c[k].pred += p[w];
            c[k].both += g[w] & p[w];
        }
    }
    prf_from_counts(micro, macro, c, n);
    free(g);
    free(p);
    free(c);
}

void eraser_span_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n) {
    unit_counts *c = callocCheck(n, sizeof *c);
    for (size_t k = 0; k < n; k++) {
        size_t ng, np;
        eraser_span *g = unique_spans(keys[k].gold, keys[k].n_gold, &ng);
        eraser_span *p = unique_spans(keys[k].pred, keys[k].n_pred, &np);
        c[k].gold = ng;
        c[k].pred = np;
        for (size_t i = 0, j = 0; i < np && j < ng;) { /* merge of two sorted lists */
            int d = cmp_span(&p[i], &g[j]);
            if (d == 0) c[k].both++;
            if (d <= 0) i++;
            if (d >= 0) j++;
        }
        free(g);
        free(p);
    }
    prf_from_counts(micro, macro, c, n);
    free(c);
}

double eraser_span_iou(eraser_span a, eraser_span b) {
    size_t la = a.end > a.start ? a.end - a.start : 0, lb = b.end > b.start ? b.end - b.start : 0;
    size_t lo = ADP_MAX(a.start, b.start), hi = ADP_MIN(a.end, b.end);
    size_t inter = (la && lb && hi > lo) ? hi - lo : 0;
    size_t uni = la + lb - inter;
    return uni ? (double)inter / (double)uni : 0;
}

void eraser_iou_prf(eraser_prf *micro, eraser_prf *macro, const eraser_hard_key *keys, size_t n, double threshold) {
    double tp_all = 0, gold_all = 0, pred_all = 0, sum_r = 0, sum_p = 0;
    size_t n_r = 0, n_p = 0;
    for (size_t k = 0; k < n; k++) {
        size_t ng, np, tp = 0;
        eraser_span *g = unique_spans(keys[k].gold, keys[k].n_gold, &ng);
        eraser_span *p = unique_spans(keys[k].pred, keys[k].n_pred, &np);
        for (size_t i = 0; i < np; i++) {
            double best = 0.0;
            for (size_t j = 0; j < ng; j++) {
                double iou = eraser_span_iou(p[i], g[j]);
                if (iou > best) best = iou;
            }
            tp += best >= threshold;
        }
        tp_all += (double)tp;
        gold_all += (double)ng;
        pred_all += (double)np;
        if (ng) sum_r += (double)tp / (double)ng, n_r++;
        if (np) sum_p += (double)tp / (double)np, n_p++;
        free(g);
        free(p);
    }
    micro->r = safe_div(tp_all, gold_all);
    micro->p = safe_div(tp_all, pred_all);
    micro->f1 = eraser_f1(micro->r, micro->p);
    macro->r = safe_div(sum_r, (double)n_r);
    macro->p = safe_div(sum_p, (double)n_p);
    macro->f1 = eraser_f1(macro->r, macro->p);
}

/* ---- curves ------------------------------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const double *score = ctx;
    double x = score[*(const size_t *)a], y = score[*(const size_t *)b];
    return x > y ? -1 : x < y;
}

/* sklearn _binary_clf_curve: cumulative true and false positives at each distinct score,
 * scores descending.  tps/fps get K entries (K = number of distinct scores). */
static size_t binary_clf_curve(double *tps, double *fps, const uint8_t *truth, const double *score, size_t n) {
    size_t *idx = mallocCheck(n * sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof *idx, cmp_desc, (void *)score);
    size_t k = 0;
    double tp = 0;
    for (size_t i = 0; i < n; i++) {
        tp += truth[idx[i]] ? 1.0 : 0.0;
        if (i + 1 == n || score[idx[i + 1]] != score[idx[i]]) {
            tps[k] = tp;
            fps[k] = (double)(i + 1) - tp;
            k++;
        }
    }
    free(idx);
    return k;
}

/* precision_recall_curve, returned in sklearn's order (recall decreasing), K + 1 points. */
static size_t pr_curve(double **prec, double **rec, const uint8_t *truth, const double *score, size_t n) {
    ASSERT(n > 0);
    double *tps = mallocCheck(n * sizeof *tps), *fps = mallocCheck(n * sizeof *fps);
    size_t K = binary_clf_curve(tps, fps, truth, score, n);
    double *P = mallocCheck((K + 1) * sizeof *P), *R = mallocCheck((K + 1) * sizeof *R);
    for (size_t i = 0; i < K; i++) {
        double ps = tps[i] + fps[i];
        P[K - 1 - i] = ps != 0 ? tps[i] / ps : 0;
        R[K - 1 - i] = tps[K - 1] == 0 ? 1.0 : tps[i] / tps[K - 1];
    }
    P[K] = 1;
    R[K] = 0;
    free(tps);
    free(fps);
    *prec = P;
    *rec = R;
    return K + 1;
}

/* sklearn auc: trapezoid rule, with the direction of x detected (x is monotonic here). */
static double auc_trapz(const double *x, const double *y, size_t m) {
    ASSERT(m >= 2);
    int any_neg = 0, all_nonpos = 1;
    for (size_t i = 0; i + 1 < m; i++) {
        double dx = x[i + 1] - x[i];
        any_neg |= dx < 0;
        all_nonpos &= dx <= 0;
    }
    ASSERT(!any_neg || all_nonpos); /* monotonic by construction */
    double direction = any_neg ? -1.0 : 1.0, area = 0;
    for (size_t i = 0; i + 1 < m; i++) area += (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0;
    return direction * area;
}

double eraser_auprc(const uint8_t *truth, const double *score, size_t n) {
    double *P, *R;
    size_t m = pr_curve(&P, &R, truth, score, n);
    double a = auc_trapz(R, P, m);
    free(P);
    free(R);
    return a;
}

double eraser_average_precision(const uint8_t *truth, const double *score, size_t n) {
    double *P, *R;
    size_t m = pr_curve(&P, &R, truth, score, n);
    double s = 0;
    for (size_t i = 0; i + 1 < m; i++) s += (R[i + 1] - R[i]) * P[i];
    free(P);
    free(R);
    return -s;
}

double eraser_roc_auc(const uint8_t *truth, const double *score, size_t n) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += truth[i] != 0;
    if (pos == 0 || pos == n) return NAN;
    double *tps = mallocCheck(n * sizeof *tps), *fps = mallocCheck(n * sizeof *fps);
    size_t K = binary_clf_curve(tps, fps, truth, score, n);
    /* drop_intermediate: keep the ends and every point where the curve bends */
    double *x = mallocCheck((K + 1) * sizeof *x), *y = mallocCheck((K + 1) * sizeof *y);
    size_t m = 0;
    x[m] = 0, y[m] = 0, m++;
    for (size_t i = 0; i < K; i++) {
        int keep = K <= 2 || i == 0 || i == K - 1 ||
                   (fps[i + 1] - fps[i]) - (fps[i] - fps[i - 1]) != 0 ||
                   (tps[i + 1] - tps[i]) - (tps[i] - tps[i - 1]) != 0;
        if (keep) x[m] = fps[i], y[m] = tps[i], m++;
    }
    double fn = fps[K - 1], tn = tps[K - 1];
    for (size_t i = 0; i < m; i++) x[i] /= fn, y[i] /= tn;
    double a = auc_trapz(x, y, m);
    free(tps);
    free(fps);
    free(x);
    free(y);
    return a;
}

void eraser_soft_metrics(eraser_soft_scores *out, const eraser_soft_key *keys, size_t n) {
    double s_auprc = 0, s_ap = 0, s_roc = 0;
    size_t two = 0;
    for (size_t k = 0; k < n; k++) {
        const eraser_soft_key *key = &keys[k];
        s_auprc += eraser_auprc(key->truth, key->score, key->n);
        size_t pos = 0;
        for (size_t i = 0; i < key->n; i++) pos += key->truth[i] != 0;
        if (pos == 0 || pos == key->n) continue; /* _score_aggregator(discard_single_class_answers) */
        s_ap += eraser_average_precision(key->truth, key->score, key->n);
        s_roc += eraser_roc_auc(key->truth, key->score, key->n);
        two++;
    }
    out->n_keys = n;
    out->n_two_class = two;
    out->auprc = n ? s_auprc / (double)n : 0.0; /* _auprc returns 0.0 without predictions */
    /* np.average([]) is NaN; with no keys at all _score_aggregator returns 0.0 */
    out->average_precision = n == 0 ? 0.0 : two ? s_ap / (double)two : NAN;
    out->roc_auc = n == 0 ? 0.0 : two ? s_roc / (double)two : NAN;
}

/* ---- faithfulness ------------------------------------------------------------------------- */

double eraser_entropy(const double *p, size_t n) {
    double sum = 0, s = 0;
    for (size_t i = 0; i < n; i++) sum += p[i];
    for (size_t i = 0; i < n; i++) {
        double x = 1.0 * p[i] / sum; /* 0/0 = NaN propagates, as in numpy */
        s += x > 0 ? -x * log(x) : x == 0 ? 0 : (x < 0 ? -INFINITY : x);
    }
    return s;
}

double eraser_kl(const double *p, const double *q, size_t n) {
    double sp = 0, sq = 0, s = 0;
    for (size_t i = 0; i < n; i++) sp += p[i], sq += q[i];
    for (size_t i = 0; i < n; i++) {
        double x = 1.0 * p[i] / sp, y = 1.0 * q[i] / sq;
        if (isnan(x) || isnan(y)) s += NAN;
        else if (x > 0 && y > 0) s += x * log(x / y);
        else if (x == 0 && y >= 0) s += 0;
        else s += INFINITY;
    }
    return s;
}

void eraser_faithfulness(eraser_faith *out, double *comp_points, double *suff_points,
                         const eraser_faith_instance *inst, size_t n, size_t n_aopc) {
    int has_comp = n > 0, has_suff = n > 0, has_thr = n > 0;
    for (size_t i = 0; i < n; i++) {
        has_comp &= inst[i].comp != NULL;
        has_suff &= inst[i].suff != NULL;
        has_thr &= inst[i].thr_comp != NULL && inst[i].thr_suff != NULL;
    }
    double c = 0, s = 0, ce = 0, se = 0, ck = 0, sk = 0, ca = 0, sa = 0;
    for (size_t b = 0; b < n_aopc; b++) {
        if (comp_points) comp_points[b] = 0;
        if (suff_points) suff_points[b] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const eraser_faith_instance *x = &inst[i];
        double full = x->full[x->pred], h = eraser_entropy(x->full, x->n_labels);
        if (has_comp) {
            c += full - x->comp[x->pred];
            ce += h - eraser_entropy(x->comp, x->n_labels);
            ck += eraser_kl(x->comp, x->full, x->n_labels);
        }
        if (has_suff) {
            s += full - x->suff[x->pred];
            se += h - eraser_entropy(x->suff, x->n_labels);
            sk += eraser_kl(x->suff, x->full, x->n_labels);
        }
        for (size_t b = 0; has_thr && b < n_aopc; b++) {
            double dc = full - x->thr_comp[b * x->n_labels + x->pred];
            double ds = full - x->thr_suff[b * x->n_labels + x->pred];
            ca += dc;
            sa += ds;
            if (comp_points) comp_points[b] += dc;
            if (suff_points) suff_points[b] += ds;
        }
    }
    double dn = (double)n;
    out->comprehensiveness = has_comp ? c / dn : NAN;
    out->comprehensiveness_entropy = has_comp ? ce / dn : NAN;
    out->comprehensiveness_kl = has_comp ? ck / dn : NAN;
    out->sufficiency = has_suff ? s / dn : NAN;
    out->sufficiency_entropy = has_suff ? se / dn : NAN;
    out->sufficiency_kl = has_suff ? sk / dn : NAN;
    out->comprehensiveness_aopc = has_thr && n_aopc ? ca / (dn * (double)n_aopc) : NAN;
    out->sufficiency_aopc = has_thr && n_aopc ? sa / (dn * (double)n_aopc) : NAN;
    for (size_t b = 0; b < n_aopc; b++) {
        if (comp_points) comp_points[b] = has_thr ? comp_points[b] / dn : NAN;
        if (suff_points) suff_points[b] = has_thr ? suff_points[b] / dn : NAN;
    }
}

/* ---- classification ----------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static size_t label_index(char *const *labels, size_t n, const char *s) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(labels[mid], s);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return n;
}

int eraser_class_report_compute(eraser_class_report *rep, const char *const *gold, const char *const *pred, size_t n) {
    memset(rep, 0, sizeof *rep);
    if (n == 0) return adp_seterr("classification report: no instances");
    char **labels = mallocCheck(n * sizeof *labels);
    for (size_t i = 0; i < n; i++) labels[i] = (char *)gold[i];
    qsort(labels, n, sizeof *labels, cmp_str);
    size_t L = 0;
    for (size_t i = 0; i < n; i++)
        if (!L || strcmp(labels[i], labels[L - 1])) labels[L++] = labels[i];
    size_t *tp = callocCheck(L, sizeof *tp), *psum = callocCheck(L, sizeof *psum), *tsum = callocCheck(L, sizeof *tsum);
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t g = label_index(labels, L, gold[i]), p = label_index(labels, L, pred[i]);
        if (p == L) {
            free(labels), free(tp), free(psum), free(tsum);
            return adp_seterr("predicted label '%s' is not among the gold labels", pred[i]);
        }
        tsum[g]++;
        psum[p]++;
        if (g == p) tp[g]++, correct++;
    }
    rep->n_labels = L;
    rep->labels = mallocCheck(L * sizeof *rep->labels);
    rep->per_label = mallocCheck(L * sizeof *rep->per_label);
    double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
    for (size_t k = 0; k < L; k++) {
        rep->labels[k] = strdupCheck(labels[k]);
        eraser_class_prf *c = &rep->per_label[k];
        c->precision = psum[k] ? (double)tp[k] / (double)psum[k] : 0.0; /* zero_division="warn" -> 0 */
        c->recall = tsum[k] ? (double)tp[k] / (double)tsum[k] : 0.0;
        double denom = c->precision + c->recall;
        c->f1 = 2.0 * c->precision * c->recall / (denom == 0.0 ? 1.0 : denom);
        c->support = tsum[k];
        mp += c->precision, mr += c->recall, mf += c->f1;
        wp += c->precision * (double)tsum[k], wr += c->recall * (double)tsum[k], wf += c->f1 * (double)tsum[k];
    }
    rep->macro = (eraser_class_prf){mp / (double)L, mr / (double)L, mf / (double)L, n};
    rep->weighted = (eraser_class_prf){wp / (double)n, wr / (double)n, wf / (double)n, n};
    rep->accuracy = (double)correct / (double)n;
    free(labels), free(tp), free(psum), free(tsum);
    return ADP_OK;
}

void eraser_class_report_free(eraser_class_report *rep) {
    for (size_t k = 0; k < rep->n_labels; k++) free(rep->labels[k]);
    free(rep->labels);
    free(rep->per_label);
    memset(rep, 0, sizeof *rep);
}

/* ---- keep rates --------------------------------------------------------------------------- */

void eraser_keep_count(eraser_keep_counts *c, const uint8_t *gold, const uint8_t *kept, size_t n) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        int g = gold[i] != 0, k = kept[i] != 0;
        c->pos += g;
        c->neg += !g;
        c->tp += g & k;
        c->fp += !g && k;
    }
}

void eraser_keep_rates_init(eraser_keep_rates *r, size_t n_layers) {
    r->n_layers = n_layers;
    r->total = callocCheck(n_layers, sizeof *r->total);
    r->sum_fpr = callocCheck(n_layers, sizeof *r->sum_fpr);
    r->sum_tpr = callocCheck(n_layers, sizeof *r->sum_tpr);
    r->n_fpr = callocCheck(n_layers, sizeof *r->n_fpr);
    r->n_tpr = callocCheck(n_layers, sizeof *r->n_tpr);
    r->n_keys = callocCheck(n_layers, sizeof *r->n_keys);
}

void eraser_keep_rates_free(eraser_keep_rates *r) {
    free(r->total), free(r->sum_fpr), free(r->sum_tpr), free(r->n_fpr), free(r->n_tpr), free(r->n_keys);
    memset(r, 0, sizeof *r);
}

int eraser_keep_rates_add(eraser_keep_rates *r, size_t layer, const uint8_t *gold, const uint8_t *kept, size_t n_words) {
    if (layer >= r->n_layers) return adp_seterr("keep rates: layer %zu out of range (%zu layers)", layer, r->n_layers);
    eraser_keep_counts c;
    eraser_keep_count(&c, gold, kept, n_words);
    eraser_keep_counts *t = &r->total[layer];
    t->tp += c.tp, t->fp += c.fp, t->pos += c.pos, t->neg += c.neg;
    if (c.neg) r->sum_fpr[layer] += (double)c.fp / (double)c.neg, r->n_fpr[layer]++;
    if (c.pos) r->sum_tpr[layer] += (double)c.tp / (double)c.pos, r->n_tpr[layer]++;
    r->n_keys[layer]++;
    return ADP_OK;
}

void eraser_keep_rates_get(eraser_rates *out, const eraser_keep_rates *r, size_t layer) {
    ASSERT(layer < r->n_layers);
    const eraser_keep_counts *t = &r->total[layer];
    out->fpr_micro = t->neg ? (double)t->fp / (double)t->neg : NAN;
    out->tpr_micro = t->pos ? (double)t->tp / (double)t->pos : NAN;
    out->fpr_macro = r->n_fpr[layer] ? r->sum_fpr[layer] / (double)r->n_fpr[layer] : NAN;
    out->tpr_macro = r->n_tpr[layer] ? r->sum_tpr[layer] / (double)r->n_tpr[layer] : NAN;
    out->n_keys = r->n_keys[layer];
}

int eraser_keep_rates_add_pieces(eraser_keep_rates *r, size_t layer, const uint8_t *gold, size_t n_words,
                                 const uint8_t *piece_keep, const int32_t *word_ids, size_t n_pieces) {
    uint8_t *kept = mallocCheck(n_words ? n_words : 1);
    int rc = eraser_word_keep_from_pieces(kept, n_words, piece_keep, word_ids, n_pieces);
    if (rc == ADP_OK) rc = eraser_keep_rates_add(r, layer, gold, kept, n_words);
    free(kept);
    return rc;
}

double eraser_tokens_to_flip(const double *tokens, const size_t *doc_words, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += tokens[i] / (double)doc_words[i];
    return n ? s / (double)n : NAN;
}

/* export_model.c: a model and a pruning method over ERASER annotations -> ERASER's results
 * file.  The rules are in export_model.h; the flow, per chunk of annotations:
 *   1. tokenize each document word by word and cut it into windows;
 *   2. run every window (packed batches): class probabilities, which pieces enter the last
 *      layer, and the method's scores at its first scoring layer;
 *   3. merge the windows into words: hard rationale, soft scores, probabilities;
 *   4. build the edited documents (comprehensiveness, sufficiency, AOPC bins) from the
 *      words' pieces, window them and run them;
 *   5. write one results line per annotation. */
#include "export_model.h"

#include <math.h>
#include <string.h>
#include <utf8proc.h>

#include "align.h"
#include "basic_tokenizer.h"
#include "bert.h"
#include "common.h"

int eraser_export_soft_kind(const char *name) {
    if (!strcmp(name, "adapler")) return ERASER_SOFT_ADAPLER;
    if (!strcmp(name, "cascade") || !strcmp(name, "ltp") || !strcmp(name, "power") || !strcmp(name, "saliency"))
        return ERASER_SOFT_TRACE;
    return ERASER_SOFT_NONE;
}

int eraser_annotation_docid(const char **docid, const eraser_annotation *a) {
    *docid = NULL;
    if (a->docids && a->n_docids > 0) {
        if (a->n_docids > 1)
            return adp_seterr("annotation '%s' names %zu documents; export handles single-document tasks",
                              a->annotation_id, a->n_docids);
        *docid = a->docids[0];
        return ADP_OK;
    }
    for (size_t e = 0; e < a->n_evidences; e++) {
        const char *d = a->evidences[e].docid;
        if (!*docid) *docid = d;
        else if (strcmp(*docid, d) != 0)
            return adp_seterr("annotation '%s' has evidence in documents '%s' and '%s'; export handles "
                              "single-document tasks", a->annotation_id, *docid, d);
    }
    if (!*docid) *docid = a->annotation_id;
    return ADP_OK;
}

/* ---- one annotation in flight ---------------------------------------------------------- */

/* Edited documents: comprehensiveness, sufficiency, then per AOPC bin b its pair. */
enum { VAR_COMP = 0, VAR_SUFF = 1, VAR_BINS = 2 };

typedef struct {
    const eraser_annotation *a;
    const eraser_doc *d;
    size_t n_words, n_pieces;
    int32_t *ids, *wid;     /* (n_pieces) document pieces (no specials) and their ERASER word */
    size_t *first;          /* (n_words + 1): the pieces of word w are [first[w], first[w+1]) */
    eraser_window *win;     /* the document's windows (one empty window if it has no piece) */
    size_t n_win;
    uint8_t *wkeep;         /* (n_pieces over all windows) window k's pieces at wpos[k] */
    float *wscore;
    size_t *wpos;
    double *p_full;         /* (C) mean of the windows' probabilities */
    uint8_t *keep;          /* (n_words) hard rationale */
    float *soft;            /* (n_words) or NULL */
    size_t n_var;
    double *p_var;          /* (n_var, C) */
    size_t *var_n_win;      /* windows run per edited document; 0 = reused the original */
    int32_t **var_ids;      /* pieces of each edited document (NULL when reused) */
    eraser_window **var_win;
} job;

/* A sequence to run: window k of the original document (var < 0) or of edited document var. */
typedef struct {
    job *j;
    int var;
    size_t k;
    const int32_t *ids;
    size_t n;
} seq;

typedef struct {
    const eraser_export_opts *o;
    eraser_export_stats *st;
    int L, C;
    size_t window, overlap;
    bert_ctx ctx;
    wp_encoding enc;
    int32_t *ids; /* (batch * max_len) packed batch */
    int *off;     /* (batch + 1) */
    size_t seq_counter;
    seq *q;
    size_t n_q, cap_q;
} exporter;

static void job_free(job *j) {
    free(j->ids), free(j->wid), free(j->first), free(j->win), free(j->wkeep), free(j->wscore), free(j->wpos);
    free(j->p_full), free(j->keep), free(j->soft), free(j->p_var), free(j->var_n_win);
    for (size_t v = 0; v < j->n_var; v++) {
        if (j->var_ids) free(j->var_ids[v]);
        if (j->var_win) free(j->var_win[v]);
    }
    free(j->var_ids), free(j->var_win);
    memset(j, 0, sizeof *j);
}

static void push_seq(exporter *E, job *j, int var, size_t k, const int32_t *ids, size_t n) {
    if (E->n_q == E->cap_q) {
        E->cap_q = E->cap_q ? 2 * E->cap_q : 256;
        E->q = reallocCheck(E->q, E->cap_q * sizeof *E->q);
    }
    E->q[E->n_q++] = (seq){j, var, k, ids, n};
}

/* Windows over n pieces whose words are wid (one empty window when n = 0). */
static int plan(exporter *E, eraser_window **win, size_t *n_win, const int32_t *wid, size_t n) {
    if (n == 0) {
        *win = mallocCheck(sizeof **win);
        (*win)[0] = (eraser_window){0, 0};
        *n_win = 1;
        return ADP_OK;
    }
    return eraser_plan_windows(win, n_win, wid, n, E->window, E->overlap);
}

/* Pieces of the document, word by word: the words joined by spaces are tokenized once and
 * each piece's whitespace word (BERT's numbering) is mapped back to its ERASER word (an ERASER
 * word can hold several BERT words, e.g. around a tab, or none). */
static int tokenize_doc(exporter *E, job *j) {
    const eraser_doc *d = j->d;
    size_t len = 1;
    for (size_t w = 0; w < d->n_words; w++) len += strlen(d->words[w]) + 1;
    char *text = mallocCheck(len), *p = text;
    size_t *bert_words = mallocCheck((d->n_words + 1) * sizeof *bert_words); /* prefix counts */
    bert_words[0] = 0;
    for (size_t w = 0; w < d->n_words; w++) {
        size_t k = strlen(d->words[w]), c;
        if (w) *p++ = ' ';
        memcpy(p, d->words[w], k);
        p += k;
        if (basic_count_words(d->words[w], k, &c) != ADP_OK) {
            free(text), free(bert_words);
            return adp_preferr("document '%s', word %zu: ", d->docid, w);
        }
        bert_words[w + 1] = bert_words[w] + c;
    }
    *p = 0;
    int rc = wordpiece_tokenize(E->o->wp, &E->enc, text, (size_t)(p - text));
    free(text);
    if (rc != ADP_OK) {
        free(bert_words);
        return adp_preferr("document '%s': ", d->docid);
    }
    if (E->enc.n_words_a != bert_words[d->n_words]) {
        size_t got = E->enc.n_words_a, want = bert_words[d->n_words];
        free(bert_words);
        return adp_seterr("document '%s': the tokenizer saw %zu words, the word counts add up to %zu", d->docid, got,
                          want);
    }
    size_t n = E->enc.n;
    j->n_pieces = n;
    j->ids = mallocCheck((n ? n : 1) * sizeof *j->ids);
    j->wid = mallocCheck((n ? n : 1) * sizeof *j->wid);
    j->first = mallocCheck((d->n_words + 1) * sizeof *j->first);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bw = (size_t)E->enc.word_ids[i];
        while (w < d->n_words && bert_words[w + 1] <= bw) w++; /* pieces come in word order */
        ASSERT(w < d->n_words && bert_words[w] <= bw);
        j->ids[i] = E->enc.ids[i];
        j->wid[i] = (int32_t)w;
    }
    free(bert_words);
    for (size_t i = 0, v = 0; v <= d->n_words; v++) {
        while (i < n && (size_t)j->wid[i] < v) i++;
        j->first[v] = i;
    }
    for (size_t v = 0; v < d->n_words; v++) E->st->words_without_pieces += j->first[v] == j->first[v + 1];
    return ADP_OK;
}

static int job_init(exporter *E, job *j, const eraser_dataset *ds, const eraser_annotation *a) {
    memset(j, 0, sizeof *j);
    j->a = a;
    const char *docid;
    if (eraser_annotation_docid(&docid, a) != ADP_OK) return ADP_ERR;
    j->d = eraser_find_doc(ds, docid);
    if (!j->d) return adp_seterr("annotation '%s': document '%s' is not loaded", a->annotation_id, docid);
    j->n_words = j->d->n_words;
    if (tokenize_doc(E, j) != ADP_OK) return ADP_ERR;
    if (plan(E, &j->win, &j->n_win, j->wid, j->n_pieces) != ADP_OK)
        return adp_preferr("annotation '%s': ", a->annotation_id);
    const int C = E->C;
    j->wpos = mallocCheck(j->n_win * sizeof *j->wpos);
    size_t total = 0;
    for (size_t k = 0; k < j->n_win; k++) j->wpos[k] = total, total += j->win[k].end - j->win[k].start;
    j->wkeep = mallocCheck(total ? total : 1);
    j->wscore = mallocCheck((total ? total : 1) * sizeof *j->wscore);
    j->p_full = callocCheck((size_t)C, sizeof *j->p_full);
    j->keep = callocCheck(j->n_words ? j->n_words : 1, 1);
    if (E->o->soft != ERASER_SOFT_NONE) j->soft = callocCheck(j->n_words ? j->n_words : 1, sizeof *j->soft);
    j->n_var = E->o->faithfulness ? VAR_BINS + 2 * E->o->n_aopc : 0;
    j->p_var = callocCheck((j->n_var ? j->n_var : 1) * (size_t)C, sizeof *j->p_var);
    j->var_n_win = callocCheck(j->n_var ? j->n_var : 1, sizeof *j->var_n_win);
    j->var_ids = callocCheck(j->n_var ? j->n_var : 1, sizeof *j->var_ids);
    j->var_win = callocCheck(j->n_var ? j->n_var : 1, sizeof *j->var_win);
    E->st->windows += j->n_win;
    E->st->windowed += j->n_win > 1;
    for (size_t k = 0; k < j->n_win; k++)
        push_seq(E, j, -1, k, j->ids + j->win[k].start, j->win[k].end - j->win[k].start);
    return ADP_OK;
}

/* ---- running sequences ------------------------------------------------------------------ */

/* Soft scores of the n_in window pieces of sequence [a, a + n) of the batch (T tokens):
 * the method's scores at its first scoring layer, divided by their mean over the sequence. */
static void window_scores(exporter *E, float *dst, size_t a, size_t n, size_t n_in, size_t T) {
    const method *me = E->o->me;
    const float *row = NULL;
    if (E->o->soft == ERASER_SOFT_ADAPLER) {
        if (me->trace.score && me->trace.n_tokens == T) row = me->trace.score + a; /* layer 0 */
    } else {
        const baseline_trace *bt = &me->scores;
        if (bt->score && bt->n_tokens == T)
            for (int l = 0; l < bt->n_layers && !row; l++)
                if (!isnan(bt->score[(size_t)l * T + a])) row = bt->score + (size_t)l * T + a;
    }
    if (!row) {
        for (size_t i = 0; i < n_in; i++) dst[i] = 1.0f;
        E->st->unscored_windows++;
        return;
    }
    double sum = 0;
    for (size_t t = 0; t < n; t++)
        if (!isnan(row[t])) sum += row[t];
    double scale = sum > 0 && isfinite(sum) ? (double)n / sum : 1.0;
    for (size_t i = 0; i < n_in; i++) {
        float v = row[1 + i];
        dst[i] = isnan(v) ? 0.0f : (float)(v * scale);
    }
}

static void collect(exporter *E, const seq *q, const bert_result *r, int i, size_t T) {
    const int C = E->C;
    job *j = q->j;
    const float *lg = r->logits + (size_t)i * C;
    double mx = lg[0], z = 0, p[BERT_MAX_LABELS];
    for (int c = 1; c < C; c++) mx = lg[c] > mx ? lg[c] : mx;
    for (int c = 0; c < C; c++) z += p[c] = exp((double)lg[c] - mx);
    if (q->var >= 0) {
        double *dst = j->p_var + (size_t)q->var * C;
        for (int c = 0; c < C; c++) dst[c] += p[c] / z / (double)j->var_n_win[q->var];
        return;
    }
    for (int c = 0; c < C; c++) j->p_full[c] += p[c] / z / (double)j->n_win;
    size_t a = (size_t)E->off[i], n = (size_t)(E->off[i + 1] - E->off[i]);
    uint8_t *keep = j->wkeep + j->wpos[q->k];
    const int last = 2 * (E->L - 1); /* alive entering the last layer: drop stage > last */
    for (size_t t = 0; t < q->n; t++) keep[t] = r->drop_stage[a + 1 + t] > last;
    if (j->soft) window_scores(E, j->wscore + j->wpos[q->k], a, n, q->n, T);
}

static int run_queue(exporter *E) {
    const eraser_export_opts *o = E->o;
    const int32_t cls = o->wp->cls_id, sep = o->wp->sep_id;
    for (size_t s0 = 0; s0 < E->n_q; s0 += (size_t)o->batch) {
        int k = (int)ADP_MIN((size_t)o->batch, E->n_q - s0);
        size_t t = 0;
        E->off[0] = 0;
        for (int i = 0; i < k; i++) {
            const seq *q = &E->q[s0 + (size_t)i];
            ASSERT(q->n + 2 <= o->max_len);
            E->ids[t++] = cls;
            if (q->n) memcpy(E->ids + t, q->ids, q->n * sizeof *E->ids);
            t += q->n;
            E->ids[t++] = sep;
            E->off[i + 1] = (int)t;
        }
        bert_batch b = {.n_seq = k, .ids = E->ids, .types = NULL, .off = E->off};
        bert_run_opts ro = {.prune = o->me->ps, .batch_first = (int)E->seq_counter};
        const bert_result *r;
        if (bert_forward(&E->ctx, o->m, &b, &ro, &r) != ADP_OK)
            return adp_preferr("annotation '%s': ", E->q[s0].j->a->annotation_id);
        E->seq_counter += (size_t)k;
        E->st->sequences += (size_t)k;
        for (int i = 0; i < k; i++) collect(E, &E->q[s0 + (size_t)i], r, i, t);
    }
    E->n_q = 0;
    return ADP_OK;
}

/* ---- words, edited documents, output ---------------------------------------------------- */

static int merge_words(exporter *E, job *j) {
    if (j->n_pieces > 0) {
        const float **ws = mallocCheck(j->n_win * sizeof *ws);
        const uint8_t **wk = mallocCheck(j->n_win * sizeof *wk);
        for (size_t k = 0; k < j->n_win; k++) ws[k] = j->wscore + j->wpos[k], wk[k] = j->wkeep + j->wpos[k];
        float *ps = mallocCheck(j->n_pieces * sizeof *ps);
        uint8_t *pk = mallocCheck(j->n_pieces);
        int rc = eraser_merge_windows(j->soft ? ps : NULL, pk, j->win, j->n_win, j->soft ? ws : NULL, wk, j->n_pieces);
        if (rc == ADP_OK) rc = eraser_word_keep_from_pieces(j->keep, j->n_words, pk, j->wid, j->n_pieces);
        if (rc == ADP_OK && j->soft)
            rc = eraser_word_scores_from_pieces(j->soft, j->n_words, ps, j->wid, j->n_pieces, 0.0f);
        free(ws), free(wk), free(ps), free(pk);
        if (rc != ADP_OK) return adp_preferr("annotation '%s': ", j->a->annotation_id);
    } else if (j->soft) {
        for (size_t w = 0; w < j->n_words; w++) j->soft[w] = 0.0f;
    }
    size_t kept = 0;
    for (size_t w = 0; w < j->n_words; w++) kept += j->keep[w];
    E->st->empty_rationales += kept == 0;
    return ADP_OK;
}

/* Edited document v: the words with in[w] = 1, in order. */
static int add_variant(exporter *E, job *j, int v, const uint8_t *in) {
    size_t n = 0;
    for (size_t w = 0; w < j->n_words; w++)
        if (in[w]) n += j->first[w + 1] - j->first[w];
    if (n == j->n_pieces) { /* only words without pieces were removed: the same input */
        memcpy(j->p_var + (size_t)v * E->C, j->p_full, sizeof(double) * (size_t)E->C);
        E->st->reused++;
        return ADP_OK;
    }
    int32_t *ids = mallocCheck((n ? n : 1) * sizeof *ids), *wid = mallocCheck((n ? n : 1) * sizeof *wid);
    size_t t = 0;
    for (size_t w = 0; w < j->n_words; w++)
        if (in[w])
            for (size_t i = j->first[w]; i < j->first[w + 1]; i++) ids[t] = j->ids[i], wid[t++] = (int32_t)w;
    int rc = plan(E, &j->var_win[v], &j->var_n_win[v], wid, n);
    free(wid);
    if (rc != ADP_OK) {
        free(ids);
        return adp_preferr("annotation '%s': ", j->a->annotation_id);
    }
    j->var_ids[v] = ids;
    for (size_t k = 0; k < j->var_n_win[v]; k++) {
        const eraser_window *wk = &j->var_win[v][k];
        push_seq(E, j, v, k, ids + wk->start, wk->end - wk->start);
    }
    return ADP_OK;
}

typedef struct {
    float s;
    size_t w;
} ranked;

static int cmp_ranked(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->w > b->w) - (a->w < b->w);
}

/* Words in an AOPC bin b of n: ceil(b n), with a little slack so that 10% of 30 words is 3
 * (0.1 * 30 is 3.0000000000000004 in double). */
static size_t bin_words(double b, size_t n) {
    double k = ceil(b * (double)n - 1e-9);
    return k <= 0 ? 0 : k >= (double)n ? n : (size_t)k;
}

static int add_variants(exporter *E, job *j) {
    if (!j->n_var) return ADP_OK;
    size_t n = j->n_words;
    uint8_t *in = mallocCheck(n ? n : 1);
    int rc = ADP_OK;
    for (size_t w = 0; w < n; w++) in[w] = !j->keep[w];
    rc = add_variant(E, j, VAR_COMP, in);
    if (rc == ADP_OK) rc = add_variant(E, j, VAR_SUFF, j->keep);
    if (rc == ADP_OK && E->o->n_aopc) {
        ranked *r = mallocCheck((n ? n : 1) * sizeof *r);
        for (size_t w = 0; w < n; w++) r[w] = (ranked){j->soft[w], w};
        qsort(r, n, sizeof *r, cmp_ranked);
        uint8_t *top = mallocCheck(n ? n : 1);
        for (size_t b = 0; rc == ADP_OK && b < E->o->n_aopc; b++) {
            size_t k = bin_words(E->o->aopc[b], n);
            memset(top, 0, n);
            for (size_t i = 0; i < k; i++) top[r[i].w] = 1;
            for (size_t w = 0; w < n; w++) in[w] = !top[w];
            rc = add_variant(E, j, VAR_BINS + 2 * (int)b, in);
            if (rc == ADP_OK) rc = add_variant(E, j, VAR_BINS + 2 * (int)b + 1, top);
        }
        free(top);
        free(r);
    }
    free(in);
    return rc;
}

static int write_line(exporter *E, job *j, FILE *out) {
    const eraser_export_opts *o = E->o;
    const int C = E->C;
    int pred = 0;
    for (int c = 1; c < C; c++) pred = j->p_full[c] > j->p_full[pred] ? c : pred;
    size_t nb = j->n_var ? o->n_aopc : 0;
    double *tc = mallocCheck((nb ? nb : 1) * (size_t)C * sizeof *tc), *ts = mallocCheck((nb ? nb : 1) * (size_t)C * sizeof *ts);
    for (size_t b = 0; b < nb; b++) {
        memcpy(tc + b * C, j->p_var + (VAR_BINS + 2 * b) * C, sizeof(double) * (size_t)C);
        memcpy(ts + b * C, j->p_var + (VAR_BINS + 2 * b + 1) * C, sizeof(double) * (size_t)C);
    }
    eraser_export_row row = {
        .annotation_id = j->a->annotation_id, .docid = j->d->docid, .n_words = j->n_words, .keep = j->keep,
        .soft = j->soft, .classification = o->labels[pred], .labels = o->labels, .n_labels = (size_t)C,
        .cls = j->p_full, .comp = j->n_var ? j->p_var + VAR_COMP * C : NULL,
        .suff = j->n_var ? j->p_var + VAR_SUFF * C : NULL, .thresholds = nb ? o->aopc : NULL, .n_thresholds = nb,
        .thr_comp = nb ? tc : NULL, .thr_suff = nb ? ts : NULL,
    };
    char *line = NULL;
    int rc = eraser_export_line(&line, &row);
    free(tc), free(ts);
    if (rc != ADP_OK) return ADP_ERR;
    rc = fprintf(out, "%s\n", line) < 0 ? adp_seterr("write failed") : ADP_OK;
    free(line);
    return rc;
}

/* ---- the export ------------------------------------------------------------------------- */

static int check_opts(const eraser_dataset *ds, const eraser_export_opts *o) {
    const int C = o->m->cfg.num_labels;
    if (o->max_len < 3) return adp_seterr("max_len %zu: need at least 3 ([CLS], one piece, [SEP])", o->max_len);
    if (o->max_len > (size_t)o->m->cfg.max_pos)
        return adp_seterr("max_len %zu is more than the model's %d positions", o->max_len, o->m->cfg.max_pos);
    if (o->batch < 1) return adp_seterr("batch %d: need at least 1", o->batch);
    if (C < 1 || C > BERT_MAX_LABELS) return adp_seterr("the model has %d outputs", C);
    if (o->n_aopc && (o->soft == ERASER_SOFT_NONE || !o->faithfulness))
        return adp_seterr("AOPC bins need soft scores and the faithfulness runs");
    for (size_t b = 0; b < o->n_aopc; b++)
        if (!(o->aopc[b] > 0 && o->aopc[b] <= 1) || (b && !(o->aopc[b] > o->aopc[b - 1])))
            return adp_seterr("AOPC bins must be ascending values in (0, 1]");
    if (o->soft == ERASER_SOFT_ADAPLER && !o->me->has_adapler)
        return adp_seterr("AdapLeR soft scores need the adapler method");
    for (int c = 0; c < C; c++)
        for (int k = 0; k < c; k++)
            if (!strcmp(o->labels[c], o->labels[k])) return adp_seterr("label '%s' names two model outputs", o->labels[c]);
    for (size_t i = 0; i < ds->n_anns; i++) {
        const char *gold = ds->anns[i].classification;
        int c = 0;
        while (c < C && strcmp(o->labels[c], gold) != 0) c++;
        if (c == C) {
            char names[512] = "";
            for (int k = 0; k < C; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "", o->labels[k]);
            return adp_seterr("annotation '%s': gold label '%s' is not one of the model's labels (%s)",
                              ds->anns[i].annotation_id, gold, names);
        }
    }
    return ADP_OK;
}

int eraser_export_model(FILE *out, const eraser_dataset *ds, const eraser_export_opts *o, eraser_export_stats *st) {
    memset(st, 0, sizeof *st);
    if (check_opts(ds, o) != ADP_OK) return ADP_ERR;
    exporter E = {.o = o, .st = st, .L = o->m->cfg.layers, .C = o->m->cfg.num_labels};
    E.window = o->max_len - 2;
    E.overlap = ADP_MIN(o->max_len / 4, E.window - 1);
    bert_ctx_init(&E.ctx);
    E.ids = mallocCheck((size_t)o->batch * o->max_len * sizeof *E.ids);
    E.off = mallocCheck(((size_t)o->batch + 1) * sizeof *E.off);
    /* a chunk of annotations at a time: enough sequences for full batches, bounded memory */
    const size_t chunk = ADP_MAX((size_t)16, 4 * (size_t)o->batch);
    job *jobs = callocCheck(chunk, sizeof *jobs);
    int rc = ADP_OK;
    for (size_t a0 = 0; rc == ADP_OK && a0 < ds->n_anns; a0 += chunk) {
        size_t n = ADP_MIN(chunk, ds->n_anns - a0);
        for (size_t i = 0; rc == ADP_OK && i < n; i++) rc = job_init(&E, &jobs[i], ds, &ds->anns[a0 + i]);
        if (rc == ADP_OK) rc = run_queue(&E);
        for (size_t i = 0; rc == ADP_OK && i < n; i++) rc = merge_words(&E, &jobs[i]);
        for (size_t i = 0; rc == ADP_OK && i < n; i++) rc = add_variants(&E, &jobs[i]);
        if (rc == ADP_OK) rc = run_queue(&E);
        for (size_t i = 0; rc == ADP_OK && i < n; i++) rc = write_line(&E, &jobs[i], out);
        for (size_t i = 0; i < n; i++) job_free(&jobs[i]);
        st->annotations += rc == ADP_OK ? n : 0;
    }
    free(jobs);
    free(E.q), free(E.ids), free(E.off);
    wp_encoding_free(&E.enc);
    bert_ctx_free(&E.ctx);
    if (rc == ADP_OK && (fflush(out) != 0 || ferror(out))) rc = adp_seterr("write failed");
    return rc;
}

/* ---- datasets with per-word rationales -------------------------------------------------- */

/* The words of text, split at BERT's whitespace (basic_tokenizer.h step 2), copied into
 * *buf (NUL-separated); *words points into it. */
static int split_words(char **buf, const char ***words, size_t *n, const char *text) {
    size_t len = strlen(text), k = 0, cap = 64;
    char *b = mallocCheck(len + 1), *p = b;
    const char **w = mallocCheck(cap * sizeof *w);
    int in = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t cl = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (cl <= 0) {
            free(b), free(w);
            return adp_seterr("invalid UTF-8 at byte %zu", i);
        }
        if (basic_is_separator(cp)) {
            if (in) *p++ = 0, in = 0;
        } else {
            if (!in) {
                if (k == cap) w = reallocCheck(w, (cap *= 2) * sizeof *w);
                w[k++] = p, in = 1;
            }
            memcpy(p, text + i, (size_t)cl);
            p += cl;
        }
        i += (size_t)cl;
    }
    *p = 0;
    *buf = b, *words = w, *n = k;
    return ADP_OK;
}

int eraser_dataset_from_examples(eraser_dataset *eds, const dataset *ds, int all_examples) {
    for (size_t i = 0; i < ds->n; i++) {
        const example *x = &ds->ex[i];
        if (!x->rationale && !all_examples) continue;
        if (x->pair) return adp_seterr("%s example %zu ('%s'): text pairs are not supported", ds->name, i + 1, x->id);
        if (x->label < 0 || x->label >= ds->n_labels)
            return adp_seterr("%s example %zu ('%s') has no label", ds->name, i + 1, x->id);
        char *buf = NULL;
        const char **words = NULL;
        size_t n = 0;
        if (split_words(&buf, &words, &n, x->text) != ADP_OK)
            return adp_preferr("%s example %zu ('%s'): ", ds->name, i + 1, x->id);
        int rc = ADP_OK;
        if (n != x->n_words)
            rc = adp_seterr("%s example %zu ('%s'): %zu words, the dataset counts %u", ds->name, i + 1, x->id, n,
                            x->n_words);
        uint8_t *zeros = x->rationale ? NULL : callocCheck(n ? n : 1, 1);
        if (rc == ADP_OK) rc = eraser_add_doc(eds, x->id, words, n);
        if (rc == ADP_OK)
            rc = eraser_add_mask_annotation(eds, x->id, x->id, ds->label_names[x->label], NULL,
                                            x->rationale ? x->rationale : zeros, n);
        free(zeros), free(buf), free(words);
        if (rc != ADP_OK) return adp_preferr("%s example %zu: ", ds->name, i + 1);
    }
    return ADP_OK;
}

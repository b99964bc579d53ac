/* annotations.c: ERASER annotation files (<split>.jsonl, format in eraser.h), the dataset
 * container, and the per-word mask constructor used for HateXplain and the planted task. */
#include <string.h>

#include "common.h"
#include "eraser.h"
#include "jsonv.h"

void eraser_dataset_init(eraser_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    strmap_init(&ds->ann_index);
    strmap_init(&ds->doc_index);
}

static void annotation_free(eraser_annotation *a) {
    free(a->annotation_id);
    free(a->query);
    free(a->classification);
    free(a->query_type);
    for (size_t i = 0; i < a->n_docids; i++) free(a->docids[i]);
    free(a->docids);
    for (size_t i = 0; i < a->n_evidences; i++) {
        free(a->evidences[i].docid);
        free(a->evidences[i].text);
    }
    free(a->evidences);
    free(a->group_end);
    memset(a, 0, sizeof *a);
}

void eraser_dataset_free(eraser_dataset *ds) {
    for (size_t i = 0; i < ds->n_anns; i++) annotation_free(&ds->anns[i]);
    for (size_t i = 0; i < ds->n_docs; i++) eraser_doc_free(&ds->docs[i]);
    free(ds->anns);
    free(ds->docs);
    strmap_free(&ds->ann_index);
    strmap_free(&ds->doc_index);
    free(ds->ann_path);
    free(ds->dir);
    memset(ds, 0, sizeof *ds);
}

const eraser_annotation *eraser_find_annotation(const eraser_dataset *ds, const char *annotation_id) {
    size_t i = strmap_get(&ds->ann_index, annotation_id, strlen(annotation_id));
    return i == (size_t)-1 ? NULL : &ds->anns[i];
}

static int push_annotation(eraser_dataset *ds, eraser_annotation *a) {
    if (!strmap_put(&ds->ann_index, a->annotation_id, strlen(a->annotation_id), ds->n_anns, NULL)) {
        adp_seterr("annotation_id '%s' appears twice", a->annotation_id);
        annotation_free(a);
        return ADP_ERR;
    }
    if (ds->n_anns == ds->cap_anns) {
        ds->cap_anns = ds->cap_anns ? 2 * ds->cap_anns : 256;
        ds->anns = reallocCheck(ds->anns, ds->cap_anns * sizeof *ds->anns);
    }
    ds->anns[ds->n_anns++] = *a;
    return ADP_OK;
}

static int parse_evidence(eraser_evidence *ev, const cJSON *j) {
    static const char *const names[] = {"docid", "text", "start_token", "end_token", "start_sentence", "end_sentence"};
    cJSON *it[6];
    memset(ev, 0, sizeof *ev);
    ev->start_sentence = ev->end_sentence = -1;
    if (jv_members(j, "evidence", names, it, 6) != ADP_OK) return ADP_ERR;
    for (int i = 0; i < 4; i++)
        if (!it[i]) return adp_seterr("evidence: missing '%s'", names[i]);
    long st, et;
    if (jv_string(it[0], "docid", &ev->docid) != ADP_OK || jv_string(it[1], "text", &ev->text) != ADP_OK ||
        jv_long(it[2], "start_token", 0, 1L << 40, &st) != ADP_OK ||
        jv_long(it[3], "end_token", 0, 1L << 40, &et) != ADP_OK ||
        (it[4] && jv_long(it[4], "start_sentence", -1, 1L << 40, &ev->start_sentence) != ADP_OK) ||
        (it[5] && jv_long(it[5], "end_sentence", -1, 1L << 40, &ev->end_sentence) != ADP_OK))
        return ADP_ERR;
    if (st > et) return adp_seterr("evidence: start_token %ld > end_token %ld", st, et);
    ev->start_token = (size_t)st;
    ev->end_token = (size_t)et;
    return ADP_OK;
}

static int parse_annotation(eraser_annotation *a, const cJSON *j) {
    static const char *const names[] = {"annotation_id", "query", "evidences", "classification", "query_type", "docids"};
    cJSON *it[6];
    if (jv_members(j, "annotation", names, it, 6) != ADP_OK) return ADP_ERR;
    for (int i = 0; i < 4; i++)
        if (!it[i]) return adp_seterr("annotation: missing '%s'", names[i]);
    if (jv_string(it[0], "annotation_id", &a->annotation_id) != ADP_OK || jv_string(it[1], "query", &a->query) != ADP_OK ||
        jv_string(it[3], "classification", &a->classification) != ADP_OK ||
        (it[4] && jv_string(it[4], "query_type", &a->query_type) != ADP_OK))
        return ADP_ERR;
    if (it[5]) {
        if (!cJSON_IsArray(it[5])) return adp_seterr("docids: expected a list of strings");
        size_t n = (size_t)cJSON_GetArraySize(it[5]);
        a->docids = callocCheck(n, sizeof *a->docids);
        for (cJSON *c = it[5]->child; c; c = c->next)
            if (jv_string(c, "docids[]", &a->docids[a->n_docids++]) != ADP_OK) return ADP_ERR;
    }
    if (!cJSON_IsArray(it[2])) return adp_seterr("evidences: expected a list of evidence groups");
    size_t n_ev = 0, n_groups = 0;
    for (cJSON *g = it[2]->child; g; g = g->next, n_groups++) {
        if (!cJSON_IsArray(g)) return adp_seterr("evidences[%zu]: expected a list of evidences", n_groups);
        n_ev += (size_t)cJSON_GetArraySize(g);
    }
    a->evidences = callocCheck(n_ev, sizeof *a->evidences);
    a->group_end = callocCheck(n_groups, sizeof *a->group_end);
    for (cJSON *g = it[2]->child; g; g = g->next) {
        for (cJSON *e = g->child; e; e = e->next) {
            if (parse_evidence(&a->evidences[a->n_evidences], e) != ADP_OK) {
                free(a->evidences[a->n_evidences].docid);
                free(a->evidences[a->n_evidences].text);
                return adp_preferr("evidences[%zu][%zu]: ", a->n_groups, a->n_evidences - (a->n_groups ? a->group_end[a->n_groups - 1] : 0));
            }
            a->n_evidences++;
        }
        a->group_end[a->n_groups++] = a->n_evidences;
    }
    return ADP_OK;
}

int eraser_read_annotations(eraser_dataset *ds, const char *path) {
    char *text = NULL;
    size_t len = 0;
    if (adp_read_file(path, &text, &len) != ADP_OK) return ADP_ERR;
    free(ds->ann_path);
    ds->ann_path = strdupCheck(path);
    int rc = ADP_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && rc == ADP_OK;) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n') eol++;
        lineno++;
        cJSON *j = NULL;
        eraser_annotation a = {0};
        if (eol == pos || (eol == pos + 1 && text[pos] == '\r'))
            rc = adp_seterr("empty line");
        else if (jv_parse_line(&j, text + pos, eol - pos) != ADP_OK)
            rc = ADP_ERR;
        else if (parse_annotation(&a, j) != ADP_OK)
            annotation_free(&a), rc = ADP_ERR;
        else {
            a.line = lineno;
            rc = push_annotation(ds, &a);
        }
        if (rc != ADP_OK) adp_preferr("%s:%zu: ", path, lineno);
        cJSON_Delete(j);
        pos = eol + 1;
    }
    free(text);
    return rc;
}

int eraser_check_annotations(const eraser_dataset *ds) {
    for (size_t i = 0; i < ds->n_anns; i++) {
        const eraser_annotation *a = &ds->anns[i];
        for (size_t k = 0; k < a->n_evidences; k++) {
            const eraser_evidence *ev = &a->evidences[k];
            const eraser_doc *d = eraser_find_doc(ds, ev->docid);
            const char *src = a->line && ds->ann_path ? ds->ann_path : "(in memory)";
            if (!d)
                return adp_seterr("%s:%zu: annotation '%s': unknown docid '%s'", src, a->line, a->annotation_id, ev->docid);
            if (ev->end_token > d->n_words)
                return adp_seterr("%s:%zu: annotation '%s': evidence [%zu, %zu) outside document '%s' of %zu words", src,
                                  a->line, a->annotation_id, ev->start_token, ev->end_token, ev->docid, d->n_words);
            long ss = ev->start_sentence, es = ev->end_sentence, ns = (long)d->n_sentences;
            if (!(ss == -1 && es == -1) && !(ss >= 0 && ss <= es && es <= ns))
                return adp_seterr("%s:%zu: annotation '%s': evidence sentences [%ld, %ld) outside document '%s' of %ld sentences",
                                  src, a->line, a->annotation_id, ss, es, ev->docid, ns);
        }
    }
    return ADP_OK;
}

int eraser_load_split(eraser_dataset *ds, const char *dir, const char *split) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, split);
    size_t first = ds->n_anns;
    if (eraser_read_annotations(ds, path) != ADP_OK) return ADP_ERR;
    size_t n = 0;
    for (size_t i = first; i < ds->n_anns; i++) n += ds->anns[i].n_evidences;
    const char **ids = mallocCheck((n ? n : 1) * sizeof *ids);
    n = 0;
    for (size_t i = first; i < ds->n_anns; i++)
        for (size_t k = 0; k < ds->anns[i].n_evidences; k++) ids[n++] = ds->anns[i].evidences[k].docid;
    int rc = eraser_load_docs(ds, dir, ids, n);
    free(ids);
    if (rc != ADP_OK) {
        /* Point at the first annotation whose document failed, if the message is about it
         * (a broken docs.jsonl line is reported as such, without an annotation). */
        for (size_t i = first; i < ds->n_anns; i++)
            for (size_t k = 0; k < ds->anns[i].n_evidences; k++) {
                const char *id = ds->anns[i].evidences[k].docid;
                if (!eraser_find_doc(ds, id)) {
                    if (strstr(adp_errmsg(), id))
                        adp_preferr("%s:%zu: annotation '%s': ", path, ds->anns[i].line, ds->anns[i].annotation_id);
                    return ADP_ERR;
                }
            }
        return ADP_ERR;
    }
    return eraser_check_annotations(ds);
}

size_t eraser_count_text_mismatches(const eraser_dataset *ds, const eraser_annotation **first) {
    size_t bad = 0;
    if (first) *first = NULL;
    for (size_t i = 0; i < ds->n_anns; i++) {
        const eraser_annotation *a = &ds->anns[i];
        for (size_t k = 0; k < a->n_evidences; k++) {
            const eraser_evidence *ev = &a->evidences[k];
            const eraser_doc *d = eraser_find_doc(ds, ev->docid);
            int ok = d != NULL && ev->end_token <= d->n_words;
            const char *t = ev->text;
            for (size_t w = ev->start_token; ok && w < ev->end_token; w++) {
                size_t n = strlen(d->words[w]);
                if (w > ev->start_token) ok = *t++ == ' ';
                ok = ok && strncmp(t, d->words[w], n) == 0;
                t += ok ? n : 0;
            }
            if (!(ok && *t == 0)) {
                if (!bad && first) *first = a;
                bad++;
            }
        }
    }
    return bad;
}

/* ---- spans and masks ----------------------------------------------------------------------- */

void eraser_mask_to_spans(eraser_span **spans, size_t *n_spans, const uint8_t *mask, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += mask[i] && (i == 0 || !mask[i - 1]);
    eraser_span *s = mallocCheck((count ? count : 1) * sizeof *s);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        size_t j = i;
        while (j < n && mask[j]) j++;
        s[k++] = (eraser_span){i, j};
        i = j;
    }
    *spans = s;
    *n_spans = count;
}

void eraser_spans_to_mask(uint8_t *mask, size_t n, const eraser_span *spans, size_t n_spans) {
    memset(mask, 0, n);
    for (size_t i = 0; i < n_spans; i++) {
        ASSERT(spans[i].start <= spans[i].end && spans[i].end <= n);
        memset(mask + spans[i].start, 1, spans[i].end - spans[i].start);
    }
}

int eraser_gold_mask(uint8_t *mask, size_t n_words, const eraser_annotation *a, const char *docid) {
    memset(mask, 0, n_words);
    for (size_t k = 0; a && k < a->n_evidences; k++) {
        const eraser_evidence *ev = &a->evidences[k];
        if (strcmp(ev->docid, docid) != 0) continue;
        if (ev->end_token > n_words)
            return adp_seterr("annotation '%s': evidence [%zu, %zu) outside document '%s' of %zu words", a->annotation_id,
                              ev->start_token, ev->end_token, docid, n_words);
        memset(mask + ev->start_token, 1, ev->end_token - ev->start_token);
    }
    return ADP_OK;
}

int eraser_add_mask_annotation(eraser_dataset *ds, const char *annotation_id, const char *docid,
                               const char *classification, const char *query,
                               const uint8_t *mask, size_t n_words) {
    const eraser_doc *d = eraser_find_doc(ds, docid);
    if (!d) return adp_seterr("annotation '%s': unknown docid '%s'", annotation_id, docid);
    if (d->n_words != n_words)
        return adp_seterr("annotation '%s': mask has %zu entries, document '%s' has %zu words", annotation_id, n_words,
                          docid, d->n_words);
    eraser_span *spans;
    size_t n_spans;
    eraser_mask_to_spans(&spans, &n_spans, mask, n_words);
    eraser_annotation a = {0};
    a.annotation_id = strdupCheck(annotation_id);
    a.classification = strdupCheck(classification);
    a.query = strdupCheck(query ? query : "");
    a.evidences = callocCheck(n_spans, sizeof *a.evidences);
    for (size_t i = 0; i < n_spans; i++) {
        eraser_evidence *ev = &a.evidences[i];
        ev->docid = strdupCheck(docid);
        ev->start_token = spans[i].start;
        ev->end_token = spans[i].end;
        ev->start_sentence = ev->end_sentence = -1;
        size_t len = 0;
        for (size_t w = spans[i].start; w < spans[i].end; w++) len += strlen(d->words[w]) + 1;
        ev->text = mallocCheck(len + 1);
        char *p = ev->text;
        for (size_t w = spans[i].start; w < spans[i].end; w++) {
            if (w > spans[i].start) *p++ = ' ';
            size_t k = strlen(d->words[w]);
            memcpy(p, d->words[w], k);
            p += k;
        }
        *p = 0;
    }
    a.n_evidences = n_spans;
    if (n_spans) {
        a.group_end = mallocCheck(sizeof *a.group_end);
        a.group_end[0] = n_spans;
        a.n_groups = 1;
    }
    free(spans);
    return push_annotation(ds, &a);
}

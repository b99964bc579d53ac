/* write.c: an in-memory ERASER split (built from HateXplain or the planted task) written
 * back in ERASER's layout, so that `eraser score` and metrics.py can read the gold rationales
 * that an exported results file refers to. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "eraser.h"

static char *doc_text(const eraser_doc *d, size_t *len) {
    size_t n = 1;
    for (size_t w = 0; w < d->n_words; w++) n += strlen(d->words[w]) + 1;
    char *s = mallocCheck(n), *p = s;
    size_t sent = 0;
    for (size_t w = 0; w < d->n_words; w++) {
        while (sent < d->n_sentences && d->sentence_end[sent] <= w) sent++;
        if (w) *p++ = (sent < d->n_sentences && (sent ? d->sentence_end[sent - 1] : 0) == w) ? '\n' : ' ';
        size_t k = strlen(d->words[w]);
        memcpy(p, d->words[w], k);
        p += k;
    }
    *p = 0;
    *len = (size_t)(p - s);
    return s;
}

/* The text must give back exactly the document's words when utils.py reads docs.jsonl. */
static int check_round_trip(const eraser_doc *d, const char *text, size_t len) {
    eraser_doc back;
    if (eraser_doc_parse(&back, d->docid, text, len, ERASER_DOCS_JSONL) != ADP_OK)
        return adp_preferr("document '%s': ", d->docid);
    int rc = ADP_OK;
    if (back.n_words != d->n_words)
        rc = adp_seterr("document '%s': %zu words would read back as %zu from docs.jsonl (a word starts or ends with "
                        "a character Python's str.strip() removes)", d->docid, d->n_words, back.n_words);
    for (size_t w = 0; rc == ADP_OK && w < d->n_words; w++)
        if (strcmp(back.words[w], d->words[w]) != 0)
            rc = adp_seterr("document '%s': word %zu would read back from docs.jsonl as '%s', not '%s'", d->docid, w,
                            back.words[w], d->words[w]);
    eraser_doc_free(&back);
    return rc;
}

static cJSON *annotation_json(const eraser_annotation *a) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "annotation_id", a->annotation_id);
    cJSON_AddStringToObject(j, "query", a->query ? a->query : "");
    cJSON *groups = cJSON_AddArrayToObject(j, "evidences");
    for (size_t g = 0; g < a->n_groups; g++) {
        cJSON *grp = cJSON_CreateArray();
        cJSON_AddItemToArray(groups, grp);
        for (size_t e = g ? a->group_end[g - 1] : 0; e < a->group_end[g]; e++) {
            const eraser_evidence *ev = &a->evidences[e];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "docid", ev->docid);
            cJSON_AddNumberToObject(o, "start_token", (double)ev->start_token);
            cJSON_AddNumberToObject(o, "end_token", (double)ev->end_token);
            cJSON_AddNumberToObject(o, "start_sentence", (double)ev->start_sentence);
            cJSON_AddNumberToObject(o, "end_sentence", (double)ev->end_sentence);
            cJSON_AddStringToObject(o, "text", ev->text ? ev->text : "");
            cJSON_AddItemToArray(grp, o);
        }
    }
    cJSON_AddStringToObject(j, "classification", a->classification);
    if (a->query_type) cJSON_AddStringToObject(j, "query_type", a->query_type);
    else cJSON_AddNullToObject(j, "query_type");
    if (a->docids) {
        cJSON *d = cJSON_AddArrayToObject(j, "docids");
        for (size_t i = 0; i < a->n_docids; i++) cJSON_AddItemToArray(d, cJSON_CreateString(a->docids[i]));
    } else {
        cJSON_AddNullToObject(j, "docids");
    }
    return j;
}

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 65536;
        b->s = reallocCheck(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static int add_json_line(sbuf *b, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return adp_seterr("cannot format a JSON line");
    sbuf_add(b, s, strlen(s));
    sbuf_add(b, "\n", 1);
    cJSON_free(s);
    return ADP_OK;
}

int eraser_write_split(const eraser_dataset *ds, const char *dir, const char *split) {
    if (!split[0] || strchr(split, '/')) return adp_seterr("split '%s' is not a plain file stem", split);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return adp_seterr("%s: cannot create: %s", dir, strerror(errno));
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/docs", dir);
    if (stat(path, &st) == 0)
        return adp_seterr("%s exists: ERASER reads docs/ or docs.jsonl, never both; write to another folder", path);
    sbuf ann = {0}, docs = {0};
    int rc = ADP_OK;
    for (size_t i = 0; rc == ADP_OK && i < ds->n_anns; i++) rc = add_json_line(&ann, annotation_json(&ds->anns[i]));
    for (size_t d = 0; rc == ADP_OK && d < ds->n_docs; d++) {
        size_t len;
        char *text = doc_text(&ds->docs[d], &len);
        rc = check_round_trip(&ds->docs[d], text, len);
        if (rc == ADP_OK) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "docid", ds->docs[d].docid);
            cJSON_AddStringToObject(j, "document", text);
            rc = add_json_line(&docs, j);
        }
        free(text);
    }
    if (rc == ADP_OK) {
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, split);
        rc = adp_write_file_atomic(path, ann.s ? ann.s : "", ann.n);
    }
    if (rc == ADP_OK) {
        snprintf(path, sizeof path, "%s/docs.jsonl", dir);
        rc = adp_write_file_atomic(path, docs.s ? docs.s : "", docs.n);
    }
    free(ann.s);
    free(docs.s);
    return rc;
}

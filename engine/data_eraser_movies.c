/* data_eraser_movies.c: ERASER "movies" (DeYoung et al. 2020): Pang & Lee movie
 * reviews, NEG (0) / POS (1), with human rationale spans.  Text, label and the per-word
 * rationale only; eraser/ reads the full annotations (evidence groups) for the metrics.
 *
 * DATA/eraser_movies/{train,val,test}.jsonl: one annotation per line, {"annotation_id":
 * str, "classification": "NEG"|"POS", "evidences": [[{"docid": str, "start_token": int,
 * "end_token": int (exclusive), ...}, ...], ...], "docids": null (test only), ...}.
 * DATA/eraser_movies/docs/<docid>: the review, UTF-8, one sentence per line; token i is
 * the i-th item of Python's doc.split() over the whole file.
 *
 * Text = the doc's tokens joined by single spaces (so whitespace word i of the text is
 * ERASER token i); the document is the one the evidences name (they all name the same one
 * in this task), else annotation_id.  Rationale = union of all evidence spans
 * [start_token, end_token) over all groups (test has a few empty spans, start == end, which
 * mark nothing); an annotation without evidences (train
 * posR_161.txt) gets an all-zero rationale.  Splits are official: train 1,600 (train.jsonl),
 * dev 200 (val.jsonl), test 199 (test.jsonl).  Ids: annotation_id. */
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "data_internal.h"

static const char *const MOVIE_LABELS[] = {"NEG", "POS"};

/* Split doc[0..len) on Python whitespace into (start, length) tokens. */
static int split_py(const char *doc, size_t len, const char ***tok, size_t **tok_len, size_t *n) {
    size_t cap = 1024, k = 0;
    const char **t = mallocCheck(cap * sizeof *t);
    size_t *tl = mallocCheck(cap * sizeof *tl);
    size_t start = 0;
    int in = 0;
    for (size_t i = 0; i <= len;) {
        int32_t cp = 0x20;
        size_t cl = 1;
        if (i < len) {
            uint8_t c = (uint8_t)doc[i];
            if (c < 0x80) cp = c;
            else {
                /* validated by the caller: decode without checks */
                cl = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
                cp = c & (0x3F >> (cl - 1));
                for (size_t j = 1; j < cl; j++) cp = (cp << 6) | (doc[i + j] & 0x3F);
            }
        }
        if (py_isspace(cp)) {
            if (in) {
                if (k == cap) {
                    cap *= 2;
                    t = reallocCheck(t, cap * sizeof *t);
                    tl = reallocCheck(tl, cap * sizeof *tl);
                }
                t[k] = doc + start, tl[k] = i - start, k++;
                in = 0;
            }
        } else if (!in) {
            in = 1;
            start = i;
        }
        i += cl;
    }
    *tok = t, *tok_len = tl, *n = k;
    return ADP_OK;
}

static int load_annotation(dataset *ds, const dataset_opts *o, const cJSON *a, const char *path, size_t line) {
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "annotation_id");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(a, "classification");
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(a, "evidences");
    if (!cJSON_IsString(aid)) return adp_seterr("%s:%zu: no 'annotation_id' string", path, line);
    if (!cJSON_IsString(cls)) return adp_seterr("%s:%zu: no 'classification' string", path, line);
    if (!cJSON_IsArray(evs)) return adp_seterr("%s:%zu: no 'evidences' array", path, line);
    int label = !strcmp(cls->valuestring, "NEG") ? 0 : !strcmp(cls->valuestring, "POS") ? 1 : -1;
    if (label < 0) return adp_seterr("%s:%zu: bad label '%.40s' (expected NEG or POS)", path, line, cls->valuestring);
    const char *docid = aid->valuestring;
    const cJSON *group, *ev;
    cJSON_ArrayForEach(group, evs) {
        if (!cJSON_IsArray(group)) return adp_seterr("%s:%zu: an evidence group is not an array", path, line);
        cJSON_ArrayForEach(ev, group) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "docid");
            if (!cJSON_IsString(d)) return adp_seterr("%s:%zu: an evidence has no 'docid' string", path, line);
            if (docid == aid->valuestring) docid = d->valuestring;
            else if (strcmp(docid, d->valuestring))
                return adp_seterr("%s:%zu: evidences in two documents ('%s', '%s') are not supported", path, line,
                                  docid, d->valuestring);
        }
    }
    if (!*docid || strchr(docid, '/') || !strcmp(docid, "..") || !strcmp(docid, "."))
        return adp_seterr("%s:%zu: bad document id '%.60s'", path, line, docid);
    char dpath[4096], sub[64 + sizeof "eraser_movies/docs"];
    snprintf(sub, sizeof sub, "eraser_movies/docs");
    ds_path(dpath, sizeof dpath, o, sub, docid);
    char *doc = NULL;
    size_t dlen = 0;
    if (adp_read_file(dpath, &doc, &dlen) != ADP_OK) return adp_preferr("%s:%zu: ", path, line);
    if (utf8_validate(doc, dlen) != ADP_OK) {
        free(doc);
        return adp_preferr("%s: ", dpath);
    }
    const char **tok = NULL;
    size_t *tok_len = NULL, n_tok = 0;
    split_py(doc, dlen, &tok, &tok_len, &n_tok);
    uint8_t *flags = callocCheck(n_tok ? n_tok : 1, 1);
    int rc = ADP_OK;
    cJSON_ArrayForEach(group, evs) {
        cJSON_ArrayForEach(ev, group) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(ev, "start_token");
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(ev, "end_token");
            if (!cJSON_IsNumber(s) || !cJSON_IsNumber(e)) {
                rc = adp_seterr("%s:%zu: an evidence lacks integer start_token/end_token", path, line);
                goto done;
            }
            double sv = s->valuedouble, ev_ = e->valuedouble;
            if (sv != (double)(long)sv || ev_ != (double)(long)ev_ || sv < 0 || ev_ < sv || ev_ > (double)n_tok) {
                rc = adp_seterr("%s:%zu: evidence span [%g, %g) outside document %s (%zu tokens)", path, line, sv, ev_,
                                docid, n_tok);
                goto done;
            }
            for (long j = (long)sv; j < (long)ev_; j++) flags[j] = 1;
        }
    }
    example *ex = ds_add(ds);
    uint8_t *wf = NULL;
    if (ds_text_from_tokens(ds, ex, tok, tok_len, n_tok, flags, 1, &wf) != ADP_OK) {
        rc = adp_preferr("%s: ", dpath);
        goto done;
    }
    if (ex->n_words != n_tok) { /* cannot happen: BERT's whitespace is a subset of Python's */
        rc = adp_seterr("%s: %zu tokens but %u words", dpath, n_tok, ex->n_words);
        goto done;
    }
    ex->rationale = wf;
    ex->label = label;
    ex->id = ds_strndup(ds, aid->valuestring, strlen(aid->valuestring));
    rc = ds_finish(ds, ex, path, line);
done:
    free(tok);
    free(tok_len);
    free(flags);
    free(doc);
    return rc;
}

int data_load_eraser_movies(dataset *ds, const dataset_opts *o, split_id split) {
    static const char *files[N_SPLITS] = {"train.jsonl", "val.jsonl", "test.jsonl"};
    char path[4096];
    ds_path(path, sizeof path, o, "eraser_movies", files[split]);
    ds_set_labels(ds, MOVIE_LABELS, 2);
    char *data = NULL;
    size_t len = 0;
    if (adp_read_file(path, &data, &len) != ADP_OK) return ADP_ERR;
    int rc = ADP_OK;
    size_t line = 0;
    for (char *p = data, *end = data + len; p < end && rc == ADP_OK;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        *e = 0;
        char *s = p;
        p = e + 1;
        if (strspn(s, " \t\r") == (size_t)(e - s)) continue;
        cJSON *a = cJSON_ParseWithLength(s, (size_t)(e - s));
        if (!a || !cJSON_IsObject(a)) {
            const char *at = cJSON_GetErrorPtr();
            if (at && at >= s && at <= e) rc = adp_seterr("%s:%zu: invalid JSON (near byte %zu)", path, line, (size_t)(at - s));
            else rc = adp_seterr("%s:%zu: invalid JSON", path, line);
        } else {
            rc = load_annotation(ds, o, a, path, line);
        }
        cJSON_Delete(a);
    }
    free(data);
    return rc;
}

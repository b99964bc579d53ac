/* data_hatexplain.c: HateXplain (Mathew et al. 2021): posts labelled hatespeech (0),
 * normal (1) or offensive (2) (HateXplain's own alphabetical order) with per-annotator
 * word rationales.
 *
 * DATA/hatexplain/dataset.jsonl: one JSON object per line (the official dataset.json, one
 * post per line), {"post_id": str, "annotators": [{"label": str, "annotator_id": int,
 * "target": [str]}, x3], "rationales": [[0/1 per post token], ...], "post_tokens": [str]}.
 * DATA/hatexplain/post_id_divisions.json: {"train": [ids], "val": [ids], "test": [ids]},
 * the official split (train 15,383 / val 1,922 / test 1,924), used in its listed order.
 *
 * Label = the annotators' majority (at least 2 of 3 agree); posts without a majority are
 * dropped, as upstream does (they are in no split anyway).  Text = post_tokens joined by
 * single spaces; a token holding a space ("march 4") becomes several words, each with the
 * token's rationale flag.
 * Rationales: rationale vectors exist only for hatespeech/offensive-majority posts (2 or 3
 * vectors, not aligned with the annotators).  They are kept as they are
 * (example.annot_rationale), and aggregated into example.rationale:
 *   union (default): a word is rationale if any annotator marked it.  This is the ground
 *     truth HateXplain's own ERASER evaluation uses (Explainability_Calculation_NB.ipynb,
 *     method 'union'), so plausibility figures are comparable with the paper's.
 *   majority (--hatexplain-rationale majority): marked by more than half of the
 *     annotators who gave vectors (2 of 2, or 2 of 3), a stricter, higher-agreement set.
 * Normal posts have no rationale (NULL), not an all-zero one.  One upstream vector
 * (post 24439295_gab) has 48 entries for 47 tokens; entries past the last token are
 * dropped.  A shorter vector, or an entry other than 0/1, is an error. */
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "data_internal.h"
#include "symtab.h"

static const char *const HX_LABELS[] = {"hatespeech", "normal", "offensive"};

static int json_error(const char *path, size_t line, const char *text) {
    const char *at = cJSON_GetErrorPtr();
    if (at && at >= text && at <= text + strlen(text))
        return adp_seterr("%s:%zu: invalid JSON (near byte %zu)", path, line, (size_t)(at - text));
    return adp_seterr("%s:%zu: invalid JSON", path, line);
}

typedef struct {
    example ex;
    size_t order;
} hx_item;

static int cmp_order(const void *a, const void *b) {
    size_t x = ((const hx_item *)a)->order, y = ((const hx_item *)b)->order;
    return x < y ? -1 : x > y;
}

/* Parse one post; *keep = 0 if it has no majority label. */
static int parse_post(dataset *ds, const dataset_opts *o, const cJSON *post, const char *path, size_t line,
                      example *ex, int *keep) {
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(post, "annotators");
    const cJSON *rat = cJSON_GetObjectItemCaseSensitive(post, "rationales");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(post, "post_tokens");
    if (!cJSON_IsArray(ann) || cJSON_GetArraySize(ann) == 0)
        return adp_seterr("%s:%zu: no 'annotators' array", path, line);
    if (!cJSON_IsArray(rat)) return adp_seterr("%s:%zu: no 'rationales' array", path, line);
    if (!cJSON_IsArray(toks)) return adp_seterr("%s:%zu: no 'post_tokens' array", path, line);
    int votes[3] = {0, 0, 0}, n_ann = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, ann) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(a, "label");
        if (!cJSON_IsString(l)) return adp_seterr("%s:%zu: annotator %d has no 'label' string", path, line, n_ann);
        int k = -1;
        for (int c = 0; c < 3; c++)
            if (!strcmp(l->valuestring, HX_LABELS[c])) k = c;
        if (k < 0)
            return adp_seterr("%s:%zu: bad label '%.40s' (expected hatespeech, normal or offensive)", path, line,
                              l->valuestring);
        votes[k]++;
        n_ann++;
    }
    int label = -1;
    for (int c = 0; c < 3; c++)
        if (2 * votes[c] > n_ann) label = c;
    size_t n_tok = (size_t)cJSON_GetArraySize(toks), n_vec = (size_t)cJSON_GetArraySize(rat);
    const char **tok = mallocCheck((n_tok ? n_tok : 1) * sizeof *tok);
    size_t *tok_len = mallocCheck((n_tok ? n_tok : 1) * sizeof *tok_len);
    uint8_t *flags = callocCheck((n_vec + 1) * (n_tok ? n_tok : 1), 1);
    int rc = ADP_OK;
    size_t t = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, toks) {
        if (!cJSON_IsString(x)) {
            rc = adp_seterr("%s:%zu: post_tokens[%zu] is not a string", path, line, t);
            goto done;
        }
        tok[t] = x->valuestring;
        tok_len[t] = strlen(x->valuestring);
        t++;
    }
    size_t v = 0;
    const cJSON *vec;
    cJSON_ArrayForEach(vec, rat) {
        if (!cJSON_IsArray(vec) || (size_t)cJSON_GetArraySize(vec) < n_tok) {
            rc = adp_seterr("%s:%zu: rationales[%zu] is not an array of %zu flags", path, line, v, n_tok);
            goto done;
        }
        size_t j = 0;
        cJSON_ArrayForEach(x, vec) {
            if (!cJSON_IsNumber(x) || (x->valuedouble != 0 && x->valuedouble != 1)) {
                rc = adp_seterr("%s:%zu: rationales[%zu][%zu] is not 0 or 1", path, line, v, j);
                goto done;
            }
            if (j < n_tok) flags[v * n_tok + j] = (uint8_t)x->valuedouble;
            j++;
        }
        v++;
    }
    /* aggregated vector in slot n_vec */
    for (size_t j = 0; j < n_tok; j++) {
        int marked = 0;
        for (size_t k = 0; k < n_vec; k++) marked += flags[k * n_tok + j];
        flags[n_vec * n_tok + j] = o->hatexplain_rationale == HX_RATIONALE_MAJORITY ? 2 * (size_t)marked > n_vec
                                                                                     : marked > 0;
    }
    uint8_t *wf = NULL;
    if (ds_text_from_tokens(ds, ex, tok, tok_len, n_tok, flags, n_vec + 1, &wf) != ADP_OK) {
        rc = adp_preferr("%s:%zu: post_tokens: ", path, line);
        goto done;
    }
    ex->label = label;
    if (n_vec) {
        ex->n_annot = (uint32_t)n_vec;
        ex->annot_rationale = wf;
        ex->rationale = wf + n_vec * ex->n_words;
    }
    *keep = label >= 0;
done:
    free(tok);
    free(tok_len);
    free(flags);
    return rc;
}

int data_load_hatexplain(dataset *ds, const dataset_opts *o, split_id split) {
    static const char *keys[N_SPLITS] = {"train", "val", "test"};
    char dpath[4096], spath[4096];
    ds_path(dpath, sizeof dpath, o, "hatexplain", "dataset.jsonl");
    ds_path(spath, sizeof spath, o, "hatexplain", "post_id_divisions.json");
    ds_set_labels(ds, HX_LABELS, 3);
    char *sdata = NULL, *data = NULL;
    size_t slen = 0, len = 0;
    if (adp_read_file(spath, &sdata, &slen) != ADP_OK) return ADP_ERR;
    cJSON *div = cJSON_ParseWithLength(sdata, slen);
    int rc = ADP_OK;
    symtab want, seen;
    symtab_init(&want);
    symtab_init(&seen);
    hx_item *items = NULL;
    size_t n_items = 0, cap_items = 0;
    if (!div) {
        rc = adp_seterr("%s: invalid JSON", spath);
        goto done;
    }
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(div, keys[split]);
    if (!cJSON_IsArray(ids)) {
        rc = adp_seterr("%s: no '%s' array", spath, keys[split]);
        goto done;
    }
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (!cJSON_IsString(id)) {
            rc = adp_seterr("%s: '%s' holds a non-string id", spath, keys[split]);
            goto done;
        }
        int added = 0;
        symtab_put(&want, id->valuestring, strlen(id->valuestring), (int32_t)want.n, &added);
        if (!added) {
            rc = adp_seterr("%s: id '%s' listed twice in '%s'", spath, id->valuestring, keys[split]);
            goto done;
        }
    }
    if (adp_read_file(dpath, &data, &len) != ADP_OK) goto fail;
    size_t line = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        *e = 0;
        char *s = p;
        p = e + 1;
        if (strspn(s, " \t\r") == (size_t)(e - s)) continue;
        cJSON *post = cJSON_ParseWithLength(s, (size_t)(e - s));
        if (!post || !cJSON_IsObject(post)) {
            cJSON_Delete(post);
            json_error(dpath, line, s);
            goto fail;
        }
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(post, "post_id");
        if (!cJSON_IsString(pid)) {
            cJSON_Delete(post);
            rc = adp_seterr("%s:%zu: no 'post_id' string", dpath, line);
            goto done;
        }
        int added = 0;
        symtab_put(&seen, pid->valuestring, strlen(pid->valuestring), 0, &added);
        if (!added) {
            rc = adp_seterr("%s:%zu: post_id '%s' repeated", dpath, line, pid->valuestring);
            cJSON_Delete(post);
            goto done;
        }
        example ex;
        memset(&ex, 0, sizeof ex);
        int keep = 0;
        if (parse_post(ds, o, post, dpath, line, &ex, &keep) != ADP_OK) {
            cJSON_Delete(post);
            goto fail;
        }
        int32_t *ord = symtab_get(&want, pid->valuestring, strlen(pid->valuestring));
        if (ord && keep) {
            ex.id = ds_strndup(ds, pid->valuestring, strlen(pid->valuestring));
            if (ds_finish(ds, &ex, dpath, line) != ADP_OK) {
                cJSON_Delete(post);
                goto fail;
            }
            if (n_items == cap_items) {
                cap_items = cap_items ? 2 * cap_items : 4096;
                items = reallocCheck(items, cap_items * sizeof *items);
            }
            items[n_items++] = (hx_item){ex, (size_t)*ord};
        }
        cJSON_Delete(post);
    }
    for (size_t k = 0; k < want.n; k++)
        if (!symtab_get(&seen, symtab_key(&want, k), want.entries[k].key_len)) {
            rc = adp_seterr("%s: post '%s' of split '%s' is not in %s", spath, symtab_key(&want, k), keys[split], dpath);
            goto done;
        }
    qsort(items, n_items, sizeof *items, cmp_order);
    for (size_t k = 0; k < n_items; k++) *ds_add(ds) = items[k].ex;
    goto done;
fail:
    rc = ADP_ERR;
done:
    cJSON_Delete(div);
    free(sdata);
    free(data);
    free(items);
    symtab_free(&want);
    symtab_free(&seen);
    return rc;
}

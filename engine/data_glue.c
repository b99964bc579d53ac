/* data_glue.c: GLUE-style TSV datasets: SST-2 and any tsv:DIR task.
 *
 * GLUE TSV: UTF-8, LF (a CR before LF is dropped), a header row naming the columns,
 * fields separated by TAB, no quoting at all (a '"' is text).  Every row must have as
 * many fields as the header.
 *
 * sst2 (DATA/sst2/): train.tsv and dev.tsv are `sentence<TAB>label` with label 0
 * (negative) or 1 (positive); the sentence ends with one space before the tab (a GLUE
 * quirk), trimmed here.  test.tsv is `index<TAB>sentence`, unlabelled (label -1): GLUE's
 * hidden test set, so labelled evaluation uses dev.  Splits: train 67,349 / dev 872 /
 * test 1,821 (all official).  Ids: "train-<row>" / "dev-<row>" (row = 0-based data row),
 * test: its index column.
 *
 * tsv:DIR: DIR/train.tsv, DIR/dev.tsv and DIR/test.tsv, columns chosen by header name
 * (--text-col, optional --pair-col, --label-col).  Labels: if every train label is a
 * non-negative integer (< 10000), the label id is that integer (GLUE's 0/1 files); otherwise
 * the distinct train labels in byte order get ids 0, 1, ...  A dev/test label not seen in
 * train is an error.  A test.tsv without the label column is unlabelled (label -1), as GLUE
 * test files are.  Ids: "<split>-<row>". */
#include <string.h>

#include "common.h"
#include "csv.h"
#include "data_internal.h"
#include "symtab.h"

static const char *const SST2_LABELS[] = {"negative", "positive"};

static int need_col(const csv_reader *r, const char *name, int *col) {
    *col = csv_find(r, name);
    if (*col < 0) return adp_seterr("%s:%zu: no '%s' column in the header", r->path, r->line, name);
    return ADP_OK;
}

static int check_fields(const csv_reader *r, size_t want) {
    if (r->n_field != want)
        return adp_seterr("%s:%zu: expected %zu tab-separated fields (as the header), got %zu", r->path, r->line, want,
                          r->n_field);
    return ADP_OK;
}

int data_load_sst2(dataset *ds, const dataset_opts *o, split_id split) {
    static const char *files[N_SPLITS] = {"train.tsv", "dev.tsv", "test.tsv"};
    char path[4096];
    ds_path(path, sizeof path, o, "sst2", files[split]);
    csv_reader r;
    if (csv_open(&r, path, '\t', 0) != ADP_OK) return ADP_ERR;
    ds_set_labels(ds, SST2_LABELS, 2);
    int rc = ADP_OK, c_text = -1, c_label = -1, c_index = -1;
    if (csv_next(&r) != 1) {
        rc = adp_seterr("%s: no header row", path);
        goto done;
    }
    size_t nf = r.n_field;
    if (need_col(&r, "sentence", &c_text) != ADP_OK) goto fail;
    if (split == SPLIT_TEST ? need_col(&r, "index", &c_index) : need_col(&r, "label", &c_label)) goto fail;
    for (size_t row = 0;; row++) {
        int got = csv_next(&r);
        if (got == 0) break;
        if (got < 0 || check_fields(&r, nf) != ADP_OK) goto fail;
        example *ex = ds_add(ds);
        size_t len = r.field_len[c_text];
        char *t = ds_trim(r.field[c_text], &len);
        ex->text = ds_strndup(ds, t, len);
        if (c_label >= 0) {
            const char *l = r.field[c_label];
            if (strcmp(l, "0") && strcmp(l, "1")) {
                rc = adp_seterr("%s:%zu: bad label '%.40s' (expected 0 or 1)", path, r.line, l);
                goto done;
            }
            ex->label = l[0] - '0';
            char id[64];
            snprintf(id, sizeof id, "%s-%zu", split_name(split), row);
            ex->id = ds_strndup(ds, id, strlen(id));
        } else {
            ex->id = ds_strndup(ds, r.field[c_index], r.field_len[c_index]);
        }
        if (ds_finish(ds, ex, path, r.line) != ADP_OK) goto fail;
    }
    goto done;
fail:
    rc = ADP_ERR;
done:
    csv_close(&r);
    return rc;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_small_uint(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 4) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Label set of DIR/train.tsv: names and a map label string -> id. */
static int tsv_labels(dataset *ds, const char *dir, const char *label_col, symtab *map) {
    char path[4096];
    snprintf(path, sizeof path, "%s/train.tsv", dir);
    csv_reader r;
    if (csv_open(&r, path, '\t', 0) != ADP_OK) return ADP_ERR;
    int rc = ADP_OK, c = -1;
    symtab seen;
    symtab_init(&seen);
    if (csv_next(&r) != 1) {
        rc = adp_seterr("%s: no header row", path);
        goto done;
    }
    size_t nf = r.n_field;
    if (need_col(&r, label_col, &c) != ADP_OK) goto fail;
    int numeric = 1;
    for (;;) {
        int got = csv_next(&r);
        if (got == 0) break;
        if (got < 0 || check_fields(&r, nf) != ADP_OK) goto fail;
        if (r.field_len[c] == 0) {
            rc = adp_seterr("%s:%zu: empty label", path, r.line);
            goto done;
        }
        symtab_put(&seen, r.field[c], r.field_len[c], 0, NULL);
        numeric &= is_small_uint(r.field[c]);
    }
    if (seen.n == 0) {
        rc = adp_seterr("%s: no data rows", path);
        goto done;
    }
    if (numeric) {
        int max = 0;
        for (size_t k = 0; k < seen.n; k++) {
            int v = atoi(symtab_key(&seen, k));
            max = v > max ? v : max;
            *symtab_put(map, symtab_key(&seen, k), seen.entries[k].key_len, 0, NULL) = v;
        }
        char **names = mallocCheck((size_t)(max + 1) * sizeof *names);
        for (int v = 0; v <= max; v++) {
            names[v] = mallocCheck(16);
            snprintf(names[v], 16, "%d", v);
        }
        ds_set_labels(ds, (const char *const *)names, max + 1);
        for (int v = 0; v <= max; v++) free(names[v]);
        free(names);
    } else {
        const char **names = mallocCheck(seen.n * sizeof *names);
        for (size_t k = 0; k < seen.n; k++) names[k] = symtab_key(&seen, k);
        qsort(names, seen.n, sizeof *names, cmp_cstr);
        for (size_t k = 0; k < seen.n; k++) *symtab_put(map, names[k], strlen(names[k]), 0, NULL) = (int32_t)k;
        ds_set_labels(ds, names, (int)seen.n);
        free(names);
    }
    goto done;
fail:
    rc = ADP_ERR;
done:
    symtab_free(&seen);
    csv_close(&r);
    return rc;
}

int data_load_tsv(dataset *ds, const dataset_opts *o, const char *dir, split_id split) {
    static const char *files[N_SPLITS] = {"train.tsv", "dev.tsv", "test.tsv"};
    if (!o->text_col || !o->label_col)
        return adp_seterr("tsv:%s needs --text-col NAME and --label-col NAME (header names)", dir);
    symtab labels;
    symtab_init(&labels);
    if (tsv_labels(ds, dir, o->label_col, &labels) != ADP_OK) {
        symtab_free(&labels);
        return ADP_ERR;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, files[split]);
    csv_reader r;
    if (csv_open(&r, path, '\t', 0) != ADP_OK) {
        symtab_free(&labels);
        return ADP_ERR;
    }
    int rc = ADP_OK, c_text = -1, c_pair = -1, c_label = -1;
    if (csv_next(&r) != 1) {
        rc = adp_seterr("%s: no header row", path);
        goto done;
    }
    size_t nf = r.n_field;
    if (need_col(&r, o->text_col, &c_text) != ADP_OK) goto fail;
    if (o->pair_col && need_col(&r, o->pair_col, &c_pair) != ADP_OK) goto fail;
    c_label = csv_find(&r, o->label_col);
    if (c_label < 0 && split != SPLIT_TEST && need_col(&r, o->label_col, &c_label) != ADP_OK) goto fail;
    for (size_t row = 0;; row++) {
        int got = csv_next(&r);
        if (got == 0) break;
        if (got < 0 || check_fields(&r, nf) != ADP_OK) goto fail;
        example *ex = ds_add(ds);
        size_t len = r.field_len[c_text];
        char *t = ds_trim(r.field[c_text], &len);
        ex->text = ds_strndup(ds, t, len);
        if (c_pair >= 0) {
            len = r.field_len[c_pair];
            t = ds_trim(r.field[c_pair], &len);
            ex->pair = ds_strndup(ds, t, len);
        }
        if (c_label >= 0) {
            int32_t *v = symtab_get(&labels, r.field[c_label], r.field_len[c_label]);
            if (!v) {
                rc = adp_seterr("%s:%zu: bad label '%.40s' (not among the %d labels of train.tsv)", path, r.line,
                                r.field[c_label], ds->n_labels);
                goto done;
            }
            ex->label = *v;
        }
        char id[64];
        snprintf(id, sizeof id, "%s-%zu", split_name(split), row);
        ex->id = ds_strndup(ds, id, strlen(id));
        if (ds_finish(ds, ex, path, r.line) != ADP_OK) goto fail;
    }
    goto done;
fail:
    rc = ADP_ERR;
done:
    csv_close(&r);
    symtab_free(&labels);
    return rc;
}

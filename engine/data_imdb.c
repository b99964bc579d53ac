/* data_imdb.c: IMDB movie reviews (Maas et al. 2011), two small third-party samples.
 *
 * DATA/imdb/train100.csv and test500.csv: CSV (quoting on, comma) with header `text,label`,
 * label neg (0) or pos (1).  Columns are found by header name.  Reviews are long (median
 * about 175 words), so this is a format and long-input test, not a training set.
 * Splits: test = test500.csv (500); train100.csv's 100 rows are split by ds_seeded_dev
 * (stratified, 10% per class, --split-seed, default 13) into dev (10) and train (90).
 * Ids: "train-<row>" / "test-<row>" (0-based data row of the file). */
#include <string.h>

#include "common.h"
#include "csv.h"
#include "data_internal.h"

static const char *const IMDB_LABELS[] = {"neg", "pos"};

static int load_csv(dataset *ds, const char *path, const char *id_prefix) {
    csv_reader r;
    if (csv_open(&r, path, ',', 1) != ADP_OK) return ADP_ERR;
    int rc = ADP_OK;
    int got = csv_next(&r);
    if (got < 0) goto fail;
    if (got == 0) {
        rc = adp_seterr("%s: no header row", path);
        goto done;
    }
    size_t nf = r.n_field;
    int c_text = csv_find(&r, "text"), c_label = csv_find(&r, "label");
    if (c_text < 0 || c_label < 0) {
        rc = adp_seterr("%s:%zu: no '%s' column in the header", path, r.line, c_text < 0 ? "text" : "label");
        goto done;
    }
    for (size_t row = 0;; row++) {
        got = csv_next(&r);
        if (got == 0) break;
        if (got < 0) goto fail;
        if (r.n_field != nf) {
            rc = adp_seterr("%s:%zu: expected %zu fields (as the header), got %zu", path, r.line, nf, r.n_field);
            goto done;
        }
        const char *l = r.field[c_label];
        int label = !strcmp(l, "neg") ? 0 : !strcmp(l, "pos") ? 1 : -1;
        if (label < 0) {
            rc = adp_seterr("%s:%zu: bad label '%.40s' (expected neg or pos)", path, r.line, l);
            goto done;
        }
        example *ex = ds_add(ds);
        ex->label = label;
        ex->text = ds_strndup(ds, r.field[c_text], r.field_len[c_text]);
        char id[64];
        snprintf(id, sizeof id, "%s-%zu", id_prefix, row);
        ex->id = ds_strndup(ds, id, strlen(id));
        if (ds_finish(ds, ex, path, r.line) != ADP_OK) goto fail;
    }
    goto done;
fail:
    rc = ADP_ERR;
done:
    csv_close(&r);
    return rc;
}

int data_load_imdb(dataset *ds, const dataset_opts *o, split_id split) {
    char path[4096];
    ds_set_labels(ds, IMDB_LABELS, 2);
    if (split == SPLIT_TEST) {
        ds_path(path, sizeof path, o, "imdb", "test500.csv");
        return load_csv(ds, path, "test");
    }
    ds_path(path, sizeof path, o, "imdb", "train100.csv");
    if (load_csv(ds, path, "train") != ADP_OK) return ADP_ERR;
    int32_t *labels = mallocCheck((ds->n ? ds->n : 1) * sizeof *labels);
    uint8_t *keep = mallocCheck(ds->n ? ds->n : 1);
    for (size_t i = 0; i < ds->n; i++) labels[i] = ds->ex[i].label;
    ds_seeded_dev(labels, ds->n, 2, o->split_seed, keep);
    if (split == SPLIT_TRAIN)
        for (size_t i = 0; i < ds->n; i++) keep[i] = !keep[i];
    ds_filter(ds, keep);
    free(labels);
    free(keep);
    return ADP_OK;
}

/* data_agnews.c: AG News topic classification (4 classes: World, Sports, Business,
 * Sci/Tech, ids 0..3 in the order of classes.txt).
 *
 * DATA/agnews/test.csv: the complete official test split, RFC 4180 CSV (quoting on,
 * comma), no header, 3 fields: class index 1..4, title, description.  7,600 rows.
 * DATA/agnews/train_subset10k_desc_only.tsv: a 10,001-row third-party subset of the
 * official training split, CSV with TAB delimiter and '"' quoting, no header, 2 fields:
 * description, class name.
 *
 * Input text is the description alone on every split: the only training data we have has
 * no titles, so the test side drops them too (train and test then match).  The text is
 * kept as in the files, with upstream escapes such as "#36;" and "\" left alone.
 * Splits: test = test.csv (7,600); the 10,001 subset rows are split by ds_seeded_dev
 * (stratified, 10% per class, --split-seed, default 13) into dev (1,001) and train (9,000).
 * Ids: "test-<row>", "train-<row>" (row of the file, 0-based; dev keeps its train row). */
#include <string.h>

#include "common.h"
#include "csv.h"
#include "data_internal.h"

static const char *const AG_LABELS[] = {"World", "Sports", "Business", "Sci/Tech"};

static int load_test(dataset *ds, const char *path) {
    csv_reader r;
    if (csv_open(&r, path, ',', 1) != ADP_OK) return ADP_ERR;
    int rc = ADP_OK;
    for (size_t row = 0;; row++) {
        int got = csv_next(&r);
        if (got == 0) break;
        if (got < 0) goto fail;
        if (r.n_field != 3) {
            rc = adp_seterr("%s:%zu: expected 3 fields (class, title, description), got %zu", path, r.line, r.n_field);
            goto done;
        }
        const char *l = r.field[0];
        if (strlen(l) != 1 || l[0] < '1' || l[0] > '4') {
            rc = adp_seterr("%s:%zu: bad label '%.40s' (expected a class index 1..4)", path, r.line, l);
            goto done;
        }
        example *ex = ds_add(ds);
        ex->label = l[0] - '1';
        ex->text = ds_strndup(ds, r.field[2], r.field_len[2]);
        char id[64];
        snprintf(id, sizeof id, "test-%zu", row);
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

static int load_train(dataset *ds, const char *path) {
    csv_reader r;
    if (csv_open(&r, path, '\t', 1) != ADP_OK) return ADP_ERR;
    int rc = ADP_OK;
    for (size_t row = 0;; row++) {
        int got = csv_next(&r);
        if (got == 0) break;
        if (got < 0) goto fail;
        if (r.n_field != 2) {
            rc = adp_seterr("%s:%zu: expected 2 tab-separated fields (description, class name), got %zu", path, r.line,
                            r.n_field);
            goto done;
        }
        int label = -1;
        for (int c = 0; c < 4; c++)
            if (!strcmp(r.field[1], AG_LABELS[c])) label = c;
        if (label < 0) {
            rc = adp_seterr("%s:%zu: bad label '%.40s' (expected World, Sports, Business or Sci/Tech)", path, r.line,
                            r.field[1]);
            goto done;
        }
        example *ex = ds_add(ds);
        ex->label = label;
        ex->text = ds_strndup(ds, r.field[0], r.field_len[0]);
        char id[64];
        snprintf(id, sizeof id, "train-%zu", row);
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

int data_load_agnews(dataset *ds, const dataset_opts *o, split_id split) {
    char path[4096];
    ds_set_labels(ds, AG_LABELS, 4);
    if (split == SPLIT_TEST) {
        ds_path(path, sizeof path, o, "agnews", "test.csv");
        return load_test(ds, path);
    }
    ds_path(path, sizeof path, o, "agnews", "train_subset10k_desc_only.tsv");
    if (load_train(ds, path) != ADP_OK) return ADP_ERR;
    int32_t *labels = mallocCheck((ds->n ? ds->n : 1) * sizeof *labels);
    uint8_t *keep = mallocCheck(ds->n ? ds->n : 1);
    for (size_t i = 0; i < ds->n; i++) labels[i] = ds->ex[i].label;
    ds_seeded_dev(labels, ds->n, 4, o->split_seed, keep);
    if (split == SPLIT_TRAIN)
        for (size_t i = 0; i < ds->n; i++) keep[i] = !keep[i];
    ds_filter(ds, keep);
    free(labels);
    free(keep);
    return ADP_OK;
}

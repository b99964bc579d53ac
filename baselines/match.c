/* match.c: another run's per-example token counts, for --match. */
#include <cjson/cJSON.h>
#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

void match_counts_free(match_counts *mc) {
    if (mc->ids)
        for (size_t i = 0; i < mc->n; i++) free(mc->ids[i]);
    free(mc->path), free(mc->tokens), free(mc->length), free(mc->ids);
    memset(mc, 0, sizeof *mc);
}

/* The file `adapler eval --examples FILE` writes: one JSON object per line, example i of
 * the split on line i + 1:
 *   {"index": i, "id": "...", "label": y, "pred": p, "layer_tokens": [n_0, ..., n_{L-1}],
 *    "flops": f, "kept": [positions reaching the last layer]}
 * Used here: "layer_tokens" (required: L integers, n_0 >= n_1 >= ... >= 1, the tokens that
 * entered each layer), "id" (required string), "index" (if present it must be i) and
 * "length" (optional: the example's length before any pruning, checked when present).
 * Other keys are ignored; blank lines are skipped. */
int match_counts_load(match_counts *mc, const char *path, int n_layers) {
    memset(mc, 0, sizeof *mc);
    char *buf = NULL;
    size_t len = 0;
    if (adp_read_file(path, &buf, &len) != ADP_OK) return adp_preferr("--match: ");
    mc->path = strdupCheck(path);
    mc->n_layers = n_layers;
    size_t cap = 0, line_no = 0;
    int rc = ADP_OK;
    for (char *p = buf, *nl; p && *p && rc == ADP_OK; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line_no++;
        if (strspn(p, " \t\r") == strlen(p)) continue;
        cJSON *j = cJSON_Parse(p);
        const cJSON *lt = j ? cJSON_GetObjectItemCaseSensitive(j, "layer_tokens") : NULL;
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        const cJSON *ix = j ? cJSON_GetObjectItemCaseSensitive(j, "index") : NULL;
        const cJSON *ln = j ? cJSON_GetObjectItemCaseSensitive(j, "length") : NULL;
        if (!cJSON_IsObject(j))
            rc = adp_seterr("%s:%zu: not a JSON object (expected a line of `adapler eval --examples`)", path, line_no);
        else if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != n_layers)
            rc = adp_seterr("%s:%zu: \"layer_tokens\" is not an array of %d counts (the model has %d layers)", path,
                            line_no, n_layers, n_layers);
        else if (!cJSON_IsString(id))
            rc = adp_seterr("%s:%zu: no string \"id\"", path, line_no);
        else if (ix && (!cJSON_IsNumber(ix) || ix->valuedouble != (double)mc->n))
            rc = adp_seterr("%s:%zu: \"index\" is not %zu (examples must be in split order)", path, line_no, mc->n);
        else if (ln && (!cJSON_IsNumber(ln) || ln->valuedouble < 1 || ln->valuedouble > 1e9 ||
                        ln->valuedouble != (double)(int)ln->valuedouble))
            rc = adp_seterr("%s:%zu: \"length\" is not a positive integer", path, line_no);
        if (rc == ADP_OK) {
            if (mc->n == cap) {
                cap = cap ? 2 * cap : 256;
                mc->tokens = reallocCheck(mc->tokens, sizeof(int) * cap * (size_t)n_layers);
                mc->length = reallocCheck(mc->length, sizeof(int) * cap);
                mc->ids = reallocCheck(mc->ids, sizeof(char *) * cap);
            }
            int *row = mc->tokens + mc->n * (size_t)n_layers;
            for (int l = 0; l < n_layers && rc == ADP_OK; l++) {
                const cJSON *v = cJSON_GetArrayItem(lt, l);
                double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
                if (!(d >= 1 && d <= 1e9) || d != (double)(int)d)
                    rc = adp_seterr("%s:%zu: layer_tokens[%d] is not a count >= 1", path, line_no, l);
                else if (l > 0 && (int)d > row[l - 1])
                    rc = adp_seterr("%s:%zu: layer_tokens[%d] = %d exceeds layer_tokens[%d] = %d (dropped tokens never "
                                    "return)", path, line_no, l, (int)d, l - 1, row[l - 1]);
                else
                    row[l] = (int)d;
            }
            if (rc == ADP_OK) {
                mc->length[mc->n] = ln ? (int)ln->valuedouble : -1;
                if (mc->length[mc->n] >= 0 && row[0] > mc->length[mc->n])
                    rc = adp_seterr("%s:%zu: layer_tokens[0] = %d exceeds \"length\" %d", path, line_no, row[0],
                                    mc->length[mc->n]);
                mc->ids[mc->n] = strdupCheck(id->valuestring);
                mc->n++;
            }
        }
        cJSON_Delete(j);
    }
    free(buf);
    if (rc == ADP_OK && mc->n == 0) rc = adp_seterr("--match %s: no examples in the file", path);
    if (rc != ADP_OK) match_counts_free(mc);
    return rc;
}

int match_counts_row(const match_counts *mc, int example, int orig_len, const int **row) {
    if (example < 0 || (size_t)example >= mc->n)
        return adp_seterr("--match %s has %zu examples, but example %d was run (match a run over the same dataset, "
                          "split and options)", mc->path, mc->n, example);
    const int *r = mc->tokens + (size_t)example * mc->n_layers;
    int len = mc->length[example];
    if (len >= 0 && len != orig_len)
        return adp_seterr("--match %s: example %d (id %s) had %d tokens in the matched run, %d here", mc->path, example,
                          mc->ids[example], len, orig_len);
    if (r[0] > orig_len)
        return adp_seterr("--match %s: example %d (id %s) kept %d tokens at layer 0 but has only %d here", mc->path,
                          example, mc->ids[example], r[0], orig_len);
    *row = r;
    return ADP_OK;
}

int match_counts_check(const match_counts *mc, size_t n, const char *const *ids) {
    if (n != mc->n)
        return adp_seterr("--match %s has %zu examples, this run has %zu (match a run over the same dataset, split and "
                          "options)", mc->path, mc->n, n);
    if (ids)
        for (size_t i = 0; i < n; i++)
            if (strcmp(ids[i], mc->ids[i]) != 0)
                return adp_seterr("--match %s: example %zu is '%s' in the file but '%s' in this run", mc->path, i,
                                  mc->ids[i], ids[i]);
    return ADP_OK;
}

int baseline_load_match(method *me, const method_opts *o, int n_layers) {
    if (!o->match) return ADP_OK;
    if (match_counts_load(&me->match, o->match, n_layers) != ADP_OK) return ADP_ERR;
    me->has_match = 1;
    return ADP_OK;
}

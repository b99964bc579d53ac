/* dataset.c: the dataset registry, options, shared loader helpers and packing. */
#include "dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic_tokenizer.h"
#include "common.h"
#include "data_internal.h"

const char DATASET_NAMES[] = "sst2, agnews, hatexplain, eraser_movies, imdb, planted, tsv:DIR";

const char DATASET_OPTS_HELP[] =
    "dataset options:\n"
    "  --dataset NAME          sst2, agnews, hatexplain, eraser_movies, imdb, planted, or tsv:DIR\n"
    "  --data-dir DIR          where datasets live (default $ADAPLER_DATA, else ./data, see `make data`)\n"
    "  --text-col NAME         tsv:DIR: header name of the text column\n"
    "  --pair-col NAME         tsv:DIR: header name of the second text (pair tasks)\n"
    "  --label-col NAME        tsv:DIR: header name of the label column\n"
    "  --split-seed N          seed of the 10% dev split carved from agnews/imdb train (default 13)\n"
    "  --planted-seed N        planted: generator seed (default 1)\n"
    "  --planted-len N|MIN:MAX planted: words per document, 16..512 (default 16:64)\n"
    "  --planted-n N           planted: N train, N/4 dev and N/4 test documents (default 2000)\n"
    "  --hatexplain-rationale union|majority\n"
    "                          hatexplain: aggregate annotators' rationales by union (default) or strict majority\n";

const char *split_name(split_id s) {
    static const char *names[N_SPLITS] = {"train", "dev", "test"};
    return (unsigned)s < N_SPLITS ? names[s] : "?";
}

int split_parse(const char *s, split_id *out) {
    if (!strcmp(s, "train")) *out = SPLIT_TRAIN;
    else if (!strcmp(s, "dev") || !strcmp(s, "val") || !strcmp(s, "validation")) *out = SPLIT_DEV;
    else if (!strcmp(s, "test")) *out = SPLIT_TEST;
    else return adp_seterr("unknown split '%s' (train, dev or test)", s);
    return ADP_OK;
}

void dataset_opts_init(dataset_opts *o) {
    memset(o, 0, sizeof *o);
    o->split_seed = 13;
    o->planted_seed = 1;
    o->planted_min = 16;
    o->planted_max = 64;
    o->planted_n[SPLIT_TRAIN] = 2000;
    o->planted_n[SPLIT_DEV] = 500;
    o->planted_n[SPLIT_TEST] = 500;
    o->hatexplain_rationale = HX_RATIONALE_UNION;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-') return adp_seterr("%s: expected a non-negative integer, got '%s'", opt, s);
    *out = v;
    return ADP_OK;
}

static int parse_range_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return adp_seterr("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    *out = v;
    return ADP_OK;
}

int dataset_opts_parse(dataset_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    static const char *with_value[] = {"--dataset", "--data-dir", "--text-col", "--pair-col", "--label-col",
                                       "--split-seed", "--planted-seed", "--planted-len", "--planted-n",
                                       "--hatexplain-rationale"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
    if (!known) return 0;
    if (*i + 1 >= argc) return adp_seterr("%s needs a value", a);
    const char *v = argv[++*i];
    if (!strcmp(a, "--dataset")) o->name = v;
    else if (!strcmp(a, "--data-dir")) o->data_dir = v;
    else if (!strcmp(a, "--text-col")) o->text_col = v;
    else if (!strcmp(a, "--pair-col")) o->pair_col = v;
    else if (!strcmp(a, "--label-col")) o->label_col = v;
    else if (!strcmp(a, "--split-seed")) return parse_u64(a, v, &o->split_seed) == ADP_OK ? 1 : ADP_ERR;
    else if (!strcmp(a, "--planted-seed")) return parse_u64(a, v, &o->planted_seed) == ADP_OK ? 1 : ADP_ERR;
    else if (!strcmp(a, "--planted-n")) {
        long n = 0;
        if (parse_range_int(a, v, 4, 10000000, &n) != ADP_OK) return ADP_ERR;
        o->planted_n[SPLIT_TRAIN] = (size_t)n;
        o->planted_n[SPLIT_DEV] = o->planted_n[SPLIT_TEST] = (size_t)n / 4;
    } else if (!strcmp(a, "--planted-len")) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", v);
        char *colon = strchr(buf, ':');
        long lo = 0, hi = 0;
        if (colon) *colon = 0;
        if (parse_range_int(a, buf, 16, 512, &lo) != ADP_OK) return ADP_ERR;
        hi = lo;
        if (colon && parse_range_int(a, colon + 1, 16, 512, &hi) != ADP_OK) return ADP_ERR;
        if (hi < lo) return adp_seterr("%s: MIN:MAX with MIN > MAX ('%s')", a, v);
        o->planted_min = (int)lo, o->planted_max = (int)hi;
    } else if (!strcmp(a, "--hatexplain-rationale")) {
        if (!strcmp(v, "union")) o->hatexplain_rationale = HX_RATIONALE_UNION;
        else if (!strcmp(v, "majority")) o->hatexplain_rationale = HX_RATIONALE_MAJORITY;
        else return adp_seterr("%s: expected union or majority, got '%s'", a, v);
    }
    return 1;
}

const char *dataset_data_root(const dataset_opts *o) {
    if (o->data_dir && *o->data_dir) return o->data_dir;
    const char *env = getenv("ADAPLER_DATA");
    return env && *env ? env : "data";
}

void ds_path(char *out, size_t cap, const dataset_opts *o, const char *sub, const char *file) {
    snprintf(out, cap, "%s/%s/%s", dataset_data_root(o), sub, file);
}

/* ---- arena ---- */

struct ds_block {
    ds_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *ds_alloc(dataset *ds, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!ds->mem || ds->mem->used + n > ds->mem->cap) {
        size_t cap = n > (1 << 20) ? n : (1 << 20);
        ds_block *b = mallocCheck(sizeof *b + cap);
        b->next = ds->mem, b->used = 0, b->cap = cap;
        ds->mem = b;
    }
    void *p = ds->mem->data + ds->mem->used;
    ds->mem->used += n;
    return p;
}

char *ds_strndup(dataset *ds, const char *s, size_t n) {
    char *d = ds_alloc(ds, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

example *ds_add(dataset *ds) {
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? 2 * ds->cap : 1024;
        ds->ex = reallocCheck(ds->ex, ds->cap * sizeof *ds->ex);
    }
    example *ex = &ds->ex[ds->n++];
    memset(ex, 0, sizeof *ex);
    ex->label = -1;
    return ex;
}

void ds_set_labels(dataset *ds, const char *const *names, int n) {
    ds->n_labels = n;
    ds->label_names = ds_alloc(ds, (size_t)(n ? n : 1) * sizeof *ds->label_names);
    for (int i = 0; i < n; i++) ds->label_names[i] = ds_strndup(ds, names[i], strlen(names[i]));
}

void dataset_free(dataset *ds) {
    for (ds_block *b = ds->mem, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(ds->ex);
    memset(ds, 0, sizeof *ds);
}

/* ---- helpers ---- */

int ds_finish(dataset *ds, example *ex, const char *file, size_t line) {
    size_t nw = 0;
    if (basic_count_words(ex->text, strlen(ex->text), &nw) != ADP_OK) return adp_preferr("%s:%zu: text: ", file, line);
    if (ex->pair && utf8_validate(ex->pair, strlen(ex->pair)) != ADP_OK)
        return adp_preferr("%s:%zu: text pair: ", file, line);
    if (nw > UINT32_MAX) return adp_seterr("%s:%zu: text too long", file, line);
    if ((ex->rationale || ex->n_annot) && ex->n_words != nw) /* built by ds_text_from_tokens for this text */
        return adp_seterr("%s:%zu: internal error: rationale for %u words, text has %zu", file, line, ex->n_words, nw);
    ex->n_words = (uint32_t)nw;
    if (ex->rationale) ds->has_rationales = 1;
    return ADP_OK;
}

int ds_text_from_tokens(dataset *ds, example *ex, const char *const *tok, const size_t *tok_len, size_t n_tok,
                        const uint8_t *flags, size_t n_vec, uint8_t **word_flags) {
    size_t total = 0, nw = 0;
    size_t *tw = mallocCheck((n_tok ? n_tok : 1) * sizeof *tw);
    for (size_t t = 0; t < n_tok; t++) {
        total += tok_len[t] + 1;
        if (basic_count_words(tok[t], tok_len[t], &tw[t]) != ADP_OK) {
            free(tw);
            return adp_preferr("token %zu: ", t);
        }
        nw += tw[t];
    }
    char *text = ds_alloc(ds, total + 1), *p = text;
    for (size_t t = 0; t < n_tok; t++) {
        if (t) *p++ = ' ';
        memcpy(p, tok[t], tok_len[t]);
        p += tok_len[t];
    }
    *p = 0;
    ex->text = text;
    ex->n_words = (uint32_t)nw;
    if (word_flags) {
        uint8_t *wf = ds_alloc(ds, n_vec * nw > 0 ? n_vec * nw : 1);
        for (size_t v = 0; v < n_vec; v++) {
            size_t w = 0;
            for (size_t t = 0; t < n_tok; t++)
                for (size_t k = 0; k < tw[t]; k++) wf[v * nw + w++] = flags[v * n_tok + t];
        }
        *word_flags = wf;
    }
    free(tw);
    return ADP_OK;
}

uint64_t ds_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void ds_seeded_dev(const int32_t *labels, size_t n, int n_labels, uint64_t seed, uint8_t *is_dev) {
    size_t *idx = mallocCheck((n ? n : 1) * sizeof *idx);
    memset(is_dev, 0, n);
    for (int c = 0; c < n_labels; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c) idx[m++] = i;
        uint64_t st = seed * 0x100000001B3ULL + (uint64_t)c;
        for (size_t i = m; i > 1; i--) {
            size_t j = (size_t)(ds_rand(&st) % i);
            size_t t = idx[i - 1];
            idx[i - 1] = idx[j], idx[j] = t;
        }
        size_t n_dev = (m + 5) / 10;
        for (size_t i = 0; i < n_dev; i++) is_dev[idx[i]] = 1;
    }
    free(idx);
}

void ds_filter(dataset *ds, const uint8_t *keep) {
    size_t k = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (keep[i]) ds->ex[k++] = ds->ex[i];
    ds->n = k;
}

int py_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

char *ds_trim(char *s, size_t *len) {
    size_t n = *len;
    while (n && s[n - 1] == ' ') n--;
    while (n && *s == ' ') s++, n--;
    s[n] = 0;
    *len = n;
    return s;
}

/* ---- registry ---- */

int dataset_load(dataset *ds, const dataset_opts *o, split_id split) {
    memset(ds, 0, sizeof *ds);
    if (!o->name || !*o->name) return adp_seterr("no dataset given (--dataset NAME: %s)", DATASET_NAMES);
    snprintf(ds->name, sizeof ds->name, "%s", o->name);
    ds->split = split;
    int rc;
    if (!strcmp(o->name, "sst2")) rc = data_load_sst2(ds, o, split);
    else if (!strcmp(o->name, "agnews")) rc = data_load_agnews(ds, o, split);
    else if (!strcmp(o->name, "hatexplain")) rc = data_load_hatexplain(ds, o, split);
    else if (!strcmp(o->name, "eraser_movies")) rc = data_load_eraser_movies(ds, o, split);
    else if (!strcmp(o->name, "imdb")) rc = data_load_imdb(ds, o, split);
    else if (!strcmp(o->name, "planted")) rc = data_load_planted(ds, o, split);
    else if (!strncmp(o->name, "tsv:", 4) && o->name[4]) rc = data_load_tsv(ds, o, o->name + 4, split);
    else rc = adp_seterr("unknown dataset '%s' (known: %s)", o->name, DATASET_NAMES);
    if (rc != ADP_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", adp_errmsg());
        dataset_free(ds);
        adp_seterr("%s", msg);
        return ADP_ERR;
    }
    return ADP_OK;
}

/* ---- packing ---- */

void packed_tokens_free(packed_tokens *pk) {
    free(pk->ids);
    free(pk->type_ids);
    free(pk->word_ids);
    free(pk->rationale);
    free(pk->seq_off);
    free(pk->labels);
    memset(pk, 0, sizeof *pk);
}

int dataset_pack_range(packed_tokens *pk, const dataset *ds, const wordpiece *wp, size_t max_len, size_t first,
                       size_t count) {
    memset(pk, 0, sizeof *pk);
    if (first > ds->n || count > ds->n - first)
        return adp_seterr("examples [%zu, %zu) out of range (%zu examples)", first, first + count, ds->n);
    size_t cap = 0;
    pk->seq_off = mallocCheck((count + 1) * sizeof *pk->seq_off);
    pk->labels = mallocCheck((count ? count : 1) * sizeof *pk->labels);
    pk->seq_off[0] = 0;
    wp_encoding enc = {0};
    for (size_t k = 0; k < count; k++) {
        const example *ex = &ds->ex[first + k];
        size_t la = strlen(ex->text), lb = ex->pair ? strlen(ex->pair) : 0;
        if (wordpiece_encode(wp, &enc, ex->text, la, ex->pair, lb, max_len) != ADP_OK) {
            wp_encoding_free(&enc);
            packed_tokens_free(pk);
            return adp_preferr("%s %s example %zu (%s): ", ds->name, split_name(ds->split), first + k, ex->id);
        }
        if (pk->n_tok + enc.n > cap) {
            cap = cap ? cap : 4096;
            while (cap < pk->n_tok + enc.n) cap *= 2;
            pk->ids = reallocCheck(pk->ids, cap * sizeof *pk->ids);
            pk->type_ids = reallocCheck(pk->type_ids, cap * sizeof *pk->type_ids);
            pk->word_ids = reallocCheck(pk->word_ids, cap * sizeof *pk->word_ids);
            pk->rationale = reallocCheck(pk->rationale, cap * sizeof *pk->rationale);
        }
        size_t o = pk->n_tok;
        memcpy(pk->ids + o, enc.ids, enc.n * sizeof *enc.ids);
        memcpy(pk->type_ids + o, enc.type_ids, enc.n * sizeof *enc.type_ids);
        memcpy(pk->word_ids + o, enc.word_ids, enc.n * sizeof *enc.word_ids);
        for (size_t i = 0; i < enc.n; i++) {
            int32_t w = enc.word_ids[i];
            pk->rationale[o + i] = (ex->rationale && w >= 0 && enc.type_ids[i] == 0) ? (int8_t)ex->rationale[w] : -1;
        }
        pk->n_tok += enc.n;
        pk->seq_off[k + 1] = pk->n_tok;
        pk->labels[k] = ex->label;
        pk->n_truncated += enc.n_truncated > 0;
        pk->n_bytes += la + lb;
    }
    pk->n_seq = count;
    wp_encoding_free(&enc);
    return ADP_OK;
}

int dataset_pack(packed_tokens *pk, const dataset *ds, const wordpiece *wp, size_t max_len) {
    return dataset_pack_range(pk, ds, wp, max_len, 0, ds->n);
}

/* saliency.c: gradient x input saliency and its cache (see saliency.h). */
#include "saliency.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "bert_train.h"
#include "common.h"
#include "safetensors.h"

int saliency_compute(float *out, const bert_model *m, const packed_tokens *pk, const int32_t *cls, int batch) {
    bert_train_ctx c;
    bert_train_ctx_init(&c);
    int *off = mallocCheck(sizeof(int) * (size_t)(batch + 1));
    const int H = m->cfg.hidden;
    int rc = ADP_OK;
    for (size_t s0 = 0; s0 < pk->n_seq && rc == ADP_OK; s0 += (size_t)batch) {
        int k = (int)ADP_MIN((size_t)batch, pk->n_seq - s0);
        size_t base = pk->seq_off[s0];
        for (int i = 0; i <= k; i++) off[i] = (int)(pk->seq_off[s0 + i] - base);
        bert_batch b = {.n_seq = k, .ids = pk->ids + base, .types = pk->type_ids + base, .off = off};
        rc = bert_logit_grads(&c, m, &b, cls + s0, NULL);
        if (rc != ADP_OK) {
            adp_preferr("saliency, sequences %zu..%zu: ", s0, s0 + (size_t)k - 1);
            break;
        }
        int T;
        const int *hoff;
        const int32_t *pos;
        const float *e = bert_train_hidden(&c, 0, &T, &hoff, &pos), *g = bert_train_hidden_grad(&c, 0);
        ASSERT(T == off[k]); /* nothing is dropped before the first layer */
        for (int t = 0; t < T; t++) {
            double acc = 0;
            for (int d = 0; d < H; d++) {
                double v = (double)g[(size_t)t * H + d] * e[(size_t)t * H + d];
                acc += v * v;
            }
            out[base + (size_t)t] = (float)sqrt(acc);
        }
    }
    free(off);
    bert_train_ctx_free(&c);
    return rc;
}

int file_hash64(const char *path, uint64_t *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return adp_seterr("%s: cannot open: %s", path, strerror(errno));
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    int bad = ferror(f);
    fclose(f);
    if (bad) return adp_seterr("%s: read error", path);
    *out = h;
    return ADP_OK;
}

int saliency_key_model(saliency_key *key, const char *model_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    uint64_t h;
    if (file_hash64(path, &h) != ADP_OK) return ADP_ERR;
    snprintf(key->model_hash, sizeof key->model_hash, "%016llx", (unsigned long long)h);
    return ADP_OK;
}

void saliency_cache_path(char *buf, size_t cap, const char *model_dir, const char *ds_name, const char *split,
                         long max_len) {
    char name[256];
    size_t k = 0;
    for (const char *p = ds_name; *p && k + 1 < sizeof name; p++)
        name[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ? *p : '_';
    name[k] = 0;
    snprintf(buf, cap, "%s/saliency-%s-%s-%ld.safetensors", model_dir, name, split, max_len);
}

int saliency_save(const char *path, const float *scores, const packed_tokens *pk, const saliency_key *key) {
    int64_t *off = mallocCheck(sizeof(int64_t) * (pk->n_seq + 1));
    for (size_t i = 0; i <= pk->n_seq; i++) off[i] = (int64_t)pk->seq_off[i];
    st_writer w;
    st_writer_init(&w);
    int64_t s1[1] = {(int64_t)pk->n_tok}, s2[1] = {(int64_t)pk->n_seq + 1};
    st_writer_add(&w, "saliency", ST_F32, scores, 1, s1);
    st_writer_add(&w, "seq_off", ST_I64, off, 1, s2);
    char num[64];
    st_writer_meta(&w, "model_hash", key->model_hash);
    st_writer_meta(&w, "dataset", key->dataset);
    st_writer_meta(&w, "split", key->split);
    st_writer_meta(&w, "class", key->cls);
    snprintf(num, sizeof num, "%ld", key->max_len);
    st_writer_meta(&w, "max_len", num);
    snprintf(num, sizeof num, "%zu", pk->n_seq);
    st_writer_meta(&w, "n_seq", num);
    snprintf(num, sizeof num, "%zu", pk->n_tok);
    st_writer_meta(&w, "n_tok", num);
    int rc = st_writer_finish(&w, path);
    free(off);
    return rc;
}

int saliency_load(float **out, const char *path, const packed_tokens *pk, const saliency_key *key) {
    st_file f;
    if (st_open(&f, path) != ADP_OK) return ADP_ERR;
    char num[64];
    snprintf(num, sizeof num, "%ld", key->max_len);
    const char *want[5][2] = {{"model_hash", key->model_hash}, {"dataset", key->dataset}, {"split", key->split},
                              {"class", key->cls}, {"max_len", num}};
    int rc = ADP_OK;
    for (int i = 0; i < 5 && !rc; i++) {
        const char *have = st_meta(&f, want[i][0]);
        if (!have || strcmp(have, want[i][1]) != 0)
            rc = adp_seterr("%s: stale: %s is '%s', expected '%s'", path, want[i][0], have ? have : "(none)", want[i][1]);
    }
    const st_tensor *ts = st_find(&f, "saliency"), *to = st_find(&f, "seq_off");
    if (!rc && (!ts || !to)) rc = adp_seterr("%s: not a saliency cache (tensors saliency, seq_off)", path);
    int32_t *off = NULL;
    if (!rc && st_numel(to) != (int64_t)pk->n_seq + 1)
        rc = adp_seterr("%s: stale: %lld sequences, expected %zu", path, (long long)st_numel(to) - 1, pk->n_seq);
    if (!rc) {
        off = mallocCheck(sizeof(int32_t) * (pk->n_seq + 1));
        rc = st_read_i32(&f, to, off, (int64_t)pk->n_seq + 1);
        for (size_t i = 0; !rc && i <= pk->n_seq; i++)
            if ((size_t)off[i] != pk->seq_off[i])
                rc = adp_seterr("%s: stale: sequence %zu starts at token %d, expected %zu", path, i, off[i],
                                pk->seq_off[i]);
    }
    float *v = NULL;
    if (!rc) {
        v = mallocCheck(sizeof(float) * (pk->n_tok ? pk->n_tok : 1));
        int64_t shape[1] = {(int64_t)pk->n_tok};
        rc = st_read_f32(&f, ts, v, shape, 1);
    }
    free(off);
    st_close(&f);
    if (rc) {
        free(v);
        return ADP_ERR;
    }
    *out = v;
    return ADP_OK;
}

int saliency_cached(float **out, int *computed, const char *path, const saliency_key *key, const bert_model *m,
                    const packed_tokens *pk, const int32_t *cls, int batch, int verbose) {
    FILE *probe = fopen(path, "rb");
    if (probe) {
        fclose(probe);
        if (saliency_load(out, path, pk, key) == ADP_OK) {
            *computed = 0;
            return ADP_OK;
        }
        if (verbose) fprintf(stderr, "saliency: recomputing: %s\n", adp_errmsg());
    }
    float *v = mallocCheck(sizeof(float) * (pk->n_tok ? pk->n_tok : 1));
    if (saliency_compute(v, m, pk, cls, batch) != ADP_OK || saliency_save(path, v, pk, key) != ADP_OK) {
        free(v);
        return ADP_ERR;
    }
    *out = v;
    *computed = 1;
    return ADP_OK;
}

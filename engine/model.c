/* model.c: the weights arena, parameter naming, random init, checkpoint load and save. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "rng.h"

size_t bert_weights_count(const bert_config *c) {
    size_t H = (size_t)c->hidden, I = (size_t)c->inter;
    size_t per_layer = 3 * H * H + 3 * H + H * H + H + 2 * H + I * H + I + H * I + H + 2 * H;
    return (size_t)c->vocab_size * H + (size_t)c->max_pos * H + (size_t)c->type_vocab * H + 2 * H +
           (size_t)c->layers * per_layer + H * H + H + (size_t)c->num_labels * H + (size_t)c->num_labels;
}

void bert_weights_point(bert_weights *w, const bert_config *c, float *base) {
    size_t H = (size_t)c->hidden, I = (size_t)c->inter;
    float *p = base;
#define TAKE(n) (p += (n), p - (n))
    w->word_emb = TAKE((size_t)c->vocab_size * H);
    w->pos_emb = TAKE((size_t)c->max_pos * H);
    w->type_emb = TAKE((size_t)c->type_vocab * H);
    w->emb_ln_g = TAKE(H);
    w->emb_ln_b = TAKE(H);
    w->layer = mallocCheck(sizeof(bert_layer_w) * (size_t)c->layers);
    for (int l = 0; l < c->layers; l++) {
        bert_layer_w *lw = &w->layer[l];
        lw->wqkv = TAKE(3 * H * H);
        lw->bqkv = TAKE(3 * H);
        lw->wo = TAKE(H * H);
        lw->bo = TAKE(H);
        lw->ln1_g = TAKE(H);
        lw->ln1_b = TAKE(H);
        lw->w1 = TAKE(I * H);
        lw->b1 = TAKE(I);
        lw->w2 = TAKE(H * I);
        lw->b2 = TAKE(H);
        lw->ln2_g = TAKE(H);
        lw->ln2_b = TAKE(H);
    }
    w->pool_w = TAKE(H * H);
    w->pool_b = TAKE(H);
    w->cls_w = TAKE((size_t)c->num_labels * H);
    w->cls_b = TAKE((size_t)c->num_labels);
#undef TAKE
    ASSERT((size_t)(p - base) == bert_weights_count(c));
}

void bert_weights_free_layout(bert_weights *w) {
    free(w->layer);
    w->layer = NULL;
}

static void add_param(bert_param *list, int *n, param_group g, float *ptr, int ndim, int64_t d0, int64_t d1,
                      const char *prefix, const char *suffix) {
    bert_param *p = &list[(*n)++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s%s", prefix, suffix);
    p->ptr = ptr;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->group = g;
    p->no_decay = ndim == 1;
}

int bert_param_list(const bert_config *c, const bert_weights *w, bert_param **out) {
    int64_t H = c->hidden, I = c->inter;
    bert_param *list = mallocCheck(sizeof(bert_param) * (size_t)(9 + 16 * c->layers));
    int n = 0;
    const char *E = "bert.embeddings.";
    add_param(list, &n, PARAM_CORE, w->word_emb, 2, c->vocab_size, H, E, "word_embeddings.weight");
    add_param(list, &n, PARAM_CORE, w->pos_emb, 2, c->max_pos, H, E, "position_embeddings.weight");
    add_param(list, &n, PARAM_CORE, w->type_emb, 2, c->type_vocab, H, E, "token_type_embeddings.weight");
    add_param(list, &n, PARAM_CORE, w->emb_ln_g, 1, H, 0, E, "LayerNorm.weight");
    add_param(list, &n, PARAM_CORE, w->emb_ln_b, 1, H, 0, E, "LayerNorm.bias");
    char Lf[64];
    for (int l = 0; l < c->layers; l++) {
        const bert_layer_w *lw = &w->layer[l];
        snprintf(Lf, sizeof Lf, "bert.encoder.layer.%d.", l);
        add_param(list, &n, PARAM_CORE, lw->wqkv, 2, H, H, Lf, "attention.self.query.weight");
        add_param(list, &n, PARAM_CORE, lw->bqkv, 1, H, 0, Lf, "attention.self.query.bias");
        add_param(list, &n, PARAM_CORE, lw->wqkv + H * H, 2, H, H, Lf, "attention.self.key.weight");
        add_param(list, &n, PARAM_CORE, lw->bqkv + H, 1, H, 0, Lf, "attention.self.key.bias");
        add_param(list, &n, PARAM_CORE, lw->wqkv + 2 * H * H, 2, H, H, Lf, "attention.self.value.weight");
        add_param(list, &n, PARAM_CORE, lw->bqkv + 2 * H, 1, H, 0, Lf, "attention.self.value.bias");
        add_param(list, &n, PARAM_CORE, lw->wo, 2, H, H, Lf, "attention.output.dense.weight");
        add_param(list, &n, PARAM_CORE, lw->bo, 1, H, 0, Lf, "attention.output.dense.bias");
        add_param(list, &n, PARAM_CORE, lw->ln1_g, 1, H, 0, Lf, "attention.output.LayerNorm.weight");
        add_param(list, &n, PARAM_CORE, lw->ln1_b, 1, H, 0, Lf, "attention.output.LayerNorm.bias");
        add_param(list, &n, PARAM_CORE, lw->w1, 2, I, H, Lf, "intermediate.dense.weight");
        add_param(list, &n, PARAM_CORE, lw->b1, 1, I, 0, Lf, "intermediate.dense.bias");
        add_param(list, &n, PARAM_CORE, lw->w2, 2, H, I, Lf, "output.dense.weight");
        add_param(list, &n, PARAM_CORE, lw->b2, 1, H, 0, Lf, "output.dense.bias");
        add_param(list, &n, PARAM_CORE, lw->ln2_g, 1, H, 0, Lf, "output.LayerNorm.weight");
        add_param(list, &n, PARAM_CORE, lw->ln2_b, 1, H, 0, Lf, "output.LayerNorm.bias");
    }
    add_param(list, &n, PARAM_POOLER, w->pool_w, 2, H, H, "bert.pooler.", "dense.weight");
    add_param(list, &n, PARAM_POOLER, w->pool_b, 1, H, 0, "bert.pooler.", "dense.bias");
    add_param(list, &n, PARAM_CLASSIFIER, w->cls_w, 2, c->num_labels, H, "classifier.", "weight");
    add_param(list, &n, PARAM_CLASSIFIER, w->cls_b, 1, c->num_labels, 0, "classifier.", "bias");
    *out = list;
    return n;
}

static linear_w lin(const float *w, const float *b, int out, int in) {
    return (linear_w){.w = w, .b = b, .in = in, .out = out};
}

void bert_model_alloc(bert_model *m, const bert_config *c) {
    memset(m, 0, sizeof *m);
    bert_config_copy(&m->cfg, c);
    m->n_params = bert_weights_count(c);
    m->arena = alignedCheck(m->n_params * sizeof(float));
    memset(m->arena, 0, m->n_params * sizeof(float));
    bert_weights_point(&m->w, &m->cfg, m->arena);
    int H = c->hidden, I = c->inter;
    m->lin = callocCheck((size_t)c->layers, sizeof(bert_layer_lin));
    for (int l = 0; l < c->layers; l++) {
        const bert_layer_w *w = &m->w.layer[l];
        m->lin[l] = (bert_layer_lin){.qkv = lin(w->wqkv, w->bqkv, 3 * H, H), .o = lin(w->wo, w->bo, H, H),
                                     .ffn1 = lin(w->w1, w->b1, I, H), .ffn2 = lin(w->w2, w->b2, H, I)};
        /* summed in two halves over k, always, so that a layer on few tokens can have each
         * of two threads do one half (engine/bert.c layer_pair) with the same results */
        m->lin[l].o.k_split = H / 2, m->lin[l].ffn2.k_split = I / 2;
    }
    m->pool = lin(m->w.pool_w, m->w.pool_b, H, H);
    m->cls = lin(m->w.cls_w, m->w.cls_b, c->num_labels, H);
}

/* Every projection that runs through linear_forward: four per layer, then the pooler and
 * the classifier (at batch 1 an unpacked pooler went to cblas_sgemm, 32 us of a 270 us
 * pass).  ls holds 4 * layers + 2 pointers. */
static int model_linears(bert_model *m, linear_w **ls) {
    int n = 0;
    for (int l = 0; l < m->cfg.layers; l++) {
        bert_layer_lin *li = &m->lin[l];
        ls[n++] = &li->qkv, ls[n++] = &li->o, ls[n++] = &li->ffn1, ls[n++] = &li->ffn2;
    }
    ls[n++] = &m->pool, ls[n++] = &m->cls;
    return n;
}

void bert_model_unpack(bert_model *m) {
    free(m->packed);
    free(m->packed16);
    free(m->packed8);
    free(m->scale8);
    m->packed = NULL, m->packed16 = NULL, m->packed8 = NULL, m->scale8 = NULL;
    linear_w **ls = mallocCheck(sizeof(linear_w *) * (size_t)(4 * m->cfg.layers + 2));
    int n = model_linears(m, ls);
    for (int k = 0; k < n; k++) ls[k]->panels = NULL, ls[k]->fmt = FMT_F32, ls[k]->scale8 = NULL;
    free(ls);
}

/* With half, bfloat16 or int8 weights every linear but the last (the classifier) is converted:
 * to 16-bit panels (m->packed16, either format) or to int8 ones (m->packed8). */
static int linear_is_16bit(const bert_model *m, int k, int n) {
    return (m->weights == FMT_F16 || m->weights == FMT_BF16) && k < n - 1;
}
static int linear_is_i8(const bert_model *m, int k, int n) { return m->weights == FMT_I8 && k < n - 1; }

/* The k-th weight bert_model_use_f16 rounds and bert_model_use_i8 quantizes (k < 4 L + 1: four per layer, then the
 * pooler), its size and checkpoint name. */
static float *converted_weight(bert_model *m, int k, size_t *n, char *name, size_t cap) {
    static const char *const names[4] = {"attention.self.{query,key,value}", "attention.output.dense",
                                          "intermediate.dense", "output.dense"};
    const size_t H = (size_t)m->cfg.hidden, I = (size_t)m->cfg.inter;
    if (k == 4 * m->cfg.layers) {
        snprintf(name, cap, "bert.pooler.dense.weight");
        *n = H * H;
        return m->w.pool_w;
    }
    bert_layer_w *w = &m->w.layer[k / 4];
    snprintf(name, cap, "bert.encoder.layer.%d.%s.weight", k / 4, names[k % 4]);
    *n = k % 4 == 0 ? 3 * H * H : k % 4 == 1 ? H * H : H * I;
    return k % 4 == 0 ? w->wqkv : k % 4 == 1 ? w->wo : k % 4 == 2 ? w->w1 : w->w2;
}

static int beyond_half(float w) { return fabsf(w) >= 65520.0f; } /* rounds to infinity (NaN passes, as before) */
static int beyond_bf16(float w) { return !isfinite(w) || fabsf(w) >= 0x1.ffp127f; }

/* Round the converted weights (converted_weight) with round_fn after checking every one of
 * them with bad() (an error naming the first tensor with any, "<count> weights of <tensor>
 * <why>", before changing any); then repack as fmt. */
static int use_rounded(bert_model *m, int fmt, size_t (*round_fn)(float *, size_t), int (*bad)(float),
                       const char *why) {
    const char *opt = weights_fmt_name(fmt);
    if (m->weights != FMT_F32) return adp_seterr("--weights %s: the model's weights are already converted", opt);
    const int n = 4 * m->cfg.layers + 1;
    char name[96];
    size_t count;
    for (int k = 0; k < n; k++) {
        const float *w = converted_weight(m, k, &count, name, sizeof name);
        size_t nbad = 0;
        for (size_t i = 0; i < count; i++) nbad += bad(w[i]);
        if (nbad) return adp_seterr("--weights %s: %zu weights of %s %s", opt, nbad, name, why);
    }
    for (int k = 0; k < n; k++) {
        float *w = converted_weight(m, k, &count, name, sizeof name);
        round_fn(w, count);
    }
    m->weights = fmt;
    bert_model_unpack(m);
    bert_model_pack(m);
    return ADP_OK;
}

int bert_model_use_f16(bert_model *m) {
    return use_rounded(m, FMT_F16, gemm_round_f16, beyond_half, "exceed the half range (65504)");
}

int bert_model_use_bf16(bert_model *m) {
    return use_rounded(m, FMT_BF16, gemm_round_bf16, beyond_bf16, "are not finite or beyond the bfloat16 range");
}

int bert_model_use_i8(bert_model *m) {
    if (m->weights != FMT_F32) return adp_seterr("--weights i8: the model's weights are already converted");
    const int n = 4 * m->cfg.layers + 1;
    char name[96];
    size_t count, rows = 0;
    for (int k = 0; k < n; k++) { /* check every weight before changing any */
        const float *w = converted_weight(m, k, &count, name, sizeof name);
        size_t bad = 0;
        for (size_t i = 0; i < count; i++) bad += !isfinite(w[i]);
        if (bad) return adp_seterr("--weights i8: %zu weights of %s are not finite", bad, name);
    }
    linear_w **ls = mallocCheck(sizeof(linear_w *) * (size_t)(4 * m->cfg.layers + 2));
    model_linears(m, ls);
    for (int k = 0; k < n; k++) rows += (size_t)ls[k]->out;
    free(m->row_scale);
    m->row_scale = mallocCheck(rows * sizeof(float));
    float *sc = m->row_scale;
    for (int k = 0; k < n; k++) { /* linear k's weight is converted_weight(k): qkv's three are one (3H, H) */
        gemm_quant_i8(sc, (float *)ls[k]->w, ls[k]->out, ls[k]->in);
        sc += ls[k]->out;
    }
    free(ls);
    m->weights = FMT_I8;
    bert_model_unpack(m);
    bert_model_pack(m);
    return ADP_OK;
}

int bert_model_use_weights(bert_model *m, int fmt) {
    return fmt == FMT_F16    ? bert_model_use_f16(m)
           : fmt == FMT_BF16 ? bert_model_use_bf16(m)
           : fmt == FMT_I8   ? bert_model_use_i8(m)
                             : ADP_OK;
}

int weights_fmt_from_name(const char *name) {
    for (int fmt = FMT_F32; name && fmt <= FMT_BF16; fmt++)
        if (!strcmp(name, weights_fmt_name(fmt))) return fmt;
    return -1;
}

const char *weights_fmt_name(int fmt) {
    return fmt == FMT_F16 ? "f16" : fmt == FMT_BF16 ? "bf16" : fmt == FMT_I8 ? "i8" : "f32";
}

void bert_model_pack(bert_model *m) {
    if (!gemm_packed_enabled()) {
        bert_model_unpack(m);
        return;
    }
    linear_w **ls = mallocCheck(sizeof(linear_w *) * (size_t)(4 * m->cfg.layers + 2));
    int n = model_linears(m, ls);
    size_t total = 0, total16 = 0, total8 = 0, scales = 0;
    for (int k = 0; k < n; k++) {
        size_t size = gemm_packed_size(ls[k]->out, ls[k]->in);
        *(linear_is_16bit(m, k, n) ? &total16 : linear_is_i8(m, k, n) ? &total8 : &total) += size;
        if (linear_is_i8(m, k, n)) scales += size / (size_t)ls[k]->in;
    }
    if (!m->packed) m->packed = alignedCheck(total * sizeof(float));
    if (total16 && !m->packed16) m->packed16 = alignedCheck(total16 * sizeof(uint16_t));
    if (total8 && !m->packed8) m->packed8 = alignedCheck(total8), m->scale8 = alignedCheck(scales * sizeof(float));
    float *p = m->packed, *ps = m->scale8;
    const float *rs = m->row_scale;
    uint16_t *p16 = m->packed16;
    int8_t *p8 = m->packed8;
    for (int k = 0; k < n; k++) {
        size_t size = gemm_packed_size(ls[k]->out, ls[k]->in);
        if (linear_is_i8(m, k, n)) {
            gemm_pack8(p8, ps, ls[k]->w, rs, ls[k]->out, ls[k]->in);
            ls[k]->panels = p8, ls[k]->fmt = FMT_I8, ls[k]->scale8 = ps;
            p8 += size, ps += size / (size_t)ls[k]->in, rs += ls[k]->out;
        } else if (linear_is_16bit(m, k, n)) {
            if (m->weights == FMT_BF16) gemm_pack_bf16(p16, ls[k]->w, ls[k]->out, ls[k]->in);
            else gemm_pack16(p16, ls[k]->w, ls[k]->out, ls[k]->in);
            ls[k]->panels = p16, ls[k]->fmt = m->weights == FMT_BF16 ? FMT_BF16 : FMT_F16, ls[k]->scale8 = NULL;
            p16 += size;
        } else {
            gemm_pack(p, ls[k]->w, ls[k]->out, ls[k]->in);
            ls[k]->panels = p, ls[k]->fmt = FMT_F32, ls[k]->scale8 = NULL;
            p += size;
        }
    }
    free(ls);
}

void bert_model_init_random(bert_model *m, uint64_t seed) {
    adp_rng r;
    rng_seed(&r, seed);
    bert_param *ps;
    int n = bert_param_list(&m->cfg, &m->w, &ps);
    for (int i = 0; i < n; i++) {
        bert_param *p = &ps[i];
        size_t numel = (size_t)p->shape[0] * (size_t)(p->ndim == 2 ? p->shape[1] : 1);
        int is_ln_gamma = strstr(p->name, "LayerNorm.weight") != NULL;
        for (size_t k = 0; k < numel; k++)
            p->ptr[k] = p->ndim == 2 ? (float)(m->cfg.init_range * rng_normal(&r)) : is_ln_gamma ? 1.0f : 0.0f;
    }
    free(ps);
    bert_model_pack(m);
}

void bert_model_free(bert_model *m) {
    free(m->arena);
    free(m->packed);
    free(m->packed16);
    free(m->packed8);
    free(m->scale8);
    free(m->row_scale);
    free(m->lin);
    bert_weights_free_layout(&m->w);
    bert_config_free(&m->cfg);
    free(m->vocab_path);
    memset(m, 0, sizeof *m);
}

/* Candidate checkpoint names for a canonical name: with and without "bert.", LayerNorm
 * weight/bias or gamma/beta. */
const st_tensor *bert_find_tensor(const st_file *st, const char *canonical) {
    char alt[4][128];
    int n = 0;
    snprintf(alt[n++], sizeof alt[0], "%s", canonical);
    const char *stripped = strncmp(canonical, "bert.", 5) == 0 ? canonical + 5 : NULL;
    if (stripped) snprintf(alt[n++], sizeof alt[0], "%s", stripped);
    const char *ln = strstr(canonical, "LayerNorm.");
    if (ln) {
        int k0 = n;
        for (int k = 0; k < k0; k++) {
            char *p = strstr(alt[k], "LayerNorm.");
            char buf[128];
            snprintf(buf, sizeof buf, "%.*sLayerNorm.%s", (int)(p - alt[k]), alt[k],
                     strcmp(p + 10, "weight") == 0 ? "gamma" : "beta");
            snprintf(alt[n++], sizeof alt[0], "%s", buf);
        }
    }
    for (int k = 0; k < n; k++) {
        const st_tensor *t = st_find(st, alt[k]);
        if (t) return t;
    }
    return NULL;
}

int bert_model_load(bert_model *m, const char *dir, int flags, st_file *st_out) {
    char path[4096];
    bert_config c;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (bert_config_load(&c, path) != ADP_OK) return ADP_ERR;
    bert_model_alloc(m, &c);
    bert_config_free(&c);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file st;
    if (st_open(&st, path) != ADP_OK) {
        bert_model_free(m);
        return ADP_ERR;
    }
    bert_param *ps;
    int n = bert_param_list(&m->cfg, &m->w, &ps);
    int rc = ADP_OK;
    /* each tensor looked up once; random values stay for an optional head the checkpoint
     * lacks (the whole model drawn as bert_model_init_random(m, 0) does, so such a head is the
     * same whatever else is read); a checkpoint with every tensor skips the draw */
    const st_tensor **found = callocCheck((size_t)(n ? n : 1), sizeof *found);
    int found_group[3] = {0, 0, 0}, missing = 0;
    for (int i = 0; i < n; i++) {
        found[i] = bert_find_tensor(&st, ps[i].name);
        if (found[i]) found_group[ps[i].group]++;
        else missing = 1;
    }
    if (missing) bert_model_init_random(m, 0);
    for (int i = 0; i < n && rc == ADP_OK; i++) {
        if (!found[i]) continue;
        rc = st_read_f32(&st, found[i], ps[i].ptr, ps[i].shape, ps[i].ndim);
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", adp_errmsg());
            adp_seterr("%s (as config.json implies)", msg);
        }
    }
    for (int i = 0; i < n && rc == ADP_OK; i++) {
        param_group g = ps[i].group;
        int optional = g != PARAM_CORE && (flags & BERT_LOAD_HEAD_OPTIONAL) && found_group[g] == 0;
        if (!optional && !found[i])
            rc = adp_seterr("%s: missing tensor '%s'%s", path, ps[i].name,
                            found_group[g] ? "" : g == PARAM_CORE ? "" : " (a backbone without a classification head?)");
    }
    free(found);
    free(ps);
    if (rc == ADP_OK) {
        bert_model_pack(m);
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        struct stat sb;
        if (stat(path, &sb) == 0) m->vocab_path = strdupCheck(path);
    }
    if (rc != ADP_OK || !st_out)
        st_close(&st);
    else
        *st_out = st;
    if (rc != ADP_OK) bert_model_free(m);
    return rc;
}

static int copy_file(const char *src, const char *dst) {
    char *buf = NULL;
    size_t n = 0;
    if (adp_read_file(src, &buf, &n) != ADP_OK) return ADP_ERR;
    int rc = adp_write_file_atomic(dst, buf, n);
    free(buf);
    return rc;
}

int bert_model_save(const bert_model *m, const char *dir, const bert_extra_tensor *extra, int n_extra,
                    const char *vocab_src) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return adp_seterr("%s: cannot create directory: %s", dir, strerror(errno));
    char path[4096];
    bert_param *ps;
    int n = bert_param_list(&m->cfg, &m->w, &ps);
    st_writer w;
    st_writer_init(&w);
    for (int i = 0; i < n; i++) st_writer_add(&w, ps[i].name, ST_F32, ps[i].ptr, ps[i].ndim, ps[i].shape);
    for (int i = 0; i < n_extra; i++) st_writer_add(&w, extra[i].name, ST_F32, extra[i].data, extra[i].ndim, extra[i].shape);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_writer_finish(&w, path);
    free(ps);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (bert_config_save(&m->cfg, path) != ADP_OK) return ADP_ERR;
    if (vocab_src) {
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        char *a = realpath(vocab_src, NULL), *b = realpath(path, NULL);
        int same = a && b && strcmp(a, b) == 0;
        free(a);
        free(b);
        if (!same && copy_file(vocab_src, path) != ADP_OK) return ADP_ERR;
    }
    return ADP_OK;
}

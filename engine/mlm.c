/* mlm.c: the MLM head (forward, backward, checkpoint names) and backbone saving. */
#include "mlm.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "gemm.h"
#include "ops.h"
#include "rng.h"

size_t mlm_weights_count(int hidden, int vocab) {
    size_t H = (size_t)hidden;
    return H * H + 3 * H + (size_t)vocab;
}

void mlm_weights_point(mlm_weights *w, int hidden, int vocab, float *base) {
    size_t H = (size_t)hidden;
    w->hidden = hidden, w->vocab = vocab;
    w->dense_w = base;
    w->dense_b = w->dense_w + H * H;
    w->ln_g = w->dense_b + H;
    w->ln_b = w->ln_g + H;
    w->bias = w->ln_b + H;
}

void mlm_weights_init(mlm_weights *w, float init_range, uint64_t seed) {
    adp_rng r;
    rng_seed(&r, seed);
    size_t H = (size_t)w->hidden;
    for (size_t i = 0; i < H * H; i++) w->dense_w[i] = (float)(init_range * rng_normal(&r));
    for (size_t i = 0; i < H; i++) w->dense_b[i] = 0.0f, w->ln_g[i] = 1.0f, w->ln_b[i] = 0.0f;
    memset(w->bias, 0, sizeof(float) * (size_t)w->vocab);
}

int mlm_param_list(const mlm_weights *w, bert_param **out) {
    int64_t H = w->hidden;
    bert_param *p = callocCheck(5, sizeof(bert_param));
    const char *names[5] = {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                            "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                            "cls.predictions.bias"};
    float *ptrs[5] = {w->dense_w, w->dense_b, w->ln_g, w->ln_b, w->bias};
    for (int i = 0; i < 5; i++) {
        snprintf(p[i].name, sizeof p[i].name, "%s", names[i]);
        p[i].ptr = ptrs[i];
        p[i].ndim = i == 0 ? 2 : 1;
        p[i].shape[0] = i == 4 ? w->vocab : H;
        p[i].shape[1] = i == 0 ? H : 0;
        p[i].group = PARAM_CORE;
        p[i].no_decay = i != 0;
    }
    *out = p;
    return 5;
}

int mlm_weights_load(mlm_weights *w, const st_file *st) {
    bert_param *ps;
    int n = mlm_param_list(w, &ps), rc = ADP_OK;
    for (int i = 0; i < n && rc == ADP_OK; i++) {
        const st_tensor *t = bert_find_tensor(st, ps[i].name);
        if (!t)
            rc = adp_seterr("missing tensor '%s' (not a checkpoint with an MLM head?)", ps[i].name);
        else
            rc = st_read_f32(st, t, ps[i].ptr, ps[i].shape, ps[i].ndim);
    }
    free(ps);
    return rc;
}

void mlm_ctx_init(mlm_ctx *c) { memset(c, 0, sizeof *c); }

void mlm_ctx_free(mlm_ctx *c) {
    free(c->rows), free(c->labels), free(c->x), free(c->t_pre), free(c->t_act), free(c->t), free(c->mean);
    free(c->rstd), free(c->probs), free(c->loss), free(c->g_t), free(c->g_act), free(c->g_x), free(c->g_logits);
    memset(c, 0, sizeof *c);
}

#define GROW(ptr, n) ((ptr) = (free(ptr), alignedCheck(sizeof(*(ptr)) * (size_t)(n))))

static void reserve(mlm_ctx *c, int M, int H, int V) {
    if (M <= c->cap_rows && H == c->H && V == c->V) return;
    int cap = ADP_MAX(M, 1);
    size_t mh = (size_t)cap * H, mv = (size_t)cap * V;
    GROW(c->rows, cap), GROW(c->labels, cap), GROW(c->x, mh), GROW(c->t_pre, mh), GROW(c->t_act, mh), GROW(c->t, mh);
    GROW(c->mean, cap), GROW(c->rstd, cap), GROW(c->probs, mv), GROW(c->loss, cap), GROW(c->g_t, mh);
    GROW(c->g_act, mh), GROW(c->g_x, mh), GROW(c->g_logits, mv);
    c->cap_rows = cap, c->H = H, c->V = V;
}

float mlm_forward(mlm_ctx *c, const mlm_weights *w, const float *word_emb, const float *hidden, const int *rows,
                  const int32_t *labels, int M, float ln_eps, int *correct) {
    const int H = w->hidden, V = w->vocab;
    reserve(c, M, H, V);
    c->M = M;
    if (correct) *correct = 0;
    if (M == 0) return 0.0f;
    memcpy(c->rows, rows, sizeof(int) * (size_t)M);
    memcpy(c->labels, labels, sizeof(int32_t) * (size_t)M);
    for (int k = 0; k < M; k++) memcpy(c->x + (size_t)k * H, hidden + (size_t)rows[k] * H, sizeof(float) * (size_t)H);
    linear_w dense = {.w = w->dense_w, .b = w->dense_b, .in = H, .out = H};
    linear_w dec = {.w = word_emb, .b = w->bias, .in = H, .out = V};
    linear_forward(c->t_pre, c->x, &dense, M, ACT_NONE);
    memcpy(c->t_act, c->t_pre, sizeof(float) * (size_t)M * H);
    gelu_forward(c->t_act, (size_t)M * H);
    layernorm_forward(c->t, c->mean, c->rstd, c->t_act, w->ln_g, w->ln_b, M, H, ln_eps);
    linear_forward(c->probs, c->t, &dec, M, ACT_NONE);
    if (correct)
        for (int k = 0; k < M; k++) {
            const float *z = c->probs + (size_t)k * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (z[v] > z[best]) best = v;
            *correct += best == labels[k];
        }
    softmax_xent_forward(c->loss, c->probs, c->probs, c->labels, M, V);
    double sum = 0;
    for (int k = 0; k < M; k++) sum += c->loss[k];
    return (float)(sum / M);
}

void mlm_backward(mlm_ctx *c, mlm_weights *g, float *d_word_emb, float *d_hidden, const mlm_weights *w,
                  const float *word_emb, float scale) {
    const int M = c->M, H = w->hidden, V = w->vocab;
    if (M == 0) return;
    memset(c->g_logits, 0, sizeof(float) * (size_t)M * V);
    softmax_xent_backward(c->g_logits, c->probs, c->labels, scale / (float)M, M, V);
    memset(c->g_t, 0, sizeof(float) * (size_t)M * H);
    linear_backward(c->g_t, d_word_emb, g->bias, c->g_logits, c->t, word_emb, M, H, V);
    memset(c->g_act, 0, sizeof(float) * (size_t)M * H);
    layernorm_backward(c->g_act, g->ln_g, g->ln_b, c->g_t, c->t_act, c->mean, c->rstd, w->ln_g, M, H);
    gelu_backward(c->g_act, c->t_pre, c->g_act, (size_t)M * H);
    memset(c->g_x, 0, sizeof(float) * (size_t)M * H);
    linear_backward(c->g_x, g->dense_w, g->dense_b, c->g_act, c->x, w->dense_w, M, H, H);
    /* rows are distinct, so these adds do not collide */
    for (int k = 0; k < M; k++) {
        float *d = d_hidden + (size_t)c->rows[k] * H;
        const float *s = c->g_x + (size_t)k * H;
        for (int i = 0; i < H; i++) d[i] += s[i];
    }
}

static int copy_file(const char *src, const char *dst) {
    char *buf = NULL;
    size_t n = 0;
    if (adp_read_file(src, &buf, &n) != ADP_OK) return ADP_ERR;
    int rc = adp_write_file_atomic(dst, buf, n);
    free(buf);
    return rc;
}

int bert_backbone_save(const bert_model *m, const mlm_weights *head, const char *dir, const char *vocab_src) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return adp_seterr("%s: cannot create directory: %s", dir, strerror(errno));
    char path[4096];
    bert_param *ps, *hs = NULL;
    int n = bert_param_list(&m->cfg, &m->w, &ps), nh = head ? mlm_param_list(head, &hs) : 0;
    st_writer wr;
    st_writer_init(&wr);
    for (int i = 0; i < n; i++)
        if (ps[i].group == PARAM_CORE) st_writer_add(&wr, ps[i].name, ST_F32, ps[i].ptr, ps[i].ndim, ps[i].shape);
    for (int i = 0; i < nh; i++) st_writer_add(&wr, hs[i].name, ST_F32, hs[i].ptr, hs[i].ndim, hs[i].shape);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_writer_finish(&wr, path);
    free(ps);
    free(hs);
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

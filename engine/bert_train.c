/* bert_train.c: training forward and backward over packed batches (see bert_train.h).
 *
 * Forward, per layer l, as a flat list of op calls (HF BERT, post-LN, dropout sites marked):
 *   [drop at input]   x = x_in[kept]                    (strategy, then hook; logmask too)
 *   qkv  = x Wqkv^T + bqkv
 *   ctx  = attention(qkv, logmask)                    dropout on the probabilities
 *   pre1 = dropout(ctx Wo^T + bo) + x;    x1 = LN1(pre1)
 *   [drop after attention]   x1g = x1[kept]
 *   f    = gelu(f_pre = x1g W1^T + b1)
 *   pre2 = dropout(f W2^T + b2) + x1g;    x_out = LN2(pre2)
 * and the backward pass runs the same list in reverse, each op by its *_backward kernel
 * (engine/ops.h).  Gradient buffers are shared by all layers: one layer's backward at a
 * time. */
#include "bert_train.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "common.h"
#include "dropout.h"
#include "gemm.h"
#include "ops.h"

void bert_train_ctx_init(bert_train_ctx *c) { memset(c, 0, sizeof *c); }

static void layer_free(bert_train_layer *y) {
    free(y->x_in_own), free(y->keep_in), free(y->logmask_in), free(y->x_own), free(y->logmask_own), free(y->qkv);
    free(y->probs), free(y->ctx), free(y->pre1), free(y->mean1), free(y->rstd1), free(y->x1), free(y->keep_mid);
    free(y->x1g_own), free(y->f_pre), free(y->f), free(y->pre2), free(y->mean2), free(y->rstd2), free(y->d_in);
    free(y->d_logmask_in), free(y->off_in), free(y->off), free(y->off_ffn), free(y->pos_in), free(y->pos);
    free(y->pos_ffn), free(y->prob_off), free(y->x1_raw), free(y->scale_mid), free(y->out_raw), free(y->scale_out);
}

void bert_train_ctx_free(bert_train_ctx *c) {
    for (int l = 0; l < c->cap_layers; l++) layer_free(&c->layer[l]);
    free(c->layer);
    free(c->ids), free(c->types), free(c->pos0), free(c->off0), free(c->orig_len);
    free(c->emb_pre), free(c->emb_mean), free(c->emb_rstd), free(c->out);
    free(c->pool_in), free(c->pooled), free(c->pooled_drop), free(c->logits), free(c->layer_tokens), free(c->ffn_tokens);
    free(c->g_a), free(c->g_b), free(c->g_c), free(c->g_y), free(c->g_ctx), free(c->g_qkv), free(c->g_f), free(c->g_lm);
    free(c->g_pool), free(c->scratch), free(c->keep_tmp), free(c->flops_tmp), free(c->g_scale), free(c->g_pk);
    memset(c, 0, sizeof *c);
}

static size_t at_least_1(size_t n) { return n ? n : 1; }
#define GROW(ptr, n) ((ptr) = (free(ptr), alignedCheck(sizeof(*(ptr)) * at_least_1((size_t)(n)))))

/* Size everything for T0 tokens in n_seq sequences of at most max_len (only grows; a change
 * of model dims starts over). */
static void reserve(bert_train_ctx *c, const bert_config *cfg, size_t T0, int n_seq, int max_len, size_t probs_need,
                    int want_dgrads, int want_scales) {
    const int dims[5] = {cfg->hidden, cfg->inter, cfg->layers, cfg->heads, cfg->num_labels};
    if (memcmp(dims, c->dims, sizeof dims) != 0) {
        bert_train_ctx_free(c);
        memcpy(c->dims, dims, sizeof dims);
        c->layer = callocCheck((size_t)cfg->layers, sizeof(bert_train_layer));
        c->cap_layers = cfg->layers;
    }
    const size_t H = (size_t)cfg->hidden, I = (size_t)cfg->inter;
    const int L = cfg->layers, C = cfg->num_labels;
    if (T0 > c->cap_tokens) {
        GROW(c->ids, T0), GROW(c->types, T0), GROW(c->pos0, T0);
        GROW(c->emb_pre, T0 * H), GROW(c->emb_mean, T0), GROW(c->emb_rstd, T0), GROW(c->out, T0 * H);
        GROW(c->g_a, T0 * H), GROW(c->g_b, T0 * H), GROW(c->g_c, T0 * H), GROW(c->g_y, T0 * H);
        GROW(c->g_ctx, T0 * H), GROW(c->g_qkv, T0 * 3 * H), GROW(c->g_f, T0 * I), GROW(c->g_lm, T0);
        GROW(c->keep_tmp, T0);
        for (int l = 0; l < L; l++) {
            bert_train_layer *y = &c->layer[l];
            GROW(y->x_in_own, T0 * H), GROW(y->keep_in, T0), GROW(y->logmask_in, T0), GROW(y->x_own, T0 * H);
            GROW(y->logmask_own, T0), GROW(y->qkv, T0 * 3 * H), GROW(y->ctx, T0 * H), GROW(y->pre1, T0 * H);
            GROW(y->mean1, T0), GROW(y->rstd1, T0), GROW(y->x1, T0 * H), GROW(y->keep_mid, T0);
            GROW(y->x1g_own, T0 * H), GROW(y->f_pre, T0 * I), GROW(y->f, T0 * I), GROW(y->pre2, T0 * H);
            GROW(y->mean2, T0), GROW(y->rstd2, T0), GROW(y->d_logmask_in, T0);
            GROW(y->pos_in, T0), GROW(y->pos, T0), GROW(y->pos_ffn, T0);
            free(y->d_in), y->d_in = NULL;
        }
        c->cap_tokens = T0;
        c->cap_dgrads = c->cap_scales = 0;
    }
    if (want_dgrads && !c->cap_dgrads) {
        for (int l = 0; l < L; l++) GROW(c->layer[l].d_in, c->cap_tokens * H);
        c->cap_dgrads = 1;
    }
    if (want_scales && !c->cap_scales) {
        for (int l = 0; l < L; l++) {
            bert_train_layer *y = &c->layer[l];
            GROW(y->x1_raw, c->cap_tokens * H), GROW(y->scale_mid, c->cap_tokens);
            GROW(y->out_raw, c->cap_tokens * H), GROW(y->scale_out, c->cap_tokens);
        }
        GROW(c->g_scale, c->cap_tokens), GROW(c->g_pk, c->cap_tokens);
        c->cap_scales = 1;
    }
    for (int l = 0; l < L; l++)
        if (probs_need > c->layer[l].cap_probs) GROW(c->layer[l].probs, probs_need), c->layer[l].cap_probs = probs_need;
    size_t scratch = (size_t)omp_get_max_threads() * 2 * (size_t)max_len * (size_t)max_len + (size_t)cfg->heads * T0;
    if (scratch > c->cap_scratch) GROW(c->scratch, scratch), c->cap_scratch = scratch;
    if (n_seq > c->cap_seq) {
        GROW(c->off0, n_seq + 1), GROW(c->orig_len, n_seq), GROW(c->pool_in, (size_t)n_seq * H);
        GROW(c->pooled, (size_t)n_seq * H), GROW(c->pooled_drop, (size_t)n_seq * H);
        GROW(c->logits, (size_t)n_seq * C), GROW(c->layer_tokens, (size_t)n_seq * L);
        GROW(c->ffn_tokens, (size_t)n_seq * L), GROW(c->g_pool, (size_t)n_seq * 2 * H), GROW(c->flops_tmp, n_seq);
        for (int l = 0; l < L; l++) {
            bert_train_layer *y = &c->layer[l];
            GROW(y->off_in, n_seq + 1), GROW(y->off, n_seq + 1), GROW(y->off_ffn, n_seq + 1), GROW(y->prob_off, n_seq);
        }
        c->cap_seq = n_seq;
    }
}

static int validate(const bert_config *cfg, const bert_batch *b, int *max_len) {
    if (b->n_seq <= 0) return adp_seterr("empty batch");
    if (b->off[0] != 0) return adp_seterr("batch offsets must start at 0");
    *max_len = 0;
    for (int s = 0; s < b->n_seq; s++) {
        int n = b->off[s + 1] - b->off[s];
        if (n <= 0) return adp_seterr("sequence %d is empty (expected at least [CLS])", s);
        if (n > cfg->max_pos)
            return adp_seterr("sequence %d has %d tokens, more than max_position_embeddings %d", s, n, cfg->max_pos);
        *max_len = ADP_MAX(*max_len, n);
        for (int t = b->off[s]; t < b->off[s + 1]; t++) {
            if (b->ids[t] < 0 || b->ids[t] >= cfg->vocab_size)
                return adp_seterr("sequence %d, token %d: id %d outside the vocabulary [0, %d)", s, t - b->off[s],
                                  b->ids[t], cfg->vocab_size);
            if (b->types && (b->types[t] < 0 || b->types[t] >= cfg->type_vocab))
                return adp_seterr("sequence %d, token %d: token type %d outside [0, %d)", s, t - b->off[s],
                                  b->types[t], cfg->type_vocab);
        }
    }
    return ADP_OK;
}

/* Compact 1-D values (T) to the kept rows. */
static void gather_vals(float *dst, const float *src, const uint8_t *keep, int T) {
    int k = 0;
    for (int t = 0; t < T; t++)
        if (keep[t]) dst[k++] = src[t];
}

/* dst (T_in, d) = rows of src (T, d) put back at the kept positions, zero elsewhere. */
static void scatter_rows(float *dst, const float *src, const uint8_t *keep, int T_in, int d) {
    int k = 0;
    for (int t = 0; t < T_in; t++) {
        if (keep[t])
            memcpy(dst + (size_t)t * d, src + (size_t)(k++) * d, sizeof(float) * (size_t)d);
        else
            memset(dst + (size_t)t * d, 0, sizeof(float) * (size_t)d);
    }
}

/* One pruning point of the strategy: clears keep[] rows (keep arrives all ones). */
static int strategy_select(bert_train_ctx *c, const bert_config *cfg, int l, prune_point point, int want,
                           const int *off, const int32_t *pos, const float *hidden, const float *probs,
                           const size_t *prob_off, uint8_t *keep) {
    const bert_train_opts *o = &c->opts;
    prune_step st = {
        .layer = l, .n_layers = cfg->layers, .point = point, .n_seq = c->n_seq, .batch_first = o->batch_first,
        .off = off, .pos = pos, .orig_len = c->orig_len, .hidden = hidden, .hidden_size = cfg->hidden,
        .probs = want == PRUNE_ACT_WITH_PROBS ? probs : NULL, .prob_off = prob_off, .n_heads = cfg->heads,
        .input_ids = c->ids, .input_types = c->types, .input_off = c->off0,
    };
    if (o->prune->select(o->prune, &st, keep, c->flops_tmp) != ADP_OK)
        return adp_preferr("pruning strategy %s, layer %d: ", o->prune->name, l);
    return ADP_OK;
}

/* Force [CLS] to stay; returns the number of rows dropped. */
static int force_cls(uint8_t *keep, const int *off, int n_seq) {
    int dropped = 0;
    for (int s = 0; s < n_seq; s++) {
        keep[off[s]] = 1;
        for (int t = off[s]; t < off[s + 1]; t++) dropped += keep[t] == 0;
    }
    return dropped;
}

static bert_layer_view layer_view(const bert_train_ctx *c, const bert_config *cfg, int l) {
    const bert_train_layer *y = &c->layer[l];
    return (bert_layer_view){
        .layer = l, .n_layers = cfg->layers, .n_seq = c->n_seq, .T = y->T_in, .hidden_size = cfg->hidden,
        .off = y->off_in, .pos = y->pos_in, .orig_len = c->orig_len, .hidden = y->x_in, .keep = y->keep_in,
        .key_logmask = y->logmask_in,
    };
}

static bert_scale_view scale_view(const bert_train_ctx *c, const bert_config *cfg, int l, bert_scale_point pt) {
    const bert_train_layer *y = &c->layer[l];
    const int out = pt == BERT_SCALE_OUTPUT;
    return (bert_scale_view){
        .layer = l, .n_layers = cfg->layers, .point = pt, .n_seq = c->n_seq, .T = out ? y->Tf : y->T,
        .hidden_size = cfg->hidden, .n_heads = cfg->heads, .off = out ? y->off_ffn : y->off,
        .pos = out ? y->pos_ffn : y->pos, .orig_len = c->orig_len, .hidden = out ? y->out_raw : y->x1_raw,
        .scale = out ? y->scale_out : y->scale_mid, .T_attn = y->T, .attn_off = y->off, .attn_pos = y->pos,
        .probs = y->probs, .prob_off = y->prob_off,
    };
}

/* A row-scale point in the forward pass: keep the rows x (T, H) unscaled, ask the hook for
 * the factors, scale x in place. */
static int scale_rows(bert_train_ctx *c, const bert_config *cfg, int l, bert_scale_point pt, float *x) {
    bert_train_layer *y = &c->layer[l];
    const int out = pt == BERT_SCALE_OUTPUT, T = out ? y->Tf : y->T, H = cfg->hidden;
    float *raw = out ? y->out_raw : y->x1_raw, *sc = out ? y->scale_out : y->scale_mid;
    memcpy(raw, x, sizeof(float) * (size_t)T * H);
    for (int t = 0; t < T; t++) sc[t] = 1.0f;
    bert_scale_view v = scale_view(c, cfg, l, pt);
    if (c->opts.row_scale(c->opts.user, &v) != ADP_OK) return adp_preferr("layer %d row-scale hook: ", l);
#pragma omp parallel for schedule(static) if ((size_t)T * H > 65536)
    for (int t = 0; t < T; t++)
        for (int d = 0; d < H; d++) x[(size_t)t * H + d] = raw[(size_t)t * H + d] * sc[t];
    return ADP_OK;
}

/* Its backward: gx (T, H), the gradient of the scaled rows, becomes that of the unscaled
 * ones; d scale goes to the gradient hook, which may add to c->g_pk. */
static int scale_rows_backward(bert_train_ctx *c, const bert_config *cfg, int l, bert_scale_point pt, float *gx) {
    bert_train_layer *y = &c->layer[l];
    const int out = pt == BERT_SCALE_OUTPUT, T = out ? y->Tf : y->T, H = cfg->hidden;
    const float *raw = out ? y->out_raw : y->x1_raw, *sc = out ? y->scale_out : y->scale_mid;
#pragma omp parallel for schedule(static) if ((size_t)T * H > 65536)
    for (int t = 0; t < T; t++) {
        double dot = 0;
        float *g = gx + (size_t)t * H;
        for (int d = 0; d < H; d++) dot += (double)g[d] * raw[(size_t)t * H + d];
        c->g_scale[t] = (float)dot;
        for (int d = 0; d < H; d++) g[d] *= sc[t];
    }
    if (c->opts.row_scale_grad) {
        bert_scale_view v = scale_view(c, cfg, l, pt);
        if (c->opts.row_scale_grad(c->opts.user, &v, c->g_scale, c->g_pk) != ADP_OK)
            return adp_preferr("layer %d row-scale gradient hook: ", l);
    }
    return ADP_OK;
}

/* out (n, I) = gelu(inp), one chunk per thread while it is in cache. */
static void gelu_copy(float *out, const float *inp, size_t n) {
    const size_t chunk = 4096;
    const long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long k = 0; k < chunks; k++) {
        size_t i0 = (size_t)k * chunk, len = ADP_MIN(chunk, n - i0);
        memcpy(out + i0, inp + i0, sizeof(float) * len);
        gelu_inplace(out + i0, len);
    }
}

int bert_train_forward(bert_train_ctx *c, const bert_model *m, const bert_batch *b, const bert_train_opts *opts) {
    static const bert_train_opts no_opts = {0};
    const bert_config *cfg = &m->cfg;
    const int H = cfg->hidden, L = cfg->layers, A = cfg->heads, n_seq = b->n_seq;
    int max_len = 0;
    if (validate(cfg, b, &max_len) != ADP_OK) return ADP_ERR;
    const int T0 = b->off[n_seq];
    size_t probs_need = 0;
    for (int s = 0; s < n_seq; s++) probs_need += (size_t)A * (size_t)(b->off[s + 1] - b->off[s]) * (b->off[s + 1] - b->off[s]);
    const bert_train_opts *o = opts ? opts : &no_opts;
    reserve(c, cfg, (size_t)T0, n_seq, max_len, probs_need, o->keep_input_grads, o->row_scale != NULL);
    c->opts = *o;
    c->cfg = cfg;
    c->n_seq = n_seq, c->T0 = T0, c->max_len = max_len;
    const float ph = o->hidden_dropout, pa = o->attn_dropout, scale = 1.0f / sqrtf((float)(H / A));
    memcpy(c->ids, b->ids, sizeof(int32_t) * (size_t)T0);
    if (b->types)
        memcpy(c->types, b->types, sizeof(int32_t) * (size_t)T0);
    else
        memset(c->types, 0, sizeof(int32_t) * (size_t)T0);
    for (int s = 0; s <= n_seq; s++) c->off0[s] = b->off[s];
    for (int s = 0; s < n_seq; s++) {
        c->orig_len[s] = b->off[s + 1] - b->off[s];
        c->flops_tmp[s] = 0;
        for (int t = b->off[s]; t < b->off[s + 1]; t++) c->pos0[t] = t - b->off[s];
    }

    /* embeddings: emb_out = dropout(LN(word + type + position)) is layer 0's input */
    float *emb_out = c->layer[0].x_in_own;
    embedding_forward(c->emb_pre, c->ids, c->pos0, c->types, m->w.word_emb, m->w.pos_emb, m->w.type_emb, T0, H);
    layernorm_forward(emb_out, c->emb_mean, c->emb_rstd, c->emb_pre, m->w.emb_ln_g, m->w.emb_ln_b, T0, H, cfg->ln_eps);
    dropout_forward(emb_out, emb_out, (size_t)T0 * H, ph, dropout_key(o->seed, -1, DROP_SITE_EMB));

    const int *off = c->off0;
    const int32_t *pos = c->pos0;
    int T = T0;
    for (int l = 0; l < L; l++) {
        bert_train_layer *y = &c->layer[l];
        const bert_layer_w *w = &m->w.layer[l];
        const bert_layer_lin *lin = &m->lin[l];
        /* the layer's input rows and the drop before it */
        y->x_in = y->x_in_own;
        y->T_in = T;
        memcpy(y->off_in, off, sizeof(int) * (size_t)(n_seq + 1));
        memcpy(y->pos_in, pos, sizeof(int32_t) * (size_t)T);
        memset(y->keep_in, 1, (size_t)T);
        memset(y->logmask_in, 0, sizeof(float) * (size_t)T);
        int want = o->prune ? o->prune->wants(o->prune, l, PRUNE_AT_INPUT) : PRUNE_SKIP;
        if (want != PRUNE_SKIP && strategy_select(c, cfg, l, PRUNE_AT_INPUT, PRUNE_ACT, y->off_in, y->pos_in, y->x_in,
                                                  NULL, NULL, y->keep_in) != ADP_OK)
            return ADP_ERR;
        if (o->layer_input) {
            bert_layer_view v = layer_view(c, cfg, l);
            if (o->layer_input(o->user, &v) != ADP_OK) return adp_preferr("layer %d input hook: ", l);
        }
        y->dropped_in = force_cls(y->keep_in, y->off_in, n_seq);
        if (y->dropped_in) {
            prune_gather(y->x_own, y->pos, y->off, y->x_in, y->pos_in, y->off_in, n_seq, H, y->keep_in);
            gather_vals(y->logmask_own, y->logmask_in, y->keep_in, T);
            y->x = y->x_own, y->logmask = y->logmask_own;
        } else {
            memcpy(y->off, y->off_in, sizeof(int) * (size_t)(n_seq + 1));
            memcpy(y->pos, y->pos_in, sizeof(int32_t) * (size_t)T);
            y->x = y->x_in, y->logmask = y->logmask_in;
        }
        T = y->T = y->off[n_seq];
        for (int s = 0; s < n_seq; s++) c->layer_tokens[s * L + l] = y->off[s + 1] - y->off[s];

        /* attention block */
        linear_forward(y->qkv, y->x, &lin->qkv, T, ACT_NONE);
        size_t po = 0;
        for (int s = 0; s < n_seq; s++) {
            size_t n = (size_t)(y->off[s + 1] - y->off[s]);
            y->prob_off[s] = po;
            po += (size_t)A * n * n;
        }
        attention_forward_train(y->ctx, y->probs, y->prob_off, y->qkv, y->off, n_seq, H, A, scale,
                                o->layer_input ? y->logmask : NULL, pa, dropout_key(o->seed, l, DROP_SITE_PROBS),
                                c->scratch);
        linear_forward(y->pre1, y->ctx, &lin->o, T, ACT_NONE);
        dropout_forward(y->pre1, y->pre1, (size_t)T * H, ph, dropout_key(o->seed, l, DROP_SITE_ATTN_OUT));
        residual_layernorm_forward(y->x1, y->pre1, y->mean1, y->rstd1, y->pre1, y->x, w->ln1_g, w->ln1_b, T, H,
                                   cfg->ln_eps);
        if (o->row_scale && scale_rows(c, cfg, l, BERT_SCALE_ATTENTION, y->x1) != ADP_OK) return ADP_ERR;

        /* the drop after attention */
        memset(y->keep_mid, 1, (size_t)T);
        want = o->prune ? o->prune->wants(o->prune, l, PRUNE_AFTER_ATTENTION) : PRUNE_SKIP;
        if (want != PRUNE_SKIP && strategy_select(c, cfg, l, PRUNE_AFTER_ATTENTION, want, y->off, y->pos, y->x1,
                                                  y->probs, y->prob_off, y->keep_mid) != ADP_OK)
            return ADP_ERR;
        y->dropped_mid = want != PRUNE_SKIP ? force_cls(y->keep_mid, y->off, n_seq) : 0;
        if (y->dropped_mid) {
            prune_gather(y->x1g_own, y->pos_ffn, y->off_ffn, y->x1, y->pos, y->off, n_seq, H, y->keep_mid);
            y->x1g = y->x1g_own;
        } else {
            memcpy(y->off_ffn, y->off, sizeof(int) * (size_t)(n_seq + 1));
            memcpy(y->pos_ffn, y->pos, sizeof(int32_t) * (size_t)T);
            y->x1g = y->x1;
        }
        const int Tf = y->Tf = y->off_ffn[n_seq];
        for (int s = 0; s < n_seq; s++) c->ffn_tokens[s * L + l] = y->off_ffn[s + 1] - y->off_ffn[s];

        /* feed-forward block */
        linear_forward(y->f_pre, y->x1g, &lin->ffn1, Tf, ACT_NONE);
        gelu_copy(y->f, y->f_pre, (size_t)Tf * cfg->inter);
        linear_forward(y->pre2, y->f, &lin->ffn2, Tf, ACT_NONE);
        dropout_forward(y->pre2, y->pre2, (size_t)Tf * H, ph, dropout_key(o->seed, l, DROP_SITE_FFN_OUT));
        float *x_out = l + 1 < L ? c->layer[l + 1].x_in_own : c->out;
        residual_layernorm_forward(x_out, y->pre2, y->mean2, y->rstd2, y->pre2, y->x1g, w->ln2_g, w->ln2_b, Tf, H,
                                   cfg->ln_eps);
        if (o->row_scale && scale_rows(c, cfg, l, BERT_SCALE_OUTPUT, x_out) != ADP_OK) return ADP_ERR;
        off = y->off_ffn, pos = y->pos_ffn, T = Tf;
    }
    c->T_out = T, c->off_out = off, c->pos_out = pos;

    /* pooler and classifier on each sequence's [CLS] row */
    for (int s = 0; s < n_seq; s++)
        memcpy(c->pool_in + (size_t)s * H, c->out + (size_t)off[s] * H, sizeof(float) * (size_t)H);
    linear_forward(c->pooled, c->pool_in, &m->pool, n_seq, ACT_NONE);
    tanh_forward(c->pooled, n_seq * H);
    dropout_forward(c->pooled_drop, c->pooled, (size_t)n_seq * H, ph, dropout_key(o->seed, L, DROP_SITE_POOLER));
    linear_forward(c->logits, c->pooled_drop, &m->cls, n_seq, ACT_NONE);
    return ADP_OK;
}

/* A shared gradient buffer that is neither a nor b. */
static float *free_buf(bert_train_ctx *c, const float *a, const float *b) {
    float *bufs[3] = {c->g_a, c->g_b, c->g_c};
    for (int i = 0; i < 3; i++)
        if (bufs[i] != a && bufs[i] != b) return bufs[i];
    ASSERT(0);
    return NULL;
}

#define GW(field) (gw ? gw->field : NULL)

int bert_train_backward(bert_train_ctx *c, const bert_model *m, bert_weights *g, const float *d_logits,
                        const float *d_out) {
    const bert_config *cfg = &m->cfg;
    const bert_train_opts *o = &c->opts;
    const int H = cfg->hidden, I = cfg->inter, L = cfg->layers, A = cfg->heads, C = cfg->num_labels, n_seq = c->n_seq;
    const float ph = o->hidden_dropout, pa = o->attn_dropout, scale = 1.0f / sqrtf((float)(H / A));

    /* gradient with respect to the final rows */
    float *gx = c->g_a;
    if (d_out)
        memcpy(gx, d_out, sizeof(float) * (size_t)c->T_out * H);
    else
        memset(gx, 0, sizeof(float) * (size_t)c->T_out * H);
    if (d_logits) {
        float *gpd = c->g_pool, *gpi = c->g_pool + (size_t)n_seq * H;
        memset(c->g_pool, 0, sizeof(float) * (size_t)n_seq * 2 * H);
        linear_backward(gpd, g ? g->cls_w : NULL, g ? g->cls_b : NULL, d_logits, c->pooled_drop, m->w.cls_w, n_seq, H, C);
        dropout_backward(gpd, gpd, (size_t)n_seq * H, ph, dropout_key(o->seed, L, DROP_SITE_POOLER));
        tanh_backward(gpd, c->pooled, gpd, n_seq * H);
        linear_backward(gpi, g ? g->pool_w : NULL, g ? g->pool_b : NULL, gpd, c->pool_in, m->w.pool_w, n_seq, H, H);
        for (int s = 0; s < n_seq; s++) {
            float *r = gx + (size_t)c->off_out[s] * H;
            const float *q = gpi + (size_t)s * H;
            for (int i = 0; i < H; i++) r[i] += q[i];
        }
    }

    for (int l = L - 1; l >= 0; l--) {
        bert_train_layer *y = &c->layer[l];
        const bert_layer_w *w = &m->w.layer[l];
        bert_layer_w *gw = g ? &g->layer[l] : NULL;
        const int T_in = y->T_in, T = y->T, Tf = y->Tf;
        /* feed-forward block: gx is d x_out (Tf rows) */
        if (o->row_scale) {
            memset(c->g_pk, 0, sizeof(float) * (size_t)T);
            if (scale_rows_backward(c, cfg, l, BERT_SCALE_OUTPUT, gx) != ADP_OK) return ADP_ERR;
        }
        float *gp = free_buf(c, gx, NULL);
        memset(gp, 0, sizeof(float) * (size_t)Tf * H);
        layernorm_backward(gp, GW(ln2_g), GW(ln2_b), gx, y->pre2, y->mean2, y->rstd2, w->ln2_g, Tf, H);
        dropout_backward(c->g_y, gp, (size_t)Tf * H, ph, dropout_key(o->seed, l, DROP_SITE_FFN_OUT));
        memset(c->g_f, 0, sizeof(float) * (size_t)Tf * I);
        linear_backward(c->g_f, GW(w2), GW(b2), c->g_y, y->f, w->w2, Tf, I, H);
        gelu_backward(c->g_f, y->f_pre, c->g_f, (size_t)Tf * I);
        linear_backward(gp, GW(w1), GW(b1), c->g_f, y->x1g, w->w1, Tf, H, I); /* gp: d x1g, residual included */
        /* back through the drop after attention */
        float *g1 = gp;
        if (y->dropped_mid) {
            g1 = free_buf(c, gp, NULL);
            scatter_rows(g1, gp, y->keep_mid, T, H);
        }
        if (o->row_scale && scale_rows_backward(c, cfg, l, BERT_SCALE_ATTENTION, g1) != ADP_OK) return ADP_ERR;
        /* attention block */
        float *g2 = free_buf(c, g1, NULL);
        memset(g2, 0, sizeof(float) * (size_t)T * H);
        layernorm_backward(g2, GW(ln1_g), GW(ln1_b), g1, y->pre1, y->mean1, y->rstd1, w->ln1_g, T, H);
        dropout_backward(c->g_y, g2, (size_t)T * H, ph, dropout_key(o->seed, l, DROP_SITE_ATTN_OUT));
        memset(c->g_ctx, 0, sizeof(float) * (size_t)T * H);
        linear_backward(c->g_ctx, GW(wo), GW(bo), c->g_y, y->ctx, w->wo, T, H, H);
        float *glm = o->layer_input ? c->g_lm : NULL;
        if (glm) memset(glm, 0, sizeof(float) * (size_t)T);
        attention_backward(c->g_qkv, glm, c->g_ctx, o->row_scale ? c->g_pk : NULL, y->qkv, y->probs, y->prob_off,
                           y->off, n_seq, H, A, scale, pa,
                           dropout_key(o->seed, l, DROP_SITE_PROBS), c->scratch);
        linear_backward(g2, GW(wqkv), GW(bqkv), c->g_qkv, y->x, w->wqkv, T, H, 3 * H); /* g2: d x, residual included */
        /* back through the drop at the input */
        float *gin = g2;
        memset(y->d_logmask_in, 0, sizeof(float) * (size_t)T_in);
        if (y->dropped_in) {
            gin = free_buf(c, g2, NULL);
            scatter_rows(gin, g2, y->keep_in, T_in, H);
            if (glm) {
                int k = 0;
                for (int t = 0; t < T_in; t++)
                    if (y->keep_in[t]) y->d_logmask_in[t] = glm[k++];
            }
        } else if (glm) {
            memcpy(y->d_logmask_in, glm, sizeof(float) * (size_t)T_in);
        }
        if (o->layer_input_grad) {
            bert_layer_view v = layer_view(c, cfg, l);
            if (o->layer_input_grad(o->user, &v, gin, y->d_logmask_in) != ADP_OK)
                return adp_preferr("layer %d input gradient hook: ", l);
        }
        if (o->keep_input_grads) memcpy(y->d_in, gin, sizeof(float) * (size_t)T_in * H);
        gx = gin;
    }

    /* embeddings: gx is d emb_out */
    if (g) {
        dropout_backward(gx, gx, (size_t)c->T0 * H, ph, dropout_key(o->seed, -1, DROP_SITE_EMB));
        float *gp = free_buf(c, gx, NULL);
        memset(gp, 0, sizeof(float) * (size_t)c->T0 * H);
        layernorm_backward(gp, g->emb_ln_g, g->emb_ln_b, gx, c->emb_pre, c->emb_mean, c->emb_rstd, m->w.emb_ln_g,
                           c->T0, H);
        embedding_backward(g->word_emb, g->pos_emb, g->type_emb, gp, c->ids, c->pos0, c->types, c->T0, H);
    }
    return ADP_OK;
}

const float *bert_train_hidden(const bert_train_ctx *c, int l, int *T, const int **off, const int32_t **pos) {
    const int L = c->dims[2];
    ASSERT(l >= 0 && l <= L);
    if (l == L) {
        if (T) *T = c->T_out;
        if (off) *off = c->off_out;
        if (pos) *pos = c->pos_out;
        return c->out;
    }
    const bert_train_layer *y = &c->layer[l];
    if (T) *T = y->T_in;
    if (off) *off = y->off_in;
    if (pos) *pos = y->pos_in;
    return y->x_in;
}

const float *bert_train_hidden_grad(const bert_train_ctx *c, int l) {
    ASSERT(l >= 0 && l < c->dims[2]);
    ASSERT(c->opts.keep_input_grads && c->layer[l].d_in);
    return c->layer[l].d_in;
}

const float *bert_train_logmask_grad(const bert_train_ctx *c, int l) {
    ASSERT(l >= 0 && l < c->dims[2]);
    return c->layer[l].d_logmask_in;
}

int bert_logit_grads(bert_train_ctx *c, const bert_model *m, const bert_batch *b, const int32_t *cls,
                     const bert_train_opts *opts) {
    bert_train_opts o = opts ? *opts : (bert_train_opts){0};
    o.hidden_dropout = o.attn_dropout = 0.0f;
    o.keep_input_grads = 1;
    const int C = m->cfg.num_labels;
    for (int s = 0; s < b->n_seq; s++)
        if (cls[s] < 0 || cls[s] >= C) return adp_seterr("sequence %d: class %d outside [0, %d)", s, cls[s], C);
    if (bert_train_forward(c, m, b, &o) != ADP_OK) return ADP_ERR;
    float *d = callocCheck((size_t)b->n_seq * C, sizeof(float));
    for (int s = 0; s < b->n_seq; s++) d[(size_t)s * C + cls[s]] = 1.0f;
    int rc = bert_train_backward(c, m, NULL, d, NULL);
    free(d);
    return rc;
}

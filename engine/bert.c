/* bert.c: BertForSequenceClassification forward over a packed batch, as a flat list of
 * op calls per layer, with the pruning step as one more op (gather kept rows).
 *
 *   x = LayerNorm(word[ids] + type[types] + pos[positions])
 *   for each layer l:
 *       [prune at input]            x <- x[kept rows]
 *       qkv = x Wqkv^T + bqkv        (T, 3H)
 *       c   = attention(qkv)         per (sequence, head)
 *       x   = LayerNorm(c Wo^T + bo + x)
 *       [prune after attention]     x <- x[kept rows]
 *       f   = gelu(x W1^T + b1)      (T, I)
 *       x   = LayerNorm(f W2^T + b2 + x)
 *   logits = tanh(x[CLS] Wp^T + bp) Wc^T + bc
 */
#include "bert.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "flops.h"
#include "gemm.h"
#include "ops.h"

void bert_ctx_init(bert_ctx *c) {
    memset(c, 0, sizeof *c);
    adp_barrier_init(&c->bar);
}

void bert_ctx_free(bert_ctx *c) {
    free(c->x), free(c->x_alt), free(c->y), free(c->qkv), free(c->ctxv), free(c->ffn), free(c->scratch);
    free(c->priv), free(c->pair);
    free(c->scores), free(c->probs), free(c->pool_in), free(c->pooled);
    free(c->pos), free(c->pos_alt), free(c->pos_ids);
    free(c->off), free(c->off_alt), free(c->orig_len), free(c->prob_off), free(c->keep);
    free(c->logits), free(c->layer_tokens), free(c->ffn_tokens), free(c->drop_stage), free(c->flops);
    memset(c, 0, sizeof *c);
    adp_barrier_init(&c->bar);
}

/* A merged layer with at most this many tokens in the batch runs its attention and first
 * LayerNorm on every thread of the team, each into a buffer of its own (c->priv), instead
 * of splitting them and meeting at a barrier after each: four barriers a layer, not six.
 * The redundant work is a few rows.  Small shape at batch 1, half weights, 7 alternating
 * runs: a layer on 2-3 tokens 3% faster, on 5-8 1-2%; from 13 tokens no change. */
#define SMALL_LAYER_TOKENS 16

/* A layer on at most this many tokens, with two threads, runs as layer_pair. */
#define PAIR_MAX_TOKENS 16

#define GROW(ptr, n) ((ptr) = (free(ptr), alignedCheck(sizeof(*(ptr)) * (size_t)(n))))

/* Size the arena for T tokens and n_seq sequences (only grows). */
static void ctx_reserve(bert_ctx *c, const bert_config *cfg, size_t T, int n_seq, int max_len) {
    size_t H = (size_t)cfg->hidden, I = (size_t)cfg->inter;
    if (T > c->cap_tokens) {
        GROW(c->x, T * H), GROW(c->x_alt, T * H), GROW(c->y, T * H), GROW(c->qkv, T * 3 * H);
        GROW(c->ctxv, T * H), GROW(c->ffn, T * I), GROW(c->pos, T), GROW(c->pos_alt, T), GROW(c->pos_ids, T);
        GROW(c->keep, T), GROW(c->drop_stage, T), GROW(c->scores, T);
        c->cap_tokens = T;
    }
    size_t priv = (size_t)omp_get_max_threads() * 2 * SMALL_LAYER_TOKENS * H;
    if (priv > c->cap_priv) {
        GROW(c->priv, priv);
        c->cap_priv = priv;
    }
    if ((size_t)5 * PAIR_MAX_TOKENS * H > c->cap_pair) {
        GROW(c->pair, (size_t)5 * PAIR_MAX_TOKENS * H);
        c->cap_pair = (size_t)5 * PAIR_MAX_TOKENS * H;
    }
    size_t scratch = (size_t)omp_get_max_threads() * (size_t)max_len * (size_t)max_len;
    if (scratch > c->cap_scratch) {
        GROW(c->scratch, scratch);
        c->cap_scratch = scratch;
    }
    if (n_seq > c->cap_seq || cfg->num_labels > c->cap_labels || cfg->layers > c->cap_layers) {
        int ns = ADP_MAX(n_seq, c->cap_seq), nl = ADP_MAX(cfg->num_labels, c->cap_labels);
        int L = ADP_MAX(cfg->layers, c->cap_layers);
        GROW(c->off, ns + 1), GROW(c->off_alt, ns + 1), GROW(c->orig_len, ns), GROW(c->prob_off, ns);
        GROW(c->pool_in, (size_t)ns * H), GROW(c->pooled, (size_t)ns * H), GROW(c->logits, (size_t)ns * nl);
        GROW(c->layer_tokens, (size_t)ns * L), GROW(c->ffn_tokens, (size_t)ns * L), GROW(c->flops, ns);
        c->cap_seq = ns, c->cap_labels = nl, c->cap_layers = L;
    }
}

static int validate_batch(const bert_model *m, const bert_batch *b, int *max_len) {
    const bert_config *c = &m->cfg;
    if (b->n_seq <= 0) return adp_seterr("empty batch");
    if (b->off[0] != 0) return adp_seterr("batch offsets must start at 0");
    *max_len = 0;
    for (int s = 0; s < b->n_seq; s++) {
        int n = b->off[s + 1] - b->off[s];
        if (n <= 0) return adp_seterr("sequence %d is empty (expected at least [CLS])", s);
        if (n > c->max_pos)
            return adp_seterr("sequence %d has %d tokens, more than max_position_embeddings %d", s, n, c->max_pos);
        if (n > 255 * 255) return adp_seterr("sequence %d too long", s);
        *max_len = ADP_MAX(*max_len, n);
        for (int t = b->off[s]; t < b->off[s + 1]; t++) {
            if (b->ids[t] < 0 || b->ids[t] >= c->vocab_size)
                return adp_seterr("sequence %d, token %d: id %d outside the vocabulary [0, %d)", s, t - b->off[s],
                                  b->ids[t], c->vocab_size);
            if (b->types && (b->types[t] < 0 || b->types[t] >= c->type_vocab))
                return adp_seterr("sequence %d, token %d: token type %d outside [0, %d)", s, t - b->off[s],
                                  b->types[t], c->type_vocab);
        }
    }
    return ADP_OK;
}

/* One pruning point: ask the strategy, force [CLS], gather if anything was dropped.
 * Swaps ctx->x with ctx->x_alt when rows move.  Returns ADP_OK or the strategy's error. */
static int prune_point_run(bert_ctx *c, const bert_model *m, const bert_run_opts *o, int layer, prune_point point,
                           int want, const bert_batch *b) {
    const int n_seq = b->n_seq, *in_off = b->off;
    const bert_config *cfg = &m->cfg;
    int T = c->off[n_seq];
    memset(c->keep, 1, (size_t)T);
    prune_step st = {
        .layer = layer, .n_layers = cfg->layers, .point = point, .n_seq = n_seq, .batch_first = o->batch_first,
        .off = c->off, .pos = c->pos, .orig_len = c->orig_len, .hidden = c->x, .hidden_size = cfg->hidden,
        .probs = want == PRUNE_ACT_WITH_PROBS ? c->probs : NULL, .prob_off = c->prob_off, .n_heads = cfg->heads,
        .input_ids = b->ids, .input_types = b->types, .input_off = b->off,
        .scores = point == PRUNE_AT_INPUT && c->scores_layer == layer ? c->scores : NULL,
    };
    c->scores_layer = -1;
    if (o->prune->select(o->prune, &st, c->keep, c->flops) != ADP_OK)
        return adp_preferr("pruning strategy %s, layer %d: ", o->prune->name, layer);
    int dropped = 0;
    for (int s = 0; s < n_seq; s++) {
        c->keep[c->off[s]] = 1; /* [CLS] always stays */
        for (int t = c->off[s]; t < c->off[s + 1]; t++)
            if (!c->keep[t]) {
                c->drop_stage[in_off[s] + c->pos[t]] = (uint8_t)(2 * layer + point);
                dropped++;
            }
    }
    if (!dropped) return ADP_OK;
    prune_gather(c->x_alt, c->pos_alt, c->off_alt, c->x, c->pos, c->off, n_seq, cfg->hidden, c->keep);
    float *tx = c->x;
    c->x = c->x_alt, c->x_alt = tx;
    int32_t *tp = c->pos;
    c->pos = c->pos_alt, c->pos_alt = tp;
    int *to = c->off;
    c->off = c->off_alt, c->off_alt = to;
    return ADP_OK;
}

/* Inside a parallel region: this thread's share of rows [0, T) scored for `layer`'s input
 * (prune.h score_rows): contiguous, split as libgomp splits the LayerNorm's static row loop,
 * so the rows are the ones this thread has just written (any split gives the same scores). */
static void score_share(const prune_strategy *ps, int layer, const float *x, int H, int T, float *scores) {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num(), q = T / nt, r = T % nt;
    const int r0 = id * q + ADP_MIN(id, r), r1 = r0 + q + (id < r);
    if (r1 > r0) ps->score_rows(ps, layer, x, H, r0, r1, scores);
}

/* Does the strategy act at layer l's input and offer score_rows for it? */
static int score_in_team(const bert_run_opts *o, int l) {
    return o->prune && o->prune->score_rows && o->prune->wants(o->prune, l, PRUNE_AT_INPUT) != PRUNE_SKIP;
}

/* Below this many rows, scoring the first layer's input on one thread costs less than
 * waking the team for it (about 0.13 us a row for AdapLeR's predictor, 1 us a wake-up). */
#define SCORE_TEAM_MIN_ROWS 16

/* Layer l's ops can run as one team (see bert_forward): packed weights, several threads,
 * and not switched off with ADAPLER_TEAM=0 (to compare). */
static int layer_team_ok(const bert_model *m, int l) {
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("ADAPLER_TEAM");
        env = !(e && !strcmp(e, "0"));
    }
    const bert_layer_lin *lin = &m->lin[l];
    return env && adp_get_threads() > 1 && linear_team_ok(&lin->qkv) && linear_team_ok(&lin->o) &&
           linear_team_ok(&lin->ffn1) && linear_team_ok(&lin->ffn2);
}

/* Before layer l: prune its input if the strategy acts there, and count the tokens that
 * enter it.  Returns ADP_OK or the strategy's error. */
static int layer_enter(bert_ctx *c, const bert_model *m, const bert_run_opts *o, int l, const bert_batch *b) {
    const int L = m->cfg.layers;
    if (o->prune && o->prune->wants(o->prune, l, PRUNE_AT_INPUT) != PRUNE_SKIP &&
        prune_point_run(c, m, o, l, PRUNE_AT_INPUT, PRUNE_ACT, b))
        return ADP_ERR;
    for (int s = 0; s < b->n_seq; s++) c->layer_tokens[s * L + l] = c->off[s + 1] - c->off[s];
    return ADP_OK;
}

/* Layer l's attention block on every thread of the enclosing region, T tokens in c->x; when
 * `merged` also its feed-forward block and, with `score_next`, the next layer's scores.
 * Each op ends at a barrier (bar: barrier.h) but the last: the caller's region end or
 * barrier is that one (a thread's share of LN2's rows is also the share it scores). */
static void layer_team(bert_ctx *c, const bert_model *m, const bert_run_opts *o, int l, int T, float *probs,
                       int merged, int score_next, adp_barrier *bar) {
    const bert_config *cfg = &m->cfg;
    const bert_layer_w *w = &m->w.layer[l];
    const bert_layer_lin *lin = &m->lin[l];
    const int H = cfg->hidden, n_seq = c->n_seq;
    const float scale = 1.0f / sqrtf((float)(H / cfg->heads));
    float *x = c->x;
    const int small = merged && T <= SMALL_LAYER_TOKENS && !probs;
    /* few tokens: this thread's own attention output and LN1 (SMALL_LAYER_TOKENS) */
    float *ctxp = small ? c->priv + (size_t)omp_get_thread_num() * 2 * SMALL_LAYER_TOKENS * H : c->ctxv;
    float *h = small ? ctxp + (size_t)SMALL_LAYER_TOKENS * H : x; /* LN1's output */
    linear_forward_team(c->qkv, x, &lin->qkv, T, ACT_NONE, bar);
    if (small)
        attention_forward_serial(ctxp, c->qkv, c->off, n_seq, H, cfg->heads, 0, cfg->heads, scale, c->scratch);
    else
        attention_forward_team(ctxp, probs, c->prob_off, c->qkv, c->off, n_seq, H, cfg->heads, scale, NULL,
                               c->scratch, bar);
    linear_forward_team(c->y, ctxp, &lin->o, T, ACT_NONE, bar);
    if (small) /* x keeps the layer input until LN2 */
        residual_layernorm_forward_serial(h, c->y, x, w->ln1_g, w->ln1_b, T, H, cfg->ln_eps);
    else
        residual_layernorm_forward_team(x, c->y, x, w->ln1_g, w->ln1_b, T, H, cfg->ln_eps, merged, bar);
    if (merged) {
        linear_forward_team(c->ffn, h, &lin->ffn1, T, ACT_GELU, bar);
        linear_forward_team(c->y, c->ffn, &lin->ffn2, T, ACT_NONE, bar);
        residual_layernorm_forward_team(x, c->y, h, w->ln2_g, w->ln2_b, T, H, cfg->ln_eps, 0, bar);
        if (score_next) score_share(o->prune, l + 1, x, H, T, c->scores);
    }
}

/* Layer l's feed-forward block (not merged) on every thread of the enclosing region. */
static void ffn_team(bert_ctx *c, const bert_model *m, const bert_run_opts *o, int l, int T, int score_next,
                     adp_barrier *bar) {
    const bert_config *cfg = &m->cfg;
    const bert_layer_w *w = &m->w.layer[l];
    const bert_layer_lin *lin = &m->lin[l];
    float *x = c->x;
    linear_forward_team(c->ffn, x, &lin->ffn1, T, ACT_GELU, bar);
    linear_forward_team(c->y, c->ffn, &lin->ffn2, T, ACT_NONE, bar);
    residual_layernorm_forward_team(x, c->y, x, w->ln2_g, w->ln2_b, T, cfg->hidden, cfg->ln_eps, 0, bar);
    if (score_next) score_share(o->prune, l + 1, x, cfg->hidden, T, c->scores);
}

/* Does layer l on T tokens run as layer_pair in the enclosing region (after prunings, not
 * before: T is the count entering it)?  Two threads, at most PAIR_MAX_TOKENS tokens, no
 * attention probabilities kept, an even head count whose two halves are whole panels, the
 * two split projections split there, and not switched off with ADAPLER_PAIR=0 (to compare). */
static int pair_ok(const bert_model *m, int l, int T) {
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("ADAPLER_PAIR");
        env = !(e && !strcmp(e, "0"));
    }
    const bert_config *cfg = &m->cfg;
    const int H = cfg->hidden, I = cfg->inter;
    return env && omp_get_num_threads() == 2 && T <= PAIR_MAX_TOKENS && cfg->heads % 2 == 0 &&
           (H / 2) % GEMM_PANEL == 0 && (I / 2) % GEMM_PANEL == 0 && m->lin[l].o.k_split == H / 2 &&
           m->lin[l].ffn2.k_split == I / 2;
}

/* Layer l (attention and feed-forward blocks) on the two threads of the enclosing region,
 * with two barriers inside where layer_team has four to six, for the few-token layers of
 * a pruned pass at batch 1, where a barrier and the two threads' skew at it cost as much
 * as an op.  Thread i takes half i of the heads: their Q, K and V columns (whole panels),
 * their attention, and the attention output projection over their context columns, k in
 * half i (gemm.h k_split: the layer's other paths sum the same two halves, so the sum of
 * the two threads' parts is their product bit for bit).  Barrier; both threads form LN1 of
 * all T rows, each into a buffer of its own; thread i computes half i of the FFN's inner
 * columns and the second projection over exactly those (its k half).  Barrier; each
 * thread forms LN2 of its share of the rows into c->x and, with score_next, their scores
 * for the next layer; the caller's barrier ends the layer, as it ends layer_team's.  (The
 * master forming every row alone while the other thread waited was 0.5-1 point of
 * wall/FLOPs slower at SST-2's kept point in five alternating runs, the same at
 * HateXplain's.)  Same bytes as layer_team. */
static void layer_pair(bert_ctx *c, const bert_model *m, const bert_run_opts *o, int l, int T, int score_next,
                       adp_barrier *bar) {
    const bert_config *cfg = &m->cfg;
    const bert_layer_w *w = &m->w.layer[l];
    const bert_layer_lin *lin = &m->lin[l];
    const int H = cfg->hidden, I = cfg->inter, id = omp_get_thread_num();
    const int hp = H / 2 / GEMM_PANEL, ip = I / 2 / GEMM_PANEL; /* panels a half */
    const float scale = 1.0f / sqrtf((float)(H / cfg->heads));
    const size_t slot = (size_t)PAIR_MAX_TOKENS * H;
    float *o_part = c->pair, *f_low = c->pair + slot, *f_part = c->pair + 2 * slot, *h = c->pair + (3 + id) * slot;
    const int part = id ? GEMM_K_HIGH : GEMM_K_LOW;
    for (int q = 0; q < 3; q++) /* this half's heads in Q, K and V */
        linear_forward_part(c->qkv, c->x, &lin->qkv, T, q * 2 * hp + id * hp, q * 2 * hp + (id + 1) * hp, ACT_NONE,
                            GEMM_K_ALL);
    attention_forward_serial(c->ctxv, c->qkv, c->off, c->n_seq, H, cfg->heads, id * cfg->heads / 2,
                             (id + 1) * cfg->heads / 2, scale, c->scratch);
    linear_forward_part(id ? o_part : c->y, c->ctxv, &lin->o, T, 0, 2 * hp, ACT_NONE, part);
    adp_team_sync(bar);
    for (size_t i = 0; i < (size_t)T * H; i++) h[i] = c->y[i] + o_part[i]; /* = the whole product */
    residual_layernorm_forward_serial(h, h, c->x, w->ln1_g, w->ln1_b, T, H, cfg->ln_eps);
    linear_forward_part(c->ffn, h, &lin->ffn1, T, id * ip, (id + 1) * ip, ACT_GELU, GEMM_K_ALL);
    linear_forward_part(id ? f_part : f_low, c->ffn, &lin->ffn2, T, 0, 2 * hp, ACT_NONE, part);
    adp_team_sync(bar);
    const int r0 = id ? (T + 1) / 2 : 0, r1 = id ? T : (T + 1) / 2; /* as score_share splits rows */
    float *xr = c->x + (size_t)r0 * H;
    for (size_t i = (size_t)r0 * H; i < (size_t)r1 * H; i++) c->x[i] = f_low[i] + f_part[i];
    residual_layernorm_forward_serial(xr, xr, h + (size_t)r0 * H, w->ln2_g, w->ln2_b, r1 - r0, H, cfg->ln_eps);
    if (score_next && r1 > r0) o->prune->score_rows(o->prune, l + 1, c->x, H, r0, r1, c->scores);
}

/* Can the whole pass run as one parallel region (forward_one_region)?  Every layer as a
 * team, nothing pruned between a layer's two blocks, a strategy (if any) that scores in the
 * team or whose select() is light (prune.h), no hook; and not switched off with
 * ADAPLER_ONE_REGION=0 (to compare). */
static int one_region_ok(const bert_model *m, const bert_run_opts *o) {
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("ADAPLER_ONE_REGION");
        env = !(e && !strcmp(e, "0"));
    }
    if (!env || o->hook) return 0;
    for (int l = 0; l < m->cfg.layers; l++) {
        if (!layer_team_ok(m, l)) return 0;
        if (o->prune && (o->prune->wants(o->prune, l, PRUNE_AFTER_ATTENTION) != PRUNE_SKIP ||
                         (o->prune->wants(o->prune, l, PRUNE_AT_INPUT) != PRUNE_SKIP && !o->prune->score_rows &&
                          !o->prune->select_light)))
            return 0;
    }
    return 1;
}

/* Embeddings and every layer in one parallel region.  The pruning steps run on the master
 * thread between two barriers, where the layer-by-layer path (bert_forward) ends a region
 * and starts the next: libgomp's fork and join cost more than two of our barriers.  A layer
 * whose input nothing prunes (every layer of a dense pass) needs one barrier before it, not
 * two.  Same results as the layer-by-layer path.  Returns ADP_OK or the strategy's error. */
static int forward_one_region(bert_ctx *c, const bert_model *m, const bert_batch *b, const bert_run_opts *o) {
    const bert_config *cfg = &m->cfg;
    const int H = cfg->hidden, L = cfg->layers, n_seq = b->n_seq, T0 = b->off[n_seq];
    adp_barrier *bar = adp_team_barrier(&c->bar);
    int rc = ADP_OK;
#pragma omp parallel
    {
        embedding_forward_team(c->x, b->ids, c->pos, b->types, m->w.word_emb, m->w.pos_emb, m->w.type_emb, T0, H);
        layernorm_forward_team(c->x, c->x, m->w.emb_ln_g, m->w.emb_ln_b, T0, H, cfg->ln_eps);
        if (score_in_team(o, 0)) score_share(o->prune, 0, c->x, H, T0, c->scores);
        for (int l = 0; l < L; l++) {
            adp_team_sync(bar); /* every thread's rows (and scores) of the previous op */
            const int act = o->prune && o->prune->wants(o->prune, l, PRUNE_AT_INPUT) != PRUNE_SKIP;
#pragma omp master
            {
                c->scores_layer = score_in_team(o, l) ? l : -1;
                rc = layer_enter(c, m, o, l, b);
                for (int s = 0; s < n_seq; s++) c->ffn_tokens[s * L + l] = c->off[s + 1] - c->off[s];
            }
            if (act) {
                adp_team_sync(bar); /* the kept rows, moved by the master */
                if (rc != ADP_OK) break;
            }
            const int T = c->off[n_seq], score_next = l + 1 < L && score_in_team(o, l + 1);
            if (pair_ok(m, l, T)) layer_pair(c, m, o, l, T, score_next, bar);
            else layer_team(c, m, o, l, T, NULL, 1, score_next, bar);
        }
    }
    return rc;
}

/* Embeddings and layers, a parallel region (or several) per layer: every pass the one-region
 * path does not take.  Returns ADP_OK or the strategy's error. */
static int forward_by_layer(bert_ctx *c, const bert_model *m, const bert_batch *b, const bert_run_opts *o) {
    const bert_config *cfg = &m->cfg;
    const int H = cfg->hidden, L = cfg->layers, n_seq = b->n_seq, T0 = b->off[n_seq];
    embedding_forward(c->x, b->ids, c->pos, b->types, m->w.word_emb, m->w.pos_emb, m->w.type_emb, T0, H);
    layernorm_forward(c->x, NULL, NULL, c->x, m->w.emb_ln_g, m->w.emb_ln_b, T0, H, cfg->ln_eps);
    if (o->hook) o->hook(o->hook_user, -1, c->x, T0, c->off, c->pos);
    if (T0 >= SCORE_TEAM_MIN_ROWS && layer_team_ok(m, 0) && score_in_team(o, 0)) {
#pragma omp parallel
        score_share(o->prune, 0, c->x, H, T0, c->scores);
        c->scores_layer = 0;
    }

    for (int l = 0; l < L; l++) {
        const bert_layer_w *w = &m->w.layer[l];
        const bert_layer_lin *lin = &m->lin[l];
        if (layer_enter(c, m, o, l, b) != ADP_OK) return ADP_ERR;
        int T = c->off[n_seq];
        float *x = c->x;

        int want_mid = o->prune ? o->prune->wants(o->prune, l, PRUNE_AFTER_ATTENTION) : PRUNE_SKIP;
        float *probs = NULL;
        if (want_mid == PRUNE_ACT_WITH_PROBS) {
            size_t need = 0;
            for (int s = 0; s < n_seq; s++) {
                size_t n = (size_t)(c->off[s + 1] - c->off[s]);
                c->prob_off[s] = need;
                need += (size_t)cfg->heads * n * n;
            }
            if (need > c->cap_probs) GROW(c->probs, need), c->cap_probs = need;
            probs = c->probs;
        }
        /* With packed weights and several threads, the ops of a block run in one parallel
         * region, each op ending at a barrier instead of a fork/join: at batch 1 a layer has
         * seven ops and a pruned sequence few tokens.  The barrier is our spinning one
         * (barrier.h: 0.3 us for two threads here, OpenMP's 1.5 us) unless OpenMP waits
         * passively.  The whole layer is one region when nothing happens between its two
         * blocks (and the whole pass, when that holds for every layer: forward_one_region).
         * Same results. */
        const int team = layer_team_ok(m, l);
        const int merged = team && want_mid == PRUNE_SKIP;
        const int score_next = team && l + 1 < L && score_in_team(o, l + 1);
        adp_barrier *bar = adp_team_barrier(&c->bar);

        /* attention block (and, merged, the feed-forward block) */
        if (team) {
#pragma omp parallel
            {
                if (merged && !probs && pair_ok(m, l, T)) layer_pair(c, m, o, l, T, score_next, bar);
                else layer_team(c, m, o, l, T, probs, merged, score_next, bar);
            }
        } else {
            const float scale = 1.0f / sqrtf((float)(H / cfg->heads));
            linear_forward(c->qkv, x, &lin->qkv, T, ACT_NONE);
            attention_forward(c->ctxv, probs, c->prob_off, c->qkv, c->off, n_seq, H, cfg->heads, scale, NULL,
                              c->scratch);
            linear_forward(c->y, c->ctxv, &lin->o, T, ACT_NONE);
            residual_layernorm_forward(x, NULL, NULL, NULL, c->y, x, w->ln1_g, w->ln1_b, T, H, cfg->ln_eps);
        }

        if (want_mid != PRUNE_SKIP && prune_point_run(c, m, o, l, PRUNE_AFTER_ATTENTION, want_mid, b))
            return ADP_ERR;
        T = c->off[n_seq];
        x = c->x;
        for (int s = 0; s < n_seq; s++) c->ffn_tokens[s * L + l] = c->off[s + 1] - c->off[s];

        /* feed-forward block */
        if (merged) {
            /* ran above */
        } else if (team) {
#pragma omp parallel
            ffn_team(c, m, o, l, T, score_next, bar);
        } else {
            linear_forward(c->ffn, x, &lin->ffn1, T, ACT_GELU);
            linear_forward(c->y, c->ffn, &lin->ffn2, T, ACT_NONE);
            residual_layernorm_forward(x, NULL, NULL, NULL, c->y, x, w->ln2_g, w->ln2_b, T, H, cfg->ln_eps);
        }
        if (score_next) c->scores_layer = l + 1;
        if (o->hook) o->hook(o->hook_user, l, x, T, c->off, c->pos);
    }
    return ADP_OK;
}

int bert_forward(bert_ctx *c, const bert_model *m, const bert_batch *b, const bert_run_opts *opts,
                 const bert_result **out) {
    static const bert_run_opts no_opts = {0};
    const bert_run_opts *o = opts ? opts : &no_opts;
    const bert_config *cfg = &m->cfg;
    const int H = cfg->hidden, L = cfg->layers, C = cfg->num_labels, n_seq = b->n_seq;
    int max_len = 0;
    if (validate_batch(m, b, &max_len) != ADP_OK) return ADP_ERR;
    if (L > 127) return adp_seterr("%d layers: at most 127 supported", L);
    const int T0 = b->off[n_seq];
    ctx_reserve(c, cfg, (size_t)T0, n_seq, max_len);
    c->n_seq = n_seq;

    for (int s = 0; s <= n_seq; s++) c->off[s] = b->off[s];
    for (int s = 0; s < n_seq; s++) {
        c->orig_len[s] = b->off[s + 1] - b->off[s];
        c->flops[s] = 0.0;
        for (int t = b->off[s]; t < b->off[s + 1]; t++) c->pos[t] = t - b->off[s];
    }
    memset(c->drop_stage, 2 * L, (size_t)T0);
    c->scores_layer = -1;

    if ((one_region_ok(m, o) ? forward_one_region(c, m, b, o) : forward_by_layer(c, m, b, o)) != ADP_OK)
        return ADP_ERR;
    const float *x = c->x;
    /* pooler and classifier on each sequence's [CLS] row */
    for (int s = 0; s < n_seq; s++) memcpy(c->pool_in + (size_t)s * H, x + (size_t)c->off[s] * H, sizeof(float) * H);
    linear_forward(c->pooled, c->pool_in, &m->pool, n_seq, ACT_NONE);
    tanh_forward(c->pooled, n_seq * H);
    linear_forward(c->logits, c->pooled, &m->cls, n_seq, ACT_NONE);

    for (int s = 0; s < n_seq; s++)
        c->flops[s] += flops_sequence(cfg, c->layer_tokens + s * L, c->ffn_tokens + s * L);
    c->res = (bert_result){
        .n_seq = n_seq, .n_layers = L, .n_labels = C, .logits = c->logits, .layer_tokens = c->layer_tokens,
        .ffn_tokens = c->ffn_tokens, .drop_stage = c->drop_stage, .flops = c->flops,
    };
    *out = &c->res;
    return ADP_OK;
}

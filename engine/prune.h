/* prune.h: the one interface every token-pruning strategy implements.
 *
 * The encoder offers a strategy two points in every layer l = 0..L-1:
 *   PRUNE_AT_INPUT          before the layer, on the layer's input hidden states
 *                           (where AdapLeR's Contribution Predictors act);
 *   PRUNE_AFTER_ATTENTION   between the attention block (after its Add & LayerNorm) and
 *                           the feed-forward block, with that layer's attention
 *                           probabilities if the strategy asks for them (PoWER-BERT, LTP).
 * At each point the engine first asks wants(); only if the answer is not PRUNE_SKIP does it
 * call select(), which clears keep[t] for the rows to drop.  The engine then forces [CLS]
 * (the first row of every sequence) to stay, gathers the kept rows in order, and runs the
 * rest of the network on the shorter sequences.  Dropped tokens never come back.  A
 * strategy that skips every point costs nothing: no call, no probabilities stored, no copy.
 */
#ifndef ADP_PRUNE_H
#define ADP_PRUNE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PRUNE_AT_INPUT = 0, PRUNE_AFTER_ATTENTION = 1 } prune_point;
enum { PRUNE_SKIP = 0, PRUNE_ACT = 1, PRUNE_ACT_WITH_PROBS = 2 };

/* What a strategy sees at one point.  Rows are packed: sequence s owns rows
 * [off[s], off[s+1]), in original order. */
typedef struct {
    int layer, n_layers;
    prune_point point;
    int n_seq;
    int batch_first;       /* index of sequence 0 in the caller's numbering (for per-example state) */
    const int *off;        /* (n_seq + 1) */
    const int32_t *pos;    /* (T) original position of each row in its sequence */
    const int *orig_len;   /* (n_seq) lengths before any pruning */
    const float *hidden;   /* (T, H): AT_INPUT: the layer's input; AFTER_ATTENTION: the attention block's output */
    int hidden_size;
    const float *probs;    /* AFTER_ATTENTION with PRUNE_ACT_WITH_PROBS: sequence s, head h at
                              probs + prob_off[s] + h*n_s*n_s, (query, key) row-major; else NULL */
    const size_t *prob_off;
    int n_heads;
    /* The batch as the forward pass received it, before any pruning: sequence s is
     * input_ids[input_off[s] .. input_off[s+1]) (input_types likewise, or NULL for all 0).
     * For strategies that run the model themselves on the whole input (saliency's gradient
     * pass); the others ignore it. */
    const int32_t *input_ids, *input_types;
    const int *input_off;
    /* AT_INPUT: score_rows' scores for these rows (T), when the engine computed them while
     * the previous layer ran (see score_rows); NULL otherwise: the strategy scores itself. */
    const float *scores;
} prune_step;

typedef struct prune_strategy prune_strategy;
struct prune_strategy {
    const char *name;
    void *state;
    /* PRUNE_SKIP, PRUNE_ACT or PRUNE_ACT_WITH_PROBS for this layer and point. */
    int (*wants)(const prune_strategy *ps, int layer, prune_point point);
    /* keep (T) arrives all ones; clear the rows to drop.  flops (n_seq): add the FLOPs the
     * strategy itself spends scoring each sequence.  ADP_OK or ADP_ERR. */
    int (*select)(const prune_strategy *ps, const prune_step *step, uint8_t *keep, double *flops);
    void (*destroy)(prune_strategy *ps);
    /* Optional (NULL: not offered).  A score for each input row of `layer` (rows [r0, r1) of
     * x (T, hidden), into scores[r0 .. r1)), that depends on nothing but that row; select
     * then finds them in step->scores.  When the layers run as one parallel team (bert.c),
     * the engine calls it inside the previous layer's region, each thread on the rows it
     * has just normalised: the scoring runs on every thread and on rows still in cache,
     * instead of on one thread between two layers.  Called concurrently on disjoint ranges:
     * it must not write anything else. */
    void (*score_rows)(const prune_strategy *ps, int layer, const float *x, int hidden, int r0, int r1,
                       float *scores);
    /* Nonzero: select() is a little serial work with no OpenMP construct inside, so the
     * engine may call it on one thread inside its parallel region, as it does for a strategy
     * with score_rows (engine/bert.c forward_one_region).  Zero (the default): it runs
     * between the layers' regions, free to use the threads itself. */
    int select_light;
};

/* Compact a packed batch to the kept rows, in order.
 *   dst (T', d) <- src rows with keep[t] = 1;  pos_dst <- pos_src likewise;
 *   off_dst (n_seq + 1) <- the new offsets.  Returns T'. */
int prune_gather(float *dst, int32_t *pos_dst, int *off_dst, const float *src, const int32_t *pos_src,
                 const int *off, int n_seq, int d, const uint8_t *keep);

/* "schedule": a fixed, content-blind control used by tests and benchmarks.  Before layer
 * l (point AT_INPUT), or after its attention (AFTER_ATTENTION), keep [CLS] and an evenly
 * spaced fraction frac[l] of the other rows: row i >= 1 of a sequence with n rows is kept
 * iff floor(i * f) != floor((i - 1) * f) for f = frac[l] -- i.e. exactly
 * floor((n - 1) * f) of them.  frac[l] = 1 keeps everything (the layer is skipped). */
int prune_schedule_create(prune_strategy *ps, int n_layers, const float *frac, prune_point point);

/* "keepall": acts at every point of every layer (asking for the attention probabilities
 * when with_probs) and keeps every row.  It measures what the interface itself costs and
 * must give exactly the dense model's outputs. */
void prune_keepall_create(prune_strategy *ps, int with_probs);

#endif

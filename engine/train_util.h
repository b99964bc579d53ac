/* train_util.h: what `adapler train` and `adapler pretrain` share: named model shapes,
 * length-bucketed batch plans, the progress line, vocabulary learning from datasets. */
#ifndef ADP_TRAIN_UTIL_H
#define ADP_TRAIN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "dataset.h"
#include "prune.h"

/* Named shapes: tiny (L2 H128 A2 I512), mini (L4 H256 A4 I1024), small (L6 H256 A4 I1024),
 * base (L12 H768 A12 I3072).  ADP_ERR for an unknown name. */
int train_shape_by_name(const char *name, int *layers, int *hidden, int *heads, int *inter);
extern const char TRAIN_SHAPES_HELP[];

/* A plan of batches over n examples of the given lengths, for one epoch: the examples are
 * shuffled (seeded), cut into pools of 50 batches, each pool sorted by length so a batch
 * holds sequences of similar length, cut into batches of at most max_seqs sequences and
 * max_tokens tokens (0: no token limit; a longer sequence still gets a batch of its own),
 * and the batch order shuffled.  order (n) lists example indices batch after batch; batch
 * b is order[boff[b] .. boff[b+1]). */
typedef struct {
    size_t n, n_batches;
    size_t *order, *boff;
} batch_plan;
void batch_plan_make(batch_plan *p, const int *lengths, size_t n, int max_seqs, size_t max_tokens, uint64_t seed);
void batch_plan_free(batch_plan *p);

/* A progress line on stderr: redrawn in place on a terminal, else one line every 30 s. */
typedef struct {
    double t0, last;
    int tty;
    long total; /* steps of the whole run */
} progress;
void progress_init(progress *p, long total_steps);
/* done = steps taken so far over the whole run; loss = running mean; tokens/s. */
void progress_show(progress *p, const char *what, int epoch, int epochs, long done, double loss, double tok_s);
void progress_clear(progress *p);

/* Learn a WordPiece vocabulary (engine/vocab_learn.h, uncased, min_freq 2) from the texts
 * (and pairs) of the train splits of the named datasets and write it to path. */
int train_learn_vocab(const dataset *const *ds, int n_ds, size_t size, const char *path);

/* A 64-bit mix of (a, b), for per-step seeds. */
uint64_t train_mix_seed(uint64_t a, uint64_t b);

/* Measured sgemm throughput in GFLOP/s (median over repeats of an n x n x n cblas_sgemm,
 * at least min_time seconds): the "peak" training throughput is compared with. */
double train_sgemm_peak(int n, double min_time);

/* Accuracy and macro-F1 (the mean over classes present in gold or predictions of each
 * class's F1, as sklearn's f1_score(average="macro")) of pred against gold (n); rows with
 * gold < 0 are skipped. */
void train_scores(const int32_t *gold, const int32_t *pred, size_t n, int n_labels, double *accuracy, double *macro_f1);

/* A batch gathered from a packed split: sequences idx[0..n) in that order, their labels
 * and, when extra is not NULL, that per-token array's values (e.g. saliency targets) in
 * tb->extra.  *b points into tb's buffers, which grow as needed. */
typedef struct {
    int32_t *ids, *types, *labels;
    int *off;
    float *extra;
    size_t cap_tok, cap_seq;
} train_batch;
void train_batch_fill(train_batch *tb, bert_batch *b, const packed_tokens *pk, const float *extra, const size_t *idx,
                      size_t n);
void train_batch_free(train_batch *tb);

/* Scores of a split with the inference engine and strategy ps (NULL: dense), in batches of
 * `batch` in split order: accuracy and macro-F1 (train_scores), total FLOPs with the
 * strategy and unpruned, and when layer_tokens is not NULL the mean tokens entering each
 * layer (L). */
typedef struct {
    double acc, f1, flops, flops_dense;
    double *layer_tokens;
} train_dev_scores;
int train_evaluate(train_dev_scores *d, const bert_model *m, const packed_tokens *pk, const prune_strategy *ps,
                   int batch);

#endif

/* shared.h: the baselines' types that the --method registry (engine/method.h) holds:
 * another run's per-example token counts (--match, baselines/match.c) and the trace of the
 * scores a strategy computed (baselines/scores.c). */
#ifndef ADP_BASELINES_SHARED_H
#define ADP_BASELINES_SHARED_H

#include <stddef.h>

/* Read from the per-example file of `adapler eval --examples FILE` (format above
 * match_counts_load in match.c).  tokens[i * L + l] = tokens that entered layer l of
 * example i in the matched run. */
typedef struct {
    char *path;
    int n_layers;
    size_t n;
    int *tokens;  /* (n, L), each row >= 1 and non-increasing */
    int *length;  /* (n) original length if the file gives it ("length"), else -1 */
    char **ids;   /* (n) the file's example ids */
} match_counts;

int match_counts_load(match_counts *mc, const char *path, int n_layers);
void match_counts_free(match_counts *mc);
/* The counts of example `example` (the caller's numbering, batch_first + s), checked
 * against its original length: ADP_ERR naming the file when the file has no such example
 * or its counts do not fit a sequence of orig_len tokens. */
int match_counts_row(const match_counts *mc, int example, int orig_len, const int **row);
/* A whole run is about to use the counts: ADP_ERR naming the file unless it has exactly
 * n examples with these ids (ids may be NULL: count only). */
int match_counts_check(const match_counts *mc, size_t n, const char *const *ids);

/* The scores a strategy computed (for tests and analysis).  score[l * n_tokens + in_off(s)
 * + p]: the score of the token at original position p of sequence s when the strategy
 * scored it at layer l; NaN where it did not score (layers it skips, tokens already
 * dropped, sequences with nothing to drop).  in_off(s) = sum of the original lengths of
 * the sequences before s.  Valid until the next batch. */
typedef struct {
    float *score;
    size_t cap, n_tokens;
    int n_layers;
    int last_layer; /* layer of the previous call: a call at a layer <= it starts a new batch */
    size_t *in_off;
    int cap_seq;
} baseline_trace;

#endif

/* method.h: choosing a pruning method by name (--method) with its knob, for every command
 * that runs a model (eval, predict, eraser export, sweeps).  Adding a method is writing its
 * strategy file and adding one row to the table in method.c. */
#ifndef ADP_METHOD_H
#define ADP_METHOD_H

#include <stdint.h>

#include "adapler.h"
#include "baselines/shared.h"
#include "model.h"
#include "prune.h"
#include "safetensors.h"

typedef struct {
    const char *name;   /* --method: none, adapler, ... (see METHOD_NAMES) */
    double eta_scale;   /* --eta-scale: adapler, multiplies every learned eta (default 1) */
    const char *schedule; /* --schedule l:f,...: the fixed 'schedule' control */
    uint64_t seed;      /* --method-seed: for randomised methods */
    const char *keep_rate;  /* --keep-rate: cascade (last layer's rate), random (one or L rates) */
    double final_threshold; /* --final-threshold: ltp (< 0: not given) */
    const char *retention;  /* --retention: power (L counts or fractions) */
    const char *keep;       /* --keep: truncate (a count or a fraction) */
    const char *match;      /* --match FILE: random, cascade, power, saliency keep another run's counts */
    double eta;             /* --eta: saliency, AdapLeR's rule on the scores (< 0: not given) */
    const char *saliency_layer; /* --saliency-layer input|each: saliency (NULL: input) */
} method_opts;

void method_opts_init(method_opts *o);
/* If argv[*i] is a method option, consume it (and its value) and return 1; 0 if not one;
 * ADP_ERR with a message for a bad value. */
int method_opts_parse(method_opts *o, int argc, char **argv, int *i);
extern const char METHOD_OPTS_HELP[];
extern const char METHOD_NAMES[];

/* A method made ready for one model.  ps is NULL for "none" (the dense path). */
typedef struct {
    prune_strategy strategy;
    prune_strategy *ps;
    adapler_weights adapler;
    adapler_trace trace;
    int has_adapler;
    match_counts match;    /* --match */
    baseline_trace scores; /* what an attention baseline scored, per token and layer */
    int has_match;
    int quality_reference; /* the method costs more than the dense model (saliency's gradient
                              pass): a reference for quality, not a speedup method */
    char label[128]; /* e.g. "adapler eta_scale=0.5", for logs and results */
} method;

/* Build the method for model m; st is the model's open checkpoint (for extra tensors such
 * as AdapLeR's predictors).  ADP_ERR for an unknown name or a model that lacks what the
 * method needs. */
int method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st);
void method_free(method *me);
/* Before a run over n examples with these ids (ids may be NULL): ADP_ERR naming the file if
 * the method matches another run's counts (--match) and that run had other examples. */
int method_check_examples(const method *me, size_t n, const char *const *ids);

#endif

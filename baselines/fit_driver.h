/* fit_driver.h: what a two-phase method (power_fit.c, ltp_fit.c) gives the driver (fit.c).
 * The driver owns the data, the encoder, its optimiser, the loops, dev evaluation and the
 * checkpoint; the method owns its soft parameters and how they become a configuration. */
#ifndef ADP_BASELINES_FIT_DRIVER_H
#define ADP_BASELINES_FIT_DRIVER_H

#include <stddef.h>

#include "bert_train.h"
#include "model.h"
#include "optim.h"
#include "prune.h"

typedef struct {
    const char *init, *out;
    long epochs, soft_epochs, batch, max_len, seed, threads, max_train, eval_batch;
    double lr, soft_lr, lambda, temperature, final_threshold, warmup, wd, clip, dropout;
} fit_args;

typedef struct {
    const char *name;        /* --method NAME */
    const char *config_name; /* what the soft phase finds: "retention", "thresholds" */
    const char *help;        /* the method's description and options, for --help */
    double lambda, soft_lr;  /* defaults */
    int has_temperature;     /* accepts --temperature and --final-threshold (LTP) */
    double temperature, final_threshold;
    /* Allocate the method's state for model m. */
    void *(*create)(const bert_model *m, const fit_args *a);
    /* Register the soft parameters (and their gradients) with the soft optimiser. */
    void (*params)(void *self, adamw *opt);
    bert_scale_fn scale;           /* the soft phase's row-scale hooks (user = self) */
    bert_scale_grad_fn scale_grad;
    /* After the backward pass: the penalty of this step (its gradient added by now). */
    double (*penalty)(void *self);
    /* After each optimiser step (e.g. clipping), may be NULL. */
    void (*after_step)(void *self);
    /* The configuration the soft parameters give now, as a JSON value. */
    void (*config)(void *self, char *buf, size_t cap);
    /* The hard phase's strategy at that configuration. */
    int (*hard)(void *self, const bert_model *m, prune_strategy *ps);
    /* The checkpoint's extra tensor(s) holding it; returns how many (at most 1). */
    int (*extra)(void *self, bert_extra_tensor *ex);
    void (*destroy)(void *self);
} fit_spec;

/* `adapler train --method NAME` for a two-phase method: parse, run, report.  Returns the
 * process exit status (0, 1 failure, 2 usage). */
int fit_run(const fit_spec *spec, int argc, char **argv);

#endif

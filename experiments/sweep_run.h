/* sweep_run.h: running a sweep: cells as parallel `adapler eval` child processes, results
 * into the database, resumable; and the Makefile and Slurm views of a sweep.
 *
 * How a run works.  The sweep file is expanded into cells (sweep_file.h).  Each model
 * directory is hashed (SHA-256 of config.json, model.safetensors, vocab.txt) and the code
 * version is the hash of this binary, so each cell has a key.  Cells already in the
 * database under their key are skipped; the rest are grouped (cells that differ only in
 * the knob value share one eval process: one model load, one pass per value), the groups
 * split into up to --jobs chunks so that the workers stay busy, and run as child processes
 * `adapler eval ... --threads T`, at most --jobs at once, each with T threads, never more
 * threads in total than cores.  Timed cells (repeats > 0) with timing=exclusive run alone,
 * after the untimed ones, with the run line's thread count.  Every JSON line a child
 * prints is one finished cell, committed at once in its own transaction; when a child
 * fails, its unfinished cells are recorded in `failures` and retried by the next run.
 * Killing the runner (even with SIGKILL) loses at most the cells in flight: the children
 * die with it (PR_SET_PDEATHSIG) and SQLite's WAL keeps every committed cell. */
#ifndef ADP_SWEEP_RUN_H
#define ADP_SWEEP_RUN_H

#include <signal.h>
#include <stdio.h>

#include "sweep_file.h"

typedef struct {
    int total;   /* cells this run attempts */
    int done;    /* finished in this run */
    int failed;  /* failed in this run */
    int running; /* eval processes running */
    int skipped; /* already in the database */
    double elapsed, eta; /* seconds; eta < 0 if unknown */
    const char *event;   /* a finished or failed cell ("done sst2 cascade --keep-rate 0.5"), or NULL */
} sweep_progress;

typedef struct {
    const char *db_path;     /* results database (created if needed, unless db_read_only) */
    int db_read_only;        /* only look: a missing database means nothing is finished */
    const char *ref_db_path; /* where match= references are read; default db_path */
    int jobs;                /* eval processes at once (default 1) */
    int threads_per_job;     /* threads of each untimed job; 0: cores / jobs */
    int per_example;         /* store per-example rows (eval --examples) */
    int skip_unavailable;    /* skip run lines this build cannot run (sweep_expand) */
    int available_models;    /* sweep_execute runs the cells whose models are built, skips the rest */
    int only_cell;           /* run just this cell index (Slurm/GNU parallel); -1: all */
    int need_models;         /* hash the models (0 for --emit make) */
    const char *command;     /* the runner's command line, for the runs table */
    volatile sig_atomic_t *stop; /* set asynchronously to stop: children are killed */
    void (*progress)(void *user, const sweep_progress *p);
    void *user;
} sweep_opts;

/* Cell states: to run (never tried, or failed in an earlier run: retried), finished, its
 * model unavailable, failed in this run. */
enum { CELL_PENDING = 0, CELL_DONE = 1, CELL_NO_MODEL = 2, CELL_FAILED_BEFORE = 3, CELL_FAILED = 4 };
#define CELL_RUNNABLE(s) ((s) == CELL_PENDING || (s) == CELL_FAILED_BEFORE)

typedef struct {
    sweep_file sf;
    sweep_plan plan;
    char code_version[65];
    char exe[4096];
    int cores;
    unsigned char *status;  /* per cell: CELL_* */
    char **model_problem;   /* per model instance: why it cannot be used, or NULL */
    int n_pending, n_done, n_no_model;
} sweep_ctx;

/* Load and expand the sweep file, resolve and hash the models, compute the keys and (if
 * db_path is set) look up which cells are finished. */
int sweep_open(sweep_ctx *x, const char *path, const sweep_opts *o);
void sweep_close(sweep_ctx *x);

/* Run the pending cells (or only o->only_cell).  ADP_ERR if the run could not start or
 * was interrupted; failed cells are not an error (see *failed). */
int sweep_execute(sweep_ctx *x, const sweep_opts *o, int *done, int *failed);

/* Makefile rules that build the sweep's models: a `models` target, one rule per model
 * instance with its dependencies, a stamp PATH/.built holding the recipe, and a recipe file
 * in recipes_dir rewritten only when the recipe changes (so make rebuilds a model only
 * when its command changed, or a model it depends on was rebuilt). */
int sweep_emit_make(sweep_ctx *x, FILE *out, const char *recipes_dir);

/* A Slurm array script: one task per pending cell, each into its own shard database under
 * shard_dir, reading match= references from db_path; cells whose reference is not yet in
 * db_path wait for a later emission (the script says so).  flags: extra runner options
 * that change the expansion or what is stored (--skip-unavailable, --per-example). */
int sweep_emit_slurm(sweep_ctx *x, FILE *out, const char *sweep_path, const char *shard_dir, const char *db_path,
                     int threads, const char *flags);

/* The code version: $ADAPLER_CODE_VERSION, else the first 16 hex digits of the SHA-256 of
 * /proc/self/exe. */
int sweep_code_version(char out[65], char exe[4096]);
/* SHA-256 over a checkpoint's config.json, model.safetensors and vocab.txt. */
int sweep_model_hash(const char *dir, char out[65]);

#endif

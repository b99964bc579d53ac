/* sweep_file.h: sweep files (experiments/NAME.sweep) and their expansion into cells.
 *
 * Format: plain text, one directive per line; '#' at the start of a line or after a blank
 * starts a comment; a line ending in '\' continues on the next; words are separated by
 * blanks.  Directives:
 *
 *   sweep NAME                  name recorded with the results (default: the file's base name)
 *   include FILE                read FILE (relative to this file) here, e.g. shared model lines
 *   set KEY VALUE               default setting for the run lines below (keys as in run)
 *   dataset NAME OPTION...      dataset options for NAME, given to eval (and {dataset_options}
 *                               in model commands), e.g. `dataset planted --planted-n 2000`
 *   model NAME PATH [: COMMAND] a checkpoint directory and the command that builds it.  PATH
 *                               and COMMAND may use {dataset}, {seed}, {out} (= PATH),
 *                               {dataset_options}, {model:OTHER} (OTHER's path under the same
 *                               bindings, and a build dependency) and {VAR} for any variable a
 *                               run line binds.  `adapler sweep --emit make` turns these lines
 *                               into Makefile rules.
 *   run DATASETS MODEL METHOD [KEY=VALUES...] [METHOD OPTIONS...]
 *                               cells: every combination of the comma-separated DATASETS, the
 *                               settings' lists and the method option holding a list.  MODEL is
 *                               a model NAME, or a directory (containing '/').  METHOD OPTIONS
 *                               are eval's (--eta-scale, --schedule, ...); one of them may hold
 *                               a list of values, comma-separated (0,0.5,1) or, for values
 *                               that contain commas themselves, ';'-separated.  Each list
 *                               value is one cell; cells that differ only in that value share
 *                               one eval process (one model load, one pass per value).
 *
 * Settings (set KEY VALUE, or KEY=VALUE on a run line; lists are comma-separated):
 *   split    dev | test | train                (default dev)
 *   seeds    list of seeds: eval's --method-seed and the models' {seed}   (default 1)
 *   batch    list of batch sizes                (default 32)
 *   max_len  list of truncation lengths, 0 = eval's default (default 0)
 *   weights  list of f32, f16, bf16, i8: eval's --weights (default f32)
 *   repeats  wall-clock repeats; 0 = not timed  (default 0)
 *   threads  threads of a timed cell; 0 = all cores (default 0)
 *   timing   exclusive (timed cells run alone) | shared (beside other jobs, each with its
 *            thread budget)                     (default exclusive)
 *   name     a name for this run line (for match=)
 *   match    NAME of another run line: one cell per cell of that line (same dataset, split,
 *            seed, max_len; its first batch size), passing eval `--match FILE` with that
 *            cell's per-example token counts, so both keep the same tokens per layer
 * Any other KEY=VALUES binds a model variable {KEY} (a list makes one model per value). */
#ifndef ADP_SWEEP_FILE_H
#define ADP_SWEEP_FILE_H

#include <stddef.h>

enum { TIMING_EXCLUSIVE = 0, TIMING_SHARED = 1 };

typedef struct {
    char *name;
    char **values;
    int n;
} sweep_var;

typedef struct {
    char *name, *path, *cmd; /* templates; cmd NULL if none */
    const char *file;
    int line;
} sweep_model;

typedef struct {
    const char *file;
    int line;
    char *name, *match, *model, *method, *split;
    char **datasets;
    int n_datasets;
    long *seeds, *batches, *max_lens, *weights; /* weights: FMT_F32, FMT_F16, FMT_BF16, FMT_I8 (gemm.h) */
    int n_seeds, n_batches, n_max_lens, n_weights;
    long repeats, threads;
    int timing;
    sweep_var *vars;
    int n_vars;
    char **opts; /* method option words, the list value as written */
    int n_opts;
    int list_opt;       /* index in opts of the word holding a list, or -1 */
    char **list_values; /* its values */
    int n_list;
    char list_sep; /* ',' or ';' */
} sweep_run;

typedef struct {
    char *dataset;
    char **opts;
    int n;
} sweep_dsopts;

typedef struct {
    char *name, *path;
    char sha256[65]; /* of the file and its includes, in reading order */
    sweep_model *models;
    int n_models;
    sweep_run *runs;
    int n_runs;
    sweep_dsopts *dsopts;
    int n_dsopts;
    char **files; /* every file read (for messages) */
    int n_files;
} sweep_file;

/* Parse a sweep file.  ADP_ERR with "FILE:LINE: message" for the first problem (unknown
 * directive, bad setting, unknown dataset or method, bad method option or knob value). */
int sweep_file_load(sweep_file *sf, const char *path);
void sweep_file_free(sweep_file *sf);

/* A checkpoint a sweep needs: a model line bound to values, or a literal directory. */
typedef struct {
    char *name, *path, *recipe; /* recipe NULL if the model has no command */
    char *dataset;
    int *deps; /* instances this one's command uses ({model:OTHER}) */
    int n_deps;
    const char *file;
    int line;
    int used; /* evaluated by some cell (not only a build dependency) */
    char hash[65];
} sweep_model_inst;

typedef struct {
    int index; /* position in the expansion: stable for a given file */
    int run;   /* index of its run line */
    const char *dataset;
    char *dataset_options; /* words joined by blanks, "" if none */
    char **ds_argv;        /* the same words (not owned) */
    int ds_argc;
    char *split;
    long seed, batch, max_len, repeats, threads;
    int timing;
    int weights;       /* eval --weights: FMT_F32, FMT_F16, FMT_BF16 or FMT_I8 */
    int model;         /* index into models */
    char *model_vars;  /* "k=v k2=v2" or "" */
    char **m_argv;     /* method options with this cell's value */
    int m_argc;
    char *method_options; /* m_argv joined */
    char *knob, *knob_name;
    double knob_value; /* NAN if not a number */
    int group;         /* cells differing only in the list value share a group */
    int match_ref;     /* index of the reference cell, or -1 */
    int is_ref;        /* another cell matches this one: its per-example rows are needed */
    char *key_text, *logical_key;
    char cell_key[65];
} sweep_cell;

typedef struct {
    sweep_cell *cells;
    int n_cells;
    sweep_model_inst *models;
    int n_models;
    int n_groups;
    char *warnings; /* lines skipped with skip_unavailable, "FILE:LINE: ...\n" each; NULL if none */
} sweep_plan;

/* Expand the run lines into cells and model instances.  With skip_unavailable, a run line
 * whose method or method options this build does not know is skipped (and listed in
 * plan->warnings) instead of being an error. */
int sweep_expand(sweep_plan *p, const sweep_file *sf, int skip_unavailable);
void sweep_plan_free(sweep_plan *p);

/* Fill key_text, logical_key and cell_key of every cell, once the models' hashes and each
 * cell's thread count are known.  Timed cells include threads, repeats and timing in the
 * key; every key includes the code version. */
void sweep_plan_keys(sweep_plan *p, const sweep_file *sf, const char *code_version);

/* The eval argument list of one group of cells (cells[first..first+n) of the same group, in
 * order): method options with the list value replaced by the chunk's values. */
char **sweep_eval_method_args(const sweep_plan *p, const sweep_file *sf, const int *cells, int n, int *argc);

#endif

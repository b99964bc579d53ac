/* results_db.h: the results database (results/results.db): open and migrate it, record
 * runs, models, finished cells and failures, merge shards.
 *
 * The schema, with a comment on every column, is results/schema.sql; the binary embeds it
 * and applies its "-- @version N" sections on open (see the top of that file).  Every
 * connection uses WAL and a busy timeout, so several runners, a merge and any number of
 * sqlite3 readers can use one file at once.  Each finished cell is written in one
 * transaction (its row, its per-layer rows, its per-example rows): a killed writer leaves
 * either the whole cell or nothing.
 *
 *   results_db db;
 *   if (results_db_open(&db, "results/results.db") != ADP_OK) ... adp_errmsg() ...
 *   results_db_put_cell(&db, &cell, eval_json_line, example_lines, n, seconds);
 *   results_db_close(&db); */
#ifndef ADP_RESULTS_DB_H
#define ADP_RESULTS_DB_H

#include <stddef.h>

typedef struct sqlite3 sqlite3;

typedef struct {
    sqlite3 *db;
    char *path;
} results_db;

/* The schema version this binary writes (the last "-- @version N" of schema.sql). */
int results_db_latest_version(void);
/* The schema text embedded at build time. */
const char *results_db_schema_sql(void);

/* Open (creating the file if needed) and migrate to the latest version.  ADP_ERR with a
 * message naming the path if the file is not a database, is newer than this binary, or
 * cannot be written. */
int results_db_open(results_db *r, const char *path);
void results_db_close(results_db *r);
/* Version stored in the file (0 for an empty file). */
int results_db_version(results_db *r, int *version);
/* Run one or more SQL statements (no results). */
int results_db_exec(results_db *r, const char *sql);

typedef struct {
    const char *run_id; /* 32 hex digits (results_new_run_id) */
    const char *sweep, *sweep_file, *sweep_sha256, *command;
    const char *code_version, *git_describe, *host, *cpu, *blas, *environment;
    int cores, jobs, threads_per_job;
} results_run;

/* 32 random hex digits from /dev/urandom (time and pid if it cannot be read). */
void results_new_run_id(char out[33]);
int results_db_run_begin(results_db *r, const results_run *run);
/* status: done, failed, interrupted. */
int results_db_run_end(results_db *r, const char *run_id, const char *status, long done, long failed);

typedef struct {
    const char *hash, *name, *path, *dataset, *recipe;
    const char *hyperparams; /* JSON object text or NULL */
    int layers, hidden, heads, intermediate, vocab_size, num_labels, has_adapler;
    long long bytes;
    double dev_score; /* NAN if unknown */
} results_model;

/* Register a checkpoint (ignored if its hash is already there). */
int results_db_put_model(results_db *r, const results_model *m);

/* What the runner knows about a cell before it runs (sweep_file.h fills it). */
typedef struct {
    const char *cell_key, *key_text, *logical_key, *run_id, *sweep;
    const char *dataset, *dataset_options, *split;
    const char *model_hash, *model_name, *model_path, *model_vars;
    const char *method, *method_options, *knob, *knob_name;
    double knob_value; /* NAN if the knob is not a number */
    const char *match_key, *match_knob; /* NULL unless --match */
    long seed, batch, threads, repeats;
    const char *timing; /* none, exclusive, shared */
    int concurrent;
    const char *code_version;
} results_cell;

/* Is the cell finished (and, if need_examples, with its per-example rows)? */
int results_db_cell_done(results_db *r, const char *cell_key, int need_examples, int *done);
/* Record a finished cell from eval's JSON line and, if n_examples > 0, eval's per-example
 * JSON lines, in one transaction; replaces an earlier row of the same key.  ADP_ERR if the
 * JSON lacks a required field (the message names it). */
int results_db_put_cell(results_db *r, const results_cell *c, const char *eval_json, char *const *example_lines,
                        size_t n_examples, double seconds);
/* Has the cell a failure on record (in any run)? */
int results_db_cell_failed(results_db *r, const char *cell_key, int *failed);
/* Record that a cell failed in this run (error: eval's last stderr lines). */
int results_db_put_failure(results_db *r, const results_cell *c, int exit_status, const char *error);

/* Merge the shard database at path into r, in one transaction: rows whose key is already
 * present are left as they are, so merging the same shard twice changes nothing.  The
 * shard is migrated first if it is older; a newer one is refused.  *new_cells and
 * *dup_cells (may be NULL) count the shard's cells added and already present. */
int results_db_merge(results_db *r, const char *shard_path, long *new_cells, long *dup_cells);

/* Write the per-example rows of a cell as eval's --examples JSON lines (index, id, label,
 * pred, layer_tokens, flops, kept), atomically, for another method's --match.  ADP_ERR if
 * the cell has no per-example rows. */
int results_db_write_examples(results_db *r, const char *cell_key, const char *path);

#endif

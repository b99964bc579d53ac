-- results/schema.sql: the results database, results/results.db (SQLite).
--
-- Written by `adapler sweep` (one transaction per finished cell) and `adapler results
-- merge`; read with sqlite3 and by the gnuplot scripts in plots/.  The binary embeds this
-- file (experiments/results_db.c) and applies it on open:
--   * the file is cut into sections at lines "-- @version N" (N = 1, 2, ...);
--   * a database whose schema_version is below N gets section N applied, in order, each in
--     one transaction together with the version bump.  An empty (0-byte) or new file thus
--     migrates from version 0 to the latest; a database newer than the binary is refused.
--   * released sections are never edited: a change is a new section (ALTER TABLE, new
--     views) appended at the end.
-- Connections run in WAL mode (readers never block the writer, a killed writer leaves the
-- last committed transaction intact) with a busy timeout, so several runners and readers
-- can share one file.
--
-- Vocabulary.  A *cell* is one point of a sweep: a model evaluated on one dataset split
-- with one pruning method at one knob value, one seed and one batch size.  Its *key* is
-- the SHA-256 of its canonical description (key_text) which includes the checkpoint hash
-- and the code version, so a rerun skips exactly the cells whose inputs are unchanged.
-- Times are ISO-8601 UTC with milliseconds.  Ratios are plain numbers (2.0 = twice as
-- fast); accuracies are fractions in [0, 1].

-- @version 1

CREATE TABLE schema_version (
    version INTEGER NOT NULL                -- number of the last section of this file applied
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,       -- 32 random hex digits: unique across machines, so shards merge
    sweep           TEXT NOT NULL,          -- sweep name (the sweep file's `sweep` line, else its base name)
    sweep_file      TEXT,                   -- path of the sweep file as given
    sweep_sha256    TEXT,                   -- SHA-256 of the sweep file (and its includes, in order)
    command         TEXT,                   -- the runner's full command line
    code_version    TEXT NOT NULL,          -- first 16 hex digits of SHA-256 of the adapler binary (or $ADAPLER_CODE_VERSION)
    git_describe    TEXT,                   -- `git describe --always --dirty` of the source tree, if available
    host            TEXT,                   -- host name
    cpu             TEXT,                   -- CPU model name (/proc/cpuinfo)
    cores           INTEGER,                -- online logical CPUs
    jobs            INTEGER,                -- --jobs: cells run at once
    threads_per_job INTEGER,                -- OpenMP/OpenBLAS threads of each untimed job
    blas            TEXT,                   -- BLAS library, core and build (adp_blas_info)
    environment     TEXT,                   -- settings given to the eval processes (OMP_WAIT_POLICY=...)
    started_at      TEXT NOT NULL,          -- when the runner started
    ended_at        TEXT,                   -- when it stopped; NULL while running or if it was killed
    status          TEXT NOT NULL,          -- running, done, failed (some cells failed), interrupted
    cells_done      INTEGER,                -- cells this run finished
    cells_failed    INTEGER                 -- cells this run attempted without success
);

CREATE TABLE models (
    model_hash   TEXT PRIMARY KEY,          -- SHA-256 over config.json, model.safetensors and vocab.txt
    name         TEXT,                      -- model name in the sweep file (`model NAME ...`)
    path         TEXT,                      -- checkpoint directory when first seen
    dataset      TEXT,                      -- dataset the model was built for (the sweep's binding)
    config       TEXT,                      -- shape as "L6 H256 A4 I1024"
    layers       INTEGER,                   -- encoder layers L
    hidden       INTEGER,                   -- hidden size H
    heads        INTEGER,                   -- attention heads A
    intermediate INTEGER,                   -- feed-forward size I
    vocab_size   INTEGER,                   -- WordPiece vocabulary size
    num_labels   INTEGER,                   -- classifier outputs
    has_adapler  INTEGER,                   -- 1 if the checkpoint holds AdapLeR predictors and etas
    bytes        INTEGER,                   -- size of model.safetensors
    recipe       TEXT,                      -- command that built it (sweep file), NULL if not built by a sweep
    hyperparams  TEXT,                      -- JSON: the training logs found in the directory ({"train.json": {...}, ...})
    dev_score    REAL,                      -- dev accuracy the training reported (dev_accuracy), NULL if unknown
    first_seen   TEXT                       -- when a runner first registered this checkpoint
);

CREATE TABLE cells (
    cell_key        TEXT PRIMARY KEY,       -- SHA-256 (hex) of key_text
    key_text        TEXT NOT NULL,          -- canonical description: dataset, options, split, model hash, method, knob, seed, batch, max_len, timing, code version
    logical_key     TEXT NOT NULL,          -- key_text without model hash and code version: the same experiment at another version
    run_id          TEXT,                   -- run that produced the row (runs.run_id)
    sweep           TEXT,                   -- sweep name
    dataset         TEXT NOT NULL,          -- --dataset NAME
    dataset_options TEXT,                   -- extra dataset options (e.g. --planted-n 2000), '' if none
    split           TEXT NOT NULL,          -- dev or test (or train)
    model_hash      TEXT NOT NULL,          -- models.model_hash
    model_name      TEXT,                   -- sweep model name
    model_path      TEXT,                   -- checkpoint directory evaluated
    model_vars      TEXT,                   -- model template variables bound by the run line (e.g. lambda=0.001), '' if none
    method          TEXT NOT NULL,          -- --method NAME (none, adapler, schedule, ...)
    method_options  TEXT,                   -- method options passed to eval for this cell, '' if none
    knob            TEXT,                   -- what this cell varies, as text: model variables, then method options
    knob_name       TEXT,                   -- name of the swept quantity (eta_scale, keep_rate, lambda, ...), NULL for none
    knob_value      REAL,                   -- its numeric value, NULL if not a number
    label           TEXT,                   -- eval's own label of the method (e.g. "adapler eta_scale=0.5")
    match_key       TEXT,                   -- --match runs: cell_key of the reference cell whose per-layer counts were matched
    match_knob      TEXT,                   -- --match runs: knob of that reference cell
    seed            INTEGER,                -- seed: --method-seed, and {seed} of the model template
    batch           INTEGER,                -- sequences per packed batch
    max_len         INTEGER,                -- WordPiece truncation length actually used
    threads         INTEGER,                -- OpenMP/OpenBLAS threads of the eval process
    repeats         INTEGER,                -- wall-clock repeats (0: not timed)
    timing          TEXT,                   -- none (not timed), exclusive (ran alone), shared (ran beside other jobs)
    concurrent      INTEGER,                -- most other sweep jobs running at the same time as this cell
    code_version    TEXT NOT NULL,          -- runs.code_version of the binary that computed it
    examples        INTEGER,                -- examples evaluated
    truncated       INTEGER,                -- examples cut at max_len
    accuracy        REAL,                   -- fraction correct
    macro_f1        REAL,                   -- macro-averaged F1 over the labels
    f1              REAL,                   -- F1 of label 1 (two-class tasks), else NULL
    flops_speedup   REAL,                   -- dense FLOPs (unpadded lengths) / FLOPs with the method, its scoring included
    gflops          REAL,                   -- total GFLOPs with the method over the split
    gflops_dense    REAL,                   -- total GFLOPs of the same model unpruned
    wall_speedup    REAL,                   -- measured: median dense time / median pruned time over the repeats, NULL if not timed
    wall_speedup_lo REAL,                   -- lowest per-repeat ratio (spread of wall_speedup)
    wall_speedup_hi REAL,                   -- highest per-repeat ratio
    dense_seconds   REAL,                   -- median seconds of one dense pass over the split
    pruned_seconds  REAL,                   -- median seconds of one pruned pass over the split
    mean_length     REAL,                   -- mean WordPieces per example (after truncation)
    mean_tokens     REAL,                   -- mean over layers of the mean tokens entering each layer
    last_tokens     REAL,                   -- mean tokens entering the last layer
    eraser_keys     INTEGER,                -- examples with a human rationale scored; NULL when the dataset has none
    eraser_fpr      REAL,                   -- last layer: non-rationale words kept / non-rationale words (micro)
    eraser_tpr      REAL,                   -- last layer: rationale words kept / rationale words (micro)
    eraser_fpr_macro REAL,                  -- last layer: FPR averaged over examples where defined
    eraser_tpr_macro REAL,                  -- last layer: TPR averaged over examples where defined
    eraser_precision REAL,                  -- last layer: rationale words kept / words kept (micro)
    eraser_f1       REAL,                   -- last layer: token F1 of the kept words against the rationale (micro)
    has_examples    INTEGER NOT NULL,       -- 1 if per-example rows are stored (sweep --per-example)
    eval_json       TEXT,                   -- eval's JSON line, verbatim
    seconds         REAL,                   -- wall seconds the runner spent on this cell (its share of the eval process)
    finished_at     TEXT NOT NULL           -- when the row was committed
);
CREATE INDEX cells_logical ON cells (logical_key, finished_at);
CREATE INDEX cells_dataset ON cells (dataset, split, method);

CREATE TABLE cell_layers (
    cell_key         TEXT NOT NULL,         -- cells.cell_key
    layer            INTEGER NOT NULL,      -- 0 .. L-1
    tokens           REAL,                  -- mean tokens entering the layer
    keep_fraction    REAL,                  -- tokens / mean_length
    eraser_fpr       REAL,                  -- words alive entering this layer vs rationale: FPR (micro); NULL without rationales
    eraser_tpr       REAL,                  -- TPR (micro)
    eraser_fpr_macro REAL,                  -- FPR averaged over examples
    eraser_tpr_macro REAL,                  -- TPR averaged over examples
    PRIMARY KEY (cell_key, layer)
);

CREATE TABLE examples (
    cell_key     TEXT NOT NULL,             -- cells.cell_key
    idx          INTEGER NOT NULL,          -- position in the split (0-based)
    example_id   TEXT,                      -- the dataset's id of the example
    label        INTEGER,                   -- gold label
    pred         INTEGER,                   -- predicted label
    flops        REAL,                      -- FLOPs spent on this example, method scoring included
    layer_tokens TEXT,                      -- JSON array: tokens entering each layer
    kept         TEXT,                      -- JSON array: original positions still present after the last layer
    token_layers TEXT,                      -- JSON array per WordPiece: layers it entered (L = survived all)
    pieces       TEXT,                      -- JSON array of the WordPieces ([CLS] ... [SEP])
    PRIMARY KEY (cell_key, idx)
);

CREATE TABLE failures (
    cell_key    TEXT NOT NULL,              -- key of the cell that failed
    run_id      TEXT NOT NULL,              -- run in which it failed
    key_text    TEXT,                       -- its canonical description
    dataset     TEXT,                       -- dataset
    model_name  TEXT,                       -- model name
    method      TEXT,                       -- method
    knob        TEXT,                       -- knob
    exit_status INTEGER,                    -- eval's exit status, or 128 + signal
    error       TEXT,                       -- last lines eval wrote on stderr
    at          TEXT NOT NULL,              -- when
    PRIMARY KEY (cell_key, run_id)
);

-- The latest row of each logical experiment: what figures and tables read, so rows left
-- by older code versions or checkpoints stay in the file without being mixed in.
CREATE VIEW current_cells AS
SELECT c.* FROM cells c
WHERE c.cell_key = (SELECT d.cell_key FROM cells d WHERE d.logical_key = c.logical_key
                    ORDER BY d.finished_at DESC, d.cell_key LIMIT 1);

-- One point per (dataset, split, max_len, method, model, knob): means over seeds and batch
-- sizes (accuracy and FLOPs do not depend on the batch).
CREATE VIEW points AS
SELECT dataset, split, max_len, method, model_name, knob, knob_name, avg(knob_value) AS knob_value,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(accuracy) AS accuracy, avg(macro_f1) AS macro_f1, avg(flops_speedup) AS flops_speedup,
       avg(mean_tokens) AS mean_tokens,
       avg(CASE WHEN batch = 1 THEN wall_speedup END) AS wall_speedup_b1,
       avg(CASE WHEN batch = 32 THEN wall_speedup END) AS wall_speedup_b32
FROM current_cells WHERE accuracy IS NOT NULL
GROUP BY dataset, split, max_len, method, model_name, knob;

-- Accuracy-speedup Pareto points per dataset and method: no other point of the same
-- dataset, split, truncation and method is at least as accurate and at least as fast.
CREATE VIEW frontier AS
SELECT p.* FROM points p
WHERE NOT EXISTS (SELECT 1 FROM points q
                  WHERE q.dataset = p.dataset AND q.split = p.split AND q.max_len = p.max_len
                    AND q.method = p.method
                    AND q.accuracy >= p.accuracy AND q.flops_speedup >= p.flops_speedup
                    AND (q.accuracy > p.accuracy OR q.flops_speedup > p.flops_speedup))
ORDER BY dataset, split, max_len, method, flops_speedup;

-- The unpruned reference of each dataset: method none, mean over its cells.
CREATE VIEW reference AS
SELECT dataset, split, max_len, avg(accuracy) AS ref_accuracy, avg(macro_f1) AS ref_macro_f1, count(*) AS n_cells
FROM current_cells WHERE method = 'none' GROUP BY dataset, split, max_len;

-- The paper's table: per dataset and method, the fastest point (FLOPs) whose accuracy is
-- within 1 point of the unpruned model; a method with no such point has NULL columns.
CREATE VIEW paper_table AS
WITH ok AS (
    SELECT p.*, row_number() OVER (PARTITION BY p.dataset, p.split, p.max_len, p.method
                                   ORDER BY p.flops_speedup DESC, p.accuracy DESC) AS rk
    FROM points p JOIN reference r USING (dataset, split, max_len)
    WHERE p.accuracy >= r.ref_accuracy - 0.01
), methods AS (SELECT DISTINCT dataset, split, max_len, method FROM points)
SELECT m.dataset, m.split, m.max_len, m.method, r.ref_accuracy, ok.accuracy,
       ok.accuracy - r.ref_accuracy AS delta, ok.flops_speedup, ok.wall_speedup_b1, ok.wall_speedup_b32,
       ok.mean_tokens, ok.knob, ok.model_name
FROM methods m JOIN reference r USING (dataset, split, max_len)
LEFT JOIN ok ON ok.dataset = m.dataset AND ok.split = m.split AND ok.max_len = m.max_len
            AND ok.method = m.method AND ok.rk = 1
ORDER BY m.dataset, m.split, m.max_len, ok.flops_speedup DESC;

-- Rationale quality (datasets with human rationales): per method and knob, the words kept
-- at the last layer against the rationale.  Rows of --match runs carry the knob of the
-- AdapLeR cell they matched (match_knob), so equal-cost rows sort together.
CREATE VIEW eraser_table AS
SELECT dataset, split, max_len, coalesce(match_knob, knob) AS operating_point, method, knob, model_name,
       count(*) AS n_cells, avg(accuracy) AS accuracy, avg(flops_speedup) AS flops_speedup,
       avg(last_tokens) AS last_tokens, avg(eraser_fpr) AS fpr, avg(eraser_tpr) AS tpr,
       avg(eraser_precision) AS precision, avg(eraser_f1) AS f1,
       avg(eraser_fpr_macro) AS fpr_macro, avg(eraser_tpr_macro) AS tpr_macro
FROM current_cells WHERE eraser_fpr IS NOT NULL
GROUP BY dataset, split, max_len, operating_point, method, knob, model_name
ORDER BY dataset, split, max_len, operating_point, method;

-- Measured wall-clock against FLOPs speedup, per timed cell.
CREATE VIEW latency AS
SELECT dataset, split, max_len, method, model_name, knob, batch, threads, timing, mean_length,
       flops_speedup, wall_speedup, wall_speedup_lo, wall_speedup_hi,
       wall_speedup / flops_speedup AS wall_over_flops, dense_seconds, pruned_seconds, examples
FROM current_cells WHERE wall_speedup IS NOT NULL
ORDER BY dataset, max_len, method, batch, flops_speedup;

-- @version 2

-- Half-precision weights (eval --weights f16; the sweep setting `weights`).  Rows written
-- before this version ran with fp32 weights.
ALTER TABLE cells ADD COLUMN weights TEXT NOT NULL DEFAULT 'f32'; -- projection weights: f32, or f16 (the encoder's projections and pooler rounded to IEEE half)

-- The accuracy and FLOPs views compare methods at fp32 weights, as the paper does: f16
-- rows (an inference setting, same FLOPs, slightly other numerics) stay out of points,
-- frontier, reference, paper_table and eraser_table, and are in cells, current_cells and
-- latency, which gains the weights column.
DROP VIEW paper_table;
DROP VIEW frontier;
DROP VIEW points;
DROP VIEW reference;
DROP VIEW eraser_table;
DROP VIEW latency;

CREATE VIEW points AS
SELECT dataset, split, max_len, method, model_name, knob, knob_name, avg(knob_value) AS knob_value,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(accuracy) AS accuracy, avg(macro_f1) AS macro_f1, avg(flops_speedup) AS flops_speedup,
       avg(mean_tokens) AS mean_tokens,
       avg(CASE WHEN batch = 1 THEN wall_speedup END) AS wall_speedup_b1,
       avg(CASE WHEN batch = 32 THEN wall_speedup END) AS wall_speedup_b32
FROM current_cells WHERE accuracy IS NOT NULL AND weights = 'f32'
GROUP BY dataset, split, max_len, method, model_name, knob;

CREATE VIEW frontier AS
SELECT p.* FROM points p
WHERE NOT EXISTS (SELECT 1 FROM points q
                  WHERE q.dataset = p.dataset AND q.split = p.split AND q.max_len = p.max_len
                    AND q.method = p.method
                    AND q.accuracy >= p.accuracy AND q.flops_speedup >= p.flops_speedup
                    AND (q.accuracy > p.accuracy OR q.flops_speedup > p.flops_speedup))
ORDER BY dataset, split, max_len, method, flops_speedup;

CREATE VIEW reference AS
SELECT dataset, split, max_len, avg(accuracy) AS ref_accuracy, avg(macro_f1) AS ref_macro_f1, count(*) AS n_cells
FROM current_cells WHERE method = 'none' AND weights = 'f32' GROUP BY dataset, split, max_len;

CREATE VIEW paper_table AS
WITH ok AS (
    SELECT p.*, row_number() OVER (PARTITION BY p.dataset, p.split, p.max_len, p.method
                                   ORDER BY p.flops_speedup DESC, p.accuracy DESC) AS rk
    FROM points p JOIN reference r USING (dataset, split, max_len)
    WHERE p.accuracy >= r.ref_accuracy - 0.01
), methods AS (SELECT DISTINCT dataset, split, max_len, method FROM points)
SELECT m.dataset, m.split, m.max_len, m.method, r.ref_accuracy, ok.accuracy,
       ok.accuracy - r.ref_accuracy AS delta, ok.flops_speedup, ok.wall_speedup_b1, ok.wall_speedup_b32,
       ok.mean_tokens, ok.knob, ok.model_name
FROM methods m JOIN reference r USING (dataset, split, max_len)
LEFT JOIN ok ON ok.dataset = m.dataset AND ok.split = m.split AND ok.max_len = m.max_len
            AND ok.method = m.method AND ok.rk = 1
ORDER BY m.dataset, m.split, m.max_len, ok.flops_speedup DESC;

CREATE VIEW eraser_table AS
SELECT dataset, split, max_len, coalesce(match_knob, knob) AS operating_point, method, knob, model_name,
       count(*) AS n_cells, avg(accuracy) AS accuracy, avg(flops_speedup) AS flops_speedup,
       avg(last_tokens) AS last_tokens, avg(eraser_fpr) AS fpr, avg(eraser_tpr) AS tpr,
       avg(eraser_precision) AS precision, avg(eraser_f1) AS f1,
       avg(eraser_fpr_macro) AS fpr_macro, avg(eraser_tpr_macro) AS tpr_macro
FROM current_cells WHERE eraser_fpr IS NOT NULL AND weights = 'f32'
GROUP BY dataset, split, max_len, operating_point, method, knob, model_name
ORDER BY dataset, split, max_len, operating_point, method;

-- Measured wall-clock against FLOPs speedup, per timed cell, with the weights it ran with.
CREATE VIEW latency AS
SELECT dataset, split, max_len, method, model_name, knob, batch, threads, timing, mean_length,
       flops_speedup, wall_speedup, wall_speedup_lo, wall_speedup_hi,
       wall_speedup / flops_speedup AS wall_over_flops, dense_seconds, pruned_seconds, examples, weights
FROM current_cells WHERE wall_speedup IS NOT NULL
ORDER BY dataset, max_len, method, batch, weights, flops_speedup;

-- @version 3

-- A match= run (eraser.sweep: a method forced to keep another cell's per-layer token counts,
-- example by example) borrows that cell's adaptivity: its points say how the method's scores
-- choose tokens at AdapLeR's budget, not how fast the method is at its own knob.  They stay
-- out of points, and so out of frontier and paper_table, which read points by name (a
-- cascade row at AdapLeR's eta-scale 0.5 counts had become HateXplain's cascade entry of
-- paper_table), and in eraser_table, cells and current_cells.
DROP VIEW points;

CREATE VIEW points AS
SELECT dataset, split, max_len, method, model_name, knob, knob_name, avg(knob_value) AS knob_value,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(accuracy) AS accuracy, avg(macro_f1) AS macro_f1, avg(flops_speedup) AS flops_speedup,
       avg(mean_tokens) AS mean_tokens,
       avg(CASE WHEN batch = 1 THEN wall_speedup END) AS wall_speedup_b1,
       avg(CASE WHEN batch = 32 THEN wall_speedup END) AS wall_speedup_b32
FROM current_cells WHERE accuracy IS NOT NULL AND weights = 'f32' AND match_key IS NULL
GROUP BY dataset, split, max_len, method, model_name, knob;

-- @version 4

-- A method can run on several models of one dataset: PoWER-BERT and LTP training-free on the
-- fine-tuned model (model_name small) and as their papers train them (small-power,
-- small-ltp, one checkpoint per lambda).  Each (method, model_name) pair is its own curve:
-- frontier's Pareto test and paper_table's rows are per pair, so a trained method's row no
-- longer hides (or is hidden by) its training-free form.  points already kept model_name.
DROP VIEW paper_table;
DROP VIEW frontier;

CREATE VIEW frontier AS
SELECT p.* FROM points p
WHERE NOT EXISTS (SELECT 1 FROM points q
                  WHERE q.dataset = p.dataset AND q.split = p.split AND q.max_len = p.max_len
                    AND q.method = p.method AND q.model_name IS p.model_name
                    AND q.accuracy >= p.accuracy AND q.flops_speedup >= p.flops_speedup
                    AND (q.accuracy > p.accuracy OR q.flops_speedup > p.flops_speedup))
ORDER BY dataset, split, max_len, method, model_name, flops_speedup;

CREATE VIEW paper_table AS
WITH ok AS (
    SELECT p.*, row_number() OVER (PARTITION BY p.dataset, p.split, p.max_len, p.method, p.model_name
                                   ORDER BY p.flops_speedup DESC, p.accuracy DESC) AS rk
    FROM points p JOIN reference r USING (dataset, split, max_len)
    WHERE p.accuracy >= r.ref_accuracy - 0.01
), series AS (SELECT DISTINCT dataset, split, max_len, method, model_name FROM points)
SELECT m.dataset, m.split, m.max_len, m.method, r.ref_accuracy, ok.accuracy,
       ok.accuracy - r.ref_accuracy AS delta, ok.flops_speedup, ok.wall_speedup_b1, ok.wall_speedup_b32,
       ok.mean_tokens, ok.knob, m.model_name
FROM series m JOIN reference r USING (dataset, split, max_len)
LEFT JOIN ok ON ok.dataset = m.dataset AND ok.split = m.split AND ok.max_len = m.max_len
            AND ok.method = m.method AND ok.model_name IS m.model_name AND ok.rk = 1
ORDER BY m.dataset, m.split, m.max_len, ok.flops_speedup DESC;

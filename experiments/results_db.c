/* results_db.c: the SQLite results database (see results_db.h and results/schema.sql). */
#include "results_db.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* results/schema.sql, embedded at build time (the Makefile makes this object depend on it). */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "adp_schema_sql_start:\n"
        ".incbin \"results/schema.sql\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char adp_schema_sql_start[] __asm__("adp_schema_sql_start");

const char *results_db_schema_sql(void) { return adp_schema_sql_start; }

#define BUSY_TIMEOUT_MS 120000
#define SECTION_MARK "-- @version "

/* Section n of the schema (1-based): [*start, *end).  Returns 0 if there is none. */
static int schema_section(int n, const char **start, const char **end) {
    const char *s = results_db_schema_sql();
    for (const char *p = s; (p = strstr(p, SECTION_MARK)) != NULL; p++) {
        if (p != s && p[-1] != '\n') continue;
        if (atoi(p + strlen(SECTION_MARK)) != n) continue;
        const char *body = strchr(p, '\n');
        body = body ? body + 1 : p + strlen(p);
        const char *next = body;
        while ((next = strstr(next, SECTION_MARK)) != NULL && next[-1] != '\n') next++;
        *start = body, *end = next ? next : body + strlen(body);
        return 1;
    }
    return 0;
}

int results_db_latest_version(void) {
    const char *a, *b;
    int n = 0;
    while (schema_section(n + 1, &a, &b)) n++;
    return n;
}

static int db_err(results_db *r, const char *what) {
    return adp_seterr("%s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

int results_db_exec(results_db *r, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        adp_seterr("%s: %s", r->path, msg ? msg : sqlite3_errmsg(r->db));
        sqlite3_free(msg);
        return ADP_ERR;
    }
    return ADP_OK;
}

static int table_exists(results_db *r, const char *name, int *exists) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_err(r, "reading the schema");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? ADP_OK : db_err(r, "reading the schema");
}

int results_db_version(results_db *r, int *version) {
    int exists;
    *version = 0;
    if (table_exists(r, "schema_version", &exists) != ADP_OK) return ADP_ERR;
    if (!exists) return ADP_OK;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "SELECT max(version) FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        return db_err(r, "reading schema_version");
    if (sqlite3_step(st) == SQLITE_ROW) *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return ADP_OK;
}

/* Apply every missing section, each in one IMMEDIATE transaction that re-reads the version
 * under the write lock (another process may be migrating the same file). */
static int migrate(results_db *r) {
    int latest = results_db_latest_version();
    for (int n = 1; n <= latest; n++) {
        if (results_db_exec(r, "BEGIN IMMEDIATE") != ADP_OK) return ADP_ERR;
        int v;
        if (results_db_version(r, &v) != ADP_OK) goto fail;
        if (v > latest) {
            adp_seterr("%s: schema version %d is newer than this binary's %d (rebuild adapler)", r->path, v, latest);
            goto fail;
        }
        if (v < n) {
            const char *a, *b;
            schema_section(n, &a, &b);
            char *sql = strndup(a, (size_t)(b - a));
            char bump[96];
            snprintf(bump, sizeof bump, n == 1 ? "INSERT INTO schema_version VALUES (%d)" : "UPDATE schema_version SET version = %d", n);
            int rc = results_db_exec(r, sql);
            free(sql);
            if (rc != ADP_OK) {
                adp_preferr("schema section %d: ", n);
                goto fail;
            }
            if (results_db_exec(r, bump) != ADP_OK) goto fail;
        }
        if (results_db_exec(r, "COMMIT") != ADP_OK) goto fail;
    }
    return ADP_OK;
fail:
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return ADP_ERR;
}

int results_db_open(results_db *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = strdupCheck(path);
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        adp_seterr("%s: cannot open: %s", path, r->db ? sqlite3_errmsg(r->db) : "out of memory");
        results_db_close(r);
        return ADP_ERR;
    }
    sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
    /* Switching a new file to WAL takes a lock; busy handlers are not consulted for it. */
    int rc = ADP_ERR;
    for (int attempt = 0; attempt < 600; attempt++) {
        sqlite3_stmt *st;
        int prc = sqlite3_prepare_v2(r->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        int src = prc == SQLITE_OK ? sqlite3_step(st) : prc;
        const char *mode = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int wal = mode && !strcmp(mode, "wal");
        if (prc == SQLITE_OK) sqlite3_finalize(st);
        if (wal) {
            rc = ADP_OK;
            break;
        }
        if (src != SQLITE_BUSY && src != SQLITE_LOCKED && src != SQLITE_ROW) {
            adp_seterr("%s: %s", path,
                       src == SQLITE_NOTADB ? "not an SQLite database" : sqlite3_errmsg(r->db));
            break;
        }
        usleep(100000);
    }
    if (rc == ADP_OK && results_db_exec(r, "PRAGMA synchronous = NORMAL") != ADP_OK) rc = ADP_ERR;
    if (rc == ADP_OK) rc = migrate(r);
    if (rc != ADP_OK) {
        char *keep = strdupCheck(adp_errmsg());
        results_db_close(r);
        adp_seterr("%s", keep);
        free(keep);
    }
    return rc;
}

void results_db_close(results_db *r) {
    if (r->db) sqlite3_close_v2(r->db);
    free(r->path);
    memset(r, 0, sizeof *r);
}

void results_new_run_id(char out[33]) {
    unsigned char b[16];
    int ok = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        ok = read(fd, b, sizeof b) == (ssize_t)sizeof b;
        close(fd);
    }
    if (!ok) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[i] = (unsigned char)x;
        }
    }
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ---- statements ------------------------------------------------------------------- */

static int prepare(results_db *r, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) return db_err(r, "preparing a statement");
    return ADP_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

static int step_done(results_db *r, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ADP_OK : adp_seterr("%s: %s: %s", r->path, what, sqlite3_errstr(rc));
}

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

int results_db_run_begin(results_db *r, const results_run *u) {
    sqlite3_stmt *st;
    if (prepare(r,
                "INSERT INTO runs (run_id, sweep, sweep_file, sweep_sha256, command, code_version, git_describe, host, "
                "cpu, cores, jobs, threads_per_job, blas, environment, started_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " NOW ", 'running')",
                &st) != ADP_OK)
        return ADP_ERR;
    bind_text(st, 1, u->run_id), bind_text(st, 2, u->sweep), bind_text(st, 3, u->sweep_file);
    bind_text(st, 4, u->sweep_sha256), bind_text(st, 5, u->command), bind_text(st, 6, u->code_version);
    bind_text(st, 7, u->git_describe), bind_text(st, 8, u->host), bind_text(st, 9, u->cpu);
    sqlite3_bind_int(st, 10, u->cores), sqlite3_bind_int(st, 11, u->jobs), sqlite3_bind_int(st, 12, u->threads_per_job);
    bind_text(st, 13, u->blas), bind_text(st, 14, u->environment);
    return step_done(r, st, "recording the run");
}

int results_db_run_end(results_db *r, const char *run_id, const char *status, long done, long failed) {
    sqlite3_stmt *st;
    if (prepare(r, "UPDATE runs SET ended_at = " NOW ", status = ?, cells_done = ?, cells_failed = ? WHERE run_id = ?",
                &st) != ADP_OK)
        return ADP_ERR;
    bind_text(st, 1, status), sqlite3_bind_int64(st, 2, done), sqlite3_bind_int64(st, 3, failed);
    bind_text(st, 4, run_id);
    return step_done(r, st, "closing the run");
}

int results_db_put_model(results_db *r, const results_model *m) {
    sqlite3_stmt *st;
    if (prepare(r,
                "INSERT OR IGNORE INTO models (model_hash, name, path, dataset, config, layers, hidden, heads, "
                "intermediate, vocab_size, num_labels, has_adapler, bytes, recipe, hyperparams, dev_score, first_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " NOW ")",
                &st) != ADP_OK)
        return ADP_ERR;
    char config[96];
    snprintf(config, sizeof config, "L%d H%d A%d I%d", m->layers, m->hidden, m->heads, m->intermediate);
    bind_text(st, 1, m->hash), bind_text(st, 2, m->name), bind_text(st, 3, m->path), bind_text(st, 4, m->dataset);
    bind_text(st, 5, config);
    sqlite3_bind_int(st, 6, m->layers), sqlite3_bind_int(st, 7, m->hidden), sqlite3_bind_int(st, 8, m->heads);
    sqlite3_bind_int(st, 9, m->intermediate), sqlite3_bind_int(st, 10, m->vocab_size);
    sqlite3_bind_int(st, 11, m->num_labels), sqlite3_bind_int(st, 12, m->has_adapler);
    sqlite3_bind_int64(st, 13, m->bytes), bind_text(st, 14, m->recipe), bind_text(st, 15, m->hyperparams);
    bind_real(st, 16, m->dev_score);
    return step_done(r, st, "registering a model");
}

int results_db_cell_done(results_db *r, const char *cell_key, int need_examples, int *done) {
    sqlite3_stmt *st;
    *done = 0;
    if (prepare(r, "SELECT has_examples FROM cells WHERE cell_key = ?", &st) != ADP_OK) return ADP_ERR;
    bind_text(st, 1, cell_key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *done = !need_examples || sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ADP_OK : adp_seterr("%s: %s", r->path, sqlite3_errstr(rc));
}

int results_db_cell_failed(results_db *r, const char *cell_key, int *failed) {
    sqlite3_stmt *st;
    *failed = 0;
    if (prepare(r, "SELECT count(*) FROM failures WHERE cell_key = ?", &st) != ADP_OK) return ADP_ERR;
    bind_text(st, 1, cell_key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *failed = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? ADP_OK : adp_seterr("%s: %s", r->path, sqlite3_errstr(rc));
}

/* ---- a finished cell ----------------------------------------------------------------- */

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double jarr(const cJSON *o, const char *k, int i) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    const cJSON *v = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, i) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int commit_or_rollback(results_db *r, int rc) {
    if (rc == ADP_OK && results_db_exec(r, "COMMIT") == ADP_OK) return ADP_OK;
    char *keep = strdupCheck(adp_errmsg());
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    adp_seterr("%s", keep);
    free(keep);
    return ADP_ERR;
}

static int put_examples(results_db *r, const char *cell_key, char *const *lines, size_t n) {
    sqlite3_stmt *st;
    if (prepare(r,
                "INSERT INTO examples (cell_key, idx, example_id, label, pred, flops, layer_tokens, kept, "
                "token_layers, pieces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &st) != ADP_OK)
        return ADP_ERR;
    int rc = ADP_OK;
    for (size_t i = 0; i < n && rc == ADP_OK; i++) {
        cJSON *e = cJSON_Parse(lines[i]);
        const cJSON *idx = e ? cJSON_GetObjectItemCaseSensitive(e, "index") : NULL;
        if (!cJSON_IsNumber(idx)) {
            rc = adp_seterr("per-example line %zu: not a JSON object with an index", i + 1);
            cJSON_Delete(e);
            break;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        bind_text(st, 1, cell_key);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)idx->valuedouble);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        bind_text(st, 3, cJSON_IsString(id) ? id->valuestring : NULL);
        sqlite3_bind_int(st, 4, (int)jnum(e, "label"));
        sqlite3_bind_int(st, 5, (int)jnum(e, "pred"));
        bind_real(st, 6, jnum(e, "flops"));
        const char *arrays[] = {"layer_tokens", "kept", "token_layers", "pieces"};
        for (int k = 0; k < 4; k++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, arrays[k]);
            char *s = a ? cJSON_PrintUnformatted(a) : NULL;
            bind_text(st, 7 + k, s);
            free(s);
        }
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_err(r, "storing per-example rows");
        cJSON_Delete(e);
    }
    sqlite3_finalize(st);
    return rc;
}

static const char CELL_SQL[] =
    "INSERT INTO cells (cell_key, key_text, logical_key, run_id, sweep, dataset, dataset_options, split, model_hash, "
    "model_name, model_path, model_vars, method, method_options, knob, knob_name, knob_value, label, match_key, "
    "match_knob, seed, batch, max_len, threads, repeats, timing, concurrent, code_version, examples, truncated, "
    "accuracy, macro_f1, f1, flops_speedup, gflops, gflops_dense, wall_speedup, wall_speedup_lo, wall_speedup_hi, "
    "dense_seconds, pruned_seconds, mean_length, mean_tokens, last_tokens, eraser_keys, eraser_fpr, eraser_tpr, "
    "eraser_fpr_macro, eraser_tpr_macro, eraser_precision, eraser_f1, has_examples, eval_json, seconds, weights, "
    "finished_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, "
    "?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41, ?42, ?43, ?44, ?45, "
    "?46, ?47, ?48, ?49, ?50, ?51, ?52, ?53, ?54, ?55, " NOW ")";

int results_db_put_cell(results_db *r, const results_cell *c, const char *eval_json, char *const *example_lines,
                        size_t n_examples, double seconds) {
    cJSON *j = cJSON_Parse(eval_json);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return adp_seterr("eval output is not a JSON object: %.120s", eval_json);
    }
    static const char *required[] = {"accuracy", "macro_f1", "flops_speedup", "gflops", "gflops_dense",
                                     "mean_length", "examples", "max_len", "threads"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!isfinite(jnum(j, required[i]))) {
            cJSON_Delete(j);
            return adp_seterr("eval output lacks the number '%s'", required[i]);
        }
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(j, "layer_tokens");
    int L = cJSON_IsArray(lt) ? cJSON_GetArraySize(lt) : 0;
    if (L <= 0) {
        cJSON_Delete(j);
        return adp_seterr("eval output lacks layer_tokens");
    }
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "eraser");
    if (!cJSON_IsObject(er)) er = NULL;
    double mean_len = jnum(j, "mean_length"), mean_tok = 0;
    for (int l = 0; l < L; l++) mean_tok += jarr(j, "layer_tokens", l) / L;

    if (results_db_exec(r, "BEGIN IMMEDIATE") != ADP_OK) {
        cJSON_Delete(j);
        return ADP_ERR;
    }
    int rc = ADP_OK;
    sqlite3_stmt *st = NULL;
    /* a rerun of the same key replaces the row and everything hanging off it */
    static const char *wipe[] = {"DELETE FROM cells WHERE cell_key = ?", "DELETE FROM cell_layers WHERE cell_key = ?",
                                 "DELETE FROM examples WHERE cell_key = ?"};
    for (int k = 0; k < 3 && rc == ADP_OK; k++) {
        if ((rc = prepare(r, wipe[k], &st)) != ADP_OK) break;
        bind_text(st, 1, c->cell_key);
        rc = step_done(r, st, "replacing an earlier row");
    }
    if (rc == ADP_OK && (rc = prepare(r, CELL_SQL, &st)) == ADP_OK) {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(j, "knob");
        bind_text(st, 1, c->cell_key), bind_text(st, 2, c->key_text), bind_text(st, 3, c->logical_key);
        bind_text(st, 4, c->run_id), bind_text(st, 5, c->sweep), bind_text(st, 6, c->dataset);
        bind_text(st, 7, c->dataset_options), bind_text(st, 8, c->split), bind_text(st, 9, c->model_hash);
        bind_text(st, 10, c->model_name), bind_text(st, 11, c->model_path), bind_text(st, 12, c->model_vars);
        bind_text(st, 13, c->method), bind_text(st, 14, c->method_options), bind_text(st, 15, c->knob);
        bind_text(st, 16, c->knob_name), bind_real(st, 17, c->knob_value);
        bind_text(st, 18, cJSON_IsString(label) ? label->valuestring : NULL);
        bind_text(st, 19, c->match_key), bind_text(st, 20, c->match_knob);
        sqlite3_bind_int64(st, 21, c->seed), sqlite3_bind_int64(st, 22, c->batch);
        sqlite3_bind_int64(st, 23, (sqlite3_int64)jnum(j, "max_len"));
        sqlite3_bind_int64(st, 24, (sqlite3_int64)jnum(j, "threads"));
        sqlite3_bind_int64(st, 25, c->repeats), bind_text(st, 26, c->timing), sqlite3_bind_int(st, 27, c->concurrent);
        bind_text(st, 28, c->code_version);
        sqlite3_bind_int64(st, 29, (sqlite3_int64)jnum(j, "examples"));
        bind_real(st, 30, jnum(j, "truncated"));
        bind_real(st, 31, jnum(j, "accuracy")), bind_real(st, 32, jnum(j, "macro_f1")), bind_real(st, 33, jnum(j, "f1"));
        bind_real(st, 34, jnum(j, "flops_speedup")), bind_real(st, 35, jnum(j, "gflops"));
        bind_real(st, 36, jnum(j, "gflops_dense")), bind_real(st, 37, jnum(j, "wall_speedup"));
        bind_real(st, 38, jarr(j, "wall_speedup_range", 0)), bind_real(st, 39, jarr(j, "wall_speedup_range", 1));
        bind_real(st, 40, jnum(j, "dense_seconds")), bind_real(st, 41, jnum(j, "pruned_seconds"));
        bind_real(st, 42, mean_len), bind_real(st, 43, mean_tok), bind_real(st, 44, jarr(j, "layer_tokens", L - 1));
        if (er) {
            sqlite3_bind_int64(st, 45, (sqlite3_int64)jnum(er, "keys"));
            bind_real(st, 46, jarr(er, "fpr", L - 1)), bind_real(st, 47, jarr(er, "tpr", L - 1));
            bind_real(st, 48, jarr(er, "fpr_macro", L - 1)), bind_real(st, 49, jarr(er, "tpr_macro", L - 1));
            bind_real(st, 50, jarr(er, "precision", L - 1)), bind_real(st, 51, jarr(er, "f1", L - 1));
        }
        sqlite3_bind_int(st, 52, n_examples > 0);
        bind_text(st, 53, eval_json);
        bind_real(st, 54, seconds);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weights");
        bind_text(st, 55, cJSON_IsString(w) ? w->valuestring : "f32"); /* eval before --weights: f32 */
        rc = step_done(r, st, "storing the cell");
    }
    if (rc == ADP_OK && (rc = prepare(r,
                                      "INSERT INTO cell_layers (cell_key, layer, tokens, keep_fraction, eraser_fpr, "
                                      "eraser_tpr, eraser_fpr_macro, eraser_tpr_macro) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                      &st)) == ADP_OK) {
        for (int l = 0; l < L && rc == ADP_OK; l++) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            bind_text(st, 1, c->cell_key);
            sqlite3_bind_int(st, 2, l);
            double t = jarr(j, "layer_tokens", l);
            bind_real(st, 3, t), bind_real(st, 4, mean_len > 0 ? t / mean_len : NAN);
            if (er) {
                bind_real(st, 5, jarr(er, "fpr", l)), bind_real(st, 6, jarr(er, "tpr", l));
                bind_real(st, 7, jarr(er, "fpr_macro", l)), bind_real(st, 8, jarr(er, "tpr_macro", l));
            }
            if (sqlite3_step(st) != SQLITE_DONE) rc = db_err(r, "storing per-layer rows");
        }
        sqlite3_finalize(st);
    }
    if (rc == ADP_OK && n_examples) rc = put_examples(r, c->cell_key, example_lines, n_examples);
    cJSON_Delete(j);
    return commit_or_rollback(r, rc);
}

int results_db_put_failure(results_db *r, const results_cell *c, int exit_status, const char *error) {
    sqlite3_stmt *st;
    if (prepare(r,
                "INSERT OR REPLACE INTO failures (cell_key, run_id, key_text, dataset, model_name, method, knob, "
                "exit_status, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, " NOW ")",
                &st) != ADP_OK)
        return ADP_ERR;
    bind_text(st, 1, c->cell_key), bind_text(st, 2, c->run_id), bind_text(st, 3, c->key_text);
    bind_text(st, 4, c->dataset), bind_text(st, 5, c->model_name), bind_text(st, 6, c->method);
    bind_text(st, 7, c->knob), sqlite3_bind_int(st, 8, exit_status), bind_text(st, 9, error);
    return step_done(r, st, "recording a failure");
}

/* ---- merge --------------------------------------------------------------------------- */

static long count_of(results_db *r, const char *sql) {
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int results_db_merge(results_db *r, const char *shard_path, long *new_cells, long *dup_cells) {
    if (access(shard_path, R_OK) != 0) return adp_seterr("%s: cannot read: %s", shard_path, strerror(errno));
    /* Migrate (or reject) the shard with its own connection first, so both sides have the
     * same tables and column order. */
    results_db shard;
    if (results_db_open(&shard, shard_path) != ADP_OK) return ADP_ERR;
    results_db_close(&shard);

    sqlite3_stmt *st;
    if (prepare(r, "ATTACH DATABASE ? AS shard", &st) != ADP_OK) return ADP_ERR;
    bind_text(st, 1, shard_path);
    if (step_done(r, st, "attaching the shard") != ADP_OK) return adp_preferr("%s: ", shard_path);

    int rc = results_db_exec(r, "BEGIN IMMEDIATE");
    long total = count_of(r, "SELECT count(*) FROM shard.cells");
    long before = count_of(r, "SELECT count(*) FROM main.cells");
    static const char *steps[] = {
        "INSERT OR IGNORE INTO main.runs SELECT * FROM shard.runs",
        "INSERT OR IGNORE INTO main.models SELECT * FROM shard.models",
        "INSERT OR IGNORE INTO main.cells SELECT * FROM shard.cells",
        "INSERT OR IGNORE INTO main.cell_layers SELECT * FROM shard.cell_layers",
        "INSERT OR IGNORE INTO main.examples SELECT * FROM shard.examples",
        "INSERT OR IGNORE INTO main.failures SELECT * FROM shard.failures",
        /* a cell already present without per-example rows gains the shard's */
        "UPDATE main.cells SET has_examples = 1 WHERE has_examples = 0 AND cell_key IN "
        "(SELECT cell_key FROM shard.cells WHERE has_examples = 1)",
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps && rc == ADP_OK; i++) rc = results_db_exec(r, steps[i]);
    long after = rc == ADP_OK ? count_of(r, "SELECT count(*) FROM main.cells") : -1;
    rc = commit_or_rollback(r, rc);
    if (results_db_exec(r, "DETACH DATABASE shard") != ADP_OK && rc == ADP_OK) rc = ADP_ERR;
    if (rc != ADP_OK) return adp_preferr("merging %s: ", shard_path);
    if (new_cells) *new_cells = after - before;
    if (dup_cells) *dup_cells = total - (after - before);
    return ADP_OK;
}

/* ---- per-example rows for --match ------------------------------------------------------ */

int results_db_write_examples(results_db *r, const char *cell_key, const char *path) {
    sqlite3_stmt *st;
    if (prepare(r,
                "SELECT idx, example_id, label, pred, layer_tokens, flops, kept FROM examples WHERE cell_key = ? "
                "ORDER BY idx",
                &st) != ADP_OK)
        return ADP_ERR;
    bind_text(st, 1, cell_key);
    size_t cap = 1 << 16, len = 0;
    char *buf = mallocCheck(cap);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *id = cJSON_CreateString((const char *)sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
        char *id_s = cJSON_PrintUnformatted(id);
        cJSON_Delete(id);
        const char *lt = (const char *)sqlite3_column_text(st, 4), *kept = (const char *)sqlite3_column_text(st, 6);
        size_t need = strlen(id_s) + (lt ? strlen(lt) : 2) + (kept ? strlen(kept) : 2) + 160;
        while (len + need >= cap) buf = reallocCheck(buf, cap *= 2);
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"index\": %lld, \"id\": %s, \"label\": %d, \"pred\": %d, \"layer_tokens\": %s, "
                                "\"flops\": %.0f, \"kept\": %s}\n",
                                (long long)sqlite3_column_int64(st, 0), id_s, sqlite3_column_int(st, 2),
                                sqlite3_column_int(st, 3), lt ? lt : "[]", sqlite3_column_double(st, 5),
                                kept ? kept : "[]");
        free(id_s);
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(buf);
        return adp_seterr("%s: reading per-example rows: %s", r->path, sqlite3_errstr(rc));
    }
    if (n == 0) {
        free(buf);
        return adp_seterr("%s: cell %.16s has no per-example rows", r->path, cell_key);
    }
    rc = adp_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

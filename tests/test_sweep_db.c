/* test_sweep_db.c: the results database: creation and migration from an empty file,
 * refusal of foreign or newer files, a comment on every column, concurrent openers, and
 * sweep files: expansion, the list rule, and one-line errors naming file and line. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "experiments/results_db.h"
#include "experiments/sha256.h"
#include "experiments/sweep_file.h"
#include "test.h"

/* Run sql on the database at path (outside results_db: rows as an older binary wrote them). */
static int exec_on(const char *path, const char *sql) {
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return SQLITE_ERROR;
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static long query_long(const char *path, const char *sql) {
    sqlite3 *db;
    long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

TEST(sweep_sha256_known_vectors) {
    char h[65];
    sha256_hex(h, "", 0);
    CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex(h, "abc", 3);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: two blocks */
    sha256_hex(h, m, strlen(m));
    CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* fed in pieces of every size = fed at once */
    char *a = malloc(1000);
    for (int i = 0; i < 1000; i++) a[i] = (char)(i * 7 + 3);
    char whole[65], parts[65];
    sha256_hex(whole, a, 1000);
    sha256_ctx c;
    sha256_init(&c);
    for (size_t off = 0, k = 1; off < 1000; off += k, k = k % 97 + 1) sha256_update(&c, a + off, ADP_MIN(k, 1000 - off));
    sha256_final_hex(&c, parts);
    CHECK_STR(whole, parts);
    free(a);
}

TEST(sweep_schema_created_and_migrated_from_an_empty_file) {
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.db", test_tmpdir());
    write_file(path, ""); /* a 0-byte file: version 0 */
    results_db db;
    REQUIRE(results_db_open(&db, path) == ADP_OK);
    int v = -1;
    CHECK(results_db_version(&db, &v) == ADP_OK);
    CHECK_INT(v, results_db_latest_version());
    CHECK(v >= 1);
    results_db_close(&db);
    const char *objects[] = {"runs", "models", "cells", "cell_layers", "examples", "failures", "schema_version",
                             "current_cells", "points", "frontier", "reference", "paper_table", "eraser_table", "latency"};
    for (size_t i = 0; i < sizeof objects / sizeof *objects; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", objects[i]);
        CHECK_MSG(query_long(path, sql) == 1, "%s missing", objects[i]);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", objects[i]); /* every view compiles */
        CHECK_MSG(query_long(path, sql) >= 0, "%s does not run", objects[i]);
    }
    CHECK_INT(query_long(path, "SELECT count(*) FROM schema_version"), 1);
    CHECK(query_long(path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'") == 1);
    /* reopening changes nothing */
    REQUIRE(results_db_open(&db, path) == ADP_OK);
    results_db_close(&db);
    CHECK_INT(query_long(path, "SELECT count(*) FROM schema_version"), 1);
    CHECK_INT(query_long(path, "SELECT max(version) FROM schema_version"), results_db_latest_version());
    /* the command line does the same on a path that does not exist yet */
    CHECK(test_sh("%s results init %s/new.db", getenv("ADAPLER_BIN") ? getenv("ADAPLER_BIN") : "bin/adapler",
                  test_tmpdir()) == 0);
    CHECK(strstr(test_sh_output(), "\"schema_version\": ") != NULL);
}

TEST(sweep_schema_refuses_foreign_and_newer_files) {
    char path[4200];
    results_db db;
    snprintf(path, sizeof path, "%s/text.db", test_tmpdir());
    write_file(path, "this is not a database, just text long enough to have a header of sorts........\n");
    CHECK(results_db_open(&db, path) == ADP_ERR);
    CHECK_MSG(strstr(adp_errmsg(), "not an SQLite database") && strstr(adp_errmsg(), "text.db"), "got: %s", adp_errmsg());
    snprintf(path, sizeof path, "%s/newer.db", test_tmpdir());
    REQUIRE(results_db_open(&db, path) == ADP_OK);
    CHECK(results_db_exec(&db, "UPDATE schema_version SET version = 999") == ADP_OK);
    results_db_close(&db);
    CHECK(results_db_open(&db, path) == ADP_ERR);
    CHECK_MSG(strstr(adp_errmsg(), "newer than this binary") != NULL, "got: %s", adp_errmsg());
}

TEST(sweep_schema_every_column_has_a_comment) {
    /* inside each CREATE TABLE, every column line carries a -- comment */
    const char *s = results_db_schema_sql();
    int tables = 0, columns = 0;
    for (const char *p = strstr(s, "CREATE TABLE"); p; p = strstr(p + 1, "CREATE TABLE")) {
        tables++;
        const char *end = strstr(p, ");");
        REQUIRE(end);
        const char *line = strchr(p, '\n') + 1;
        while (line < end) {
            const char *nl = strchr(line, '\n');
            char buf[512];
            snprintf(buf, sizeof buf, "%.*s", (int)(nl - line), line);
            if (strncmp(buf, "    PRIMARY KEY", 15) != 0 && buf[0] == ' ' && buf[4] != ' ') {
                columns++;
                CHECK_MSG(strstr(buf, "--") != NULL, "column without a comment: %s", buf);
            }
            line = nl + 1;
        }
    }
    CHECK(tables == 7);
    CHECK(columns > 100);
}

TEST(sweep_schema_two_processes_create_one_file_at_once) {
    char path[4200];
    snprintf(path, sizeof path, "%s/race.db", test_tmpdir());
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            results_db db;
            if (results_db_open(&db, path) != ADP_OK) {
                fprintf(stderr, "child %d: %s\n", k, adp_errmsg());
                _exit(1);
            }
            results_db_close(&db);
            _exit(0);
        }
    }
    for (int k = 0; k < 4; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK_INT(query_long(path, "SELECT count(*) FROM schema_version"), 1);
    CHECK_INT(query_long(path, "SELECT count(*) FROM sqlite_master WHERE name = 'cells'"), 1);
}

/* ---- sweep files ---- */

static int load_text(sweep_file *sf, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    write_file(path, text);
    return sweep_file_load(sf, path);
}

TEST(sweep_file_expands_lists_groups_and_models) {
    sweep_file sf;
    REQUIRE(load_text(&sf, "ok.sweep",
                      "# a comment\n"
                      "sweep ok   # trailing comment\n"
                      "dataset planted --planted-n 200\n"
                      "model m models/{dataset}-m-s{seed} : adapler train --dataset {dataset} {dataset_options} \\\n"
                      "      --seed {seed} --out {out}\n"
                      "model ad models/{dataset}-ad-g{gamma}-s{seed} : adapler train --method adapler --init {model:m} --gamma {gamma} --seed {seed} --out {out}\n"
                      "set batch 8,32\n"
                      "run planted m none\n"
                      "run planted ad adapler seeds=1,2 gamma=0.1,0.5 --eta-scale 0,1,2\n"
                      "run planted m schedule batch=4 --schedule 1:0.5,2:0.25\n"
                      "run planted m schedule batch=4 --schedule 1:0.5;1:0.25;2:0.1,3:0.5\n") == ADP_OK);
    CHECK_STR(sf.name, "ok");
    sweep_plan p;
    REQUIRE(sweep_expand(&p, &sf, 0) == ADP_OK);
    /* none: 2 batches; adapler: 2 seeds x 2 gammas x 2 batches x 3 values; schedule: 1; 3 */
    CHECK_INT(p.n_cells, 2 + 24 + 1 + 3);
    CHECK_INT(p.n_groups, 2 + 8 + 1 + 1);
    /* models: m for seed 1 and 2, ad for 2 seeds x 2 gammas */
    CHECK_INT(p.n_models, 6);
    int found = 0;
    for (int i = 0; i < p.n_models; i++)
        if (!strcmp(p.models[i].path, "models/planted-ad-g0.5-s2")) {
            found = 1;
            CHECK_STR(p.models[i].recipe, "adapler train --method adapler --init models/planted-m-s2 --gamma 0.5 --seed 2 "
                                          "--out models/planted-ad-g0.5-s2");
            REQUIRE(p.models[i].n_deps == 1);
            CHECK_STR(p.models[p.models[i].deps[0]].path, "models/planted-m-s2");
            CHECK_STR(p.models[p.models[i].deps[0]].recipe,
                      "adapler train --dataset planted --planted-n 200 --seed 2 --out models/planted-m-s2");
        }
    CHECK(found);
    /* a ',' value the option accepts whole is one value; ';' always separates */
    const sweep_cell *c = &p.cells[26];
    CHECK_STR(c->method_options, "--schedule 1:0.5,2:0.25");
    CHECK_STR(p.cells[29].method_options, "--schedule 2:0.1,3:0.5");
    CHECK_STR(p.cells[2].knob, "gamma=0.1 --eta-scale 0");
    CHECK_STR(p.cells[2].knob_name, "eta_scale");
    CHECK_NEAR(p.cells[3].knob_value, 1.0, 0);
    /* the eval argument of a chunk re-joins its values with the list's separator */
    int cells[2] = {27, 28}, argc = 0;
    char **argv = sweep_eval_method_args(&p, &sf, cells, 2, &argc);
    REQUIRE(argc == 2);
    CHECK_STR(argv[1], "1:0.5;1:0.25");
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
    /* keys: distinct, and stable */
    for (int i = 0; i < p.n_models; i++) snprintf(p.models[i].hash, sizeof p.models[i].hash, "h%d", i);
    sweep_plan_keys(&p, &sf, "v1");
    for (int i = 0; i < p.n_cells; i++)
        for (int j = i + 1; j < p.n_cells; j++) CHECK(strcmp(p.cells[i].cell_key, p.cells[j].cell_key) != 0);
    char k0[65];
    snprintf(k0, sizeof k0, "%s", p.cells[5].cell_key);
    sweep_plan_keys(&p, &sf, "v1");
    CHECK_STR(k0, p.cells[5].cell_key);
    sweep_plan_keys(&p, &sf, "v2"); /* a new code version is a new key, the same logical key */
    CHECK(strcmp(k0, p.cells[5].cell_key) != 0);
    CHECK(strstr(p.cells[5].key_text, "code=v2") != NULL);
    CHECK(strstr(p.cells[5].logical_key, "v2") == NULL);
    sweep_plan_free(&p);
    sweep_file_free(&sf);
}

TEST(sweep_file_bad_input_names_file_and_line) {
    struct {
        const char *text, *expect;
    } bad[] = {
        {"sweep x\nfrobnicate 1\n", "bad.sweep:2: unknown directive 'frobnicate'"},
        {"set batch 0\n", "bad.sweep:1: batch: expected integers in [1, 1000000], got '0'"},
        {"set colour red\n", "bad.sweep:1: unknown setting 'colour'"},
        {"\n\nrun nosuch /m none\n", "bad.sweep:3: unknown dataset 'nosuch'"},
        {"run planted /m magic\n", "bad.sweep:1: unknown method 'magic'"},
        {"run planted /m adapler --eta-scale 1,-1\n", "bad.sweep:1: --eta-scale: expected a number"},
        {"run planted /m adapler --frobs 3\n", "bad.sweep:1: unknown method option '--frobs'"},
        {"run planted /m adapler --method-seed 3\n", "bad.sweep:1: --method-seed: use seeds="},
        {"run planted /m none seeds=1,x\n", "bad.sweep:1: seeds: expected integers"},
        {"run planted nomodel none\n", "bad.sweep:1: unknown model 'nomodel'"},
        {"model m models/m : adapler train --lr {lr} --out {out}\nrun planted m none\n",
         "bad.sweep:2: model m (", /* ... uses {lr}, which this run line does not bind */},
        {"model m models/m\nrun planted m none lambda=1,2\n", "bad.sweep:2: lambda is neither a setting nor a variable of model m"},
        {"model m a/b\nmodel m c/d\n", "bad.sweep:2: model m is already defined at"},
        {"run planted /m none match=x\n", "bad.sweep:1: match=x: no run line has name=x"},
        {"run planted /m adapler --eta-scale 1,2 --schedule 1:0.5;1:0.2\n", "bad.sweep:1: only one method option may hold a list"},
        {"dataset planted --planted-n 1\n", "bad.sweep:1: --planted-n"},
        {"include nosuch.inc\n", "bad.sweep:1: "},
        {"model m models/m-{seed} : cmd --seed {seed} --out {out}\nmodel n models/n : cmd --init {model:m} --seed {seed} --out {out}\nrun planted n none seeds=1,2\n",
         "built by two different commands"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sweep_file sf;
        int rc = load_text(&sf, "bad.sweep", bad[i].text);
        if (rc == ADP_OK) {
            sweep_plan p;
            rc = sweep_expand(&p, &sf, 0);
            if (rc == ADP_OK) sweep_plan_free(&p);
            sweep_file_free(&sf);
        }
        CHECK_MSG(rc == ADP_ERR, "case %zu accepted: %s", i, bad[i].text);
        CHECK_MSG(strstr(adp_errmsg(), bad[i].expect) != NULL, "case %zu: expected '%s' in: %s", i, bad[i].expect,
                  adp_errmsg());
        CHECK_MSG(strchr(adp_errmsg(), '\n') == NULL, "case %zu: message is not one line: %s", i, adp_errmsg());
    }
    /* --skip-unavailable drops a line with an unknown method and says which */
    sweep_file sf;
    REQUIRE(load_text(&sf, "skip.sweep", "run planted /m none\nrun planted /m magic --x 1\n") == ADP_OK);
    sweep_plan p;
    REQUIRE(sweep_expand(&p, &sf, 1) == ADP_OK);
    CHECK_INT(p.n_cells, 1);
    CHECK(p.warnings && strstr(p.warnings, "skip.sweep:2: skipped: unknown method 'magic'"));
    sweep_plan_free(&p);
    sweep_file_free(&sf);
}

/* A database written before version 2 (no weights column) opens migrated: its rows read
 * as fp32 and stay in the accuracy views; an f16 row does not enter them, nor (version 3)
 * a match= row; (version 4) each model of a method is its own curve. */
TEST(sweep_schema_migrates_a_version_1_file) {
    char path[4200];
    snprintf(path, sizeof path, "%s/v1.db", test_tmpdir());
    const char *all = results_db_schema_sql(), *v2 = strstr(all, "\n-- @version 2");
    REQUIRE(v2);
    char *v1 = strndup(all, (size_t)(v2 - all));
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, v1, NULL, NULL, &err);
    CHECK_MSG(rc == SQLITE_OK, "section 1: %s", err ? err : "");
    sqlite3_free(err);
    free(v1);
    REQUIRE(sqlite3_exec(db,
                         "INSERT INTO schema_version VALUES (1);"
                         "INSERT INTO cells (cell_key, key_text, logical_key, dataset, split, model_hash, method, knob,"
                         " code_version, accuracy, flops_speedup, has_examples, finished_at)"
                         " VALUES ('k1', 't', 'l1', 'planted', 'dev', 'h', 'none', '', 'c', 0.9, 1, 0, 'now');",
                         NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    results_db r;
    REQUIRE(results_db_open(&r, path) == ADP_OK);
    results_db_close(&r);
    CHECK_INT(query_long(path, "SELECT max(version) FROM schema_version"), results_db_latest_version());
    CHECK_INT(query_long(path, "SELECT count(*) FROM cells WHERE cell_key = 'k1' AND weights = 'f32'"), 1);
    CHECK_INT(query_long(path, "SELECT count(*) FROM points"), 1);
    CHECK_INT(query_long(path, "SELECT count(*) FROM reference"), 1);
    REQUIRE(exec_on(path, "INSERT INTO cells (cell_key, key_text, logical_key, dataset, split, model_hash, method,"
                          " knob, code_version, accuracy, flops_speedup, wall_speedup, has_examples, finished_at,"
                          " weights) VALUES ('k2', 't2', 'l2', 'planted', 'dev', 'h', 'none', '', 'c', 0.8, 1, 1, 0,"
                          " 'now', 'f16');") == SQLITE_OK);
    CHECK_INT(query_long(path, "SELECT count(*) FROM points"), 1);
    CHECK_INT(query_long(path, "SELECT count(*) FROM current_cells"), 2);
    CHECK_INT(query_long(path, "SELECT count(*) FROM latency WHERE weights = 'f16'"), 1);
    /* version 3: a match= row (another cell's per-layer counts) is no point of its method */
    REQUIRE(exec_on(path, "INSERT INTO cells (cell_key, key_text, logical_key, dataset, split, model_hash, method,"
                          " knob, code_version, accuracy, flops_speedup, has_examples, finished_at, match_key,"
                          " match_knob) VALUES ('k3', 't3', 'l3', 'planted', 'dev', 'h', 'cascade', 'match x', 'c',"
                          " 0.85, 2, 0, 'now', 'k1', '--eta-scale 1');") == SQLITE_OK);
    CHECK_INT(query_long(path, "SELECT count(*) FROM points"), 1);
    CHECK_INT(query_long(path, "SELECT count(*) FROM paper_table WHERE method = 'cascade'"), 0);
    CHECK_INT(query_long(path, "SELECT count(*) FROM current_cells"), 3);
    /* version 4: a method on two models (training-free on the fine-tuned one, and trained)
     * is two curves: the slower one is not dominated, and each has its paper_table row */
    REQUIRE(exec_on(path, "UPDATE cells SET max_len = 64;"
                          "INSERT INTO cells (cell_key, key_text, logical_key, dataset, split, model_hash,"
                          " model_name, method, knob, code_version, accuracy, flops_speedup, has_examples,"
                          " finished_at, max_len) VALUES"
                          " ('k4', 't4', 'l4', 'planted', 'dev', 'h', 'small', 'power', '--retention 0.5', 'c',"
                          " 0.895, 2, 0, 'now', 64),"
                          " ('k5', 't5', 'l5', 'planted', 'dev', 'h5', 'small-power', 'power', 'lambda=1', 'c',"
                          " 0.895, 4, 0, 'now', 64);") == SQLITE_OK);
    CHECK_INT(query_long(path, "SELECT count(*) FROM frontier WHERE method = 'power'"), 2);
    CHECK_INT(query_long(path, "SELECT count(*) FROM paper_table WHERE method = 'power'"), 2);
    CHECK_INT(query_long(path, "SELECT 10 * flops_speedup FROM paper_table WHERE model_name = 'small'"), 20);
    CHECK_INT(query_long(path, "SELECT 10 * flops_speedup FROM paper_table WHERE model_name = 'small-power'"), 40);
}

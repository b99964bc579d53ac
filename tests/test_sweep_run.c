/* test_sweep_run.c: `adapler sweep` end to end on tiny random models and the planted task:
 * a runner killed mid-sweep loses no finished cell and the rerun completes the rest;
 * failures are recorded and retried; two runners share one database; Slurm shards merge
 * idempotently into the same cells as a direct run; the generated Makefile rebuilds only
 * what changed; eval's knob lists equal single runs; every figure script draws from a
 * small database. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
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

/* First column of the first row, as text ("" if none or on error). */
static char *query(const char *db_path, const char *sql) {
    static char out[8192];
    out[0] = 0;
    sqlite3 *db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return out;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static long qlong(const char *db, const char *sql) {
    const char *s = query(db, sql);
    return *s ? atol(s) : -1;
}

static int make_model(const char *dir, const char *extra) {
    return test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 1 --hidden 32 --heads 2 --inter 64 %s", dir, extra);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* No consistency problem in a results database: integrity, per-layer and per-example rows
 * complete for every cell. */
static void check_db_consistent(const char *db) {
    CHECK_STR(query(db, "PRAGMA integrity_check"), "ok");
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells c JOIN models m USING (model_hash) WHERE "
                        "(SELECT count(*) FROM cell_layers l WHERE l.cell_key = c.cell_key) != m.layers"),
              0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells c WHERE has_examples = 1 AND "
                        "(SELECT count(*) FROM examples e WHERE e.cell_key = c.cell_key) != c.examples"),
              0);
}

TEST(sweep_resume_after_kill_loses_no_finished_cell) {
    const char *d = test_tmpdir();
    char db[4200], path[4200];
    REQUIRE(make_model(d, "") == 0);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    char text[2048];
    /* 12 eval processes x 2 values; each cell stores its 500 per-example rows */
    snprintf(text, sizeof text,
             "dataset planted --planted-n 2000\n"
             "run planted %s/m schedule batch=1,2,3,4,5,6,7,8,9,10,11,12 --schedule 0:1;0:0.5\n",
             d);
    write_file(path, text);
    snprintf(db, sizeof db, "%s/r.db", d);
    REQUIRE(test_sh("(%s sweep %s --db %s --jobs 1 --per-example > %s/run1.log 2>&1 & echo $! > %s/pid)", bin(), path,
                    db, d, d) == 0);
    char pidf[4200], *pid_s = NULL;
    snprintf(pidf, sizeof pidf, "%s/pid", d);
    REQUIRE(adp_read_file(pidf, &pid_s, NULL) == ADP_OK);
    pid_t pid = (pid_t)atol(pid_s);
    free(pid_s);
    long seen = 0;
    for (int t = 0; t < 3000 && seen < 4; t++) {
        sleep_ms(10);
        seen = qlong(db, "SELECT count(*) FROM cells");
    }
    REQUIRE(seen >= 4);
    REQUIRE(kill(pid, SIGKILL) == 0); /* no chance to clean up */
    for (int t = 0; t < 500 && kill(pid, 0) == 0; t++) sleep_ms(10);
    sleep_ms(300);
    long after = qlong(db, "SELECT count(*) FROM cells");
    CHECK_MSG(after >= seen, "finished cells lost: %ld seen, %ld after the kill", seen, after);
    REQUIRE(after < 24); /* the kill came mid-sweep */
    check_db_consistent(db);
    /* the children died with the runner */
    char pat[4200];
    /* "[-]-model" matches the children's "--model" but not this shell's own command line */
    snprintf(pat, sizeof pat, "pgrep -f -- '[-]-model %s/m ' > /dev/null", d);
    CHECK_MSG(test_sh("%s", pat) != 0, "an eval process outlived the runner");
    CHECK_STR(query(db, "SELECT status || ',' || coalesce(ended_at, 'null') FROM runs"), "running,null");
    char *first_run = strdup(query(db, "SELECT run_id FROM runs"));
    char *before = strdup(query(db, "SELECT group_concat(cell_key || finished_at, ';') FROM "
                                    "(SELECT * FROM cells ORDER BY cell_key)"));
    /* the rerun does the rest only */
    CHECK(test_sh("%s sweep %s --db %s --jobs 2 --per-example", bin(), path, db) == 0);
    CHECK(strstr(test_sh_output(), "were already done") != NULL);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 24);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT group_concat(cell_key || finished_at, ';') FROM (SELECT * FROM cells WHERE run_id = '%s' ORDER BY cell_key)",
             first_run);
    CHECK_STR(query(db, sql), before);
    snprintf(sql, sizeof sql, "SELECT cells_done FROM runs WHERE run_id <> '%s'", first_run);
    CHECK_INT(qlong(db, sql), 24 - after);
    check_db_consistent(db);
    /* a third run has nothing to do and leaves no run row */
    CHECK(test_sh("%s sweep %s --db %s --per-example", bin(), path, db) == 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM runs"), 2);
    free(first_run), free(before);
}

TEST(sweep_failed_cells_are_recorded_and_retried) {
    const char *d = test_tmpdir();
    char db[4200], path[4200], text[2048];
    REQUIRE(make_model(d, "") == 0);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    /* a tsv dataset whose dev split does not exist yet */
    snprintf(text, sizeof text,
             "dataset tsv:%s/data --text-col sentence --label-col label\n"
             "run tsv:%s/data %s/m none\n"
             "run planted %s/m none\n",
             d, d, d, d);
    write_file(path, text);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/data", d);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/data/train.tsv", d);
    write_file(dir, "sentence\tlabel\na good film\t1\na bad one\t0\n");
    snprintf(db, sizeof db, "%s/r.db", d);
    CHECK(test_sh("%s sweep %s --db %s", bin(), path, db) == 1);
    CHECK(strstr(test_sh_output(), "1 cells finished, 1 failed") != NULL);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 1);
    CHECK_INT(qlong(db, "SELECT count(*) FROM failures"), 1);
    CHECK(strstr(query(db, "SELECT error FROM failures"), "dev.tsv") != NULL);
    CHECK_STR(query(db, "SELECT status FROM runs"), "failed");
    CHECK(test_sh("%s sweep %s --db %s --dry-run", bin(), path, db) == 0);
    CHECK(strstr(test_sh_output(), "1 done, 1 pending (1 of them failed before)") != NULL);
    CHECK(strstr(test_sh_output(), "\tretry\ttsv:") != NULL);
    /* the data appears: the rerun retries the failed cell only */
    snprintf(dir, sizeof dir, "%s/data/dev.tsv", d);
    write_file(dir, "sentence\tlabel\na fine film\t1\na dull one\t0\nsplendid\t1\n");
    CHECK(test_sh("%s sweep %s --db %s", bin(), path, db) == 0);
    CHECK(strstr(test_sh_output(), "1 cells finished, 0 failed, 1 were already done") != NULL);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 2);
    CHECK_INT(qlong(db, "SELECT examples FROM cells WHERE dataset LIKE 'tsv:%'"), 3);
}

TEST(sweep_two_runners_share_one_database) {
    const char *d = test_tmpdir();
    char db[4200], a[4200], b[4200], text[2048];
    REQUIRE(make_model(d, "") == 0);
    snprintf(a, sizeof a, "%s/a.sweep", d);
    snprintf(b, sizeof b, "%s/b.sweep", d);
    snprintf(text, sizeof text,
             "dataset planted --planted-n 800\nrun planted %s/m none\n"
             "run planted %s/m schedule batch=1,2,3,4,5 --schedule 0:0.5;0:0.25\n", d, d);
    write_file(a, text);
    snprintf(text, sizeof text,
             "dataset planted --planted-n 800\nrun planted %s/m none\n"
             "run planted %s/m schedule batch=6,7,8,9,10 --schedule 0:0.5;0:0.25\n", d, d);
    write_file(b, text);
    snprintf(db, sizeof db, "%s/shared.db", d);
    /* both start on a file that does not exist yet, with per-example rows (long transactions) */
    CHECK(test_sh("%s sweep %s --db %s --per-example > %s/a.log 2>&1 & "
                  "%s sweep %s --db %s --per-example > %s/b.log 2>&1 & wait %%1; ra=$?; wait %%2; rb=$?; "
                  "cat %s/a.log %s/b.log; test $ra = 0 && test $rb = 0",
                  bin(), a, db, d, bin(), b, db, d, d, d) == 0);
    /* the cell both files hold is one row */
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 1 + 10 + 10);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells WHERE method = 'none'"), 1);
    CHECK_INT(qlong(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 2);
    CHECK_INT(qlong(db, "SELECT count(*) FROM failures"), 0);
    check_db_consistent(db);
}

TEST(sweep_slurm_shards_merge_idempotently) {
    const char *d = test_tmpdir();
    char path[4200], text[2048], script[4200];
    REQUIRE(make_model(d, "") == 0);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    snprintf(text, sizeof text,
             "sweep shardy\ndataset planted --planted-n 200\nrun planted %s/m none\n"
             "run planted %s/m schedule batch=4,8 --schedule 0:0.75;0:0.5;0:0.25\n", d, d);
    write_file(path, text);
    /* the direct run */
    REQUIRE(test_sh("%s sweep %s --db %s/direct.db --jobs 2", bin(), path, d) == 0);
    CHECK_INT(qlong(strcat(strcpy(text, d), "/direct.db"), "SELECT count(*) FROM cells"), 7);
    /* a Slurm array, its tasks run here one after the other */
    snprintf(script, sizeof script, "%s/array.sh", d);
    REQUIRE(test_sh("%s sweep %s --emit slurm --db %s/main.db --shards %s/shards --out %s", bin(), path, d, d, script) == 0);
    char *s = NULL;
    REQUIRE(adp_read_file(script, &s, NULL) == ADP_OK);
    CHECK(strstr(s, "#SBATCH --array=0-6\n") != NULL);
    CHECK(strstr(s, "--cell \"$SLURM_ARRAY_TASK_ID\"") != NULL);
    free(s);
    REQUIRE(test_sh("for i in 0 1 2 3 4 5 6; do SLURM_ARRAY_TASK_ID=$i SLURM_CPUS_PER_TASK=1 bash %s || exit 1; done", script) == 0);
    char main_db[4200], direct_db[4200];
    snprintf(main_db, sizeof main_db, "%s/main.db", d);
    snprintf(direct_db, sizeof direct_db, "%s/direct.db", d);
    REQUIRE(test_sh("%s results merge %s/shards/cell-*.db --into %s", bin(), d, main_db) == 0);
    CHECK(strstr(test_sh_output(), "7 new cells from 7 shards, 0 already present") != NULL);
    const char *keys = "SELECT group_concat(cell_key, ',') FROM (SELECT cell_key FROM cells ORDER BY cell_key)";
    char *want = strdup(query(direct_db, keys));
    CHECK_STR(query(main_db, keys), want);
    const char *dump = "SELECT group_concat(cell_key || accuracy || flops_speedup || run_id, ',') FROM "
                       "(SELECT * FROM cells ORDER BY cell_key)";
    char *once = strdup(query(main_db, dump));
    long runs = qlong(main_db, "SELECT count(*) FROM runs");
    /* merging again, and merging the direct run's identical cells, adds nothing */
    REQUIRE(test_sh("%s results merge %s/shards/cell-*.db %s --into %s", bin(), d, direct_db, main_db) == 0);
    CHECK(strstr(test_sh_output(), "0 new cells from 8 shards, 14 already present") != NULL);
    CHECK_INT(qlong(main_db, "SELECT count(*) FROM cells"), 7);
    CHECK_STR(query(main_db, dump), once);
    CHECK_INT(qlong(main_db, "SELECT count(*) FROM runs"), runs + 1); /* the direct run's row */
    check_db_consistent(main_db);
    /* with everything merged, there is nothing left to emit */
    CHECK(test_sh("%s sweep %s --emit slurm --db %s", bin(), path, main_db) != 0);
    CHECK(strstr(test_sh_output(), "no pending cell") != NULL);
    /* a shard from a newer schema, or a non-database, is refused with its name */
    snprintf(text, sizeof text, "%s/bogus.db", d);
    write_file(text, "not sqlite at all, but long enough to be read as a header............................\n");
    CHECK(test_sh("%s results merge %s --into %s", bin(), text, main_db) == 1);
    CHECK(strstr(test_sh_output(), "bogus.db") != NULL);
    free(want), free(once);
}

static int count_lines(const char *path, const char *needle) {
    char *s = NULL;
    if (adp_read_file(path, &s, NULL) != ADP_OK) return -1;
    int n = 0;
    for (char *p = s; (p = strstr(p, needle)) != NULL; p++) n++;
    free(s);
    return n;
}

TEST(sweep_generated_makefile_rebuilds_only_what_changed) {
    const char *d = test_tmpdir();
    char path[4200], text[4096], log[4200];
    REQUIRE(make_model(d, "") == 0);
    snprintf(text, sizeof text, "%s/build.sh", d);
    snprintf(log, sizeof log, "%s/log", d);
    char sh[4096];
    snprintf(sh, sizeof sh, "#!/bin/sh\n# build.sh NAME OUT [extra]: a stand-in for training\nrm -rf \"$2\"\ncp -r %s/m \"$2\"\necho \"built $1\" >> %s\n", d, log);
    write_file(text, sh);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    const char *base = "model a %s/models/a : sh %s/build.sh a {out} %s\n"
                       "model b %s/models/b : sh %s/build.sh b {out} {model:a} %s\n"
                       "run planted b none\n";
    const char *make = "%s sweep %s --emit make --out %s/s.mk --recipes %s/recipes && make -s -f %s/s.mk models";
    snprintf(text, sizeof text, base, d, d, "", d, d, "");
    write_file(path, text);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built a"), 1);
    CHECK_INT(count_lines(log, "built b"), 1);
    /* nothing changed: nothing rebuilt; the runner accepts the stamps */
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built"), 2);
    CHECK(test_sh("%s sweep %s --dry-run --db %s/r.db", bin(), path, d) == 0);
    CHECK(strstr(test_sh_output(), "1 pending (0 of them failed before), 0 without their model") != NULL);
    CHECK(access(strcat(strcpy(text, d), "/r.db"), F_OK) != 0); /* --dry-run creates no database */
    /* b's command changes: b only */
    snprintf(text, sizeof text, base, d, d, "", d, d, "--flag");
    write_file(path, text);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built a"), 1);
    CHECK_INT(count_lines(log, "built b"), 2);
    /* b's command changes and changes back before anything is built: the recipe file was
     * rewritten twice, but b was built with this very command, so nothing is rebuilt */
    snprintf(text, sizeof text, base, d, d, "", d, d, "--for-a-while");
    write_file(path, text);
    REQUIRE(test_sh("%s sweep %s --emit make --out %s/s.mk --recipes %s/recipes", bin(), path, d, d) == 0);
    sleep_ms(1100); /* a newer mtime than the stamp's, on filesystems with 1 s resolution */
    snprintf(text, sizeof text, base, d, d, "", d, d, "--flag");
    write_file(path, text);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built a"), 1);
    CHECK_INT(count_lines(log, "built b"), 2);
    /* a's command changes: a, and b which starts from it */
    snprintf(text, sizeof text, base, d, d, "--other", d, d, "--flag");
    write_file(path, text);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built a"), 2);
    CHECK_INT(count_lines(log, "built b"), 3);
    /* a model another make target builds: that make decides; what is built from it follows */
    char inner[4200], mk[4096];
    snprintf(inner, sizeof inner, "%s/inner.mk", d);
    snprintf(mk, sizeof mk, "%s/models/c/model.safetensors:\n\tsh %s/build.sh c %s/models/c\n", d, d, d);
    write_file(inner, mk);
    snprintf(text, sizeof text,
             "model c %s/models/c : make -s -f %s %s/models/c/model.safetensors\n"
             "model e %s/models/e : sh %s/build.sh e {out} {model:c}\n"
             "run planted e none\n",
             d, inner, d, d, d);
    write_file(path, text);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built c"), 1);
    CHECK_INT(count_lines(log, "built e"), 1);
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0); /* asked again, the inner make does nothing */
    CHECK_INT(count_lines(log, "built c"), 1);
    CHECK_INT(count_lines(log, "built e"), 1);
    snprintf(text, sizeof text, "%s/models/c/model.safetensors", d);
    unlink(text); /* the inner make rebuilds c, so e follows */
    sleep_ms(1100); /* a newer mtime than the stamp's, on filesystems with 1 s resolution */
    REQUIRE(test_sh(make, bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built c"), 2);
    CHECK_INT(count_lines(log, "built e"), 2);
    snprintf(text, sizeof text, base, d, d, "--other", d, d, "--flag");
    write_file(path, text);

    /* a stamp from another recipe, or none, is refused by the runner, naming make */
    snprintf(text, sizeof text, "%s/models/b/.built", d);
    write_file(text, "sh something else\n");
    CHECK(test_sh("%s sweep %s --db %s/r.db", bin(), path, d) == 2);
    CHECK(strstr(test_sh_output(), "was built by another command") != NULL);
    unlink(text);
    CHECK(test_sh("%s sweep %s --db %s/r.db", bin(), path, d) == 2);
    CHECK(strstr(test_sh_output(), "no .built stamp") && strstr(test_sh_output(), "make sweep"));

    /* --available-models: a's cell runs, b's is listed and left; exit 3 says the sweep is partial */
    snprintf(text, sizeof text, "model a %s/models/a : sh %s/build.sh a {out} --other\n"
                                "model b %s/models/b : sh %s/build.sh b {out} {model:a} --flag\n"
                                "run planted a none\nrun planted b none\n",
             d, d, d, d);
    write_file(path, text);
    CHECK(test_sh("%s sweep %s --db %s/r.db --available-models", bin(), path, d) == 3);
    CHECK(strstr(test_sh_output(), "skipped: model b") != NULL);
    snprintf(text, sizeof text, "%s/r.db", d);
    CHECK_INT(qlong(text, "SELECT count(*) FROM cells"), 1);
    CHECK_STR(query(text, "SELECT m.name FROM cells JOIN models m USING (model_hash)"), "a");
    CHECK(test_sh("%s sweep %s --db %s/r.db", bin(), path, d) == 2); /* without the flag: refused */
}

static cJSON *parse_line(const char *s) { return cJSON_Parse(s); }

/* Under make -j, models built by other makes run one at a time: two fine-tunes that start
 * from one backbone must not both build it (they would train it twice, into one directory). */
TEST(sweep_generated_makefile_builds_a_shared_prerequisite_once_under_make_j) {
    const char *d = test_tmpdir();
    char path[4200], text[8192], log[4200], inner[4200];
    REQUIRE(make_model(d, "") == 0);
    snprintf(log, sizeof log, "%s/log", d);
    snprintf(path, sizeof path, "%s/build.sh", d);
    snprintf(text, sizeof text, "#!/bin/sh\nsleep 1\nrm -rf \"$2\"\ncp -r %s/m \"$2\"\necho \"built $1\" >> %s\n", d, log);
    write_file(path, text);
    snprintf(inner, sizeof inner, "%s/inner.mk", d);
    snprintf(text, sizeof text,
             "%s/models/base/model.safetensors:\n\tsh %s/build.sh base %s/models/base\n"
             "%s/models/c1/model.safetensors: %s/models/base/model.safetensors\n\tsh %s/build.sh c1 %s/models/c1\n"
             "%s/models/c2/model.safetensors: %s/models/base/model.safetensors\n\tsh %s/build.sh c2 %s/models/c2\n",
             d, d, d, d, d, d, d, d, d, d, d);
    write_file(inner, text);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    snprintf(text, sizeof text,
             "model c1 %s/models/c1 : make -s -f %s %s/models/c1/model.safetensors\n"
             "model c2 %s/models/c2 : make -s -f %s %s/models/c2/model.safetensors\n"
             "run planted c1 none\nrun planted c2 none\n",
             d, inner, d, d, inner, d);
    write_file(path, text);
    REQUIRE(test_sh("%s sweep %s --emit make --out %s/s.mk --recipes %s/recipes && make -s -j2 -f %s/s.mk models",
                    bin(), path, d, d, d) == 0);
    CHECK_INT(count_lines(log, "built base"), 1);
    CHECK_INT(count_lines(log, "built c1"), 1);
    CHECK_INT(count_lines(log, "built c2"), 1);
}

TEST(sweep_eval_knob_list_equals_single_runs) {
    const char *d = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 3 --hidden 64 --heads 4 --inter 128", d) == 0);
    const char *common = "--dataset planted --planted-n 400 --threads 1 --repeats 0";
    REQUIRE(test_sh("%s eval --model %s/m %s --method adapler --eta-scale 0.3,0.6,1.2 --examples %s/ex.jsonl > %s/list.jsonl",
                    bin(), d, common, d, d) == 0);
    char path[4200], *list = NULL;
    snprintf(path, sizeof path, "%s/list.jsonl", d);
    REQUIRE(adp_read_file(path, &list, NULL) == ADP_OK);
    const char *vals[] = {"0.3", "0.6", "1.2"};
    char *save = NULL, *line = strtok_r(list, "\n", &save);
    for (int k = 0; k < 3; k++, line = strtok_r(NULL, "\n", &save)) {
        REQUIRE(line);
        REQUIRE(test_sh("%s eval --model %s/m %s --method adapler --eta-scale %s", bin(), d, common, vals[k]) == 0);
        cJSON *a = parse_line(line), *b = parse_line(test_sh_output());
        REQUIRE(a && b);
        const char *same[] = {"accuracy", "macro_f1", "flops_speedup", "gflops", "mean_length"};
        for (int i = 0; i < 5; i++)
            CHECK_NEAR(cJSON_GetObjectItem(a, same[i])->valuedouble, cJSON_GetObjectItem(b, same[i])->valuedouble, 0);
        char *la = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "layer_tokens"));
        char *lb = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "layer_tokens"));
        CHECK_STR(la, lb);
        char *ea = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "eraser"));
        char *eb = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "eraser"));
        CHECK_STR(ea, eb);
        CHECK_STR(cJSON_GetObjectItem(a, "knob")->valuestring, cJSON_GetObjectItem(b, "knob")->valuestring);
        free(la), free(lb), free(ea), free(eb);
        cJSON_Delete(a), cJSON_Delete(b);
    }
    CHECK(line == NULL);
    free(list);
    /* per-example lines: every value's, tagged with its knob */
    snprintf(path, sizeof path, "%s/ex.jsonl", d);
    CHECK_INT(count_lines(path, "\"index\": "), 3 * 100);
    CHECK_INT(count_lines(path, "\"knob\": \"adapler eta_scale=0.6\""), 100);
    CHECK_INT(count_lines(path, "\"token_layers\": ["), 300);
    /* ';' lists for values with commas; a bad value in a list is an error naming it */
    CHECK(test_sh("%s eval --model %s/m %s --method schedule --schedule '1:0.5,2:0.5;1:0.25' | wc -l", bin(), d, common) == 0);
    CHECK(atoi(test_sh_output()) == 2);
    CHECK(test_sh("%s eval --model %s/m %s --method adapler --eta-scale 0.5,-2", bin(), d, common) == 2);
    CHECK(strstr(test_sh_output(), "--eta-scale") && strstr(test_sh_output(), "-2"));
    CHECK(test_sh("%s eval --model %s/m %s --method schedule --schedule '1:0.5;9:0.5'", bin(), d, common) == 1);
    CHECK(strstr(test_sh_output(), "--schedule") != NULL);
}

/* Width and height of a PNG from its IHDR chunk; 0 if path is not a PNG. */
static int png_dims(const char *path, unsigned *w, unsigned *h) {
    char *s = NULL;
    size_t n = 0;
    *w = *h = 0;
    if (adp_read_file(path, &s, &n) != ADP_OK) return 0;
    const unsigned char *u = (const unsigned char *)s;
    int ok = n > 24 && !memcmp(s, "\x89PNG", 4) && !memcmp(s + 12, "IHDR", 4);
    if (ok) {
        *w = (unsigned)u[16] << 24 | (unsigned)u[17] << 16 | (unsigned)u[18] << 8 | u[19];
        *h = (unsigned)u[20] << 24 | (unsigned)u[21] << 16 | (unsigned)u[22] << 8 | u[23];
    }
    free(s);
    return ok;
}

TEST(sweep_every_figure_script_draws_from_a_small_database) {
    const char *d = test_tmpdir();
    char path[4200], text[2048], db[4200];
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 2 --hidden 32 --heads 2 --inter 64", d) == 0);
    /* a second model for one method: two curves (as trained and training-free PoWER-BERT) */
    REQUIRE(test_python("ref_bert.py", "make --out %s/m2 --seed 5 --labels 2 --layers 2 --hidden 32 --heads 2 --inter 64", d) == 0);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    snprintf(text, sizeof text,
             "dataset planted --planted-n 200\n"
             "run planted %s/m none\n"
             "run planted %s/m adapler --eta-scale 0,0.5,1,1.5,2\n"
             "run planted %s/m schedule --schedule 1:0.75;1:0.5;1:0.25\n"
             "run planted %s/m2 schedule --schedule 1:0.75;1:0.5\n"
             "run planted %s/m adapler repeats=1 threads=1 batch=1,8 --eta-scale 1,2\n",
             d, d, d, d, d);
    write_file(path, text);
    snprintf(db, sizeof db, "%s/r.db", d);
    /* a sweep in progress: AdapLeR's cells in, the unpruned reference not yet */
    char part[4300];
    snprintf(part, sizeof part, "%s/part.sweep", d);
    snprintf(text, sizeof text, "dataset planted --planted-n 200\nrun planted %s/m adapler --eta-scale 0.5,1\n", d);
    write_file(part, text);
    REQUIRE(test_sh("%s sweep %s --db %s/part.db --jobs 2", bin(), part, d) == 0);
    CHECK_MSG(test_sh("sh plots/make_figures.sh %s/part.db %s/fig-part", d, d) == 0, "figures of a partial sweep: %s",
              test_sh_output());
    /* every figure a page-sized image, with panels or its "no data" one (a figure without
     * operating points once came out 40 pixels high) */
    const char *names[] = {"accuracy_speedup", "wall_vs_flops", "layer_tokens", "eraser_fpr", "token_fading"};
    for (int i = 0; i < 5; i++) {
        char f[4400];
        unsigned w, h;
        snprintf(f, sizeof f, "%s/fig-part/%s.png", d, names[i]);
        CHECK_MSG(png_dims(f, &w, &h) && w >= 500 && h >= 400, "%s: %u x %u", f, w, h);
    }
    REQUIRE(test_sh("%s sweep %s --db %s --jobs 2 --per-example", bin(), path, db) == 0);
    CHECK(test_sh("sh plots/make_figures.sh %s %s/fig 2>&1", db, d) == 0);
    /* no series without rows (an empty legend line: eraser_fpr's matched methods once) */
    CHECK_MSG(strstr(test_sh_output(), "no valid points") == NULL, "%s", test_sh_output());
    for (int i = 0; i < 5; i++) {
        char f[4300], *s = NULL;
        size_t n = 0;
        snprintf(f, sizeof f, "%s/fig/%s.png", d, names[i]);
        REQUIRE(adp_read_file(f, &s, &n) == ADP_OK);
        CHECK_MSG(n > 2000 && !memcmp(s, "\x89PNG", 4), "%s: %zu bytes", f, n);
        free(s);
        snprintf(f, sizeof f, "%s/fig/%s.svg", d, names[i]);
        REQUIRE(adp_read_file(f, &s, &n) == ADP_OK);
        CHECK_MSG(strstr(s, "<svg") != NULL, "%s is not SVG", f);
        /* drawn from the data: the methods appear in the legend, no "no data" placeholder */
        CHECK_MSG(strstr(s, "no data") == NULL && strstr(s, "no timed cells") == NULL &&
                      strstr(s, "no per-example rows") == NULL,
                  "%s has no data", f);
        if (i != 4) CHECK_MSG(strstr(s, "adapler") != NULL, "%s: adapler missing from the legend", f);
        if (i == 2) CHECK_MSG(strstr(s, "none (1.0x)") && !strstr(s, "none  ("), "%s: the unpruned line's label", f);
        if (i == 0 || i == 3) {
            CHECK_MSG(strstr(s, "schedule (m)") && strstr(s, "schedule (m2)"), "%s: no curve per model of schedule", f);
        }
        free(s);
    }
}

/* Every sweep file the project ships expands on a clean machine (no data, no models): a
 * template variable a run line does not bind, a method this build lacks or a typo in a
 * knob list is caught here, not hours into `make paper`.  --dry-run creates nothing. */
TEST(sweep_shipped_files_expand) {
    const char *d = test_tmpdir();
    const char *names[] = {"demo", "paper", "eraser", "latency", "jobs", "adapler_search"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int st = test_sh("ADAPLER_DATA='%s/none' %s sweep experiments/%s.sweep --dry-run --db '%s/%s.db' 2>&1", d, bin(),
                         names[i], d, names[i]);
        CHECK_MSG(st == 0, "experiments/%s.sweep: exit %d: %.300s", names[i], st, test_sh_output());
        CHECK_MSG(strstr(test_sh_output(), "skipped") == NULL, "experiments/%s.sweep: %.300s", names[i], test_sh_output());
        CHECK_MSG(strstr(test_sh_output(), "\tpending\t") || strstr(test_sh_output(), "\tno-model\t") ||
                      strstr(test_sh_output(), "\tdone\t"),
                  "experiments/%s.sweep lists no cells", names[i]);
        char db[4300];
        snprintf(db, sizeof db, "%s/%s.db", d, names[i]);
        CHECK_MSG(access(db, F_OK) != 0, "%s: --dry-run created the database", db);
    }
}

TEST(sweep_match_lines_run_at_the_reference_counts) {
    const char *d = test_tmpdir();
    char path[4200], text[2048], db[4200];
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 3 --hidden 32 --heads 2 --inter 64", d) == 0);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    snprintf(text, sizeof text,
             "dataset planted --planted-n 200\n"
             "run planted %s/m random match=ad seeds=1,2\n" /* before its reference in the file */
             "run planted %s/m adapler name=ad --eta-scale 0.5,1\n"
             "run planted %s/m cascade match=ad\n",
             d, d, d);
    write_file(path, text);
    snprintf(db, sizeof db, "%s/r.db", d);
    REQUIRE(test_sh("%s sweep %s --db %s --jobs 2", bin(), path, db) == 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 2 + 4 + 2);
    /* references keep their per-example rows even without --per-example */
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells WHERE method = 'adapler' AND has_examples = 1"), 2);
    /* random before each layer reproduces every layer's count of the matched AdapLeR cell */
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells c JOIN cells r ON r.cell_key = c.match_key "
                        "JOIN cell_layers a ON a.cell_key = c.cell_key JOIN cell_layers b ON b.cell_key = r.cell_key "
                        "AND b.layer = a.layer WHERE c.method = 'random' AND abs(a.tokens - b.tokens) > 1e-9"),
              0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells WHERE match_key IS NOT NULL AND match_knob LIKE '--eta-scale %'"), 6);
    /* they are not points of random's or cascade's own curves (schema version 3) */
    CHECK_INT(qlong(db, "SELECT count(*) FROM points WHERE method IN ('random', 'cascade')"), 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM points WHERE method = 'adapler'"), 2);
    CHECK_INT(qlong(db, "SELECT count(*) FROM frontier WHERE knob LIKE 'match %'"), 0);
    /* eraser_table puts each matched row at its reference's operating point */
    CHECK_INT(qlong(db, "SELECT count(DISTINCT operating_point) FROM eraser_table WHERE method IN ('adapler', 'random', 'cascade')"), 2);
    /* a rerun has nothing to do; a changed reference would re-run its matched cells (keys chain) */
    CHECK(test_sh("%s sweep %s --db %s --dry-run", bin(), path, db) == 0);
    CHECK(strstr(test_sh_output(), "8 done, 0 pending (0 of them failed before)") != NULL);
}

TEST(sweep_jobs_share_out_one_long_group) {
    /* one knob list of 8 values and --jobs 2: two eval processes run side by side, while a
     * sweep of many short groups loads each model once */
    const char *d = test_tmpdir();
    char path[4200], text[2048], db[4200];
    REQUIRE(make_model(d, "") == 0);
    snprintf(path, sizeof path, "%s/one.sweep", d);
    snprintf(text, sizeof text, "dataset planted --planted-n 2000\nrun planted %s/m schedule --schedule "
                                "0:1;0:0.9;0:0.8;0:0.7;0:0.6;0:0.5;0:0.4;0:0.3\n", d);
    write_file(path, text);
    snprintf(db, sizeof db, "%s/one.db", d);
    REQUIRE(test_sh("%s sweep %s --db %s --jobs 2", bin(), path, db) == 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 8);
    CHECK_INT(qlong(db, "SELECT min(concurrent) FROM cells"), 1);
    CHECK_INT(qlong(db, "SELECT max(threads) FROM cells"), 1);
    CHECK_INT(qlong(db, "SELECT jobs * threads_per_job FROM runs"), 2);
    /* --jobs 3 x 1 thread on 2 cores is refused */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(test_sh("%s sweep %s --db %s --jobs %ld --threads-per-job 1", bin(), path, db, cores + 1) == 2);
    CHECK(strstr(test_sh_output(), "oversubscribe") != NULL);
}

/* A model built by the generated makefile leaves its stderr in PATH/log.txt; when the build
 * fails, make fails and shows the log's last lines. */
TEST(sweep_generated_makefile_keeps_build_logs) {
    const char *d = test_tmpdir();
    char path[4200], text[4096], sh[4096];
    REQUIRE(make_model(d, "") == 0);
    snprintf(text, sizeof text, "%s/build.sh", d);
    snprintf(sh, sizeof sh,
             "#!/bin/sh\n# build.sh OUT OK: copy the model into OUT, or fail\n"
             "echo 'epoch 1: loss 0.5' >&2\n"
             "[ \"$2\" = ok ] || { echo 'train: data/x.tsv:3: expected 2 fields' >&2; exit 1; }\n"
             "cp %s/m/* \"$1\"/\n",
             d);
    write_file(text, sh);
    snprintf(path, sizeof path, "%s/s.sweep", d);
    snprintf(text, sizeof text,
             "model a %s/models/a : sh %s/build.sh {out} ok\nmodel b %s/models/b : sh %s/build.sh {out} fail\n"
             "run planted a none\nrun planted b none\n",
             d, d, d, d);
    write_file(path, text);
    REQUIRE(test_sh("%s sweep %s --emit make --out %s/s.mk --recipes %s/recipes", bin(), path, d, d) == 0);
    REQUIRE(test_sh("make -s -f %s/s.mk %s/models/a/.built 2>&1", d, d) == 0);
    snprintf(text, sizeof text, "%s/models/a/log.txt", d);
    CHECK_INT(count_lines(text, "epoch 1: loss 0.5"), 1);
    CHECK(test_sh("make -s -f %s/s.mk %s/models/b/.built 2>&1", d, d) != 0);
    CHECK_MSG(strstr(test_sh_output(), "data/x.tsv:3: expected 2 fields") != NULL, "the failure's log is not shown: %s",
              test_sh_output());
    snprintf(text, sizeof text, "%s/models/b/.built", d);
    CHECK(access(text, F_OK) != 0); /* no stamp for a failed build */
}

/* The `weights` setting: one cell per value, eval run with --weights f16 or i8 for those,
 * the column recorded; f32 cells keep the keys they had before the setting existed (a
 * database of older runs is not redone); the accuracy views read fp32 cells only. */
TEST(sweep_weights_setting_runs_f16_and_i8_cells_beside_f32) {
    const char *d = test_tmpdir();
    char db[4200], plain[4200], both[4200], text[2048];
    REQUIRE(make_model(d, "") == 0);
    snprintf(plain, sizeof plain, "%s/plain.sweep", d);
    snprintf(text, sizeof text, "sweep w\ndataset planted --planted-n 60\nrun planted %s/m schedule --schedule 0:1;0:0.5\n", d);
    write_file(plain, text);
    snprintf(both, sizeof both, "%s/both.sweep", d);
    snprintf(text, sizeof text,
             "sweep w\ndataset planted --planted-n 60\nrun planted %s/m schedule weights=f32,f16,i8 --schedule 0:1;0:0.5\n",
             d);
    write_file(both, text);
    snprintf(db, sizeof db, "%s/r.db", d);
    REQUIRE(test_sh("%s sweep %s --db %s", bin(), plain, db) == 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 2);
    CHECK(test_sh("%s sweep %s --db %s --dry-run", bin(), both, db) == 0);
    CHECK_MSG(strstr(test_sh_output(), "2 done, 4 pending") != NULL, "%s", test_sh_output());
    REQUIRE(test_sh("%s sweep %s --db %s", bin(), both, db) == 0);
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells"), 6);
    for (int k = 0; k < 2; k++) {
        const char *w = k ? "i8" : "f16";
        char q[512];
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM cells WHERE weights = '%s' AND key_text LIKE '%%weights=%s;%%' "
                 "AND json_extract(eval_json, '$.weights') = '%s'",
                 w, w, w);
        CHECK_INT(qlong(db, q), 2);
    }
    CHECK_INT(qlong(db, "SELECT count(*) FROM cells WHERE weights = 'f32' AND key_text NOT LIKE '%weights%' "
                        "AND json_extract(eval_json, '$.weights') = 'f32'"),
              2);
    CHECK_INT(qlong(db, "SELECT sum(n_cells) FROM points"), 2);
    check_db_consistent(db);
    write_file(both, "sweep w\nrun planted m none weights=f32,f8\n");
    CHECK(test_sh("%s sweep %s --db %s --dry-run", bin(), both, db) != 0);
    CHECK_MSG(strstr(test_sh_output(), "both.sweep:2") &&
                  strstr(test_sh_output(), "weights: expected f32, f16, bf16 or i8, got 'f8'"),
              "%s", test_sh_output());
}

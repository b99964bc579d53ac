/* cmd_sweep.c: `adapler sweep`: run a sweep file's cells into the results database, show
 * its plan, or emit its Makefile rules or a Slurm array script. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "model.h"
#include "sweep_run.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler sweep FILE [--jobs N] [--db PATH] [--threads-per-job T] [--per-example]\n"
            "                          [--skip-unavailable] [--dry-run] [--emit make|slurm] [--out FILE]\n"
            "                          [--cell I] [--ref-db PATH] [--shards DIR] [--sweep-sha256 HEX]\n\n"
            "Run the cells of a sweep file (format: experiments/README.md) as `adapler eval` processes and\n"
            "store each finished cell in the results database in its own transaction.  Cells already there\n"
            "(same dataset, method, knob, seed, batch, checkpoint hash and code version) are skipped, failed\n"
            "ones retried, so a rerun resumes; killing the runner loses only the cells in flight.  Cells\n"
            "that differ only in the knob value share one eval process (one model load, one pass per\n"
            "value).  Progress on stderr.  Exit status 1 if a cell failed, 2 if a model is missing, 3 if\n"
            "--available-models left cells without their model, 130 if interrupted.\n\n"
            "  --jobs N             eval processes at once (default 1)\n"
            "  --threads-per-job T  threads of each job (default: cores / N); N x T may not exceed the\n"
            "                       cores.  Timed cells (repeats > 0, timing exclusive) run alone, after the\n"
            "                       others, with the run line's threads (default all cores)\n"
            "  --db PATH            results database (default results/results.db)\n"
            "  --per-example        also store per-example rows (prediction, tokens per layer, kept\n"
            "                       positions, WordPieces): needed by the token-fading figure\n"
            "  --available-models   run the cells whose models are built and list the others, instead of\n"
            "                       refusing to start (a partial sweep: rerun after building the rest)\n"
            "  --skip-unavailable   skip run lines whose method or options this build lacks (listed on\n"
            "                       stderr) instead of stopping at the first\n"
            "  --dry-run            print the cells (index, status, dataset, model, method, knob, seed,\n"
            "                       batch, max_len, weights, threads, repeats), tab-separated, and the\n"
            "                       models' state; status: done, pending, retry (failed before),\n"
            "                       no-model.  Creates nothing\n"
            "  --emit make          print Makefile rules building the sweep's models (see `make sweep`)\n"
            "  --emit slurm         print a Slurm array script: one task per pending cell, each into its\n"
            "                       own shard database (--shards DIR, default results/shards/NAME), then\n"
            "                       `adapler results merge`; the same with GNU parallel: README.md\n"
            "  --out FILE           write --emit output to FILE (atomically) instead of stdout\n"
            "  --recipes DIR        --emit make: where model commands are kept (default build/sweeps/recipes)\n"
            "  --cell I             run only cell I of the expansion (--dry-run lists them)\n"
            "  --ref-db PATH        read match= reference cells from PATH (default: --db)\n"
            "  --sweep-sha256 HEX   refuse to run if the sweep file (with its includes) has another hash\n");
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

typedef struct {
    int tty;
    int last_len;
} progress_state;

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || !(s < 1e7)) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void on_progress(void *user, const sweep_progress *p) {
    progress_state *ps = user;
    char el[32], eta[32];
    fmt_time(el, sizeof el, p->elapsed);
    fmt_time(eta, sizeof eta, p->eta);
    int finished = p->done + p->failed;
    if (!ps->tty) {
        if (p->event) fprintf(stderr, "sweep [%d/%d] %s (%s elapsed, ETA %s)\n", finished, p->total, p->event, el, eta);
        return;
    }
    if (p->event && strncmp(p->event, "FAILED", 6) == 0) fprintf(stderr, "\r\033[K%s\n", p->event);
    char bar[31];
    int fill = p->total ? 30 * finished / p->total : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r\033[K[%s] %d/%d cells, %d failed, %d running, %s elapsed, ETA %s", bar, finished, p->total,
            p->failed, p->running, el, eta);
    fflush(stderr);
}

static int write_out(const char *path, char *buf, size_t len) {
    if (!path) return fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? ADP_OK : adp_seterr("stdout: write failed");
    return adp_write_file_atomic(path, buf, len);
}

int cmd_sweep(int argc, char **argv) {
    const char *file = NULL, *db = "results/results.db", *emit = NULL, *out = NULL, *ref_db = NULL, *shards = NULL;
    const char *want_sha = NULL, *recipes = "build/sweeps/recipes";
    long jobs = 1, tpj = 0, cell = -1;
    int dry = 0, per_example = 0, skip = 0, tpj_given = 0, available = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--jobs") && v) {
            if (!cli_parse_int("sweep", a, v, 1, 256, &jobs)) return 2;
            i++;
        } else if (!strcmp(a, "--threads-per-job") && v) {
            if (!cli_parse_int("sweep", a, v, 1, 1024, &tpj)) return 2;
            tpj_given = 1, i++;
        } else if (!strcmp(a, "--cell") && v) {
            if (!cli_parse_int("sweep", a, v, 0, 100000000, &cell)) return 2;
            i++;
        } else if (!strcmp(a, "--db") && v) db = v, i++;
        else if (!strcmp(a, "--ref-db") && v) ref_db = v, i++;
        else if (!strcmp(a, "--emit") && v) emit = v, i++;
        else if (!strcmp(a, "--out") && v) out = v, i++;
        else if (!strcmp(a, "--shards") && v) shards = v, i++;
        else if (!strcmp(a, "--recipes") && v) recipes = v, i++;
        else if (!strcmp(a, "--sweep-sha256") && v) want_sha = v, i++;
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--per-example")) per_example = 1;
        else if (!strcmp(a, "--skip-unavailable")) skip = 1;
        else if (!strcmp(a, "--available-models")) available = 1;
        else if (a[0] != '-' && !file) file = a;
        else {
            fprintf(stderr, "sweep: unknown or incomplete option '%s' (see adapler sweep --help)\n", a);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "sweep: a sweep FILE is required (see adapler sweep --help)\n");
        return 2;
    }
    if (emit && strcmp(emit, "make") && strcmp(emit, "slurm")) {
        fprintf(stderr, "sweep: --emit: expected make or slurm, got '%s'\n", emit);
        return 2;
    }
    char command[4096] = "";
    for (int i = -1; i < argc; i++) {
        size_t n = strlen(command);
        snprintf(command + n, sizeof command - n, "%s%s", i < 0 ? "adapler" : " ", i < 0 ? "" : argv[i]);
    }
    progress_state ps = {.tty = isatty(2)};
    sweep_opts o = {.db_path = db, .ref_db_path = ref_db, .jobs = (int)jobs, .threads_per_job = (int)tpj,
                    .per_example = per_example, .skip_unavailable = skip, .available_models = available, .only_cell = (int)cell,
                    .need_models = !(emit && !strcmp(emit, "make")), .command = command, .stop = &g_stop,
                    .db_read_only = dry || emit != NULL,
                    .progress = on_progress, .user = &ps};
    if (emit && !strcmp(emit, "slurm")) o.db_path = db, o.jobs = 1, o.threads_per_job = tpj_given ? (int)tpj : 1;
    sweep_ctx x;
    if (sweep_open(&x, file, &o) != ADP_OK) {
        fprintf(stderr, "sweep: %s\n", adp_errmsg());
        return 2;
    }
    int rc = 0;
    if (x.plan.warnings) fprintf(stderr, "%s", x.plan.warnings);
    if (want_sha && strcmp(want_sha, x.sf.sha256) != 0) {
        fprintf(stderr, "sweep: %s has changed since the script was written (sha256 %.12s, expected %.12s)\n", file,
                x.sf.sha256, want_sha);
        rc = 2;
    } else if (emit) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        int r;
        if (!strcmp(emit, "make")) r = sweep_emit_make(&x, mem, recipes);
        else {
            char dir[1024], flags[128] = "";
            snprintf(dir, sizeof dir, "%s", shards ? shards : "");
            if (!shards) snprintf(dir, sizeof dir, "results/shards/%s", x.sf.name);
            snprintf(flags, sizeof flags, "%s%s", per_example ? "--per-example" : "",
                     skip ? (per_example ? " --skip-unavailable" : "--skip-unavailable") : "");
            r = sweep_emit_slurm(&x, mem, file, dir, db, o.threads_per_job, flags);
        }
        fclose(mem);
        if (r == ADP_OK) r = write_out(out, buf, len);
        free(buf);
        if (r != ADP_OK) {
            fprintf(stderr, "sweep: %s\n", adp_errmsg());
            rc = 1;
        }
    } else if (dry) {
        static const char *st[] = {"pending", "done", "no-model", "retry", "failed"};
        printf("index\tstatus\tdataset\tmodel\tmethod\tknob\tseed\tbatch\tmax_len\tweights\tthreads\trepeats\n");
        for (int i = 0; i < x.plan.n_cells; i++) {
            const sweep_cell *c = &x.plan.cells[i];
            printf("%d\t%s\t%s\t%s\t%s\t%s\t%ld\t%ld\t%ld\t%s\t%ld\t%ld\n", i, st[x.status[i]], c->dataset,
                   x.plan.models[c->model].name, x.sf.runs[c->run].method, c->knob[0] ? c->knob : "-", c->seed, c->batch,
                   c->max_len, weights_fmt_name(c->weights), c->threads, c->repeats);
        }
        for (int i = 0; i < x.plan.n_models; i++)
            if (x.model_problem[i]) fprintf(stderr, "sweep: %s\n", x.model_problem[i]);
        int retry = 0;
        for (int i = 0; i < x.plan.n_cells; i++) retry += x.status[i] == CELL_FAILED_BEFORE;
        fprintf(stderr, "sweep %s: %d cells in %d eval groups: %d done, %d pending (%d of them failed before), %d "
                        "without their model\n",
                x.sf.name, x.plan.n_cells, x.plan.n_groups, x.n_done, x.n_pending, retry, x.n_no_model);
    } else if (x.n_no_model && (cell < 0 || x.status[cell] == CELL_NO_MODEL) && !(available && cell < 0)) {
        /* every missing model at once, before anything runs */
        for (int i = 0; i < x.plan.n_models; i++)
            if (x.model_problem[i]) fprintf(stderr, "sweep: %s\n", x.model_problem[i]);
        rc = 2;
    } else {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (x.n_no_model && cell < 0)
            for (int i = 0; i < x.plan.n_models; i++)
                if (x.model_problem[i]) fprintf(stderr, "sweep: skipped: %s\n", x.model_problem[i]);
        if (cell < 0)
            fprintf(stderr, "sweep %s: %d cells, %d already done, %d to run with %ld jobs, %d without their model; code %s; db %s\n",
                    x.sf.name, x.plan.n_cells, x.n_done, x.n_pending, jobs, x.n_no_model, x.code_version, db);
        int done = 0, failed = 0;
        int r = sweep_execute(&x, &o, &done, &failed);
        if (ps.tty) fprintf(stderr, "\n");
        if (r != ADP_OK) {
            fprintf(stderr, "sweep: %s\n", adp_errmsg());
            rc = g_stop ? 130 : 1;
        } else {
            if (cell < 0 || failed)
                fprintf(stderr, "sweep %s: %d cells finished, %d failed%s, %d were already done\n", x.sf.name, done,
                        failed, failed ? " (their errors: the failures table; a rerun retries them)" : "", x.n_done);
            rc = failed ? 1 : x.n_no_model && cell < 0 ? 3 : 0;
            if (!failed && rc == 3)
                fprintf(stderr, "sweep %s: %d cells were not run: their models are not built\n", x.sf.name, x.n_no_model);
        }
    }
    sweep_close(&x);
    return rc;
}

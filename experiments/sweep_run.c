/* sweep_run.c: the sweep runner (see sweep_run.h). */
#include "sweep_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "model.h"
#include "results_db.h"
#include "safetensors.h"
#include "sha256.h"

/* ---- hashes and versions --------------------------------------------------------------- */

int sweep_code_version(char out[65], char exe[4096]) {
    ssize_t n = readlink("/proc/self/exe", exe, 4095);
    if (n <= 0) return adp_seterr("/proc/self/exe: cannot resolve the running binary");
    exe[n] = 0;
    const char *env = getenv("ADAPLER_CODE_VERSION");
    if (env && *env) {
        snprintf(out, 65, "%s", env);
        return ADP_OK;
    }
    sha256_ctx c;
    sha256_init(&c);
    if (sha256_update_file(&c, exe) != ADP_OK) return ADP_ERR;
    char full[65];
    sha256_final_hex(&c, full);
    snprintf(out, 65, "%.16s", full);
    return ADP_OK;
}

int sweep_model_hash(const char *dir, char out[65]) {
    static const char *files[] = {"config.json", "model.safetensors", "vocab.txt"};
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        sha256_update(&c, files[i], strlen(files[i]) + 1);
        if (sha256_update_file(&c, path) != ADP_OK) return ADP_ERR;
    }
    sha256_final_hex(&c, out);
    return ADP_OK;
}

static int file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

/* Why a model instance cannot be used yet, or NULL. */
static char *model_problem(const sweep_file *sf, const sweep_model_inst *m) {
    char path[4200], *msg = NULL;
    static const char *files[] = {"config.json", "model.safetensors", "vocab.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", m->path, files[i]);
        if (!file_exists(path)) {
            if (m->recipe) {
                if (asprintf(&msg, "model %s (%s) is not built: run `make sweep SWEEP=%s` (or: %s)", m->name, m->path,
                             sf->name, m->recipe) < 0)
                    abort();
            } else if (asprintf(&msg, "model %s: %s is missing (%s:%d)", m->name, path, m->file, m->line) < 0)
                abort();
            return msg;
        }
    }
    if (!m->recipe) return NULL;
    snprintf(path, sizeof path, "%s/.built", m->path);
    char *stamp = NULL;
    size_t len = 0;
    if (adp_read_file(path, &stamp, &len) != ADP_OK) {
        if (asprintf(&msg, "model %s (%s) has no .built stamp (interrupted build?): run `make sweep SWEEP=%s`", m->name,
                     m->path, sf->name) < 0)
            abort();
        return msg;
    }
    while (len > 0 && (stamp[len - 1] == '\n' || stamp[len - 1] == ' ')) stamp[--len] = 0;
    if (strcmp(stamp, m->recipe) != 0 &&
        asprintf(&msg, "model %s (%s) was built by another command than %s:%d's; run `make sweep SWEEP=%s`", m->name,
                 m->path, m->file, m->line, sf->name) < 0)
        abort();
    free(stamp);
    return msg;
}

/* ---- opening a sweep -------------------------------------------------------------------- */

static int needed_model(const sweep_ctx *x, const sweep_opts *o, int mi) {
    if (o->only_cell < 0) return x->plan.models[mi].used;
    const sweep_cell *c = &x->plan.cells[o->only_cell];
    return c->model == mi || (c->match_ref >= 0 && x->plan.cells[c->match_ref].model == mi);
}

int sweep_open(sweep_ctx *x, const char *path, const sweep_opts *o) {
    memset(x, 0, sizeof *x);
    if (sweep_file_load(&x->sf, path) != ADP_OK) return ADP_ERR;
    if (sweep_expand(&x->plan, &x->sf, o->skip_unavailable) != ADP_OK) {
        sweep_file_free(&x->sf);
        return ADP_ERR;
    }
    sweep_plan *p = &x->plan;
    if (o->only_cell >= p->n_cells) {
        sweep_close(x);
        return adp_seterr("--cell %d: %s has %d cells (0..%d)", o->only_cell, path, p->n_cells, p->n_cells - 1);
    }
    if (sweep_code_version(x->code_version, x->exe) != ADP_OK) {
        sweep_close(x);
        return ADP_ERR;
    }
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    x->cores = nc > 0 ? (int)nc : 1;
    int jobs = o->jobs > 0 ? o->jobs : 1;
    int tpj = o->threads_per_job > 0 ? o->threads_per_job : ADP_MAX(1, x->cores / jobs);
    if (o->only_cell < 0 && jobs * tpj > x->cores) {
        sweep_close(x);
        return adp_seterr("--jobs %d x --threads-per-job %d = %d threads would oversubscribe the %d cores", jobs, tpj,
                          jobs * tpj, x->cores);
    }
    for (int i = 0; i < p->n_cells; i++) {
        sweep_cell *c = &p->cells[i];
        const sweep_run *r = &x->sf.runs[c->run];
        if (c->repeats == 0) c->threads = tpj;
        else if (c->timing == TIMING_EXCLUSIVE) c->threads = r->threads > 0 ? r->threads : x->cores;
        else {
            c->threads = r->threads > 0 ? r->threads : tpj;
            if (o->only_cell < 0 && c->threads * jobs > x->cores) {
                int rc = adp_seterr("%s:%d: timing=shared with threads=%ld and --jobs %d would oversubscribe the %d cores",
                                    r->file, r->line, c->threads, jobs, x->cores);
                sweep_close(x);
                return rc;
            }
        }
    }
    x->model_problem = callocCheck((size_t)p->n_models + 1, sizeof(char *));
    for (int i = 0; i < p->n_models; i++) {
        sweep_model_inst *m = &p->models[i];
        snprintf(m->hash, sizeof m->hash, "unavailable");
        if (!o->need_models || !needed_model(x, o, i)) continue;
        x->model_problem[i] = model_problem(&x->sf, m);
        if (!x->model_problem[i] && sweep_model_hash(m->path, m->hash) != ADP_OK) {
            x->model_problem[i] = strdupCheck(adp_errmsg());
            snprintf(m->hash, sizeof m->hash, "unavailable");
        }
    }
    sweep_plan_keys(p, &x->sf, x->code_version);
    x->status = callocCheck((size_t)p->n_cells + 1, 1);
    for (int i = 0; i < p->n_cells; i++) {
        const sweep_cell *c = &p->cells[i];
        int bad = x->model_problem[c->model] != NULL || !strcmp(p->models[c->model].hash, "unavailable");
        if (c->match_ref >= 0 && !strcmp(p->models[p->cells[c->match_ref].model].hash, "unavailable")) bad = 1;
        x->status[i] = bad ? CELL_NO_MODEL : CELL_PENDING;
    }
    if (o->db_path && o->need_models && (!o->db_read_only || file_exists(o->db_path))) {
        results_db db;
        if (results_db_open(&db, o->db_path) != ADP_OK) {
            sweep_close(x);
            return ADP_ERR;
        }
        for (int i = 0; i < p->n_cells; i++) {
            if (x->status[i] != CELL_PENDING) continue;
            int done, failed;
            const sweep_cell *c = &p->cells[i];
            if (results_db_cell_done(&db, c->cell_key, o->per_example || c->is_ref, &done) != ADP_OK ||
                results_db_cell_failed(&db, c->cell_key, &failed) != ADP_OK) {
                results_db_close(&db);
                sweep_close(x);
                return ADP_ERR;
            }
            if (done) x->status[i] = CELL_DONE;
            else if (failed) x->status[i] = CELL_FAILED_BEFORE;
        }
        results_db_close(&db);
    }
    /* match= references read from another database (Slurm tasks: the merged one) */
    if (o->ref_db_path && o->db_path && strcmp(o->ref_db_path, o->db_path) != 0 && o->need_models &&
        file_exists(o->ref_db_path)) {
        results_db db;
        if (results_db_open(&db, o->ref_db_path) != ADP_OK) {
            sweep_close(x);
            return ADP_ERR;
        }
        for (int i = 0; i < p->n_cells; i++) {
            int done;
            if (!p->cells[i].is_ref || !CELL_RUNNABLE(x->status[i])) continue;
            if (results_db_cell_done(&db, p->cells[i].cell_key, 1, &done) != ADP_OK) {
                results_db_close(&db);
                sweep_close(x);
                return ADP_ERR;
            }
            if (done) x->status[i] = CELL_DONE;
        }
        results_db_close(&db);
    }
    for (int i = 0; i < p->n_cells; i++) {
        x->n_pending += CELL_RUNNABLE(x->status[i]);
        x->n_done += x->status[i] == CELL_DONE;
        x->n_no_model += x->status[i] == CELL_NO_MODEL;
    }
    return ADP_OK;
}

void sweep_close(sweep_ctx *x) {
    if (x->model_problem)
        for (int i = 0; i < x->plan.n_models; i++) free(x->model_problem[i]);
    free(x->model_problem);
    free(x->status);
    sweep_plan_free(&x->plan);
    sweep_file_free(&x->sf);
    memset(x, 0, sizeof *x);
}

/* ---- registering models and the run ------------------------------------------------------- */

static char *read_logs(const char *dir, double *dev_score) {
    static const char *names[] = {"train.json", "adapler.json", "pretrain.json", "baseline.json"};
    cJSON *all = cJSON_CreateObject();
    *dev_score = NAN;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[4200], *buf = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!file_exists(path) || adp_read_file(path, &buf, NULL) != ADP_OK) continue;
        cJSON *j = cJSON_Parse(buf);
        free(buf);
        if (!j) continue;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dev_accuracy");
        if (cJSON_IsNumber(d) && isnan(*dev_score)) *dev_score = d->valuedouble;
        cJSON_AddItemToObject(all, names[i], j);
    }
    char *s = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    return s;
}

static int register_model(results_db *db, const sweep_model_inst *m) {
    bert_config cfg;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->path);
    if (bert_config_load(&cfg, path) != ADP_OK) return ADP_ERR;
    results_model rm = {.hash = m->hash, .name = m->name, .path = m->path, .dataset = m->dataset, .recipe = m->recipe,
                        .layers = cfg.layers, .hidden = cfg.hidden, .heads = cfg.heads, .intermediate = cfg.inter,
                        .vocab_size = cfg.vocab_size, .num_labels = cfg.num_labels};
    bert_config_free(&cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", m->path);
    struct stat s;
    rm.bytes = stat(path, &s) == 0 ? (long long)s.st_size : -1;
    st_file st;
    if (st_open(&st, path) == ADP_OK) {
        rm.has_adapler = st_find(&st, "adapler.eta") != NULL;
        st_close(&st);
    }
    char *logs = read_logs(m->path, &rm.dev_score);
    rm.hyperparams = logs;
    int rc = results_db_put_model(db, &rm);
    free(logs);
    return rc;
}

static char *cpu_name(void) {
    char *buf = NULL;
    if (adp_read_file("/proc/cpuinfo", &buf, NULL) != ADP_OK) return strdupCheck("unknown");
    char *p = strstr(buf, "model name");
    char *res = NULL;
    if (p && (p = strchr(p, ':'))) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, "\n");
        res = strndup(p, n);
    }
    free(buf);
    return res ? res : strdupCheck("unknown");
}

static char *git_describe(const char *exe) {
    char *dir = strdupCheck(exe), *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    char *cmd = NULL;
    if (asprintf(&cmd, "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null", dir) < 0) abort();
    free(dir);
    FILE *f = popen(cmd, "r");
    free(cmd);
    if (!f) return NULL;
    char line[256] = "";
    char *ok = fgets(line, sizeof line, f);
    pclose(f);
    if (!ok) return NULL;
    line[strcspn(line, "\n")] = 0;
    return line[0] ? strdupCheck(line) : NULL;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

typedef struct {
    int *cells, n;
    int timed_exclusive;
    int threads;
    double cost;
    pid_t pid;
    int out_fd, err_fd;
    char *out;
    size_t out_len, out_cap;
    char err[2048]; /* tail of stderr */
    size_t err_len;
    int next; /* cells received */
    double t_start, t_last;
    int concurrent;
    char ex_path[4200];
    long ex_off;
    int state; /* 0 waiting, 1 running, 2 finished */
} job;

typedef struct {
    sweep_ctx *x;
    const sweep_opts *o;
    results_db db;
    char run_id[33];
    char tmpdir[256];
    job *jobs;
    int n_jobs;
    int running, done, failed, total;
    double t0, units_total, units_done;
    char event[512];
} runner;

static int cmp_job(const void *a, const void *b) {
    const job *x = a, *y = b;
    if (x->timed_exclusive != y->timed_exclusive) return x->timed_exclusive - y->timed_exclusive;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return x->cells[0] - y->cells[0];
}

/* Passes over the split a cell costs: one, plus warm-up and repeats x (dense + pruned). */
static double cell_cost(const sweep_cell *c) { return c->repeats > 0 ? 2.0 + 2.0 * (double)c->repeats : 1.0; }

static job *add_job(runner *R, const int *cells, int n, int excl, int threads) {
    R->jobs = reallocCheck(R->jobs, sizeof(job) * (size_t)(R->n_jobs + 1));
    job *jb = &R->jobs[R->n_jobs++];
    memset(jb, 0, sizeof *jb);
    jb->n = n;
    jb->cells = mallocCheck(sizeof(int) * (size_t)n);
    memcpy(jb->cells, cells, sizeof(int) * (size_t)n);
    jb->timed_exclusive = excl;
    jb->threads = threads;
    jb->cost = 1.0; /* loading the model and the split: about one pass */
    for (int k = 0; k < n; k++) jb->cost += cell_cost(&R->x->plan.cells[cells[k]]);
    jb->out_fd = jb->err_fd = -1;
    return jb;
}

/* One job per group of runnable cells (one model load for all its knob values); then, while
 * the costliest untimed job is longer than a worker's fair share, it is halved, so a sweep
 * of a few long groups still keeps every worker busy while one of many short groups pays no
 * extra loads.  Untimed jobs run first, longest first (LPT); exclusive timed jobs last. */
static void build_jobs(runner *R) {
    sweep_ctx *x = R->x;
    const sweep_plan *p = &x->plan;
    int workers = R->o->jobs > 0 ? R->o->jobs : 1;
    int *pend = mallocCheck(sizeof(int) * (size_t)(p->n_cells + 1));
    for (int i = 0; i < p->n_cells;) {
        int j = i, np = 0;
        while (j < p->n_cells && p->cells[j].group == p->cells[i].group) j++;
        for (int k = i; k < j; k++)
            if (CELL_RUNNABLE(x->status[k]) && (R->o->only_cell < 0 || R->o->only_cell == k)) pend[np++] = k;
        const sweep_cell *c0 = &p->cells[i];
        if (np) add_job(R, pend, np, c0->repeats > 0 && c0->timing == TIMING_EXCLUSIVE, (int)c0->threads);
        i = j;
    }
    free(pend);
    for (;;) {
        double total = 0;
        int big = -1;
        for (int i = 0; i < R->n_jobs; i++) {
            if (R->jobs[i].timed_exclusive) continue;
            total += R->jobs[i].cost;
            if (R->jobs[i].n > 1 && (big < 0 || R->jobs[i].cost > R->jobs[big].cost)) big = i;
        }
        if (workers < 2 || big < 0 || R->jobs[big].cost <= total / workers) break;
        job old = R->jobs[big];
        int half = old.n / 2;
        add_job(R, old.cells, half, 0, old.threads);
        add_job(R, old.cells + half, old.n - half, 0, old.threads);
        free(old.cells);
        R->jobs[big] = R->jobs[--R->n_jobs]; /* the second half takes its slot */
        R->jobs[R->n_jobs] = (job){0};
    }
    if (R->n_jobs > 1) qsort(R->jobs, (size_t)R->n_jobs, sizeof(job), cmp_job);
}

static void fill_cell(runner *R, const sweep_cell *c, results_cell *rc) {
    const sweep_plan *p = &R->x->plan;
    memset(rc, 0, sizeof *rc);
    rc->cell_key = c->cell_key, rc->key_text = c->key_text, rc->logical_key = c->logical_key;
    rc->run_id = R->run_id, rc->sweep = R->x->sf.name;
    rc->dataset = c->dataset, rc->dataset_options = c->dataset_options, rc->split = c->split;
    rc->model_hash = p->models[c->model].hash, rc->model_name = p->models[c->model].name;
    rc->model_path = p->models[c->model].path, rc->model_vars = c->model_vars;
    rc->method = R->x->sf.runs[c->run].method, rc->method_options = c->method_options;
    rc->knob = c->knob, rc->knob_name = c->knob_name, rc->knob_value = c->knob_value;
    if (c->match_ref >= 0) rc->match_key = p->cells[c->match_ref].cell_key, rc->match_knob = p->cells[c->match_ref].knob;
    rc->seed = c->seed, rc->batch = c->batch, rc->threads = c->threads, rc->repeats = c->repeats;
    rc->timing = c->repeats == 0 ? "none" : c->timing == TIMING_SHARED ? "shared" : "exclusive";
    rc->code_version = R->x->code_version;
}

static void report(runner *R, const char *event) {
    if (!R->o->progress) return;
    sweep_progress pr = {.total = R->total, .done = R->done, .failed = R->failed, .running = R->running,
                         .skipped = R->x->n_done, .elapsed = adp_now() - R->t0, .event = event};
    /* ETA from cost units (timed cells cost more passes), not from cell counts */
    pr.eta = R->units_done > 0 ? pr.elapsed / R->units_done * (R->units_total - R->units_done) : -1;
    R->o->progress(R->o->user, &pr);
}

/* "dataset model method knob [seed S] [batch B] [max_len M] [f16|bf16|i8]", the last four when the
 * run line varies them. */
static void describe(const runner *R, const sweep_cell *c, char *buf, size_t n) {
    const sweep_run *r = &R->x->sf.runs[c->run];
    int k = snprintf(buf, n, "%s %s %s%s%s", c->dataset, R->x->plan.models[c->model].name, r->method,
                     c->knob[0] ? " " : "", c->knob);
    if (r->n_seeds > 1 && k < (int)n) k += snprintf(buf + k, n - (size_t)k, " seed %ld", c->seed);
    if (r->n_batches > 1 && k < (int)n) k += snprintf(buf + k, n - (size_t)k, " batch %ld", c->batch);
    if (r->n_max_lens > 1 && k < (int)n) k += snprintf(buf + k, n - (size_t)k, " max_len %ld", c->max_len);
    if (r->n_weights > 1 && k < (int)n) snprintf(buf + k, n - (size_t)k, " %s", weights_fmt_name(c->weights));
}

static void fail_rest(runner *R, job *jb, int status, const char *why) {
    for (; jb->next < jb->n; jb->next++) {
        const sweep_cell *c = &R->x->plan.cells[jb->cells[jb->next]];
        results_cell rc;
        fill_cell(R, c, &rc);
        /* if even the failure cannot be stored, say so in the event: the cell is retried anyway */
        int stored = results_db_put_failure(&R->db, &rc, status, why) == ADP_OK;
        char unstored[300] = "";
        if (!stored) snprintf(unstored, sizeof unstored, " (not recorded: %s)", adp_errmsg());
        R->x->status[c->index] = CELL_FAILED;
        R->failed++;
        R->units_done += cell_cost(c);
        char what[400];
        describe(R, c, what, sizeof what);
        snprintf(R->event, sizeof R->event, "FAILED %s: %s%s", what, why, unstored);
        report(R, R->event);
    }
}

/* Read n lines of the job's examples file from its offset. */
static int read_examples(job *jb, long n, char ***lines) {
    FILE *f = fopen(jb->ex_path, "r");
    if (!f) return adp_seterr("%s: cannot open", jb->ex_path);
    if (fseek(f, jb->ex_off, SEEK_SET) != 0) {
        fclose(f);
        return adp_seterr("%s: seek failed", jb->ex_path);
    }
    *lines = callocCheck((size_t)n + 1, sizeof(char *));
    size_t cap = 0;
    char *line = NULL;
    long got = 0;
    for (; got < n; got++) {
        ssize_t len = getline(&line, &cap, f);
        if (len <= 0 || line[len - 1] != '\n') break;
        line[len - 1] = 0;
        (*lines)[got] = strdupCheck(line);
        jb->ex_off += len;
    }
    free(line);
    fclose(f);
    if (got < n) return adp_seterr("%s: %ld of %ld per-example lines", jb->ex_path, got, n);
    return ADP_OK;
}

static void free_lines(char **lines, long n) {
    if (!lines) return;
    for (long i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

/* One JSON line from a child: the next cell of the job is finished. */
static int take_line(runner *R, job *jb, const char *line) {
    if (jb->next >= jb->n) return adp_seterr("eval printed more lines than cells");
    const sweep_cell *c = &R->x->plan.cells[jb->cells[jb->next]];
    double now = adp_now();
    char **ex = NULL;
    long n_ex = 0;
    int rc = ADP_OK;
    if (jb->ex_path[0]) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *n = j ? cJSON_GetObjectItemCaseSensitive(j, "examples") : NULL;
        n_ex = cJSON_IsNumber(n) ? (long)n->valuedouble : 0;
        cJSON_Delete(j);
        if (n_ex <= 0) rc = adp_seterr("eval output has no example count");
        else rc = read_examples(jb, n_ex, &ex);
    }
    results_cell rcell;
    fill_cell(R, c, &rcell);
    rcell.concurrent = jb->concurrent;
    if (rc == ADP_OK) rc = results_db_put_cell(&R->db, &rcell, line, ex, (size_t)n_ex, now - jb->t_last);
    free_lines(ex, n_ex);
    if (rc != ADP_OK) return ADP_ERR;
    jb->t_last = now;
    jb->next++;
    R->x->status[c->index] = CELL_DONE;
    R->done++;
    R->units_done += cell_cost(c);
    char what[400];
    describe(R, c, what, sizeof what);
    snprintf(R->event, sizeof R->event, "done   %s", what);
    report(R, R->event);
    return ADP_OK;
}

static void push_arg(char ***argv, int *argc, const char *s) {
    *argv = reallocCheck(*argv, sizeof(char *) * (size_t)(*argc + 2));
    (*argv)[(*argc)++] = strdupCheck(s);
    (*argv)[*argc] = NULL;
}

static int start_job(runner *R, job *jb, int index) {
    sweep_ctx *x = R->x;
    const sweep_plan *p = &x->plan;
    const sweep_cell *c0 = &p->cells[jb->cells[0]];
    char **argv = NULL, num[32];
    int argc = 0;
    push_arg(&argv, &argc, x->exe);
    push_arg(&argv, &argc, "eval");
    push_arg(&argv, &argc, "--model"), push_arg(&argv, &argc, p->models[c0->model].path);
    push_arg(&argv, &argc, "--dataset"), push_arg(&argv, &argc, c0->dataset);
    for (int k = 0; k < c0->ds_argc; k++) push_arg(&argv, &argc, c0->ds_argv[k]);
    push_arg(&argv, &argc, "--split"), push_arg(&argv, &argc, c0->split);
    push_arg(&argv, &argc, "--method"), push_arg(&argv, &argc, x->sf.runs[c0->run].method);
    int m_argc;
    char **m_argv = sweep_eval_method_args(p, &x->sf, jb->cells, jb->n, &m_argc);
    for (int k = 0; k < m_argc; k++) push_arg(&argv, &argc, m_argv[k]), free(m_argv[k]);
    free(m_argv);
    snprintf(num, sizeof num, "%ld", c0->seed);
    push_arg(&argv, &argc, "--method-seed"), push_arg(&argv, &argc, num);
    snprintf(num, sizeof num, "%ld", c0->batch);
    push_arg(&argv, &argc, "--batch"), push_arg(&argv, &argc, num);
    if (c0->max_len > 0) {
        snprintf(num, sizeof num, "%ld", c0->max_len);
        push_arg(&argv, &argc, "--max-len"), push_arg(&argv, &argc, num);
    }
    if (c0->weights != FMT_F32) push_arg(&argv, &argc, "--weights"), push_arg(&argv, &argc, weights_fmt_name(c0->weights));
    snprintf(num, sizeof num, "%d", jb->threads);
    push_arg(&argv, &argc, "--threads"), push_arg(&argv, &argc, num);
    snprintf(num, sizeof num, "%ld", c0->repeats);
    push_arg(&argv, &argc, "--repeats"), push_arg(&argv, &argc, num);
    if (R->o->per_example || c0->is_ref) {
        snprintf(jb->ex_path, sizeof jb->ex_path, "%s/job-%d.jsonl", R->tmpdir, index);
        push_arg(&argv, &argc, "--examples"), push_arg(&argv, &argc, jb->ex_path);
    }
    if (c0->match_ref >= 0) {
        const sweep_cell *ref = &p->cells[c0->match_ref];
        char mpath[4200];
        snprintf(mpath, sizeof mpath, "%s/match-%.16s.jsonl", R->tmpdir, ref->cell_key);
        results_db refdb, *rdb = &R->db;
        int own = R->o->ref_db_path && strcmp(R->o->ref_db_path, R->o->db_path) != 0;
        if (own && results_db_open(&refdb, R->o->ref_db_path) != ADP_OK) goto fail;
        if (own) rdb = &refdb;
        int rc = results_db_write_examples(rdb, ref->cell_key, mpath);
        if (own) results_db_close(&refdb);
        if (rc != ADP_OK) goto fail;
        push_arg(&argv, &argc, "--match"), push_arg(&argv, &argc, mpath);
    }
    int out[2], err[2];
    if (pipe(out) != 0) goto fail_sys;
    if (pipe(err) != 0) {
        close(out[0]), close(out[1]);
        goto fail_sys;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        goto fail_sys;
    }
    if (pid == 0) {
        /* the child dies with the runner, so a killed runner leaves no orphan writing on */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        /* Untimed cells: OpenMP threads wait passively at barriers unless the caller chose
         * otherwise: with other processes on the cores, spinning threads wait for a
         * descheduled peer and one dense pass took 60x longer (0.45 s vs 28.8 s, batch 1, 2
         * threads).  Timed cells that run alone keep OpenMP's default (spin, then sleep):
         * there passive waiting costs a wake-up per parallel region and made a batch-1
         * dense pass 6.6x slower (1.72 s vs 0.26 s), which would measure the waiting, not
         * the engine.  Results do not change; runs.environment records the policy. */
        if (!getenv("OMP_WAIT_POLICY") && !jb->timed_exclusive) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        dup2(out[1], 1), dup2(err[1], 2);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]), close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK), fcntl(err[0], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFD, FD_CLOEXEC), fcntl(err[0], F_SETFD, FD_CLOEXEC);
    jb->pid = pid, jb->out_fd = out[0], jb->err_fd = err[0];
    jb->state = 1;
    jb->t_start = jb->t_last = adp_now();
    /* concurrency bookkeeping: everyone running now overlaps everyone else */
    for (int i = 0; i < R->n_jobs; i++)
        if (R->jobs[i].state == 1) R->jobs[i].concurrent = ADP_MAX(R->jobs[i].concurrent, R->running);
    R->running++;
    for (int k = 0; k < argc; k++) free(argv[k]);
    free(argv);
    return ADP_OK;
fail_sys:
    adp_seterr("cannot start eval: %s", strerror(errno));
fail:
    for (int k = 0; k < argc; k++) free(argv[k]);
    free(argv);
    return ADP_ERR;
}

static void drain(runner *R, job *jb, int fd_is_out) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd_is_out ? jb->out_fd : jb->err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(fd_is_out ? jb->out_fd : jb->err_fd);
                if (fd_is_out) jb->out_fd = -1;
                else jb->err_fd = -1;
            }
            return;
        }
        if (!fd_is_out) { /* keep the tail */
            for (ssize_t i = 0; i < n; i++) {
                if (jb->err_len == sizeof jb->err - 1) {
                    memmove(jb->err, jb->err + 1024, sizeof jb->err - 1 - 1024);
                    jb->err_len -= 1024;
                }
                jb->err[jb->err_len++] = buf[i];
            }
            jb->err[jb->err_len] = 0;
            continue;
        }
        if (jb->out_len + (size_t)n + 1 > jb->out_cap) {
            jb->out_cap = (jb->out_len + (size_t)n + 1) * 2;
            jb->out = reallocCheck(jb->out, jb->out_cap);
        }
        memcpy(jb->out + jb->out_len, buf, (size_t)n);
        jb->out_len += (size_t)n;
        jb->out[jb->out_len] = 0;
        char *nl;
        while ((nl = memchr(jb->out, '\n', jb->out_len)) != NULL) {
            *nl = 0;
            if (jb->out[0] == '{' && take_line(R, jb, jb->out) != ADP_OK) {
                /* the cell could not be stored: count it failed, keep going */
                char why[600];
                snprintf(why, sizeof why, "%s", adp_errmsg());
                job one = *jb;
                one.n = jb->next + 1;
                fail_rest(R, &one, -1, why);
                jb->next++;
            }
            size_t used = (size_t)(nl - jb->out) + 1;
            memmove(jb->out, nl + 1, jb->out_len - used);
            jb->out_len -= used;
            jb->out[jb->out_len] = 0;
        }
    }
}

/* Last non-empty line(s) of stderr, for the failures table. */
static const char *err_tail(job *jb) {
    char *s = jb->err;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    char *line = strrchr(s, '\n');
    return n == 0 ? "(no message)" : line ? line + 1 : s;
}

static void reap(runner *R, job *jb) {
    int st = 0;
    while (waitpid(jb->pid, &st, 0) < 0 && errno == EINTR) {}
    R->running--;
    jb->state = 2;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    if (jb->next < jb->n) {
        char why[1200];
        if (status == 0) snprintf(why, sizeof why, "eval exited after %d of %d values", jb->next, jb->n);
        else snprintf(why, sizeof why, "%s", err_tail(jb));
        fail_rest(R, jb, status ? status : -1, why);
    }
    if (jb->ex_path[0]) unlink(jb->ex_path);
}

static int ready(runner *R, const job *jb) {
    const sweep_cell *c0 = &R->x->plan.cells[jb->cells[0]];
    if (c0->match_ref < 0) return 1;
    unsigned char s = R->x->status[c0->match_ref];
    return s == CELL_DONE ? 1 : CELL_RUNNABLE(s) ? 0 : -1;
}

int sweep_execute(sweep_ctx *x, const sweep_opts *o, int *done_out, int *failed_out) {
    *done_out = *failed_out = 0;
    for (int i = 0; i < x->plan.n_models && !o->available_models; i++)
        if (x->model_problem[i]) return adp_seterr("%s", x->model_problem[i]);
    if (!o->db_path) return adp_seterr("no database (--db)");
    runner R;
    memset(&R, 0, sizeof R);
    R.x = x, R.o = o;
    if (o->only_cell >= 0 && x->status[o->only_cell] == CELL_NO_MODEL)
        return adp_seterr("cell %d: its model is unavailable", o->only_cell);
    if (results_db_open(&R.db, o->db_path) != ADP_OK) return ADP_ERR;
    build_jobs(&R);
    for (int i = 0; i < R.n_jobs; i++) {
        R.total += R.jobs[i].n;
        for (int k = 0; k < R.jobs[i].n; k++) R.units_total += cell_cost(&x->plan.cells[R.jobs[i].cells[k]]);
    }
    int rc = ADP_OK;
    if (R.total == 0) goto out; /* nothing to do: no run row either */
    snprintf(R.tmpdir, sizeof R.tmpdir, "%s/adapler-sweep-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(R.tmpdir)) {
        rc = adp_seterr("%s: cannot create: %s", R.tmpdir, strerror(errno));
        R.tmpdir[0] = 0;
        goto out;
    }
    results_new_run_id(R.run_id);
    char *cpu = cpu_name(), *git = git_describe(x->exe), host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    int jobs = o->jobs > 0 ? o->jobs : 1;
    char env[256];
    snprintf(env, sizeof env, "OMP_WAIT_POLICY=%s", getenv("OMP_WAIT_POLICY")
                                                         ? getenv("OMP_WAIT_POLICY")
                                                         : "PASSIVE (untimed cells), default (cells timed alone)");
    results_run run = {.environment = env, .run_id = R.run_id, .sweep = x->sf.name, .sweep_file = x->sf.path, .sweep_sha256 = x->sf.sha256,
                       .command = o->command, .code_version = x->code_version, .git_describe = git, .host = host,
                       .cpu = cpu, .blas = adp_blas_info(), .cores = x->cores, .jobs = jobs,
                       .threads_per_job = o->threads_per_job > 0 ? o->threads_per_job : ADP_MAX(1, x->cores / jobs)};
    rc = results_db_run_begin(&R.db, &run);
    free(cpu), free(git);
    if (rc != ADP_OK) goto out;
    for (int i = 0; i < x->plan.n_models && rc == ADP_OK; i++)
        if (strcmp(x->plan.models[i].hash, "unavailable") != 0) rc = register_model(&R.db, &x->plan.models[i]);
    if (rc != ADP_OK) goto out;

    R.t0 = adp_now();
    report(&R, NULL);
    int interrupted = 0;
    for (;;) {
        if (o->stop && *o->stop) {
            interrupted = 1;
            break;
        }
        /* start what can start */
        int exclusive_running = 0;
        for (int i = 0; i < R.n_jobs; i++) exclusive_running |= R.jobs[i].state == 1 && R.jobs[i].timed_exclusive;
        for (int i = 0; i < R.n_jobs && !exclusive_running && R.running < jobs; i++) {
            job *jb = &R.jobs[i];
            if (jb->state != 0) continue;
            int rdy = ready(&R, jb);
            if (rdy < 0) {
                jb->state = 2;
                fail_rest(&R, jb, -1, "its match= reference cell failed");
                continue;
            }
            if (!rdy) continue;
            if (jb->timed_exclusive && R.running > 0) break; /* wait for the others to finish */
            if (start_job(&R, jb, i) != ADP_OK) {
                jb->state = 2;
                char why[600];
                snprintf(why, sizeof why, "%s", adp_errmsg());
                fail_rest(&R, jb, -1, why);
                continue;
            }
            if (jb->timed_exclusive) exclusive_running = 1;
        }
        if (R.running == 0) {
            int waiting = 0;
            for (int i = 0; i < R.n_jobs; i++) waiting |= R.jobs[i].state == 0;
            if (!waiting) break;
            /* only jobs whose references can never finish are left */
            for (int i = 0; i < R.n_jobs; i++)
                if (R.jobs[i].state == 0) {
                    R.jobs[i].state = 2;
                    fail_rest(&R, &R.jobs[i], -1, "its match= reference cell is not available");
                }
            continue;
        }
        struct pollfd *pf = mallocCheck(sizeof(struct pollfd) * (size_t)(2 * R.n_jobs + 1));
        int *map = mallocCheck(sizeof(int) * (size_t)(2 * R.n_jobs + 1)), np = 0;
        for (int i = 0; i < R.n_jobs; i++) {
            job *jb = &R.jobs[i];
            if (jb->state != 1) continue;
            if (jb->out_fd >= 0) pf[np] = (struct pollfd){.fd = jb->out_fd, .events = POLLIN}, map[np++] = 2 * i;
            if (jb->err_fd >= 0) pf[np] = (struct pollfd){.fd = jb->err_fd, .events = POLLIN}, map[np++] = 2 * i + 1;
        }
        int n = poll(pf, (nfds_t)np, 500);
        if (n < 0 && errno != EINTR) {
            rc = adp_seterr("poll: %s", strerror(errno));
            free(pf), free(map);
            interrupted = 1;
            break;
        }
        for (int k = 0; k < np && n > 0; k++)
            if (pf[k].revents) drain(&R, &R.jobs[map[k] / 2], map[k] % 2 == 0);
        free(pf), free(map);
        for (int i = 0; i < R.n_jobs; i++) {
            job *jb = &R.jobs[i];
            if (jb->state == 1 && jb->out_fd < 0 && jb->err_fd < 0) reap(&R, jb);
        }
        report(&R, NULL);
    }
    if (interrupted) {
        for (int i = 0; i < R.n_jobs; i++)
            if (R.jobs[i].state == 1) kill(R.jobs[i].pid, SIGTERM);
        for (int i = 0; i < R.n_jobs; i++)
            if (R.jobs[i].state == 1) {
                int st;
                while (waitpid(R.jobs[i].pid, &st, 0) < 0 && errno == EINTR) {}
                if (R.jobs[i].ex_path[0]) unlink(R.jobs[i].ex_path);
                R.jobs[i].state = 2;
            }
        R.running = 0;
        if (rc == ADP_OK) rc = adp_seterr("interrupted: %d cells finished in this run are saved", R.done);
    }
    {
        char *keep = rc != ADP_OK ? strdupCheck(adp_errmsg()) : NULL;
        results_db_run_end(&R.db, R.run_id, interrupted ? "interrupted" : R.failed ? "failed" : "done", R.done,
                           R.failed);
        if (keep) adp_seterr("%s", keep), free(keep);
    }
out:
    for (int i = 0; i < R.n_jobs; i++) {
        if (R.jobs[i].out_fd >= 0) close(R.jobs[i].out_fd);
        if (R.jobs[i].err_fd >= 0) close(R.jobs[i].err_fd);
        free(R.jobs[i].cells), free(R.jobs[i].out);
    }
    free(R.jobs);
    if (R.tmpdir[0]) {
        char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", R.tmpdir) >= 0 && system(cmd) != 0) {}
        free(cmd);
    }
    results_db_close(&R.db);
    *done_out = R.done, *failed_out = R.failed;
    return rc;
}

/* ---- Makefile ------------------------------------------------------------------------------ */

static void make_escape(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '$') fputc('$', out);
        fputc(*s, out);
    }
}

static char *recipe_file(const char *dir, const char *path) {
    char *name = strdupCheck(path), *res = NULL;
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '-'))
            *c = '_';
    if (asprintf(&res, "%s/%s.cmd", dir, name) < 0) abort();
    free(name);
    return res;
}

/* The recipe file rf of the model at `path`, holding `want`: if the model's stamp records
 * that same command but is older than rf (the command changed and changed back, rewriting
 * rf each time), give rf the stamp's date, so that make does not rebuild a model that was
 * built with exactly this command.  The stamp is what a successful build copied from rf. */
static int recipe_date_from_stamp(const char *rf, const char *path, const char *want) {
    char *stamp = NULL, *built = NULL;
    if (asprintf(&stamp, "%s/.built", path) < 0) abort();
    struct stat ss, rs;
    int rc = ADP_OK;
    if (stat(stamp, &ss) == 0 && stat(rf, &rs) == 0 &&
        (rs.st_mtim.tv_sec > ss.st_mtim.tv_sec ||
         (rs.st_mtim.tv_sec == ss.st_mtim.tv_sec && rs.st_mtim.tv_nsec > ss.st_mtim.tv_nsec)) &&
        adp_read_file(stamp, &built, NULL) == ADP_OK && !strcmp(built, want)) {
        const struct timespec times[2] = {ss.st_atim, ss.st_mtim};
        if (utimensat(AT_FDCWD, rf, times, 0) != 0) rc = adp_seterr("%s: cannot set its date: %s", rf, strerror(errno));
    }
    free(built), free(stamp);
    return rc;
}

static int mkdir_p(const char *dir) {
    char *d = strdupCheck(dir);
    for (char *c = d + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(d, 0755) != 0 && errno != EEXIST) {
                int rc = adp_seterr("%s: cannot create: %s", d, strerror(errno));
                free(d);
                return rc;
            }
            *c = '/';
        }
    int rc = mkdir(d, 0755) != 0 && errno != EEXIST ? adp_seterr("%s: cannot create: %s", d, strerror(errno)) : ADP_OK;
    free(d);
    return rc;
}

int sweep_emit_make(sweep_ctx *x, FILE *out, const char *recipes_dir) {
    const sweep_plan *p = &x->plan;
    if (mkdir_p(recipes_dir) != ADP_OK) return ADP_ERR;
    fprintf(out, "# Generated by `adapler sweep %s --emit make`: the models of sweep %s.  Do not edit;\n"
                 "# `make -f THIS ADAPLER=bin/adapler models` builds those missing or whose command changed.\n"
                 "ADAPLER ?= adapler\n.PHONY: models FORCE\nmodels:",
            x->sf.path, x->sf.name);
    for (int i = 0; i < p->n_models; i++)
        fprintf(out, " %s/%s", p->models[i].path, p->models[i].recipe ? ".built" : "config.json");
    fprintf(out, "\n");
    const char *prev_delegated = NULL; /* path of the last model built by another make */
    for (int i = 0; i < p->n_models; i++) {
        const sweep_model_inst *m = &p->models[i];
        fprintf(out, "\n# %s (%s:%d)\n", m->name, m->file, m->line);
        if (!m->recipe) {
            fprintf(out, "%s/config.json:\n\t@echo '%s: no such model, and %s:%d gives no command to build it' >&2; exit 1\n",
                    m->path, m->path, m->file, m->line);
            continue;
        }
        char *rf = recipe_file(recipes_dir, m->path);
        /* rewrite the recipe file only when the command changed: its date drives make */
        char *old = NULL, *want = NULL;
        size_t old_len = 0;
        if (asprintf(&want, "%s\n", m->recipe) < 0) abort();
        int same = file_exists(rf) && adp_read_file(rf, &old, &old_len) == ADP_OK && !strcmp(old, want);
        free(old);
        if ((!same && adp_write_file_atomic(rf, want, strlen(want)) != ADP_OK) ||
            recipe_date_from_stamp(rf, m->path, want) != ADP_OK) {
            free(want), free(rf);
            return ADP_ERR;
        }
        free(want);
        /* the command word (after any VAR=value words): adapler is this build's binary, make
         * the parent make (jobserver and command-line variables pass on) */
        const char *cmd = m->recipe;
        size_t env_len = 0;
        int delegated = 0;
        for (;;) {
            size_t w = strcspn(cmd + env_len, " ");
            if (memchr(cmd + env_len, '=', w) && cmd[env_len + w]) {
                env_len += w + 1;
                continue;
            }
            delegated = w == 4 && !strncmp(cmd + env_len, "make", 4);
            break;
        }
        /* A model built by another make target ("make models/x"): that make decides when to
         * rebuild, so the rule always asks it, and the stamp is renewed only when the recipe
         * changed or the checkpoint is newer, which is what rebuilds the models built from it. */
        fprintf(out, "%s/.built: %s", m->path, rf);
        for (int d = 0; d < m->n_deps; d++) {
            const sweep_model_inst *dep = &p->models[m->deps[d]];
            fprintf(out, " %s/%s", dep->path, dep->recipe ? ".built" : "config.json");
        }
        /* Models built by another make run one after another (an order-only chain): under
         * make -j those makes would otherwise run at once and, knowing nothing of each
         * other, build a prerequisite they share (the pretrained backbone) twice, into the
         * same directory.  Models this file builds itself still run in parallel. */
        if (delegated) {
            fprintf(out, " FORCE");
            if (prev_delegated) fprintf(out, " | %s/.built", prev_delegated);
            prev_delegated = m->path;
        }
        char *parent = strdupCheck(m->path), *slash = strrchr(parent, '/');
        if (slash && slash != parent) *slash = 0;
        if (!delegated) fprintf(out, "\n\t@rm -f %s/.built", m->path);
        fprintf(out, "\n\t@mkdir -p %s\n\t", slash ? parent : ".");
        free(parent);
        /* a build's progress and log go to PATH/log.txt, kept with the model; on failure
         * its last lines are shown */
        if (!delegated) fprintf(out, "@mkdir -p %s\n\t@echo 'building %s (log: %s/log.txt)'\n\t", m->path, m->path, m->path);
        fwrite(cmd, 1, env_len, out);
        cmd += env_len;
        if (!strncmp(cmd, "adapler ", 8) || !strcmp(cmd, "adapler")) fputs("$(ADAPLER)", out), cmd += 7;
        else if (delegated) fputs("$(MAKE)", out), cmd += 4;
        make_escape(out, cmd);
        if (!delegated)
            fprintf(out, " 2> %s/log.txt || { tail -n 5 %s/log.txt >&2; exit 1; }", m->path, m->path);
        if (delegated)
            fprintf(out, "\n\t@if ! cmp -s %s $@ || [ %s/model.safetensors -nt $@ ]; then cp %s $@; fi\n", rf, m->path, rf);
        else
            fprintf(out, "\n\tcp %s $@\n", rf);
        free(rf);
    }
    return ferror(out) ? adp_seterr("writing the makefile failed") : ADP_OK;
}

/* ---- Slurm ---------------------------------------------------------------------------------- */

static void shell_quote(FILE *out, const char *s) {
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", out);
        else fputc(*s, out);
    }
    fputc('\'', out);
}

int sweep_emit_slurm(sweep_ctx *x, FILE *out, const char *sweep_path, const char *shard_dir, const char *db_path,
                     int threads, const char *flags) {
    const sweep_plan *p = &x->plan;
    for (int i = 0; i < p->n_models; i++)
        if (x->model_problem[i]) return adp_seterr("%s", x->model_problem[i]);
    char cwd[4096], sweep_abs[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return adp_seterr("getcwd: %s", strerror(errno));
    if (!realpath(sweep_path, sweep_abs)) return adp_seterr("%s: %s", sweep_path, strerror(errno));
    /* array indices: pending cells whose reference (if any) is finished */
    int n_tasks = 0, n_waiting = 0;
    char *spec = NULL;
    size_t spec_len = 0;
    FILE *sp = open_memstream(&spec, &spec_len);
    for (int i = 0; i < p->n_cells;) {
        int ok = CELL_RUNNABLE(x->status[i]);
        if (ok && p->cells[i].match_ref >= 0 && x->status[p->cells[i].match_ref] != CELL_DONE) {
            ok = 0;
            n_waiting++;
        }
        if (!ok) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < p->n_cells && CELL_RUNNABLE(x->status[j + 1]) &&
               !(p->cells[j + 1].match_ref >= 0 && x->status[p->cells[j + 1].match_ref] != CELL_DONE))
            j++;
        fprintf(sp, "%s%d", n_tasks ? "," : "", i);
        if (j > i) fprintf(sp, "-%d", j);
        n_tasks += j - i + 1;
        i = j + 1;
    }
    fclose(sp);
    if (n_tasks == 0) {
        free(spec);
        return adp_seterr("%s: no pending cell to run (%d finished, %d waiting for a match= reference)", sweep_path,
                          x->n_done, n_waiting);
    }
    fprintf(out,
            "#!/bin/bash\n"
            "# Generated by `adapler sweep %s --emit slurm`: %d array tasks, one per pending cell of\n"
            "# sweep %s, each writing its own shard database %s/cell-N.db.  Submit with `sbatch THIS`;\n"
            "# when every task has finished, merge (idempotent, so re-merging is harmless):\n"
            "#   adapler results merge %s/cell-*.db --into %s\n",
            sweep_path, n_tasks, x->sf.name, shard_dir, shard_dir, db_path);
    if (n_waiting)
        fprintf(out, "# %d cells wait for their match= reference: after the merge, emit and submit again.\n", n_waiting);
    fprintf(out,
            "#SBATCH --job-name=adapler-%s\n#SBATCH --array=%s\n#SBATCH --cpus-per-task=%d\n#SBATCH --ntasks=1\n"
            "#SBATCH --output=%s/slurm-%%A_%%a.out\nset -euo pipefail\ncd ",
            x->sf.name, spec, threads, shard_dir);
    shell_quote(out, cwd);
    fprintf(out, "\nADAPLER=${ADAPLER:-");
    shell_quote(out, x->exe);
    fprintf(out, "}\nmkdir -p ");
    shell_quote(out, shard_dir);
    fprintf(out, "\nexec \"$ADAPLER\" sweep ");
    shell_quote(out, sweep_abs);
    fprintf(out, " --cell \"$SLURM_ARRAY_TASK_ID\" --sweep-sha256 %s \\\n    --db ", x->sf.sha256);
    shell_quote(out, shard_dir);
    fprintf(out, "\"/cell-$SLURM_ARRAY_TASK_ID.db\" --ref-db ");
    shell_quote(out, db_path);
    fprintf(out, " --threads-per-job \"${SLURM_CPUS_PER_TASK:-%d}\"%s%s\n", threads, flags && *flags ? " " : "",
            flags ? flags : "");
    free(spec);
    return ferror(out) ? adp_seterr("writing the script failed") : ADP_OK;
}

/* sweep_file.c: reading sweep files and expanding them into cells (format in sweep_file.h). */
#include "sweep_file.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "common.h"
#include "dataset.h"
#include "method.h"
#include "model.h"
#include "sha256.h"

/* ---- small string helpers ------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = reallocCheck(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = mallocCheck((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}
static char *sb_take(sbuf *b) { return b->s ? b->s : strdupCheck(""); }

static char *join_words(char *const *w, int n) {
    sbuf b = {0};
    for (int i = 0; i < n; i++) {
        if (i) sb_puts(&b, " ");
        sb_puts(&b, w[i]);
    }
    return sb_take(&b);
}

static void push_str(char ***arr, int *n, const char *s) {
    *arr = reallocCheck(*arr, sizeof(char *) * (size_t)(*n + 1));
    (*arr)[(*n)++] = strdupCheck(s);
}

static void free_strs(char **a, int n) {
    for (int i = 0; i < n; i++) free(a[i]);
    free(a);
}

/* Split s at c into fresh strings (empty pieces kept, so "a,,b" is an error later). */
static void split_at(const char *s, char c, char ***out, int *n) {
    *out = NULL, *n = 0;
    const char *p = s;
    for (;;) {
        const char *q = strchr(p, c);
        size_t len = q ? (size_t)(q - p) : strlen(p);
        char *piece = strndup(p, len);
        if (!piece) abort();
        *out = reallocCheck(*out, sizeof(char *) * (size_t)(*n + 1));
        (*out)[(*n)++] = piece;
        if (!q) break;
        p = q + 1;
    }
}

/* ---- parsing ----------------------------------------------------------------------- */

typedef struct {
    char *split;
    long *seeds, *batches, *max_lens, *weights;
    int n_seeds, n_batches, n_max_lens, n_weights;
    long repeats, threads;
    int timing;
} settings;

typedef struct {
    sweep_file *sf;
    settings set;
    int depth;
} parser;

static int perr(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return adp_seterr("%s:%d: %s", file, line, msg);
}

static int parse_long_list(const char *file, int line, const char *key, const char *v, long lo, long hi, long **out,
                           int *n) {
    char **parts;
    int np;
    split_at(v, ',', &parts, &np);
    long *vals = mallocCheck(sizeof(long) * (size_t)np);
    for (int i = 0; i < np; i++) {
        char *end;
        errno = 0;
        long x = strtol(parts[i], &end, 10);
        if (!parts[i][0] || *end || errno || x < lo || x > hi) {
            int rc = perr(file, line, "%s: expected integers in [%ld, %ld], got '%s'", key, lo, hi, parts[i]);
            free_strs(parts, np);
            free(vals);
            return rc;
        }
        vals[i] = x;
    }
    free_strs(parts, np);
    free(*out);
    *out = vals, *n = np;
    return ADP_OK;
}

/* Apply one setting; returns 1 if key is a setting, 0 if not, ADP_ERR on a bad value. */
static int apply_setting(settings *s, sweep_run *run, const char *file, int line, const char *key, const char *v) {
    if (!strcmp(key, "split")) {
        split_id id;
        if (split_parse(v, &id) != ADP_OK) return perr(file, line, "split: expected dev, test or train, got '%s'", v);
        free(s->split);
        s->split = strdupCheck(split_name(id));
        return 1;
    }
    if (!strcmp(key, "seeds") || !strcmp(key, "seed"))
        return parse_long_list(file, line, key, v, 0, 2147483647L, &s->seeds, &s->n_seeds) == ADP_OK ? 1 : ADP_ERR;
    if (!strcmp(key, "batch"))
        return parse_long_list(file, line, key, v, 1, 1000000, &s->batches, &s->n_batches) == ADP_OK ? 1 : ADP_ERR;
    if (!strcmp(key, "max_len")) {
        if (parse_long_list(file, line, key, v, 0, 1000000, &s->max_lens, &s->n_max_lens) != ADP_OK) return ADP_ERR;
        for (int i = 0; i < s->n_max_lens; i++)
            if (s->max_lens[i] == 1) return perr(file, line, "max_len: 1 leaves no room for [CLS] and [SEP]");
        return 1;
    }
    if (!strcmp(key, "weights")) {
        char **parts;
        int np;
        split_at(v, ',', &parts, &np);
        long *vals = mallocCheck(sizeof(long) * (size_t)(np ? np : 1));
        int rc = 1;
        for (int i = 0; i < np && rc == 1; i++) {
            vals[i] = weights_fmt_from_name(parts[i]);
            if (vals[i] < 0) rc = perr(file, line, "weights: expected " WEIGHTS_FMT_NAMES ", got '%s'", parts[i]);
            for (int j = 0; j < i && rc == 1; j++)
                if (vals[j] == vals[i]) rc = perr(file, line, "weights: '%s' listed twice", parts[i]);
        }
        if (rc == 1 && np == 0) rc = perr(file, line, "weights: expected " WEIGHTS_FMT_NAMES ", got ''");
        free_strs(parts, np);
        if (rc != 1) {
            free(vals);
            return ADP_ERR;
        }
        free(s->weights);
        s->weights = vals, s->n_weights = np;
        return 1;
    }
    if (!strcmp(key, "repeats") || !strcmp(key, "threads")) {
        long *one = NULL;
        int n = 0;
        if (parse_long_list(file, line, key, v, 0, key[0] == 'r' ? 1000 : 1024, &one, &n) != ADP_OK) return ADP_ERR;
        long x = one[0];
        free(one);
        if (n != 1) return perr(file, line, "%s: one value expected, got '%s'", key, v);
        if (key[0] == 'r') s->repeats = x;
        else s->threads = x;
        return 1;
    }
    if (!strcmp(key, "timing")) {
        if (!strcmp(v, "exclusive")) s->timing = TIMING_EXCLUSIVE;
        else if (!strcmp(v, "shared")) s->timing = TIMING_SHARED;
        else return perr(file, line, "timing: expected exclusive or shared, got '%s'", v);
        return 1;
    }
    if (run && !strcmp(key, "name")) {
        free(run->name);
        run->name = strdupCheck(v);
        return 1;
    }
    if (run && !strcmp(key, "match")) {
        free(run->match);
        run->match = strdupCheck(v);
        return 1;
    }
    return 0;
}

static void settings_copy(settings *dst, const settings *src) {
    memset(dst, 0, sizeof *dst);
    *dst = *src;
    dst->split = strdupCheck(src->split);
    dst->seeds = mallocCheck(sizeof(long) * (size_t)src->n_seeds);
    memcpy(dst->seeds, src->seeds, sizeof(long) * (size_t)src->n_seeds);
    dst->batches = mallocCheck(sizeof(long) * (size_t)src->n_batches);
    memcpy(dst->batches, src->batches, sizeof(long) * (size_t)src->n_batches);
    dst->max_lens = mallocCheck(sizeof(long) * (size_t)src->n_max_lens);
    memcpy(dst->max_lens, src->max_lens, sizeof(long) * (size_t)src->n_max_lens);
    dst->weights = mallocCheck(sizeof(long) * (size_t)src->n_weights);
    memcpy(dst->weights, src->weights, sizeof(long) * (size_t)src->n_weights);
}

static void settings_free(settings *s) {
    free(s->split), free(s->seeds), free(s->batches), free(s->max_lens), free(s->weights);
    memset(s, 0, sizeof *s);
}

static int dataset_name_ok(const char *name) {
    if (!strncmp(name, "tsv:", 4)) return name[4] != 0;
    char **names;
    int n;
    split_at(DATASET_NAMES, ',', &names, &n);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const char *w = names[i];
        while (*w == ' ') w++;
        ok |= !strcmp(w, name) && strcmp(w, "tsv:DIR") != 0;
    }
    free_strs(names, n);
    return ok;
}

int method_name_known(const char *name);
int method_name_known(const char *name) {
    char **names;
    int n;
    split_at(METHOD_NAMES, ',', &names, &n);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const char *w = names[i];
        while (*w == ' ') w++;
        ok |= !strcmp(w, name);
    }
    free_strs(names, n);
    return ok;
}

/* Check method options the way eval will parse them.  Returns ADP_OK, or ADP_ERR with a
 * message (no file/line). */
static int check_method_options(char **argv, int argc) {
    method_opts o;
    method_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--method"))
            return adp_seterr("--method is the run line's third word, not an option");
        if (!strcmp(argv[i], "--method-seed")) return adp_seterr("--method-seed: use seeds=LIST instead");
        int r = method_opts_parse(&o, argc, argv, &i);
        if (r == ADP_ERR) return ADP_ERR;
        if (r == 0) return adp_seterr("unknown method option '%s' (see adapler eval --help)", argv[i]);
    }
    return ADP_OK;
}

static int check_dataset_options(char **argv, int argc) {
    dataset_opts o;
    dataset_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dataset")) return adp_seterr("--dataset is given by the run lines");
        int r = dataset_opts_parse(&o, argc, argv, &i);
        if (r == ADP_ERR) return ADP_ERR;
        if (r == 0) return adp_seterr("unknown dataset option '%s'", argv[i]);
    }
    return ADP_OK;
}

/* A logical line: comments stripped, continuations joined; words split at blanks. */
static void split_words(char *s, char ***w, int *n) {
    *w = NULL, *n = 0;
    for (char *p = s;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *q = p;
        while (*q && !isspace((unsigned char)*q)) q++;
        char save = *q;
        *q = 0;
        push_str(w, n, p);
        *q = save;
        p = q;
    }
}

static int parse_file(parser *ps, const char *path, int from_line, const char *from_file, sha256_ctx *hash);

static int parse_model(parser *ps, const char *file, int line, char *text) {
    sweep_file *sf = ps->sf;
    char *cmd = NULL;
    /* "model NAME PATH : COMMAND": the command is the raw rest after a lone ':' */
    for (char *p = text; (p = strchr(p, ':')) != NULL; p++)
        if ((p == text || isspace((unsigned char)p[-1])) && (!p[1] || isspace((unsigned char)p[1]))) {
            *p = 0;
            cmd = p + 1;
            while (*cmd && isspace((unsigned char)*cmd)) cmd++;
            break;
        }
    char **w;
    int n;
    split_words(text, &w, &n);
    int rc = ADP_OK;
    if (n != 3) rc = perr(file, line, "expected 'model NAME PATH [: COMMAND]'");
    else if (strchr(w[1], '/') || strchr(w[1], '{')) rc = perr(file, line, "model name '%s' must not contain '/' or '{'", w[1]);
    else if (cmd && !*cmd) rc = perr(file, line, "model %s: empty command after ':'", w[1]);
    for (int i = 0; rc == ADP_OK && i < sf->n_models; i++)
        if (!strcmp(sf->models[i].name, w[1]))
            rc = perr(file, line, "model %s is already defined at %s:%d", w[1], sf->models[i].file, sf->models[i].line);
    if (rc == ADP_OK) {
        sf->models = reallocCheck(sf->models, sizeof(sweep_model) * (size_t)(sf->n_models + 1));
        sweep_model *m = &sf->models[sf->n_models++];
        m->name = strdupCheck(w[1]);
        m->path = strdupCheck(w[2]);
        m->cmd = cmd ? strdupCheck(cmd) : NULL;
        m->file = file, m->line = line;
        /* one blank between words: continuation lines' indentation is not part of the recipe */
        if (m->cmd) {
            char *d = m->cmd;
            for (const char *c = m->cmd; *c; c++)
                if (!isspace((unsigned char)*c)) *d++ = *c;
                else if (d > m->cmd && d[-1] != ' ') *d++ = ' ';
            while (d > m->cmd && d[-1] == ' ') d--;
            *d = 0;
        }
    }
    free_strs(w, n);
    return rc;
}

static int parse_run(parser *ps, const char *file, int line, char **w, int n) {
    if (n < 4) return perr(file, line, "expected 'run DATASETS MODEL METHOD [KEY=VALUES...] [OPTIONS...]'");
    sweep_run r;
    memset(&r, 0, sizeof r);
    r.file = file, r.line = line, r.list_opt = -1;
    settings s;
    settings_copy(&s, &ps->set);
    int rc = ADP_OK;
    split_at(w[1], ',', &r.datasets, &r.n_datasets);
    for (int i = 0; i < r.n_datasets && rc == ADP_OK; i++)
        if (!dataset_name_ok(r.datasets[i]))
            rc = perr(file, line, "unknown dataset '%s' (expected one of: %s)", r.datasets[i], DATASET_NAMES);
    r.model = strdupCheck(w[2]);
    r.method = strdupCheck(w[3]);
    int i = 4;
    for (; i < n && rc == ADP_OK && strncmp(w[i], "--", 2) != 0; i++) {
        char *eq = strchr(w[i], '=');
        if (!eq || eq == w[i] || !eq[1]) {
            rc = perr(file, line, "expected KEY=VALUES or a --method-option, got '%s'", w[i]);
            break;
        }
        *eq = 0;
        int a = apply_setting(&s, &r, file, line, w[i], eq + 1);
        if (a == ADP_ERR) rc = ADP_ERR;
        else if (a == 0) { /* a model variable */
            for (int k = 0; k < r.n_vars && rc == ADP_OK; k++)
                if (!strcmp(r.vars[k].name, w[i])) rc = perr(file, line, "variable %s given twice", w[i]);
            if (rc == ADP_OK) {
                r.vars = reallocCheck(r.vars, sizeof(sweep_var) * (size_t)(r.n_vars + 1));
                sweep_var *v = &r.vars[r.n_vars++];
                v->name = strdupCheck(w[i]);
                split_at(eq + 1, ',', &v->values, &v->n);
                for (int k = 0; k < v->n && rc == ADP_OK; k++)
                    if (!v->values[k][0]) rc = perr(file, line, "%s: empty value in '%s'", w[i], eq + 1);
            }
        }
        *eq = '=';
    }
    for (; i < n && rc == ADP_OK; i++) push_str(&r.opts, &r.n_opts, w[i]);
    /* the one option value holding a list */
    for (int k = 1; k < r.n_opts && rc == ADP_OK; k++) {
        const char *v = r.opts[k];
        if (!strncmp(r.opts[k - 1], "--", 2) && strncmp(v, "--", 2) != 0 && (strchr(v, ';') || strchr(v, ','))) {
            char sep = strchr(v, ';') ? ';' : ',';
            if (sep == ',') {
                /* a value the option accepts whole (--schedule 1:0.5,2:0.25) is one value */
                char *pair[2] = {r.opts[k - 1], r.opts[k]};
                if (check_method_options(pair, 2) == ADP_OK) continue;
            }
            if (r.list_opt >= 0) {
                rc = perr(file, line, "only one method option may hold a list (%s and %s do)", r.opts[r.list_opt - 1],
                          r.opts[k - 1]);
                break;
            }
            r.list_opt = k, r.list_sep = sep;
            split_at(v, sep, &r.list_values, &r.n_list);
        }
    }
    if (rc == ADP_OK && r.match && r.list_opt >= 0)
        rc = perr(file, line, "a match= line takes its operating points from the matched line; it cannot sweep %s",
                  r.opts[r.list_opt - 1]);
    if (rc == ADP_OK) {
        r.split = strdupCheck(s.split);
        r.seeds = s.seeds, r.n_seeds = s.n_seeds, s.seeds = NULL;
        r.batches = s.batches, r.n_batches = s.n_batches, s.batches = NULL;
        r.max_lens = s.max_lens, r.n_max_lens = s.n_max_lens, s.max_lens = NULL;
        r.weights = s.weights, r.n_weights = s.n_weights, s.weights = NULL;
        r.repeats = s.repeats, r.threads = s.threads, r.timing = s.timing;
        sweep_file *sf = ps->sf;
        sf->runs = reallocCheck(sf->runs, sizeof(sweep_run) * (size_t)(sf->n_runs + 1));
        sf->runs[sf->n_runs++] = r;
    } else {
        free(r.name), free(r.match), free(r.model), free(r.method);
        free_strs(r.datasets, r.n_datasets);
        for (int k = 0; k < r.n_vars; k++) free(r.vars[k].name), free_strs(r.vars[k].values, r.vars[k].n);
        free(r.vars);
        free_strs(r.opts, r.n_opts);
        free_strs(r.list_values, r.n_list);
    }
    settings_free(&s);
    return rc;
}

static int parse_line(parser *ps, const char *file, int line, char *text, sha256_ctx *hash) {
    char *copy = strdupCheck(text);
    char **w;
    int n;
    split_words(text, &w, &n);
    int rc = ADP_OK;
    sweep_file *sf = ps->sf;
    if (n == 0) goto done;
    if (!strcmp(w[0], "sweep")) {
        if (n != 2) rc = perr(file, line, "expected 'sweep NAME'");
        else free(sf->name), sf->name = strdupCheck(w[1]);
    } else if (!strcmp(w[0], "include")) {
        if (n != 2) rc = perr(file, line, "expected 'include FILE'");
        else if (ps->depth >= 8) rc = perr(file, line, "includes nested too deeply");
        else {
            char *dircopy = strdupCheck(file), *path = NULL;
            if (w[1][0] == '/') path = strdupCheck(w[1]);
            else if (asprintf(&path, "%s/%s", dirname(dircopy), w[1]) < 0) abort();
            free(dircopy);
            ps->depth++;
            rc = parse_file(ps, path, line, file, hash);
            ps->depth--;
            free(path);
        }
    } else if (!strcmp(w[0], "set")) {
        if (n != 3) rc = perr(file, line, "expected 'set KEY VALUE'");
        else {
            int a = apply_setting(&ps->set, NULL, file, line, w[1], w[2]);
            if (a == 0) rc = perr(file, line, "unknown setting '%s' (split, seeds, batch, max_len, weights, repeats, threads, timing)", w[1]);
            else if (a == ADP_ERR) rc = ADP_ERR;
        }
    } else if (!strcmp(w[0], "dataset")) {
        if (n < 2) rc = perr(file, line, "expected 'dataset NAME OPTION...'");
        else if (!dataset_name_ok(w[1])) rc = perr(file, line, "unknown dataset '%s' (expected one of: %s)", w[1], DATASET_NAMES);
        else if (check_dataset_options(w + 2, n - 2) != ADP_OK) rc = perr(file, line, "%s", adp_errmsg());
        else {
            for (int i = 0; i < sf->n_dsopts && rc == ADP_OK; i++)
                if (!strcmp(sf->dsopts[i].dataset, w[1])) rc = perr(file, line, "options for %s given twice", w[1]);
            if (rc == ADP_OK) {
                sf->dsopts = reallocCheck(sf->dsopts, sizeof(sweep_dsopts) * (size_t)(sf->n_dsopts + 1));
                sweep_dsopts *d = &sf->dsopts[sf->n_dsopts++];
                d->dataset = strdupCheck(w[1]);
                d->opts = NULL, d->n = 0;
                for (int i = 2; i < n; i++) push_str(&d->opts, &d->n, w[i]);
            }
        }
    } else if (!strcmp(w[0], "model")) {
        rc = parse_model(ps, file, line, copy);
    } else if (!strcmp(w[0], "run")) {
        rc = parse_run(ps, file, line, w, n);
    } else {
        rc = perr(file, line, "unknown directive '%s' (sweep, include, set, dataset, model, run)", w[0]);
    }
done:
    free_strs(w, n);
    free(copy);
    return rc;
}

static int parse_file(parser *ps, const char *path, int from_line, const char *from_file, sha256_ctx *hash) {
    sweep_file *sf = ps->sf;
    char *buf = NULL;
    size_t len = 0;
    if (adp_read_file(path, &buf, &len) != ADP_OK) {
        if (from_file) adp_preferr("%s:%d: ", from_file, from_line);
        return ADP_ERR;
    }
    sha256_update(hash, buf, len);
    push_str(&sf->files, &sf->n_files, path);
    const char *file = sf->files[sf->n_files - 1];
    int rc = ADP_OK, lineno = 0, start = 0;
    sbuf logical = {0};
    char *p = buf;
    while (rc == ADP_OK && *p) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (!logical.len) start = lineno;
        char *ln = strndup(p, n);
        if (!ln) abort();
        for (char *c = ln; *c; c++) /* comment: '#' at the start or after a blank */
            if (*c == '#' && (c == ln || isspace((unsigned char)c[-1]))) {
                *c = 0;
                break;
            }
        size_t k = strlen(ln);
        while (k > 0 && (ln[k - 1] == ' ' || ln[k - 1] == '\t' || ln[k - 1] == '\r')) ln[--k] = 0;
        int cont = k > 0 && ln[k - 1] == '\\';
        if (cont) ln[k - 1] = ' ';
        if (memchr(p, 0, n)) rc = perr(file, lineno, "NUL byte in the file");
        sb_puts(&logical, ln);
        sb_puts(&logical, " ");
        free(ln);
        if (!cont) {
            rc = parse_line(ps, file, start, logical.s, hash);
            logical.len = 0;
            logical.s[0] = 0;
        }
        p = nl ? nl + 1 : p + n;
    }
    if (rc == ADP_OK && logical.len) rc = parse_line(ps, file, start, logical.s, hash);
    free(logical.s);
    free(buf);
    return rc;
}

void sweep_file_free(sweep_file *sf) {
    free(sf->name), free(sf->path);
    for (int i = 0; i < sf->n_models; i++) free(sf->models[i].name), free(sf->models[i].path), free(sf->models[i].cmd);
    free(sf->models);
    for (int i = 0; i < sf->n_runs; i++) {
        sweep_run *r = &sf->runs[i];
        free(r->name), free(r->match), free(r->model), free(r->method), free(r->split);
        free_strs(r->datasets, r->n_datasets);
        free(r->seeds), free(r->batches), free(r->max_lens), free(r->weights);
        for (int k = 0; k < r->n_vars; k++) free(r->vars[k].name), free_strs(r->vars[k].values, r->vars[k].n);
        free(r->vars);
        free_strs(r->opts, r->n_opts);
        free_strs(r->list_values, r->n_list);
    }
    free(sf->runs);
    for (int i = 0; i < sf->n_dsopts; i++) free(sf->dsopts[i].dataset), free_strs(sf->dsopts[i].opts, sf->dsopts[i].n);
    free(sf->dsopts);
    free_strs(sf->files, sf->n_files);
    memset(sf, 0, sizeof *sf);
}

int sweep_file_load(sweep_file *sf, const char *path) {
    memset(sf, 0, sizeof *sf);
    sf->path = strdupCheck(path);
    parser ps = {.sf = sf};
    ps.set.split = strdupCheck("dev");
    ps.set.seeds = mallocCheck(sizeof(long)), ps.set.seeds[0] = 1, ps.set.n_seeds = 1;
    ps.set.batches = mallocCheck(sizeof(long)), ps.set.batches[0] = 32, ps.set.n_batches = 1;
    ps.set.max_lens = mallocCheck(sizeof(long)), ps.set.max_lens[0] = 0, ps.set.n_max_lens = 1;
    ps.set.weights = mallocCheck(sizeof(long)), ps.set.weights[0] = 0, ps.set.n_weights = 1;
    sha256_ctx h;
    sha256_init(&h);
    int rc = parse_file(&ps, path, 0, NULL, &h);
    settings_free(&ps.set);
    sha256_final_hex(&h, sf->sha256);
    if (rc == ADP_OK && !sf->name) {
        char *copy = strdupCheck(path), *base = basename(copy), *dot = strrchr(base, '.');
        if (dot && dot != base) *dot = 0;
        sf->name = strdupCheck(base);
        free(copy);
    }
    for (int i = 0; rc == ADP_OK && i < sf->n_runs; i++) {
        sweep_run *r = &sf->runs[i];
        if (r->name)
            for (int k = 0; k < i && rc == ADP_OK; k++)
                if (sf->runs[k].name && !strcmp(sf->runs[k].name, r->name))
                    rc = perr(r->file, r->line, "run name '%s' is already used at line %d", r->name, sf->runs[k].line);
        if (r->match && rc == ADP_OK) {
            int found = -1;
            for (int k = 0; k < sf->n_runs; k++)
                if (sf->runs[k].name && !strcmp(sf->runs[k].name, r->match)) found = k;
            if (found < 0) rc = perr(r->file, r->line, "match=%s: no run line has name=%s", r->match, r->match);
            else if (sf->runs[found].match) rc = perr(r->file, r->line, "match=%s: that line is itself a match= line", r->match);
        }
    }
    if (rc != ADP_OK) sweep_file_free(sf);
    return rc;
}

/* ---- expansion --------------------------------------------------------------------- */

typedef struct {
    const char *k[16];
    const char *v[16];
    int n;
} bindings;

static const char *bound(const bindings *b, const char *k, size_t klen) {
    for (int i = 0; i < b->n; i++)
        if (strlen(b->k[i]) == klen && !strncmp(b->k[i], k, klen)) return b->v[i];
    return NULL;
}

static const sweep_dsopts *dsopts_of(const sweep_file *sf, const char *ds_name) {
    for (int i = 0; i < sf->n_dsopts; i++)
        if (!strcmp(sf->dsopts[i].dataset, ds_name)) return &sf->dsopts[i];
    return NULL;
}

static int instance_of(sweep_plan *p, const sweep_file *sf, const char *model, const bindings *b, const char *ds_name,
                       const char *rfile, int rline, int *out, int depth);

/* Expand {name} placeholders.  {model:X} becomes X's path and records a dependency. */
static int expand(sweep_plan *p, const sweep_file *sf, const char *tmpl, const bindings *b, const char *ds_name,
                  const char *out_path, const sweep_model *m, const char *rfile, int rline, char **res, int **deps,
                  int *n_deps, int depth) {
    sbuf s = {0};
    sb_puts(&s, "");
    for (const char *c = tmpl; *c;) {
        if (*c != '{') {
            sb_add(&s, c, 1);
            c++;
            continue;
        }
        const char *e = strchr(c, '}');
        if (!e) {
            free(s.s);
            return perr(m->file, m->line, "unclosed '{' in '%s'", tmpl);
        }
        const char *k = c + 1;
        size_t kl = (size_t)(e - k);
        const char *v = NULL;
        char *owned = NULL;
        if (kl == 3 && !strncmp(k, "out", 3) && out_path) v = out_path;
        else if (kl == 15 && !strncmp(k, "dataset_options", 15)) {
            const sweep_dsopts *d = dsopts_of(sf, ds_name);
            v = owned = d ? join_words(d->opts, d->n) : strdupCheck("");
        } else if (kl > 6 && !strncmp(k, "model:", 6)) {
            char *name = strndup(k + 6, kl - 6);
            int inst;
            int rc = instance_of(p, sf, name, b, ds_name, rfile, rline, &inst, depth + 1);
            free(name);
            if (rc != ADP_OK) {
                free(s.s);
                return ADP_ERR;
            }
            v = p->models[inst].path;
            if (deps) {
                *deps = reallocCheck(*deps, sizeof(int) * (size_t)(*n_deps + 1));
                (*deps)[(*n_deps)++] = inst;
            }
        } else
            v = bound(b, k, kl);
        if (!v) {
            free(s.s);
            return perr(rfile, rline, "model %s (%s:%d) uses {%.*s}, which this run line does not bind", m->name, m->file,
                        m->line, (int)kl, k);
        }
        sb_puts(&s, v);
        free(owned);
        c = e + 1;
    }
    *res = s.s;
    return ADP_OK;
}

static int instance_of(sweep_plan *p, const sweep_file *sf, const char *model, const bindings *b, const char *ds_name,
                       const char *rfile, int rline, int *out, int depth) {
    if (depth > 8) return perr(rfile, rline, "model dependencies nested too deeply (a cycle through %s?)", model);
    const sweep_model *m = NULL;
    for (int i = 0; i < sf->n_models; i++)
        if (!strcmp(sf->models[i].name, model)) m = &sf->models[i];
    char *path = NULL, *recipe = NULL;
    int *deps = NULL, n_deps = 0;
    const char *file = rfile;
    int line = rline;
    if (!m) {
        if (!strchr(model, '/')) return perr(rfile, rline, "unknown model '%s' (no model line defines it; a directory must contain '/')", model);
        path = strdupCheck(model);
    } else {
        file = m->file, line = m->line;
        if (expand(p, sf, m->path, b, ds_name, NULL, m, rfile, rline, &path, NULL, NULL, depth) != ADP_OK) return ADP_ERR;
        if (m->cmd && expand(p, sf, m->cmd, b, ds_name, path, m, rfile, rline, &recipe, &deps, &n_deps, depth) != ADP_OK) {
            free(path);
            return ADP_ERR;
        }
    }
    for (int i = 0; i < p->n_models; i++) {
        sweep_model_inst *x = &p->models[i];
        if (strcmp(x->path, path) != 0) continue;
        int same = (!x->recipe && !recipe) || (x->recipe && recipe && !strcmp(x->recipe, recipe));
        if (!same) {
            int rc = perr(file, line,
                          "%s is built by two different commands (also %s:%d): does the command use a variable, "
                          "such as {seed}, that the path does not?",
                          path, x->file, x->line);
            free(path), free(recipe), free(deps);
            return rc;
        }
        free(path), free(recipe), free(deps);
        *out = i;
        return ADP_OK;
    }
    p->models = reallocCheck(p->models, sizeof(sweep_model_inst) * (size_t)(p->n_models + 1));
    sweep_model_inst *x = &p->models[p->n_models];
    memset(x, 0, sizeof *x);
    x->name = strdupCheck(m ? m->name : model);
    x->path = path, x->recipe = recipe, x->deps = deps, x->n_deps = n_deps;
    x->dataset = strdupCheck(ds_name);
    x->file = file, x->line = line;
    *out = p->n_models++;
    return ADP_OK;
}

static double number_or_nan(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return (*s && !*end && !errno) ? v : NAN;
}

static char *knob_name_of(const char *opt) {
    const char *s = opt;
    while (*s == '-') s++;
    char *n = strdupCheck(s);
    for (char *c = n; *c; c++)
        if (*c == '-') *c = '_';
    return n;
}

static void add_cell(sweep_plan *p, const sweep_cell *c) {
    p->cells = reallocCheck(p->cells, sizeof(sweep_cell) * (size_t)(p->n_cells + 1));
    p->cells[p->n_cells] = *c;
    p->cells[p->n_cells].index = p->n_cells;
    p->n_cells++;
}

static void warn(sweep_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(sweep_plan *p, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t old = p->warnings ? strlen(p->warnings) : 0;
    p->warnings = reallocCheck(p->warnings, old + strlen(msg) + 2);
    strcpy(p->warnings + old, msg);
    strcat(p->warnings, "\n");
}

/* Cells of one run line. */
static int expand_run(sweep_plan *p, const sweep_file *sf, int ri, int skip_unavailable, int *skipped) {
    const sweep_run *r = &sf->runs[ri];
    *skipped = 0;
    /* the method and its options must be known to this build */
    int avail = method_name_known(r->method);
    char why[1024] = "";
    if (!avail) snprintf(why, sizeof why, "unknown method '%s' (this build has: %s)", r->method, METHOD_NAMES);
    int nv = r->list_opt >= 0 ? r->n_list : 1;
    for (int v = 0; avail && v < nv; v++) {
        char **argv = mallocCheck(sizeof(char *) * (size_t)(r->n_opts + 3));
        int argc = 0;
        for (int k = 0; k < r->n_opts; k++) argv[argc++] = k == r->list_opt ? r->list_values[v] : r->opts[k];
        if (r->match) argv[argc++] = "--match", argv[argc++] = "FILE";
        if (check_method_options(argv, argc) != ADP_OK) {
            avail = 0;
            snprintf(why, sizeof why, "%s", adp_errmsg());
        }
        free(argv);
    }
    if (!avail) {
        if (!skip_unavailable) return perr(r->file, r->line, "%s", why);
        warn(p, "%s:%d: skipped: %s", r->file, r->line, why);
        *skipped = 1;
        return ADP_OK;
    }
    /* model variables: the cartesian product of their lists */
    int n_combo = 1;
    for (int k = 0; k < r->n_vars; k++) n_combo *= r->vars[k].n;
    for (int d = 0; d < r->n_datasets; d++) {
        const char *ds = r->datasets[d];
        const sweep_dsopts *dso = dsopts_of(sf, ds);
        for (int combo = 0; combo < n_combo; combo++) {
            int pick[16] = {0};
            for (int k = r->n_vars - 1, rest = combo; k >= 0; k--) pick[k] = rest % r->vars[k].n, rest /= r->vars[k].n;
            for (int si = 0; si < r->n_seeds; si++) {
                char seed_s[32];
                snprintf(seed_s, sizeof seed_s, "%ld", r->seeds[si]);
                bindings b = {.n = 0};
                b.k[b.n] = "dataset", b.v[b.n++] = ds;
                b.k[b.n] = "seed", b.v[b.n++] = seed_s;
                if (r->n_vars > 14) return perr(r->file, r->line, "at most 14 model variables");
                sbuf vars = {0};
                sb_puts(&vars, "");
                for (int k = 0; k < r->n_vars; k++) {
                    b.k[b.n] = r->vars[k].name, b.v[b.n++] = r->vars[k].values[pick[k]];
                    sb_printf(&vars, "%s%s=%s", k ? " " : "", r->vars[k].name, r->vars[k].values[pick[k]]);
                }
                int inst;
                if (instance_of(p, sf, r->model, &b, ds, r->file, r->line, &inst, 0) != ADP_OK) {
                    free(vars.s);
                    return ADP_ERR;
                }
                p->models[inst].used = 1;
                /* every variable must reach the model: otherwise its values are identical cells */
                for (int k = 0; k < r->n_vars; k++) {
                    char ph[128];
                    snprintf(ph, sizeof ph, "{%s}", r->vars[k].name);
                    const sweep_model *m = NULL;
                    for (int i = 0; i < sf->n_models; i++)
                        if (!strcmp(sf->models[i].name, r->model)) m = &sf->models[i];
                    if (!m || (!strstr(m->path, ph) && !(m->cmd && strstr(m->cmd, ph)))) {
                        free(vars.s);
                        return perr(r->file, r->line, "%s is neither a setting nor a variable of model %s", r->vars[k].name,
                                    r->model);
                    }
                }
                for (int bi = 0; bi < r->n_batches; bi++)
                    for (int mi = 0; mi < r->n_max_lens * r->n_weights; mi++) {
                        int group = p->n_groups++;
                        for (int v = 0; v < nv; v++) {
                            sweep_cell c;
                            memset(&c, 0, sizeof c);
                            c.run = ri, c.dataset = ds;
                            c.ds_argv = dso ? dso->opts : NULL, c.ds_argc = dso ? dso->n : 0;
                            c.dataset_options = dso ? join_words(dso->opts, dso->n) : strdupCheck("");
                            c.split = strdupCheck(r->split);
                            c.seed = r->seeds[si], c.batch = r->batches[bi];
                            c.max_len = r->max_lens[mi / r->n_weights], c.weights = (int)r->weights[mi % r->n_weights];
                            c.repeats = r->repeats, c.threads = r->threads, c.timing = r->timing;
                            c.model = inst;
                            c.model_vars = strdupCheck(vars.s);
                            c.m_argv = mallocCheck(sizeof(char *) * (size_t)(r->n_opts + 1));
                            for (int k = 0; k < r->n_opts; k++)
                                c.m_argv[k] = strdupCheck(k == r->list_opt ? r->list_values[v] : r->opts[k]);
                            c.m_argc = r->n_opts;
                            c.method_options = join_words(c.m_argv, c.m_argc);
                            sbuf kn = {0};
                            sb_puts(&kn, vars.s);
                            if (c.m_argc) sb_printf(&kn, "%s%s", vars.len ? " " : "", c.method_options);
                            c.knob = sb_take(&kn);
                            c.knob_value = NAN;
                            if (r->list_opt >= 0) {
                                c.knob_name = knob_name_of(r->opts[r->list_opt - 1]);
                                c.knob_value = number_or_nan(r->list_values[v]);
                            } else {
                                int listed = -1;
                                for (int k = 0; k < r->n_vars; k++)
                                    if (r->vars[k].n > 1 && listed < 0) listed = k;
                                if (listed >= 0) {
                                    c.knob_name = strdupCheck(r->vars[listed].name);
                                    c.knob_value = number_or_nan(r->vars[listed].values[pick[listed]]);
                                } else if (c.m_argc >= 2) {
                                    c.knob_name = knob_name_of(c.m_argv[0]);
                                    c.knob_value = number_or_nan(c.m_argv[1]);
                                } else if (r->n_vars) {
                                    c.knob_name = strdupCheck(r->vars[0].name);
                                    c.knob_value = number_or_nan(r->vars[0].values[pick[0]]);
                                }
                            }
                            c.group = group;
                            c.match_ref = -1;
                            add_cell(p, &c);
                        }
                    }
                free(vars.s);
            }
        }
    }
    return ADP_OK;
}

/* Cells of a match= line: one per cell of the referenced line with the same dataset,
 * split, seed and max_len, at that line's first batch size. */
static int expand_match(sweep_plan *p, const sweep_file *sf, int ri, const int *first_cell, const int *n_cells_of) {
    const sweep_run *r = &sf->runs[ri];
    int ref = -1;
    for (int k = 0; k < sf->n_runs; k++)
        if (sf->runs[k].name && !strcmp(sf->runs[k].name, r->match)) ref = k;
    if (n_cells_of[ref] == 0) return perr(r->file, r->line, "match=%s: that line has no cells (skipped?)", r->match);
    int before = p->n_cells, skipped, rc = ADP_OK, groups_before = p->n_groups;
    if (expand_run(p, sf, ri, 0, &skipped) != ADP_OK) return ADP_ERR;
    p->n_groups = groups_before; /* the plain cells are replaced below, with groups of their own */
    int after = p->n_cells;
    /* Replace each plain cell by one cell per matching reference cell. */
    sweep_cell *plain = mallocCheck(sizeof(sweep_cell) * (size_t)(after - before));
    memcpy(plain, p->cells + before, sizeof(sweep_cell) * (size_t)(after - before));
    p->n_cells = before;
    for (int i = 0; i < after - before; i++) {
        sweep_cell *c = &plain[i];
        int made = 0;
        /* the reference's cells of the same seed, else of its first seed */
        long ref_seed = sf->runs[ref].seeds[0];
        for (int k = 0; k < sf->runs[ref].n_seeds; k++)
            if (sf->runs[ref].seeds[k] == c->seed) ref_seed = c->seed;
        for (int j = first_cell[ref]; j < first_cell[ref] + n_cells_of[ref]; j++) {
            const sweep_cell *rcell = &p->cells[j];
            if (strcmp(rcell->dataset, c->dataset) || strcmp(rcell->split, c->split) || rcell->seed != ref_seed ||
                rcell->max_len != c->max_len || rcell->batch != sf->runs[ref].batches[0])
                continue;
            sweep_cell m = *c;
            m.dataset_options = strdupCheck(c->dataset_options);
            m.split = strdupCheck(c->split);
            m.model_vars = strdupCheck(c->model_vars);
            m.m_argv = mallocCheck(sizeof(char *) * (size_t)(c->m_argc + 1));
            for (int k = 0; k < c->m_argc; k++) m.m_argv[k] = strdupCheck(c->m_argv[k]);
            m.method_options = strdupCheck(c->method_options);
            sbuf kn = {0};
            sb_printf(&kn, "%s%smatch %s", c->knob, c->knob[0] ? " " : "", p->cells[j].knob);
            m.knob = sb_take(&kn);
            m.knob_name = p->cells[j].knob_name ? strdupCheck(p->cells[j].knob_name) : NULL;
            m.knob_value = p->cells[j].knob_value;
            m.match_ref = j;
            m.group = p->n_groups++; /* each needs its own --match file: its own process */
            p->cells[j].is_ref = 1;
            add_cell(p, &m);
            made++;
        }
        if (!made)
            rc = perr(r->file, r->line, "match=%s: no cell of that line has dataset %s, split %s, max_len %ld", r->match,
                      c->dataset, c->split, c->max_len);
        for (int k = i; k < (rc == ADP_OK ? i + 1 : after - before); k++) {
            sweep_cell *f = &plain[k];
            free(f->dataset_options), free(f->split), free(f->model_vars), free(f->method_options), free(f->knob);
            free(f->knob_name);
            free_strs(f->m_argv, f->m_argc);
        }
        if (rc != ADP_OK) break;
    }
    free(plain);
    return rc;
}

int sweep_expand(sweep_plan *p, const sweep_file *sf, int skip_unavailable) {
    memset(p, 0, sizeof *p);
    int *first = callocCheck((size_t)sf->n_runs + 1, sizeof(int)), *count = callocCheck((size_t)sf->n_runs + 1, sizeof(int));
    int rc = ADP_OK;
    for (int i = 0; i < sf->n_runs && rc == ADP_OK; i++) {
        if (sf->runs[i].match) continue;
        first[i] = p->n_cells;
        int skipped;
        rc = expand_run(p, sf, i, skip_unavailable, &skipped);
        count[i] = p->n_cells - first[i];
    }
    for (int i = 0; i < sf->n_runs && rc == ADP_OK; i++) {
        if (!sf->runs[i].match) continue;
        const sweep_run *r = &sf->runs[i];
        int avail = method_name_known(r->method);
        if (avail) {
            char *argv[] = {"--match", "FILE"};
            avail = check_method_options(argv, 2) == ADP_OK;
        }
        if (!avail && skip_unavailable) {
            warn(p, "%s:%d: skipped: %s", r->file, r->line,
                 method_name_known(r->method) ? "this build's methods have no --match option"
                                              : "unknown method");
            continue;
        }
        if (!avail) {
            rc = method_name_known(r->method)
                     ? perr(r->file, r->line, "match=: this build's methods have no --match option")
                     : perr(r->file, r->line, "unknown method '%s' (this build has: %s)", r->method, METHOD_NAMES);
            break;
        }
        rc = expand_match(p, sf, i, first, count);
    }
    free(first), free(count);
    if (rc != ADP_OK) sweep_plan_free(p);
    return rc;
}

void sweep_plan_free(sweep_plan *p) {
    for (int i = 0; i < p->n_cells; i++) {
        sweep_cell *c = &p->cells[i];
        free(c->dataset_options), free(c->split), free(c->model_vars), free(c->method_options), free(c->knob);
        free(c->knob_name), free(c->key_text), free(c->logical_key);
        free_strs(c->m_argv, c->m_argc);
    }
    free(p->cells);
    for (int i = 0; i < p->n_models; i++) {
        sweep_model_inst *m = &p->models[i];
        free(m->name), free(m->path), free(m->recipe), free(m->dataset), free(m->deps);
    }
    free(p->models);
    free(p->warnings);
    memset(p, 0, sizeof *p);
}

void sweep_plan_keys(sweep_plan *p, const sweep_file *sf, const char *code_version) {
    /* reference cells first: a matched cell's key contains its reference's key */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n_cells; i++) {
            sweep_cell *c = &p->cells[i];
            if ((c->match_ref >= 0) != pass) continue;
            const sweep_model_inst *m = &p->models[c->model];
            sbuf k = {0};
            sb_printf(&k, "dataset=%s;dataset_options=%s;split=%s;", c->dataset, c->dataset_options, c->split);
            size_t model_at = k.len;
            sb_printf(&k, "method=%s;options=%s;seed=%ld;batch=%ld;max_len=%ld;", sf->runs[c->run].method,
                      c->method_options, c->seed, c->batch, c->max_len);
            if (c->weights != FMT_F32) /* f32 cells keep the keys they had before weights existed */
                sb_printf(&k, "weights=%s;", weights_fmt_name(c->weights));
            if (c->repeats > 0)
                sb_printf(&k, "repeats=%ld;threads=%ld;timing=%s;", c->repeats, c->threads,
                          c->timing == TIMING_SHARED ? "shared" : "exclusive");
            else
                sb_puts(&k, "timing=none;");
            if (c->match_ref >= 0) sb_printf(&k, "match=%s;", p->cells[c->match_ref].cell_key);
            /* logical: model by name and variables; full: by content hash, plus code */
            sbuf lk = {0};
            sb_add(&lk, k.s, model_at);
            sb_printf(&lk, "model=%s;vars=%s;", m->name, c->model_vars);
            sb_puts(&lk, k.s + model_at);
            if (c->match_ref >= 0) { /* the reference by its logical key, not its versioned one */
                char *at = strstr(lk.s, "match=");
                lk.len = (size_t)(at - lk.s);
                lk.s[lk.len] = 0;
                sb_printf(&lk, "match=[%s]", p->cells[c->match_ref].logical_key);
            }
            sbuf full = {0};
            sb_add(&full, k.s, model_at);
            sb_printf(&full, "model=%s;", m->hash);
            sb_puts(&full, k.s + model_at);
            sb_printf(&full, "code=%s", code_version);
            free(c->key_text), free(c->logical_key);
            c->key_text = full.s, c->logical_key = lk.s;
            sha256_hex(c->cell_key, c->key_text, strlen(c->key_text));
            free(k.s);
        }
}

char **sweep_eval_method_args(const sweep_plan *p, const sweep_file *sf, const int *cells, int n, int *argc) {
    const sweep_cell *c0 = &p->cells[cells[0]];
    const sweep_run *r = &sf->runs[c0->run];
    char **argv = mallocCheck(sizeof(char *) * (size_t)(c0->m_argc + 1));
    for (int k = 0; k < c0->m_argc; k++) {
        if (k != r->list_opt) {
            argv[k] = strdupCheck(c0->m_argv[k]);
            continue;
        }
        sbuf v = {0};
        for (int i = 0; i < n; i++) {
            if (i) sb_add(&v, &r->list_sep, 1);
            sb_puts(&v, p->cells[cells[i]].m_argv[k]);
        }
        /* a single ';'-list value that contains commas: eval reads it whole */
        argv[k] = sb_take(&v);
    }
    *argc = c0->m_argc;
    return argv;
}

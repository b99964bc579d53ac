/* runner.c: runs every registered test in a forked child, with a time limit, and prints
 * one line per test and "N passed, N failed" at the end.  Arguments are substrings: only
 * tests whose name or file contains one of them run.  -v prints what each test compared. */

#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name, *file;
    test_fn fn;
} test_entry;

static test_entry g_tests[1024];
static int g_ntests;
static int g_failures;
static int g_verbose;
static char g_tmpdir[4096];
static char g_root[4096];
static char *g_sh_out;

void test_register(const char *name, const char *file, test_fn fn) {
    if (g_ntests < (int)(sizeof g_tests / sizeof g_tests[0]))
        g_tests[g_ntests++] = (test_entry){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    g_failures++;
    if (g_failures > 20) return; /* one broken loop should not flood the log */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int test_failures(void) { return g_failures; }
int test_verbose(void) { return g_verbose; }
const char *test_tmpdir(void) { return g_tmpdir; }
const char *test_root(void) { return g_root; }
const char *test_sh_output(void) { return g_sh_out ? g_sh_out : ""; }

double test_compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    double maxerr = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= maxerr)) { /* also catches NaN */
            maxerr = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    if (!(maxerr <= tol))
        test_fail(__FILE__, __LINE__, "%s: max abs error %.3g at [%zu] (got %.7g want %.7g), tol %g",
                  what, maxerr, at, n ? got[at] : 0.0, n ? want[at] : 0.0, tol);
    else if (g_verbose)
        fprintf(stderr, "    %s: %zu values, max abs error %.3g (tol %g)\n", what, n, maxerr, tol);
    return maxerr;
}

static int run_shell(const char *cmd) {
    char log[4200];
    snprintf(log, sizeof log, "%s/cmd.log", g_tmpdir);
    char *full = NULL;
    if (asprintf(&full, "( %s ) > '%s' 2>&1", cmd, log) < 0) return -1;
    if (g_verbose) fprintf(stderr, "    $ %s\n", cmd);
    int st = system(full);
    free(full);
    free(g_sh_out);
    g_sh_out = NULL;
    FILE *f = fopen(log, "rb");
    if (f) {
        size_t cap = 4096, n = 0;
        g_sh_out = malloc(cap);
        for (size_t got; g_sh_out && (got = fread(g_sh_out + n, 1, cap - n - 1, f)) > 0;) {
            n += got;
            if (n + 1 >= cap) g_sh_out = realloc(g_sh_out, cap *= 2);
        }
        if (g_sh_out) g_sh_out[n] = 0;
        fclose(f);
    }
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int test_sh(const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (r < 0) return -1;
    int st = run_shell(cmd);
    free(cmd);
    return st;
}

int test_python(const char *script, const char *fmt, ...) {
    char *args = NULL, *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&args, fmt, ap);
    va_end(ap);
    if (r < 0) return -1;
    if (asprintf(&cmd, "/usr/bin/python3 '%s/tests/%s' %s", g_root, script, args) < 0) {
        free(args);
        return -1;
    }
    int st = run_shell(cmd);
    if (st != 0) fprintf(stderr, "    python %s failed (%d):\n%s\n", script, st, test_sh_output());
    free(args);
    free(cmd);
    return st;
}

unsigned test_rand(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

float test_randf(unsigned *s) { return (float)((test_rand(s) >> 8) * (2.0 / 16777216.0) - 1.0); }

static void rm_rf(const char *path) {
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", path) >= 0) {
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
    }
    free(cmd);
}

static int selected(const test_entry *t, int argc, char **argv) {
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        any = 1;
        if (strstr(t->name, argv[i]) || strstr(t->file, argv[i])) return 1;
    }
    return !any;
}

void adp_blas_fix_coretype(char **argv);

int main(int argc, char **argv) {
    adp_blas_fix_coretype(argv);
    int timeout = 900;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) g_verbose = 1;
        if (!strcmp(argv[i], "--list")) {
            for (int k = 0; k < g_ntests; k++) printf("%s\t%s\n", g_tests[k].name, g_tests[k].file);
            return 0;
        }
    }
    if (getenv("TEST_TIMEOUT")) timeout = atoi(getenv("TEST_TIMEOUT"));
    if (!getcwd(g_root, sizeof g_root)) return 2;
    const char *base = getenv("TEST_TMP") ? getenv("TEST_TMP") : "build/test-tmp";
    mkdir("build", 0755);
    mkdir(base, 0755);
    int passed = 0, failed = 0;
    double t_all = 0;
    for (int k = 0; k < g_ntests; k++) {
        test_entry *t = &g_tests[k];
        if (!selected(t, argc, argv)) continue;
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/%s/%s", g_root, base, t->name);
        if (base[0] == '/') snprintf(g_tmpdir, sizeof g_tmpdir, "%s/%s", base, t->name);
        rm_rf(g_tmpdir);
        mkdir(g_tmpdir, 0755);
        fflush(stdout);
        fflush(stderr);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid = fork();
        if (pid == 0) {
            alarm((unsigned)timeout);
            t->fn();
            fflush(stdout);
            fflush(stderr);
            _exit(g_failures ? 1 : 0);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        t_all += dt;
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (ok) {
            passed++;
            printf("ok     %-44s %7.2fs\n", t->name, dt);
            if (!getenv("KEEP_TMP")) rm_rf(g_tmpdir);
        } else {
            failed++;
            if (WIFSIGNALED(st))
                printf("FAIL   %-44s %7.2fs  (signal %d%s)\n", t->name, dt, WTERMSIG(st),
                       WTERMSIG(st) == SIGALRM ? ": timed out" : "");
            else
                printf("FAIL   %-44s %7.2fs  (%s)\n", t->name, dt, t->file);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    (void)t_all;
    return failed ? 1 : 0;
}

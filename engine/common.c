/* common.c: error messages, checked allocation, files, clocks and the thread budget. */

#include "common.h"

#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

static _Thread_local char g_errmsg[1024];

int adp_seterr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    return ADP_ERR;
}

int adp_preferr(const char *fmt, ...) {
    char prefix[512], old[sizeof g_errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_errmsg, sizeof old);
    snprintf(g_errmsg, sizeof g_errmsg, "%s%s", prefix, old);
    return ADP_ERR;
}

const char *adp_errmsg(void) { return g_errmsg[0] ? g_errmsg : "unknown error"; }

static void oom(size_t size, const char *file, int line) {
    fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, size);
    abort();
}

void *adp_malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) oom(size, file, line);
    return p;
}

void *adp_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size, file, line);
    return p;
}

void *adp_realloc_check(void *p, size_t size, const char *file, int line) {
    void *q = realloc(p, size ? size : 1);
    if (!q) oom(size, file, line);
    return q;
}

/* Blocks of 2 MB or more (packed weights, activation arenas) are aligned to 2 MB and asked
 * to be backed by transparent huge pages (this machine's THP mode is 'madvise', so nothing
 * gets them unasked): the pruned layers at batch 32 stream their weights with few rows
 * each, and the small model's pruned pass at SST-2's kept point ran 1-2% faster (four of four
 * alternating runs; dense passes and BERT-base unchanged).  ADAPLER_HUGE_PAGES=0 switches it
 * off; a refused madvise changes nothing. */
#define HUGE_PAGE ((size_t)2 << 20)

static int huge_pages_wanted(void) {
    static int want = -1;
    if (want < 0) {
        const char *e = getenv("ADAPLER_HUGE_PAGES");
        want = !(e && !strcmp(e, "0"));
    }
    return want;
}

void *adp_aligned_check(size_t size, const char *file, int line) {
    void *p = NULL;
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded >= HUGE_PAGE && huge_pages_wanted()) {
        rounded = (rounded + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) oom(size, file, line);
#ifdef MADV_HUGEPAGE
        (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
        return p;
    }
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) oom(size, file, line);
    return p;
}

char *adp_strdup_check(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = adp_malloc_check(n, file, line);
    memcpy(d, s, n);
    return d;
}

int adp_read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return adp_seterr("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (n + 1 >= cap) buf = reallocCheck(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return adp_seterr("%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return ADP_OK;
}

int adp_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t pl = strlen(path);
    char *tmp = mallocCheck(pl + 8);
    snprintf(tmp, pl + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        adp_seterr("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return ADP_ERR;
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        adp_seterr("%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return ADP_ERR;
    }
    free(tmp);
    return ADP_OK;
}

double adp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int g_threads = 0;

/* Flush denormals to zero (MXCSR FTZ and DAZ) on this thread.  Soft token removal drives
 * attention weights and running masks towards exp(-lambda ...), deep in the denormal
 * range, where every x86 multiply takes a microcode assist: AdapLeR training ran 5x (in
 * one run up to 25x) slower once lambda passed 100.  Values below 1.2e-38 become 0; nothing
 * we compute depends on them.  Threads created later inherit it (pthread_create(3)). */
static void flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* bit 15 FTZ, bit 6 DAZ */
#endif
}

/* n <= 0: OMP_NUM_THREADS if it is a positive number (the usual way to cap a process that
 * shares the machine), else every core. */
int adp_set_threads(int n) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (n <= 0 && env && atoi(env) > 0) n = atoi(env);
    if (n <= 0) n = omp_get_num_procs();
    flush_denormals();
    omp_set_num_threads(n);
#pragma omp parallel
    flush_denormals(); /* the workers that already exist */
    openblas_set_num_threads(n);
    g_threads = n;
    return n;
}

int adp_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

const char *adp_blas_info(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "OpenBLAS %s core=%s threads=%d parallel=%s",
             openblas_get_config(), openblas_get_corename(), openblas_get_num_threads(),
             openblas_get_parallel() == 2 ? "openmp" : openblas_get_parallel() == 1 ? "pthreads" : "serial");
    return buf;
}

void adp_blas_fix_coretype(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *core = openblas_get_corename();
    int fallback = core && (!strcmp(core, "Prescott") || !strcmp(core, "Core2") || !strcmp(core, "Nehalem") ||
                            !strcmp(core, "Sandybridge") || !strcmp(core, "Katmai"));
    if (!fallback) return;
    const char *want = NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
#endif
    if (!want || strcmp(core, want) == 0) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the slow kernels */
    unsetenv("OPENBLAS_CORETYPE");
}

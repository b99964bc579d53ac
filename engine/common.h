/* common.h: error reporting, check-macros and small helpers shared by every module.
 *
 * Error convention (SQLite style): library functions return ADP_OK (0) on success or
 * ADP_ERR (-1) on failure, after recording a one-line message with adp_seterr().  The
 * message is thread-local; the caller that gives up (only main()) prints adp_errmsg().
 * Library code never exits.  The *Check macros are for programmer errors and
 * out-of-memory, where continuing is impossible: they print file:line and abort. */
#ifndef ADP_COMMON_H
#define ADP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ADP_OK 0
#define ADP_ERR (-1)

/* Record the current error (printf-style).  Always returns ADP_ERR so callers can write
 * `return adp_seterr("...")`. */
int adp_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with more context ("file.json: " + old message). */
int adp_preferr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *adp_errmsg(void);

/* ASSERT(x): an internal invariant; prints the failed expression and aborts. */
#define ASSERT(x)                                                                          \
    do {                                                                                   \
        if (!(x)) {                                                                        \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);      \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

void *adp_malloc_check(size_t size, const char *file, int line);
void *adp_calloc_check(size_t n, size_t size, const char *file, int line);
void *adp_realloc_check(void *p, size_t size, const char *file, int line);
/* 64-byte aligned allocation for arenas (free with free()). */
void *adp_aligned_check(size_t size, const char *file, int line);
char *adp_strdup_check(const char *s, const char *file, int line);
#define mallocCheck(n) adp_malloc_check((n), __FILE__, __LINE__)
#define callocCheck(n, s) adp_calloc_check((n), (s), __FILE__, __LINE__)
#define reallocCheck(p, n) adp_realloc_check((p), (n), __FILE__, __LINE__)
#define alignedCheck(n) adp_aligned_check((n), __FILE__, __LINE__)
#define strdupCheck(s) adp_strdup_check((s), __FILE__, __LINE__)

/* Read a whole file into a NUL-terminated buffer.  Returns ADP_ERR (message names the
 * path) if it cannot be opened or read. */
int adp_read_file(const char *path, char **out, size_t *len);
/* Write a file atomically: write to path.tmp, fsync, rename.  A crash leaves either the
 * old file or the new one, never a half-written one. */
int adp_write_file_atomic(const char *path, const void *data, size_t len);

/* Monotonic wall-clock seconds. */
double adp_now(void);

/* Thread budget: sets OpenMP and OpenBLAS to the same number of threads, so the two
 * pools never oversubscribe the cores (with the OpenMP build of OpenBLAS they are the
 * same libgomp pool).  n <= 0 means "all cores". Returns the number in use. */
int adp_set_threads(int n);
int adp_get_threads(void);

/* A short description of the BLAS in use (for logs and results): core, threads, build. */
const char *adp_blas_info(void);

#define ADP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ADP_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif

/* OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its
 * Prescott (SSE3) kernels, five times slower.  Called first thing in main(): if the core
 * OpenBLAS picked is such a fallback, OPENBLAS_CORETYPE is unset, and the CPU has AVX-512
 * (or AVX2+FMA), re-execute the program with OPENBLAS_CORETYPE=SkylakeX (or Haswell), which
 * OpenBLAS reads only at load time.  Returns only if no re-exec was needed or it failed. */
void adp_blas_fix_coretype(char **argv);

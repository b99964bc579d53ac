/* test.h: a small test framework.  A test is a function declared with TEST(name); it
 * registers itself at load time.  CHECK-style macros record a failure with file:line and
 * the values compared, and let the test go on; REQUIRE stops the test.  The runner
 * (tests/runner.c) runs every test in its own process, so a crash or a sanitizer report is
 * one failed test, not a dead suite, and prints "N passed, N failed" at the end. */
#ifndef ADP_TEST_H
#define ADP_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);

#define TEST(name)                                                                         \
    static void name(void);                                                                \
    __attribute__((constructor)) static void register_##name(void) {                       \
        test_register(#name, __FILE__, name);                                              \
    }                                                                                      \
    static void name(void)

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int test_failures(void);

#define CHECK(x)                                                                           \
    do {                                                                                   \
        if (!(x)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #x);                          \
    } while (0)
#define CHECK_MSG(x, ...)                                                                  \
    do {                                                                                   \
        if (!(x)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                              \
    } while (0)
#define CHECK_INT(a, b)                                                                    \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                                         \
        if (!(fabs(a_ - b_) <= (tol)))                                                     \
            test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, \
                      (double)(tol));                                                      \
    } while (0)
#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,            \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                             \
    } while (0)
/* REQUIRE: on failure, stop this test (the runner counts it as failed). */
#define REQUIRE(x)                                                                         \
    do {                                                                                   \
        if (!(x)) {                                                                        \
            test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #x);                              \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* Compare two float arrays; records a failure naming `what` if max |a-b| > tol.
 * Prints what it compared (max abs error) when verbose.  Returns the max abs error. */
double test_compare(const char *what, const float *got, const float *want, size_t n, double tol);

/* A fresh scratch directory for this test (removed by the runner unless KEEP_TMP=1). */
const char *test_tmpdir(void);
/* Path of the repository root (the runner's working directory). */
const char *test_root(void);
/* Run a shell command (printf-style); stdout+stderr go to <tmpdir>/cmd.log.  Returns the
 * exit status (or -1 if it did not exit normally). */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Output of the last test_sh() (NUL-terminated, owned by the framework). */
const char *test_sh_output(void);
/* Run `/usr/bin/python3 tests/<script> <args>` (the numeric oracle: Debian's python3 with
 * python3-torch); returns the exit status and prints the output when it fails. */
int test_python(const char *script, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Deterministic random numbers for tests. */
unsigned test_rand(unsigned *state);
float test_randf(unsigned *state); /* uniform in [-1, 1) */
int test_verbose(void);

#endif

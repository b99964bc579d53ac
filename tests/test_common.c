/* test_common.c: error messages, atomic writes, the thread budget and denormal flushing. */
#include "common.h"
#include "test.h"

#include <string.h>

TEST(common_error_messages) {
    CHECK_INT(adp_seterr("bad %s at %d", "thing", 3), ADP_ERR);
    CHECK_STR(adp_errmsg(), "bad thing at 3");
    adp_preferr("file.json: ");
    CHECK_STR(adp_errmsg(), "file.json: bad thing at 3");
}

TEST(common_atomic_write_and_read) {
    char path[4200];
    snprintf(path, sizeof path, "%s/x.txt", test_tmpdir());
    REQUIRE(adp_write_file_atomic(path, "hello\n", 6) == ADP_OK);
    char *buf = NULL;
    size_t n = 0;
    REQUIRE(adp_read_file(path, &buf, &n) == ADP_OK);
    CHECK_INT(n, 6);
    CHECK_STR(buf, "hello\n");
    free(buf);
    snprintf(path, sizeof path, "%s/missing/x.txt", test_tmpdir());
    CHECK_INT(adp_read_file(path, &buf, &n), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "missing/x.txt") != NULL);
}

TEST(common_thread_budget) {
    CHECK_INT(adp_set_threads(1), 1);
    CHECK_INT(adp_get_threads(), 1);
    CHECK(strstr(adp_blas_info(), "threads=1") != NULL);
}

/* A denormal product is flushed to zero on every thread once the thread budget is set
 * (soft-removal training was 5x slower with them; see flush_denormals in common.c), and
 * OMP_NUM_THREADS sets the default budget. */
TEST(common_denormals_flushed_on_every_thread) {
    adp_set_threads(2);
    volatile float tiny = 1e-30f, scale = 1e-10f; /* product 1e-40: a denormal */
    int nonzero = 0, threads = 0;
#pragma omp parallel reduction(+ : nonzero, threads)
    {
        float p = tiny * scale;
        nonzero += p != 0.0f;
        threads += 1;
    }
    CHECK_INT(threads, 2);
    CHECK_INT(nonzero, 0);
    const char *old = getenv("OMP_NUM_THREADS");
    char *saved = old ? strdup(old) : NULL;
    setenv("OMP_NUM_THREADS", "1", 1);
    CHECK_INT(adp_set_threads(0), 1);
    if (saved) setenv("OMP_NUM_THREADS", saved, 1);
    else unsetenv("OMP_NUM_THREADS");
    free(saved);
    adp_set_threads(0);
}

/* barrier.c: the spinning team barrier (see barrier.h). */
#include "barrier.h"

#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() atomic_signal_fence(memory_order_seq_cst)
#endif

/* pause-loop iterations before a waiter starts yielding (tens of microseconds) */
#define SPIN_BEFORE_YIELD 20000

void adp_barrier_init(adp_barrier *b) {
    atomic_init(&b->count, 0);
    atomic_init(&b->gen, 0);
}

adp_barrier *adp_team_barrier(adp_barrier *b) {
    static int ok = -1;
    if (ok < 0) {
        const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("ADAPLER_SPIN_BARRIER");
        ok = !(policy && !strcasecmp(policy, "passive")) && !(spin && !strcmp(spin, "0"));
    }
    return ok ? b : NULL;
}

static void barrier_wait(adp_barrier *b, int n_threads) {
    const int gen = atomic_load_explicit(&b->gen, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == n_threads - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->gen, gen + 1, memory_order_release);
        return;
    }
    for (long spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == gen; spins++) {
        if (spins < SPIN_BEFORE_YIELD) CPU_RELAX();
        else sched_yield();
    }
}

void adp_team_sync(adp_barrier *b) {
    const int n = omp_get_num_threads();
    if (n <= 1) return;
    if (b) {
        barrier_wait(b, n);
    } else {
#pragma omp barrier
    }
}

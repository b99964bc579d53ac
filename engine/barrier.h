/* barrier.h: a spinning barrier for the threads of one OpenMP team.
 *
 * A layer's ops run in one parallel region with a barrier after each op (engine/bert.c).
 * libgomp's barrier costs about 1.5 us for two threads on this machine (a VM), and a layer
 * at batch 1 of the small shape, ~45 us, has seven of them.  This one is a counter and a
 * generation word on separate cache lines: each thread increments the counter, the last
 * one resets it and advances the generation, which the others spin on (0.3 us for two
 * threads here).  A waiter that has spun for a while yields the CPU at every further
 * check, so that a descheduled peer can run.
 *
 * adp_team_barrier() returns the barrier to use, or NULL where OpenMP's own should be used:
 * under OMP_WAIT_POLICY=passive (the sweep runner's setting when jobs share the cores,
 * where spinning would steal a peer's time) or ADAPLER_SPIN_BARRIER=0.  adp_team_sync(b)
 * waits at b, or at an OpenMP barrier when b is NULL; every thread of the team must call
 * it, as with #pragma omp barrier.  Writes made by any thread before the barrier are
 * visible to every thread after it (acquire/release on the generation word). */
#ifndef ADP_BARRIER_H
#define ADP_BARRIER_H

#include <stdatomic.h>

typedef struct {
    _Alignas(64) atomic_int count;
    _Alignas(64) atomic_int gen;
} adp_barrier;

/* Zero a barrier (before the region that uses it). */
void adp_barrier_init(adp_barrier *b);
/* b, or NULL when OpenMP's barrier should be used (see above). */
adp_barrier *adp_team_barrier(adp_barrier *b);
/* Called by every thread of the enclosing team (one thread: returns at once). */
void adp_team_sync(adp_barrier *b);

#endif

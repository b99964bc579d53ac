/* rng.h: a small, seedable, splittable random number generator (splitmix64 seeding a
 * xoshiro128+-style state).  Deterministic across platforms and thread counts when each
 * consumer owns its own rng. */
#ifndef ADP_RNG_H
#define ADP_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} adp_rng;

static inline void rng_seed(adp_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull; }

static inline uint64_t rng_u64(adp_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double rng_uniform(adp_rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Uniform integer in [0, n). */
static inline uint64_t rng_below(adp_rng *r, uint64_t n) { return n ? rng_u64(r) % n : 0; }

/* Standard normal (Box-Muller; one value per call, deterministic). */
static inline double rng_normal(adp_rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif

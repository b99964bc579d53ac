/* dropout.h: dropout masks as a hash of (key, element index).
 *
 * Element i of a tensor is kept iff dropout_hash(key, i) >= dropout_threshold(p) (so with
 * probability 1 - p) and then scaled by 1 / (1 - p).  The forward and the backward pass
 * regenerate the same mask from the key instead of storing it, and the mask does not
 * depend on how rows are split among threads.  The key names the site:
 * dropout_key(seed, layer, site), with a different seed for every training step. */
#ifndef ADP_DROPOUT_H
#define ADP_DROPOUT_H

#include <stdint.h>

enum { DROP_SITE_EMB = 0, DROP_SITE_ATTN_OUT = 1, DROP_SITE_FFN_OUT = 2, DROP_SITE_PROBS = 3, DROP_SITE_POOLER = 4,
       DROP_SITE_OTHER = 5 };

static inline uint32_t dropout_key(uint64_t seed, int layer, int site) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(layer + 2) * 0xD1B54A32D192ED03ull + (uint64_t)site;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)(z ^ (z >> 31));
}

/* murmur3's finaliser on (index * golden ratio) ^ key: a bijection of the index with full
 * avalanche, cheap in SIMD. */
static inline uint32_t dropout_hash(uint32_t key, uint32_t i) {
    uint32_t h = (i * 0x9E3779B1u) ^ key;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t dropout_threshold(float p) {
    double t = (double)p * 4294967296.0;
    return t <= 0 ? 0u : t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
}

#endif

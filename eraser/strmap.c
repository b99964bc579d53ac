/* strmap.c: string -> index hash map (FNV-1a, linear probing, load factor <= 1/2). */
#include "strmap.h"

#include <string.h>

#include "common.h"

#define STRMAP_NONE ((size_t)-1)

void strmap_init(strmap *m) { memset(m, 0, sizeof *m); }

void strmap_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Keys are stored as <len bytes><NUL>; len is recovered from the stored length prefix so
 * keys may hold any byte, NUL included. */
static size_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

static int key_eq(const char *stored, const char *key, size_t len) {
    size_t slen;
    memcpy(&slen, stored, sizeof slen);
    return slen == len && memcmp(stored + sizeof slen, key, len) == 0;
}

static size_t find_slot(const strmap *m, const char *key, size_t len) {
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i] && !key_eq(m->keys[i], key, len)) i = (i + 1) & mask;
    return i;
}

size_t strmap_get(const strmap *m, const char *key, size_t len) {
    if (!m->cap) return STRMAP_NONE;
    size_t i = find_slot(m, key, len);
    return m->keys[i] ? m->vals[i] : STRMAP_NONE;
}

static void grow(strmap *m) {
    strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = callocCheck(m->cap, sizeof *m->keys);
    m->vals = callocCheck(m->cap, sizeof *m->vals);
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.keys[i]) continue;
        size_t len;
        memcpy(&len, old.keys[i], sizeof len);
        size_t j = find_slot(m, old.keys[i] + sizeof len, len);
        m->keys[j] = old.keys[i];
        m->vals[j] = old.vals[i];
    }
    free(old.keys);
    free(old.vals);
}

int strmap_put(strmap *m, const char *key, size_t len, size_t val, size_t *old) {
    if (2 * (m->n + 1) > m->cap) grow(m);
    size_t i = find_slot(m, key, len);
    if (m->keys[i]) {
        if (old) *old = m->vals[i];
        return 0;
    }
    char *k = mallocCheck(sizeof len + len + 1);
    memcpy(k, &len, sizeof len);
    memcpy(k + sizeof len, key, len);
    k[sizeof len + len] = 0;
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    return 1;
}

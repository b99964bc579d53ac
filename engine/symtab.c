/* symtab.c: string -> int32 hash map.  FNV-1a hashing; the table is kept at most half
 * full, so a probe sequence is short and always ends at an empty slot. */
#include "symtab.h"

#include <string.h>

#include "common.h"

void symtab_init(symtab *m) { memset(m, 0, sizeof *m); }

void symtab_free(symtab *m) {
    free(m->entries);
    free(m->slots);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

uint32_t symtab_hash(const char *key, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)key[i]) * 16777619u;
    return h;
}

static size_t find_slot(const symtab *m, const char *key, size_t len, uint32_t h) {
    size_t mask = m->nslots - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t e = m->slots[s];
        if (!e) return s;
        const symtab_entry *en = &m->entries[e - 1];
        if (en->hash == h && en->key_len == len && memcmp(m->keys + en->key_off, key, len) == 0) return s;
    }
}

int32_t *symtab_get(const symtab *m, const char *key, size_t len) {
    if (!m->nslots) return NULL;
    uint32_t e = m->slots[find_slot(m, key, len, symtab_hash(key, len))];
    return e ? &m->entries[e - 1].value : NULL;
}

static void grow(symtab *m) {
    size_t ns = m->nslots ? m->nslots * 2 : 64;
    free(m->slots);
    m->slots = callocCheck(ns, sizeof *m->slots);
    m->nslots = ns;
    for (size_t k = 0; k < m->n; k++) {
        const symtab_entry *en = &m->entries[k];
        size_t s = find_slot(m, m->keys + en->key_off, en->key_len, en->hash);
        m->slots[s] = (uint32_t)(k + 1);
    }
}

int32_t *symtab_put(symtab *m, const char *key, size_t len, int32_t init, int *added) {
    ASSERT(len < UINT32_MAX && m->n < UINT32_MAX - 1);
    if (2 * (m->n + 1) > m->nslots) grow(m);
    uint32_t h = symtab_hash(key, len);
    size_t s = find_slot(m, key, len, h);
    if (m->slots[s]) {
        if (added) *added = 0;
        return &m->entries[m->slots[s] - 1].value;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->entries = reallocCheck(m->entries, m->cap * sizeof *m->entries);
    }
    if (m->keys_len + len + 1 > m->keys_cap) {
        while (m->keys_len + len + 1 > m->keys_cap) m->keys_cap = m->keys_cap ? 2 * m->keys_cap : 4096;
        m->keys = reallocCheck(m->keys, m->keys_cap);
    }
    memcpy(m->keys + m->keys_len, key, len);
    m->keys[m->keys_len + len] = 0;
    m->entries[m->n] = (symtab_entry){m->keys_len, (uint32_t)len, h, init};
    m->keys_len += len + 1;
    m->slots[s] = (uint32_t)(++m->n);
    if (added) *added = 1;
    return &m->entries[m->n - 1].value;
}

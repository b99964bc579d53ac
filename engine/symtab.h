/* symtab.h: a symbol table, string -> int32 hash map (open addressing, linear probing).
 *
 * Keys are copied into the map's own storage, so callers may pass pointers into
 * temporary buffers.  Entries keep their insertion order (entry k is the k-th distinct key
 * added), which makes every iteration over a map deterministic. */
#ifndef ADP_SYMTAB_H
#define ADP_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t key_off;  /* into keys */
    uint32_t key_len;
    uint32_t hash;
    int32_t value;
} symtab_entry;

typedef struct {
    symtab_entry *entries; /* (n) in insertion order */
    size_t n, cap;
    uint32_t *slots; /* (nslots) entry index + 1, 0 = empty */
    size_t nslots;
    char *keys; /* key bytes, each followed by a NUL */
    size_t keys_len, keys_cap;
} symtab;

void symtab_init(symtab *m);
void symtab_free(symtab *m);
uint32_t symtab_hash(const char *key, size_t len);
/* The value slot for key, or NULL when key is absent. */
int32_t *symtab_get(const symtab *m, const char *key, size_t len);
/* The value slot for key, adding key with value `init` if absent (*added tells which). */
int32_t *symtab_put(symtab *m, const char *key, size_t len, int32_t init, int *added);
/* Key of entry k (NUL-terminated), 0 <= k < m->n. */
static inline const char *symtab_key(const symtab *m, size_t k) { return m->keys + m->entries[k].key_off; }

#endif

/* strmap.h: a string -> index hash map (open addressing, linear probing) for the ERASER
 * readers: docid -> document, annotation_id -> annotation, (annotation_id, docid) -> key.
 * Keys are copied; values are size_t indices into the caller's arrays. */
#ifndef ERASER_STRMAP_H
#define ERASER_STRMAP_H

#include <stddef.h>

typedef struct {
    char **keys;    /* NULL = empty slot */
    size_t *vals;
    size_t cap, n;  /* cap is 0 or a power of two */
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m);
/* Index stored under key (len bytes), or (size_t)-1 if absent. */
size_t strmap_get(const strmap *m, const char *key, size_t len);
/* Store key -> val.  Returns 1 if inserted, 0 if the key was present (then *old holds its
 * value, if old is not NULL, and the map is unchanged). */
int strmap_put(strmap *m, const char *key, size_t len, size_t val, size_t *old);

#endif

/* jsonv.h: strict accessors over cJSON values for the ERASER readers.  Each returns ADP_OK
 * or ADP_ERR with a one-line message naming the member ("start_token: expected ...");
 * the caller prefixes the file and line. */
#ifndef ERASER_JSONV_H
#define ERASER_JSONV_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Collect the members of object `obj` (described as `what` in messages) by name:
 * items[i] = the member called names[i], or NULL when absent or JSON null.  A member not
 * in names, or a name that appears twice, is an error (cJSON keeps duplicates, Python
 * keeps the last one: refusing them avoids silently disagreeing). */
int jv_members(const cJSON *obj, const char *what, const char *const *names, cJSON **items, size_t n);
/* A JSON string, copied. */
int jv_string(const cJSON *it, const char *name, char **out);
/* A JSON number that is a whole number in [lo, hi]. */
int jv_long(const cJSON *it, const char *name, long lo, long hi, long *out);
/* A finite JSON number. */
int jv_number(const cJSON *it, const char *name, double *out);
/* Parse one line (len bytes, not necessarily NUL-terminated) as exactly one JSON value. */
int jv_parse_line(cJSON **out, const char *line, size_t len);

#endif

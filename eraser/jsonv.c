/* jsonv.c: strict cJSON accessors (see jsonv.h). */
#include "jsonv.h"

#include <math.h>
#include <string.h>

#include "common.h"

int jv_members(const cJSON *obj, const char *what, const char *const *names, cJSON **items, size_t n) {
    if (!cJSON_IsObject(obj)) return adp_seterr("%s: expected a JSON object", what);
    int seen[64] = {0};
    ASSERT(n <= 64);
    for (size_t i = 0; i < n; i++) items[i] = NULL;
    for (cJSON *c = obj->child; c; c = c->next) {
        size_t i = 0;
        while (i < n && strcmp(c->string, names[i]) != 0) i++;
        if (i == n) return adp_seterr("%s: unknown key '%s'", what, c->string);
        if (seen[i]) return adp_seterr("%s: key '%s' appears twice", what, c->string);
        seen[i] = 1;
        items[i] = cJSON_IsNull(c) ? NULL : c;
    }
    return ADP_OK;
}

int jv_string(const cJSON *it, const char *name, char **out) {
    if (!cJSON_IsString(it) || !it->valuestring) return adp_seterr("%s: expected a string", name);
    *out = strdupCheck(it->valuestring);
    return ADP_OK;
}

int jv_long(const cJSON *it, const char *name, long lo, long hi, long *out) {
    if (!cJSON_IsNumber(it)) return adp_seterr("%s: expected an integer", name);
    double v = it->valuedouble;
    if (!(v == floor(v)) || v < (double)lo || v > (double)hi)
        return adp_seterr("%s: expected an integer in [%ld, %ld], got %.17g", name, lo, hi, v);
    *out = (long)v;
    return ADP_OK;
}

int jv_number(const cJSON *it, const char *name, double *out) {
    if (!cJSON_IsNumber(it)) return adp_seterr("%s: expected a number", name);
    if (!isfinite(it->valuedouble)) return adp_seterr("%s: number out of range", name);
    *out = it->valuedouble;
    return ADP_OK;
}

int jv_parse_line(cJSON **out, const char *line, size_t len) {
    /* cJSON strings are NUL-terminated: a \u0000 escape would silently cut a string */
    for (size_t i = 0; i + 6 <= len; i++)
        if (line[i] == '\\') {
            if (!memcmp(line + i + 1, "u0000", 5)) return adp_seterr("\\u0000 in a string at byte %zu", i + 1);
            i++;
        }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!j) {
        size_t at = end && end >= line ? (size_t)(end - line) : 0;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= line && e <= line + len) at = (size_t)(e - line);
        return adp_seterr("invalid JSON near byte %zu", at + 1);
    }
    for (const char *p = end; p < line + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(j);
            return adp_seterr("trailing characters after the JSON value at byte %zu", (size_t)(p - line) + 1);
        }
    *out = j;
    return ADP_OK;
}

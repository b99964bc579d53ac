/* safetensors.c: reader and writer for the safetensors format.
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *
 *   bytes [0, 8)        N, an unsigned 64-bit little-endian integer: the header size
 *   bytes [8, 8+N)      the header, a UTF-8 JSON object, possibly right-padded with spaces:
 *                         { "__metadata__": {"key": "string", ...},        (optional)
 *                           "<tensor name>": { "dtype": "F32",
 *                                              "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end] }, ... }
 *   bytes [8+N, EOF)    the data section; a tensor's bytes are data[begin, end), row-major,
 *                       little-endian, with (end - begin) = prod(shape) * sizeof(dtype).
 *
 * dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL (others, e.g. F8_*, are rejected).
 * As in the reference implementation, the tensors must tile the data section exactly: sorted
 * by begin, each starts where the previous one ends, the first at 0, the last at the end of
 * the file.  Everything is validated before any tensor is read: header size against the
 * file size, JSON syntax, each entry's fields and types, dtype names, non-negative shapes,
 * offsets inside the data section and consistent with shape and dtype, no overlaps, no holes.
 *
 * __metadata__ must map strings to strings (st_meta reads them).
 * The writer emits the same layout with "__metadata__": {"format": "pt", ...} (which PyTorch /
 * transformers expect) and pads the header with spaces to a multiple of 8 bytes so the
 * data section is aligned. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static const char *DTYPE_NAMES[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
static const size_t DTYPE_SIZES[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};

const char *st_dtype_name(st_dtype d) { return DTYPE_NAMES[d]; }
size_t st_dtype_size(st_dtype d) { return DTYPE_SIZES[d]; }
int st_is_float(st_dtype d) { return d == ST_F64 || d == ST_F32 || d == ST_F16 || d == ST_BF16; }

int64_t st_numel(const st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* A JSON number that is a non-negative integer (exactly representable). */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int parse_entry(st_file *f, const cJSON *e, st_tensor *t) {
    const char *p = f->path;
    if (!cJSON_IsObject(e)) return adp_seterr("%s: tensor '%s': entry is not a JSON object", p, e->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return adp_seterr("%s: tensor '%s': missing or non-string \"dtype\"", p, e->string);
    if (!cJSON_IsArray(sh)) return adp_seterr("%s: tensor '%s': missing or non-array \"shape\"", p, e->string);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return adp_seterr("%s: tensor '%s': \"data_offsets\" must be [begin, end]", p, e->string);
    int found = 0;
    for (int d = 0; d <= ST_BOOL; d++)
        if (!strcmp(dt->valuestring, DTYPE_NAMES[d])) {
            t->dtype = (st_dtype)d;
            found = 1;
        }
    if (!found)
        return adp_seterr("%s: tensor '%s': unknown dtype \"%s\" (expected F32, F16, BF16, F64 or an integer type)",
                          p, e->string, dt->valuestring);
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > ST_MAX_DIMS) return adp_seterr("%s: tensor '%s': %d dims (max %d)", p, e->string, t->ndim, ST_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (!json_uint(cJSON_GetArrayItem(sh, i), &d) || d > ((uint64_t)1 << 40))
            return adp_seterr("%s: tensor '%s': shape[%d] is not a valid size", p, e->string, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / d) return adp_seterr("%s: tensor '%s': shape overflows", p, e->string);
        numel *= d;
    }
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(of, 0), &b) || !json_uint(cJSON_GetArrayItem(of, 1), &en))
        return adp_seterr("%s: tensor '%s': data_offsets are not non-negative integers", p, e->string);
    if (b > en || en > f->data_size)
        return adp_seterr("%s: tensor '%s': data_offsets [%llu, %llu] outside the data section (%zu bytes)", p,
                          e->string, (unsigned long long)b, (unsigned long long)en, f->data_size);
    if (numel > UINT64_MAX / DTYPE_SIZES[t->dtype] || en - b != numel * DTYPE_SIZES[t->dtype])
        return adp_seterr("%s: tensor '%s': %llu bytes for %llu elements of %s", p, e->string,
                          (unsigned long long)(en - b), (unsigned long long)numel, DTYPE_NAMES[t->dtype]);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    t->name = strdupCheck(e->string);
    return ADP_OK;
}

int st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = strdupCheck(path);
    cJSON *root = NULL;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) {
        adp_seterr("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        adp_seterr("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        adp_seterr("%s: truncated: %zu bytes, too short for the 8-byte header size", path, f->size);
        goto fail;
    }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        adp_seterr("%s: cannot mmap: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n > f->size - 8) {
        adp_seterr("%s: header size %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                   path, (unsigned long long)n, f->size);
        goto fail;
    }
    if (n < 2 || n > 100000000) {
        adp_seterr("%s: implausible header size %llu", path, (unsigned long long)n);
        goto fail;
    }
    f->data = f->map + 8 + n;
    f->data_size = f->size - 8 - (size_t)n;
    root = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)n);
    if (!root || !cJSON_IsObject(root)) {
        adp_seterr("%s: header is not a valid JSON object", path);
        goto fail;
    }
    int count = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) count++;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    if (meta && !cJSON_IsObject(meta)) {
        adp_seterr("%s: __metadata__ is not an object", path);
        goto fail;
    }
    if (meta) {
        int nm = cJSON_GetArraySize(meta);
        f->meta = callocCheck((size_t)(2 * nm + 1), sizeof(char *));
        for (const cJSON *e = meta->child; e; e = e->next) {
            if (!cJSON_IsString(e)) {
                adp_seterr("%s: __metadata__ value of '%s' is not a string", path, e->string);
                goto fail;
            }
            f->meta[2 * f->n_meta] = strdupCheck(e->string);
            f->meta[2 * f->n_meta + 1] = strdupCheck(e->valuestring);
            f->n_meta++;
        }
    }
    f->tensors = callocCheck((size_t)count, sizeof(st_tensor));
    for (cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        if (parse_entry(f, e, &f->tensors[f->n_tensors]) != ADP_OK) goto fail;
        f->n_tensors++;
    }
    /* The tensors must tile the data section: no overlap, no hole, nothing past the end. */
    st_tensor **sorted = mallocCheck(sizeof(st_tensor *) * (size_t)(count ? count : 1));
    for (int i = 0; i < count; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, (size_t)count, sizeof *sorted, cmp_begin);
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        if (sorted[i]->begin != at) {
            adp_seterr("%s: tensor '%s' starts at byte %zu of the data section, expected %zu (%s)", path,
                       sorted[i]->name, sorted[i]->begin, at, sorted[i]->begin < at ? "overlap" : "hole");
            free(sorted);
            goto fail;
        }
        at = sorted[i]->end;
    }
    free(sorted);
    if (at != f->data_size) {
        adp_seterr("%s: tensors cover %zu bytes but the data section has %zu (file size mismatch)", path, at,
                   f->data_size);
        goto fail;
    }
    cJSON_Delete(root);
    return ADP_OK;
fail:
    cJSON_Delete(root);
    st_close(f);
    return ADP_ERR;
}

void st_close(st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

static void shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, const int64_t *shape, int ndim) {
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[128], b[128];
        shape_str(a, sizeof a, t->shape, t->ndim);
        shape_str(b, sizeof b, shape, ndim);
        return adp_seterr("%s: tensor '%s' has shape %s, expected %s", f->path, t->name, a, b);
    }
    if (!st_is_float(t->dtype))
        return adp_seterr("%s: tensor '%s' has dtype %s, expected a floating type (F32, F16, BF16)", f->path,
                          t->name, DTYPE_NAMES[t->dtype]);
    const unsigned char *src = f->data + t->begin;
    int64_t n = st_numel(t);
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, (size_t)n * 4); break;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        break;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        break;
    default: break;
    }
    return ADP_OK;
}

int st_read_i32(const st_file *f, const st_tensor *t, int32_t *dst, int64_t n) {
    if (st_is_float(t->dtype))
        return adp_seterr("%s: tensor '%s' has dtype %s, expected an integer type", f->path, t->name,
                          DTYPE_NAMES[t->dtype]);
    if (st_numel(t) != n)
        return adp_seterr("%s: tensor '%s' has %lld elements, expected %lld", f->path, t->name,
                          (long long)st_numel(t), (long long)n);
    const unsigned char *src = f->data + t->begin;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = 0;
        switch (t->dtype) {
        case ST_I64: memcpy(&v, src + 8 * i, 8); break;
        case ST_I32: { int32_t x; memcpy(&x, src + 4 * i, 4); v = x; } break;
        case ST_I16: { int16_t x; memcpy(&x, src + 2 * i, 2); v = x; } break;
        case ST_I8: v = (int8_t)src[i]; break;
        default: v = src[i]; break;
        }
        if (v < INT32_MIN || v > INT32_MAX)
            return adp_seterr("%s: tensor '%s': value %lld does not fit in int32", f->path, t->name, (long long)v);
        dst[i] = (int32_t)v;
    }
    return ADP_OK;
}

void st_writer_init(st_writer *w) { memset(w, 0, sizeof *w); }

void st_writer_meta(st_writer *w, const char *key, const char *value) {
    ASSERT(w->n_meta < 16 && strcmp(key, "format") != 0);
    w->meta[2 * w->n_meta] = strdupCheck(key);
    w->meta[2 * w->n_meta + 1] = strdupCheck(value);
    w->n_meta++;
}

void st_writer_add(st_writer *w, const char *name, st_dtype dtype, const void *data, int ndim, const int64_t *shape) {
    ASSERT(ndim <= ST_MAX_DIMS);
    if (w->n == w->cap) w->t = reallocCheck(w->t, sizeof(st_out_tensor) * (size_t)(w->cap = w->cap ? 2 * w->cap : 64));
    st_out_tensor *t = &w->t[w->n++];
    t->name = name;
    t->dtype = dtype;
    t->data = data;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
}

int st_writer_finish(st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    for (int i = 0; i < w->n_meta; i++) cJSON_AddStringToObject(meta, w->meta[2 * i], w->meta[2 * i + 1]);
    size_t at = 0;
    for (int i = 0; i < w->n; i++) {
        st_out_tensor *t = &w->t[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", DTYPE_NAMES[t->dtype]);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
            numel *= (size_t)t->shape[k];
        }
        size_t bytes = numel * DTYPE_SIZES[t->dtype];
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(at + bytes)));
        at += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t jl = strlen(json), hl = (jl + 7) & ~(size_t)7;
    size_t pl = strlen(path);
    char *tmp = mallocCheck(pl + 8);
    snprintf(tmp, pl + 8, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int ok = fp != NULL;
    if (!ok) adp_seterr("%s: cannot create: %s", tmp, strerror(errno));
    if (ok) {
        unsigned char hdr[8];
        for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        ok = fwrite(hdr, 1, 8, fp) == 8 && fwrite(json, 1, jl, fp) == jl;
        for (size_t i = jl; ok && i < hl; i++) ok = fputc(' ', fp) != EOF;
        for (int i = 0; ok && i < w->n; i++) {
            st_out_tensor *t = &w->t[i];
            size_t numel = 1;
            for (int k = 0; k < t->ndim; k++) numel *= (size_t)t->shape[k];
            size_t bytes = numel * DTYPE_SIZES[t->dtype];
            ok = fwrite(t->data, 1, bytes, fp) == bytes;
        }
        ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
        ok = (fclose(fp) == 0) && ok;
        if (!ok) adp_seterr("%s: write failed: %s", tmp, strerror(errno));
        if (ok && rename(tmp, path) != 0) ok = 0, adp_seterr("%s: rename failed: %s", path, strerror(errno));
        if (!ok) remove(tmp);
    }
    free(tmp);
    cJSON_free(json);
    free(w->t);
    for (int i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    memset(w, 0, sizeof *w);
    return ok ? ADP_OK : ADP_ERR;
}

/* safetensors.h: read and write the Hugging Face safetensors format (layout documented
 * above the reader in safetensors.c). */
#ifndef ADP_SAFETENSORS_H
#define ADP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t begin, end; /* byte offsets into the data section */
} st_tensor;

typedef struct {
    char *path;
    int fd;
    unsigned char *map; /* the whole file, mmapped read-only */
    size_t size;
    const unsigned char *data; /* start of the data section */
    size_t data_size;
    st_tensor *tensors;
    int n_tensors;
    char **meta; /* __metadata__ as key, value, key, value, ... (n_meta pairs) */
    int n_meta;
} st_file;

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
int st_is_float(st_dtype d);

/* Open and validate a file; fills *f.  On error returns ADP_ERR with a message naming the
 * file and what is wrong. */
int st_open(st_file *f, const char *path);
void st_close(st_file *f);
/* The tensor with this exact name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* A string of the header's __metadata__, or NULL. */
const char *st_meta(const st_file *f, const char *key);
int64_t st_numel(const st_tensor *t);
/* Copy a floating tensor (F32, F16, BF16 or F64) into dst as F32, after checking that its
 * shape is exactly shape[0..ndim).  Errors name the tensor and both shapes. */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, const int64_t *shape, int ndim);
/* Copy an integer tensor (I64, I32, I16, I8, U8, BOOL) into dst as int32 (values must fit).
 * n = expected element count. */
int st_read_i32(const st_file *f, const st_tensor *t, int32_t *dst, int64_t n);

/* Writing: collect tensors, then st_writer_finish writes the file atomically. */
typedef struct {
    const char *name;
    st_dtype dtype; /* ST_F32 or ST_I32 or ST_I64 */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* borrowed until finish */
} st_out_tensor;

typedef struct {
    st_out_tensor *t;
    int n, cap;
    char *meta[32]; /* key, value pairs for __metadata__ (copied) */
    int n_meta;
} st_writer;

void st_writer_init(st_writer *w);
void st_writer_add(st_writer *w, const char *name, st_dtype dtype, const void *data, int ndim, const int64_t *shape);
/* Add a __metadata__ string (at most 16 pairs; "format" is always "pt"). */
void st_writer_meta(st_writer *w, const char *key, const char *value);
/* Write (tensors in the order added) to path; atomic (tmp + rename).  Frees the list. */
int st_writer_finish(st_writer *w, const char *path);

#endif

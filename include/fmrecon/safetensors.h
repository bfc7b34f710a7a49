/* Reading safetensors checkpoints (the format Hugging Face publishes weights in): an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}, then the tensor bytes. The file is memory-mapped; every
 * offset, size, dtype and shape is checked against the file before anything is read. */
#ifndef FMRECON_SAFETENSORS_H
#define FMRECON_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef enum fmr_st_dtype {
    FMR_ST_F32 = 1,
    FMR_ST_F16,
    FMR_ST_BF16,
    FMR_ST_F64,
    FMR_ST_I64,
    FMR_ST_I32,
    FMR_ST_I16,
    FMR_ST_I8,
    FMR_ST_U8,
    FMR_ST_BOOL,
} fmr_st_dtype;

#define FMR_ST_MAX_DIMS 8

typedef struct fmr_st_tensor {
    const char *name;
    fmr_st_dtype dtype;
    int ndim;
    int64_t shape[FMR_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* inside the mapping; unaligned in general */
} fmr_st_tensor;

typedef struct fmr_safetensors fmr_safetensors;

/* Opens and validates the whole header. Limits: header at most 100 MB, at most 1,000,000
 * tensors. */
fmr_err fmr_st_open(const char *path, fmr_safetensors **st);
/* The same checks on a buffer (fuzzing, embedded data); the buffer must outlive the object. */
fmr_err fmr_st_open_buffer(const void *buf, size_t len, const char *label, fmr_safetensors **st);
void fmr_st_close(fmr_safetensors **st);

size_t fmr_st_count(const fmr_safetensors *st);
const fmr_st_tensor *fmr_st_at(const fmr_safetensors *st, size_t i);
/* NULL if absent. */
const fmr_st_tensor *fmr_st_find(const fmr_safetensors *st, const char *name);
/* A __metadata__ value, or NULL. */
const char *fmr_st_metadata(const fmr_safetensors *st, const char *key);
/* The __metadata__ entries in file order: count, and key/value of entry i (NULL past the end). */
size_t fmr_st_metadata_count(const fmr_safetensors *st);
const char *fmr_st_metadata_key(const fmr_safetensors *st, size_t i);
const char *fmr_st_metadata_value(const fmr_safetensors *st, size_t i);
const char *fmr_st_dtype_name(fmr_st_dtype t);
/* The file name (or label) messages use. */
const char *fmr_st_label(const fmr_safetensors *st);

/* Copies a floating-point tensor into out[numel] as float32 (f16 and bf16 widened exactly, f64
 * rounded). Fails naming the file and tensor if absent, not floating point, or not the expected
 * shape (expect_ndim < 0 skips the shape check). */
fmr_err fmr_st_read_f32(const fmr_safetensors *st, const char *name, int expect_ndim,
                        const int64_t *expect_shape, float *out);
/* fmr_st_read_f32 for network weights: also fails, naming the file and tensor, if any value is
 * NaN or Inf (a diverged training run or a corrupted file would otherwise give a NaN image). */
fmr_err fmr_st_read_weights(const fmr_safetensors *st, const char *name, int expect_ndim,
                            const int64_t *expect_shape, float *out);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

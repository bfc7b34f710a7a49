/* Complex-float (and real) multi-dimensional arrays with explicit dims and strides, 64-byte aligned.
 * The one internal k-space layout is y[frame][slice][coil][readout][phase-encode], phase-encode last
 * (fastMRI orientation); every reader converts to it. */
#ifndef FMRECON_ARRAY_H
#define FMRECON_ARRAY_H

#include <complex.h>
#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef float _Complex fmr_cfloat;

#define FMR_MAX_DIMS 8
#define FMR_ALIGN 64

typedef enum fmr_dtype { FMR_C64 = 1, FMR_F32 = 2, FMR_U8 = 3 } fmr_dtype;

size_t fmr_dtype_size(fmr_dtype t);

/* Aligned allocation (FMR_ALIGN bytes; FFTW's SIMD paths need it). Returns NULL on failure. */
void *fmr_malloc(size_t bytes);
void *fmr_calloc(size_t n, size_t size);
void fmr_free(void *p);

/* Same as fmr_malloc but records an FMR_ERR_NOMEM message naming what was being allocated. */
fmr_err fmr_alloc(void **p, size_t bytes, const char *what);

typedef struct fmr_array fmr_array;

/* Contiguous row-major array, zero-initialised. */
fmr_err fmr_array_create(fmr_array **a, fmr_dtype t, int ndim, const size_t *dims);
/* Wraps caller memory (not freed by destroy); strides in elements, NULL = row-major contiguous. */
fmr_err fmr_array_wrap(fmr_array **a, fmr_dtype t, int ndim, const size_t *dims,
                       const ptrdiff_t *strides, void *data);
void fmr_array_destroy(fmr_array **a);

fmr_dtype fmr_array_dtype(const fmr_array *a);
int fmr_array_ndim(const fmr_array *a);
size_t fmr_array_dim(const fmr_array *a, int i);
ptrdiff_t fmr_array_stride(const fmr_array *a, int i);
size_t fmr_array_numel(const fmr_array *a);
void *fmr_array_data(const fmr_array *a);
int fmr_array_is_contiguous(const fmr_array *a);

/* A view of the sub-array at the leading indices idx[0..nfix-1]; shares memory with a. */
fmr_err fmr_array_subview(const fmr_array *a, int nfix, const size_t *idx, fmr_array **view);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

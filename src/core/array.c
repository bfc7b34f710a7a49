#include "fmrecon/array.h"

#include "core/limits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fmr_array {
    fmr_dtype dtype;
    int ndim;
    size_t dims[FMR_MAX_DIMS];
    ptrdiff_t strides[FMR_MAX_DIMS];
    void *data;
    int owns;
};

size_t fmr_dtype_size(fmr_dtype t)
{
    switch (t) {
    case FMR_C64: return sizeof(fmr_cfloat);
    case FMR_F32: return sizeof(float);
    case FMR_U8: return 1;
    }
    return 0;
}

void *fmr_malloc(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + FMR_ALIGN - 1) / FMR_ALIGN * FMR_ALIGN;
    if (rounded == 0) rounded = FMR_ALIGN;
    if (posix_memalign(&p, FMR_ALIGN, rounded) != 0) return NULL;
    return p;
}

void *fmr_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = fmr_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void fmr_free(void *p)
{
    free(p);
}

fmr_err fmr_alloc(void **p, size_t bytes, const char *what)
{
    *p = NULL;
    /* Linux overcommits: past the budget malloc would succeed and the job be killed later. */
    FMR_TRY(fmr_limit_bytes(NULL, what, bytes, 0, NULL, NULL));
    *p = fmr_malloc(bytes);
    if (!*p)
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate %.1f MiB for %s",
                         (double)bytes / 1048576.0, what);
    return FMR_OK;
}

static fmr_err check_dims(fmr_dtype t, int ndim, const size_t *dims, size_t *numel)
{
    if (ndim < 0 || ndim > FMR_MAX_DIMS)
        return fmr_error(FMR_ERR_ARG, "array rank %d outside 0..%d", ndim, FMR_MAX_DIMS);
    if (fmr_dtype_size(t) == 0) return fmr_error(FMR_ERR_ARG, "unknown array dtype %d", (int)t);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] && n > SIZE_MAX / 64 / dims[i])
            return fmr_error(FMR_ERR_ARG, "array dimensions overflow");
        n *= dims[i];
    }
    *numel = n;
    return FMR_OK;
}

static fmr_err array_new(fmr_array **a, fmr_dtype t, int ndim, const size_t *dims,
                         const ptrdiff_t *strides, void *data, int owns)
{
    fmr_array *r = calloc(1, sizeof *r);
    if (!r) return fmr_error(FMR_ERR_NOMEM, "cannot allocate array header");
    r->dtype = t;
    r->ndim = ndim;
    ptrdiff_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        r->dims[i] = dims[i];
        r->strides[i] = strides ? strides[i] : s;
        s *= (ptrdiff_t)dims[i];
    }
    r->data = data;
    r->owns = owns;
    *a = r;
    return FMR_OK;
}

fmr_err fmr_array_create(fmr_array **a, fmr_dtype t, int ndim, const size_t *dims)
{
    size_t n;
    FMR_TRY(check_dims(t, ndim, dims, &n));
    void *data = fmr_calloc(n, fmr_dtype_size(t));
    if (!data)
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate %.1f MiB array",
                         (double)(n * fmr_dtype_size(t)) / 1048576.0);
    fmr_err e = array_new(a, t, ndim, dims, NULL, data, 1);
    if (e) fmr_free(data);
    return e;
}

fmr_err fmr_array_wrap(fmr_array **a, fmr_dtype t, int ndim, const size_t *dims,
                       const ptrdiff_t *strides, void *data)
{
    size_t n;
    FMR_TRY(check_dims(t, ndim, dims, &n));
    if (!data && n) return fmr_error(FMR_ERR_ARG, "wrapping NULL data");
    return array_new(a, t, ndim, dims, strides, data, 0);
}

void fmr_array_destroy(fmr_array **a)
{
    if (!a || !*a) return;
    if ((*a)->owns) fmr_free((*a)->data);
    free(*a);
    *a = NULL;
}

fmr_dtype fmr_array_dtype(const fmr_array *a)
{
    return a->dtype;
}

int fmr_array_ndim(const fmr_array *a)
{
    return a->ndim;
}

size_t fmr_array_dim(const fmr_array *a, int i)
{
    return (i >= 0 && i < a->ndim) ? a->dims[i] : 1;
}

ptrdiff_t fmr_array_stride(const fmr_array *a, int i)
{
    return (i >= 0 && i < a->ndim) ? a->strides[i] : 0;
}

size_t fmr_array_numel(const fmr_array *a)
{
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->dims[i];
    return n;
}

void *fmr_array_data(const fmr_array *a)
{
    return a->data;
}

int fmr_array_is_contiguous(const fmr_array *a)
{
    ptrdiff_t s = 1;
    for (int i = a->ndim - 1; i >= 0; i--) {
        if (a->dims[i] != 1 && a->strides[i] != s) return 0;
        s *= (ptrdiff_t)a->dims[i];
    }
    return 1;
}

fmr_err fmr_array_subview(const fmr_array *a, int nfix, const size_t *idx, fmr_array **view)
{
    if (nfix < 0 || nfix > a->ndim)
        return fmr_error(FMR_ERR_ARG, "subview fixes %d of %d dimensions", nfix, a->ndim);
    ptrdiff_t off = 0;
    for (int i = 0; i < nfix; i++) {
        if (idx[i] >= a->dims[i])
            return fmr_error(FMR_ERR_ARG, "subview index %zu out of range 0..%zu in dimension %d",
                             idx[i], a->dims[i] - 1, i);
        off += (ptrdiff_t)idx[i] * a->strides[i];
    }
    char *base = (char *)a->data + off * (ptrdiff_t)fmr_dtype_size(a->dtype);
    return array_new(view, a->dtype, a->ndim - nfix, a->dims + nfix, a->strides + nfix, base, 0);
}

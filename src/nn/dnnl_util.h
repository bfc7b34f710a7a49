/* Thin glue over the oneDNN C API: one CPU engine and stream per process, status -> fmr_err,
 * and a primitive bundled with its descriptor. */
#ifndef FMR_NN_DNNL_UTIL_H
#define FMR_NN_DNNL_UTIL_H

#include <oneapi/dnnl/dnnl.h>

/* oneDNN declares dims parameters as dnnl_dims_t (12 entries) but reads only ndims of them; GCC 12
 * cannot see that and flags every call with a shorter array. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 /* the warning is GCC >= 11 only */
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif

#include "fmrecon/error.h"

/* Reference-counted process-wide engine and stream. */
fmr_err fmr_dnnl_acquire(dnnl_engine_t *engine, dnnl_stream_t *stream);
void fmr_dnnl_release(void);

fmr_err fmr_dnnl_status(dnnl_status_t s, const char *what, const char *file, int line);
#define FMR_DNNL(call, what) FMR_TRY(fmr_dnnl_status((call), (what), __FILE__, __LINE__))

typedef struct fmr_prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
} fmr_prim;

/* Creates pd and primitive from an op descriptor (attr may be NULL). */
fmr_err fmr_prim_create(fmr_prim *pr, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                        dnnl_engine_t engine, const char *what);
void fmr_prim_destroy(fmr_prim *pr);
const dnnl_memory_desc_t *fmr_prim_md(const fmr_prim *pr, dnnl_query_t q, int index);

/* Plain memory descriptors. */
fmr_err fmr_md_dense(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims);
fmr_err fmr_md_strided(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                       const dnnl_dim_t *strides);

/* The same with an explicit data type (bf16 activations and weights). */
fmr_err fmr_md_dense_dt(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                        dnnl_data_type_t dt);
fmr_err fmr_md_strided_dt(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                          const dnnl_dim_t *strides, dnnl_data_type_t dt);

/* The implementation oneDNN chose for a primitive (e.g. "brg:avx512_core_amx"), or "none". */
const char *fmr_prim_impl(const fmr_prim *pr);

/* A memory object on a caller-owned buffer (or NULL to set the handle later). */
fmr_err fmr_mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t engine, void *ptr);

/* Executes and waits. */
fmr_err fmr_prim_run(const fmr_prim *pr, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args,
                     const char *what);

#endif

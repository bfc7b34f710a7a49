/* oneDNN glue: a single engine/stream shared by every encoder and decoder in the process (oneDNN
 * caches kernels per engine), created on first use and freed with the last user. */
#include "dnnl_util.h"

#include <oneapi/dnnl/dnnl_debug.h>

static struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int users;
} g;

fmr_err fmr_dnnl_status(dnnl_status_t s, const char *what, const char *file, int line)
{
    if (s == dnnl_success) return FMR_OK;
    return fmr_error_at(FMR_ERR_LIB, file, line, "oneDNN", "oneDNN failed to %s (%s)", what,
                        dnnl_status2str(s));
}

fmr_err fmr_dnnl_acquire(dnnl_engine_t *engine, dnnl_stream_t *stream)
{
    if (!g.users) {
        FMR_DNNL(dnnl_engine_create(&g.engine, dnnl_cpu, 0), "create the CPU engine");
        dnnl_status_t s = dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            dnnl_engine_destroy(g.engine);
            return fmr_dnnl_status(s, "create a stream", __FILE__, __LINE__);
        }
    }
    g.users++;
    *engine = g.engine, *stream = g.stream;
    return FMR_OK;
}

void fmr_dnnl_release(void)
{
    if (g.users > 0 && --g.users == 0) {
        dnnl_stream_destroy(g.stream);
        dnnl_engine_destroy(g.engine);
        g.stream = NULL, g.engine = NULL;
    }
}

fmr_err fmr_prim_create(fmr_prim *pr, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                        dnnl_engine_t engine, const char *what)
{
    pr->pd = NULL, pr->p = NULL;
    FMR_DNNL(dnnl_primitive_desc_create(&pr->pd, desc, attr, engine, NULL), what);
    dnnl_status_t s = dnnl_primitive_create(&pr->p, pr->pd);
    if (s != dnnl_success) {
        dnnl_primitive_desc_destroy(pr->pd);
        pr->pd = NULL;
        return fmr_dnnl_status(s, what, __FILE__, __LINE__);
    }
    return FMR_OK;
}

void fmr_prim_destroy(fmr_prim *pr)
{
    if (pr->p) dnnl_primitive_destroy(pr->p);
    if (pr->pd) dnnl_primitive_desc_destroy(pr->pd);
    pr->p = NULL, pr->pd = NULL;
}

const dnnl_memory_desc_t *fmr_prim_md(const fmr_prim *pr, dnnl_query_t q, int index)
{
    return dnnl_primitive_desc_query_md(pr->pd, q, index);
}

fmr_err fmr_md_dense_dt(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                        dnnl_data_type_t dt)
{
    static const dnnl_format_tag_t tags[] = {
        dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    FMR_DNNL(dnnl_memory_desc_init_by_tag(md, nd, dims, dt, tags[nd]), "describe a dense tensor");
    return FMR_OK;
}

fmr_err fmr_md_dense(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims)
{
    return fmr_md_dense_dt(md, nd, dims, dnnl_f32);
}

fmr_err fmr_md_strided_dt(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                          const dnnl_dim_t *strides, dnnl_data_type_t dt)
{
    FMR_DNNL(dnnl_memory_desc_init_by_strides(md, nd, dims, dt, strides),
             "describe a strided tensor");
    return FMR_OK;
}

fmr_err fmr_md_strided(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                       const dnnl_dim_t *strides)
{
    return fmr_md_strided_dt(md, nd, dims, strides, dnnl_f32);
}

const char *fmr_prim_impl(const fmr_prim *pr)
{
    const char *s = NULL;
    if (!pr->pd ||
        dnnl_primitive_desc_query(pr->pd, dnnl_query_impl_info_str, 0, (void *)&s) !=
            dnnl_success ||
        !s)
        return "none";
    return s;
}

fmr_err fmr_mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t engine, void *ptr)
{
    FMR_DNNL(dnnl_memory_create(m, md, engine, ptr ? ptr : DNNL_MEMORY_NONE),
             "create a memory object");
    return FMR_OK;
}

fmr_err fmr_prim_run(const fmr_prim *pr, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args,
                     const char *what)
{
    FMR_DNNL(dnnl_primitive_execute(pr->p, s, nargs, args), what);
    return FMR_OK;
}

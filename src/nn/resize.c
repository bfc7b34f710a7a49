#include "fmrecon/decoder.h"

#include <string.h>

#include "dnnl_util.h"

fmr_err fmr_resize_bilinear(const float *in, size_t n, int ih, int iw, int oh, int ow, float *out)
{
    if (!n) return FMR_OK;
    if (ih <= 0 || iw <= 0 || oh <= 0 || ow <= 0)
        return fmr_error(FMR_ERR_SHAPE, "cannot resize %dx%d to %dx%d", ih, iw, oh, ow);
    if (ih == oh && iw == ow) {
        memcpy(out, in, n * (size_t)ih * iw * sizeof *out);
        return FMR_OK;
    }
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    FMR_TRY(fmr_dnnl_acquire(&eng, &strm));
    dnnl_memory_desc_t src, dst;
    const dnnl_dim_t ds[4] = {(dnnl_dim_t)n, 1, ih, iw}, dd[4] = {(dnnl_dim_t)n, 1, oh, ow};
    fmr_prim r = {0};
    dnnl_memory_t ms = NULL, md = NULL;
    dnnl_resampling_desc_t rd;
    fmr_err err = fmr_md_dense(&src, 4, ds);
    if (!err) err = fmr_md_dense(&dst, 4, dd);
    if (!err)
        err = fmr_dnnl_status(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference,
                                                                dnnl_resampling_linear, NULL, &src,
                                                                &dst),
                              "describe a resize", __FILE__, __LINE__);
    if (!err) err = fmr_prim_create(&r, &rd, NULL, eng, "create a resize");
    if (!err) err = fmr_mem(&ms, &src, eng, (void *)in);
    if (!err) err = fmr_mem(&md, &dst, eng, out);
    if (!err) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_DST, md}};
        err = fmr_prim_run(&r, strm, 2, a, "resize");
        if (!err)
            err = fmr_dnnl_status(dnnl_stream_wait(strm), "wait for a resize", __FILE__, __LINE__);
    }
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    fmr_prim_destroy(&r);
    fmr_dnnl_release();
    return err;
}

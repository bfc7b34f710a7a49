/* The machine's reachable f32 matmul rate on the encoder's own shapes: the yardstick the
 * encoder's GFLOP/s is judged against in `fmrecon bench encoder` (docs/benchmarks.md). */
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "fmrecon/encoder.h"
#include "fmrecon/log.h"

static fmr_err one_shape(dnnl_engine_t eng, dnnl_stream_t strm, dnnl_dim_t m, dnnl_dim_t k,
                         dnnl_dim_t n, int reps, int bf16, double *gflops)
{
    dnnl_memory_desc_t a, b, c;
    const dnnl_dim_t da[2] = {m, k}, db[2] = {k, n}, dc[2] = {m, n};
    FMR_TRY(fmr_md_dense(&a, 2, da));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&b, 2, db, dnnl_f32, dnnl_format_tag_any),
             "describe weights");
    FMR_TRY(fmr_md_dense(&c, 2, dc));
    dnnl_matmul_desc_t d;
    FMR_DNNL(dnnl_matmul_desc_init(&d, &a, &b, NULL, &c), "describe a matmul");
    dnnl_primitive_attr_t attr;
    FMR_DNNL(dnnl_primitive_attr_create(&attr), "create attributes");
    if (bf16) dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_bf16);
    fmr_prim pr;
    fmr_err err = fmr_prim_create(&pr, &d, attr, eng, "create a matmul");
    dnnl_primitive_attr_destroy(attr);
    FMR_TRY(err);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    const dnnl_memory_desc_t *wb = fmr_prim_md(&pr, dnnl_query_weights_md, 0);
    err = fmr_dnnl_status(dnnl_memory_create(&ma, &a, eng, DNNL_MEMORY_ALLOCATE), "allocate",
                          __FILE__, __LINE__);
    if (!err)
        err = fmr_dnnl_status(dnnl_memory_create(&mb, wb, eng, DNNL_MEMORY_ALLOCATE), "allocate",
                              __FILE__, __LINE__);
    if (!err)
        err = fmr_dnnl_status(dnnl_memory_create(&mc, &c, eng, DNNL_MEMORY_ALLOCATE), "allocate",
                              __FILE__, __LINE__);
    if (!err) {
        void *p;
        /* non-zero operands (zeros can take shortcuts in some kernels) */
        dnnl_memory_get_data_handle(ma, &p);
        for (size_t i = 0; i < (size_t)(m * k); i++)
            ((float *)p)[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        dnnl_memory_get_data_handle(mb, &p);
        for (size_t i = 0; i < dnnl_memory_desc_get_size(wb) / 4; i++)
            ((float *)p)[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        double best = 1e30;
        for (int r = 0; !err && r <= reps; r++) {
            double t0 = fmr_wtime();
            err = fmr_prim_run(&pr, strm, 3, args, "run a matmul");
            dnnl_stream_wait(strm);
            double t = fmr_wtime() - t0;
            if (r > 0 && t < best) best = t; /* r = 0 warms caches and the JIT */
        }
        *gflops = 2.0 * (double)m * k * n / best * 1e-9;
    }
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    fmr_prim_destroy(&pr);
    return err;
}

fmr_err fmr_encoder_matmul_peak(const fmr_encoder *enc, int b, int h, int w, int bf16, int reps,
                                double *gflops)
{
    int n;
    FMR_TRY(fmr_encoder_tokens(enc, h, w, &n));
    const fmr_encoder_config *c = fmr_encoder_get_config(enc);
    const dnnl_dim_t m = (dnnl_dim_t)b * n, D = c->width, M = c->mlp;
    const dnnl_dim_t shapes[4][2] = {{D, 3 * D}, {D, D}, {D, M}, {M, D}};
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    FMR_TRY(fmr_dnnl_acquire(&eng, &strm));
    fmr_err err = FMR_OK;
    *gflops = 0;
    for (int s = 0; !err && s < 4; s++) {
        double g = 0;
        err = one_shape(eng, strm, m, shapes[s][0], shapes[s][1], reps, bf16, &g);
        if (g > *gflops) *gflops = g;
    }
    fmr_dnnl_release();
    return err;
}

int fmr_cpu_has_bf16(void)
{
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

const char *fmr_cpu_isa_name(void)
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
        return "sse41";
    case dnnl_cpu_isa_avx:
        return "avx";
    case dnnl_cpu_isa_avx2:
        return "avx2";
    case dnnl_cpu_isa_avx512_core:
        return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
        return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
        return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
        return "avx512_core_amx";
    default:
        return "other";
    }
}

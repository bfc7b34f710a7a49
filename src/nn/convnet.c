/* Instance norm is oneDNN's layer normalisation over the rows of the (batch*channels,
 * height*width) view of an NCHW tensor: the same statistics, per image and channel. */
#include "convnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/rng.h"
#include "dnnl_util.h"
#include "fmrecon/array.h"

#define MAX_OPS 256
#define MAX_BUFS 160
#define MAX_MEMS 768
#define MAX_INPUTS 8

typedef struct {
    fmr_prim pr;
    dnnl_exec_arg_t args[4];
    int nargs;
} op;

struct fmr_convnet {
    int b;
    const fmr_safetensors *st;
    char prefix[128];
    fmr_rng rng;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    op ops[MAX_OPS];
    int nops;
    float *bufs[MAX_BUFS];
    int nbufs;
    dnnl_memory_t mems[MAX_MEMS];
    int nmems;
    dnnl_memory_t inputs[MAX_INPUTS];
    int ninputs;
};

#define FULL(what) fmr_error(FMR_ERR_INTERNAL, "network plan: too many %s", what)

int fmr_cn_batch(const fmr_convnet *n)
{
    return n->b;
}

fmr_err fmr_cn_create(fmr_convnet **out, int batch, const fmr_safetensors *st, const char *prefix,
                      uint64_t seed)
{
    *out = NULL;
    if (batch <= 0) return fmr_error(FMR_ERR_ARG, "network batch %d is not positive", batch);
    fmr_convnet *n = calloc(1, sizeof *n);
    if (!n) return fmr_error(FMR_ERR_NOMEM, "out of memory (network plan)");
    n->b = batch, n->st = st;
    /* A cut prefix would look up other tensors' names: refuse it instead. */
    if ((size_t)snprintf(n->prefix, sizeof n->prefix, "%s", prefix ? prefix : "") >= sizeof n->prefix) {
        free(n);
        return fmr_error(FMR_ERR_ARG, "network key prefix '%s' is longer than %zu bytes", prefix,
                         sizeof n->prefix - 1);
    }
    fmr_rng_seed(&n->rng, seed);
    fmr_err err = fmr_dnnl_acquire(&n->eng, &n->strm);
    if (err) {
        free(n);
        return err;
    }
    *out = n;
    return FMR_OK;
}

void fmr_cn_destroy(fmr_convnet **np)
{
    fmr_convnet *n = *np;
    if (!n) return;
    for (int i = 0; i < n->nops; i++)
        fmr_prim_destroy(&n->ops[i].pr);
    for (int i = 0; i < n->nmems; i++)
        dnnl_memory_destroy(n->mems[i]);
    for (int i = 0; i < n->nbufs; i++)
        fmr_free(n->bufs[i]);
    fmr_dnnl_release();
    free(n);
    *np = NULL;
}

static fmr_err new_tens(fmr_convnet *n, int c, int h, int w, fmr_cn_tens *t)
{
    if (n->nbufs == MAX_BUFS) return FULL("buffers");
    void *p = NULL;
    FMR_TRY(fmr_alloc(&p, (size_t)n->b * c * h * w * sizeof(float), "network activations"));
    n->bufs[n->nbufs++] = p;
    t->p = p, t->c = c, t->h = h, t->w = w;
    return FMR_OK;
}

static fmr_err mem(fmr_convnet *n, const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *m)
{
    if (n->nmems == MAX_MEMS) return FULL("memory objects");
    FMR_TRY(fmr_mem(m, md, n->eng, ptr));
    n->mems[n->nmems++] = *m;
    return FMR_OK;
}

static fmr_err md_nchw(const fmr_convnet *n, const fmr_cn_tens *t, dnnl_memory_desc_t *md)
{
    const dnnl_dim_t d[4] = {n->b, t->c, t->h, t->w};
    return fmr_md_dense(md, 4, d);
}

static op *next_op(fmr_convnet *n)
{
    return n->nops < MAX_OPS ? &n->ops[n->nops++] : NULL;
}

/* Reads weight `key` (PyTorch layout and shape want[0..nd)), described in oneDNN's logical dims
 * by src_md, and reorders it into a new memory of layout dmd. */
static fmr_err load_weight(fmr_convnet *n, const char *key, int nd, const int64_t *want,
                           const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dmd,
                           dnnl_memory_t *out)
{
    char full[256];
    if ((size_t)snprintf(full, sizeof full, "%s%s", n->prefix, key) >= sizeof full)
        return fmr_error(FMR_ERR_ARG, "network tensor name '%s%s' is longer than %zu bytes", n->prefix, key,
                         sizeof full - 1);
    size_t numel = 1;
    for (int i = 0; i < nd; i++)
        numel *= (size_t)want[i];
    if (n->nmems == MAX_MEMS) return FULL("memory objects");
    float *w = NULL;
    fmr_err err = FMR_OK;
    if (n->st) {
        if (!fmr_st_find(n->st, full))
            return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s'", fmr_st_label(n->st), full);
        FMR_TRY(fmr_alloc((void **)&w, numel * sizeof(float), "network weights"));
        err = fmr_st_read_f32(n->st, full, nd, want, w);
    } else { /* benchmarks: random weights of the right shapes, He-scaled */
        FMR_TRY(fmr_alloc((void **)&w, numel * sizeof(float), "network weights"));
        const double sd = sqrt(2.0 * (double)want[0] / (double)numel);
        for (size_t i = 0; i < numel; i++)
            w[i] = (float)(sd * fmr_rng_normal(&n->rng));
    }
    dnnl_memory_t ms = NULL;
    fmr_prim r = {0};
    if (!err) err = fmr_mem(&ms, src_md, n->eng, w);
    if (!err)
        err = fmr_dnnl_status(dnnl_memory_create(out, dmd, n->eng, DNNL_MEMORY_ALLOCATE),
                              "allocate weights", __FILE__, __LINE__);
    if (!err) {
        n->mems[n->nmems++] = *out;
        err = fmr_dnnl_status(
            dnnl_reorder_primitive_desc_create(&r.pd, src_md, n->eng, dmd, n->eng, NULL),
            "plan a weight reorder", __FILE__, __LINE__);
    }
    if (!err)
        err = fmr_dnnl_status(dnnl_primitive_create(&r.p, r.pd), "create a weight reorder",
                              __FILE__, __LINE__);
    if (!err) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, *out}};
        err = fmr_prim_run(&r, n->strm, 2, a, "reorder weights");
        if (!err) err = fmr_dnnl_status(dnnl_stream_wait(n->strm), "wait", __FILE__, __LINE__);
    }
    fmr_prim_destroy(&r);
    if (ms) dnnl_memory_destroy(ms);
    fmr_free(w);
    return err;
}

fmr_err fmr_cn_input(fmr_convnet *n, const int64_t dims[4], const int64_t strides[4],
                     fmr_cn_tens *t, int *slot)
{
    if (n->ninputs == MAX_INPUTS) return FULL("inputs");
    FMR_TRY(new_tens(n, (int)dims[1], (int)dims[2], (int)dims[3], t));
    dnnl_memory_desc_t s, d;
    const dnnl_dim_t dd[4] = {dims[0], dims[1], dims[2], dims[3]},
                     ss[4] = {strides[0], strides[1], strides[2], strides[3]};
    FMR_TRY(fmr_md_strided(&s, 4, dd, ss));
    FMR_TRY(md_nchw(n, t, &d));
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_DNNL(dnnl_reorder_primitive_desc_create(&o->pr.pd, &s, n->eng, &d, n->eng, NULL),
             "plan an input copy");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create an input copy");
    dnnl_memory_t mi, md;
    FMR_TRY(mem(n, &s, NULL, &mi));
    FMR_TRY(mem(n, &d, t->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, mi};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, md};
    o->nargs = 2;
    *slot = n->ninputs;
    n->inputs[n->ninputs++] = mi;
    return FMR_OK;
}

fmr_err fmr_cn_bind(fmr_convnet *n, int slot, const void *ptr)
{
    if (slot < 0 || slot >= n->ninputs)
        return fmr_error(FMR_ERR_INTERNAL, "network input %d does not exist", slot);
    FMR_DNNL(dnnl_memory_set_data_handle(n->inputs[slot], (void *)ptr), "bind a network input");
    return FMR_OK;
}

fmr_err fmr_cn_conv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout, int k,
                    const char *key, int bias)
{
    if (!dst->p) FMR_TRY(new_tens(n, cout, src->h, src->w, dst));
    dnnl_memory_desc_t s, d, w, wany, bmd;
    FMR_TRY(md_nchw(n, src, &s));
    FMR_TRY(md_nchw(n, dst, &d));
    const dnnl_dim_t dw[4] = {cout, src->c, k, k}, db[1] = {cout}, st[2] = {1, 1},
                     pad[2] = {k / 2, k / 2};
    FMR_TRY(fmr_md_dense(&w, 4, dw));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, dnnl_f32, dnnl_format_tag_any),
             "describe conv weights");
    FMR_TRY(fmr_md_dense(&bmd, 1, db));
    dnnl_convolution_desc_t cd;
    FMR_DNNL(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                dnnl_convolution_direct, &s, &wany,
                                                bias ? &bmd : NULL, &d, st, pad, pad),
             "describe a convolution");
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_TRY(fmr_prim_create(&o->pr, &cd, NULL, n->eng, "create a convolution"));
    char wk[200];
    snprintf(wk, sizeof wk, "%s.weight", key);
    const int64_t want[4] = {cout, src->c, k, k};
    dnnl_memory_t mw, ms, md, mb;
    FMR_TRY(load_weight(n, wk, 4, want, &w, fmr_prim_md(&o->pr, dnnl_query_weights_md, 0), &mw));
    FMR_TRY(mem(n, &s, src->p, &ms));
    FMR_TRY(mem(n, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 3;
    if (bias) {
        snprintf(wk, sizeof wk, "%s.bias", key);
        const int64_t wb[1] = {cout};
        FMR_TRY(load_weight(n, wk, 1, wb, &bmd, &bmd, &mb));
        o->args[o->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    }
    return FMR_OK;
}

fmr_err fmr_cn_deconv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout,
                      const char *key)
{
    FMR_TRY(new_tens(n, cout, 2 * src->h, 2 * src->w, dst));
    dnnl_memory_desc_t s, d, w, wany;
    FMR_TRY(md_nchw(n, src, &s));
    FMR_TRY(md_nchw(n, dst, &d));
    /* oneDNN's deconvolution weights are (out, in, kh, kw); PyTorch stores (in, out, kh, kw) */
    const dnnl_dim_t dw[4] = {cout, src->c, 2, 2}, sw[4] = {4, (dnnl_dim_t)cout * 4, 2, 1},
                     st[2] = {2, 2}, pad[2] = {0, 0};
    FMR_TRY(fmr_md_strided(&w, 4, dw, sw));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, dnnl_f32, dnnl_format_tag_any),
             "describe deconv weights");
    dnnl_deconvolution_desc_t dd;
    FMR_DNNL(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                  dnnl_deconvolution_direct, &s, &wany, NULL, &d,
                                                  st, pad, pad),
             "describe a transposed convolution");
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_TRY(fmr_prim_create(&o->pr, &dd, NULL, n->eng, "create a transposed convolution"));
    char wk[200];
    snprintf(wk, sizeof wk, "%s.weight", key);
    const int64_t want[4] = {src->c, cout, 2, 2};
    dnnl_memory_t mw, ms, md;
    FMR_TRY(load_weight(n, wk, 4, want, &w, fmr_prim_md(&o->pr, dnnl_query_weights_md, 0), &mw));
    FMR_TRY(mem(n, &s, src->p, &ms));
    FMR_TRY(mem(n, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 3;
    return FMR_OK;
}

fmr_err fmr_cn_inorm(fmr_convnet *n, const fmr_cn_tens *t, float slope)
{
    dnnl_memory_desc_t md;
    const dnnl_dim_t d[2] = {(dnnl_dim_t)n->b * t->c, (dnnl_dim_t)t->h * t->w};
    FMR_TRY(fmr_md_dense(&md, 2, d));
    dnnl_layer_normalization_desc_t ld;
    FMR_DNNL(dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL,
                                                        1e-5f, 0),
             "describe instance norm");
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_TRY(fmr_prim_create(&o->pr, &ld, NULL, n->eng, "create instance norm"));
    dnnl_memory_t m;
    FMR_TRY(mem(n, &md, t->p, &m));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
    o->nargs = 2;
    if (slope >= 0) {
        dnnl_eltwise_desc_t ed;
        FMR_DNNL(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_relu, &md,
                                                slope, 0.f),
                 "describe LeakyReLU");
        if (!(o = next_op(n))) return FULL("operations");
        FMR_TRY(fmr_prim_create(&o->pr, &ed, NULL, n->eng, "create LeakyReLU"));
        o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
        o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
        o->nargs = 2;
    }
    return FMR_OK;
}

fmr_err fmr_cn_add_lrelu(fmr_convnet *n, const fmr_cn_tens *a, const fmr_cn_tens *b, float slope)
{
    dnnl_memory_desc_t md;
    FMR_TRY(md_nchw(n, a, &md));
    dnnl_binary_desc_t bd;
    FMR_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, &md, &md, &md), "describe a residual add");
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    FMR_DNNL(dnnl_primitive_attr_create(&attr), "create attributes");
    if (dnnl_post_ops_create(&po) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return fmr_error(FMR_ERR_LIB, "oneDNN failed to create post-ops");
    }
    dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, slope, 0.f);
    dnnl_primitive_attr_set_post_ops(attr, po);
    op *o = next_op(n);
    fmr_err err = o ? fmr_prim_create(&o->pr, &bd, attr, n->eng, "create a residual add")
                    : FULL("operations");
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    FMR_TRY(err);
    dnnl_memory_t ma, mb;
    FMR_TRY(mem(n, &md, a->p, &ma));
    FMR_TRY(mem(n, &md, b->p, &mb));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC_0, ma};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, mb};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, ma};
    o->nargs = 3;
    return FMR_OK;
}

fmr_err fmr_cn_concat(fmr_convnet *n, const fmr_cn_tens *a, const fmr_cn_tens *b, fmr_cn_tens *dst)
{
    if (a->h != b->h || a->w != b->w)
        return fmr_error(FMR_ERR_INTERNAL, "concatenating %dx%d with %dx%d", a->h, a->w, b->h,
                         b->w);
    FMR_TRY(new_tens(n, a->c + b->c, a->h, a->w, dst));
    dnnl_memory_desc_t mds[2], md;
    FMR_TRY(md_nchw(n, a, &mds[0]));
    FMR_TRY(md_nchw(n, b, &mds[1]));
    FMR_TRY(md_nchw(n, dst, &md));
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_DNNL(dnnl_concat_primitive_desc_create(&o->pr.pd, &md, 2, 1, mds, NULL, n->eng),
             "plan a concatenation");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create a concatenation");
    dnnl_memory_t m0, m1, m2;
    FMR_TRY(mem(n, &mds[0], a->p, &m0));
    FMR_TRY(mem(n, &mds[1], b->p, &m1));
    FMR_TRY(mem(n, &md, dst->p, &m2));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC, m0};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + 1, m1};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, m2};
    o->nargs = 3;
    return FMR_OK;
}

fmr_err fmr_cn_avgpool(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst)
{
    if (src->h % 2 || src->w % 2)
        return fmr_error(FMR_ERR_INTERNAL, "pooling an odd %dx%d tensor", src->h, src->w);
    FMR_TRY(new_tens(n, src->c, src->h / 2, src->w / 2, dst));
    dnnl_memory_desc_t s, d;
    FMR_TRY(md_nchw(n, src, &s));
    FMR_TRY(md_nchw(n, dst, &d));
    const dnnl_dim_t st[2] = {2, 2}, k[2] = {2, 2}, dil[2] = {0, 0}, pad[2] = {0, 0};
    dnnl_pooling_v2_desc_t pd;
    FMR_DNNL(dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference,
                                               dnnl_pooling_avg_exclude_padding, &s, &d, st, k, dil,
                                               pad, pad),
             "describe average pooling");
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_TRY(fmr_prim_create(&o->pr, &pd, NULL, n->eng, "create average pooling"));
    dnnl_memory_t ms, md;
    FMR_TRY(mem(n, &s, src->p, &ms));
    FMR_TRY(mem(n, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 2;
    return FMR_OK;
}

fmr_err fmr_cn_run(fmr_convnet *n)
{
    for (int i = 0; i < n->nops; i++)
        FMR_TRY(fmr_prim_run(&n->ops[i].pr, n->strm, n->ops[i].nargs, n->ops[i].args,
                             "run a network layer"));
    FMR_DNNL(dnnl_stream_wait(n->strm), "finish a network");
    return FMR_OK;
}

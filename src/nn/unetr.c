/* The trainable UNETR-style decoder of the unrolled network on oneDNN (docs/model.md): residual
 * conv blocks with instance norm and LeakyReLU, 2x2 transposed convolutions, skip
 * concatenations. All activations are plain NCHW float32. Instance norm is oneDNN's layer
 * normalisation over the rows of the (batch*channels, height*width) view of an NCHW tensor —
 * the same statistics, per image and channel. A plan (primitives, packed weights, activations)
 * is built per batch size and replayed as a list of primitive executions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "../core/rng.h"
#include "dnnl_util.h"
#include "fmrecon/array.h"
#include "unetr.h"

#define MAX_OPS 160
#define MAX_BUFS 96
#define MAX_MEMS 512

typedef struct {
    fmr_prim pr;
    dnnl_exec_arg_t args[4];
    int nargs;
} op;

typedef struct uplan {
    int b;
    op ops[MAX_OPS];
    int nops;
    float *bufs[MAX_BUFS];
    int nbufs;
    dnnl_memory_t mems[MAX_MEMS]; /* every memory object, for release */
    int nmems;
    dnnl_memory_t in_img, in_tap[4]; /* handles bound at each call */
    float *out;
    struct uplan *next;
} uplan;

struct fmr_unetr {
    const fmr_safetensors *st; /* NULL: random weights (benchmarks) */
    fmr_rng rng;
    char prefix[128];
    fmr_unetr_config c;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    uplan *plans;
};

/* A tensor: buffer + NCHW shape. */
typedef struct {
    float *p;
    int c, h, w;
} tens;

static fmr_err new_buf(uplan *pl, size_t n, float **out)
{
    if (pl->nbufs == MAX_BUFS) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many buffers");
    void *p = NULL;
    FMR_TRY(fmr_alloc(&p, (n ? n : 1) * sizeof(float), "decoder activations"));
    pl->bufs[pl->nbufs++] = p;
    *out = p;
    return FMR_OK;
}

static fmr_err new_tens(uplan *pl, int c, int h, int w, tens *t)
{
    t->c = c, t->h = h, t->w = w;
    return new_buf(pl, (size_t)pl->b * c * h * w, &t->p);
}

static fmr_err mem(fmr_unetr *u, uplan *pl, const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *m)
{
    if (pl->nmems == MAX_MEMS) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many memory objects");
    FMR_TRY(fmr_mem(m, md, u->eng, ptr));
    pl->mems[pl->nmems++] = *m;
    return FMR_OK;
}

static fmr_err md_nchw(const uplan *pl, const tens *t, dnnl_memory_desc_t *md)
{
    const dnnl_dim_t d[4] = {pl->b, t->c, t->h, t->w};
    return fmr_md_dense(md, 4, d);
}

static op *next_op(uplan *pl) { return pl->nops < MAX_OPS ? &pl->ops[pl->nops++] : NULL; }

/* Reads weight `key` (PyTorch layout, shape want[0..nd)) and reorders it into dmd. src_md
 * describes the PyTorch buffer in oneDNN's logical dims. */
static fmr_err load_weight(fmr_unetr *u, uplan *pl, const char *key, int nd, const int64_t *want,
                           const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dmd, dnnl_memory_t *out)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", u->prefix, key);
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= (size_t)want[i];
    float *w = NULL;
    fmr_err err = FMR_OK;
    if (u->st) {
        if (!fmr_st_find(u->st, full)) return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s'", fmr_st_label(u->st), full);
        FMR_TRY(fmr_alloc((void **)&w, numel * sizeof(float), "decoder weights"));
        err = fmr_st_read_f32(u->st, full, nd, want, w);
    } else { /* benchmarks: random weights of the right shapes, He-scaled */
        FMR_TRY(fmr_alloc((void **)&w, numel * sizeof(float), "decoder weights"));
        const double sd = sqrt(2.0 * (double)want[0] / (double)numel);
        for (size_t i = 0; i < numel; i++) w[i] = (float)(sd * fmr_rng_normal(&u->rng));
    }
    dnnl_memory_t ms = NULL;
    fmr_prim r = {0};
    if (!err) err = fmr_mem(&ms, src_md, u->eng, w);
    if (!err) err = fmr_dnnl_status(dnnl_memory_create(out, dmd, u->eng, DNNL_MEMORY_ALLOCATE), "allocate weights", __FILE__, __LINE__);
    if (!err) {
        pl->mems[pl->nmems++] = *out;
        err = fmr_dnnl_status(dnnl_reorder_primitive_desc_create(&r.pd, src_md, u->eng, dmd, u->eng, NULL),
                              "plan a weight reorder", __FILE__, __LINE__);
    }
    if (!err) err = fmr_dnnl_status(dnnl_primitive_create(&r.p, r.pd), "create a weight reorder", __FILE__, __LINE__);
    if (!err) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, *out}};
        err = fmr_prim_run(&r, u->strm, 2, a, "reorder weights");
        if (!err) err = fmr_dnnl_status(dnnl_stream_wait(u->strm), "wait", __FILE__, __LINE__);
    }
    fmr_prim_destroy(&r);
    if (ms) dnnl_memory_destroy(ms);
    fmr_free(w);
    return err;
}

/* dst = conv(src) with a k x k kernel (padding k/2), optional bias (key + ".bias"). */
static fmr_err conv(fmr_unetr *u, uplan *pl, const tens *src, tens *dst, int cout, int k, const char *key, int bias)
{
    if (pl->nmems + 4 > MAX_MEMS) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many memory objects");
    if (!dst->p) FMR_TRY(new_tens(pl, cout, src->h, src->w, dst));
    dnnl_memory_desc_t s, d, w, wany, bmd;
    FMR_TRY(md_nchw(pl, src, &s));
    FMR_TRY(md_nchw(pl, dst, &d));
    const dnnl_dim_t dw[4] = {cout, src->c, k, k}, db[1] = {cout}, st[2] = {1, 1}, pad[2] = {k / 2, k / 2};
    FMR_TRY(fmr_md_dense(&w, 4, dw));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, dnnl_f32, dnnl_format_tag_any), "describe conv weights");
    FMR_TRY(fmr_md_dense(&bmd, 1, db));
    dnnl_convolution_desc_t cd;
    FMR_DNNL(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &wany,
                                                bias ? &bmd : NULL, &d, st, pad, pad),
             "describe a convolution");
    op *o = next_op(pl);
    if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    FMR_TRY(fmr_prim_create(&o->pr, &cd, NULL, u->eng, "create a convolution"));
    char wk[200];
    snprintf(wk, sizeof wk, "%s.weight", key);
    const int64_t want[4] = {cout, src->c, k, k};
    dnnl_memory_t mw, ms, md, mb;
    FMR_TRY(load_weight(u, pl, wk, 4, want, &w, fmr_prim_md(&o->pr, dnnl_query_weights_md, 0), &mw));
    FMR_TRY(mem(u, pl, &s, src->p, &ms));
    FMR_TRY(mem(u, pl, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 3;
    if (bias) {
        snprintf(wk, sizeof wk, "%s.bias", key);
        const int64_t wb[1] = {cout};
        FMR_TRY(load_weight(u, pl, wk, 1, wb, &bmd, &bmd, &mb));
        o->args[o->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    }
    return FMR_OK;
}

/* dst = ConvTranspose2d(src), kernel 2, stride 2, no bias; PyTorch weight [in, out, 2, 2]. */
static fmr_err deconv(fmr_unetr *u, uplan *pl, const tens *src, tens *dst, int cout, const char *key)
{
    FMR_TRY(new_tens(pl, cout, 2 * src->h, 2 * src->w, dst));
    dnnl_memory_desc_t s, d, w, wany;
    FMR_TRY(md_nchw(pl, src, &s));
    FMR_TRY(md_nchw(pl, dst, &d));
    /* oneDNN's deconvolution weights are (out, in, kh, kw); PyTorch stores (in, out, kh, kw) */
    const dnnl_dim_t dw[4] = {cout, src->c, 2, 2}, sw[4] = {4, (dnnl_dim_t)cout * 4, 2, 1}, st[2] = {2, 2}, pad[2] = {0, 0};
    FMR_TRY(fmr_md_strided(&w, 4, dw, sw));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, dnnl_f32, dnnl_format_tag_any), "describe deconv weights");
    dnnl_deconvolution_desc_t dd;
    FMR_DNNL(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference, dnnl_deconvolution_direct, &s, &wany, NULL,
                                                  &d, st, pad, pad),
             "describe a transposed convolution");
    op *o = next_op(pl);
    if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    FMR_TRY(fmr_prim_create(&o->pr, &dd, NULL, u->eng, "create a transposed convolution"));
    char wk[200];
    snprintf(wk, sizeof wk, "%s.weight", key);
    const int64_t want[4] = {src->c, cout, 2, 2};
    dnnl_memory_t mw, ms, md;
    FMR_TRY(load_weight(u, pl, wk, 4, want, &w, fmr_prim_md(&o->pr, dnnl_query_weights_md, 0), &mw));
    FMR_TRY(mem(u, pl, &s, src->p, &ms));
    FMR_TRY(mem(u, pl, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 3;
    return FMR_OK;
}

/* In-place instance norm (eps 1e-5, no affine), optionally followed by LeakyReLU(0.01). */
static fmr_err inorm(fmr_unetr *u, uplan *pl, const tens *t, int lrelu)
{
    dnnl_memory_desc_t md;
    const dnnl_dim_t d[2] = {(dnnl_dim_t)pl->b * t->c, (dnnl_dim_t)t->h * t->w};
    FMR_TRY(fmr_md_dense(&md, 2, d));
    dnnl_layer_normalization_desc_t ld;
    FMR_DNNL(dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL, 1e-5f, 0),
             "describe instance norm");
    op *o = next_op(pl);
    if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    FMR_TRY(fmr_prim_create(&o->pr, &ld, NULL, u->eng, "create instance norm"));
    dnnl_memory_t m;
    FMR_TRY(mem(u, pl, &md, t->p, &m));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
    o->nargs = 2;
    if (lrelu) {
        dnnl_eltwise_desc_t ed;
        FMR_DNNL(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_relu, &md, 0.01f, 0.f),
                 "describe LeakyReLU");
        o = next_op(pl);
        if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
        FMR_TRY(fmr_prim_create(&o->pr, &ed, NULL, u->eng, "create LeakyReLU"));
        o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
        o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
        o->nargs = 2;
    }
    return FMR_OK;
}

/* a = lrelu(a + b), one binary primitive with an eltwise post-op. */
static fmr_err add_lrelu(fmr_unetr *u, uplan *pl, const tens *a, const tens *b)
{
    dnnl_memory_desc_t md;
    FMR_TRY(md_nchw(pl, a, &md));
    dnnl_binary_desc_t bd;
    FMR_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, &md, &md, &md), "describe the residual add");
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    FMR_DNNL(dnnl_primitive_attr_create(&attr), "create attributes");
    FMR_DNNL(dnnl_post_ops_create(&po), "create post-ops");
    dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.01f, 0.f);
    dnnl_primitive_attr_set_post_ops(attr, po);
    op *o = next_op(pl);
    fmr_err err = o ? fmr_prim_create(&o->pr, &bd, attr, u->eng, "create the residual add")
                    : fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    FMR_TRY(err);
    dnnl_memory_t ma, mb;
    FMR_TRY(mem(u, pl, &md, a->p, &ma));
    FMR_TRY(mem(u, pl, &md, b->p, &mb));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC_0, ma};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, mb};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, ma};
    o->nargs = 3;
    return FMR_OK;
}

/* dst = cat(a, b) over channels. */
static fmr_err concat(fmr_unetr *u, uplan *pl, const tens *a, const tens *b, tens *dst)
{
    FMR_TRY(new_tens(pl, a->c + b->c, a->h, a->w, dst));
    dnnl_memory_desc_t mds[2], md;
    FMR_TRY(md_nchw(pl, a, &mds[0]));
    FMR_TRY(md_nchw(pl, b, &mds[1]));
    FMR_TRY(md_nchw(pl, dst, &md));
    op *o = next_op(pl);
    if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    o->pr.p = NULL;
    FMR_DNNL(dnnl_concat_primitive_desc_create(&o->pr.pd, &md, 2, 1, mds, NULL, u->eng), "plan a concatenation");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create a concatenation");
    dnnl_memory_t m0, m1, m2;
    FMR_TRY(mem(u, pl, &mds[0], a->p, &m0));
    FMR_TRY(mem(u, pl, &mds[1], b->p, &m1));
    FMR_TRY(mem(u, pl, &md, dst->p, &m2));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC, m0};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + 1, m1};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, m2};
    o->nargs = 3;
    return FMR_OK;
}

/* MONAI's UnetResBlock: lrelu(IN(conv(lrelu(IN(conv(x))))) + residual). */
static fmr_err resblock(fmr_unetr *u, uplan *pl, const tens *x, int cout, const char *key, tens *out)
{
    char k1[200], k2[200], k3[200];
    snprintf(k1, sizeof k1, "%s.conv1", key);
    snprintf(k2, sizeof k2, "%s.conv2", key);
    snprintf(k3, sizeof k3, "%s.conv3", key);
    tens a = {0}, r = {0};
    FMR_TRY(conv(u, pl, x, &a, cout, 3, k1, 0));
    FMR_TRY(inorm(u, pl, &a, 1));
    *out = (tens){0};
    FMR_TRY(conv(u, pl, &a, out, cout, 3, k2, 0));
    FMR_TRY(inorm(u, pl, out, 0));
    if (x->c != cout) {
        FMR_TRY(conv(u, pl, x, &r, cout, 1, k3, 0));
        FMR_TRY(inorm(u, pl, &r, 0));
    } else {
        r = *x;
    }
    return add_lrelu(u, pl, out, &r);
}

/* Hidden state (b, 1 + G*G, D) -> token map (b, D, G, G), class token dropped. */
static fmr_err token_map(fmr_unetr *u, uplan *pl, int k, tens *dst)
{
    const int G = u->c.grid, D = u->c.width;
    FMR_TRY(new_tens(pl, D, G, G, dst));
    dnnl_memory_desc_t s, d;
    const dnnl_dim_t dims[4] = {pl->b, D, G, G};
    const dnnl_dim_t st[4] = {(dnnl_dim_t)(1 + G * G) * D, 1, (dnnl_dim_t)G * D, D};
    FMR_TRY(fmr_md_strided(&s, 4, dims, st));
    FMR_TRY(md_nchw(pl, dst, &d));
    op *o = next_op(pl);
    if (!o) return fmr_error(FMR_ERR_INTERNAL, "decoder plan: too many operations");
    FMR_DNNL(dnnl_reorder_primitive_desc_create(&o->pr.pd, &s, u->eng, &d, u->eng, NULL), "plan a token reshape");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create a token reshape");
    dnnl_memory_t md;
    FMR_TRY(mem(u, pl, &s, NULL, &pl->in_tap[k]));
    FMR_TRY(mem(u, pl, &d, dst->p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, pl->in_tap[k]};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, md};
    o->nargs = 2;
    return FMR_OK;
}

/* PrUp: ConvT(D -> c), then n x [ConvT(c -> c), ResBlock(c -> c)]. */
static fmr_err prup(fmr_unetr *u, uplan *pl, const tens *tok, int c, int n, const char *key, tens *out)
{
    char k[200];
    snprintf(k, sizeof k, "%s.transp_conv_init", key);
    FMR_TRY(deconv(u, pl, tok, out, c, k));
    for (int j = 0; j < n; j++) {
        tens up, r;
        snprintf(k, sizeof k, "%s.up.%d", key, j);
        FMR_TRY(deconv(u, pl, out, &up, c, k));
        snprintf(k, sizeof k, "%s.res.%d", key, j);
        FMR_TRY(resblock(u, pl, &up, c, k, &r));
        *out = r;
    }
    return FMR_OK;
}

/* Up: ResBlock(cat(ConvT(x), skip)). */
static fmr_err upblock(fmr_unetr *u, uplan *pl, const tens *x, const tens *skip, int c, const char *key, tens *out)
{
    char k[200];
    tens up, cat;
    snprintf(k, sizeof k, "%s.transp_conv", key);
    FMR_TRY(deconv(u, pl, x, &up, c, k));
    FMR_TRY(concat(u, pl, &up, skip, &cat));
    snprintf(k, sizeof k, "%s.res", key);
    return resblock(u, pl, &cat, c, k, out);
}

static fmr_err build(fmr_unetr *u, uplan *pl)
{
    const int F = u->c.feature_size, D = u->c.width, R = 16 * u->c.grid;
    tens img, tok[4], e1, e2, e3, e4, d3, d2, d1, d0, out = {0};
    FMR_TRY(new_tens(pl, 2, R, R, &img));
    dnnl_memory_desc_t md;
    FMR_TRY(md_nchw(pl, &img, &md));
    FMR_TRY(mem(u, pl, &md, NULL, &pl->in_img));
    {
        /* the caller's image is copied into the plan's own buffer by a reorder (plain copy) */
        op *o = next_op(pl);
        FMR_DNNL(dnnl_reorder_primitive_desc_create(&o->pr.pd, &md, u->eng, &md, u->eng, NULL), "plan an input copy");
        FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create an input copy");
        dnnl_memory_t m;
        FMR_TRY(mem(u, pl, &md, img.p, &m));
        o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, pl->in_img};
        o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, m};
        o->nargs = 2;
    }
    for (int k = 0; k < u->c.ntaps; k++) FMR_TRY(token_map(u, pl, k, &tok[k]));
    FMR_TRY(resblock(u, pl, &img, F, "enc1", &e1));
    FMR_TRY(prup(u, pl, &tok[0], 2 * F, 2, "enc2", &e2));
    FMR_TRY(prup(u, pl, &tok[1], 4 * F, 1, "enc3", &e3));
    FMR_TRY(prup(u, pl, &tok[2], 8 * F, 0, "enc4", &e4));
    const tens *bottom = &tok[u->c.ntaps == 4 ? 3 : 2];
    FMR_TRY(upblock(u, pl, bottom, &e4, 8 * F, "dec3", &d3));
    FMR_TRY(upblock(u, pl, &d3, &e3, 4 * F, "dec2", &d2));
    FMR_TRY(upblock(u, pl, &d2, &e2, 2 * F, "dec1", &d1));
    FMR_TRY(upblock(u, pl, &d1, &e1, F, "dec0", &d0));
    FMR_TRY(conv(u, pl, &d0, &out, 2, 1, "out", 1));
    (void)D;
    pl->out = out.p;
    return FMR_OK;
}

static void free_plan(uplan *pl)
{
    for (int i = 0; i < pl->nops; i++) fmr_prim_destroy(&pl->ops[i].pr);
    for (int i = 0; i < pl->nmems; i++) dnnl_memory_destroy(pl->mems[i]);
    for (int i = 0; i < pl->nbufs; i++) fmr_free(pl->bufs[i]);
    free(pl);
}

fmr_err fmr_unetr_create(const fmr_safetensors *st, const char *prefix, const fmr_unetr_config *c, fmr_unetr **out)
{
    *out = NULL;
    if (c->ntaps != 3 && c->ntaps != 4) return fmr_error(FMR_ERR_ARG, "the UNETR decoder takes 3 or 4 taps, got %d", c->ntaps);
    if (c->grid <= 0 || c->feature_size <= 0 || c->width <= 0)
        return fmr_error(FMR_ERR_ARG, "decoder grid %d, feature size %d, width %d must be positive", c->grid,
                         c->feature_size, c->width);
    fmr_unetr *u = calloc(1, sizeof *u);
    if (!u) return fmr_error(FMR_ERR_NOMEM, "out of memory (decoder)");
    u->st = st;
    u->c = *c;
    fmr_rng_seed(&u->rng, 12345);
    snprintf(u->prefix, sizeof u->prefix, "%s", prefix);
    fmr_err err = fmr_dnnl_acquire(&u->eng, &u->strm);
    if (err) {
        free(u);
        return err;
    }
    /* build a batch-1 plan now so that missing or mis-shaped tensors are reported at load */
    uplan *pl = calloc(1, sizeof *pl);
    if (!pl) err = fmr_error(FMR_ERR_NOMEM, "out of memory (decoder plan)");
    if (!err) {
        pl->b = 1;
        err = build(u, pl);
        if (err) free_plan(pl);
        else u->plans = pl;
    }
    if (err) {
        fmr_unetr_destroy(&u);
        return err;
    }
    *out = u;
    return FMR_OK;
}

void fmr_unetr_destroy(fmr_unetr **up)
{
    fmr_unetr *u = *up;
    if (!u) return;
    for (uplan *p = u->plans, *n; p; p = n) n = p->next, free_plan(p);
    if (u->eng) fmr_dnnl_release();
    free(u);
    *up = NULL;
}

fmr_err fmr_unetr_forward(fmr_unetr *u, int b, const float *image, const float *const *taps, float *out)
{
    uplan *pl = u->plans;
    while (pl && pl->b != b) pl = pl->next;
    if (!pl) {
        if (!(pl = calloc(1, sizeof *pl))) return fmr_error(FMR_ERR_NOMEM, "out of memory (decoder plan)");
        pl->b = b;
        fmr_err err = build(u, pl);
        if (err) {
            free_plan(pl);
            return err;
        }
        pl->next = u->plans, u->plans = pl;
    }
    FMR_DNNL(dnnl_memory_set_data_handle(pl->in_img, (void *)image), "bind the decoder input");
    for (int k = 0; k < u->c.ntaps; k++)
        FMR_DNNL(dnnl_memory_set_data_handle(pl->in_tap[k], (void *)taps[k]), "bind an encoder tap");
    for (int i = 0; i < pl->nops; i++)
        FMR_TRY(fmr_prim_run(&pl->ops[i].pr, u->strm, pl->ops[i].nargs, pl->ops[i].args, "run the decoder"));
    FMR_DNNL(dnnl_stream_wait(u->strm), "finish the decoder");
    const int R = 16 * u->c.grid;
    memcpy(out, pl->out, (size_t)b * 2 * R * R * sizeof(float));
    return FMR_OK;
}

/* The decoders' layer builder (convnet.h). Each tensor of a plan has one buffer in one oneDNN
 * layout; convolutions and transposed convolutions are planned with format_tag_any and their
 * choice becomes the layout of the tensors they produce, so a chain of layers runs on blocked
 * (nChw16c) tensors with reorders only where a layer asks for a different layout (network
 * inputs, the output).
 *
 * Instance norm: per image and channel over (h, w). oneDNN 2.6 has no instance or group
 * normalisation, but batch normalisation with statistics computed on the fly normalises each
 * channel over (batch, h, w); viewing (b, c, h, w) as (1, b*c, h, w) makes that per image and
 * channel. The view is the same memory for plain NCHW and for nChw16c/nChw8c when c is a
 * multiple of the block (channel n*c + j lands in block n*c/16 + j/16), which the code checks
 * before using it. The LeakyReLU that follows is one in-place eltwise pass (batch normalisation
 * fuses only a plain ReLU), the residual add carries its LeakyReLU as a post-op. */
#include "convnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/rng.h"
#include "dnnl_util.h"
#include <oneapi/dnnl/dnnl_debug.h>
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"

#define MAX_OPS 320
#define MAX_TENS 256
#define MAX_MEMS 1024
#define MAX_INPUTS 8

typedef struct {
    fmr_prim pr;
    dnnl_exec_arg_t args[4];
    int nargs;
    /* reps > 1: executed once per image, args[0] (in place) moved by step bytes each time */
    int reps;
    size_t step;
    char *base;
} op;

typedef struct {
    void *p;
    dnnl_memory_desc_t md;
    int c, h, w;
    int input_op; /* >= 0: filled by this input copy, whose destination may still change */
    int used;     /* read by a layer in its current layout */
    int alt;      /* a copy in another layout, or -1 */
} trec;

struct fmr_convnet {
    int b;
    int plain;             /* FMR_DECODER_PLAIN: the previous plain-NCHW plan */
    dnnl_data_type_t dt;   /* activations and weights */
    const fmr_safetensors *st;
    char prefix[128];
    fmr_rng rng;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    op ops[MAX_OPS];
    int nops;
    trec tens[MAX_TENS];
    int ntens;
    dnnl_memory_t mems[MAX_MEMS];
    int nmems;
    dnnl_memory_t inputs[MAX_INPUTS];
    dnnl_memory_desc_t input_src[MAX_INPUTS];
    int input_tens[MAX_INPUTS];
    int ninputs;
    double conv_flops; /* of the largest convolution, whose implementation is reported */
    const char *conv_impl;
};

#define FULL(what) fmr_error(FMR_ERR_INTERNAL, "network plan: too many %s", what)

int fmr_cn_batch(const fmr_convnet *n)
{
    return n->b;
}

int fmr_cn_plain_requested(void)
{
    const char *pl = getenv("FMR_DECODER_PLAIN");
    return pl && *pl && strcmp(pl, "0");
}

void fmr_cn_set_plain(fmr_convnet *n, int plain)
{
    if (!n->ntens) n->plain = plain, n->dt = plain ? dnnl_f32 : n->dt;
}

int fmr_cn_set_bf16(fmr_convnet *n)
{
    if (!n->ntens && !n->plain && fmr_cpu_has_bf16()) n->dt = dnnl_bf16;
    return n->dt == dnnl_bf16;
}

const char *fmr_cn_conv_impl(const fmr_convnet *n)
{
    return n->conv_impl ? n->conv_impl : "none";
}

fmr_err fmr_cn_create(fmr_convnet **out, int batch, const fmr_safetensors *st, const char *prefix,
                      uint64_t seed)
{
    *out = NULL;
    if (batch <= 0) return fmr_error(FMR_ERR_ARG, "network batch %d is not positive", batch);
    fmr_convnet *n = calloc(1, sizeof *n);
    if (!n) return fmr_error(FMR_ERR_NOMEM, "out of memory (network plan)");
    n->b = batch, n->st = st, n->dt = dnnl_f32;
    n->plain = fmr_cn_plain_requested();
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
    for (int i = 0; i < n->ntens; i++)
        fmr_free(n->tens[i].p);
    fmr_dnnl_release();
    free(n);
    *np = NULL;
}

static fmr_err md_plain(const fmr_convnet *n, int c, int h, int w, dnnl_data_type_t dt,
                        dnnl_memory_desc_t *md)
{
    const dnnl_dim_t d[4] = {n->b, c, h, w};
    return fmr_md_dense_dt(md, 4, d, dt);
}

/* What a layer asks for: any layout (blocked), or plain NCHW in the previous plan. */
static fmr_err md_any(const fmr_convnet *n, int c, int h, int w, dnnl_memory_desc_t *md)
{
    if (n->plain) return md_plain(n, c, h, w, dnnl_f32, md);
    const dnnl_dim_t d[4] = {n->b, c, h, w};
    FMR_DNNL(dnnl_memory_desc_init_by_tag(md, 4, d, n->dt, dnnl_format_tag_any),
             "describe an activation");
    return FMR_OK;
}

static fmr_err new_tens(fmr_convnet *n, int c, int h, int w, const dnnl_memory_desc_t *md,
                        fmr_cn_tens *t)
{
    if (n->ntens == MAX_TENS) return FULL("tensors");
    void *p = NULL;
    FMR_TRY(fmr_alloc(&p, dnnl_memory_desc_get_size(md), "network activations"));
    trec *r = &n->tens[n->ntens];
    *r = (trec){.p = p, .md = *md, .c = c, .h = h, .w = w, .input_op = -1, .alt = -1};
    *t = (fmr_cn_tens){.p = p, .c = c, .h = h, .w = w, .id = n->ntens++};
    return FMR_OK;
}

static fmr_err mem(fmr_convnet *n, const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *m)
{
    if (n->nmems == MAX_MEMS) return FULL("memory objects");
    FMR_TRY(fmr_mem(m, md, n->eng, ptr));
    n->mems[n->nmems++] = *m;
    return FMR_OK;
}

static op *next_op(fmr_convnet *n)
{
    return n->nops < MAX_OPS ? &n->ops[n->nops++] : NULL;
}

/* Appends a reorder src -> dst (memories on the tensors' buffers). */
static fmr_err add_reorder(fmr_convnet *n, const dnnl_memory_desc_t *smd, void *sp,
                           const dnnl_memory_desc_t *dmd, void *dp, op *o)
{
    if (!o) return FULL("operations");
    FMR_DNNL(dnnl_reorder_primitive_desc_create(&o->pr.pd, smd, n->eng, dmd, n->eng, NULL),
             "plan a layout change");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create a layout change");
    dnnl_memory_t ms, md;
    FMR_TRY(mem(n, smd, sp, &ms));
    FMR_TRY(mem(n, dmd, dp, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, md};
    o->nargs = 2;
    return FMR_OK;
}

/* The tensor t in layout want: t itself, its copy, its input copy re-targeted (nothing has read
 * it yet), or a new copy made by a reorder appended here. *id receives the tensor to read. */
static fmr_err in_layout(fmr_convnet *n, const fmr_cn_tens *t, const dnnl_memory_desc_t *want,
                         int *id)
{
    trec *r = &n->tens[t->id];
    if (dnnl_memory_desc_equal(&r->md, want)) {
        r->used = 1, *id = t->id;
        return FMR_OK;
    }
    if (r->alt >= 0 && dnnl_memory_desc_equal(&n->tens[r->alt].md, want)) {
        n->tens[r->alt].used = 1, *id = r->alt;
        return FMR_OK;
    }
    if (r->input_op >= 0 && !r->used) {
        /* the input copy writes straight into the layout the first reader wants */
        op *o = &n->ops[r->input_op];
        int slot = 0;
        while (slot < n->ninputs - 1 && n->input_tens[slot] != t->id)
            slot++;
        fmr_prim_destroy(&o->pr);
        fmr_free(r->p), r->p = NULL;
        FMR_TRY(fmr_alloc(&r->p, dnnl_memory_desc_get_size(want), "network activations"));
        r->md = *want;
        FMR_DNNL(dnnl_reorder_primitive_desc_create(&o->pr.pd, &n->input_src[slot], n->eng, want,
                                                    n->eng, NULL),
                 "plan an input copy");
        FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create an input copy");
        dnnl_memory_t md;
        FMR_TRY(mem(n, want, r->p, &md));
        o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, md};
        r->used = 1, *id = t->id;
        return FMR_OK;
    }
    fmr_cn_tens c;
    FMR_TRY(new_tens(n, r->c, r->h, r->w, want, &c));
    r = &n->tens[t->id];
    r->used = 1, r->alt = c.id, n->tens[c.id].used = 1;
    FMR_TRY(add_reorder(n, &r->md, r->p, want, n->tens[c.id].p, next_op(n)));
    *id = c.id;
    return FMR_OK;
}

/* Reads weight `key` (PyTorch layout and shape want[0..nd)), described in oneDNN's logical dims
 * by src_md, and reorders it into a new memory of layout dmd (the data type included). */
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
        err = fmr_st_read_weights(n->st, full, nd, want, w);
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
    dnnl_memory_desc_t s, d;
    const dnnl_dim_t dd[4] = {dims[0], dims[1], dims[2], dims[3]},
                     ss[4] = {strides[0], strides[1], strides[2], strides[3]};
    FMR_TRY(fmr_md_strided(&s, 4, dd, ss));
    FMR_TRY(md_plain(n, (int)dims[1], (int)dims[2], (int)dims[3], n->dt, &d));
    FMR_TRY(new_tens(n, (int)dims[1], (int)dims[2], (int)dims[3], &d, t));
    const int k = n->ninputs;
    op *o = next_op(n);
    FMR_TRY(add_reorder(n, &s, NULL, &d, n->tens[t->id].p, o));
    n->tens[t->id].input_op = (int)(o - n->ops);
    n->input_src[k] = s;
    n->inputs[k] = o->args[0].memory;
    n->input_tens[k] = t->id;
    *slot = n->ninputs++;
    return FMR_OK;
}

fmr_err fmr_cn_bind(fmr_convnet *n, int slot, const void *ptr)
{
    if (slot < 0 || slot >= n->ninputs)
        return fmr_error(FMR_ERR_INTERNAL, "network input %d does not exist", slot);
    /* the input copy may have been re-planned: bind its current source memory */
    const op *o = &n->ops[n->tens[n->input_tens[slot]].input_op];
    FMR_DNNL(dnnl_memory_set_data_handle(o->args[0].memory, (void *)ptr), "bind a network input");
    return FMR_OK;
}

/* The (1, b*c, h, w) view of tensor r in the same memory, if its layout allows (see the top):
 * returns 1. Channels-last (acdb) has no such view, but each image is a (1, c, h, w) acdb tensor
 * on its own: returns 2 with that view (instance norm then runs once per image). 0: neither. */
static int per_channel_view(const fmr_convnet *n, const trec *r, dnnl_memory_desc_t *view)
{
    {
        const dnnl_dim_t d[4] = {n->b, r->c, r->h, r->w}, v1[4] = {1, r->c, r->h, r->w};
        dnnl_memory_desc_t m;
        if (dnnl_memory_desc_init_by_tag(&m, 4, d, r->md.data_type, dnnl_acdb) == dnnl_success &&
            dnnl_memory_desc_equal(&m, &r->md))
            return dnnl_memory_desc_init_by_tag(view, 4, v1, r->md.data_type, dnnl_acdb) ==
                           dnnl_success
                       ? 2
                       : 0;
    }
    static const struct {
        dnnl_format_tag_t tag;
        int blk;
    } f[] = {{dnnl_abcd, 1}, {dnnl_aBcd16b, 16}}; /* not 8-blocks: oneDNN 2.6's binary jit
                                                 * kernel crashed on them on AVX-512 */
    const dnnl_dim_t d[4] = {n->b, r->c, r->h, r->w}, v[4] = {1, (dnnl_dim_t)n->b * r->c, r->h, r->w};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        dnnl_memory_desc_t m;
        if (r->c % f[i].blk) continue;
        if (dnnl_memory_desc_init_by_tag(&m, 4, d, r->md.data_type, f[i].tag) != dnnl_success)
            continue;
        if (!dnnl_memory_desc_equal(&m, &r->md)) continue;
        return dnnl_memory_desc_init_by_tag(view, 4, v, r->md.data_type, f[i].tag) == dnnl_success;
    }
    return 0;
}

/* A convolution-like layer planned with any layouts: the source brought into the layout it
 * chose, weights packed, dst a new tensor in its layout. deconv: ConvTranspose2d 2x2 stride 2. */
static fmr_err conv_like(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout,
                         int k, const char *key, int bias, int deconv)
{
    const int oh = deconv ? 2 * src->h : src->h, ow = deconv ? 2 * src->w : src->w;
    dnnl_memory_desc_t s, d, w, wany, bmd;
    FMR_TRY(md_any(n, src->c, src->h, src->w, &s));
    FMR_TRY(md_any(n, cout, oh, ow, &d));
    const dnnl_dim_t db[1] = {cout};
    FMR_TRY(fmr_md_dense(&bmd, 1, db));
    const dnnl_data_type_t wdt = n->plain ? dnnl_f32 : n->dt;
    fmr_prim pr = {0};
    if (!deconv) {
        const dnnl_dim_t dw[4] = {cout, src->c, k, k}, st[2] = {1, 1}, pad[2] = {k / 2, k / 2};
        FMR_TRY(fmr_md_dense(&w, 4, dw));
        FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, wdt, dnnl_format_tag_any),
                 "describe conv weights");
        dnnl_convolution_desc_t cd;
        FMR_DNNL(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                    dnnl_convolution_direct, &s, &wany,
                                                    bias ? &bmd : NULL, &d, st, pad, pad),
                 "describe a convolution");
        FMR_TRY(fmr_prim_create(&pr, &cd, NULL, n->eng, "create a convolution"));
    } else {
        /* oneDNN's deconvolution weights are (out, in, kh, kw); PyTorch stores (in, out, kh, kw) */
        const dnnl_dim_t dw[4] = {cout, src->c, 2, 2}, sw[4] = {4, (dnnl_dim_t)cout * 4, 2, 1},
                         st[2] = {2, 2}, pad[2] = {0, 0};
        FMR_TRY(fmr_md_strided(&w, 4, dw, sw));
        FMR_DNNL(dnnl_memory_desc_init_by_tag(&wany, 4, dw, wdt, dnnl_format_tag_any),
                 "describe deconv weights");
        dnnl_deconvolution_desc_t dd;
        FMR_DNNL(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                      dnnl_deconvolution_direct, &s, &wany, NULL,
                                                      &d, st, pad, pad),
                 "describe a transposed convolution");
        FMR_TRY(fmr_prim_create(&pr, &dd, NULL, n->eng, "create a transposed convolution"));
    }
    /* oneDNN's choice stands unless instance norm could not read its output in one pass (e.g.
     * channels-last, which brgconv prefers on AMX machines: per-image batch normalisation on
     * it measured ~4x slower than one pass on blocks): then the convolution is planned again
     * on 16-channel blocks (plain NCHW for other channel counts) */
    if (!n->plain) {
        trec probe = {.md = *fmr_prim_md(&pr, dnnl_query_dst_md, 0), .c = cout, .h = oh, .w = ow};
        dnnl_memory_desc_t view;
        if (per_channel_view(n, &probe, &view) != 1) {
            const int blk = cout % 16 == 0 ? 16 : 1;
            const dnnl_format_tag_t tag = blk == 16 ? dnnl_aBcd16b : dnnl_abcd;
            const dnnl_dim_t ds[4] = {n->b, src->c, src->h, src->w}, dd4[4] = {n->b, cout, oh, ow};
            dnnl_memory_desc_t s2 = s, d2;
            if (blk > 1 && src->c % blk == 0)
                FMR_DNNL(dnnl_memory_desc_init_by_tag(&s2, 4, ds, n->dt, tag), "describe a source");
            FMR_DNNL(dnnl_memory_desc_init_by_tag(&d2, 4, dd4, n->dt, tag), "describe a result");
            fmr_prim p2 = {0};
            fmr_err e2 = FMR_OK;
            const dnnl_dim_t one[2] = {1, 1}, two[2] = {2, 2}, pk[2] = {k / 2, k / 2},
                             zero[2] = {0, 0};
            if (!deconv) {
                dnnl_convolution_desc_t cd;
                e2 = fmr_dnnl_status(dnnl_convolution_forward_desc_init(
                                         &cd, dnnl_forward_inference, dnnl_convolution_direct, &s2,
                                         &wany, bias ? &bmd : NULL, &d2, one, pk, pk),
                                     "describe a convolution", __FILE__, __LINE__);
                if (!e2) e2 = fmr_prim_create(&p2, &cd, NULL, n->eng, "create a convolution");
            } else {
                dnnl_deconvolution_desc_t dd;
                e2 = fmr_dnnl_status(dnnl_deconvolution_forward_desc_init(
                                         &dd, dnnl_forward_inference, dnnl_deconvolution_direct,
                                         &s2, &wany, NULL, &d2, two, zero, zero),
                                     "describe a transposed convolution", __FILE__, __LINE__);
                if (!e2) e2 = fmr_prim_create(&p2, &dd, NULL, n->eng, "create a convolution");
            }
            if (!e2) fmr_prim_destroy(&pr), pr = p2;
        }
    }
    int sid;
    fmr_err err = in_layout(n, src, fmr_prim_md(&pr, dnnl_query_src_md, 0), &sid);
    if (!err) err = new_tens(n, cout, oh, ow, fmr_prim_md(&pr, dnnl_query_dst_md, 0), dst);
    op *o = err ? NULL : next_op(n);
    if (!err && !o) err = FULL("operations");
    if (err) {
        fmr_prim_destroy(&pr);
        return err;
    }
    o->pr = pr;
    const double flops = 2.0 * n->b * cout * src->c * k * k * (double)oh * ow / (deconv ? 4 : 1);
    if (!deconv && flops > n->conv_flops) n->conv_flops = flops, n->conv_impl = fmr_prim_impl(&pr);
    char wk[200];
    snprintf(wk, sizeof wk, "%s.weight", key);
    const int64_t want_c[4] = {cout, src->c, k, k}, want_d[4] = {src->c, cout, 2, 2};
    dnnl_memory_t mw, ms, md, mb;
    FMR_TRY(load_weight(n, wk, 4, deconv ? want_d : want_c, &w,
                        fmr_prim_md(&o->pr, dnnl_query_weights_md, 0), &mw));
    FMR_TRY(mem(n, &n->tens[sid].md, n->tens[sid].p, &ms));
    FMR_TRY(mem(n, &n->tens[dst->id].md, n->tens[dst->id].p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    o->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 3;
    if (bias) {
        snprintf(wk, sizeof wk, "%s.bias", key);
        const int64_t wb[1] = {cout};
        FMR_TRY(load_weight(n, wk, 1, wb, &bmd, fmr_prim_md(&o->pr, dnnl_query_weights_md, 1),
                            &mb));
        o->args[o->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    }
    return FMR_OK;
}

fmr_err fmr_cn_conv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout, int k,
                    const char *key, int bias)
{
    return conv_like(n, src, dst, cout, k, key, bias, 0);
}

fmr_err fmr_cn_deconv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout,
                      const char *key)
{
    return conv_like(n, src, dst, cout, 2, key, 0, 1);
}

fmr_err fmr_cn_inorm(fmr_convnet *n, const fmr_cn_tens *t, float slope)
{
    trec *r = &n->tens[t->id];
    dnnl_memory_desc_t md;
    op *o = next_op(n);
    if (!o) return FULL("operations");
    if (n->plain) { /* the previous plan: layer normalisation over (b*c, h*w) rows */
        const dnnl_dim_t d[2] = {(dnnl_dim_t)n->b * t->c, (dnnl_dim_t)t->h * t->w};
        FMR_TRY(fmr_md_dense(&md, 2, d));
        dnnl_layer_normalization_desc_t ld;
        FMR_DNNL(dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md,
                                                            NULL, 1e-5f, 0),
                 "describe instance norm");
        FMR_TRY(fmr_prim_create(&o->pr, &ld, NULL, n->eng, "create instance norm"));
    } else {
        if (!per_channel_view(n, r, &md)) {
            /* e.g. 4 channels in a 16-channel block: from here on the tensor is plain NCHW
             * (its old buffer stays with the layers that wrote it) */
            n->nops--; /* o is re-taken after the copy */
            dnnl_memory_desc_t pm;
            FMR_TRY(md_plain(n, t->c, t->h, t->w, r->md.data_type, &pm));
            fmr_cn_tens c;
            FMR_TRY(new_tens(n, t->c, t->h, t->w, &pm, &c));
            r = &n->tens[t->id];
            FMR_TRY(add_reorder(n, &r->md, r->p, &pm, n->tens[c.id].p, next_op(n)));
            const trec old = *r;
            *r = n->tens[c.id], n->tens[c.id] = old;
            r->alt = -1, n->tens[c.id].alt = -1, n->tens[c.id].input_op = -1;
            if (!(o = next_op(n))) return FULL("operations");
            if (!per_channel_view(n, r, &md))
                return fmr_error(FMR_ERR_INTERNAL, "instance norm: no per-channel view");
        }
        if (per_channel_view(n, r, &md) == 2) {
            o->reps = n->b, o->base = r->p;
            o->step = dnnl_memory_desc_get_size(&md);
        }
        dnnl_batch_normalization_desc_t bd;
        FMR_DNNL(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &md,
                                                            1e-5f, 0),
                 "describe instance norm");
        FMR_TRY(fmr_prim_create(&o->pr, &bd, NULL, n->eng, "create instance norm"));
    }
    r->used = 1;
    dnnl_memory_t m;
    FMR_TRY(mem(n, &md, r->p, &m));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
    o->nargs = 2;
    if (slope >= 0) {
        if (o->reps > 1) { /* the activation over the whole tensor at once */
            md = r->md;
            FMR_TRY(mem(n, &md, r->p, &m));
        }
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
    const dnnl_memory_desc_t md = n->tens[a->id].md;
    int bid;
    FMR_TRY(in_layout(n, b, &md, &bid));
    n->tens[a->id].used = 1;
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
    FMR_TRY(mem(n, &md, n->tens[a->id].p, &ma));
    FMR_TRY(mem(n, &md, n->tens[bid].p, &mb));
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
    /* both parts in the skip's (second part's) layout, which the convolutions producing it
     * chose and the convolution reading the result will want; the result in the layout oneDNN
     * picks for it (the parts' own) */
    int aid;
    FMR_TRY(in_layout(n, a, &n->tens[b->id].md, &aid));
    n->tens[b->id].used = 1;
    const int bid = b->id;
    dnnl_memory_desc_t mds[2] = {n->tens[aid].md, n->tens[bid].md};
    op *o = next_op(n);
    if (!o) return FULL("operations");
    dnnl_memory_desc_t any;
    FMR_TRY(md_any(n, a->c + b->c, a->h, a->w, &any));
    FMR_DNNL(dnnl_concat_primitive_desc_create(&o->pr.pd, n->plain ? &any : NULL, 2, 1, mds, NULL,
                                               n->eng),
             "plan a concatenation");
    FMR_DNNL(dnnl_primitive_create(&o->pr.p, o->pr.pd), "create a concatenation");
    FMR_TRY(new_tens(n, a->c + b->c, a->h, a->w, fmr_prim_md(&o->pr, dnnl_query_dst_md, 0), dst));
    dnnl_memory_t m0, m1, m2;
    FMR_TRY(mem(n, &mds[0], n->tens[aid].p, &m0));
    FMR_TRY(mem(n, &mds[1], n->tens[bid].p, &m1));
    FMR_TRY(mem(n, &n->tens[dst->id].md, n->tens[dst->id].p, &m2));
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
    const dnnl_memory_desc_t s = n->tens[src->id].md;
    n->tens[src->id].used = 1;
    dnnl_memory_desc_t d;
    FMR_TRY(md_any(n, src->c, src->h / 2, src->w / 2, &d));
    const dnnl_dim_t st[2] = {2, 2}, k[2] = {2, 2}, dil[2] = {0, 0}, pad[2] = {0, 0};
    dnnl_pooling_v2_desc_t pd;
    FMR_DNNL(dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference,
                                               dnnl_pooling_avg_exclude_padding, &s, &d, st, k, dil,
                                               pad, pad),
             "describe average pooling");
    op *o = next_op(n);
    if (!o) return FULL("operations");
    FMR_TRY(fmr_prim_create(&o->pr, &pd, NULL, n->eng, "create average pooling"));
    FMR_TRY(new_tens(n, src->c, src->h / 2, src->w / 2, fmr_prim_md(&o->pr, dnnl_query_dst_md, 0),
                     dst));
    dnnl_memory_t ms, md;
    FMR_TRY(mem(n, &s, n->tens[src->id].p, &ms));
    FMR_TRY(mem(n, &n->tens[dst->id].md, n->tens[dst->id].p, &md));
    o->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    o->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    o->nargs = 2;
    return FMR_OK;
}

fmr_err fmr_cn_output(fmr_convnet *n, fmr_cn_tens *t)
{
    dnnl_memory_desc_t plain;
    FMR_TRY(md_plain(n, t->c, t->h, t->w, dnnl_f32, &plain));
    int id;
    FMR_TRY(in_layout(n, t, &plain, &id));
    t->id = id, t->p = n->tens[id].p;
    return FMR_OK;
}

fmr_err fmr_cn_run(fmr_convnet *n)
{
    for (int i = 0; i < n->nops; i++) {
        const op *o = &n->ops[i];
        if (o->reps > 1) {
            for (int r = 0; r < o->reps; r++) {
                FMR_DNNL(dnnl_memory_set_data_handle(o->args[0].memory, o->base + r * o->step),
                         "bind an image");
                FMR_TRY(fmr_prim_run(&o->pr, n->strm, o->nargs, o->args, "run a network layer"));
            }
            continue;
        }
        if (getenv("FMR_CN_DEBUG")) {
            const char *k = NULL;
            dnnl_primitive_desc_query(o->pr.pd, dnnl_query_impl_info_str, 0, (void *)&k);
            fprintf(stderr, "op %d: %s\n", i, k ? k : "?");
            for (int a = 0; a < o->nargs; a++) {
                const dnnl_memory_desc_t *m;
                dnnl_memory_get_memory_desc(o->args[a].memory, &m);
                void *h = NULL;
                dnnl_memory_get_data_handle(o->args[a].memory, &h);
                fprintf(stderr, "   arg %d: nd %d dims %ld %ld %ld %ld str1 %ld blk %d/%ld size %zu ptr %p\n",
                        o->args[a].arg, m->ndims, (long)m->dims[0], (long)m->dims[1],
                        (long)m->dims[2], (long)m->dims[3], (long)m->format_desc.blocking.strides[1],
                        m->format_desc.blocking.inner_nblks,
                        (long)m->format_desc.blocking.inner_blks[0], dnnl_memory_desc_get_size(m), h);
            }
        }
        FMR_TRY(fmr_prim_run(&o->pr, n->strm, o->nargs, o->args, "run a network layer"));
    }
    FMR_DNNL(dnnl_stream_wait(n->strm), "finish a network");
    return FMR_OK;
}

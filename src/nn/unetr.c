/* The trainable UNETR-style decoder of the unrolled network (docs/model.md, MONAI's blocks in
 * 2-D), built with the convnet layer functions. One plan per batch size. */
#include "fmrecon/decoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnet.h"
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"

#define LRELU 0.01f /* MONAI UnetResBlock's LeakyReLU slope */

typedef struct uplan {
    fmr_convnet *net;
    int in_img, in_tap[4];
    fmr_cn_tens out;
    struct uplan *next;
} uplan;

struct fmr_unetr {
    const fmr_safetensors *st;
    char prefix[128];
    fmr_unetr_config c;
    int bf16, plain; /* plain: FMR_DECODER_PLAIN at creation (the previous plan) */
    uplan *plans;
};

/* MONAI's UnetResBlock: lrelu(IN(conv(lrelu(IN(conv(x))))) + residual). */
static fmr_err resblock(fmr_convnet *n, const fmr_cn_tens *x, int cout, const char *key,
                        fmr_cn_tens *out)
{
    char k1[200], k2[200], k3[200];
    snprintf(k1, sizeof k1, "%s.conv1", key);
    snprintf(k2, sizeof k2, "%s.conv2", key);
    snprintf(k3, sizeof k3, "%s.conv3", key);
    fmr_cn_tens a = {0}, r = {0};
    FMR_TRY(fmr_cn_conv(n, x, &a, cout, 3, k1, 0));
    FMR_TRY(fmr_cn_inorm(n, &a, LRELU));
    *out = (fmr_cn_tens){0};
    FMR_TRY(fmr_cn_conv(n, &a, out, cout, 3, k2, 0));
    FMR_TRY(fmr_cn_inorm(n, out, -1));
    if (x->c != cout) {
        FMR_TRY(fmr_cn_conv(n, x, &r, cout, 1, k3, 0));
        FMR_TRY(fmr_cn_inorm(n, &r, -1));
    } else {
        r = *x;
    }
    return fmr_cn_add_lrelu(n, out, &r, LRELU);
}

/* PrUp: ConvT(D -> c), then n x [ConvT(c -> c), ResBlock(c -> c)]. */
static fmr_err prup(fmr_convnet *n, const fmr_cn_tens *tok, int c, int extra, const char *key,
                    fmr_cn_tens *out)
{
    char k[200];
    snprintf(k, sizeof k, "%s.transp_conv_init", key);
    FMR_TRY(fmr_cn_deconv(n, tok, out, c, k));
    for (int j = 0; j < extra; j++) {
        fmr_cn_tens up, r;
        snprintf(k, sizeof k, "%s.up.%d", key, j);
        FMR_TRY(fmr_cn_deconv(n, out, &up, c, k));
        snprintf(k, sizeof k, "%s.res.%d", key, j);
        FMR_TRY(resblock(n, &up, c, k, &r));
        *out = r;
    }
    return FMR_OK;
}

/* Up: ResBlock(cat(ConvT(x), skip)) - the upsampled tensor first, as MONAI. */
static fmr_err upblock(fmr_convnet *n, const fmr_cn_tens *x, const fmr_cn_tens *skip, int c,
                       const char *key, fmr_cn_tens *out)
{
    char k[200];
    fmr_cn_tens up, cat;
    snprintf(k, sizeof k, "%s.transp_conv", key);
    FMR_TRY(fmr_cn_deconv(n, x, &up, c, k));
    FMR_TRY(fmr_cn_concat(n, &up, skip, &cat));
    snprintf(k, sizeof k, "%s.res", key);
    return resblock(n, &cat, c, k, out);
}

static fmr_err build(const fmr_unetr *u, uplan *pl)
{
    fmr_convnet *n = pl->net;
    const int F = u->c.feature_size, D = u->c.width, G = u->c.grid, R = 16 * G;
    const int64_t b = fmr_cn_batch(n);
    fmr_cn_tens img, tok[4], e1, e2, e3, e4, d3, d2, d1, d0;
    const int64_t di[4] = {b, 2, R, R}, si[4] = {2LL * R * R, (int64_t)R * R, R, 1};
    FMR_TRY(fmr_cn_input(n, di, si, &img, &pl->in_img));
    /* hidden states (b, 1 + G*G, D) read as token maps (b, D, G, G), class token skipped by the
     * strides; the slot's pointer is bound one token past the start */
    const int64_t dt[4] = {b, D, G, G}, stt[4] = {(int64_t)(1 + G * G) * D, 1, (int64_t)G * D, D};
    for (int k = 0; k < u->c.ntaps; k++)
        FMR_TRY(fmr_cn_input(n, dt, stt, &tok[k], &pl->in_tap[k]));
    FMR_TRY(resblock(n, &img, F, "enc1", &e1));
    FMR_TRY(prup(n, &tok[0], 2 * F, 2, "enc2", &e2));
    FMR_TRY(prup(n, &tok[1], 4 * F, 1, "enc3", &e3));
    FMR_TRY(prup(n, &tok[2], 8 * F, 0, "enc4", &e4));
    const fmr_cn_tens *bottom = &tok[u->c.ntaps == 4 ? 3 : 2];
    FMR_TRY(upblock(n, bottom, &e4, 8 * F, "dec3", &d3));
    FMR_TRY(upblock(n, &d3, &e3, 4 * F, "dec2", &d2));
    FMR_TRY(upblock(n, &d2, &e2, 2 * F, "dec1", &d1));
    FMR_TRY(upblock(n, &d1, &e1, F, "dec0", &d0));
    pl->out = (fmr_cn_tens){0};
    FMR_TRY(fmr_cn_conv(n, &d0, &pl->out, 2, 1, "out", 1));
    return fmr_cn_output(n, &pl->out);
}

static void free_plan(uplan *pl)
{
    fmr_cn_destroy(&pl->net);
    free(pl);
}

static fmr_err get_plan(fmr_unetr *u, int b, uplan **out)
{
    for (uplan *p = u->plans; p; p = p->next)
        if (fmr_cn_batch(p->net) == b) {
            *out = p;
            return FMR_OK;
        }
    uplan *pl = calloc(1, sizeof *pl);
    if (!pl) return fmr_error(FMR_ERR_NOMEM, "out of memory (decoder plan)");
    fmr_err err = fmr_cn_create(&pl->net, b, u->st, u->prefix, 12345);
    if (!err) fmr_cn_set_plain(pl->net, u->plain);
    if (!err && u->bf16) fmr_cn_set_bf16(pl->net);
    if (!err) err = build(u, pl);
    if (err) {
        free_plan(pl);
        return err;
    }
    pl->next = u->plans, u->plans = pl;
    *out = pl;
    return FMR_OK;
}

fmr_err fmr_unetr_create(const fmr_safetensors *st, const char *prefix, const fmr_unetr_config *c,
                         fmr_unetr **out)
{
    *out = NULL;
    if (c->ntaps != 3 && c->ntaps != 4)
        return fmr_error(FMR_ERR_ARG, "the UNETR decoder takes 3 or 4 taps, got %d", c->ntaps);
    if (c->grid <= 0 || c->feature_size <= 0 || c->width <= 0)
        return fmr_error(FMR_ERR_ARG, "decoder grid %d, feature size %d, width %d must be positive",
                         c->grid, c->feature_size, c->width);
    fmr_unetr *u = calloc(1, sizeof *u);
    if (!u) return fmr_error(FMR_ERR_NOMEM, "out of memory (decoder)");
    u->st = st;
    u->c = *c;
    u->plain = fmr_cn_plain_requested();
    snprintf(u->prefix, sizeof u->prefix, "%s", prefix);
    /* a batch-1 plan now, so that missing or mis-shaped tensors are reported at load */
    uplan *pl;
    fmr_err err = get_plan(u, 1, &pl);
    if (err) {
        fmr_unetr_destroy(&u);
        return err;
    }
    *out = u;
    return FMR_OK;
}

int fmr_unetr_set_bf16(fmr_unetr *u, int on)
{
    on = on && fmr_cpu_has_bf16();
    if (on != u->bf16) {
        for (uplan *p = u->plans, *n; p; p = n)
            n = p->next, free_plan(p);
        u->plans = NULL;
        u->bf16 = on;
    }
    return u->bf16;
}

fmr_err fmr_unetr_impl(fmr_unetr *u, int b, const char **impl)
{
    uplan *pl;
    FMR_TRY(get_plan(u, b, &pl));
    *impl = fmr_cn_conv_impl(pl->net);
    return FMR_OK;
}

void fmr_unetr_destroy(fmr_unetr **up)
{
    fmr_unetr *u = *up;
    if (!u) return;
    for (uplan *p = u->plans, *n; p; p = n)
        n = p->next, free_plan(p);
    free(u);
    *up = NULL;
}

fmr_err fmr_unetr_forward(fmr_unetr *u, int b, const float *image, const float *const *taps,
                          float *out)
{
    uplan *pl;
    FMR_TRY(get_plan(u, b, &pl));
    FMR_TRY(fmr_cn_bind(pl->net, pl->in_img, image));
    for (int k = 0; k < u->c.ntaps; k++)
        FMR_TRY(fmr_cn_bind(pl->net, pl->in_tap[k], taps[k] + u->c.width));
    FMR_TRY(fmr_cn_run(pl->net));
    const int R = 16 * u->c.grid;
    memcpy(out, pl->out.p, (size_t)b * 2 * R * R * sizeof(float));
    return FMR_OK;
}

/* fastMRI's U-Net (facebookresearch/fastMRI fastmri/models/unet.py, the regulariser inside
 * E2E-VarNet): ConvBlock = [conv3x3, IN, LeakyReLU(0.2)] x 2 (Dropout is identity at
 * inference), 2x2 average pooling down, TransposeConvBlock = ConvT2x2 + IN + LeakyReLU(0.2) up,
 * skip concatenation (upsampled first), a final 1x1 convolution with bias. Key names follow the
 * PyTorch module's state_dict (Sequential indices 0 and 4 are the convolutions). */
#include "unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnet.h"

#define LRELU 0.2f /* fastMRI ConvBlock / TransposeConvBlock */
#define MAX_POOLS 8

typedef struct plan {
    fmr_convnet *net;
    int h, w, in;
    fmr_cn_tens out;
    struct plan *next;
} plan;

struct fmr_unet {
    const fmr_safetensors *st;
    char prefix[128];
    int chans, pools, plain; /* plain: FMR_DECODER_PLAIN at creation (the previous plan) */
    plan *plans;
};

static fmr_err convblock(fmr_convnet *n, const fmr_cn_tens *x, int cout, const char *key,
                         fmr_cn_tens *out)
{
    char k[200];
    fmr_cn_tens a = {0};
    snprintf(k, sizeof k, "%s.layers.0", key);
    FMR_TRY(fmr_cn_conv(n, x, &a, cout, 3, k, 0));
    FMR_TRY(fmr_cn_inorm(n, &a, LRELU));
    *out = (fmr_cn_tens){0};
    snprintf(k, sizeof k, "%s.layers.4", key);
    FMR_TRY(fmr_cn_conv(n, &a, out, cout, 3, k, 0));
    return fmr_cn_inorm(n, out, LRELU);
}

static fmr_err build(const fmr_unet *u, plan *p)
{
    fmr_convnet *n = p->net;
    const int64_t b = fmr_cn_batch(n);
    fmr_cn_tens x, skip[MAX_POOLS], t;
    const int64_t d[4] = {b, 2, p->h, p->w},
                  s[4] = {2LL * p->h * p->w, (int64_t)p->h * p->w, p->w, 1};
    FMR_TRY(fmr_cn_input(n, d, s, &x, &p->in));
    int ch = u->chans;
    char k[200];
    for (int i = 0; i < u->pools; i++) {
        snprintf(k, sizeof k, "down_sample_layers.%d", i);
        FMR_TRY(convblock(n, &x, ch, k, &skip[i]));
        FMR_TRY(fmr_cn_avgpool(n, &skip[i], &x));
        if (i < u->pools - 1) ch *= 2;
    }
    FMR_TRY(convblock(n, &x, 2 * ch, "conv", &t));
    for (int i = 0; i < u->pools; i++) {
        fmr_cn_tens up, cat;
        snprintf(k, sizeof k, "up_transpose_conv.%d.layers.0", i);
        FMR_TRY(fmr_cn_deconv(n, &t, &up, ch, k));
        FMR_TRY(fmr_cn_inorm(n, &up, LRELU));
        FMR_TRY(fmr_cn_concat(n, &up, &skip[u->pools - 1 - i], &cat));
        if (i < u->pools - 1) {
            snprintf(k, sizeof k, "up_conv.%d", i);
            FMR_TRY(convblock(n, &cat, ch, k, &t));
            ch /= 2;
        } else {
            snprintf(k, sizeof k, "up_conv.%d.0", i);
            FMR_TRY(convblock(n, &cat, ch, k, &t));
            snprintf(k, sizeof k, "up_conv.%d.1", i);
            p->out = (fmr_cn_tens){0};
            FMR_TRY(fmr_cn_conv(n, &t, &p->out, 2, 1, k, 1));
            FMR_TRY(fmr_cn_output(n, &p->out));
        }
    }
    return FMR_OK;
}

static void free_plan(plan *p)
{
    fmr_cn_destroy(&p->net);
    free(p);
}

static fmr_err get_plan(fmr_unet *u, int b, int h, int w, plan **out)
{
    for (plan *p = u->plans; p; p = p->next)
        if (fmr_cn_batch(p->net) == b && p->h == h && p->w == w) {
            *out = p;
            return FMR_OK;
        }
    const int m = 1 << u->pools;
    if (h <= 0 || w <= 0 || h % m || w % m)
        return fmr_error(FMR_ERR_SHAPE, "U-Net input %dx%d is not a multiple of %d", h, w, m);
    plan *p = calloc(1, sizeof *p);
    if (!p) return fmr_error(FMR_ERR_NOMEM, "out of memory (U-Net plan)");
    p->h = h, p->w = w;
    fmr_err err = fmr_cn_create(&p->net, b, u->st, u->prefix, 4321);
    if (!err) fmr_cn_set_plain(p->net, u->plain);
    if (!err) err = build(u, p);
    if (err) {
        free_plan(p);
        return err;
    }
    p->next = u->plans, u->plans = p;
    *out = p;
    return FMR_OK;
}

fmr_err fmr_unet_create(const fmr_safetensors *st, const char *prefix, int chans, int pools,
                        fmr_unet **out)
{
    *out = NULL;
    if (chans <= 0 || pools <= 0 || pools > MAX_POOLS)
        return fmr_error(FMR_ERR_ARG, "U-Net chans %d and pools %d must be positive (pools <= %d)",
                         chans, pools, MAX_POOLS);
    fmr_unet *u = calloc(1, sizeof *u);
    if (!u) return fmr_error(FMR_ERR_NOMEM, "out of memory (U-Net)");
    u->st = st, u->chans = chans, u->pools = pools;
    u->plain = fmr_cn_plain_requested();
    snprintf(u->prefix, sizeof u->prefix, "%s", prefix);
    /* a small plan now, so that missing or mis-shaped tensors are reported at load */
    plan *p;
    fmr_err err = get_plan(u, 1, 1 << pools, 1 << pools, &p);
    if (err) {
        fmr_unet_destroy(&u);
        return err;
    }
    *out = u;
    return FMR_OK;
}

void fmr_unet_destroy(fmr_unet **up)
{
    fmr_unet *u = *up;
    if (!u) return;
    for (plan *p = u->plans, *n; p; p = n)
        n = p->next, free_plan(p);
    free(u);
    *up = NULL;
}

fmr_err fmr_unet_forward(fmr_unet *u, int b, int h, int w, const float *image, float *out)
{
    plan *p;
    FMR_TRY(get_plan(u, b, h, w, &p));
    FMR_TRY(fmr_cn_bind(p->net, p->in, image));
    FMR_TRY(fmr_cn_run(p->net));
    memcpy(out, p->out.p, (size_t)b * 2 * h * w * sizeof(float));
    return FMR_OK;
}

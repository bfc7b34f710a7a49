/* The unrolled foundation-model reconstruction (docs/model.md): T cascades of a denoiser built
 * on a frozen encoder and a UNETR decoder, each followed by data consistency. Items are whole
 * slices, so the frames of a slice go through encoder and decoder in batches. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/decoder.h"
#include "fmrecon/encoder.h"
#include "fmrecon/files.h"
#include "fmrecon/iter.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "nn/bundle.h"
#include "nn/unet.h"
#include "slice_dc.h"

#define FRAME_BATCH 8 /* frames per encoder/decoder pass */

typedef struct {
    fmr_slice_dc sd; /* first: fmr_slice_dc_timing reads it */
    const fmr_dataset_info *in;
    fmr_bundle *bundle;
    fmr_encoder *enc;
    fmr_unetr **dec; /* one per cascade, or one shared */
    fmr_unet **unet; /* denoiser "unet": one per cascade, or one shared */
    int ndec, enc_size, dec_size, deepest;
    int ph, pw;      /* unet: padded image size (multiples of 2^pools) */
    size_t frames;   /* frames of the last run */
    fmr_cfloat *x;   /* (T + 1) x frames x hw: every cascade's output of the last run */
    fmr_cfloat *aty; /* frames x hw: A^H y */
    fmr_cfloat *z, *rhs, *tmp;
    float *pix, *taps[4], *dimg, *dout, *plane, *res;
    double enc_s, dec_s;
} unrolled_state;

static void unrolled_destroy(void *p)
{
    unrolled_state *s = p;
    if (!s) return;
    fmr_slice_dc_release(&s->sd);
    for (int i = 0; s->dec && i < s->ndec; i++)
        fmr_unetr_destroy(&s->dec[i]);
    for (int i = 0; s->unet && i < s->ndec; i++)
        fmr_unet_destroy(&s->unet[i]);
    free(s->dec);
    free(s->unet);
    fmr_encoder_destroy(&s->enc);
    fmr_bundle_close(&s->bundle);
    fmr_free(s->x), fmr_free(s->aty), fmr_free(s->z), fmr_free(s->rhs), fmr_free(s->tmp);
    fmr_free(s->pix), fmr_free(s->dimg), fmr_free(s->dout), fmr_free(s->plane), fmr_free(s->res);
    for (int k = 0; k < 4; k++)
        fmr_free(s->taps[k]);
    free(s);
}

/* The E2E-VarNet-style baseline: the fastMRI U-Net on the image padded to a multiple of 2^pools. */
static fmr_err load_unet(unrolled_state *s)
{
    const fmr_bundle *b = s->bundle;
    const int m = 1 << b->pools;
    s->ph = ((int)s->in->h + m - 1) / m * m, s->pw = ((int)s->in->w + m - 1) / m * m;
    s->ndec = b->shared ? 1 : b->cascades;
    if (!(s->unet = calloc((size_t)s->ndec, sizeof *s->unet)))
        return fmr_error(FMR_ERR_NOMEM, "out of memory (U-Nets)");
    for (int t = 0; t < s->ndec; t++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "cascades.%d.unet.", t);
        FMR_TRY(fmr_unet_create(b->st, prefix, b->chans, b->pools, &s->unet[t]));
    }
    const size_t B = FRAME_BATCH, P = (size_t)s->ph * s->pw, hw = s->in->h * s->in->w;
    FMR_TRY(fmr_alloc((void **)&s->dimg, B * 2 * P * sizeof(float), "U-Net input"));
    FMR_TRY(fmr_alloc((void **)&s->dout, B * 2 * P * sizeof(float), "U-Net output"));
    FMR_TRY(fmr_alloc((void **)&s->plane, B * 2 * hw * sizeof(float), "image planes"));
    FMR_TRY(fmr_alloc((void **)&s->res, B * 2 * hw * sizeof(float), "denoiser residual"));
    FMR_TRY(fmr_alloc((void **)&s->rhs, hw * sizeof *s->rhs, "right-hand side"));
    FMR_TRY(fmr_alloc((void **)&s->tmp, hw * sizeof *s->tmp, "work image"));
    return FMR_OK;
}

static fmr_err load_model(unrolled_state *s, const fmr_method_params *par)
{
    if (!par->model_file)
        return fmr_error(FMR_ERR_ARG, "method unrolled needs --model BUNDLE.safetensors");
    FMR_TRY(fmr_bundle_open(par->model_file, &s->bundle));
    const fmr_bundle *b = s->bundle;
    if (b->unet) return load_unet(s);
    if (!par->weights_file)
        return fmr_error(FMR_ERR_ARG,
                         "method unrolled needs --weights ENCODER.safetensors (%s uses encoder %s)",
                         b->path, b->encoder);
    char sha[65];
    FMR_TRY(fmr_sha256_file(par->weights_file, sha));
    if (strcmp(sha, b->encoder_sha256))
        return fmr_error(FMR_ERR_ARG,
                         "%s: encoder checkpoint SHA-256 %.12s... differs from the %.12s... that "
                         "%s was trained with "
                         "(encoder %s); pass the same --weights file",
                         par->weights_file, sha, b->encoder_sha256, b->path, b->encoder);
    s->deepest = 0;
    for (int k = 0; k < b->ntaps; k++)
        if (b->taps[k] > s->deepest) s->deepest = b->taps[k];
    FMR_TRY(fmr_encoder_create(par->weights_file, b->encoder, s->deepest, &s->enc));
    if (par->bf16) FMR_TRY(fmr_encoder_set_precision(s->enc, FMR_PREC_BF16));
    const fmr_encoder_config *ec = fmr_encoder_get_config(s->enc);
    s->enc_size = b->grid * ec->patch;
    s->dec_size = 16 * b->grid;
    int tokens;
    FMR_TRY(fmr_encoder_tokens(s->enc, s->enc_size, s->enc_size, &tokens));
    s->ndec = b->shared ? 1 : b->cascades;
    if (!(s->dec = calloc((size_t)s->ndec, sizeof *s->dec)))
        return fmr_error(FMR_ERR_NOMEM, "out of memory (decoders)");
    const fmr_unetr_config uc = {
        .width = ec->width, .grid = b->grid, .feature_size = b->feature_size, .ntaps = b->ntaps};
    for (int t = 0; t < s->ndec; t++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "cascades.%d.decoder.", t);
        FMR_TRY(fmr_unetr_create(b->st, prefix, &uc, &s->dec[t]));
        if (par->bf16) fmr_unetr_set_bf16(s->dec[t], 1);
    }
    const size_t B = FRAME_BATCH, R2 = (size_t)s->dec_size * s->dec_size,
                 E2 = (size_t)s->enc_size * s->enc_size;
    const size_t hw = s->in->h * s->in->w;
    FMR_TRY(fmr_alloc((void **)&s->pix, B * 3 * E2 * sizeof(float), "encoder input"));
    for (int k = 0; k < b->ntaps; k++)
        FMR_TRY(fmr_alloc((void **)&s->taps[k], B * (size_t)tokens * ec->width * sizeof(float),
                          "encoder features"));
    FMR_TRY(fmr_alloc((void **)&s->dimg, B * 2 * R2 * sizeof(float), "decoder input"));
    FMR_TRY(fmr_alloc((void **)&s->dout, B * 2 * R2 * sizeof(float), "decoder output"));
    FMR_TRY(fmr_alloc((void **)&s->plane, B * 2 * hw * sizeof(float), "image planes"));
    FMR_TRY(fmr_alloc((void **)&s->res, B * 2 * hw * sizeof(float), "denoiser residual"));
    FMR_TRY(fmr_alloc((void **)&s->rhs, hw * sizeof *s->rhs, "right-hand side"));
    FMR_TRY(fmr_alloc((void **)&s->tmp, hw * sizeof *s->tmp, "work image"));
    return FMR_OK;
}

static fmr_err unrolled_create(void **out, fmr_dataset *ds, const fmr_method_params *par)
{
    unrolled_state *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the unrolled network");
    s->in = fmr_dataset_get_info(ds);
    fmr_err err = load_model(s, par);
    /* CG runs exactly cg_iters iterations (rtol 0), as in training */
    if (!err) {
        fmr_method_params p = *par;
        p.rtol = 0;
        /* options prefix unrolled_, nothing inherited: the bundle's cg_iters stay unless the user
         * asks for -unrolled_ksp_max_it (then recorded as a deviation, unrolled_describe) */
        err = fmr_slice_dc_init(&s->sd, ds, &p, s->bundle->dc_weight[0],
                                s->bundle->soft_dc ? 1 : s->bundle->cg_iters, "unrolled_", 0);
    }
    if (err) {
        unrolled_destroy(s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

/* z = x + s * D_t(x / s) for frames [f0, f0 + n) of cascade t (docs/model.md). */
static fmr_err denoise(unrolled_state *s, int t, const fmr_cfloat *x, size_t n, fmr_cfloat *z)
{
    const int H = (int)s->in->h, W = (int)s->in->w, R = s->dec_size;
    const size_t hw = (size_t)H * W;
    float scale[FRAME_BATCH];
    /* u = x / max|x|, kept in z until the residual is added */
    for (size_t f = 0; f < n; f++) {
        float mx = 0;
        for (size_t i = 0; i < hw; i++)
            mx = fmaxf(mx, cabsf(x[f * hw + i]));
        scale[f] = mx > 0 ? mx : 1;
        for (size_t i = 0; i < hw; i++) {
            const fmr_cfloat u = x[f * hw + i] / scale[f];
            z[f * hw + i] = u;
            s->plane[(2 * f) * hw + i] = crealf(u);
            s->plane[(2 * f + 1) * hw + i] = cimagf(u);
        }
    }
    double t0 = fmr_wtime();
    if (s->unet) {
        /* zero-pad [Re u, Im u] to the U-Net's size (centred), run, crop the residual back */
        const int ph = s->ph, pw = s->pw, oy = (ph - H) / 2, ox = (pw - W) / 2;
        memset(s->dimg, 0, 2 * n * (size_t)ph * pw * sizeof(float));
        for (size_t c = 0; c < 2 * n; c++)
            for (int y = 0; y < H; y++)
                memcpy(s->dimg + (c * ph + (size_t)(y + oy)) * pw + ox,
                       s->plane + (c * H + (size_t)y) * W, (size_t)W * sizeof(float));
        FMR_TRY(fmr_unet_forward(s->unet[s->ndec == 1 ? 0 : t], (int)n, ph, pw, s->dimg, s->dout));
        for (size_t c = 0; c < 2 * n; c++)
            for (int y = 0; y < H; y++)
                memcpy(s->res + (c * H + (size_t)y) * W,
                       s->dout + (c * ph + (size_t)(y + oy)) * pw + ox, (size_t)W * sizeof(float));
        s->dec_s += fmr_wtime() - t0;
    } else {
        FMR_TRY(fmr_encoder_map_input(s->enc, FMR_MAP_COMPLEX3, z, n, H, W, s->enc_size, s->pix));
        FMR_TRY(fmr_encoder_forward(s->enc, s->pix, (int)n, s->enc_size, s->enc_size,
                                    s->bundle->taps, s->bundle->ntaps, s->taps));
        double t1 = fmr_wtime();
        FMR_TRY(fmr_resize_bilinear(s->plane, 2 * n, H, W, R, R, s->dimg));
        FMR_TRY(fmr_unetr_forward(s->dec[s->ndec == 1 ? 0 : t], (int)n, s->dimg,
                                  (const float *const *)s->taps, s->dout));
        FMR_TRY(fmr_resize_bilinear(s->dout, 2 * n, R, R, H, W, s->res));
        s->enc_s += t1 - t0;
        s->dec_s += fmr_wtime() - t1;
    }
    for (size_t f = 0; f < n; f++)
        for (size_t i = 0; i < hw; i++)
            z[f * hw + i] = x[f * hw + i] + scale[f] * (s->res[(2 * f) * hw + i] +
                                                        I * s->res[(2 * f + 1) * hw + i]);
    return FMR_OK;
}

/* z = denoiser(x) for every frame of the slice. Within a coil group every rank holds the same
 * x_t, so the group's leader alone runs encoder and decoder and broadcasts z (the others would
 * compute the identical result; the leader's error, if any, reaches every rank). */
static fmr_err denoise_group(unrolled_state *s, int t, const fmr_cfloat *xt, size_t nframes)
{
    const size_t hw = s->in->h * s->in->w;
    int csize = 1, crank = 0;
    MPI_Comm_size(s->sd.comm, &csize);
    MPI_Comm_rank(s->sd.comm, &crank);
    fmr_err err = FMR_OK;
    if (crank == 0)
        for (size_t f0 = 0; !err && f0 < nframes; f0 += FRAME_BATCH) {
            const size_t m = nframes - f0 < FRAME_BATCH ? nframes - f0 : FRAME_BATCH;
            err = denoise(s, t, xt + f0 * hw, m, s->z + f0 * hw);
        }
    if (csize == 1) return err;
    const double t0 = fmr_wtime();
    int bad = err != FMR_OK;
    MPI_Bcast(&bad, 1, MPI_INT, 0, s->sd.comm);
    if (bad) return crank == 0 ? err : fmr_error(FMR_ERR_LIB, "the denoiser failed on the coil group's leader");
    MPI_Bcast(s->z, (int)(2 * nframes * hw), MPI_FLOAT, 0, s->sd.comm);
    s->sd.comm_s += fmr_wtime() - t0;
    s->sd.comm_bytes += 2 * nframes * hw * sizeof(float), s->sd.comm_calls += 2;
    return FMR_OK;
}

static fmr_err unrolled_run(void *p, size_t frame0, size_t nframes, size_t slice,
                            const fmr_cfloat *ks, const float *masks, float *mag, fmr_cfloat *img)
{
    (void)frame0;
    unrolled_state *s = p;
    const fmr_bundle *b = s->bundle;
    const size_t hw = s->in->h * s->in->w, n = s->sd.nc * hw, T = (size_t)b->cascades;
    if (nframes > s->frames) {
        fmr_free(s->x), fmr_free(s->aty), fmr_free(s->z);
        s->x = s->aty = s->z = NULL;
        s->frames = 0;
        FMR_TRY(fmr_alloc((void **)&s->x, (T + 1) * nframes * hw * sizeof *s->x, "cascade images"));
        FMR_TRY(fmr_alloc((void **)&s->aty, nframes * hw * sizeof *s->aty, "A^H y"));
        FMR_TRY(fmr_alloc((void **)&s->z, nframes * hw * sizeof *s->z, "denoised images"));
    }
    s->frames = nframes;
    FMR_TRY(fmr_slice_dc_select(&s->sd, slice));
    for (size_t f = 0; f < nframes; f++) {
        FMR_TRY(fmr_sense_set_mask(s->sd.op, masks + f * s->in->w, 1));
        FMR_TRY(fmr_sense_adjoint(s->sd.op, ks + f * n, s->aty + f * hw));
    }
    memcpy(s->x, s->aty, nframes * hw * sizeof *s->x);
    for (size_t t = 0; t < T; t++) {
        const fmr_cfloat *xt = s->x + t * nframes * hw;
        fmr_cfloat *xn = s->x + (t + 1) * nframes * hw;
        FMR_TRY(denoise_group(s, (int)t, xt, nframes));
        const double w = b->dc_weight[t];
        for (size_t f = 0; f < nframes; f++) {
            FMR_TRY(fmr_sense_set_mask(s->sd.op, masks + f * s->in->w, 1));
            const fmr_cfloat *zf = s->z + f * hw, *ay = s->aty + f * hw;
            if (!b->soft_dc) FMR_TRY(fmr_slice_dc_hard(&s->sd, ay, zf, w, xn + f * hw, s->rhs));
            else FMR_TRY(fmr_dc_soft(s->sd.frame_op, ay, xt + f * hw, zf, w, xn + f * hw, s->tmp));
        }
    }
    const fmr_cfloat *xT = s->x + T * nframes * hw;
    for (size_t i = 0; i < nframes * hw; i++)
        mag[i] = cabsf(xT[i]);
    if (img) memcpy(img, xT, nframes * hw * sizeof *img);
    return FMR_OK;
}

static char *unrolled_describe(const void *p)
{
    const unrolled_state *s = p;
    const fmr_bundle *b = s->bundle;
    int it = b->cg_iters;
    const int given = !b->soft_dc && fmr_petsc_option_int("unrolled_", "-ksp_max_it", &it);
    char *buf = malloc(256);
    if (buf)
        snprintf(buf, 256, "{\"dc\":\"%s\",\"bundle_cg_iters\":%d,\"cg_iters\":%d,\"deviates_from_bundle\":%s}",
                 b->soft_dc ? "soft" : "cg", b->cg_iters, it, given && it != b->cg_iters ? "true" : "false");
    return buf;
}

static void unrolled_timing(const void *p, fmr_method_timing *t)
{
    const unrolled_state *s = p;
    fmr_slice_dc_timing(&s->sd, t);
    t->enc_s = s->enc_s, t->dec_s = s->dec_s;
}

static int unrolled_extra_count(const void *p)
{
    return ((const unrolled_state *)p)->bundle->cascades + 1;
}

static void unrolled_extra_name(const void *p, int k, char *buf, size_t n)
{
    (void)p;
    snprintf(buf, n, "cascade_%d", k);
}

static void unrolled_extra_get(const void *p, int k, size_t f, fmr_cfloat *out)
{
    const unrolled_state *s = p;
    const size_t hw = s->in->h * s->in->w;
    memcpy(out, s->x + ((size_t)k * s->frames + f) * hw, hw * sizeof *out);
}

const fmr_method_ops fmr_method_unrolled = {
    .name = "unrolled",
    .summary = "unrolled network: frozen foundation encoder + UNETR decoder (or the U-Net "
               "baseline), PETSc CG or soft data consistency (--model, --weights)",
    .produces_complex = 1,
    .per_slice = 1,
    .create = unrolled_create,
    .run = unrolled_run,
    .destroy = unrolled_destroy,
    .timing = unrolled_timing,
    .describe = unrolled_describe,
    .extra_count = unrolled_extra_count,
    .extra_name = unrolled_extra_name,
    .extra_get = unrolled_extra_get,
};

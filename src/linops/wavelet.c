/* Orthonormal 2-D Daubechies wavelets of each frame by GSL (gsl_wavelet2d_nstransform: the
 * non-standard, Mallat pyramid form, down to the 1 x 1 scaling coefficient). GSL needs square
 * power-of-two sizes, so each frame is zero-padded to P x P (docs/design-decisions.md). GSL works
 * on real doubles: the real and imaginary parts are transformed separately (the transform is
 * real, so this is the complex transform). */
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_wavelet2d.h>

#include "fmrecon/linop.h"

typedef struct {
    size_t T, h, w, P;
    gsl_wavelet *wav;
    gsl_wavelet_workspace *ws;
    double *re, *im; /* P x P */
} wav_data;

size_t fmr_wavelet_padded_size(size_t h, size_t w)
{
    size_t P = 2, m = h > w ? h : w;
    while (P < m) P *= 2;
    return P;
}

static void wav_free(void *p)
{
    wav_data *d = p;
    if (d->wav) gsl_wavelet_free(d->wav);
    if (d->ws) gsl_wavelet_workspace_free(d->ws);
    free(d->re), free(d->im);
    free(d);
}

static fmr_err run(wav_data *d, int forward)
{
    const size_t P = d->P;
    int e1 = forward ? gsl_wavelet2d_nstransform_forward(d->wav, d->re, P, P, P, d->ws)
                     : gsl_wavelet2d_nstransform_inverse(d->wav, d->re, P, P, P, d->ws);
    int e2 = forward ? gsl_wavelet2d_nstransform_forward(d->wav, d->im, P, P, P, d->ws)
                     : gsl_wavelet2d_nstransform_inverse(d->wav, d->im, P, P, P, d->ws);
    if (e1 || e2) return fmr_error(FMR_ERR_LIB, "GSL wavelet transform failed: %s", gsl_strerror(e1 ? e1 : e2));
    return FMR_OK;
}

static fmr_err w_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    wav_data *d = p;
    const size_t P = d->P, PP = P * P, hw = d->h * d->w;
    for (size_t t = 0; t < d->T; t++) {
        memset(d->re, 0, PP * sizeof *d->re), memset(d->im, 0, PP * sizeof *d->im);
        for (size_t r = 0; r < d->h; r++)
            for (size_t c = 0; c < d->w; c++) {
                const fmr_cfloat v = x[t * hw + r * d->w + c];
                d->re[r * P + c] = crealf(v), d->im[r * P + c] = cimagf(v);
            }
        FMR_TRY(run(d, 1));
        for (size_t i = 0; i < PP; i++) y[t * PP + i] = (float)d->re[i] + I * (float)d->im[i];
    }
    return FMR_OK;
}

static fmr_err w_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    wav_data *d = p;
    const size_t P = d->P, PP = P * P, hw = d->h * d->w;
    for (size_t t = 0; t < d->T; t++) {
        for (size_t i = 0; i < PP; i++) d->re[i] = crealf(y[t * PP + i]), d->im[i] = cimagf(y[t * PP + i]);
        FMR_TRY(run(d, 0)); /* orthonormal: the inverse is the adjoint */
        for (size_t r = 0; r < d->h; r++)
            for (size_t c = 0; c < d->w; c++) x[t * hw + r * d->w + c] = (float)d->re[r * P + c] + I * (float)d->im[r * P + c];
    }
    return FMR_OK;
}

static fmr_err w_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const wav_data *d = p;
    memcpy(y, x, d->T * d->h * d->w * sizeof *y); /* W^H W = I: padding then cropping */
    return FMR_OK;
}

fmr_err fmr_linop_wavelet(fmr_linop **out, size_t T, size_t h, size_t w, int taps)
{
    *out = NULL;
    if (taps < 4 || taps > 20 || taps % 2)
        return fmr_error(FMR_ERR_ARG, "wavelet: Daubechies filters have 4, 6, ..., 20 taps, not %d", taps);
    /* GSL's default handler aborts the process; fmrecon reports errors itself */
    gsl_set_error_handler_off();
    wav_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the wavelet transform");
    d->T = T, d->h = h, d->w = w, d->P = fmr_wavelet_padded_size(h, w);
    d->wav = gsl_wavelet_alloc(gsl_wavelet_daubechies, (size_t)taps);
    d->ws = gsl_wavelet_workspace_alloc(d->P);
    d->re = malloc(d->P * d->P * sizeof *d->re), d->im = malloc(d->P * d->P * sizeof *d->im);
    if (!d->wav || !d->ws || !d->re || !d->im) {
        const size_t P = d->P;
        wav_free(d);
        return fmr_error(FMR_ERR_NOMEM, "cannot set up a %zux%zu wavelet transform", P, P);
    }
    fmr_linop_def def = {.name = "wavelet", .dom = T * h * w, .cod = T * d->P * d->P, .comm = MPI_COMM_SELF,
                         .forward = w_fwd, .adjoint = w_adj, .normal = w_nrm, .free_data = wav_free};
    return fmr_linop_create(out, &def, d);
}

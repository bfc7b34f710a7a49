/* Compressed sensing for cine: for one slice's series x = (x_1 .. x_T),
 *   min sum_t 1/2 ||A_t x_t - y_t||^2 + lambda_t ||F_t x||_1 + lambda_s sum_t TV(x_t)
 * (l1 in the temporal Fourier domain: periodic cardiac motion is sparse there; isotropic spatial
 * TV), by ADMM with two consensus copies z1 = x, z2 = x. The x-update is, frame by frame, the same
 * data-consistency solve as CG-SENSE and the unrolled network:
 *   (A^H A + 2 rho I) x_t = A^H y_t + rho (z1_t - u1_t + z2_t - u2_t),
 * warm-started; z1 and z2 are the proximal maps of the two regularisers.
 * The data are scaled so that max |A^H y| = 1 over the slice, which makes lambda_t, lambda_s and
 * rho independent of the scanner's units; the result is scaled back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/recon.h"
#include "prox.h"
#include "slice_dc.h"

enum { TV_ITERS = 20 };

typedef struct {
    fmr_slice_dc sd; /* first: fmr_slice_dc_timing reads it */
    const fmr_dataset_info *in;
    fmr_method_params par;
    fmr_cfloat *aty, *x, *z1, *z2, *u1, *u2, *rhs, *work;
} cs_state;

static void cs_destroy(void *p)
{
    cs_state *s = p;
    if (!s) return;
    fmr_slice_dc_release(&s->sd);
    fmr_free(s->aty), fmr_free(s->x), fmr_free(s->z1), fmr_free(s->z2);
    fmr_free(s->u1), fmr_free(s->u2), fmr_free(s->rhs), fmr_free(s->work);
    free(s);
}

static fmr_err cs_create(void **out, fmr_dataset *ds, const fmr_method_params *par)
{
    if (!(par->rho > 0) || !(par->lambda_t >= 0) || !(par->lambda_s >= 0) || par->admm_iters < 1)
        return fmr_error(FMR_ERR_ARG,
                         "cs needs rho > 0, lambda_t >= 0, lambda_s >= 0 and >= 1 ADMM iteration "
                         "(got %g, %g, %g, %d)",
                         par->rho, par->lambda_t, par->lambda_s, par->admm_iters);
    cs_state *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate CS state");
    s->in = fmr_dataset_get_info(ds);
    s->par = *par;
    const size_t hw = s->in->h * s->in->w, N = s->in->frames * hw;
    /* inexact x-updates: a few warm-started CG steps per ADMM iteration suffice */
    fmr_err err =
        fmr_slice_dc_init(&s->sd, ds, par, 2.0 * par->rho, par->max_it < 10 ? par->max_it : 10);
    fmr_cfloat **bufs[] = {&s->aty, &s->x, &s->z1, &s->z2, &s->u1, &s->u2};
    for (size_t i = 0; !err && i < sizeof bufs / sizeof bufs[0]; i++)
        err = fmr_alloc((void **)bufs[i], N * sizeof(fmr_cfloat), "CS series");
    if (!err) err = fmr_alloc((void **)&s->rhs, hw * sizeof *s->rhs, "CS right-hand side");
    if (!err)
        err = fmr_alloc((void **)&s->work, (N > 6 * hw ? N : 6 * hw) * sizeof *s->work, "CS work");
    if (err) {
        cs_destroy(s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

static fmr_err cs_run(void *p, size_t frame0, size_t T, size_t z, const fmr_cfloat *ks,
                      const float *masks, float *mag, fmr_cfloat *img)
{
    (void)frame0;
    cs_state *s = p;
    const size_t hw = s->in->h * s->in->w, n = s->sd.nc * hw, N = T * hw;
    const double rho = s->par.rho;
    FMR_TRY(fmr_slice_dc_select(&s->sd, z));
    float scale = 0;
    for (size_t t = 0; t < T; t++) {
        FMR_TRY(fmr_sense_set_mask(s->sd.op, masks + t * s->in->w, 1));
        FMR_TRY(fmr_sense_adjoint(s->sd.op, ks + t * n, s->aty + t * hw));
    }
    for (size_t i = 0; i < N; i++)
        scale = fmaxf(scale, cabsf(s->aty[i]));
    if (!(scale > 0)) {
        memset(mag, 0, N * sizeof *mag);
        if (img) memset(img, 0, N * sizeof *img);
        return FMR_OK;
    }
    for (size_t i = 0; i < N; i++)
        s->aty[i] /= scale;
    memcpy(s->x, s->aty, N * sizeof *s->x);
    memcpy(s->z1, s->x, N * sizeof *s->x);
    memcpy(s->z2, s->x, N * sizeof *s->x);
    memset(s->u1, 0, N * sizeof *s->u1);
    memset(s->u2, 0, N * sizeof *s->u2);
    for (int it = 0; it < s->par.admm_iters; it++) {
        for (size_t t = 0; t < T; t++) {
            const size_t o = t * hw;
            for (size_t i = 0; i < hw; i++)
                s->rhs[i] = s->aty[o + i] + (float)rho * (s->z1[o + i] - s->u1[o + i] +
                                                          s->z2[o + i] - s->u2[o + i]);
            FMR_TRY(fmr_sense_set_mask(s->sd.op, masks + t * s->in->w, 1));
            fmr_err e = fmr_slice_dc_solve(&s->sd, s->rhs, s->x + o, 1);
            if (e) return fmr_error_context(e, "frame %zu: ADMM iteration %d: ", t, it);
        }
        for (size_t i = 0; i < N; i++)
            s->z1[i] = s->x[i] + s->u1[i], s->z2[i] = s->x[i] + s->u2[i];
        FMR_TRY(fmr_prox_temporal_l1(s->z1, T, hw, s->par.lambda_t / rho, s->work));
        for (size_t t = 0; t < T; t++)
            fmr_prox_tv(s->z2 + t * hw, s->in->h, s->in->w, s->par.lambda_s / rho, TV_ITERS,
                        s->work);
        for (size_t i = 0; i < N; i++) {
            s->u1[i] += s->x[i] - s->z1[i];
            s->u2[i] += s->x[i] - s->z2[i];
        }
    }
    for (size_t i = 0; i < N; i++) {
        if (!isfinite(crealf(s->x[i])) || !isfinite(cimagf(s->x[i])))
            return fmr_error(FMR_ERR_VALUE,
                             "compressed sensing diverged (NaN/Inf); try a larger --rho");
        mag[i] = cabsf(s->x[i]) * scale;
        if (img) img[i] = s->x[i] * scale;
    }
    return FMR_OK;
}

const fmr_method_ops fmr_method_cs = {
    .name = "cs",
    .summary = "compressed sensing: temporal-Fourier l1 + spatial TV, ADMM with PETSc x-updates",
    .produces_complex = 1,
    .per_slice = 1,
    .create = cs_create,
    .run = cs_run,
    .destroy = cs_destroy,
    .timing = fmr_slice_dc_timing,
};

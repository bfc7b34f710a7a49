/* CG-SENSE: x = argmin ||A x - y||^2 + lambda ||x||^2, the data-consistency solve (solvers/dc.c on
 * the SENSE fmr_linop of each frame) with z = 0, started from zero, with ESPIRiT maps (or --sens).
 * PETSc options prefix sense_; unprefixed -ksp_* options apply too. */
#include <stdlib.h>
#include <string.h>

#include "fmrecon/recon.h"
#include "slice_dc.h"

typedef struct {
    fmr_slice_dc sd; /* first: fmr_slice_dc_timing reads it */
    const fmr_dataset_info *in;
    fmr_cfloat *rhs, *x;
} sense_state;

static void sense_destroy(void *p)
{
    sense_state *s = p;
    if (!s) return;
    fmr_slice_dc_release(&s->sd);
    fmr_free(s->rhs);
    fmr_free(s->x);
    free(s);
}

static fmr_err sense_create(void **out, fmr_dataset *ds, const fmr_method_params *par)
{
    if (!(par->lambda >= 0))
        return fmr_error(FMR_ERR_ARG, "--lambda must be >= 0, got %g", par->lambda);
    sense_state *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate SENSE state");
    s->in = fmr_dataset_get_info(ds);
    const size_t hw = s->in->h * s->in->w;
    fmr_err err = fmr_slice_dc_init(&s->sd, ds, par, par->lambda, par->max_it, "sense_", 1);
    if (!err) err = fmr_alloc((void **)&s->rhs, hw * sizeof *s->rhs, "SENSE right-hand side");
    if (!err) err = fmr_alloc((void **)&s->x, hw * sizeof *s->x, "SENSE image");
    if (err) {
        sense_destroy(s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

static fmr_err sense_run(void *p, size_t frame0, size_t nframes, size_t z, const fmr_cfloat *ks,
                         const float *masks, float *mag, fmr_cfloat *img)
{
    (void)frame0;
    sense_state *s = p;
    const size_t hw = s->in->h * s->in->w, n = s->sd.nc * hw;
    FMR_TRY(fmr_slice_dc_select(&s->sd, z));
    for (size_t f = 0; f < nframes; f++) {
        FMR_TRY(fmr_sense_set_mask(s->sd.op, masks + f * s->in->w, 1));
        /* A^H y and (A^H A + lambda I)^-1 on the operator layer: frame_op is this frame's SENSE */
        FMR_TRY(fmr_linop_adjoint(s->sd.frame_op, ks + f * n, s->rhs));
        FMR_TRY(fmr_slice_dc_solve(&s->sd, s->rhs, s->x, 0));
        for (size_t i = 0; i < hw; i++)
            mag[f * hw + i] = cabsf(s->x[i]);
        if (img) memcpy(img + f * hw, s->x, hw * sizeof *s->x);
    }
    return FMR_OK;
}

const fmr_method_ops fmr_method_sense = {
    .name = "sense",
    .summary = "CG-SENSE: (A^H A + lambda I) x = A^H y by PETSc CG, ESPIRiT maps",
    .produces_complex = 1,
    .per_slice = 0,
    .create = sense_create,
    .run = sense_run,
    .destroy = sense_destroy,
    .timing = fmr_slice_dc_timing,
};

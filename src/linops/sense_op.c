/* The SENSE operator of a cine series as an fmr_linop: block diagonal over frames, frame t with
 * its own phase-encode mask, on the borrowed fmr_sense (coils, threads, ranks, slabs). */
#include <stdlib.h>

#include <string.h>

#include "fmrecon/linop.h"
#include "linops/linop_impl.h"

typedef struct {
    fmr_sense *s;
    size_t T, hw, kn; /* frames, pixels, k-space samples per frame (this rank's coils) */
    size_t w;
    const float *masks;
} sense_data;

static fmr_err mask_of(sense_data *d, size_t t)
{
    /* no masks: the operator's own current mask (frame-by-frame users set it themselves) */
    return d->masks ? fmr_sense_set_mask(d->s, d->masks + t * d->w, 1) : FMR_OK;
}

static fmr_err s_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    sense_data *d = p;
    for (size_t t = 0; t < d->T; t++) {
        FMR_TRY(mask_of(d, t));
        FMR_TRY(fmr_sense_forward(d->s, x + t * d->hw, y + t * d->kn));
    }
    return FMR_OK;
}

static fmr_err s_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    sense_data *d = p;
    for (size_t t = 0; t < d->T; t++) {
        FMR_TRY(mask_of(d, t));
        FMR_TRY(fmr_sense_adjoint(d->s, y + t * d->kn, x + t * d->hw));
    }
    return FMR_OK;
}

static fmr_err s_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    sense_data *d = p;
    for (size_t t = 0; t < d->T; t++) {
        FMR_TRY(mask_of(d, t));
        FMR_TRY(fmr_sense_normal(d->s, x + t * d->hw, y + t * d->hw));
    }
    return FMR_OK;
}

fmr_err fmr_linop_sense(fmr_linop **out, fmr_sense *s, size_t T, size_t h, size_t w, size_t ncoils,
                        const float *masks)
{
    *out = NULL;
    sense_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the SENSE operator");
    d->s = s, d->T = T, d->hw = h * w, d->kn = ncoils * h * w, d->w = w, d->masks = masks;
    int size = 1;
    MPI_Comm_size(fmr_sense_comm(s), &size);
    /* with coils split across ranks each rank's k-space is its own part; in slab mode every rank
     * holds every coil's whole k-space (replicated) */
    fmr_linop_def def = {.name = "sense", .dom = T * h * w, .cod = ncoils ? T * ncoils * h * w : 1,
                         .comm = fmr_sense_comm(s), .cod_split = size > 1 && !fmr_sense_is_slab(s),
                         .forward = s_fwd, .adjoint = s_adj, .normal = s_nrm, .free_data = free};
    return fmr_linop_create(out, &def, d);
}

fmr_err fmr_linop_sense_set_masks(fmr_linop *op, const float *masks)
{
    if (strcmp(fmr_linop_name(op), "sense"))
        return fmr_error(FMR_ERR_ARG, "operator %s is not a SENSE series operator", fmr_linop_name(op));
    sense_data *d = fmr_linop_data(op);
    d->masks = masks;
    return FMR_OK;
}

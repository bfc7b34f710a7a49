#include "slice_dc.h"

#include <string.h>

#include "fmrecon/iter.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"

fmr_err fmr_slice_dc_init(fmr_slice_dc *s, fmr_dataset *ds, const fmr_method_params *par,
                          double lambda, int max_it, const char *prefix, int inherit)
{
    memset(s, 0, sizeof *s);
    s->prefix = prefix, s->inherit = inherit;
    s->in = fmr_dataset_get_info(ds);
    s->lambda = lambda;
    s->rtol = par->rtol;
    s->max_it = max_it;
    s->slice = -1;
    s->comm = par->ncoils ? par->coil_comm : MPI_COMM_SELF;
    s->coil0 = par->ncoils ? par->coil0 : 0;
    s->nc = par->ncoils ? par->ncoils : s->in->coils;
    s->slabs = par->fft_slabs;
    return fmr_maps_create(&s->maps, ds, par);
}

void fmr_slice_dc_release(fmr_slice_dc *s)
{
    fmr_slice_dc_collect(s);
    fmr_dc_destroy(&s->dc);
    fmr_linop_destroy(&s->frame_op);
    fmr_sense_destroy(&s->op);
    fmr_maps_destroy(&s->maps);
}

void fmr_slice_dc_collect(fmr_slice_dc *s)
{
    if (!s->op) return;
    double c;
    size_t b, n;
    fmr_sense_comm_stats(s->op, &c, &b, &n);
    s->comm_s += c, s->comm_bytes += b, s->comm_calls += n;
}

fmr_err fmr_slice_dc_select(fmr_slice_dc *s, size_t z)
{
    const fmr_cfloat *maps;
    const double t0 = fmr_wtime();
    FMR_TRY(fmr_maps_get(s->maps, z, &maps));
    s->maps_s += fmr_wtime() - t0;
    if ((long)z == s->slice) return FMR_OK;
    fmr_slice_dc_collect(s);
    s->slice = -1;
    fmr_linop_destroy(&s->frame_op);
    fmr_sense_destroy(&s->op);
    fmr_sense_desc d = {.h = s->in->h,
                        .w = s->in->w,
                        .ncoils = s->nc,
                        .maps = maps + s->coil0 * s->in->h * s->in->w,
                        .comm = s->comm, .slabs = s->slabs};
    FMR_TRY(fmr_sense_create(&s->op, &d));
    FMR_TRY(fmr_linop_sense(&s->frame_op, s->op, 1, s->in->h, s->in->w, s->nc, NULL));
    if (!s->no_dc && s->dc) {
        FMR_TRY(fmr_dc_set_operator(s->dc, s->frame_op));
    } else if (!s->no_dc) {
        /* one KSP for the whole file: options are read once, not per slice */
        const fmr_dc_opts o = {.prefix = s->prefix, .inherit = s->inherit, .lambda = s->lambda, .rtol = s->rtol,
                               .max_it = s->max_it};
        FMR_TRY(fmr_dc_create_op(&s->dc, s->frame_op, &o));
    }
    s->slice = (long)z;
    return FMR_OK;
}

fmr_err fmr_slice_dc_solve(fmr_slice_dc *s, const fmr_cfloat *rhs, fmr_cfloat *x, int x_is_guess)
{
    double t0 = fmr_wtime(), f0 = fmr_sense_fft_seconds(s->op);
    fmr_err err = fmr_dc_solve(s->dc, rhs, x, x_is_guess, NULL);
    s->dc_s += fmr_wtime() - t0;
    s->fft_s += fmr_sense_fft_seconds(s->op) - f0;
    return err;
}

fmr_err fmr_slice_dc_hard(fmr_slice_dc *s, const fmr_cfloat *aty, const fmr_cfloat *z, double lambda, fmr_cfloat *x,
                          fmr_cfloat *rhs)
{
    double t0 = fmr_wtime(), f0 = fmr_sense_fft_seconds(s->op);
    fmr_err err = fmr_dc_hard(s->dc, aty, z, lambda, x, rhs, NULL);
    s->dc_s += fmr_wtime() - t0;
    s->fft_s += fmr_sense_fft_seconds(s->op) - f0;
    return err;
}

void fmr_slice_dc_timing(const void *state, fmr_method_timing *t)
{
    const fmr_slice_dc *s = state;
    memset(t, 0, sizeof *t);
    t->dc_s = s->dc_s, t->fft_s = s->fft_s, t->maps_s = s->maps_s;
    t->comm_s = s->comm_s, t->comm_bytes = s->comm_bytes, t->comm_calls = s->comm_calls;
    if (s->op) {
        double c;
        size_t b, n;
        fmr_sense_comm_stats(s->op, &c, &b, &n);
        t->comm_s += c, t->comm_bytes += b, t->comm_calls += n;
    }
}

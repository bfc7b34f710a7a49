/* The SENSE operator and data-consistency solver of the slice being worked on, shared by every
 * method that solves (A^H A + lambda I) x = rhs: maps come from fmr_maps, and operator and solver
 * are rebuilt only when the slice changes (items are visited slice-major). It also keeps the time
 * spent in solves and in FFTW for `recon -v` and the benchmarks. */
#ifndef FMR_SLICE_DC_H
#define FMR_SLICE_DC_H

#include "fmrecon/dc.h"
#include "fmrecon/sense.h"
#include "maps.h"

typedef struct fmr_slice_dc {
    const fmr_dataset_info *in;
    fmr_maps *maps;
    MPI_Comm comm;      /* ranks sharing the coils of an item */
    size_t coil0, nc;   /* this rank's coils */
    int slabs;          /* FFTW-MPI row slabs across comm (all coils on every rank) */
    double lambda, rtol;
    int max_it;
    const char *prefix; /* PETSc options prefix of the solver ("sense_", "unrolled_") */
    int inherit;        /* unprefixed -ksp_* options apply too */
    int no_dc;          /* only the operator: the method builds its own solver (cs) */
    long slice;
    fmr_sense *op;
    fmr_linop *frame_op; /* op as an fmr_linop of one frame, with op's current mask */
    fmr_dc *dc;          /* created once, re-pointed at each slice's operator */
    double dc_s, fft_s, maps_s, comm_s;
    size_t comm_bytes, comm_calls;
} fmr_slice_dc;

/* prefix/inherit: the solver's PETSc options (include/fmrecon/dc.h). */
fmr_err fmr_slice_dc_init(fmr_slice_dc *s, fmr_dataset *ds, const fmr_method_params *par, double lambda,
                          int max_it, const char *prefix, int inherit);
void fmr_slice_dc_release(fmr_slice_dc *s);
/* Makes s->op, s->frame_op and s->dc those of slice z (the solver is created on the first call). */
fmr_err fmr_slice_dc_select(fmr_slice_dc *s, size_t z);
/* One timed solve with the current operator (x_is_guess as fmr_dc_solve). */
fmr_err fmr_slice_dc_solve(fmr_slice_dc *s, const fmr_cfloat *rhs, fmr_cfloat *x, int x_is_guess);

/* Timed fmr_dc_hard with the current operator: x = (A^H A + lambda I)^-1 (A^H y + lambda z). */
fmr_err fmr_slice_dc_hard(fmr_slice_dc *s, const fmr_cfloat *aty, const fmr_cfloat *z, double lambda, fmr_cfloat *x,
                          fmr_cfloat *rhs);

/* fmr_method_ops.timing for method states whose first member is an fmr_slice_dc. */
struct fmr_method_timing;
void fmr_slice_dc_timing(const void *state, struct fmr_method_timing *t);
/* Adds the current operator's communication counters to the totals (before it is replaced). */
void fmr_slice_dc_collect(fmr_slice_dc *s);

#endif

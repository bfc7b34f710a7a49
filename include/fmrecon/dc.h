/* Data consistency: x = argmin ||A x - y||^2 + lambda ||x - z||^2 for any linear operator A
 * (include/fmrecon/linop.h), i.e. the linear solve
 *     (N + lambda I) x = rhs,      N = normal(A) = A^H A,   rhs = A^H y + lambda z,
 * posed as a PETSc KSP (CG, Hermitian) on a shell matrix applying N + lambda I, over the
 * operator's communicator. Used by CG-SENSE (z = 0), as the x-update of ADMM (A a stack of the
 * SENSE operator and the regularisers' operators), and in every cascade of the unrolled network.
 * This file and petsc_env.c are the only places that know PETSc.
 *
 * Options: each solver has a PETSc options prefix (KSPSetOptionsPrefix), e.g. "sense_" reads
 * -sense_ksp_max_it, -sense_ksp_rtol, -sense_ksp_monitor, ...; fmrecon's settings are applied
 * first and KSPSetFromOptions runs once, when the solver is created. With `inherit` set, the
 * unprefixed -ksp_* / -pc_* options given by the user also apply (unless the prefixed one is
 * given): sense and cs do this, so `-- -ksp_max_it 3` keeps working there; unrolled does not.
 *
 * Precision: Debian's complex PETSc is double; operators run in single precision (FFTW float),
 * converting the vector once per product (see docs/classical.md for the measurement). */
#ifndef FMRECON_DC_H
#define FMRECON_DC_H

#include <mpi.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/linop.h"
#include "fmrecon/sense.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* PETSc lifetime for programs using fmrecon: argc/argv are PETSc's options (may be 0/NULL).
 * Call after MPI_Init; fmr_petsc_finalize before MPI_Finalize. PETSc never prints or aborts on its
 * own: its errors come back as fmr_err with PETSc's message. */
fmr_err fmr_petsc_init(int argc, char **argv);
void fmr_petsc_finalize(void);

/* Whether the user gave PETSc option `option` (e.g. "-ksp_max_it") under prefix (NULL: none);
 * if so and value != NULL, its integer value. */
int fmr_petsc_option_int(const char *prefix, const char *option, int *value);

typedef struct fmr_dc fmr_dc;

typedef struct fmr_dc_stats {
    int iterations;
    double residual; /* final residual norm reported by the KSP */
    double seconds;
} fmr_dc_stats;

typedef struct fmr_dc_opts {
    const char *prefix; /* PETSc options prefix without the leading dash, e.g. "sense_"; NULL: none */
    int inherit;        /* unprefixed -ksp_* / -pc_* options apply too (see above) */
    double lambda;      /* >= 0 */
    double rtol;        /* default relative tolerance (0: run max_it iterations) */
    int max_it;         /* default iteration limit */
} fmr_dc_opts;

/* A solver for normal(op) + lambda I; op's domain is the unknown (whole on every rank of op's
 * communicator). Takes a reference to op. */
fmr_err fmr_dc_create_op(fmr_dc **dc, fmr_linop *op, const fmr_dc_opts *opts);
/* Another operator with the same domain size and communicator (a new slice, a new ADMM model);
 * the KSP and its options stay. */
fmr_err fmr_dc_set_operator(fmr_dc *dc, fmr_linop *op);
fmr_err fmr_dc_set_lambda(fmr_dc *dc, double lambda);
/* Whether the user gave the option (e.g. "-ksp_max_it") for this solver's prefix. */
int fmr_dc_option_given(const fmr_dc *dc, const char *option);
/* Unknowns of the solve. */
size_t fmr_dc_size(const fmr_dc *dc);
/* The tolerances in effect (after the user's options). */
void fmr_dc_tolerances(const fmr_dc *dc, double *rtol, int *max_it);

/* The SENSE operator of one frame (its current mask), unprefixed options; n = h*w. Kept for
 * programs written against the first interface (benchmarks): fmr_dc_set then sets lambda and
 * tolerances and reads the options. */
fmr_err fmr_dc_create(fmr_dc **dc, fmr_sense *op, size_t h, size_t w);
fmr_err fmr_dc_set(fmr_dc *dc, double lambda, double rtol, int max_it);
void fmr_dc_destroy(fmr_dc **dc);

/* rhs: (whole on every rank); x: initial guess in (zeros if x_is_guess is 0), solution out (whole
 * on every rank). Fails with FMR_ERR_VALUE if the solve diverges or meets NaN. */
fmr_err fmr_dc_solve(fmr_dc *dc, const fmr_cfloat *rhs, fmr_cfloat *x, int x_is_guess,
                     fmr_dc_stats *st);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

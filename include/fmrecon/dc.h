/* Data consistency: x = argmin ||A x - y||^2 + lambda ||x - z||^2, i.e. the linear solve
 *     (A^H A + lambda I) x = A^H y + lambda z,
 * posed as a PETSc KSP (CG, Hermitian) on a shell matrix, over the communicator of the ranks that
 * share the frame's coils. Used by CG-SENSE (z = 0), as the x-update of compressed sensing, and in
 * every cascade of the unrolled network. All KSP options (-ksp_rtol, -ksp_max_it, -ksp_monitor,
 * -options_file ...) apply; fmrecon's own settings are the defaults they override.
 *
 * Precision: Debian's complex PETSc is double; the operator runs in single precision (FFTW float),
 * converting the vector once per product (see docs/classical.md for the measurement). */
#ifndef FMRECON_DC_H
#define FMRECON_DC_H

#include <mpi.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
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

typedef struct fmr_dc fmr_dc;

typedef struct fmr_dc_stats {
    int iterations;
    double residual; /* final residual norm reported by the KSP */
    double seconds;
} fmr_dc_stats;

/* op: the SENSE operator of this rank's coils (its communicator is the solve's); n = h*w. */
fmr_err fmr_dc_create(fmr_dc **dc, fmr_sense *op, size_t h, size_t w);
void fmr_dc_destroy(fmr_dc **dc);

/* Defaults before PETSc options: lambda >= 0, relative tolerance, iteration limit. */
fmr_err fmr_dc_set(fmr_dc *dc, double lambda, double rtol, int max_it);

/* rhs: A^H y + lambda z (h*w, full image on every rank); x: initial guess in (NULL-safe: zeros if
 * x_is_guess is 0), solution out (full image on every rank). Fails with FMR_ERR_VALUE if the solve
 * diverges or meets NaN. */
fmr_err fmr_dc_solve(fmr_dc *dc, const fmr_cfloat *rhs, fmr_cfloat *x, int x_is_guess,
                     fmr_dc_stats *st);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

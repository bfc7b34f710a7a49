/* The SENSE operator A = M.F.S for one frame, and root-sum-of-squares coil combination.
 *   forward  A x   : image (h*w) -> masked multi-coil k-space (ncoils*h*w), F = centred ortho FFT
 *   adjoint  A^H y : multi-coil k-space -> image, summed over every coil of the communicator
 *   normal   A^H A : image -> image
 * Coils may be split across the ranks of a communicator: each rank holds coils [coil0, coil0+ncoils)
 * and the adjoint/normal sum their contributions with one MPI_Allreduce. */
#ifndef FMRECON_SENSE_H
#define FMRECON_SENSE_H

#include <mpi.h>
#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_sense fmr_sense;

typedef struct fmr_sense_desc {
    size_t h, w;            /* image size: readout rows x phase-encode columns */
    size_t ncoils;          /* coils held by this rank */
    const fmr_cfloat *maps; /* ncoils*h*w sensitivities; borrowed, must outlive the operator */
    MPI_Comm comm;          /* ranks sharing the coils of this frame (MPI_COMM_SELF if none) */
    int slabs;              /* slab mode: every rank of comm holds all coils; each coil image is
                               split in row slabs across comm and the 2-D FFTs run on FFTW3-MPI.
                               Inputs and outputs stay whole images on every rank. */
} fmr_sense_desc;

fmr_err fmr_sense_create(fmr_sense **op, const fmr_sense_desc *desc);
void fmr_sense_destroy(fmr_sense **op);

/* Sampling mask: mask_ndim 1 -> mask[w] per phase-encode column, 2 -> mask[h*w];
 * NULL -> fully sampled. Values are weights (normally 0/1) and must be finite and >= 0.
 * Can be changed between applications (per-frame kt masks). */
fmr_err fmr_sense_set_mask(fmr_sense *op, const float *mask, int mask_ndim);

fmr_err fmr_sense_forward(fmr_sense *op, const fmr_cfloat *x, fmr_cfloat *y);
fmr_err fmr_sense_adjoint(fmr_sense *op, const fmr_cfloat *y, fmr_cfloat *x);
fmr_err fmr_sense_normal(fmr_sense *op, const fmr_cfloat *x, fmr_cfloat *out);

/* Seconds this operator has spent inside FFTW (for benchmarks). */
double fmr_sense_fft_seconds(const fmr_sense *op);
/* Time, bytes and calls of the coil sums across the operator's ranks (for the cost model). */
void fmr_sense_comm_stats(const fmr_sense *op, double *seconds, size_t *bytes, size_t *calls);

/* Whether the operator runs in slab mode (every rank holds every coil). */
int fmr_sense_is_slab(const fmr_sense *op);

/* The communicator the operator sums its coils over. */
MPI_Comm fmr_sense_comm(const fmr_sense *op);

/* out[p] = sqrt(sum_c |img[c][p]|^2) over ncoils images of n pixels. */
void fmr_rss(const fmr_cfloat *img, size_t ncoils, size_t n, float *out);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* Coil sensitivities by ESPIRiT (Uecker et al., MRM 2014), with the options of `bart ecalib`. */
#ifndef FMRECON_CALIB_H
#define FMRECON_CALIB_H

#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_espirit_opts {
    int kernel;       /* kernel size k (k x k), default 6 (bart -k) */
    int cal;          /* calibration region limit, default 24 (bart -r) */
    double threshold; /* keep singular vectors with s_i / s_0 > sqrt(threshold), default 0.001 (bart -t) */
    double crop;      /* zero the map where the top eigenvalue < crop, default 0.8 (bart -c) */
} fmr_espirit_opts;

void fmr_espirit_defaults(fmr_espirit_opts *o);

/* kspace: ncoils x h x w (centred, phase-encode last); sampled: w flags (non-zero = this column
 * holds data). The calibration region is the largest fully sampled block around the k-space centre,
 * limited to cal x cal. maps: ncoils x h x w out; eig (optional, h*w): the top eigenvalue.
 * The phase of each pixel's map is referred to the strongest coil, so images stay smooth. */
fmr_err fmr_espirit(const fmr_cfloat *kspace, const float *sampled, size_t ncoils, size_t h,
                    size_t w, const fmr_espirit_opts *opt, fmr_cfloat *maps, float *eig);

/* Time-averaged k-space of a cine slice: out = sum_t M_t y_t / sum_t M_t per column, and the
 * union of the masks in sampled (w). frames x ncoils x h x w in. */
void fmr_time_average(const fmr_cfloat *kspace, const float *masks, size_t frames, size_t ncoils,
                      size_t h, size_t w, fmr_cfloat *out, float *sampled);

/* Noise prewhitening: from noise samples (coils x n, coil-major), the covariance
 * Psi = n n^H / n = L L^H and the whitening matrix W = L^-1 (coils x coils, row-major, lower
 * triangular), so W y has identity noise covariance. Fails if Psi is not positive definite. */
fmr_err fmr_coil_whitener(const fmr_cfloat *noise, size_t ncoils, size_t n, fmr_cfloat *W);

/* SVD coil compression: from a coil covariance (ncoils x ncoils, Hermitian, row-major), the
 * nvirtual x ncoils matrix U^H of its top eigenvectors (virtual coil v = sum_c U^H[v][c] coil c),
 * and the fraction of the energy kept. */
fmr_err fmr_coil_compressor(const double _Complex *cov, size_t ncoils, size_t nvirtual,
                            fmr_cfloat *UH, double *energy_kept);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* Hermitian eigen-decompositions for the calibration code, called in LAPACK's native column-major
 * layout on buffers we allocate with slack: OpenBLAS's hand-written kernels read a vector width
 * past the ends of arrays, which LAPACKE's exactly-sized row-major transposition copies turn into
 * crashes under AddressSanitizer (and invalid reads under valgrind). */
#ifndef FMR_CALIB_HEEV_H
#define FMR_CALIB_HEEV_H

#include <complex.h>
#include <stddef.h>

#include "fmrecon/array.h"

/* In: a (n x n, row-major, upper triangle valid). Out: a's columns are the eigenvectors, ev the
 * eigenvalues ascending (as LAPACKE_zheevd(LAPACK_ROW_MAJOR, 'V', 'U', ...)). Returns 0 on success. */
int fmr_zheevd_rm(size_t n, double complex *a, double *ev);
int fmr_cheevd_rm(size_t n, fmr_cfloat *a, float *ev);

/* Extra elements to allocate behind any array handed to LAPACK. */
#define FMR_LAPACK_SLACK 64

#endif

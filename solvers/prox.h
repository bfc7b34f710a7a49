/* Proximal operators of the compressed-sensing regularisers. */
#ifndef FMR_PROX_H
#define FMR_PROX_H

#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"

/* z = argmin 1/2 ||z - b||^2 + alpha ||F_t z||_1 for a T x n series (frame-major, n pixels),
 * F_t the unitary DFT along time: soft thresholding of the temporal spectrum. In place on b;
 * work holds T*n values. */
fmr_err fmr_prox_temporal_l1(fmr_cfloat *b, size_t T, size_t n, double alpha, fmr_cfloat *work);

/* z = argmin 1/2 ||z - b||^2 + alpha TV(z) for one h x w complex image, isotropic TV with forward
 * differences (Neumann boundary), by the fast gradient projection of Beck and Teboulle (2009) on
 * the dual. In place on b; work holds 6*h*w values. */
void fmr_prox_tv(fmr_cfloat *b, size_t h, size_t w, double alpha, int iters, fmr_cfloat *work);

#endif

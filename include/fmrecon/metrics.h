/* Image-quality metrics with fastMRI's conventions (fastmri/evaluate.py). */
#ifndef FMRECON_METRICS_H
#define FMRECON_METRICS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ||ref - rec||^2 / ||ref||^2 over n values (accumulated in double). */
double fmr_nmse(const float *ref, const float *rec, size_t n);

/* 10 log10(data_range^2 / MSE); fastMRI passes the reference volume's max as data_range. */
double fmr_psnr(const float *ref, const float *rec, size_t n, double data_range);

/* Largest value of n floats. */
float fmr_maxf(const float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif

/* Image-quality metrics with fastMRI's conventions (fastmri/evaluate.py). */
#ifndef FMRECON_METRICS_H
#define FMRECON_METRICS_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* ||ref - rec||^2 / ||ref||^2 over n values (accumulated in double). */
double fmr_nmse(const float *ref, const float *rec, size_t n);

/* 10 log10(data_range^2 / MSE); fastMRI passes the reference volume's max as data_range. */
double fmr_psnr(const float *ref, const float *rec, size_t n, double data_range);

/* Largest value of n floats. */
float fmr_maxf(const float *x, size_t n);

/* SSIM of one h x w image exactly as scikit-image's structural_similarity with its defaults:
 * 7x7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (N/(N-1)), mean of the SSIM map
 * over the pixels at least 3 from every border. Computed in double. Needs h, w >= 7. */
double fmr_ssim(const float *ref, const float *rec, size_t h, size_t w, double data_range);

typedef struct fmr_image_metrics {
    size_t frame, slice;
    double psnr, ssim, nmse;
} fmr_image_metrics;

typedef struct fmr_volume_metrics {
    double psnr, ssim, nmse; /* fastMRI: volume PSNR/NMSE, SSIM = mean over images; CMRxRecon:
                                means over the per-image values */
    size_t h, w;             /* evaluated image size (after cropping) */
    size_t nimages;
    fmr_image_metrics *images;
} fmr_volume_metrics;

typedef enum fmr_eval_mode {
    FMR_EVAL_FASTMRI = 0,   /* data range = reference volume max; images centre-cropped to the
                               smaller of the two sizes */
    FMR_EVAL_CMRXRECON = 1, /* CMRxRecon ranking: central 2 slices (all if < 3), frames 1-3,
                               centre crop (round(h/3), round(w/2)), each image divided by its max */
} fmr_eval_mode;

/* Scores REC against REF. Each file's image dataset is 'reconstruction' or 'reconstruction_rss',
 * shaped (frames, slices, h, w) or (slices, h, w). */
fmr_err fmr_eval_files(const char *ref_path, const char *rec_path, fmr_eval_mode mode,
                       fmr_volume_metrics *out);
void fmr_volume_metrics_free(fmr_volume_metrics *m);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* Bilinear resizing of image planes (oneDNN resampling, half-pixel centres: PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) without antialiasing). */
#ifndef FMR_NN_RESIZE_H
#define FMR_NN_RESIZE_H

#include <stddef.h>

#include "fmrecon/error.h"

/* n planes of ih x iw -> n planes of oh x ow (out must not alias in). */
fmr_err fmr_resize_bilinear(const float *in, size_t n, int ih, int iw, int oh, int ow, float *out);

#endif

/* DINOv2's position table, resampled once to the input's patch grid (docs/encoders.md). */
#ifndef FMR_NN_POS_RESAMPLE_H
#define FMR_NN_POS_RESAMPLE_H

#include "fmrecon/error.h"

/* in: (gh_in * gw_in, D) rows in row-major grid order; out: (gh * gw, D). */
fmr_err fmr_pos_resample(const float *in, int gh_in, int gw_in, int d, int gh, int gw, float *out);

#endif

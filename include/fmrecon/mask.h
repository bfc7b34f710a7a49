/* Phase-encode undersampling masks (0/1 per phase-encode column) and their description. */
#ifndef FMRECON_MASK_H
#define FMRECON_MASK_H

#include <stddef.h>

#include "fmrecon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CMRxRecon "Uniform": every accel-th column from column 0, plus a centred block of acs columns
 * starting at floor(w/2) - floor(acs/2) (MATLAB zpad centring). */
fmr_err fmr_mask_uniform(size_t w, int accel, size_t acs, float *mask);

typedef struct fmr_mask_stats {
    size_t sampled;        /* columns with mask != 0 inside [pad_left, pad_right) */
    size_t acquired;       /* pad_right - pad_left */
    double accel;          /* acquired / sampled */
    size_t acs, acs_start; /* contiguous sampled block around column w/2 (acs = 0 if none) */
} fmr_mask_stats;

void fmr_mask_describe(const float *mask, size_t w, size_t pad_left, size_t pad_right,
                       fmr_mask_stats *st);

#ifdef __cplusplus
}
#endif
#endif

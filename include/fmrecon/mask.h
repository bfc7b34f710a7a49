/* Phase-encode undersampling masks (0/1 per phase-encode column) and their description. */
#ifndef FMRECON_MASK_H
#define FMRECON_MASK_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* CMRxRecon "Uniform": every accel-th column from column 0, plus a centred block of acs columns
 * starting at floor(w/2) - floor(acs/2) (MATLAB zpad centring). */
fmr_err fmr_mask_uniform(size_t w, int accel, size_t acs, float *mask);

typedef enum fmr_mask_type {
    FMR_MASK_RANDOM = 1,          /* fastMRI RandomMaskFunc */
    FMR_MASK_EQUISPACED,          /* fastMRI EquiSpacedMaskFunc */
    FMR_MASK_EQUISPACED_FRACTION, /* fastMRI EquispacedMaskFractionFunc */
    FMR_MASK_UNIFORM,             /* CMRxRecon Uniform (every R-th line + ACS) */
    FMR_MASK_KTUNIFORM,           /* CMRxRecon ktUniform (lattice shifted every frame) */
    FMR_MASK_KTGAUSSIAN,          /* CMRxRecon ktGaussian (variable density, new lines every frame) */
} fmr_mask_type;

typedef struct fmr_mask_spec {
    fmr_mask_type type;
    double accel;           /* R >= 1 */
    long acs;               /* centre lines; < 0: from center_fraction (fastMRI) or the default */
    double center_fraction; /* fastMRI: used when acs < 0 (0: 0.08 for R < 8, else 0.04) */
    unsigned long long seed;
    /* fmr_undersample_file on an input that is already undersampled: 0 refuses it; 1 proceeds
     * only when this mask keeps a subset of the input's acquired lines (a mask that needs lines
     * the input lacks would make the effective R silently larger than the nominal one). */
    int allow_subset;
} fmr_mask_spec;

/* Parses "random", "equispaced", "equispaced_fraction", "uniform", "ktuniform", "ktgaussian". */
fmr_err fmr_mask_parse_type(const char *name, fmr_mask_type *t);
const char *fmr_mask_type_name(fmr_mask_type t);
/* Whether the type draws a new mask per frame (k-t masks). */
int fmr_mask_is_kt(fmr_mask_type t);

/* frames masks of w columns into mask[frames*w] (0/1); shared types repeat one mask. The ACS count
 * actually used is returned in *acs_used (may be NULL). Deterministic for a given seed. */
fmr_err fmr_mask_generate(const fmr_mask_spec *spec, size_t w, size_t frames, float *mask,
                          size_t *acs_used);

typedef struct fmr_mask_stats {
    size_t sampled;        /* columns with mask != 0 inside [pad_left, pad_right) */
    size_t acquired;       /* pad_right - pad_left */
    double accel;          /* acquired / sampled */
    size_t acs, acs_start; /* contiguous sampled block around column w/2 (acs = 0 if none) */
} fmr_mask_stats;

void fmr_mask_describe(const float *mask, size_t w, size_t pad_left, size_t pad_right,
                       fmr_mask_stats *st);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* The unrolled network's model bundle (docs/model.md, "Bundle file"): decoder weights, the
 * learned data-consistency weights and the metadata that ties it to one encoder checkpoint. */
#ifndef FMR_NN_BUNDLE_H
#define FMR_NN_BUNDLE_H

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"

typedef struct fmr_bundle {
    fmr_safetensors *st;
    char path[1024];
    char encoder[64];
    char encoder_sha256[65];
    int taps[4], ntaps;
    int unet;         /* denoiser: 0 = unetr (frozen encoder + decoder), 1 = fastMRI U-Net */
    int chans, pools; /* unet */
    int grid, feature_size, cascades, shared, soft_dc, cg_iters;
    float *dc_weight; /* lambda_t (cg) or eta_t (soft), [cascades] */
} fmr_bundle;

fmr_err fmr_bundle_open(const char *path, fmr_bundle **b);
void fmr_bundle_close(fmr_bundle **b);

#endif

/* The fastMRI U-Net regulariser (E2E-VarNet's, docs/model.md "U-Net denoiser"), on oneDNN. */
#ifndef FMR_NN_UNET_H
#define FMR_NN_UNET_H

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"

typedef struct fmr_unet fmr_unet;

/* chans: first level's channels; pools: pooling levels. Images must be multiples of 2^pools
 * (the caller pads). st NULL: random weights (benchmarks). */
fmr_err fmr_unet_create(const fmr_safetensors *st, const char *prefix, int chans, int pools,
                        fmr_unet **u);
void fmr_unet_destroy(fmr_unet **u);

/* image: (b, 2, h, w) -> out: (b, 2, h, w). */
fmr_err fmr_unet_forward(fmr_unet *u, int b, int h, int w, const float *image, float *out);

#endif

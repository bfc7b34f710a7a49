/* The unrolled network's trainable UNETR-style decoder (docs/model.md), on oneDNN, and the
 * bilinear resizing between the data's matrix and the decoder's grid. Public beside the encoder
 * (fmrecon/encoder.h) so that programs, such as the benchmark, can time or reuse them. */
#ifndef FMRECON_DECODER_H
#define FMRECON_DECODER_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_unetr_config {
    int width;        /* encoder width D */
    int grid;         /* token grid G; the decoder works at 16 G */
    int feature_size; /* F */
    int ntaps;        /* 3 (bottleneck = third tap) or 4 */
} fmr_unetr_config;

typedef struct fmr_unetr fmr_unetr;

/* Weights are read from st under prefix (e.g. "cascades.0.decoder."); st must outlive the
 * decoder. Every tensor is checked (name and shape) here. st NULL: random weights of the right
 * shapes (benchmarks). */
fmr_err fmr_unetr_create(const fmr_safetensors *st, const char *prefix, const fmr_unetr_config *c,
                         fmr_unetr **u);
void fmr_unetr_destroy(fmr_unetr **u);
/* bf16 activations and weights in the following passes (where the CPU has AVX512-BF16/AMX;
 * instance-norm statistics and the output stay f32). Returns whether bf16 is used. */
int fmr_unetr_set_bf16(fmr_unetr *u, int on);
/* The oneDNN implementation of the largest convolution of the batch-b plan. */
fmr_err fmr_unetr_impl(fmr_unetr *u, int b, const char **impl);

/* image: (b, 2, 16G, 16G); taps[k]: hidden states (b, 1 + G*G, D); out: (b, 2, 16G, 16G). */
fmr_err fmr_unetr_forward(fmr_unetr *u, int b, const float *image, const float *const *taps,
                          float *out);

/* Bilinear resizing of image planes (oneDNN resampling, half-pixel centres: PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) without antialiasing).
 * n planes of ih x iw -> n planes of oh x ow (out must not alias in). */
fmr_err fmr_resize_bilinear(const float *in, size_t n, int ih, int iw, int oh, int ow, float *out);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

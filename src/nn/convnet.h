/* A small sequential convolutional-network builder on oneDNN for the decoders (UNETR, U-Net):
 * a plan for one batch size holds the primitives, packed weights and activation buffers, built
 * once by calling the layer functions in order and replayed by fmr_cn_run. Activations live in
 * the layouts oneDNN's convolutions choose (format_tag_any: nChw16c blocks on AVX-512), f32 or
 * bf16 (fmr_cn_set_bf16); inputs are copied in and the output out by reorders at the boundary.
 * FMR_DECODER_PLAIN=1 in the environment builds the previous plan instead (plain NCHW f32,
 * instance norm as layer normalisation plus a separate activation) for side-by-side timing.
 * Weights come from a safetensors file under a key prefix (PyTorch layouts, names and shapes
 * checked), or are random (He-scaled) for benchmarks. */
#ifndef FMR_NN_CONVNET_H
#define FMR_NN_CONVNET_H

#include <stdint.h>

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"

/* A tensor of the plan: logical (batch, c, h, w); id names its buffer and layout inside the plan
 * (p is only meaningful for the output, see fmr_cn_output). */
typedef struct fmr_cn_tens {
    float *p;
    int c, h, w, id;
} fmr_cn_tens;

typedef struct fmr_convnet fmr_convnet;

/* st NULL: random weights from seed. prefix is prepended to every key. */
fmr_err fmr_cn_create(fmr_convnet **n, int batch, const fmr_safetensors *st, const char *prefix,
                      uint64_t seed);
void fmr_cn_destroy(fmr_convnet **n);
int fmr_cn_batch(const fmr_convnet *n);
/* Activations and weights in bf16 (before any layer is added; instance-norm statistics and the
 * output stay f32). No effect on a CPU without AVX512-BF16/AMX. Returns whether bf16 is used. */
int fmr_cn_set_bf16(fmr_convnet *n);
/* FMR_DECODER_PLAIN set (read once by the owner at creation); fmr_cn_set_plain before any layer
 * chooses the previous plain-NCHW plan (f32) or the blocked one. */
int fmr_cn_plain_requested(void);
void fmr_cn_set_plain(fmr_convnet *n, int plain);
/* The oneDNN implementation of the plan's main (largest) convolution. */
const char *fmr_cn_conv_impl(const fmr_convnet *n);

/* An input: a caller buffer bound at run time (fmr_cn_bind(slot)) described by dims/strides
 * (4-D, logical NCHW), copied into the dense tensor t by a reorder. */
fmr_err fmr_cn_input(fmr_convnet *n, const int64_t dims[4], const int64_t strides[4],
                     fmr_cn_tens *t, int *slot);
fmr_err fmr_cn_bind(fmr_convnet *n, int slot, const void *ptr);

/* dst (a new tensor) = conv k x k (padding k/2, stride 1) of src, weight key.weight
 * [cout, cin, k, k], with key.bias [cout] if bias. */
fmr_err fmr_cn_conv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout, int k,
                    const char *key, int bias);
/* dst = ConvTranspose2d(kernel 2, stride 2, no bias) of src, key.weight [cin, cout, 2, 2]. */
fmr_err fmr_cn_deconv(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst, int cout,
                      const char *key);
/* In place: instance norm (eps 1e-5, no affine), then LeakyReLU(slope) if slope >= 0. */
fmr_err fmr_cn_inorm(fmr_convnet *n, const fmr_cn_tens *t, float slope);
/* In place: a = LeakyReLU(slope)(a + b). */
fmr_err fmr_cn_add_lrelu(fmr_convnet *n, const fmr_cn_tens *a, const fmr_cn_tens *b, float slope);
/* dst = cat(a, b) over channels. */
fmr_err fmr_cn_concat(fmr_convnet *n, const fmr_cn_tens *a, const fmr_cn_tens *b, fmr_cn_tens *dst);
/* dst = 2 x 2 average pooling, stride 2. */
fmr_err fmr_cn_avgpool(fmr_convnet *n, const fmr_cn_tens *src, fmr_cn_tens *dst);

/* Makes t the plan's output: plain NCHW f32 (a reorder is added if needed); t->p points at it
 * after fmr_cn_run. */
fmr_err fmr_cn_output(fmr_convnet *n, fmr_cn_tens *t);

fmr_err fmr_cn_run(fmr_convnet *n);

#endif

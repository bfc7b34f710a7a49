/* The frozen vision encoders fmrecon supports, as published: Hugging Face CLIP (vision tower),
 * Hugging Face DINOv2, and open_clip BiomedCLIP (timm trunk). This header describes a checkpoint's
 * architecture, read from its tensors the way a Hugging Face config would state it, and checks
 * that every tensor the first blocks need is present with a consistent shape. */
#ifndef FMRECON_ENCODER_H
#define FMRECON_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef enum fmr_encoder_family {
    FMR_ENC_CLIP = 1,   /* vision_model.* (CLIPModel / CLIPVisionModel) */
    FMR_ENC_DINOV2,     /* embeddings.*, encoder.layer.* (Dinov2Model) */
    FMR_ENC_BIOMEDCLIP, /* visual.trunk.* (open_clip TimmModel, fused qkv) */
} fmr_encoder_family;

typedef struct fmr_encoder_config {
    fmr_encoder_family family;
    const char *id;      /* e.g. "clip-vit-b16" */
    int width;           /* hidden size D */
    int heads;           /* D / 64 for every supported model */
    int mlp;             /* MLP hidden size */
    int patch;           /* patch size */
    int blocks;          /* transformer blocks present in the checkpoint */
    int pos_tokens;      /* rows of the position-embedding table (incl. CLS) */
    double eps;          /* LayerNorm epsilon */
    int quick_gelu;      /* CLIP: x sigmoid(1.702 x); else exact erf GELU */
    int pre_norm;        /* CLIP: LayerNorm on the embeddings */
    int layer_scale;     /* DINOv2 */
    int patch_bias;      /* patch convolution has a bias */
    int fused_qkv;       /* BiomedCLIP */
} fmr_encoder_config;

/* Parses "clip-vit-b16", "dinov2-s14", "dinov2-b14", "biomedclip-b16" (published sizes are then
 * enforced) or a family name "clip", "dinov2", "biomedclip" (any width, e.g. small test models). */
fmr_err fmr_encoder_parse_id(const char *id, fmr_encoder_family *family, int *width, int *patch);

/* Reads the architecture from st and checks every tensor of blocks 1..need_blocks (all present
 * blocks if need_blocks <= 0) and of the embeddings: missing or mis-shaped tensors are named. */
fmr_err fmr_encoder_inspect(const fmr_safetensors *st, const char *id, int need_blocks,
                            fmr_encoder_config *cfg);


/* A checkpoint of a published size (id) with random weights and the published key names and
 * shapes, blocks 1..blocks, position grid pos_grid: a safetensors image in *buf (free()). For
 * benchmarks and demos; never a substitute for the real weights. */
fmr_err fmr_encoder_synthesize(const char *id, int blocks, int pos_grid, uint64_t seed, void **buf, size_t *len);

/* ---- The forward pass (oneDNN) ---------------------------------------------------------- */

typedef struct fmr_encoder fmr_encoder;

typedef enum fmr_precision {
    FMR_PREC_F32 = 0, /* default */
    FMR_PREC_BF16,    /* bf16 matmul operands and weights (AVX512-BF16/AMX); LayerNorm, softmax,
                       * residual stream and outputs stay f32 */
} fmr_precision;

/* Loads the tensors blocks 1..max_block need from a safetensors checkpoint (id as in
 * fmr_encoder_parse_id). Blocks beyond max_block are neither read nor checked. */
fmr_err fmr_encoder_create(const char *weights, const char *id, int max_block, fmr_encoder **enc);
void fmr_encoder_destroy(fmr_encoder **enc);
const fmr_encoder_config *fmr_encoder_get_config(const fmr_encoder *enc);
/* Precision of the following forward passes. bf16 on a CPU without AVX512-BF16/AMX: one warning
 * line, and the encoder stays f32 (fmr_encoder_get_precision tells which one runs). */
fmr_err fmr_encoder_set_precision(fmr_encoder *enc, fmr_precision p);
fmr_precision fmr_encoder_get_precision(const fmr_encoder *enc);
/* "f32" or "bf16". */
const char *fmr_precision_name(fmr_precision p);
/* The oneDNN implementation of the encoder's main matmul (fc1) for the plan of (b, h, w) (built
 * if needed), e.g. "brg:avx512_core_amx". */
fmr_err fmr_encoder_impl(fmr_encoder *enc, int b, int h, int w, const char **impl);

/* Tokens (class token included) for an h x w input; h and w must be multiples of the patch. For
 * CLIP and BiomedCLIP the grid must equal the position table's; DINOv2's table is resampled. */
fmr_err fmr_encoder_tokens(const fmr_encoder *enc, int h, int w, int *tokens);

/* Runs the encoder on pixels (b, 3, h, w) float32, already normalised, and writes the hidden
 * states of the requested layers in Hugging Face `hidden_states` indexing (0 = embeddings,
 * i = output of block i) to out[k], each (b, tokens, width) float32. Computes no block beyond
 * the deepest requested layer. Primitives are created once per (b, h, w) and reused. */
fmr_err fmr_encoder_forward(fmr_encoder *enc, const float *pixels, int b, int h, int w, const int *layers,
                            int nlayers, float *const *out);

/* Floating-point operations of one forward pass up to block `blocks` (for GFLOP/s figures). */
double fmr_encoder_flops(const fmr_encoder *enc, int b, int h, int w, int blocks);

/* Best oneDNN matmul GFLOP/s over the encoder's own linear-layer shapes at batch b (the
 * benchmark's peak), f32 or bf16 math. */
fmr_err fmr_encoder_matmul_peak(const fmr_encoder *enc, int b, int h, int w, int bf16, int reps, double *gflops);
/* 1 when oneDNN can use native bf16 matmuls (AVX512-BF16 or AMX) on this CPU. */
int fmr_cpu_has_bf16(void);
const char *fmr_cpu_isa_name(void);

/* How a complex MR image becomes the encoder's 3-channel input (docs/encoders.md). */
typedef enum fmr_input_map {
    FMR_MAP_MAGNITUDE = 0, /* |x| / max|x| on all three channels */
    FMR_MAP_COMPLEX3,      /* [Re x, Im x, |x|] / max|x| */
} fmr_input_map;

/* Maps n complex images (ny, nx) to pixels (n, 3, size, size): per-image scaling by max|x|,
 * bilinear resize (oneDNN resampling, half-pixel centres) to size x size, then the encoder's
 * own per-channel mean/std (OpenAI CLIP for CLIP/BiomedCLIP, ImageNet for DINOv2). */
fmr_err fmr_encoder_map_input(const fmr_encoder *enc, fmr_input_map map, const void *images, size_t n, int ny,
                              int nx, int size, float *pixels);

/* The per-channel normalisation of a family. */
void fmr_encoder_mean_std(fmr_encoder_family family, float mean[3], float std[3]);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

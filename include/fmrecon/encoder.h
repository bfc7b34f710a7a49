/* The frozen vision encoders fmrecon supports, as published: Hugging Face CLIP (vision tower),
 * Hugging Face DINOv2, and open_clip BiomedCLIP (timm trunk). This header describes a checkpoint's
 * architecture, read from its tensors the way a Hugging Face config would state it, and checks
 * that every tensor the first blocks need is present with a consistent shape. */
#ifndef FMRECON_ENCODER_H
#define FMRECON_ENCODER_H

#include "fmrecon/error.h"
#include "fmrecon/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif

/* Tensor names of one encoder's weights by role, so the forward pass is written once for all
 * three published layouts (src/nn/encoder_spec.c holds the tables). */
#ifndef FMR_NN_ENCODER_KEYS_H
#define FMR_NN_ENCODER_KEYS_H

#include <stddef.h>

#include "fmrecon/encoder.h"

typedef enum fmr_enc_role {
    FMR_K_PATCH_W,
    FMR_K_PATCH_B,
    FMR_K_CLS,
    FMR_K_POS,
    FMR_K_PRE_W,
    FMR_K_PRE_B,
    FMR_K_LN1_W,
    FMR_K_LN1_B,
    FMR_K_Q_W,
    FMR_K_Q_B,
    FMR_K_K_W,
    FMR_K_K_B,
    FMR_K_V_W,
    FMR_K_V_B,
    FMR_K_QKV_W,
    FMR_K_QKV_B,
    FMR_K_O_W,
    FMR_K_O_B,
    FMR_K_LS1,
    FMR_K_LN2_W,
    FMR_K_LN2_B,
    FMR_K_FC1_W,
    FMR_K_FC1_B,
    FMR_K_FC2_W,
    FMR_K_FC2_B,
    FMR_K_LS2,
    FMR_K_COUNT
} fmr_enc_role;

/* Writes the full tensor name of role (block is 0-based; ignored for embedding roles) into buf.
 * Returns 0 when the family has no such tensor (e.g. CLIP's patch bias). */
int fmr_encoder_key(const fmr_encoder_config *c, fmr_enc_role role, int block, char *buf, size_t n);

#endif

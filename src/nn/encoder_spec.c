/* Published key layouts of the supported encoders (docs/encoders.md cites the modelling code),
 * as templates whose shapes are written in the architecture's symbols:
 *   D width, M MLP size, P patch, T position-table rows, Q = 3 D (fused qkv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <stdint.h>

#include "fmrecon/rng.h"
#include "encoder_keys.h"
#include "fmrecon/encoder.h"

typedef struct {
    const char *key;   /* printf template; %d = block index (0-based) */
    const char *shape; /* comma-separated symbols or numbers */
} key_spec;

typedef struct {
    fmr_encoder_family family;
    const char *name, *prefix, *patch_key, *pos_key, *fc1_key;
    const key_spec *embed, *block;
    double eps;
    int quick_gelu, pre_norm, layer_scale, patch_bias, fused_qkv;
} family_spec;

static const key_spec clip_embed[] = {{"embeddings.class_embedding", "D"},
                                      {"embeddings.patch_embedding.weight", "D,3,P,P"},
                                      {"embeddings.position_embedding.weight", "T,D"},
                                      {"pre_layrnorm.weight", "D"},
                                      {"pre_layrnorm.bias", "D"},
                                      {0}};
static const key_spec clip_block[] = {{"encoder.layers.%d.layer_norm1.weight", "D"},
                                      {"encoder.layers.%d.layer_norm1.bias", "D"},
                                      {"encoder.layers.%d.self_attn.q_proj.weight", "D,D"},
                                      {"encoder.layers.%d.self_attn.q_proj.bias", "D"},
                                      {"encoder.layers.%d.self_attn.k_proj.weight", "D,D"},
                                      {"encoder.layers.%d.self_attn.k_proj.bias", "D"},
                                      {"encoder.layers.%d.self_attn.v_proj.weight", "D,D"},
                                      {"encoder.layers.%d.self_attn.v_proj.bias", "D"},
                                      {"encoder.layers.%d.self_attn.out_proj.weight", "D,D"},
                                      {"encoder.layers.%d.self_attn.out_proj.bias", "D"},
                                      {"encoder.layers.%d.layer_norm2.weight", "D"},
                                      {"encoder.layers.%d.layer_norm2.bias", "D"},
                                      {"encoder.layers.%d.mlp.fc1.weight", "M,D"},
                                      {"encoder.layers.%d.mlp.fc1.bias", "M"},
                                      {"encoder.layers.%d.mlp.fc2.weight", "D,M"},
                                      {"encoder.layers.%d.mlp.fc2.bias", "D"},
                                      {0}};
static const key_spec dino_embed[] = {{"embeddings.cls_token", "1,1,D"},
                                      {"embeddings.position_embeddings", "1,T,D"},
                                      {"embeddings.patch_embeddings.projection.weight", "D,3,P,P"},
                                      {"embeddings.patch_embeddings.projection.bias", "D"},
                                      {0}};
static const key_spec dino_block[] = {
    {"encoder.layer.%d.norm1.weight", "D"},
    {"encoder.layer.%d.norm1.bias", "D"},
    {"encoder.layer.%d.attention.attention.query.weight", "D,D"},
    {"encoder.layer.%d.attention.attention.query.bias", "D"},
    {"encoder.layer.%d.attention.attention.key.weight", "D,D"},
    {"encoder.layer.%d.attention.attention.key.bias", "D"},
    {"encoder.layer.%d.attention.attention.value.weight", "D,D"},
    {"encoder.layer.%d.attention.attention.value.bias", "D"},
    {"encoder.layer.%d.attention.output.dense.weight", "D,D"},
    {"encoder.layer.%d.attention.output.dense.bias", "D"},
    {"encoder.layer.%d.layer_scale1.lambda1", "D"},
    {"encoder.layer.%d.norm2.weight", "D"},
    {"encoder.layer.%d.norm2.bias", "D"},
    {"encoder.layer.%d.mlp.fc1.weight", "M,D"},
    {"encoder.layer.%d.mlp.fc1.bias", "M"},
    {"encoder.layer.%d.mlp.fc2.weight", "D,M"},
    {"encoder.layer.%d.mlp.fc2.bias", "D"},
    {"encoder.layer.%d.layer_scale2.lambda1", "D"}, /* both LayerScales are named lambda1 */
    {0}};
static const key_spec bmc_embed[] = {{"cls_token", "1,1,D"},
                                     {"pos_embed", "1,T,D"},
                                     {"patch_embed.proj.weight", "D,3,P,P"},
                                     {"patch_embed.proj.bias", "D"},
                                     {0}};
static const key_spec bmc_block[] = {{"blocks.%d.norm1.weight", "D"},
                                     {"blocks.%d.norm1.bias", "D"},
                                     {"blocks.%d.attn.qkv.weight", "Q,D"},
                                     {"blocks.%d.attn.qkv.bias", "Q"},
                                     {"blocks.%d.attn.proj.weight", "D,D"},
                                     {"blocks.%d.attn.proj.bias", "D"},
                                     {"blocks.%d.norm2.weight", "D"},
                                     {"blocks.%d.norm2.bias", "D"},
                                     {"blocks.%d.mlp.fc1.weight", "M,D"},
                                     {"blocks.%d.mlp.fc1.bias", "M"},
                                     {"blocks.%d.mlp.fc2.weight", "D,M"},
                                     {"blocks.%d.mlp.fc2.bias", "D"},
                                     {0}};

static const family_spec families[] = {
    {FMR_ENC_CLIP, "clip", "vision_model.", "embeddings.patch_embedding.weight",
     "embeddings.position_embedding.weight", "encoder.layers.0.mlp.fc1.weight", clip_embed,
     clip_block, 1e-5, 1, 1, 0, 0, 0},
    {FMR_ENC_DINOV2, "dinov2", "", "embeddings.patch_embeddings.projection.weight",
     "embeddings.position_embeddings", "encoder.layer.0.mlp.fc1.weight", dino_embed, dino_block,
     1e-6, 0, 0, 1, 1, 0},
    {FMR_ENC_BIOMEDCLIP, "biomedclip", "visual.trunk.", "patch_embed.proj.weight", "pos_embed",
     "blocks.0.mlp.fc1.weight", bmc_embed, bmc_block, 1e-6, 0, 0, 0, 1, 1},
};

static const struct {
    const char *id;
    fmr_encoder_family f;
    int width, patch;
} published[] = {{"clip-vit-b16", FMR_ENC_CLIP, 768, 16},
                 {"dinov2-s14", FMR_ENC_DINOV2, 384, 14},
                 {"dinov2-b14", FMR_ENC_DINOV2, 768, 14},
                 {"biomedclip-b16", FMR_ENC_BIOMEDCLIP, 768, 16}};

fmr_err fmr_encoder_parse_id(const char *id, fmr_encoder_family *f, int *width, int *patch)
{
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++)
        if (!strcmp(id, published[i].id)) {
            *f = published[i].f, *width = published[i].width, *patch = published[i].patch;
            return FMR_OK;
        }
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!strcmp(id, families[i].name)) {
            *f = families[i].family, *width = 0, *patch = 0;
            return FMR_OK;
        }
    return fmr_error(
        FMR_ERR_ARG,
        "unknown encoder '%s' (clip-vit-b16, dinov2-s14, dinov2-b14, biomedclip-b16, or a "
        "family: clip, dinov2, biomedclip)",
        id);
}

static const fmr_st_tensor *find(const fmr_safetensors *st, const char *prefix, const char *key)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, key);
    return fmr_st_find(st, full);
}

/* Expected extent of one symbol. */
static long symbol(const char *s, size_t n, const fmr_encoder_config *c)
{
    if (n == 1 && *s == 'D') return c->width;
    if (n == 1 && *s == 'M') return c->mlp;
    if (n == 1 && *s == 'P') return c->patch;
    if (n == 1 && *s == 'T') return c->pos_tokens;
    if (n == 1 && *s == 'Q') return 3L * c->width;
    return strtol(s, NULL, 10);
}

static fmr_err check_key(const fmr_safetensors *st, const char *label, const family_spec *f,
                         const key_spec *k, int block, const fmr_encoder_config *c)
{
    char key[200];
    snprintf(key, sizeof key, k->key, block);
    const fmr_st_tensor *t = find(st, f->prefix, key);
    if (!t) {
        if (block >= 0)
            return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s%s' (%s encoder, block %d)",
                             label, f->prefix, key, f->name, block + 1);
        return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s%s' (%s encoder embeddings)", label,
                         f->prefix, key, f->name);
    }
    long want[FMR_ST_MAX_DIMS];
    int nd = 0;
    for (const char *p = k->shape; *p && nd < FMR_ST_MAX_DIMS;) {
        size_t n = strcspn(p, ",");
        want[nd++] = symbol(p, n, c);
        p += n + (p[n] == ',');
    }
    int ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++)
        ok = t->shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[128] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < nd; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%ld", i ? "," : "", want[i]);
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: tensor '%s%s' has shape [%s], expected [%s] (%s, width %d)", label,
                         f->prefix, key, got, exp, f->name, c->width);
    }
    const fmr_st_dtype dt = t->dtype;
    if (dt != FMR_ST_F32 && dt != FMR_ST_F16 && dt != FMR_ST_BF16 && dt != FMR_ST_F64)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: tensor '%s%s' has dtype %s, expected a floating-point type", label,
                         f->prefix, key, fmr_st_dtype_name(dt));
    return FMR_OK;
}

fmr_err fmr_encoder_inspect(const fmr_safetensors *st, const char *id, int need,
                            fmr_encoder_config *c)
{
    fmr_encoder_family fam;
    int width, patch;
    FMR_TRY(fmr_encoder_parse_id(id, &fam, &width, &patch));
    const family_spec *f = NULL;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (families[i].family == fam) f = &families[i];
    const char *label = fmr_st_label(st);
    memset(c, 0, sizeof *c);
    c->family = fam;
    c->id = id;
    c->eps = f->eps;
    c->quick_gelu = f->quick_gelu, c->pre_norm = f->pre_norm, c->layer_scale = f->layer_scale;
    c->patch_bias = f->patch_bias, c->fused_qkv = f->fused_qkv;
    /* The architecture, read off the tensors as a config file would state it. */
    const fmr_st_tensor *pw = find(st, f->prefix, f->patch_key),
                        *pos = find(st, f->prefix, f->pos_key),
                        *fc1 = find(st, f->prefix, f->fc1_key);
    if (!pw || pw->ndim != 4 || pw->shape[1] != 3 || pw->shape[2] != pw->shape[3])
        return fmr_error(
            FMR_ERR_FORMAT,
            "%s: no %s patch embedding '%s%s' of shape [D,3,P,P]; not a %s checkpoint?", label,
            f->name, f->prefix, f->patch_key, id);
    c->width = (int)pw->shape[0];
    c->patch = (int)pw->shape[2];
    if (!pos || pos->ndim < 2)
        return fmr_error(FMR_ERR_FORMAT, "%s: missing position embeddings '%s%s'", label, f->prefix,
                         f->pos_key);
    c->pos_tokens = (int)pos->shape[pos->ndim - 2];
    if (!fc1 || fc1->ndim != 2)
        return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s%s' (%s encoder, block 1)", label,
                         f->prefix, f->fc1_key, f->name);
    c->mlp = (int)fc1->shape[0];
    if (c->width % 64)
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: width %d is not a multiple of the 64-wide attention heads", label,
                         c->width);
    c->heads = c->width / 64;
    if (width && (c->width != width || c->patch != patch))
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: width %d and patch %d, but %s has width %d and patch %d", label,
                         c->width, c->patch, id, width, patch);
    /* blocks present: consecutive indices whose first tensor exists */
    char key[200];
    for (c->blocks = 0;; c->blocks++) {
        snprintf(key, sizeof key, f->block[0].key, c->blocks);
        if (!find(st, f->prefix, key)) break;
    }
    int check = need > 0 ? need : c->blocks;
    if (need > c->blocks)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: the encoder needs %d blocks, the checkpoint has %d (missing '%s%s')",
                         label, need, c->blocks, f->prefix,
                         (snprintf(key, sizeof key, f->block[0].key, c->blocks), key));
    for (const key_spec *k = f->embed; k->key; k++)
        FMR_TRY(check_key(st, label, f, k, -1, c));
    for (int b = 0; b < check; b++)
        for (const key_spec *k = f->block; k->key; k++)
            FMR_TRY(check_key(st, label, f, k, b, c));
    return FMR_OK;
}

/* Role -> name, per family; NULL where the family has no such tensor. */
static const char *const role_names[3][FMR_K_COUNT] = {
    [0] = {"embeddings.patch_embedding.weight",
           NULL,
           "embeddings.class_embedding",
           "embeddings.position_embedding.weight",
           "pre_layrnorm.weight",
           "pre_layrnorm.bias",
           "encoder.layers.%d.layer_norm1.weight",
           "encoder.layers.%d.layer_norm1.bias",
           "encoder.layers.%d.self_attn.q_proj.weight",
           "encoder.layers.%d.self_attn.q_proj.bias",
           "encoder.layers.%d.self_attn.k_proj.weight",
           "encoder.layers.%d.self_attn.k_proj.bias",
           "encoder.layers.%d.self_attn.v_proj.weight",
           "encoder.layers.%d.self_attn.v_proj.bias",
           NULL,
           NULL,
           "encoder.layers.%d.self_attn.out_proj.weight",
           "encoder.layers.%d.self_attn.out_proj.bias",
           NULL,
           "encoder.layers.%d.layer_norm2.weight",
           "encoder.layers.%d.layer_norm2.bias",
           "encoder.layers.%d.mlp.fc1.weight",
           "encoder.layers.%d.mlp.fc1.bias",
           "encoder.layers.%d.mlp.fc2.weight",
           "encoder.layers.%d.mlp.fc2.bias",
           NULL},
    [1] = {"embeddings.patch_embeddings.projection.weight",
           "embeddings.patch_embeddings.projection.bias",
           "embeddings.cls_token",
           "embeddings.position_embeddings",
           NULL,
           NULL,
           "encoder.layer.%d.norm1.weight",
           "encoder.layer.%d.norm1.bias",
           "encoder.layer.%d.attention.attention.query.weight",
           "encoder.layer.%d.attention.attention.query.bias",
           "encoder.layer.%d.attention.attention.key.weight",
           "encoder.layer.%d.attention.attention.key.bias",
           "encoder.layer.%d.attention.attention.value.weight",
           "encoder.layer.%d.attention.attention.value.bias",
           NULL,
           NULL,
           "encoder.layer.%d.attention.output.dense.weight",
           "encoder.layer.%d.attention.output.dense.bias",
           "encoder.layer.%d.layer_scale1.lambda1",
           "encoder.layer.%d.norm2.weight",
           "encoder.layer.%d.norm2.bias",
           "encoder.layer.%d.mlp.fc1.weight",
           "encoder.layer.%d.mlp.fc1.bias",
           "encoder.layer.%d.mlp.fc2.weight",
           "encoder.layer.%d.mlp.fc2.bias",
           "encoder.layer.%d.layer_scale2.lambda1"},
    [2] = {"patch_embed.proj.weight",
           "patch_embed.proj.bias",
           "cls_token",
           "pos_embed",
           NULL,
           NULL,
           "blocks.%d.norm1.weight",
           "blocks.%d.norm1.bias",
           NULL,
           NULL,
           NULL,
           NULL,
           NULL,
           NULL,
           "blocks.%d.attn.qkv.weight",
           "blocks.%d.attn.qkv.bias",
           "blocks.%d.attn.proj.weight",
           "blocks.%d.attn.proj.bias",
           NULL,
           "blocks.%d.norm2.weight",
           "blocks.%d.norm2.bias",
           "blocks.%d.mlp.fc1.weight",
           "blocks.%d.mlp.fc1.bias",
           "blocks.%d.mlp.fc2.weight",
           "blocks.%d.mlp.fc2.bias",
           NULL},
};

int fmr_encoder_key(const fmr_encoder_config *c, fmr_enc_role role, int block, char *buf, size_t n)
{
    const int fi = c->family - FMR_ENC_CLIP;
    const char *t = role_names[fi][role];
    if (!t) return 0;
    const char *prefix = families[fi].prefix;
    size_t lp = strlen(prefix);
    snprintf(buf, n, "%s", prefix);
    snprintf(buf + lp, n - lp, t, block);
    return 1;
}

/* ---- random checkpoints with the published layout (benchmarks, demos) ---------------------- */

static size_t shape_of(const key_spec *k, const fmr_encoder_config *c, int64_t *dims, int *nd)
{
    size_t numel = 1;
    *nd = 0;
    for (const char *p = k->shape; *p;) {
        size_t n = strcspn(p, ",");
        dims[*nd] = symbol(p, n, c);
        numel *= (size_t)dims[(*nd)++];
        p += n + (p[n] == ',');
    }
    return numel;
}

fmr_err fmr_encoder_synthesize(const char *id, int blocks, int pos_grid, uint64_t seed, void **buf,
                               size_t *len)
{
    fmr_encoder_family fam;
    int width, patch;
    FMR_TRY(fmr_encoder_parse_id(id, &fam, &width, &patch));
    if (!width)
        return fmr_error(FMR_ERR_ARG,
                         "a random checkpoint needs a published size, not the family '%s'", id);
    if (blocks < 0 || pos_grid <= 0)
        return fmr_error(FMR_ERR_ARG, "random checkpoint: bad blocks %d or grid %d", blocks,
                         pos_grid);
    const family_spec *f = &families[fam - FMR_ENC_CLIP];
    fmr_encoder_config c = {
        .width = width, .mlp = 4 * width, .patch = patch, .pos_tokens = 1 + pos_grid * pos_grid};
    /* header first: names, shapes, offsets */
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    char key[256], name[300];
    for (int b = -1; b < blocks; b++)
        for (const key_spec *k = b < 0 ? f->embed : f->block; k->key; k++) {
            int64_t dims[8];
            int nd;
            size_t numel = shape_of(k, &c, dims, &nd);
            snprintf(key, sizeof key, k->key, b);
            snprintf(name, sizeof name, "%s%s", f->prefix, key);
            cJSON *e = cJSON_AddObjectToObject(h, name), *sh = cJSON_AddArrayToObject(e, "shape"),
                  *of = cJSON_AddArrayToObject(e, "data_offsets");
            cJSON_AddStringToObject(e, "dtype", "F32");
            for (int i = 0; i < nd; i++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)dims[i]));
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
            off += numel * 4;
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        }
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "fmrecon",
                            "random weights with the published layout (benchmark only)");
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return fmr_error(FMR_ERR_NOMEM, "out of memory (random checkpoint header)");
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    unsigned char *out = malloc(8 + hl + pad + off);
    if (!out) {
        free(js);
        return fmr_error(FMR_ERR_NOMEM, "out of memory (random checkpoint of %zu bytes)", off);
    }
    const uint64_t n = hl + pad;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(n >> (8 * i));
    memcpy(out + 8, js, hl);
    memset(out + 8 + hl, ' ', pad);
    free(js);
    /* values: LayerNorm gains near 1, LayerScale 0.1, everything else small normal draws, so
     * activations stay O(1) through the blocks as in a trained network */
    fmr_rng rng;
    fmr_rng_seed(&rng, seed);
    float *v = (float *)(out + 8 + n);
    for (int b = -1; b < blocks; b++)
        for (const key_spec *k = b < 0 ? f->embed : f->block; k->key; k++) {
            int64_t dims[8];
            int nd;
            size_t numel = shape_of(k, &c, dims, &nd);
            const int gain = nd == 1 && strstr(k->key, "norm") && strstr(k->key, "weight");
            const int ls = strstr(k->key, "lambda1") != NULL;
            const double sd =
                nd == 1 && !gain && !ls
                    ? 0.02
                    : (strstr(k->key, "pos") || strstr(k->key, "cls") || strstr(k->key, "class")
                           ? 0.1
                           : 0.02);
            for (size_t i = 0; i < numel; i++) {
                float x = (float)(sd * fmr_rng_normal(&rng));
                if (gain) x += 1.0f;
                if (ls) x = 0.1f + 0.1f * x;
                memcpy(v + i, &x, sizeof x);
            }
            v += numel;
        }
    *buf = out, *len = 8 + n + off;
    return FMR_OK;
}

/* The frozen ViT encoders' forward pass on oneDNN. One code path serves CLIP, DINOv2 and
 * BiomedCLIP: the differences (pre-norm, LayerScale, patch bias, activation, eps, fused qkv,
 * position-table resampling) are read off fmr_encoder_config.
 *
 * Layout: the token matrix X is (b*tokens, D), row-major. Per block:
 *   U = LN1(X); QKV = U Wqkv + b  (q, k, v fused into one matmul even when stored separately)
 *   split QKV into per-head Q, K, V (one reorder); S = (Q K^T)/8; softmax; O = S V written
 *   straight into (b*tokens, D) by the destination strides; X += ls1 * (O Wo + bo)
 *   U = LN2(X); Hm = act(U W1 + b1); X += ls2 * (Hm W2 + b2)
 * Bias, activation and the residual add are matmul post-ops; LayerScale is folded into the
 * weights. Weights are reordered
 * once into the layout the matmul implementation asks for; a plan (primitives and buffers) is
 * built per (batch, height, width) and reused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/outcheck.h"
#include "dnnl_util.h"
#include "encoder_keys.h"
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"
#include "fmrecon/log.h"
#include "pos_resample.h"

static void *falloc(size_t bytes)
{
    void *p = NULL;
    return fmr_alloc(&p, bytes, "encoder buffers") ? NULL : p;
}

typedef struct block_params {
    float *ln1_w, *ln1_b, *qkv_b, *o_b, *ls1, *ln2_w, *ln2_b, *fc1_b, *fc2_b, *ls2;
} block_params;

/* Weights reordered into one set of matmul/convolution layouts. */
typedef struct packset {
    dnnl_memory_desc_t md_conv, md_qkv, md_o, md_fc1, md_fc2;
    dnnl_memory_t conv, *qkv, *o, *fc1, *fc2; /* per block */
    struct packset *next;
} packset;

typedef struct plan {
    int b, h, w, gh, gw, n;
    packset *pk;
    fmr_prim conv, patch, add_pos, ln, qkv, split, score, softmax, pv, proj, fc1, fc2, cvt;
    /* X, U, S, pos are f32 (residual stream, LayerNorm output, attention scores); the matmul
     * operands P, Ub, QKV, heads, Sb, Hm have the activation type (bf16 with --precision bf16,
     * else f32 and then Ub = U, Sb = S) */
    float *X, *U, *S, *pos; /* pos: (n, D) incl. class row */
    void *QKV, *heads, *Hm, *P, *Ub, *Sb;
    dnnl_memory_t m_pix, m_P, m_Pk, m_Xflat, m_pos, m_Xtok, m_X, m_U, m_QKV, m_qkv5, m_heads, m_Q,
        m_Kt, m_V, m_S, m_O, m_Hm, m_Uf, m_Ub, m_Sb;
    dnnl_memory_t m_convb, m_lnw, m_lnb, m_bD, m_b3D, m_bM;
    struct plan *next;
} plan;

struct fmr_encoder {
    fmr_encoder_config cfg;
    fmr_safetensors *st;
    int nblocks;
    fmr_precision prec;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    float *cls, *pos, *patch_b, *pre_w, *pre_b;
    int pos_grid;
    block_params *blk;
    packset *packs;
    plan *plans;
};

static char *keyname(const fmr_encoder *e, fmr_enc_role r, int block, char *buf, size_t n)
{
    return fmr_encoder_key(&e->cfg, r, block, buf, n) ? buf : NULL;
}

/* Reads a tensor of numel floats (any stored shape) into a new aligned buffer. */
static fmr_err read_vec(const fmr_encoder *e, fmr_enc_role r, int block, size_t numel, float **out)
{
    char key[256];
    *out = NULL;
    if (!keyname(e, r, block, key, sizeof key)) return FMR_OK;
    const fmr_st_tensor *t = fmr_st_find(e->st, key);
    if (!t) return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s'", fmr_st_label(e->st), key);
    if (t->numel != numel)
        return fmr_error(FMR_ERR_SHAPE, "%s: tensor '%s' has %zu values, expected %zu",
                         fmr_st_label(e->st), key, t->numel, numel);
    float *v = falloc(numel * sizeof(float));
    if (!v) return fmr_error(FMR_ERR_NOMEM, "out of memory reading '%s'", key);
    fmr_err err = fmr_st_read_weights(e->st, key, -1, NULL, v);
    if (err) {
        fmr_free(v);
        return err;
    }
    *out = v;
    return FMR_OK;
}

static void free_block(block_params *p)
{
    float **f[] = {&p->ln1_w, &p->ln1_b, &p->qkv_b, &p->o_b,   &p->ls1,
                   &p->ln2_w, &p->ln2_b, &p->fc1_b, &p->fc2_b, &p->ls2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        fmr_free(*f[i]), *f[i] = NULL;
}

/* q, k, v biases concatenated; fused checkpoints store them that way already. */
static fmr_err read_qkv_bias(const fmr_encoder *e, int blk, float **out)
{
    const size_t D = (size_t)e->cfg.width;
    if (e->cfg.fused_qkv) return read_vec(e, FMR_K_QKV_B, blk, 3 * D, out);
    float *v = falloc(3 * D * sizeof(float));
    if (!v) return fmr_error(FMR_ERR_NOMEM, "out of memory (qkv bias)");
    const fmr_enc_role r[3] = {FMR_K_Q_B, FMR_K_K_B, FMR_K_V_B};
    for (int s = 0; s < 3; s++) {
        float *part;
        fmr_err err = read_vec(e, r[s], blk, D, &part);
        if (err) {
            fmr_free(v);
            return err;
        }
        memcpy(v + s * D, part, D * sizeof(float));
        fmr_free(part);
    }
    *out = v;
    return FMR_OK;
}

static fmr_err load_block(fmr_encoder *e, int i)
{
    const size_t D = (size_t)e->cfg.width, M = (size_t)e->cfg.mlp;
    block_params *p = &e->blk[i];
    FMR_TRY(read_vec(e, FMR_K_LN1_W, i, D, &p->ln1_w));
    FMR_TRY(read_vec(e, FMR_K_LN1_B, i, D, &p->ln1_b));
    FMR_TRY(read_qkv_bias(e, i, &p->qkv_b));
    FMR_TRY(read_vec(e, FMR_K_O_B, i, D, &p->o_b));
    FMR_TRY(read_vec(e, FMR_K_LN2_W, i, D, &p->ln2_w));
    FMR_TRY(read_vec(e, FMR_K_LN2_B, i, D, &p->ln2_b));
    FMR_TRY(read_vec(e, FMR_K_FC1_B, i, M, &p->fc1_b));
    FMR_TRY(read_vec(e, FMR_K_FC2_B, i, D, &p->fc2_b));
    if (e->cfg.layer_scale) {
        /* LayerScale ls * (u W^T + b) is folded into the layer: rows of W and entries of b are
         * scaled once here and at packing (oneDNN 2.6's AVX2 matmul has no per-column binary
         * post-op; the reference fallback is 1000x slower) */
        FMR_TRY(read_vec(e, FMR_K_LS1, i, D, &p->ls1));
        FMR_TRY(read_vec(e, FMR_K_LS2, i, D, &p->ls2));
        for (size_t j = 0; j < D; j++)
            p->o_b[j] *= p->ls1[j], p->fc2_b[j] *= p->ls2[j];
    }
    return FMR_OK;
}

fmr_err fmr_encoder_create(const char *weights, const char *id, int max_block, fmr_encoder **out)
{
    *out = NULL;
    fmr_encoder *e = calloc(1, sizeof *e);
    if (!e) return fmr_error(FMR_ERR_NOMEM, "out of memory (encoder)");
    fmr_err err = fmr_st_open(weights, &e->st);
    if (!err) fmr_input_register(weights); /* so no output of this process can replace it */
    if (!err) err = fmr_encoder_inspect(e->st, id, max_block, &e->cfg);
    if (!err && max_block < 0)
        err = fmr_error(FMR_ERR_ARG, "encoder block count %d is negative", max_block);
    if (err) {
        fmr_st_close(&e->st);
        free(e);
        return err;
    }
    e->nblocks = max_block;
    const size_t D = (size_t)e->cfg.width;
    const int T = e->cfg.pos_tokens;
    e->pos_grid = (int)lround(sqrt((double)(T - 1)));
    if (e->pos_grid * e->pos_grid != T - 1)
        err = fmr_error(FMR_ERR_SHAPE, "%s: position table has %d rows, not 1 + a square grid",
                        weights, T);
    if (!err) err = fmr_dnnl_acquire(&e->eng, &e->strm);
    if (err) {
        fmr_st_close(&e->st);
        free(e);
        return err;
    }
    if (!err) err = read_vec(e, FMR_K_CLS, 0, D, &e->cls);
    if (!err) err = read_vec(e, FMR_K_POS, 0, (size_t)T * D, &e->pos);
    if (!err) err = read_vec(e, FMR_K_PATCH_B, 0, D, &e->patch_b);
    if (!err && e->cfg.pre_norm) err = read_vec(e, FMR_K_PRE_W, 0, D, &e->pre_w);
    if (!err && e->cfg.pre_norm) err = read_vec(e, FMR_K_PRE_B, 0, D, &e->pre_b);
    if (!err && max_block > 0 && !(e->blk = calloc((size_t)max_block, sizeof *e->blk)))
        err = fmr_error(FMR_ERR_NOMEM, "out of memory (encoder blocks)");
    for (int i = 0; !err && i < max_block; i++)
        err = load_block(e, i);
    if (err) {
        fmr_encoder_destroy(&e);
        return err;
    }
    *out = e;
    return FMR_OK;
}

const fmr_encoder_config *fmr_encoder_get_config(const fmr_encoder *e)
{
    return &e->cfg;
}

static void free_plan(plan *p)
{
    fmr_prim *pr[] = {&p->conv,  &p->patch,   &p->add_pos, &p->ln,   &p->qkv, &p->split, &p->score,
                      &p->softmax, &p->pv,    &p->proj,    &p->fc1, &p->fc2, &p->cvt};
    for (size_t i = 0; i < sizeof pr / sizeof pr[0]; i++)
        fmr_prim_destroy(pr[i]);
    dnnl_memory_t *m[] = {&p->m_pix, &p->m_P,   &p->m_Pk,  &p->m_Xflat, &p->m_pos,   &p->m_Xtok,
                          &p->m_X,   &p->m_U,   &p->m_QKV, &p->m_qkv5,  &p->m_heads, &p->m_Q,
                          &p->m_Kt,  &p->m_V,   &p->m_S,   &p->m_O,     &p->m_Hm,    &p->m_convb,
                          &p->m_lnw, &p->m_lnb, &p->m_bD,  &p->m_b3D,   &p->m_bM,    &p->m_Uf,
                          &p->m_Ub,  &p->m_Sb};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (*m[i]) dnnl_memory_destroy(*m[i]);
    void *f[] = {p->X, p->U, p->QKV, p->heads, p->S, p->Hm, p->P, p->pos};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        fmr_free(f[i]);
    if (p->Ub != p->U) fmr_free(p->Ub);
    if (p->Sb != p->S) fmr_free(p->Sb);
    free(p);
}

static void free_packset(packset *k, int nblocks)
{
    if (k->conv) dnnl_memory_destroy(k->conv);
    dnnl_memory_t *sets[] = {k->qkv, k->o, k->fc1, k->fc2};
    for (size_t s = 0; s < 4; s++) {
        if (!sets[s]) continue;
        for (int i = 0; i < nblocks; i++)
            if (sets[s][i]) dnnl_memory_destroy(sets[s][i]);
        free(sets[s]);
    }
    free(k);
}

void fmr_encoder_destroy(fmr_encoder **ep)
{
    fmr_encoder *e = *ep;
    if (!e) return;
    for (plan *p = e->plans, *n; p; p = n)
        n = p->next, free_plan(p);
    for (packset *k = e->packs, *n; k; k = n)
        n = k->next, free_packset(k, e->nblocks);
    if (e->blk)
        for (int i = 0; i < e->nblocks; i++)
            free_block(&e->blk[i]);
    free(e->blk);
    fmr_free(e->cls), fmr_free(e->pos), fmr_free(e->patch_b), fmr_free(e->pre_w),
        fmr_free(e->pre_b);
    fmr_st_close(&e->st);
    if (e->eng) fmr_dnnl_release();
    free(e);
    *ep = NULL;
}

fmr_err fmr_encoder_set_precision(fmr_encoder *e, fmr_precision p)
{
    if (p != FMR_PREC_F32 && p != FMR_PREC_BF16)
        return fmr_error(FMR_ERR_ARG, "unknown precision %d", (int)p);
    if (p == FMR_PREC_BF16 && !fmr_cpu_has_bf16()) {
        /* one line, once per process; the encoder stays f32 and reports f32 */
        static int said;
        if (!said++)
            fmr_warn("bf16 requested, but this CPU has no AVX512-BF16/AMX (oneDNN ISA %s): using f32",
                    fmr_cpu_isa_name());
        p = FMR_PREC_F32;
    }
    if (p == e->prec) return FMR_OK;
    for (plan *q = e->plans, *n; q; q = n)
        n = q->next, free_plan(q);
    for (packset *k = e->packs, *n; k; k = n)
        n = k->next, free_packset(k, e->nblocks);
    e->plans = NULL, e->packs = NULL;
    e->prec = p;
    return FMR_OK;
}

fmr_precision fmr_encoder_get_precision(const fmr_encoder *e)
{
    return e->prec;
}

const char *fmr_precision_name(fmr_precision p)
{
    return p == FMR_PREC_BF16 ? "bf16" : "f32";
}

fmr_err fmr_encoder_tokens(const fmr_encoder *e, int h, int w, int *tokens)
{
    const int P = e->cfg.patch;
    if (h <= 0 || w <= 0 || h % P || w % P)
        return fmr_error(FMR_ERR_SHAPE, "input %dx%d is not a whole number of %dx%d patches (%s)",
                         h, w, P, P, e->cfg.id);
    if (e->cfg.family != FMR_ENC_DINOV2 && (h / P != e->pos_grid || w / P != e->pos_grid))
        return fmr_error(FMR_ERR_SHAPE,
                         "input %dx%d gives a %dx%d patch grid, but the %s position table is for "
                         "%dx%d (%dx%d pixels)",
                         h, w, h / P, w / P, e->cfg.id, e->pos_grid, e->pos_grid, e->pos_grid * P,
                         e->pos_grid * P);
    *tokens = 1 + (h / P) * (w / P);
    return FMR_OK;
}

double fmr_encoder_flops(const fmr_encoder *e, int b, int h, int w, int blocks)
{
    const double D = e->cfg.width, Mh = e->cfg.mlp, P = e->cfg.patch,
                 g = (h / e->cfg.patch) * (w / e->cfg.patch);
    const double n = 1 + g, M = b * n;
    const double embed = 2.0 * b * g * D * 3 * P * P;
    const double block = 2.0 * M * (4 * D * D + 2 * D * Mh) + 2.0 * 2.0 * b * n * n * D;
    return embed + blocks * block;
}

/* ---- weight packing ---------------------------------------------------------------------- */

/* Reorders src (a plain f32 buffer described by smd) into a new memory of layout dmd. */
static fmr_err pack(fmr_encoder *e, const dnnl_memory_desc_t *smd, float *src,
                    const dnnl_memory_desc_t *dmd, dnnl_memory_t *out)
{
    dnnl_memory_t ms = NULL;
    fmr_prim r = {0};
    *out = NULL;
    FMR_TRY(fmr_mem(&ms, smd, e->eng, src));
    fmr_err err = fmr_dnnl_status(dnnl_memory_create(out, dmd, e->eng, DNNL_MEMORY_ALLOCATE),
                                  "allocate packed weights", __FILE__, __LINE__);
    if (!err) {
        dnnl_status_t s = dnnl_reorder_primitive_desc_create(&r.pd, smd, e->eng, dmd, e->eng, NULL);
        err = fmr_dnnl_status(s, "plan a weight reorder", __FILE__, __LINE__);
        if (!err)
            err = fmr_dnnl_status(dnnl_primitive_create(&r.p, r.pd), "create a weight reorder",
                                  __FILE__, __LINE__);
    }
    if (!err) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, *out}};
        err = fmr_prim_run(&r, e->strm, 2, a, "reorder weights");
        if (!err)
            err = fmr_dnnl_status(dnnl_stream_wait(e->strm), "wait for a reorder", __FILE__,
                                  __LINE__);
    }
    fmr_prim_destroy(&r);
    dnnl_memory_destroy(ms);
    if (err && *out) dnnl_memory_destroy(*out), *out = NULL;
    return err;
}

/* A Linear weight stored (out, in) as the matmul's (in, out) operand. */
static fmr_err pack_linear(fmr_encoder *e, const float *w, int in, int outf,
                           const dnnl_memory_desc_t *dmd, dnnl_memory_t *out)
{
    dnnl_memory_desc_t smd;
    const dnnl_dim_t dims[2] = {in, outf}, strides[2] = {1, in};
    FMR_TRY(fmr_md_strided(&smd, 2, dims, strides));
    return pack(e, &smd, (float *)w, dmd, out);
}

static fmr_err read_matrix(const fmr_encoder *e, fmr_enc_role r, int blk, size_t numel, float **out)
{
    return read_vec(e, r, blk, numel, out);
}

static fmr_err read_qkv_weight(const fmr_encoder *e, int blk, float **out)
{
    const size_t D = (size_t)e->cfg.width;
    if (e->cfg.fused_qkv) return read_matrix(e, FMR_K_QKV_W, blk, 3 * D * D, out);
    float *v = falloc(3 * D * D * sizeof(float));
    if (!v) return fmr_error(FMR_ERR_NOMEM, "out of memory (qkv weights)");
    const fmr_enc_role r[3] = {FMR_K_Q_W, FMR_K_K_W, FMR_K_V_W};
    for (int s = 0; s < 3; s++) {
        float *part;
        fmr_err err = read_matrix(e, r[s], blk, D * D, &part);
        if (err) {
            fmr_free(v);
            return err;
        }
        memcpy(v + s * D * D, part, D * D * sizeof(float));
        fmr_free(part);
    }
    *out = v;
    return FMR_OK;
}

/* Scales row j of an (out, in) weight by ls[j] (LayerScale folded in). */
static void scale_rows(float *w, const float *ls, int out, int in)
{
    if (!ls) return;
    for (int j = 0; j < out; j++)
        for (int c = 0; c < in; c++)
            w[(size_t)j * in + c] *= ls[j];
}

static fmr_err pack_block(fmr_encoder *e, packset *k, int i)
{
    const int D = e->cfg.width, M = e->cfg.mlp;
    const block_params *bp = &e->blk[i];
    float *w = NULL;
    fmr_err err = read_qkv_weight(e, i, &w);
    if (!err) err = pack_linear(e, w, D, 3 * D, &k->md_qkv, &k->qkv[i]);
    fmr_free(w), w = NULL;
    if (!err) err = read_matrix(e, FMR_K_O_W, i, (size_t)D * D, &w);
    if (!err) scale_rows(w, bp->ls1, D, D);
    if (!err) err = pack_linear(e, w, D, D, &k->md_o, &k->o[i]);
    fmr_free(w), w = NULL;
    if (!err) err = read_matrix(e, FMR_K_FC1_W, i, (size_t)D * M, &w);
    if (!err) err = pack_linear(e, w, D, M, &k->md_fc1, &k->fc1[i]);
    fmr_free(w), w = NULL;
    if (!err) err = read_matrix(e, FMR_K_FC2_W, i, (size_t)D * M, &w);
    if (!err) scale_rows(w, bp->ls2, D, M);
    if (!err) err = pack_linear(e, w, M, D, &k->md_fc2, &k->fc2[i]);
    fmr_free(w);
    return err;
}

static int md_eq(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b)
{
    return dnnl_memory_desc_equal(a, b);
}

/* The packed weights for a plan's layouts: shared with an earlier plan when they agree. */
static fmr_err get_packset(fmr_encoder *e, plan *p)
{
    const dnnl_memory_desc_t *c = fmr_prim_md(&p->patch, dnnl_query_weights_md, 0),
                             *q = fmr_prim_md(&p->qkv, dnnl_query_weights_md, 0),
                             *o = fmr_prim_md(&p->proj, dnnl_query_weights_md, 0),
                             *f1 = fmr_prim_md(&p->fc1, dnnl_query_weights_md, 0),
                             *f2 = fmr_prim_md(&p->fc2, dnnl_query_weights_md, 0);
    for (packset *k = e->packs; k; k = k->next)
        if (md_eq(&k->md_conv, c) && md_eq(&k->md_qkv, q) && md_eq(&k->md_o, o) &&
            md_eq(&k->md_fc1, f1) && md_eq(&k->md_fc2, f2)) {
            p->pk = k;
            return FMR_OK;
        }
    packset *k = calloc(1, sizeof *k);
    if (!k) return fmr_error(FMR_ERR_NOMEM, "out of memory (packed weights)");
    k->md_conv = *c, k->md_qkv = *q, k->md_o = *o, k->md_fc1 = *f1, k->md_fc2 = *f2;
    const size_t nb = (size_t)(e->nblocks > 0 ? e->nblocks : 1);
    k->qkv = calloc(nb, sizeof *k->qkv), k->o = calloc(nb, sizeof *k->o);
    k->fc1 = calloc(nb, sizeof *k->fc1), k->fc2 = calloc(nb, sizeof *k->fc2);
    fmr_err err = (!k->qkv || !k->o || !k->fc1 || !k->fc2)
                      ? fmr_error(FMR_ERR_NOMEM, "out of memory (packed weights)")
                      : FMR_OK;
    float *w = NULL;
    const int D = e->cfg.width, P = e->cfg.patch;
    if (!err) err = read_matrix(e, FMR_K_PATCH_W, 0, (size_t)D * 3 * P * P, &w);
    if (!err) {
        dnnl_memory_desc_t smd;
        const dnnl_dim_t dims[3] = {1, 3 * (dnnl_dim_t)P * P, D},
                         strides[3] = {3 * (dnnl_dim_t)P * P * D, 1, 3 * (dnnl_dim_t)P * P};
        err = fmr_md_strided(&smd, 3, dims, strides);
        if (!err) err = pack(e, &smd, w, &k->md_conv, &k->conv);
    }
    fmr_free(w);
    for (int i = 0; !err && i < e->nblocks; i++)
        err = pack_block(e, k, i);
    if (err) {
        free_packset(k, e->nblocks);
        return err;
    }
    k->next = e->packs, e->packs = k;
    p->pk = k;
    return FMR_OK;
}

/* ---- plans ------------------------------------------------------------------------------- */

static fmr_err attr_new(const fmr_encoder *e, dnnl_primitive_attr_t *a)
{
    (void)e; /* bf16 is chosen by the operands' data types (adt), not by an fpmath mode:
              * oneDNN 2.6 ignores fpmath_mode_bf16 for f32 matmuls on AVX512-BF16 */
    FMR_DNNL(dnnl_primitive_attr_create(a), "create primitive attributes");
    return FMR_OK;
}

/* The data type of the matmul operands. */
static dnnl_data_type_t adt(const fmr_encoder *e)
{
    return e->prec == FMR_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
}

static size_t asz(const fmr_encoder *e)
{
    return e->prec == FMR_PREC_BF16 ? 2 : 4;
}

/* Linear layer (m, k) x (k, n) + bias with optional activation and residual sum. Source and
 * weights have the activation type; the destination is f32 for the residual stream (residual
 * set), else the activation type (the next matmul's operand). */
static fmr_err make_linear(fmr_encoder *e, fmr_prim *pr, dnnl_dim_t m, dnnl_dim_t k, dnnl_dim_t n,
                           int act, int residual, const char *what)
{
    dnnl_memory_desc_t src, wei, bias, dst;
    const dnnl_dim_t ds[2] = {m, k}, dw[2] = {k, n}, db[2] = {1, n}, dd[2] = {m, n};
    FMR_TRY(fmr_md_dense_dt(&src, 2, ds, adt(e)));
    FMR_DNNL(dnnl_memory_desc_init_by_tag(&wei, 2, dw, adt(e), dnnl_format_tag_any),
             "describe weights");
    FMR_TRY(fmr_md_dense(&bias, 2, db));
    FMR_TRY(fmr_md_dense_dt(&dst, 2, dd, residual ? dnnl_f32 : adt(e)));
    dnnl_matmul_desc_t d;
    FMR_DNNL(dnnl_matmul_desc_init(&d, &src, &wei, &bias, &dst), what);
    dnnl_primitive_attr_t attr;
    FMR_TRY(attr_new(e, &attr));
    dnnl_post_ops_t po;
    fmr_err err = fmr_dnnl_status(dnnl_post_ops_create(&po), "create post-ops", __FILE__, __LINE__);
    if (err) {
        dnnl_primitive_attr_destroy(attr);
        return err;
    }
    if (act == 1)
        err =
            fmr_dnnl_status(dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_gelu_erf, 0.f, 0.f),
                            what, __FILE__, __LINE__);
    if (act == 2) /* quick-GELU x sigmoid(1.702 x) is oneDNN's swish with alpha 1.702 */
        err =
            fmr_dnnl_status(dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_swish, 1.702f, 0.f),
                            what, __FILE__, __LINE__);
    if (!err && residual)
        err = fmr_dnnl_status(dnnl_post_ops_append_sum(po, 1.f), what, __FILE__, __LINE__);
    if (!err)
        err = fmr_dnnl_status(dnnl_primitive_attr_set_post_ops(attr, po), what, __FILE__, __LINE__);
    if (!err) err = fmr_prim_create(pr, &d, attr, e->eng, what);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return err;
}

static fmr_err alloc_f(float **p, size_t n)
{
    *p = falloc((n ? n : 1) * sizeof(float));
    return *p ? FMR_OK
              : fmr_error(FMR_ERR_NOMEM, "out of memory (%zu floats of encoder activations)", n);
}

/* n values of the activation type */
static fmr_err alloc_a(const fmr_encoder *e, void **p, size_t n)
{
    *p = falloc((n ? n : 1) * asz(e));
    return *p ? FMR_OK
              : fmr_error(FMR_ERR_NOMEM, "out of memory (%zu values of encoder activations)", n);
}

static fmr_err build_plan(fmr_encoder *e, plan *p)
{
    const int D = e->cfg.width, H = e->cfg.heads, Mh = e->cfg.mlp, P = e->cfg.patch;
    const dnnl_dim_t b = p->b, n = p->n, g = (dnnl_dim_t)p->gh * p->gw, m = b * n;
    dnnl_memory_desc_t md;

    /* patch embedding: the stride-P convolution as a matmul. A reorder gathers each patch's
     * (channel, row, column) values into one row (im2col without overlap), then (b, g, 3PP) x
     * (3PP, D) + bias lands in X's token rows 1.. through the destination strides. (oneDNN 2.6 has
     * no optimised kernel for a 3-channel, stride-16 convolution; its reference one is ~100x
     * slower than this.) */
    {
        const dnnl_dim_t K = 3 * (dnnl_dim_t)P * P;
        dnnl_memory_desc_t src6, dst6, src, wei, bias, dst;
        const dnnl_dim_t d6[6] = {b, p->gh, p->gw, 3, P, P}, s6[6] = {3 * (dnnl_dim_t)p->h * p->w,
                                                                      (dnnl_dim_t)P * p->w,
                                                                      P,
                                                                      (dnnl_dim_t)p->h * p->w,
                                                                      p->w,
                                                                      1};
        FMR_TRY(fmr_md_strided(&src6, 6, d6, s6));
        FMR_TRY(fmr_md_dense_dt(&dst6, 6, d6, adt(e)));
        FMR_DNNL(
            dnnl_reorder_primitive_desc_create(&p->conv.pd, &src6, e->eng, &dst6, e->eng, NULL),
            "plan the patch gather");
        FMR_DNNL(dnnl_primitive_create(&p->conv.p, p->conv.pd), "create the patch gather");
        FMR_TRY(alloc_a(e, &p->P, (size_t)(b * g * K)));
        FMR_TRY(fmr_mem(&p->m_pix, &src6, e->eng, NULL));
        FMR_TRY(fmr_mem(&p->m_P, &dst6, e->eng, p->P));
        const dnnl_dim_t ds[3] = {b, g, K}, dw[3] = {1, K, D}, db[3] = {1, 1, D}, dd[3] = {b, g, D},
                         sd[3] = {n * D, D, 1};
        FMR_TRY(fmr_md_dense_dt(&src, 3, ds, adt(e)));
        FMR_DNNL(dnnl_memory_desc_init_by_tag(&wei, 3, dw, adt(e), dnnl_format_tag_any),
                 "describe patch weights");
        FMR_TRY(fmr_md_dense(&bias, 3, db));
        FMR_TRY(fmr_md_strided(&dst, 3, dd, sd));
        dnnl_matmul_desc_t md3;
        FMR_DNNL(dnnl_matmul_desc_init(&md3, &src, &wei, e->patch_b ? &bias : NULL, &dst),
                 "describe the patch embedding");
        dnnl_primitive_attr_t attr;
        FMR_TRY(attr_new(e, &attr));
        fmr_err err = fmr_prim_create(&p->patch, &md3, attr, e->eng, "create the patch embedding");
        dnnl_primitive_attr_destroy(attr);
        FMR_TRY(err);
        FMR_TRY(fmr_mem(&p->m_Pk, &src, e->eng, p->P));
        if (e->patch_b) FMR_TRY(fmr_mem(&p->m_convb, &bias, e->eng, e->patch_b));
        FMR_TRY(alloc_f(&p->X, (size_t)(m * D)));
        FMR_TRY(fmr_mem(&p->m_Xtok, &dst, e->eng, p->X + D));
    }
    /* position embeddings (class row included) added to every image: a (b, n D) + (1, n D)
     * broadcast, the layout oneDNN's optimised binary kernel handles */
    {
        dnnl_memory_desc_t s0, s1;
        const dnnl_dim_t d0[2] = {b, n * D}, d1[2] = {1, n * D};
        FMR_TRY(fmr_md_dense(&s0, 2, d0));
        FMR_TRY(fmr_md_dense(&s1, 2, d1));
        dnnl_binary_desc_t bd;
        FMR_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, &s0, &s1, &s0),
                 "describe the position add");
        FMR_TRY(fmr_prim_create(&p->add_pos, &bd, NULL, e->eng, "create the position add"));
        FMR_TRY(alloc_f(&p->pos, (size_t)(n * D)));
        FMR_TRY(fmr_mem(&p->m_pos, &s1, e->eng, p->pos));
        FMR_TRY(fmr_mem(&p->m_Xflat, &s0, e->eng, p->X));
    }
    /* LayerNorm over the width, scale and shift given */
    {
        const dnnl_dim_t dx[2] = {m, D}, dv[1] = {D};
        FMR_TRY(fmr_md_dense(&md, 2, dx));
        dnnl_layer_normalization_desc_t ld;
        FMR_DNNL(dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL,
                                                            (float)e->cfg.eps,
                                                            dnnl_use_scale | dnnl_use_shift),
                 "describe LayerNorm");
        FMR_TRY(fmr_prim_create(&p->ln, &ld, NULL, e->eng, "create LayerNorm"));
        FMR_TRY(fmr_mem(&p->m_X, &md, e->eng, p->X));
        FMR_TRY(alloc_f(&p->U, (size_t)(m * D)));
        FMR_TRY(fmr_mem(&p->m_U, &md, e->eng, p->U));
        /* the matmul operand Ub: U itself in f32; in bf16 a converting copy (oneDNN 2.6's
         * LayerNorm has one data type for source and destination, and the statistics and the
         * residual stream stay f32) */
        dnnl_memory_desc_t mb;
        FMR_TRY(fmr_md_dense_dt(&mb, 2, dx, adt(e)));
        if (e->prec == FMR_PREC_BF16) {
            FMR_DNNL(dnnl_reorder_primitive_desc_create(&p->cvt.pd, &md, e->eng, &mb, e->eng, NULL),
                     "plan the bf16 conversion");
            FMR_DNNL(dnnl_primitive_create(&p->cvt.p, p->cvt.pd), "create the bf16 conversion");
            FMR_TRY(alloc_a(e, &p->Ub, (size_t)(m * D)));
        } else {
            p->Ub = p->U;
        }
        FMR_TRY(fmr_mem(&p->m_Ub, &mb, e->eng, p->Ub));
        dnnl_memory_desc_t vd;
        FMR_TRY(fmr_md_dense(&vd, 1, dv));
        FMR_TRY(fmr_mem(&p->m_lnw, &vd, e->eng, NULL));
        FMR_TRY(fmr_mem(&p->m_lnb, &vd, e->eng, NULL));
    }
    FMR_TRY(make_linear(e, &p->qkv, m, D, 3 * D, 0, 0, "create the qkv projection"));
    FMR_TRY(make_linear(e, &p->proj, m, D, D, 0, 1, "create the attention output projection"));
    FMR_TRY(make_linear(e, &p->fc1, m, D, Mh, e->cfg.quick_gelu ? 2 : 1, 0, "create the MLP fc1"));
    FMR_TRY(make_linear(e, &p->fc2, m, Mh, D, 0, 1, "create the MLP fc2"));
    {
        dnnl_memory_desc_t bd;
        const dnnl_dim_t d1[2] = {1, D}, d3[2] = {1, 3 * D}, dm[2] = {1, Mh}, dq[2] = {m, 3 * D},
                         dh[2] = {m, Mh};
        (void)bd;
        FMR_TRY(fmr_md_dense(&bd, 2, d1));
        FMR_TRY(fmr_mem(&p->m_bD, &bd, e->eng, NULL));
        FMR_TRY(fmr_md_dense(&bd, 2, d3));
        FMR_TRY(fmr_mem(&p->m_b3D, &bd, e->eng, NULL));
        FMR_TRY(fmr_md_dense(&bd, 2, dm));
        FMR_TRY(fmr_mem(&p->m_bM, &bd, e->eng, NULL));
        FMR_TRY(alloc_a(e, &p->QKV, (size_t)(m * 3 * D)));
        FMR_TRY(fmr_md_dense_dt(&bd, 2, dq, adt(e)));
        FMR_TRY(fmr_mem(&p->m_QKV, &bd, e->eng, p->QKV));
        FMR_TRY(alloc_a(e, &p->Hm, (size_t)(m * Mh)));
        FMR_TRY(fmr_md_dense_dt(&bd, 2, dh, adt(e)));
        FMR_TRY(fmr_mem(&p->m_Hm, &bd, e->eng, p->Hm));
    }
    /* attention */
    {
        const dnnl_dim_t hd = 64, bh = b * H * n * hd;
        const dnnl_dim_t d5[5] = {3, b, H, n, hd}, s5[5] = {D, n * 3 * D, hd, 3 * D, 1};
        dnnl_memory_desc_t src5, dst5;
        FMR_TRY(fmr_md_strided_dt(&src5, 5, d5, s5, adt(e)));
        FMR_TRY(fmr_md_dense_dt(&dst5, 5, d5, adt(e)));
        FMR_DNNL(
            dnnl_reorder_primitive_desc_create(&p->split.pd, &src5, e->eng, &dst5, e->eng, NULL),
            "plan the head split");
        FMR_DNNL(dnnl_primitive_create(&p->split.p, p->split.pd), "create the head split");
        FMR_TRY(alloc_a(e, &p->heads, (size_t)(3 * bh)));
        FMR_TRY(fmr_mem(&p->m_qkv5, &src5, e->eng, p->QKV));
        FMR_TRY(fmr_mem(&p->m_heads, &dst5, e->eng, p->heads));

        dnnl_memory_desc_t q, kt, s, sb, v, o;
        const dnnl_dim_t dq[4] = {b, H, n, hd}, dk[4] = {b, H, hd, n},
                         sk[4] = {H * n * hd, n * hd, 1, hd}, dsc[4] = {b, H, n, n},
                         so[4] = {n * D, hd, D, 1};
        FMR_TRY(fmr_md_dense_dt(&q, 4, dq, adt(e)));
        FMR_TRY(fmr_md_strided_dt(&kt, 4, dk, sk, adt(e)));
        FMR_TRY(fmr_md_dense(&s, 4, dsc));
        FMR_TRY(fmr_md_dense_dt(&sb, 4, dsc, adt(e)));
        FMR_TRY(fmr_md_dense_dt(&v, 4, dq, adt(e)));
        FMR_TRY(fmr_md_strided_dt(&o, 4, dq, so, adt(e)));
        dnnl_matmul_desc_t d;
        FMR_DNNL(dnnl_matmul_desc_init(&d, &q, &kt, NULL, &s), "describe attention scores");
        dnnl_primitive_attr_t attr;
        FMR_TRY(attr_new(e, &attr));
        const float scale = 0.125f; /* head_dim^-1/2 with head_dim 64 */
        fmr_err err = fmr_dnnl_status(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale),
                                      "scale attention scores", __FILE__, __LINE__);
        if (!err) err = fmr_prim_create(&p->score, &d, attr, e->eng, "create attention scores");
        dnnl_primitive_attr_destroy(attr);
        FMR_TRY(err);
        dnnl_softmax_v2_desc_t sd;
        FMR_DNNL(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference,
                                                   dnnl_softmax_accurate, &s, &sb, 3),
                 "describe softmax");
        FMR_TRY(fmr_prim_create(&p->softmax, &sd, NULL, e->eng, "create softmax"));
        FMR_DNNL(dnnl_matmul_desc_init(&d, &sb, &v, NULL, &o), "describe attention values");
        FMR_TRY(attr_new(e, &attr));
        err = fmr_prim_create(&p->pv, &d, attr, e->eng, "create attention values");
        dnnl_primitive_attr_destroy(attr);
        FMR_TRY(err);
        FMR_TRY(alloc_f(&p->S, (size_t)(b * H * n * n)));
        if (e->prec == FMR_PREC_BF16)
            FMR_TRY(alloc_a(e, &p->Sb, (size_t)(b * H * n * n)));
        else
            p->Sb = p->S; /* f32: softmax in place */
        char *hp = p->heads;
        const size_t es = asz(e);
        FMR_TRY(fmr_mem(&p->m_Q, &q, e->eng, hp));
        FMR_TRY(fmr_mem(&p->m_Kt, &kt, e->eng, hp + bh * es));
        FMR_TRY(fmr_mem(&p->m_V, &v, e->eng, hp + 2 * bh * es));
        FMR_TRY(fmr_mem(&p->m_S, &s, e->eng, p->S));
        FMR_TRY(fmr_mem(&p->m_Sb, &sb, e->eng, p->Sb));
        /* O reuses Ub: LN1's output is dead by then */
        FMR_TRY(fmr_mem(&p->m_O, &o, e->eng, p->Ub));
    }
    FMR_TRY(get_packset(e, p));
    /* position rows for this grid (DINOv2: resampled from its table) and the class row */
    const float *tab = e->pos;
    memcpy(p->pos, tab, (size_t)D * sizeof(float));
    if (p->gh == e->pos_grid && p->gw == e->pos_grid)
        memcpy(p->pos + D, tab + D, (size_t)g * D * sizeof(float));
    else
        FMR_TRY(fmr_pos_resample(tab + D, e->pos_grid, e->pos_grid, D, p->gh, p->gw, p->pos + D));
    return FMR_OK;
}

static fmr_err get_plan(fmr_encoder *e, int b, int h, int w, plan **out)
{
    for (plan *p = e->plans; p; p = p->next)
        if (p->b == b && p->h == h && p->w == w) {
            *out = p;
            return FMR_OK;
        }
    int n;
    FMR_TRY(fmr_encoder_tokens(e, h, w, &n));
    plan *p = calloc(1, sizeof *p);
    if (!p) return fmr_error(FMR_ERR_NOMEM, "out of memory (encoder plan)");
    p->b = b, p->h = h, p->w = w, p->gh = h / e->cfg.patch, p->gw = w / e->cfg.patch, p->n = n;
    fmr_err err = build_plan(e, p);
    if (err) {
        free_plan(p);
        return err;
    }
    p->next = e->plans, e->plans = p;
    *out = p;
    return FMR_OK;
}

fmr_err fmr_encoder_impl(fmr_encoder *e, int b, int h, int w, const char **impl)
{
    plan *p;
    FMR_TRY(get_plan(e, b, h, w, &p));
    *impl = fmr_prim_impl(&p->fc1);
    return FMR_OK;
}

/* ---- execution --------------------------------------------------------------------------- */

static fmr_err set(dnnl_memory_t m, const void *ptr)
{
    FMR_DNNL(dnnl_memory_set_data_handle(m, (void *)ptr), "bind a buffer");
    return FMR_OK;
}

static fmr_err run_ln(const fmr_encoder *e, const plan *p, dnnl_memory_t src, dnnl_memory_t dst,
                      const float *w, const float *b)
{
    FMR_TRY(set(p->m_lnw, w));
    FMR_TRY(set(p->m_lnb, b));
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_DST, dst},
                            {DNNL_ARG_SCALE, p->m_lnw},
                            {DNNL_ARG_SHIFT, p->m_lnb}};
    return fmr_prim_run(&p->ln, e->strm, 4, a, "run LayerNorm");
}

static fmr_err run_linear(const fmr_encoder *e, const fmr_prim *pr, dnnl_memory_t src,
                          dnnl_memory_t wei, dnnl_memory_t bias_mem, const float *bias,
                          dnnl_memory_t dst, const char *what)
{
    FMR_TRY(set(bias_mem, bias));
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_WEIGHTS, wei},
                            {DNNL_ARG_BIAS, bias_mem},
                            {DNNL_ARG_DST, dst}};
    return fmr_prim_run(pr, e->strm, 4, a, what);
}

/* U (f32) -> Ub, the matmul operand (bf16 only; in f32 they are one buffer). */
static fmr_err to_operand(const fmr_encoder *e, const plan *p)
{
    if (!p->cvt.p) return FMR_OK;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->m_U}, {DNNL_ARG_TO, p->m_Ub}};
    return fmr_prim_run(&p->cvt, e->strm, 2, a, "convert to bf16");
}

static fmr_err run_block(fmr_encoder *e, plan *p, int i)
{
    const block_params *bp = &e->blk[i];
    const packset *k = p->pk;
    FMR_TRY(run_ln(e, p, p->m_X, p->m_U, bp->ln1_w, bp->ln1_b));
    FMR_TRY(to_operand(e, p));
    FMR_TRY(run_linear(e, &p->qkv, p->m_Ub, k->qkv[i], p->m_b3D, bp->qkv_b, p->m_QKV,
                       "run the qkv projection"));
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, p->m_qkv5}, {DNNL_ARG_TO, p->m_heads}};
    FMR_TRY(fmr_prim_run(&p->split, e->strm, 2, r, "split heads"));
    dnnl_exec_arg_t s[3] = {
        {DNNL_ARG_SRC, p->m_Q}, {DNNL_ARG_WEIGHTS, p->m_Kt}, {DNNL_ARG_DST, p->m_S}};
    FMR_TRY(fmr_prim_run(&p->score, e->strm, 3, s, "run attention scores"));
    dnnl_exec_arg_t sm[2] = {{DNNL_ARG_SRC, p->m_S}, {DNNL_ARG_DST, p->m_Sb}};
    FMR_TRY(fmr_prim_run(&p->softmax, e->strm, 2, sm, "run softmax"));
    dnnl_exec_arg_t pv[3] = {
        {DNNL_ARG_SRC, p->m_Sb}, {DNNL_ARG_WEIGHTS, p->m_V}, {DNNL_ARG_DST, p->m_O}};
    FMR_TRY(fmr_prim_run(&p->pv, e->strm, 3, pv, "run attention values"));
    FMR_TRY(run_linear(e, &p->proj, p->m_Ub, k->o[i], p->m_bD, bp->o_b, p->m_X,
                       "run the attention output projection"));
    FMR_TRY(run_ln(e, p, p->m_X, p->m_U, bp->ln2_w, bp->ln2_b));
    FMR_TRY(to_operand(e, p));
    FMR_TRY(
        run_linear(e, &p->fc1, p->m_Ub, k->fc1[i], p->m_bM, bp->fc1_b, p->m_Hm, "run the MLP fc1"));
    FMR_TRY(
        run_linear(e, &p->fc2, p->m_Hm, k->fc2[i], p->m_bD, bp->fc2_b, p->m_X, "run the MLP fc2"));
    return FMR_OK;
}

static fmr_err emit(const fmr_encoder *e, const plan *p, int layer, const int *layers, int nl,
                    float *const *out)
{
    FMR_DNNL(dnnl_stream_wait(e->strm), "finish the encoder stream");
    const size_t bytes = (size_t)p->b * p->n * e->cfg.width * sizeof(float);
    for (int k = 0; k < nl; k++)
        if (layers[k] == layer) memcpy(out[k], p->X, bytes);
    return FMR_OK;
}

fmr_err fmr_encoder_forward(fmr_encoder *e, const float *pixels, int b, int h, int w,
                            const int *layers, int nl, float *const *out)
{
    int deepest = -1;
    for (int k = 0; k < nl; k++) {
        if (layers[k] < 0 || layers[k] > e->nblocks)
            return fmr_error(
                FMR_ERR_ARG,
                "layer %d requested, but %s was loaded with blocks 1..%d (0 = embeddings)",
                layers[k], e->cfg.id, e->nblocks);
        if (layers[k] > deepest) deepest = layers[k];
    }
    if (b <= 0) return fmr_error(FMR_ERR_ARG, "encoder batch %d is not positive", b);
    plan *p = NULL;
    FMR_TRY(get_plan(e, b, h, w, &p));
    const int D = e->cfg.width;
    FMR_TRY(set(p->m_pix, pixels));
    dnnl_exec_arg_t g[2] = {{DNNL_ARG_FROM, p->m_pix}, {DNNL_ARG_TO, p->m_P}};
    FMR_TRY(fmr_prim_run(&p->conv, e->strm, 2, g, "gather patches"));
    dnnl_exec_arg_t c[4] = {
        {DNNL_ARG_SRC, p->m_Pk}, {DNNL_ARG_WEIGHTS, p->pk->conv}, {DNNL_ARG_DST, p->m_Xtok}};
    int nc = 3;
    if (e->patch_b) c[nc++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->m_convb};
    FMR_TRY(fmr_prim_run(&p->patch, e->strm, nc, c, "run the patch embedding"));
    FMR_DNNL(dnnl_stream_wait(e->strm), "finish the patch embedding");
    for (int i = 0; i < b; i++)
        memcpy(p->X + (size_t)i * p->n * D, e->cls, (size_t)D * sizeof(float));
    dnnl_exec_arg_t ad[3] = {
        {DNNL_ARG_SRC_0, p->m_Xflat}, {DNNL_ARG_SRC_1, p->m_pos}, {DNNL_ARG_DST, p->m_Xflat}};
    FMR_TRY(fmr_prim_run(&p->add_pos, e->strm, 3, ad, "add position embeddings"));
    if (e->cfg.pre_norm) FMR_TRY(run_ln(e, p, p->m_X, p->m_X, e->pre_w, e->pre_b));
    FMR_TRY(emit(e, p, 0, layers, nl, out));
    for (int i = 0; i < deepest; i++) {
        FMR_TRY(run_block(e, p, i));
        FMR_TRY(emit(e, p, i + 1, layers, nl, out));
    }
    return FMR_OK;
}

/* Compressed sensing: wiring of the operator and algorithm layers. For one slice's series
 * x = (x_1 .. x_T), with A the SENSE series operator (per-frame masks),
 *     min 1/2 ||A x - y||^2 + sum_k lambda_k g_k(K_k x)
 * for the terms of --reg (solvers/regs.c), by ADMM whose x-update is the PETSc solve of
 * normal(stack(A, sqrt(rho) K_1, ...)) (src/iter/admm.c), or L+S (src/iter/lps.c) for --reg lps.
 * The data are scaled so that max |A^H y| = 1 over the slice, which makes every weight and rho
 * independent of the scanner's units; the result is scaled back (docs/classical.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/iter.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "regs.h"
#include "slice_dc.h"

/* Defaults from the sweep in docs/classical.md ("Defaults and how they were chosen"). */
#define CS_DEFAULT_CINE "tv-t:0.01"
#define CS_DEFAULT_FRAME "tv-s:0.003"
/* ADMM penalty when --rho is not given: the sweep favoured a smaller one for single frames, whose
 * (spatial) terms converge more slowly in 30 iterations at 0.5 */
#define CS_RHO_CINE 0.5
#define CS_RHO_FRAME 0.1
enum { CS_CG_ITERS = 10 }; /* inexact x-updates: a few warm-started CG steps per ADMM iteration */
static const unsigned long long LLR_SEED = 1;

typedef struct {
    fmr_slice_dc sd; /* first: fmr_slice_dc_timing reads it */
    const fmr_dataset_info *in;
    fmr_method_params par;
    fmr_reg_list regs;
    const char *source; /* where the terms came from */
    size_t T;
    fmr_reg_term terms[FMR_REG_MAX];
    fmr_dc *dc;
    fmr_cfloat *aty, *x;
    int cg_total;
} cs_state;

static void cs_destroy(void *p)
{
    cs_state *s = p;
    if (!s) return;
    for (size_t k = 0; k < FMR_REG_MAX; k++) fmr_linop_destroy(&s->terms[k].K), fmr_prox_destroy(&s->terms[k].prox);
    fmr_dc_destroy(&s->dc);
    fmr_slice_dc_release(&s->sd);
    fmr_free(s->aty), fmr_free(s->x);
    free(s);
}

static fmr_err cs_create(void **out, fmr_dataset *ds, const fmr_method_params *par)
{
    if (!(par->rho > 0 || par->rho == FMR_CS_RHO_AUTO) || par->admm_iters < 1)
        return fmr_error(FMR_ERR_ARG, "cs needs --rho > 0 and --admm-iters >= 1 (got %g, %d)", par->rho, par->admm_iters);
    cs_state *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate CS state");
    s->in = fmr_dataset_get_info(ds);
    s->par = *par;
    const size_t T = s->in->frames, h = s->in->h, w = s->in->w, N = T * h * w;
    if (par->rho == FMR_CS_RHO_AUTO) s->par.rho = T > 1 ? CS_RHO_CINE : CS_RHO_FRAME;
    s->T = T;
    s->source = par->reg ? "--reg" : T > 1 ? "default (cine)" : "default (single frame)";
    fmr_err err = fmr_reg_parse(par->reg ? par->reg : T > 1 ? CS_DEFAULT_CINE : CS_DEFAULT_FRAME, &s->regs);
    if (!err) err = fmr_reg_check(&s->regs, T, h, w, 1);
    for (size_t k = 0; !err && k < s->regs.n; k++)
        if (s->regs.t[k].kind != REG_LPS) err = fmr_reg_build(&s->regs.t[k], T, h, w, LLR_SEED, &s->terms[k]);
    if (!err) {
        s->sd.no_dc = 1;
        err = fmr_slice_dc_init(&s->sd, ds, par, 0.0, par->max_it, "cs_", 1);
        s->sd.no_dc = 1; /* init clears the struct */
    }
    if (!err) err = fmr_alloc((void **)&s->aty, N * sizeof *s->aty, "CS series");
    if (!err) err = fmr_alloc((void **)&s->x, N * sizeof *s->x, "CS series");
    if (err) {
        cs_destroy(s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

static fmr_err cs_run(void *p, size_t frame0, size_t T, size_t z, const fmr_cfloat *ks, const float *masks, float *mag,
                      fmr_cfloat *img)
{
    (void)frame0;
    cs_state *s = p;
    const size_t h = s->in->h, w = s->in->w, N = T * h * w;
    if (T != s->T) return fmr_error(FMR_ERR_INTERNAL, "cs: %zu frames, expected %zu", T, s->T);
    FMR_TRY(fmr_slice_dc_select(&s->sd, z));
    fmr_linop *A = NULL;
    FMR_TRY(fmr_linop_sense(&A, s->sd.op, T, h, w, s->sd.nc, masks));
    fmr_err err = fmr_linop_adjoint(A, ks, s->aty);
    float scale = 0;
    for (size_t i = 0; !err && i < N; i++) scale = fmaxf(scale, cabsf(s->aty[i]));
    if (!err && !(scale > 0)) {
        memset(mag, 0, N * sizeof *mag);
        if (img) memset(img, 0, N * sizeof *img);
        goto done;
    }
    for (size_t i = 0; !err && i < N; i++) s->aty[i] /= scale;
    if (!err && !s->dc) {
        /* one KSP for the file (options read once); prefix cs_, unprefixed -ksp_* inherited */
        const fmr_dc_opts o = {.prefix = "cs_", .inherit = 1, .lambda = 0, .rtol = s->par.rtol,
                               .max_it = s->par.max_it < CS_CG_ITERS ? s->par.max_it : CS_CG_ITERS};
        err = fmr_dc_create_op(&s->dc, A, &o);
    }
    if (err) goto done;
    memcpy(s->x, s->aty, N * sizeof *s->x);
    fmr_iter_stats st = {0};
    const double t0 = fmr_wtime(), f0 = fmr_sense_fft_seconds(s->sd.op);
    if (s->regs.n == 1 && s->regs.t[0].kind == REG_LPS) {
        const fmr_lps_opts o = {.lambda_l = s->regs.t[0].lambda, .lambda_s = s->regs.t[0].lambda2,
                                .iters = s->par.admm_iters};
        err = fmr_lps(A, s->aty, T, h, w, &o, s->x, NULL, NULL, &st);
    } else {
        const fmr_admm_opts o = {.rho = s->par.rho, .iters = s->par.admm_iters};
        err = fmr_admm(s->dc, A, s->aty, s->regs.n, s->terms, &o, s->x, &st);
    }
    s->sd.dc_s += fmr_wtime() - t0;
    s->sd.fft_s += fmr_sense_fft_seconds(s->sd.op) - f0;
    s->cg_total += st.cg_iterations;
    for (size_t i = 0; !err && i < N; i++) {
        if (!isfinite(crealf(s->x[i])) || !isfinite(cimagf(s->x[i]))) {
            err = fmr_error(FMR_ERR_VALUE, "compressed sensing diverged (NaN/Inf); try a larger --rho");
            break;
        }
        mag[i] = cabsf(s->x[i]) * scale;
        if (img) img[i] = s->x[i] * scale;
    }
done:
    fmr_linop_destroy(&A);
    return err;
}

static char *cs_describe(const void *p)
{
    const cs_state *s = p;
    char terms[1024];
    fmr_reg_json(&s->regs, terms, sizeof terms);
    const int lps = s->regs.n == 1 && s->regs.t[0].kind == REG_LPS;
    char *buf = malloc(2048);
    if (buf)
        snprintf(buf, 2048,
                 "{\"reg\":%s,\"reg_source\":\"%s\",\"algorithm\":\"%s\",\"iterations\":%d,\"rho\":%g,"
                 "\"cg_iters_per_update\":%d,\"data_scaling\":\"max|A^H y| = 1 per slice\",\"llr_seed\":%llu}",
                 terms, s->source, lps ? "lps (Otazo 2015)" : "admm", s->par.admm_iters, s->par.rho,
                 s->par.max_it < CS_CG_ITERS ? s->par.max_it : CS_CG_ITERS, LLR_SEED);
    return buf;
}

const fmr_method_ops fmr_method_cs = {
    .name = "cs",
    .summary = "compressed sensing: --reg terms (default temporal + spatial TV), ADMM with PETSc x-updates",
    .produces_complex = 1,
    .per_slice = 1,
    .create = cs_create,
    .run = cs_run,
    .destroy = cs_destroy,
    .timing = fmr_slice_dc_timing,
    .describe = cs_describe,
};

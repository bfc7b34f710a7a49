/* Proximal objects and iterative algorithms that see nothing but operators (fmrecon/linop.h),
 * proximal objects and the data-consistency solver (fmrecon/dc.h), in the spirit of BART's
 * src/iter (facts carried over, not code). One algorithm per file in src/iter/.
 *
 * Conventions (docs/classical.md, "lambda conventions"): every problem is
 *     min_x  1/2 ||A x - y||^2 + sum_k lambda_k g_k(K_k x)
 * with the data scaled by the caller so that max |A^H y| = 1; lambda_k are then comparable across
 * data sets and terms. A prox object computes prox_{alpha g}(v) = argmin_z 1/2||z - v||^2 + alpha g(z). */
#ifndef FMRECON_ITER_H
#define FMRECON_ITER_H

#include <stddef.h>
#include <stdint.h>

#include "fmrecon/array.h"
#include "fmrecon/dc.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"
#include "fmrecon/linop.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_prox fmr_prox;

/* z = prox_{alpha g}(v); z == v is allowed. */
fmr_err fmr_prox_apply(fmr_prox *p, double alpha, const fmr_cfloat *v, fmr_cfloat *z);
size_t fmr_prox_size(const fmr_prox *p);
const char *fmr_prox_name(const fmr_prox *p);
void fmr_prox_destroy(fmr_prox **p);

/* g(z) = sum_i |z_i| (complex soft threshold: z = v max(0, 1 - alpha/|v|)) on n samples. */
fmr_err fmr_prox_l1(fmr_prox **p, size_t n);
/* g(z) = sum_i sqrt(sum_k |z[k n + i]|^2): groups of `groups` components n apart (isotropic TV on
 * the gradient's output, groups = 2). */
fmr_err fmr_prox_l12(fmr_prox **p, size_t n, size_t groups);
/* g(x) = ||K x||_1 for an operator with K^H K = I: prox = x + K^H (soft(K x) - K x), exact when
 * also K K^H = I (temporal DFT; wavelets of square power-of-two images). Takes a reference. */
fmr_err fmr_prox_l1_of(fmr_prox **p, fmr_linop *K);
/* g(x) = ||K x||_{1,2} with groups as fmr_prox_l12 (1 = plain l1), K with ||K||^2 <= lipschitz:
 * the fast gradient projection of Beck & Teboulle (2009) on the dual, `iters` iterations from a
 * zero dual. Spatial TV: K = grad2d, groups 2, lipschitz 8; temporal TV: K = tdiff, 1, 4. */
fmr_err fmr_prox_tv(fmr_prox **p, fmr_linop *K, size_t groups, double lipschitz, int iters);
/* Locally low rank: frame-major T x h x w series, blocks of b x b pixels tiled over the image
 * (edge blocks smaller), g(x) = sum_blocks ||C_b(x)||_* (nuclear norm of the b^2 x T Casorati
 * matrix), prox = singular value soft threshold of every block (LAPACK, double). With seed != 0
 * every application first shifts the tiling by a random (dy, dx) in [0, b)^2 from fmrecon's RNG
 * (seeded with seed once, reproducible), as BART's -R L does to avoid block artefacts; seed 0:
 * fixed grid, the exact prox of that norm. b >= max(h, w): one block (global low rank). */
fmr_err fmr_prox_llr(fmr_prox **p, size_t T, size_t h, size_t w, size_t b, uint64_t seed);

/* One regularisation term lambda g(K x); K NULL = identity. prox acts on K's codomain. */
typedef struct fmr_reg_term {
    fmr_linop *K;
    fmr_prox *prox;
    double lambda;
} fmr_reg_term;

typedef struct fmr_iter_stats {
    int iterations;
    int cg_iterations; /* total inner CG iterations (ADMM) */
    double seconds, dc_seconds;
} fmr_iter_stats;

/* ADMM (scaled form) with z_k = K_k x:
 *   x   = argmin 1/2||A x - y||^2 + rho/2 sum_k ||K_k x - z_k + u_k||^2
 *         i.e. (A^H A + rho sum K_k^H K_k) x = A^H y + rho sum K_k^H (z_k - u_k), by the PETSc
 *         solver dc on normal(stack(A, sqrt(rho) K_1, ...)), warm-started;
 *   z_k = prox_{lambda_k/rho g_k}(K_k x + u_k);    u_k += K_k x - z_k.
 * dc: a solver of A's domain size (its operator is replaced; its lambda set to 0). x: start in,
 * result out. */
typedef struct fmr_admm_opts {
    double rho;
    int iters;
} fmr_admm_opts;
fmr_err fmr_admm(fmr_dc *dc, fmr_linop *A, const fmr_cfloat *aty, size_t nterms, const fmr_reg_term *terms,
                 const fmr_admm_opts *o, fmr_cfloat *x, fmr_iter_stats *st);

/* FISTA (Beck & Teboulle 2009) for 1/2||A x - y||^2 + lambda g(x) with an x-domain prox:
 * step 1/L, L = lipschitz (> 0) or, if 0, estimated by 30 power iterations of A^H A (x 1.05). */
typedef struct fmr_fista_opts {
    int iters;
    double lipschitz;
} fmr_fista_opts;
fmr_err fmr_fista(fmr_linop *A, const fmr_cfloat *aty, fmr_prox *prox, double lambda, const fmr_fista_opts *o,
                  fmr_cfloat *x, fmr_iter_stats *st);

/* Low rank + sparse (Otazo, Candes, Sodickson 2015): x = L + S for a T x h x w series,
 *   min 1/2||A(L + S) - y||^2 + lambda_l ||C(L)||_* + lambda_s ||F_t S||_1
 * (C the hw x T Casorati matrix, F_t the unitary temporal DFT) by their iteration
 *   L = SVT_{lambda_l}(M - S),  S = F_t^H soft_{lambda_s}(F_t (M - L)),  M = L + S - A^H(A(L+S) - y),
 * started at M = A^H y, S = 0. L and S out (either may be NULL). */
typedef struct fmr_lps_opts {
    double lambda_l, lambda_s;
    int iters;
} fmr_lps_opts;
fmr_err fmr_lps(fmr_linop *A, const fmr_cfloat *aty, size_t T, size_t h, size_t w, const fmr_lps_opts *o,
                fmr_cfloat *x, fmr_cfloat *L, fmr_cfloat *S, fmr_iter_stats *st);

/* The two data-consistency steps of unrolled networks, on the layer:
 * hard: x = argmin ||A x - y||^2 + lambda ||x - z||^2 = (A^H A + lambda I)^-1 (A^H y + lambda z),
 *       by dc (its operator must be A), started at z; rhs: scratch of A's domain size;
 * soft: x = z - eta (A^H A x_prev - A^H y); scratch as rhs. */
fmr_err fmr_dc_hard(fmr_dc *dc, const fmr_cfloat *aty, const fmr_cfloat *z, double lambda, fmr_cfloat *x,
                    fmr_cfloat *rhs, fmr_dc_stats *st);
fmr_err fmr_dc_soft(fmr_linop *A, const fmr_cfloat *aty, const fmr_cfloat *x_prev, const fmr_cfloat *z, double eta,
                    fmr_cfloat *x, fmr_cfloat *scratch);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

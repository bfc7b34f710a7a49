/* Locally low-rank prox: singular value soft thresholding of the Casorati matrix (pixels x
 * frames) of every block. The SVD of a b^2 x T block comes from the T x T Gram matrix's
 * eigen-decomposition (LAPACK zheevd, double precision): with M^H M = V S^2 V^H,
 * SVT(M) = M V diag(max(s - tau, 0) / s) V^H, which needs only T x T work beside the block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/heev.h"
#include "fmrecon/rng.h"
#include "iter/prox_impl.h"

typedef struct {
    size_t T, h, w, b;
    int shift;
    fmr_rng rng;
    double _Complex *M, *G, *P; /* block (b^2 x T, column-major), Gram and its map (T x T) */
    double *ev;
} llr_data;

static void llr_free(void *p)
{
    llr_data *d = p;
    free(d->M), free(d->G), free(d->P), free(d->ev);
    free(d);
}

/* SVT of the m x T matrix d->M in place */
static fmr_err svt(llr_data *d, size_t m, double tau)
{
    const size_t T = d->T;
    for (size_t i = 0; i < T; i++)
        for (size_t j = 0; j < T; j++) {
            double _Complex s = 0;
            const double _Complex *a = d->M + i * m, *c = d->M + j * m;
            for (size_t k = 0; k < m; k++) s += conj(a[k]) * c[k];
            d->G[i * T + j] = s; /* row-major, Hermitian */
        }
    if (fmr_zheevd_rm(T, d->G, d->ev)) return fmr_error(FMR_ERR_LIB, "LLR: LAPACK zheevd failed on a %zux%zu Gram matrix", T, T);
    /* P = V diag(f) V^H; columns of G are the eigenvectors */
    double f[T];
    int any = 0;
    for (size_t j = 0; j < T; j++) {
        const double s = sqrt(d->ev[j] > 0 ? d->ev[j] : 0);
        f[j] = s > tau ? (s - tau) / s : 0;
        any |= f[j] != 1.0;
    }
    if (!any) return FMR_OK;
    for (size_t i = 0; i < T; i++)
        for (size_t j = 0; j < T; j++) {
            double _Complex s = 0;
            for (size_t k = 0; k < T; k++) s += d->G[i * T + k] * f[k] * conj(d->G[j * T + k]);
            d->P[i * T + j] = s;
        }
    /* M <- M P, row by row of M (pixels) */
    double _Complex row[T];
    for (size_t k = 0; k < m; k++) {
        for (size_t j = 0; j < T; j++) {
            double _Complex s = 0;
            for (size_t i = 0; i < T; i++) s += d->M[i * m + k] * d->P[i * T + j];
            row[j] = s;
        }
        for (size_t j = 0; j < T; j++) d->M[j * m + k] = row[j];
    }
    return FMR_OK;
}

static fmr_err llr_apply(void *p, double alpha, const fmr_cfloat *v, fmr_cfloat *z)
{
    llr_data *d = p;
    const size_t T = d->T, h = d->h, w = d->w, b = d->b, hw = h * w;
    size_t dy = 0, dx = 0;
    if (d->shift) {
        dy = b < h ? (size_t)(fmr_rng_next(&d->rng) % b) : 0;
        dx = b < w ? (size_t)(fmr_rng_next(&d->rng) % b) : 0;
    }
    if (z != v) memcpy(z, v, T * hw * sizeof *z);
    const size_t bh = b < h ? b : h, bw = b < w ? b : w;
    for (size_t by = 0; by < h; by += bh)
        for (size_t bx = 0; bx < w; bx += bw) {
            const size_t nh = by + bh <= h ? bh : h - by, nw = bx + bw <= w ? bw : w - bx, m = nh * nw;
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < nh; i++)
                    for (size_t j = 0; j < nw; j++) {
                        const size_t r = (by + i + dy) % h, c = (bx + j + dx) % w;
                        d->M[t * m + i * nw + j] = z[t * hw + r * w + c];
                    }
            FMR_TRY(svt(d, m, alpha));
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < nh; i++)
                    for (size_t j = 0; j < nw; j++) {
                        const size_t r = (by + i + dy) % h, c = (bx + j + dx) % w;
                        z[t * hw + r * w + c] = (fmr_cfloat)d->M[t * m + i * nw + j];
                    }
        }
    return FMR_OK;
}

fmr_err fmr_prox_llr(fmr_prox **p, size_t T, size_t h, size_t w, size_t b, uint64_t seed)
{
    *p = NULL;
    if (b < 1 || T < 1 || h < 1 || w < 1) return fmr_error(FMR_ERR_ARG, "LLR: block size and image must be >= 1");
    llr_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the LLR prox");
    d->T = T, d->h = h, d->w = w, d->b = b, d->shift = seed != 0;
    fmr_rng_seed(&d->rng, seed);
    const size_t bh = b < h ? b : h, bw = b < w ? b : w, S = FMR_LAPACK_SLACK;
    d->M = calloc(bh * bw * T + S, sizeof *d->M);
    d->G = calloc(T * T + S, sizeof *d->G);
    d->P = calloc(T * T + S, sizeof *d->P);
    d->ev = calloc(T + S, sizeof *d->ev);
    if (!d->M || !d->G || !d->P || !d->ev) {
        llr_free(d);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate the LLR prox");
    }
    fmr_prox_def def = {.name = "llr", .n = T * h * w, .apply = llr_apply, .free_data = llr_free};
    return fmr_prox_create(p, &def, d);
}

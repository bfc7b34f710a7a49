/* FISTA (Beck & Teboulle 2009): accelerated proximal gradient for 1/2||Ax - y||^2 + lambda g(x). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/iter.h"
#include "fmrecon/log.h"

static double norm2(const fmr_cfloat *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)crealf(v[i]) * crealf(v[i]) + (double)cimagf(v[i]) * cimagf(v[i]);
    return sqrt(s);
}

/* largest eigenvalue of A^H A by power iteration from a fixed start (deterministic) */
static fmr_err lipschitz(fmr_linop *A, size_t n, fmr_cfloat *a, fmr_cfloat *b, double *L)
{
    for (size_t i = 0; i < n; i++) a[i] = 1.0f + 0.5f * I * (float)((i * 7919) % 13) / 13.0f;
    double lam = 0;
    for (int k = 0; k < 30; k++) {
        const double s = norm2(a, n);
        if (!(s > 0)) break;
        for (size_t i = 0; i < n; i++) a[i] /= (float)s;
        FMR_TRY(fmr_linop_normal(A, a, b));
        lam = norm2(b, n);
        memcpy(a, b, n * sizeof *a);
    }
    *L = lam > 0 ? 1.05 * lam : 1.0; /* margin: 30 iterations approach the top eigenvalue from below */
    return FMR_OK;
}

fmr_err fmr_fista(fmr_linop *A, const fmr_cfloat *aty, fmr_prox *prox, double lambda, const fmr_fista_opts *o,
                  fmr_cfloat *x, fmr_iter_stats *st)
{
    const double t0 = fmr_wtime();
    const size_t n = fmr_linop_domain(A);
    if (fmr_prox_size(prox) != n) return fmr_error(FMR_ERR_SHAPE, "FISTA: prox %s does not act on the image", fmr_prox_name(prox));
    fmr_cfloat *yk = NULL, *g = NULL, *xp = NULL;
    fmr_err err = fmr_alloc((void **)&yk, n * sizeof *yk, "FISTA state");
    if (!err) err = fmr_alloc((void **)&g, n * sizeof *g, "FISTA state");
    if (!err) err = fmr_alloc((void **)&xp, n * sizeof *xp, "FISTA state");
    double L = o->lipschitz;
    if (!err && !(L > 0)) err = lipschitz(A, n, yk, g, &L);
    if (!err) memcpy(yk, x, n * sizeof *yk);
    double t = 1;
    for (int k = 0; !err && k < o->iters; k++) {
        /* x_k = prox_{lambda/L}(y_k - (A^H A y_k - A^H y) / L) */
        err = fmr_linop_normal(A, yk, g);
        memcpy(xp, x, n * sizeof *xp);
        for (size_t i = 0; !err && i < n; i++) g[i] = yk[i] - (float)(1.0 / L) * (g[i] - aty[i]);
        if (!err) err = fmr_prox_apply(prox, lambda / L, g, x);
        const double tn = 0.5 * (1 + sqrt(1 + 4 * t * t));
        const float mom = (float)((t - 1) / tn);
        for (size_t i = 0; !err && i < n; i++) yk[i] = x[i] + mom * (x[i] - xp[i]);
        t = tn;
    }
    if (st) st->iterations = o->iters, st->cg_iterations = 0, st->dc_seconds = 0, st->seconds = fmr_wtime() - t0;
    fmr_free(yk), fmr_free(g), fmr_free(xp);
    return err;
}

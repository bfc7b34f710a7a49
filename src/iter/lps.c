/* Low rank + sparse (Otazo et al. 2015, MRM 73:1125) on the operator layer. */
#include <stdlib.h>
#include <string.h>

#include "fmrecon/iter.h"
#include "fmrecon/log.h"
#include "iter/prox_impl.h"

fmr_err fmr_lps(fmr_linop *A, const fmr_cfloat *aty, size_t T, size_t h, size_t w, const fmr_lps_opts *o,
                fmr_cfloat *x, fmr_cfloat *Lout, fmr_cfloat *Sout, fmr_iter_stats *st)
{
    const double t0 = fmr_wtime();
    const size_t n = T * h * w;
    if (fmr_linop_domain(A) != n) return fmr_error(FMR_ERR_SHAPE, "L+S: operator %s is not on the series", fmr_linop_name(A));
    if (!(o->lambda_l >= 0) || !(o->lambda_s >= 0) || o->iters < 1)
        return fmr_error(FMR_ERR_ARG, "L+S needs weights >= 0 and >= 1 iteration");
    fmr_prox *svt = NULL;
    fmr_linop *F = NULL;
    fmr_cfloat *M = NULL, *L = NULL, *S = NULL, *t = NULL;
    /* one block over the whole image: the global Casorati matrix, fixed grid */
    fmr_err err = fmr_prox_llr(&svt, T, h, w, h > w ? h : w, 0);
    if (!err) err = fmr_linop_tfft(&F, T, h * w);
    fmr_cfloat **bufs[] = {&M, &L, &S, &t};
    for (int i = 0; !err && i < 4; i++) err = fmr_alloc((void **)bufs[i], n * sizeof(fmr_cfloat), "L+S state");
    if (err) goto done;
    memcpy(M, aty, n * sizeof *M);
    memset(S, 0, n * sizeof *S);
    memcpy(L, M, n * sizeof *L); /* L_prev = M: the first S is 0 (as in Otazo's code) */
    for (int it = 0; !err && it < o->iters; it++) {
        /* L = SVT(M - S_prev); S = F^H soft(F(M - L_prev)) with the previous L, S (Otazo's order) */
        for (size_t i = 0; i < n; i++) t[i] = M[i] - S[i];
        /* S from M - L_prev before L is overwritten */
        for (size_t i = 0; i < n; i++) S[i] = M[i] - L[i];
        err = fmr_prox_apply(svt, o->lambda_l, t, L);
        if (!err) err = fmr_linop_forward(F, S, t);
        if (!err) fmr_soft_threshold(t, t, n, (float)o->lambda_s);
        if (!err) err = fmr_linop_adjoint(F, t, S);
        /* M = L + S - (A^H A (L + S) - A^H y) */
        for (size_t i = 0; !err && i < n; i++) x[i] = L[i] + S[i];
        if (!err) err = fmr_linop_normal(A, x, t);
        for (size_t i = 0; !err && i < n; i++) M[i] = x[i] - (t[i] - aty[i]);
    }
    if (!err) {
        for (size_t i = 0; i < n; i++) x[i] = L[i] + S[i];
        if (Lout) memcpy(Lout, L, n * sizeof *L);
        if (Sout) memcpy(Sout, S, n * sizeof *S);
    }
    if (st) st->iterations = o->iters, st->cg_iterations = 0, st->dc_seconds = 0, st->seconds = fmr_wtime() - t0;
done:
    fmr_prox_destroy(&svt);
    fmr_linop_destroy(&F);
    fmr_free(M), fmr_free(L), fmr_free(S), fmr_free(t);
    return err;
}

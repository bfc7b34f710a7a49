/* ADMM with the PETSc data-consistency solve as x-update (fmrecon/iter.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/iter.h"
#include "fmrecon/log.h"

fmr_err fmr_admm(fmr_dc *dc, fmr_linop *A, const fmr_cfloat *aty, size_t nt, const fmr_reg_term *terms,
                 const fmr_admm_opts *o, fmr_cfloat *x, fmr_iter_stats *st)
{
    if (!(o->rho > 0) || o->iters < 1) return fmr_error(FMR_ERR_ARG, "ADMM needs rho > 0 and >= 1 iteration");
    const double t0 = fmr_wtime();
    const size_t n = fmr_linop_domain(A);
    fmr_err err = FMR_OK;
    fmr_linop **K = calloc(nt + 1, sizeof *K), **parts = calloc(nt + 1, sizeof *parts), *N = NULL;
    fmr_cfloat **z = calloc(nt + 1, sizeof *z), **u = calloc(nt + 1, sizeof *u), *rhs = NULL, *t = NULL, *c = NULL;
    size_t cmax = 0;
    if (!K || !parts || !z || !u) {
        err = fmr_error(FMR_ERR_NOMEM, "cannot allocate ADMM state");
        goto done;
    }
    parts[0] = fmr_linop_ref(A);
    for (size_t k = 0; !err && k < nt; k++) {
        K[k] = terms[k].K ? fmr_linop_ref(terms[k].K) : NULL;
        if (!K[k]) err = fmr_linop_identity(&K[k], n, 1.0);
        if (!err && fmr_linop_domain(K[k]) != n)
            err = fmr_error(FMR_ERR_SHAPE, "ADMM: term %zu's operator %s does not act on the image", k, fmr_linop_name(K[k]));
        if (!err && fmr_prox_size(terms[k].prox) != fmr_linop_codomain(K[k]))
            err = fmr_error(FMR_ERR_SHAPE, "ADMM: term %zu's prox %s does not match %s", k, fmr_prox_name(terms[k].prox),
                            fmr_linop_name(K[k]));
        if (!err) err = fmr_linop_scaled(&parts[k + 1], K[k], sqrt(o->rho));
        const size_t m = K[k] ? fmr_linop_codomain(K[k]) : 0;
        if (m > cmax) cmax = m;
        if (!err) err = fmr_alloc((void **)&z[k], m * sizeof **z, "ADMM split variable");
        if (!err) err = fmr_alloc((void **)&u[k], m * sizeof **u, "ADMM dual variable");
    }
    if (!err) err = fmr_linop_stack(&N, nt + 1, parts);
    if (!err) err = fmr_alloc((void **)&rhs, n * sizeof *rhs, "ADMM right-hand side");
    if (!err) err = fmr_alloc((void **)&t, n * sizeof *t, "ADMM scratch");
    if (!err) err = fmr_alloc((void **)&c, (cmax ? cmax : 1) * sizeof *c, "ADMM scratch");
    if (!err) err = fmr_dc_set_operator(dc, N);
    if (!err) err = fmr_dc_set_lambda(dc, 0.0);
    /* z_k = K_k x, u_k = 0 */
    for (size_t k = 0; !err && k < nt; k++) {
        err = fmr_linop_forward(K[k], x, z[k]);
        memset(u[k], 0, fmr_linop_codomain(K[k]) * sizeof **u);
    }
    int cg = 0;
    double dcs = 0;
    for (int it = 0; !err && it < o->iters; it++) {
        memcpy(rhs, aty, n * sizeof *rhs);
        for (size_t k = 0; !err && k < nt; k++) {
            const size_t m = fmr_linop_codomain(K[k]);
            for (size_t i = 0; i < m; i++) c[i] = z[k][i] - u[k][i];
            err = fmr_linop_adjoint(K[k], c, t);
            for (size_t i = 0; !err && i < n; i++) rhs[i] += (float)o->rho * t[i];
        }
        fmr_dc_stats ds = {0};
        if (!err) err = fmr_dc_solve(dc, rhs, x, 1, &ds);
        if (err) {
            err = fmr_error_context(err, "ADMM iteration %d: ", it);
            break;
        }
        cg += ds.iterations, dcs += ds.seconds;
        for (size_t k = 0; !err && k < nt; k++) {
            const size_t m = fmr_linop_codomain(K[k]);
            err = fmr_linop_forward(K[k], x, c);
            for (size_t i = 0; !err && i < m; i++) z[k][i] = c[i] + u[k][i];
            if (!err) err = fmr_prox_apply(terms[k].prox, terms[k].lambda / o->rho, z[k], z[k]);
            for (size_t i = 0; !err && i < m; i++) u[k][i] += c[i] - z[k][i];
        }
    }
    if (st) st->iterations = o->iters, st->cg_iterations = cg, st->dc_seconds = dcs, st->seconds = fmr_wtime() - t0;
done:
    for (size_t k = 0; K && k < nt; k++) fmr_linop_destroy(&K[k]);
    for (size_t k = 0; parts && k <= nt; k++) fmr_linop_destroy(&parts[k]);
    for (size_t k = 0; z && k < nt; k++) fmr_free(z[k]), fmr_free(u[k]);
    fmr_linop_destroy(&N);
    free(K), free(parts), free(z), free(u);
    fmr_free(rhs), fmr_free(t), fmr_free(c);
    return err;
}

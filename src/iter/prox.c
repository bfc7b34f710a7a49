/* Proximal objects: the generic object, l1, isotropic l1,2, l1 of an orthonormal operator's
 * output, and the TV-type prox of a general operator by the dual fast gradient projection. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iter/prox_impl.h"

struct fmr_prox {
    char name[48];
    size_t n;
    fmr_err (*apply)(void *, double, const fmr_cfloat *, fmr_cfloat *);
    void (*free_data)(void *);
    void *data;
};

fmr_err fmr_prox_create(fmr_prox **out, const fmr_prox_def *d, void *data)
{
    *out = NULL;
    fmr_prox *p = calloc(1, sizeof *p);
    if (!p) {
        if (d->free_data) d->free_data(data);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate a proximal map");
    }
    snprintf(p->name, sizeof p->name, "%s", d->name);
    p->n = d->n, p->apply = d->apply, p->free_data = d->free_data, p->data = data;
    *out = p;
    return FMR_OK;
}

fmr_err fmr_prox_apply(fmr_prox *p, double alpha, const fmr_cfloat *v, fmr_cfloat *z)
{
    if (!(alpha >= 0) || !isfinite(alpha))
        return fmr_error(FMR_ERR_ARG, "proximal map %s: weight %g is not >= 0", p->name, alpha);
    if (alpha == 0) {
        if (z != v) memcpy(z, v, p->n * sizeof *z);
        return FMR_OK;
    }
    return p->apply(p->data, alpha, v, z);
}

size_t fmr_prox_size(const fmr_prox *p) { return p->n; }
const char *fmr_prox_name(const fmr_prox *p) { return p->name; }

void fmr_prox_destroy(fmr_prox **pp)
{
    if (!pp || !*pp) return;
    fmr_prox *p = *pp;
    if (p->free_data) p->free_data(p->data);
    free(p);
    *pp = NULL;
}

void fmr_soft_threshold(const fmr_cfloat *v, fmr_cfloat *z, size_t n, float tau)
{
    for (size_t i = 0; i < n; i++) {
        const float a = cabsf(v[i]);
        z[i] = a > tau ? v[i] * (1.0f - tau / a) : 0.0f;
    }
}

/* ---- l1 and l1,2 ---- */
typedef struct {
    size_t n, groups;
} l12_data;

static fmr_err l12_apply(void *p, double alpha, const fmr_cfloat *v, fmr_cfloat *z)
{
    const l12_data *d = p;
    const float tau = (float)alpha;
    if (d->groups == 1) {
        fmr_soft_threshold(v, z, d->n, tau);
        return FMR_OK;
    }
    for (size_t i = 0; i < d->n; i++) {
        float s = 0;
        for (size_t k = 0; k < d->groups; k++) {
            const fmr_cfloat c = v[k * d->n + i];
            s += crealf(c) * crealf(c) + cimagf(c) * cimagf(c);
        }
        const float a = sqrtf(s), f = a > tau ? 1.0f - tau / a : 0.0f;
        for (size_t k = 0; k < d->groups; k++) z[k * d->n + i] = v[k * d->n + i] * f;
    }
    return FMR_OK;
}

fmr_err fmr_prox_l12(fmr_prox **p, size_t n, size_t groups)
{
    *p = NULL;
    if (groups < 1) return fmr_error(FMR_ERR_ARG, "l1,2 prox needs groups >= 1");
    l12_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate a proximal map");
    d->n = n, d->groups = groups;
    fmr_prox_def def = {.name = groups == 1 ? "l1" : "l12", .n = n * groups, .apply = l12_apply, .free_data = free};
    return fmr_prox_create(p, &def, d);
}

fmr_err fmr_prox_l1(fmr_prox **p, size_t n)
{
    return fmr_prox_l12(p, n, 1);
}

/* ---- l1 of an orthonormal operator's output ---- */
typedef struct {
    fmr_linop *K;
    fmr_cfloat *c, *t; /* codomain, domain */
} l1of_data;

static void l1of_free(void *p)
{
    l1of_data *d = p;
    fmr_linop_destroy(&d->K);
    fmr_free(d->c), fmr_free(d->t);
    free(d);
}

/* x + K^H(soft(Kx) - Kx): for K K^H = I this is K^H soft(K x); for an isometry onto a subspace
 * (padded wavelets) it leaves the part of x that K does not see unchanged */
static fmr_err l1of_apply(void *p, double alpha, const fmr_cfloat *v, fmr_cfloat *z)
{
    l1of_data *d = p;
    const size_t m = fmr_linop_codomain(d->K), n = fmr_linop_domain(d->K);
    FMR_TRY(fmr_linop_forward(d->K, v, d->c));
    for (size_t i = 0; i < m; i++) {
        const fmr_cfloat c = d->c[i];
        const float a = cabsf(c);
        d->c[i] = (a > (float)alpha ? c * (1.0f - (float)alpha / a) : 0.0f) - c;
    }
    FMR_TRY(fmr_linop_adjoint(d->K, d->c, d->t));
    for (size_t i = 0; i < n; i++) z[i] = v[i] + d->t[i];
    return FMR_OK;
}

fmr_err fmr_prox_l1_of(fmr_prox **p, fmr_linop *K)
{
    *p = NULL;
    l1of_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate a proximal map");
    d->K = fmr_linop_ref(K);
    fmr_err err = fmr_alloc((void **)&d->c, fmr_linop_codomain(K) * sizeof *d->c, "prox scratch");
    if (!err) err = fmr_alloc((void **)&d->t, fmr_linop_domain(K) * sizeof *d->t, "prox scratch");
    if (err) {
        l1of_free(d);
        return err;
    }
    char name[48];
    snprintf(name, sizeof name, "l1(%.36s)", fmr_linop_name(K));
    fmr_prox_def def = {.name = name, .n = fmr_linop_domain(K), .apply = l1of_apply, .free_data = l1of_free};
    return fmr_prox_create(p, &def, d);
}

/* ---- TV-type: prox of alpha ||K x||_{1,2} by FGP on the dual ----
 * min_z 1/2||z - v||^2 + alpha ||K z|| has the dual max over ||p_i|| <= 1 of a smooth function;
 * z = v - alpha K^H p, and the projected gradient step on p is p <- P(p + K z / (alpha L)). */
typedef struct {
    fmr_linop *K;
    size_t groups, m;
    double L;
    int iters;
    fmr_cfloat *p, *q, *r, *Kz, *z, *t;
} tv_data;

static void tv_free(void *pp)
{
    tv_data *d = pp;
    fmr_linop_destroy(&d->K);
    fmr_free(d->p), fmr_free(d->q), fmr_free(d->r), fmr_free(d->Kz), fmr_free(d->z), fmr_free(d->t);
    free(d);
}

static fmr_err tv_apply(void *pp, double alpha, const fmr_cfloat *v, fmr_cfloat *out)
{
    tv_data *d = pp;
    const size_t n = fmr_linop_domain(d->K), m = d->m, g = d->groups, ng = m / g;
    const float a = (float)alpha, step = (float)(1.0 / (alpha * d->L));
    memset(d->p, 0, m * sizeof *d->p);
    memset(d->r, 0, m * sizeof *d->r);
    double t = 1.0;
    for (int k = 0; k < d->iters; k++) {
        FMR_TRY(fmr_linop_adjoint(d->K, d->r, d->t));
        for (size_t i = 0; i < n; i++) d->z[i] = v[i] - a * d->t[i];
        FMR_TRY(fmr_linop_forward(d->K, d->z, d->Kz));
        for (size_t i = 0; i < m; i++) d->q[i] = d->r[i] + step * d->Kz[i];
        /* projection onto the unit ball of each group */
        for (size_t i = 0; i < ng; i++) {
            float s = 0;
            for (size_t c = 0; c < g; c++) {
                const fmr_cfloat e = d->q[c * ng + i];
                s += crealf(e) * crealf(e) + cimagf(e) * cimagf(e);
            }
            if (s > 1.0f) {
                const float f = 1.0f / sqrtf(s);
                for (size_t c = 0; c < g; c++) d->q[c * ng + i] *= f;
            }
        }
        const double tn = 0.5 * (1.0 + sqrt(1.0 + 4.0 * t * t));
        const float mom = (float)((t - 1.0) / tn);
        for (size_t i = 0; i < m; i++) {
            d->r[i] = d->q[i] + mom * (d->q[i] - d->p[i]);
            d->p[i] = d->q[i];
        }
        t = tn;
    }
    FMR_TRY(fmr_linop_adjoint(d->K, d->p, d->t));
    for (size_t i = 0; i < n; i++) out[i] = v[i] - a * d->t[i];
    return FMR_OK;
}

fmr_err fmr_prox_tv(fmr_prox **pp, fmr_linop *K, size_t groups, double lipschitz, int iters)
{
    *pp = NULL;
    const size_t m = fmr_linop_codomain(K), n = fmr_linop_domain(K);
    if (groups < 1 || m % groups || !(lipschitz > 0) || iters < 1)
        return fmr_error(FMR_ERR_ARG, "TV prox of %s: needs groups dividing the codomain, lipschitz > 0, iters >= 1",
                         fmr_linop_name(K));
    tv_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate a proximal map");
    d->K = fmr_linop_ref(K), d->groups = groups, d->m = m, d->L = lipschitz, d->iters = iters;
    fmr_err err = FMR_OK;
    fmr_cfloat **cod[] = {&d->p, &d->q, &d->r, &d->Kz}, **dom[] = {&d->z, &d->t};
    for (int i = 0; !err && i < 4; i++) err = fmr_alloc((void **)cod[i], m * sizeof(fmr_cfloat), "TV dual");
    for (int i = 0; !err && i < 2; i++) err = fmr_alloc((void **)dom[i], n * sizeof(fmr_cfloat), "TV scratch");
    if (err) {
        tv_free(d);
        return err;
    }
    char name[48];
    snprintf(name, sizeof name, "tv(%.36s)", fmr_linop_name(K));
    fmr_prox_def def = {.name = name, .n = n, .apply = tv_apply, .free_data = tv_free};
    return fmr_prox_create(pp, &def, d);
}

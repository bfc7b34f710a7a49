/* The operator object, its compositions and the generic adjoint/normal check. */
#include "fmrecon/linop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/rng.h"
#include "linops/linop_impl.h"

struct fmr_linop {
    int refs;
    char name[64];
    size_t dom, cod;
    MPI_Comm comm;
    int cod_split;
    fmr_linop_fn forward, adjoint, normal;
    void (*free_data)(void *);
    void *data;
    fmr_linop_dot_fn dot_cod; /* codomain inner product (stacks of mixed parts) */
    fmr_cfloat *scratch;      /* codomain scratch for the default normal */
};

static fmr_err dot_default(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b, double _Complex *out)
{
    double _Complex s = 0;
    for (size_t i = 0; i < op->cod; i++) s += conj((double _Complex)a[i]) * (double _Complex)b[i];
    if (op->cod_split && MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_C_DOUBLE_COMPLEX, MPI_SUM, op->comm) != MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "operator %s: inner product across ranks failed", op->name);
    *out = s;
    return FMR_OK;
}

fmr_err fmr_linop_dot_codomain(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b, double _Complex *out)
{
    return op->dot_cod ? op->dot_cod(op, a, b, out) : dot_default(op, a, b, out);
}

void *fmr_linop_data(const fmr_linop *op)
{
    return op->data;
}

fmr_err fmr_linop_create(fmr_linop **out, const fmr_linop_def *d, void *data)
{
    *out = NULL;
    if (!d || !d->forward || !d->adjoint || d->dom == 0 || d->cod == 0) {
        if (d && d->free_data) d->free_data(data);
        return fmr_error(FMR_ERR_ARG, "linear operator %s: needs forward, adjoint and non-empty spaces",
                         d && d->name ? d->name : "?");
    }
    fmr_linop *op = calloc(1, sizeof *op);
    if (!op) {
        if (d->free_data) d->free_data(data);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate a linear operator");
    }
    op->refs = 1;
    snprintf(op->name, sizeof op->name, "%s", d->name ? d->name : "op");
    op->dom = d->dom, op->cod = d->cod, op->comm = d->comm, op->cod_split = d->cod_split;
    op->forward = d->forward, op->adjoint = d->adjoint, op->normal = d->normal;
    op->free_data = d->free_data, op->data = data;
    *out = op;
    return FMR_OK;
}

fmr_linop *fmr_linop_ref(fmr_linop *op)
{
    if (op) op->refs++;
    return op;
}

void fmr_linop_destroy(fmr_linop **p)
{
    if (!p || !*p) return;
    fmr_linop *op = *p;
    *p = NULL;
    if (--op->refs > 0) return;
    if (op->free_data) op->free_data(op->data);
    fmr_free(op->scratch);
    free(op);
}

fmr_err fmr_linop_forward(fmr_linop *op, const fmr_cfloat *x, fmr_cfloat *y)
{
    return op->forward(op->data, x, y);
}

fmr_err fmr_linop_adjoint(fmr_linop *op, const fmr_cfloat *y, fmr_cfloat *x)
{
    return op->adjoint(op->data, y, x);
}

fmr_err fmr_linop_normal(fmr_linop *op, const fmr_cfloat *x, fmr_cfloat *out)
{
    if (op->normal) return op->normal(op->data, x, out);
    if (!op->scratch) FMR_TRY(fmr_alloc((void **)&op->scratch, op->cod * sizeof *op->scratch, "operator scratch"));
    FMR_TRY(op->forward(op->data, x, op->scratch));
    return op->adjoint(op->data, op->scratch, out);
}

size_t fmr_linop_domain(const fmr_linop *op) { return op->dom; }
size_t fmr_linop_codomain(const fmr_linop *op) { return op->cod; }
MPI_Comm fmr_linop_comm(const fmr_linop *op) { return op->comm; }
int fmr_linop_codomain_split(const fmr_linop *op) { return op->cod_split; }
const char *fmr_linop_name(const fmr_linop *op) { return op->name; }

static MPI_Comm pick_comm(MPI_Comm a, MPI_Comm b)
{
    return a == MPI_COMM_SELF ? b : a;
}

/* ---- chain ---- */
typedef struct {
    fmr_linop *A, *B;
    fmr_cfloat *t1, *t2; /* A's codomain */
} chain_data;

static void chain_free(void *p)
{
    chain_data *c = p;
    fmr_linop_destroy(&c->A), fmr_linop_destroy(&c->B);
    fmr_free(c->t1), fmr_free(c->t2);
    free(c);
}

static fmr_err chain_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    chain_data *c = p;
    FMR_TRY(fmr_linop_forward(c->A, x, c->t1));
    return fmr_linop_forward(c->B, c->t1, y);
}

static fmr_err chain_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    chain_data *c = p;
    FMR_TRY(fmr_linop_adjoint(c->B, y, c->t1));
    return fmr_linop_adjoint(c->A, c->t1, x);
}

static fmr_err chain_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *out)
{
    chain_data *c = p;
    FMR_TRY(fmr_linop_forward(c->A, x, c->t1));
    FMR_TRY(fmr_linop_normal(c->B, c->t1, c->t2));
    return fmr_linop_adjoint(c->A, c->t2, out);
}

static fmr_err chain_dot(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b, double _Complex *out)
{
    const chain_data *c = op->data;
    return fmr_linop_dot_codomain(c->B, a, b, out);
}

fmr_err fmr_linop_chain(fmr_linop **out, fmr_linop *A, fmr_linop *B)
{
    *out = NULL;
    if (A->cod != B->dom)
        return fmr_error(FMR_ERR_SHAPE, "chain %s -> %s: codomain %zu is not domain %zu", A->name, B->name, A->cod,
                         B->dom);
    chain_data *c = calloc(1, sizeof *c);
    if (!c) return fmr_error(FMR_ERR_NOMEM, "cannot allocate an operator chain");
    c->A = fmr_linop_ref(A), c->B = fmr_linop_ref(B);
    fmr_err err = fmr_alloc((void **)&c->t1, A->cod * sizeof *c->t1, "chain scratch");
    if (!err) err = fmr_alloc((void **)&c->t2, A->cod * sizeof *c->t2, "chain scratch");
    if (err) {
        chain_free(c);
        return err;
    }
    char name[64];
    snprintf(name, sizeof name, "%.28s.%.28s", B->name, A->name);
    fmr_linop_def d = {.name = name, .dom = A->dom, .cod = B->cod, .comm = pick_comm(A->comm, B->comm),
                       .cod_split = B->cod_split, .forward = chain_fwd, .adjoint = chain_adj,
                       .normal = chain_nrm, .free_data = chain_free};
    FMR_TRY(fmr_linop_create(out, &d, c));
    (*out)->dot_cod = chain_dot; /* the codomain is B's */
    return FMR_OK;
}

/* ---- stack ---- */
typedef struct {
    size_t n;
    fmr_linop **ops;
    size_t *off;
    fmr_cfloat *t; /* domain */
} stack_data;

static void stack_free(void *p)
{
    stack_data *s = p;
    for (size_t k = 0; k < s->n; k++) fmr_linop_destroy(&s->ops[k]);
    free(s->ops), free(s->off);
    fmr_free(s->t);
    free(s);
}

static fmr_err stack_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    stack_data *s = p;
    for (size_t k = 0; k < s->n; k++) FMR_TRY(fmr_linop_forward(s->ops[k], x, y + s->off[k]));
    return FMR_OK;
}

static fmr_err stack_sum(stack_data *s, const fmr_cfloat *in, fmr_cfloat *out, int normal)
{
    const size_t n = s->ops[0]->dom;
    for (size_t k = 0; k < s->n; k++) {
        fmr_cfloat *dst = k == 0 ? out : s->t;
        if (normal) FMR_TRY(fmr_linop_normal(s->ops[k], in, dst));
        else FMR_TRY(fmr_linop_adjoint(s->ops[k], in + s->off[k], dst));
        if (k > 0)
            for (size_t i = 0; i < n; i++) out[i] += s->t[i];
    }
    return FMR_OK;
}

static fmr_err stack_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    return stack_sum(p, y, x, 0);
}

static fmr_err stack_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *out)
{
    return stack_sum(p, x, out, 1);
}

static fmr_err stack_dot(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b, double _Complex *out)
{
    const stack_data *s = op->data;
    double _Complex sum = 0, v;
    for (size_t k = 0; k < s->n; k++) {
        FMR_TRY(fmr_linop_dot_codomain(s->ops[k], a + s->off[k], b + s->off[k], &v));
        sum += v;
    }
    *out = sum;
    return FMR_OK;
}

fmr_err fmr_linop_stack(fmr_linop **out, size_t n, fmr_linop *const *ops)
{
    *out = NULL;
    if (n == 0) return fmr_error(FMR_ERR_ARG, "operator stack: no operators");
    MPI_Comm comm = MPI_COMM_SELF;
    size_t cod = 0;
    for (size_t k = 0; k < n; k++) {
        if (ops[k]->dom != ops[0]->dom)
            return fmr_error(FMR_ERR_SHAPE, "operator stack: %s has domain %zu, %s %zu", ops[k]->name,
                             ops[k]->dom, ops[0]->name, ops[0]->dom);
        comm = pick_comm(comm, ops[k]->comm);
        cod += ops[k]->cod;
    }
    stack_data *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate an operator stack");
    s->n = n;
    s->ops = calloc(n, sizeof *s->ops);
    s->off = calloc(n, sizeof *s->off);
    fmr_err err = (!s->ops || !s->off) ? fmr_error(FMR_ERR_NOMEM, "cannot allocate an operator stack") : FMR_OK;
    if (!err) err = fmr_alloc((void **)&s->t, ops[0]->dom * sizeof *s->t, "stack scratch");
    for (size_t k = 0, o = 0; !err && k < n; o += ops[k]->cod, k++) s->ops[k] = fmr_linop_ref(ops[k]), s->off[k] = o;
    if (err) {
        stack_free(s);
        return err;
    }
    fmr_linop_def d = {.name = "stack", .dom = ops[0]->dom, .cod = cod, .comm = comm, .cod_split = 0,
                       .forward = stack_fwd, .adjoint = stack_adj, .normal = stack_nrm, .free_data = stack_free};
    FMR_TRY(fmr_linop_create(out, &d, s));
    (*out)->dot_cod = stack_dot;
    return FMR_OK;
}

/* ---- scaled identity and scaled operator ---- */
typedef struct {
    size_t n;
    float s;
    fmr_linop *A; /* NULL: identity */
} scale_data;

static void scale_free(void *p)
{
    scale_data *s = p;
    fmr_linop_destroy(&s->A);
    free(s);
}

static fmr_err id_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const scale_data *s = p;
    for (size_t i = 0; i < s->n; i++) y[i] = s->s * x[i];
    return FMR_OK;
}

static fmr_err id_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const scale_data *s = p;
    for (size_t i = 0; i < s->n; i++) y[i] = s->s * s->s * x[i];
    return FMR_OK;
}

fmr_err fmr_linop_identity(fmr_linop **out, size_t n, double sc)
{
    scale_data *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate an identity");
    s->n = n, s->s = (float)sc;
    fmr_linop_def d = {.name = "identity", .dom = n, .cod = n, .comm = MPI_COMM_SELF, .forward = id_fwd,
                       .adjoint = id_fwd, .normal = id_nrm, .free_data = scale_free};
    return fmr_linop_create(out, &d, s);
}

static fmr_err sc_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const scale_data *s = p;
    FMR_TRY(fmr_linop_forward(s->A, x, y));
    for (size_t i = 0; i < s->A->cod; i++) y[i] *= s->s;
    return FMR_OK;
}

static fmr_err sc_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    const scale_data *s = p;
    FMR_TRY(fmr_linop_adjoint(s->A, y, x));
    for (size_t i = 0; i < s->A->dom; i++) x[i] *= s->s;
    return FMR_OK;
}

static fmr_err sc_nrm(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const scale_data *s = p;
    FMR_TRY(fmr_linop_normal(s->A, x, y));
    for (size_t i = 0; i < s->A->dom; i++) y[i] *= s->s * s->s;
    return FMR_OK;
}

static fmr_err sc_dot(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b, double _Complex *out)
{
    const scale_data *s = op->data;
    return fmr_linop_dot_codomain(s->A, a, b, out);
}

fmr_err fmr_linop_scaled(fmr_linop **out, fmr_linop *A, double sc)
{
    scale_data *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate a scaled operator");
    s->n = A->dom, s->s = (float)sc, s->A = fmr_linop_ref(A);
    char name[64];
    snprintf(name, sizeof name, "%g*%.48s", sc, A->name);
    fmr_linop_def d = {.name = name, .dom = A->dom, .cod = A->cod, .comm = A->comm, .cod_split = A->cod_split,
                       .forward = sc_fwd, .adjoint = sc_adj, .normal = sc_nrm, .free_data = scale_free};
    FMR_TRY(fmr_linop_create(out, &d, s));
    (*out)->dot_cod = sc_dot;
    return FMR_OK;
}

/* ---- the check ---- */
static void randn(fmr_rng *r, fmr_cfloat *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = (float)fmr_rng_normal(r) + I * (float)fmr_rng_normal(r);
}

fmr_err fmr_linop_test(fmr_linop *op, unsigned long long seed, double *adj_err, double *nrm_err)
{
    fmr_cfloat *x = NULL, *y = NULL, *Ax = NULL, *Ahy = NULL, *N1 = NULL, *N2 = NULL;
    fmr_err err = fmr_alloc((void **)&x, op->dom * sizeof *x, "test vector");
    if (!err) err = fmr_alloc((void **)&Ahy, op->dom * sizeof *x, "test vector");
    if (!err) err = fmr_alloc((void **)&N1, op->dom * sizeof *x, "test vector");
    if (!err) err = fmr_alloc((void **)&N2, op->dom * sizeof *x, "test vector");
    if (!err) err = fmr_alloc((void **)&y, op->cod * sizeof *x, "test vector");
    if (!err) err = fmr_alloc((void **)&Ax, op->cod * sizeof *x, "test vector");
    if (err) goto done;
    fmr_rng r;
    /* x is replicated: every rank draws the same; y may be split: each rank its own part */
    fmr_rng_seed(&r, seed);
    randn(&r, x, op->dom);
    int rank = 0;
    MPI_Comm_rank(op->comm, &rank);
    fmr_rng_seed(&r, seed + 1 + (op->cod_split ? (unsigned long long)rank : 0));
    randn(&r, y, op->cod);
    if ((err = fmr_linop_forward(op, x, Ax)) || (err = fmr_linop_adjoint(op, y, Ahy))) goto done;
    double _Complex a, b = 0;
    if ((err = fmr_linop_dot_codomain(op, Ax, y, &a))) goto done;
    for (size_t i = 0; i < op->dom; i++) b += conj((double _Complex)x[i]) * (double _Complex)Ahy[i];
    *adj_err = cabs(a - b) / (cabs(a) + 1e-30);
    if ((err = fmr_linop_normal(op, x, N1)) || (err = fmr_linop_adjoint(op, Ax, N2))) goto done;
    double num = 0, den = 0;
    for (size_t i = 0; i < op->dom; i++) {
        num += pow(cabs((double _Complex)N1[i] - (double _Complex)N2[i]), 2);
        den += pow(cabs((double _Complex)N2[i]), 2);
    }
    *nrm_err = sqrt(num / (den + 1e-300));
done:
    fmr_free(x), fmr_free(y), fmr_free(Ax), fmr_free(Ahy), fmr_free(N1), fmr_free(N2);
    return err;
}

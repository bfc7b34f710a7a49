/* The data-consistency solve on PETSc: a MatShell applying normal(A) + lambda I for any fmr_linop
 * A, solved by KSPCG (Hermitian variant). The unknown is distributed over the operator's
 * communicator as PETSc decides; each product gathers it, applies the operator's normal (which
 * sums the ranks' coils), and keeps the local part. */
#include <ctype.h>
#include <petscksp.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/dc.h"
#include "fmrecon/log.h"
#include "petsc_util.h"

struct fmr_dc {
    fmr_linop *op;
    MPI_Comm comm;
    int size;
    size_t n;
    char prefix[64];
    PetscInt lo, hi; /* this rank's rows */
    int *counts, *displs;
    fmr_cfloat *xf, *yf; /* full vector, single precision */
    double lambda;
    int legacy; /* created by fmr_dc_create: fmr_dc_set reads the options */
    Mat A;
    Vec x, b;
    KSP ksp;
    fmr_err op_err; /* an error inside the shell product, surfaced after KSPSolve */
};

static PetscErrorCode shell_mult(Mat A, Vec X, Vec Y)
{
    fmr_dc *dc;
    PetscCall(MatShellGetContext(A, &dc));
    const PetscScalar *xl;
    PetscScalar *yl;
    PetscInt nl = dc->hi - dc->lo;
    PetscCall(VecGetArrayRead(X, &xl));
    for (PetscInt i = 0; i < nl; i++)
        dc->xf[dc->lo + i] = (fmr_cfloat)xl[i];
    if (dc->size > 1)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, dc->xf, dc->counts, dc->displs,
                       MPI_C_FLOAT_COMPLEX, dc->comm);
    fmr_err e = fmr_linop_normal(dc->op, dc->xf, dc->yf);
    if (e && !dc->op_err) dc->op_err = e;
    PetscCall(VecGetArray(Y, &yl));
    for (PetscInt i = 0; i < nl; i++)
        yl[i] = (PetscScalar)dc->yf[dc->lo + i] + dc->lambda * xl[i];
    PetscCall(VecRestoreArray(Y, &yl));
    PetscCall(VecRestoreArrayRead(X, &xl));
    return e ? PETSC_ERR_LIB : 0;
}

void fmr_dc_destroy(fmr_dc **p)
{
    if (!p || !*p) return;
    fmr_dc *dc = *p;
    KSPDestroy(&dc->ksp);
    VecDestroy(&dc->x);
    VecDestroy(&dc->b);
    MatDestroy(&dc->A);
    fmr_linop_destroy(&dc->op);
    fmr_free(dc->xf);
    fmr_free(dc->yf);
    free(dc->counts);
    free(dc->displs);
    free(dc);
    *p = NULL;
}

/* The user's unprefixed -ksp_* / -pc_* options copied under the prefix, where the prefixed option
 * is not given: PETSc has no "fall back to the unprefixed option", and copying keeps one
 * KSPSetFromOptions per solver. PetscOptionsGetAll lists every option as "-name [value] ...". */
static fmr_err inherit_options(const char *prefix)
{
    fmr_err err = FMR_OK;
    char *all = NULL;
    FMR_PETSC(PetscOptionsGetAll(NULL, &all), "reading PETSc options");
    char *save = NULL, *tok = strtok_r(all, " ", &save);
    while (tok) {
        char *next = strtok_r(NULL, " ", &save);
        const int is_name = tok[0] == '-' && isalpha((unsigned char)tok[1]);
        if (!is_name) {
            tok = next;
            continue;
        }
        const char *value = NULL;
        if (next && !(next[0] == '-' && isalpha((unsigned char)next[1]))) value = next, next = strtok_r(NULL, " ", &save);
        if (!strncmp(tok, "-ksp_", 5) || !strncmp(tok, "-pc_", 4)) {
            char name[256];
            snprintf(name, sizeof name, "-%s%s", prefix, tok + 1);
            PetscBool has = PETSC_FALSE;
            FMR_PETSC(PetscOptionsHasName(NULL, NULL, name, &has), "reading PETSc options");
            if (!has) FMR_PETSC(PetscOptionsSetValue(NULL, name, value), "copying a PETSc option");
        }
        tok = next;
    }
done:
    PetscFree(all);
    return err;
}

fmr_err fmr_dc_create_op(fmr_dc **out, fmr_linop *op, const fmr_dc_opts *o)
{
    *out = NULL;
    PetscBool up;
    PetscInitialized(&up);
    if (!up) return fmr_error(FMR_ERR_INTERNAL, "data consistency used before fmr_petsc_init");
    if (!(o->lambda >= 0) || !isfinite(o->lambda))
        return fmr_error(FMR_ERR_ARG, "data-consistency weight lambda must be >= 0, got %g", o->lambda);
    fmr_dc *dc = calloc(1, sizeof *dc);
    if (!dc) return fmr_error(FMR_ERR_NOMEM, "cannot allocate data-consistency solver");
    dc->op = fmr_linop_ref(op);
    dc->comm = fmr_linop_comm(op);
    dc->n = fmr_linop_domain(op);
    dc->lambda = o->lambda;
    snprintf(dc->prefix, sizeof dc->prefix, "%s", o->prefix ? o->prefix : "");
    MPI_Comm_size(dc->comm, &dc->size);
    fmr_err err = fmr_alloc((void **)&dc->xf, dc->n * sizeof *dc->xf, "solver vector");
    if (!err) err = fmr_alloc((void **)&dc->yf, dc->n * sizeof *dc->yf, "solver vector");
    dc->counts = calloc((size_t)dc->size, sizeof *dc->counts);
    dc->displs = calloc((size_t)dc->size, sizeof *dc->displs);
    if (!err && (!dc->counts || !dc->displs))
        err = fmr_error(FMR_ERR_NOMEM, "cannot allocate layout");
    if (!err && o->inherit && dc->prefix[0]) err = inherit_options(dc->prefix);
    if (err) goto done;
    FMR_PETSC(VecCreateMPI(dc->comm, PETSC_DECIDE, (PetscInt)dc->n, &dc->x),
              "creating the solver vector");
    FMR_PETSC(VecDuplicate(dc->x, &dc->b), "creating the solver vector");
    FMR_PETSC(VecGetOwnershipRange(dc->x, &dc->lo, &dc->hi), "solver layout");
    {
        int lo = (int)dc->lo, cnt = (int)(dc->hi - dc->lo);
        MPI_Allgather(&cnt, 1, MPI_INT, dc->counts, 1, MPI_INT, dc->comm);
        MPI_Allgather(&lo, 1, MPI_INT, dc->displs, 1, MPI_INT, dc->comm);
    }
    FMR_PETSC(MatCreateShell(dc->comm, dc->hi - dc->lo, dc->hi - dc->lo, (PetscInt)dc->n,
                             (PetscInt)dc->n, dc, &dc->A),
              "creating the shell matrix");
    FMR_PETSC(MatShellSetOperation(dc->A, MATOP_MULT, (void (*)(void))shell_mult), "shell matrix");
    FMR_PETSC(MatSetOption(dc->A, MAT_HERMITIAN, PETSC_TRUE), "shell matrix");
    FMR_PETSC(KSPCreate(dc->comm, &dc->ksp), "creating the KSP");
    if (dc->prefix[0]) FMR_PETSC(KSPSetOptionsPrefix(dc->ksp, dc->prefix), "KSP options prefix");
    FMR_PETSC(KSPSetOperators(dc->ksp, dc->A, dc->A), "KSP operators");
    FMR_PETSC(KSPSetType(dc->ksp, KSPCG), "KSP type");
    FMR_PETSC(KSPCGSetType(dc->ksp, KSP_CG_HERMITIAN), "KSP CG type");
    {
        PC pc;
        FMR_PETSC(KSPGetPC(dc->ksp, &pc), "KSP preconditioner");
        FMR_PETSC(PCSetType(pc, PCNONE), "KSP preconditioner");
    }
    /* fmrecon's defaults first; the user's options (read once, here) win */
    FMR_PETSC(KSPSetTolerances(dc->ksp, o->rtol, PETSC_DEFAULT, PETSC_DEFAULT, o->max_it), "KSP tolerances");
    FMR_PETSC(KSPSetFromOptions(dc->ksp), "KSP options");
done:
    if (err) {
        fmr_dc_destroy(&dc);
        return err;
    }
    *out = dc;
    return FMR_OK;
}

fmr_err fmr_dc_set_operator(fmr_dc *dc, fmr_linop *op)
{
    if (fmr_linop_domain(op) != dc->n)
        return fmr_error(FMR_ERR_SHAPE, "data consistency: operator %s has %zu unknowns, the solver %zu",
                         fmr_linop_name(op), fmr_linop_domain(op), dc->n);
    int same = 0;
    MPI_Comm_compare(fmr_linop_comm(op), dc->comm, &same);
    if (same != MPI_IDENT && same != MPI_CONGRUENT)
        return fmr_error(FMR_ERR_ARG, "data consistency: operator %s is on another communicator", fmr_linop_name(op));
    fmr_linop *old = dc->op;
    dc->op = fmr_linop_ref(op);
    fmr_linop_destroy(&old);
    return FMR_OK;
}

fmr_err fmr_dc_set_lambda(fmr_dc *dc, double lambda)
{
    if (!(lambda >= 0) || !isfinite(lambda))
        return fmr_error(FMR_ERR_ARG, "data-consistency weight lambda must be >= 0, got %g", lambda);
    dc->lambda = lambda;
    return FMR_OK;
}

int fmr_dc_option_given(const fmr_dc *dc, const char *option)
{
    PetscBool has = PETSC_FALSE;
    if (PetscOptionsHasName(NULL, dc->prefix[0] ? dc->prefix : NULL, option, &has)) return 0;
    return has == PETSC_TRUE;
}

size_t fmr_dc_size(const fmr_dc *dc)
{
    return dc->n;
}

void fmr_dc_tolerances(const fmr_dc *dc, double *rtol, int *max_it)
{
    PetscReal r = 0, a, d;
    PetscInt m = 0;
    KSPGetTolerances(dc->ksp, &r, &a, &d, &m);
    *rtol = (double)r, *max_it = (int)m;
}

fmr_err fmr_dc_create(fmr_dc **out, fmr_sense *s, size_t h, size_t w)
{
    fmr_linop *op;
    FMR_TRY(fmr_linop_sense(&op, s, 1, h, w, 0, NULL));
    fmr_dc_opts o = {.prefix = NULL, .lambda = 0, .rtol = 1e-6, .max_it = 50};
    fmr_err err = fmr_dc_create_op(out, op, &o);
    fmr_linop_destroy(&op);
    if (!err) (*out)->legacy = 1;
    return err;
}

fmr_err fmr_dc_set(fmr_dc *dc, double lambda, double rtol, int max_it)
{
    fmr_err err = FMR_OK;
    FMR_TRY(fmr_dc_set_lambda(dc, lambda));
    FMR_PETSC(KSPSetTolerances(dc->ksp, rtol, PETSC_DEFAULT, PETSC_DEFAULT, max_it),
              "KSP tolerances");
    /* the first interface: options given by the user win over these settings */
    FMR_PETSC(KSPSetFromOptions(dc->ksp), "KSP options");
done:
    return err;
}

fmr_err fmr_dc_solve(fmr_dc *dc, const fmr_cfloat *rhs, fmr_cfloat *x, int x_is_guess,
                     fmr_dc_stats *st)
{
    fmr_err err = FMR_OK;
    double t0 = fmr_wtime();
    PetscScalar *a;
    PetscInt nl = dc->hi - dc->lo, its = 0;
    PetscReal rnorm = 0;
    KSPConvergedReason reason;
    dc->op_err = FMR_OK;
    FMR_PETSC(VecGetArray(dc->b, &a), "solver rhs");
    for (PetscInt i = 0; i < nl; i++)
        a[i] = rhs[dc->lo + i];
    FMR_PETSC(VecRestoreArray(dc->b, &a), "solver rhs");
    FMR_PETSC(VecGetArray(dc->x, &a), "solver guess");
    for (PetscInt i = 0; i < nl; i++)
        a[i] = x_is_guess ? (PetscScalar)x[dc->lo + i] : 0.0;
    FMR_PETSC(VecRestoreArray(dc->x, &a), "solver guess");
    FMR_PETSC(KSPSetInitialGuessNonzero(dc->ksp, x_is_guess ? PETSC_TRUE : PETSC_FALSE),
              "solver guess");
    PetscErrorCode ierr = KSPSolve(dc->ksp, dc->b, dc->x);
    if (dc->op_err) return dc->op_err;
    FMR_PETSC(ierr, "data-consistency solve");
    FMR_PETSC(KSPGetConvergedReason(dc->ksp, &reason), "solver status");
    FMR_PETSC(KSPGetIterationNumber(dc->ksp, &its), "solver status");
    FMR_PETSC(KSPGetResidualNorm(dc->ksp, &rnorm), "solver status");
    if (reason == KSP_DIVERGED_NANORINF)
        return fmr_error(FMR_ERR_VALUE,
                         "data-consistency solve met NaN/Inf after %d iterations "
                         "(NaN or Inf in the data, maps or right-hand side)",
                         (int)its);
    if (reason < 0 && reason != KSP_DIVERGED_ITS)
        return fmr_error(FMR_ERR_VALUE,
                         "data-consistency solve failed: %s after %d iterations (residual %g)",
                         KSPConvergedReasons[reason], (int)its, (double)rnorm);
    if (!isfinite(rnorm))
        return fmr_error(FMR_ERR_VALUE, "data-consistency solve produced NaN/Inf");
    FMR_PETSC(VecGetArray(dc->x, &a), "solver result");
    for (PetscInt i = 0; i < nl; i++)
        dc->xf[dc->lo + i] = (fmr_cfloat)a[i];
    FMR_PETSC(VecRestoreArray(dc->x, &a), "solver result");
    if (dc->size > 1)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, dc->xf, dc->counts, dc->displs,
                       MPI_C_FLOAT_COMPLEX, dc->comm);
    memcpy(x, dc->xf, dc->n * sizeof *x);
    if (st) {
        st->iterations = (int)its;
        st->residual = (double)rnorm;
        st->seconds = fmr_wtime() - t0;
    }
done:
    return err;
}

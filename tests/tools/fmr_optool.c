/* The operator and algorithm layer on arrays in HDF5 files, for the Python tests that compare it
 * with numpy / PyWavelets. Usage: fmr_optool CMD IN.h5 OUT.h5
 *   lintest                 maps (C, h, w), masks (T, w): the generic adjoint/normal check of every
 *                           operator and composition; prints "name adjoint normal", writes out (k, 2)
 *                           (under mpiexec the coils are split across the ranks)
 *   apply:OP:fwd|adj        x, par = [T, h, w, taps]; OP tfft, tdiff, grad2d, wavelet
 *   prox:KIND               v (T, h, w) [l12: (g, n)], par = [alpha, iters, block, seed]; KIND l1,
 *                           l12, ft, wavelet, tv-s, tv-t, llr
 *   solve:ALGO:KIND         maps (C, h, w), masks (T, w), y (T, C, h, w), par = [lambda, iters, rho, l2]:
 *                           min 1/2||Ax - y||^2 + lambda g(x); ALGO admm (KIND ft, tv-t, tv-s, wavelet,
 *                           llr), fista (KIND ft, llr, wavelet), lps (lambda = L weight, l2 = S weight) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/dc.h"
#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/iter.h"
#include "fmrecon/linop.h"
#include "fmrecon/sense.h"

static fmr_err write_out(const char *path, fmr_dtype t, int nd, const size_t *dims, const void *data)
{
    fmr_h5out *o;
    FMR_TRY(fmr_h5out_create(MPI_COMM_SELF, path, &o));
    fmr_err e = fmr_h5out_add_dataset(o, "out", t, nd, dims);
    if (!e) e = fmr_h5out_write_whole(o, "out", 1, data);
    return fmr_h5out_finish(&o, e);
}

static double par_at(fmr_array *par, size_t i, double dflt)
{
    return par && i < fmr_array_numel(par) ? (double)((float *)fmr_array_data(par))[i] : dflt;
}

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        if ((e = (call))) goto done;                                                                                   \
    } while (0)

static fmr_err lintest(const char *in, const char *out)
{
    fmr_array *maps = NULL, *masks = NULL;
    fmr_err e = FMR_OK;
    fmr_sense *s = NULL;
    enum { MAXOPS = 24 };
    fmr_linop *ops[MAXOPS] = {0}, *tmp[8] = {0};
    int nops = 0, rank, size;
    float errs[2 * MAXOPS];
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(fmr_h5_read_array(in, "maps", &maps));
    CHECK(fmr_h5_read_array(in, "masks", &masks));
    const size_t C = fmr_array_dim(maps, 0), h = fmr_array_dim(maps, 1), w = fmr_array_dim(maps, 2);
    const size_t T = fmr_array_dim(masks, 0), n = h * w;
    /* this rank's coils */
    const size_t c0 = C * (size_t)rank / (size_t)size, c1 = C * (size_t)(rank + 1) / (size_t)size;
    fmr_sense_desc d = {.h = h, .w = w, .ncoils = c1 - c0, .maps = (fmr_cfloat *)fmr_array_data(maps) + c0 * n,
                        .comm = MPI_COMM_WORLD};
    CHECK(fmr_sense_create(&s, &d));
    CHECK(fmr_linop_sense(&ops[nops++], s, T, h, w, c1 - c0, fmr_array_data(masks)));
    CHECK(fmr_linop_tfft(&ops[nops++], T, n));
    CHECK(fmr_linop_tdiff(&ops[nops++], T, n));
    CHECK(fmr_linop_grad2d(&ops[nops++], T, h, w));
    CHECK(fmr_linop_wavelet(&ops[nops++], T, h, w, 8));
    CHECK(fmr_linop_wavelet(&ops[nops++], 1, 13, 11, 4));  /* odd sizes, padded to 16 */
    CHECK(fmr_linop_wavelet(&ops[nops++], 2, 16, 16, 8));  /* square power of two: no padding */
    CHECK(fmr_linop_wavelet(&ops[nops++], 1, 20, 12, 20)); /* longest filter */
    CHECK(fmr_linop_identity(&ops[nops++], T * n, 0.7));
    CHECK(fmr_linop_scaled(&ops[nops++], ops[3], 1.3));
    CHECK(fmr_linop_chain(&ops[nops++], ops[1], ops[3]));   /* grad . tfft */
    CHECK(fmr_linop_chain(&ops[nops++], ops[2], ops[1]));   /* tfft . tdiff */
    CHECK(fmr_linop_scaled(&tmp[0], ops[3], 0.8));
    CHECK(fmr_linop_scaled(&tmp[1], ops[2], 0.5));
    {
        fmr_linop *parts[] = {ops[0], tmp[0], tmp[1], ops[4], ops[8]};
        CHECK(fmr_linop_stack(&ops[nops++], 5, parts)); /* ADMM's x-update operator */
    }
    CHECK(fmr_linop_chain(&ops[nops++], ops[1], ops[0])); /* sense . tfft^.. (x in the spectrum) */
    for (int k = 0; k < nops; k++) {
        double a, b;
        CHECK(fmr_linop_test(ops[k], 1000 + (unsigned long long)k, &a, &b));
        errs[2 * k] = (float)a, errs[2 * k + 1] = (float)b;
        if (rank == 0) printf("%s %zu->%zu %.3g %.3g\n", fmr_linop_name(ops[k]), fmr_linop_domain(ops[k]),
                              fmr_linop_codomain(ops[k]), a, b);
    }
    if (rank == 0) {
        size_t dd[2] = {(size_t)nops, 2};
        CHECK(write_out(out, FMR_F32, 2, dd, errs));
    }
done:
    for (int k = 0; k < MAXOPS; k++) fmr_linop_destroy(&ops[k]);
    for (int k = 0; k < 8; k++) fmr_linop_destroy(&tmp[k]);
    fmr_sense_destroy(&s);
    fmr_array_destroy(&maps), fmr_array_destroy(&masks);
    return e;
}

static fmr_err apply(const char *name, const char *dir, const char *in, const char *out)
{
    fmr_array *x = NULL, *par = NULL;
    fmr_linop *op = NULL;
    fmr_cfloat *y = NULL;
    fmr_err e = FMR_OK;
    CHECK(fmr_h5_read_array(in, "x", &x));
    CHECK(fmr_h5_read_array(in, "par", &par));
    const size_t T = (size_t)par_at(par, 0, 1), h = (size_t)par_at(par, 1, 1), w = (size_t)par_at(par, 2, 1);
    if (!strcmp(name, "tfft")) e = fmr_linop_tfft(&op, T, h * w);
    else if (!strcmp(name, "tdiff")) e = fmr_linop_tdiff(&op, T, h * w);
    else if (!strcmp(name, "grad2d")) e = fmr_linop_grad2d(&op, T, h, w);
    else if (!strcmp(name, "wavelet")) e = fmr_linop_wavelet(&op, T, h, w, (int)par_at(par, 3, 8));
    else e = fmr_error(FMR_ERR_ARG, "unknown operator %s", name);
    if (e) goto done;
    const int fwd = !strcmp(dir, "fwd");
    const size_t nin = fwd ? fmr_linop_domain(op) : fmr_linop_codomain(op), nout = fwd ? fmr_linop_codomain(op) : fmr_linop_domain(op);
    if (fmr_array_numel(x) != nin) {
        e = fmr_error(FMR_ERR_SHAPE, "x has %zu samples, %s wants %zu", fmr_array_numel(x), name, nin);
        goto done;
    }
    CHECK(fmr_alloc((void **)&y, nout * sizeof *y, "result"));
    CHECK((fwd ? fmr_linop_forward : fmr_linop_adjoint)(op, fmr_array_data(x), y));
    size_t dd[1] = {nout};
    CHECK(write_out(out, FMR_C64, 1, dd, y));
done:
    fmr_free(y);
    fmr_linop_destroy(&op);
    fmr_array_destroy(&x), fmr_array_destroy(&par);
    return e;
}

/* the prox of KIND on a T x h x w series */
static fmr_err make_prox(const char *kind, size_t T, size_t h, size_t w, int iters, size_t block, unsigned long long seed,
                         fmr_prox **p, fmr_linop **K)
{
    const size_t n = T * h * w;
    *K = NULL;
    if (!strcmp(kind, "l1")) return fmr_prox_l1(p, n);
    if (!strcmp(kind, "ft")) {
        FMR_TRY(fmr_linop_tfft(K, T, h * w));
        return fmr_prox_l1_of(p, *K);
    }
    if (!strcmp(kind, "wavelet")) {
        FMR_TRY(fmr_linop_wavelet(K, T, h, w, 8));
        return fmr_prox_l1_of(p, *K);
    }
    if (!strcmp(kind, "tv-s")) {
        FMR_TRY(fmr_linop_grad2d(K, T, h, w));
        return fmr_prox_tv(p, *K, 2, 8.0, iters);
    }
    if (!strcmp(kind, "tv-t")) {
        FMR_TRY(fmr_linop_tdiff(K, T, h * w));
        return fmr_prox_tv(p, *K, 1, 4.0, iters);
    }
    if (!strcmp(kind, "llr")) return fmr_prox_llr(p, T, h, w, block, seed);
    return fmr_error(FMR_ERR_ARG, "unknown prox %s", kind);
}

static fmr_err prox(const char *kind, const char *in, const char *out)
{
    fmr_array *v = NULL, *par = NULL;
    fmr_prox *p = NULL;
    fmr_linop *K = NULL;
    fmr_cfloat *z = NULL;
    fmr_err e = FMR_OK;
    CHECK(fmr_h5_read_array(in, "v", &v));
    CHECK(fmr_h5_read_array(in, "par", &par));
    const int nd = fmr_array_ndim(v);
    const size_t T = nd == 3 ? fmr_array_dim(v, 0) : 1, h = fmr_array_dim(v, nd - 2), w = fmr_array_dim(v, nd - 1);
    if (!strcmp(kind, "l12")) e = fmr_prox_l12(&p, fmr_array_dim(v, 1), fmr_array_dim(v, 0));
    else e = make_prox(kind, T, h, w, (int)par_at(par, 1, 100), (size_t)par_at(par, 2, 8),
                       (unsigned long long)par_at(par, 3, 0), &p, &K);
    if (e) goto done;
    const size_t n = fmr_array_numel(v);
    CHECK(fmr_alloc((void **)&z, n * sizeof *z, "result"));
    CHECK(fmr_prox_apply(p, par_at(par, 0, 0), fmr_array_data(v), z));
    size_t dd[1] = {n};
    CHECK(write_out(out, FMR_C64, 1, dd, z));
done:
    fmr_free(z);
    fmr_prox_destroy(&p);
    fmr_linop_destroy(&K);
    fmr_array_destroy(&v), fmr_array_destroy(&par);
    return e;
}

static fmr_err solve(const char *algo, const char *kind, const char *in, const char *out)
{
    fmr_array *maps = NULL, *masks = NULL, *y = NULL, *par = NULL;
    fmr_sense *s = NULL;
    fmr_linop *A = NULL, *K = NULL;
    fmr_prox *p = NULL;
    fmr_dc *dc = NULL;
    fmr_cfloat *aty = NULL, *x = NULL;
    fmr_err e = FMR_OK;
    CHECK(fmr_h5_read_array(in, "maps", &maps));
    CHECK(fmr_h5_read_array(in, "masks", &masks));
    CHECK(fmr_h5_read_array(in, "y", &y));
    CHECK(fmr_h5_read_array(in, "par", &par));
    const size_t C = fmr_array_dim(maps, 0), h = fmr_array_dim(maps, 1), w = fmr_array_dim(maps, 2);
    const size_t T = fmr_array_dim(masks, 0), n = T * h * w;
    const double lambda = par_at(par, 0, 0.01), rho = par_at(par, 2, 0.5);
    const int iters = (int)par_at(par, 1, 100);
    fmr_sense_desc d = {.h = h, .w = w, .ncoils = C, .maps = fmr_array_data(maps), .comm = MPI_COMM_SELF};
    CHECK(fmr_sense_create(&s, &d));
    CHECK(fmr_linop_sense(&A, s, T, h, w, C, fmr_array_data(masks)));
    CHECK(fmr_alloc((void **)&aty, n * sizeof *aty, "A^H y"));
    CHECK(fmr_alloc((void **)&x, n * sizeof *x, "x"));
    CHECK(fmr_linop_adjoint(A, fmr_array_data(y), aty));
    memcpy(x, aty, n * sizeof *x);
    fmr_iter_stats st = {0};
    if (!strcmp(algo, "admm")) {
        /* the split form cs uses: z = K x with the norm's prox on K's output */
        fmr_reg_term t = {.lambda = lambda};
        if (!strcmp(kind, "ft")) e = fmr_linop_tfft(&K, T, h * w);
        else if (!strcmp(kind, "tv-t")) e = fmr_linop_tdiff(&K, T, h * w);
        else if (!strcmp(kind, "tv-s")) e = fmr_linop_grad2d(&K, T, h, w);
        else if (!strcmp(kind, "wavelet")) e = fmr_linop_wavelet(&K, T, h, w, 8);
        else if (strcmp(kind, "llr")) e = fmr_error(FMR_ERR_ARG, "unknown ADMM term %s", kind);
        if (e) goto done;
        if (!strcmp(kind, "llr")) CHECK(fmr_prox_llr(&p, T, h, w, (size_t)par_at(par, 3, 4), 0));
        else if (!strcmp(kind, "tv-s")) CHECK(fmr_prox_l12(&p, n, 2));
        else CHECK(fmr_prox_l1(&p, fmr_linop_codomain(K)));
        t.K = K, t.prox = p;
        const fmr_dc_opts o = {.prefix = "optool_", .lambda = 0, .rtol = 1e-10, .max_it = 300};
        CHECK(fmr_dc_create_op(&dc, A, &o));
        const fmr_admm_opts ao = {.rho = rho, .iters = iters};
        CHECK(fmr_admm(dc, A, aty, 1, &t, &ao, x, &st));
    } else if (!strcmp(algo, "fista")) {
        CHECK(make_prox(kind, T, h, w, 100, (size_t)par_at(par, 3, 4), 0, &p, &K));
        const fmr_fista_opts fo = {.iters = iters, .lipschitz = 0};
        CHECK(fmr_fista(A, aty, p, lambda, &fo, x, &st));
    } else if (!strcmp(algo, "lps")) {
        const fmr_lps_opts lo = {.lambda_l = lambda, .lambda_s = par_at(par, 3, 0.01), .iters = iters};
        CHECK(fmr_lps(A, aty, T, h, w, &lo, x, NULL, NULL, &st));
    } else {
        e = fmr_error(FMR_ERR_ARG, "unknown algorithm %s", algo);
        goto done;
    }
    size_t dd[3] = {T, h, w};
    CHECK(write_out(out, FMR_C64, 3, dd, x));
    printf("iterations %d cg %d\n", st.iterations, st.cg_iterations);
done:
    fmr_dc_destroy(&dc);
    fmr_prox_destroy(&p);
    fmr_linop_destroy(&K), fmr_linop_destroy(&A);
    fmr_sense_destroy(&s);
    fmr_free(aty), fmr_free(x);
    fmr_array_destroy(&maps), fmr_array_destroy(&masks), fmr_array_destroy(&y), fmr_array_destroy(&par);
    return e;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rc = 0;
    if (fmr_petsc_init(0, NULL)) {
        fprintf(stderr, "fmr_optool: %s\n", fmr_error_message());
        MPI_Finalize();
        return 1;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: fmr_optool CMD IN.h5 OUT.h5\n");
        rc = 2;
    } else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s", argv[1]);
        char *f[3] = {0}, *save = NULL;
        int nf = 0;
        for (char *t = strtok_r(cmd, ":", &save); t && nf < 3; t = strtok_r(NULL, ":", &save)) f[nf++] = t;
        fmr_err e;
        if (nf == 1 && !strcmp(f[0], "lintest")) e = lintest(argv[2], argv[3]);
        else if (nf == 3 && !strcmp(f[0], "apply")) e = apply(f[1], f[2], argv[2], argv[3]);
        else if (nf == 2 && !strcmp(f[0], "prox")) e = prox(f[1], argv[2], argv[3]);
        else if (nf >= 2 && !strcmp(f[0], "solve")) e = solve(f[1], nf == 3 ? f[2] : "", argv[2], argv[3]);
        else e = fmr_error(FMR_ERR_ARG, "unknown command %s", argv[1]);
        if (e) {
            fprintf(stderr, "fmr_optool: %s\n", fmr_error_message());
            rc = 1;
        }
    }
    fmr_fft_cleanup();
    fmr_petsc_finalize();
    MPI_Finalize();
    return rc;
}

/* Applies one fmrecon operator to arrays in an HDF5 file and writes the result, so Python tests can
 * compare it with numpy. Usage: fmr_testtool OP IN.h5 OUT.h5
 *   fft2c | ifft2c          x (n, h, w) complex            -> y (n, h, w)
 *   sense_forward           x (h, w), maps (c, h, w), [mask (w) or (h, w)] -> y (c, h, w)
 *   sense_adjoint           y (c, h, w), maps, [mask]      -> x (h, w)
 *   sense_normal            x (h, w), maps, [mask]         -> x (h, w)
 *   rss                     x (c, h, w) complex            -> y (h, w) float
 *   noise                   any raw-data file              -> noise scans (coils, n) complex
 *   dc                      maps (c, h, w), mask (w), rhs (h, w), lam (1,), [iters (1,)]
 *                           -> x solving (A^H A + lam I) x = rhs (PETSc CG, tight tolerance)
 *   st                      a safetensors file -> every floating tensor as float32 dataset
 *   espirit                 k (c, h, w), sampled (w), [opts: kernel, cal, threshold, crop attrs]
 *                           -> maps (c, h, w) complex; OUT.eig.h5: top eigenvalue (h, w) */
#include <stdio.h>
#include <string.h>

#include "fmrecon/calib.h"
#include "fmrecon/dc.h"
#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/safetensors.h"
#include "fmrecon/sense.h"

static fmr_err write_out(const char *path, fmr_dtype t, int nd, const size_t *dims, const void *data)
{
    fmr_h5out *o;
    FMR_TRY(fmr_h5out_create(MPI_COMM_SELF, path, &o));
    fmr_err e = fmr_h5out_add_dataset(o, "out", t, nd, dims);
    if (!e) e = fmr_h5out_write_whole(o, "out", 1, data);
    return fmr_h5out_finish(&o, e);
}

static fmr_err run(const char *op, const char *in, const char *out)
{
    fmr_array *x = NULL, *maps = NULL, *mask = NULL;
    fmr_err e = FMR_OK;
    if (!strcmp(op, "st")) {
        fmr_safetensors *st;
        FMR_TRY(fmr_st_open(in, &st));
        fmr_h5out *o;
        e = fmr_h5out_create(MPI_COMM_SELF, out, &o);
        for (size_t i = 0; !e && i < fmr_st_count(st); i++) {
            const fmr_st_tensor *t = fmr_st_at(st, i);
            if (t->dtype != FMR_ST_F32 && t->dtype != FMR_ST_F16 && t->dtype != FMR_ST_BF16 && t->dtype != FMR_ST_F64)
                continue;
            size_t d[FMR_ST_MAX_DIMS] = {1};
            int nd = t->ndim ? t->ndim : 1;
            for (int k = 0; k < t->ndim; k++) d[k] = (size_t)t->shape[k];
            float *v = fmr_malloc((t->numel ? t->numel : 1) * sizeof *v);
            e = fmr_st_read_f32(st, t->name, t->ndim, t->shape, v);
            if (!e) e = fmr_h5out_add_dataset(o, t->name, FMR_F32, nd, d);
            if (!e && t->numel) e = fmr_h5out_write_whole(o, t->name, 1, v);
            fmr_free(v);
        }
        if (o) e = fmr_h5out_finish(&o, e);
        fmr_st_close(&st);
        return e;
    }
    if (!strcmp(op, "dc")) {
        fmr_array *mp = NULL, *mk = NULL, *rhs = NULL, *lam = NULL;
        e = fmr_h5_read_array(in, "maps", &mp);
        if (!e) e = fmr_h5_read_array(in, "mask", &mk);
        if (!e) e = fmr_h5_read_array(in, "rhs", &rhs);
        if (!e) e = fmr_h5_read_array(in, "lam", &lam);
        fmr_sense *op = NULL;
        fmr_dc *dc = NULL;
        if (!e) {
            size_t C = fmr_array_dim(mp, 0), h = fmr_array_dim(mp, 1), w = fmr_array_dim(mp, 2);
            fmr_sense_desc d = {.h = h, .w = w, .ncoils = C, .maps = fmr_array_data(mp), .comm = MPI_COMM_SELF};
            e = fmr_sense_create(&op, &d);
            if (!e) e = fmr_sense_set_mask(op, fmr_array_data(mk), 1);
            if (!e) e = fmr_dc_create(&dc, op, h, w);
            if (!e) e = fmr_dc_set(dc, ((float *)fmr_array_data(lam))[0], 1e-12, 1000);
            fmr_cfloat *x = fmr_malloc(h * w * sizeof *x);
            fmr_dc_stats st;
            if (!e) e = fmr_dc_solve(dc, fmr_array_data(rhs), x, 0, &st);
            size_t dd[2] = {h, w};
            if (!e) e = write_out(out, FMR_C64, 2, dd, x);
            if (!e) printf("iterations %d\n", st.iterations);
            fmr_free(x);
        }
        fmr_dc_destroy(&dc);
        fmr_sense_destroy(&op);
        fmr_array_destroy(&mp), fmr_array_destroy(&mk), fmr_array_destroy(&rhs), fmr_array_destroy(&lam);
        return e;
    }
    if (!strcmp(op, "espirit")) {
        fmr_array *k = NULL, *smp = NULL;
        e = fmr_h5_read_array(in, "k", &k);
        if (!e) e = fmr_h5_read_array(in, "sampled", &smp);
        fmr_espirit_opts o;
        fmr_espirit_defaults(&o);
        fmr_array *par = NULL;
        if (!e && fmr_h5_read_array(in, "opts", &par) == FMR_OK) {
            const float *v = fmr_array_data(par);
            o.kernel = (int)v[0], o.cal = (int)v[1], o.threshold = v[2], o.crop = v[3];
        }
        fmr_error_clear();
        if (!e) {
            size_t C = fmr_array_dim(k, 0), h = fmr_array_dim(k, 1), w = fmr_array_dim(k, 2);
            fmr_cfloat *maps = fmr_malloc(C * h * w * sizeof *maps);
            float *eig = fmr_malloc(h * w * sizeof *eig);
            e = fmr_espirit(fmr_array_data(k), fmr_array_data(smp), C, h, w, &o, maps, eig);
            size_t d[3] = {C, h, w};
            if (!e) e = write_out(out, FMR_C64, 3, d, maps);
            char eo[4200];
            snprintf(eo, sizeof eo, "%s.eig.h5", out);
            if (!e) e = write_out(eo, FMR_F32, 2, d + 1, eig);
            fmr_free(maps);
            fmr_free(eig);
        }
        fmr_array_destroy(&k);
        fmr_array_destroy(&smp);
        fmr_array_destroy(&par);
        return e;
    }
    if (!strcmp(op, "noise")) {
        fmr_dataset *ds;
        FMR_TRY(fmr_dataset_open(in, NULL, &ds));
        fmr_cfloat *nz = NULL;
        size_t n = 0;
        e = fmr_dataset_read_noise(ds, &nz, &n);
        size_t d[2] = {fmr_dataset_get_info(ds)->coils, n};
        if (!e && n) e = write_out(out, FMR_C64, 2, d, nz);
        else if (!e) e = fmr_error(FMR_ERR_FORMAT, "%s: no noise scans", in);
        fmr_free(nz);
        fmr_dataset_close(&ds);
        return e;
    }
    int sense = !strncmp(op, "sense_", 6);
    e = fmr_h5_read_array(in, !strcmp(op, "sense_adjoint") ? "y" : "x", &x);
    if (!e && sense) e = fmr_h5_read_array(in, "maps", &maps);
    if (!e && sense) {
        fmr_array *m = NULL;
        if (fmr_h5_read_array(in, "mask", &m) == FMR_OK) mask = m;
        fmr_error_clear();
    }
    if (e) goto done;
    int nd = fmr_array_ndim(x);
    size_t h = fmr_array_dim(x, nd - 2), w = fmr_array_dim(x, nd - 1);
    size_t dims[3] = {fmr_array_dim(x, 0), h, w};
    if (!strcmp(op, "fft2c") || !strcmp(op, "ifft2c")) {
        fmr_fft2c *f;
        size_t n = fmr_array_dim(x, 0);
        e = fmr_fft2c_create(&f, h, w);
        if (!e) e = (op[0] == 'f' ? fmr_fft2c_forward : fmr_fft2c_inverse)(f, n, fmr_array_data(x), fmr_array_data(x));
        fmr_fft2c_destroy(&f);
        if (!e) e = write_out(out, FMR_C64, 3, dims, fmr_array_data(x));
    } else if (!strcmp(op, "rss")) {
        float *y = fmr_malloc(h * w * sizeof *y);
        fmr_rss(fmr_array_data(x), fmr_array_dim(x, 0), h * w, y);
        e = write_out(out, FMR_F32, 2, dims + 1, y);
        fmr_free(y);
    } else if (sense) {
        size_t nc = fmr_array_dim(maps, 0);
        fmr_sense *s;
        fmr_sense_desc d = {.h = h, .w = w, .ncoils = nc, .maps = fmr_array_data(maps), .comm = MPI_COMM_SELF};
        e = fmr_sense_create(&s, &d);
        if (!e && mask) e = fmr_sense_set_mask(s, fmr_array_data(mask), fmr_array_ndim(mask));
        fmr_cfloat *r = fmr_malloc(nc * h * w * sizeof *r);
        size_t cd[3] = {nc, h, w};
        if (!e && !strcmp(op, "sense_forward")) {
            e = fmr_sense_forward(s, fmr_array_data(x), r);
            if (!e) e = write_out(out, FMR_C64, 3, cd, r);
        } else if (!e) {
            e = (!strcmp(op, "sense_adjoint") ? fmr_sense_adjoint : fmr_sense_normal)(s, fmr_array_data(x), r);
            if (!e) e = write_out(out, FMR_C64, 2, cd + 1, r);
        }
        fmr_free(r);
        fmr_sense_destroy(&s);
    } else {
        e = fmr_error(FMR_ERR_ARG, "unknown op %s", op);
    }
done:
    fmr_array_destroy(&x);
    fmr_array_destroy(&maps);
    fmr_array_destroy(&mask);
    return e;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rc = 0;
    if (fmr_petsc_init(0, NULL)) {
        fprintf(stderr, "fmr_testtool: %s\n", fmr_error_message());
        return 1;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: fmr_testtool OP IN.h5 OUT.h5\n");
        rc = 2;
    } else {
        fmr_err e = run(argv[1], argv[2], argv[3]);
        if (e) {
            fprintf(stderr, "fmr_testtool: %s\n", fmr_error_message());
            rc = 1;
        }
    }
    fmr_fft_cleanup();
    fmr_petsc_finalize();
    MPI_Finalize();
    return rc;
}

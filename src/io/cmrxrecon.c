/* CMRxRecon 2023/2024 MATLAB v7.3 files, read with HDF5 directly (a v7.3 .mat is HDF5 behind a
 * 512-byte user block). MATLAB is column-major, so an array saved as (nx, ny, nc, nz, nt) reads
 * as (nt, nz, nc, ny, nx): readout nx is the LAST axis and phase-encode ny the second last, the
 * transpose of fastMRI's orientation. Single-coil variables are (nx, ny, nz, nt); a lone 2-D
 * (nx, ny) variable is one image. Each coil image is transposed here, once, to fmrecon's
 * (readout, phase-encode) layout. Complex values are compounds {real, imag}, single or double. */
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"
#include "h5util.h"
#include "core/limits.h"

static const char *const kspace_vars[] = {
    "kspace_full", "kus", "kspace_sub04", "kspace_sub08", "kspace_sub10", "kspace_single_full",
    "kspace_single_sub04", "kspace_single_sub08", "kspace_single_sub10", NULL};

typedef struct {
    hid_t file, dset, memtype;
    int rank;            /* 5: (nt, nz, nc, ny, nx); 4: single-coil (nt, nz, ny, nx) */
    fmr_cfloat *scratch; /* nc * ny * nx, file orientation */
} cmrx_impl;

static void cmrx_close(fmr_dataset *ds)
{
    cmrx_impl *m = ds->impl;
    if (!m) return;
    fmr_free(m->scratch);
    if (m->memtype >= 0) H5Tclose(m->memtype);
    if (m->dset >= 0) H5Dclose(m->dset);
    if (m->file >= 0) H5Fclose(m->file);
    free(m);
    ds->impl = NULL;
}

static fmr_err cmrx_read_kspace(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc,
                                fmr_cfloat *out)
{
    cmrx_impl *m = ds->impl;
    const fmr_dataset_info *in = &ds->info;
    const size_t nx = in->h, ny = in->w;
    hsize_t start[5] = {t, z, c0, 0, 0}, count[5] = {1, 1, nc, ny, nx};
    if (m->rank == 4) {
        start[2] = 0, count[2] = ny, start[3] = 0, count[3] = nx;
    } else if (m->rank == 2) {
        start[0] = start[1] = 0, count[0] = ny, count[1] = nx;
    }
    hid_t fs = H5Dget_space(m->dset);
    hsize_t n = nc * ny * nx;
    hid_t ms = H5Screate_simple(1, &n, NULL);
    herr_t r = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (r >= 0) r = H5Dread(m->dset, m->memtype, ms, fs, H5P_DEFAULT, m->scratch);
    H5Sclose(ms);
    H5Sclose(fs);
    if (r < 0) {
        const char *why = fmr_h5_reason();
        return fmr_error(FMR_ERR_IO, "%s: cannot read '%s' (file corrupt or truncated?)%s%s",
                         ds->path, in->variable, *why ? ": " : "", why);
    }
    for (size_t c = 0; c < nc; c++) {
        const fmr_cfloat *src = m->scratch + c * ny * nx;
        fmr_cfloat *dst = out + c * nx * ny;
        for (size_t y = 0; y < ny; y++)
            for (size_t x = 0; x < nx; x++) dst[x * ny + y] = src[y * nx + x];
    }
    return FMR_OK;
}

static fmr_err cmrx_read_mask(fmr_dataset *ds, size_t t, float *mask)
{
    (void)t;
    (void)mask;
    return fmr_error(FMR_ERR_INTERNAL, "%s: CMRxRecon k-space files carry no mask", ds->path);
}

static fmr_err cmrx_read_reference(fmr_dataset *ds, size_t t, size_t z, float *out)
{
    (void)t, (void)z, (void)out;
    return fmr_error(FMR_ERR_INTERNAL, "%s: CMRxRecon k-space files carry no reference", ds->path);
}

static const fmr_dataset_ops cmrx_ops = {
    .read_kspace = cmrx_read_kspace,
    .read_mask = cmrx_read_mask,
    .read_reference = cmrx_read_reference,
    .close = cmrx_close,
};

static fmr_err open_variable(const char *path, cmrx_impl *m, const char *var, fmr_dataset_info *in)
{
    m->dset = H5Dopen2(m->file, var, H5P_DEFAULT);
    if (m->dset < 0) return fmr_error(FMR_ERR_FORMAT, "%s: '%s' is not a readable dataset", path, var);
    hsize_t d[8];
    FMR_TRY(fmr_h5_dims(path, m->dset, var, 8, &m->rank, d));
    if (m->rank != 2 && m->rank != 4 && m->rank != 5)
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: '%s' has rank %d; expected MATLAB (nx, ny, nc, nz, nt), single-coil "
                         "(nx, ny, nz, nt) or one image (nx, ny)",
                         path, var, m->rank);
    hid_t t = H5Dget_type(m->dset);
    int ok = fmr_h5_complex_memtype(t, &m->memtype, &in->file_double);
    const char *tn = fmr_h5_type_name(t);
    H5Tclose(t);
    if (!ok)
        return fmr_error(FMR_ERR_FORMAT, "%s: '%s' has dtype %s; expected complex (real/imag compound)",
                         path, var, tn);
    in->frames = m->rank == 2 ? 1 : d[0];
    in->slices = m->rank == 2 ? 1 : d[1];
    in->coils = m->rank == 5 ? d[2] : 1;
    in->w = d[m->rank - 2]; /* ny: phase-encode */
    in->h = d[m->rank - 1]; /* nx: readout */
    in->has_frame_axis = 1;
    if (!in->frames || !in->slices || !in->coils || !in->h || !in->w)
        return fmr_error(FMR_ERR_SHAPE, "%s: '%s' has an empty dimension", path, var);
    snprintf(in->variable, sizeof in->variable, "%s", var);
    FMR_TRY(fmr_limit_bytes(path, "one k-space item (coils x ny x nx)", sizeof(fmr_cfloat), 3,
                            (size_t[]){in->coils, in->h, in->w}, NULL));
    return fmr_alloc((void **)&m->scratch, in->coils * in->h * in->w * sizeof(fmr_cfloat), "k-space item");
}

int fmr_cmrxrecon_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err)
{
    hid_t f;
    if ((*err = fmr_h5_open_read(path, &f))) return -1;
    const char *var = NULL;
    if (opt->variable) {
        if (fmr_h5_exists(f, opt->variable)) var = opt->variable;
    } else {
        for (int i = 0; kspace_vars[i] && !var; i++)
            if (fmr_h5_exists(f, kspace_vars[i])) var = kspace_vars[i];
    }
    if (!var) {
        int other = fmr_h5_exists(f, "kspace") || fmr_h5_exists(f, "dataset");
        H5Fclose(f);
        if (opt->variable && !other) {
            *err = fmr_error(FMR_ERR_FORMAT, "%s: no variable '%s'", path, opt->variable);
            return -1;
        }
        return 0;
    }
    cmrx_impl *m = calloc(1, sizeof *m);
    if (!m) {
        H5Fclose(f);
        *err = fmr_error(FMR_ERR_NOMEM, "cannot allocate reader");
        return -1;
    }
    m->file = f;
    m->dset = m->memtype = H5I_INVALID_HID;
    ds->impl = m;
    ds->ops = &cmrx_ops;
    fmr_dataset_info *in = &ds->info;
    in->format = FMR_FORMAT_CMRXRECON;
    in->format_name = "CMRxRecon";
    *err = open_variable(path, m, var, in);
    if (*err) {
        cmrx_close(ds);
        return -1;
    }
    in->pad_left = 0;
    in->pad_right = in->w;
    return 1;
}

/* A sampling mask from a separate file: a CMRxRecon mask .mat (variable mask, mask04/08/10;
 * MATLAB (nx, ny) reads as (ny, nx), k-t masks (nx, ny, nt) as (nt, ny, nx)) or any HDF5 file with a
 * fastMRI-style 'mask' of shape (w,) or (frames, w). fmrecon's masks select phase-encode columns,
 * so a 2-D mask must be the same along the readout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"
#include "h5util.h"

static const char *const mask_vars[] = {"mask", "mask04", "mask08", "mask10", NULL};

static int is_matlab(const char *path)
{
    char head[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && !memcmp(head, "MATLAB", 6);
}

fmr_err fmr_maskfile_read(const char *path, const char *variable, fmr_dataset *ds)
{
    fmr_dataset_info *in = &ds->info;
    hid_t f;
    FMR_TRY(fmr_h5_open_read(path, &f));
    const char *var = NULL;
    if (variable) {
        if (fmr_h5_exists(f, variable)) var = variable;
    } else {
        for (int i = 0; mask_vars[i] && !var; i++)
            if (fmr_h5_exists(f, mask_vars[i])) var = mask_vars[i];
    }
    if (!var) {
        H5Fclose(f);
        return fmr_error(FMR_ERR_FORMAT, "%s: no mask variable %s%s%s", path, variable ? "'" : "(mask, mask04, mask08, mask10)",
                         variable ? variable : "", variable ? "'" : "");
    }
    fmr_err err = FMR_OK;
    float *raw = NULL;
    int nd = 0;
    size_t d[8];
    /* The stored shape must fit the k-space before anything is read: a small file can declare a
     * huge (chunked, unwritten) mask, which would otherwise be allocated in full. */
    hsize_t hd[3];
    hid_t dset = H5Dopen2(f, var, H5P_DEFAULT);
    if (dset < 0) err = fmr_error(FMR_ERR_FORMAT, "%s: '%s' is not a readable dataset", path, var);
    if (!err) err = fmr_h5_dims(path, dset, var, 3, &nd, hd);
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(f);
    FMR_TRY(err);
    for (int i = 0; i < nd; i++)
        d[i] = (size_t)hd[i];
    int matlab = is_matlab(path);
    size_t nf = 0, stride_t = 0, stride_c = 0, nread = 1, stride_r = 0;
    /* Map every layout onto mask[t][c] = raw[t*stride_t + c*stride_c + r*stride_r] for r < nread. */
    if (nd == 1 && d[0] == in->w) {
        nf = 1, stride_c = 1;
    } else if (nd == 2 && matlab && d[0] == in->w && d[1] == in->h) {
        nf = 1, stride_c = d[1], stride_r = 1, nread = d[1];
    } else if (nd == 2 && !matlab && d[0] == in->frames && d[1] == in->w) {
        nf = d[0], stride_t = d[1], stride_c = 1;
    } else if (nd == 3 && d[0] == in->frames && d[1] == in->w && d[2] == in->h) {
        nf = d[0], stride_t = d[1] * d[2], stride_c = d[2], stride_r = 1, nread = d[2];
    } else {
        char shape[96] = "(";
        for (int i = 0; i < nd; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", i ? ", " : "", d[i]);
        strcat(shape, ")");
        err = fmr_error(FMR_ERR_SHAPE,
                        "%s: mask '%s' has shape %s, which does not fit k-space of %zu frames x %zu "
                        "readout x %zu phase-encode%s",
                        path, var, shape, in->frames, in->h, in->w,
                        matlab ? " (MATLAB masks read as (ny, nx) or (nt, ny, nx))" : "");
    }
    /* now read it, at most frames x h x w values; the shape cannot have changed in between
     * unless the file did, which the read reports */
    int nd2 = 0;
    size_t d2[8];
    if (!err) err = fmr_h5_read_floats(path, var, 3, &nd2, d2, &raw);
    if (!err && (nd2 != nd || memcmp(d, d2, (size_t)nd * sizeof *d)))
        err = fmr_error(FMR_ERR_IO, "%s: mask '%s' changed while it was read", path, var);
    if (!err) {
        ds->ext_mask = malloc(nf * in->w * sizeof(float));
        if (!ds->ext_mask) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate mask");
    }
    for (size_t t = 0; !err && t < nf; t++)
        for (size_t c = 0; !err && c < in->w; c++) {
            const float *p = raw + t * stride_t + c * stride_c;
            for (size_t r = 1; r < nread; r++)
                if ((p[r * stride_r] != 0.0f) != (p[0] != 0.0f)) {
                    err = fmr_error(FMR_ERR_FORMAT,
                                    "%s: mask '%s' varies along the readout at phase-encode line %zu "
                                    "(only line masks are supported, not radial or 2-D patterns)",
                                    path, var, c);
                    break;
                }
            if (!err) ds->ext_mask[t * in->w + c] = p[0] != 0.0f ? 1.0f : 0.0f;
        }
    fmr_free(raw);
    if (err) {
        free(ds->ext_mask);
        ds->ext_mask = NULL;
        return err;
    }
    in->mask = nf > 1 ? FMR_MASK_PERFRAME : FMR_MASK_SHARED;
    return FMR_OK;
}

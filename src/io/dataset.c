#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"

const char *fmr_dataset_path(const fmr_dataset *ds)
{
    return ds->path;
}

const fmr_dataset_info *fmr_dataset_get_info(const fmr_dataset *ds)
{
    return &ds->info;
}

typedef int (*probe_fn)(const char *, const fmr_open_options *, fmr_dataset *, fmr_err *);

fmr_err fmr_dataset_open(const char *path, const fmr_open_options *opt, fmr_dataset **out)
{
    static const fmr_open_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    fmr_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate dataset for %s", path);
    }
    /* Each probe says "mine", "not mine" or "mine but broken"; the first that claims the file
     * decides. Checking existence and HDF5-ness first keeps those messages format-neutral. */
    static const probe_fn probes[] = {fmr_ismrmrd_probe, fmr_cmrxrecon_probe, fmr_fastmri_probe};
    fmr_err err = FMR_OK;
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof probes / sizeof probes[0]; i++) r = probes[i](path, opt, ds, &err);
    if (r == 0)
        err = fmr_error(FMR_ERR_FORMAT,
                        "%s: no k-space found (expected fastMRI 'kspace', CMRxRecon 'kspace_full'/'kus'/"
                        "'kspace_sub*' or ISMRMRD '/dataset/data')",
                        path);
    if (!err && opt->mask_file) err = fmr_maskfile_read(opt->mask_file, opt->mask_variable, ds);
    if (err) {
        if (r > 0) ds->ops->close(ds);
        free(ds->ext_mask);
        free(ds->path);
        free(ds);
        return err;
    }
    *out = ds;
    return FMR_OK;
}

void fmr_dataset_close(fmr_dataset **ds)
{
    if (!ds || !*ds) return;
    if ((*ds)->ops && (*ds)->ops->close) (*ds)->ops->close(*ds);
    free((*ds)->ext_mask);
    free((*ds)->path);
    free(*ds);
    *ds = NULL;
}

fmr_err fmr_dataset_read_kspace(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc,
                                fmr_cfloat *out)
{
    const fmr_dataset_info *in = &ds->info;
    if (t >= in->frames || z >= in->slices || c0 + nc > in->coils || nc == 0)
        return fmr_error(FMR_ERR_ARG,
                         "%s: k-space request frame %zu slice %zu coils %zu..%zu outside %zux%zux%zu",
                         ds->path, t, z, c0, c0 + nc, in->frames, in->slices, in->coils);
    FMR_TRY(ds->ops->read_kspace(ds, t, z, c0, nc, out));
    const size_t hw = in->h * in->w;
    for (size_t i = 0; i < nc * hw; i++) {
        if (!isfinite(crealf(out[i])) || !isfinite(cimagf(out[i]))) {
            size_t c = i / hw, p = i % hw;
            return fmr_error(FMR_ERR_VALUE,
                             "%s: k-space has NaN/Inf at frame %zu, slice %zu, coil %zu (row %zu, "
                             "column %zu)",
                             ds->path, t, z, c0 + c, p / in->w, p % in->w);
        }
    }
    return FMR_OK;
}

fmr_err fmr_dataset_read_mask(fmr_dataset *ds, size_t t, float *mask)
{
    const fmr_dataset_info *in = &ds->info;
    if (t >= in->frames)
        return fmr_error(FMR_ERR_ARG, "%s: mask of frame %zu requested, file has %zu", ds->path, t,
                         in->frames);
    if (ds->ext_mask) {
        const float *m = ds->ext_mask + (in->mask == FMR_MASK_PERFRAME ? t * in->w : 0);
        for (size_t c = 0; c < in->w; c++) mask[c] = m[c] != 0.0f ? 1.0f : 0.0f;
    } else if (in->mask == FMR_MASK_NONE) {
        for (size_t c = 0; c < in->w; c++) mask[c] = 1.0f;
    } else {
        FMR_TRY(ds->ops->read_mask(ds, t, mask));
        for (size_t c = 0; c < in->w; c++) {
            if (!isfinite(mask[c]))
                return fmr_error(FMR_ERR_VALUE, "%s: mask has NaN/Inf at frame %zu, column %zu",
                                 ds->path, t, c);
            mask[c] = mask[c] != 0.0f ? 1.0f : 0.0f;
        }
    }
    for (size_t c = 0; c < in->w; c++)
        if (c < in->pad_left || c >= in->pad_right) mask[c] = 0.0f;
    return FMR_OK;
}

fmr_err fmr_dataset_read_reference(fmr_dataset *ds, size_t t, size_t z, float *out)
{
    const fmr_dataset_info *in = &ds->info;
    if (!in->has_reference)
        return fmr_error(FMR_ERR_FORMAT, "%s: no reference image (reconstruction_rss)", ds->path);
    if (t >= in->frames || z >= in->slices)
        return fmr_error(FMR_ERR_ARG, "%s: reference frame %zu slice %zu out of range", ds->path, t, z);
    return ds->ops->read_reference(ds, t, z, out);
}

fmr_err fmr_dataset_read_noise(fmr_dataset *ds, fmr_cfloat **noise, size_t *n)
{
    *noise = NULL;
    *n = 0;
    if (!ds->ops->read_noise) return FMR_OK;
    FMR_TRY(ds->ops->read_noise(ds, noise, n));
    for (size_t i = 0; i < *n * ds->info.coils; i++)
        if (!isfinite(crealf((*noise)[i])) || !isfinite(cimagf((*noise)[i]))) {
            fmr_free(*noise);
            *noise = NULL;
            return fmr_error(FMR_ERR_VALUE, "%s: noise scan holds NaN/Inf", ds->path);
        }
    return FMR_OK;
}

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "dataset_impl.h"
#include "fmrecon/calib.h"
#include "fmrecon/log.h"
#include "geometry/geometry_impl.h"

const char *fmr_dataset_path(const fmr_dataset *ds)
{
    return ds->path;
}

const fmr_dataset_info *fmr_dataset_get_info(const fmr_dataset *ds)
{
    return &ds->info;
}

const fmr_geometry *fmr_dataset_get_geometry(const fmr_dataset *ds)
{
    return ds->geo;
}

const char *fmr_dataset_header_xml(const fmr_dataset *ds)
{
    return ds->header_xml;
}

/* Prewhitening (from noise scans, unless disabled) and SVD compression (if asked) combine into one
 * coils x coils_in_file matrix applied to every item as it is read, so every method, the coil
 * calibration and the outputs see the transformed channels. */
static fmr_err setup_coil_transform(fmr_dataset *ds, const fmr_open_options *opt)
{
    fmr_dataset_info *in = &ds->info;
    const size_t C = in->coils, hw = in->h * in->w;
    fmr_cfloat *W = NULL, *noise = NULL;
    size_t nn = 0;
    if (!opt->no_prewhiten) FMR_TRY(fmr_dataset_read_noise(ds, &noise, &nn));
    fmr_err err = FMR_OK;
    if (nn) {
        err = fmr_alloc((void **)&W, C * C * sizeof *W, "noise whitener");
        if (!err) err = fmr_coil_whitener(noise, C, nn, W);
        if (err) fmr_error_context(err, "%s: ", ds->path);
    }
    fmr_free(noise);
    if (err || (!W && !opt->virtual_coils)) {
        fmr_free(W);
        return err;
    }
    if (!err) err = fmr_alloc((void **)&ds->raw, C * hw * sizeof *ds->raw, "coil transform scratch");
    if (!err && W) {
        ds->xform = W;
        W = NULL;
        in->prewhitened = 1;
    }
    if (!err && opt->virtual_coils) {
        const size_t N = opt->virtual_coils;
        if (N > C) {
            err = fmr_error(FMR_ERR_ARG, "%s: --virtual-coils %zu exceeds the %zu coils in the file", ds->path, N, C);
        } else {
            /* covariance of the (whitened) channels over frame 0 of every slice */
            double _Complex *cov = calloc(C * C, sizeof *cov);
            fmr_cfloat *ks = NULL, *UH = NULL, *T = NULL;
            if (!cov) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate coil covariance");
            if (!err) err = fmr_alloc((void **)&ks, C * hw * sizeof *ks, "compression k-space");
            for (size_t z = 0; !err && z < in->slices; z++) {
                err = fmr_dataset_read_kspace(ds, 0, z, 0, C, ks);
                for (size_t a = 0; !err && a < C; a++)
                    for (size_t b = 0; b < C; b++) {
                        double _Complex acc = 0;
                        for (size_t p = 0; p < hw; p++) acc += (double _Complex)ks[a * hw + p] * conj((double _Complex)ks[b * hw + p]);
                        cov[a * C + b] += acc;
                    }
            }
            if (!err) err = fmr_alloc((void **)&UH, N * C * sizeof *UH, "coil compression");
            if (!err) err = fmr_coil_compressor(cov, C, N, UH, &in->compression_energy);
            if (!err) err = fmr_alloc((void **)&T, N * C * sizeof *T, "coil transform");
            for (size_t v = 0; !err && v < N; v++)
                for (size_t c = 0; c < C; c++) {
                    fmr_cfloat s = 0;
                    if (!ds->xform) s = UH[v * C + c];
                    else
                        for (size_t k = 0; k < C; k++) s += UH[v * C + k] * ds->xform[k * C + c];
                    T[v * C + c] = s;
                }
            if (!err) {
                fmr_free(ds->xform);
                ds->xform = T;
                T = NULL;
                in->coils = N;
            }
            free(cov);
            fmr_free(ks);
            fmr_free(UH);
            fmr_free(T);
        }
    }
    fmr_free(W);
    return err;
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
     * decides. Checking existence and HDF5-ness first keeps those messages format-neutral.
     * BART's pair goes first: it is recognised by name, before any HDF5 probe opens the file. */
    static const probe_fn probes[] = {fmr_cfl_probe, fmr_ismrmrd_probe, fmr_cmrxrecon_probe, fmr_fastmri_probe};
    fmr_err err = FMR_OK;
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof probes / sizeof probes[0]; i++) r = probes[i](path, opt, ds, &err);
    if (r == 0)
        err = fmr_error(FMR_ERR_FORMAT,
                        "%s: no k-space found (expected fastMRI 'kspace', CMRxRecon 'kspace_full'/'kus'/"
                        "'kspace_sub*' or ISMRMRD '/dataset/data')",
                        path);
    /* Every reader's header sizes against the memory budget, before any item is allocated: one
     * item's k-space and the per-frame masks are what every command holds at least. */
    if (!err) {
        const fmr_dataset_info *in = &ds->info;
        err = fmr_limit_bytes(path, "one k-space item (coils x readout x phase-encode)", sizeof(fmr_cfloat), 3,
                              (size_t[]){in->coils, in->h, in->w}, NULL);
        if (!err)
            err = fmr_limit_bytes(path, "the sampling masks (frames x phase-encode)", sizeof(float), 2,
                                  (size_t[]){in->frames, in->w}, NULL);
    }
    if (!err) err = fmr_dataset_geometry_init(ds, opt);
    if (!err && opt->mask_file) err = fmr_maskfile_read(opt->mask_file, opt->mask_variable, ds);
    if (!err) {
        ds->info.coils_in_file = ds->info.coils;
        err = setup_coil_transform(ds, opt);
    }
    if (err) {
        if (r > 0) ds->ops->close(ds);
        fmr_free(ds->xform);
        fmr_free(ds->raw);
        free(ds->ext_mask);
        fmr_geometry_free(&ds->geo);
        free(ds->header_xml);
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
    fmr_geometry_free(&(*ds)->geo);
    free((*ds)->header_xml);
    fmr_free((*ds)->xform);
    fmr_free((*ds)->raw);
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
    const size_t hw = in->h * in->w;
    if (ds->xform) {
        /* every file channel contributes to every transformed coil */
        const size_t C = in->coils_in_file;
        FMR_TRY(ds->ops->read_kspace(ds, t, z, 0, C, ds->raw));
        for (size_t v = 0; v < nc; v++) {
            const fmr_cfloat *row = ds->xform + (c0 + v) * C;
            fmr_cfloat *o = out + v * hw;
            for (size_t p = 0; p < hw; p++) o[p] = 0;
            for (size_t c = 0; c < C; c++) {
                const fmr_cfloat k = row[c], *src = ds->raw + c * hw;
                if (k != 0.0f)
                    for (size_t p = 0; p < hw; p++) o[p] += k * src[p];
            }
        }
    } else {
        FMR_TRY(ds->ops->read_kspace(ds, t, z, c0, nc, out));
    }
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
    const size_t C = ds->info.coils_in_file ? ds->info.coils_in_file : ds->info.coils;
    for (size_t i = 0; i < *n * C; i++)
        if (!isfinite(crealf((*noise)[i])) || !isfinite(cimagf((*noise)[i]))) {
            fmr_free(*noise);
            *noise = NULL;
            return fmr_error(FMR_ERR_VALUE, "%s: noise scan holds NaN/Inf", ds->path);
        }
    return FMR_OK;
}

#include "maps.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/calib.h"
#include "fmrecon/cfl.h"
#include "fmrecon/log.h"

struct fmr_maps {
    fmr_dataset *ds;
    const fmr_dataset_info *in;
    fmr_espirit_opts opt;
    fmr_array *file; /* maps from --sens: (slices, coils, h, w) or (coils, h, w) */
    fmr_cfloat *cur;
    long cur_slice;
};

void fmr_maps_destroy(fmr_maps **p)
{
    if (!p || !*p) return;
    fmr_array_destroy(&(*p)->file);
    fmr_free((*p)->cur);
    free(*p);
    *p = NULL;
}

fmr_err fmr_maps_create(fmr_maps **out, fmr_dataset *ds, const fmr_method_params *par)
{
    *out = NULL;
    fmr_maps *m = calloc(1, sizeof *m);
    if (!m) return fmr_error(FMR_ERR_NOMEM, "cannot allocate coil maps");
    m->ds = ds;
    m->in = fmr_dataset_get_info(ds);
    m->opt = par->espirit;
    m->cur_slice = -1;
    const fmr_dataset_info *in = m->in;
    fmr_err err =
        fmr_alloc((void **)&m->cur, in->coils * in->h * in->w * sizeof *m->cur, "coil maps");
    char cfl_base[4096];
    if (!err && par->sens_file && fmr_cfl_is(par->sens_file, cfl_base, sizeof cfl_base)) {
        err = fmr_cfl_read_maps(par->sens_file, &m->file); /* BART maps, e.g. from bart ecalib */
    } else if (!err && par->sens_file) {
        err = fmr_h5_read_array(par->sens_file, "maps", &m->file);
        if (err == FMR_ERR_FORMAT && strstr(fmr_error_message(), "no dataset"))
            err = fmr_h5_read_array(par->sens_file, "sens", &m->file);
        if (err == FMR_ERR_FORMAT && strstr(fmr_error_message(), "no dataset"))
            err = fmr_error(FMR_ERR_FORMAT, "%s: no 'maps' or 'sens' dataset", par->sens_file);
    }
    if (!err && par->sens_file) {
        {
            fmr_array *a = m->file;
            int nd = fmr_array_ndim(a);
            int ok = fmr_array_dtype(a) == FMR_C64 && (nd == 3 || nd == 4) &&
                     fmr_array_dim(a, nd - 3) == in->coils && fmr_array_dim(a, nd - 2) == in->h &&
                     fmr_array_dim(a, nd - 1) == in->w &&
                     (nd == 3 || fmr_array_dim(a, 0) == in->slices);
            if (!ok)
                err = fmr_error(
                    FMR_ERR_SHAPE,
                    "%s: coil maps must be complex (slices, coils, h, w) or (coils, h, w) = "
                    "(%zu, %zu, %zu, %zu); got %s rank %d with last dims %zu x %zu x %zu",
                    par->sens_file, in->slices, in->coils, in->h, in->w,
                    fmr_array_dtype(a) == FMR_C64 ? "complex" : "real", nd,
                    fmr_array_dim(a, nd - 3), fmr_array_dim(a, nd - 2), fmr_array_dim(a, nd - 1));
        }
    }
    if (!err && par->sens_file) {
        /* maps that are not finite, or zero for a whole slice, make every method's result
         * useless (NaN, or an empty image): refuse them at load, naming the file */
        const fmr_cfloat *a = fmr_array_data(m->file);
        const size_t n = in->coils * in->h * in->w;
        const size_t ns = fmr_array_ndim(m->file) == 4 ? in->slices : 1;
        size_t bad = 0;
        for (size_t i = 0; i < ns * n; i++)
            bad += !isfinite(crealf(a[i])) || !isfinite(cimagf(a[i]));
        if (bad)
            err = fmr_error(FMR_ERR_VALUE, "%s: coil maps contain %zu non-finite values",
                            par->sens_file, bad);
        for (size_t z = 0; !err && z < ns; z++) {
            size_t i = 0;
            while (i < n && a[z * n + i] == 0.0f) i++;
            if (i == n)
                err = fmr_error(FMR_ERR_VALUE, "%s: coil maps are zero everywhere for slice %zu",
                                par->sens_file, z);
        }
    }
    if (err) {
        fmr_maps_destroy(&m);
        return err;
    }
    *out = m;
    return FMR_OK;
}

static fmr_err calibrate(fmr_maps *m, size_t z)
{
    const fmr_dataset_info *in = m->in;
    const size_t n = in->coils * in->h * in->w, T = in->frames;
    fmr_cfloat *ks = NULL, *avg = NULL;
    float *masks = NULL, *sampled = NULL;
    fmr_err err = fmr_alloc((void **)&ks, T * n * sizeof *ks, "calibration k-space");
    if (!err) err = fmr_alloc((void **)&avg, n * sizeof *avg, "calibration k-space");
    if (!err) err = fmr_alloc((void **)&masks, T * in->w * sizeof *masks, "calibration masks");
    if (!err) err = fmr_alloc((void **)&sampled, in->w * sizeof *sampled, "calibration masks");
    for (size_t t = 0; !err && t < T; t++) {
        err = fmr_dataset_read_kspace(m->ds, t, z, 0, in->coils, ks + t * n);
        if (!err) err = fmr_dataset_read_mask(m->ds, t, masks + t * in->w);
    }
    if (!err) {
        fmr_time_average(ks, masks, T, in->coils, in->h, in->w, avg, sampled);
        err = fmr_espirit(avg, sampled, in->coils, in->h, in->w, &m->opt, m->cur, NULL);
        if (err) fmr_error_context(err, "%s: ", fmr_dataset_path(m->ds));
        size_t i = 0;
        while (!err && i < n && m->cur[i] == 0.0f) i++;
        if (!err && i == n)
            err = fmr_error(FMR_ERR_VALUE,
                            "%s: ESPIRiT coil maps are zero everywhere for slice %zu (the crop "
                            "threshold --espirit-crop %g removes every pixel; lower it)",
                            fmr_dataset_path(m->ds), z, (double)m->opt.crop);
    }
    fmr_free(ks);
    fmr_free(avg);
    fmr_free(masks);
    fmr_free(sampled);
    return err;
}

fmr_err fmr_maps_get(fmr_maps *m, size_t z, const fmr_cfloat **maps)
{
    const size_t n = m->in->coils * m->in->h * m->in->w;
    if ((long)z != m->cur_slice) {
        if (m->file) {
            const fmr_cfloat *src = fmr_array_data(m->file);
            memcpy(m->cur, src + (fmr_array_ndim(m->file) == 4 ? z * n : 0), n * sizeof *m->cur);
        } else {
            m->cur_slice = -1;
            FMR_TRY(calibrate(m, z));
        }
        m->cur_slice = (long)z;
    }
    *maps = m->cur;
    return FMR_OK;
}

/* Scoring a reconstruction file against a reference file with fastMRI's or CMRxRecon's rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/io.h"
#include "fmrecon/metrics.h"

typedef struct {
    float *data;
    size_t t, z, h, w;
} volume;

static fmr_err load(const char *path, volume *v)
{
    int nd;
    size_t d[8];
    fmr_err err = fmr_h5_read_floats(path, "reconstruction", 4, &nd, d, &v->data);
    if (err == FMR_ERR_FORMAT && strstr(fmr_error_message(), "no dataset"))
        err = fmr_h5_read_floats(path, "reconstruction_rss", 4, &nd, d, &v->data);
    if (err == FMR_ERR_FORMAT && strstr(fmr_error_message(), "no dataset"))
        return fmr_error(FMR_ERR_FORMAT, "%s: no 'reconstruction' or 'reconstruction_rss' dataset", path);
    FMR_TRY(err);
    if (nd == 4) v->t = d[0], v->z = d[1], v->h = d[2], v->w = d[3];
    else if (nd == 3) v->t = 1, v->z = d[0], v->h = d[1], v->w = d[2];
    else {
        fmr_free(v->data);
        return fmr_error(FMR_ERR_SHAPE, "%s: image dataset has rank %d; expected 3 or 4", path, nd);
    }
    size_t n = v->t * v->z * v->h * v->w;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v->data[i])) {
            fmr_free(v->data);
            return fmr_error(FMR_ERR_VALUE, "%s: image holds NaN/Inf", path);
        }
    return FMR_OK;
}

/* Centre crops differ by one for odd sizes: fastMRI's center_crop starts at (s - c) // 2,
 * CMRxRecon's run4ranking.py at floor(s/2) + ceil(-c/2). */
static size_t crop_start(size_t s, size_t c, fmr_eval_mode mode)
{
    return mode == FMR_EVAL_CMRXRECON ? s / 2 - c / 2 : (s - c) / 2;
}

static void extract(const volume *v, size_t t, size_t z, size_t ch, size_t cw, fmr_eval_mode mode,
                    float *out)
{
    size_t r0 = crop_start(v->h, ch, mode), c0 = crop_start(v->w, cw, mode);
    const float *img = v->data + (t * v->z + z) * v->h * v->w;
    for (size_t i = 0; i < ch; i++) memcpy(out + i * cw, img + (r0 + i) * v->w + c0, cw * sizeof *out);
}

static double matlab_round(double x)
{
    return x < 0 ? -floor(-x + 0.5) : floor(x + 0.5);
}

fmr_err fmr_eval_files(const char *ref_path, const char *rec_path, fmr_eval_mode mode,
                       fmr_volume_metrics *out)
{
    memset(out, 0, sizeof *out);
    volume a = {0}, b = {0};
    FMR_TRY(load(ref_path, &a));
    fmr_err err = load(rec_path, &b);
    if (err) {
        fmr_free(a.data);
        return err;
    }
    if (a.t != b.t || a.z != b.z) {
        err = fmr_error(FMR_ERR_SHAPE, "%s has %zu frames x %zu slices but the reference %s has %zu x %zu",
                        rec_path, b.t, b.z, ref_path, a.t, a.z);
        goto done;
    }
    size_t ch = a.h < b.h ? a.h : b.h, cw = a.w < b.w ? a.w : b.w;
    size_t t0 = 0, t1 = a.t, z0 = 0, z1 = a.z;
    if (mode == FMR_EVAL_CMRXRECON) {
        ch = (size_t)matlab_round((double)ch / 3.0);
        cw = (size_t)matlab_round((double)cw / 2.0);
        if (a.z >= 3) {
            z0 = (size_t)matlab_round((double)a.z / 2.0) - 2;
            z1 = z0 + 2;
        }
        if (t1 > 3) t1 = 3;
    }
    if (ch < 7 || cw < 7) {
        err = fmr_error(FMR_ERR_SHAPE, "%s: evaluated images of %zux%zu are smaller than SSIM's 7x7 window",
                        rec_path, ch, cw);
        goto done;
    }
    size_t n = (t1 - t0) * (z1 - z0), hw = ch * cw;
    float *ra = malloc(n * hw * sizeof *ra), *rb = malloc(n * hw * sizeof *rb);
    out->images = calloc(n, sizeof *out->images);
    if (!ra || !rb || !out->images) {
        free(ra);
        free(rb);
        err = fmr_error(FMR_ERR_NOMEM, "cannot allocate evaluation buffers");
        goto done;
    }
    size_t k = 0;
    for (size_t t = t0; t < t1; t++)
        for (size_t z = z0; z < z1; z++, k++) {
            extract(&a, t, z, ch, cw, mode, ra + k * hw);
            extract(&b, t, z, ch, cw, mode, rb + k * hw);
            out->images[k].frame = t;
            out->images[k].slice = z;
        }
    double range = fmr_maxf(ra, n * hw);
    double ssum = 0, psum = 0, nsum = 0;
    for (k = 0; k < n; k++) {
        float *x = ra + k * hw, *y = rb + k * hw;
        double dr = range;
        if (mode == FMR_EVAL_CMRXRECON) {
            /* each image divided by its own max (CMRxRecon 2023 Evaluation.py) */
            float mx = fmr_maxf(x, hw), my = fmr_maxf(y, hw);
            for (size_t i = 0; i < hw; i++) {
                x[i] = mx > 0 ? x[i] / mx : 0.0f;
                y[i] = my > 0 ? y[i] / my : 0.0f;
            }
            dr = fmr_maxf(x, hw);
        }
        fmr_image_metrics *im = &out->images[k];
        im->psnr = fmr_psnr(x, y, hw, dr);
        im->ssim = fmr_ssim(x, y, ch, cw, dr);
        im->nmse = fmr_nmse(x, y, hw);
        ssum += im->ssim, psum += im->psnr, nsum += im->nmse;
    }
    out->nimages = n;
    out->h = ch, out->w = cw;
    out->ssim = ssum / (double)n;
    if (mode == FMR_EVAL_CMRXRECON) {
        out->psnr = psum / (double)n;
        out->nmse = nsum / (double)n;
    } else {
        out->psnr = fmr_psnr(ra, rb, n * hw, range);
        out->nmse = fmr_nmse(ra, rb, n * hw);
    }
    free(ra);
    free(rb);
done:
    fmr_free(a.data);
    fmr_free(b.data);
    if (err) fmr_volume_metrics_free(out);
    return err;
}

void fmr_volume_metrics_free(fmr_volume_metrics *m)
{
    free(m->images);
    m->images = NULL;
    m->nimages = 0;
}

#include "prox.h"

#include <math.h>
#include <string.h>

#include "fmrecon/fft.h"

static void soft(fmr_cfloat *v, size_t n, float tau)
{
    for (size_t i = 0; i < n; i++) {
        float a = cabsf(v[i]);
        v[i] = a > tau ? v[i] * (1.0f - tau / a) : 0.0f;
    }
}

fmr_err fmr_prox_temporal_l1(fmr_cfloat *b, size_t T, size_t n, double alpha, fmr_cfloat *work)
{
    if (T < 2) {
        soft(b, n, (float)alpha);
        return FMR_OK;
    }
    /* pixel-major copy so each pixel's time course is contiguous for a batch of 1-D FFTs */
    for (size_t t = 0; t < T; t++)
        for (size_t p = 0; p < n; p++)
            work[p * T + t] = b[t * n + p];
    fmr_fft2c *f;
    FMR_TRY(fmr_fft2c_create(&f, 1, T));
    fmr_err err = fmr_fft2c_forward(f, n, work, work);
    if (!err) {
        soft(work, n * T, (float)alpha);
        err = fmr_fft2c_inverse(f, n, work, work);
    }
    fmr_fft2c_destroy(&f);
    for (size_t t = 0; !err && t < T; t++)
        for (size_t p = 0; p < n; p++)
            b[t * n + p] = work[p * T + t];
    return err;
}

/* forward differences, zero at the last row/column */
static void grad(const fmr_cfloat *z, size_t h, size_t w, fmr_cfloat *gx, fmr_cfloat *gy)
{
    for (size_t r = 0; r < h; r++)
        for (size_t c = 0; c < w; c++) {
            size_t i = r * w + c;
            gx[i] = c + 1 < w ? z[i + 1] - z[i] : 0.0f;
            gy[i] = r + 1 < h ? z[i + w] - z[i] : 0.0f;
        }
}

/* adjoint of grad */
static void grad_adj(const fmr_cfloat *gx, const fmr_cfloat *gy, size_t h, size_t w,
                     fmr_cfloat *out)
{
    for (size_t r = 0; r < h; r++)
        for (size_t c = 0; c < w; c++) {
            size_t i = r * w + c;
            fmr_cfloat v = 0;
            if (c + 1 < w) v -= gx[i];
            if (c > 0) v += gx[i - 1];
            if (r + 1 < h) v -= gy[i];
            if (r > 0) v += gy[i - w];
            out[i] = v;
        }
}

void fmr_prox_tv(fmr_cfloat *b, size_t h, size_t w, double alpha, int iters, fmr_cfloat *work)
{
    if (alpha <= 0) return;
    const size_t n = h * w;
    fmr_cfloat *px = work, *py = work + n, *rx = work + 2 * n, *ry = work + 3 * n,
               *z = work + 4 * n, *tmp = work + 5 * n;
    memset(work, 0, 4 * n * sizeof *work);
    const float step = (float)(1.0 / (8.0 * alpha)), a = (float)alpha;
    double t = 1.0;
    for (int k = 0; k < iters; k++) {
        /* z = b - alpha grad^H r ; p_new = P(r + step grad z) */
        grad_adj(rx, ry, h, w, tmp);
        for (size_t i = 0; i < n; i++)
            z[i] = b[i] - a * tmp[i];
        grad(z, h, w, tmp, z); /* tmp = d/dx, z = d/dy (z no longer needed) */
        double tn = 0.5 * (1.0 + sqrt(1.0 + 4.0 * t * t)), mom = (t - 1.0) / tn;
        for (size_t i = 0; i < n; i++) {
            fmr_cfloat qx = rx[i] + step * tmp[i], qy = ry[i] + step * z[i];
            float nrm = sqrtf(crealf(qx * conjf(qx)) + crealf(qy * conjf(qy)));
            if (nrm > 1.0f) qx /= nrm, qy /= nrm;
            rx[i] = qx + (float)mom * (qx - px[i]);
            ry[i] = qy + (float)mom * (qy - py[i]);
            px[i] = qx;
            py[i] = qy;
        }
        t = tn;
    }
    grad_adj(px, py, h, w, tmp);
    for (size_t i = 0; i < n; i++)
        b[i] -= a * tmp[i];
}

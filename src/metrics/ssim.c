/* SSIM with scikit-image's defaults. Only pixels at least 3 from the border enter the mean, and
 * their 7x7 windows lie inside the image, so boundary handling never matters: window sums come
 * from summed-area tables. */
#include <stdlib.h>

#include "fmrecon/metrics.h"

double fmr_ssim(const float *X, const float *Y, size_t h, size_t w, double R)
{
    enum { WIN = 7, PAD = 3 };
    if (h < WIN || w < WIN) return 0.0 / 0.0;
    const size_t W1 = w + 1;
    double *t = calloc(5 * (h + 1) * W1, sizeof *t);
    if (!t) return 0.0 / 0.0;
    double *sx = t, *sy = t + (h + 1) * W1, *sxx = sy + (h + 1) * W1, *syy = sxx + (h + 1) * W1,
           *sxy = syy + (h + 1) * W1;
    for (size_t i = 0; i < h; i++)
        for (size_t j = 0; j < w; j++) {
            double x = X[i * w + j], y = Y[i * w + j];
            size_t a = (i + 1) * W1 + j + 1, b = i * W1 + j + 1, c = (i + 1) * W1 + j, d = i * W1 + j;
            sx[a] = x + sx[b] + sx[c] - sx[d];
            sy[a] = y + sy[b] + sy[c] - sy[d];
            sxx[a] = x * x + sxx[b] + sxx[c] - sxx[d];
            syy[a] = y * y + syy[b] + syy[c] - syy[d];
            sxy[a] = x * y + sxy[b] + sxy[c] - sxy[d];
        }
    const double np = WIN * WIN, cov = np / (np - 1.0);
    const double C1 = (0.01 * R) * (0.01 * R), C2 = (0.03 * R) * (0.03 * R);
    double total = 0.0;
    size_t n = 0;
    for (size_t i = PAD; i + PAD < h; i++)
        for (size_t j = PAD; j + PAD < w; j++) {
            size_t r0 = i - PAD, r1 = i + PAD + 1, c0 = j - PAD, c1 = j + PAD + 1;
#define BOX(s) ((s)[r1 * W1 + c1] - (s)[r0 * W1 + c1] - (s)[r1 * W1 + c0] + (s)[r0 * W1 + c0])
            double ux = BOX(sx) / np, uy = BOX(sy) / np;
            double vx = cov * (BOX(sxx) / np - ux * ux), vy = cov * (BOX(syy) / np - uy * uy);
            double vxy = cov * (BOX(sxy) / np - ux * uy);
#undef BOX
            double s = (2 * ux * uy + C1) * (2 * vxy + C2) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
            total += s;
            n++;
        }
    free(t);
    return total / (double)n;
}

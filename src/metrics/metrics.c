#include "fmrecon/metrics.h"

#include <math.h>

double fmr_nmse(const float *ref, const float *rec, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)rec[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0.0 ? num / den : (num > 0.0 ? INFINITY : 0.0);
}

double fmr_psnr(const float *ref, const float *rec, size_t n, double data_range)
{
    double mse = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)rec[i];
        mse += d * d;
    }
    mse /= (double)n;
    return 10.0 * log10(data_range * data_range / mse);
}

float fmr_maxf(const float *x, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

#include <math.h>

#include "fmrecon/sense.h"

void fmr_rss(const fmr_cfloat *img, size_t ncoils, size_t n, float *out)
{
    for (size_t p = 0; p < n; p++) out[p] = 0.0f;
    for (size_t c = 0; c < ncoils; c++) {
        const fmr_cfloat *ic = img + c * n;
        for (size_t p = 0; p < n; p++) {
            float re = crealf(ic[p]), im = cimagf(ic[p]);
            out[p] += re * re + im * im;
        }
    }
    for (size_t p = 0; p < n; p++) out[p] = sqrtf(out[p]);
}

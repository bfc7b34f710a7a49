/* Loop coils spaced evenly on an ellipse around the body. Each coil's sensitivity falls off with
 * distance like a small loop's field (~1/(1 + (d/d0)^2)^1.5) and carries a smooth, coil-specific
 * phase, so the maps are complex and spatially varying as in a real array. */
#include <math.h>

#include "fmrecon/sim.h"

fmr_err fmr_sim_coils(const fmr_sim_params *p, fmr_cfloat *maps)
{
    FMR_TRY(fmr_sim_check(p));
    double sc = (double)(p->h > p->w ? p->h : p->w);
    for (size_t c = 0; c < p->coils; c++) {
        double th = 2.0 * M_PI * ((double)c + 0.5) / (double)p->coils;
        double cu = 1.05 * cos(th), cv = 0.85 * sin(th), d0 = 0.65;
        for (size_t y = 0; y < p->h; y++) {
            double v = (2.0 * (double)y - (double)p->h) / sc;
            for (size_t x = 0; x < p->w; x++) {
                double u = (2.0 * (double)x - (double)p->w) / sc;
                double d2 = ((u - cu) * (u - cu) + (v - cv) * (v - cv)) / (d0 * d0);
                double mag = pow(1.0 + d2, -1.5);
                double ph = th + 0.9 * (u * cos(th) + v * sin(th));
                maps[(c * p->h + y) * p->w + x] = (float)(mag * cos(ph)) + I * (float)(mag * sin(ph));
            }
        }
    }
    return FMR_OK;
}

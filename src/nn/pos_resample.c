/* Bicubic resampling of a position-embedding grid, as PyTorch's F.interpolate(mode="bicubic",
 * align_corners=False, no antialiasing) computes it for the call Hugging Face's Dinov2Model
 * makes: size = the input's patch grid (docs/encoders.md cites the source and the older
 * scale_factor variant). The table is resampled once per input grid;
 * oneDNN's resampling primitive has no bicubic mode, so the separable weights are built here. */
#include "pos_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/array.h"

/* Per output index: first tap and up to `cap` weights over the input axis. */
typedef struct {
    int first, count;
    double w[64];
} taps;

/* Keys cubic convolution kernel with parameter a. */
static double cubic(double x, double a)
{
    x = fabs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Plain bicubic: four taps around s = (d + 0.5) in/out - 0.5, a = -0.75, indices clamped. The
 * taps are merged per clamped index so the result is a weighted sum over distinct rows. */
static void axis_taps(int in, int out, int d, taps *t)
{
    const double s = (d + 0.5) * ((double)in / out) - 0.5, f = floor(s), u = s - f;
    const int i0 = (int)f;
    int lo = in, hi = -1, idx[4];
    double w[4];
    for (int k = 0; k < 4; k++) {
        int i = i0 - 1 + k;
        idx[k] = i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
        w[k] = cubic(u - (k - 1), -0.75);
        if (idx[k] < lo) lo = idx[k];
        if (idx[k] > hi) hi = idx[k];
    }
    t->first = lo, t->count = hi - lo + 1;
    memset(t->w, 0, sizeof t->w);
    for (int k = 0; k < 4; k++)
        t->w[idx[k] - lo] += w[k];
}

fmr_err fmr_pos_resample(const float *in, int ghi, int gwi, int d, int gh, int gw, float *out)
{
    if (ghi <= 0 || gwi <= 0 || gh <= 0 || gw <= 0 || ghi > 16 * gh || gwi > 16 * gw)
        return fmr_error(FMR_ERR_SHAPE, "cannot resample a %dx%d position grid to %dx%d", ghi, gwi,
                         gh, gw);
    taps *ty = malloc((size_t)gh * sizeof *ty), *tx = malloc((size_t)gw * sizeof *tx);
    double *acc = malloc((size_t)d * sizeof *acc);
    if (!ty || !tx || !acc) {
        free(ty), free(tx), free(acc);
        return fmr_error(FMR_ERR_NOMEM, "out of memory (position resampling)");
    }
    for (int y = 0; y < gh; y++)
        axis_taps(ghi, gh, y, &ty[y]);
    for (int x = 0; x < gw; x++)
        axis_taps(gwi, gw, x, &tx[x]);
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            memset(acc, 0, (size_t)d * sizeof *acc);
            for (int j = 0; j < ty[y].count; j++)
                for (int i = 0; i < tx[x].count; i++) {
                    const double w = ty[y].w[j] * tx[x].w[i];
                    const float *row = in + ((size_t)(ty[y].first + j) * gwi + tx[x].first + i) * d;
                    for (int c = 0; c < d; c++)
                        acc[c] += w * row[c];
                }
            float *o = out + ((size_t)y * gw + x) * d;
            for (int c = 0; c < d; c++)
                o[c] = (float)acc[c];
        }
    free(ty), free(tx), free(acc);
    return FMR_OK;
}

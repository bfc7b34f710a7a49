/* Spatial gradient of every frame for isotropic total variation: forward differences, zero at the
 * last column (d/dx) and last row (d/dy), i.e. a Neumann boundary. */
#include <stdlib.h>

#include "fmrecon/linop.h"

typedef struct {
    size_t T, h, w;
} grad_data;

static fmr_err g_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const grad_data *d = p;
    const size_t hw = d->h * d->w, N = d->T * hw;
    for (size_t t = 0; t < d->T; t++) {
        const fmr_cfloat *z = x + t * hw;
        fmr_cfloat *gx = y + t * hw, *gy = y + N + t * hw;
        for (size_t r = 0; r < d->h; r++)
            for (size_t c = 0; c < d->w; c++) {
                const size_t i = r * d->w + c;
                gx[i] = c + 1 < d->w ? z[i + 1] - z[i] : 0.0f;
                gy[i] = r + 1 < d->h ? z[i + d->w] - z[i] : 0.0f;
            }
    }
    return FMR_OK;
}

static fmr_err g_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    const grad_data *d = p;
    const size_t hw = d->h * d->w, N = d->T * hw, w = d->w;
    for (size_t t = 0; t < d->T; t++) {
        const fmr_cfloat *gx = y + t * hw, *gy = y + N + t * hw;
        fmr_cfloat *o = x + t * hw;
        for (size_t r = 0; r < d->h; r++)
            for (size_t c = 0; c < w; c++) {
                const size_t i = r * w + c;
                fmr_cfloat v = 0;
                if (c + 1 < w) v -= gx[i];
                if (c > 0) v += gx[i - 1];
                if (r + 1 < d->h) v -= gy[i];
                if (r > 0) v += gy[i - w];
                o[i] = v;
            }
    }
    return FMR_OK;
}

fmr_err fmr_linop_grad2d(fmr_linop **out, size_t T, size_t h, size_t w)
{
    *out = NULL;
    grad_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the gradient");
    d->T = T, d->h = h, d->w = w;
    fmr_linop_def def = {.name = "grad2d", .dom = T * h * w, .cod = 2 * T * h * w, .comm = MPI_COMM_SELF,
                         .forward = g_fwd, .adjoint = g_adj, .free_data = free};
    return fmr_linop_create(out, &def, d);
}

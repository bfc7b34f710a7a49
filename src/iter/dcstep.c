/* The data-consistency steps of unrolled networks (fmrecon/iter.h). */
#include <string.h>

#include "fmrecon/iter.h"

fmr_err fmr_dc_hard(fmr_dc *dc, const fmr_cfloat *aty, const fmr_cfloat *z, double lambda, fmr_cfloat *x,
                    fmr_cfloat *rhs, fmr_dc_stats *st)
{
    FMR_TRY(fmr_dc_set_lambda(dc, lambda));
    /* (A^H A + lambda I) x = A^H y + lambda z, started at z; the size is the solver's */
    const size_t n = fmr_dc_size(dc);
    for (size_t i = 0; i < n; i++) rhs[i] = aty[i] + (float)lambda * z[i];
    memcpy(x, z, n * sizeof *x);
    return fmr_dc_solve(dc, rhs, x, 1, st);
}

fmr_err fmr_dc_soft(fmr_linop *A, const fmr_cfloat *aty, const fmr_cfloat *x_prev, const fmr_cfloat *z, double eta,
                    fmr_cfloat *x, fmr_cfloat *scratch)
{
    const size_t n = fmr_linop_domain(A);
    FMR_TRY(fmr_linop_normal(A, x_prev, scratch));
    for (size_t i = 0; i < n; i++) x[i] = z[i] - (float)eta * (scratch[i] - aty[i]);
    return FMR_OK;
}

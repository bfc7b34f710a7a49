/* Linear coil transforms: noise prewhitening and SVD coil compression (LAPACKE, double). */
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "heev.h"
#include "fmrecon/calib.h"

fmr_err fmr_coil_whitener(const fmr_cfloat *noise, size_t C, size_t n, fmr_cfloat *W)
{
    if (n < C) return fmr_error(FMR_ERR_VALUE, "noise prewhitening needs at least %zu noise samples, got %zu", C, n);
    double complex *psi = calloc(C * C + FMR_LAPACK_SLACK, sizeof *psi);
    if (!psi) return fmr_error(FMR_ERR_NOMEM, "cannot allocate noise covariance");
    for (size_t a = 0; a < C; a++)
        for (size_t b = 0; b <= a; b++) {
            double complex s = 0;
            for (size_t i = 0; i < n; i++) s += (double complex)noise[a * n + i] * conj((double complex)noise[b * n + i]);
            psi[a * C + b] = s / (double)n;
        }
    fmr_err err = FMR_OK;
    /* Psi = L L^H (lower), then L^-1 in place. Called column-major on our own (padded) buffer:
     * the row-major lower triangle is the column-major upper triangle of Psi^T = conj(Psi), whose
     * Cholesky factor U = L^T lands exactly where row-major L goes (heev.h says why). */
    if (LAPACKE_zpotrf(LAPACK_COL_MAJOR, 'U', (lapack_int)C, (lapack_complex_double *)psi, (lapack_int)C) != 0)
        err = fmr_error(FMR_ERR_VALUE, "noise covariance is not positive definite (a dead or duplicated channel?)");
    else if (LAPACKE_ztrtri(LAPACK_COL_MAJOR, 'U', 'N', (lapack_int)C, (lapack_complex_double *)psi, (lapack_int)C) != 0)
        err = fmr_error(FMR_ERR_LIB, "LAPACK could not invert the noise Cholesky factor");
    for (size_t a = 0; !err && a < C; a++)
        for (size_t b = 0; b < C; b++) W[a * C + b] = b <= a ? (fmr_cfloat)psi[a * C + b] : 0.0f;
    free(psi);
    return err;
}

fmr_err fmr_coil_compressor(const double complex *cov, size_t C, size_t N, fmr_cfloat *UH, double *kept)
{
    if (N < 1 || N > C) return fmr_error(FMR_ERR_ARG, "--virtual-coils %zu must be between 1 and the %zu coils", N, C);
    double complex *a = malloc(C * C * sizeof *a);
    double *ev = malloc((C + FMR_LAPACK_SLACK) * sizeof *ev);
    fmr_err err = (!a || !ev) ? fmr_error(FMR_ERR_NOMEM, "cannot allocate coil compression") : FMR_OK;
    for (size_t i = 0; !err && i < C * C; i++) a[i] = cov[i];
    if (!err && fmr_zheevd_rm(C, a, ev) != 0)
        err = fmr_error(FMR_ERR_LIB, "LAPACK could not decompose the coil covariance");
    if (!err) {
        double total = 0, top = 0;
        for (size_t i = 0; i < C; i++) total += fmax(ev[i], 0);
        /* eigenvalues ascend: virtual coil v is eigenvector C-1-v; UH row v = its conjugate */
        for (size_t v = 0; v < N; v++) {
            size_t j = C - 1 - v;
            top += fmax(ev[j], 0);
            for (size_t c = 0; c < C; c++) UH[v * C + c] = (fmr_cfloat)conj(a[c * C + j]);
        }
        if (kept) *kept = total > 0 ? top / total : 1.0;
    }
    free(a);
    free(ev);
    return err;
}

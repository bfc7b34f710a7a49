#include "heev.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

/* The row-major matrix read as column-major is its transpose, i.e. its conjugate (Hermitian),
 * with the data in the lower triangle; its eigenvectors are the conjugates of ours, so the result
 * is conjugated and transposed back. */
int fmr_zheevd_rm(size_t n, double complex *a, double *ev)
{
    const size_t S = FMR_LAPACK_SLACK;
    double complex *m = calloc(n * n + S, sizeof *m), wq = 0;
    double rq = 0;
    lapack_int iq = 0, nn = (lapack_int)n;
    int info = -1;
    if (!m) return -1;
    memcpy(m, a, n * n * sizeof *m);
    info = LAPACKE_zheevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, (lapack_complex_double *)m, nn, ev,
                               (lapack_complex_double *)&wq, -1, &rq, -1, &iq, -1);
    double complex *work = NULL;
    double *rwork = NULL;
    lapack_int *iwork = NULL;
    if (info == 0) {
        const size_t lw = (size_t)creal(wq), lr = (size_t)rq, li = (size_t)iq;
        work = calloc(lw + S, sizeof *work), rwork = calloc(lr + S, sizeof *rwork), iwork = calloc(li + S, sizeof *iwork);
        info = (!work || !rwork || !iwork) ? -1
                                          : LAPACKE_zheevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, (lapack_complex_double *)m, nn,
                                                                ev, (lapack_complex_double *)work, (lapack_int)lw, rwork,
                                                                (lapack_int)lr, iwork, (lapack_int)li);
    }
    if (info == 0)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) a[i * n + j] = conj(m[i + j * n]);
    free(work), free(rwork), free(iwork), free(m);
    return info;
}

int fmr_cheevd_rm(size_t n, fmr_cfloat *a, float *ev)
{
    const size_t S = FMR_LAPACK_SLACK;
    fmr_cfloat *m = calloc(n * n + S, sizeof *m), wq = 0;
    float rq = 0;
    lapack_int iq = 0, nn = (lapack_int)n;
    int info = -1;
    if (!m) return -1;
    memcpy(m, a, n * n * sizeof *m);
    info = LAPACKE_cheevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, (lapack_complex_float *)m, nn, ev,
                               (lapack_complex_float *)&wq, -1, &rq, -1, &iq, -1);
    fmr_cfloat *work = NULL;
    float *rwork = NULL;
    lapack_int *iwork = NULL;
    if (info == 0) {
        const size_t lw = (size_t)crealf(wq), lr = (size_t)rq, li = (size_t)iq;
        work = calloc(lw + S, sizeof *work), rwork = calloc(lr + S, sizeof *rwork), iwork = calloc(li + S, sizeof *iwork);
        info = (!work || !rwork || !iwork) ? -1
                                          : LAPACKE_cheevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, (lapack_complex_float *)m, nn,
                                                                ev, (lapack_complex_float *)work, (lapack_int)lw, rwork,
                                                                (lapack_int)lr, iwork, (lapack_int)li);
    }
    if (info == 0)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) a[i * n + j] = conjf(m[i + j * n]);
    free(work), free(rwork), free(iwork), free(m);
    return info;
}

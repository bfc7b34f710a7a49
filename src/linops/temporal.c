/* Operators along time: the unitary temporal DFT (FFTW, one batched plan over all pixels) and the
 * periodic temporal forward difference. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include <fftw3.h>

#include "fmrecon/linop.h"

/* FFTW's planner is not thread-safe; fft2c.c has its own lock for its cache, this one is for the
 * plans made here (creation is rare: once per operator). */
static pthread_mutex_t plan_lock_ = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    size_t T, n;
    float scale;
    fftwf_plan fwd, bwd; /* T-point transforms of n pixels, stride n (frame-major data) */
} tfft_data;

static void tfft_free(void *p)
{
    tfft_data *d = p;
    pthread_mutex_lock(&plan_lock_);
    if (d->fwd) fftwf_destroy_plan(d->fwd);
    if (d->bwd) fftwf_destroy_plan(d->bwd);
    pthread_mutex_unlock(&plan_lock_);
    free(d);
}

static fmr_err tfft_apply(tfft_data *d, fftwf_plan p, const fmr_cfloat *x, fmr_cfloat *y)
{
    fftwf_execute_dft(p, (fftwf_complex *)x, (fftwf_complex *)y);
    const size_t N = d->T * d->n;
    for (size_t i = 0; i < N; i++) y[i] *= d->scale;
    return FMR_OK;
}

static fmr_err tfft_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    return tfft_apply(p, ((tfft_data *)p)->fwd, x, y);
}

static fmr_err tfft_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    return tfft_apply(p, ((tfft_data *)p)->bwd, y, x);
}

static fmr_err copy_nrm_tfft(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const tfft_data *d = p;
    for (size_t i = 0; i < d->T * d->n; i++) y[i] = x[i];
    return FMR_OK;
}

fmr_err fmr_linop_tfft(fmr_linop **out, size_t T, size_t n)
{
    *out = NULL;
    tfft_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the temporal FFT");
    d->T = T, d->n = n, d->scale = (float)(1.0 / sqrt((double)T));
    /* plans on scratch arrays of the right alignment; applied with the new-array interface */
    fmr_cfloat *a = fmr_malloc(T * n * sizeof *a), *b = fmr_malloc(T * n * sizeof *b);
    if (a && b) {
        const int len = (int)T;
        pthread_mutex_lock(&plan_lock_);
        d->fwd = fftwf_plan_many_dft(1, &len, (int)n, (fftwf_complex *)a, NULL, (int)n, 1, (fftwf_complex *)b, NULL,
                                     (int)n, 1, FFTW_FORWARD, FFTW_ESTIMATE);
        d->bwd = fftwf_plan_many_dft(1, &len, (int)n, (fftwf_complex *)a, NULL, (int)n, 1, (fftwf_complex *)b, NULL,
                                     (int)n, 1, FFTW_BACKWARD, FFTW_ESTIMATE);
        pthread_mutex_unlock(&plan_lock_);
    }
    fmr_free(a), fmr_free(b);
    if (!d->fwd || !d->bwd) {
        tfft_free(d);
        return fmr_error(FMR_ERR_LIB, "FFTW could not plan a %zu-point temporal transform of %zu pixels", T, n);
    }
    fmr_linop_def def = {.name = "tfft", .dom = T * n, .cod = T * n, .comm = MPI_COMM_SELF, .forward = tfft_fwd,
                         .adjoint = tfft_adj, .normal = copy_nrm_tfft, .free_data = tfft_free};
    return fmr_linop_create(out, &def, d);
}

typedef struct {
    size_t T, n;
} tdiff_data;

static fmr_err tdiff_fwd(void *p, const fmr_cfloat *x, fmr_cfloat *y)
{
    const tdiff_data *d = p;
    for (size_t t = 0; t < d->T; t++) {
        const fmr_cfloat *a = x + t * d->n, *b = x + ((t + 1) % d->T) * d->n;
        fmr_cfloat *o = y + t * d->n;
        for (size_t i = 0; i < d->n; i++) o[i] = b[i] - a[i];
    }
    return FMR_OK;
}

/* D^H y: (D^H y)_t = y_{t-1} - y_t */
static fmr_err tdiff_adj(void *p, const fmr_cfloat *y, fmr_cfloat *x)
{
    const tdiff_data *d = p;
    for (size_t t = 0; t < d->T; t++) {
        const fmr_cfloat *a = y + t * d->n, *b = y + ((t + d->T - 1) % d->T) * d->n;
        fmr_cfloat *o = x + t * d->n;
        for (size_t i = 0; i < d->n; i++) o[i] = b[i] - a[i];
    }
    return FMR_OK;
}

fmr_err fmr_linop_tdiff(fmr_linop **out, size_t T, size_t n)
{
    *out = NULL;
    tdiff_data *d = calloc(1, sizeof *d);
    if (!d) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the temporal difference");
    d->T = T, d->n = n;
    fmr_linop_def def = {.name = "tdiff", .dom = T * n, .cod = T * n, .comm = MPI_COMM_SELF, .forward = tdiff_fwd,
                         .adjoint = tdiff_adj, .free_data = free};
    return fmr_linop_create(out, &def, d);
}

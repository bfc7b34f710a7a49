#include "fmrecon/sense.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3-mpi.h>

#include "fft/fft_internal.h"
#include "fmrecon/log.h"

/* With fft2c = s.post.FFT.pre (fft_internal.h), and M real:
 *   A x     = w . FFT(S_c . pre . x)                       w  = M . s . post
 *   A^H y   = conj(pre) . sum_c conj(S_c) . IFFT(conj(w) . y_c)
 *   A^H A x = conj(pre) . sum_c conj(S_c) . IFFT(m2 . FFT(S_c . pre . x)),   m2 = M^2 s^2
 * so a coil costs one multiply pass, one FFT, one weight pass (and the IFFT pair for the normal).
 * Coils are shared among OpenMP threads (each with its own scratch image and accumulator); FFTW's
 * new-array execute is thread-safe. */
struct fmr_sense {
    size_t h, w, nc;
    const fmr_cfloat *maps;
    MPI_Comm comm;
    int comm_size, nthreads;
    fmr_fft2c *fft;
    fmr_cfloat *wfwd; /* h*w */
    float *m2;        /* h*w */
    fmr_cfloat *xp;   /* h*w: pre . x */
    fmr_cfloat *buf;  /* nthreads x h*w: one coil per thread */
    fmr_cfloat *acc;  /* nthreads x h*w accumulators; thread 0's holds the sum */
    double fft_s;     /* seconds inside FFTW (thread 0's share of the work) */
    double comm_s;    /* seconds in the coil sum across ranks (waiting included) */
    size_t comm_bytes, comm_calls;
    /* slab mode: rows [r0, r0 + nr) of every image on this rank, FFTs across comm */
    int slabs;
    ptrdiff_t r0, nr;
    fftwf_plan pf, pb;
    fmr_cfloat *sb;         /* FFTW-MPI's local buffer */
    int *counts, *displs;   /* every rank's slab in samples, for the gathers */
};

static fmr_err slab_create(fmr_sense *s)
{
    static int fftw_mpi_ready;
    if (!fftw_mpi_ready) fftwf_mpi_init(), fftw_mpi_ready = 1;
    ptrdiff_t n0, s0;
    const ptrdiff_t alloc = fftwf_mpi_local_size_2d((ptrdiff_t)s->h, (ptrdiff_t)s->w, s->comm, &n0, &s0);
    s->r0 = s0, s->nr = n0;
    s->sb = (fmr_cfloat *)fftwf_alloc_complex((size_t)(alloc > 0 ? alloc : 1));
    s->counts = malloc((size_t)s->comm_size * sizeof *s->counts);
    s->displs = malloc((size_t)s->comm_size * sizeof *s->displs);
    if (!s->sb || !s->counts || !s->displs) return fmr_error(FMR_ERR_NOMEM, "SENSE operator: slab buffers");
    int cnt = (int)(n0 * (ptrdiff_t)s->w), dsp = (int)(s0 * (ptrdiff_t)s->w);
    MPI_Allgather(&cnt, 1, MPI_INT, s->counts, 1, MPI_INT, s->comm);
    MPI_Allgather(&dsp, 1, MPI_INT, s->displs, 1, MPI_INT, s->comm);
    /* planning is collective; ESTIMATE keeps it deterministic and cheap */
    s->pf = fftwf_mpi_plan_dft_2d((ptrdiff_t)s->h, (ptrdiff_t)s->w, (fftwf_complex *)s->sb, (fftwf_complex *)s->sb, s->comm,
                                  FFTW_FORWARD, FFTW_ESTIMATE);
    s->pb = fftwf_mpi_plan_dft_2d((ptrdiff_t)s->h, (ptrdiff_t)s->w, (fftwf_complex *)s->sb, (fftwf_complex *)s->sb, s->comm,
                                  FFTW_BACKWARD, FFTW_ESTIMATE);
    if (!s->pf || !s->pb) return fmr_error(FMR_ERR_LIB, "SENSE operator: FFTW-MPI could not plan a %zux%zu transform", s->h, s->w);
    return FMR_OK;
}

/* Every rank's slab of out (full images) gathered onto every rank. */
static fmr_err slab_gather(fmr_sense *s, fmr_cfloat *out)
{
    const double t0 = fmr_wtime();
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, s->counts, s->displs, MPI_C_FLOAT_COMPLEX, s->comm) !=
        MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "SENSE operator: gathering the image slabs failed");
    s->comm_s += fmr_wtime() - t0;
    s->comm_bytes += s->h * s->w * sizeof(fmr_cfloat), s->comm_calls++;
    return FMR_OK;
}

static void slab_fft(fmr_sense *s, int forward)
{
    const double t = fmr_wtime();
    fftwf_execute(forward ? s->pf : s->pb);
    s->fft_s += fmr_wtime() - t;
}

static fmr_err slab_forward(fmr_sense *s, const fmr_cfloat *x, fmr_cfloat *y)
{
    const size_t hw = s->h * s->w, o = (size_t)s->r0 * s->w, n = (size_t)s->nr * s->w;
    const fmr_cfloat *pre = s->fft->pre + o;
    for (size_t c = 0; c < s->nc; c++) {
        const fmr_cfloat *S = s->maps + c * hw + o;
        for (size_t p = 0; p < n; p++) s->sb[p] = S[p] * x[o + p] * pre[p];
        slab_fft(s, 1);
        fmr_cfloat *yc = y + c * hw;
        for (size_t p = 0; p < n; p++) yc[o + p] = s->sb[p] * s->wfwd[o + p];
        FMR_TRY(slab_gather(s, yc));
    }
    return FMR_OK;
}

/* normal = 1: A^H A x from x; else A^H y from y. */
static fmr_err slab_sum(fmr_sense *s, const fmr_cfloat *in, int normal, fmr_cfloat *out)
{
    const size_t hw = s->h * s->w, o = (size_t)s->r0 * s->w, n = (size_t)s->nr * s->w;
    const fmr_cfloat *pre = s->fft->pre + o;
    fmr_cfloat *acc = s->acc;
    memset(acc, 0, n * sizeof *acc);
    for (size_t c = 0; c < s->nc; c++) {
        const fmr_cfloat *S = s->maps + c * hw + o;
        if (normal) {
            for (size_t p = 0; p < n; p++) s->sb[p] = S[p] * in[o + p] * pre[p];
            slab_fft(s, 1);
            for (size_t p = 0; p < n; p++) s->sb[p] *= s->m2[o + p];
        } else {
            const fmr_cfloat *yc = in + c * hw + o;
            for (size_t p = 0; p < n; p++) s->sb[p] = yc[p] * conjf(s->wfwd[o + p]);
        }
        slab_fft(s, 0);
        for (size_t p = 0; p < n; p++) acc[p] += conjf(S[p]) * s->sb[p];
    }
    for (size_t p = 0; p < n; p++) out[o + p] = acc[p] * conjf(pre[p]);
    return slab_gather(s, out);
}

/* Timing the FFTW calls costs two clock reads per call: negligible next to a 2-D FFT, and it lets
 * benchmarks report the FFT share of a solve. Only thread 0 adds to the total, so the figure is
 * the wall time of the FFTs when threads share the coils evenly. */
static inline void fft_timed(fmr_sense *s, fmr_cfloat *b, int forward)
{
    int me = omp_get_thread_num();
    double t = me == 0 ? fmr_wtime() : 0;
    if (forward) fmr_fft_raw_forward(s->fft, b);
    else fmr_fft_raw_backward(s->fft, b);
    if (me == 0) s->fft_s += fmr_wtime() - t;
}

void fmr_sense_comm_stats(const fmr_sense *s, double *seconds, size_t *bytes, size_t *calls)
{
    *seconds = s->comm_s, *bytes = s->comm_bytes, *calls = s->comm_calls;
}

double fmr_sense_fft_seconds(const fmr_sense *s)
{
    return s->fft_s;
}

int fmr_sense_is_slab(const fmr_sense *s)
{
    return s->slabs;
}

MPI_Comm fmr_sense_comm(const fmr_sense *s)
{
    return s->comm;
}

void fmr_sense_destroy(fmr_sense **op)
{
    if (!op || !*op) return;
    fmr_sense *s = *op;
    fmr_fft2c_destroy(&s->fft);
    fmr_free(s->wfwd);
    fmr_free(s->m2);
    fmr_free(s->xp);
    fmr_free(s->buf);
    fmr_free(s->acc);
    if (s->pf) fftwf_destroy_plan(s->pf);
    if (s->pb) fftwf_destroy_plan(s->pb);
    if (s->sb) fftwf_free(s->sb);
    free(s->counts);
    free(s->displs);
    free(s);
    *op = NULL;
}

fmr_err fmr_sense_create(fmr_sense **op, const fmr_sense_desc *d)
{
    *op = NULL;
    if (!d || d->h == 0 || d->w == 0)
        return fmr_error(FMR_ERR_ARG, "SENSE operator: empty image size");
    if (d->ncoils > 0 && !d->maps)
        return fmr_error(FMR_ERR_ARG, "SENSE operator: no coil sensitivities given");
    fmr_sense *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate SENSE operator");
    s->h = d->h;
    s->w = d->w;
    s->nc = d->ncoils;
    s->maps = d->maps;
    s->comm = d->comm;
    s->nthreads = omp_get_max_threads();
    if (s->nthreads > (int)s->nc) s->nthreads = s->nc ? (int)s->nc : 1;
    if (MPI_Comm_size(d->comm, &s->comm_size) != MPI_SUCCESS) {
        free(s);
        return fmr_error(FMR_ERR_MPI, "SENSE operator: invalid communicator");
    }
    const size_t hw = d->h * d->w, nt = (size_t)s->nthreads;
    fmr_err err = fmr_fft2c_create(&s->fft, d->h, d->w);
    if (!err) err = fmr_alloc((void **)&s->wfwd, hw * sizeof(fmr_cfloat), "SENSE weights");
    if (!err) err = fmr_alloc((void **)&s->m2, hw * sizeof(float), "SENSE weights");
    if (!err) err = fmr_alloc((void **)&s->xp, hw * sizeof(fmr_cfloat), "SENSE scratch");
    if (!err) err = fmr_alloc((void **)&s->buf, nt * hw * sizeof(fmr_cfloat), "SENSE scratch");
    if (!err) err = fmr_alloc((void **)&s->acc, nt * hw * sizeof(fmr_cfloat), "SENSE scratch");
    if (!err) err = fmr_sense_set_mask(s, NULL, 0);
    if (!err && d->slabs && s->comm_size > 1) {
        s->slabs = 1;
        err = slab_create(s);
    }
    if (err) {
        fmr_sense_destroy(&s);
        return err;
    }
    *op = s;
    return FMR_OK;
}

fmr_err fmr_sense_set_mask(fmr_sense *s, const float *mask, int mask_ndim)
{
    if (mask && mask_ndim != 1 && mask_ndim != 2)
        return fmr_error(FMR_ERR_ARG, "SENSE mask must be 1-D (phase-encode) or 2-D, got %d-D",
                         mask_ndim);
    const size_t n = mask_ndim == 1 ? s->w : s->h * s->w;
    for (size_t i = 0; mask && i < n; i++)
        if (!isfinite(mask[i]) || mask[i] < 0)
            return fmr_error(FMR_ERR_VALUE, "SENSE mask value %g at index %zu is not a weight >= 0",
                             (double)mask[i], i);
    const float sc = s->fft->scale;
    for (size_t r = 0; r < s->h; r++)
        for (size_t c = 0; c < s->w; c++) {
            size_t p = r * s->w + c;
            float m = !mask ? 1.0f : (mask_ndim == 1 ? mask[c] : mask[p]);
            s->wfwd[p] = m * sc * s->fft->post[p];
            s->m2[p] = m * m * sc * sc;
        }
    return FMR_OK;
}

fmr_err fmr_sense_forward(fmr_sense *s, const fmr_cfloat *x, fmr_cfloat *y)
{
    if (s->slabs) return slab_forward(s, x, y);
    const size_t hw = s->h * s->w;
    const fmr_cfloat *pre = s->fft->pre;
    for (size_t p = 0; p < hw; p++) s->xp[p] = x[p] * pre[p];
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (size_t c = 0; c < s->nc; c++) {
        const fmr_cfloat *S = s->maps + c * hw;
        fmr_cfloat *b = s->buf + (size_t)omp_get_thread_num() * hw;
        for (size_t p = 0; p < hw; p++) b[p] = S[p] * s->xp[p];
        fft_timed(s, b, 1);
        fmr_cfloat *yc = y + c * hw;
        for (size_t p = 0; p < hw; p++) yc[p] = b[p] * s->wfwd[p];
    }
    return FMR_OK;
}

/* Sums the threads' accumulators, then the ranks', and removes the pre phase. */
static fmr_err finish_sum(fmr_sense *s, fmr_cfloat *out)
{
    const size_t hw = s->h * s->w;
    for (int t = 1; t < s->nthreads; t++) {
        const fmr_cfloat *a = s->acc + (size_t)t * hw;
        for (size_t p = 0; p < hw; p++) s->acc[p] += a[p];
    }
    if (s->comm_size > 1) {
        const double t0 = fmr_wtime();
        if (MPI_Allreduce(MPI_IN_PLACE, s->acc, (int)hw, MPI_C_FLOAT_COMPLEX, MPI_SUM, s->comm) !=
            MPI_SUCCESS)
            return fmr_error(FMR_ERR_MPI, "SENSE operator: coil sum across ranks failed");
        s->comm_s += fmr_wtime() - t0;
        s->comm_bytes += hw * sizeof(fmr_cfloat), s->comm_calls++;
    }
    const fmr_cfloat *pre = s->fft->pre;
    for (size_t p = 0; p < hw; p++) out[p] = s->acc[p] * conjf(pre[p]);
    return FMR_OK;
}

fmr_err fmr_sense_adjoint(fmr_sense *s, const fmr_cfloat *y, fmr_cfloat *x)
{
    if (s->slabs) return slab_sum(s, y, 0, x);
    const size_t hw = s->h * s->w;
    memset(s->acc, 0, (size_t)s->nthreads * hw * sizeof *s->acc);
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (size_t c = 0; c < s->nc; c++) {
        const size_t me = (size_t)omp_get_thread_num();
        const fmr_cfloat *S = s->maps + c * hw, *yc = y + c * hw;
        fmr_cfloat *b = s->buf + me * hw, *acc = s->acc + me * hw;
        for (size_t p = 0; p < hw; p++) b[p] = yc[p] * conjf(s->wfwd[p]);
        fft_timed(s, b, 0);
        for (size_t p = 0; p < hw; p++) acc[p] += conjf(S[p]) * b[p];
    }
    return finish_sum(s, x);
}

fmr_err fmr_sense_normal(fmr_sense *s, const fmr_cfloat *x, fmr_cfloat *out)
{
    if (s->slabs) return slab_sum(s, x, 1, out);
    const size_t hw = s->h * s->w;
    const fmr_cfloat *pre = s->fft->pre;
    for (size_t p = 0; p < hw; p++) s->xp[p] = x[p] * pre[p];
    memset(s->acc, 0, (size_t)s->nthreads * hw * sizeof *s->acc);
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (size_t c = 0; c < s->nc; c++) {
        const size_t me = (size_t)omp_get_thread_num();
        const fmr_cfloat *S = s->maps + c * hw;
        fmr_cfloat *b = s->buf + me * hw, *acc = s->acc + me * hw;
        for (size_t p = 0; p < hw; p++) b[p] = S[p] * s->xp[p];
        fft_timed(s, b, 1);
        for (size_t p = 0; p < hw; p++) b[p] *= s->m2[p];
        fft_timed(s, b, 0);
        for (size_t p = 0; p < hw; p++) acc[p] += conjf(S[p]) * b[p];
    }
    return finish_sum(s, out);
}

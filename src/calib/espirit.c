/* ESPIRiT.
 * 1. Calibration matrix: every k x k x C patch of the calibration region is a row.
 * 2. Its row space: eigenvectors of the Gram matrix A^H A (double precision, LAPACKE zheevd), kept
 *    where the singular value s_i = sqrt(eig_i) exceeds sqrt(threshold) * s_0 (bart's rule).
 * 3. Each kept kernel conj(v_j), placed around the k-space centre and inverse transformed, gives per
 *    pixel r a vector u_j(r) in C^C; consistency of k-space with the kernels becomes, in image
 *    space, m(r) = G(r) m(r) with G(r) = (N / k^2) sum_j u_j(r) u_j(r)^H (u from ifft2c), so the
 *    coil sensitivities are the eigenvectors of G(r) with eigenvalue 1. G is formed from the
 *    kernels' cross-correlations (one transform per coil pair).
 * 4. Per pixel, the top eigenvector of G(r) (power iteration, LAPACKE cheevd where it does not
 *    converge) is the map, zeroed where the eigenvalue is below crop. */
#include <complex.h>
#include <dlfcn.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "heev.h"
#include "fmrecon/calib.h"
#include "fmrecon/fft.h"

void fmr_espirit_defaults(fmr_espirit_opts *o)
{
    o->kernel = 6;
    o->cal = 24;
    o->threshold = 0.001;
    o->crop = 0.8;
}

void fmr_time_average(const fmr_cfloat *ks, const float *masks, size_t T, size_t C, size_t h,
                      size_t w, fmr_cfloat *out, float *sampled)
{
    const size_t n = C * h * w;
    memset(out, 0, n * sizeof *out);
    for (size_t c = 0; c < w; c++) {
        float cnt = 0;
        for (size_t t = 0; t < T; t++) cnt += masks[t * w + c] != 0.0f;
        sampled[c] = cnt;
    }
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++)
            if (masks[t * w + i % w] != 0.0f) out[i] += ks[t * n + i];
    for (size_t i = 0; i < n; i++)
        if (sampled[i % w] > 0) out[i] /= sampled[i % w];
    for (size_t c = 0; c < w; c++) sampled[c] = sampled[c] > 0 ? 1.0f : 0.0f;
}

/* Largest window centred on the k-space centre n/2 that lies inside the sampled run around it. */
static size_t centred_extent(const float *sampled, size_t n, size_t limit)
{
    size_t mid = n / 2;
    if (!sampled[mid]) return 0;
    size_t lo = mid, hi = mid + 1;
    while (lo > 0 && sampled[lo - 1]) lo--;
    while (hi < n && sampled[hi]) hi++;
    /* a window [mid - m/2, mid - m/2 + m) must fit in [lo, hi) */
    size_t m = limit < n ? limit : n;
    while (m > 0 && (mid - m / 2 < lo || mid - m / 2 + m > hi)) m--;
    return m;
}

/* ESPIRiT makes one small LAPACK call per pixel. A threaded OpenBLAS (Debian's
 * libopenblas0-pthread) wakes and spins its threads for each, which costs more than the call and
 * steals the cores of other ranks; single-threaded BLAS is right for these sizes. The symbol is
 * looked up at run time so any BLAS/LAPACK can sit behind LAPACKE. */
static void blas_single_thread(void)
{
    static int done = 0;
    if (done) return;
    done = 1;
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (set) set(1);
}

fmr_err fmr_espirit(const fmr_cfloat *ks, const float *sampled, size_t C, size_t h, size_t w,
                    const fmr_espirit_opts *opt, fmr_cfloat *maps, float *eig)
{
    blas_single_thread();
    fmr_espirit_opts def;
    fmr_espirit_defaults(&def);
    if (!opt) opt = &def;
    const size_t k = (size_t)opt->kernel, hw = h * w;
    if (opt->kernel < 2 || opt->cal < opt->kernel || !(opt->threshold >= 0) || !(opt->crop >= 0))
        return fmr_error(FMR_ERR_ARG, "ESPIRiT options: kernel %d, calibration %d, threshold %g, crop %g "
                         "(need kernel >= 2, calibration >= kernel)", opt->kernel, opt->cal, opt->threshold, opt->crop);
    /* Sizes first: with a readout shorter than the kernel, ch - k + 1 below would wrap around and
     * the calibration loop would read far outside the k-space. */
    if (h < 2 * k - 1 || w < 2 * k - 1)
        return fmr_error(FMR_ERR_SHAPE,
                         "ESPIRiT: k-space of %zu readout x %zu phase-encode samples is smaller than "
                         "the %zux%zu kernel needs (at least %zu x %zu); use --method zf or a smaller "
                         "--espirit-kernel",
                         h, w, k, k, 2 * k - 1, 2 * k - 1);
    size_t cw = centred_extent(sampled, w, (size_t)opt->cal);
    size_t ch = (size_t)opt->cal < h ? (size_t)opt->cal : h;
    if (cw < k)
        return fmr_error(FMR_ERR_VALUE,
                         "no ACS region for coil calibration: %zu contiguous fully sampled lines at "
                         "the k-space centre, ESPIRiT's %zux%zu kernel needs at least %zu",
                         cw, k, k, k);
    const size_t r0 = h / 2 - ch / 2, c0 = w / 2 - cw / 2;
    const size_t pr = ch - k + 1, pc = cw - k + 1, np = pr * pc, nk = k * k * C;
    /* Gram matrix of the calibration matrix, in double. */
    double complex *gram = calloc(nk * nk, sizeof *gram), *row = malloc(nk * sizeof *row);
    double *ev = malloc((nk + FMR_LAPACK_SLACK) * sizeof *ev);
    fmr_err err = (!gram || !row || !ev) ? fmr_error(FMR_ERR_NOMEM, "cannot allocate ESPIRiT calibration") : FMR_OK;
    for (size_t p = 0; !err && p < np; p++) {
        size_t y0 = r0 + p / pc, x0 = c0 + p % pc;
        for (size_t c = 0; c < C; c++)
            for (size_t dy = 0; dy < k; dy++)
                for (size_t dx = 0; dx < k; dx++)
                    row[(c * k + dy) * k + dx] = ks[(c * h + y0 + dy) * w + x0 + dx];
        for (size_t a = 0; a < nk; a++) {
            double complex ra = conj(row[a]);
            for (size_t b = a; b < nk; b++) gram[a * nk + b] += ra * row[b];
        }
    }
    if (!err && fmr_zheevd_rm(nk, gram, ev) != 0)
        err = fmr_error(FMR_ERR_LIB, "LAPACK could not decompose the ESPIRiT calibration matrix");
    /* Eigenvalues come ascending; singular values are their square roots. As bart ecalib, a
     * kernel is kept when s_i / s_0 > sqrt(threshold), i.e. eig_i / eig_0 > threshold. */
    size_t nkeep = 0;
    double e0 = !err ? ev[nk - 1] : 0;
    for (size_t i = 0; !err && i < nk; i++)
        if (e0 > 0 && ev[i] > opt->threshold * e0) nkeep++;
    if (!err && nkeep == 0) err = fmr_error(FMR_ERR_VALUE, "ESPIRiT: calibration region holds no signal");
    /* G(r) = (N/k^2) sum_j u_j(r) u_j(r)^H with u_j = ifft2c(P_j), P_j the kernel conj(v_j) placed
     * around the k-space centre. A product of two inverse transforms is the inverse transform of a
     * correlation, so entry (a, b) is computed from the kernels' cross-correlation on the
     * (2k-1) x (2k-1) lags around the centre,
     *   K_ab(delta) = sum_j sum_d P_ja(d + delta) conj(P_jb(d)),  G_ab = sqrt(N)/k^2 ifft2c(K_ab),
     * i.e. C(C+1)/2 transforms instead of one per kernel and coil (as BART does). */
    const size_t L = 2 * k - 1, npair = C * (C + 1) / 2;
    fmr_cfloat *G = NULL;
    double complex *P = NULL, *K = NULL;
    fmr_fft2c *fft = NULL;
    if (!err && (h < L || w < L))
        err = fmr_error(FMR_ERR_ARG, "ESPIRiT: image %zux%zu is smaller than the %zux%zu kernel lags", h, w, L, L);
    if (!err) err = fmr_alloc((void **)&G, npair * hw * sizeof *G, "ESPIRiT matrices");
    if (!err) {
        P = malloc(nkeep * C * k * k * sizeof *P);
        K = calloc(npair * L * L, sizeof *K);
        if (!P || !K) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate ESPIRiT kernels");
    }
    if (!err) err = fmr_fft2c_create(&fft, h, w);
    for (size_t jj = 0; !err && jj < nkeep; jj++) {
        size_t j = nk - nkeep + jj;
        /* Rows of A are patches x^T, so the patches span conj(v_j) (A n = 0 means sum x n = 0, x
         * orthogonal to conj(n)): column j of the row-major eigenvector matrix, conjugated. */
        for (size_t i2 = 0; i2 < C * k * k; i2++) P[jj * C * k * k + i2] = conj(gram[i2 * nk + j]);
    }
#define PK(jj, c, y, x) P[(((jj) * C + (c)) * k + (y)) * k + (x)]
    if (!err) {
#pragma omp parallel for schedule(dynamic)
        for (size_t pr = 0; pr < npair; pr++) {
            size_t a = 0, rem = pr;
            while (rem >= C - a) rem -= C - a, a++;
            size_t b = a + rem;
            for (size_t ly = 0; ly < L; ly++)
                for (size_t lx = 0; lx < L; lx++) {
                    long dy = (long)ly - (long)(k - 1), dx = (long)lx - (long)(k - 1);
                    double complex acc = 0;
                    for (size_t jj = 0; jj < nkeep; jj++)
                        for (long y = 0; y < (long)k; y++) {
                            if (y + dy < 0 || y + dy >= (long)k) continue;
                            for (long x = 0; x < (long)k; x++) {
                                if (x + dx < 0 || x + dx >= (long)k) continue;
                                acc += PK(jj, a, y + dy, x + dx) * conj(PK(jj, b, y, x));
                            }
                        }
                    K[(pr * L + ly) * L + lx] = acc;
                }
        }
    }
#undef PK
    const double gscale = sqrt((double)hw) / (double)(k * k);
    for (size_t pr = 0; !err && pr < npair; pr++) {
        fmr_cfloat *g = G + pr * hw;
        memset(g, 0, hw * sizeof *g);
        for (size_t ly = 0; ly < L; ly++)
            for (size_t lx = 0; lx < L; lx++)
                g[(h / 2 - (k - 1) + ly) * w + w / 2 - (k - 1) + lx] = (fmr_cfloat)(gscale * K[(pr * L + ly) * L + lx]);
        err = fmr_fft2c_inverse(fft, 1, g, g);
    }
    /* Per pixel: top eigenvector of the Hermitian C x C matrix G(r). Maps vary smoothly, so power
     * iteration started from the neighbouring pixel's vector converges in a few steps where the
     * top eigenvalue is well separated; where it is not (within 1e-6 after 40 steps), LAPACK's
     * cheevd decides. Pixels are shared among threads in contiguous chunks. */
    int lapack_failed = 0;
    if (!err) {
#pragma omp parallel
        {
            lapack_complex_float *m = malloc(C * C * sizeof *m);
            float *lam = malloc((C + FMR_LAPACK_SLACK) * sizeof *lam);
            double complex *v = malloc(2 * C * sizeof *v), *y = v + C;
            int have_prev = 0;
#pragma omp for schedule(static)
            for (size_t p = 0; p < hw; p++) {
                if (!m || !lam || !v) {
                    lapack_failed = 1;
                    continue;
                }
                for (size_t a = 0, pr = 0; a < C; a++)
                    for (size_t b = a; b < C; b++, pr++) {
                        m[a * C + b] = G[pr * hw + p];
                        m[b * C + a] = conjf(G[pr * hw + p]);
                    }
                if (!have_prev)
                    for (size_t c = 0; c < C; c++) v[c] = 1.0 / sqrt((double)C);
                int converged = 0;
                double top = 0;
                for (int it = 0; it < 40 && !converged; it++) {
                    double nrm = 0;
                    for (size_t a = 0; a < C; a++) {
                        double complex acc = 0;
                        for (size_t b = 0; b < C; b++) acc += (double complex)m[a * C + b] * v[b];
                        y[a] = acc;
                        nrm += creal(acc * conj(acc));
                    }
                    nrm = sqrt(nrm);
                    if (!(nrm > 1e-30)) break;
                    double diff = 0;
                    for (size_t a = 0; a < C; a++) {
                        y[a] /= nrm;
                        diff += creal((y[a] - v[a]) * conj(y[a] - v[a]));
                        v[a] = y[a];
                    }
                    top = nrm;
                    converged = diff < 1e-12;
                }
                if (converged) {
                    have_prev = 1;
                    if (eig) eig[p] = (float)top;
                    for (size_t c = 0; c < C; c++) maps[c * hw + p] = top >= opt->crop ? (fmr_cfloat)v[c] : 0.0f;
                    continue;
                }
                if (fmr_cheevd_rm(C, m, lam) != 0) {
                    lapack_failed = 1;
                    continue;
                }
                float t = lam[C - 1];
                if (eig) eig[p] = t;
                for (size_t c = 0; c < C; c++) {
                    maps[c * hw + p] = t >= opt->crop ? m[c * C + C - 1] : 0.0f;
                    v[c] = m[c * C + C - 1];
                }
                have_prev = 1;
            }
            free(m);
            free(lam);
            free(v);
        }
        if (lapack_failed) err = fmr_error(FMR_ERR_LIB, "LAPACK failed on an ESPIRiT pixel matrix");
    }
    /* the strongest coil (largest mean map magnitude) becomes the phase reference */
    if (!err) {
        size_t ref = 0;
        double best = -1;
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t p = 0; p < hw; p++) s += cabsf(maps[c * hw + p]);
            if (s > best) best = s, ref = c;
        }
        for (size_t p = 0; p < hw; p++) {
            fmr_cfloat r = maps[ref * hw + p];
            float a = cabsf(r);
            fmr_cfloat rot = a > 0 ? conjf(r) / a : 1.0f;
            for (size_t c = 0; c < C; c++) maps[c * hw + p] *= rot;
        }
    }
    fmr_free(G);
    free(P);
    free(K);
    fmr_fft2c_destroy(&fft);
    free(gram);
    free(row);
    free(ev);
    return err;
}

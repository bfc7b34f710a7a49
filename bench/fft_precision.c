/* Single against double precision for the data-consistency operator's inner loop: one 2-D FFT
 * pair of an h x w image in float and in double (FFTW_MEASURE plans), and the float<->double
 * conversion pass a float operator pays per product. Prints microseconds per call.
 * usage: bench_fft_precision [h w coils] */
#include <complex.h>
#include <fftw3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int h = argc > 2 ? atoi(argv[1]) : 192, w = argc > 2 ? atoi(argv[2]) : 160, C = argc > 3 ? atoi(argv[3]) : 8;
    size_t n = (size_t)h * (size_t)w;
    fftwf_complex *f = fftwf_alloc_complex(n);
    fftw_complex *d = fftw_alloc_complex(n);
    fftwf_plan pf = fftwf_plan_dft_2d(h, w, f, f, FFTW_FORWARD, FFTW_MEASURE),
               pfb = fftwf_plan_dft_2d(h, w, f, f, FFTW_BACKWARD, FFTW_MEASURE);
    fftw_plan pd = fftw_plan_dft_2d(h, w, d, d, FFTW_FORWARD, FFTW_MEASURE),
              pdb = fftw_plan_dft_2d(h, w, d, d, FFTW_BACKWARD, FFTW_MEASURE);
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)(i % 7); /* complex.h first: fftw types are C99 complex */
        d[i] = (double)(i % 7);
    }
    const int reps = 400;
    double t0 = now();
    for (int r = 0; r < reps; r++) fftwf_execute(pf), fftwf_execute(pfb);
    double tf = (now() - t0) / reps;
    t0 = now();
    for (int r = 0; r < reps; r++) fftw_execute(pd), fftw_execute(pdb);
    double td = (now() - t0) / reps;
    double complex *v = malloc(n * sizeof *v);
    float complex *u = malloc(n * sizeof *u);
    for (size_t i = 0; i < n; i++) v[i] = (double)i;
    t0 = now();
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < n; i++) u[i] = (float complex)v[i];
        for (size_t i = 0; i < n; i++) v[i] = (double complex)u[i] + 1e-30;
    }
    double tc = (now() - t0) / reps;
    printf("image %dx%d, %d coils, per A^H A product:\n", h, w, C);
    printf("  float:  FFT pair %.1f us/coil -> %.0f us, plus conversion both ways %.0f us = %.0f us\n",
           1e6 * tf, 1e6 * tf * C, 1e6 * tc, 1e6 * (tf * C + tc));
    printf("  double: FFT pair %.1f us/coil -> %.0f us\n", 1e6 * td, 1e6 * td * C);
    printf("  double / float FFT time: %.2f\n", td / tf);
    fftwf_destroy_plan(pf), fftwf_destroy_plan(pfb), fftw_destroy_plan(pd), fftw_destroy_plan(pdb);
    fftwf_free(f), fftw_free(d), free(v), free(u);
    return 0;
}

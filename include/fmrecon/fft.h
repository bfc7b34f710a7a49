/* Centred, orthonormal 2-D FFT on FFTW3 with fastMRI's convention:
 *   fft2c(x)  = fftshift(FFT2(ifftshift(x))) / sqrt(H*W)
 *   ifft2c(y) = fftshift(IFFT2(ifftshift(y))) * sqrt(H*W) / (H*W)
 * Plans are created once per size (FFTW_MEASURE by default, wisdom reused) and shared. */
#ifndef FMRECON_FFT_H
#define FMRECON_FFT_H

#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_fft2c fmr_fft2c;

fmr_err fmr_fft2c_create(fmr_fft2c **f, size_t h, size_t w);
void fmr_fft2c_destroy(fmr_fft2c **f);

/* n images of h*w each, contiguous; in == out is allowed. */
fmr_err fmr_fft2c_forward(const fmr_fft2c *f, size_t n, const fmr_cfloat *in, fmr_cfloat *out);
fmr_err fmr_fft2c_inverse(const fmr_fft2c *f, size_t n, const fmr_cfloat *in, fmr_cfloat *out);

/* Threads FFTW may use for plans created from now on (default 1: one rank per core is the cluster
 * default). Only images of at least 256x256 pixels are planned threaded; smaller 2-D FFTs do not
 * pay for the synchronisation. The CLI sets this from OMP_NUM_THREADS. */
void fmr_fft_set_threads(int nthreads);

/* Planner effort: "estimate", "measure" (default) or "patient". Env FMR_FFTW_PLANNER overrides. */
fmr_err fmr_fft_set_planner(const char *effort);

/* Frees every cached plan and saves new FFTW wisdom: to FMR_FFTW_WISDOM if set ("none" disables),
 * else to a per-host file under $XDG_CACHE_HOME/fmrecon or ~/.cache/fmrecon, which the first plan
 * of the next process loads. */
void fmr_fft_cleanup(void);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* The centred FFT written as diagonal phases around a plain FFT: fft2c = s * post . FFT . pre.
 * ifftshift/fftshift are circular shifts, and a shift on one side of a DFT is a phase ramp on the
 * other, so both become per-pixel complex factors (+-1 for even sizes). Operators fold these factors
 * into multiplications they do anyway (coil maps, mask), so a coil FFT costs one plain FFTW call. */
#ifndef FMR_FFT_INTERNAL_H
#define FMR_FFT_INTERNAL_H

#include <fftw3.h>

#include "fmrecon/fft.h"

struct fmr_fft2c {
    size_t h, w;
    fftwf_plan fwd, bwd; /* in-place, owned by the plan cache */
    fmr_cfloat *pre;     /* h*w: phase applied before the forward FFT */
    fmr_cfloat *post;    /* h*w: phase applied after the forward FFT */
    float scale;         /* 1/sqrt(h*w) */
};

/* Unnormalised in-place FFTW transform of one h*w image; buf must be FMR_ALIGN-aligned. */
static inline void fmr_fft_raw_forward(const fmr_fft2c *f, fmr_cfloat *buf)
{
    fftwf_execute_dft(f->fwd, (fftwf_complex *)buf, (fftwf_complex *)buf);
}
static inline void fmr_fft_raw_backward(const fmr_fft2c *f, fmr_cfloat *buf)
{
    fftwf_execute_dft(f->bwd, (fftwf_complex *)buf, (fftwf_complex *)buf);
}

#endif

/* BART's .cfl/.hdr pairs (docs/formats.md, "BART cfl"): X.hdr is text whose line "# Dimensions"
 * is followed by one line of up to 16 sizes; X.cfl holds the samples as raw complex64,
 * little-endian, first dimension fastest (Fortran order). BART's dimensions are, in order,
 * READ, PHS1, PHS2, COIL, MAPS, TE, COEFF, COEFF2, ITER, CSHIFT, TIME, TIME2, LEVEL, SLICE, AVG,
 * BATCH (bart/src/misc/mri.h).
 *
 * fmrecon reads a pair as k-space (fmr_dataset_open recognises it), reads BART coil maps for
 * --sens, and writes results in BART order, so BART tools can take them (bart nrmse, bart fft). */
#ifndef FMRECON_CFL_H
#define FMRECON_CFL_H

#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

#define FMR_CFL_DIMS 16

enum {
    FMR_CFL_READ = 0,
    FMR_CFL_PHS1 = 1,
    FMR_CFL_PHS2 = 2,
    FMR_CFL_COIL = 3,
    FMR_CFL_MAPS = 4,
    FMR_CFL_TIME = 10,
    FMR_CFL_SLICE = 13,
};

/* 1 if path names a BART pair: "X.cfl" or "X.hdr", or "X" with X.hdr beside it; base (n bytes)
 * receives X. 0 otherwise (never an error). */
int fmr_cfl_is(const char *path, char *base, size_t n);

/* Reads X.hdr of the pair that path names, checks every size and that X.cfl holds exactly
 * 8 * prod(dims) bytes (so nothing is allocated from a header the data does not back). Dims
 * beyond those listed are 1. */
fmr_err fmr_cfl_read_header(const char *path, long dims[FMR_CFL_DIMS]);

/* Writes data (prod(dims) complex64 in BART order) as the pair path names ("X", "X.cfl" or
 * "X.hdr"), each under a temporary name, renamed only when complete. */
fmr_err fmr_cfl_write(const char *path, const long dims[FMR_CFL_DIMS], const fmr_cfloat *data);

/* Writes a cine (frames T, slices Z, h, w), row-major as fmrecon keeps it, from complex img or
 * (img NULL) magnitude mag, as a BART pair [h, w, 1, 1, ..., TIME = T, ..., SLICE = Z]. */
fmr_err fmr_cfl_write_cine(const char *path, size_t T, size_t Z, size_t h, size_t w, const fmr_cfloat *img,
                           const float *mag);

/* Writes an fmrecon image array (frames, slices, h, w), complex or magnitude (imaginary part 0),
 * as a BART pair [h, w, 1, 1, ..., TIME = frames, ..., SLICE = slices]. */
fmr_err fmr_cfl_write_images(const char *path, const fmr_array *images);

/* Writes the result file h5path's `image` (complex; preferred) or `reconstruction` (magnitude)
 * with fmr_cfl_write_images; dataset NULL chooses, otherwise names the dataset. */
fmr_err fmr_cfl_write_result(const char *h5path, const char *dataset, const char *path);

/* BART coil maps (e.g. bart ecalib output) as fmrecon's (slices, coils, h, w) complex64 array,
 * with the same plane rule as k-space (docs/formats.md); of several MAPS the first is kept. */
fmr_err fmr_cfl_read_maps(const char *path, fmr_array **maps);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

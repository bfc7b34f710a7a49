/* Simulated multi-coil cine data for the demo and the tests: a beating-heart phantom (left
 * ventricle with incompressible myocardium, right ventricle, lungs, chest wall, subcutaneous fat,
 * smooth phase), loop-coil sensitivities around the body, complex Gaussian noise. */
#ifndef FMRECON_SIM_H
#define FMRECON_SIM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_sim_params {
    size_t frames, slices, coils, h, w; /* h = readout rows, w = phase-encode columns */
    double snr;                         /* mean blood-pool signal / noise std per coil image */
    uint64_t seed;                      /* subject anatomy and noise */
} fmr_sim_params;

/* 12 frames, 2 slices, 8 coils, 192x160, SNR 40, seed 1. */
void fmr_sim_defaults(fmr_sim_params *p);
fmr_err fmr_sim_check(const fmr_sim_params *p);

/* Noise-free complex image of one frame and slice (h*w). */
fmr_err fmr_sim_image(const fmr_sim_params *p, size_t frame, size_t slice, fmr_cfloat *img);

/* Coil sensitivities (coils*h*w). */
fmr_err fmr_sim_coils(const fmr_sim_params *p, fmr_cfloat *maps);

/* Writes a fastMRI-style cine file: kspace (frames, slices, coils, h, w) complex64, fully sampled
 * unless mask (w values) is given, in which case unsampled columns are zero and the mask is stored;
 * reconstruction_rss (frames, slices, h, w) from the fully sampled noisy data; attrs max, norm,
 * acquisition and the simulation parameters. Collective over comm (slices/frames split over ranks). */
fmr_err fmr_sim_write(MPI_Comm comm, const char *path, const fmr_sim_params *p, const float *mask);

/* Semi-real data from a real magnitude cine DICOM series (one series in the folder dir): the
 * magnitude of slices [slice0, slice0 + nslices) (nslices 0 = all) times a smooth random phase
 * times simulated loop-coil maps, Fourier transformed, plus complex Gaussian noise of std
 * (99th-percentile magnitude x coil-combined centre sensitivity / snr). Written like
 * fmr_sim_write (kspace, reconstruction_rss, optional mask) plus the series' geometry and
 * trigger times ('geometry') and its patient/study fields. Collective over comm. */
typedef struct fmr_sim_dicom_params {
    const char *dir;
    size_t slice0, nslices;
    size_t coils;          /* simulated loop coils (ignored with maps_file) */
    double snr;
    uint64_t seed;
    const char *maps_file; /* real coil maps instead: 'maps' (slices or 1, coils, h, w) complex, e.g.
                              from fmrecon maps of a measured scan with the series' matrix */
} fmr_sim_dicom_params;

fmr_err fmr_sim_from_dicom(MPI_Comm comm, const fmr_sim_dicom_params *p, const float *mask, const char *path);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

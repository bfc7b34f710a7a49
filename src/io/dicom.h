/* The DICOM boundary of fmrecon: one C++ translation unit (src/io/dicom_dcmtk.cpp, DCMTK) behind
 * this C API. Everything else (grouping files into slices and frames, geometry checks, the
 * float-to-uint16 mapping) is C. */
#ifndef FMR_IO_DICOM_H
#define FMR_IO_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "fmrecon/error.h"
#include "fmrecon/geometry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What fmrecon takes from one input instance. */
typedef struct fmr_dcm_info {
    char sop_class[68], series_uid[68], series_description[68];
    size_t rows, cols;
    int has_ipp, has_iop, has_spacing, has_thickness, has_trigger;
    double ipp[3], iop[6], spacing[2], thickness, trigger_ms;
    char patient_position[16];
    char subject[FMR_SUBJ_COUNT][72];
    float *pixels; /* rows x cols after the modality rescale (malloc'd) when asked for */
} fmr_dcm_info;

/* Reads one file; pixels only if want_pixels. FMR_ERR_FORMAT naming the file when it is not
 * DICOM, not uncompressed, not single-frame greyscale. */
fmr_err fmr_dcm_read(const char *path, int want_pixels, fmr_dcm_info *info);

/* Everything one output instance carries (strings may be "" for type-2 empty). */
typedef struct fmr_dcm_out {
    const char *study_uid, *series_uid, *sop_uid, *frame_uid;
    const char *series_description, *derivation, *software;
    const char *subject[FMR_SUBJ_COUNT]; /* copied from the input's headers, "" when absent */
    const char *patient_position;
    const char *content_date, *content_time; /* of the export */
    int series_number, instance_number, cardiac_images;
    int gated; /* cardiac-gated cine: ScanOptions CG and TriggerTime are written */
    size_t rows, cols;
    double ipp[3], iop[6], spacing[2], thickness, spacing_between, slice_location, trigger_ms;
    double slope, intercept, window_center, window_width;
    const uint16_t *pixels; /* rows x cols; enhanced: frames x rows x cols */
    /* Enhanced MR only: frame count, per-frame positions (3 x frames) and trigger times */
    size_t frames;
    const double *frame_ipp, *frame_trigger_ms;
} fmr_dcm_out;

/* Writes one MR Image Storage instance (explicit VR little endian) to path. */
fmr_err fmr_dcm_write(const char *path, const fmr_dcm_out *o);

/* Writes one Enhanced MR Image Storage instance holding o->frames frames (multi-frame
 * functional groups; explicit VR little endian) to path. */
fmr_err fmr_dcm_write_enhanced(const char *path, const fmr_dcm_out *o);

/* A new globally unique UID (DCMTK's generator under its site root); buf holds >= 65 bytes. */
void fmr_dcm_new_uid(char *buf);

#ifdef __cplusplus
}
#endif
#endif

#ifndef FMR_IO_DICOM_SERIES
#define FMR_IO_DICOM_SERIES
#ifdef __cplusplus
extern "C" {
#endif
/* Reads a folder holding one magnitude cine series (src/io/dicom_series.c): every file must
 * belong to the same series and carry ImagePositionPatient, ImageOrientationPatient,
 * PixelSpacing and SliceThickness (TriggerTime when a location has several images). Images
 * are grouped by location along the slice normal (ascending) and ordered by TriggerTime.
 * Slices [z0, z0 + nz) are kept (nz = 0: all). *mag (malloc'd) is frames x slices x rows x
 * cols; *geo the series' geometry with h = rows, w = columns. */
fmr_err fmr_dicom_read_series(const char *dir, size_t z0, size_t nz, float **mag, fmr_geometry **geo);
#ifdef __cplusplus
}
#endif
#endif

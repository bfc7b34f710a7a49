/* Image geometry carried through the pipeline: where every pixel of every slice is in the
 * patient, and when every frame was acquired.
 *
 * Coordinates are DICOM patient coordinates (LPS: +x towards the patient's left, +y posterior,
 * +z head), in millimetres, as ISMRMRD acquisition headers and DICOM store them. NIfTI output
 * converts to RAS (x and y negated) when it writes its affine.
 *
 * fmrecon's image arrays are (frame, slice, h, w) with h = readout and w = phase-encode, stored
 * row-major (w fastest). Pixel (h, w) of slice z lies at
 *     position[z] + h * spacing_h * dir_h[z] + w * spacing_w * dir_w[z].
 * In DICOM terms an image row is one h (Rows = h, Columns = w): ImagePositionPatient = position,
 * ImageOrientationPatient = (dir_w, dir_h), PixelSpacing = (spacing_h, spacing_w).
 *
 * Every field records where it came from in its src_* string: "read: <where>" when it comes from
 * the input file, "assumed: <why>" when it is a documented default or was given on the command
 * line (see docs/formats.md). Nothing assumed is ever presented as measured. */
#ifndef FMRECON_GEOMETRY_H
#define FMRECON_GEOMETRY_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_slice_geometry {
    double position[3]; /* LPS mm: centre of pixel (h = 0, w = 0) */
    double dir_h[3];    /* unit vector of increasing h (readout; down an image column) */
    double dir_w[3];    /* unit vector of increasing w (phase-encode; along an image row) */
} fmr_slice_geometry;

/* Patient, study and equipment fields copied from the input's headers, keyed by their DICOM
 * keyword. Empty when the input does not carry them: they are never invented. */
typedef enum fmr_subject_field {
    FMR_SUBJ_PATIENT_NAME,
    FMR_SUBJ_PATIENT_ID,
    FMR_SUBJ_PATIENT_BIRTH_DATE,
    FMR_SUBJ_PATIENT_SEX,
    FMR_SUBJ_STUDY_DATE,
    FMR_SUBJ_STUDY_TIME,
    FMR_SUBJ_STUDY_ID,
    FMR_SUBJ_ACCESSION_NUMBER,
    FMR_SUBJ_STUDY_DESCRIPTION,
    FMR_SUBJ_REFERRING_PHYSICIAN,
    FMR_SUBJ_STUDY_UID,
    FMR_SUBJ_FRAME_OF_REFERENCE_UID,
    FMR_SUBJ_MANUFACTURER,
    FMR_SUBJ_MODEL,
    FMR_SUBJ_INSTITUTION,
    FMR_SUBJ_FIELD_STRENGTH,
    FMR_SUBJ_PROTOCOL,
    FMR_SUBJ_COUNT
} fmr_subject_field;

#define FMR_GEO_TEXT 96

typedef struct fmr_geometry {
    size_t slices, frames, h, w;
    double spacing_h, spacing_w; /* mm between pixel centres along h and along w */
    double slice_thickness;      /* mm */
    double slice_spacing;        /* mm between neighbouring slice centres (thickness for one slice) */
    fmr_slice_geometry *slice;   /* [slices] */
    double *trigger_ms;          /* [frames]: time of each frame after the R wave, ms */
    char patient_position[16];   /* DICOM PatientPosition (HFS, FFS, ...), "" when unknown */
    char src_spacing[FMR_GEO_TEXT], src_thickness[FMR_GEO_TEXT], src_position[FMR_GEO_TEXT],
        src_orientation[FMR_GEO_TEXT], src_trigger[FMR_GEO_TEXT], src_patient_position[FMR_GEO_TEXT];
    char subject[FMR_SUBJ_COUNT][72];
} fmr_geometry;

/* Command-line replacements for the defaults (or for what the file says); 0 / NULL = not given. */
typedef struct fmr_geometry_overrides {
    double spacing_h, spacing_w; /* --pixel-spacing H[,W] mm */
    double slice_thickness;      /* --slice-thickness MM (also the slice spacing, unless read) */
    const char *trigger_times;   /* --trigger-times STEP or T0,T1,... (ms) */
} fmr_geometry_overrides;

/* A geometry of the given size holding fmrecon's documented defaults, every field "assumed":
 * 1 mm pixels, 8 mm slices stacked along +z without gaps and centred on the origin, axial
 * orientation (dir_w = +x, dir_h = +y), frames spread evenly over a 1000 ms cardiac cycle. */
fmr_err fmr_geometry_create(size_t slices, size_t frames, size_t h, size_t w, fmr_geometry **g);
void fmr_geometry_free(fmr_geometry **g);
fmr_err fmr_geometry_copy(const fmr_geometry *src, fmr_geometry **dst);

/* Applies overrides; every field changed becomes "assumed: command line". Values are checked
 * (positive, finite, count of trigger times = frames). */
fmr_err fmr_geometry_override(fmr_geometry *g, const fmr_geometry_overrides *ov);

/* Recomputes the position of every slice as if the slices were stacked along the normal
 * dir_w x dir_h from slice 0 with slice_spacing between them; used after overrides of
 * assumed positions. */
void fmr_geometry_restack(fmr_geometry *g);

/* JSON text of the geometry (the root attribute 'geometry' of every fmrecon HDF5 output, schema
 * in docs/formats.md) and back; *json is malloc'd. Parsing checks every field and the sizes. */
fmr_err fmr_geometry_to_json(const fmr_geometry *g, char **json);
fmr_err fmr_geometry_from_json(const char *what, const char *json, fmr_geometry **g);

/* The geometry recorded in an fmrecon HDF5 output (root attribute 'geometry'); FMR_ERR_FORMAT
 * naming the file when it has none. */
fmr_err fmr_geometry_read_h5(const char *path, fmr_geometry **g);

/* Geometry of an ISMRMRD XML header (pixel spacing, thickness, patient position, subject and
 * study fields); position, orientation and trigger times stay assumed. h is the image's readout
 * size after oversampling removal, w its phase-encode size. */
fmr_err fmr_geometry_from_ismrmrd_xml(const char *what, const char *xml, fmr_geometry *g);

/* 1 if all slices share one orientation and are evenly stacked along their normal (a 3-D
 * volume), else 0. */
int fmr_geometry_is_volume(const fmr_geometry *g, double tol_mm);

/* Unit normal of slice z: dir_w x dir_h (the DICOM slice normal: row x column direction). */
void fmr_geometry_normal(const fmr_geometry *g, size_t z, double n[3]);

/* DICOM SliceLocation of slice z: position of its centre pixel projected on the normal. */
double fmr_geometry_slice_location(const fmr_geometry *g, size_t z);

/* The DICOM keyword of a subject field ("PatientName", ...). */
const char *fmr_subject_keyword(fmr_subject_field f);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

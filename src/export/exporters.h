/* The exporter table behind fmr_export_file: one entry per format, each a function in its own
 * file taking the loaded result, the output folder and the options. */
#ifndef FMR_EXPORTERS_H
#define FMR_EXPORTERS_H

#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/export.h"
#include "fmrecon/geometry.h"

/* A reconstruction loaded from its HDF5 file. */
typedef struct fmr_export_result {
    const char *path;               /* the HDF5 file */
    const char *name;               /* base name for the outputs */
    size_t frames, slices, h, w;
    float *mag;                     /* 'reconstruction': frames x slices x h x w */
    fmr_cfloat *img;                /* 'image' (complex) or NULL */
    fmr_geometry *geo;              /* from the 'geometry' attribute (assumed defaults if absent) */
    char method[64];                /* attribute 'method' */
    char model[256];                /* model bundle of learned methods ("" otherwise) */
    double accel;                   /* acceleration w / sampled columns from 'mask' (1 without) */
    char description[64];           /* "fmrecon <method> R=<accel> [<model>]" for series descriptions */
    double max;                     /* largest magnitude over the whole result */
} fmr_export_result;

typedef fmr_err (*fmr_exporter_fn)(const fmr_export_result *r, const char *out_dir,
                                   const fmr_export_options *opt);

fmr_err fmr_export_nifti(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt);
fmr_err fmr_export_dicom(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt);
fmr_err fmr_export_gif(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt);
fmr_err fmr_export_cfl(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt);
fmr_err fmr_export_png(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt);

/* Helpers shared by the exporters (src/export/export.c). */
/* "out_dir/name<suffix>" into buf; error if it does not fit. */
fmr_err fmr_export_path(char *buf, size_t n, const char *out_dir, const char *name, const char *suffix);
/* A temporary name beside final ("<dir>/.<base>.fmr-partial-<pid><ext>", ext kept last so
 * libraries that look at the extension still accept it). */
fmr_err fmr_export_tmp_path(char *buf, size_t n, const char *final, const char *ext);
/* Renames tmp to final (replacing an existing file or empty directory), or removes tmp. */
fmr_err fmr_export_commit(const char *tmp, const char *final, fmr_err status);
/* Removes a directory tree made by an exporter (only regular files and folders). */
void fmr_export_rmtree(const char *dir);

#endif

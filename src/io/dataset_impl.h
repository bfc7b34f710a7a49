/* The reader interface behind fmr_dataset: one vtable per file format. */
#ifndef FMR_DATASET_IMPL_H
#define FMR_DATASET_IMPL_H

#include "fmrecon/io.h"

typedef struct fmr_dataset_ops {
    fmr_err (*read_kspace)(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc,
                           fmr_cfloat *out);
    /* Raw stored mask of frame t (w values); only called when info.mask != NONE. */
    fmr_err (*read_mask)(fmr_dataset *ds, size_t t, float *mask);
    fmr_err (*read_reference)(fmr_dataset *ds, size_t t, size_t z, float *out);
    /* Optional: noise-scan samples, coils x n. */
    fmr_err (*read_noise)(fmr_dataset *ds, fmr_cfloat **noise, size_t *n);
    void (*close)(fmr_dataset *ds);
} fmr_dataset_ops;

struct fmr_dataset {
    const fmr_dataset_ops *ops;
    char *path;
    fmr_dataset_info info;
    void *impl;
    float *ext_mask; /* from --mask-file: frames x w (or 1 x w when shared) */
    fmr_cfloat *xform; /* coils x coils_in_file coil transform (prewhitening, compression) or NULL */
    fmr_cfloat *raw;   /* coils_in_file x h x w scratch for the transform */
    struct fmr_geometry *geo; /* always set after open (src/geometry/geometry_read.c) */
    char *header_xml;         /* the ISMRMRD XML header (ISMRMRD /dataset/xml, fastMRI ismrmrd_header) or NULL */
};

/* Format probes: return 1 and fill ds (ops, info, impl) if path is theirs, 0 if not theirs,
 * or -1 with an error recorded if it is theirs but unusable. */
int fmr_fastmri_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err);
int fmr_cmrxrecon_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err);
int fmr_cfl_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err);
int fmr_ismrmrd_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err);

/* Reads a mask file for a dataset of the given frames and width into ds->ext_mask. */
fmr_err fmr_maskfile_read(const char *path, const char *variable, fmr_dataset *ds);

/* Parses the ISMRMRD XML header for the acquired phase-encode range (fastMRI's padding rule). */
fmr_err fmr_ismrmrd_xml_padding(const char *path, const char *xml, size_t w, size_t *pad_left,
                                size_t *pad_right);

#endif

/* Reading raw data and writing results.
 *
 * fmr_dataset: one input file in any supported format, presented in the internal cine layout
 * y[frame][slice][coil][readout][phase-encode]. Items (frame, slice) are read one at a time, so a
 * rank reads only what its items need.
 *
 * fmr_h5out: one HDF5 output file shared by every rank of a communicator. It is created under a
 * temporary name; each rank writes its own blocks (collective I/O); fmr_h5out_finish renames it to
 * the final name only if every rank succeeded, otherwise removes it. */
#ifndef FMRECON_IO_H
#define FMRECON_IO_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"
#include "fmrecon/geometry.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef enum fmr_format {
    FMR_FORMAT_UNKNOWN = 0,
    FMR_FORMAT_FASTMRI = 1,   /* fastMRI .h5 (and its cine extension) */
    FMR_FORMAT_CMRXRECON = 2, /* CMRxRecon 2023/2024 MATLAB v7.3 .mat */
    FMR_FORMAT_ISMRMRD = 3,   /* ISMRMRD raw data .h5 */
    FMR_FORMAT_CFL = 4,       /* BART .cfl/.hdr pair (fmrecon/cfl.h) */
} fmr_format;

typedef enum fmr_mask_kind {
    FMR_MASK_NONE = 0,     /* no mask stored: treat as fully sampled (zeros in k-space stay zeros) */
    FMR_MASK_SHARED = 1,   /* one phase-encode mask (w) for every frame */
    FMR_MASK_PERFRAME = 2, /* one phase-encode mask per frame (frames, w) */
} fmr_mask_kind;

typedef struct fmr_dataset_info {
    fmr_format format;
    const char *format_name;
    size_t frames, slices, coils, h, w; /* internal layout; h = readout, w = phase-encode */
    int has_frame_axis;                 /* the file itself had a frame axis */
    int file_double;                    /* k-space stored in double precision */
    fmr_mask_kind mask;
    int has_reference; /* reconstruction_rss present */
    size_t ref_h, ref_w;
    size_t pad_left, pad_right; /* acquired phase-encode columns [pad_left, pad_right) */
    int has_header;             /* ismrmrd_header parsed */
    int has_max, has_norm;
    double max, norm;
    char acquisition[64];
    char variable[64];       /* the variable/dataset k-space was read from */
    size_t noise_scans;      /* ISMRMRD noise acquisitions kept for prewhitening */
    size_t calibration_lines; /* ISMRMRD calibration-only lines (placed in k-space, counted as sampled) */
    size_t coils_in_file;     /* receive channels in the file (coils is after compression) */
    int prewhitened;          /* k-space is noise-prewhitened (noise scans present, not disabled) */
    double compression_energy; /* with virtual coils: fraction of the signal energy kept */
} fmr_dataset_info;

/* How to open a file; NULL means defaults everywhere. */
typedef struct fmr_open_options {
    const char *variable;      /* CMRxRecon: k-space variable (default: first of kspace_full, kus,
                                  kspace_sub04/08/10, kspace_single_full, kspace_single_sub04/08/10) */
    const char *mask_file;     /* a separate mask file (CMRxRecon mask .mat or an HDF5 'mask') */
    const char *mask_variable; /* its variable (default: first of mask, mask04, mask08, mask10) */
    int no_prewhiten;          /* keep raw channels even when noise scans are present */
    size_t virtual_coils;      /* > 0: SVD coil compression to this many virtual coils */
    fmr_geometry_overrides geometry; /* --pixel-spacing, --slice-thickness, --trigger-times */
} fmr_open_options;

typedef struct fmr_dataset fmr_dataset;

/* Opens path and checks it is a supported, internally consistent file; any failure names the file.
 * The format is recognised from the content, not the name. */
fmr_err fmr_dataset_open(const char *path, const fmr_open_options *opt, fmr_dataset **ds);
void fmr_dataset_close(fmr_dataset **ds);
const fmr_dataset_info *fmr_dataset_get_info(const fmr_dataset *ds);
const char *fmr_dataset_path(const fmr_dataset *ds);
/* The input's geometry (read, or assumed and recorded as such; see fmrecon/geometry.h). */
const fmr_geometry *fmr_dataset_get_geometry(const fmr_dataset *ds);
/* The input's ISMRMRD XML header, or NULL if it has none (kept by undersample). */
const char *fmr_dataset_header_xml(const fmr_dataset *ds);

/* Coils [coil0, coil0+ncoils) of item (frame, slice) into out[ncoils][h][w]. Fails with
 * FMR_ERR_VALUE naming frame, slice and coil if any sample is NaN or Inf. */
fmr_err fmr_dataset_read_kspace(fmr_dataset *ds, size_t frame, size_t slice, size_t coil0,
                                size_t ncoils, fmr_cfloat *out);

/* The phase-encode mask (w values, 0/1) of a frame; all ones if the file has none. Columns outside
 * the acquired range [pad_left, pad_right) are 0. A mask file given at open replaces the file's. */
fmr_err fmr_dataset_read_mask(fmr_dataset *ds, size_t frame, float *mask);

/* Noise-scan samples for prewhitening: *noise (fmr_malloc'd, caller frees) holds coils x n
 * samples, coil-major (noise[c*n + s]); n = 0 and *noise = NULL when the file has none. */
fmr_err fmr_dataset_read_noise(fmr_dataset *ds, fmr_cfloat **noise, size_t *n);

/* The reference magnitude image (ref_h*ref_w) of an item, if has_reference. */
fmr_err fmr_dataset_read_reference(fmr_dataset *ds, size_t frame, size_t slice, float *out);

/* 1 if path is a readable HDF5 file with a link called name, else 0 (never an error). */
int fmr_h5_has_dataset(const char *path, const char *name);

/* Reads a whole real-valued dataset of an HDF5 file as float32 (e.g. a result's 'reconstruction').
 * *data is fmr_malloc'd; dims holds up to maxdims sizes. */
fmr_err fmr_h5_read_floats(const char *path, const char *name, int maxdims, int *ndim,
                           size_t *dims, float **data);

/* Reads a whole dataset into a new array: complex compounds (r/i or real/imag, float or double)
 * as FMR_C64, real numbers as FMR_F32. For coil maps (--sens) and tests. */
fmr_err fmr_h5_read_array(const char *path, const char *name, fmr_array **out);


/* Refuses an output path that is not a regular file (device node, pipe, socket, directory) or that
 * is the same file (inode, also through hard or symbolic links) as one of inputs[0..n) or as any
 * file this process has read as input. Every writer calls it before creating its output. */
fmr_err fmr_output_check(const char *path, const char *const *inputs, size_t n);

/* Writes an 8-bit grey PNG (rows x cols, row-major) via a temporary name and rename. */
fmr_err fmr_png_write_gray(const char *path, size_t rows, size_t cols, const unsigned char *pixels);

/* ---------------------------------------------------------------------------------------------- */

struct fmr_mask_spec;

/* Rewrites any readable input as a fastMRI-style cine file (kspace (frames, slices, coils, h, w)
 * complex64, mask uint8) with the k-space multiplied by a mask: a generated one (spec), combined
 * with the input's own sampling if it has any, or the input's own (spec NULL: plain conversion).
 * reconstruction_rss is copied from the input, or computed from the input k-space when the input
 * is fully sampled (no mask and no empty phase-encode column); attrs max/norm follow it.
 * Collective over comm. */
fmr_err fmr_undersample_file(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                             const struct fmr_mask_spec *spec, const char *out_path,
                             const char *argv_line);

/* ---------------------------------------------------------------------------------------------- */

typedef struct fmr_h5out fmr_h5out;

/* Collective over comm. Checks the destination is writable before anything is computed. */
fmr_err fmr_h5out_create(MPI_Comm comm, const char *path, fmr_h5out **out);

/* Collective: every rank passes the same arguments. */
fmr_err fmr_h5out_add_dataset(fmr_h5out *o, const char *name, fmr_dtype t, int ndim,
                              const size_t *dims);
fmr_err fmr_h5out_attr_string(fmr_h5out *o, const char *dset, const char *name, const char *value);
fmr_err fmr_h5out_attr_double(fmr_h5out *o, const char *dset, const char *name, double value);
fmr_err fmr_h5out_attr_int(fmr_h5out *o, const char *dset, const char *name, int64_t value);

/* Collective: writes nblocks blocks of dataset name. Block i is the sub-array at leading indices
 * lead[i*nlead .. i*nlead+nlead-1]; its data is data + i*blocksize (blocks in any order). A rank
 * with nothing to write passes nblocks = 0. */
fmr_err fmr_h5out_write_blocks(fmr_h5out *o, const char *name, size_t nblocks, int nlead,
                               const size_t *lead, const void *data);

/* Not collective: one rank writes its blocks on its own (independent MPI-IO), e.g. as items are
 * handed out dynamically. The datasets' storage exists from creation, so this is safe between the
 * collective creation and fmr_h5out_finish. */
fmr_err fmr_h5out_write_blocks_independent(fmr_h5out *o, const char *name, size_t nblocks, int nlead,
                                           const size_t *lead, const void *data);

/* Collective: writes the whole dataset from the ranks where mine != 0 (normally rank 0 alone);
 * the others take part with nothing to write. */
fmr_err fmr_h5out_write_whole(fmr_h5out *o, const char *name, int mine, const void *data);

/* Collective: if every rank passes FMR_OK, closes and renames the file to its final name, else
 * closes and removes it. Returns local_status if it was an error, else the outcome. */
fmr_err fmr_h5out_finish(fmr_h5out **o, fmr_err local_status);

const char *fmr_h5out_path(const fmr_h5out *o);

/* Collective: the geometry as the root attribute 'geometry' (JSON, docs/formats.md). */
fmr_err fmr_h5out_attr_geometry(fmr_h5out *o, const fmr_geometry *g);

/* Collective: a scalar string dataset (e.g. the kept 'ismrmrd_header'); rank 0 writes it. */
fmr_err fmr_h5out_add_string(fmr_h5out *o, const char *name, const char *value);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* Small HDF5 helpers shared by the readers and the writer. HDF5's own error printing is switched
 * off; failures become one fmr_error line naming the file and dataset, with HDF5's innermost
 * reason appended. */
#ifndef FMR_H5UTIL_H
#define FMR_H5UTIL_H

#include <hdf5.h>

#include "fmrecon/error.h"

/* Silences HDF5's automatic error stack printing (idempotent). */
void fmr_h5_quiet(void);

/* HDF5's innermost error description for the current thread's error stack ("" if none). */
const char *fmr_h5_reason(void);

/* 1 if path starts with a MATLAB v5 .mat header (fmrecon-mat2h5 converts such files). */
int fmr_h5_is_mat_v5(const char *path);

/* Opens an existing file read-only: distinguishes missing, unreadable, not-HDF5 and corrupt. */
fmr_err fmr_h5_open_read(const char *path, hid_t *file);

int fmr_h5_exists(hid_t loc, const char *name);

/* Dataset rank and dims (at most maxdims). */
fmr_err fmr_h5_dims(const char *path, hid_t dset, const char *name, int maxdims, int *ndim,
                    hsize_t *dims);

/* If dtype is a complex compound (two float members named r/i or real/imag), returns 1 and a
 * native-float memory type with the same member names in *memtype (caller closes), and whether the
 * file stores doubles. Returns 0 otherwise. */
int fmr_h5_complex_memtype(hid_t dtype, hid_t *memtype, int *is_double);

/* A human-readable name of an HDF5 datatype ("float32", "int16", "compound", ...). */
const char *fmr_h5_type_name(hid_t dtype);

/* Reads a scalar numeric attribute of loc; returns 0 if absent or not numeric. */
int fmr_h5_attr_double(hid_t loc, const char *name, double *value);
/* Reads a string attribute or scalar string dataset into buf; returns 0 if absent. */
int fmr_h5_attr_string(hid_t loc, const char *name, char *buf, size_t n);
/* Reads a whole scalar string dataset (fixed or variable length); *out malloc'd. 0 if absent. */
int fmr_h5_read_string_dataset(hid_t loc, const char *name, char **out);

/* The complex64 compound type h5py and fmrecon write ({r, i} float32). Caller closes. */
hid_t fmr_h5_complex_type(void);

#endif

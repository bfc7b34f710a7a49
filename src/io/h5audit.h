/* Checks every object of an HDF5 file opened for reading before any reader trusts it: no storage
 * outside the file (external links, external raw-data files, virtual datasets), and no dataset
 * that declares more data than the file can hold. See docs/reliability.md. */
#ifndef FMR_IO_H5AUDIT_H
#define FMR_IO_H5AUDIT_H

#include <hdf5.h>

#include "fmrecon/error.h"

/* Largest expansion a filter pipeline can give: the product over its filters (deflate 1032, zlib's
 * maximum ratio; byte-reordering and checksum filters 1; n-bit and scale-offset packing 64; a filter
 * fmrecon does not know 1032). */
double fmr_h5_filter_expansion(hid_t dcpl);

/* Refuses (one line naming path and the object) external and user-defined links, datasets with
 * external storage or a virtual layout, and datasets whose declared size exceeds what the file
 * stores for them (bounded by the file's size) times their filters' maximum expansion. */
fmr_err fmr_h5_audit(const char *path, hid_t file);

#endif

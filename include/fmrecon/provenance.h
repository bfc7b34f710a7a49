/* Provenance: what every fmrecon output records about how it was made (docs/formats.md,
 * "Provenance"), as the JSON text of its `parameters` attribute: the command's effective options
 * (defaults included), the size and SHA-256 of every file it read (input, model bundle, encoder,
 * coil maps, mask file), and the runtime: versions of fmrecon, PETSc, FFTW, oneDNN, HDF5 and MPI
 * as the loaded libraries report them, the number of hosts and ranks. */
#ifndef FMRECON_PROVENANCE_H
#define FMRECON_PROVENANCE_H

#include <mpi.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* Collective over comm (files are hashed on rank 0 and the result shared, so every rank gets
 * the same text, as collective HDF5 attribute writes need). options_json: a JSON object with the
 * command's options (NULL: none); files: NULL-terminated key, path pairs (a NULL path is skipped),
 * recorded under "files"; the runtime goes under "runtime". *json is malloc'd (free()). */
fmr_err fmr_provenance_json(MPI_Comm comm, const char *options_json, const char *const *files, char **json);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* The cJSON-level pieces of fmrecon/provenance.h, for the library's own writers (recon, undersample,
 * maps). All functions taking comm are collective. */
#ifndef FMR_RECON_PROVENANCE_H
#define FMR_RECON_PROVENANCE_H

#include <cjson/cJSON.h>
#include <mpi.h>

#include "fmrecon/io.h"
#include "fmrecon/recon.h"

/* o[key] = {path, size, sha256} of the file path names; for a BART pair the data file X.cfl is
 * hashed (with data_file, header_file and header_sha256 added). Rank 0 reads, all ranks agree. */
fmr_err fmr_prov_add_file(cJSON *o, MPI_Comm comm, const char *key, const char *path);

/* o["runtime"] = {versions: {fmrecon, petsc, fftw, onednn, hdf5, mpi}, hosts, ranks}. */
fmr_err fmr_prov_add_runtime(cJSON *o, MPI_Comm comm);

/* o["open"] = how the input was opened (variable, mask file, prewhitening, virtual coils). */
void fmr_prov_add_open(cJSON *o, const fmr_open_options *open);

/* o["espirit"] = {kernel, cal, threshold, crop}. */
void fmr_prov_add_espirit(cJSON *o, const fmr_espirit_opts *e);

/* o["method_options"] = every field of fmr_method_params (solvers/params_json.c: one line each). */
void fmr_prov_add_method_params(cJSON *o, const fmr_method_params *p);

/* Everything a reconstruction records beside the pipeline's own keys: options (defaults
 * included), open, method_options, petsc_options, input and files (size, SHA-256), runtime. */
fmr_err fmr_prov_add_recon(cJSON *o, MPI_Comm comm, const char *in_path, const fmr_recon_options *opt);

struct fmr_mask_spec;

/* The `parameters` text of undersample (mask spec, open, input, runtime) and of maps (ESPIRiT
 * settings, open, input, runtime). */
fmr_err fmr_prov_undersample_json(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                                  const struct fmr_mask_spec *spec, size_t acs_used, char **json);
fmr_err fmr_prov_maps_json(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                           const fmr_espirit_opts *espirit, char **json);

/* Prints o (unformatted) into *json (malloc'd) and deletes o. */
fmr_err fmr_prov_print(cJSON *o, char **json);

#endif

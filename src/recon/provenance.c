/* Provenance of every output: effective options, the files read (size and SHA-256), and the
 * runtime (library versions as the loaded libraries report them, hosts, ranks). */
#include "recon/provenance.h"

#include <fftw3.h>
#include <hdf5.h>
#include <oneapi/dnnl/dnnl.h>
#include <petscsys.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fmrecon/cfl.h"
#include "fmrecon/files.h"
#include "fmrecon/mask.h"
#include "fmrecon/provenance.h"
#include "fmrecon/safetensors.h"
#include "nn/bundle.h"

typedef struct {
    char petsc[128], fftw[64], onednn[64], hdf5[32], mpi[256];
} versions;

static void get_versions(versions *v)
{
    char pv[256] = "";
    /* "Petsc Release Version 3.18.4, date" -> "3.18.4" */
    if (PetscGetVersion(pv, sizeof pv) == 0) {
        const char *p = strstr(pv, "Version ");
        snprintf(v->petsc, sizeof v->petsc, "%s", p ? p + 8 : pv);
        char *comma = strchr(v->petsc, ',');
        if (comma) *comma = '\0';
    } else {
        snprintf(v->petsc, sizeof v->petsc, "unknown");
    }
    /* "fftw-3.3.10-sse2-avx" -> "3.3.10-sse2-avx" */
    snprintf(v->fftw, sizeof v->fftw, "%s", !strncmp(fftwf_version, "fftw-", 5) ? fftwf_version + 5 : fftwf_version);
    const dnnl_version_t *d = dnnl_version();
    snprintf(v->onednn, sizeof v->onednn, "%d.%d.%d", d->major, d->minor, d->patch);
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(v->hdf5, sizeof v->hdf5, "%u.%u.%u", maj, min, rel);
    char mv[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(mv, &len);
    /* the first line names the implementation and version ("Open MPI v4.1.4, package: ...") */
    mv[strcspn(mv, "\n")] = '\0';
    char *comma = strchr(mv, ',');
    if (comma) *comma = '\0';
    snprintf(v->mpi, sizeof v->mpi, "%s", mv);
}

fmr_err fmr_prov_add_runtime(cJSON *o, MPI_Comm comm)
{
    /* the collective part first, so every rank takes part whatever happens below */
    int size, nodes = 1;
    MPI_Comm_size(comm, &size);
    MPI_Comm node;
    /* hosts: the ranks that share memory form one node; count each node's first rank */
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        int nr, first;
        MPI_Comm_rank(node, &nr);
        first = nr == 0;
        MPI_Allreduce(&first, &nodes, 1, MPI_INT, MPI_SUM, comm);
        MPI_Comm_free(&node);
    }
    versions v;
    get_versions(&v);
    cJSON *rt = cJSON_AddObjectToObject(o, "runtime");
    cJSON *vs = rt ? cJSON_AddObjectToObject(rt, "versions") : NULL;
    if (!vs) return fmr_error(FMR_ERR_NOMEM, "cannot build the provenance record");
    cJSON_AddStringToObject(vs, "fmrecon", fmr_version());
    cJSON_AddStringToObject(vs, "petsc", v.petsc);
    cJSON_AddStringToObject(vs, "fftw", v.fftw);
    cJSON_AddStringToObject(vs, "onednn", v.onednn);
    cJSON_AddStringToObject(vs, "hdf5", v.hdf5);
    cJSON_AddStringToObject(vs, "mpi", v.mpi);
    cJSON_AddNumberToObject(rt, "hosts", nodes);
    cJSON_AddNumberToObject(rt, "ranks", size);
    return FMR_OK;
}

/* SHA-256 and size of a file on rank 0, shared with every rank (errors included). */
static fmr_err hash_shared(MPI_Comm comm, const char *path, char hex[65], long long *size)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    struct {
        int err;
        long long size;
        char hex[65];
    } r = {0};
    if (rank == 0) {
        struct stat st;
        r.size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
        r.err = (int)fmr_sha256_file(path, r.hex);
    }
    MPI_Bcast(&r, (int)sizeof r, MPI_BYTE, 0, comm);
    if (r.err)
        return rank == 0 ? (fmr_err)r.err : fmr_error((fmr_err)r.err, "%s: rank 0 cannot compute its SHA-256", path);
    memcpy(hex, r.hex, 65);
    *size = r.size;
    return FMR_OK;
}

fmr_err fmr_prov_add_file(cJSON *o, MPI_Comm comm, const char *key, const char *path)
{
    if (!path) return FMR_OK;
    /* hashing is collective: done before anything below can fail on one rank only */
    char base[4096], data[4200], hdr[4200], hex[65], hhex[65];
    long long size, hsize;
    const int cfl = fmr_cfl_is(path, base, sizeof base);
    const char *file = path;
    fmr_err err = FMR_OK;
    if (cfl) {
        snprintf(data, sizeof data, "%s.cfl", base);
        snprintf(hdr, sizeof hdr, "%s.hdr", base);
        err = hash_shared(comm, hdr, hhex, &hsize);
        file = data;
    }
    fmr_err e = hash_shared(comm, file, hex, &size);
    FMR_TRY(err ? err : e);
    cJSON *f = cJSON_AddObjectToObject(o, key);
    if (!f) return fmr_error(FMR_ERR_NOMEM, "cannot build the provenance record");
    cJSON_AddStringToObject(f, "path", path);
    if (cfl) {
        cJSON_AddStringToObject(f, "header_file", hdr);
        cJSON_AddStringToObject(f, "header_sha256", hhex);
        cJSON_AddStringToObject(f, "data_file", data);
    }
    cJSON_AddNumberToObject(f, "size", (double)size);
    cJSON_AddStringToObject(f, "sha256", hex);
    return FMR_OK;
}

void fmr_prov_add_open(cJSON *o, const fmr_open_options *op)
{
    static const fmr_open_options none = {0};
    if (!op) op = &none;
    cJSON *j = cJSON_AddObjectToObject(o, "open");
    if (!j) return;
    /* null where the option was not given: the reader's own default choice applies */
    if (op->variable) cJSON_AddStringToObject(j, "variable", op->variable);
    else cJSON_AddNullToObject(j, "variable");
    if (op->mask_file) cJSON_AddStringToObject(j, "mask_file", op->mask_file);
    else cJSON_AddNullToObject(j, "mask_file");
    if (op->mask_variable) cJSON_AddStringToObject(j, "mask_variable", op->mask_variable);
    else cJSON_AddNullToObject(j, "mask_variable");
    cJSON_AddBoolToObject(j, "prewhiten", !op->no_prewhiten);
    cJSON_AddNumberToObject(j, "virtual_coils", (double)op->virtual_coils);
}

void fmr_prov_add_espirit(cJSON *o, const fmr_espirit_opts *e)
{
    cJSON *j = cJSON_AddObjectToObject(o, "espirit");
    if (!j) return;
    cJSON_AddNumberToObject(j, "kernel", e->kernel);
    cJSON_AddNumberToObject(j, "cal", e->cal);
    cJSON_AddNumberToObject(j, "threshold", e->threshold);
    cJSON_AddNumberToObject(j, "crop", e->crop);
}

fmr_err fmr_prov_print(cJSON *o, char **json)
{
    *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!*json) return fmr_error(FMR_ERR_NOMEM, "cannot format the parameters record");
    return FMR_OK;
}

fmr_err fmr_provenance_json(MPI_Comm comm, const char *options_json, const char *const *files, char **json)
{
    *json = NULL;
    cJSON *o = options_json ? cJSON_Parse(options_json) : cJSON_CreateObject();
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return fmr_error(FMR_ERR_INTERNAL, "provenance: the options are not a JSON object");
    }
    fmr_err err = FMR_OK;
    cJSON *fs = cJSON_AddObjectToObject(o, "files");
    for (size_t i = 0; files && files[i]; i += 2) {
        fmr_err e = fmr_prov_add_file(fs, comm, files[i], files[i + 1]);
        if (!err) err = e; /* collective: every rank takes part in every hash */
    }
    fmr_err e = fmr_prov_add_runtime(o, comm);
    if (!err) err = e;
    if (err) {
        cJSON_Delete(o);
        return err;
    }
    return fmr_prov_print(o, json);
}

fmr_err fmr_prov_add_recon(cJSON *o, MPI_Comm comm, const char *in_path, const fmr_recon_options *opt)
{
    cJSON *j = cJSON_AddObjectToObject(o, "options");
    if (!j) return fmr_error(FMR_ERR_NOMEM, "cannot build the provenance record");
    cJSON_AddStringToObject(j, "method", opt->method ? opt->method : "zf");
    cJSON_AddNumberToObject(j, "batch", opt->batch > 0 ? opt->batch : 8);
    cJSON_AddNumberToObject(j, "coil_ranks", opt->coil_ranks > 0 ? opt->coil_ranks : 1);
    cJSON_AddStringToObject(j, "schedule", opt->dynamic ? "dynamic" : "static");
    cJSON_AddBoolToObject(j, "fft_slabs", opt->fft_slabs);
    cJSON_AddBoolToObject(j, "complex", opt->write_complex);
    cJSON_AddBoolToObject(j, "save_cascades", opt->save_extras);
    fmr_prov_add_open(o, &opt->open);
    fmr_prov_add_method_params(o, &opt->params);
    /* the bundle at the top level too: exporters name it in series descriptions */
    if (opt->params.model_file) cJSON_AddStringToObject(o, "model", opt->params.model_file);
    /* the bundle's own settings (cascades, its CG iterations, encoder...) decide the unrolled
     * method, more than the command-line defaults do: recorded as the bundle states them */
    fmr_safetensors *st = NULL;
    if (opt->params.model_file && fmr_st_open(opt->params.model_file, &st) == FMR_OK) {
        cJSON *bm = cJSON_AddObjectToObject(o, "bundle_metadata");
        for (size_t i = 0; bm && i < fmr_st_metadata_count(st); i++)
            cJSON_AddStringToObject(bm, fmr_st_metadata_key(st, i), fmr_st_metadata_value(st, i));
        fmr_st_close(&st);
    }
    /* options given to PETSc after '--' or in PETSC_OPTIONS (they override --cg-*) */
    char *popts = NULL;
    if (PetscOptionsGetAll(NULL, &popts) == 0 && popts) {
        cJSON_AddStringToObject(o, "petsc_options", popts);
        PetscFree(popts);
    }
    fmr_err err = fmr_prov_add_file(o, comm, "input", in_path), e;
    cJSON *fs = cJSON_AddObjectToObject(o, "files");
    /* every rank hashes the same list: all have the same options */
    e = fmr_prov_add_file(fs, comm, "model", opt->params.model_file), err = err ? err : e;
    e = fmr_prov_add_file(fs, comm, "encoder", opt->params.weights_file), err = err ? err : e;
    e = fmr_prov_add_file(fs, comm, "sens", opt->params.sens_file), err = err ? err : e;
    e = fmr_prov_add_file(fs, comm, "mask_file", opt->open.mask_file), err = err ? err : e;
    e = fmr_prov_add_runtime(o, comm), err = err ? err : e;
    return err;
}

/* The part every record of a command that reads one input shares (undersample, maps): the open
 * options, the input's and mask file's hashes, the runtime; then the text. Collective over comm. */
static fmr_err finish_input_record(cJSON *o, MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                                   char **json)
{
    fmr_prov_add_open(o, open);
    fmr_err err = fmr_prov_add_file(o, comm, "input", in_path), e;
    cJSON *fs = cJSON_AddObjectToObject(o, "files");
    e = fmr_prov_add_file(fs, comm, "mask_file", open ? open->mask_file : NULL), err = err ? err : e;
    e = fmr_prov_add_runtime(o, comm), err = err ? err : e;
    if (err) {
        cJSON_Delete(o);
        return err;
    }
    return fmr_prov_print(o, json);
}

fmr_err fmr_prov_undersample_json(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                                  const fmr_mask_spec *spec, size_t acs_used, char **json)
{
    *json = NULL;
    cJSON *o = cJSON_CreateObject(), *m = o ? cJSON_AddObjectToObject(o, "mask") : NULL;
    if (!m) {
        cJSON_Delete(o);
        return fmr_error(FMR_ERR_NOMEM, "cannot build the provenance record");
    }
    cJSON_AddStringToObject(m, "type", spec ? fmr_mask_type_name(spec->type) : "from source");
    if (spec) {
        cJSON_AddNumberToObject(m, "acceleration", spec->accel);
        cJSON_AddNumberToObject(m, "acs_requested", (double)spec->acs); /* < 0: from center_fraction */
        cJSON_AddNumberToObject(m, "center_fraction", spec->center_fraction);
        cJSON_AddNumberToObject(m, "seed", (double)spec->seed);
        cJSON_AddNumberToObject(m, "acs_lines", (double)acs_used);
    }
    return finish_input_record(o, comm, in_path, open, json);
}

fmr_err fmr_prov_maps_json(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                           const fmr_espirit_opts *espirit, char **json)
{
    *json = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return fmr_error(FMR_ERR_NOMEM, "cannot build the provenance record");
    cJSON_AddStringToObject(o, "method", "espirit");
    fmr_prov_add_espirit(o, espirit);
    return finish_input_record(o, comm, in_path, open, json);
}

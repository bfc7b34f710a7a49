/* fmrecon maps: the coil maps the classical and learned methods use, written to a file so that
 * training (python/) and inference (--sens) see exactly the same sensitivities. Slices are dealt
 * to ranks; each writes its own slices of one collectively written file. */
#include <stdlib.h>
#include <string.h>

#include "fmrecon/calib.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"
#include "maps.h"
#include "recon/provenance.h"

fmr_err fmr_maps_write(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                       const fmr_espirit_opts *espirit, const char *out_path)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    fmr_dataset *ds = NULL;
    fmr_err err = fmr_dataset_open(in_path, open, &ds);
    fmr_err any = fmr_agree(comm, err);
    if (any) {
        fmr_dataset_close(&ds);
        return err ? err
                   : fmr_error(FMR_ERR_MPI, "%s: another rank could not open the file", in_path);
    }
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    fmr_method_params par;
    fmr_method_params_defaults(&par);
    if (espirit) par.espirit = *espirit;
    fmr_maps *maps = NULL;
    fmr_h5out *out = NULL;
    size_t z0, nz;
    fmr_partition_block(in->slices, rank, size, &z0, &nz);
    const size_t n = in->coils * in->h * in->w;
    fmr_cfloat *mine = NULL;
    err = fmr_h5out_create(comm, out_path, &out);
    if (err) {
        fmr_dataset_close(&ds);
        return err;
    }
    const size_t dims[4] = {in->slices, in->coils, in->h, in->w};
    err = fmr_h5out_add_dataset(out, "maps", FMR_C64, 4, dims);
    if (!err) err = fmr_h5out_attr_string(out, "maps", "axes", "slice,coil,readout,phase_encode");
    if (!err)
        err = fmr_h5out_attr_string(out, "maps", "method",
                                    "ESPIRiT on the time-averaged k-space of each slice");
    if (!err) err = fmr_h5out_attr_string(out, "maps", "source", in_path);
    /* the ESPIRiT settings on the dataset itself, so the maps carry them wherever they are copied */
    if (!err) err = fmr_h5out_attr_int(out, "maps", "espirit_kernel", par.espirit.kernel);
    if (!err) err = fmr_h5out_attr_int(out, "maps", "espirit_cal", par.espirit.cal);
    if (!err) err = fmr_h5out_attr_double(out, "maps", "espirit_threshold", par.espirit.threshold);
    if (!err) err = fmr_h5out_attr_double(out, "maps", "espirit_crop", par.espirit.crop);
    {
        char *pj = NULL; /* collective: every rank builds it (rank 0 hashes the source) */
        fmr_err e = fmr_prov_maps_json(comm, in_path, open, &par.espirit, &pj);
        if (!err) err = e;
        if (!err) err = fmr_h5out_attr_string(out, NULL, "parameters", pj);
        if (!err) err = fmr_h5out_attr_string(out, NULL, "fmrecon_version", fmr_version());
        free(pj);
    }
    if (!err) err = fmr_h5out_attr_geometry(out, fmr_dataset_get_geometry(ds));
    if (!err) err = fmr_alloc((void **)&mine, (nz ? nz : 1) * n * sizeof *mine, "coil maps");
    if (!err) err = fmr_maps_create(&maps, ds, &par);
    for (size_t z = 0; !err && z < nz; z++) {
        const fmr_cfloat *m;
        err = fmr_maps_get(maps, z0 + z, &m);
        if (!err)
            memcpy(mine + z * n, m, n * sizeof *m);
        else
            fmr_error_context(err, "slice %zu: ", z0 + z);
    }
    any = fmr_agree(comm, err);
    if (!any) {
        size_t lead[1024];
        size_t done = 0;
        /* slices are contiguous per rank: one block per slice */
        for (size_t z = 0; z < nz && z < 1024; z++)
            lead[z] = z0 + z, done++;
        err = done == nz ? fmr_h5out_write_blocks(out, "maps", nz, 1, lead, mine)
                         : fmr_error(FMR_ERR_ARG, "more than 1024 slices per rank");
    } else if (!err) {
        err = fmr_error(FMR_ERR_MPI, "another rank failed computing coil maps");
    }
    err = fmr_h5out_finish(&out, err);
    fmr_maps_destroy(&maps);
    fmr_free(mine);
    fmr_dataset_close(&ds);
    return err;
}

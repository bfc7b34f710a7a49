#include <stdlib.h>

#include "fmrecon/log.h"
#include "fmrecon/recon.h"

fmr_err fmr_item_loop_run(MPI_Comm comm, const fmr_item_loop *L)
{
    int size;
    MPI_Comm_size(comm, &size);
    const size_t n = L->frames * L->slices, batch = L->batch ? L->batch : 1;
    size_t first, count, rounds;
    int rank;
    MPI_Comm_rank(comm, &rank);
    const int groups = L->groups > 0 ? L->groups : size, group = L->groups > 0 ? L->group : rank;
    FMR_TRY(fmr_partition_rounds_groups(comm, n, batch, group, groups, &first, &count, &rounds));
    size_t *lead = malloc(2 * batch * sizeof *lead);
    fmr_err err = lead ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot allocate the item list");
    fmr_progress *prog = NULL;
    /* Rank 0 reports; its share times the ranks estimates the whole. */
    if (!err && L->label) err = fmr_progress_create(&prog, L->label, "items", count * (size_t)groups);
    size_t next = first;
    for (size_t r = 0; r < rounds; r++) {
        size_t nb = 0;
        while (!err && nb < batch && next < first + count) {
            /* slice-major: a rank's block covers as few slices as possible, so per-slice work
             * (coil calibration, operators) is done once per slice and rank */
            size_t z = next / L->frames, t = next % L->frames;
            err = L->compute(L->ctx, t, z, nb);
            if (err) {
                fmr_error_context(err, "frame %zu slice %zu: ", t, z);
                break;
            }
            lead[2 * nb] = t;
            lead[2 * nb + 1] = z;
            nb++;
            next++;
            fmr_progress_step(prog, (size_t)groups);
        }
        fmr_err e = L->flush(L->ctx, (err || L->group_rank) ? 0 : nb, lead);
        if (!err) err = e;
    }
    if (err) fmr_progress_cancel(&prog);
    else fmr_progress_finish(&prog);
    free(lead);
    return err;
}

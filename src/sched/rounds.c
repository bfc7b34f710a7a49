#include <stdlib.h>

#include "fmrecon/log.h"
#include "fmrecon/recon.h"

/* Dynamic schedule: an item counter on rank 0, advanced with MPI_Fetch_and_op by each group's
 * leader; the group learns the item by a broadcast. Items finish in any order and are written
 * independently, so a fast group simply takes more of them. */
static fmr_err dynamic_run(MPI_Comm comm, const fmr_item_loop *L)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    const long long n = (long long)(L->frames * L->slices);
    long long *counter = NULL;
    MPI_Win win;
    if (MPI_Win_allocate(rank == 0 ? (MPI_Aint)sizeof(long long) : 0, sizeof(long long),
                         MPI_INFO_NULL, comm, &counter, &win) != MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "cannot create the work counter window");
    if (rank == 0) *counter = 0;
    MPI_Barrier(comm);
    const int groups = L->groups > 0 ? L->groups : size;
    fmr_progress *prog = NULL;
    fmr_err err = L->label ? fmr_progress_create(&prog, L->label, "items", (size_t)n) : FMR_OK;
    int gsize = 1;
    if (L->group_comm != MPI_COMM_NULL) MPI_Comm_size(L->group_comm, &gsize);
    for (;;) {
        long long item = n, one = 1;
        int stop = err != FMR_OK;
        if (L->group_rank == 0 && !stop) {
            MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
            MPI_Fetch_and_op(&one, &item, MPI_LONG_LONG, 0, 0, MPI_SUM, win);
            MPI_Win_unlock(0, win);
        }
        if (gsize > 1) {
            long long msg[2] = {item, stop};
            MPI_Bcast(msg, 2, MPI_LONG_LONG, 0, L->group_comm);
            item = msg[0], stop = stop || msg[1];
        }
        if (stop || item >= n) break;
        const size_t z = (size_t)item / L->frames, t = (size_t)item % L->frames;
        err = L->compute(L->ctx, t, z, 0);
        if (err) {
            fmr_error_context(err, "frame %zu slice %zu: ", t, z);
            continue; /* the next pass tells the group to stop */
        }
        size_t lead[2] = {t, z};
        err = L->flush(L->ctx, L->group_rank ? 0 : 1, lead);
        fmr_progress_step(prog, (size_t)groups);
    }
    if (err)
        fmr_progress_cancel(&prog);
    else
        fmr_progress_finish(&prog);
    MPI_Win_free(&win);
    return err;
}

fmr_err fmr_item_loop_run(MPI_Comm comm, const fmr_item_loop *L)
{
    if (L->dynamic) return dynamic_run(comm, L);
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
    if (!err && L->label)
        err = fmr_progress_create(&prog, L->label, "items", count * (size_t)groups);
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
        /* Stop at the first error any rank saw: every rank leaves after the same round, so no rank
         * waits in a collective, and a failed file does not run its remaining (possibly huge)
         * number of empty rounds. One small reduction per round, next to a collective write. */
        int l = err != FMR_OK, g = 0;
        if (MPI_Allreduce(&l, &g, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS && !err)
            err = fmr_error(FMR_ERR_MPI, "MPI_Allreduce failed while agreeing on the round status");
        if (g) {
            if (!err) err = fmr_error(FMR_ERR_MPI, "another rank failed; stopping after round %zu", r);
            break;
        }
    }
    if (err)
        fmr_progress_cancel(&prog);
    else
        fmr_progress_finish(&prog);
    free(lead);
    return err;
}

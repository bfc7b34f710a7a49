#include "fmrecon/recon.h"

/* Block distribution: the first n % size ranks get one item more, so counts differ by at most 1. */
void fmr_partition_block(size_t n, int rank, int size, size_t *start, size_t *count)
{
    size_t r = (size_t)rank, p = (size_t)size, q = n / p, rem = n % p;
    *count = q + (r < rem ? 1 : 0);
    *start = r * q + (r < rem ? r : rem);
}

fmr_err fmr_partition_rounds(MPI_Comm comm, size_t n, size_t batch, size_t *start, size_t *count,
                             size_t *rounds)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    return fmr_partition_rounds_groups(comm, n, batch, rank, size, start, count, rounds);
}

fmr_err fmr_partition_rounds_groups(MPI_Comm comm, size_t n, size_t batch, int group, int groups, size_t *start,
                                    size_t *count, size_t *rounds)
{
    fmr_partition_block(n, group, groups, start, count);
    unsigned long long mine = *count, most = 0;
    if (MPI_Allreduce(&mine, &most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm) != MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "cannot agree on the number of write rounds");
    *rounds = batch ? (size_t)((most + batch - 1) / batch) : 0;
    return FMR_OK;
}

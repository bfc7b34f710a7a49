#include "fmrecon/recon.h"

/* Block distribution: the first n % size ranks get one item more, so counts differ by at most 1. */
void fmr_partition_block(size_t n, int rank, int size, size_t *start, size_t *count)
{
    size_t r = (size_t)rank, p = (size_t)size, q = n / p, rem = n % p;
    *count = q + (r < rem ? 1 : 0);
    *start = r * q + (r < rem ? r : rem);
}

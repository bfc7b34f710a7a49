/* The static item schedule stops at the first agreed error: after a failed item every rank leaves
 * after the same round, instead of joining one empty collective flush per remaining round (a file
 * with 10^12 items would otherwise never finish). Run on 1 and on 2 ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "fmrecon/recon.h"

typedef struct {
    size_t computed, flushes, fail_at; /* fail_at: local item index that fails (SIZE_MAX: none) */
} counts;

static fmr_err compute(void *c, size_t t, size_t z, size_t slot)
{
    (void)t, (void)z, (void)slot;
    counts *k = c;
    if (k->computed++ == k->fail_at) return fmr_error(FMR_ERR_VALUE, "item fails on purpose");
    return FMR_OK;
}

static fmr_err flush(void *c, size_t n, const size_t *lead)
{
    (void)n, (void)lead;
    counts *k = c;
    k->flushes++;
    /* stand-in for the collective write: every rank must be here the same number of times */
    MPI_Barrier(MPI_COMM_WORLD);
    return FMR_OK;
}

static void run(size_t items, size_t batch, int failing_rank, size_t fail_at, fmr_err *err, counts *k)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    *k = (counts){0, 0, rank == failing_rank ? fail_at : SIZE_MAX};
    fmr_item_loop L = {.frames = items, .slices = 1, .batch = batch, .group_comm = MPI_COMM_NULL,
                       .compute = compute, .flush = flush, .ctx = k};
    *err = fmr_item_loop_run(MPI_COMM_WORLD, &L);
}

static void test_no_error_runs_every_round(void **state)
{
    (void)state;
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    counts k;
    fmr_err err;
    run(40, 2, -1, 0, &err, &k);
    assert_int_equal(err, FMR_OK);
    assert_int_equal(k.computed, 40 / size);
    assert_int_equal(k.flushes, (40 / size + 1) / 2);
}

static void test_stops_after_first_failed_round(void **state)
{
    (void)state;
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    counts k;
    fmr_err err;
    /* 100000 items in batches of 1; the last rank's 3rd item (round 2) fails */
    run(100000, 1, size - 1, 2, &err, &k);
    assert_int_not_equal(err, FMR_OK);
    assert_int_equal(k.flushes, 3); /* rounds 0, 1 and the failing round 2: nothing after */
    assert_int_equal(k.computed, 3);
    if (rank == size - 1) assert_non_null(strstr(fmr_error_message(), "fails on purpose"));
    else assert_non_null(strstr(fmr_error_message(), "another rank failed"));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_error_runs_every_round),
        cmocka_unit_test(test_stops_after_first_failed_round),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return r;
}

#include "fmrecon/sched.h"

fmr_err fmr_agree(MPI_Comm comm, fmr_err local)
{
    int l = (int)local, g = 0;
    if (MPI_Allreduce(&l, &g, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "MPI_Allreduce failed while the ranks agreed on their status");
    return (fmr_err)g;
}

/* Scheduling across ranks: the collective helpers every parallel step uses (src/sched/). The work
 * partition and the item loop are declared in fmrecon/recon.h for now. */
#ifndef FMRECON_SCHED_H
#define FMRECON_SCHED_H

#include <mpi.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* Collective over comm: all ranks agree whether any of them failed, before a step that needs all
 * of them (a collective file creation, a shared product). Returns FMR_OK on every rank when every
 * local is FMR_OK, else the same error code on every rank (the largest code any rank passed).
 * Only the failing ranks hold a message; the others get the code alone and usually set their
 * own ("another rank ..."). FMR_ERR_MPI (with a message) if the reduction itself fails. */
fmr_err fmr_agree(MPI_Comm comm, fmr_err local);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

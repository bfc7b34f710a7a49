#ifndef FMR_PETSC_UTIL_H
#define FMR_PETSC_UTIL_H

#include <petscsys.h>

#include "fmrecon/error.h"

/* An fmr_err carrying PETSc's message for a failed call. */
fmr_err fmr_petsc_error(PetscErrorCode code, const char *what);

/* Evaluate a PETSc call; on failure record it and jump to the function's cleanup label. */
#define FMR_PETSC(call, what)                                                                      \
    do {                                                                                           \
        PetscErrorCode fmr_pe_ = (call);                                                           \
        if (fmr_pe_) {                                                                             \
            err = fmr_petsc_error(fmr_pe_, what);                                                  \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

#endif

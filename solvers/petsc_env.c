/* PETSc start-up and error translation. PETSc's default handlers print tracebacks and may abort;
 * fmrecon's contract is one line and a clean exit, so PETSc's message is captured instead. */
#include <petscsys.h>
#include <stdio.h>

#include "fmrecon/dc.h"
#include "petsc_util.h"

#if !defined(PETSC_USE_COMPLEX)
#error "fmrecon needs PETSc built with complex scalars (Debian: libpetsc-complex-dev)"
#endif

static _Thread_local char petsc_msg_[512];
static int initialised_by_us_ = 0;

static PetscErrorCode capture(MPI_Comm comm, int line, const char *fun, const char *file,
                              PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
    (void)comm, (void)line, (void)file, (void)ctx;
    /* The first (innermost) report carries PETSc's own explanation. */
    if (p == PETSC_ERROR_INITIAL)
        snprintf(petsc_msg_, sizeof petsc_msg_, "%s (in %s)", mess ? mess : "", fun);
    return n;
}

fmr_err fmr_petsc_error(PetscErrorCode code, const char *what)
{
    const char *text = NULL;
    PetscErrorMessage(code, &text, NULL);
    return fmr_error(FMR_ERR_LIB, "%s: PETSc error %d: %s%s%s", what, (int)code, text ? text : "",
                     petsc_msg_[0] ? ": " : "", petsc_msg_);
}

fmr_err fmr_petsc_init(int argc, char **argv)
{
    PetscBool done;
    PetscInitialized(&done);
    if (done) return FMR_OK;
    PetscErrorCode ierr = PetscInitialize(&argc, &argv, NULL, NULL);
    if (ierr) return fmr_error(FMR_ERR_LIB, "PETSc failed to initialise (error %d)", (int)ierr);
    initialised_by_us_ = 1;
    PetscPushErrorHandler(capture, NULL);
    /* fmrecon reports crashes itself; PETSc's handler would turn SIGSEGV into its own abort. */
    PetscPopSignalHandler();
    return FMR_OK;
}

void fmr_petsc_finalize(void)
{
    if (initialised_by_us_) PetscFinalize();
    initialised_by_us_ = 0;
}

int fmr_petsc_option_int(const char *prefix, const char *option, int *value)
{
    PetscBool set = PETSC_FALSE, up = PETSC_FALSE;
    PetscInitialized(&up);
    if (!up) return 0;
    PetscInt v = 0;
    if (PetscOptionsGetInt(NULL, prefix, option, &v, &set) || !set) return 0;
    if (value) *value = (int)v;
    return 1;
}

/* Error codes and messages. Every fmr_ function returns an fmr_err; on failure the thread's last
 * message says what went wrong and where (file, dataset, frame, slice), ready to print as one line. */
#ifndef FMRECON_ERROR_H
#define FMRECON_ERROR_H

#include <stdarg.h>

#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef enum fmr_err {
    FMR_OK = 0,
    FMR_ERR_ARG,      /* invalid argument or option */
    FMR_ERR_IO,       /* file cannot be opened, read or written */
    FMR_ERR_FORMAT,   /* file is readable but not what we expect */
    FMR_ERR_SHAPE,    /* dimensions do not fit */
    FMR_ERR_VALUE,    /* NaN/Inf or out-of-range values */
    FMR_ERR_NOMEM,    /* allocation failed */
    FMR_ERR_LIB,      /* a dependency (FFTW, HDF5, PETSc, oneDNN) failed */
    FMR_ERR_MPI,      /* MPI failure or another rank failed */
    FMR_ERR_INTERNAL, /* a bug in fmrecon */
    FMR_ERR_STOPPED,  /* stopped on request (a signal) with work left: exit status 3 */
} fmr_err;

/* Short name of a code, e.g. "format error". */
const char *fmr_err_name(fmr_err code);

/* The message of the last error recorded on this thread ("" if none). */
const char *fmr_error_message(void);

/* Source location (file:line function) where the last error was first recorded; for --verbose. */
const char *fmr_error_origin(void);

/* Records an error and returns code, so callers can write `return fmr_error(...)`. */
fmr_err fmr_error_at(fmr_err code, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define fmr_error(code, ...) fmr_error_at((code), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Prepends context ("frame 3 slice 1: ") to the current message while the error propagates up.
 * Returns code unchanged. */
fmr_err fmr_error_context(fmr_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void fmr_error_clear(void);

/* Propagate: evaluate an fmr_ call and return its error from the enclosing function. */
#define FMR_TRY(expr)                                                                              \
    do {                                                                                           \
        fmr_err fmr_try_err_ = (expr);                                                             \
        if (fmr_try_err_ != FMR_OK) return fmr_try_err_;                                           \
    } while (0)

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

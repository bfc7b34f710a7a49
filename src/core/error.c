#include "fmrecon/error.h"

#include <stdio.h>
#include <string.h>

/* Thread-local so OpenMP regions and helper threads never overwrite each other's messages. */
static _Thread_local char msg_[1024];
static _Thread_local char origin_[256];

const char *fmr_err_name(fmr_err code)
{
    switch (code) {
    case FMR_OK: return "ok";
    case FMR_ERR_ARG: return "invalid argument";
    case FMR_ERR_IO: return "I/O error";
    case FMR_ERR_FORMAT: return "format error";
    case FMR_ERR_SHAPE: return "shape error";
    case FMR_ERR_VALUE: return "invalid value";
    case FMR_ERR_NOMEM: return "out of memory";
    case FMR_ERR_LIB: return "library error";
    case FMR_ERR_MPI: return "MPI error";
    case FMR_ERR_INTERNAL: return "internal error";
    case FMR_ERR_STOPPED: return "stopped";
    }
    return "unknown error";
}

const char *fmr_error_message(void)
{
    return msg_;
}

const char *fmr_error_origin(void)
{
    return origin_;
}

fmr_err fmr_error_at(fmr_err code, const char *file, int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg_, sizeof msg_, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    snprintf(origin_, sizeof origin_, "%s:%d %s", base ? base + 1 : file, line, func);
    return code;
}

fmr_err fmr_error_context(fmr_err code, const char *fmt, ...)
{
    char prefix[512], old[sizeof msg_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, msg_, sizeof old);
    /* Truncation of an over-long message is acceptable; keep the prefix whole. */
    size_t lp = strlen(prefix);
    if (lp >= sizeof msg_) lp = sizeof msg_ - 1;
    memcpy(msg_, prefix, lp);
    size_t lo = strlen(old);
    if (lo > sizeof msg_ - 1 - lp) lo = sizeof msg_ - 1 - lp;
    memcpy(msg_ + lp, old, lo);
    msg_[lp + lo] = '\0';
    return code;
}

void fmr_error_clear(void)
{
    msg_[0] = '\0';
    origin_[0] = '\0';
}

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

fmr_err fmr_opt_int(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end)
        return fmr_error(FMR_ERR_ARG, "%s: '%s' is not a whole number", opt, text);
    if (v < lo || v > hi)
        return fmr_error(FMR_ERR_ARG, "%s: %ld is outside %ld..%ld", opt, v, lo, hi);
    *out = v;
    return FMR_OK;
}

fmr_err fmr_opt_size(const char *opt, const char *text, size_t lo, size_t hi, size_t *out)
{
    long v = 0;
    FMR_TRY(fmr_opt_int(opt, text, (long)lo, (long)hi, &v));
    *out = (size_t)v;
    return FMR_OK;
}

fmr_err fmr_opt_double(const char *opt, const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return fmr_error(FMR_ERR_ARG, "%s: '%s' is not a finite number", opt, text);
    if (v < lo || v > hi) return fmr_error(FMR_ERR_ARG, "%s: %g is outside %g..%g", opt, v, lo, hi);
    *out = v;
    return FMR_OK;
}

fmr_err fmr_opt_matrix(const char *opt, const char *text, size_t *h, size_t *w)
{
    char a[32], b[32];
    const char *x = strchr(text, 'x');
    if (!x || (size_t)(x - text) >= sizeof a || strlen(x + 1) >= sizeof b)
        return fmr_error(FMR_ERR_ARG, "%s: '%s' is not of the form HxW (e.g. 192x160)", opt, text);
    memcpy(a, text, (size_t)(x - text));
    a[x - text] = '\0';
    strcpy(b, x + 1);
    FMR_TRY(fmr_opt_size(opt, a, 16, 4096, h));
    return fmr_opt_size(opt, b, 16, 4096, w);
}

fmr_err fmr_opt_bad(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return fmr_error(FMR_ERR_ARG, "option '%s' needs a value (see 'fmrecon %s --help')", arg, cmd);
    if (optopt)
        return fmr_error(FMR_ERR_ARG, "unknown option '-%c' (see 'fmrecon %s --help')", optopt, cmd);
    return fmr_error(FMR_ERR_ARG, "unknown option '%s' (see 'fmrecon %s --help')", arg, cmd);
}

void fmr_cli_help(const fmr_cli *cli, const char *text)
{
    if (cli->rank == 0) fputs(text, stdout);
}

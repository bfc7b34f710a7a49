#include "core/limits.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static size_t parse_budget(const char *s)
{
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return 0;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0, end++; break;
    case 'M': mul = 1048576.0, end++; break;
    case 'G': mul = 1073741824.0, end++; break;
    case 'T': mul = 1099511627776.0, end++; break;
    case '\0': break;
    default: return 0;
    }
    if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I') end++;
    if (*end) return 0;
    v *= mul;
    return v >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v;
}

size_t fmr_mem_budget(void)
{
    size_t b = parse_budget(getenv("FMR_MEM_BUDGET"));
    if (b) return b;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0) return (size_t)4 << 30; /* unknown: 4 GiB */
    return (size_t)pages / 2 * (size_t)psize;
}

const char *fmr_bytes_str(double bytes, char *buf, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i = 0;
    while (bytes >= 1024.0 && i < 6) bytes /= 1024.0, i++;
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
    return buf;
}

fmr_err fmr_limit_bytes(const char *path, const char *what, size_t elem, int n, const size_t *f,
                        size_t *bytes)
{
    /* in double as well, so the message can say how much was asked for even past SIZE_MAX */
    double want = (double)elem;
    size_t p = elem;
    int overflow = 0;
    for (int i = 0; i < n; i++) {
        want *= (double)f[i];
        if (f[i] && p > SIZE_MAX / f[i]) overflow = 1;
        else p *= f[i];
    }
    const size_t budget = fmr_mem_budget();
    if (overflow || p > budget) {
        char a[32], b[32];
        return fmr_error(FMR_ERR_NOMEM,
                         "%s%s%s needs %s, more than the memory budget of %s (header sizes too "
                         "large for this machine, or a corrupt file; FMR_MEM_BUDGET raises the budget)",
                         path ? path : "", path ? ": " : "", what, fmr_bytes_str(want, a, sizeof a),
                         fmr_bytes_str((double)budget, b, sizeof b));
    }
    if (bytes) *bytes = p;
    return FMR_OK;
}

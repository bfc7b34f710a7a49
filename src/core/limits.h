/* Resource limits against hostile or broken input: a memory budget that every size read from a
 * file header is checked against BEFORE anything is allocated, so a tiny file cannot ask for
 * gigabytes. See docs/reliability.md, "Input and output safety". */
#ifndef FMR_CORE_LIMITS_H
#define FMR_CORE_LIMITS_H

#include <stddef.h>

#include "fmrecon/error.h"

/* The budget in bytes: FMR_MEM_BUDGET (bytes, or with a K/M/G/T suffix, powers of 1024) if set and
 * valid, else half the physical memory (a node's ranks share it; overcommit means an oversized
 * malloc would not fail but the kernel would kill the job later). */
size_t fmr_mem_budget(void);

/* "3.2 GiB"-style rendering of a byte count into buf (returns buf). */
const char *fmr_bytes_str(double bytes, char *buf, size_t n);

/* Product of n factors times elem, overflow-checked: FMR_OK and *bytes, or an error naming
 * path (may be NULL) and what when the product overflows or exceeds the budget. */
fmr_err fmr_limit_bytes(const char *path, const char *what, size_t elem, int n, const size_t *factors,
                        size_t *bytes);

#endif

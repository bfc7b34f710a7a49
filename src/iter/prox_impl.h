/* The proximal object's parts, shared by the files in src/iter that make them. */
#ifndef FMR_PROX_IMPL_H
#define FMR_PROX_IMPL_H

#include "fmrecon/iter.h"

typedef struct fmr_prox_def {
    const char *name;
    size_t n;
    fmr_err (*apply)(void *data, double alpha, const fmr_cfloat *v, fmr_cfloat *z);
    void (*free_data)(void *data);
} fmr_prox_def;

fmr_err fmr_prox_create(fmr_prox **p, const fmr_prox_def *def, void *data);
/* v . max(0, 1 - tau/|v|) */
void fmr_soft_threshold(const fmr_cfloat *v, fmr_cfloat *z, size_t n, float tau);

#endif

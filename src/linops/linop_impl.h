/* What operator implementations inside the library share beyond the public API. */
#ifndef FMR_LINOP_IMPL_H
#define FMR_LINOP_IMPL_H

#include "fmrecon/linop.h"

typedef fmr_err (*fmr_linop_dot_fn)(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b,
                                    double _Complex *out);

/* <a, b> on op's codomain (double precision; summed over ranks where the codomain is split). */
fmr_err fmr_linop_dot_codomain(const fmr_linop *op, const fmr_cfloat *a, const fmr_cfloat *b,
                               double _Complex *out);
void *fmr_linop_data(const fmr_linop *op);

#endif

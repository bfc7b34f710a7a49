#include <string.h>

#include "fmrecon/recon.h"

extern const fmr_method_ops fmr_method_zf, fmr_method_sense, fmr_method_cs, fmr_method_unrolled;

static const fmr_method_ops *const methods_[] = {&fmr_method_zf, &fmr_method_sense, &fmr_method_cs,
                                                 &fmr_method_unrolled, NULL};

void fmr_method_params_defaults(fmr_method_params *p)
{
    memset(p, 0, sizeof *p);
    p->lambda = 0.01;
    p->rtol = 1e-6;
    p->max_it = 50;
    fmr_espirit_defaults(&p->espirit);
    p->rho = FMR_CS_RHO_AUTO;
    p->lambda_t = 0.01;
    p->lambda_s = 0.005;
    p->admm_iters = 30;
}

void fmr_recon_options_defaults(fmr_recon_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = "zf";
    o->batch = 8;
    fmr_method_params_defaults(&o->params);
}

const fmr_method_ops *const *fmr_method_list(void)
{
    return methods_;
}

const fmr_method_ops *fmr_method_find(const char *name)
{
    for (int i = 0; methods_[i]; i++)
        if (!strcmp(methods_[i]->name, name)) return methods_[i];
    return NULL;
}

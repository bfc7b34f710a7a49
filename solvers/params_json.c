/* Every knob of fmr_method_params as recorded in an output's `parameters` (docs/formats.md,
 * "Provenance"). One line per field: a new parameter is recorded by adding its line here. */
#include "recon/provenance.h"

#define NUM(key, v) cJSON_AddNumberToObject(j, key, (double)(v))
#define STR(key, v) ((v) ? cJSON_AddStringToObject(j, key, (v)) : cJSON_AddNullToObject(j, key))

void fmr_prov_add_method_params(cJSON *o, const fmr_method_params *p)
{
    cJSON *j = cJSON_AddObjectToObject(o, "method_options");
    if (!j) return;
    NUM("lambda", p->lambda);          /* --lambda */
    NUM("cg_iters", p->max_it);        /* --cg-iters */
    NUM("cg_rtol", p->rtol);           /* --cg-rtol */
    NUM("lambda_t", p->lambda_t);      /* --lambda-t */
    NUM("lambda_s", p->lambda_s);      /* --lambda-s */
    if (p->rho == FMR_CS_RHO_AUTO) /* resolved by frame count; the value used is in method_parameters */
        cJSON_AddStringToObject(j, "rho", "auto");
    else
        NUM("rho", p->rho);            /* --rho */
    NUM("admm_iters", p->admm_iters);  /* --admm-iters */
    STR("reg", p->reg);                /* --reg (NULL: the defaults; the terms used: method_parameters) */
    STR("sens", p->sens_file);         /* --sens */
    STR("model", p->model_file);       /* --model */
    STR("weights", p->weights_file);   /* --weights */
    fmr_prov_add_espirit(j, &p->espirit); /* --espirit-* */
    cJSON_AddStringToObject(j, "precision", p->bf16 ? "bf16" : "f32"); /* --precision, as asked */
}

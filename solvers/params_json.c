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
    NUM("rho", p->rho);                /* --rho */
    NUM("admm_iters", p->admm_iters);  /* --admm-iters */
    STR("sens", p->sens_file);         /* --sens */
    STR("model", p->model_file);       /* --model */
    STR("weights", p->weights_file);   /* --weights */
    fmr_prov_add_espirit(j, &p->espirit); /* --espirit-* */
}

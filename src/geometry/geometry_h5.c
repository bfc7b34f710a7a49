/* The geometry as the root attribute 'geometry' (JSON) of an fmrecon HDF5 output. */
#include <stdlib.h>

#include "fmrecon/geometry.h"
#include "fmrecon/io.h"

fmr_err fmr_h5out_attr_geometry(fmr_h5out *o, const fmr_geometry *g)
{
    char *json = NULL;
    /* Collective: every rank makes the attribute call, even after a formatting failure. */
    fmr_err e1 = fmr_geometry_to_json(g, &json);
    fmr_err e2 = fmr_h5out_attr_string(o, NULL, "geometry", json ? json : "");
    free(json);
    return e1 ? e1 : e2;
}

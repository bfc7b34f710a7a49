/* Coil sensitivities per slice for the methods that need them: read from --sens FILE, or ESPIRiT
 * on the slice's time-averaged k-space (so k-t masks whose ACS is undersampled per frame still
 * calibrate). Computed on first use and kept for the slice the rank is working on. */
#ifndef FMR_MAPS_H
#define FMR_MAPS_H

#include "fmrecon/io.h"
#include "fmrecon/recon.h"

typedef struct fmr_maps fmr_maps;

fmr_err fmr_maps_create(fmr_maps **m, fmr_dataset *ds, const fmr_method_params *par);
void fmr_maps_destroy(fmr_maps **m);
/* coils x h x w maps of a slice (valid until the next call). */
fmr_err fmr_maps_get(fmr_maps *m, size_t slice, const fmr_cfloat **maps);

#endif

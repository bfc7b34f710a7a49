/* Library-internal geometry helpers. */
#ifndef FMR_GEOMETRY_IMPL_H
#define FMR_GEOMETRY_IMPL_H

#include "fmrecon/geometry.h"
#include "fmrecon/io.h"

/* Reads the geometry of an opened dataset into ds->geo (fmrecon 'geometry' attribute, else the
 * ISMRMRD header and acquisition headers, else defaults), then applies opt's overrides. */
fmr_err fmr_dataset_geometry_init(fmr_dataset *ds, const fmr_open_options *opt);

#endif

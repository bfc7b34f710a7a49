/* fmrecon: accelerated cardiac cine MRI reconstruction on CPU clusters. Umbrella header. */
#ifndef FMRECON_H
#define FMRECON_H

#include "fmrecon/error.h"
#include "fmrecon/array.h"
#include "fmrecon/log.h"
#include "fmrecon/fft.h"
#include "fmrecon/sense.h"
#include "fmrecon/io.h"
#include "fmrecon/mask.h"
#include "fmrecon/metrics.h"
#include "fmrecon/sim.h"
#include "fmrecon/recon.h"
#include "fmrecon/plan.h"

#endif

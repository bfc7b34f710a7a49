/* fmrecon's own documented random generator (public: the simulator's and masks' seeds are part of
 * the API, and programs reproduce them): xoshiro256** seeded by splitmix64. Reproducible across
 * machines and compilers for a given seed (simulator, masks); not meant to match numpy or MATLAB. */
#ifndef FMRECON_RNG_H
#define FMRECON_RNG_H

#include <stdint.h>

#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_rng {
    uint64_t s[4];
} fmr_rng;

void fmr_rng_seed(fmr_rng *r, uint64_t seed);
uint64_t fmr_rng_next(fmr_rng *r);
double fmr_rng_uniform(fmr_rng *r); /* [0, 1) with 53 random bits */
double fmr_rng_normal(fmr_rng *r);  /* standard normal (Box-Muller, no cached second value) */

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

/* Undersampling masks by the published rules (fastMRI fastmri/data/subsample.py; CMRxRecon
 * CMRxReconMaskGeneration). Randomness comes from fmrecon's documented generator, so masks are
 * reproducible for a seed but not bit-identical to numpy's or MATLAB's streams. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/rng.h"
#include "fmrecon/mask.h"

static const struct {
    const char *name;
    fmr_mask_type type;
} names[] = {{"random", FMR_MASK_RANDOM},         {"equispaced", FMR_MASK_EQUISPACED},
             {"equispaced_fraction", FMR_MASK_EQUISPACED_FRACTION},
             {"uniform", FMR_MASK_UNIFORM},       {"ktuniform", FMR_MASK_KTUNIFORM},
             {"ktgaussian", FMR_MASK_KTGAUSSIAN}};

fmr_err fmr_mask_parse_type(const char *name, fmr_mask_type *t)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) return *t = names[i].type, FMR_OK;
    return fmr_error(FMR_ERR_ARG,
                     "unknown mask type '%s' (random, equispaced, equispaced_fraction, uniform, "
                     "ktuniform, ktgaussian)",
                     name);
}

const char *fmr_mask_type_name(fmr_mask_type t)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].type == t) return names[i].name;
    return "?";
}

int fmr_mask_is_kt(fmr_mask_type t)
{
    return t == FMR_MASK_KTUNIFORM || t == FMR_MASK_KTGAUSSIAN;
}

static int is_fastmri(fmr_mask_type t)
{
    return t == FMR_MASK_RANDOM || t == FMR_MASK_EQUISPACED || t == FMR_MASK_EQUISPACED_FRACTION;
}

/* numpy's randint(0, high): uniform integer in [0, high) */
static long randint(fmr_rng *r, long high)
{
    return high <= 1 ? 0 : (long)(fmr_rng_uniform(r) * (double)high);
}

/* fastMRI: pad = (n - n_low + 1) // 2, mask[pad : pad + n_low] = 1 */
static void centre_fastmri(size_t w, size_t n_low, float *m)
{
    size_t pad = (w - n_low + 1) / 2;
    for (size_t c = pad; c < pad + n_low; c++) m[c] = 1.0f;
}

/* CMRxRecon zpad: first ACS column floor(w/2) - floor(acs/2) */
static void centre_cmrx(size_t w, size_t acs, float *m)
{
    size_t s = w / 2 - acs / 2;
    for (size_t c = s; c < s + acs; c++) m[c] = 1.0f;
}

static fmr_err fastmri_mask(const fmr_mask_spec *sp, size_t w, size_t n_low, fmr_rng *r, float *m)
{
    const double R = sp->accel, n = (double)w;
    memset(m, 0, w * sizeof *m);
    if (sp->type == FMR_MASK_RANDOM) {
        double prob = (n / R - (double)n_low) / (n - (double)n_low);
        for (size_t c = 0; c < w; c++) m[c] = fmr_rng_uniform(r) < prob ? 1.0f : 0.0f;
    } else if (sp->type == FMR_MASK_EQUISPACED) {
        /* mask[offset::R] with R used as a step; fastMRI passes an integer acceleration here */
        long step = lrint(R), off = randint(r, step);
        for (long c = off; c < (long)w; c += step) m[c] = 1.0f;
    } else {
        double adj = R * ((double)n_low - n) / ((double)n_low * R - n);
        if (!(adj > 0) || !isfinite(adj))
            return fmr_error(FMR_ERR_ARG,
                             "equispaced_fraction: R = %g with %zu centre lines of %zu leaves no "
                             "outer lines to sample",
                             R, n_low, w);
        long off = randint(r, lrint(adj));
        for (double x = (double)off; x < n - 1; x += adj) {
            long c = lrint(x); /* np.around: round half to even, as rint */
            if (c >= 0 && c < (long)w) m[c] = 1.0f;
        }
    }
    centre_fastmri(w, n_low, m);
    return FMR_OK;
}

static void kt_gaussian(size_t w, size_t acs, double R, fmr_rng *r, float *m, double *weight)
{
    /* tr = round(w / R) lines per frame drawn without replacement from
     * p(c) ~ 0.1 + a/(1 - a + 1e-10) exp(-(c - w/2)^2 / s^2), s = w/5, a = 0.2; ACS on top. */
    const double a = 0.2, s = (double)w / 5.0;
    memset(m, 0, w * sizeof *m);
    centre_cmrx(w, acs, m);
    size_t want = (size_t)lrint((double)w / R), avail = 0;
    double total = 0;
    for (size_t c = 0; c < w; c++) {
        double d = (double)c - (double)(w / 2);
        weight[c] = m[c] ? 0.0 : 0.1 + a / (1.0 - a + 1e-10) * exp(-d * d / (s * s));
        total += weight[c];
        avail += m[c] == 0.0f;
    }
    if (want > avail) want = avail;
    for (size_t k = 0; k < want; k++) {
        double u = fmr_rng_uniform(r) * total, acc = 0;
        size_t pick = w;
        for (size_t c = 0; c < w; c++) {
            if (weight[c] <= 0) continue;
            acc += weight[c];
            pick = c;
            if (acc > u) break;
        }
        m[pick] = 1.0f;
        total -= weight[pick];
        weight[pick] = 0;
    }
}

fmr_err fmr_mask_generate(const fmr_mask_spec *sp, size_t w, size_t frames, float *mask,
                          size_t *acs_used)
{
    if (!(sp->accel >= 1.0) || !isfinite(sp->accel))
        return fmr_error(FMR_ERR_ARG, "acceleration must be a number >= 1, got %g", sp->accel);
    if (w == 0 || frames == 0) return fmr_error(FMR_ERR_ARG, "mask of zero size");
    size_t acs;
    if (sp->acs >= 0) {
        acs = (size_t)sp->acs;
    } else if (is_fastmri(sp->type)) {
        double cf = sp->center_fraction > 0 ? sp->center_fraction : (sp->accel < 8 ? 0.08 : 0.04);
        if (cf >= 1.0) return fmr_error(FMR_ERR_ARG, "centre fraction %g must be < 1", cf);
        acs = (size_t)lrint((double)w * cf);
    } else {
        acs = 24; /* CMRxRecon 2023 cine; the 2024 challenge used 16 */
    }
    if (acs > w)
        return fmr_error(FMR_ERR_ARG, "ACS of %zu lines is wider than the %zu phase-encode lines", acs, w);
    if (is_fastmri(sp->type) && sp->type != FMR_MASK_EQUISPACED && acs >= w)
        return fmr_error(FMR_ERR_ARG, "ACS of %zu lines leaves nothing to undersample", acs);
    if (acs_used) *acs_used = acs;
    fmr_rng r;
    fmr_rng_seed(&r, sp->seed);
    const long R = lrint(sp->accel);
    if (!fmr_mask_is_kt(sp->type)) {
        if (sp->type == FMR_MASK_UNIFORM) {
            if (fabs(sp->accel - (double)R) > 1e-9)
                return fmr_error(FMR_ERR_ARG, "uniform masks need a whole acceleration, got %g", sp->accel);
            FMR_TRY(fmr_mask_uniform(w, (int)R, acs, mask));
        } else {
            FMR_TRY(fastmri_mask(sp, w, acs, &r, mask));
        }
        for (size_t t = 1; t < frames; t++) memcpy(mask + t * w, mask, w * sizeof *mask);
        return FMR_OK;
    }
    if (fabs(sp->accel - (double)R) > 1e-9 && sp->type == FMR_MASK_KTUNIFORM)
        return fmr_error(FMR_ERR_ARG, "ktuniform masks need a whole acceleration, got %g", sp->accel);
    double *weight = malloc(w * sizeof *weight);
    if (!weight) return fmr_error(FMR_ERR_NOMEM, "cannot allocate mask weights");
    for (size_t t = 0; t < frames; t++) {
        float *m = mask + t * w;
        if (sp->type == FMR_MASK_KTUNIFORM) {
            /* a sheared lattice: frame t samples the lines c = t (mod R) */
            for (size_t c = 0; c < w; c++) m[c] = (c % (size_t)R) == (t % (size_t)R) ? 1.0f : 0.0f;
            centre_cmrx(w, acs, m);
        } else {
            kt_gaussian(w, acs, sp->accel, &r, m, weight);
        }
    }
    free(weight);
    return FMR_OK;
}

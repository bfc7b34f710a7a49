/* Beating-heart phantom. Geometry is in normalised coordinates u (columns) and v (rows) spanning
 * [-1, 1] over the field of view; a subject's seed varies heart size, position, heart rate and
 * tissue contrast. The myocardium keeps its area over the cycle (r_epi^2 - r_endo^2 constant), so
 * the wall thickens as the blood pool shrinks in systole, as real myocardium (nearly
 * incompressible) does. */
#include <math.h>

#include "../core/rng.h"
#include "fmrecon/sim.h"

void fmr_sim_defaults(fmr_sim_params *p)
{
    p->frames = 12;
    p->slices = 2;
    p->coils = 8;
    p->h = 192;
    p->w = 160;
    p->snr = 40.0;
    p->seed = 1;
}

fmr_err fmr_sim_check(const fmr_sim_params *p)
{
    if (!p->frames || !p->slices || !p->coils)
        return fmr_error(FMR_ERR_ARG, "simulation needs at least one frame, slice and coil");
    if (p->h < 16 || p->w < 16 || p->h > 4096 || p->w > 4096)
        return fmr_error(FMR_ERR_ARG, "simulation matrix %zux%zu outside 16..4096", p->h, p->w);
    if (p->coils > 128) return fmr_error(FMR_ERR_ARG, "simulation supports at most 128 coils");
    if (!(p->snr > 0) || !isfinite(p->snr))
        return fmr_error(FMR_ERR_ARG, "SNR must be a positive number, got %g", p->snr);
    return FMR_OK;
}

typedef struct {
    double cx, cy;           /* LV centre */
    double r_endo, myo_area; /* end-diastolic endocardial radius; myocardial area / pi */
    double contraction;      /* fractional radius change in systole */
    double systole;          /* fraction of the cycle to end-systole */
    double blood, myo, muscle, fat, lung, rv_blood;
    double phase0, phx, phy;
} anatomy;

static void subject(const fmr_sim_params *p, anatomy *a)
{
    fmr_rng r;
    fmr_rng_seed(&r, p->seed * 0x9E37u + 17u);
    a->cx = 0.08 + 0.06 * (fmr_rng_uniform(&r) - 0.5);
    a->cy = -0.05 + 0.06 * (fmr_rng_uniform(&r) - 0.5);
    a->r_endo = 0.16 * (0.9 + 0.2 * fmr_rng_uniform(&r));
    double wall = 0.055 * (0.85 + 0.3 * fmr_rng_uniform(&r));
    a->myo_area = (a->r_endo + wall) * (a->r_endo + wall) - a->r_endo * a->r_endo;
    a->contraction = 0.30 + 0.1 * fmr_rng_uniform(&r);
    a->systole = 0.30 + 0.1 * fmr_rng_uniform(&r); /* shorter at higher heart rates */
    a->blood = 1.0;
    a->rv_blood = 0.9 + 0.1 * fmr_rng_uniform(&r);
    a->myo = 0.25 + 0.1 * fmr_rng_uniform(&r);
    a->muscle = 0.30 + 0.1 * fmr_rng_uniform(&r);
    a->fat = 0.75 + 0.15 * fmr_rng_uniform(&r);
    a->lung = 0.04;
    a->phase0 = 2.0 * M_PI * fmr_rng_uniform(&r);
    a->phx = 0.8 * (fmr_rng_uniform(&r) - 0.5);
    a->phy = 0.8 * (fmr_rng_uniform(&r) - 0.5);
}

/* 0 at end-diastole, 1 at end-systole: smooth contraction then slower relaxation. */
static double contraction_curve(double t, double systole)
{
    if (t < systole) return 0.5 * (1.0 - cos(M_PI * t / systole));
    return 0.5 * (1.0 + cos(M_PI * (t - systole) / (1.0 - systole)));
}

static int in_ellipse(double u, double v, double cx, double cy, double ru, double rv)
{
    double du = (u - cx) / ru, dv = (v - cy) / rv;
    return du * du + dv * dv <= 1.0;
}

fmr_err fmr_sim_image(const fmr_sim_params *p, size_t frame, size_t slice, fmr_cfloat *img)
{
    FMR_TRY(fmr_sim_check(p));
    anatomy a;
    subject(p, &a);
    double t = (double)frame / (double)p->frames;
    double c = contraction_curve(t, a.systole);
    /* Slices run base to apex: the ventricle narrows towards the apex. */
    double zs = p->slices > 1 ? (double)slice / (double)(p->slices - 1) : 0.0;
    double re = a.r_endo * (1.0 - 0.25 * zs) * (1.0 - a.contraction * c);
    double rp = sqrt(re * re + a.myo_area * (1.0 - 0.3 * zs));
    double rv_r = 1.45 * rp * (1.0 - 0.2 * c), rv_cx = a.cx - 0.9 * rp, rv_cy = a.cy - 0.1 * rp;
    /* Square pixels: normalise both axes by the larger matrix size. */
    double sc = (double)(p->h > p->w ? p->h : p->w);
    for (size_t y = 0; y < p->h; y++) {
        double v = (2.0 * (double)y - (double)p->h) / sc;
        for (size_t x = 0; x < p->w; x++) {
            double u = (2.0 * (double)x - (double)p->w) / sc;
            double m = 0.0;
            if (in_ellipse(u, v, 0, 0, 0.80, 0.68)) m = a.fat;
            if (in_ellipse(u, v, 0, 0, 0.75, 0.63)) m = a.muscle;
            if (in_ellipse(u, v, -0.42, -0.05, 0.22, 0.40) || in_ellipse(u, v, 0.45, -0.05, 0.20, 0.38))
                m = a.lung;
            double du = u - a.cx, dv = v - a.cy, rr = sqrt(du * du + dv * dv);
            double dru = u - rv_cx, drv = v - rv_cy;
            if (sqrt(dru * dru + drv * drv) < rv_r && rr > rp) m = a.rv_blood;
            if (rr < rp + 0.01 && sqrt(dru * dru + drv * drv) < rv_r + 0.012 && rr > rp) m = a.myo;
            if (rr <= rp) m = a.myo;
            if (rr <= re) m = a.blood;
            double ph = a.phase0 + a.phx * u + a.phy * v + 0.3 * u * v;
            img[y * p->w + x] = (float)m * (float)cos(ph) + I * (float)m * (float)sin(ph);
        }
    }
    return FMR_OK;
}

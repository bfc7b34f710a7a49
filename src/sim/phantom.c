/* Beating-heart cine phantom (2-D short axis).
 *
 * Geometry, normalised coordinates u (phase-encode columns) and v (readout rows), [-1, 1] over the
 * larger matrix dimension so pixels are square:
 *   body: fat layer over chest-wall muscle; lungs; liver; spine; right ventricle; left ventricle.
 * Left-ventricular motion is a map from the reference (end-diastolic) configuration, written in
 * polar coordinates around the LV centre:
 *   radial:  r^2 - r_endo(c)^2 = r0^2 - r_endo0^2   (incompressible wall: the area between the
 *            endocardium and any layer is conserved, so the wall thickens radially as the cavity
 *            shrinks and every layer shortens circumferentially by r/r0)
 *   twist:   theta = theta0 + phi_max c(t) (r0 - r_endo0)/(r_epi0 - r_endo0) s(z), with opposite
 *            sense at base and apex (s from +1 to -1 across the slices)
 *   c(t):    0 at end-diastole, 1 at end-systole; fast contraction, slower relaxation.
 * Papillary muscles and a faint circumferential texture are attached to the reference
 * configuration, so rotation and radial motion are visible in the images.
 * Contrast is balanced SSFP: S = PD sin(a) / (1 + cos(a) + (1 - cos(a)) T1/T2) with 1.5 T
 * relaxation times, scaled so blood is 1. A subject's seed varies heart size and position,
 * contraction, twist, systolic fraction, flip angle and relaxation times by a few percent.
 * Smooth low-order background phase. */
#include <math.h>

#include "fmrecon/rng.h"
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

enum { BLOOD, MYO, FAT, MUSCLE, LIVER, LUNG, MARROW, NTISSUE };

typedef struct {
    double cx, cy;           /* LV centre */
    double r_endo, wall;     /* end-diastolic endocardial radius and wall thickness (base) */
    double contraction;      /* fractional endocardial radius change at end-systole */
    double twist;            /* peak epicardial rotation, radians */
    double systole;          /* fraction of the cycle to end-systole */
    double signal[NTISSUE];  /* bSSFP signal, blood = 1 */
    double phase0, phx, phy; /* background phase */
} anatomy;

static double jitter(fmr_rng *r, double x, double rel)
{
    return x * (1.0 + rel * (2.0 * fmr_rng_uniform(r) - 1.0));
}

static void subject(const fmr_sim_params *p, anatomy *a)
{
    fmr_rng r;
    fmr_rng_seed(&r, p->seed * 0x9E37u + 17u);
    a->cx = 0.08 + 0.06 * (fmr_rng_uniform(&r) - 0.5);
    a->cy = -0.05 + 0.06 * (fmr_rng_uniform(&r) - 0.5);
    a->r_endo = jitter(&r, 0.16, 0.1);
    a->wall = jitter(&r, 0.055, 0.15);
    a->contraction = jitter(&r, 0.35, 0.15);
    a->twist = jitter(&r, 12.0 * M_PI / 180.0, 0.3);
    a->systole = jitter(&r, 0.35, 0.15); /* shorter diastole at higher heart rates */
    /* 1.5 T relaxation times (ms) and proton densities */
    static const double T1[NTISSUE] = {1550, 950, 280, 900, 600, 1200, 380};
    static const double T2[NTISSUE] = {250, 45, 85, 45, 45, 40, 130};
    static const double PD[NTISSUE] = {0.95, 0.80, 0.90, 0.75, 0.80, 0.10, 0.85};
    double alpha = jitter(&r, 50.0, 0.1) * M_PI / 180.0;
    double s[NTISSUE];
    for (int i = 0; i < NTISSUE; i++) {
        double t1 = jitter(&r, T1[i], 0.05), t2 = jitter(&r, T2[i], 0.05);
        s[i] = PD[i] * sin(alpha) / (1.0 + cos(alpha) + (1.0 - cos(alpha)) * t1 / t2);
    }
    for (int i = 0; i < NTISSUE; i++) a->signal[i] = s[i] / s[BLOOD];
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
    const double *S = a.signal;
    double c = contraction_curve((double)frame / (double)p->frames, a.systole);
    /* Slices run base (0) to apex: the ventricle narrows, the twist changes sense. */
    double zs = p->slices > 1 ? (double)slice / (double)(p->slices - 1) : 0.0, sense = 1.0 - 2.0 * zs;
    double re0 = a.r_endo * (1.0 - 0.3 * zs), rp0 = re0 + a.wall * (1.0 - 0.2 * zs);
    double re = re0 * (1.0 - a.contraction * c);
    double shift = re0 * re0 - re * re; /* r0^2 = r^2 + shift */
    double rp = sqrt(rp0 * rp0 - shift);
    double rv_r = 1.45 * rp0 * (1.0 - 0.2 * c), rv_cx = a.cx - 0.9 * rp, rv_cy = a.cy - 0.1 * rp;
    double sc = (double)(p->h > p->w ? p->h : p->w);
    for (size_t y = 0; y < p->h; y++) {
        double v = (2.0 * (double)y - (double)p->h) / sc;
        for (size_t x = 0; x < p->w; x++) {
            double u = (2.0 * (double)x - (double)p->w) / sc;
            double m = 0.0;
            if (in_ellipse(u, v, 0, 0, 0.80, 0.68)) m = S[FAT];
            if (in_ellipse(u, v, 0, 0, 0.75, 0.63)) m = S[MUSCLE];
            if (in_ellipse(u, v, -0.30, 0.40, 0.40, 0.22)) m = S[LIVER];
            if (in_ellipse(u, v, -0.42, -0.08, 0.22, 0.38) || in_ellipse(u, v, 0.45, -0.08, 0.20, 0.36))
                m = S[LUNG];
            if (in_ellipse(u, v, 0.02, 0.55, 0.09, 0.07)) m = S[MARROW];
            double du = u - a.cx, dv = v - a.cy, r = sqrt(du * du + dv * dv);
            double dru = u - rv_cx, drv = v - rv_cy, rr = sqrt(dru * dru + drv * drv);
            if (rr < rv_r && r > rp) m = S[BLOOD] * 0.95;
            if (rr < rv_r + 0.012 && rr >= rv_r - 0.012 && r > rp) m = S[MYO]; /* RV free wall */
            if (r <= rp) {
                /* back to the reference configuration */
                double r0 = sqrt(r * r + shift);
                double frac = (r0 - re0) / (rp0 - re0);
                double th0 = atan2(dv, du) - sense * a.twist * c * (frac > 0 ? frac : 0);
                if (r0 >= re0) {
                    m = S[MYO] * (1.0 + 0.06 * cos(3.0 * th0));
                } else {
                    m = S[BLOOD];
                    /* papillary muscles: discs near the endocardium at fixed reference angles */
                    for (int k = 0; k < 2; k++) {
                        double ang = (k ? 2.4 : 0.8), pr = re0 * 0.78;
                        double px = r0 * cos(th0) - pr * cos(ang), py = r0 * sin(th0) - pr * sin(ang);
                        if (px * px + py * py < (0.14 * re0) * (0.14 * re0)) m = S[MYO];
                    }
                }
            }
            double ph = a.phase0 + a.phx * u + a.phy * v + 0.3 * u * v;
            img[y * p->w + x] = (float)(m * cos(ph)) + I * (float)(m * sin(ph));
        }
    }
    return FMR_OK;
}

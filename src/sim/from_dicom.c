/* Semi-real multi-coil cine from a real magnitude DICOM series: magnitude x smooth phase x
 * simulated loop-coil sensitivities, Fourier transformed, plus complex Gaussian noise. The
 * anatomy and motion are real, the k-space is not: files say so ("semi-real") and carry the
 * series' geometry and trigger times. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/rng.h"
#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "fmrecon/sense.h"
#include "fmrecon/sim.h"
#include "io/dicom.h"

enum { ROUND = 4 };

static int cmpf(const void *a, const void *b);

typedef struct {
    const fmr_sim_dicom_params *p;
    const float *mag, *mask;
    size_t T, Z, H, W, C, maps_slices;
    fmr_cfloat *maps, *ks, *coil; /* maps: maps_slices x C x H x W */
    float *ref;
    double phase[4]; /* smooth phase: a0 + a1 u + a2 v + a3 (u^2 + v^2) (radians) */
    fmr_fft2c *fft;
    fmr_h5out *out;
    double sigma, max, sumsq;
} dcm_ctx;

static fmr_err item(dcm_ctx *s, size_t t, size_t z, fmr_cfloat *ks, float *ref)
{
    const size_t H = s->H, W = s->W, hw = H * W, C = s->C;
    const float *m = s->mag + (t * s->Z + z) * hw;
    const fmr_cfloat *maps = s->maps + (s->maps_slices > 1 ? z : 0) * C * hw;
    double sc = (double)(H > W ? H : W);
    for (size_t y = 0; y < H; y++) {
        double v = (2.0 * (double)y - (double)H) / sc;
        for (size_t x = 0; x < W; x++) {
            double u = (2.0 * (double)x - (double)W) / sc;
            double ph = s->phase[0] + s->phase[1] * u + s->phase[2] * v + s->phase[3] * (u * u + v * v);
            fmr_cfloat px = (float)(m[y * W + x] * cos(ph)) + I * (float)(m[y * W + x] * sin(ph));
            for (size_t c = 0; c < C; c++) ks[c * hw + y * W + x] = maps[c * hw + y * W + x] * px;
        }
    }
    FMR_TRY(fmr_fft2c_forward(s->fft, C, ks, ks));
    fmr_rng r;
    fmr_rng_seed(&r, s->p->seed ^ (0xD1C0ull + 1000003ull * t + 7919ull * (z + s->p->slice0)));
    for (size_t i = 0; i < C * hw; i++) {
        double nr = fmr_rng_normal(&r), ni = fmr_rng_normal(&r);
        ks[i] += (float)(s->sigma * nr / M_SQRT2) + I * (float)(s->sigma * ni / M_SQRT2);
    }
    FMR_TRY(fmr_fft2c_inverse(s->fft, C, ks, s->coil));
    fmr_rss(s->coil, C, hw, ref);
    for (size_t i = 0; i < hw; i++) {
        if (ref[i] > s->max) s->max = ref[i];
        s->sumsq += (double)ref[i] * ref[i];
    }
    if (s->mask)
        for (size_t i = 0; i < C * hw; i++) ks[i] *= s->mask[i % W];
    return FMR_OK;
}

static fmr_err compute(void *c, size_t t, size_t z, size_t slot)
{
    dcm_ctx *s = c;
    const size_t hw = s->H * s->W;
    return item(s, t, z, s->ks + slot * s->C * hw, s->ref + slot * hw);
}

static fmr_err flush(void *c, size_t n, const size_t *lead)
{
    dcm_ctx *s = c;
    fmr_err e1 = fmr_h5out_write_blocks(s->out, "kspace", n, 2, lead, s->ks);
    fmr_err e2 = fmr_h5out_write_blocks(s->out, "reconstruction_rss", n, 2, lead, s->ref);
    return e1 ? e1 : e2;
}

fmr_err fmr_sim_from_dicom(MPI_Comm comm, const fmr_sim_dicom_params *p, const float *mask, const char *path)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    dcm_ctx s = {.p = p, .mask = mask};
    fmr_geometry *g = NULL;
    float *mag = NULL;
    fmr_err err = (!p->maps_file && (p->coils < 1 || p->coils > 128)) || !(p->snr > 0)
                      ? fmr_error(FMR_ERR_ARG, "semi-real simulation needs 1..128 coils and SNR > 0")
                      : fmr_dicom_read_series(p->dir, p->slice0, p->nslices, &mag, &g);
    fmr_array *real_maps = NULL;
    if (!err) {
        s.mag = mag, s.T = g->frames, s.Z = g->slices, s.H = g->h, s.W = g->w, s.C = p->coils, s.maps_slices = 1;
        if (p->maps_file) {
            /* measured coil maps: they must be on the series' matrix (no resampling is done) */
            err = fmr_h5_read_array(p->maps_file, "maps", &real_maps);
            if (!err) {
                int nd = fmr_array_ndim(real_maps);
                size_t ms = nd == 4 ? fmr_array_dim(real_maps, 0) : 1;
                if (fmr_array_dtype(real_maps) != FMR_C64 || (nd != 3 && nd != 4) ||
                    fmr_array_dim(real_maps, nd - 2) != s.H || fmr_array_dim(real_maps, nd - 1) != s.W || (ms != 1 && ms != s.Z))
                    err = fmr_error(FMR_ERR_FORMAT, "%s: 'maps' must be complex (1 or %zu slices, coils, %zu, %zu) for the series %s",
                                    p->maps_file, s.Z, s.H, s.W, p->dir);
                else
                    s.C = fmr_array_dim(real_maps, nd - 3), s.maps_slices = ms;
            }
        }
    }
    if (!err) {
        const size_t hw = s.H * s.W;
        fmr_sim_params sp = {.frames = s.T, .slices = s.Z, .coils = s.C, .h = s.H, .w = s.W, .snr = p->snr, .seed = p->seed};
        err = fmr_fft2c_create(&s.fft, s.H, s.W);
        if (!err) err = fmr_alloc((void **)&s.maps, s.maps_slices * s.C * hw * sizeof(fmr_cfloat), "coil maps");
        if (!err) err = fmr_alloc((void **)&s.coil, s.C * hw * sizeof(fmr_cfloat), "coil images");
        if (!err) err = fmr_alloc((void **)&s.ks, ROUND * s.C * hw * sizeof(fmr_cfloat), "k-space");
        if (!err) err = fmr_alloc((void **)&s.ref, ROUND * hw * sizeof(float), "reference");
        if (!err && real_maps) {
            memcpy(s.maps, fmr_array_data(real_maps), s.maps_slices * s.C * hw * sizeof(fmr_cfloat));
            for (size_t i = 0; i < s.maps_slices * s.C * hw; i++)
                if (!isfinite(crealf(s.maps[i])) || !isfinite(cimagf(s.maps[i]))) {
                    err = fmr_error(FMR_ERR_VALUE, "%s: 'maps' holds NaN/Inf", p->maps_file);
                    break;
                }
        } else if (!err) {
            err = fmr_sim_coils(&sp, s.maps);
        }
        if (!err) {
            fmr_rng r;
            fmr_rng_seed(&r, p->seed * 0x9E3779B97F4A7C15ull + 17);
            s.phase[0] = M_PI * (2 * fmr_rng_uniform(&r) - 1);
            for (int k = 1; k < 4; k++) s.phase[k] = 1.5 * (2 * fmr_rng_uniform(&r) - 1);
            /* noise std relative to the brightest tissue (the series' 99th-percentile magnitude)
             * seen through the coil-combined sensitivity at the image centre */
            size_t n = s.T * s.Z * hw;
            float *tmp = malloc(n * sizeof *tmp);
            double level = 0;
            if (tmp) {
                memcpy(tmp, mag, n * sizeof *tmp);
                /* partial selection would do; a sort of one series is quick enough */
                qsort(tmp, n, sizeof *tmp, cmpf);
                level = tmp[(size_t)(0.99 * (double)(n - 1))];
                free(tmp);
            }
            size_t centre = (s.H / 2) * s.W + s.W / 2;
            double ss = 0;
            for (size_t c = 0; c < s.C; c++) ss += pow(cabsf(s.maps[c * hw + centre]), 2);
            s.sigma = (level > 0 ? level : 1.0) * sqrt(ss) / p->snr;
        }
    }
    int l = (int)err, gl = 0;
    MPI_Allreduce(&l, &gl, 1, MPI_INT, MPI_MAX, comm);
    if (!err && gl) err = fmr_error((fmr_err)gl, "another rank failed to read %s", p->dir);
    fmr_h5out *o = NULL;
    if (!err) err = fmr_h5out_create(comm, path, &o);
    if (!err) {
        size_t kd[5] = {s.T, s.Z, s.C, s.H, s.W}, rd[4] = {s.T, s.Z, s.H, s.W};
        fmr_err e = FMR_OK, ea;
#define KEEP(call) (ea = (call), e = e ? e : ea)
        KEEP(fmr_h5out_add_dataset(o, "kspace", FMR_C64, 5, kd));
        KEEP(fmr_h5out_add_dataset(o, "reconstruction_rss", FMR_F32, 4, rd));
        if (mask) {
            size_t md[1] = {s.W};
            unsigned char *m8 = malloc(s.W);
            for (size_t c = 0; m8 && c < s.W; c++) m8[c] = mask[c] != 0.0f;
            KEEP(fmr_h5out_add_dataset(o, "mask", FMR_U8, 1, md));
            KEEP(fmr_h5out_write_whole(o, "mask", rank == 0 && m8, m8));
            if (!m8) KEEP(fmr_error(FMR_ERR_NOMEM, "cannot allocate mask"));
            free(m8);
        }
        s.out = o;
        fmr_item_loop loop = {.frames = s.T, .slices = s.Z, .batch = ROUND, .compute = compute, .flush = flush, .ctx = &s,
                              .label = "semi-real"};
        if (!e) e = fmr_item_loop_run(comm, &loop);
        double mx = s.max, sq = s.sumsq;
        MPI_Allreduce(&s.max, &mx, 1, MPI_DOUBLE, MPI_MAX, comm);
        MPI_Allreduce(&s.sumsq, &sq, 1, MPI_DOUBLE, MPI_SUM, comm);
        KEEP(fmr_h5out_attr_double(o, NULL, "max", mx));
        KEEP(fmr_h5out_attr_double(o, NULL, "norm", sqrt(sq)));
        KEEP(fmr_h5out_attr_string(o, NULL, "acquisition", "fmrecon-semi-real-dicom"));
        KEEP(fmr_h5out_attr_string(o, NULL, "data_kind",
                                   p->maps_file ? "semi-real: real DICOM magnitude x coil maps from a file x smooth phase + noise (not measured k-space)"
                                                : "semi-real: real DICOM magnitude x simulated coil maps x smooth phase + noise (not measured k-space)"));
        KEEP(fmr_h5out_attr_string(o, NULL, "coil_maps", p->maps_file ? p->maps_file : "simulated loop coils"));
        KEEP(fmr_h5out_attr_string(o, NULL, "source_dicom", p->dir));
        KEEP(fmr_h5out_attr_int(o, NULL, "source_first_slice", (int64_t)p->slice0));
        KEEP(fmr_h5out_attr_int(o, NULL, "sim_seed", (int64_t)p->seed));
        KEEP(fmr_h5out_attr_double(o, NULL, "sim_snr", p->snr));
        KEEP(fmr_h5out_attr_double(o, NULL, "sim_noise_std", s.sigma));
        KEEP(fmr_h5out_attr_string(o, NULL, "fmrecon_version", fmr_version()));
        KEEP(fmr_h5out_attr_geometry(o, g));
#undef KEEP
        err = fmr_h5out_finish(&o, e);
    }
    fmr_fft2c_destroy(&s.fft);
    fmr_free(s.maps);
    fmr_free(s.coil);
    fmr_free(s.ks);
    fmr_free(s.ref);
    fmr_array_destroy(&real_maps);
    free(mag);
    fmr_geometry_free(&g);
    return err;
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

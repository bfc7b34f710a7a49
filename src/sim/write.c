/* Writes a simulated subject as a fastMRI-style cine file. Each (frame, slice) item draws its noise
 * from a generator seeded by (seed, frame, slice), so the file is identical for any number of ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fmrecon/rng.h"
#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"
#include "fmrecon/sense.h"
#include "fmrecon/sim.h"
#include "recon/provenance.h"

enum { ROUND = 4 };

typedef struct {
    const fmr_sim_params *p;
    const float *mask;
    fmr_cfloat *maps, *img, *ks, *coil;
    float *ref;
    fmr_fft2c *fft;
    fmr_h5out *out;
    double sigma, max, sumsq;
} sim_ctx;

static fmr_err sim_item(sim_ctx *s, size_t t, size_t z, fmr_cfloat *ks_out, float *ref_out)
{
    const fmr_sim_params *p = s->p;
    const size_t hw = p->h * p->w;
    FMR_TRY(fmr_sim_image(p, t, z, s->img));
    for (size_t c = 0; c < p->coils; c++)
        for (size_t i = 0; i < hw; i++) ks_out[c * hw + i] = s->maps[c * hw + i] * s->img[i];
    FMR_TRY(fmr_fft2c_forward(s->fft, p->coils, ks_out, ks_out));
    fmr_rng r;
    fmr_rng_seed(&r, p->seed ^ (0xA5A5ull + 1000003ull * t + 7919ull * z + 0x51ED27ull * p->seed));
    for (size_t i = 0; i < p->coils * hw; i++) {
        double nr = fmr_rng_normal(&r), ni = fmr_rng_normal(&r);
        ks_out[i] += (float)(s->sigma * nr / M_SQRT2) + I * (float)(s->sigma * ni / M_SQRT2);
    }
    FMR_TRY(fmr_fft2c_inverse(s->fft, p->coils, ks_out, s->coil));
    fmr_rss(s->coil, p->coils, hw, ref_out);
    for (size_t i = 0; i < hw; i++) {
        if (ref_out[i] > s->max) s->max = ref_out[i];
        s->sumsq += (double)ref_out[i] * ref_out[i];
    }
    if (s->mask)
        for (size_t c = 0; c < p->coils; c++)
            for (size_t i = 0; i < hw; i++) ks_out[c * hw + i] *= s->mask[i % p->w];
    return FMR_OK;
}

static fmr_err sim_compute(void *c, size_t t, size_t z, size_t slot)
{
    sim_ctx *s = c;
    const size_t hw = s->p->h * s->p->w;
    return sim_item(s, t, z, s->ks + slot * s->p->coils * hw, s->ref + slot * hw);
}

static fmr_err sim_flush(void *c, size_t n, const size_t *lead)
{
    sim_ctx *s = c;
    fmr_err e1 = fmr_h5out_write_blocks(s->out, "kspace", n, 2, lead, s->ks);
    fmr_err e2 = fmr_h5out_write_blocks(s->out, "reconstruction_rss", n, 2, lead, s->ref);
    return e1 ? e1 : e2;
}

fmr_err fmr_sim_write(MPI_Comm comm, const char *path, const fmr_sim_params *p, const float *mask)
{
    FMR_TRY(fmr_sim_check(p));
    int rank;
    MPI_Comm_rank(comm, &rank);
    const size_t hw = p->h * p->w;
    sim_ctx s = {.p = p, .mask = mask};
    fmr_err err = fmr_fft2c_create(&s.fft, p->h, p->w);
    if (!err) err = fmr_alloc((void **)&s.maps, p->coils * hw * sizeof(fmr_cfloat), "coil maps");
    if (!err) err = fmr_alloc((void **)&s.img, hw * sizeof(fmr_cfloat), "image");
    if (!err) err = fmr_alloc((void **)&s.coil, p->coils * hw * sizeof(fmr_cfloat), "coil images");
    if (!err) err = fmr_alloc((void **)&s.ks, ROUND * p->coils * hw * sizeof(fmr_cfloat), "k-space");
    if (!err) err = fmr_alloc((void **)&s.ref, ROUND * hw * sizeof(float), "reference");
    if (!err) err = fmr_sim_coils(p, s.maps);
    if (!err) {
        /* Noise relative to the coil-combined sensitivity at the heart (blood signal is 1). */
        size_t centre = (p->h / 2) * p->w + p->w / 2;
        double ss = 0.0;
        for (size_t c = 0; c < p->coils; c++) {
            double m = cabsf(s.maps[c * hw + centre]);
            ss += m * m;
        }
        s.sigma = sqrt(ss) / p->snr;
    }
    fmr_h5out *o = NULL;
    fmr_err g = fmr_agree(comm, err);
    if (!err && g) err = fmr_error(g, "another rank failed to set up the simulation");
    if (!err) err = fmr_h5out_create(comm, path, &o);
    if (!err) {
        size_t kd[5] = {p->frames, p->slices, p->coils, p->h, p->w};
        size_t rd[4] = {p->frames, p->slices, p->h, p->w};
        err = fmr_h5out_add_dataset(o, "kspace", FMR_C64, 5, kd);
        if (!err) err = fmr_h5out_add_dataset(o, "reconstruction_rss", FMR_F32, 4, rd);
        if (!err && mask) {
            size_t md[1] = {p->w};
            unsigned char *m8 = malloc(p->w);
            for (size_t c = 0; m8 && c < p->w; c++) m8[c] = mask[c] != 0.0f;
            err = fmr_h5out_add_dataset(o, "mask", FMR_U8, 1, md);
            fmr_err e = fmr_h5out_write_whole(o, "mask", rank == 0 && m8, m8);
            if (!err) err = m8 ? e : fmr_error(FMR_ERR_NOMEM, "cannot allocate mask");
            free(m8);
        }
        s.out = o;
        fmr_item_loop loop = {.frames = p->frames, .slices = p->slices, .batch = ROUND,
                              .compute = sim_compute, .flush = sim_flush, .ctx = &s};
        if (!err) err = fmr_item_loop_run(comm, &loop);
        double mx = s.max, sq = s.sumsq;
        MPI_Allreduce(&s.max, &mx, 1, MPI_DOUBLE, MPI_MAX, comm);
        MPI_Allreduce(&s.sumsq, &sq, 1, MPI_DOUBLE, MPI_SUM, comm);
        fmr_err e = FMR_OK, ea;
#define KEEP(call) (ea = (call), e = e ? e : ea)
        KEEP(fmr_h5out_attr_double(o, NULL, "max", mx));
        KEEP(fmr_h5out_attr_double(o, NULL, "norm", sqrt(sq)));
        KEEP(fmr_h5out_attr_string(o, NULL, "acquisition", "fmrecon-sim-cine"));
        KEEP(fmr_h5out_attr_int(o, NULL, "sim_seed", (int64_t)p->seed));
        KEEP(fmr_h5out_attr_double(o, NULL, "sim_snr", p->snr));
        KEEP(fmr_h5out_attr_double(o, NULL, "sim_noise_std", s.sigma));
        KEEP(fmr_h5out_attr_string(o, NULL, "fmrecon_version", fmr_version()));
        {   /* provenance (docs/formats.md): the simulation's parameters and the runtime */
            cJSON *j = cJSON_CreateObject(), *sp = j ? cJSON_AddObjectToObject(j, "simulation") : NULL;
            char *par = NULL;
            if (sp) {
                size_t sampled = 0;
                for (size_t c = 0; mask && c < p->w; c++) sampled += mask[c] != 0.0f;
                cJSON_AddNumberToObject(sp, "frames", (double)p->frames);
                cJSON_AddNumberToObject(sp, "slices", (double)p->slices);
                cJSON_AddNumberToObject(sp, "coils", (double)p->coils);
                cJSON_AddNumberToObject(sp, "h", (double)p->h);
                cJSON_AddNumberToObject(sp, "w", (double)p->w);
                cJSON_AddNumberToObject(sp, "snr", p->snr);
                cJSON_AddNumberToObject(sp, "seed", (double)p->seed);
                cJSON_AddNumberToObject(sp, "noise_std", s.sigma);
                cJSON_AddNumberToObject(sp, "sampled_columns", (double)(mask ? sampled : p->w));
            }
            fmr_err pe = fmr_prov_add_runtime(j, comm); /* collective: on every rank */
            if (!sp && !pe) pe = fmr_error(FMR_ERR_NOMEM, "cannot build the parameters record");
            if (!pe) pe = fmr_prov_print(j, &par);
            else cJSON_Delete(j);
            KEEP(pe);
            KEEP(par ? fmr_h5out_attr_string(o, NULL, "parameters", par) : FMR_OK);
            free(par);
        }
        /* a phantom has no scanner geometry: the documented defaults, marked assumed */
        fmr_geometry *geo = NULL;
        KEEP(fmr_geometry_create(p->slices, p->frames, p->h, p->w, &geo));
        if (geo) KEEP(fmr_h5out_attr_geometry(o, geo));
        else KEEP(fmr_h5out_attr_string(o, NULL, "geometry", "")); /* keeps the attribute calls collective */
        fmr_geometry_free(&geo);
#undef KEEP
        if (!err) err = e;
        err = fmr_h5out_finish(&o, err);
    }
    fmr_fft2c_destroy(&s.fft);
    fmr_free(s.maps);
    fmr_free(s.img);
    fmr_free(s.coil);
    fmr_free(s.ks);
    fmr_free(s.ref);
    return err;
}

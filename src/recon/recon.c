/* The reconstruction pipeline shared by every method: read item -> apply mask -> method -> write.
 * Items are (frame, slice) pairs, dealt to ranks in contiguous blocks; results go out in rounds of
 * collective writes so memory stays bounded by the batch size, not the dataset. */
#include "fmrecon/recon.h"

#include <cjson/cJSON.h>
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "fmrecon/cfl.h"
#include "fmrecon/encoder.h"
#include "fmrecon/log.h"
#include "fmrecon/sched.h"
#include "recon/provenance.h"

typedef struct {
    fmr_dataset *ds;
    const fmr_dataset_info *in;
    const fmr_method_ops *m;
    void *state;
    fmr_h5out *out;
    int write_complex;
    int nextra;           /* extra complex datasets (method's extra_count when asked for) */
    MPI_Comm coil_comm;   /* the ranks sharing this rank's items (MPI_COMM_SELF without groups) */
    size_t coil0, ncoils; /* this rank's coils */
} pipeline;

static fmr_err write_header(pipeline *p, MPI_Comm comm, const char *in_path, const fmr_recon_options *opt,
                            int nranks)
{
    const fmr_dataset_info *in = p->in;
    size_t d4[4] = {in->frames, in->slices, in->h, in->w};
    FMR_TRY(fmr_h5out_add_dataset(p->out, "reconstruction", FMR_F32, 4, d4));
    if (p->write_complex) FMR_TRY(fmr_h5out_add_dataset(p->out, "image", FMR_C64, 4, d4));
    for (int k = 0; k < p->nextra; k++) {
        char name[64];
        p->m->extra_name(p->state, k, name, sizeof name);
        FMR_TRY(fmr_h5out_add_dataset(p->out, name, FMR_C64, 4, d4));
    }
    struct stat st;
    char cfl[4096], data[4200];
    if (fmr_cfl_is(in_path, cfl, sizeof cfl)) snprintf(data, sizeof data, "%s.cfl", cfl); /* the pair's data */
    long long size = stat(fmr_cfl_is(in_path, cfl, sizeof cfl) ? data : in_path, &st) == 0 ? (long long)st.st_size : -1;
    cJSON *par = cJSON_CreateObject();
    /* provenance (options, files and their SHA-256, runtime); collective: before any early return */
    fmr_err perr = fmr_prov_add_recon(par, comm, in_path, opt);
    cJSON_AddStringToObject(par, "method", p->m->name);
    cJSON_AddStringToObject(par, "mask",
                            in->mask == FMR_MASK_NONE     ? "none (fully sampled)"
                            : in->mask == FMR_MASK_SHARED ? "from input, shared"
                                                          : "from input, per frame");
    cJSON_AddNumberToObject(par, "pad_left", (double)in->pad_left);
    cJSON_AddNumberToObject(par, "pad_right", (double)in->pad_right);
    cJSON_AddNumberToObject(par, "ranks", nranks);
    cJSON_AddBoolToObject(par, "complex_image", p->write_complex);
    if (p->m->describe) {
        char *d = p->m->describe(p->state);
        cJSON *obj = d ? cJSON_Parse(d) : NULL;
        free(d);
        if (obj) cJSON_AddItemToObject(par, "method_parameters", obj);
    }
    if (!strcmp(p->m->name, "unrolled")) /* what ran, not what was asked for */
        cJSON_AddStringToObject(par, "precision",
                                opt->params.bf16 && fmr_cpu_has_bf16() ? "bf16" : "f32");
    char *json = cJSON_PrintUnformatted(par);
    cJSON_Delete(par);
    if (!json) return fmr_error(FMR_ERR_NOMEM, "cannot format parameters");
    /* Attribute writes are collective in parallel HDF5: every rank makes every call, whatever
     * failed before, and keeps the first error. */
    fmr_err err = perr, e;
#define KEEP(call) (e = (call), err = err ? err : e)
    KEEP(fmr_h5out_attr_string(p->out, NULL, "method", p->m->name));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "parameters", json));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "fmrecon_version", fmr_version()));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "input_file", in_path));
    KEEP(fmr_h5out_attr_int(p->out, NULL, "input_size", size));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "input_format", in->format_name));
    if (opt->argv_line) KEEP(fmr_h5out_attr_string(p->out, NULL, "command", opt->argv_line));
    KEEP(fmr_h5out_attr_string(p->out, "reconstruction", "axes",
                               "frame,slice,readout,phase_encode"));
    KEEP(fmr_h5out_attr_geometry(p->out, fmr_dataset_get_geometry(p->ds)));
#undef KEEP
    free(json);
    return err;
}

/* The mask is small: every rank reads it, rank 0 writes it. */
static fmr_err write_mask(pipeline *p, int rank)
{
    const fmr_dataset_info *in = p->in;
    if (in->mask == FMR_MASK_NONE) return FMR_OK;
    size_t nf = in->mask == FMR_MASK_PERFRAME ? in->frames : 1;
    size_t dims[2] = {nf, in->w};
    int nd = nf > 1 ? 2 : 1;
    FMR_TRY(fmr_h5out_add_dataset(p->out, "mask", FMR_U8, nd, nd == 2 ? dims : dims + 1));
    unsigned char *m8 = malloc(nf * in->w);
    float *row = malloc(in->w * sizeof *row);
    fmr_err err = (!m8 || !row) ? fmr_error(FMR_ERR_NOMEM, "cannot allocate mask") : FMR_OK;
    for (size_t t = 0; !err && t < nf; t++) {
        err = fmr_dataset_read_mask(p->ds, t, row);
        for (size_t c = 0; !err && c < in->w; c++)
            m8[t * in->w + c] = row[c] != 0.0f;
    }
    fmr_err werr;
    if (nd == 2) {
        size_t *leads = malloc(nf * sizeof *leads);
        for (size_t t = 0; leads && t < nf; t++)
            leads[t] = t;
        werr = fmr_h5out_write_blocks(p->out, "mask", (rank == 0 && !err && leads) ? nf : 0, 1,
                                      leads, m8);
        free(leads);
    } else {
        werr = fmr_h5out_write_whole(p->out, "mask", rank == 0 && !err, m8);
    }
    free(row);
    free(m8);
    return err ? err : werr;
}

typedef struct {
    pipeline *p;
    fmr_recon_stats *st;
    size_t F;          /* frames per item: 1, or all frames for per-slice methods */
    fmr_cfloat *ks;    /* one item's k-space, F x coils x h x w */
    float *mask;       /* F x w */
    float *mag;        /* batch x F x h x w */
    fmr_cfloat *img;   /* batch x F x h x w, or NULL */
    fmr_cfloat *extra; /* nextra x batch x F x h x w, or NULL */
    size_t B;          /* items per round */
    int independent;   /* dynamic schedule: each item written on its own */
    size_t *lead;      /* batch x F (frame, slice) pairs */
} recon_round;

/* A result that is not finite, or zero everywhere although its k-space is not, is useless and
 * must not land in a complete-looking file (issue 17): every route to it (overflowing input,
 * NaN weights, bad coil maps) ends here, so one check covers them all. Only the coil group's
 * rank 0 writes the item, so only it checks; the item loop makes every rank agree on the error. */
static fmr_err check_result(recon_round *r, size_t t, size_t z, size_t slot)
{
    pipeline *p = r->p;
    int crank;
    MPI_Comm_rank(p->coil_comm, &crank);
    if (crank) return FMR_OK;
    const size_t hw = p->in->h * p->in->w, F = r->F, n = p->ncoils * hw;
    const float *mag = r->mag + slot * F * hw;
    const fmr_cfloat *img = r->img ? r->img + slot * F * hw : NULL;
    size_t bad = 0, nonzero = 0;
    for (size_t i = 0; i < F * hw; i++) {
        bad += !isfinite(mag[i]);
        nonzero += mag[i] != 0.0f;
        if (img) bad += !isfinite(crealf(img[i])) || !isfinite(cimagf(img[i]));
    }
    (void)t, (void)z; /* the item loop prefixes "frame T slice Z: " */
    if (bad) {
        /* the largest input magnitude tells overflow (finite input, |k|^2 beyond float32) apart */
        float kmax = 0.0f;
        size_t kbad = 0;
        for (size_t i = 0; i < F * n; i++) {
            float a = cabsf(r->ks[i]);
            if (!isfinite(a)) kbad++;
            else if (a > kmax) kmax = a;
        }
        char why[128] = "";
        if (kbad)
            snprintf(why, sizeof why, " (the k-space holds %zu non-finite values)", kbad);
        else if (kmax > 1e18f)
            snprintf(why, sizeof why, " (input magnitudes up to %.0e overflow float32)", (double)kmax);
        return fmr_error(FMR_ERR_VALUE,
                         "%s: method '%s' gave %zu non-finite values in the result%s; nothing written",
                         fmr_dataset_path(p->ds), p->m->name, bad, why);
    }
    if (!nonzero) {
        float kmax = 0.0f;
        for (size_t i = 0; i < F * n; i++)
            if (cabsf(r->ks[i]) > kmax) kmax = cabsf(r->ks[i]);
        if (kmax > 0.0f) {
            /* |k|^2 below float32's smallest number: the magnitude says why */
            char why[96] = "";
            if (kmax < 1e-18f)
                snprintf(why, sizeof why, " (input magnitudes at most %.0e underflow float32)",
                         (double)kmax);
            return fmr_error(FMR_ERR_VALUE,
                             "%s: method '%s' gave a result that is zero everywhere although its "
                             "k-space is not%s; nothing written",
                             fmr_dataset_path(p->ds), p->m->name, why);
        }
    }
    return FMR_OK;
}

static fmr_err recon_compute(void *c, size_t t, size_t z, size_t slot)
{
    recon_round *r = c;
    pipeline *p = r->p;
    const fmr_dataset_info *in = p->in;
    const size_t hw = in->h * in->w, n = p->ncoils * hw, F = r->F;
    if (F > 1) t = 0;
    double t0 = fmr_wtime();
    fmr_err err = FMR_OK;
    for (size_t f = 0; !err && f < F; f++) {
        err = fmr_dataset_read_kspace(p->ds, t + f, z, p->coil0, p->ncoils, r->ks + f * n);
        if (!err) err = fmr_dataset_read_mask(p->ds, t + f, r->mask + f * in->w);
    }
    /* the ranks sharing the item's coils agree before any of them enters a collective product */
    int csize;
    MPI_Comm_size(p->coil_comm, &csize);
    if (csize > 1) {
        if (fmr_agree(p->coil_comm, err) && !err)
            err = fmr_error(FMR_ERR_MPI,
                            "another rank of this rank's coil group failed to read its coils");
    }
    FMR_TRY(err);
    double t1 = fmr_wtime();
    /* The data seen by every method is M.y: retrospective masks act on fully sampled files, and
     * prospective files already hold zeros there. */
    for (size_t f = 0; f < F; f++)
        for (size_t i = 0; i < n; i++)
            r->ks[f * n + i] *= r->mask[f * in->w + i % in->w];
    FMR_TRY(p->m->run(p->state, t, F, z, r->ks, r->mask, r->mag + slot * F * hw,
                      r->img ? r->img + slot * F * hw : NULL));
    FMR_TRY(check_result(r, t, z, slot));
    for (int k = 0; k < p->nextra; k++)
        for (size_t f = 0; f < F; f++)
            p->m->extra_get(p->state, k, f, r->extra + ((k * r->B + slot) * F + f) * hw);
    r->st->read_s += t1 - t0;
    r->st->compute_s += fmr_wtime() - t1;
    return FMR_OK;
}

static fmr_err recon_flush(void *c, size_t n, const size_t *lead)
{
    recon_round *r = c;
    double t0 = fmr_wtime();
    /* a whole-slice item fills F consecutive (frame, slice) blocks */
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < r->F; f++) {
            r->lead[2 * (i * r->F + f)] = r->F > 1 ? f : lead[2 * i];
            r->lead[2 * (i * r->F + f) + 1] = lead[2 * i + 1];
        }
    fmr_err (*wr)(fmr_h5out *, const char *, size_t, int, const size_t *, const void *) =
        r->independent ? fmr_h5out_write_blocks_independent : fmr_h5out_write_blocks;
    fmr_err err = wr(r->p->out, "reconstruction", n * r->F, 2, r->lead, r->mag);
    if (r->img) {
        fmr_err e = wr(r->p->out, "image", n * r->F, 2, r->lead, r->img);
        if (!err) err = e;
    }
    for (int k = 0; k < r->p->nextra; k++) {
        char name[64];
        r->p->m->extra_name(r->p->state, k, name, sizeof name);
        const size_t hw = r->p->in->h * r->p->in->w;
        fmr_err e = wr(r->p->out, name, n * r->F, 2, r->lead, r->extra + k * r->B * r->F * hw);
        if (!err) err = e;
    }
    r->st->write_s += fmr_wtime() - t0;
    return err;
}

static fmr_err process(pipeline *p, MPI_Comm comm, int batch, int dynamic, fmr_recon_stats *st)
{
    const fmr_dataset_info *in = p->in;
    const size_t hw = in->h * in->w, F = p->m->per_slice ? in->frames : 1;
    /* a slice is already a batch of frames; dynamic items are written one by one */
    const size_t B = (p->m->per_slice || dynamic) ? 1 : (size_t)batch;
    recon_round r = {.p = p, .st = st, .F = F, .B = B, .independent = dynamic};
    fmr_err err = fmr_alloc((void **)&r.ks, F * p->ncoils * hw * sizeof *r.ks, "k-space item");
    if (!err) err = fmr_alloc((void **)&r.mask, F * in->w * sizeof *r.mask, "masks");
    if (!err) err = fmr_alloc((void **)&r.mag, B * F * hw * sizeof *r.mag, "batch images");
    if (!err) err = fmr_alloc((void **)&r.lead, 2 * B * F * sizeof *r.lead, "batch list");
    if (!err && p->write_complex)
        err = fmr_alloc((void **)&r.img, B * F * hw * sizeof *r.img, "batch images");
    if (!err && p->nextra)
        err = fmr_alloc((void **)&r.extra, (size_t)p->nextra * B * F * hw * sizeof *r.extra,
                        "cascade images");
    /* Allocation is agreed on before the collective loop starts. */
    fmr_err g = fmr_agree(comm, err);
    if (!g) {
        char label[64];
        snprintf(label, sizeof label, "recon %s", p->m->name);
        int size, rank, csize, crank;
        MPI_Comm_size(comm, &size);
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(p->coil_comm, &csize);
        MPI_Comm_rank(p->coil_comm, &crank);
        fmr_item_loop loop = {.frames = F > 1 ? 1 : in->frames,
                              .slices = in->slices,
                              .batch = B,
                              .compute = recon_compute,
                              .flush = recon_flush,
                              .ctx = &r,
                              .label = label,
                              .groups = size / csize,
                              .group = rank / csize,
                              .group_rank = crank,
                              .dynamic = dynamic,
                              .group_comm = p->coil_comm};
        err = fmr_item_loop_run(comm, &loop);
    } else if (!err) {
        err = fmr_error(g, "another rank could not allocate its buffers");
    }
    fmr_free(r.ks);
    fmr_free(r.mask);
    fmr_free(r.mag);
    fmr_free(r.img);
    fmr_free(r.extra);
    fmr_free(r.lead);
    return err;
}

fmr_err fmr_recon_file(MPI_Comm comm, const char *in_path, const char *out_path,
                       const fmr_recon_options *opt, fmr_recon_stats *stats)
{
    fmr_recon_stats st = {0};
    double t0 = fmr_wtime();
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    pipeline p = {0};
    p.m = fmr_method_find(opt->method ? opt->method : "zf");
    if (!p.m) return fmr_error(FMR_ERR_ARG, "unknown method '%s'", opt->method);
    if (opt->write_complex && !p.m->produces_complex)
        return fmr_error(FMR_ERR_ARG, "method '%s' produces a magnitude image only; drop --complex",
                         p.m->name);
    p.write_complex = opt->write_complex;
    int batch = opt->batch > 0 ? opt->batch : 8;
    const int K = opt->coil_ranks > 0 ? opt->coil_ranks : 1;
    if (size % K)
        return fmr_error(FMR_ERR_ARG, "--coil-ranks %d does not divide the %d ranks of the job", K,
                         size);
    p.coil_comm = MPI_COMM_SELF;
    if (K > 1 && MPI_Comm_split(comm, rank / K, rank, &p.coil_comm) != MPI_SUCCESS)
        return fmr_error(FMR_ERR_MPI, "cannot split the ranks into coil groups of %d", K);
    fmr_method_params mpar = opt->params;

    /* Opening is local, but every rank must agree before the collective output exists. */
    fmr_err err = fmr_dataset_open(in_path, &opt->open, &p.ds);
    if (!err) {
        p.in = fmr_dataset_get_info(p.ds);
        if ((size_t)K > p.in->coils && !opt->fft_slabs)
            err = fmr_error(FMR_ERR_ARG, "--coil-ranks %d exceeds the %zu coils of %s", K,
                            p.in->coils, in_path);
    }
    if (!err) {
        int crank;
        MPI_Comm_rank(p.coil_comm, &crank);
        if (opt->fft_slabs) /* every rank of the group holds all coils; images are split in rows */
            p.coil0 = 0, p.ncoils = p.in->coils;
        else
            fmr_partition_block(p.in->coils, crank, K, &p.coil0, &p.ncoils);
        mpar.coil_comm = p.coil_comm, mpar.coil0 = p.coil0, mpar.ncoils = p.ncoils;
        mpar.fft_slabs = opt->fft_slabs && K > 1;
        err = p.m->create(&p.state, p.ds, &mpar);
    }
    if (!err && opt->save_extras) {
        if (!p.m->extra_count)
            err = fmr_error(FMR_ERR_ARG,
                            "method '%s' has no intermediate images; drop --save-cascades",
                            p.m->name);
        else
            p.nextra = p.m->extra_count(p.state);
    }
    fmr_err g = fmr_agree(comm, err);
    if (!err && g)
        err = fmr_error(g, "%s: another rank could not open the input", in_path);
    if (!err) err = fmr_h5out_create(comm, out_path, &p.out);
    if (!err) {
        err = write_header(&p, comm, in_path, opt, size);
        fmr_err e = write_mask(&p, rank); /* collective: called even after a header error */
        if (!err) err = e;
        g = fmr_agree(comm, err);
        if (!g)
            err = process(&p, comm, batch, opt->dynamic, &st);
        else if (!err)
            err = fmr_error(g, "%s: another rank failed writing the header", out_path);
        err = fmr_h5out_finish(&p.out, err);
        if (!err) st.items = p.in->frames * p.in->slices;
    }
    if (p.state && p.m->timing) {
        p.m->timing(p.state, &st.method);
        st.dc_s = st.method.dc_s, st.fft_s = st.method.fft_s;
    }
    if (p.state) p.m->destroy(p.state);
    fmr_dataset_close(&p.ds);
    if (p.coil_comm != MPI_COMM_SELF) MPI_Comm_free(&p.coil_comm);
    st.seconds = fmr_wtime() - t0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st.peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    if (stats) *stats = st;
    return err;
}

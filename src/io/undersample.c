/* Retrospective undersampling and format conversion: see fmr_undersample_file in fmrecon/io.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"
#include "fmrecon/sense.h"
#include "recon/provenance.h"

enum { ROUND = 4 };

typedef struct {
    fmr_dataset *ds;
    const fmr_dataset_info *in;
    float *mask;      /* frames x w, final */
    int perframe;     /* mask differs between frames */
    int ref_mode;     /* 0 none, 1 copy, 2 compute */
    fmr_fft2c *fft;
    fmr_cfloat *ks, *coil; /* ROUND items; one item of coil images */
    fmr_h5out *out;
    float *ref;
    double max, sumsq;
} job;

/* Fully sampled: no mask and every acquired column of item (0, 0) holds data. */
static fmr_err fully_sampled(job *j, int *full)
{
    const fmr_dataset_info *in = j->in;
    *full = 0;
    if (in->mask != FMR_MASK_NONE) return FMR_OK;
    FMR_TRY(fmr_dataset_read_kspace(j->ds, 0, 0, 0, in->coils, j->ks));
    size_t hw = in->h * in->w;
    for (size_t c = in->pad_left; c < in->pad_right; c++) {
        int any = 0;
        for (size_t i = c; i < in->coils * hw && !any; i += in->w) any = j->ks[i] != 0.0f;
        if (!any) return FMR_OK;
    }
    *full = 1;
    return FMR_OK;
}

/* Columns of item (0, 0) that hold data (1) or are empty (0): the sampling of a file without a
 * mask (zero lines of a prospectively undersampled acquisition). */
static fmr_err occupied_columns(job *j, float *occ)
{
    const fmr_dataset_info *in = j->in;
    FMR_TRY(fmr_dataset_read_kspace(j->ds, 0, 0, 0, in->coils, j->ks));
    const size_t hw = in->h * in->w;
    for (size_t c = 0; c < in->w; c++) {
        int any = 0;
        for (size_t i = c; i < in->coils * hw && !any; i += in->w) any = j->ks[i] != 0.0f;
        occ[c] = any ? 1.0f : 0.0f;
    }
    return FMR_OK;
}

/* What the input itself sampled, against what the new mask asks for, over every frame's
 * acquired columns [pad_left, pad_right). */
typedef struct {
    size_t acquired;   /* acquired columns x frames */
    size_t own;        /* of those, sampled by the input */
    size_t out;        /* sampled by the output (new mask AND the input's sampling) */
    size_t missing;    /* asked for by the new mask but not sampled by the input */
} resampling;

static fmr_err build_mask(job *j, const fmr_mask_spec *spec, size_t *acs, resampling *rs)
{
    const fmr_dataset_info *in = j->in;
    const size_t w = in->w, T = in->frames;
    float *own = malloc(w * sizeof *own), *occ = malloc(w * sizeof *occ);
    j->mask = malloc(T * w * sizeof *j->mask);
    memset(rs, 0, sizeof *rs);
    if (!own || !occ || !j->mask) {
        free(own);
        free(occ);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate masks");
    }
    fmr_err err = spec ? fmr_mask_generate(spec, w, T, j->mask, acs) : FMR_OK;
    /* a file without a mask is sampled where its k-space holds data */
    if (!err) err = in->mask == FMR_MASK_NONE ? occupied_columns(j, occ) : FMR_OK;
    for (size_t t = 0; !err && t < T; t++) {
        err = fmr_dataset_read_mask(j->ds, t, own);
        for (size_t c = 0; !err && c < w; c++) {
            const int inside = c >= in->pad_left && c < in->pad_right;
            const int have = own[c] != 0.0f && (in->mask != FMR_MASK_NONE || occ[c] != 0.0f);
            const int want = spec ? j->mask[t * w + c] != 0.0f : have;
            if (inside) rs->acquired++, rs->own += have, rs->missing += want && !have, rs->out += want && have;
            j->mask[t * w + c] = spec ? j->mask[t * w + c] * own[c] : own[c];
        }
    }
    free(own);
    free(occ);
    j->perframe = 0;
    for (size_t t = 1; !err && t < T; t++)
        if (memcmp(j->mask, j->mask + t * w, w * sizeof *j->mask)) j->perframe = 1;
    return err;
}

/* Undersampling data that is already undersampled multiplies two masks: the result's effective
 * R is above the nominal one the study reports. Refused unless asked for with allow_subset, and
 * then only when the new mask needs no line the input lacks (so nominal and effective agree). */
static fmr_err check_resampling(const char *path, const fmr_mask_spec *spec, const resampling *rs)
{
    if (!spec || !rs->acquired) return FMR_OK;
    const double in_r = rs->own ? (double)rs->acquired / (double)rs->own : INFINITY;
    const double out_r = rs->out ? (double)rs->acquired / (double)rs->out : INFINITY;
    if (rs->own == rs->acquired) {
        fmr_info("undersample: %s mask, nominal R = %g, effective R = %.2f (%zu of %zu acquired lines over all frames)",
                 fmr_mask_type_name(spec->type), spec->accel, out_r, rs->out, rs->acquired);
        return FMR_OK;
    }
    if (!spec->allow_subset)
        return fmr_error(FMR_ERR_ARG,
                         "%s: already undersampled (effective R = %.2f: %zu of %zu acquired phase-encode lines); "
                         "a %s mask with nominal R = %g on it would give effective R = %.2f. Use --mask keep, or "
                         "--allow-subset for a mask that keeps a subset of the acquired lines",
                         path, in_r, rs->own, rs->acquired, fmr_mask_type_name(spec->type), spec->accel, out_r);
    if (rs->missing)
        return fmr_error(FMR_ERR_ARG,
                         "%s: already undersampled (effective R = %.2f) and the %s mask with nominal R = %g needs "
                         "%zu lines it did not acquire: not a subset (--allow-subset)",
                         path, in_r, fmr_mask_type_name(spec->type), spec->accel, rs->missing);
    fmr_info("undersample: %s is already undersampled (effective R = %.2f); the %s mask (nominal R = %g) keeps a "
             "subset of its lines: effective R = %.2f",
             path, in_r, fmr_mask_type_name(spec->type), spec->accel, out_r);
    return FMR_OK;
}

static fmr_err do_item(job *j, size_t t, size_t z, fmr_cfloat *ks, float *ref)
{
    const fmr_dataset_info *in = j->in;
    const size_t hw = in->h * in->w;
    FMR_TRY(fmr_dataset_read_kspace(j->ds, t, z, 0, in->coils, ks));
    if (j->ref_mode == 1) {
        FMR_TRY(fmr_dataset_read_reference(j->ds, t, z, ref));
    } else if (j->ref_mode == 2) {
        FMR_TRY(fmr_fft2c_inverse(j->fft, in->coils, ks, j->coil));
        fmr_rss(j->coil, in->coils, hw, ref);
    }
    if (j->ref_mode)
        for (size_t i = 0; i < hw; i++) {
            if (ref[i] > j->max) j->max = ref[i];
            j->sumsq += (double)ref[i] * ref[i];
        }
    const float *m = j->mask + t * in->w;
    for (size_t i = 0; i < in->coils * hw; i++) ks[i] *= m[i % in->w];
    return FMR_OK;
}

static fmr_err us_compute(void *c, size_t t, size_t z, size_t slot)
{
    job *j = c;
    const size_t hw = j->in->h * j->in->w;
    return do_item(j, t, z, j->ks + slot * j->in->coils * hw, j->ref + slot * hw);
}

static fmr_err us_flush(void *c, size_t n, const size_t *lead)
{
    job *j = c;
    fmr_err e1 = fmr_h5out_write_blocks(j->out, "kspace", n, 2, lead, j->ks);
    fmr_err e2 = j->ref_mode ? fmr_h5out_write_blocks(j->out, "reconstruction_rss", n, 2, lead, j->ref) : FMR_OK;
    return e1 ? e1 : e2;
}

fmr_err fmr_undersample_file(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                             const fmr_mask_spec *spec, const char *out_path, const char *argv_line)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    job j = {0};
    size_t acs = 0;
    resampling rs = {0};
    int full = 0;
    fmr_err err = fmr_dataset_open(in_path, open, &j.ds);
    if (!err) {
        j.in = fmr_dataset_get_info(j.ds);
        size_t hw = j.in->h * j.in->w;
        err = fmr_alloc((void **)&j.ks, ROUND * j.in->coils * hw * sizeof *j.ks, "k-space");
        if (!err) err = fmr_alloc((void **)&j.coil, j.in->coils * hw * sizeof *j.coil, "coil images");
        if (!err) err = fmr_alloc((void **)&j.ref, ROUND * hw * sizeof *j.ref, "reference");
        if (!err) err = fmr_fft2c_create(&j.fft, j.in->h, j.in->w);
        if (!err) err = build_mask(&j, spec, &acs, &rs);
        if (!err) err = check_resampling(in_path, spec, &rs);
        if (!err) err = fully_sampled(&j, &full);
        if (!err) {
            if (j.in->has_reference && j.in->ref_h == j.in->h && j.in->ref_w == j.in->w) j.ref_mode = 1;
            else if (full) j.ref_mode = 2;
        }
    }
    fmr_err g = fmr_agree(comm, err);
    if (!err && g) err = fmr_error(g, "%s: another rank could not open the input", in_path);
    fmr_h5out *o = NULL;
    if (!err) err = fmr_h5out_create(comm, out_path, &o);
    if (!err) {
        const fmr_dataset_info *in = j.in;
        size_t kd[5] = {in->frames, in->slices, in->coils, in->h, in->w};
        size_t md[2] = {j.perframe ? in->frames : 1, in->w};
        fmr_err e = FMR_OK, ea;
#define KEEP(call) (ea = (call), e = e ? e : ea)
        KEEP(fmr_h5out_add_dataset(o, "kspace", FMR_C64, 5, kd));
        if (j.ref_mode) KEEP(fmr_h5out_add_dataset(o, "reconstruction_rss", FMR_F32, 4, (size_t[]){in->frames, in->slices, in->h, in->w}));
        KEEP(fmr_h5out_add_dataset(o, "mask", FMR_U8, j.perframe ? 2 : 1, j.perframe ? md : md + 1));
        unsigned char *m8 = malloc(md[0] * in->w);
        for (size_t i = 0; m8 && i < md[0] * in->w; i++) m8[i] = j.mask[i] != 0.0f;
        KEEP(m8 ? fmr_h5out_write_whole(o, "mask", rank == 0, m8) : fmr_error(FMR_ERR_NOMEM, "mask"));
        free(m8);
        j.out = o;
        fmr_item_loop loop = {.frames = in->frames, .slices = in->slices, .batch = ROUND,
                              .compute = us_compute, .flush = us_flush, .ctx = &j, .label = "undersample"};
        if (!e) e = fmr_item_loop_run(comm, &loop);
        double mx = j.max, sq = j.sumsq;
        MPI_Allreduce(&j.max, &mx, 1, MPI_DOUBLE, MPI_MAX, comm);
        MPI_Allreduce(&j.sumsq, &sq, 1, MPI_DOUBLE, MPI_SUM, comm);
        if (j.ref_mode) {
            KEEP(fmr_h5out_attr_double(o, NULL, "max", mx));
            KEEP(fmr_h5out_attr_double(o, NULL, "norm", sqrt(sq)));
        }
        KEEP(fmr_h5out_attr_string(o, NULL, "acquisition", in->acquisition[0] ? in->acquisition : in->format_name));
        KEEP(fmr_h5out_attr_string(o, NULL, "source_file", in_path));
        KEEP(fmr_h5out_attr_string(o, NULL, "source_format", in->format_name));
        KEEP(fmr_h5out_attr_string(o, NULL, "source_variable", in->variable));
        KEEP(fmr_h5out_attr_string(o, NULL, "reference_source", j.ref_mode == 1 ? "copied from the source"
                                                         : j.ref_mode == 2 ? "root-sum-of-squares of the fully sampled source"
                                                                           : "none (source not fully sampled)"));
        KEEP(fmr_h5out_attr_string(o, NULL, "mask_type", spec ? fmr_mask_type_name(spec->type) : "from source"));
        if (spec) {
            KEEP(fmr_h5out_attr_double(o, NULL, "acceleration", spec->accel)); /* nominal */
            KEEP(fmr_h5out_attr_int(o, NULL, "acs_lines", (int64_t)acs));
            KEEP(fmr_h5out_attr_int(o, NULL, "mask_seed", (int64_t)spec->seed));
        }
        if (rs.acquired && rs.own)
            KEEP(fmr_h5out_attr_double(o, NULL, "source_effective_acceleration", (double)rs.acquired / (double)rs.own));
        if (rs.acquired && rs.out)
            KEEP(fmr_h5out_attr_double(o, NULL, "effective_acceleration", (double)rs.acquired / (double)rs.out));
        KEEP(fmr_h5out_attr_string(o, NULL, "fmrecon_version", fmr_version()));
        if (argv_line) KEEP(fmr_h5out_attr_string(o, NULL, "command", argv_line));
        char *par = NULL; /* collective: every rank builds it (rank 0 hashes the input) */
        KEEP(fmr_prov_undersample_json(comm, in_path, open, spec, acs, &par));
        KEEP(par ? fmr_h5out_attr_string(o, NULL, "parameters", par) : FMR_OK);
        free(par);
        /* the geometry and the ISMRMRD header go on with the data (docs/formats.md) */
        KEEP(fmr_h5out_attr_geometry(o, fmr_dataset_get_geometry(j.ds)));
        if (fmr_dataset_header_xml(j.ds)) KEEP(fmr_h5out_add_string(o, "ismrmrd_header", fmr_dataset_header_xml(j.ds)));
#undef KEEP
        err = fmr_h5out_finish(&o, e);
    }
    fmr_fft2c_destroy(&j.fft);
    fmr_free(j.ks);
    fmr_free(j.coil);
    fmr_free(j.ref);
    free(j.mask);
    fmr_dataset_close(&j.ds);
    return err;
}

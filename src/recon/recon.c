/* The reconstruction pipeline shared by every method: read item -> apply mask -> method -> write.
 * Items are (frame, slice) pairs, dealt to ranks in contiguous blocks; results go out in rounds of
 * collective writes so memory stays bounded by the batch size, not the dataset. */
#include "fmrecon/recon.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fmrecon/log.h"

typedef struct {
    fmr_dataset *ds;
    const fmr_dataset_info *in;
    const fmr_method_ops *m;
    void *state;
    fmr_h5out *out;
    int write_complex;
} pipeline;

static fmr_err write_header(pipeline *p, const char *in_path, const fmr_recon_options *opt, int nranks)
{
    const fmr_dataset_info *in = p->in;
    size_t d4[4] = {in->frames, in->slices, in->h, in->w};
    FMR_TRY(fmr_h5out_add_dataset(p->out, "reconstruction", FMR_F32, 4, d4));
    if (p->write_complex) FMR_TRY(fmr_h5out_add_dataset(p->out, "image", FMR_C64, 4, d4));
    struct stat st;
    long long size = stat(in_path, &st) == 0 ? (long long)st.st_size : -1;
    cJSON *par = cJSON_CreateObject();
    cJSON_AddStringToObject(par, "method", p->m->name);
    cJSON_AddStringToObject(par, "mask", in->mask == FMR_MASK_NONE ? "none (fully sampled)"
                                         : in->mask == FMR_MASK_SHARED ? "from input, shared"
                                                                       : "from input, per frame");
    cJSON_AddNumberToObject(par, "pad_left", (double)in->pad_left);
    cJSON_AddNumberToObject(par, "pad_right", (double)in->pad_right);
    cJSON_AddNumberToObject(par, "ranks", nranks);
    cJSON_AddBoolToObject(par, "complex_image", p->write_complex);
    char *json = cJSON_PrintUnformatted(par);
    cJSON_Delete(par);
    if (!json) return fmr_error(FMR_ERR_NOMEM, "cannot format parameters");
    /* Attribute writes are collective in parallel HDF5: every rank makes every call, whatever
     * failed before, and keeps the first error. */
    fmr_err err = FMR_OK, e;
#define KEEP(call) (e = (call), err = err ? err : e)
    KEEP(fmr_h5out_attr_string(p->out, NULL, "method", p->m->name));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "parameters", json));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "fmrecon_version", fmr_version()));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "input_file", in_path));
    KEEP(fmr_h5out_attr_int(p->out, NULL, "input_size", size));
    KEEP(fmr_h5out_attr_string(p->out, NULL, "input_format", in->format_name));
    if (opt->argv_line) KEEP(fmr_h5out_attr_string(p->out, NULL, "command", opt->argv_line));
    KEEP(fmr_h5out_attr_string(p->out, "reconstruction", "axes", "frame,slice,readout,phase_encode"));
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
        for (size_t c = 0; !err && c < in->w; c++) m8[t * in->w + c] = row[c] != 0.0f;
    }
    fmr_err werr;
    if (nd == 2) {
        size_t *leads = malloc(nf * sizeof *leads);
        for (size_t t = 0; leads && t < nf; t++) leads[t] = t;
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
    size_t n;        /* items in this batch */
    size_t *lead;    /* n*2: (frame, slice) */
    float *mag;      /* n*h*w */
    fmr_cfloat *img; /* n*h*w or NULL */
} batch_buf;

static fmr_err run_item(pipeline *p, size_t t, size_t z, fmr_cfloat *ks, float *mask, float *mag,
                        fmr_cfloat *img, fmr_recon_stats *st)
{
    const fmr_dataset_info *in = p->in;
    const size_t hw = in->h * in->w;
    double t0 = fmr_wtime();
    FMR_TRY(fmr_dataset_read_kspace(p->ds, t, z, 0, in->coils, ks));
    FMR_TRY(fmr_dataset_read_mask(p->ds, t, mask));
    double t1 = fmr_wtime();
    /* The data seen by every method is M.y: retrospective masks act on fully sampled files, and
     * prospective files already hold zeros there. */
    for (size_t c = 0; c < in->coils; c++)
        for (size_t r = 0; r < in->h; r++) {
            fmr_cfloat *row = ks + c * hw + r * in->w;
            for (size_t q = 0; q < in->w; q++) row[q] *= mask[q];
        }
    FMR_TRY(p->m->run(p->state, ks, mask, mag, img));
    st->read_s += t1 - t0;
    st->compute_s += fmr_wtime() - t1;
    return FMR_OK;
}

static fmr_err process(pipeline *p, MPI_Comm comm, int size, int batch,
                       fmr_recon_stats *st)
{
    const fmr_dataset_info *in = p->in;
    const size_t hw = in->h * in->w, nitems = in->frames * in->slices;
    size_t first, count, rounds;
    FMR_TRY(fmr_partition_rounds(comm, nitems, (size_t)batch, &first, &count, &rounds));

    batch_buf b = {0};
    fmr_cfloat *ks = NULL;
    float *mask = NULL;
    fmr_err err = fmr_alloc((void **)&ks, in->coils * hw * sizeof *ks, "k-space item");
    if (!err) err = fmr_alloc((void **)&mask, in->w * sizeof *mask, "mask");
    if (!err) err = fmr_alloc((void **)&b.lead, 2 * (size_t)batch * sizeof *b.lead, "batch");
    if (!err) err = fmr_alloc((void **)&b.mag, (size_t)batch * hw * sizeof *b.mag, "batch images");
    if (!err && p->write_complex)
        err = fmr_alloc((void **)&b.img, (size_t)batch * hw * sizeof *b.img, "batch images");

    fmr_progress *prog = NULL;
        char label[64];
    snprintf(label, sizeof label, "recon %s", p->m->name);
    if (!err) err = fmr_progress_create(&prog, label, "items", count * (size_t)size);
    size_t next = first, end = first + count;
    for (size_t r = 0; r < rounds; r++) {
        b.n = 0;
        /* After a local failure this rank keeps joining the collective writes with nothing to add,
         * so the other ranks never hang; the failure is agreed on in fmr_h5out_finish. */
        while (!err && b.n < (size_t)batch && next < end) {
            size_t t = next / in->slices, z = next % in->slices;
            err = run_item(p, t, z, ks, mask, b.mag + b.n * hw, b.img ? b.img + b.n * hw : NULL, st);
            if (err) {
                fmr_error_context(err, "frame %zu slice %zu: ", t, z);
                break;
            }
            b.lead[2 * b.n] = t;
            b.lead[2 * b.n + 1] = z;
            b.n++;
            next++;
            fmr_progress_step(prog, (size_t)size);
        }
        double t0 = fmr_wtime();
        size_t nw = err ? 0 : b.n;
        fmr_err werr = fmr_h5out_write_blocks(p->out, "reconstruction", nw, 2, b.lead, b.mag);
        if (p->write_complex) {
            fmr_err e2 = fmr_h5out_write_blocks(p->out, "image", nw, 2, b.lead, b.img);
            if (!werr) werr = e2;
        }
        if (!err) err = werr;
        st->write_s += fmr_wtime() - t0;
    }
    fmr_progress_finish(&prog);
    fmr_free(ks);
    fmr_free(mask);
    fmr_free(b.lead);
    fmr_free(b.mag);
    fmr_free(b.img);
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

    /* Opening is local, but every rank must agree before the collective output exists. */
    fmr_err err = fmr_dataset_open(in_path, &opt->open, &p.ds);
    if (!err) {
        p.in = fmr_dataset_get_info(p.ds);
        err = p.m->create(&p.state, p.in);
    }
    int l = (int)err, g = 0;
    MPI_Allreduce(&l, &g, 1, MPI_INT, MPI_MAX, comm);
    if (!err && g) err = fmr_error((fmr_err)g, "%s: another rank could not open the input", in_path);
    if (!err) err = fmr_h5out_create(comm, out_path, &p.out);
    if (!err) {
        err = write_header(&p, in_path, opt, size);
        fmr_err e = write_mask(&p, rank); /* collective: called even after a header error */
        if (!err) err = e;
        l = (int)err;
        MPI_Allreduce(&l, &g, 1, MPI_INT, MPI_MAX, comm);
        if (!g) err = process(&p, comm, size, batch, &st);
        else if (!err) err = fmr_error((fmr_err)g, "%s: another rank failed writing the header", out_path);
        err = fmr_h5out_finish(&p.out, err);
        if (!err) st.items = p.in->frames * p.in->slices;
    }
    if (p.state) p.m->destroy(p.state);
    fmr_dataset_close(&p.ds);
    st.seconds = fmr_wtime() - t0;
    if (stats) *stats = st;
    return err;
}

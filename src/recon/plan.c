/* fmr_plan: memory per rank and wall time of a reconstruction before launch (docs/cluster.md).
 * Memory is the per-part formula of docs/scaling.md; the part no formula can know (libraries,
 * MPI, PETSc, oneDNN and the network's weights) is measured: the calibration's peak resident set
 * minus the formula's parts for the calibration itself. Time is the cost model of docs/scaling.md
 * with t_item and the per-slice coil-calibration cost measured on the first items. */
#include "fmrecon/plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fmrecon/array.h"
#include "fmrecon/log.h"

/* Open MPI's per-process cost of each further rank of the job (shared-memory FIFOs and
 * fragments, TCP endpoints), and of a job with more than one rank at all (measured on this
 * build: zf on a tiny input, P = 1, 2, 4: docs/cluster.md) */
#define MPI_JOB_BYTES (6.0 * 1024 * 1024)
#define MPI_PEER_BYTES (1.0 * 1024 * 1024)
/* sustained HDF5 write rate assumed for the output (parallel file system, collective I/O) */
#define WRITE_BPS (300e6)
/* launcher start-up: mpiexec of Open MPI 4.1 on this build, 0.25 s + 0.03 s per rank
 * (bench/plan_accuracy.py, zf on small inputs) */
#define LAUNCH_S 0.25
#define LAUNCH_PER_RANK_S 0.03

static double proc_age_s(void)
{
    /* seconds since this process started: /proc/self/stat field 22 (clock ticks since boot) */
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    unsigned long long start = 0;
    /* after ") " come fields 3.. ; starttime is field 22 */
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        if (++field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    double up = 0;
    f = fopen("/proc/uptime", "r");
    if (!f) return 0;
    if (fscanf(f, "%lf", &up) != 1) up = 0;
    fclose(f);
    long tck = sysconf(_SC_CLK_TCK);
    double age = up - (double)start / (double)(tck > 0 ? tck : 100);
    return age > 0 ? age : 0;
}

static int is_zf(const char *m) { return !strcmp(m, "zf"); }
static int is_cs(const char *m) { return !strcmp(m, "cs"); }
static int is_unrolled(const char *m) { return !strcmp(m, "unrolled"); }

/* The formula's parts for shape (F, C, h, w) on coil groups of K (docs/scaling.md, "Memory per
 * rank"); output and MPI parts are added by the caller. */
static void mem_parts(const char *method, int per_slice, size_t F, size_t C, size_t h, size_t w,
                      int K, int threads, int own_maps, fmr_plan *pl)
{
    const double hw = (double)h * (double)w, Fi = per_slice ? (double)F : 1.0;
    const double CK = ceil((double)C / K);
    pl->mem_kspace = 8 * Fi * CK * hw + 4 * Fi * (double)w;
    pl->mem_calib = pl->mem_maps = pl->mem_solver = pl->mem_method = 0;
    if (is_zf(method)) {
        pl->mem_method = 8 * hw * threads; /* per-coil inverse FFT scratch */
        return;
    }
    if (!own_maps) { /* ESPIRiT: the slice's time-averaged calibration data, then its maps */
        pl->mem_calib = 8 * (double)F * (double)C * hw + 8 * (double)C * hw;
    }
    pl->mem_maps = 8 * (double)C * hw;
    /* SENSE operator scratch and PETSc's CG vectors (the image is split across the group) */
    pl->mem_solver = 8 * hw * (3 + 2 * threads) + 6 * 16 * Fi * hw / K;
    if (is_cs(method)) pl->mem_method = 48 * (double)F * hw; /* the slice's ADMM time series */
    /* unrolled: the cascades' outputs; encoder/decoder weights and activations are measured */
    if (is_unrolled(method)) pl->mem_method = 8 * 9 * (double)F * hw;
}

fmr_err fmr_plan_calibrate(const char *in_path, const fmr_recon_options *opt, fmr_plan_calibration *cal)
{
    memset(cal, 0, sizeof *cal);
    const char *mname = opt->method ? opt->method : "zf";
    const fmr_method_ops *m = fmr_method_find(mname);
    if (!m) return fmr_error(FMR_ERR_ARG, "unknown method '%s'", mname);
    snprintf(cal->method, sizeof cal->method, "%s", m->name);
    cal->t_start_s = proc_age_s();
    cal->threads = omp_get_max_threads();
    double t0 = fmr_wtime();
    fmr_dataset *ds = NULL;
    FMR_TRY(fmr_dataset_open(in_path, &opt->open, &ds));
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    cal->frames = in->frames, cal->slices = in->slices, cal->coils = in->coils, cal->h = in->h,
    cal->w = in->w;
    fmr_method_params par = opt->params;
    par.coil_comm = MPI_COMM_SELF, par.coil0 = 0, par.ncoils = in->coils, par.fft_slabs = 0;
    void *state = NULL;
    fmr_err err = m->create(&state, ds, &par);
    const size_t hw = in->h * in->w, F = m->per_slice ? in->frames : 1, n = in->coils * hw;
    fmr_cfloat *ks = NULL;
    float *mask = NULL, *mag = NULL;
    if (!err) err = fmr_alloc((void **)&ks, F * n * sizeof *ks, "calibration k-space");
    if (!err) err = fmr_alloc((void **)&mask, F * in->w * sizeof *mask, "calibration masks");
    if (!err) err = fmr_alloc((void **)&mag, F * hw * sizeof *mag, "calibration image");
    double t1 = fmr_wtime(), tt[2] = {0, 0};
    const int nrun = (!m->per_slice && in->frames > 1) ? 2 : 1;
    for (int k = 0; !err && k < nrun; k++) {
        double a = fmr_wtime();
        for (size_t f = 0; !err && f < F; f++) {
            size_t t = m->per_slice ? f : (size_t)k;
            err = fmr_dataset_read_kspace(ds, t, 0, 0, in->coils, ks + f * n);
            if (!err) err = fmr_dataset_read_mask(ds, t, mask + f * in->w);
        }
        for (size_t f = 0; !err && f < F; f++)
            for (size_t i = 0; i < n; i++)
                ks[f * n + i] *= mask[f * in->w + i % in->w];
        if (!err) err = m->run(state, m->per_slice ? 0 : (size_t)k, F, 0, ks, mask, mag, NULL);
        tt[k] = fmr_wtime() - a;
    }
    if (!err) {
        cal->t_open_s = t1 - t0;
        if (nrun == 2) {
            cal->t_item_s = tt[1];
            cal->t_maps_s = tt[0] > tt[1] ? tt[0] - tt[1] : 0;
        } else {
            cal->t_item_s = tt[0];
            cal->t_maps_s = 0; /* per-slice items already include their coil calibration */
        }
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) cal->peak_rss_bytes = (double)ru.ru_maxrss * 1024.0;
        fmr_plan p;
        mem_parts(m->name, m->per_slice, in->frames, in->coils, in->h, in->w, 1, cal->threads,
                  par.sens_file != NULL, &p);
        double parts = p.mem_kspace + p.mem_calib + p.mem_maps + p.mem_solver + p.mem_method;
        cal->runtime_bytes = cal->peak_rss_bytes - parts;
        if (cal->runtime_bytes < 0) cal->runtime_bytes = 0;
    }
    fmr_free(ks);
    fmr_free(mask);
    fmr_free(mag);
    if (state) m->destroy(state);
    fmr_dataset_close(&ds);
    return err;
}

void fmr_plan_calibration_rescale(const fmr_plan_calibration *cal, const fmr_dataset_info *in,
                                  fmr_plan_calibration *out)
{
    *out = *cal;
    const double px0 = (double)cal->h * (double)cal->w, px = (double)in->h * (double)in->w;
    /* FFT-dominated work: pixels x log(pixels) per coil */
    const double s = ((double)in->coils * px * log2(px > 2 ? px : 2)) /
                     ((double)cal->coils * px0 * log2(px0 > 2 ? px0 : 2));
    const fmr_method_ops *m = fmr_method_find(cal->method);
    const double fr = (m && m->per_slice) ? (double)in->frames / (double)cal->frames : 1.0;
    out->t_item_s = cal->t_item_s * s * fr;
    out->t_maps_s = cal->t_maps_s * s * (double)in->frames / (double)cal->frames;
    out->frames = in->frames, out->slices = in->slices, out->coils = in->coils, out->h = in->h,
    out->w = in->w;
}

fmr_err fmr_plan_compute(const fmr_dataset_info *in, const fmr_recon_options *opt,
                         const fmr_plan_calibration *cal, const fmr_plan_options *po, fmr_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    const char *mname = opt->method ? opt->method : "zf";
    const fmr_method_ops *m = fmr_method_find(mname);
    if (!m) return fmr_error(FMR_ERR_ARG, "unknown method '%s'", mname);
    if (strcmp(m->name, cal->method))
        return fmr_error(FMR_ERR_ARG, "the calibration is for method '%s', not '%s'", cal->method,
                         m->name);
    const int P = po->ranks > 0 ? po->ranks : 1, K = opt->coil_ranks > 0 ? opt->coil_ranks : 1;
    if (P % K)
        return fmr_error(FMR_ERR_ARG, "--coil-ranks %d does not divide the %d ranks", K, P);
    if ((size_t)K > in->coils)
        return fmr_error(FMR_ERR_ARG, "--coil-ranks %d exceeds the %zu coils", K, in->coils);
    const int rpn = po->ranks_per_node > 0 ? (po->ranks_per_node < P ? po->ranks_per_node : P) : P;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const int cores = po->cores_per_node > 0 ? po->cores_per_node : (int)(ncpu > 0 ? ncpu : 1);
    const double alpha = po->latency_s > 0 ? po->latency_s : 2e-6;
    const double beta = po->bandwidth_Bps > 0 ? po->bandwidth_Bps : 10e9;
    const int threads = cal->threads > 0 ? cal->threads : 1;
    const size_t F = in->frames, hw = in->h * in->w;
    const size_t Fi = m->per_slice ? F : 1;

    /* ---- memory per rank */
    pl->coil_ranks = K;
    pl->coils_per_rank = (int)ceil((double)in->coils / K);
    mem_parts(m->name, m->per_slice, F, in->coils, in->h, in->w, K, threads,
              opt->params.sens_file != NULL, pl);
    const double B = (m->per_slice || opt->dynamic) ? 1 : (opt->batch > 0 ? opt->batch : 8);
    pl->mem_output = B * (double)Fi * (double)hw * (4 + (opt->write_complex ? 8 : 0));
    pl->mem_mpi = P > 1 ? MPI_JOB_BYTES + MPI_PEER_BYTES * (P - 1) : 0;
    pl->mem_runtime = cal->runtime_bytes;
    pl->peak_rss_per_rank_bytes = pl->mem_runtime + pl->mem_kspace + pl->mem_calib + pl->mem_maps +
                                  pl->mem_solver + pl->mem_method + pl->mem_output + pl->mem_mpi;

    /* ---- wall time: T = start + open + ceil(items / groups) (t_item / K + n_ar comm)
     *                      + slices per group x maps, x oversubscription, + write */
    pl->items = m->per_slice ? in->slices : F * in->slices;
    pl->groups = (size_t)(P / K);
    pl->items_per_group = (pl->items + pl->groups - 1) / pl->groups;
    if (m->per_slice)
        pl->slices_per_group = pl->items_per_group;
    else {
        size_t s = (pl->items_per_group + F - 1) / F;
        if (pl->groups > 1 && pl->items_per_group % F) s++; /* a block may straddle two slices */
        pl->slices_per_group = s < in->slices ? s : in->slices;
    }
    double n_ar = 0; /* coil-sum allreduces per item */
    if (K > 1) {
        const double cg = opt->params.max_it > 0 ? opt->params.max_it : 50;
        if (is_zf(m->name))
            n_ar = 1;
        else if (is_cs(m->name))
            n_ar = (opt->params.admm_iters > 0 ? opt->params.admm_iters : 30) * (cg + 1);
        else
            n_ar = cg + 1;
    }
    const double msg = 8.0 * (double)Fi * (double)hw;
    const double per_call = K > 1 ? 2 * log2((double)K) * alpha + 2.0 * (K - 1) / K * msg / beta : 0;
    pl->comm_bytes_per_rank = (double)pl->items_per_group * n_ar * 2.0 * (K - 1) / K * msg;
    /* only ranks with items compete for the cores (2 slices of cs on 4 ranks keep 2 busy) */
    const double busy = fmin((double)rpn, fmin((double)pl->groups, (double)pl->items) * K);
    pl->oversubscription = fmax(1.0, busy * threads / cores);
    pl->t_start = cal->t_start_s;
    pl->t_open = cal->t_open_s;
    pl->t_compute = (double)pl->items_per_group * cal->t_item_s / K * pl->oversubscription;
    pl->t_maps = (double)pl->slices_per_group * cal->t_maps_s * pl->oversubscription;
    pl->t_comm = (double)pl->items_per_group * n_ar * per_call;
    pl->t_write = (double)F * in->slices * hw * (4 + (opt->write_complex ? 8 : 0)) / WRITE_BPS;
    /* the launcher's own start-up (mpirun/srun and the ranks' connections; measured here) */
    pl->t_start += LAUNCH_S + LAUNCH_PER_RANK_S * P;
    pl->wall_seconds = pl->t_start + pl->t_open + pl->t_compute + pl->t_maps + pl->t_comm + pl->t_write;
    return FMR_OK;
}

static const char *cal_keys[] = {"frames", "slices", "coils", "h", "w", "threads", "t_item_s",
                                 "t_maps_s", "t_open_s", "t_start_s", "peak_rss_bytes",
                                 "runtime_bytes"};

fmr_err fmr_plan_calibration_save(const char *path, const fmr_plan_calibration *c)
{
    double v[] = {(double)c->frames, (double)c->slices, (double)c->coils, (double)c->h,
                  (double)c->w,      c->threads,        c->t_item_s,      c->t_maps_s,
                  c->t_open_s,       c->t_start_s,      c->peak_rss_bytes, c->runtime_bytes};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", c->method);
    for (size_t k = 0; k < sizeof v / sizeof *v; k++)
        cJSON_AddNumberToObject(o, cal_keys[k], v[k]);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return fmr_error(FMR_ERR_NOMEM, "out of memory (calibration JSON)");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(txt);
        return fmr_error(FMR_ERR_IO, "%s: cannot write", tmp);
    }
    int ok = fputs(txt, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    free(txt);
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return fmr_error(FMR_ERR_IO, "%s: cannot write", path);
    }
    return FMR_OK;
}

fmr_err fmr_plan_calibration_load(const char *path, fmr_plan_calibration *c)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open the calibration", path);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    if (!o) return fmr_error(FMR_ERR_FORMAT, "%s: not JSON", path);
    fmr_err err = FMR_OK;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "method");
    if (!cJSON_IsString(ms) || !fmr_method_find(ms->valuestring))
        err = fmr_error(FMR_ERR_FORMAT, "%s: no known 'method'", path);
    else
        snprintf(c->method, sizeof c->method, "%s", ms->valuestring);
    double v[sizeof cal_keys / sizeof *cal_keys];
    for (size_t k = 0; !err && k < sizeof v / sizeof *v; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, cal_keys[k]);
        if (!cJSON_IsNumber(x) || x->valuedouble < 0)
            err = fmr_error(FMR_ERR_FORMAT, "%s: missing or negative '%s'", path, cal_keys[k]);
        else
            v[k] = x->valuedouble;
    }
    cJSON_Delete(o);
    if (err) return err;
    if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1 || v[4] < 1)
        return fmr_error(FMR_ERR_FORMAT, "%s: the calibration's shape is empty", path);
    c->frames = (size_t)v[0], c->slices = (size_t)v[1], c->coils = (size_t)v[2], c->h = (size_t)v[3],
    c->w = (size_t)v[4], c->threads = (int)v[5];
    c->t_item_s = v[6], c->t_maps_s = v[7], c->t_open_s = v[8], c->t_start_s = v[9];
    c->peak_rss_bytes = v[10], c->runtime_bytes = v[11];
    return FMR_OK;
}

/* Memory and time of a reconstruction before it is launched (fmrecon plan, docs/cluster.md):
 * memory per rank from the per-part formula of docs/scaling.md, wall time from its cost model,
 * both calibrated by a short measurement on the first item(s) of the input, or by a saved
 * calibration. */
#ifndef FMRECON_PLAN_H
#define FMRECON_PLAN_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"
#include "fmrecon/io.h"
#include "fmrecon/recon.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* What a short measurement on one rank found (all coils, slice 0). */
typedef struct fmr_plan_calibration {
    char method[32];
    size_t frames, slices, coils, h, w; /* the input it was measured on */
    int threads;                        /* OpenMP threads of the measuring process */
    double t_item_s;   /* one item's compute (one frame; a whole slice for per-slice methods) */
    double t_maps_s;   /* the extra cost of a slice's first item (coil calibration) */
    double t_open_s;   /* opening the input and creating the method (weights, operators) */
    double t_start_s;  /* process start to the measurement (libraries, MPI, PETSc) */
    double peak_rss_bytes; /* the measuring process's peak resident set */
    double runtime_bytes;  /* peak_rss_bytes minus the formula's parts: libraries, weights */
} fmr_plan_calibration;

/* The job being planned. */
typedef struct fmr_plan_options {
    int ranks;          /* P */
    int ranks_per_node; /* 0: all ranks on one node (P) */
    int cores_per_node; /* 0: this machine's online CPUs */
    double latency_s, bandwidth_Bps; /* network (0: 2 us and 10 GB/s) */
} fmr_plan_options;

typedef struct fmr_plan {
    size_t items, groups, items_per_group, slices_per_group;
    int coil_ranks, coils_per_rank;
    /* peak resident set per rank and its parts (bytes) */
    double peak_rss_per_rank_bytes;
    double mem_runtime, mem_kspace, mem_calib, mem_maps, mem_solver, mem_method, mem_output, mem_mpi;
    /* wall time and its parts (seconds) */
    double wall_seconds;
    double t_start, t_open, t_compute, t_maps, t_comm, t_write;
    double comm_bytes_per_rank, oversubscription;
} fmr_plan;

/* Measures on this process (MPI_COMM_SELF, all coils): opens in_path, creates opt->method, and
 * reconstructs item (frame 0, slice 0) and, for per-frame methods, (frame 1, slice 0). */
fmr_err fmr_plan_calibrate(const char *in_path, const fmr_recon_options *opt, fmr_plan_calibration *cal);

/* Scales a calibration to another input of the same method (time per item by coils x pixels,
 * maps by frames x coils x pixels); the runtime part is kept. */
void fmr_plan_calibration_rescale(const fmr_plan_calibration *cal, const fmr_dataset_info *in,
                                  fmr_plan_calibration *out);

/* The plan of `opt` on an input of shape `in` with the job `po`. */
fmr_err fmr_plan_compute(const fmr_dataset_info *in, const fmr_recon_options *opt,
                         const fmr_plan_calibration *cal, const fmr_plan_options *po, fmr_plan *plan);

/* A calibration as JSON (save) and back (load; fails naming the file and the missing key). */
fmr_err fmr_plan_calibration_save(const char *path, const fmr_plan_calibration *cal);
fmr_err fmr_plan_calibration_load(const char *path, fmr_plan_calibration *cal);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

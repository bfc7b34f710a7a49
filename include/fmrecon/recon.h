/* Reconstruction of a whole file: items (frame, slice) are dealt to the ranks of a communicator,
 * each item goes through the chosen method, and all ranks write one shared output file. Every
 * method (zf, sense, cs, unrolled: fmr_method_list) plugs into the same pipeline through fmr_method. */
#ifndef FMRECON_RECON_H
#define FMRECON_RECON_H

#include <mpi.h>

#include "fmrecon/array.h"
#include "fmrecon/calib.h"
#include "fmrecon/error.h"
#include "fmrecon/io.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

#define FMR_CS_RHO_AUTO (-1.0)

/* Knobs of every method; fmr_method_params_defaults gives fmrecon's defaults. */
typedef struct fmr_method_params {
    double lambda;           /* sense: Tikhonov weight */
    double rho;              /* cs: ADMM penalty; FMR_CS_RHO_AUTO: 0.5 for cine, 0.1 for one frame */
    double rtol;             /* data-consistency CG relative tolerance */
    int max_it;              /* data-consistency CG iteration limit */
    fmr_espirit_opts espirit;
    const char *sens_file;   /* coil maps from a file instead of ESPIRiT */
    double lambda_t;         /* cs: weight of l1 in the temporal Fourier domain */
    double lambda_s;         /* cs: weight of spatial total variation */
    const char *reg;         /* cs: regulariser list "name:weight,..." (NULL: the defaults) */
    int admm_iters;          /* cs: ADMM iterations */
    const char *model_file;   /* unrolled: the model bundle (safetensors) */
    const char *weights_file; /* unrolled: the frozen encoder's checkpoint */
    /* Set by the pipeline: this rank's coils [coil0, coil0 + ncoils) of every item, shared with
     * the other ranks of coil_comm (MPI_COMM_SELF and all coils when ncoils is 0). */
    MPI_Comm coil_comm;
    size_t coil0, ncoils;
    int fft_slabs; /* slab mode: the group's ranks split each coil image in row slabs (FFTW-MPI) */
    int bf16;      /* unrolled: encoder and decoder in bf16 where the CPU has AVX512-BF16/AMX */
} fmr_method_params;

void fmr_method_params_defaults(fmr_method_params *p);
/* The cs regularisers accepted by fmr_method_params.reg, as --help text. */
const char *fmr_cs_reg_help(void);

/* Computes the coil maps every method uses (ESPIRiT on each slice's time-averaged k-space) and
 * writes them to out_path as `maps` (slices, coils, h, w) complex64, the layout --sens reads.
 * Collective over comm. */
fmr_err fmr_maps_write(MPI_Comm comm, const char *in_path, const fmr_open_options *open,
                       const fmr_espirit_opts *espirit, const char *out_path);

/* Seconds of this rank in the parts of a method, and the coil-sum traffic. */
typedef struct fmr_method_timing {
    double dc_s, fft_s, maps_s, comm_s, enc_s, dec_s;
    size_t comm_bytes, comm_calls;
} fmr_method_timing;

/* A reconstruction method: state created once per file, then applied to each item. An item is
 * one frame of one slice, or a whole slice (all frames) for methods that couple frames. */
typedef struct fmr_method_ops {
    const char *name;
    const char *summary;
    int produces_complex; /* whether run() can fill a complex coil-combined image */
    int per_slice;        /* items are whole slices (all frames), e.g. temporal regularisation */
    fmr_err (*create)(void **state, fmr_dataset *ds, const fmr_method_params *par);
    /* kspace: nframes x ncoils x h x w, already multiplied by the masks; masks: nframes x w.
     * Writes mag[nframes*h*w] and, if img != NULL, img[nframes*h*w]. */
    fmr_err (*run)(void *state, size_t frame0, size_t nframes, size_t slice,
                   const fmr_cfloat *kspace, const float *masks, float *mag, fmr_cfloat *img);
    void (*destroy)(void *state);
    /* Optional: where the method's time went (this rank). */
    void (*timing)(const void *state, struct fmr_method_timing *t);
    /* Optional: further complex images per frame (the unrolled network's cascade outputs),
     * written as datasets extra_name(k) when --save-cascades asks for them. extra_get copies
     * extra k of frame f of the last run() into out (h*w). */
    int (*extra_count)(const void *state);
    void (*extra_name)(const void *state, int k, char *buf, size_t n);
    void (*extra_get)(const void *state, int k, size_t f, fmr_cfloat *out);
    /* Optional: the method's effective settings as JSON object text (malloc'd, caller frees),
     * recorded in the output's `parameters` as "method_parameters". */
    char *(*describe)(const void *state);
} fmr_method_ops;

/* The method registered under name, or NULL. */
const fmr_method_ops *fmr_method_find(const char *name);
/* NULL-terminated list of every method. */
const fmr_method_ops *const *fmr_method_list(void);

typedef struct fmr_recon_options {
    const char *method;   /* "zf" */
    int write_complex;    /* also write the complex image (methods that produce one) */
    int save_extras;      /* also write the method's extra images (e.g. every cascade) */
    int coil_ranks;       /* ranks per item, sharing its coils (default 1; must divide the ranks) */
    int dynamic;          /* hand items to groups as they free up (independent writes) */
    int fft_slabs;        /* coil groups split images in row slabs (FFTW-MPI) instead of coils */
    int batch;            /* items per rank per collective write (default 8) */
    const char *argv_line; /* the command line, recorded in the output's attributes (may be NULL) */
    fmr_open_options open; /* how to read the input (variable, mask file) */
    fmr_method_params params;
} fmr_recon_options;

/* Fills opt with defaults (method zf, default parameters). */
void fmr_recon_options_defaults(fmr_recon_options *opt);

typedef struct fmr_recon_stats {
    size_t items;         /* items reconstructed by all ranks */
    double seconds;       /* wall time of the whole call */
    double read_s, compute_s, write_s; /* this rank's phase times */
    double dc_s, fft_s;   /* this rank's data-consistency time and the FFTW part of it */
    fmr_method_timing method; /* all of the method's timing */
    double peak_rss_mb;   /* this rank's peak resident memory */
} fmr_recon_stats;

/* Collective over comm. On any failure no output file is left behind. */
fmr_err fmr_recon_file(MPI_Comm comm, const char *in_path, const char *out_path,
                       const fmr_recon_options *opt, fmr_recon_stats *stats);

/* Contiguous block of n items for rank of size ranks: [*start, *start + *count). */
void fmr_partition_block(size_t n, int rank, int size, size_t *start, size_t *count);

/* Collective: this rank's block of n items over comm, and how many rounds of at most batch items
 * per rank every rank must take part in (the largest block decides). */
fmr_err fmr_partition_rounds(MPI_Comm comm, size_t n, size_t batch, size_t *start, size_t *count,
                             size_t *rounds);

/* The same for groups of ranks: this group's block of the n items dealt to `groups` groups. */
fmr_err fmr_partition_rounds_groups(MPI_Comm comm, size_t n, size_t batch, int group, int groups, size_t *start,
                                    size_t *count, size_t *rounds);

/* The items (frame, slice) of a cine, in slice-major order, dealt to the ranks of comm in blocks and processed in
 * rounds: in each round a rank computes up to batch items into slots 0..batch-1, then every rank
 * joins one collective flush with the (frame, slice) pairs it completed. After each flush the ranks
 * agree on whether any failed; if one did, every rank stops after that same round (no rank waits
 * in a collective, no empty rounds are run). The error (prefixed "frame t slice z: ", or "another
 * rank failed" on the others) is returned for fmr_h5out_finish to agree on. */
typedef struct fmr_item_loop {
    size_t frames, slices, batch;
    /* Coil groups: items are dealt to `groups` groups of ranks (0 = one per rank); every rank of
     * a group computes the same items, its rank 0 (group_rank) contributes them to the flush. */
    int groups, group, group_rank;
    /* Dynamic: items are fetched one at a time from a counter on rank 0 (MPI one-sided) by each
     * group's rank 0 and shared with the group; flush is then called per item and is not
     * collective (the caller writes independently). group_comm: the group's ranks. */
    int dynamic;
    MPI_Comm group_comm;
    fmr_err (*compute)(void *ctx, size_t frame, size_t slice, size_t slot);
    fmr_err (*flush)(void *ctx, size_t n, const size_t *lead); /* lead: n (frame, slice) pairs */
    void *ctx;
    const char *label; /* progress label; NULL for none */
} fmr_item_loop;

fmr_err fmr_item_loop_run(MPI_Comm comm, const fmr_item_loop *loop);

const char *fmr_version(void);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

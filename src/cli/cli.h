/* The fmrecon command-line tool: one small file per command; this header is their shared glue. */
#ifndef FMR_CLI_H
#define FMR_CLI_H

#include <getopt.h>
#include <mpi.h>
#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/geometry.h"
#include "fmrecon/metrics.h"

typedef struct fmr_cli {
    MPI_Comm comm;
    int rank, size;
    const char *argv_line; /* whole command line, for provenance attributes */
} fmr_cli;

/* A command parses its own options and returns FMR_OK, or an error whose message is printed as
 * one line by main. FMR_ERR_ARG means a usage error (exit status 2). */
typedef fmr_err (*fmr_cmd_fn)(fmr_cli *cli, int argc, char **argv);

fmr_err fmr_cmd_info(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_recon(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_simulate(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_demo(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_undersample(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_eval(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_checkpoint(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_encode(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_bench(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_maps(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_cohort(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_export(fmr_cli *cli, int argc, char **argv);
fmr_err fmr_cmd_plan(fmr_cli *cli, int argc, char **argv);

/* The option tables of the commands a cohort manifest configures (their getopt_long tables and
 * optstrings), so the manifest schema cannot drift from the commands. recon and undersample take
 * --check-options: parse and check every option, then stop before reading anything. */
extern const struct option fmr_recon_longopts[], fmr_undersample_longopts[], fmr_eval_longopts[];
extern const char fmr_recon_shortopts[], fmr_undersample_shortopts[], fmr_eval_shortopts[];
/* eval's --crop values ("cmrxrecon", "none": fastMRI rules). */
fmr_err fmr_eval_parse_crop(const char *text, fmr_eval_mode *mode);

/* Option value parsers: the message names the option and the offending text. */
fmr_err fmr_opt_size(const char *opt, const char *text, size_t lo, size_t hi, size_t *out);
fmr_err fmr_opt_int(const char *opt, const char *text, long lo, long hi, long *out);
fmr_err fmr_opt_double(const char *opt, const char *text, double lo, double hi, double *out);
fmr_err fmr_opt_matrix(const char *opt, const char *text, size_t *h, size_t *w);
/* For getopt_long's '?' and ':' returns (call with opterr = 0 and a ':'-prefixed optstring). */
fmr_err fmr_opt_bad(const char *cmd, int c, char **argv);

/* Geometry overrides shared by recon and undersample (src/cli/opts_geometry.c). */
enum { FMR_OPT_PIXEL_SPACING = 3001, FMR_OPT_SLICE_THICKNESS = 3002, FMR_OPT_TRIGGER_TIMES = 3003 };
#define FMR_GEOMETRY_LONGOPTS                                                                          \
    {"pixel-spacing", required_argument, 0, FMR_OPT_PIXEL_SPACING},                                   \
        {"slice-thickness", required_argument, 0, FMR_OPT_SLICE_THICKNESS},                           \
        {"trigger-times", required_argument, 0, FMR_OPT_TRIGGER_TIMES}
extern const char *const fmr_geometry_help;
fmr_err fmr_opt_geometry(int code, const char *text, fmr_geometry_overrides *g);

/* Prints text to stdout on rank 0 only. */
void fmr_cli_help(const fmr_cli *cli, const char *text);

#endif

/* fmrecon: thin dispatcher. MPI is initialised here once; every command runs on MPI_COMM_WORLD, so
 * `mpirun -np P fmrecon recon ...` and a plain `fmrecon recon ...` run the same code. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/dc.h"
#include "fmrecon/fft.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"

static const struct {
    const char *name;
    fmr_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"info", fmr_cmd_info, "describe a raw-data file: format, shapes, sampling"},
    {"recon", fmr_cmd_recon, "reconstruct a file; methods:"}, /* + the registry's names, see usage() */
    {"undersample", fmr_cmd_undersample, "retrospective undersampling / conversion to fastMRI style"},
    {"eval", fmr_cmd_eval, "PSNR, SSIM, NMSE against a reference (fastMRI / CMRxRecon rules)"},
    {"simulate", fmr_cmd_simulate, "write simulated multi-coil cine subjects"},
    {"checkpoint", fmr_cmd_checkpoint, "list and check the tensors of a safetensors checkpoint"},
    {"export", fmr_cmd_export, "a reconstruction as NIfTI, DICOM, cine GIF, PNG montage (with geometry)"},
    {"maps", fmr_cmd_maps, "coil maps (ESPIRiT) as a file, for --sens and training"},
    {"cohort", fmr_cmd_cohort, "a whole cohort from a manifest: sharded, resumable, preemption-safe"},
    {"encode", fmr_cmd_encode, "hidden states of a frozen foundation encoder (oneDNN)"},
    {"bench", fmr_cmd_bench, "benchmarks that print figures (encoder, unrolled, scaling)"},
    {"demo", fmr_cmd_demo, "end-to-end demo on built-in simulated data"},
    {"plan", fmr_cmd_plan, "memory per rank and wall time of a job before launch (sbatch lines)"},
};
enum { NCMD = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "fmrecon %s - accelerated cardiac cine MRI reconstruction on CPU clusters\n\n"
               "usage: fmrecon <command> [options] [-- PETSc options]   (MPI: mpirun -np P fmrecon ...)\n"
               "       fmrecon --help | --version\n\ncommands:\n",
            fmr_version());
    for (int i = 0; i < NCMD; i++) {
        fprintf(f, "  %-12s %s", commands[i].name, commands[i].summary);
        /* recon's methods come from the registry, so a new method appears here by itself */
        if (commands[i].fn == fmr_cmd_recon)
            for (const fmr_method_ops *const *m = fmr_method_list(); *m; m++)
                fprintf(f, "%s %s", m == fmr_method_list() ? "" : ",", (*m)->name);
        fputc('\n', f);
    }
    fprintf(f, "\nRun 'fmrecon <command> --help' for a command's options. Options after a lone '--' go to\n"
               "PETSc, e.g. '-- -ksp_rtol 1e-8 -ksp_monitor' or '-- -options_file petsc.opts'.\n"
               "Environment: OMP_NUM_THREADS (threads per rank), FMR_FFTW_PLANNER=estimate|measure|patient,\n"
               "FMR_FFTW_WISDOM=FILE (reuse FFTW plans across runs).\n");
}

static char *join_args(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* A process started without any MPI launcher (no mpirun, srun or PMIx in its environment) is a
 * singleton that never talks to another process: Open MPI's default transport probing (UCX and
 * friends) then only costs start-up time, about 0.15 s here. Point such a process at the shared-
 * memory/self transports unless the user chose otherwise. */
static void singleton_transports(void)
{
    static const char *launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                          "SLURM_STEP_ID", NULL};
    for (int i = 0; launcher_vars[i]; i++)
        if (getenv(launcher_vars[i])) return;
    setenv("OMPI_MCA_pml", "ob1", 0);
    setenv("OMPI_MCA_btl", "self,vader", 0);
}

int main(int argc, char **argv)
{
    int provided;
    singleton_transports();
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    fmr_cli cli = {.comm = MPI_COMM_WORLD};
    MPI_Comm_rank(cli.comm, &cli.rank);
    MPI_Comm_size(cli.comm, &cli.size);
    fmr_log_set_rank(cli.rank);
    /* Errors are reported as one line by us, not as an abort from MPI. */
    MPI_Comm_set_errhandler(cli.comm, MPI_ERRORS_RETURN);
    /* One knob for every threaded library: OMP_NUM_THREADS (OpenMP, oneDNN, FFTW). Unset, a lone
     * process uses every core, while several ranks get one thread each so they never
     * oversubscribe a node (the cluster default is one rank per core). */
    const char *nt = getenv("OMP_NUM_THREADS");
    if (!nt && cli.size > 1) omp_set_num_threads(1);
    if (nt && atoi(nt) > 1) fmr_fft_set_threads(atoi(nt));

    /* Everything after a lone "--" belongs to PETSc (-ksp_rtol 1e-8 -ksp_monitor ...); PETSc also
     * reads PETSC_OPTIONS and -options_file FILE. */
    int pargc = 1;
    char **pargv = argv;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            pargc = argc - i;
            pargv = argv + i; /* argv[i] = "--" stands in for the program name */
            argc = i;
            break;
        }
    int status = 0;
    if (fmr_petsc_init(pargc, pargv) != FMR_OK) {
        if (cli.rank == 0) fprintf(stderr, "fmrecon: error: %s\n", fmr_error_message());
        MPI_Finalize();
        return 1;
    }
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (cli.rank == 0) usage(stdout);
        status = cmd ? 0 : 2;
    } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (cli.rank == 0) printf("fmrecon %s\n", fmr_version());
    } else {
        int found = -1;
        for (int i = 0; i < NCMD; i++)
            if (!strcmp(cmd, commands[i].name)) found = i;
        if (found < 0) {
            if (cli.rank == 0)
                fprintf(stderr, "fmrecon: error: unknown command '%s' (see 'fmrecon --help')\n", cmd);
            status = 2;
        } else {
            char *line = join_args(argc, argv);
            cli.argv_line = line;
            fmr_err err = commands[found].fn(&cli, argc - 1, argv + 1);
            free(line);
            if (err) {
                /* Collective failures reach every rank with the same text: rank 0 says it once.
                 * A failure that only some ranks saw is printed by each of them. */
                int mine = 1, all = 0;
                MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, cli.comm);
                if (cli.rank == 0 || all < cli.size) {
                    if (cli.size > 1 && all < cli.size)
                        fprintf(stderr, "fmrecon %s: error: [rank %d] %s\n", cmd, cli.rank,
                                fmr_error_message());
                    else
                        fprintf(stderr, "fmrecon %s: error: %s\n", cmd, fmr_error_message());
                    if (fmr_log_get_level() >= FMR_LOG_VERBOSE)
                        fprintf(stderr, "fmrecon %s: (raised at %s)\n", cmd, fmr_error_origin());
                }
                status = err == FMR_ERR_ARG ? 2 : err == FMR_ERR_STOPPED ? 3 : 1;
            } else {
                int mine = 0, all = 0;
                MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, cli.comm);
            }
        }
    }
    fmr_fft_cleanup();
    fmr_petsc_finalize();
    MPI_Finalize();
    return status;
}

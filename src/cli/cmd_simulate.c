/* fmrecon simulate -o DIR --subjects N [...] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fmrecon/files.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"
#include "fmrecon/sim.h"

static const char *help =
    "usage: fmrecon simulate -o DIR [--subjects N] [options]\n\n"
    "Writes N simulated multi-coil cine subjects DIR/subject_000.h5 ... in fastMRI style:\n"
    "kspace (frames, slices, coils, readout, phase-encode) complex64, reconstruction_rss\n"
    "(frames, slices, readout, phase-encode) from the fully sampled noisy data, attrs max/norm.\n"
    "Subject i uses seed S+i: heart size, position, contraction and contrast vary.\n\n"
    "  -o, --output DIR     output folder (created if missing)\n"
    "  -n, --subjects N     number of subjects (default 1)\n"
    "      --frames T       cardiac frames (default 12)\n"
    "      --slices Z       short-axis slices (default 2)\n"
    "      --coils C        receive coils (default 8)\n"
    "      --matrix HxW     readout x phase-encode (default 192x160)\n"
    "      --snr S          blood signal / noise std in the coil-combined image (default 40)\n"
    "      --seed S         first subject's seed (default 1)\n"
    "      --accel R        undersample: every R-th phase-encode line + ACS (default 1: full)\n"
    "      --acs N          centred fully sampled lines when --accel > 1 (default 24)\n"
    "      --from-dicom DIR semi-real subjects from a real magnitude cine DICOM series (one\n"
    "                       series in DIR): its magnitude x smooth random phase x simulated\n"
    "                       coil maps, plus noise; keeps the series' geometry, trigger times and\n"
    "                       patient/study fields; --frames/--slices/--matrix come from the series\n"
    "      --dicom-slices A:B  with --from-dicom: slice locations A..B-1 only (ascending along\n"
    "                       the slice normal; default all)\n"
    "      --sens FILE      with --from-dicom: coil maps from FILE ('maps', (slices or 1, coils,\n"
    "                       rows, columns) complex, e.g. fmrecon maps of a measured scan with the\n"
    "                       series' matrix) instead of simulated loop coils\n"
    "  -q, --quiet          no progress\n"
    "  -h, --help           this text\n";

fmr_err fmr_cmd_simulate(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"subjects", required_argument, 0, 'n'},
        {"frames", required_argument, 0, 'T'}, {"slices", required_argument, 0, 'Z'},
        {"coils", required_argument, 0, 'C'},  {"matrix", required_argument, 0, 'M'},
        {"snr", required_argument, 0, 'S'},    {"seed", required_argument, 0, 's'},
        {"accel", required_argument, 0, 'R'},  {"acs", required_argument, 0, 'A'},
        {"from-dicom", required_argument, 0, 'D'}, {"dicom-slices", required_argument, 0, 'P'},
        {"sens", required_argument, 0, 'F'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {0}};
    fmr_sim_params p;
    fmr_sim_defaults(&p);
    const char *dir = NULL, *dicom = NULL, *sens = NULL;
    size_t nsub = 1, acs = 24, dz0 = 0, dnz = 0;
    long accel = 1, seed = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:n:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': FMR_TRY(fmr_opt_size("--subjects", optarg, 1, 100000, &nsub)); break;
        case 'T': FMR_TRY(fmr_opt_size("--frames", optarg, 1, 1000, &p.frames)); break;
        case 'Z': FMR_TRY(fmr_opt_size("--slices", optarg, 1, 1000, &p.slices)); break;
        case 'C': FMR_TRY(fmr_opt_size("--coils", optarg, 1, 128, &p.coils)); break;
        case 'M': FMR_TRY(fmr_opt_matrix("--matrix", optarg, &p.h, &p.w)); break;
        case 'S': FMR_TRY(fmr_opt_double("--snr", optarg, 1e-3, 1e9, &p.snr)); break;
        case 's': FMR_TRY(fmr_opt_int("--seed", optarg, 0, 1L << 40, &seed)); break;
        case 'R': FMR_TRY(fmr_opt_int("--accel", optarg, 1, 64, &accel)); break;
        case 'A': FMR_TRY(fmr_opt_size("--acs", optarg, 0, 4096, &acs)); break;
        case 'D': dicom = optarg; break;
        case 'F': sens = optarg; break;
        case 'P': {
            unsigned long a, b;
            char tail;
            if (sscanf(optarg, "%lu:%lu%c", &a, &b, &tail) != 2 || b <= a)
                return fmr_error(FMR_ERR_ARG, "--dicom-slices: '%s' is not A:B with A < B", optarg);
            dz0 = a, dnz = b - a;
            break;
        }
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': fmr_cli_help(cli, help); return FMR_OK;
        default: return fmr_opt_bad("simulate", c, argv);
        }
    }
    if (optind != argc) return fmr_error(FMR_ERR_ARG, "simulate takes no positional arguments");
    if (!dir) return fmr_error(FMR_ERR_ARG, "simulate needs an output folder: -o DIR");
    if (dicom && accel > 1)
        return fmr_error(FMR_ERR_ARG, "--accel does not combine with --from-dicom; undersample the result with fmrecon undersample");
    if (!dicom && (dnz || sens)) return fmr_error(FMR_ERR_ARG, "--dicom-slices and --sens need --from-dicom");
    float *mask = NULL;
    if (accel > 1) {
        if (acs > p.w)
            return fmr_error(FMR_ERR_ARG, "--acs %zu is wider than the %zu phase-encode lines", acs, p.w);
        mask = malloc(p.w * sizeof *mask);
        if (!mask) return fmr_error(FMR_ERR_NOMEM, "cannot allocate mask");
        fmr_mask_uniform(p.w, (int)accel, acs, mask);
    }
    int e = cli->rank == 0 ? fmr_mkdirs(dir) : 0;
    MPI_Bcast(&e, 1, MPI_INT, 0, cli->comm);
    if (e) {
        free(mask);
        return fmr_error(FMR_ERR_IO, "%s: cannot create folder: %s", dir, strerror(e));
    }
    fmr_progress *prog;
    fmr_err err = fmr_progress_create(&prog, "simulate", "subjects", nsub);
    for (size_t i = 0; !err && i < nsub; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/subject_%03zu.h5", dir, i);
        p.seed = (uint64_t)seed + i;
        if (dicom) {
            fmr_sim_dicom_params dp = {.dir = dicom, .slice0 = dz0, .nslices = dnz, .coils = p.coils, .snr = p.snr, .seed = p.seed,
                                        .maps_file = sens};
            err = fmr_sim_from_dicom(cli->comm, &dp, NULL, path);
        } else {
            err = fmr_sim_write(cli->comm, path, &p, mask);
        }
        fmr_progress_step(prog, 1);
    }
    fmr_progress_finish(&prog);
    free(mask);
    return err;
}

/* fmrecon maps IN -o MAPS.h5: the coil sensitivities fmrecon's methods use, as a file. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/calib.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"

static const char *help =
    "usage: fmrecon maps IN -o MAPS.h5 [ESPIRiT options]\n\n"
    "Computes the coil maps that sense, cs and unrolled use — ESPIRiT on each slice's "
    "time-averaged\n"
    "k-space (so k-t masks calibrate) — and writes them as `maps` (slices, coils, readout,\n"
    "phase-encode) complex64: the layout `fmrecon recon --sens` reads and "
    "python/train_unrolled.py\n"
    "trains with. Slices are shared among MPI ranks.\n\n"
    "  -o, --output FILE          maps file\n"
    "      --espirit-kernel K     calibration kernel size (default 6)\n"
    "      --espirit-cal N        calibration region width (default 24)\n"
    "      --espirit-threshold T  singular-value threshold (default 0.001)\n"
    "      --espirit-crop C       eigenvalue crop (default 0.8)\n"
    "      --variable NAME        CMRxRecon k-space variable\n"
    "      --mask-file FILE       IN's mask from a separate file\n"
    "  -q, --quiet                no progress\n"
    "  -h, --help                 this text\n";

fmr_err fmr_cmd_maps(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"output", required_argument, 0, 'o'},
                                       {"espirit-kernel", required_argument, 0, 1001},
                                       {"espirit-cal", required_argument, 0, 1002},
                                       {"espirit-threshold", required_argument, 0, 1003},
                                       {"espirit-crop", required_argument, 0, 1004},
                                       {"variable", required_argument, 0, 'V'},
                                       {"mask-file", required_argument, 0, 'M'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0}};
    const char *out = NULL;
    fmr_open_options oo = {0};
    fmr_espirit_opts eo;
    fmr_espirit_defaults(&eo);
    long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 1001:
            FMR_TRY(fmr_opt_int("--espirit-kernel", optarg, 2, 32, &v));
            eo.kernel = (int)v;
            break;
        case 1002:
            FMR_TRY(fmr_opt_int("--espirit-cal", optarg, 2, 1024, &v));
            eo.cal = (int)v;
            break;
        case 1003:
            FMR_TRY(fmr_opt_double("--espirit-threshold", optarg, 0, 1, &eo.threshold));
            break;
        case 1004:
            FMR_TRY(fmr_opt_double("--espirit-crop", optarg, 0, 1, &eo.crop));
            break;
        case 'V':
            oo.variable = optarg;
            break;
        case 'M':
            oo.mask_file = optarg;
            break;
        case 'q':
            fmr_log_set_level(FMR_LOG_QUIET);
            break;
        case 'h':
            return fmr_cli_help(cli, help), FMR_OK;
        default:
            return fmr_opt_bad("maps", c, argv);
        }
    }
    if (optind != argc - 1)
        return fmr_error(FMR_ERR_ARG,
                         "maps takes exactly one input file (see fmrecon maps --help)");
    if (!out) return fmr_error(FMR_ERR_ARG, "maps needs -o MAPS.h5");
    return fmr_maps_write(cli->comm, argv[optind], &oo, &eo, out);
}

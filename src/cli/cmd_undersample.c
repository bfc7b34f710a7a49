/* fmrecon undersample IN -o OUT --mask TYPE --accel R [...]  (and plain conversion with --mask keep) */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"

static const char *help =
    "usage: fmrecon undersample IN -o OUT --mask TYPE --accel R [--acs N] [--seed S]\n\n"
    "Retrospective undersampling: reads IN (fastMRI .h5, CMRxRecon .mat, ISMRMRD .h5), multiplies\n"
    "its k-space by a phase-encode mask and writes OUT as a fastMRI-style cine file: kspace\n"
    "(frames, slices, coils, readout, phase-encode) complex64, mask uint8 (phase-encode,) or\n"
    "(frames, phase-encode) for k-t masks, and reconstruction_rss: copied from IN, or computed from\n"
    "IN when IN is fully sampled. With --mask keep, IN's own sampling is kept (format conversion).\n\n"
    "mask types (rules in docs/masks.md):\n"
    "  random               fastMRI: centre block + lines drawn with probability (W/R - n)/(W - n)\n"
    "  equispaced           fastMRI: every R-th line from a random offset + centre block\n"
    "  equispaced_fraction  fastMRI: spacing adjusted so the total is W/R lines\n"
    "  uniform              CMRxRecon: every R-th line from line 0 + centred ACS block\n"
    "  ktuniform            CMRxRecon: lattice shifted by one line every frame + ACS\n"
    "  ktgaussian           CMRxRecon: round(W/R) Gaussian-density lines per frame + ACS\n"
    "  keep                 no new mask\n\n"
    "  -o, --output OUT          output file\n"
    "      --mask TYPE           mask type (required)\n"
    "  -R, --accel R             nominal acceleration, >= 1 (required unless --mask keep); the\n"
    "                            effective R (acquired / sampled lines) is printed and stored\n"
    "      --acs N               fully sampled centre lines (default: CMRxRecon 24; fastMRI from\n"
    "                            --center-fraction)\n"
    "      --center-fraction F   fastMRI centre fraction (default 0.08 for R < 8, else 0.04)\n"
    "      --seed S              random seed (default 1); the same seed gives the same mask\n"
    "      --variable NAME       CMRxRecon k-space variable\n"
    "      --mask-file FILE      IN's own mask from a separate file\n"
    "      --no-prewhiten        keep raw channels even when the file has noise scans (ISMRMRD);\n"
    "                            by default k-space is prewhitened with their covariance\n"
    "      --virtual-coils N     SVD coil compression to N virtual coils (cuts every later step)\n"
    "      --allow-subset        IN is already undersampled: proceed only if the new mask keeps a\n"
    "                            subset of IN's acquired lines (without it such IN is refused:\n"
    "                            undersampling twice gives an effective R above the nominal one)\n"
    "      --check-options       only check the options (no file is read or written)\n"
    "%s"
    "  -q, --quiet               no progress\n"
    "  -h, --help                this text\n";

/* File scope: the cohort's manifest schema checks undersample options against this same table. */
const char fmr_undersample_shortopts[] = ":o:R:qh";
const struct option fmr_undersample_longopts[] = {
        {"output", required_argument, 0, 'o'},  {"mask", required_argument, 0, 'm'},
        {"accel", required_argument, 0, 'R'},   {"acs", required_argument, 0, 'A'},
        {"center-fraction", required_argument, 0, 'F'}, {"seed", required_argument, 0, 's'},
        {"variable", required_argument, 0, 'V'}, {"mask-file", required_argument, 0, 'M'}, {"no-prewhiten", no_argument, 0, 2001},
        {"virtual-coils", required_argument, 0, 2002}, FMR_GEOMETRY_LONGOPTS, {"allow-subset", no_argument, 0, 2003},
        {"check-options", no_argument, 0, 2004},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {0}};

fmr_err fmr_cmd_undersample(fmr_cli *cli, int argc, char **argv)
{
    const struct option *lo = fmr_undersample_longopts;
    const char *out = NULL, *type = NULL;
    fmr_open_options oo = {0};
    fmr_mask_spec spec = {.acs = -1, .seed = 1};
    int have_accel = 0, check_only = 0, c;
    long v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, fmr_undersample_shortopts, lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'm': type = optarg; break;
        case 'R':
            FMR_TRY(fmr_opt_double("--accel", optarg, -1e300, 1e300, &spec.accel));
            if (!(spec.accel >= 1.0)) return fmr_error(FMR_ERR_ARG, "--accel: R must be >= 1, got %s", optarg);
            have_accel = 1;
            break;
        case 'A': FMR_TRY(fmr_opt_int("--acs", optarg, 0, 1L << 20, &v)); spec.acs = v; break;
        case 'F': FMR_TRY(fmr_opt_double("--center-fraction", optarg, 1e-9, 0.999999, &spec.center_fraction)); break;
        case 's': FMR_TRY(fmr_opt_int("--seed", optarg, 0, 1L << 62, &v)); spec.seed = (unsigned long long)v; break;
        case 'V': oo.variable = optarg; break;
        case 2001: oo.no_prewhiten = 1; break;
        case 2002: FMR_TRY(fmr_opt_size("--virtual-coils", optarg, 1, 1024, &oo.virtual_coils)); break;
        case FMR_OPT_PIXEL_SPACING:
        case FMR_OPT_SLICE_THICKNESS:
        case FMR_OPT_TRIGGER_TIMES: FMR_TRY(fmr_opt_geometry(c, optarg, &oo.geometry)); break;
        case 'M': oo.mask_file = optarg; break;
        case 2003: spec.allow_subset = 1; break;
        case 2004: check_only = 1; break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h':
            if (cli->rank == 0) printf(help, fmr_geometry_help);
            return FMR_OK;
        default: return fmr_opt_bad("undersample", c, argv);
        }
    }
    if (optind != argc - 1)
        return fmr_error(FMR_ERR_ARG, "undersample takes exactly one input file (see 'fmrecon undersample --help')");
    if (!out) return fmr_error(FMR_ERR_ARG, "undersample needs an output file: -o OUT");
    if (!type) return fmr_error(FMR_ERR_ARG, "undersample needs --mask TYPE (or --mask keep)");
    int keep = !strcmp(type, "keep");
    if (!keep) {
        FMR_TRY(fmr_mask_parse_type(type, &spec.type));
        if (!have_accel) return fmr_error(FMR_ERR_ARG, "--mask %s needs --accel R", type);
    }
    if (check_only) return FMR_OK;
    FMR_TRY(fmr_undersample_file(cli->comm, argv[optind], &oo, keep ? NULL : &spec, out, cli->argv_line));
    fmr_info("undersample: %s -> %s (%s)", argv[optind], out, keep ? "sampling kept" : type);
    return FMR_OK;
}

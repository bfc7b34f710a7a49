/* fmrecon recon IN -o OUT --method M */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/export.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"

static const char *help =
    "usage: fmrecon recon IN -o OUT [--method zf] [options]\n\n"
    "Reconstructs every frame and slice of IN and writes OUT (HDF5):\n"
    "  reconstruction  float32 magnitude (frames, slices, readout, phase-encode)\n"
    "  mask            uint8 sampling mask used, (phase-encode,) or (frames, phase-encode)\n"
    "  image           complex64 image (frames, slices, readout, phase-encode), with --complex\n"
    "with attributes method, parameters (JSON), fmrecon_version, input_file, input_size, command.\n"
    "OUT appears only when complete: it is written under a temporary name and renamed.\n"
    "Run under MPI (mpirun -np P fmrecon recon ...) to share the frames and slices among ranks.\n\n"
    "  -o, --output OUT   output file (required)\n"
    "  -m, --method M     zf: zero-filled, inverse FFT per coil + root-sum-of-squares (default)\n"
    "                     sense: CG-SENSE, (A^H A + lambda I) x = A^H y by PETSc CG, ESPIRiT maps\n"
    "                     cs: compressed sensing, l1 of the temporal Fourier transform + spatial "
    "TV,\n"
    "                     ADMM whose x-updates are the same PETSc solve (items = whole slices)\n"
    "                     unrolled: the unrolled network (docs/model.md): a frozen foundation\n"
    "                     encoder + UNETR decoder per cascade, PETSc CG data consistency\n"
    "      --model FILE   unrolled: model bundle (e.g. models/demo_unrolled.safetensors)\n"
    "      --weights FILE unrolled: the encoder checkpoint the bundle was trained with (checked\n"
    "                     by SHA-256)\n"
    "      --save-cascades  unrolled: also write cascade_0 (A^H y) .. cascade_T, complex64\n"
    "      --precision P  unrolled: f32 (default) or bf16 (encoder and decoder operands and\n"
    "                     weights in bf16 on CPUs with AVX512-BF16/AMX; elsewhere one warning\n"
    "                     and f32). The precision used is recorded in the output's parameters\n"
    "      --complex      also write the complex image (methods that produce one)\n"
    "      --batch N      items per rank between collective writes (default 8)\n"
    "      --coil-ranks K ranks per item (default 1): the job's ranks form groups of K that share\n"
    "                     each item's coils and its PETSc solve; items are dealt to the groups.\n"
    "                     K must divide the number of ranks and not exceed the coils\n"
    "      --fft-slabs    with --coil-ranks K: the group splits every coil image in row slabs\n"
    "                     and runs the 2-D FFTs on FFTW3-MPI (for matrices too large for one\n"
    "                     rank's FFTs), instead of splitting the coils; same results\n"
    "      --schedule S   static (default): contiguous blocks of items per group, written in\n"
    "                     collective rounds; dynamic: items handed out one at a time as groups\n"
    "                     free up (heterogeneous nodes or items), each written independently\n"
    "      --lambda L     Tikhonov weight of sense (default 0.01; A^H A has norm <= 1)\n"
    "      --cg-iters N   data-consistency CG iteration limit (default 50; -ksp_max_it overrides)\n"
    "      --cg-rtol R    data-consistency CG relative tolerance (default 1e-6; -ksp_rtol "
    "overrides)\n"
    "      --reg LIST     cs: regularisers, e.g. tv-t:0.01,tv-s:0.002 or wavelet:0.005 or lps\n"
    "                     (terms below; defaults: cine and single frame, see docs/classical.md)\n"
    "      --lambda-t L   cs: alias adding the term ft:L (temporal-Fourier l1)\n"
    "      --lambda-s L   cs: alias adding the term tv-s:L (spatial total variation)\n"
    "      --rho R        cs: ADMM penalty (default 0.5 for cine, 0.1 for a single frame)\n"
    "      --admm-iters N cs: ADMM iterations (default 30)\n"
    "      --sens FILE    coil maps from FILE ('maps' or 'sens': (slices, coils, h, w) or\n"
    "                     (coils, h, w) complex, or a BART pair such as bart ecalib's output)\n"
    "                     instead of ESPIRiT\n"
    "      --espirit-kernel K, --espirit-cal N, --espirit-threshold T, --espirit-crop C\n"
    "                     ESPIRiT as bart ecalib -k K -r N -t T -c C (defaults 6, 24, 0.001, "
    "0.8);\n"
    "                     calibration uses the time-averaged k-space of each slice\n"
    "      --variable NAME       CMRxRecon k-space variable (see 'fmrecon info --help')\n"
    "      --mask-file FILE      mask from a separate file (pairs a CMRxRecon kus file with its "
    "mask)\n"
    "      --mask-variable NAME  the mask file's variable\n"
    "  -q, --quiet        no progress or summary on stderr\n"
    "  -v, --verbose      more detail, and where errors were raised\n"
    "      --no-prewhiten        keep raw channels even when the file has noise scans (ISMRMRD);\n"
    "                            by default k-space is prewhitened with their covariance\n"
    "      --virtual-coils N     SVD coil compression to N virtual coils (cuts every later step)\n"
    "      --export LIST  after OUT is complete, also export it (fmrecon export): nifti, dicom,\n"
    "                     gif, png, cfl, comma-separated; with --complex NIfTI gets the complex image;\n"
    "                     DICOM is classic MR (fmrecon export --enhanced: Enhanced MR multi-frame)\n"
    "      --preview      export gif,png (cine per slice and labelled montage)\n"
    "      --export-dir DIR  where --export/--preview write (default: OUT's folder)\n"
    "      --check-options  only check the options (no file is read or written)\n"
    "%s"
    "  -h, --help         this text\n";

/* File scope: the cohort's manifest schema checks recon options against this same table. */
const char fmr_recon_shortopts[] = ":o:m:qvh";
const struct option fmr_recon_longopts[] = {{"output", required_argument, 0, 'o'},
                                       {"method", required_argument, 0, 'm'},
                                       {"complex", no_argument, 0, 'c'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"variable", required_argument, 0, 'V'},
                                       {"mask-file", required_argument, 0, 'M'},
                                       {"mask-variable", required_argument, 0, 'K'},
                                       {"no-prewhiten", no_argument, 0, 2001},
                                       {"virtual-coils", required_argument, 0, 2002},
                                       {"lambda", required_argument, 0, 'L'},
                                       {"cg-iters", required_argument, 0, 'I'},
                                       {"cg-rtol", required_argument, 0, 'T'},
                                       {"sens", required_argument, 0, 'S'},
                                       {"espirit-kernel", required_argument, 0, 1001},
                                       {"espirit-cal", required_argument, 0, 1002},
                                       {"espirit-threshold", required_argument, 0, 1003},
                                       {"espirit-crop", required_argument, 0, 1004},
                                       {"lambda-t", required_argument, 0, 1005},
                                       {"lambda-s", required_argument, 0, 1006},
                                       {"rho", required_argument, 0, 1007},
                                       {"admm-iters", required_argument, 0, 1008},
                                       {"model", required_argument, 0, 1009},
                                       {"weights", required_argument, 0, 1010},
                                       {"save-cascades", no_argument, 0, 1011},
                                       {"coil-ranks", required_argument, 0, 1012},
                                       {"schedule", required_argument, 0, 1013},
        {"fft-slabs", no_argument, 0, 1014},
        {"export", required_argument, 0, 1015}, {"preview", no_argument, 0, 1016},
        {"export-dir", required_argument, 0, 1017}, FMR_GEOMETRY_LONGOPTS,
                                       {"reg", required_argument, 0, 1020},
        {"precision", required_argument, 0, 1021},
                                       {"check-options", no_argument, 0, 1099},
                                       {"help", no_argument, 0, 'h'},
                                       {0}};

fmr_err fmr_cmd_recon(fmr_cli *cli, int argc, char **argv)
{
    const struct option *lo = fmr_recon_longopts;
    fmr_recon_options opt;
    fmr_recon_options_defaults(&opt);
    opt.argv_line = cli->argv_line;
    fmr_method_params *mp = &opt.params;
    const char *out = NULL, *export_list = NULL, *export_dir = NULL;
    int preview = 0;
    long batch = 8, v;
    int c, check_only = 0;
    /* cs terms: --reg LIST, then the aliases --lambda-t/--lambda-s as extra terms */
    char reg[512] = "", alias_t[64] = "", alias_s[64] = "";
    opterr = 0;
    while ((c = getopt_long(argc, argv, fmr_recon_shortopts, lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'm':
            opt.method = optarg;
            break;
        case 'c':
            opt.write_complex = 1;
            break;
        case 'b':
            FMR_TRY(fmr_opt_int("--batch", optarg, 1, 4096, &batch));
            break;
        case 'L':
            FMR_TRY(fmr_opt_double("--lambda", optarg, 0, 1e12, &mp->lambda));
            break;
        case 'I':
            FMR_TRY(fmr_opt_int("--cg-iters", optarg, 1, 100000, &v));
            mp->max_it = (int)v;
            break;
        case 'T':
            FMR_TRY(fmr_opt_double("--cg-rtol", optarg, 0, 1, &mp->rtol));
            break;
        case 'S':
            mp->sens_file = optarg;
            break;
        case 1001:
            FMR_TRY(fmr_opt_int("--espirit-kernel", optarg, 2, 32, &v));
            mp->espirit.kernel = (int)v;
            break;
        case 1002:
            FMR_TRY(fmr_opt_int("--espirit-cal", optarg, 2, 1024, &v));
            mp->espirit.cal = (int)v;
            break;
        case 1003:
            FMR_TRY(fmr_opt_double("--espirit-threshold", optarg, 0, 1, &mp->espirit.threshold));
            break;
        case 1004:
            FMR_TRY(fmr_opt_double("--espirit-crop", optarg, 0, 1, &mp->espirit.crop));
            break;
        case 1005:
            FMR_TRY(fmr_opt_double("--lambda-t", optarg, 0, 1e12, &mp->lambda_t));
            snprintf(alias_t, sizeof alias_t, "ft:%.17g", mp->lambda_t);
            break;
        case 1006:
            FMR_TRY(fmr_opt_double("--lambda-s", optarg, 0, 1e12, &mp->lambda_s));
            snprintf(alias_s, sizeof alias_s, "tv-s:%.17g", mp->lambda_s);
            break;
        case 1020:
            if (strlen(optarg) >= 400) return fmr_error(FMR_ERR_ARG, "--reg: list too long");
            snprintf(reg, sizeof reg, "%s", optarg);
            break;
        case 1007:
            FMR_TRY(fmr_opt_double("--rho", optarg, 1e-12, 1e12, &mp->rho));
            break;
        case 1008:
            FMR_TRY(fmr_opt_int("--admm-iters", optarg, 1, 100000, &v));
            mp->admm_iters = (int)v;
            break;
        case 1009:
            mp->model_file = optarg;
            break;
        case 1010:
            mp->weights_file = optarg;
            break;
        case 1021:
            if (strcmp(optarg, "f32") && strcmp(optarg, "bf16"))
                return fmr_error(FMR_ERR_ARG, "--precision: '%s' is not f32 or bf16", optarg);
            mp->bf16 = !strcmp(optarg, "bf16");
            break;
        case 1011:
            opt.save_extras = 1;
            break;
        case 1012:
            FMR_TRY(fmr_opt_int("--coil-ranks", optarg, 1, 4096, &v));
            opt.coil_ranks = (int)v;
            break;
        case 1013:
            if (!strcmp(optarg, "static"))
                opt.dynamic = 0;
            else if (!strcmp(optarg, "dynamic"))
                opt.dynamic = 1;
            else
                return fmr_error(FMR_ERR_ARG, "--schedule: '%s' is not static or dynamic", optarg);
            break;
        case 1014: opt.fft_slabs = 1; break;
        case 1015: export_list = optarg; break;
        case 1016: preview = 1; break;
        case 1017: export_dir = optarg; break;
        case FMR_OPT_PIXEL_SPACING:
        case FMR_OPT_SLICE_THICKNESS:
        case FMR_OPT_TRIGGER_TIMES: FMR_TRY(fmr_opt_geometry(c, optarg, &opt.open.geometry)); break;
        case 'V':
            opt.open.variable = optarg;
            break;
        case 2001:
            opt.open.no_prewhiten = 1;
            break;
        case 2002:
            FMR_TRY(fmr_opt_size("--virtual-coils", optarg, 1, 1024, &opt.open.virtual_coils));
            break;
        case 'M':
            opt.open.mask_file = optarg;
            break;
        case 'K':
            opt.open.mask_variable = optarg;
            break;
        case 'q':
            fmr_log_set_level(FMR_LOG_QUIET);
            break;
        case 'v':
            fmr_log_set_level(FMR_LOG_VERBOSE);
            break;
        case 1099:
            check_only = 1;
            break;
        case 'h':
            if (cli->rank == 0) printf(help, fmr_geometry_help);
            fmr_cli_help(cli, fmr_cs_reg_help());
            return FMR_OK;
        default:
            return fmr_opt_bad("recon", c, argv);
        }
    }
    opt.batch = (int)batch;
    if (alias_t[0] || alias_s[0]) {
        const size_t l = strlen(reg);
        snprintf(reg + l, sizeof reg - l, "%s%s%s%s", l && alias_t[0] ? "," : "", alias_t,
                 (l || alias_t[0]) && alias_s[0] ? "," : "", alias_s);
    }
    if (reg[0]) mp->reg = reg;
    if (optind != argc - 1)
        return fmr_error(FMR_ERR_ARG,
                         "recon takes exactly one input file (see 'fmrecon recon --help')");
    if (!out) return fmr_error(FMR_ERR_ARG, "recon needs an output file: -o OUT");
    if (!fmr_method_find(opt.method)) {
        char names[256] = "";
        for (const fmr_method_ops *const *m = fmr_method_list(); *m; m++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     m == fmr_method_list() ? "" : ", ", (*m)->name);
        return fmr_error(FMR_ERR_ARG, "unknown method '%s' (available: %s)", opt.method, names);
    }
    /* the export list is checked before any work is done */
    char formats[256] = "";
    if (export_list) snprintf(formats, sizeof formats, "%s", export_list);
    if (preview) snprintf(formats + strlen(formats), sizeof formats - strlen(formats), "%sgif,png", formats[0] ? "," : "");
    if (formats[0]) {
        char tmp[256], *save = NULL;
        snprintf(tmp, sizeof tmp, "%s", formats);
        for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (!fmr_export_format_known(t))
                return fmr_error(FMR_ERR_ARG, "--export: unknown format '%s' (known: %s)", t, fmr_export_format_list());
    } else if (export_dir) {
        return fmr_error(FMR_ERR_ARG, "--export-dir needs --export or --preview");
    }
    if (check_only) return FMR_OK;
    fmr_recon_stats st;
    FMR_TRY(fmr_recon_file(cli->comm, argv[optind], out, &opt, &st));
    if (formats[0]) {
        char dir[4096];
        const char *slash = strrchr(out, '/');
        if (export_dir) snprintf(dir, sizeof dir, "%s", export_dir);
        else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
        else snprintf(dir, sizeof dir, ".");
        fmr_export_options eo;
        fmr_export_options_defaults(&eo);
        eo.write_complex = opt.write_complex;
        fmr_err e = cli->rank == 0 ? fmr_export_file(out, formats, dir, &eo) : FMR_OK;
        int ei = (int)e;
        MPI_Bcast(&ei, 1, MPI_INT, 0, cli->comm);
        if (e) return e;
        if (ei) return fmr_error((fmr_err)ei, "export of %s failed on rank 0", out);
    }
    fmr_info("recon: %zu items with %s on %d rank%s in %.2f s -> %s", st.items, opt.method,
             cli->size, cli->size > 1 ? "s" : "", st.seconds, out);
    fmr_verbose("recon: rank 0 read %.3f s, compute %.3f s, write %.3f s", st.read_s, st.compute_s,
                st.write_s);
    if (st.dc_s > 0)
        fmr_verbose("recon: rank 0 data consistency %.3f s, of which FFTW %.3f s (%.0f%%)", st.dc_s,
                    st.fft_s, 100.0 * st.fft_s / st.dc_s);
    return FMR_OK;
}

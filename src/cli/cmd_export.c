/* fmrecon export IN.h5 --format FMT[,FMT] -o DIR */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/export.h"
#include "fmrecon/log.h"

static const char *help =
    "usage: fmrecon export IN.h5 --format FMT[,FMT...] -o DIR [options]\n\n"
    "Writes a reconstruction (the output of fmrecon recon) in formats other tools read, with the\n"
    "geometry recorded in IN's 'geometry' attribute (pixel spacing, slice positions and\n"
    "orientation, trigger times; assumed values stay marked as assumed). Outputs are named after\n"
    "IN (or --name) and written under temporary names, then renamed (docs/formats.md):\n"
    "  nifti   NAME.nii: 4-D float32 magnitude (w, h, slice, time), qform = sform from the\n"
    "          geometry in RAS, time step from the trigger times; one NAME_sliceZZ.nii per slice\n"
    "          when the slices are not one evenly spaced stack (or with --per-slice);\n"
    "          with --complex also NAME_complex.nii (complex64, needs recon --complex)\n"
    "  dicom   NAME_dicom/slice_ZZ/IM_TTTT.dcm: one MR series per slice location, one MR Image\n"
    "          Storage instance per frame (uint16 with RescaleSlope), new series/SOP UIDs per\n"
    "          export; study and frame-of-reference UIDs the input's when it has them\n"
    "  gif     NAME_slice_ZZ.gif: animated cine per slice, frame delays from the trigger times\n"
    "  png     NAME_montage.png: labelled montage, one row per slice, one column per frame\n"
    "  cfl     NAME.cfl + NAME.hdr: BART pair [h, w, 1, ..., TIME = frames, ..., SLICE = slices],\n"
    "          magnitude (imaginary part 0), with --complex the complex image\n\n"
    "  -f, --format LIST    one or more of the formats above, comma-separated (required)\n"
    "  -o, --output DIR     output folder (created if missing)\n"
    "      --complex        NIfTI: also the complex image; cfl: the complex image\n"
    "      --per-slice      NIfTI: one file per slice\n"
    "      --enhanced       DICOM: one Enhanced MR Image Storage multi-frame instance per slice\n"
    "                       (all frames, functional groups) instead of one MR Image per frame\n"
    "      --name BASE      base name of the outputs (default: IN without .h5)\n"
    "  -q, --quiet          no progress\n"
    "  -h, --help           this text\n";

fmr_err fmr_cmd_export(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"format", required_argument, 0, 'f'}, {"output", required_argument, 0, 'o'},
        {"complex", no_argument, 0, 'c'},      {"per-slice", no_argument, 0, 'p'},
        {"name", required_argument, 0, 'N'},   {"enhanced", no_argument, 0, 'E'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {0}};
    fmr_export_options eo;
    fmr_export_options_defaults(&eo);
    const char *formats = NULL, *dir = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'f': formats = optarg; break;
        case 'o': dir = optarg; break;
        case 'c': eo.write_complex = 1; break;
        case 'p': eo.per_slice = 1; break;
        case 'N': eo.name = optarg; break;
        case 'E': eo.enhanced = 1; break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': fmr_cli_help(cli, help); return FMR_OK;
        default: return fmr_opt_bad("export", c, argv);
        }
    }
    if (optind + 1 != argc) return fmr_error(FMR_ERR_ARG, "export takes one input file (see fmrecon export --help)");
    if (!formats) return fmr_error(FMR_ERR_ARG, "export needs --format (one or more of %s)", fmr_export_format_list());
    if (!dir) return fmr_error(FMR_ERR_ARG, "export needs an output folder: -o DIR");
    /* Exporting is serial: rank 0 writes, the others learn the outcome. */
    fmr_err err = cli->rank == 0 ? fmr_export_file(argv[optind], formats, dir, &eo) : FMR_OK;
    int e = (int)err;
    MPI_Bcast(&e, 1, MPI_INT, 0, cli->comm);
    if (!err && e) err = fmr_error((fmr_err)e, "export failed on rank 0");
    return err;
}

/* fmrecon info FILE: what a raw-data file holds, as text or JSON. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fmrecon/cfl.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"

static const char *help =
    "usage: fmrecon info FILE [--json] [--variable NAME] [--mask-file FILE]\n\n"
    "Describes a raw-data file: format, k-space shape in fmrecon's layout\n"
    "(frames, slices, coils, readout, phase-encode), precision, the sampling mask (acceleration\n"
    "and ACS lines), the acquired phase-encode range from the ISMRMRD header, and the reference.\n"
    "Without a mask dataset, sampling is inferred from the all-zero columns of the first item.\n\n"
    "Formats: fastMRI .h5 (+ cine extension), CMRxRecon MATLAB v7.3 .mat, ISMRMRD .h5, BART\n"
    "X.cfl/X.hdr (name X, X.cfl or X.hdr; zero phase-encode columns = not sampled). MATLAB v5\n"
    ".mat: convert with fmrecon-mat2h5 first.\n\n"
    "  --json                 print one JSON object instead of text\n"
    "  --variable NAME        CMRxRecon k-space variable (default: the first of kspace_full, kus,\n"
    "                         kspace_sub04/08/10, kspace_single_full, kspace_single_sub04/08/10)\n"
    "  --mask-file FILE       take the mask from FILE (a CMRxRecon mask .mat, or HDF5 'mask')\n"
    "  --mask-variable NAME   its variable (default: mask, mask04, mask08 or mask10)\n"
    "      --no-prewhiten        keep raw channels even when the file has noise scans (ISMRMRD);\n"
    "                            by default k-space is prewhitened with their covariance\n"
    "      --virtual-coils N     SVD coil compression to N virtual coils (cuts every later step)\n"
    "%s"
    "  -h, --help             this text\n";

/* Columns of item (0, 0) holding any non-zero sample. */
static fmr_err infer_mask(fmr_dataset *ds, float *mask)
{
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    size_t n = in->coils * in->h * in->w;
    fmr_cfloat *ks = NULL;
    FMR_TRY(fmr_alloc((void **)&ks, n * sizeof *ks, "k-space item"));
    fmr_err err = fmr_dataset_read_kspace(ds, 0, 0, 0, in->coils, ks);
    for (size_t c = 0; c < in->w; c++) mask[c] = 0.0f;
    for (size_t i = 0; !err && i < n; i++)
        if (ks[i] != 0.0f) mask[i % in->w] = 1.0f;
    fmr_free(ks);
    return err;
}

fmr_err fmr_cmd_info(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                       {"variable", required_argument, 0, 'V'},
                                       {"mask-file", required_argument, 0, 'M'},
                                       {"mask-variable", required_argument, 0, 'K'}, {"no-prewhiten", no_argument, 0, 2001},
        {"virtual-coils", required_argument, 0, 2002}, FMR_GEOMETRY_LONGOPTS,
                                       {"help", no_argument, 0, 'h'},
                                       {0}};
    fmr_open_options oo = {0};
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'V') oo.variable = optarg;
        else if (c == 'M') oo.mask_file = optarg;
        else if (c == 'K') oo.mask_variable = optarg;
        else if (c == 2001) oo.no_prewhiten = 1;
        else if (c == 2002) {
            FMR_TRY(fmr_opt_size("--virtual-coils", optarg, 1, 1024, &oo.virtual_coils));
        }
        else if (c >= FMR_OPT_PIXEL_SPACING && c <= FMR_OPT_TRIGGER_TIMES) {
            FMR_TRY(fmr_opt_geometry(c, optarg, &oo.geometry));
        }
        else if (c == 'h') {
            if (cli->rank == 0) printf(help, fmr_geometry_help);
            return FMR_OK;
        }
        else return fmr_opt_bad("info", c, argv);
    }
    if (optind != argc - 1)
        return fmr_error(FMR_ERR_ARG, "info takes exactly one FILE (see 'fmrecon info --help')");
    const char *path = argv[optind];
    fmr_dataset *ds;
    FMR_TRY(fmr_dataset_open(path, &oo, &ds));
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    float *mask = malloc(in->w * sizeof *mask);
    fmr_err err = mask ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot allocate mask");
    int inferred = in->mask == FMR_MASK_NONE;
    if (!err) err = inferred ? infer_mask(ds, mask) : fmr_dataset_read_mask(ds, 0, mask);
    if (err) {
        free(mask);
        fmr_dataset_close(&ds);
        return err;
    }
    fmr_mask_stats ms;
    fmr_mask_describe(mask, in->w, in->pad_left, in->pad_right, &ms);
    struct stat st;
    char cfl[4096], data[4200];
    if (fmr_cfl_is(path, cfl, sizeof cfl)) snprintf(data, sizeof data, "%s.cfl", cfl); /* a BART pair: its data */
    double mib = stat(fmr_cfl_is(path, cfl, sizeof cfl) ? data : path, &st) == 0 ? (double)st.st_size / 1048576.0 : -1;
    const char *mask_kind = in->mask == FMR_MASK_NONE     ? "none (inferred from k-space zeros)"
                            : in->mask == FMR_MASK_SHARED ? "shared by all frames"
                                                          : "per frame (frame 0 shown)";
    if (cli->rank == 0 && json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddNumberToObject(o, "size_mib", mib);
        cJSON_AddStringToObject(o, "format", in->format_name);
        cJSON_AddStringToObject(o, "variable", in->variable);
        cJSON_AddNumberToObject(o, "coils_in_file", (double)in->coils_in_file);
        cJSON_AddBoolToObject(o, "prewhitened", in->prewhitened);
        if (in->coils != in->coils_in_file) cJSON_AddNumberToObject(o, "compression_energy", in->compression_energy);
        if (in->format == FMR_FORMAT_ISMRMRD) {
            cJSON_AddNumberToObject(o, "noise_scans", (double)in->noise_scans);
            cJSON_AddNumberToObject(o, "calibration_lines", (double)in->calibration_lines);
        }
        cJSON *sh = cJSON_AddArrayToObject(o, "kspace_shape");
        size_t dims[5] = {in->frames, in->slices, in->coils, in->h, in->w};
        for (int i = 0; i < 5; i++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)dims[i]));
        cJSON_AddStringToObject(o, "axes", "frame,slice,coil,readout,phase_encode");
        cJSON_AddStringToObject(o, "dtype", in->file_double ? "complex128" : "complex64");
        cJSON_AddBoolToObject(o, "frame_axis_in_file", in->has_frame_axis);
        cJSON_AddStringToObject(o, "mask", in->mask == FMR_MASK_NONE ? "none"
                                           : in->mask == FMR_MASK_SHARED ? "shared" : "per_frame");
        cJSON_AddBoolToObject(o, "sampling_inferred", inferred);
        cJSON_AddNumberToObject(o, "sampled_lines", (double)ms.sampled);
        cJSON_AddNumberToObject(o, "acceleration", ms.accel);
        cJSON_AddNumberToObject(o, "acs_lines", (double)ms.acs);
        cJSON_AddNumberToObject(o, "acs_start", (double)ms.acs_start);
        cJSON_AddNumberToObject(o, "pad_left", (double)in->pad_left);
        cJSON_AddNumberToObject(o, "pad_right", (double)in->pad_right);
        cJSON_AddBoolToObject(o, "has_reference", in->has_reference);
        if (in->has_max) cJSON_AddNumberToObject(o, "max", in->max);
        if (in->has_norm) cJSON_AddNumberToObject(o, "norm", in->norm);
        if (in->acquisition[0]) cJSON_AddStringToObject(o, "acquisition", in->acquisition);
        char *gj = NULL;
        if (!fmr_geometry_to_json(fmr_dataset_get_geometry(ds), &gj)) cJSON_AddItemToObject(o, "geometry", cJSON_Parse(gj));
        free(gj);
        char *s = cJSON_Print(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
    } else if (cli->rank == 0) {
        printf("file:         %s (%.1f MiB)\n", path, mib);
        printf("format:       %s, k-space from '%s'%s\n", in->format_name, in->variable,
               in->has_frame_axis ? " (cine: frame axis in file)" : "");
        if (in->format == FMR_FORMAT_ISMRMRD)
            printf("ismrmrd:      %zu noise scans (kept for prewhitening), %zu calibration-only lines\n",
                   in->noise_scans, in->calibration_lines);
        printf("k-space:      %zu frames x %zu slices x %zu coils x %zu readout x %zu phase-encode, %s\n",
               in->frames, in->slices, in->coils, in->h, in->w,
               in->file_double ? "complex128" : "complex64");
        if (in->prewhitened || in->coils != in->coils_in_file) {
            printf("channels:     %zu in the file", in->coils_in_file);
            if (in->prewhitened) printf(", prewhitened with the noise scans");
            if (in->coils != in->coils_in_file)
                printf(", compressed to %zu virtual coils (%.2f%% of the energy)", in->coils, 100.0 * in->compression_energy);
            printf("\n");
        }
        printf("mask:         %s\n", mask_kind);
        printf("sampling:     %zu of %zu phase-encode lines, effective R = %.2f", ms.sampled, ms.acquired, ms.accel);
        if (ms.acs)
            printf(", ACS %zu lines (columns %zu..%zu)\n", ms.acs, ms.acs_start, ms.acs_start + ms.acs - 1);
        else
            printf(", no ACS block at the centre\n");
        if (in->has_header)
            printf("acquired:     columns %zu..%zu (ismrmrd_header)\n", in->pad_left, in->pad_right - 1);
        if (in->has_reference)
            printf("reference:    reconstruction_rss, %zu x %zu per image\n", in->ref_h, in->ref_w);
        else
            printf("reference:    none\n");
        if (in->has_max || in->has_norm || in->acquisition[0]) {
            printf("attributes:  ");
            if (in->acquisition[0]) printf(" acquisition=%s", in->acquisition);
            if (in->has_max) printf(" max=%.6g", in->max);
            if (in->has_norm) printf(" norm=%.6g", in->norm);
            printf("\n");
        }
        const fmr_geometry *g = fmr_dataset_get_geometry(ds);
        const fmr_slice_geometry *s0 = &g->slice[0];
        printf("pixels:       %.4g x %.4g mm (%s)\n", g->spacing_h, g->spacing_w, g->src_spacing);
        printf("slices:       %.4g mm thick, %.4g mm apart (%s)\n", g->slice_thickness, g->slice_spacing, g->src_thickness);
        printf("position:     slice 0 pixel (0,0) at LPS (%.2f, %.2f, %.2f) mm (%s)\n", s0->position[0], s0->position[1],
               s0->position[2], g->src_position);
        printf("orientation:  h along (%.3f, %.3f, %.3f), w along (%.3f, %.3f, %.3f) (%s)\n", s0->dir_h[0], s0->dir_h[1],
               s0->dir_h[2], s0->dir_w[0], s0->dir_w[1], s0->dir_w[2], g->src_orientation);
        printf("trigger:      %.1f .. %.1f ms over %zu frames (%s)\n", g->trigger_ms[0], g->trigger_ms[g->frames - 1], g->frames,
               g->src_trigger);
    }
    free(mask);
    fmr_dataset_close(&ds);
    return FMR_OK;
}

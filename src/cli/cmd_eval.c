/* fmrecon eval --ref REF --rec REC [--ref REF2 --rec REC2 ...] */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/io.h"
#include "fmrecon/metrics.h"

static const char *help =
    "usage: fmrecon eval --ref REF --rec REC [--ref REF2 --rec REC2 ...] [options]\n\n"
    "Scores reconstructions against references: PSNR, SSIM, NMSE per image, per volume (file\n"
    "pair) and over the cohort (mean of the volumes). Images come from 'reconstruction' or\n"
    "'reconstruction_rss', shaped (frames, slices, h, w) or (slices, h, w).\n"
    "fastMRI rules (default): data range = reference volume max; volume PSNR and NMSE over the\n"
    "whole volume, SSIM = mean over its images (scikit-image defaults: 7x7 window, K1 0.01,\n"
    "K2 0.03, sample covariance); images centre-cropped to the smaller size if they differ.\n\n"
    "  --ref FILE          reference (repeat, paired in order with --rec)\n"
    "  --rec FILE          reconstruction\n"
    "  --crop cmrxrecon    CMRxRecon ranking rules instead: central 2 slices (all if fewer than\n"
    "                      3), frames 1-3, centre crop round(h/3) x round(w/2), each image divided\n"
    "                      by its own max, metrics averaged over images\n"
    "  --json              print JSON instead of text\n"
    "  --csv FILE          also write one row per image to FILE\n"
    "  -h, --help          this text\n";

enum { MAXPAIRS = 4096 };

/* File scope: the cohort's "evaluate" options are checked against this same table and parser. */
const char fmr_eval_shortopts[] = ":h";
const struct option fmr_eval_longopts[] = {{"ref", required_argument, 0, 'r'}, {"rec", required_argument, 0, 'x'},
                                           {"crop", required_argument, 0, 'c'}, {"json", no_argument, 0, 'j'},
                                           {"csv", required_argument, 0, 'v'},  {"help", no_argument, 0, 'h'},
                                           {0}};

fmr_err fmr_eval_parse_crop(const char *text, fmr_eval_mode *mode)
{
    if (strcmp(text, "cmrxrecon") && strcmp(text, "none"))
        return fmr_error(FMR_ERR_ARG, "--crop: '%s' unknown (cmrxrecon or none)", text);
    *mode = strcmp(text, "cmrxrecon") ? FMR_EVAL_FASTMRI : FMR_EVAL_CMRXRECON;
    return FMR_OK;
}

fmr_err fmr_cmd_eval(fmr_cli *cli, int argc, char **argv)
{
    const struct option *lo = fmr_eval_longopts;
    static const char *refs[MAXPAIRS], *recs[MAXPAIRS];
    size_t nref = 0, nrec = 0;
    int json = 0, c;
    const char *csv = NULL;
    fmr_eval_mode mode = FMR_EVAL_FASTMRI;
    opterr = 0;
    while ((c = getopt_long(argc, argv, fmr_eval_shortopts, lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (nref == MAXPAIRS) return fmr_error(FMR_ERR_ARG, "at most %d pairs", MAXPAIRS);
            refs[nref++] = optarg;
            break;
        case 'x':
            if (nrec == MAXPAIRS) return fmr_error(FMR_ERR_ARG, "at most %d pairs", MAXPAIRS);
            recs[nrec++] = optarg;
            break;
        case 'c': FMR_TRY(fmr_eval_parse_crop(optarg, &mode)); break;
        case 'j': json = 1; break;
        case 'v': csv = optarg; break;
        case 'h': fmr_cli_help(cli, help); return FMR_OK;
        default: return fmr_opt_bad("eval", c, argv);
        }
    }
    if (optind != argc) return fmr_error(FMR_ERR_ARG, "eval takes no positional arguments (use --ref/--rec)");
    if (!nref || nref != nrec)
        return fmr_error(FMR_ERR_ARG, "eval needs as many --rec as --ref, at least one each (got %zu and %zu)",
                         nref, nrec);
    if (cli->rank != 0) return FMR_OK;
    FILE *cf = NULL;
    if (csv) {
        FMR_TRY(fmr_output_check(csv, refs, nref));
        FMR_TRY(fmr_output_check(csv, recs, nrec));
        cf = fopen(csv, "w");
        if (!cf) return fmr_error(FMR_ERR_IO, "%s: cannot write CSV", csv);
        fprintf(cf, "reference,reconstruction,frame,slice,psnr,ssim,nmse\n");
    }
    cJSON *root = cJSON_CreateObject(), *vols = cJSON_AddArrayToObject(root, "volumes");
    cJSON_AddStringToObject(root, "rules", mode == FMR_EVAL_CMRXRECON ? "cmrxrecon" : "fastmri");
    double sp = 0, ss = 0, sn = 0;
    fmr_err err = FMR_OK;
    if (!json) printf("%-40s %9s %8s %10s %7s\n", "reconstruction", "PSNR(dB)", "SSIM", "NMSE", "images");
    for (size_t i = 0; i < nref && !err; i++) {
        fmr_volume_metrics m;
        err = fmr_eval_files(refs[i], recs[i], mode, &m);
        if (err) break;
        sp += m.psnr, ss += m.ssim, sn += m.nmse;
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "reference", refs[i]);
        cJSON_AddStringToObject(v, "reconstruction", recs[i]);
        cJSON_AddNumberToObject(v, "psnr", m.psnr);
        cJSON_AddNumberToObject(v, "ssim", m.ssim);
        cJSON_AddNumberToObject(v, "nmse", m.nmse);
        cJSON_AddNumberToObject(v, "height", (double)m.h);
        cJSON_AddNumberToObject(v, "width", (double)m.w);
        cJSON *ims = cJSON_AddArrayToObject(v, "images");
        for (size_t k = 0; k < m.nimages; k++) {
            const fmr_image_metrics *im = &m.images[k];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "frame", (double)im->frame);
            cJSON_AddNumberToObject(o, "slice", (double)im->slice);
            cJSON_AddNumberToObject(o, "psnr", im->psnr);
            cJSON_AddNumberToObject(o, "ssim", im->ssim);
            cJSON_AddNumberToObject(o, "nmse", im->nmse);
            cJSON_AddItemToArray(ims, o);
            if (cf)
                fprintf(cf, "%s,%s,%zu,%zu,%.6f,%.6f,%.8f\n", refs[i], recs[i], im->frame, im->slice,
                        im->psnr, im->ssim, im->nmse);
        }
        cJSON_AddItemToArray(vols, v);
        if (!json) printf("%-40s %9.3f %8.4f %10.6f %7zu\n", recs[i], m.psnr, m.ssim, m.nmse, m.nimages);
        fmr_volume_metrics_free(&m);
    }
    if (!err) {
        double n = (double)nref;
        cJSON *co = cJSON_AddObjectToObject(root, "cohort");
        cJSON_AddNumberToObject(co, "volumes", n);
        cJSON_AddNumberToObject(co, "psnr", sp / n);
        cJSON_AddNumberToObject(co, "ssim", ss / n);
        cJSON_AddNumberToObject(co, "nmse", sn / n);
        if (json) {
            char *s = cJSON_Print(root);
            if (s) puts(s);
            free(s);
        } else if (nref > 1) {
            printf("%-40s %9.3f %8.4f %10.6f\n", "cohort mean", sp / n, ss / n, sn / n);
        }
    }
    cJSON_Delete(root);
    if (cf && fclose(cf) != 0 && !err) err = fmr_error(FMR_ERR_IO, "%s: writing CSV failed", csv);
    return err;
}

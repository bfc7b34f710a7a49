/* fmrecon demo: the README's main job. Simulates a small cine cohort, undersamples it,
 * reconstructs it with every method, scores each against the fully sampled reference and writes
 * PNG previews. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/files.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"
#include "fmrecon/metrics.h"
#include "fmrecon/recon.h"
#include "fmrecon/sim.h"

static const char *help =
    "usage: fmrecon demo [-o DIR] [--subjects N] [--accel R] [--acs N] [--methods LIST]\n\n"
    "End-to-end demo on built-in simulated data: simulates N beating-heart cine subjects (12\n"
    "frames x 2 slices x 8 coils x 192x160), undersamples them with the CMRxRecon Uniform mask\n"
    "(every R-th line + ACS), reconstructs each with every method, prints PSNR / SSIM / NMSE against\n"
    "the fully sampled root-sum-of-squares reference (fastMRI rules) and writes PNG previews\n"
    "(DIR/preview_NNN.png: rows reference, then each method; columns frames 0, T/3, 2T/3).\n\n"
    "  -o, --output DIR   where inputs, results and previews go (default demo-out)\n"
    "  -n, --subjects N   simulated subjects (default 2)\n"
    "      --accel R      acceleration (default 8)\n"
    "      --acs N        ACS lines (default 24)\n"
    "      --methods LIST comma-separated methods (default: all, zf,sense,cs,unrolled; unrolled\n"
    "                     uses the shipped demo model: a small network trained on simulated\n"
    "                     data with a frozen random ViT, see models/README.md)\n"
    "  -q, --quiet        only the result table\n"
    "  -h, --help         this text\n";

enum { MAXM = 8, PCOLS = 3 };

#ifndef FMR_MODELS_DIR
#define FMR_MODELS_DIR ""
#endif
#ifndef FMR_INSTALL_MODELS_DIR
#define FMR_INSTALL_MODELS_DIR ""
#endif

/* The shipped demo model (models/): $FMR_MODELS_DIR, else the installed copy, else the source
 * tree's. Returns 0 if none is found. */
static int find_demo_model(char *bundle, char *weights, size_t n)
{
    const char *dirs[3] = {getenv("FMR_MODELS_DIR"), FMR_INSTALL_MODELS_DIR, FMR_MODELS_DIR};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        snprintf(bundle, n, "%s/demo_unrolled.safetensors", dirs[i]);
        snprintf(weights, n, "%s/demo_vit_random.safetensors", dirs[i]);
        FILE *a = fopen(bundle, "rb"), *b = fopen(weights, "rb");
        const int ok = a && b;
        if (a) fclose(a);
        if (b) fclose(b);
        if (ok) return 1;
    }
    return 0;
}

/* One grey tile per (row, column): images scaled by the reference's maximum. */
static fmr_err preview(const char *path, float *const *vols, size_t nrows, const fmr_sim_params *p, float range)
{
    const size_t H = p->h, W = p->w, T = p->frames, S = p->slices;
    unsigned char *px = calloc(nrows * H * PCOLS * W, 1);
    if (!px) return fmr_error(FMR_ERR_NOMEM, "cannot allocate preview");
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < PCOLS; c++) {
            size_t t = c * T / PCOLS;
            const float *img = vols[r] + (t * S + 0) * H * W;
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < W; x++) {
                    float v = range > 0 ? img[y * W + x] / range : 0.0f;
                    px[(r * H + y) * PCOLS * W + c * W + x] = (unsigned char)lrintf(255.0f * fminf(fmaxf(v, 0.0f), 1.0f));
                }
        }
    fmr_err err = fmr_png_write_gray(path, nrows * H, PCOLS * W, px);
    free(px);
    return err;
}

fmr_err fmr_cmd_demo(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"subjects", required_argument, 0, 'n'},
        {"accel", required_argument, 0, 'R'},  {"acs", required_argument, 0, 'A'},
        {"methods", required_argument, 0, 'M'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0}};
    const char *dir = "demo-out";
    char mlist[256] = "";
    size_t nsub = 2, acs = 24;
    long accel = 8;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:n:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': FMR_TRY(fmr_opt_size("--subjects", optarg, 1, 1000, &nsub)); break;
        case 'R': FMR_TRY(fmr_opt_int("--accel", optarg, 1, 64, &accel)); break;
        case 'A': FMR_TRY(fmr_opt_size("--acs", optarg, 0, 4096, &acs)); break;
        case 'M': snprintf(mlist, sizeof mlist, "%s", optarg); break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': fmr_cli_help(cli, help); return FMR_OK;
        default: return fmr_opt_bad("demo", c, argv);
        }
    }
    if (optind != argc) return fmr_error(FMR_ERR_ARG, "demo takes no positional arguments");
    const fmr_method_ops *methods[MAXM];
    size_t nm = 0;
    char bundle[1024], weights[1024];
    const int have_model = find_demo_model(bundle, weights, sizeof bundle);
    if (!mlist[0]) {
        for (const fmr_method_ops *const *m = fmr_method_list(); *m && nm < MAXM; m++)
            if (strcmp((*m)->name, "unrolled") || have_model) methods[nm++] = *m;
        if (!have_model) fmr_warn("demo: no demo model found (models/ or $FMR_MODELS_DIR); skipping unrolled");
    } else {
        for (char *tok = strtok(mlist, ","); tok && nm < MAXM; tok = strtok(NULL, ",")) {
            methods[nm] = fmr_method_find(tok);
            if (!methods[nm]) return fmr_error(FMR_ERR_ARG, "--methods: unknown method '%s'", tok);
            nm++;
        }
    }
    fmr_sim_params p;
    fmr_sim_defaults(&p);
    if (acs > p.w) return fmr_error(FMR_ERR_ARG, "--acs %zu is wider than %zu lines", acs, p.w);
    int e = cli->rank == 0 ? fmr_mkdirs(dir) : 0;
    MPI_Bcast(&e, 1, MPI_INT, 0, cli->comm);
    if (e) return fmr_error(FMR_ERR_IO, "%s: cannot create folder", dir);

    float mask[4096];
    FMR_TRY(fmr_mask_uniform(p.w, (int)accel, acs, mask));
    fmr_mask_stats ms;
    fmr_mask_describe(mask, p.w, 0, p.w, &ms);
    fmr_info("demo: %zu subjects, %zu frames x %zu slices x %zu coils x %zux%zu, Uniform mask R = %ld "
             "(%zu ACS lines; %.2f with them), %d rank%s",
             nsub, p.frames, p.slices, p.coils, p.h, p.w, accel, acs, ms.accel, cli->size, cli->size > 1 ? "s" : "");
    if (cli->rank == 0)
        printf("%-8s %-9s %4s %9s %7s %9s %8s\n", "subject", "method", "R", "PSNR(dB)", "SSIM", "NMSE", "time(s)");
    double sum_psnr[MAXM] = {0}, sum_ssim[MAXM] = {0};
    for (size_t s = 0; s < nsub; s++) {
        char in[4200], out[4300];
        snprintf(in, sizeof in, "%s/subject_%03zu_R%ld.h5", dir, s, accel);
        p.seed = 1 + s; /* as `fmrecon simulate --seed 1`; the demo model was trained on seeds >= 1001 */
        fmr_info("demo: simulating subject %zu -> %s", s, in);
        FMR_TRY(fmr_sim_write(cli->comm, in, &p, mask));
        float *vols[MAXM + 1] = {0};
        int nd;
        size_t d[8];
        fmr_err err = cli->rank == 0 ? fmr_h5_read_floats(in, "reconstruction_rss", 4, &nd, d, &vols[0]) : FMR_OK;
        for (size_t k = 0; !err && k < nm; k++) {
            snprintf(out, sizeof out, "%s/subject_%03zu_R%ld_%s.h5", dir, s, accel, methods[k]->name);
            fmr_recon_options opt;
            fmr_recon_options_defaults(&opt);
            opt.method = methods[k]->name;
            opt.argv_line = cli->argv_line;
            if (!strcmp(opt.method, "unrolled")) {
                if (!have_model) {
                    err = fmr_error(FMR_ERR_ARG, "demo: method unrolled needs the demo model (models/ or $FMR_MODELS_DIR)");
                    break;
                }
                opt.params.model_file = bundle;
                opt.params.weights_file = weights;
            }
            fmr_recon_stats st;
            fmr_info("demo: subject %zu, %s", s, methods[k]->name);
            err = fmr_recon_file(cli->comm, in, out, &opt, &st);
            if (err || cli->rank != 0) continue;
            fmr_volume_metrics vm;
            err = fmr_eval_files(in, out, FMR_EVAL_FASTMRI, &vm);
            if (!err) err = fmr_h5_read_floats(out, "reconstruction", 4, &nd, d, &vols[k + 1]);
            if (err) break;
            printf("%-8zu %-9s %4ld %9.2f %7.4f %9.5f %8.2f\n", s, methods[k]->name, accel, vm.psnr, vm.ssim,
                   vm.nmse, st.seconds);
            fflush(stdout);
            sum_psnr[k] += vm.psnr;
            sum_ssim[k] += vm.ssim;
            fmr_volume_metrics_free(&vm);
        }
        if (!err && cli->rank == 0) {
            snprintf(out, sizeof out, "%s/preview_%03zu.png", dir, s);
            err = preview(out, vols, nm + 1, &p, fmr_maxf(vols[0], p.frames * p.slices * p.h * p.w));
        }
        for (size_t k = 0; k <= nm; k++) fmr_free(vols[k]);
        FMR_TRY(err);
    }
    if (cli->rank == 0) {
        printf("mean over %zu subjects:\n", nsub);
        for (size_t k = 0; k < nm; k++)
            printf("  %-9s PSNR %6.2f dB  SSIM %.4f\n", methods[k]->name, sum_psnr[k] / (double)nsub,
                   sum_ssim[k] / (double)nsub);
        printf("inputs, reconstructions and previews (preview_NNN.png) are in %s/\n", dir);
    }
    fflush(stdout);
    return FMR_OK;
}

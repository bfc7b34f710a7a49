/* fmrecon demo: the README's main job. Simulates a small cine cohort, undersamples it, reconstructs
 * it and prints quality figures against the fully sampled reference. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"
#include "fmrecon/metrics.h"
#include "fmrecon/recon.h"
#include "fmrecon/sim.h"

int fmr_mkdirs(const char *path);

static const char *help =
    "usage: fmrecon demo [-o DIR] [--subjects N] [--accel R] [--acs N]\n\n"
    "End-to-end demo on built-in simulated data: simulates N cine subjects (12 frames x 2 slices\n"
    "x 8 coils x 192x160), undersamples them (Uniform mask: every R-th line + ACS), reconstructs\n"
    "each with every available method, and prints PSNR/NMSE against the fully sampled\n"
    "root-sum-of-squares reference (fastMRI conventions: volume max as data range).\n\n"
    "  -o, --output DIR   where inputs and results go (default demo-out)\n"
    "  -n, --subjects N   simulated subjects (default 2)\n"
    "      --accel R      acceleration (default 4)\n"
    "      --acs N        ACS lines (default 16)\n"
    "  -q, --quiet        only the result table\n"
    "  -h, --help         this text\n";

fmr_err fmr_cmd_demo(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"subjects", required_argument, 0, 'n'},
        {"accel", required_argument, 0, 'R'},  {"acs", required_argument, 0, 'A'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {0}};
    const char *dir = "demo-out";
    size_t nsub = 2, acs = 16;
    long accel = 4;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:n:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': FMR_TRY(fmr_opt_size("--subjects", optarg, 1, 1000, &nsub)); break;
        case 'R': FMR_TRY(fmr_opt_int("--accel", optarg, 1, 64, &accel)); break;
        case 'A': FMR_TRY(fmr_opt_size("--acs", optarg, 0, 4096, &acs)); break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': fmr_cli_help(cli, help); return FMR_OK;
        default: return fmr_opt_bad("demo", c, argv);
        }
    }
    if (optind != argc) return fmr_error(FMR_ERR_ARG, "demo takes no positional arguments");
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
             "(effective %.2f), %zu ACS lines, %d rank%s",
             nsub, p.frames, p.slices, p.coils, p.h, p.w, accel, ms.accel, acs, cli->size,
             cli->size > 1 ? "s" : "");
    if (cli->rank == 0)
        printf("%-12s %-8s %6s %10s %10s %9s\n", "subject", "method", "R", "PSNR(dB)", "NMSE", "time(s)");
    double sum_psnr = 0.0;
    size_t nres = 0;
    for (size_t s = 0; s < nsub; s++) {
        char in[4200], out[4300];
        snprintf(in, sizeof in, "%s/subject_%03zu_R%ld.h5", dir, s, accel);
        p.seed = 1000 + s;
        FMR_TRY(fmr_sim_write(cli->comm, in, &p, mask));
        for (const fmr_method_ops *const *m = fmr_method_list(); *m; m++) {
            snprintf(out, sizeof out, "%s/subject_%03zu_R%ld_%s.h5", dir, s, accel, (*m)->name);
            fmr_recon_options opt;
            fmr_recon_options_defaults(&opt);
            opt.method = (*m)->name;
            opt.argv_line = cli->argv_line;
            fmr_recon_stats st;
            int lvl = fmr_log_get_level();
            fmr_log_set_level(FMR_LOG_QUIET);
            fmr_err err = fmr_recon_file(cli->comm, in, out, &opt, &st);
            fmr_log_set_level(lvl);
            FMR_TRY(err);
            if (cli->rank != 0) continue;
            float *ref = NULL, *rec = NULL;
            int nd1, nd2;
            size_t d1[8], d2[8];
            err = fmr_h5_read_floats(in, "reconstruction_rss", 8, &nd1, d1, &ref);
            if (!err) err = fmr_h5_read_floats(out, "reconstruction", 8, &nd2, d2, &rec);
            size_t n = p.frames * p.slices * p.h * p.w;
            if (!err) {
                double psnr = fmr_psnr(ref, rec, n, fmr_maxf(ref, n));
                printf("%-12zu %-8s %6ld %10.2f %10.5f %9.2f\n", s, (*m)->name, accel, psnr,
                       fmr_nmse(ref, rec, n), st.seconds);
                sum_psnr += psnr;
                nres++;
            }
            fmr_free(ref);
            fmr_free(rec);
            FMR_TRY(err);
        }
    }
    if (cli->rank == 0) {
        printf("mean PSNR over %zu results: %.2f dB\n", nres, nres ? sum_psnr / (double)nres : 0.0);
        printf("inputs and reconstructions are in %s/\n", dir);
    }
    fflush(stdout);
    return FMR_OK;
}

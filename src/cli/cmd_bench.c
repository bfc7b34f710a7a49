/* fmrecon bench encoder: speed of the frozen encoders (docs/benchmarks.md). Figures only; no
 * pass/fail. Random weights with the published layouts stand in for the real checkpoints (the
 * speed does not depend on the values). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/rng.h"
#include "cli.h"
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"
#include "fmrecon/log.h"

#ifndef FMR_PYTHON_DIR
#define FMR_PYTHON_DIR ""
#endif

static const char *help =
    "usage: fmrecon bench encoder [options]\n\n"
    "Times the first blocks of each frozen encoder at 224x224 (random weights with the published\n"
    "layout): ms/image and GFLOP/s per batch size, against the machine's f32 matmul peak measured\n"
    "on the encoder's own matmul shapes in the same run, and the PyTorch reference (python/) in\n"
    "the same run. Threads: OMP_NUM_THREADS (oneDNN and PyTorch alike).\n\n"
    "  --models LIST     comma-separated ids (default clip-vit-b16,dinov2-s14,dinov2-b14,biomedclip-b16)\n"
    "  --batch LIST      batch sizes (default 1,8)\n"
    "  --blocks N        blocks computed (default 6, the network's taps)\n"
    "  --repeats N       timed runs per point, best kept (default 3)\n"
    "  --no-torch        skip the PyTorch reference\n"
    "  --python DIR      fmrecon's python/ folder (default: the source tree's)\n"
    "  --json FILE       also write the figures as JSON\n"
    "  -h, --help        this text\n";

typedef struct {
    const char *models, *batches, *json, *pydir;
    long blocks, reps;
    int torch;
} bench_opts;

static int parse_list(const char *text, int *v, int max)
{
    int n = 0;
    for (const char *p = text; *p && n < max;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x <= 0 || x > 4096 || (*end && *end != ',')) return -1;
        v[n++] = (int)x;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* Seconds per image of the PyTorch reference, or a negative value when unavailable. */
static double torch_time(const bench_opts *o, const char *fam, const char *ckpt, int batch, int threads)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/bench_encoder_torch.py' --family %s --weights '%s' --batch %d --layers %ld "
             "--threads %d --repeats %ld 2>/dev/null",
             o->pydir, fam, ckpt, batch, o->blocks, threads, o->reps);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    double s = -1;
    if (fscanf(p, "%lf", &s) != 1) s = -1;
    if (pclose(p) != 0) s = -1;
    return s;
}

static const char *family_of(const fmr_encoder_config *c)
{
    return c->family == FMR_ENC_CLIP ? "clip" : c->family == FMR_ENC_DINOV2 ? "dinov2" : "biomedclip";
}

static fmr_err bench_model(const bench_opts *o, const char *id, const int *batches, int nb, int threads, cJSON *arr)
{
    fmr_encoder_family fam;
    int width, patch;
    FMR_TRY(fmr_encoder_parse_id(id, &fam, &width, &patch));
    const int grid = fam == FMR_ENC_DINOV2 ? 37 : 224 / patch, S = 224;
    void *buf;
    size_t len;
    FMR_TRY(fmr_encoder_synthesize(id, (int)o->blocks, grid, 1, &buf, &len));
    char path[512];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/fmr-bench-%s-%d.safetensors", tmp, id, (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        if (f) fclose(f);
        free(buf);
        return fmr_error(FMR_ERR_IO, "%s: cannot write the benchmark checkpoint", path);
    }
    fclose(f);
    free(buf);
    fmr_encoder *enc = NULL;
    fmr_err err = fmr_encoder_create(path, id, (int)o->blocks, &enc);
    const int layer = (int)o->blocks;
    for (int bi = 0; !err && bi < nb; bi++) {
        const int b = batches[bi];
        int tokens;
        err = fmr_encoder_tokens(enc, S, S, &tokens);
        if (err) break;
        const size_t npix = (size_t)b * 3 * S * S, nout = (size_t)b * tokens * width;
        float *pix = fmr_malloc(npix * sizeof(float)), *ref = fmr_malloc(nout * sizeof(float)),
              *alt = fmr_malloc(nout * sizeof(float));
        if (!pix || !ref || !alt) err = fmr_error(FMR_ERR_NOMEM, "out of memory (benchmark)");
        fmr_rng rng;
        fmr_rng_seed(&rng, 7);
        for (size_t i = 0; !err && i < npix; i++) pix[i] = (float)fmr_rng_normal(&rng);
        double best = 1e30, peak = 0, bf16_s = -1, bf16_err = -1;
        for (long r = 0; !err && r <= o->reps; r++) { /* r = 0: plan creation, weight packing */
            double t0 = fmr_wtime();
            err = fmr_encoder_forward(enc, pix, b, S, S, &layer, 1, &ref);
            double t = fmr_wtime() - t0;
            if (r > 0 && t < best) best = t;
        }
        if (!err) err = fmr_encoder_matmul_peak(enc, b, S, S, 0, (int)(o->reps > 5 ? o->reps : 5), &peak);
        if (!err && fmr_cpu_has_bf16()) {
            err = fmr_encoder_set_precision(enc, FMR_PREC_BF16);
            for (long r = 0; !err && r <= o->reps; r++) {
                double t0 = fmr_wtime();
                err = fmr_encoder_forward(enc, pix, b, S, S, &layer, 1, &alt);
                double t = fmr_wtime() - t0;
                if (r > 0 && (bf16_s < 0 || t < bf16_s)) bf16_s = t;
            }
            double md = 0, mr = 0;
            for (size_t i = 0; !err && i < nout; i++) {
                md = fmax(md, fabs((double)alt[i] - ref[i]));
                mr = fmax(mr, fabs((double)ref[i]));
            }
            bf16_err = mr > 0 ? md / mr : 0;
            if (!err) err = fmr_encoder_set_precision(enc, FMR_PREC_F32);
        }
        const double flops = fmr_encoder_flops(enc, b, S, S, (int)o->blocks);
        const double ms = 1e3 * best / b, gf = flops / best * 1e-9;
        double ts = o->torch && !err ? torch_time(o, family_of(fmr_encoder_get_config(enc)), path, b, threads) : -1;
        if (!err) {
            printf("%-15s batch %2d  %8.1f ms/image  %6.1f GFLOP/s  (%4.0f %% of matmul peak %.1f GFLOP/s)", id, b, ms, gf,
                   100 * gf / peak, peak);
            if (ts > 0) printf("  PyTorch %8.1f ms/image  speed-up %.2fx", 1e3 * ts, ts * b / best);
            else if (o->torch) printf("  PyTorch: unavailable");
            if (bf16_s > 0) printf("  bf16 %.1f ms/image (%.2fx PyTorch f32), rel. error %.1e", 1e3 * bf16_s / b,
                                   ts > 0 ? ts * b / bf16_s : 0, bf16_err);
            printf("\n");
            fflush(stdout);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "model", id);
            cJSON_AddNumberToObject(e, "batch", b);
            cJSON_AddNumberToObject(e, "blocks", (double)o->blocks);
            cJSON_AddNumberToObject(e, "threads", threads);
            cJSON_AddNumberToObject(e, "ms_per_image", ms);
            cJSON_AddNumberToObject(e, "gflops", gf);
            cJSON_AddNumberToObject(e, "matmul_peak_gflops", peak);
            cJSON_AddNumberToObject(e, "fraction_of_peak", gf / peak);
            if (ts > 0) cJSON_AddNumberToObject(e, "torch_ms_per_image", 1e3 * ts);
            if (ts > 0) cJSON_AddNumberToObject(e, "speedup_vs_torch", ts * b / best);
            if (bf16_s > 0) cJSON_AddNumberToObject(e, "bf16_ms_per_image", 1e3 * bf16_s / b);
            if (bf16_s > 0) cJSON_AddNumberToObject(e, "bf16_rel_error", bf16_err);
            cJSON_AddItemToArray(arr, e);
        }
        fmr_free(pix), fmr_free(ref), fmr_free(alt);
    }
    fmr_encoder_destroy(&enc);
    unlink(path);
    return err;
}

static fmr_err bench_encoder(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"models", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
                                       {"blocks", required_argument, 0, 'k'}, {"repeats", required_argument, 0, 'r'},
                                       {"no-torch", no_argument, 0, 'T'},     {"python", required_argument, 0, 'p'},
                                       {"json", required_argument, 0, 'j'},   {"help", no_argument, 0, 'h'},
                                       {0}};
    bench_opts o = {.models = "clip-vit-b16,dinov2-s14,dinov2-b14,biomedclip-b16", .batches = "1,8", .blocks = 6,
                    .reps = 3, .torch = 1, .pydir = FMR_PYTHON_DIR};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.models = optarg; break;
        case 'b': o.batches = optarg; break;
        case 'k': FMR_TRY(fmr_opt_int("--blocks", optarg, 1, 48, &o.blocks)); break;
        case 'r': FMR_TRY(fmr_opt_int("--repeats", optarg, 1, 1000, &o.reps)); break;
        case 'T': o.torch = 0; break;
        case 'p': o.pydir = optarg; break;
        case 'j': o.json = optarg; break;
        case 'h': return fmr_cli_help(cli, help), FMR_OK;
        default: return fmr_opt_bad("bench encoder", c, argv);
        }
    }
    if (optind != argc) return fmr_error(FMR_ERR_ARG, "bench encoder: unexpected argument '%s'", argv[optind]);
    int batches[16];
    const int nb = parse_list(o.batches, batches, 16);
    if (nb <= 0) return fmr_error(FMR_ERR_ARG, "--batch: '%s' is not a list of positive sizes", o.batches);
    if (cli->rank != 0) return FMR_OK;
    const int threads = omp_get_max_threads();
    printf("fmrecon bench encoder: 224x224, first %ld blocks, %d thread%s, oneDNN ISA %s, bf16 %s\n", o.blocks, threads,
           threads == 1 ? "" : "s", fmr_cpu_isa_name(),
           fmr_cpu_has_bf16() ? "native" : "not available on this CPU (no AVX512-BF16/AMX): f32 only");
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "results");
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON_AddStringToObject(root, "isa", fmr_cpu_isa_name());
    fmr_err err = FMR_OK;
    char *list = strdup(o.models);
    for (char *save = NULL, *id = strtok_r(list, ",", &save); !err && id; id = strtok_r(NULL, ",", &save))
        err = bench_model(&o, id, batches, nb, threads, arr);
    free(list);
    if (!err && o.json) {
        char *s = cJSON_Print(root);
        FILE *f = fopen(o.json, "w");
        if (!f || fputs(s, f) < 0) err = fmr_error(FMR_ERR_IO, "%s: cannot write", o.json);
        if (f) fclose(f);
        free(s);
    }
    cJSON_Delete(root);
    return err;
}

fmr_err fmr_cmd_bench(fmr_cli *cli, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
        return fmr_cli_help(cli, "usage: fmrecon bench encoder [options]   (fmrecon bench encoder --help)\n"), FMR_OK;
    if (!strcmp(argv[1], "encoder")) return bench_encoder(cli, argc - 1, argv + 1);
    return fmr_error(FMR_ERR_ARG, "bench: unknown benchmark '%s' (encoder)", argv[1]);
}

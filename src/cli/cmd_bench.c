/* fmrecon bench encoder: speed of the frozen encoders (docs/benchmarks.md). Figures only; no
 * pass/fail. Random weights with the published layouts stand in for the real checkpoints (the
 * speed does not depend on the values). */
#include <cjson/cJSON.h>
#include <complex.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fmrecon/array.h"
#include "fmrecon/decoder.h"
#include "fmrecon/encoder.h"
#include "fmrecon/dc.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "fmrecon/rng.h"
#include "fmrecon/sense.h"
#include "fmrecon/sim.h"

#ifndef FMR_PYTHON_DIR
#define FMR_PYTHON_DIR ""
#endif

static const char *help =
    "usage: fmrecon bench encoder [options]\n\n"
    "Times the first blocks of each frozen encoder at 224x224 (random weights with the published\n"
    "layout): ms/image and GFLOP/s per batch size, against the machine's f32 matmul peak measured\n"
    "on the encoder's own matmul shapes in the same run, and the PyTorch reference (python/) in\n"
    "the same run. Threads: OMP_NUM_THREADS (oneDNN and PyTorch alike).\n\n"
    "  --models LIST     comma-separated ids (default "
    "clip-vit-b16,dinov2-s14,dinov2-b14,biomedclip-b16)\n"
    "  --batch LIST      batch sizes (default 1,8)\n"
    "  --blocks N        blocks computed (default 6, the network's taps)\n"
    "  --repeats N       timed runs per point, best kept (default 3)\n"
    "  --precision LIST  f32, bf16 or f32,bf16 (default): bf16 runs where the CPU has\n"
    "                    AVX512-BF16/AMX, always next to f32; a bf16 figure whose results are\n"
    "                    bit-identical to f32 is refused (it would not be bf16)\n"
    "  --no-torch        skip the PyTorch figures (the project's reference, python/fmrecon_ref, and\n"
    "                    stock torch.nn modules, python/bench_encoder_torch_nn.py)\n"
    "  --python DIR      fmrecon's python/ folder (default: the source tree's)\n"
    "  --json FILE       also write the figures as JSON\n"
    "  -h, --help        this text\n";

typedef struct {
    const char *models, *batches, *json, *pydir;
    long blocks, reps;
    int torch, bf16;
} bench_opts;

/* --precision LIST: whether bf16 is asked for (f32 always runs: bf16 is judged against it). */
static fmr_err parse_precisions(const char *text, int *bf16)
{
    *bf16 = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "bf16"))
            *bf16 = 1;
        else if (strcmp(t, "f32"))
            return fmr_error(FMR_ERR_ARG, "--precision: '%s' is not f32 or bf16", t);
    }
    return FMR_OK;
}

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

/* A random checkpoint of a published layout (speed does not depend on the values), written
 * to a temporary file that PyTorch can read too; path receives its name. */
static fmr_err bench_checkpoint(const char *id, int blocks, int grid, const char *tag, char *path, size_t n)
{
    void *buf;
    size_t len;
    FMR_TRY(fmr_encoder_synthesize(id, blocks, grid, 1, &buf, &len));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, n, "%s/fmr-bench-%s-%s-%d.safetensors", tmp, tag, id, (int)getpid());
    FILE *f = fopen(path, "wb");
    fmr_err err = (!f || fwrite(buf, 1, len, f) != len)
                      ? fmr_error(FMR_ERR_IO, "%s: cannot write the benchmark checkpoint", path)
                      : FMR_OK;
    if (f) fclose(f);
    free(buf);
    return err;
}

static fmr_err write_json(const char *path, const cJSON *o)
{
    char *js = cJSON_Print(o);
    FILE *f = js ? fopen(path, "w") : NULL;
    fmr_err err = (!f || fputs(js, f) < 0) ? fmr_error(FMR_ERR_IO, "%s: cannot write", path) : FMR_OK;
    if (f && fclose(f) != 0 && !err) err = fmr_error(FMR_ERR_IO, "%s: cannot write", path);
    free(js);
    return err;
}

/* Seconds per image of a ViT built from stock torch.nn modules with the encoder's shapes
 * (python/bench_encoder_torch_nn.py), or a negative value when unavailable. */
static double torch_nn_time(const bench_opts *o, const fmr_encoder_config *c, int batch,
                            int threads)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/bench_encoder_torch_nn.py' --width %d --heads %d --mlp %d "
             "--patch %d --size 224 --blocks %ld --batch %d --activation %s --threads %d "
             "--repeats %ld 2>/dev/null",
             o->pydir, c->width, c->heads, c->mlp, c->patch, o->blocks, batch,
             c->quick_gelu ? "quick_gelu" : "gelu", threads, o->reps);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    double s = -1;
    if (fscanf(p, "%lf", &s) != 1) s = -1;
    if (pclose(p) != 0) s = -1;
    return s;
}

/* Seconds per image of the PyTorch reference, or a negative value when unavailable. */
static double torch_time(const bench_opts *o, const char *fam, const char *ckpt, int batch,
                         int threads)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/bench_encoder_torch.py' --family %s --weights '%s' --batch %d "
             "--layers %ld "
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
    return c->family == FMR_ENC_CLIP     ? "clip"
           : c->family == FMR_ENC_DINOV2 ? "dinov2"
                                         : "biomedclip";
}

static fmr_err bench_model(const bench_opts *o, const char *id, const int *batches, int nb,
                           int threads, cJSON *arr)
{
    fmr_encoder_family fam;
    int width, patch;
    FMR_TRY(fmr_encoder_parse_id(id, &fam, &width, &patch));
    const int grid = fam == FMR_ENC_DINOV2 ? 37 : 224 / patch, S = 224;
    char path[512];
    FMR_TRY(bench_checkpoint(id, (int)o->blocks, grid, "encoder", path, sizeof path));
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
        for (size_t i = 0; !err && i < npix; i++)
            pix[i] = (float)fmr_rng_normal(&rng);
        double best = 1e30, peak = 0, bf16_s = -1, bf16_err = -1;
        char impl32[128] = "", impl16[128] = "";
        int identical = 0;
        for (long r = 0; !err && r <= o->reps; r++) { /* r = 0: plan creation, weight packing */
            double t0 = fmr_wtime();
            err = fmr_encoder_forward(enc, pix, b, S, S, &layer, 1, &ref);
            double t = fmr_wtime() - t0;
            if (r > 0 && t < best) best = t;
        }
        const char *impl = NULL;
        if (!err) err = fmr_encoder_impl(enc, b, S, S, &impl);
        if (!err) snprintf(impl32, sizeof impl32, "%s", impl);
        if (!err)
            err = fmr_encoder_matmul_peak(enc, b, S, S, 0, (int)(o->reps > 5 ? o->reps : 5), &peak);
        if (!err && o->bf16 && fmr_cpu_has_bf16()) {
            err = fmr_encoder_set_precision(enc, FMR_PREC_BF16);
            if (!err && fmr_encoder_get_precision(enc) != FMR_PREC_BF16)
                err = fmr_error(FMR_ERR_INTERNAL, "the encoder did not switch to bf16");
            if (!err) err = fmr_encoder_impl(enc, b, S, S, &impl);
            if (!err) snprintf(impl16, sizeof impl16, "%s", impl);
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
            identical = !err && md == 0;
            if (!err) err = fmr_encoder_set_precision(enc, FMR_PREC_F32);
        }
        const double flops = fmr_encoder_flops(enc, b, S, S, (int)o->blocks);
        const double ms = 1e3 * best / b, gf = flops / best * 1e-9;
        double ts = o->torch && !err
                        ? torch_time(o, family_of(fmr_encoder_get_config(enc)), path, b, threads)
                        : -1;
        double tn = o->torch && !err ? torch_nn_time(o, fmr_encoder_get_config(enc), b, threads)
                                     : -1;
        if (identical) bf16_s = -1; /* not bf16, whatever it ran: no figure */
        if (!err) {
            printf("%-15s batch %2d  f32  %8.1f ms/image  %6.1f GFLOP/s  (%4.0f %% of matmul peak "
                   "%.1f GFLOP/s)  [matmul %s]\n",
                   id, b, ms, gf, 100 * gf / peak, peak, impl32);
            if (ts > 0)
                printf("%-15s batch %2d  PyTorch f32 (fmrecon_ref) %8.1f ms/image: fmrecon f32 "
                       "%.2fx\n",
                       id, b, 1e3 * ts, ts * b / best);
            if (tn > 0)
                printf("%-15s batch %2d  PyTorch f32 (torch.nn)    %8.1f ms/image: fmrecon f32 "
                       "%.2fx\n",
                       id, b, 1e3 * tn, tn * b / best);
            if (o->torch && ts <= 0 && tn <= 0) printf("  PyTorch: unavailable\n");
            if (identical)
                printf("%-15s batch %2d  bf16: results bit-identical to f32 [matmul %s]: not a "
                       "bf16 run, no figure\n",
                       id, b, impl16);
            if (bf16_s > 0) {
                printf("%-15s batch %2d  bf16 %8.1f ms/image  %6.1f GFLOP/s  %.2fx f32", id, b,
                       1e3 * bf16_s / b, flops / bf16_s * 1e-9, best / bf16_s);
                if (ts > 0) printf(", %.2fx PyTorch fmrecon_ref", ts * b / bf16_s);
                if (tn > 0) printf(", %.2fx PyTorch torch.nn", tn * b / bf16_s);
                printf("; rel. error vs f32 %.1e  [matmul %s]\n", bf16_err, impl16);
            }
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
            cJSON_AddStringToObject(e, "f32_matmul_impl", impl32);
            if (tn > 0) cJSON_AddNumberToObject(e, "torch_nn_ms_per_image", 1e3 * tn);
            if (bf16_s > 0) cJSON_AddStringToObject(e, "bf16_matmul_impl", impl16);
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
    static const struct option lo[] = {{"models", required_argument, 0, 'm'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"blocks", required_argument, 0, 'k'},
                                       {"repeats", required_argument, 0, 'r'},
                                       {"no-torch", no_argument, 0, 'T'},
                                       {"precision", required_argument, 0, 'P'},
                                       {"python", required_argument, 0, 'p'},
                                       {"json", required_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0}};
    bench_opts o = {.models = "clip-vit-b16,dinov2-s14,dinov2-b14,biomedclip-b16",
                    .batches = "1,8",
                    .blocks = 6,
                    .reps = 3,
                    .torch = 1,
                    .bf16 = 1,
                    .pydir = FMR_PYTHON_DIR};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            o.models = optarg;
            break;
        case 'b':
            o.batches = optarg;
            break;
        case 'k':
            FMR_TRY(fmr_opt_int("--blocks", optarg, 1, 48, &o.blocks));
            break;
        case 'r':
            FMR_TRY(fmr_opt_int("--repeats", optarg, 1, 1000, &o.reps));
            break;
        case 'T':
            o.torch = 0;
            break;
        case 'P':
            FMR_TRY(parse_precisions(optarg, &o.bf16));
            break;
        case 'p':
            o.pydir = optarg;
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'h':
            return fmr_cli_help(cli, help), FMR_OK;
        default:
            return fmr_opt_bad("bench encoder", c, argv);
        }
    }
    if (optind != argc)
        return fmr_error(FMR_ERR_ARG, "bench encoder: unexpected argument '%s'", argv[optind]);
    int batches[16];
    const int nb = parse_list(o.batches, batches, 16);
    if (nb <= 0)
        return fmr_error(FMR_ERR_ARG, "--batch: '%s' is not a list of positive sizes", o.batches);
    if (cli->rank != 0) return FMR_OK;
    const int threads = omp_get_max_threads();
    printf(
        "fmrecon bench encoder: 224x224, first %ld blocks, %d thread%s, oneDNN ISA %s, bf16 %s\n",
        o.blocks, threads, threads == 1 ? "" : "s", fmr_cpu_isa_name(),
        !o.bf16              ? "not asked for"
        : fmr_cpu_has_bf16() ? "native (bf16 operands and weights)"
                             : "not available on this CPU (no AVX512-BF16/AMX): f32 only");
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "results");
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON_AddStringToObject(root, "isa", fmr_cpu_isa_name());
    fmr_err err = FMR_OK;
    char *list = strdup(o.models);
    for (char *save = NULL, *id = strtok_r(list, ",", &save); !err && id;
         id = strtok_r(NULL, ",", &save))
        err = bench_model(&o, id, batches, nb, threads, arr);
    free(list);
    if (!err && o.json) {
        err = write_json(o.json, root);
    }
    cJSON_Delete(root);
    return err;
}

/* ---- fmrecon bench unrolled: where one frame's time goes -------------------------------- */

static const char *help_unrolled =
    "usage: fmrecon bench unrolled [options]\n\n"
    "Per-frame time of the unrolled network's parts at a given size: the frozen encoder (input\n"
    "mapping + forward to the deepest tap), the UNETR decoder (resizes + forward), one data-\n"
    "consistency solve (PETSc CG on the SENSE normal operator) and I/O (reading k-space, writing\n"
    "the image: measured by reconstructing a simulated file). Random weights of the published\n"
    "encoder layout and a random decoder; speed does not depend on the values.\n\n"
    "  --encoder ID        clip-vit-b16 (default), dinov2-s14, dinov2-b14, biomedclip-b16\n"
    "  --grid G            token grid (default 14: 224 for patch 16, 196 for patch 14)\n"
    "  --feature-size F    decoder feature size (default 16)\n"
    "  --taps LIST         default 2,4,6\n"
    "  --cascades T        default 4\n"
    "  --cg-iters N        CG iterations per cascade (default 10)\n"
    "  --matrix HxW        image size (default 192x160), --coils C (default 8)\n"
    "  --batch N           frames per encoder/decoder pass (default 8)\n"
    "  --repeats N         timed rounds (default 5); encoder, decoder (each precision) and the\n"
    "                      previous decoder run in turn in every round; medians are printed\n"
    "  --precision LIST    f32, bf16 or f32,bf16 (default): encoder and decoder in bf16 where the\n"
    "                      CPU has AVX512-BF16/AMX, always next to f32; a bf16 figure whose\n"
    "                      results are bit-identical to f32 is refused\n"
    "  --no-old-decoder    skip timing the previous plain-NCHW decoder plan (FMR_DECODER_PLAIN)\n"
    "  --json FILE         also write the figures as JSON\n";

static double best_of(long reps, fmr_err *err, fmr_err (*fn)(void *), void *ctx)
{
    double best = 1e30;
    for (long r = 0; !*err && r <= reps; r++) {
        double t0 = fmr_wtime();
        *err = fn(ctx);
        double t = fmr_wtime() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

typedef struct {
    fmr_encoder *enc;
    fmr_unetr *dec, *dec_old;
    fmr_dc *dc;
    int b, es, R, h, w, taps[4], ntaps;
    fmr_cfloat *img, *rhs, *x;
    float *pix, *feat[4], *plane, *dimg, *dout, *res;
} ub_ctx;

static fmr_err ub_enc(void *p)
{
    ub_ctx *c = p;
    FMR_TRY(fmr_encoder_map_input(c->enc, FMR_MAP_COMPLEX3, c->img, (size_t)c->b, c->h, c->w, c->es,
                                  c->pix));
    return fmr_encoder_forward(c->enc, c->pix, c->b, c->es, c->es, c->taps, c->ntaps, c->feat);
}

static fmr_err ub_dec(void *p)
{
    ub_ctx *c = p;
    FMR_TRY(fmr_resize_bilinear(c->plane, 2 * (size_t)c->b, c->h, c->w, c->R, c->R, c->dimg));
    FMR_TRY(fmr_unetr_forward(c->dec, c->b, c->dimg, (const float *const *)c->feat, c->dout));
    return fmr_resize_bilinear(c->dout, 2 * (size_t)c->b, c->R, c->R, c->h, c->w, c->res);
}

static fmr_err ub_dec_old(void *p)
{
    ub_ctx *c = p;
    FMR_TRY(fmr_resize_bilinear(c->plane, 2 * (size_t)c->b, c->h, c->w, c->R, c->R, c->dimg));
    FMR_TRY(fmr_unetr_forward(c->dec_old, c->b, c->dimg, (const float *const *)c->feat, c->dout));
    return fmr_resize_bilinear(c->dout, 2 * (size_t)c->b, c->R, c->R, c->h, c->w, c->res);
}

/* max |a - b| / max |a| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++)
        md = fmax(md, fabs((double)a[i] - b[i])), mr = fmax(mr, fabs((double)a[i]));
    return mr > 0 ? md / mr : md;
}

static fmr_err ub_dc(void *p)
{
    ub_ctx *c = p;
    memset(c->x, 0, (size_t)c->h * c->w * sizeof *c->x);
    return fmr_dc_solve(c->dc, c->rhs, c->x, 1, NULL);
}

static fmr_err bench_unrolled(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"encoder", required_argument, 0, 'e'},
                                       {"grid", required_argument, 0, 'g'},
                                       {"feature-size", required_argument, 0, 'f'},
                                       {"taps", required_argument, 0, 't'},
                                       {"cascades", required_argument, 0, 'T'},
                                       {"cg-iters", required_argument, 0, 'i'},
                                       {"matrix", required_argument, 0, 'm'},
                                       {"coils", required_argument, 0, 'c'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"repeats", required_argument, 0, 'r'},
                                       {"precision", required_argument, 0, 'P'},
                                       {"no-old-decoder", no_argument, 0, 'O'},
                                       {"json", required_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0}};
    const char *id = "clip-vit-b16", *taps = "2,4,6", *json = NULL;
    int want_bf16 = 1, old_dec = 1;
    long grid = 14, F = 16, T = 4, iters = 10, coils = 8, batch = 8, reps = 5;
    size_t H = 192, W = 160;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'e':
            id = optarg;
            break;
        case 'g':
            FMR_TRY(fmr_opt_int("--grid", optarg, 1, 64, &grid));
            break;
        case 'f':
            FMR_TRY(fmr_opt_int("--feature-size", optarg, 1, 256, &F));
            break;
        case 't':
            taps = optarg;
            break;
        case 'T':
            FMR_TRY(fmr_opt_int("--cascades", optarg, 1, 64, &T));
            break;
        case 'i':
            FMR_TRY(fmr_opt_int("--cg-iters", optarg, 1, 1000, &iters));
            break;
        case 'm':
            FMR_TRY(fmr_opt_matrix("--matrix", optarg, &H, &W));
            break;
        case 'c':
            FMR_TRY(fmr_opt_int("--coils", optarg, 1, 128, &coils));
            break;
        case 'b':
            FMR_TRY(fmr_opt_int("--batch", optarg, 1, 64, &batch));
            break;
        case 'r':
            FMR_TRY(fmr_opt_int("--repeats", optarg, 1, 100, &reps));
            break;
        case 'P':
            FMR_TRY(parse_precisions(optarg, &want_bf16));
            break;
        case 'O':
            old_dec = 0;
            break;
        case 'j':
            json = optarg;
            break;
        case 'h':
            return fmr_cli_help(cli, help_unrolled), FMR_OK;
        default:
            return fmr_opt_bad("bench unrolled", c, argv);
        }
    }
    ub_ctx u = {.b = (int)batch, .h = (int)H, .w = (int)W};
    u.ntaps = parse_list(taps, u.taps, 4);
    if (u.ntaps < 3)
        return fmr_error(FMR_ERR_ARG, "--taps: '%s' is not 3 or 4 layer indices", taps);
    if (cli->rank != 0) return FMR_OK;
    int deepest = 0;
    for (int k = 0; k < u.ntaps; k++)
        deepest = u.taps[k] > deepest ? u.taps[k] : deepest;
    fmr_encoder_family fam;
    int width, patch;
    FMR_TRY(fmr_encoder_parse_id(id, &fam, &width, &patch));
    char path[512];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    fmr_err err = bench_checkpoint(id, deepest, fam == FMR_ENC_DINOV2 ? 37 : (int)grid, "unrolled", path, sizeof path);
    if (!err) err = fmr_encoder_create(path, id, deepest, &u.enc);
    int tokens = 0;
    const size_t hw = H * W, B = (size_t)batch;
    u.es = (int)grid * patch, u.R = 16 * (int)grid;
    if (!err) err = fmr_encoder_tokens(u.enc, u.es, u.es, &tokens);
    const fmr_unetr_config uc = {
        .width = width, .grid = (int)grid, .feature_size = (int)F, .ntaps = u.ntaps};
    if (!err) err = fmr_unetr_create(NULL, "", &uc, &u.dec);
    if (!err && old_dec) { /* the previous plan, same random weights (same seed) */
        const char *prev = getenv("FMR_DECODER_PLAIN");
        char keep[16] = "";
        if (prev) snprintf(keep, sizeof keep, "%s", prev);
        setenv("FMR_DECODER_PLAIN", "1", 1);
        err = fmr_unetr_create(NULL, "", &uc, &u.dec_old);
        if (prev)
            setenv("FMR_DECODER_PLAIN", keep, 1);
        else
            unsetenv("FMR_DECODER_PLAIN");
    }
    fmr_cfloat *maps = NULL;
    fmr_sense *op = NULL;
    float *mask = NULL;
    const size_t R2 = (size_t)u.R * u.R;
    if (!err) err = fmr_alloc((void **)&u.img, B * hw * sizeof *u.img, "bench");
    if (!err)
        err = fmr_alloc((void **)&u.pix, B * 3 * (size_t)u.es * u.es * sizeof(float), "bench");
    for (int k = 0; !err && k < u.ntaps; k++)
        err = fmr_alloc((void **)&u.feat[k], B * tokens * width * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&u.plane, 2 * B * hw * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&u.dimg, 2 * B * R2 * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&u.dout, 2 * B * R2 * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&u.res, 2 * B * hw * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&maps, (size_t)coils * hw * sizeof *maps, "bench");
    if (!err) err = fmr_alloc((void **)&mask, W * sizeof *mask, "bench");
    if (!err) err = fmr_alloc((void **)&u.rhs, hw * sizeof *u.rhs, "bench");
    if (!err) err = fmr_alloc((void **)&u.x, hw * sizeof *u.x, "bench");
    fmr_rng rng;
    fmr_rng_seed(&rng, 3);
    for (size_t i = 0; !err && i < B * hw; i++) {
        u.img[i] = (float)fmr_rng_normal(&rng) + I * (float)fmr_rng_normal(&rng);
        u.plane[i] = crealf(u.img[i]), u.plane[B * hw + i] = cimagf(u.img[i]);
    }
    for (size_t i = 0; !err && i < (size_t)coils * hw; i++)
        maps[i] = (float)(fmr_rng_normal(&rng) / sqrt((double)coils)) +
                  I * (float)(fmr_rng_normal(&rng) / sqrt((double)coils));
    for (size_t i = 0; !err && i < W; i++)
        mask[i] = (i % 8 == 0) || (i >= W / 2 - 12 && i < W / 2 + 12);
    for (size_t i = 0; !err && i < hw; i++)
        u.rhs[i] = u.img[i];
    fmr_sense_desc sd = {
        .h = H, .w = W, .ncoils = (size_t)coils, .maps = maps, .comm = MPI_COMM_SELF};
    if (!err) err = fmr_sense_create(&op, &sd);
    if (!err) err = fmr_sense_set_mask(op, mask, 1);
    if (!err) err = fmr_dc_create(&u.dc, op, H, W);
    if (!err) err = fmr_dc_set(u.dc, 0.05, 0.0, (int)iters);
    /* per precision its own encoder and decoder (plans and packed weights of both stay alive),
     * so that the timed runs interleave: round r times every variant once, in turn, and the
     * medians over the rounds are reported (a shared, noisy machine moves whole stretches of
     * time; interleaving spreads that over every variant alike) */
    const size_t nfeat = B * (size_t)tokens * width, nout = 2 * B * R2;
    float *feat32 = NULL, *out32 = NULL, *feat16 = NULL;
    if (!err) err = fmr_alloc((void **)&feat32, u.ntaps * nfeat * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&feat16, u.ntaps * nfeat * sizeof(float), "bench");
    if (!err) err = fmr_alloc((void **)&out32, nout * sizeof(float), "bench");
    const int np = want_bf16 && fmr_cpu_has_bf16() ? 2 : 1;
    fmr_encoder *encs[2] = {u.enc, NULL};
    fmr_unetr *decs[2] = {u.dec, NULL};
    if (!err && np == 2) err = fmr_encoder_create(path, id, deepest, &encs[1]);
    if (!err && np == 2) err = fmr_encoder_set_precision(encs[1], FMR_PREC_BF16);
    if (!err && np == 2) err = fmr_unetr_create(NULL, "", &uc, &decs[1]);
    if (!err && np == 2 && (fmr_encoder_get_precision(encs[1]) != FMR_PREC_BF16 ||
                            !fmr_unetr_set_bf16(decs[1], 1)))
        err = fmr_error(FMR_ERR_INTERNAL, "the bf16 encoder or decoder did not switch to bf16");
    double t_enc[2] = {0}, t_dec[2] = {0}, enc_rel = -1, dec_rel = -1, t_old = -1;
    char impl_mm[2][128] = {"", ""}, impl_cv[2][128] = {"", ""};
    int refused[2] = {0, 0};
    for (int pi = 0; !err && pi < np; pi++) {
        const char *im = NULL;
        err = fmr_encoder_impl(encs[pi], u.b, u.es, u.es, &im);
        if (!err) snprintf(impl_mm[pi], sizeof impl_mm[pi], "%s", im);
        if (!err) err = fmr_unetr_impl(decs[pi], u.b, &im);
        if (!err) snprintf(impl_cv[pi], sizeof impl_cv[pi], "%s", im);
    }
    /* results: encoder in each precision; decoder in each precision on the f32 features, so
     * that its own change shows (these runs also build the plans: untimed) */
    for (int pi = np - 1; !err && pi >= 0; pi--) {
        u.enc = encs[pi];
        err = ub_enc(&u);
        for (int k = 0; !err && k < u.ntaps; k++)
            memcpy((pi ? feat16 : feat32) + k * nfeat, u.feat[k], nfeat * sizeof(float));
    }
    for (int pi = 0; !err && pi < np; pi++) {
        u.dec = decs[pi];
        err = ub_dec(&u);
        if (!err && !pi) memcpy(out32, u.dout, nout * sizeof(float));
        if (!err && pi) dec_rel = rel_diff(out32, u.dout, nout);
    }
    if (!err && np == 2) {
        enc_rel = rel_diff(feat32 + (u.ntaps - 1) * nfeat, feat16 + (u.ntaps - 1) * nfeat, nfeat);
        refused[1] = enc_rel == 0 || dec_rel == 0;
    }
    if (!err && old_dec) {
        err = ub_dec_old(&u);
        const double d = err ? 0 : rel_diff(out32, u.dout, nout);
        if (!err && d > 1e-4)
            err = fmr_error(FMR_ERR_INTERNAL,
                            "the previous decoder plan disagrees with the new one (%.1e relative)",
                            d);
    }
    {
        const int nr = (int)reps, nv = 2 * np + 1;
        double *tv = calloc((size_t)nv * nr, sizeof *tv);
        if (!tv && !err) err = fmr_error(FMR_ERR_NOMEM, "out of memory (bench)");
        for (int r = 0; !err && r < nr; r++)
            for (int v = 0; !err && v < nv; v++) {
                if (v == nv - 1 && !old_dec) continue;
                const double t0 = fmr_wtime();
                if (v < 2 * np && v % 2 == 0) u.enc = encs[v / 2], err = ub_enc(&u);
                if (v < 2 * np && v % 2 == 1) u.dec = decs[v / 2], err = ub_dec(&u);
                if (v == nv - 1) err = ub_dec_old(&u);
                tv[v * nr + r] = (fmr_wtime() - t0) / (double)B;
            }
        for (int v = 0; !err && v < nv; v++) {
            double *x = tv + v * nr; /* median */
            for (int a = 1; a < nr; a++)
                for (int c2 = a; c2 > 0 && x[c2 - 1] > x[c2]; c2--) {
                    const double t = x[c2];
                    x[c2] = x[c2 - 1], x[c2 - 1] = t;
                }
            const double med = nr % 2 ? x[nr / 2] : 0.5 * (x[nr / 2 - 1] + x[nr / 2]);
            if (v == nv - 1)
                t_old = old_dec ? med : -1;
            else if (v % 2 == 0)
                t_enc[v / 2] = med;
            else
                t_dec[v / 2] = med;
        }
        free(tv);
    }
    u.enc = encs[0], u.dec = decs[0];
    fmr_encoder_destroy(&encs[1]);
    fmr_unetr_destroy(&decs[1]);
    fmr_free(feat32), fmr_free(feat16), fmr_free(out32);
    const double t_dc = best_of(reps, &err, ub_dc, &u);
    /* I/O: read + write per frame, from a zero-filled reconstruction of a simulated file */
    double t_io = 0;
    char sim[512], out[512];
    snprintf(sim, sizeof sim, "%s/fmr-bench-unrolled-%d.h5", tmp, (int)getpid());
    snprintf(out, sizeof out, "%s/fmr-bench-unrolled-%d-out.h5", tmp, (int)getpid());
    if (!err) {
        fmr_sim_params sp;
        fmr_sim_defaults(&sp);
        sp.frames = B, sp.slices = 1, sp.coils = (size_t)coils, sp.h = H, sp.w = W;
        err = fmr_sim_write(MPI_COMM_SELF, sim, &sp, NULL);
    }
    if (!err) {
        fmr_recon_options ro;
        fmr_recon_options_defaults(&ro);
        fmr_recon_stats st;
        err = fmr_recon_file(MPI_COMM_SELF, sim, out, &ro, &st);
        t_io = (st.read_s + st.write_s) / (double)B;
    }
    unlink(sim), unlink(out), unlink(path);
    if (!err) {
        printf("fmrecon bench unrolled: %s, grid %ld (encoder input %d, decoder %d), F %ld, taps "
               "%s, %ld cascades,\n"
               "  CG %ld iterations, %zux%zu x %ld coils, batch %ld, %d thread%s, oneDNN ISA %s\n",
               id, grid, u.es, u.R, F, taps, T, iters, H, W, coils, batch, omp_get_max_threads(),
               omp_get_max_threads() == 1 ? "" : "s", fmr_cpu_isa_name());
        if (want_bf16 && np == 1)
            printf("  bf16: not available on this CPU (no AVX512-BF16/AMX): f32 only\n");
        if (t_old > 0)
            printf("  decoder, previous plain-NCHW plan (FMR_DECODER_PLAIN=1), f32: %8.1f ms per "
                   "frame and cascade (median); this plan is %.2fx faster\n",
                   1e3 * t_old, t_old / t_dec[0]);
        cJSON *o = json ? cJSON_CreateObject() : NULL;
        for (int pi = 0; pi < np; pi++) {
            const char *pn = pi ? "bf16" : "f32";
            if (refused[pi]) {
                printf("  %s: results bit-identical to f32 (encoder %.1e, decoder %.1e) [matmul %s, "
                       "conv %s]: not a bf16 run, no figure\n",
                       pn, enc_rel, dec_rel, impl_mm[pi], impl_cv[pi]);
                continue;
            }
            const double per_cascade = t_enc[pi] + t_dec[pi] + t_dc,
                         total = (double)T * per_cascade + t_io;
            printf("  %-4s [matmul %s, conv %s]\n", pn, impl_mm[pi], impl_cv[pi]);
            printf("       per frame and cascade: encoder %7.1f ms  decoder %7.1f ms (medians)  "
                   "data consistency %7.1f ms (best)\n",
                   1e3 * t_enc[pi], 1e3 * t_dec[pi], 1e3 * t_dc);
            printf("       per frame (%ld cascades + I/O %.1f ms): %.1f ms; shares: encoder %.0f %%, "
                   "decoder %.0f %%, data consistency %.0f %%, I/O %.1f %%\n",
                   T, 1e3 * t_io, 1e3 * total, 100 * T * t_enc[pi] / total,
                   100 * T * t_dec[pi] / total, 100 * T * t_dc / total, 100 * t_io / total);
            if (pi)
                printf("       vs f32: encoder %.2fx, decoder %.2fx, frame %.2fx; rel. change of "
                       "the last tap %.1e, of the decoder output %.1e\n",
                       t_enc[0] / t_enc[1], t_dec[0] / t_dec[1],
                       ((double)T * (t_enc[0] + t_dec[0] + t_dc) + t_io) / total, enc_rel,
                       dec_rel);
            if (o) {
                cJSON *e = cJSON_AddObjectToObject(o, pn);
                cJSON_AddStringToObject(e, "matmul_impl", impl_mm[pi]);
                cJSON_AddStringToObject(e, "conv_impl", impl_cv[pi]);
                cJSON_AddNumberToObject(e, "encoder_ms_per_frame_cascade", 1e3 * t_enc[pi]);
                cJSON_AddNumberToObject(e, "decoder_ms_per_frame_cascade", 1e3 * t_dec[pi]);
                cJSON_AddNumberToObject(e, "total_ms_per_frame", 1e3 * total);
                if (pi) cJSON_AddNumberToObject(e, "encoder_rel_change", enc_rel);
                if (pi) cJSON_AddNumberToObject(e, "decoder_rel_change", dec_rel);
            }
        }
        if (o) {
            cJSON_AddStringToObject(o, "encoder", id);
            cJSON_AddNumberToObject(o, "grid", (double)grid);
            cJSON_AddNumberToObject(o, "feature_size", (double)F);
            cJSON_AddNumberToObject(o, "cascades", (double)T);
            cJSON_AddNumberToObject(o, "cg_iters", (double)iters);
            cJSON_AddNumberToObject(o, "threads", omp_get_max_threads());
            cJSON_AddStringToObject(o, "isa", fmr_cpu_isa_name());
            cJSON_AddNumberToObject(o, "dc_ms_per_frame_cascade", 1e3 * t_dc);
            cJSON_AddNumberToObject(o, "io_ms_per_frame", 1e3 * t_io);
            if (t_old > 0) cJSON_AddNumberToObject(o, "decoder_old_ms_per_frame_cascade", 1e3 * t_old);
            err = write_json(json, o);
            cJSON_Delete(o);
        }
    }
    fmr_dc_destroy(&u.dc);
    fmr_sense_destroy(&op);
    fmr_unetr_destroy(&u.dec);
    fmr_unetr_destroy(&u.dec_old);
    fmr_encoder_destroy(&u.enc);
    fmr_free(u.img), fmr_free(u.pix), fmr_free(u.plane), fmr_free(u.dimg), fmr_free(u.dout),
        fmr_free(u.res);
    for (int k = 0; k < 4; k++)
        fmr_free(u.feat[k]);
    fmr_free(maps), fmr_free(mask), fmr_free(u.rhs), fmr_free(u.x);
    return err;
}

/* ---- fmrecon bench scaling: one point of a scaling study (run under mpirun) --------------- */

static const char *help_scaling =
    "usage: mpirun -np P fmrecon bench scaling [options]\n\n"
    "One point of a scaling study: simulates a cine dataset (collectively), reconstructs it on\n"
    "all ranks and reports per-rank phase times (read, coil maps, data consistency, FFT,\n"
    "communication, encoder, decoder, write), the coil-sum traffic and peak memory. "
    "bench/scaling.py\n"
    "sweeps P and K and derives speed-up, efficiency and the cost model (docs/scaling.md).\n\n"
    "  --method M        sense (default), cs, unrolled (with --model, --weights)\n"
    "  --coil-ranks K    ranks per item (default 1)\n"
    "  --mode strong|weak  strong (default): fixed dataset; weak: slices = ranks / K x --slices\n"
    "  --frames T, --slices Z, --coils C, --matrix HxW   dataset (default 12, 2, 8, 192x160)\n"
    "  --cg-iters N      CG iterations (default 50)\n"
    "  --model FILE, --weights FILE   for unrolled\n"
    "  --dir DIR         where the dataset goes (default $TMPDIR)\n"
    "  --json FILE       write the figures as JSON (rank 0)\n";

enum {
    SC_READ,
    SC_COMPUTE,
    SC_WRITE,
    SC_MAPS,
    SC_DC,
    SC_FFT,
    SC_COMM,
    SC_ENC,
    SC_DEC,
    SC_TOTAL,
    SC_RSS,
    SC_BYTES,
    SC_CALLS,
    SC_N
};
static const char *sc_names[SC_N] = {"read",        "compute",    "write",     "maps",    "dc",
                                     "fft",         "comm",       "encoder",   "decoder", "total",
                                     "peak_rss_mb", "comm_bytes", "comm_calls"};

static fmr_err bench_scaling(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"method", required_argument, 0, 'm'}, {"coil-ranks", required_argument, 0, 'K'},
        {"mode", required_argument, 0, 'M'},   {"frames", required_argument, 0, 'f'},
        {"slices", required_argument, 0, 'z'}, {"coils", required_argument, 0, 'c'},
        {"matrix", required_argument, 0, 'x'}, {"cg-iters", required_argument, 0, 'i'},
        {"model", required_argument, 0, 'o'},  {"weights", required_argument, 0, 'w'},
        {"dir", required_argument, 0, 'd'},    {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0}};
    const char *method = "sense", *mode = "strong", *json = NULL, *model = NULL, *weights = NULL;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    long K = 1, frames = 12, slices = 2, coils = 8, iters = 50;
    size_t H = 192, W = 160;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            method = optarg;
            break;
        case 'K':
            FMR_TRY(fmr_opt_int("--coil-ranks", optarg, 1, 4096, &K));
            break;
        case 'M':
            mode = optarg;
            break;
        case 'f':
            FMR_TRY(fmr_opt_int("--frames", optarg, 1, 4096, &frames));
            break;
        case 'z':
            FMR_TRY(fmr_opt_int("--slices", optarg, 1, 4096, &slices));
            break;
        case 'c':
            FMR_TRY(fmr_opt_int("--coils", optarg, 1, 256, &coils));
            break;
        case 'x':
            FMR_TRY(fmr_opt_matrix("--matrix", optarg, &H, &W));
            break;
        case 'i':
            FMR_TRY(fmr_opt_int("--cg-iters", optarg, 1, 10000, &iters));
            break;
        case 'o':
            model = optarg;
            break;
        case 'w':
            weights = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'h':
            return fmr_cli_help(cli, help_scaling), FMR_OK;
        default:
            return fmr_opt_bad("bench scaling", c, argv);
        }
    }
    if (strcmp(mode, "strong") && strcmp(mode, "weak"))
        return fmr_error(FMR_ERR_ARG, "--mode: '%s' is not strong or weak", mode);
    if (cli->size % K)
        return fmr_error(FMR_ERR_ARG, "--coil-ranks %ld does not divide the %d ranks", K,
                         cli->size);
    const long groups = cli->size / K, Z = strcmp(mode, "weak") ? slices : slices * groups;
    char sim[600], out[700];
    snprintf(sim, sizeof sim, "%s/fmr-scaling-%s-%ldx%ld-%zux%zu-c%ld.h5", dir, mode, frames, Z, H,
             W, coils);
    snprintf(out, sizeof out, "%s.P%d.K%ld.out.h5", sim, cli->size, K);
    fmr_sim_params sp;
    fmr_sim_defaults(&sp);
    sp.frames = (size_t)frames, sp.slices = (size_t)Z, sp.coils = (size_t)coils, sp.h = H, sp.w = W;
    float *mask = malloc(W * sizeof *mask);
    if (!mask) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < W; i++)
        mask[i] = (i % 8 == 0) || (i + 12 >= W / 2 && i < W / 2 + 12);
    fmr_log_set_level(FMR_LOG_QUIET);
    fmr_err err = fmr_sim_write(cli->comm, sim, &sp, mask);
    free(mask);
    FMR_TRY(err);
    fmr_recon_options ro;
    fmr_recon_options_defaults(&ro);
    ro.method = method;
    ro.coil_ranks = (int)K;
    ro.params.max_it = (int)iters;
    ro.params.rtol = 0; /* a fixed iteration count: the same work for every P */
    ro.params.model_file = model, ro.params.weights_file = weights;
    fmr_recon_stats st;
    MPI_Barrier(cli->comm);
    err = fmr_recon_file(cli->comm, sim, out, &ro, &st);
    if (cli->rank == 0) unlink(out);
    FMR_TRY(err);
    double mine[SC_N] = {st.read_s,
                         st.compute_s,
                         st.write_s,
                         st.method.maps_s,
                         st.method.dc_s,
                         st.method.fft_s,
                         st.method.comm_s,
                         st.method.enc_s,
                         st.method.dec_s,
                         st.seconds,
                         st.peak_rss_mb,
                         (double)st.method.comm_bytes,
                         (double)st.method.comm_calls};
    double *all = cli->rank == 0 ? malloc((size_t)cli->size * SC_N * sizeof *all) : NULL;
    MPI_Gather(mine, SC_N, MPI_DOUBLE, all, SC_N, MPI_DOUBLE, 0, cli->comm);
    /* each rank's host, so that traffic and time can be summed per node (slurm/report.py) */
    char host[MPI_MAX_PROCESSOR_NAME] = {0};
    int hl = 0;
    MPI_Get_processor_name(host, &hl);
    char *hosts = cli->rank == 0 ? calloc((size_t)cli->size, MPI_MAX_PROCESSOR_NAME) : NULL;
    MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
               cli->comm);
    if (cli->rank != 0) return FMR_OK;
    if (!all || !hosts) {
        free(all), free(hosts);
        return fmr_error(FMR_ERR_NOMEM, "out of memory (bench scaling results)");
    }
    const size_t items = (size_t)frames * (size_t)Z;
    double wall = 0;
    for (int r = 0; r < cli->size; r++)
        wall = fmax(wall, all[r * SC_N + SC_TOTAL]);
    printf("bench scaling: %s, %s, P = %d, K = %ld, %zu items (%ld frames x %ld slices), %zux%zu x "
           "%ld coils, CG %ld, "
           "%d thread%s per rank: %.2f s\n",
           method, mode, cli->size, K, items, frames, Z, H, W, coils, iters, omp_get_max_threads(),
           omp_get_max_threads() == 1 ? "" : "s", wall);
    printf("%4s", "rank");
    for (int k = 0; k < SC_N; k++)
        printf(" %9.9s", sc_names[k]);
    printf("\n");
    for (int r = 0; r < cli->size; r++) {
        printf("%4d", r);
        for (int k = 0; k < SC_N; k++)
            printf(" %9.3f", all[r * SC_N + k]);
        printf("\n");
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *ranks = cJSON_AddArrayToObject(o, "ranks");
        cJSON_AddStringToObject(o, "method", method);
        cJSON_AddStringToObject(o, "mode", mode);
        cJSON_AddNumberToObject(o, "P", cli->size);
        cJSON_AddNumberToObject(o, "K", (double)K);
        cJSON_AddNumberToObject(o, "threads_per_rank", omp_get_max_threads());
        cJSON_AddNumberToObject(o, "items", (double)items);
        cJSON_AddNumberToObject(o, "frames", (double)frames);
        cJSON_AddNumberToObject(o, "slices", (double)Z);
        cJSON_AddNumberToObject(o, "coils", (double)coils);
        cJSON_AddNumberToObject(o, "h", (double)H);
        cJSON_AddNumberToObject(o, "w", (double)W);
        cJSON_AddNumberToObject(o, "cg_iters", (double)iters);
        cJSON_AddNumberToObject(o, "wall_s", wall);
        for (int r = 0; r < cli->size; r++) {
            cJSON *e = cJSON_CreateObject();
            for (int k = 0; k < SC_N; k++)
                cJSON_AddNumberToObject(e, sc_names[k], all[r * SC_N + k]);
            cJSON_AddStringToObject(e, "host", hosts + (size_t)r * MPI_MAX_PROCESSOR_NAME);
            cJSON_AddItemToArray(ranks, e);
        }
        err = write_json(json, o);
        cJSON_Delete(o);
    }
    free(all), free(hosts);
    return err;
}

fmr_err fmr_cmd_bench(fmr_cli *cli, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
        return fmr_cli_help(
                   cli, "usage: fmrecon bench encoder|unrolled|scaling [options]   (fmrecon bench "
                        "NAME --help)\n"),
               FMR_OK;
    if (!strcmp(argv[1], "encoder")) return bench_encoder(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "unrolled")) return bench_unrolled(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "scaling")) return bench_scaling(cli, argc - 1, argv + 1);
    return fmr_error(FMR_ERR_ARG, "bench: unknown benchmark '%s' (encoder, unrolled, scaling)",
                     argv[1]);
}

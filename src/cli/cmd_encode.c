/* fmrecon encode IN -o FEATS.h5 --encoder ID --weights CKPT --layers 2,4,6: a frozen encoder's
 * hidden states, for checking fmrecon against PyTorch and for users' own feature studies. */
#include <cjson/cJSON.h>
#include <complex.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"
#include "fmrecon/fft.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/provenance.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"

static const char *help =
    "usage: fmrecon encode IN.h5 -o FEATS.h5 --encoder ID --weights CKPT [--layers 2,4,6]\n\n"
    "Runs a frozen foundation encoder (oneDNN) and writes the hidden states of the requested\n"
    "layers, in Hugging Face `hidden_states` indexing (0 = embeddings, i = output of block i), as\n"
    "datasets hidden_state_<i> of shape (images, tokens incl. the class token, width) float32.\n"
    "No block beyond the deepest requested layer is read or computed.\n\n"
    "IN is one of:\n"
    "  - an HDF5 file with pixel_values (B, 3, H, W) float32, already normalised the way the\n"
    "    Hugging Face image processors do; it goes straight into the network;\n"
    "  - an fmrecon result (image complex64 or reconstruction float32, (frames, slices, H, W));\n"
    "  - a k-space file fmrecon reads (fastMRI, CMRxRecon, ISMRMRD): its zero-filled root-sum-of-\n"
    "    squares images are used.\n"
    "Images are mapped to the encoder's input by one documented function (docs/encoders.md):\n"
    "scaled by their maximum magnitude, bilinearly resized to --size, normalised with the\n"
    "encoder's mean/std.\n\n"
    "  -o, --output FILE       features file (written under a temporary name, then renamed)\n"
    "  -e, --encoder ID        clip-vit-b16, dinov2-s14, dinov2-b14, biomedclip-b16, or a family:\n"
    "                          clip, dinov2, biomedclip (any width)\n"
    "  -w, --weights CKPT      the encoder's safetensors checkpoint (python/convert_checkpoint.py\n"
    "                          converts PyTorch pickles)\n"
    "  -l, --layers LIST       comma-separated hidden-state indices (default 2,4,6)\n"
    "  -b, --batch N           images per forward pass (default 8)\n"
    "      --input MAP         magnitude (default) or complex: [Re, Im, |x|] channels\n"
    "      --size S            encoder input size for image inputs (default 224)\n"
    "      --precision P       f32 (default) or bf16 (uses AVX512-BF16/AMX where the CPU has it)\n"
    "  -q, --quiet             no progress\n"
    "  -h, --help              this text\n";

#define MAX_LAYERS 64

static fmr_err parse_layers(const char *text, int *layers, int *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1000 || (*end && *end != ','))
            return fmr_error(FMR_ERR_ARG,
                             "--layers: '%s' is not a comma-separated list of layer indices", text);
        for (int k = 0; k < *n; k++)
            if (layers[k] == v)
                return fmr_error(FMR_ERR_ARG, "--layers: layer %ld is listed twice", v);
        if (*n == MAX_LAYERS)
            return fmr_error(FMR_ERR_ARG, "--layers: more than %d layers", MAX_LAYERS);
        layers[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!*n) return fmr_error(FMR_ERR_ARG, "--layers: empty list");
    return FMR_OK;
}

/* Images of an fmrecon result or k-space file, as complex (n, h, w). */
static fmr_err load_images(const char *path, fmr_cfloat **img, size_t *n, int *h, int *w)
{
    *img = NULL;
    if (fmr_h5_has_dataset(path, "image") || fmr_h5_has_dataset(path, "reconstruction")) {
        fmr_array *a = NULL;
        const int cplx = fmr_h5_has_dataset(path, "image");
        FMR_TRY(fmr_h5_read_array(path, cplx ? "image" : "reconstruction", &a));
        const int nd = fmr_array_ndim(a);
        if (nd < 2) {
            fmr_array_destroy(&a);
            return fmr_error(FMR_ERR_SHAPE, "%s: images need at least 2 dimensions", path);
        }
        *h = (int)fmr_array_dim(a, nd - 2), *w = (int)fmr_array_dim(a, nd - 1);
        *n = fmr_array_numel(a) / ((size_t)*h * *w);
        const size_t total = fmr_array_numel(a);
        fmr_cfloat *x = fmr_malloc(total * sizeof *x);
        if (!x) {
            fmr_array_destroy(&a);
            return fmr_error(FMR_ERR_NOMEM, "out of memory reading %s", path);
        }
        if (cplx)
            memcpy(x, fmr_array_data(a), total * sizeof *x);
        else
            for (size_t i = 0; i < total; i++)
                x[i] = ((const float *)fmr_array_data(a))[i];
        fmr_array_destroy(&a);
        *img = x;
        return FMR_OK;
    }
    fmr_dataset *ds;
    FMR_TRY(fmr_dataset_open(path, NULL, &ds));
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    const size_t F = in->frames, S = in->slices, C = in->coils, H = in->h, W = in->w;
    fmr_cfloat *k = fmr_malloc(C * H * W * sizeof *k), *x = fmr_malloc(F * S * H * W * sizeof *x);
    fmr_fft2c *fft = NULL;
    fmr_err err = (!k || !x) ? fmr_error(FMR_ERR_NOMEM, "out of memory reading %s", path) : FMR_OK;
    if (!err) err = fmr_fft2c_create(&fft, H, W);
    for (size_t f = 0; !err && f < F; f++)
        for (size_t s = 0; !err && s < S; s++) {
            err = fmr_dataset_read_kspace(ds, f, s, 0, C, k);
            if (!err) err = fmr_fft2c_inverse(fft, C, k, k);
            fmr_cfloat *o = x + (f * S + s) * H * W;
            for (size_t p = 0; !err && p < H * W; p++) {
                float acc = 0;
                for (size_t c = 0; c < C; c++)
                    acc += crealf(k[c * H * W + p] * conjf(k[c * H * W + p]));
                o[p] = sqrtf(acc);
            }
        }
    fmr_fft2c_destroy(&fft);
    fmr_free(k);
    fmr_dataset_close(&ds);
    if (err) {
        fmr_free(x);
        return err;
    }
    *img = x, *n = F * S, *h = (int)H, *w = (int)W;
    return FMR_OK;
}

typedef struct {
    const char *in, *out, *id, *weights;
    int layers[MAX_LAYERS], nl, deepest;
    long batch, size;
    fmr_input_map map;
    fmr_precision prec;
} encode_opts;

/* This rank's images [i0, i0+cnt) as pixels, and the whole set's shape. */
static fmr_err load_pixels(const encode_opts *o, const fmr_encoder *enc, fmr_cli *cli, float **pix,
                           size_t *nimg, int *h, int *w, size_t *i0, size_t *cnt)
{
    *pix = NULL;
    if (fmr_h5_has_dataset(o->in, "pixel_values")) {
        int nd;
        size_t dims[8];
        float *all = NULL;
        FMR_TRY(fmr_h5_read_floats(o->in, "pixel_values", 8, &nd, dims, &all));
        if (nd != 4 || dims[1] != 3) {
            fmr_free(all);
            return fmr_error(FMR_ERR_SHAPE,
                             "%s: pixel_values must be (B, 3, H, W), got %d dimensions%s", o->in,
                             nd, nd == 4 ? " with other than 3 channels" : "");
        }
        const size_t per = 3 * dims[2] * dims[3];
        for (size_t i = 0; i < dims[0] * per; i++)
            if (!isfinite(all[i])) {
                fmr_free(all);
                return fmr_error(FMR_ERR_VALUE,
                                 "%s: pixel_values has a non-finite value (image %zu, channel %zu)",
                                 o->in, i / per, (i % per) / (dims[2] * dims[3]));
            }
        *nimg = dims[0], *h = (int)dims[2], *w = (int)dims[3];
        fmr_partition_block(*nimg, cli->rank, cli->size, i0, cnt);
        float *mine = fmr_malloc((*cnt ? *cnt : 1) * per * sizeof(float));
        if (!mine) {
            fmr_free(all);
            return fmr_error(FMR_ERR_NOMEM, "out of memory (pixel_values)");
        }
        memcpy(mine, all + *i0 * per, *cnt * per * sizeof(float));
        fmr_free(all);
        *pix = mine;
        return FMR_OK;
    }
    fmr_cfloat *img;
    int ih = 0, iw = 0;
    FMR_TRY(load_images(o->in, &img, nimg, &ih, &iw));
    fmr_partition_block(*nimg, cli->rank, cli->size, i0, cnt);
    const size_t per = 3 * (size_t)o->size * o->size;
    float *mine = fmr_malloc((*cnt ? *cnt : 1) * per * sizeof(float));
    fmr_err err = mine ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "out of memory (encoder input)");
    if (!err)
        err = fmr_encoder_map_input(enc, o->map, img + *i0 * (size_t)ih * iw, *cnt, ih, iw,
                                    (int)o->size, mine);
    fmr_free(img);
    if (err) {
        fmr_free(mine);
        return fmr_error_context(err, "%s: ", o->in);
    }
    *pix = mine, *h = (int)o->size, *w = (int)o->size;
    return FMR_OK;
}

/* The `parameters` attribute: every option as used (defaults included), the input's and the
 * encoder checkpoint's SHA-256, the runtime (fmrecon/provenance.h). Collective. */
static fmr_err write_parameters(fmr_cli *cli, fmr_h5out *out, const encode_opts *o, const char *resolved_id)
{
    cJSON *j = cJSON_CreateObject(), *opts = j ? cJSON_AddObjectToObject(j, "options") : NULL;
    cJSON *ls = opts ? cJSON_AddArrayToObject(opts, "layers") : NULL;
    if (!ls) {
        cJSON_Delete(j);
        return fmr_error(FMR_ERR_NOMEM, "cannot build the parameters record");
    }
    cJSON_AddStringToObject(opts, "encoder", o->id);
    cJSON_AddStringToObject(opts, "encoder_resolved", resolved_id);
    for (int k = 0; k < o->nl; k++) cJSON_AddItemToArray(ls, cJSON_CreateNumber(o->layers[k]));
    cJSON_AddNumberToObject(opts, "batch", (double)o->batch);
    cJSON_AddStringToObject(opts, "input", o->map == FMR_MAP_COMPLEX3 ? "complex" : "magnitude");
    cJSON_AddNumberToObject(opts, "size", (double)o->size);
    cJSON_AddStringToObject(opts, "precision", o->prec == FMR_PREC_BF16 ? "bf16" : "f32");
    char *text = cJSON_PrintUnformatted(j), *json = NULL;
    cJSON_Delete(j);
    const char *files[] = {"input", o->in, "encoder", o->weights, NULL};
    fmr_err err = text ? fmr_provenance_json(cli->comm, text, files, &json)
                       : fmr_error(FMR_ERR_NOMEM, "cannot build the parameters record");
    free(text);
    if (!err) err = fmr_h5out_attr_string(out, NULL, "parameters", json);
    if (!err) err = fmr_h5out_attr_string(out, NULL, "fmrecon_version", fmr_version());
    free(json);
    return err;
}

static fmr_err encode(fmr_cli *cli, const encode_opts *o)
{
    fmr_encoder *enc = NULL;
    fmr_h5out *out = NULL;
    float *pix = NULL, *feats[MAX_LAYERS] = {0};
    size_t nimg = 0, i0 = 0, cnt = 0;
    int h = 0, w = 0, tokens = 0;
    fmr_err err = fmr_encoder_create(o->weights, o->id, o->deepest, &enc);
    if (!err) err = fmr_encoder_set_precision(enc, o->prec);
    if (!err) err = load_pixels(o, enc, cli, &pix, &nimg, &h, &w, &i0, &cnt);
    if (!err) err = fmr_encoder_tokens(enc, h, w, &tokens);
    /* every rank must agree before the collective file creation */
    fmr_err any = fmr_agree(cli->comm, err);
    if (any) {
        fmr_free(pix);
        fmr_encoder_destroy(&enc);
        return err ? err : fmr_error(FMR_ERR_MPI, "another rank failed to prepare the encoder");
    }
    const fmr_encoder_config *cfg = fmr_encoder_get_config(enc);
    const size_t per = (size_t)tokens * cfg->width;
    err = fmr_h5out_create(cli->comm, o->out, &out);
    for (int k = 0; !err && k < o->nl; k++) {
        char name[64];
        snprintf(name, sizeof name, "hidden_state_%d", o->layers[k]);
        const size_t dims[3] = {nimg, (size_t)tokens, (size_t)cfg->width};
        err = fmr_h5out_add_dataset(out, name, FMR_F32, 3, dims);
        if (!err) err = fmr_h5out_attr_string(out, name, "encoder", cfg->id);
        if (!err) err = fmr_h5out_attr_int(out, name, "layer", o->layers[k]);
        if (!err) /* the precision that ran (f32 where bf16 is not available) */
            err = fmr_h5out_attr_string(out, name, "precision",
                                        fmr_precision_name(fmr_encoder_get_precision(enc)));
        if (!err)
            err = fmr_h5out_attr_string(
                out, name, "indexing",
                "Hugging Face hidden_states: 0 = embeddings, i = output of block i");
    }
    if (out) { /* collective: also after a local error */
        fmr_err e = write_parameters(cli, out, o, cfg->id);
        if (!err) err = e;
    }
    if (err) {
        fmr_free(pix);
        fmr_encoder_destroy(&enc);
        return fmr_h5out_finish(&out, err);
    }
    for (int k = 0; !err && k < o->nl; k++)
        if (!(feats[k] = fmr_malloc((cnt ? cnt : 1) * per * sizeof(float))))
            err = fmr_error(FMR_ERR_NOMEM, "out of memory (%zu features)", cnt * per);
    fmr_progress *prog = NULL;
    if (!err) err = fmr_progress_create(&prog, "encode", "images", nimg);
    const double t0 = fmr_wtime();
    for (size_t i = 0; !err && i < cnt; i += (size_t)o->batch) {
        const int b = (int)((cnt - i) < (size_t)o->batch ? cnt - i : (size_t)o->batch);
        float *dst[MAX_LAYERS];
        for (int k = 0; k < o->nl; k++)
            dst[k] = feats[k] + i * per;
        err = fmr_encoder_forward(enc, pix + i * 3 * (size_t)h * w, b, h, w, o->layers, o->nl, dst);
        if (err)
            err = fmr_error_context(err, "%s: images %zu..%zu: ", o->in, i0 + i, i0 + i + b - 1);
        else
            fmr_progress_step(prog, (size_t)b * cli->size);
    }
    if (err)
        fmr_progress_cancel(&prog);
    else
        fmr_progress_finish(&prog);
    const double secs = fmr_wtime() - t0;
    /* collective writes: every rank takes part, with its own images as blocks */
    any = fmr_agree(cli->comm, err);
    if (!any) {
        size_t *lead = malloc((cnt ? cnt : 1) * sizeof *lead);
        if (!lead) err = fmr_error(FMR_ERR_NOMEM, "out of memory");
        for (size_t i = 0; lead && i < cnt; i++)
            lead[i] = i0 + i;
        for (int k = 0; !err && k < o->nl; k++) {
            char name[64];
            snprintf(name, sizeof name, "hidden_state_%d", o->layers[k]);
            err = fmr_h5out_write_blocks(out, name, cnt, 1, lead, feats[k]);
        }
        free(lead);
    } else if (!err) {
        err = fmr_error(FMR_ERR_MPI, "another rank failed while encoding");
    }
    if (!err && cnt)
        fmr_verbose("encode: %zu images in %.2f s (%.1f ms/image, %s)", cnt, secs,
                    1e3 * secs / (double)cnt, cfg->id);
    err = fmr_h5out_finish(&out, err);
    for (int k = 0; k < o->nl; k++)
        fmr_free(feats[k]);
    fmr_free(pix);
    fmr_encoder_destroy(&enc);
    return err;
}

fmr_err fmr_cmd_encode(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"output", required_argument, 0, 'o'},
                                       {"encoder", required_argument, 0, 'e'},
                                       {"weights", required_argument, 0, 'w'},
                                       {"layers", required_argument, 0, 'l'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"input", required_argument, 0, 1001},
                                       {"size", required_argument, 0, 1002},
                                       {"precision", required_argument, 0, 1003},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0}};
    encode_opts o = {.batch = 8, .size = 224};
    const char *layers = "2,4,6";
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:e:w:l:b:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.out = optarg;
            break;
        case 'e':
            o.id = optarg;
            break;
        case 'w':
            o.weights = optarg;
            break;
        case 'l':
            layers = optarg;
            break;
        case 'b':
            FMR_TRY(fmr_opt_int("--batch", optarg, 1, 4096, &o.batch));
            break;
        case 1001:
            if (!strcmp(optarg, "magnitude"))
                o.map = FMR_MAP_MAGNITUDE;
            else if (!strcmp(optarg, "complex"))
                o.map = FMR_MAP_COMPLEX3;
            else
                return fmr_error(FMR_ERR_ARG, "--input: '%s' is not magnitude or complex", optarg);
            break;
        case 1002:
            FMR_TRY(fmr_opt_int("--size", optarg, 14, 4096, &o.size));
            break;
        case 1003:
            if (!strcmp(optarg, "f32"))
                o.prec = FMR_PREC_F32;
            else if (!strcmp(optarg, "bf16"))
                o.prec = FMR_PREC_BF16;
            else
                return fmr_error(FMR_ERR_ARG, "--precision: '%s' is not f32 or bf16", optarg);
            break;
        case 'q':
            fmr_log_set_level(FMR_LOG_QUIET);
            break;
        case 'h':
            return fmr_cli_help(cli, help), FMR_OK;
        default:
            return fmr_opt_bad("encode", c, argv);
        }
    }
    if (optind != argc - 1)
        return fmr_error(FMR_ERR_ARG,
                         "encode takes exactly one input file (see fmrecon encode --help)");
    o.in = argv[optind];
    if (!o.out) return fmr_error(FMR_ERR_ARG, "encode needs -o FEATS.h5");
    if (!o.id) return fmr_error(FMR_ERR_ARG, "encode needs --encoder ID");
    if (!o.weights) return fmr_error(FMR_ERR_ARG, "encode needs --weights CKPT");
    FMR_TRY(parse_layers(layers, o.layers, &o.nl));
    fmr_encoder_family fam;
    int wd, pt;
    FMR_TRY(fmr_encoder_parse_id(o.id, &fam, &wd, &pt));
    o.deepest = 0;
    for (int k = 0; k < o.nl; k++)
        if (o.layers[k] > o.deepest) o.deepest = o.layers[k];
    return encode(cli, &o);
}

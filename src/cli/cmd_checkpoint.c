/* fmrecon checkpoint FILE: what a safetensors checkpoint holds. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "fmrecon/encoder.h"
#include "fmrecon/safetensors.h"

static const char *help =
    "usage: fmrecon checkpoint FILE.safetensors [--json] [--model ID [--blocks N]]\n\n"
    "Lists the tensors of a safetensors checkpoint (name, dtype, shape) and every __metadata__\n"
    "entry (for a model bundle: denoiser, cascades, encoder and its SHA-256, training record), after\n"
    "checking every offset, size, dtype and shape against the file. With --model, reads the\n"
    "encoder's architecture off the tensors and checks that every tensor of the embeddings and of\n"
    "blocks 1..N is present with a consistent shape; missing or mis-shaped tensors are named.\n\n"
    "  --json          print one JSON object\n"
    "  --model ID      clip-vit-b16, dinov2-s14, dinov2-b14, biomedclip-b16 (published sizes), or a\n"
    "                  family: clip, dinov2, biomedclip (any width)\n"
    "  --blocks N      blocks that must be present (default: every block found)\n"
    "  -h, --help      this text\n";

fmr_err fmr_cmd_checkpoint(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, 0, 'j'}, {"model", required_argument, 0, 'm'},
                                       {"blocks", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0}};
    int json = 0, c;
    const char *model = NULL;
    long blocks = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'm') model = optarg;
        else if (c == 'b') FMR_TRY(fmr_opt_int("--blocks", optarg, 1, 1000, &blocks));
        else if (c == 'h') return fmr_cli_help(cli, help), FMR_OK;
        else return fmr_opt_bad("checkpoint", c, argv);
    }
    if (optind != argc - 1) return fmr_error(FMR_ERR_ARG, "checkpoint takes exactly one FILE");
    fmr_safetensors *st;
    FMR_TRY(fmr_st_open(argv[optind], &st));
    fmr_encoder_config ec;
    if (model) {
        fmr_err e = fmr_encoder_inspect(st, model, (int)blocks, &ec);
        if (e) {
            fmr_st_close(&st);
            return e;
        }
    }
    if (cli->rank == 0) {
        size_t total = 0;
        cJSON *o = cJSON_CreateObject(), *ts = cJSON_AddArrayToObject(o, "tensors");
        for (size_t i = 0; i < fmr_st_count(st); i++) {
            const fmr_st_tensor *t = fmr_st_at(st, i);
            total += t->numel;
            if (json) {
                cJSON *e = cJSON_CreateObject(), *sh = cJSON_AddArrayToObject(e, "shape");
                cJSON_AddStringToObject(e, "name", t->name);
                cJSON_AddStringToObject(e, "dtype", fmr_st_dtype_name(t->dtype));
                for (int k = 0; k < t->ndim; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
                cJSON_AddItemToArray(ts, e);
            } else {
                printf("%-60s %-5s [", t->name, fmr_st_dtype_name(t->dtype));
                for (int k = 0; k < t->ndim; k++) printf("%s%lld", k ? ", " : "", (long long)t->shape[k]);
                printf("]\n");
            }
        }
        cJSON_AddNumberToObject(o, "parameters", (double)total);
        if (model) {
            cJSON *m = cJSON_AddObjectToObject(o, "encoder");
            cJSON_AddStringToObject(m, "id", model);
            cJSON_AddNumberToObject(m, "width", ec.width);
            cJSON_AddNumberToObject(m, "heads", ec.heads);
            cJSON_AddNumberToObject(m, "mlp", ec.mlp);
            cJSON_AddNumberToObject(m, "patch", ec.patch);
            cJSON_AddNumberToObject(m, "blocks", ec.blocks);
            cJSON_AddNumberToObject(m, "position_rows", ec.pos_tokens);
            cJSON_AddNumberToObject(m, "layer_norm_eps", ec.eps);
            cJSON_AddStringToObject(m, "activation", ec.quick_gelu ? "quick_gelu" : "gelu_erf");
        }
        const char *fmt = fmr_st_metadata(st, "format");
        if (fmt) cJSON_AddStringToObject(o, "format", fmt);
        /* every __metadata__ entry: a model bundle's architecture, encoder and SHA-256, training */
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        for (size_t i = 0; i < fmr_st_metadata_count(st); i++)
            cJSON_AddStringToObject(md, fmr_st_metadata_key(st, i), fmr_st_metadata_value(st, i));
        if (json) {
            char *s = cJSON_Print(o);
            if (s) puts(s);
            free(s);
        } else {
            printf("%zu tensors, %zu values%s%s\n", fmr_st_count(st), total, fmt ? ", format " : "", fmt ? fmt : "");
            if (model)
                printf("encoder %s: width %d, %d heads, MLP %d, patch %d, %d blocks, %d position rows, LN eps %g, %s\n",
                       model, ec.width, ec.heads, ec.mlp, ec.patch, ec.blocks, ec.pos_tokens, ec.eps,
                       ec.quick_gelu ? "quick-GELU" : "GELU (erf)");
            const size_t nm = fmr_st_metadata_count(st);
            printf("metadata: %zu entr%s%s\n", nm, nm == 1 ? "y" : "ies", nm ? ":" : "");
            for (size_t i = 0; i < nm; i++)
                printf("  %s: %s\n", fmr_st_metadata_key(st, i), fmr_st_metadata_value(st, i));
        }
        cJSON_Delete(o);
    }
    fmr_st_close(&st);
    return FMR_OK;
}

/* fmrecon checkpoint FILE: what a safetensors checkpoint holds. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "fmrecon/safetensors.h"

static const char *help =
    "usage: fmrecon checkpoint FILE.safetensors [--json]\n\n"
    "Lists the tensors of a safetensors checkpoint (name, dtype, shape) and its metadata, after\n"
    "checking every offset, size, dtype and shape against the file.\n\n"
    "  --json     print one JSON object\n"
    "  -h, --help this text\n";

fmr_err fmr_cmd_checkpoint(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0}};
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') return fmr_cli_help(cli, help), FMR_OK;
        else return fmr_opt_bad("checkpoint", c, argv);
    }
    if (optind != argc - 1) return fmr_error(FMR_ERR_ARG, "checkpoint takes exactly one FILE");
    fmr_safetensors *st;
    FMR_TRY(fmr_st_open(argv[optind], &st));
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
        const char *fmt = fmr_st_metadata(st, "format");
        if (fmt) cJSON_AddStringToObject(o, "format", fmt);
        if (json) {
            char *s = cJSON_Print(o);
            if (s) puts(s);
            free(s);
        } else {
            printf("%zu tensors, %zu values%s%s\n", fmr_st_count(st), total, fmt ? ", format " : "", fmt ? fmt : "");
        }
        cJSON_Delete(o);
    }
    fmr_st_close(&st);
    return FMR_OK;
}

#include "bundle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/array.h"
#include "io/outcheck.h"

static fmr_err meta_int(const fmr_bundle *b, const char *key, int lo, int hi, int *v)
{
    const char *s = fmr_st_metadata(b->st, key);
    if (!s) return fmr_error(FMR_ERR_FORMAT, "%s: bundle metadata has no '%s'", b->path, key);
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end || x < lo || x > hi)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: bundle metadata '%s' = '%s' is not a whole number in %d..%d", b->path,
                         key, s, lo, hi);
    *v = (int)x;
    return FMR_OK;
}

static fmr_err meta_str(const fmr_bundle *b, const char *key, const char **v)
{
    if (!(*v = fmr_st_metadata(b->st, key)))
        return fmr_error(FMR_ERR_FORMAT, "%s: bundle metadata has no '%s'", b->path, key);
    return FMR_OK;
}

static fmr_err parse_dc(fmr_bundle *b);

static fmr_err parse(fmr_bundle *b)
{
    const char *s;
    FMR_TRY(meta_str(b, "fmrecon_bundle", &s));
    if (strcmp(s, "1"))
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: bundle format version '%s' is not supported (this fmrecon reads 1)",
                         b->path, s);
    FMR_TRY(meta_str(b, "denoiser", &s));
    if (!strcmp(s, "unet"))
        b->unet = 1;
    else if (strcmp(s, "unetr"))
        return fmr_error(FMR_ERR_FORMAT, "%s: denoiser '%s' is not supported (unetr, unet)",
                         b->path, s);
    FMR_TRY(meta_int(b, "cascades", 1, 64, &b->cascades));
    FMR_TRY(meta_int(b, "shared", 0, 1, &b->shared));
    if (b->unet) {
        FMR_TRY(meta_int(b, "chans", 1, 1024, &b->chans));
        FMR_TRY(meta_int(b, "pools", 1, 8, &b->pools));
        return parse_dc(b);
    }
    FMR_TRY(meta_str(b, "encoder", &s));
    snprintf(b->encoder, sizeof b->encoder, "%s", s);
    FMR_TRY(meta_str(b, "encoder_sha256", &s));
    if (strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
        return fmr_error(FMR_ERR_FORMAT, "%s: encoder_sha256 is not 64 lowercase hex digits",
                         b->path);
    memcpy(b->encoder_sha256, s, 65);
    FMR_TRY(meta_str(b, "taps", &s));
    b->ntaps = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 64 || (*end && *end != ',') || b->ntaps == 4)
            return fmr_error(FMR_ERR_FORMAT, "%s: taps '%s' is not a list of 3 or 4 layer indices",
                             b->path, s);
        b->taps[b->ntaps++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (b->ntaps < 3)
        return fmr_error(FMR_ERR_FORMAT, "%s: taps '%s' is not a list of 3 or 4 layer indices",
                         b->path, s);
    FMR_TRY(meta_int(b, "grid", 1, 64, &b->grid));
    FMR_TRY(meta_int(b, "feature_size", 1, 512, &b->feature_size));
    if ((s = fmr_st_metadata(b->st, "input")) && strcmp(s, "complex3"))
        return fmr_error(FMR_ERR_FORMAT, "%s: input mapping '%s' is not supported (complex3)",
                         b->path, s);
    return parse_dc(b);
}

/* Data consistency: type, iterations, learned weights; and the normalisation. */
static fmr_err parse_dc(fmr_bundle *b)
{
    const char *s;
    FMR_TRY(meta_str(b, "dc", &s));
    if (!strcmp(s, "cg"))
        b->soft_dc = 0;
    else if (!strcmp(s, "soft"))
        b->soft_dc = 1;
    else
        return fmr_error(FMR_ERR_FORMAT, "%s: dc '%s' is not cg or soft", b->path, s);
    if (!b->soft_dc) FMR_TRY(meta_int(b, "cg_iters", 1, 10000, &b->cg_iters));
    if ((s = fmr_st_metadata(b->st, "normalisation")) && strcmp(s, "max"))
        return fmr_error(FMR_ERR_FORMAT, "%s: normalisation '%s' is not supported (max)", b->path,
                         s);
    const char *key = b->soft_dc ? "eta" : "lambda";
    const int64_t shape[1] = {b->cascades};
    FMR_TRY(fmr_alloc((void **)&b->dc_weight, (size_t)b->cascades * sizeof(float), "bundle"));
    if (!fmr_st_find(b->st, key))
        return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s'", b->path, key);
    FMR_TRY(fmr_st_read_weights(b->st, key, 1, shape, b->dc_weight));
    for (int t = 0; t < b->cascades; t++)
        if (!(b->dc_weight[t] >= 0) || b->dc_weight[t] > 1e6)
            return fmr_error(FMR_ERR_VALUE, "%s: %s[%d] = %g is not a finite non-negative weight",
                             b->path, key, t, (double)b->dc_weight[t]);
    return FMR_OK;
}

fmr_err fmr_bundle_open(const char *path, fmr_bundle **out)
{
    *out = NULL;
    fmr_bundle *b = calloc(1, sizeof *b);
    if (!b) return fmr_error(FMR_ERR_NOMEM, "out of memory (bundle)");
    snprintf(b->path, sizeof b->path, "%s", path);
    fmr_err err = fmr_st_open(path, &b->st);
    if (!err) fmr_input_register(path); /* so no output of this process can replace it */
    if (!err) err = parse(b);
    if (err) {
        fmr_bundle_close(&b);
        return err;
    }
    *out = b;
    return FMR_OK;
}

void fmr_bundle_close(fmr_bundle **bp)
{
    fmr_bundle *b = *bp;
    if (!b) return;
    fmr_st_close(&b->st);
    fmr_free(b->dc_weight);
    free(b);
    *bp = NULL;
}

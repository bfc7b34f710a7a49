#include "regs.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/log.h"
#include "fmrecon/recon.h"

static const char *const names_[] = {"ft", "tv-t", "tv-s", "wavelet", "llr", "lps"};
enum { NREG = sizeof names_ / sizeof names_[0] };

const char fmr_reg_help[] =
    "  regularisers for --reg (comma-separated NAME:WEIGHT terms; data scaled to max|A^H y| = 1):\n"
    "    ft:L          l1 of the temporal Fourier transform (cine)\n"
    "    tv-t:L        temporal total variation, periodic forward difference (cine)\n"
    "    tv-s:L        isotropic spatial total variation of every frame\n"
    "    wavelet:L     l1 of 2-D Daubechies-4 wavelet coefficients (GSL, zero-padded to 2^k)\n"
    "    llr:L[:B]     locally low rank: nuclear norm of BxB-pixel blocks x frames (B 8;\n"
    "                  random block shifts, seed 1) (cine)\n"
    "    lps[:LL:LS]   low rank + sparse (Otazo 2015): nuclear norm LL (0.01) of the whole\n"
    "                  series + l1 LS (0.01) of the temporal spectrum of S; alone (cine)\n";

const char *fmr_cs_reg_help(void)
{
    return fmr_reg_help;
}

const char *fmr_reg_name(fmr_reg_kind k)
{
    return names_[k];
}

int fmr_reg_temporal(fmr_reg_kind k)
{
    return k == REG_FT || k == REG_TVT || k == REG_LLR || k == REG_LPS;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[32][32];
    if (la > 30) la = 30;
    if (lb > 30) lb = 30;
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

static fmr_err number(const char *what, const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end || !isfinite(*v))
        return fmr_error(FMR_ERR_ARG, "--reg %s: weight '%s' is not a number", what, s);
    if (*v < 0) return fmr_error(FMR_ERR_ARG, "--reg %s: weight %g is negative (weights are >= 0)", what, *v);
    return FMR_OK;
}

fmr_err fmr_reg_parse(const char *text, fmr_reg_list *l)
{
    char buf[512];
    if (strlen(text) >= sizeof buf) return fmr_error(FMR_ERR_ARG, "--reg: list too long");
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *f[4] = {0};
        int nf = 0;
        char *s2 = NULL;
        for (char *p = strtok_r(tok, ":", &s2); p && nf < 4; p = strtok_r(NULL, ":", &s2)) f[nf++] = p;
        if (!nf) continue;
        int k = -1;
        for (int i = 0; i < NREG; i++)
            if (!strcmp(f[0], names_[i])) k = i;
        if (k < 0) {
            int best = 0;
            for (int i = 1; i < NREG; i++)
                if (edit_distance(f[0], names_[i]) < edit_distance(f[0], names_[best])) best = i;
            return fmr_error(FMR_ERR_ARG, "--reg: unknown regulariser '%s' (did you mean '%s'? see 'fmrecon recon --help')",
                             f[0], names_[best]);
        }
        fmr_reg_spec s = {.kind = (fmr_reg_kind)k, .block = 8, .lambda = 0.01, .lambda2 = 0.01};
        if (k == REG_LPS) {
            if (nf > 3) return fmr_error(FMR_ERR_ARG, "--reg lps takes lps[:LL:LS]");
            if (nf > 1) FMR_TRY(number("lps", f[1], &s.lambda));
            if (nf > 2) FMR_TRY(number("lps", f[2], &s.lambda2));
        } else {
            if (nf < 2) return fmr_error(FMR_ERR_ARG, "--reg %s needs a weight (%s:WEIGHT)", f[0], f[0]);
            if (nf > (k == REG_LLR ? 3 : 2))
                return fmr_error(FMR_ERR_ARG, "--reg %s: too many fields in '%s'", f[0], text);
            FMR_TRY(number(f[0], f[1], &s.lambda));
            if (k == REG_LLR && nf == 3) {
                char *end;
                long b = strtol(f[2], &end, 10);
                if (end == f[2] || *end || b < 1 || b > 4096)
                    return fmr_error(FMR_ERR_ARG, "--reg llr: block '%s' is not a size in 1..4096", f[2]);
                s.block = (size_t)b;
            }
        }
        size_t i = 0;
        while (i < l->n && l->t[i].kind != s.kind) i++;
        if (i == l->n) {
            if (l->n == FMR_REG_MAX) return fmr_error(FMR_ERR_ARG, "--reg: at most %d terms", FMR_REG_MAX);
            l->n++;
        }
        l->t[i] = s;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->t[i].kind == REG_LPS && l->n > 1)
            return fmr_error(FMR_ERR_ARG, "--reg lps is a model of its own and cannot be combined with other terms");
    return FMR_OK;
}

fmr_err fmr_reg_check(fmr_reg_list *l, size_t T, size_t h, size_t w, int warn)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        const fmr_reg_spec *s = &l->t[i];
        if (s->kind == REG_LLR && (s->block > h || s->block > w))
            return fmr_error(FMR_ERR_ARG, "--reg llr: block %zu is larger than the image (%zux%zu)", s->block, h, w);
        if (T < 2 && fmr_reg_temporal(s->kind)) {
            if (warn) fmr_warn("cs: one frame: temporal term %s dropped, spatial terms only\n", names_[s->kind]);
            continue;
        }
        l->t[k++] = *s;
    }
    l->n = k;
    return FMR_OK;
}

void fmr_reg_json(const fmr_reg_list *l, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < l->n && o < n; i++) {
        const fmr_reg_spec *s = &l->t[i];
        if (s->kind == REG_LPS)
            o += (size_t)snprintf(buf + o, n - o, "%s{\"term\":\"lps\",\"lambda_l\":%g,\"lambda_s\":%g}", i ? "," : "",
                                  s->lambda, s->lambda2);
        else if (s->kind == REG_LLR)
            o += (size_t)snprintf(buf + o, n - o, "%s{\"term\":\"llr\",\"lambda\":%g,\"block\":%zu,\"seed\":1}",
                                  i ? "," : "", s->lambda, s->block);
        else
            o += (size_t)snprintf(buf + o, n - o, "%s{\"term\":\"%s\",\"lambda\":%g}", i ? "," : "", names_[s->kind],
                                  s->lambda);
    }
    if (o < n) snprintf(buf + o, n - o, "]");
}

fmr_err fmr_reg_build(const fmr_reg_spec *s, size_t T, size_t h, size_t w, unsigned long long seed, fmr_reg_term *t)
{
    memset(t, 0, sizeof *t);
    t->lambda = s->lambda;
    const size_t n = T * h * w;
    switch (s->kind) {
    case REG_FT:
        FMR_TRY(fmr_linop_tfft(&t->K, T, h * w));
        return fmr_prox_l1(&t->prox, n);
    case REG_TVT:
        FMR_TRY(fmr_linop_tdiff(&t->K, T, h * w));
        return fmr_prox_l1(&t->prox, n);
    case REG_TVS:
        FMR_TRY(fmr_linop_grad2d(&t->K, T, h, w));
        return fmr_prox_l12(&t->prox, n, 2);
    case REG_WAVELET:
        FMR_TRY(fmr_linop_wavelet(&t->K, T, h, w, 8));
        return fmr_prox_l1(&t->prox, fmr_linop_codomain(t->K));
    case REG_LLR:
        t->K = NULL;
        return fmr_prox_llr(&t->prox, T, h, w, s->block, seed);
    case REG_LPS:
        break;
    }
    return fmr_error(FMR_ERR_INTERNAL, "regulariser %s has no single-term form", names_[s->kind]);
}

/* The compressed-sensing regularisers by name (--reg), and how each becomes an operator and a
 * proximal object of the iter layer. Parsing is separate from building so bad input is reported
 * when the method is created, before any output exists. */
#ifndef FMR_REGS_H
#define FMR_REGS_H

#include <stddef.h>

#include "fmrecon/iter.h"

enum { FMR_REG_MAX = 8 };

typedef enum { REG_FT, REG_TVT, REG_TVS, REG_WAVELET, REG_LLR, REG_LPS } fmr_reg_kind;

typedef struct fmr_reg_spec {
    fmr_reg_kind kind;
    double lambda, lambda2; /* lps: lambda = low-rank weight, lambda2 = sparse weight */
    size_t block;           /* llr */
} fmr_reg_spec;

typedef struct fmr_reg_list {
    size_t n;
    fmr_reg_spec t[FMR_REG_MAX];
} fmr_reg_list;

/* Every term's name, syntax and meaning, for --help. */
extern const char fmr_reg_help[];
const char *fmr_reg_name(fmr_reg_kind k);
int fmr_reg_temporal(fmr_reg_kind k);

/* Parses "name:weight[:extra],..." (adds to / replaces terms of l). */
fmr_err fmr_reg_parse(const char *text, fmr_reg_list *l);
/* Checks against the series: LLR block within the image; temporal terms on one frame are dropped
 * with a warning. */
fmr_err fmr_reg_check(fmr_reg_list *l, size_t T, size_t h, size_t w, int warn);
/* The list as JSON array text into buf. */
void fmr_reg_json(const fmr_reg_list *l, char *buf, size_t n);
/* Operator and prox of a term for a T x h x w series (not for lps). LLR's shifts: seed. */
fmr_err fmr_reg_build(const fmr_reg_spec *s, size_t T, size_t h, size_t w, unsigned long long seed, fmr_reg_term *term);

#endif

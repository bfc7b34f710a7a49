#include "fmrecon/mask.h"

fmr_err fmr_mask_uniform(size_t w, int accel, size_t acs, float *mask)
{
    if (accel < 1) return fmr_error(FMR_ERR_ARG, "acceleration must be >= 1, got %d", accel);
    if (acs > w)
        return fmr_error(FMR_ERR_ARG, "ACS block of %zu lines is wider than the %zu phase-encode lines",
                         acs, w);
    for (size_t c = 0; c < w; c++) mask[c] = (c % (size_t)accel == 0) ? 1.0f : 0.0f;
    size_t start = w / 2 - acs / 2;
    for (size_t c = start; c < start + acs; c++) mask[c] = 1.0f;
    return FMR_OK;
}

void fmr_mask_describe(const float *mask, size_t w, size_t pad_left, size_t pad_right,
                       fmr_mask_stats *st)
{
    st->sampled = 0;
    st->acquired = pad_right > pad_left ? pad_right - pad_left : 0;
    for (size_t c = pad_left; c < pad_right && c < w; c++) st->sampled += mask[c] != 0.0f;
    st->accel = st->sampled ? (double)st->acquired / (double)st->sampled : 0.0;
    st->acs = 0;
    st->acs_start = 0;
    size_t mid = w / 2;
    if (w == 0 || mask[mid] == 0.0f) return;
    size_t lo = mid, hi = mid + 1;
    while (lo > 0 && mask[lo - 1] != 0.0f) lo--;
    while (hi < w && mask[hi] != 0.0f) hi++;
    st->acs = hi - lo;
    st->acs_start = lo;
}

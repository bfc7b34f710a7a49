/* Core pieces against their definitions: error messages, arrays, the Uniform mask rule, mask
 * statistics, block partition, and the documented random generator. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fmrecon/rng.h"
#include "fmrecon/array.h"
#include "fmrecon/mask.h"
#include "fmrecon/metrics.h"
#include "fmrecon/recon.h"

static void test_error_context(void **st)
{
    (void)st;
    fmr_err e = fmr_error(FMR_ERR_VALUE, "k-space has NaN at coil %d", 3);
    assert_int_equal(e, FMR_ERR_VALUE);
    fmr_error_context(e, "frame %d slice %d: ", 2, 1);
    assert_string_equal(fmr_error_message(), "frame 2 slice 1: k-space has NaN at coil 3");
    assert_non_null(strstr(fmr_error_origin(), "test_core.c"));
    assert_string_equal(fmr_err_name(FMR_ERR_SHAPE), "shape error");
}

static void test_array_subview(void **st)
{
    (void)st;
    size_t dims[3] = {2, 3, 4};
    fmr_array *a, *v;
    assert_int_equal(fmr_array_create(&a, FMR_F32, 3, dims), FMR_OK);
    float *d = fmr_array_data(a);
    assert_true(((uintptr_t)d % FMR_ALIGN) == 0);
    for (int i = 0; i < 24; i++) d[i] = (float)i;
    size_t idx[1] = {1};
    assert_int_equal(fmr_array_subview(a, 1, idx, &v), FMR_OK);
    assert_int_equal(fmr_array_ndim(v), 2);
    assert_int_equal(fmr_array_dim(v, 1), 4);
    assert_float_equal(((float *)fmr_array_data(v))[5], 17.0f, 0);
    assert_true(fmr_array_is_contiguous(v));
    size_t bad[1] = {2};
    fmr_array *w = NULL;
    assert_int_equal(fmr_array_subview(a, 1, bad, &w), FMR_ERR_ARG);
    fmr_array_destroy(&v);
    fmr_array_destroy(&a);
    assert_null(a);
}

/* CMRxRecon UniformSampling.m: mask(:, 1:R:end) = 1 (0-based columns 0, R, 2R, ...) plus zpad's
 * centred block of ncalib columns, 1-based floor(ny/2)+1+ceil(-m/2) .. floor(ny/2)+ceil(m/2). */
static void test_uniform_mask(void **st)
{
    (void)st;
    const size_t ws[] = {160, 161, 204, 13};
    const int rs[] = {4, 8, 10, 1};
    const size_t acss[] = {16, 24, 16, 5};
    for (int k = 0; k < 4; k++) {
        size_t w = ws[k], acs = acss[k];
        float m[512];
        assert_int_equal(fmr_mask_uniform(w, rs[k], acs, m), FMR_OK);
        long lo1 = (long)(w / 2) + 1 + (long)ceil(-(double)acs / 2), hi1 = (long)(w / 2) + (long)ceil((double)acs / 2);
        for (size_t c = 0; c < w; c++) {
            int want = (c % (size_t)rs[k] == 0) || ((long)c + 1 >= lo1 && (long)c + 1 <= hi1);
            assert_int_equal((int)m[c], want);
        }
    }
    float m[8];
    assert_int_equal(fmr_mask_uniform(8, 0, 2, m), FMR_ERR_ARG);
    assert_int_equal(fmr_mask_uniform(8, 2, 9, m), FMR_ERR_ARG);
}

static void test_mask_describe(void **st)
{
    (void)st;
    float m[20] = {0};
    for (int c = 8; c < 12; c++) m[c] = 1;
    m[0] = m[4] = m[16] = 1;
    fmr_mask_stats s;
    fmr_mask_describe(m, 20, 0, 20, &s);
    assert_int_equal(s.sampled, 7);
    assert_float_equal(s.accel, 20.0 / 7.0, 1e-12);
    assert_int_equal(s.acs, 4);
    assert_int_equal(s.acs_start, 8);
    fmr_mask_describe(m, 20, 2, 18, &s); /* acquired range excludes column 0 */
    assert_int_equal(s.sampled, 6);
    assert_float_equal(s.accel, 16.0 / 6.0, 1e-12);
}

static void test_partition(void **st)
{
    (void)st;
    for (size_t n = 0; n < 40; n++)
        for (int p = 1; p <= 7; p++) {
            size_t next = 0, lo = SIZE_MAX, hi = 0;
            for (int r = 0; r < p; r++) {
                size_t s, c;
                fmr_partition_block(n, r, p, &s, &c);
                assert_int_equal(s, next);
                next = s + c;
                if (c < lo) lo = c;
                if (c > hi) hi = c;
            }
            assert_int_equal(next, n);
            assert_true(hi - lo <= 1);
        }
}

/* The first outputs of xoshiro256** seeded through splitmix64 are fixed by the algorithms'
 * definitions; reproduced here from the published recurrences, independently of rng.c. */
static uint64_t ref_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static void test_rng(void **st)
{
    (void)st;
    fmr_rng r, r2;
    fmr_rng_seed(&r, 42);
    fmr_rng_seed(&r2, 42);
    uint64_t x = 42, s[4];
    for (int i = 0; i < 4; i++) s[i] = ref_splitmix(&x);
    for (int i = 0; i < 100; i++) {
        uint64_t want = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
        s[3] = (s[3] << 45) | (s[3] >> 19);
        uint64_t got = fmr_rng_next(&r);
        assert_true(got == want);
        assert_true(fmr_rng_next(&r2) == got);
    }
    /* normal deviates: 200k samples, mean within 5 sigma of 0, variance within 2% of 1 */
    double m = 0, v = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double g = fmr_rng_normal(&r);
        m += g;
        v += g * g;
    }
    m /= n;
    v = v / n - m * m;
    assert_true(fabs(m) < 5.0 / sqrt(n));
    assert_true(fabs(v - 1.0) < 0.02);
}

static void test_metrics(void **st)
{
    (void)st;
    float ref[4] = {1, 2, 3, 4}, rec[4] = {1, 2, 3, 5};
    assert_float_equal(fmr_nmse(ref, rec, 4), 1.0 / 30.0, 1e-12);
    /* MSE = 1/4, range 4 -> 10 log10(16 / 0.25) */
    assert_float_equal(fmr_psnr(ref, rec, 4, 4.0), 10.0 * log10(64.0), 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_context), cmocka_unit_test(test_array_subview),
        cmocka_unit_test(test_uniform_mask),  cmocka_unit_test(test_mask_describe),
        cmocka_unit_test(test_partition),     cmocka_unit_test(test_rng),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

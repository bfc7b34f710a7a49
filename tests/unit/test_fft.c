/* Centred orthonormal FFT against analytic results: a centred delta transforms to a constant, a
 * constant to a centred delta, a pure frequency to a single shifted peak; unitarity and inversion. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <mpi.h>

#include "fmrecon/fft.h"

static const size_t sizes[][2] = {{32, 24}, {33, 27}, {17, 16}, {1, 8}, {192, 160}};

static void alloc_pair(size_t n, fmr_cfloat **a, fmr_cfloat **b)
{
    *a = fmr_calloc(n, sizeof **a);
    *b = fmr_calloc(n, sizeof **b);
    assert_non_null(*a);
    assert_non_null(*b);
}

static void test_delta_to_constant(void **st)
{
    (void)st;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t h = sizes[k][0], w = sizes[k][1], n = h * w;
        fmr_fft2c *f;
        assert_int_equal(fmr_fft2c_create(&f, h, w), FMR_OK);
        fmr_cfloat *x, *y;
        alloc_pair(n, &x, &y);
        x[(h / 2) * w + w / 2] = 1.0f;
        assert_int_equal(fmr_fft2c_forward(f, 1, x, y), FMR_OK);
        double c = 1.0 / sqrt((double)n);
        for (size_t i = 0; i < n; i++) {
            assert_true(fabs(crealf(y[i]) - c) < 1e-6);
            assert_true(fabs(cimagf(y[i])) < 1e-6);
        }
        /* inverse of a constant is the centred delta again */
        assert_int_equal(fmr_fft2c_inverse(f, 1, y, x), FMR_OK);
        for (size_t i = 0; i < n; i++) {
            double want = i == (h / 2) * w + w / 2 ? 1.0 : 0.0;
            assert_true(cabs(x[i] - want) < 1e-5);
        }
        fmr_free(x);
        fmr_free(y);
        fmr_fft2c_destroy(&f);
    }
}

static void test_frequency_peak(void **st)
{
    (void)st;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t h = sizes[k][0], w = sizes[k][1], n = h * w;
        long k0 = h > 4 ? 3 : 0, l0 = -2;
        fmr_fft2c *f;
        assert_int_equal(fmr_fft2c_create(&f, h, w), FMR_OK);
        fmr_cfloat *x, *y;
        alloc_pair(n, &x, &y);
        for (size_t r = 0; r < h; r++)
            for (size_t c = 0; c < w; c++) {
                double ph = 2 * M_PI * ((double)k0 * (double)r / (double)h + (double)l0 * (double)c / (double)w);
                x[r * w + c] = (float)cos(ph) + I * (float)sin(ph);
            }
        assert_int_equal(fmr_fft2c_forward(f, 1, x, y), FMR_OK);
        size_t pr = (size_t)((long)(h / 2) + k0 + (long)h) % h, pc = (size_t)((long)(w / 2) + l0 + (long)w) % w;
        for (size_t i = 0; i < n; i++) {
            double want = i == pr * w + pc ? sqrt((double)n) : 0.0;
            assert_true(cabs(y[i]) - want < 2e-4 * sqrt((double)n) && want - cabs(y[i]) < 2e-4 * sqrt((double)n));
        }
        fmr_free(x);
        fmr_free(y);
        fmr_fft2c_destroy(&f);
    }
}

static void test_unitary_roundtrip(void **st)
{
    (void)st;
    size_t h = 33, w = 40, n = h * w, batch = 3;
    fmr_fft2c *f;
    assert_int_equal(fmr_fft2c_create(&f, h, w), FMR_OK);
    fmr_cfloat *x, *y;
    alloc_pair(n * batch, &x, &y);
    unsigned s = 12345;
    double ex = 0;
    for (size_t i = 0; i < n * batch; i++) {
        s = s * 1103515245u + 12345u;
        float a = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        s = s * 1103515245u + 12345u;
        float b = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        x[i] = a + I * b;
        ex += a * a + b * b;
    }
    assert_int_equal(fmr_fft2c_forward(f, batch, x, y), FMR_OK);
    double ey = 0;
    for (size_t i = 0; i < n * batch; i++) ey += crealf(y[i] * conjf(y[i]));
    assert_true(fabs(ey - ex) / ex < 1e-5); /* Parseval: orthonormal */
    assert_int_equal(fmr_fft2c_inverse(f, batch, y, y), FMR_OK); /* in place */
    double err = 0;
    for (size_t i = 0; i < n * batch; i++) err += pow(cabs(y[i] - x[i]), 2);
    assert_true(sqrt(err / ex) < 1e-6);
    fmr_free(x);
    fmr_free(y);
    fmr_fft2c_destroy(&f);
}

static void test_bad_size(void **st)
{
    (void)st;
    fmr_fft2c *f;
    assert_int_equal(fmr_fft2c_create(&f, 0, 16), FMR_ERR_ARG);
    assert_null(f);
    assert_int_equal(fmr_fft_set_planner("sloppy"), FMR_ERR_ARG);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_to_constant),
        cmocka_unit_test(test_frequency_peak),
        cmocka_unit_test(test_unitary_roundtrip),
        cmocka_unit_test(test_bad_size),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fmr_fft_cleanup();
    MPI_Finalize();
    return r;
}

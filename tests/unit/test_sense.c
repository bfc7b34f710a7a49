/* SENSE operator: adjoint dot-product test, normal = adjoint(forward), and an analytic identity:
 * with a full mask and maps normalised so sum_c |S_c|^2 = 1, A^H A = I. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <mpi.h>

#include "fmrecon/fft.h"
#include "fmrecon/sense.h"

static unsigned seed_ = 7;
static float urand(void)
{
    seed_ = seed_ * 1664525u + 1013904223u;
    return (float)(seed_ >> 8) / 16777216.0f - 0.5f;
}
static void crand(fmr_cfloat *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = urand() + I * urand();
}
static double complex dot(const fmr_cfloat *a, const fmr_cfloat *b, size_t n) /* <a, b> = sum a conj(b) */
{
    double complex s = 0;
    for (size_t i = 0; i < n; i++) s += (double complex)a[i] * conj((double complex)b[i]);
    return s;
}
static double norm2(const fmr_cfloat *a, size_t n)
{
    return sqrt(creal(dot(a, a, n)));
}

typedef struct {
    size_t h, w, nc;
    int mask_nd;
} cfg;

static void check_operator(const cfg *c)
{
    size_t hw = c->h * c->w;
    fmr_cfloat *maps = fmr_malloc(c->nc * hw * sizeof *maps), *x = fmr_malloc(hw * sizeof *x),
               *y = fmr_malloc(c->nc * hw * sizeof *y), *Ax = fmr_malloc(c->nc * hw * sizeof *Ax),
               *Ahy = fmr_malloc(hw * sizeof *Ahy), *N = fmr_malloc(hw * sizeof *N),
               *AhAx = fmr_malloc(hw * sizeof *AhAx);
    float *mask = fmr_malloc(hw * sizeof *mask);
    crand(maps, c->nc * hw);
    crand(x, hw);
    crand(y, c->nc * hw);
    size_t mn = c->mask_nd == 1 ? c->w : hw;
    for (size_t i = 0; i < mn; i++) mask[i] = (i % 3 == 0 || i % 7 == 1) ? 1.0f : 0.0f;
    fmr_sense *op;
    fmr_sense_desc d = {.h = c->h, .w = c->w, .ncoils = c->nc, .maps = maps, .comm = MPI_COMM_SELF};
    assert_int_equal(fmr_sense_create(&op, &d), FMR_OK);
    assert_int_equal(fmr_sense_set_mask(op, mask, c->mask_nd), FMR_OK);
    assert_int_equal(fmr_sense_forward(op, x, Ax), FMR_OK);
    assert_int_equal(fmr_sense_adjoint(op, y, Ahy), FMR_OK);
    double complex lhs = dot(Ax, y, c->nc * hw), rhs = dot(x, Ahy, hw);
    double rel = cabs(lhs - rhs) / (norm2(Ax, c->nc * hw) * norm2(y, c->nc * hw));
    assert_true(rel < 1e-5);
    /* masked-out k-space is exactly zero */
    for (size_t k = 0; k < c->nc; k++)
        for (size_t p = 0; p < hw; p++) {
            float m = c->mask_nd == 1 ? mask[p % c->w] : mask[p];
            if (m == 0.0f) assert_true(Ax[k * hw + p] == 0.0f);
        }
    assert_int_equal(fmr_sense_normal(op, x, N), FMR_OK);
    assert_int_equal(fmr_sense_adjoint(op, Ax, AhAx), FMR_OK);
    double diff = 0;
    for (size_t p = 0; p < hw; p++) diff += pow(cabs(N[p] - AhAx[p]), 2);
    assert_true(sqrt(diff) / norm2(AhAx, hw) < 1e-5);
    fmr_sense_destroy(&op);
    fmr_free(maps); fmr_free(x); fmr_free(y); fmr_free(Ax); fmr_free(Ahy); fmr_free(N); fmr_free(AhAx);
    fmr_free(mask);
}

static void test_adjoint_and_normal(void **st)
{
    (void)st;
    const cfg cases[] = {{32, 24, 4, 1}, {33, 27, 3, 2}, {64, 48, 8, 1}, {17, 16, 1, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_operator(&cases[i]);
}

static void test_identity_with_normalised_maps(void **st)
{
    (void)st;
    size_t h = 24, w = 20, nc = 5, hw = h * w;
    fmr_cfloat *maps = fmr_malloc(nc * hw * sizeof *maps), *x = fmr_malloc(hw * sizeof *x),
               *out = fmr_malloc(hw * sizeof *out);
    crand(maps, nc * hw);
    for (size_t p = 0; p < hw; p++) {
        double s = 0;
        for (size_t c = 0; c < nc; c++) s += pow(cabsf(maps[c * hw + p]), 2);
        for (size_t c = 0; c < nc; c++) maps[c * hw + p] /= (float)sqrt(s);
    }
    crand(x, hw);
    fmr_sense *op;
    fmr_sense_desc d = {.h = h, .w = w, .ncoils = nc, .maps = maps, .comm = MPI_COMM_SELF};
    assert_int_equal(fmr_sense_create(&op, &d), FMR_OK);
    assert_int_equal(fmr_sense_normal(op, x, out), FMR_OK); /* no mask: fully sampled */
    for (size_t p = 0; p < hw; p++) assert_true(cabsf(out[p] - x[p]) < 1e-5);
    fmr_sense_destroy(&op);
    fmr_free(maps); fmr_free(x); fmr_free(out);
}

static void test_bad_mask(void **st)
{
    (void)st;
    size_t h = 8, w = 16;
    fmr_cfloat maps[8 * 16] = {0};
    float mask[16] = {0};
    fmr_sense *op;
    fmr_sense_desc d = {.h = h, .w = w, .ncoils = 1, .maps = maps, .comm = MPI_COMM_SELF};
    assert_int_equal(fmr_sense_create(&op, &d), FMR_OK);
    mask[3] = NAN;
    assert_int_equal(fmr_sense_set_mask(op, mask, 1), FMR_ERR_VALUE);
    mask[3] = -1.0f;
    assert_int_equal(fmr_sense_set_mask(op, mask, 1), FMR_ERR_VALUE);
    assert_int_equal(fmr_sense_set_mask(op, mask, 3), FMR_ERR_ARG);
    fmr_sense_destroy(&op);
    d.maps = NULL;
    assert_int_equal(fmr_sense_create(&op, &d), FMR_ERR_ARG);
}

static void test_rss(void **st)
{
    (void)st;
    fmr_cfloat img[2 * 3] = {3, 1 * I, 0, 4 * I, 1, 0};
    float out[3];
    fmr_rss(img, 2, 3, out);
    assert_float_equal(out[0], 5.0f, 1e-6);
    assert_float_equal(out[1], sqrtf(2.0f), 1e-6);
    assert_float_equal(out[2], 0.0f, 1e-6);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adjoint_and_normal),
        cmocka_unit_test(test_identity_with_normalised_maps),
        cmocka_unit_test(test_bad_mask),
        cmocka_unit_test(test_rss),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fmr_fft_cleanup();
    MPI_Finalize();
    return r;
}

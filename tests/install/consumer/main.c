/* A program outside the source tree using an installed fmrecon: a centred delta must transform to
 * the constant 1/sqrt(N). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <fmrecon/fft.h>
#include <fmrecon/recon.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    fmr_cfloat x[8 * 6] = {0};
    x[4 * 6 + 3] = 1.0f;
    fmr_fft2c *f;
    int bad = fmr_fft2c_create(&f, 8, 6) != FMR_OK;
    if (!bad) bad = fmr_fft2c_forward(f, 1, x, x) != FMR_OK;
    for (int i = 0; !bad && i < 48; i++) bad = fabsf(crealf(x[i]) - 1.0f / sqrtf(48.0f)) > 1e-6f;
    printf("fmrecon %s: %s\n", fmr_version(), bad ? "FAIL" : "ok");
    fmr_fft2c_destroy(&f);
    fmr_fft_cleanup();
    MPI_Finalize();
    return bad || argc < 2 || strcmp(argv[1], fmr_version()) != 0;
}

/* Zero-filled reconstruction: inverse centred FFT of each coil's masked k-space, combined by
 * root-sum-of-squares (fastMRI's reference for multi-coil data). */
#include <math.h>
#include <stdlib.h>

#include "fmrecon/fft.h"
#include "fmrecon/recon.h"
#include "fmrecon/sense.h"

typedef struct {
    size_t nc, h, w;
    MPI_Comm comm; /* ranks sharing the coils: the sum of squares is completed across them */
    fmr_fft2c *fft;
    fmr_cfloat *coil; /* nc*h*w */
} zf_state;

static void zf_destroy(void *p)
{
    zf_state *s = p;
    if (!s) return;
    fmr_fft2c_destroy(&s->fft);
    fmr_free(s->coil);
    free(s);
}

static fmr_err zf_create(void **out, fmr_dataset *ds, const fmr_method_params *par)
{
    const fmr_dataset_info *in = fmr_dataset_get_info(ds);
    zf_state *s = calloc(1, sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "cannot allocate zero-filled state");
    s->nc = par->ncoils ? par->ncoils : in->coils;
    /* slab mode gives every rank all coils: nothing to sum across ranks */
    s->comm = par->ncoils && !par->fft_slabs ? par->coil_comm : MPI_COMM_SELF;
    s->h = in->h;
    s->w = in->w;
    fmr_err err = fmr_fft2c_create(&s->fft, in->h, in->w);
    if (!err)
        err = fmr_alloc((void **)&s->coil, in->coils * in->h * in->w * sizeof(fmr_cfloat),
                        "coil images");
    if (err) {
        zf_destroy(s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

static fmr_err zf_run(void *p, size_t frame0, size_t nframes, size_t slice,
                      const fmr_cfloat *kspace, const float *masks, float *mag, fmr_cfloat *img)
{
    (void)frame0, (void)slice, (void)masks, (void)img;
    zf_state *s = p;
    const size_t hw = s->h * s->w;
    for (size_t f = 0; f < nframes; f++) {
        FMR_TRY(fmr_fft2c_inverse(s->fft, s->nc, kspace + f * s->nc * hw, s->coil));
        fmr_rss(s->coil, s->nc, hw, mag + f * hw);
        int csize;
        MPI_Comm_size(s->comm, &csize);
        if (csize > 1) {
            float *m = mag + f * hw;
            for (size_t i = 0; i < hw; i++)
                m[i] *= m[i];
            MPI_Allreduce(MPI_IN_PLACE, m, (int)hw, MPI_FLOAT, MPI_SUM, s->comm);
            for (size_t i = 0; i < hw; i++)
                m[i] = sqrtf(m[i]);
        }
    }
    return FMR_OK;
}

const fmr_method_ops fmr_method_zf = {
    .name = "zf",
    .summary = "zero-filled: inverse FFT of each coil, root-sum-of-squares combination",
    .produces_complex = 0,
    .create = zf_create,
    .run = zf_run,
    .destroy = zf_destroy,
};

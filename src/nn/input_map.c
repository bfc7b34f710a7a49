/* From a complex MR image to a foundation encoder's input (docs/encoders.md, "Input mapping").
 * The encoders were trained on natural images in [0, 1] normalised per channel, so the image is
 * scaled by its own maximum magnitude (a scan's absolute scale is arbitrary), resized to the
 * encoder's resolution by oneDNN's bilinear resampling (half-pixel centres, as PyTorch's
 * align_corners=False), and normalised with the encoder's published mean and std. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "fmrecon/array.h"
#include "fmrecon/encoder.h"

static void *falloc(size_t bytes)
{
    void *p = NULL;
    return fmr_alloc(&p, bytes, "encoder input") ? NULL : p;
}

void fmr_encoder_mean_std(fmr_encoder_family f, float mean[3], float std[3])
{
    /* OpenAI CLIP's values (CLIP, and BiomedCLIP's open_clip preprocess_cfg); ImageNet for DINOv2
     */
    static const float clip_m[3] = {0.48145466f, 0.4578275f, 0.40821073f},
                       clip_s[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    static const float inet_m[3] = {0.485f, 0.456f, 0.406f}, inet_s[3] = {0.229f, 0.224f, 0.225f};
    const int dino = f == FMR_ENC_DINOV2;
    memcpy(mean, dino ? inet_m : clip_m, 3 * sizeof(float));
    memcpy(std, dino ? inet_s : clip_s, 3 * sizeof(float));
}

fmr_err fmr_encoder_map_input(const fmr_encoder *enc, fmr_input_map map, const void *images,
                              size_t n, int ny, int nx, int size, float *pixels)
{
    if (map != FMR_MAP_MAGNITUDE && map != FMR_MAP_COMPLEX3)
        return fmr_error(FMR_ERR_ARG, "unknown input mapping %d", (int)map);
    if (n == 0) return FMR_OK;
    if (ny <= 0 || nx <= 0 || size <= 0)
        return fmr_error(FMR_ERR_SHAPE, "cannot map %dx%d images to %d", ny, nx, size);
    const fmr_cfloat *img = images;
    const size_t npix = (size_t)ny * nx, opix = (size_t)size * size;
    float *chan = falloc(n * 3 * npix * sizeof(float));
    if (!chan) return fmr_error(FMR_ERR_NOMEM, "out of memory (encoder input)");
    for (size_t i = 0; i < n; i++) {
        const fmr_cfloat *x = img + i * npix;
        float mx = 0;
        for (size_t k = 0; k < npix; k++) {
            const float a = cabsf(x[k]);
            if (!isfinite(a)) {
                fmr_free(chan);
                return fmr_error(FMR_ERR_VALUE, "image %zu has a non-finite value at pixel %zu", i,
                                 k);
            }
            if (a > mx) mx = a;
        }
        const float s = mx > 0 ? 1.0f / mx : 1.0f;
        float *c0 = chan + i * 3 * npix, *c1 = c0 + npix, *c2 = c1 + npix;
        for (size_t k = 0; k < npix; k++) {
            const float a = cabsf(x[k]) * s;
            c2[k] = a;
            c0[k] = map == FMR_MAP_COMPLEX3 ? crealf(x[k]) * s : a;
            c1[k] = map == FMR_MAP_COMPLEX3 ? cimagf(x[k]) * s : a;
        }
    }
    fmr_err err = FMR_OK;
    if (ny == size && nx == size) {
        memcpy(pixels, chan, n * 3 * opix * sizeof(float));
    } else {
        dnnl_engine_t eng;
        dnnl_stream_t strm;
        err = fmr_dnnl_acquire(&eng, &strm);
        if (!err) {
            dnnl_memory_desc_t src, dst;
            const dnnl_dim_t ds[4] = {(dnnl_dim_t)n, 3, ny, nx},
                             dd[4] = {(dnnl_dim_t)n, 3, size, size};
            fmr_prim r = {0};
            dnnl_memory_t ms = NULL, md = NULL;
            dnnl_resampling_desc_t rd;
            err = fmr_md_dense(&src, 4, ds);
            if (!err) err = fmr_md_dense(&dst, 4, dd);
            if (!err)
                err = fmr_dnnl_status(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference,
                                                                        dnnl_resampling_linear,
                                                                        NULL, &src, &dst),
                                      "describe the input resize", __FILE__, __LINE__);
            if (!err) err = fmr_prim_create(&r, &rd, NULL, eng, "create the input resize");
            if (!err) err = fmr_mem(&ms, &src, eng, chan);
            if (!err) err = fmr_mem(&md, &dst, eng, pixels);
            if (!err) {
                dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_DST, md}};
                err = fmr_prim_run(&r, strm, 2, a, "resize the input");
                if (!err)
                    err = fmr_dnnl_status(dnnl_stream_wait(strm), "wait for the resize", __FILE__,
                                          __LINE__);
            }
            if (ms) dnnl_memory_destroy(ms);
            if (md) dnnl_memory_destroy(md);
            fmr_prim_destroy(&r);
            fmr_dnnl_release();
        }
    }
    fmr_free(chan);
    if (err) return err;
    float mean[3], std[3];
    fmr_encoder_mean_std(fmr_encoder_get_config(enc)->family, mean, std);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float *p = pixels + (i * 3 + (size_t)c) * opix;
            for (size_t k = 0; k < opix; k++)
                p[k] = (p[k] - mean[c]) / std[c];
        }
    return FMR_OK;
}

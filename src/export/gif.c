/* Animated GIF cine per slice (giflib, Debian libgif-dev): 256 grey levels scaled to the slice's
 * largest magnitude, each frame shown until the next trigger time, looping forever. */
#include <fcntl.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>

#include "export/exporters.h"

/* Display time of frame t in 1/100 s: the gap to the next trigger time (the mean gap for the
 * last frame); at least 2, since viewers show shorter delays as 1/10 s. */
static int delay_cs(const fmr_geometry *g, size_t t)
{
    const size_t T = g->frames;
    double dt = 40.0;
    if (T > 1) dt = t + 1 < T ? g->trigger_ms[t + 1] - g->trigger_ms[t] : (g->trigger_ms[T - 1] - g->trigger_ms[0]) / (double)(T - 1);
    long cs = lround(dt / 10.0);
    return cs < 2 ? 2 : cs > 65535 ? 65535 : (int)cs;
}

static fmr_err write_gif(const char *final, const fmr_export_result *r, size_t z)
{
    const size_t T = r->frames, Z = r->slices, H = r->h, W = r->w, hw = H * W;
    if (H > 65535 || W > 65535) return fmr_error(FMR_ERR_ARG, "%s: image too large for GIF", final);
    char tmp[4300];
    FMR_TRY(fmr_export_tmp_path(tmp, sizeof tmp, final, ".gif"));
    double mx = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < hw; i++) mx = fmax(mx, r->mag[(t * Z + z) * hw + i]);
    int gerr = 0;
    /* our own descriptor: giflib would create the file readable by its owner only */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return fmr_error(FMR_ERR_IO, "%s: cannot create the GIF", tmp);
    GifFileType *gif = EGifOpenFileHandle(fd, &gerr);
    if (!gif) {
        close(fd);
        unlink(tmp);
        return fmr_error(FMR_ERR_IO, "%s: cannot create: %s", tmp, GifErrorString(gerr));
    }
    ColorMapObject *cmap = GifMakeMapObject(256, NULL);
    GifPixelType *row = malloc(W);
    int ok = cmap && row;
    for (int i = 0; ok && i < 256; i++) cmap->Colors[i].Red = cmap->Colors[i].Green = cmap->Colors[i].Blue = (GifByteType)i;
    EGifSetGifVersion(gif, true);
    ok = ok && EGifPutScreenDesc(gif, (int)W, (int)H, 256, 0, cmap) == GIF_OK;
    /* NETSCAPE2.0 application extension: loop count 0 = forever */
    static GifByteType app[] = "NETSCAPE2.0", loop[] = {1, 0, 0};
    ok = ok && EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
         EGifPutExtensionBlock(gif, 11, app) == GIF_OK && EGifPutExtensionBlock(gif, 3, loop) == GIF_OK &&
         EGifPutExtensionTrailer(gif) == GIF_OK;
    for (size_t t = 0; ok && t < T; t++) {
        GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT, .UserInputFlag = false,
                                    .DelayTime = delay_cs(r->geo, t), .TransparentColor = NO_TRANSPARENT_COLOR};
        GifByteType ext[4];
        size_t n = EGifGCBToExtension(&gcb, ext);
        ok = EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)n, ext) == GIF_OK &&
             EGifPutImageDesc(gif, 0, 0, (int)W, (int)H, false, NULL) == GIF_OK;
        const float *m = r->mag + (t * Z + z) * hw;
        for (size_t y = 0; ok && y < H; y++) {
            for (size_t x = 0; x < W; x++) {
                double v = mx > 0 ? 255.0 * m[y * W + x] / mx : 0.0;
                row[x] = (GifPixelType)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
            }
            ok = EGifPutLine(gif, row, (int)W) == GIF_OK;
        }
    }
    int why = gif->Error;
    if (EGifCloseFile(gif, &gerr) != GIF_OK) ok = 0, why = gerr;
    GifFreeMapObject(cmap);
    free(row);
    fmr_err err = ok ? FMR_OK : fmr_error(FMR_ERR_IO, "%s: writing the GIF failed: %s", final, GifErrorString(why));
    return fmr_export_commit(tmp, final, err);
}

fmr_err fmr_export_gif(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt)
{
    (void)opt;
    for (size_t z = 0; z < r->slices; z++) {
        char path[4200], suffix[32];
        snprintf(suffix, sizeof suffix, "_slice_%02zu.gif", z);
        FMR_TRY(fmr_export_path(path, sizeof path, out_dir, r->name, suffix));
        FMR_TRY(write_gif(path, r, z));
    }
    return FMR_OK;
}

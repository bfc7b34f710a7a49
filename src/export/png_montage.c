/* Labelled PNG montage: one row per slice, one column per frame (at most 12, evenly chosen),
 * a title line (method, acceleration, model, name) and per-row / per-column labels. Text is
 * rendered with FreeType (Debian libfreetype-dev) from the DejaVu Sans font (fonts-dejavu-core)
 * rather than a home-made bitmap font; FMR_FONT names another font file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ft2build.h>
#include FT_FREETYPE_H

#include "export/exporters.h"
#include "fmrecon/io.h"

#ifndef FMR_FONT_FILE
#define FMR_FONT_FILE "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#endif

enum { MAX_COLS = 12, TITLE = 26, ROWLAB = 64, COLLAB = 18, FONT_PX = 13 };

static void draw_text(FT_Face face, unsigned char *img, size_t iw, size_t ih, long x, long baseline, const char *s)
{
    for (; *s; s++) {
        if (FT_Load_Char(face, (unsigned char)*s, FT_LOAD_RENDER)) continue;
        FT_GlyphSlot g = face->glyph;
        for (unsigned r = 0; r < g->bitmap.rows; r++)
            for (unsigned c = 0; c < g->bitmap.width; c++) {
                long px = x + g->bitmap_left + (long)c, py = baseline - g->bitmap_top + (long)r;
                if (px < 0 || py < 0 || (size_t)px >= iw || (size_t)py >= ih) continue;
                unsigned char v = g->bitmap.buffer[r * (unsigned)g->bitmap.pitch + c];
                unsigned char *d = &img[(size_t)py * iw + (size_t)px];
                if (v > *d) *d = v;
            }
        x += g->advance.x >> 6;
    }
}

fmr_err fmr_export_png(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt)
{
    (void)opt;
    const size_t T = r->frames, Z = r->slices, H = r->h, W = r->w, hw = H * W;
    const size_t ncol = T < MAX_COLS ? T : MAX_COLS;
    /* tiles shrink by an integer factor so the montage stays under ~4000 pixels a side */
    size_t f = 1;
    while ((ncol * W / f + ROWLAB) > 4000 || (Z * H / f + TITLE + COLLAB) > 4000) f++;
    const size_t th = H / f, tw = W / f, iw = ROWLAB + ncol * tw, ih = TITLE + COLLAB + Z * th;
    const char *font = getenv("FMR_FONT");
    if (!font || !*font) font = FMR_FONT_FILE;
    FT_Library lib;
    if (FT_Init_FreeType(&lib)) return fmr_error(FMR_ERR_LIB, "FreeType could not start");
    FT_Face face;
    if (FT_New_Face(lib, font, 0, &face)) {
        FT_Done_FreeType(lib);
        return fmr_error(FMR_ERR_IO, "%s: cannot load the label font (Debian fonts-dejavu-core; FMR_FONT names another)", font);
    }
    FT_Set_Pixel_Sizes(face, 0, FONT_PX);
    unsigned char *img = calloc(iw * ih, 1);
    fmr_err err = img ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot allocate the montage");
    if (!err) {
        char text[512];
        snprintf(text, sizeof text, "%s   %s", r->description, r->name);
        draw_text(face, img, iw, ih, 4, 18, text);
        for (size_t k = 0; k < ncol; k++) {
            size_t t = ncol > 1 ? k * (T - 1) / (ncol - 1) : 0;
            snprintf(text, sizeof text, "%.0f ms", r->geo->trigger_ms[t]);
            draw_text(face, img, iw, ih, (long)(ROWLAB + k * tw + 2), TITLE + 13, text);
        }
        for (size_t z = 0; z < Z; z++) {
            double mx = 0;
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < hw; i++) mx = fmax(mx, r->mag[(t * Z + z) * hw + i]);
            snprintf(text, sizeof text, "slice %zu", z);
            draw_text(face, img, iw, ih, 4, (long)(TITLE + COLLAB + z * th + th / 2 + 5), text);
            for (size_t k = 0; k < ncol; k++) {
                size_t t = ncol > 1 ? k * (T - 1) / (ncol - 1) : 0;
                const float *m = r->mag + (t * Z + z) * hw;
                for (size_t y = 0; y < th; y++)
                    for (size_t x = 0; x < tw; x++) {
                        double v = mx > 0 ? 255.0 * m[(y * f) * W + x * f] / mx : 0.0;
                        img[(TITLE + COLLAB + z * th + y) * iw + ROWLAB + k * tw + x] = (unsigned char)(v > 255 ? 255 : v < 0 ? 0 : lround(v));
                    }
            }
        }
        char path[4200];
        err = fmr_export_path(path, sizeof path, out_dir, r->name, "_montage.png");
        if (!err) err = fmr_png_write_gray(path, ih, iw, img);
    }
    free(img);
    FT_Done_Face(face);
    FT_Done_FreeType(lib);
    return err;
}

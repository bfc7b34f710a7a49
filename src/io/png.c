/* PNG previews with libpng. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmrecon/io.h"

fmr_err fmr_png_write_gray(const char *path, size_t rows, size_t cols, const unsigned char *pixels)
{
    FMR_TRY(fmr_output_check(path, NULL, 0));
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return fmr_error(FMR_ERR_NOMEM, "cannot allocate file name");
    snprintf(tmp, n, "%s.partial", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fmr_err e = fmr_error(FMR_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return e;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    fmr_err err = FMR_OK;
    if (!png || !info) {
        err = fmr_error(FMR_ERR_LIB, "%s: libpng could not start", path);
    } else if (setjmp(png_jmpbuf(png))) {
        err = fmr_error(FMR_ERR_IO, "%s: libpng failed while writing", path);
    } else {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)cols, (png_uint_32)rows, 8, PNG_COLOR_TYPE_GRAY,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (size_t r = 0; r < rows; r++) png_write_row(png, (png_const_bytep)(pixels + r * cols));
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0 && !err) err = fmr_error(FMR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!err && rename(tmp, path) != 0) err = fmr_error(FMR_ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
    if (err) unlink(tmp);
    free(tmp);
    return err;
}

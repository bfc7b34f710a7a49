/* cfl exporter: the result as one BART pair NAME.cfl/NAME.hdr in BART's dimension order
 * [h (READ), w (PHS1), 1, ..., TIME = frames, ..., SLICE = slices] (fmrecon/cfl.h), the magnitude
 * (imaginary part 0), or with --complex the complex image, so BART tools can take it. */
#include "export/exporters.h"
#include "fmrecon/cfl.h"

fmr_err fmr_export_cfl(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt)
{
    char path[4096];
    FMR_TRY(fmr_export_path(path, sizeof path, out_dir, r->name, ""));
    /* fmr_cfl_write writes both files under temporary names and renames them when complete */
    return fmr_cfl_write_cine(path, r->frames, r->slices, r->h, r->w, opt->write_complex ? r->img : NULL, r->mag);
}

/* --pixel-spacing, --slice-thickness, --trigger-times: geometry for inputs that lack it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *const fmr_geometry_help =
    "      --pixel-spacing H[,W]  pixel size in mm along readout (h) and phase-encode (w); replaces\n"
    "                            the input's (or the 1 mm default); recorded as assumed\n"
    "      --slice-thickness MM  slice thickness in mm (default 8 for inputs without geometry)\n"
    "      --trigger-times T     frame times in ms: a step (0, T, 2T, ...) or T0,T1,... one per\n"
    "                            frame (default: frames spread over 1000 ms); recorded as assumed\n";

fmr_err fmr_opt_geometry(int code, const char *text, fmr_geometry_overrides *g)
{
    switch (code) {
    case FMR_OPT_PIXEL_SPACING: {
        double a = 0, b = 0;
        char tail;
        int n = sscanf(text, "%lf,%lf%c", &a, &b, &tail);
        if (n == 1) b = a;
        if ((n != 1 && n != 2) || !(a > 0 && a < 1e4) || !(b > 0 && b < 1e4))
            return fmr_error(FMR_ERR_ARG, "--pixel-spacing: '%s' is not H[,W] in mm (> 0)", text);
        g->spacing_h = a, g->spacing_w = b;
        return FMR_OK;
    }
    case FMR_OPT_SLICE_THICKNESS:
        return fmr_opt_double("--slice-thickness", text, 1e-3, 1e4, &g->slice_thickness);
    case FMR_OPT_TRIGGER_TIMES:
        g->trigger_times = text; /* checked against the frame count when the input is opened */
        return FMR_OK;
    }
    return fmr_error(FMR_ERR_INTERNAL, "unknown geometry option");
}

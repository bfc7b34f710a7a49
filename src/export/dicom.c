/* DICOM export: one MR series per slice location, one classic MR Image Storage instance per
 * frame, uncompressed, 16-bit unsigned with RescaleSlope mapping back to the float magnitude. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "export/exporters.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"
#include "io/dicom.h"

fmr_err fmr_export_dicom(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt)
{
    const fmr_geometry *g = r->geo;
    const size_t T = r->frames, Z = r->slices, H = r->h, W = r->w, hw = H * W;
    if (H > 65535 || W > 65535) return fmr_error(FMR_ERR_ARG, "%s: %zux%zu images are too large for DICOM", r->path, H, W);
    char final[4200], tmp[4300], dir[4400], file[4500];
    FMR_TRY(fmr_export_path(final, sizeof final, out_dir, r->name, "_dicom"));
    FMR_TRY(fmr_export_tmp_path(tmp, sizeof tmp, final, NULL));
    if (mkdir(tmp, 0755) != 0) return fmr_error(FMR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    /* One study per export unless the input named its study; likewise the frame of reference
     * (the input's is kept: the positions are in its patient coordinates). */
    char study[80], frame[80], series[80], sop[80];
    if (g->subject[FMR_SUBJ_STUDY_UID][0]) snprintf(study, sizeof study, "%s", g->subject[FMR_SUBJ_STUDY_UID]);
    else fmr_dcm_new_uid(study);
    if (g->subject[FMR_SUBJ_FRAME_OF_REFERENCE_UID][0])
        snprintf(frame, sizeof frame, "%s", g->subject[FMR_SUBJ_FRAME_OF_REFERENCE_UID]);
    else fmr_dcm_new_uid(frame);
    char date[16], tod[16], software[64], derivation[1100], desc[80];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y%m%d", &tmv);
    strftime(tod, sizeof tod, "%H%M%S", &tmv);
    snprintf(software, sizeof software, "fmrecon %s", fmr_version());
    snprintf(derivation, sizeof derivation, "%s reconstruction by fmrecon %s", r->description, fmr_version());
    const int enh = opt && opt->enhanced;
    /* enhanced: all frames of a slice in one instance */
    uint16_t *px = malloc((enh ? T : 1) * hw * sizeof *px);
    double *fipp = malloc(3 * T * sizeof *fipp);
    fmr_err err = px && fipp ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot allocate DICOM pixels");
    for (size_t z = 0; !err && z < Z; z++) {
        snprintf(dir, sizeof dir, "%s/slice_%02zu", tmp, z);
        if (mkdir(dir, 0755) != 0) {
            err = fmr_error(FMR_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
            break;
        }
        /* one slope per series, so a viewer's window is the same for every frame */
        double mx = 0;
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < hw; i++) mx = fmax(mx, r->mag[(t * Z + z) * hw + i]);
        double slope = mx > 0 ? mx / 65535.0 : 1.0;
        fmr_dcm_new_uid(series);
        snprintf(desc, sizeof desc, "%.52s slice %zu", r->description, z);
        const fmr_slice_geometry *s = &g->slice[z];
        fmr_dcm_out o = {.study_uid = study, .series_uid = series, .sop_uid = sop, .frame_uid = frame,
                         .series_description = desc, .derivation = derivation, .software = software,
                         .patient_position = g->patient_position, .content_date = date, .content_time = tod,
                         .series_number = (int)(1001 + z), .cardiac_images = (int)T,
                         /* a cine is cardiac-gated by nature; one frame only when its time was read */
                         .gated = T > 1 || !strncmp(g->src_trigger, "read", 4), .rows = H, .cols = W,
                         .thickness = g->slice_thickness, .spacing_between = g->slice_spacing,
                         .slice_location = fmr_geometry_slice_location(g, z), .slope = slope, .intercept = 0.0,
                         .window_center = mx / 2, .window_width = mx > 0 ? mx : 1.0, .pixels = px};
        for (int f = 0; f < FMR_SUBJ_COUNT; f++) o.subject[f] = g->subject[f];
        for (int i = 0; i < 3; i++) o.ipp[i] = s->position[i], o.iop[i] = s->dir_w[i], o.iop[3 + i] = s->dir_h[i];
        o.spacing[0] = g->spacing_h, o.spacing[1] = g->spacing_w;
        if (enh) {
            for (size_t t = 0; t < T; t++) {
                const float *m = r->mag + (t * Z + z) * hw;
                for (size_t i = 0; i < hw; i++) {
                    double q = m[i] > 0 ? floor(m[i] / slope + 0.5) : 0.0;
                    px[t * hw + i] = (uint16_t)(q > 65535.0 ? 65535.0 : q);
                }
                for (int i = 0; i < 3; i++)
                    fipp[3 * t + i] = s->position[i];
            }
            fmr_dcm_new_uid(sop);
            o.instance_number = 1;
            o.frames = T, o.frame_ipp = fipp, o.frame_trigger_ms = g->trigger_ms;
            snprintf(file, sizeof file, "%s/IM_0000.dcm", dir);
            err = fmr_dcm_write_enhanced(file, &o);
            continue;
        }
        for (size_t t = 0; !err && t < T; t++) {
            const float *m = r->mag + (t * Z + z) * hw;
            for (size_t i = 0; i < hw; i++) {
                double q = m[i] > 0 ? floor(m[i] / slope + 0.5) : 0.0;
                px[i] = (uint16_t)(q > 65535.0 ? 65535.0 : q);
            }
            fmr_dcm_new_uid(sop);
            o.instance_number = (int)(t + 1);
            o.trigger_ms = g->trigger_ms[t];
            snprintf(file, sizeof file, "%s/IM_%04zu.dcm", dir, t);
            err = fmr_dcm_write(file, &o);
        }
    }
    free(px);
    free(fipp);
    return fmr_export_commit(tmp, final, err);
}

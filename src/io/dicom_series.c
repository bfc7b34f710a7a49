/* A folder of DICOM files as one cine: check, group by slice location, order by trigger time. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fmrecon/log.h"
#include "io/dicom.h"

typedef struct {
    char *path;
    fmr_dcm_info info;
    double loc; /* position along the slice normal */
    size_t slice;
} entry;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->slice != y->slice) return x->slice < y->slice ? -1 : 1;
    if (x->info.trigger_ms != y->info.trigger_ms) return x->info.trigger_ms < y->info.trigger_ms ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void free_entries(entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].path);
        free(e[i].info.pixels);
    }
    free(e);
}

fmr_err fmr_dicom_read_series(const char *dir, size_t z0, size_t nz, float **mag, fmr_geometry **geo)
{
    *mag = NULL;
    *geo = NULL;
    DIR *d = opendir(dir);
    if (!d) return fmr_error(FMR_ERR_IO, "%s: cannot open the DICOM folder", dir);
    size_t n = 0, cap = 0;
    char **names = NULL;
    fmr_err err = FMR_OK;
    for (struct dirent *de; !err && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                err = fmr_error(FMR_ERR_NOMEM, "cannot list %s", dir);
                break;
            }
            names = nn;
        }
        if (!(names[n++] = strdup(p))) err = fmr_error(FMR_ERR_NOMEM, "cannot list %s", dir);
    }
    closedir(d);
    if (!err && n == 0) err = fmr_error(FMR_ERR_FORMAT, "%s: no files in the DICOM folder", dir);
    if (err) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return err;
    }
    qsort(names, n, sizeof *names, cmp_name);
    entry *e = calloc(n, sizeof *e);
    if (!e) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate the DICOM file list");
    }
    for (size_t i = 0; i < n; i++) e[i].path = names[i];
    free(names);
    /* headers first: every check before any pixel is read */
    double nrm[3] = {0, 0, 0};
    for (size_t i = 0; !err && i < n; i++) {
        fmr_dcm_info *in = &e[i].info;
        err = fmr_dcm_read(e[i].path, 0, in);
        if (err) break;
        const char *missing = !in->has_ipp ? "ImagePositionPatient" : !in->has_iop ? "ImageOrientationPatient"
                              : !in->has_spacing ? "PixelSpacing" : !in->has_thickness ? "SliceThickness" : NULL;
        if (missing) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: missing geometry tag %s", e[i].path, missing);
            break;
        }
        if (!in->rows || !in->cols || in->rows > 4096 || in->cols > 4096) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: image size %zux%zu not supported", e[i].path, in->rows, in->cols);
            break;
        }
        const fmr_dcm_info *a = &e[0].info;
        if (strcmp(in->series_uid, a->series_uid)) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: mixed series: SeriesInstanceUID %s differs from %s in %s (one series per folder)",
                            e[i].path, in->series_uid, a->series_uid, e[0].path);
            break;
        }
        if (in->rows != a->rows || in->cols != a->cols) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: %zux%zu image, %s has %zux%zu", e[i].path, in->rows, in->cols, e[0].path, a->rows, a->cols);
            break;
        }
        for (int k = 0; k < 6; k++)
            if (fabs(in->iop[k] - a->iop[k]) > 1e-4) {
                err = fmr_error(FMR_ERR_FORMAT, "%s: ImageOrientationPatient differs from %s (one orientation per series)", e[i].path, e[0].path);
                break;
            }
        if (!err && (fabs(in->spacing[0] - a->spacing[0]) > 1e-6 || fabs(in->spacing[1] - a->spacing[1]) > 1e-6))
            err = fmr_error(FMR_ERR_FORMAT, "%s: PixelSpacing differs from %s", e[i].path, e[0].path);
        if (!err && i == 0) {
            const double *r = a->iop, *c = a->iop + 3;
            nrm[0] = r[1] * c[2] - r[2] * c[1], nrm[1] = r[2] * c[0] - r[0] * c[2], nrm[2] = r[0] * c[1] - r[1] * c[0];
            double l = sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]);
            if (!(l > 0.5)) err = fmr_error(FMR_ERR_FORMAT, "%s: ImageOrientationPatient is degenerate", e[i].path);
            for (int k = 0; k < 3; k++) nrm[k] /= l;
        }
        e[i].loc = in->ipp[0] * nrm[0] + in->ipp[1] * nrm[1] + in->ipp[2] * nrm[2];
    }
    /* slice locations: distinct positions along the normal (0.01 mm apart) */
    double *locs = NULL;
    size_t nloc = 0;
    if (!err) {
        locs = malloc(n * sizeof *locs);
        if (!locs) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate slice locations");
    }
    if (!err) {
        for (size_t i = 0; i < n; i++) locs[i] = e[i].loc;
        qsort(locs, n, sizeof *locs, cmp_double);
        for (size_t i = 0; i < n; i++)
            if (!nloc || locs[i] - locs[nloc - 1] > 0.01) locs[nloc++] = locs[i];
        for (size_t i = 0; i < n; i++)
            for (size_t z = 0; z < nloc; z++)
                if (fabs(e[i].loc - locs[z]) <= 0.01) e[i].slice = z;
        if (n % nloc) err = fmr_error(FMR_ERR_FORMAT, "%s: %zu images over %zu slice locations: not the same number of frames at each", dir, n, nloc);
    }
    const size_t T = err ? 0 : n / nloc;
    if (!err && T > 1)
        for (size_t i = 0; i < n; i++)
            if (!e[i].info.has_trigger) {
                err = fmr_error(FMR_ERR_FORMAT, "%s: missing TriggerTime (needed to order the %zu frames of each slice)", e[i].path, T);
                break;
            }
    if (!err) {
        qsort(e, n, sizeof *e, cmp_entry);
        if (nz == 0) nz = nloc - (z0 < nloc ? z0 : nloc);
        if (z0 >= nloc || z0 + nz > nloc)
            err = fmr_error(FMR_ERR_ARG, "%s: slices %zu..%zu requested, the series has %zu", dir, z0, z0 + nz - 1, nloc);
    }
    /* the kept images are held in memory at once: refuse sizes beyond a plain budget */
    if (!err && (double)T * (double)nz * (double)e[0].info.rows * (double)e[0].info.cols * sizeof(float) > 8.0 * 1073741824.0)
        err = fmr_error(FMR_ERR_NOMEM, "%s: %zu frames x %zu slices of %zux%zu exceed the 8 GiB image budget; use --dicom-slices",
                        dir, T, nz, e[0].info.rows, e[0].info.cols);
    fmr_geometry *g = NULL;
    if (!err) err = fmr_geometry_create(nz, T, e[0].info.rows, e[0].info.cols, &g);
    float *m = NULL;
    const size_t hw = err ? 0 : g->h * g->w;
    if (!err && !(m = malloc(T * nz * hw * sizeof *m))) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate the DICOM images");
    for (size_t z = 0; !err && z < nz; z++)
        for (size_t t = 0; !err && t < T; t++) {
            entry *x = &e[(z0 + z) * T + t];
            fmr_dcm_info hdr = x->info;
            err = fmr_dcm_read(x->path, 1, &x->info);
            if (!err && (x->info.rows != hdr.rows || x->info.cols != hdr.cols))
                err = fmr_error(FMR_ERR_FORMAT, "%s: changed while read", x->path);
            if (err) break;
            memcpy(m + (t * nz + z) * hw, x->info.pixels, hw * sizeof *m);
            free(x->info.pixels);
            x->info.pixels = NULL;
            if (t == 0) {
                fmr_slice_geometry *s = &g->slice[z];
                for (int k = 0; k < 3; k++)
                    s->position[k] = x->info.ipp[k], s->dir_w[k] = x->info.iop[k], s->dir_h[k] = x->info.iop[3 + k];
            }
            if (z == 0) g->trigger_ms[t] = x->info.has_trigger ? x->info.trigger_ms : 0.0;
            else if (x->info.has_trigger && fabs(x->info.trigger_ms - g->trigger_ms[t]) > 1.0)
                fmr_warn("%s: TriggerTime %.1f ms, slice 0 has %.1f ms for frame %zu; slice 0's is kept", x->path, x->info.trigger_ms,
                         g->trigger_ms[t], t);
        }
    if (!err) {
        const fmr_dcm_info *a = &e[z0 * T].info;
        g->spacing_h = a->spacing[0], g->spacing_w = a->spacing[1]; /* PixelSpacing: row spacing, column spacing */
        g->slice_thickness = a->thickness;
        g->slice_spacing = nz > 1 ? fabs(locs[z0 + 1] - locs[z0]) : a->thickness;
        snprintf(g->src_spacing, FMR_GEO_TEXT, "read: DICOM PixelSpacing");
        snprintf(g->src_thickness, FMR_GEO_TEXT, "read: DICOM SliceThickness");
        snprintf(g->src_position, FMR_GEO_TEXT, "read: DICOM ImagePositionPatient");
        snprintf(g->src_orientation, FMR_GEO_TEXT, "read: DICOM ImageOrientationPatient");
        if (T > 1 || a->has_trigger) snprintf(g->src_trigger, FMR_GEO_TEXT, "read: DICOM TriggerTime");
        if (a->patient_position[0]) {
            snprintf(g->patient_position, sizeof g->patient_position, "%s", a->patient_position);
            snprintf(g->src_patient_position, FMR_GEO_TEXT, "read: DICOM PatientPosition");
        }
        for (int f = 0; f < FMR_SUBJ_COUNT; f++) memcpy(g->subject[f], a->subject[f], sizeof g->subject[f]);
    }
    free(locs);
    free_entries(e, n);
    if (err) {
        free(m);
        fmr_geometry_free(&g);
        return err;
    }
    *mag = m;
    *geo = g;
    return FMR_OK;
}

/* fmr_geometry: defaults, overrides, JSON (the 'geometry' attribute of every output). */
#include "fmrecon/geometry.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmrecon/log.h"

static const char *const subject_keywords[FMR_SUBJ_COUNT] = {
    "PatientName",      "PatientID",      "PatientBirthDate",        "PatientSex",
    "StudyDate",        "StudyTime",      "StudyID",                 "AccessionNumber",
    "StudyDescription", "ReferringPhysicianName", "StudyInstanceUID", "FrameOfReferenceUID",
    "Manufacturer",     "ManufacturerModelName", "InstitutionName",  "MagneticFieldStrength",
    "ProtocolName",
};

const char *fmr_subject_keyword(fmr_subject_field f)
{
    return (unsigned)f < FMR_SUBJ_COUNT ? subject_keywords[f] : "";
}

#define DEFAULT_SPACING 1.0
#define DEFAULT_THICKNESS 8.0
#define DEFAULT_CYCLE_MS 1000.0

static void set_src(char *dst, const char *s)
{
    snprintf(dst, FMR_GEO_TEXT, "%s", s);
}

static void cross(const double a[3], const double b[3], double c[3])
{
    c[0] = a[1] * b[2] - a[2] * b[1];
    c[1] = a[2] * b[0] - a[0] * b[2];
    c[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

void fmr_geometry_normal(const fmr_geometry *g, size_t z, double n[3])
{
    cross(g->slice[z].dir_w, g->slice[z].dir_h, n);
    double l = sqrt(dot(n, n));
    if (l > 0)
        for (int i = 0; i < 3; i++) n[i] /= l;
}

double fmr_geometry_slice_location(const fmr_geometry *g, size_t z)
{
    double n[3], c[3];
    fmr_geometry_normal(g, z, n);
    const fmr_slice_geometry *s = &g->slice[z];
    for (int i = 0; i < 3; i++)
        c[i] = s->position[i] + (double)(g->h / 2) * g->spacing_h * s->dir_h[i] +
               (double)(g->w / 2) * g->spacing_w * s->dir_w[i];
    return dot(c, n);
}

void fmr_geometry_restack(fmr_geometry *g)
{
    /* centre pixel of slice z at ((z - (Z-1)/2) * spacing) along the normal of slice 0 */
    double n[3];
    fmr_geometry_normal(g, 0, n);
    for (size_t z = 0; z < g->slices; z++) {
        fmr_slice_geometry *s = &g->slice[z];
        *s = g->slice[0];
        double off = ((double)z - 0.5 * (double)(g->slices - 1)) * g->slice_spacing;
        for (int i = 0; i < 3; i++)
            s->position[i] = off * n[i] - (double)(g->h / 2) * g->spacing_h * s->dir_h[i] -
                             (double)(g->w / 2) * g->spacing_w * s->dir_w[i];
    }
}

static void default_triggers(fmr_geometry *g)
{
    for (size_t t = 0; t < g->frames; t++) g->trigger_ms[t] = DEFAULT_CYCLE_MS * (double)t / (double)g->frames;
}

fmr_err fmr_geometry_create(size_t slices, size_t frames, size_t h, size_t w, fmr_geometry **out)
{
    *out = NULL;
    if (!slices || !frames || !h || !w || slices > 100000 || frames > 100000)
        return fmr_error(FMR_ERR_ARG, "geometry of %zu slices x %zu frames x %zux%zu is not valid", slices, frames, h, w);
    fmr_geometry *g = calloc(1, sizeof *g);
    if (!g) return fmr_error(FMR_ERR_NOMEM, "cannot allocate geometry");
    g->slice = calloc(slices, sizeof *g->slice);
    g->trigger_ms = calloc(frames, sizeof *g->trigger_ms);
    if (!g->slice || !g->trigger_ms) {
        fmr_geometry_free(&g);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate geometry");
    }
    g->slices = slices, g->frames = frames, g->h = h, g->w = w;
    g->spacing_h = g->spacing_w = DEFAULT_SPACING;
    g->slice_thickness = g->slice_spacing = DEFAULT_THICKNESS;
    g->slice[0].dir_w[0] = 1.0;
    g->slice[0].dir_h[1] = 1.0;
    fmr_geometry_restack(g);
    default_triggers(g);
    set_src(g->src_spacing, "assumed: default 1 mm");
    set_src(g->src_thickness, "assumed: default 8 mm, contiguous slices");
    set_src(g->src_position, "assumed: default, slices centred on the origin");
    set_src(g->src_orientation, "assumed: default axial (rows +x, columns +y)");
    set_src(g->src_trigger, "assumed: default, frames evenly over 1000 ms");
    set_src(g->src_patient_position, "assumed: unknown");
    *out = g;
    return FMR_OK;
}

void fmr_geometry_free(fmr_geometry **g)
{
    if (!g || !*g) return;
    free((*g)->slice);
    free((*g)->trigger_ms);
    free(*g);
    *g = NULL;
}

fmr_err fmr_geometry_copy(const fmr_geometry *src, fmr_geometry **dst)
{
    FMR_TRY(fmr_geometry_create(src->slices, src->frames, src->h, src->w, dst));
    fmr_geometry *g = *dst;
    fmr_slice_geometry *sl = g->slice;
    double *tr = g->trigger_ms;
    *g = *src;
    g->slice = sl, g->trigger_ms = tr;
    memcpy(sl, src->slice, src->slices * sizeof *sl);
    memcpy(tr, src->trigger_ms, src->frames * sizeof *tr);
    return FMR_OK;
}

fmr_err fmr_geometry_override(fmr_geometry *g, const fmr_geometry_overrides *ov)
{
    if (!ov) return FMR_OK;
    int moved = 0;
    if (ov->spacing_h > 0) {
        if (!isfinite(ov->spacing_h) || !(ov->spacing_w > 0) || !isfinite(ov->spacing_w))
            return fmr_error(FMR_ERR_ARG, "--pixel-spacing must be positive millimetres");
        g->spacing_h = ov->spacing_h, g->spacing_w = ov->spacing_w;
        set_src(g->src_spacing, "assumed: command line (--pixel-spacing)");
        moved = 1;
    }
    if (ov->slice_thickness > 0) {
        if (!isfinite(ov->slice_thickness)) return fmr_error(FMR_ERR_ARG, "--slice-thickness must be finite");
        g->slice_thickness = ov->slice_thickness;
        set_src(g->src_thickness, "assumed: command line (--slice-thickness)");
        if (!strncmp(g->src_position, "assumed", 7)) g->slice_spacing = ov->slice_thickness;
        moved = 1;
    }
    /* Positions that were assumed follow the new sizes; positions read from the file stay. */
    if (moved && !strncmp(g->src_position, "assumed", 7)) fmr_geometry_restack(g);
    if (ov->trigger_times) {
        const char *s = ov->trigger_times;
        double v[4096];
        size_t n = 0;
        while (*s && n < 4096) {
            char *end;
            v[n] = strtod(s, &end);
            if (end == s || !isfinite(v[n]) || v[n] < 0 || (*end && *end != ','))
                return fmr_error(FMR_ERR_ARG, "--trigger-times '%s': expected STEP or T0,T1,... in ms", ov->trigger_times);
            n++;
            s = *end ? end + 1 : end;
        }
        if (n == 1) {
            if (!(v[0] > 0)) return fmr_error(FMR_ERR_ARG, "--trigger-times step must be > 0 ms");
            for (size_t t = 0; t < g->frames; t++) g->trigger_ms[t] = v[0] * (double)t;
        } else if (n == g->frames) {
            for (size_t t = 0; t < n; t++) g->trigger_ms[t] = v[t];
        } else {
            return fmr_error(FMR_ERR_ARG, "--trigger-times gives %zu times, the data has %zu frames", n, g->frames);
        }
        set_src(g->src_trigger, "assumed: command line (--trigger-times)");
    }
    return FMR_OK;
}

int fmr_geometry_is_volume(const fmr_geometry *g, double tol)
{
    if (g->slices == 1) return 1;
    double n[3], d0[3] = {0, 0, 0}, step = 0; /* d0: set at z == 1, before its first use */
    fmr_geometry_normal(g, 0, n);
    for (size_t z = 0; z < g->slices; z++) {
        const fmr_slice_geometry *s = &g->slice[z], *a = &g->slice[0];
        for (int i = 0; i < 3; i++)
            if (fabs(s->dir_h[i] - a->dir_h[i]) > 1e-5 || fabs(s->dir_w[i] - a->dir_w[i]) > 1e-5) return 0;
        if (!z) continue;
        double d[3];
        for (int i = 0; i < 3; i++) d[i] = s->position[i] - g->slice[z - 1].position[i];
        if (z == 1) {
            memcpy(d0, d, sizeof d);
            step = dot(d, n);
            if (fabs(step) < tol) return 0;
        }
        for (int i = 0; i < 3; i++)
            if (fabs(d[i] - d0[i]) > tol || fabs(d[i] - step * n[i]) > tol) return 0;
    }
    return 1;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static cJSON *vec(const double *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

fmr_err fmr_geometry_to_json(const fmr_geometry *g, char **json)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "coordinates", "DICOM patient LPS, mm");
    cJSON_AddStringToObject(o, "axes", "frame,slice,h(readout),w(phase_encode)");
    cJSON_AddNumberToObject(o, "slices", (double)g->slices);
    cJSON_AddNumberToObject(o, "frames", (double)g->frames);
    cJSON_AddItemToObject(o, "matrix", vec((double[]){(double)g->h, (double)g->w}, 2));
    cJSON_AddItemToObject(o, "pixel_spacing", vec((double[]){g->spacing_h, g->spacing_w}, 2));
    cJSON_AddNumberToObject(o, "slice_thickness", g->slice_thickness);
    cJSON_AddNumberToObject(o, "slice_spacing", g->slice_spacing);
    cJSON *pos = cJSON_AddArrayToObject(o, "position"), *dh = cJSON_AddArrayToObject(o, "dir_h"),
          *dw = cJSON_AddArrayToObject(o, "dir_w");
    for (size_t z = 0; z < g->slices; z++) {
        cJSON_AddItemToArray(pos, vec(g->slice[z].position, 3));
        cJSON_AddItemToArray(dh, vec(g->slice[z].dir_h, 3));
        cJSON_AddItemToArray(dw, vec(g->slice[z].dir_w, 3));
    }
    cJSON_AddItemToObject(o, "trigger_time_ms", vec(g->trigger_ms, g->frames));
    cJSON_AddStringToObject(o, "patient_position", g->patient_position);
    cJSON *src = cJSON_AddObjectToObject(o, "source");
    cJSON_AddStringToObject(src, "pixel_spacing", g->src_spacing);
    cJSON_AddStringToObject(src, "slice_thickness", g->src_thickness);
    cJSON_AddStringToObject(src, "position", g->src_position);
    cJSON_AddStringToObject(src, "orientation", g->src_orientation);
    cJSON_AddStringToObject(src, "trigger_time", g->src_trigger);
    cJSON_AddStringToObject(src, "patient_position", g->src_patient_position);
    cJSON *sub = cJSON_AddObjectToObject(o, "subject");
    for (int f = 0; f < FMR_SUBJ_COUNT; f++)
        if (g->subject[f][0]) cJSON_AddStringToObject(sub, subject_keywords[f], g->subject[f]);
    *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *json ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot format the geometry");
}

static int get_vec(const cJSON *a, double *v, size_t n)
{
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, (int)i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return 0;
        v[i] = x->valuedouble;
    }
    return 1;
}

static int get_num(const cJSON *o, const char *k, double *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return 0;
    *v = x->valuedouble;
    return 1;
}

static void get_str(const cJSON *o, const char *k, char *dst, size_t n)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(x)) snprintf(dst, n, "%s", x->valuestring);
}

fmr_err fmr_geometry_from_json(const char *what, const char *json, fmr_geometry **out)
{
    *out = NULL;
    cJSON *o = cJSON_Parse(json);
    if (!o) return fmr_error(FMR_ERR_FORMAT, "%s: 'geometry' is not valid JSON", what);
    double sl = 0, fr = 0, m[2] = {0, 0};
    fmr_err err = FMR_OK;
    if (!get_num(o, "slices", &sl) || !get_num(o, "frames", &fr) || !get_vec(cJSON_GetObjectItem(o, "matrix"), m, 2) ||
        sl < 1 || fr < 1 || m[0] < 1 || m[1] < 1 || sl > 1e5 || fr > 1e5 || m[0] > 1e6 || m[1] > 1e6)
        err = fmr_error(FMR_ERR_FORMAT, "%s: 'geometry' lacks valid slices/frames/matrix", what);
    fmr_geometry *g = NULL;
    if (!err) err = fmr_geometry_create((size_t)sl, (size_t)fr, (size_t)m[0], (size_t)m[1], &g);
    if (!err) {
        double ps[2] = {0, 0};
        int ok = get_vec(cJSON_GetObjectItem(o, "pixel_spacing"), ps, 2) && get_num(o, "slice_thickness", &g->slice_thickness) &&
                 get_num(o, "slice_spacing", &g->slice_spacing) &&
                 get_vec(cJSON_GetObjectItem(o, "trigger_time_ms"), g->trigger_ms, g->frames);
        g->spacing_h = ps[0], g->spacing_w = ps[1];
        const cJSON *pos = cJSON_GetObjectItem(o, "position"), *dh = cJSON_GetObjectItem(o, "dir_h"),
                    *dw = cJSON_GetObjectItem(o, "dir_w");
        ok = ok && cJSON_GetArraySize(pos) == (int)g->slices && cJSON_GetArraySize(dh) == (int)g->slices &&
             cJSON_GetArraySize(dw) == (int)g->slices;
        for (size_t z = 0; ok && z < g->slices; z++)
            ok = get_vec(cJSON_GetArrayItem(pos, (int)z), g->slice[z].position, 3) &&
                 get_vec(cJSON_GetArrayItem(dh, (int)z), g->slice[z].dir_h, 3) &&
                 get_vec(cJSON_GetArrayItem(dw, (int)z), g->slice[z].dir_w, 3);
        if (!ok || !(g->spacing_h > 0) || !(g->spacing_w > 0))
            err = fmr_error(FMR_ERR_FORMAT, "%s: 'geometry' has missing or invalid fields", what);
        get_str(o, "patient_position", g->patient_position, sizeof g->patient_position);
        const cJSON *src = cJSON_GetObjectItem(o, "source");
        get_str(src, "pixel_spacing", g->src_spacing, FMR_GEO_TEXT);
        get_str(src, "slice_thickness", g->src_thickness, FMR_GEO_TEXT);
        get_str(src, "position", g->src_position, FMR_GEO_TEXT);
        get_str(src, "orientation", g->src_orientation, FMR_GEO_TEXT);
        get_str(src, "trigger_time", g->src_trigger, FMR_GEO_TEXT);
        get_str(src, "patient_position", g->src_patient_position, FMR_GEO_TEXT);
        const cJSON *sub = cJSON_GetObjectItem(o, "subject");
        for (int f = 0; f < FMR_SUBJ_COUNT; f++) get_str(sub, subject_keywords[f], g->subject[f], sizeof g->subject[f]);
    }
    cJSON_Delete(o);
    if (err) {
        fmr_geometry_free(&g);
        return err;
    }
    *out = g;
    return FMR_OK;
}

/* fmr_export_file: loads a reconstruction and runs the exporters named in a format list. */
#include "fmrecon/export.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/exporters.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "io/h5util.h"

/* One entry per format; each exporter lives in its own file. */
static const struct {
    const char *name;
    fmr_exporter_fn fn;
    const char *summary;
} exporters[] = {
    {"nifti", fmr_export_nifti, "NIfTI-1 (.nii): one 4-D file (w, h, slice, time) or one per slice"},
    {"dicom", fmr_export_dicom, "DICOM MR Image Storage: one series per slice, one instance per frame"},
    {"gif", fmr_export_gif, "animated GIF cine per slice, frame delay from the trigger times"},
    {"png", fmr_export_png, "labelled PNG montage (slices x frames)"},
    {"cfl", fmr_export_cfl, "BART .cfl/.hdr: [h, w, 1, ..., TIME = frames, ..., SLICE = slices], magnitude or --complex"},
};
#define NEXP (sizeof exporters / sizeof exporters[0])

void fmr_export_options_defaults(fmr_export_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

int fmr_export_format_known(const char *name)
{
    for (size_t i = 0; i < NEXP; i++)
        if (!strcmp(exporters[i].name, name)) return 1;
    return 0;
}

const char *fmr_export_format_list(void)
{
    static char buf[256];
    if (!buf[0])
        for (size_t i = 0; i < NEXP; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", exporters[i].name);
    return buf;
}

fmr_err fmr_export_path(char *buf, size_t n, const char *out_dir, const char *name, const char *suffix)
{
    if ((size_t)snprintf(buf, n, "%s/%s%s", out_dir, name, suffix) >= n)
        return fmr_error(FMR_ERR_ARG, "%s: output path too long", out_dir);
    return FMR_OK;
}

fmr_err fmr_export_tmp_path(char *buf, size_t n, const char *final, const char *ext)
{
    const char *slash = strrchr(final, '/');
    int dirlen = slash ? (int)(slash - final + 1) : 0;
    const char *base = final + dirlen;
    size_t bl = strlen(base), el = ext ? strlen(ext) : 0;
    if (el && bl >= el && !strcmp(base + bl - el, ext)) bl -= el;
    if ((size_t)snprintf(buf, n, "%.*s.%.*s.fmr-partial-%ld%s", dirlen, final, (int)bl, base, (long)getpid(), ext ? ext : "") >= n)
        return fmr_error(FMR_ERR_ARG, "%s: output path too long", final);
    return FMR_OK;
}

void fmr_export_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4096];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) fmr_export_rmtree(p);
            else unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

fmr_err fmr_export_commit(const char *tmp, const char *final, fmr_err status)
{
    struct stat st;
    int isdir = stat(tmp, &st) == 0 && S_ISDIR(st.st_mode);
    if (!status) {
        struct stat fs;
        /* a previous export of the same name is replaced as a whole */
        if (isdir && stat(final, &fs) == 0 && S_ISDIR(fs.st_mode)) fmr_export_rmtree(final);
        if (rename(tmp, final) == 0) return FMR_OK;
        status = fmr_error(FMR_ERR_IO, "%s: cannot rename the finished output into place: %s", final, strerror(errno));
    }
    if (isdir) fmr_export_rmtree(tmp);
    else unlink(tmp);
    return status;
}

static void free_result(fmr_export_result *r)
{
    free(r->mag);
    fmr_free(r->img);
    fmr_geometry_free(&r->geo);
}

static fmr_err load_result(const char *path, const fmr_export_options *opt, fmr_export_result *r, char *name, size_t nn)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 3 && !strcmp(base + bl - 3, ".h5")) bl -= 3;
    snprintf(name, nn, "%.*s", (int)bl, base);
    r->name = opt->name && *opt->name ? opt->name : name;
    if (!fmr_h5_has_dataset(path, "reconstruction")) {
        FILE *f = fopen(path, "rb");
        if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        fclose(f);
        return fmr_error(FMR_ERR_FORMAT, "%s: not an fmrecon reconstruction (no 'reconstruction' dataset)", path);
    }
    int nd;
    size_t d[FMR_MAX_DIMS];
    FMR_TRY(fmr_h5_read_floats(path, "reconstruction", 4, &nd, d, &r->mag));
    if (nd != 4) {
        free_result(r);
        return fmr_error(FMR_ERR_FORMAT, "%s: 'reconstruction' has %d dimensions, expected 4 (frame, slice, h, w)", path, nd);
    }
    r->frames = d[0], r->slices = d[1], r->h = d[2], r->w = d[3];
    const size_t n = r->frames * r->slices * r->h * r->w;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(r->mag[i])) {
            free_result(r);
            return fmr_error(FMR_ERR_VALUE, "%s: 'reconstruction' holds NaN/Inf", path);
        }
        if (r->mag[i] > r->max) r->max = r->mag[i];
    }
    fmr_err err = FMR_OK;
    if (opt->write_complex) {
        if (!fmr_h5_has_dataset(path, "image"))
            err = fmr_error(FMR_ERR_ARG, "%s: --complex needs the complex image ('image'); reconstruct with --complex", path);
        fmr_array *a = NULL;
        if (!err) err = fmr_h5_read_array(path, "image", &a);
        if (!err) {
            if (fmr_array_ndim(a) != 4 || fmr_array_dtype(a) != FMR_C64 || fmr_array_numel(a) != n)
                err = fmr_error(FMR_ERR_FORMAT, "%s: 'image' does not match 'reconstruction'", path);
            else if (!(err = fmr_alloc((void **)&r->img, n * sizeof *r->img, "complex image")))
                memcpy(r->img, fmr_array_data(a), n * sizeof *r->img);
        }
        fmr_array_destroy(&a);
    }
    if (!err) {
        hid_t f;
        err = fmr_h5_open_read(path, &f);
        if (!err) {
            char buf[4096] = "";
            if (!fmr_h5_attr_string(f, "method", r->method, sizeof r->method)) snprintf(r->method, sizeof r->method, "unknown");
            if (fmr_h5_attr_string(f, "parameters", buf, sizeof buf)) {
                cJSON *p = cJSON_Parse(buf);
                const cJSON *m = cJSON_GetObjectItem(p, "model");
                if (!cJSON_IsString(m)) m = cJSON_GetObjectItem(p, "model_file");
                if (cJSON_IsString(m)) {
                    const char *s = strrchr(m->valuestring, '/');
                    snprintf(r->model, sizeof r->model, "%s", s ? s + 1 : m->valuestring);
                }
                cJSON_Delete(p);
            }
            H5Fclose(f);
        }
    }
    r->accel = 1.0;
    if (!err && fmr_h5_has_dataset(path, "mask")) {
        float *m = NULL;
        int mnd;
        size_t md[2];
        if (!fmr_h5_read_floats(path, "mask", 2, &mnd, md, &m)) {
            size_t cnt = mnd == 1 ? md[0] : md[0] * md[1], on = 0;
            for (size_t i = 0; i < cnt; i++) on += m[i] != 0.0f;
            if (on) r->accel = (double)cnt / (double)on;
        }
        free(m);
    }
    if (!err) {
        hid_t f;
        int has = 0;
        if (!fmr_h5_open_read(path, &f)) {
            has = H5Aexists(f, "geometry") > 0;
            H5Fclose(f);
        }
        if (has) {
            err = fmr_geometry_read_h5(path, &r->geo);
            if (!err && (r->geo->slices != r->slices || r->geo->frames != r->frames || r->geo->h != r->h || r->geo->w != r->w))
                err = fmr_error(FMR_ERR_FORMAT, "%s: 'geometry' does not match 'reconstruction' (%zux%zux%zux%zu)", path,
                                r->frames, r->slices, r->h, r->w);
        } else {
            fmr_warn("%s: no 'geometry' attribute (made by an older fmrecon?): geometry assumed", path);
            err = fmr_geometry_create(r->slices, r->frames, r->h, r->w, &r->geo);
        }
    }
    if (!err) {
        int k = snprintf(r->description, sizeof r->description, "fmrecon %s R=%.3g", r->method, r->accel);
        if (r->model[0] && k > 0 && (size_t)k < sizeof r->description)
            snprintf(r->description + k, sizeof r->description - (size_t)k, " %.*s", (int)(sizeof r->description - (size_t)k - 2), r->model);
    }
    if (err) free_result(r);
    return err;
}

fmr_err fmr_export_file(const char *in_path, const char *formats, const char *out_dir, const fmr_export_options *opt)
{
    fmr_export_options dflt;
    if (!opt) {
        fmr_export_options_defaults(&dflt);
        opt = &dflt;
    }
    if (!formats || !*formats) return fmr_error(FMR_ERR_ARG, "no export format given (one or more of %s)", fmr_export_format_list());
    /* check the whole list before anything is written */
    char list[256];
    if (strlen(formats) >= sizeof list) return fmr_error(FMR_ERR_ARG, "export format list too long");
    snprintf(list, sizeof list, "%s", formats);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!fmr_export_format_known(t))
            return fmr_error(FMR_ERR_ARG, "unknown export format '%s' (known: %s)", t,
                             fmr_export_format_list());
    /* the input is read and checked before the output folder is touched */
    fmr_export_result r;
    char name[256];
    FMR_TRY(load_result(in_path, opt, &r, name, sizeof name));
    struct stat st;
    fmr_err err = FMR_OK;
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        err = fmr_error(FMR_ERR_IO, "%s: cannot create output folder: %s", out_dir, strerror(errno));
    else if (stat(out_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        err = fmr_error(FMR_ERR_IO, "%s: not a folder", out_dir);
    snprintf(list, sizeof list, "%s", formats);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); !err && t; t = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < NEXP; i++)
            if (!strcmp(exporters[i].name, t)) {
                err = exporters[i].fn(&r, out_dir, opt);
                if (!err) fmr_info("export: %s written to %s", t, out_dir);
            }
    free_result(&r);
    return err;
}

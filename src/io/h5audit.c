#include "io/h5audit.h"

#include <stdio.h>

#include "core/limits.h"

/* Datasets up to this size are allowed to be unwritten (fill values only): small attributes-like
 * datasets and empty placeholders are common and cannot cost memory. */
#define AUDIT_SLACK (1u << 20)

double fmr_h5_filter_expansion(hid_t dcpl)
{
    double x = 1.0;
    int nf = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        char name[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        switch (id) {
        case H5Z_FILTER_SHUFFLE:
        case H5Z_FILTER_FLETCHER32: break;
        case H5Z_FILTER_NBIT:
        case H5Z_FILTER_SCALEOFFSET: x *= 64.0; break;
        default: x *= 1032.0; break; /* deflate, szip and any filter plugin */
        }
    }
    return x;
}

typedef struct {
    const char *path;
    double file_size;
    fmr_err err;
} audit_ctx;

static fmr_err check_dataset(audit_ctx *a, hid_t g, const char *name)
{
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return FMR_OK; /* unreadable datasets are the readers' to report when they need them */
    hid_t dcpl = H5Dget_create_plist(d);
    fmr_err err = FMR_OK;
    if (dcpl >= 0) {
        H5D_layout_t lay = H5Pget_layout(dcpl);
        if (lay == H5D_VIRTUAL)
            err = fmr_error(FMR_ERR_FORMAT,
                            "%s: dataset '%s' is a virtual dataset (its data lives in other files); "
                            "refused, fmrecon reads only data stored in the file itself",
                            a->path, name);
        else if (H5Pget_external_count(dcpl) > 0)
            err = fmr_error(FMR_ERR_FORMAT,
                            "%s: dataset '%s' keeps its data in external files; refused, fmrecon "
                            "reads only data stored in the file itself",
                            a->path, name);
        if (!err) {
            hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
            hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
            size_t es = t >= 0 ? H5Tget_size(t) : 0;
            double logical = np > 0 ? (double)np * (double)es : 0.0;
            double stored = (double)H5Dget_storage_size(d);
            if (stored > a->file_size) stored = a->file_size;
            double bound = stored * (lay == H5D_CHUNKED ? fmr_h5_filter_expansion(dcpl) : 1.0);
            if (logical > AUDIT_SLACK && logical > bound) {
                char l[32], s[32];
                err = fmr_error(FMR_ERR_FORMAT,
                                "%s: dataset '%s' declares %s of data but the file stores %s for it%s "
                                "(truncated or crafted file?)",
                                a->path, name, fmr_bytes_str(logical, l, sizeof l),
                                fmr_bytes_str(stored, s, sizeof s),
                                lay == H5D_CHUNKED && bound > stored ? ", too little even compressed" : "");
            }
            if (t >= 0) H5Tclose(t);
            if (sp >= 0) H5Sclose(sp);
        }
        H5Pclose(dcpl);
    }
    H5Dclose(d);
    return err;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    audit_ctx *a = op;
    if (li->type == H5L_TYPE_EXTERNAL || li->type >= H5L_TYPE_UD_MIN) {
        a->err = fmr_error(FMR_ERR_FORMAT,
                           "%s: '%s' is an external link (to another file); refused, fmrecon reads "
                           "only data stored in the file itself",
                           a->path, name);
        return 1;
    }
    if (li->type != H5L_TYPE_HARD) return 0; /* soft links name objects of this file */
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return 0;
    if (oi.type != H5O_TYPE_DATASET) return 0;
    a->err = check_dataset(a, g, name);
    return a->err ? 1 : 0;
}

fmr_err fmr_h5_audit(const char *path, hid_t file)
{
    audit_ctx a = {path, 0.0, FMR_OK};
    hsize_t fs = 0;
    if (H5Fget_filesize(file, &fs) < 0)
        return fmr_error(FMR_ERR_FORMAT, "%s: cannot determine the HDF5 file's size", path);
    a.file_size = (double)fs;
    /* H5Lvisit recurses through hard links only, so it never leaves the file while checking. */
    herr_t r = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &a);
    if (a.err) return a.err;
    if (r < 0) return fmr_error(FMR_ERR_FORMAT, "%s: corrupt HDF5 file: its groups cannot be listed", path);
    return FMR_OK;
}

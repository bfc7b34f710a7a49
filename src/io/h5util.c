#include "h5util.h"

#include "io/h5audit.h"
#include "io/outcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fmr_h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static _Thread_local char reason_[256];

/* The operating system's reason inside an HDF5 message: the sec2 driver writes "errno = 28",
 * MPI-IO names its error class. Returns NULL if the message carries none. */
static const char *os_reason(const char *desc)
{
    const char *p = strstr(desc, "errno = ");
    if (p) {
        int e = atoi(p + 8);
        if (e > 0) return strerror(e);
    }
    if (strstr(desc, "MPI_ERR_NO_SPACE")) return strerror(ENOSPC);
    if (strstr(desc, "MPI_ERR_QUOTA")) return strerror(EDQUOT);
    if (strstr(desc, "MPI_ERR_READ_ONLY")) return strerror(EROFS);
    return NULL;
}

static _Thread_local int have_os_;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)data;
    /* The walk goes from the innermost frame outwards; the innermost says most about the file,
     * unless a frame carries the system's reason (disk full, read-only), which says most of all. */
    const char *os = e->desc ? os_reason(e->desc) : NULL;
    if (os && !have_os_) {
        snprintf(reason_, sizeof reason_, "%s", os);
        have_os_ = 1;
    } else if (n == 0 && e->desc && !have_os_) {
        snprintf(reason_, sizeof reason_, "%s", e->desc);
    }
    return 0;
}

const char *fmr_h5_reason(void)
{
    reason_[0] = '\0';
    have_os_ = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, NULL);
    return reason_;
}

/* A MATLAB v5 file opens with a 128-byte header: text, then version 0x0100 and the endian mark
 * "IM" (little-endian writer) or "MI" at bytes 124..127. (v7.3 files carry similar text but are
 * HDF5, and are caught by H5Fis_hdf5 first.) */
int fmr_h5_is_mat_v5(const char *path)
{
    unsigned char h[128];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n != sizeof h || memcmp(h, "MATLAB 5.0 MAT-file", 19)) return 0;
    return (h[124] == 0x00 && h[125] == 0x01 && h[126] == 'I' && h[127] == 'M') ||
           (h[124] == 0x01 && h[125] == 0x00 && h[126] == 'M' && h[127] == 'I');
}

fmr_err fmr_h5_open_read(const char *path, hid_t *file)
{
    fmr_h5_quiet();
    *file = H5I_INVALID_HID;
    if (access(path, F_OK) != 0) return fmr_error(FMR_ERR_IO, "%s: no such file", path);
    if (access(path, R_OK) != 0)
        return fmr_error(FMR_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    struct stat st;
    /* a named pipe or device would block or stream forever inside HDF5 */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fmr_error(FMR_ERR_IO, "%s: not a regular file (%s)", path,
                         S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a named pipe"
                         : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0 && fmr_h5_is_mat_v5(path))
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: MATLAB v5 .mat file; fmrecon reads MATLAB v7.3 (HDF5): convert it once "
                         "with 'fmrecon-mat2h5 %s OUT.mat' and pass OUT.mat",
                         path, path);
    if (is <= 0) return fmr_error(FMR_ERR_FORMAT, "%s: not an HDF5 file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        const char *why = fmr_h5_reason();
        return fmr_error(FMR_ERR_FORMAT, "%s: corrupt or truncated HDF5 file%s%s", path,
                         *why ? ": " : "", why);
    }
    /* every reader opens through here, so the file is checked once for storage outside it and
     * for sizes it cannot hold, before anything is read or allocated */
    fmr_input_register(path);
    fmr_err err = fmr_h5_audit(path, f);
    if (err) {
        H5Fclose(f);
        return err;
    }
    *file = f;
    return FMR_OK;
}

int fmr_h5_exists(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0 && H5Oexists_by_name(loc, name, H5P_DEFAULT) > 0;
}

fmr_err fmr_h5_dims(const char *path, hid_t dset, const char *name, int maxdims, int *ndim,
                    hsize_t *dims)
{
    hid_t sp = H5Dget_space(dset);
    if (sp < 0) return fmr_error(FMR_ERR_FORMAT, "%s: cannot read the shape of '%s'", path, name);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd < 0 || nd > maxdims) {
        H5Sclose(sp);
        return fmr_error(FMR_ERR_SHAPE, "%s: dataset '%s' has rank %d, at most %d supported", path,
                         name, nd, maxdims);
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    *ndim = nd;
    return FMR_OK;
}

static int is_float_member(hid_t t, int i, size_t *size)
{
    hid_t m = H5Tget_member_type(t, (unsigned)i);
    if (m < 0) return 0;
    int ok = H5Tget_class(m) == H5T_FLOAT;
    *size = H5Tget_size(m);
    H5Tclose(m);
    return ok;
}

int fmr_h5_complex_memtype(hid_t dtype, hid_t *memtype, int *is_double)
{
    if (H5Tget_class(dtype) != H5T_COMPOUND || H5Tget_nmembers(dtype) != 2) return 0;
    size_t s0, s1;
    if (!is_float_member(dtype, 0, &s0) || !is_float_member(dtype, 1, &s1) || s0 != s1) return 0;
    char *n0 = H5Tget_member_name(dtype, 0), *n1 = H5Tget_member_name(dtype, 1);
    int ok = n0 && n1 &&
             ((!strcmp(n0, "r") && !strcmp(n1, "i")) || (!strcmp(n0, "real") && !strcmp(n1, "imag")));
    if (ok) {
        /* HDF5 converts compounds member by member by name, so the file's names are reused. */
        hid_t m = H5Tcreate(H5T_COMPOUND, 2 * sizeof(float));
        H5Tinsert(m, n0, 0, H5T_NATIVE_FLOAT);
        H5Tinsert(m, n1, sizeof(float), H5T_NATIVE_FLOAT);
        *memtype = m;
        *is_double = s0 == 8;
    }
    H5free_memory(n0);
    H5free_memory(n1);
    return ok;
}

const char *fmr_h5_type_name(hid_t t)
{
    size_t s = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: return s == 2 ? "float16" : s == 4 ? "float32" : s == 8 ? "float64" : "float";
    case H5T_INTEGER: {
        int u = H5Tget_sign(t) == H5T_SGN_NONE;
        switch (s) {
        case 1: return u ? "uint8" : "int8";
        case 2: return u ? "uint16" : "int16";
        case 4: return u ? "uint32" : "int32";
        case 8: return u ? "uint64" : "int64";
        }
        return "integer";
    }
    case H5T_COMPOUND: return "compound";
    case H5T_STRING: return "string";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    default: return "unsupported type";
    }
}

int fmr_h5_attr_double(hid_t loc, const char *name, double *value)
{
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int ok = 0;
    H5T_class_t cls = H5Tget_class(t);
    if ((cls == H5T_FLOAT || cls == H5T_INTEGER) && H5Sget_simple_extent_npoints(sp) == 1)
        ok = H5Aread(a, H5T_NATIVE_DOUBLE, value) >= 0;
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static int read_string(hid_t obj, int is_attr, char **out)
{
    hid_t t = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t sp = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    int ok = 0;
    *out = NULL;
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1) {
        if (H5Tis_variable_str(t) > 0) {
            hid_t m = H5Tcopy(H5T_C_S1);
            H5Tset_size(m, H5T_VARIABLE);
            H5Tset_cset(m, H5Tget_cset(t)); /* HDF5 will not convert ASCII <-> UTF-8 */
            char *v = NULL;
            herr_t r = is_attr ? H5Aread(obj, m, &v) : H5Dread(obj, m, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
            if (r >= 0 && v) {
                *out = strdup(v);
                ok = *out != NULL;
            }
            if (v) H5free_memory(v);
            H5Tclose(m);
        } else {
            size_t n = H5Tget_size(t);
            char *buf = calloc(n + 1, 1);
            hid_t m = H5Tcopy(H5T_C_S1);
            H5Tset_size(m, n + 1);
            H5Tset_strpad(m, H5T_STR_NULLTERM);
            H5Tset_cset(m, H5Tget_cset(t));
            herr_t r = buf ? (is_attr ? H5Aread(obj, m, buf)
                                      : H5Dread(obj, m, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf))
                           : -1;
            if (r >= 0) {
                *out = buf;
                ok = 1;
            } else {
                free(buf);
            }
            H5Tclose(m);
        }
    }
    H5Sclose(sp);
    H5Tclose(t);
    return ok;
}

int fmr_h5_attr_string(hid_t loc, const char *name, char *buf, size_t n)
{
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    char *s = NULL;
    int ok = read_string(a, 1, &s);
    H5Aclose(a);
    if (ok) snprintf(buf, n, "%s", s);
    free(s);
    return ok;
}

int fmr_h5_read_string_dataset(hid_t loc, const char *name, char **out)
{
    *out = NULL;
    if (!fmr_h5_exists(loc, name)) return 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return 0;
    int ok = read_string(d, 0, out);
    H5Dclose(d);
    return ok;
}

hid_t fmr_h5_complex_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, 2 * sizeof(float));
    H5Tinsert(t, "r", 0, H5T_NATIVE_FLOAT);
    H5Tinsert(t, "i", sizeof(float), H5T_NATIVE_FLOAT);
    return t;
}

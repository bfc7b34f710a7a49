#include <stdint.h>

#include "fmrecon/io.h"
#include "h5util.h"

fmr_err fmr_h5_read_floats(const char *path, const char *name, int maxdims, int *ndim,
                           size_t *dims, float **data)
{
    *data = NULL;
    hid_t f;
    FMR_TRY(fmr_h5_open_read(path, &f));
    fmr_err err = FMR_OK;
    hid_t d = H5I_INVALID_HID;
    if (!fmr_h5_exists(f, name)) err = fmr_error(FMR_ERR_FORMAT, "%s: no dataset '%s'", path, name);
    else if ((d = H5Dopen2(f, name, H5P_DEFAULT)) < 0)
        err = fmr_error(FMR_ERR_FORMAT, "%s: '%s' is not a readable dataset", path, name);
    hsize_t hd[FMR_MAX_DIMS];
    if (!err) err = fmr_h5_dims(path, d, name, maxdims < FMR_MAX_DIMS ? maxdims : FMR_MAX_DIMS, ndim, hd);
    if (!err) {
        hid_t t = H5Dget_type(d);
        H5T_class_t cls = H5Tget_class(t);
        H5Tclose(t);
        if (cls != H5T_FLOAT && cls != H5T_INTEGER)
            err = fmr_error(FMR_ERR_FORMAT, "%s: '%s' is not real-valued", path, name);
    }
    size_t n = 1;
    for (int i = 0; !err && i < *ndim; i++) {
        dims[i] = (size_t)hd[i];
        if (dims[i] && n > SIZE_MAX / sizeof(float) / dims[i]) /* a wrapped size would under-allocate */
            err = fmr_error(FMR_ERR_SHAPE, "%s: '%s' declares more values than memory can address", path, name);
        n *= dims[i];
    }
    if (!err) err = fmr_alloc((void **)data, (n ? n : 1) * sizeof(float), name);
    if (!err && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0)
        err = fmr_error(FMR_ERR_IO, "%s: cannot read '%s' (corrupt or truncated?)", path, name);
    if (err) {
        fmr_free(*data);
        *data = NULL;
    }
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return err;
}

fmr_err fmr_h5_read_array(const char *path, const char *name, fmr_array **out)
{
    *out = NULL;
    hid_t f;
    FMR_TRY(fmr_h5_open_read(path, &f));
    fmr_err err = FMR_OK;
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    int nd = 0, dbl = 0;
    hsize_t hd[FMR_MAX_DIMS];
    size_t dims[FMR_MAX_DIMS];
    if (!fmr_h5_exists(f, name)) err = fmr_error(FMR_ERR_FORMAT, "%s: no dataset '%s'", path, name);
    else if ((d = H5Dopen2(f, name, H5P_DEFAULT)) < 0)
        err = fmr_error(FMR_ERR_FORMAT, "%s: '%s' is not a readable dataset", path, name);
    if (!err) err = fmr_h5_dims(path, d, name, FMR_MAX_DIMS, &nd, hd);
    fmr_dtype dt = FMR_F32;
    if (!err) {
        t = H5Dget_type(d);
        H5T_class_t cls = H5Tget_class(t);
        if (fmr_h5_complex_memtype(t, &mt, &dbl)) dt = FMR_C64;
        else if (cls == H5T_FLOAT || cls == H5T_INTEGER) mt = H5Tcopy(H5T_NATIVE_FLOAT);
        else err = fmr_error(FMR_ERR_FORMAT, "%s: '%s' has dtype %s, expected numbers", path, name,
                             fmr_h5_type_name(t));
    }
    for (int i = 0; i < nd; i++) dims[i] = (size_t)hd[i];
    if (!err) err = fmr_array_create(out, dt, nd, dims);
    if (!err && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fmr_array_data(*out)) < 0) {
        err = fmr_error(FMR_ERR_IO, "%s: cannot read '%s' (corrupt or truncated?)", path, name);
        fmr_array_destroy(out);
    }
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return err;
}

int fmr_h5_has_dataset(const char *path, const char *name)
{
    int ok = 0;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            ok = H5Lexists(f, name, H5P_DEFAULT) > 0;
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return ok;
}

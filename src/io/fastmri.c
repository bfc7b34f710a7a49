/* fastMRI .h5 reader: kspace (slices, coils, h, w) complex, phase-encode last, plus the cine
 * extension (frames, slices, coils, h, w) and single-coil (slices, h, w). Optional mask (w) or
 * (frames, w), reconstruction_rss, ismrmrd_header, attrs max/norm/acquisition. */
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"
#include "h5util.h"

typedef struct {
    hid_t file, kspace, memtype, mask, ref;
    int ks_rank, ref_rank;
    hid_t mask_memtype; /* native type the mask is read as */
    int mask_is_enum;
} fastmri_impl;

static void fastmri_close(fmr_dataset *ds)
{
    fastmri_impl *m = ds->impl;
    if (!m) return;
    if (m->mask_memtype >= 0 && m->mask_is_enum) H5Tclose(m->mask_memtype);
    if (m->ref >= 0) H5Dclose(m->ref);
    if (m->mask >= 0) H5Dclose(m->mask);
    if (m->memtype >= 0) H5Tclose(m->memtype);
    if (m->kspace >= 0) H5Dclose(m->kspace);
    if (m->file >= 0) H5Fclose(m->file);
    free(m);
    ds->impl = NULL;
}

static fmr_err read_slab(fmr_dataset *ds, hid_t dset, const char *name, hid_t memtype, int rank,
                         const hsize_t *start, const hsize_t *count, void *out)
{
    hid_t fs = H5Dget_space(dset);
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= count[i];
    hid_t ms = H5Screate_simple(1, &n, NULL);
    herr_t r = fs >= 0 && ms >= 0 ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL)
                                  : -1;
    if (r >= 0) r = H5Dread(dset, memtype, ms, fs, H5P_DEFAULT, out);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (r < 0) {
        const char *why = fmr_h5_reason();
        return fmr_error(FMR_ERR_IO, "%s: cannot read '%s' (file corrupt or truncated?)%s%s",
                         ds->path, name, *why ? ": " : "", why);
    }
    return FMR_OK;
}

static fmr_err fastmri_read_kspace(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc,
                                   fmr_cfloat *out)
{
    fastmri_impl *m = ds->impl;
    const fmr_dataset_info *in = &ds->info;
    hsize_t start[5], count[5];
    int k = 0;
    if (m->ks_rank == 5) start[k] = t, count[k++] = 1;
    start[k] = z, count[k++] = 1;
    if (m->ks_rank >= 4) start[k] = c0, count[k++] = nc;
    start[k] = 0, count[k++] = in->h;
    start[k] = 0, count[k++] = in->w;
    return read_slab(ds, m->kspace, "kspace", m->memtype, k, start, count, out);
}

static fmr_err fastmri_read_mask(fmr_dataset *ds, size_t t, float *mask)
{
    fastmri_impl *m = ds->impl;
    const fmr_dataset_info *in = &ds->info;
    hsize_t start[2] = {t, 0}, count[2] = {1, in->w};
    int rank = in->mask == FMR_MASK_PERFRAME ? 2 : 1;
    if (rank == 1) start[0] = 0, count[0] = in->w;
    if (!m->mask_is_enum) return read_slab(ds, m->mask, "mask", H5T_NATIVE_FLOAT, rank, start, count, mask);
    /* h5py stores numpy bool as an 8-bit enum, which HDF5 will not convert to numbers. */
    size_t es = H5Tget_size(m->mask_memtype);
    unsigned char *raw = malloc(in->w * es);
    if (!raw) return fmr_error(FMR_ERR_NOMEM, "cannot allocate mask buffer");
    fmr_err err = read_slab(ds, m->mask, "mask", m->mask_memtype, rank, start, count, raw);
    for (size_t c = 0; !err && c < in->w; c++) {
        int nz = 0;
        for (size_t b = 0; b < es; b++) nz |= raw[c * es + b];
        mask[c] = nz ? 1.0f : 0.0f;
    }
    free(raw);
    return err;
}

static fmr_err fastmri_read_reference(fmr_dataset *ds, size_t t, size_t z, float *out)
{
    fastmri_impl *m = ds->impl;
    const fmr_dataset_info *in = &ds->info;
    hsize_t start[4], count[4];
    int k = 0;
    if (m->ref_rank == 4) start[k] = t, count[k++] = 1;
    start[k] = z, count[k++] = 1;
    start[k] = 0, count[k++] = in->ref_h;
    start[k] = 0, count[k++] = in->ref_w;
    return read_slab(ds, m->ref, "reconstruction_rss", H5T_NATIVE_FLOAT, k, start, count, out);
}

static const fmr_dataset_ops fastmri_ops = {
    .read_kspace = fastmri_read_kspace,
    .read_mask = fastmri_read_mask,
    .read_reference = fastmri_read_reference,
    .close = fastmri_close,
};

static fmr_err probe_kspace(const char *path, fastmri_impl *m, fmr_dataset_info *in)
{
    m->kspace = H5Dopen2(m->file, "kspace", H5P_DEFAULT);
    if (m->kspace < 0) return fmr_error(FMR_ERR_FORMAT, "%s: 'kspace' is not a readable dataset", path);
    hsize_t d[8];
    FMR_TRY(fmr_h5_dims(path, m->kspace, "kspace", 8, &m->ks_rank, d));
    if (m->ks_rank < 3 || m->ks_rank > 5)
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: 'kspace' has rank %d; expected 3 (slices, h, w), 4 (slices, coils, h, "
                         "w) or 5 (frames, slices, coils, h, w)",
                         path, m->ks_rank);
    hid_t t = H5Dget_type(m->kspace);
    int ok = fmr_h5_complex_memtype(t, &m->memtype, &in->file_double);
    const char *tn = fmr_h5_type_name(t);
    H5Tclose(t);
    if (!ok)
        return fmr_error(FMR_ERR_FORMAT, "%s: 'kspace' has dtype %s; expected complex64 or complex128",
                         path, tn);
    int k = 0;
    in->has_frame_axis = m->ks_rank == 5;
    in->frames = m->ks_rank == 5 ? d[k++] : 1;
    in->slices = d[k++];
    in->coils = m->ks_rank >= 4 ? d[k++] : 1;
    in->h = d[k++];
    in->w = d[k++];
    if (!in->frames || !in->slices || !in->coils || !in->h || !in->w)
        return fmr_error(FMR_ERR_SHAPE, "%s: 'kspace' has an empty dimension", path);
    return FMR_OK;
}

static fmr_err probe_mask(const char *path, fastmri_impl *m, fmr_dataset_info *in)
{
    if (!fmr_h5_exists(m->file, "mask")) return FMR_OK;
    m->mask = H5Dopen2(m->file, "mask", H5P_DEFAULT);
    if (m->mask < 0) return fmr_error(FMR_ERR_FORMAT, "%s: 'mask' is not a readable dataset", path);
    hsize_t d[8];
    int nd;
    FMR_TRY(fmr_h5_dims(path, m->mask, "mask", 8, &nd, d));
    if (nd == 1 && d[0] == in->w) in->mask = FMR_MASK_SHARED;
    else if (nd == 2 && d[0] == in->frames && d[1] == in->w) in->mask = FMR_MASK_PERFRAME;
    else {
        char shape[96] = "(";
        for (int i = 0; i < nd; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? ", " : "",
                     (unsigned long long)d[i]);
        strcat(shape, nd == 1 ? ",)" : ")");
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: 'mask' has shape %s; expected (%zu,) or (%zu, %zu) to match kspace",
                         path, shape, in->w, in->frames, in->w);
    }
    hid_t t = H5Dget_type(m->mask);
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_ENUM) {
        m->mask_is_enum = 1;
        m->mask_memtype = H5Tget_native_type(t, H5T_DIR_ASCEND);
    } else if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        const char *tn = fmr_h5_type_name(t);
        H5Tclose(t);
        return fmr_error(FMR_ERR_FORMAT, "%s: 'mask' has dtype %s; expected numbers or bool", path, tn);
    }
    H5Tclose(t);
    return FMR_OK;
}

static fmr_err probe_reference(const char *path, fastmri_impl *m, fmr_dataset_info *in)
{
    if (!fmr_h5_exists(m->file, "reconstruction_rss")) return FMR_OK;
    m->ref = H5Dopen2(m->file, "reconstruction_rss", H5P_DEFAULT);
    if (m->ref < 0)
        return fmr_error(FMR_ERR_FORMAT, "%s: 'reconstruction_rss' is not a readable dataset", path);
    hsize_t d[8];
    FMR_TRY(fmr_h5_dims(path, m->ref, "reconstruction_rss", 8, &m->ref_rank, d));
    int ok = (m->ref_rank == 3 && in->frames == 1 && d[0] == in->slices) ||
             (m->ref_rank == 4 && d[0] == in->frames && d[1] == in->slices);
    if (!ok)
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: 'reconstruction_rss' has rank %d and does not match kspace's %zu "
                         "frames x %zu slices",
                         path, m->ref_rank, in->frames, in->slices);
    in->ref_h = d[m->ref_rank - 2];
    in->ref_w = d[m->ref_rank - 1];
    hid_t t = H5Dget_type(m->ref);
    H5T_class_t cls = H5Tget_class(t);
    H5Tclose(t);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        return fmr_error(FMR_ERR_FORMAT, "%s: 'reconstruction_rss' is not a real-valued image", path);
    in->has_reference = 1;
    return FMR_OK;
}

int fmr_fastmri_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err)
{
    (void)opt;
    hid_t f;
    if ((*err = fmr_h5_open_read(path, &f))) return -1;
    if (!fmr_h5_exists(f, "kspace")) {
        H5Fclose(f);
        return 0;
    }
    fastmri_impl *m = calloc(1, sizeof *m);
    if (!m) {
        H5Fclose(f);
        *err = fmr_error(FMR_ERR_NOMEM, "cannot allocate reader");
        return -1;
    }
    m->file = f;
    m->kspace = m->memtype = m->mask = m->ref = m->mask_memtype = H5I_INVALID_HID;
    ds->impl = m;
    ds->ops = &fastmri_ops;
    fmr_dataset_info *in = &ds->info;
    in->format = FMR_FORMAT_FASTMRI;
    in->format_name = "fastMRI";
    snprintf(in->variable, sizeof in->variable, "kspace");
    *err = probe_kspace(path, m, in);
    if (!*err) *err = probe_mask(path, m, in);
    if (!*err) *err = probe_reference(path, m, in);
    in->pad_left = 0;
    in->pad_right = in->w;
    char *xml = NULL;
    if (!*err && fmr_h5_read_string_dataset(f, "ismrmrd_header", &xml)) {
        *err = fmr_ismrmrd_xml_padding(path, xml, in->w, &in->pad_left, &in->pad_right);
        in->has_header = !*err;
    }
    free(xml);
    if (*err) {
        fastmri_close(ds);
        return -1;
    }
    in->has_max = fmr_h5_attr_double(f, "max", &in->max);
    in->has_norm = fmr_h5_attr_double(f, "norm", &in->norm);
    fmr_h5_attr_string(f, "acquisition", in->acquisition, sizeof in->acquisition);
    return 1;
}

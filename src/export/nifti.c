/* NIfTI-1 export (Debian libnifti2-dev, niftilib's nifti1_io): the library builds the header
 * (qform quaternion, sform, units); fmrecon writes header and voxels itself so that every write
 * is checked (nifti_image_write reports no errors). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nifti1_io.h>

#include "export/exporters.h"
#include "fmrecon/log.h"

/* Voxel (i, j, k) = (w, h, slice) to RAS mm: DICOM LPS with x and y negated. */
static mat44 affine_ras(const fmr_geometry *g, size_t z, const double kvec[3])
{
    const fmr_slice_geometry *s = &g->slice[z];
    mat44 m;
    memset(&m, 0, sizeof m);
    for (int r = 0; r < 3; r++) {
        double sign = r < 2 ? -1.0 : 1.0;
        m.m[r][0] = (float)(sign * g->spacing_w * s->dir_w[r]);
        m.m[r][1] = (float)(sign * g->spacing_h * s->dir_h[r]);
        m.m[r][2] = (float)(sign * kvec[r]);
        m.m[r][3] = (float)(sign * s->position[r]);
    }
    m.m[3][3] = 1.0f;
    return m;
}

static fmr_err write_nii(const char *final, const fmr_geometry *g, size_t z, const double kvec[3], size_t nz,
                         int cpx, const void *data, const char *descrip)
{
    int dims[8] = {4, (int)g->w, (int)g->h, (int)nz, (int)g->frames, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, cpx ? NIFTI_TYPE_COMPLEX64 : NIFTI_TYPE_FLOAT32, 0);
    if (!nim) return fmr_error(FMR_ERR_NOMEM, "%s: cannot build the NIfTI header", final);
    mat44 a = affine_ras(g, z, kvec);
    nim->qform_code = nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->sto_xyz = a;
    nim->sto_ijk = nifti_mat44_inverse(a);
    nim->qto_xyz = a;
    nifti_mat44_to_quatern(a, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                           &nim->qoffset_z, &nim->dx, &nim->dy, &nim->dz, &nim->qfac);
    /* the qform as the library will read it back, so qform and sform agree to float precision */
    nim->qto_xyz = nifti_quatern_to_mat44(nim->quatern_b, nim->quatern_c, nim->quatern_d, nim->qoffset_x, nim->qoffset_y,
                                          nim->qoffset_z, nim->dx, nim->dy, nim->dz, nim->qfac);
    nim->qto_ijk = nifti_mat44_inverse(nim->qto_xyz);
    double dt = 0;
    if (g->frames > 1) dt = (g->trigger_ms[g->frames - 1] - g->trigger_ms[0]) / (double)(g->frames - 1);
    nim->dt = (float)dt;
    nim->pixdim[1] = nim->dx, nim->pixdim[2] = nim->dy, nim->pixdim[3] = nim->dz, nim->pixdim[4] = nim->dt;
    nim->toffset = (float)g->trigger_ms[0];
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = NIFTI_UNITS_MSEC;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nim->iname_offset = 352;
    snprintf(nim->descrip, sizeof nim->descrip, "%s", descrip);
    snprintf(nim->intent_name, sizeof nim->intent_name, "%s", cpx ? "complex" : "magnitude");
    struct nifti_1_header hdr = nifti_convert_nim2nhdr(nim);
    size_t bytes = (size_t)nim->nvox * (size_t)nim->nbyper;
    nifti_image_free(nim);
    char tmp[4200];
    FMR_TRY(fmr_export_tmp_path(tmp, sizeof tmp, final, ".nii"));
    FILE *f = fopen(tmp, "wb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    static const char ext[4] = {0, 0, 0, 0}; /* no extensions */
    int ok = fwrite(&hdr, sizeof hdr, 1, f) == 1 && fwrite(ext, 4, 1, f) == 1 && fwrite(data, 1, bytes, f) == bytes;
    ok = (fclose(f) == 0) && ok;
    fmr_err err = ok ? FMR_OK : fmr_error(FMR_ERR_IO, "%s: write failed (disk full?)", final);
    return fmr_export_commit(tmp, final, err);
}

static const fmr_geometry *sort_geo;
static int by_location(const void *a, const void *b)
{
    double x = fmr_geometry_slice_location(sort_geo, *(const size_t *)a), y = fmr_geometry_slice_location(sort_geo, *(const size_t *)b);
    return x < y ? -1 : x > y;
}

fmr_err fmr_export_nifti(const fmr_export_result *r, const char *out_dir, const fmr_export_options *opt)
{
    const size_t T = r->frames, Z = r->slices, hw = r->h * r->w;
    char descrip[80];
    snprintf(descrip, sizeof descrip, "%s", r->description);
    /* Slice indices follow the acquisition (often interleaved): a volume is judged, and written,
     * with the slices in the order of their location along the normal when that is not already
     * their order (then the file's k axis is that order; docs/formats.md). */
    size_t *order = malloc(Z * sizeof *order);
    fmr_geometry *sorted = NULL;
    if (!order) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the slice order");
    for (size_t z = 0; z < Z; z++) order[z] = z;
    int identity = 1;
    if (!opt->per_slice && Z > 2 && !fmr_geometry_is_volume(r->geo, 1e-3)) {
        sort_geo = r->geo;
        qsort(order, Z, sizeof *order, by_location);
        for (size_t z = 0; z < Z; z++) identity &= order[z] == z;
    }
    fmr_err err = FMR_OK;
    if (!identity) {
        err = fmr_geometry_copy(r->geo, &sorted);
        for (size_t z = 0; !err && z < Z; z++) sorted->slice[z] = r->geo->slice[order[z]];
    }
    const fmr_geometry *g = sorted ? sorted : r->geo;
    const int volume = !err && !opt->per_slice && fmr_geometry_is_volume(g, 1e-3);
    if (!err && !volume && !opt->per_slice && Z > 1)
        fmr_warn("%s: slices are not one evenly spaced parallel stack: one NIfTI file per slice", r->path);
    if (!volume) g = r->geo; /* per-slice files keep the file's slice numbers */
    for (int cpx = 0; !err && cpx <= (opt->write_complex ? 1 : 0); cpx++) {
        const size_t es = cpx ? sizeof(fmr_cfloat) : sizeof(float);
        const char *src = cpx ? (const char *)r->img : (const char *)r->mag;
        const char *tag = cpx ? "_complex" : "";
        char path[4200], suffix[64];
        if (volume) {
            /* (frame, slice, h, w) row-major is NIfTI's (i = w, j = h, k = slice, t) order */
            double k[3], n[3];
            if (Z > 1)
                for (int i = 0; i < 3; i++) k[i] = g->slice[1].position[i] - g->slice[0].position[i];
            else {
                fmr_geometry_normal(g, 0, n);
                for (int i = 0; i < 3; i++) k[i] = n[i] * g->slice_spacing;
            }
            snprintf(suffix, sizeof suffix, "%s.nii", tag);
            err = fmr_export_path(path, sizeof path, out_dir, r->name, suffix);
            char *perm = NULL;
            if (!err && sorted) {
                if (!(perm = malloc(T * Z * hw * es))) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate the NIfTI volume");
                for (size_t t = 0; !err && t < T; t++)
                    for (size_t z = 0; z < Z; z++)
                        memcpy(perm + (t * Z + z) * hw * es, src + (t * Z + order[z]) * hw * es, hw * es);
            }
            if (!err) err = write_nii(path, g, 0, k, Z, cpx, perm ? perm : src, descrip);
            free(perm);
            continue;
        }
        char *buf = malloc(T * hw * es);
        if (!buf) {
            err = fmr_error(FMR_ERR_NOMEM, "cannot allocate a NIfTI slice");
            break;
        }
        for (size_t z = 0; !err && z < Z; z++) {
            for (size_t t = 0; t < T; t++) memcpy(buf + t * hw * es, src + (t * Z + z) * hw * es, hw * es);
            double k[3], n[3];
            fmr_geometry_normal(g, z, n);
            for (int i = 0; i < 3; i++) k[i] = n[i] * g->slice_thickness;
            snprintf(suffix, sizeof suffix, "_slice%02zu%s.nii", z, tag);
            err = fmr_export_path(path, sizeof path, out_dir, r->name, suffix);
            if (!err) err = write_nii(path, g, z, k, 1, cpx, buf, descrip);
        }
        free(buf);
    }
    free(order);
    fmr_geometry_free(&sorted);
    return err;
}

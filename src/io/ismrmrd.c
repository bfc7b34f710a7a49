/* ISMRMRD raw data (/dataset/xml + /dataset/data), read with HDF5 directly.
 * The cine is assembled from the encoding counters: phase = frame (repetition when every phase is
 * 0), slice = slice, kspace_encode_step_1 = phase-encode line. Noise scans are counted and kept out
 * of k-space; navigator and phase-correction lines are skipped; calibration-only lines are placed
 * (they are measured k-space of the same image) and counted. Readout samples are placed by
 * center_sample (asymmetric echo is zero-filled), lines by the header's e1 centre (partial Fourier
 * is zero-filled), repeated lines (averages) are averaged, and the readout oversampling is removed
 * by cropping the readout to the reconstruction FOV in image space. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "dataset_impl.h"
#include "fmrecon/fft.h"
#include "fmrecon/log.h"
#include "h5util.h"
#include "core/limits.h"

enum {
    FLAG_NOISE = 19,
    FLAG_CALIB = 20,
    FLAG_CALIB_AND_IMAGING = 21,
    FLAG_REVERSE = 22,
    FLAG_NAVIGATION = 23,
    FLAG_PHASECORR = 24,
    FLAG_HPFEEDBACK = 26,
    FLAG_DUMMYSCAN = 27,
    FLAG_RTFEEDBACK = 28,
};
#define HAS(flags, n) (((flags) >> ((n) - 1)) & 1ull)

typedef struct {
    uint16_t e1, slice, phase, repetition;
} idx_mem;

typedef struct {
    uint64_t flags;
    uint16_t number_of_samples, active_channels, discard_pre, discard_post, center_sample;
    idx_mem idx;
} head_mem;

typedef struct {
    head_mem head;
} acq_mem;

typedef struct {
    hid_t file, data, headtype, datatype;
    size_t nacq;
    head_mem *heads;
    size_t enc_x, enc_y;   /* encoded matrix */
    long e1_center;        /* line e1 lands at column e1 - e1_center + enc_y/2 */
    int use_repetition;    /* frames counted by repetition instead of phase */
    size_t *order, *start; /* acquisitions of item i: order[start[i] .. start[i+1]) */
    fmr_fft2c *fx, *fh;    /* 1-D centred FFTs along the readout: encoded and cropped length */
    fmr_cfloat *acc, *col;
    float *count;
    unsigned char *lines; /* frames x enc_y: line sampled */
} ismrmrd_impl;

static void ismrmrd_close(fmr_dataset *ds)
{
    ismrmrd_impl *m = ds->impl;
    if (!m) return;
    fmr_fft2c_destroy(&m->fx);
    fmr_fft2c_destroy(&m->fh);
    free(m->heads);
    free(m->order);
    free(m->start);
    free(m->lines);
    fmr_free(m->acc);
    fmr_free(m->col);
    fmr_free(m->count);
    if (m->headtype >= 0) H5Tclose(m->headtype);
    if (m->datatype >= 0) H5Tclose(m->datatype);
    if (m->data >= 0) H5Dclose(m->data);
    if (m->file >= 0) H5Fclose(m->file);
    free(m);
    ds->impl = NULL;
}

static size_t frame_of(const ismrmrd_impl *m, const head_mem *h)
{
    return m->use_repetition ? h->idx.repetition : h->idx.phase;
}

static int skipped(uint64_t f)
{
    return HAS(f, FLAG_NOISE) || HAS(f, FLAG_NAVIGATION) || HAS(f, FLAG_PHASECORR) ||
           HAS(f, FLAG_HPFEEDBACK) || HAS(f, FLAG_DUMMYSCAN) || HAS(f, FLAG_RTFEEDBACK);
}

static fmr_err ismrmrd_read_kspace(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc,
                                   fmr_cfloat *out)
{
    ismrmrd_impl *m = ds->impl;
    const fmr_dataset_info *in = &ds->info;
    const size_t ex = m->enc_x, ey = m->enc_y, item = t * in->slices + z;
    const size_t first = m->start[item], n = m->start[item + 1] - first;
    memset(m->acc, 0, in->coils * ex * ey * sizeof *m->acc);
    memset(m->count, 0, ey * sizeof *m->count);
    fmr_err err = FMR_OK;
    if (n) {
        hsize_t *pts = malloc(n * sizeof *pts);
        hvl_t *vl = malloc(n * sizeof *vl);
        if (!pts || !vl) {
            free(pts);
            free(vl);
            return fmr_error(FMR_ERR_NOMEM, "cannot allocate acquisition list");
        }
        for (size_t i = 0; i < n; i++) pts[i] = m->order[first + i];
        hid_t fs = H5Dget_space(m->data);
        hsize_t nn = n;
        hid_t ms = H5Screate_simple(1, &nn, NULL);
        herr_t r = H5Sselect_elements(fs, H5S_SELECT_SET, n, pts);
        if (r >= 0) r = H5Dread(m->data, m->datatype, ms, fs, H5P_DEFAULT, vl);
        if (r < 0) {
            const char *why = fmr_h5_reason();
            err = fmr_error(FMR_ERR_IO, "%s: cannot read acquisitions of frame %zu slice %zu%s%s",
                            ds->path, t, z, *why ? ": " : "", why);
        }
        for (size_t i = 0; !err && i < n; i++) {
            const head_mem *h = &m->heads[pts[i]];
            size_t ns = h->number_of_samples, nch = h->active_channels;
            if (vl[i].len != 2 * ns * nch) {
                err = fmr_error(FMR_ERR_FORMAT,
                                "%s: acquisition %llu holds %zu values, expected 2 x %zu samples x %zu "
                                "channels",
                                ds->path, (unsigned long long)pts[i], (size_t)vl[i].len, ns, nch);
                break;
            }
            const float *d = vl[i].p;
            long y = (long)h->idx.e1 - m->e1_center + (long)ey / 2;
            long off = (long)ex / 2 - (long)h->center_sample;
            for (size_t c = 0; c < in->coils; c++)
                for (size_t s = h->discard_pre; s + h->discard_post < ns; s++) {
                    size_t src = HAS(h->flags, FLAG_REVERSE) ? ns - 1 - s : s;
                    long x = (long)s + off;
                    if (x < 0 || x >= (long)ex) continue;
                    m->acc[(c * ex + (size_t)x) * ey + (size_t)y] +=
                        d[2 * (c * ns + src)] + I * d[2 * (c * ns + src) + 1];
                }
            m->count[y] += 1.0f;
        }
        if (r >= 0) H5Dvlen_reclaim(m->datatype, ms, H5P_DEFAULT, vl);
        H5Sclose(ms);
        H5Sclose(fs);
        free(pts);
        free(vl);
    }
    if (err) return err;
    /* Average repeated lines, then crop the readout to the reconstruction FOV in image space. */
    const size_t h = in->h, x0 = ex / 2 - h / 2;
    for (size_t c = c0; c < c0 + nc; c++) {
        fmr_cfloat *a = m->acc + c * ex * ey, *o = out + (c - c0) * h * ey;
        for (size_t y = 0; y < ey; y++) {
            float k = m->count[y] > 1.0f ? 1.0f / m->count[y] : 1.0f;
            if (h == ex) {
                for (size_t x = 0; x < ex; x++) o[x * ey + y] = a[x * ey + y] * k;
                continue;
            }
            for (size_t x = 0; x < ex; x++) m->col[x] = a[x * ey + y] * k;
            FMR_TRY(fmr_fft2c_inverse(m->fx, 1, m->col, m->col));
            FMR_TRY(fmr_fft2c_forward(m->fh, 1, m->col + x0, m->col + x0));
            for (size_t x = 0; x < h; x++) o[x * ey + y] = m->col[x0 + x];
        }
    }
    return FMR_OK;
}

static fmr_err ismrmrd_read_mask(fmr_dataset *ds, size_t t, float *mask)
{
    ismrmrd_impl *m = ds->impl;
    size_t row = ds->info.mask == FMR_MASK_PERFRAME ? t : 0;
    for (size_t y = 0; y < m->enc_y; y++) mask[y] = m->lines[row * m->enc_y + y] ? 1.0f : 0.0f;
    return FMR_OK;
}

static fmr_err ismrmrd_read_reference(fmr_dataset *ds, size_t t, size_t z, float *out)
{
    (void)t, (void)z, (void)out;
    return fmr_error(FMR_ERR_INTERNAL, "%s: ISMRMRD files carry no reference", ds->path);
}

static fmr_err ismrmrd_read_noise(fmr_dataset *ds, fmr_cfloat **noise, size_t *n)
{
    ismrmrd_impl *m = ds->impl;
    const size_t C = ds->info.coils;
    size_t nscan = 0, total = 0;
    for (size_t i = 0; i < m->nacq; i++)
        if (HAS(m->heads[i].flags, FLAG_NOISE)) {
            if (m->heads[i].active_channels != C)
                return fmr_error(FMR_ERR_FORMAT, "%s: noise scan %zu has %u channels, the data %zu",
                                 ds->path, i, m->heads[i].active_channels, C);
            nscan++;
            total += m->heads[i].number_of_samples;
        }
    if (!nscan) return FMR_OK;
    hsize_t *pts = malloc(nscan * sizeof *pts);
    hvl_t *vl = malloc(nscan * sizeof *vl);
    fmr_err err = (!pts || !vl) ? fmr_error(FMR_ERR_NOMEM, "cannot allocate noise list") : FMR_OK;
    if (!err) err = fmr_alloc((void **)noise, C * total * sizeof **noise, "noise samples");
    if (err) {
        free(pts);
        free(vl);
        return err;
    }
    for (size_t i = 0, k = 0; i < m->nacq; i++)
        if (HAS(m->heads[i].flags, FLAG_NOISE)) pts[k++] = i;
    hid_t fs = H5Dget_space(m->data);
    hsize_t nn = nscan;
    hid_t ms = H5Screate_simple(1, &nn, NULL);
    herr_t r = H5Sselect_elements(fs, H5S_SELECT_SET, nscan, pts);
    if (r >= 0) r = H5Dread(m->data, m->datatype, ms, fs, H5P_DEFAULT, vl);
    if (r < 0) err = fmr_error(FMR_ERR_IO, "%s: cannot read the noise scans", ds->path);
    for (size_t k = 0, off = 0; !err && k < nscan; k++) {
        size_t ns = m->heads[pts[k]].number_of_samples;
        if (vl[k].len != 2 * ns * C) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: noise scan %llu has %zu values, expected %zu", ds->path,
                            (unsigned long long)pts[k], (size_t)vl[k].len, 2 * ns * C);
            break;
        }
        const float *d = vl[k].p;
        for (size_t c = 0; c < C; c++)
            for (size_t s = 0; s < ns; s++)
                (*noise)[c * total + off + s] = d[2 * (c * ns + s)] + I * d[2 * (c * ns + s) + 1];
        off += ns;
    }
    if (r >= 0) H5Dvlen_reclaim(m->datatype, ms, H5P_DEFAULT, vl);
    H5Sclose(ms);
    H5Sclose(fs);
    free(pts);
    free(vl);
    if (err) {
        fmr_free(*noise);
        *noise = NULL;
        return err;
    }
    *n = total;
    return FMR_OK;
}

static const fmr_dataset_ops ismrmrd_ops = {
    .read_kspace = ismrmrd_read_kspace,
    .read_mask = ismrmrd_read_mask,
    .read_reference = ismrmrd_read_reference,
    .read_noise = ismrmrd_read_noise,
    .close = ismrmrd_close,
};

#define E(n) "/*[local-name()='" n "']"
static double xml_num(xmlXPathContextPtr ctx, const char *expr, double dflt)
{
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    double v = dflt;
    if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
        xmlChar *s = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
        char *end;
        if (s) {
            double r = strtod((const char *)s, &end);
            if (end != (char *)s) v = r;
        }
        xmlFree(s);
    }
    xmlXPathFreeObject(o);
    return v;
}

typedef struct {
    double enc_x, enc_y, rec_x, enc_fov_x, rec_fov_x, e1_center;
} xml_geom;

static fmr_err parse_xml(const char *path, const char *xml, xml_geom *g)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "ismrmrd.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return fmr_error(FMR_ERR_FORMAT, "%s: /dataset/xml is not well-formed XML", path);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    const char *enc = "(/*[local-name()='ismrmrdHeader']" E("encoding") ")[1]";
    char q[320];
#define Q(var, tail, dflt) (snprintf(q, sizeof q, "%s" tail, enc), (var) = xml_num(ctx, q, (dflt)))
    Q(g->enc_x, E("encodedSpace") E("matrixSize") E("x"), -1);
    Q(g->enc_y, E("encodedSpace") E("matrixSize") E("y"), -1);
    Q(g->rec_x, E("reconSpace") E("matrixSize") E("x"), g->enc_x);
    Q(g->enc_fov_x, E("encodedSpace") E("fieldOfView_mm") E("x"), 0);
    Q(g->rec_fov_x, E("reconSpace") E("fieldOfView_mm") E("x"), 0);
    Q(g->e1_center, E("encodingLimits") E("kspace_encoding_step_1") E("center"), g->enc_y / 2);
#undef Q
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    /* written so that NaN fails too; every value later cast to an integer is range-checked here */
    if (!(g->enc_x >= 1 && g->enc_x <= 65536 && g->enc_y >= 1 && g->enc_y <= 65536) ||
        g->enc_x != floor(g->enc_x) || g->enc_y != floor(g->enc_y))
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: XML header lacks a valid encodedSpace/matrixSize (x %g, y %g; need whole "
                         "numbers 1..65536)",
                         path, g->enc_x, g->enc_y);
    if (!(fabs(g->e1_center) <= 65536))
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: XML header's kspace_encoding_step_1 center %g is outside 0..65536", path,
                         g->e1_center);
    if (!isfinite(g->enc_fov_x) || !isfinite(g->rec_fov_x)) g->enc_fov_x = g->rec_fov_x = 0;
    return FMR_OK;
}

static hid_t make_head_type(void)
{
    hid_t idx = H5Tcreate(H5T_COMPOUND, sizeof(idx_mem));
    H5Tinsert(idx, "kspace_encode_step_1", HOFFSET(idx_mem, e1), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "slice", HOFFSET(idx_mem, slice), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "phase", HOFFSET(idx_mem, phase), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "repetition", HOFFSET(idx_mem, repetition), H5T_NATIVE_UINT16);
    hid_t head = H5Tcreate(H5T_COMPOUND, sizeof(head_mem));
    H5Tinsert(head, "flags", HOFFSET(head_mem, flags), H5T_NATIVE_UINT64);
    H5Tinsert(head, "number_of_samples", HOFFSET(head_mem, number_of_samples), H5T_NATIVE_UINT16);
    H5Tinsert(head, "active_channels", HOFFSET(head_mem, active_channels), H5T_NATIVE_UINT16);
    H5Tinsert(head, "discard_pre", HOFFSET(head_mem, discard_pre), H5T_NATIVE_UINT16);
    H5Tinsert(head, "discard_post", HOFFSET(head_mem, discard_post), H5T_NATIVE_UINT16);
    H5Tinsert(head, "center_sample", HOFFSET(head_mem, center_sample), H5T_NATIVE_UINT16);
    H5Tinsert(head, "idx", HOFFSET(head_mem, idx), idx);
    hid_t acq = H5Tcreate(H5T_COMPOUND, sizeof(acq_mem));
    H5Tinsert(acq, "head", 0, head);
    H5Tclose(idx);
    H5Tclose(head);
    return acq;
}

static hid_t make_data_type(void)
{
    hid_t vl = H5Tvlen_create(H5T_NATIVE_FLOAT);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(hvl_t));
    H5Tinsert(t, "data", 0, vl);
    H5Tclose(vl);
    return t;
}

static fmr_err check_counters(const char *path, const ismrmrd_impl *m, size_t frames, size_t slices,
                              size_t nimg)
{
    const char *fname = m->use_repetition ? "repetition" : "phase";
    unsigned char *fseen = calloc(frames, 1), *sseen = calloc(slices, 1);
    fmr_err err = (!fseen || !sseen) ? fmr_error(FMR_ERR_NOMEM, "%s: cannot allocate the counter check", path) : FMR_OK;
    size_t fmax_acq = 0, smax_acq = 0;
    for (size_t i = 0; !err && i < m->nacq; i++) {
        const head_mem *h = &m->heads[i];
        if (skipped(h->flags)) continue;
        const size_t t = frame_of(m, h);
        fseen[t] = sseen[h->idx.slice] = 1;
        if (t + 1 == frames) fmax_acq = i;
        if (h->idx.slice + 1u == slices) smax_acq = i;
    }
    for (size_t t = 0; !err && t < frames; t++)
        if (!fseen[t])
            err = fmr_error(FMR_ERR_FORMAT,
                            "%s: frame %zu of %zu has no acquisitions: acquisition %zu has idx.%s %zu "
                            "(a corrupt counter?)",
                            path, t, frames, fmax_acq, fname, frames - 1);
    for (size_t z = 0; !err && z < slices; z++)
        if (!sseen[z])
            err = fmr_error(FMR_ERR_FORMAT,
                            "%s: slice %zu of %zu has no acquisitions: acquisition %zu has idx.slice %zu "
                            "(a corrupt counter?)",
                            path, z, slices, smax_acq, slices - 1);
    if (!err && frames * slices > nimg)
        err = fmr_error(FMR_ERR_FORMAT,
                        "%s: %zu frames x %zu slices, but only %zu imaging acquisitions: some frames "
                        "of some slices were never acquired",
                        path, frames, slices, nimg);
    free(fseen);
    free(sseen);
    return err;
}

static fmr_err index_acquisitions(const char *path, ismrmrd_impl *m, fmr_dataset_info *in)
{
    size_t frames = 0, slices = 0, coils = 0, any_phase = 0, any_rep = 0, nimg = 0;
    for (size_t i = 0; i < m->nacq; i++) {
        const head_mem *h = &m->heads[i];
        if (HAS(h->flags, FLAG_NOISE)) in->noise_scans++;
        if (skipped(h->flags)) continue;
        nimg++;
        any_phase |= h->idx.phase, any_rep |= h->idx.repetition;
        if (coils && h->active_channels != coils)
            return fmr_error(FMR_ERR_FORMAT, "%s: acquisition %zu has %u channels, earlier ones %zu", path,
                             i, h->active_channels, coils);
        coils = h->active_channels;
        long y = (long)h->idx.e1 - m->e1_center + (long)m->enc_y / 2;
        if (y < 0 || y >= (long)m->enc_y)
            return fmr_error(FMR_ERR_FORMAT, "%s: acquisition %zu: line %u falls outside the %zu encoded lines",
                             path, i, h->idx.e1, m->enc_y);
        if (HAS(h->flags, FLAG_CALIB)) in->calibration_lines++;
    }
    if (!nimg || !coils) return fmr_error(FMR_ERR_FORMAT, "%s: no imaging acquisitions", path);
    /* The readout matrix is what the stored samples fill (partial echo: at least half of it); a
     * larger one is a header that asks for memory the file cannot fill. */
    size_t max_ns = 0;
    for (size_t i = 0; i < m->nacq; i++)
        if (!skipped(m->heads[i].flags) && m->heads[i].number_of_samples > max_ns) max_ns = m->heads[i].number_of_samples;
    if (m->enc_x > 2 * max_ns)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: encodedSpace/matrixSize/x %zu is more than twice the longest stored readout "
                         "(%zu samples); corrupt header?",
                         path, m->enc_x, max_ns);
    m->use_repetition = !any_phase && any_rep;
    for (size_t i = 0; i < m->nacq; i++) {
        const head_mem *h = &m->heads[i];
        if (skipped(h->flags)) continue;
        if (frame_of(m, h) + 1 > frames) frames = frame_of(m, h) + 1;
        if (h->idx.slice + 1u > slices) slices = h->idx.slice + 1u;
    }
    in->frames = frames, in->slices = slices, in->coils = coils;
    /* The counters are 16-bit: one corrupt idx.phase or idx.slice (65535) would make tens of
     * thousands of empty frames (gigabytes of zeros). Every frame and slice must be acquired. */
    FMR_TRY(check_counters(path, m, frames, slices, nimg));
    FMR_TRY(fmr_limit_bytes(path, "the line index (frames x matrixSize y)", 1, 2, (size_t[]){frames, m->enc_y}, NULL));
    size_t nitems = frames * slices;
    m->start = calloc(nitems + 1, sizeof *m->start);
    m->order = malloc(nimg * sizeof *m->order);
    m->lines = calloc(frames * m->enc_y, 1);
    if (!m->start || !m->order || !m->lines)
        return fmr_error(FMR_ERR_NOMEM, "%s: cannot allocate the acquisition index (%zu items)", path, nitems);
    for (size_t i = 0; i < m->nacq; i++)
        if (!skipped(m->heads[i].flags))
            m->start[frame_of(m, &m->heads[i]) * slices + m->heads[i].idx.slice + 1]++;
    for (size_t i = 0; i < nitems; i++) {
        if (m->start[i + 1] == 0)
            return fmr_error(FMR_ERR_FORMAT, "%s: frame %zu of slice %zu has no acquisitions", path,
                             i / slices, i % slices);
        m->start[i + 1] += m->start[i];
    }
    size_t *fill = calloc(nitems, sizeof *fill);
    if (!fill) return fmr_error(FMR_ERR_NOMEM, "%s: cannot allocate the acquisition index (%zu items)", path, nitems);
    for (size_t i = 0; i < m->nacq; i++) {
        const head_mem *h = &m->heads[i];
        if (skipped(h->flags)) continue;
        size_t it = frame_of(m, h) * slices + h->idx.slice;
        m->order[m->start[it] + fill[it]++] = i;
        m->lines[frame_of(m, h) * m->enc_y + (size_t)((long)h->idx.e1 - m->e1_center + (long)m->enc_y / 2)] = 1;
    }
    free(fill);
    /* One mask for all frames when every frame samples the same lines. */
    in->mask = FMR_MASK_SHARED;
    for (size_t t = 1; t < frames; t++)
        if (memcmp(m->lines, m->lines + t * m->enc_y, m->enc_y)) in->mask = FMR_MASK_PERFRAME;
    return FMR_OK;
}

int fmr_ismrmrd_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err)
{
    (void)opt;
    hid_t f;
    if ((*err = fmr_h5_open_read(path, &f))) return -1;
    if (!fmr_h5_exists(f, "dataset") || !fmr_h5_exists(f, "dataset/data")) {
        H5Fclose(f);
        return 0;
    }
    ismrmrd_impl *m = calloc(1, sizeof *m);
    if (!m) {
        H5Fclose(f);
        *err = fmr_error(FMR_ERR_NOMEM, "cannot allocate reader");
        return -1;
    }
    m->file = f;
    m->data = m->headtype = m->datatype = H5I_INVALID_HID;
    ds->impl = m;
    ds->ops = &ismrmrd_ops;
    fmr_dataset_info *in = &ds->info;
    in->format = FMR_FORMAT_ISMRMRD;
    in->format_name = "ISMRMRD";
    in->has_frame_axis = 1;
    snprintf(in->variable, sizeof in->variable, "/dataset/data");
    char *xml = NULL;
    xml_geom g = {0};
    if (!fmr_h5_read_string_dataset(f, "dataset/xml", &xml)) {
        /* the standard stores the header as a 1-element variable-length string array */
        hid_t d = H5Dopen2(f, "dataset/xml", H5P_DEFAULT);
        if (d >= 0) {
            hid_t st = H5Tcopy(H5T_C_S1);
            H5Tset_size(st, H5T_VARIABLE);
            hid_t ft = H5Dget_type(d);
            H5Tset_cset(st, H5Tget_cset(ft));
            H5Tclose(ft);
            char *v = NULL;
            if (H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 && v) {
                xml = strdup(v);
                H5free_memory(v);
            }
            H5Tclose(st);
            H5Dclose(d);
        }
    }
    *err = xml ? parse_xml(path, xml, &g) : fmr_error(FMR_ERR_FORMAT, "%s: no readable /dataset/xml header", path);
    if (!*err) {
        m->enc_x = (size_t)g.enc_x, m->enc_y = (size_t)g.enc_y, m->e1_center = (long)g.e1_center;
        /* readout FOV crop: the image pixels the reconstruction FOV covers */
        size_t h = m->enc_x;
        if (g.rec_fov_x > 0 && g.enc_fov_x > g.rec_fov_x)
            h = (size_t)lround((double)m->enc_x * g.rec_fov_x / g.enc_fov_x);
        in->h = h, in->w = m->enc_y;
        *err = fmr_ismrmrd_xml_padding(path, xml, in->w, &in->pad_left, &in->pad_right);
        in->has_header = 1;
    }
    free(xml);
    if (!*err) {
        m->data = H5Dopen2(f, "dataset/data", H5P_DEFAULT);
        hsize_t d[2];
        int nd = 0;
        if (m->data < 0) *err = fmr_error(FMR_ERR_FORMAT, "%s: /dataset/data is not readable", path);
        else *err = fmr_h5_dims(path, m->data, "/dataset/data", 1, &nd, d);
        if (!*err) {
            m->nacq = d[0];
            m->headtype = make_head_type();
            m->datatype = make_data_type();
            acq_mem *tmp = malloc((m->nacq ? m->nacq : 1) * sizeof *tmp);
            m->heads = malloc((m->nacq ? m->nacq : 1) * sizeof *m->heads);
            if (!tmp || !m->heads) *err = fmr_error(FMR_ERR_NOMEM, "cannot allocate acquisition headers");
            else if (H5Dread(m->data, m->headtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0)
                *err = fmr_error(FMR_ERR_FORMAT, "%s: cannot read acquisition headers (not ISMRMRD, or corrupt)", path);
            for (size_t i = 0; !*err && i < m->nacq; i++) m->heads[i] = tmp[i].head;
            free(tmp);
        }
    }
    if (!*err) *err = index_acquisitions(path, m, in);
    if (!*err) *err = fmr_fft2c_create(&m->fx, 1, m->enc_x);
    if (!*err) *err = fmr_fft2c_create(&m->fh, 1, in->h);
    if (!*err)
        *err = fmr_limit_bytes(path, "the k-space of one item (coils x matrixSize x x y)", sizeof(fmr_cfloat), 3,
                               (size_t[]){in->coils, m->enc_x, m->enc_y}, NULL);
    if (!*err) *err = fmr_alloc((void **)&m->acc, in->coils * m->enc_x * m->enc_y * sizeof(fmr_cfloat), "k-space");
    if (!*err) *err = fmr_alloc((void **)&m->col, m->enc_x * sizeof(fmr_cfloat), "readout line");
    if (!*err) *err = fmr_alloc((void **)&m->count, m->enc_y * sizeof(float), "line counts");
    if (*err) {
        ismrmrd_close(ds);
        return -1;
    }
    return 1;
}

/* BART .cfl/.hdr: k-space reader behind the dataset vtable, coil maps for --sens, and the writer
 * (fmrecon/cfl.h). BART's samples are complex64 little-endian, first dimension fastest.
 *
 * The k-space plane: BART keeps 2-D data either as [READ, PHS1] or, after an inverse FFT along
 * the readout of a 3-D scan (the ESPIRiT examples), as [1, PHS1, PHS2]. fmrecon's plane (h, w)
 * is therefore (READ, PHS1) when READ > 1, else (PHS1, PHS2); w (the second) is the axis masks
 * act on. COIL, TIME and SLICE become coils, frames and slices; any other dimension above 1 is
 * refused, since fmrecon has no meaning for it. cfl carries no mask: a phase-encode column that
 * is zero in every coil, row and slice of a frame is taken as not sampled. */
#include <complex.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset_impl.h"
#include "fmrecon/cfl.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the cfl reader and writer move complex64 samples as they are: little-endian hosts only"
#endif

static const char *const dim_names[FMR_CFL_DIMS] = {
    "READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2",
    "ITER", "CSHIFT", "TIME", "TIME2", "LEVEL", "SLICE", "AVG", "BATCH"};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

int fmr_cfl_is(const char *path, char *base, size_t n)
{
    size_t len = strlen(path);
    if (ends_with(path, ".cfl") || ends_with(path, ".hdr")) len -= 4;
    else {
        /* a bare BART name "X" (as bart itself takes it) needs both files beside it */
        char h[4200], c[4200];
        snprintf(h, sizeof h, "%s.hdr", path);
        snprintf(c, sizeof c, "%s.cfl", path);
        if (access(path, F_OK) == 0 || access(h, F_OK) != 0 || access(c, F_OK) != 0) return 0;
    }
    if (len + 1 > n) return 0;
    memcpy(base, path, len);
    base[len] = '\0';
    return 1;
}

static void dims_text(const long *dims, char *buf, size_t n)
{
    int last = 0;
    for (int i = 0; i < FMR_CFL_DIMS; i++)
        if (dims[i] != 1) last = i;
    buf[0] = '\0';
    for (int i = 0; i <= last && i < FMR_CFL_DIMS; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%ld", i ? "x" : "", dims[i]);
}

/* Parses base.hdr and checks base.cfl's size; names the files in every message. */
static fmr_err read_header(const char *base, long dims[FMR_CFL_DIMS], size_t *numel)
{
    char hp[4200], cp[4200];
    snprintf(hp, sizeof hp, "%s.hdr", base);
    snprintf(cp, sizeof cp, "%s.cfl", base);
    FILE *f = fopen(hp, "r");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open the BART header (%s)", hp, strerror(errno));
    char line[4096];
    int found = 0, nd = 0;
    for (int i = 0; i < FMR_CFL_DIMS; i++) dims[i] = 1;
    fmr_err err = FMR_OK;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, "# Dimensions", 12)) found = 1;
    if (found && !fgets(line, sizeof line, f)) found = 0;
    fclose(f);
    if (!found) return fmr_error(FMR_ERR_FORMAT, "%s: not a BART header (no '# Dimensions' line with sizes)", hp);
    char *p = line, *end;
    while (!err) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\n' || *p == '\r' || *p == '\0') break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1)
            err = fmr_error(FMR_ERR_FORMAT, "%s: dimension %d is not a positive whole number", hp, nd);
        else if (nd == FMR_CFL_DIMS)
            err = fmr_error(FMR_ERR_FORMAT, "%s: more than %d dimensions", hp, FMR_CFL_DIMS);
        else
            dims[nd++] = v;
        p = end;
    }
    if (!err && nd == 0) err = fmr_error(FMR_ERR_FORMAT, "%s: the '# Dimensions' line lists no sizes", hp);
    FMR_TRY(err);
    size_t n = 1;
    for (int i = 0; i < FMR_CFL_DIMS; i++) {
        if ((unsigned long)dims[i] > SIZE_MAX / 8 / n)
            return fmr_error(FMR_ERR_SHAPE, "%s: the dimensions overflow", hp);
        n *= (size_t)dims[i];
    }
    struct stat st;
    if (stat(cp, &st) != 0) return fmr_error(FMR_ERR_IO, "%s: cannot open the BART data file (%s)", cp, strerror(errno));
    char dt[256];
    dims_text(dims, dt, sizeof dt);
    if ((uint64_t)st.st_size != (uint64_t)n * 8)
        return fmr_error(FMR_ERR_SHAPE,
                         "%s: holds %lld bytes, but its header %s declares %s complex64 samples "
                         "(%zu bytes); truncated or mismatched pair",
                         cp, (long long)st.st_size, hp, dt, n * 8);
    *numel = n;
    return FMR_OK;
}

fmr_err fmr_cfl_read_header(const char *path, long dims[FMR_CFL_DIMS])
{
    char base[4096];
    if (!fmr_cfl_is(path, base, sizeof base))
        return fmr_error(FMR_ERR_FORMAT, "%s: not a BART .cfl/.hdr pair", path);
    size_t n;
    return read_header(base, dims, &n);
}

/* The plane axes (pa -> h, pb -> w) and a check that no other dimension than `allowed` is > 1. */
static fmr_err plane_axes(const char *cp, const long *dims, unsigned allowed, int *pa, int *pb)
{
    if (dims[FMR_CFL_READ] > 1) {
        *pa = FMR_CFL_READ, *pb = FMR_CFL_PHS1;
        if (dims[FMR_CFL_PHS2] > 1)
            return fmr_error(FMR_ERR_SHAPE,
                             "%s: 3-D k-space (READ %ld, PHS1 %ld, PHS2 %ld); fmrecon reconstructs 2-D "
                             "planes: inverse-FFT the readout first (bart fft -i 1) so READ is 1",
                             cp, dims[0], dims[1], dims[2]);
    } else {
        *pa = FMR_CFL_PHS1, *pb = FMR_CFL_PHS2;
    }
    for (int i = FMR_CFL_COIL; i < FMR_CFL_DIMS; i++)
        if (dims[i] > 1 && !(allowed & (1u << i)))
            return fmr_error(FMR_ERR_SHAPE,
                             "%s: BART dimension %d (%s) is %ld; fmrecon reads only READ/PHS1/PHS2, "
                             "COIL, TIME and SLICE%s",
                             cp, i, dim_names[i], dims[i], (allowed >> FMR_CFL_MAPS) & 1 ? ", MAPS" : "");
    return FMR_OK;
}

static void strides(const long *dims, size_t *st)
{
    st[0] = 1;
    for (int i = 1; i < FMR_CFL_DIMS; i++) st[i] = st[i - 1] * (size_t)dims[i - 1];
}

/* ---- k-space reader ---- */

typedef struct {
    int fd;
    char cfl[4200];
    long dims[FMR_CFL_DIMS];
    size_t st[FMR_CFL_DIMS];
    fmr_cfloat *plane; /* h * w, file order (h fastest) */
    unsigned char *sampled; /* frames x w: column holds data */
} cfl_impl;

static void cfl_close(fmr_dataset *ds)
{
    cfl_impl *m = ds->impl;
    if (!m) return;
    if (m->fd >= 0) close(m->fd);
    fmr_free(m->plane);
    free(m->sampled);
    free(m);
    ds->impl = NULL;
}

/* One coil plane of item (t, z) in file order. */
static fmr_err read_plane(fmr_dataset *ds, size_t t, size_t z, size_t c)
{
    cfl_impl *m = ds->impl;
    const size_t hw = ds->info.h * ds->info.w;
    const size_t off = c * m->st[FMR_CFL_COIL] + t * m->st[FMR_CFL_TIME] + z * m->st[FMR_CFL_SLICE];
    size_t done = 0, bytes = hw * sizeof(fmr_cfloat);
    char *dst = (char *)m->plane;
    while (done < bytes) {
        ssize_t r = pread(m->fd, dst + done, bytes - done, (off_t)(off * sizeof(fmr_cfloat) + done));
        if (r <= 0)
            return fmr_error(FMR_ERR_IO, "%s: cannot read frame %zu slice %zu coil %zu (%s)", m->cfl, t, z, c,
                             r < 0 ? strerror(errno) : "file shorter than its header says");
        done += (size_t)r;
    }
    return FMR_OK;
}

static fmr_err cfl_read_kspace(fmr_dataset *ds, size_t t, size_t z, size_t c0, size_t nc, fmr_cfloat *out)
{
    cfl_impl *m = ds->impl;
    const size_t h = ds->info.h, w = ds->info.w;
    for (size_t c = 0; c < nc; c++) {
        FMR_TRY(read_plane(ds, t, z, c0 + c));
        fmr_cfloat *o = out + c * h * w;
        for (size_t x = 0; x < w; x++)
            for (size_t y = 0; y < h; y++) o[y * w + x] = m->plane[x * h + y];
    }
    return FMR_OK;
}

static fmr_err cfl_read_mask(fmr_dataset *ds, size_t t, float *mask)
{
    cfl_impl *m = ds->impl;
    for (size_t x = 0; x < ds->info.w; x++) mask[x] = m->sampled[t * ds->info.w + x] ? 1.0f : 0.0f;
    return FMR_OK;
}

static fmr_err cfl_read_reference(fmr_dataset *ds, size_t t, size_t z, float *out)
{
    (void)t, (void)z, (void)out;
    return fmr_error(FMR_ERR_INTERNAL, "%s: BART cfl k-space carries no reference", ds->path);
}

static const fmr_dataset_ops cfl_ops = {
    .read_kspace = cfl_read_kspace,
    .read_mask = cfl_read_mask,
    .read_reference = cfl_read_reference,
    .close = cfl_close,
};

/* The sampling pattern from the data: one pass over the file, one coil plane at a time. */
static fmr_err scan_columns(fmr_dataset *ds)
{
    cfl_impl *m = ds->impl;
    fmr_dataset_info *in = &ds->info;
    const size_t h = in->h, w = in->w;
    if (!(m->sampled = calloc(in->frames * w, 1))) return fmr_error(FMR_ERR_NOMEM, "cannot allocate the cfl mask");
    for (size_t t = 0; t < in->frames; t++)
        for (size_t z = 0; z < in->slices; z++)
            for (size_t c = 0; c < in->coils; c++) {
                FMR_TRY(read_plane(ds, t, z, c));
                for (size_t x = 0; x < w; x++) {
                    unsigned char *s = &m->sampled[t * w + x];
                    for (size_t y = 0; !*s && y < h; y++) *s = m->plane[x * h + y] != 0.0f;
                }
            }
    int all = 1, same = 1;
    for (size_t i = 0; i < in->frames * w; i++) all &= m->sampled[i];
    for (size_t t = 1; t < in->frames; t++) same &= !memcmp(m->sampled, m->sampled + t * w, w);
    in->mask = all ? FMR_MASK_NONE : same ? FMR_MASK_SHARED : FMR_MASK_PERFRAME;
    return FMR_OK;
}

int fmr_cfl_probe(const char *path, const fmr_open_options *opt, fmr_dataset *ds, fmr_err *err)
{
    (void)opt;
    char base[4096];
    if (!fmr_cfl_is(path, base, sizeof base)) return 0;
    cfl_impl *m = calloc(1, sizeof *m);
    if (!m) {
        *err = fmr_error(FMR_ERR_NOMEM, "cannot allocate reader");
        return -1;
    }
    m->fd = -1;
    ds->impl = m;
    ds->ops = &cfl_ops;
    snprintf(m->cfl, sizeof m->cfl, "%s.cfl", base);
    fmr_dataset_info *in = &ds->info;
    in->format = FMR_FORMAT_CFL;
    in->format_name = "BART cfl";
    snprintf(in->variable, sizeof in->variable, "cfl");
    size_t n;
    int pa = 0, pb = 0;
    *err = read_header(base, m->dims, &n);
    if (!*err)
        *err = plane_axes(m->cfl, m->dims, (1u << FMR_CFL_COIL) | (1u << FMR_CFL_TIME) | (1u << FMR_CFL_SLICE), &pa,
                          &pb);
    if (!*err) {
        strides(m->dims, m->st);
        in->h = (size_t)m->dims[pa];
        in->w = (size_t)m->dims[pb];
        in->coils = (size_t)m->dims[FMR_CFL_COIL];
        in->frames = (size_t)m->dims[FMR_CFL_TIME];
        in->slices = (size_t)m->dims[FMR_CFL_SLICE];
        in->has_frame_axis = in->frames > 1;
        in->pad_left = 0;
        in->pad_right = in->w;
        m->fd = open(m->cfl, O_RDONLY | O_CLOEXEC);
        if (m->fd < 0) *err = fmr_error(FMR_ERR_IO, "%s: cannot open (%s)", m->cfl, strerror(errno));
    }
    if (!*err) *err = fmr_alloc((void **)&m->plane, in->h * in->w * sizeof *m->plane, "cfl coil plane");
    if (!*err) *err = scan_columns(ds);
    if (*err) {
        cfl_close(ds);
        return -1;
    }
    return 1;
}

/* ---- coil maps ---- */

fmr_err fmr_cfl_read_maps(const char *path, fmr_array **out)
{
    *out = NULL;
    char base[4096], cp[4200];
    if (!fmr_cfl_is(path, base, sizeof base)) return fmr_error(FMR_ERR_FORMAT, "%s: not a BART .cfl/.hdr pair", path);
    snprintf(cp, sizeof cp, "%s.cfl", base);
    long dims[FMR_CFL_DIMS];
    size_t n, st[FMR_CFL_DIMS];
    int pa, pb;
    FMR_TRY(read_header(base, dims, &n));
    FMR_TRY(plane_axes(cp, dims, (1u << FMR_CFL_COIL) | (1u << FMR_CFL_MAPS) | (1u << FMR_CFL_SLICE), &pa, &pb));
    strides(dims, st);
    const size_t h = (size_t)dims[pa], w = (size_t)dims[pb], C = (size_t)dims[FMR_CFL_COIL],
                 Z = (size_t)dims[FMR_CFL_SLICE];
    fmr_cfloat *raw = NULL;
    FMR_TRY(fmr_alloc((void **)&raw, n * sizeof *raw, "BART coil maps"));
    FILE *f = fopen(cp, "rb");
    fmr_err err = f ? FMR_OK : fmr_error(FMR_ERR_IO, "%s: cannot open (%s)", cp, strerror(errno));
    if (!err && fread(raw, sizeof *raw, n, f) != n)
        err = fmr_error(FMR_ERR_IO, "%s: cannot read %zu samples", cp, n);
    if (f) fclose(f);
    for (size_t i = 0; !err && i < n; i++)
        if (!isfinite(crealf(raw[i])) || !isfinite(cimagf(raw[i])))
            err = fmr_error(FMR_ERR_VALUE, "%s: coil maps hold NaN/Inf (sample %zu)", cp, i);
    const size_t d4[4] = {Z, C, h, w};
    if (!err) err = fmr_array_create(out, FMR_C64, 4, d4);
    if (!err) {
        fmr_cfloat *o = fmr_array_data(*out);
        for (size_t z = 0; z < Z; z++)
            for (size_t c = 0; c < C; c++)
                for (size_t y = 0; y < h; y++)
                    for (size_t x = 0; x < w; x++) /* MAPS index 0: the first set of maps */
                        o[((z * C + c) * h + y) * w + x] =
                            raw[y * st[pa] + x * st[pb] + c * st[FMR_CFL_COIL] + z * st[FMR_CFL_SLICE]];
    }
    fmr_free(raw);
    return err;
}

/* ---- writer ---- */

static fmr_err write_tmp(const char *final, const void *buf, size_t bytes, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s.tmp.%ld", final, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot create (%s)", final, strerror(errno));
    int ok = fwrite(buf, 1, bytes, f) == bytes;
    int e = errno;
    ok = (fflush(f) == 0) && ok;
    if (!ok) e = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        if (!e) e = errno;
        remove(tmp);
        return fmr_error(FMR_ERR_IO, "%s: cannot write %zu bytes (%s)", final, bytes, strerror(e ? e : EIO));
    }
    return FMR_OK;
}

fmr_err fmr_cfl_write(const char *path, const long dims[FMR_CFL_DIMS], const fmr_cfloat *data)
{
    char base[4096], hp[4200], cp[4200], th[4300], tc[4300];
    size_t len = strlen(path);
    if (ends_with(path, ".cfl") || ends_with(path, ".hdr")) len -= 4;
    if (len == 0 || len >= sizeof base) return fmr_error(FMR_ERR_ARG, "%s: not a usable BART file name", path);
    memcpy(base, path, len);
    base[len] = '\0';
    snprintf(hp, sizeof hp, "%s.hdr", base);
    snprintf(cp, sizeof cp, "%s.cfl", base);
    size_t n = 1;
    for (int i = 0; i < FMR_CFL_DIMS; i++) {
        if (dims[i] < 1 || (unsigned long)dims[i] > SIZE_MAX / 8 / n)
            return fmr_error(FMR_ERR_ARG, "%s: BART dimension %d = %ld is not usable", path, i, dims[i]);
        n *= (size_t)dims[i];
    }
    char text[512] = "# Dimensions\n";
    for (int i = 0; i < FMR_CFL_DIMS; i++) snprintf(text + strlen(text), sizeof text - strlen(text), "%ld ", dims[i]);
    strcat(text, "\n");
    FMR_TRY(write_tmp(cp, data, n * sizeof *data, tc, sizeof tc));
    fmr_err err = write_tmp(hp, text, strlen(text), th, sizeof th);
    /* the data file first: the header is what makes the pair visible to BART */
    if (!err && rename(tc, cp) != 0) err = fmr_error(FMR_ERR_IO, "%s: cannot rename into place (%s)", cp, strerror(errno));
    if (!err && rename(th, hp) != 0) {
        err = fmr_error(FMR_ERR_IO, "%s: cannot rename into place (%s)", hp, strerror(errno));
        remove(cp);
    }
    if (err) {
        remove(tc);
        remove(th);
    }
    return err;
}

fmr_err fmr_cfl_write_cine(const char *path, size_t T, size_t Z, size_t h, size_t w, const fmr_cfloat *ci,
                           const float *fi)
{
    long dims[FMR_CFL_DIMS];
    for (int i = 0; i < FMR_CFL_DIMS; i++) dims[i] = 1;
    dims[FMR_CFL_READ] = (long)h, dims[FMR_CFL_PHS1] = (long)w;
    dims[FMR_CFL_TIME] = (long)T, dims[FMR_CFL_SLICE] = (long)Z;
    const size_t hw = h * w;
    fmr_cfloat *o = NULL;
    const size_t total = T * Z * hw;
    FMR_TRY(fmr_alloc((void **)&o, (total ? total : 1) * sizeof *o, "cfl output"));
    for (size_t z = 0; z < Z; z++)
        for (size_t f = 0; f < T; f++) {
            const size_t src = (f * Z + z) * hw, dst = (z * T + f) * hw;
            for (size_t x = 0; x < w; x++)
                for (size_t y = 0; y < h; y++)
                    o[dst + x * h + y] = ci ? ci[src + y * w + x] : (fmr_cfloat)fi[src + y * w + x];
        }
    fmr_err err = fmr_cfl_write(path, dims, o);
    fmr_free(o);
    return err;
}

fmr_err fmr_cfl_write_images(const char *path, const fmr_array *a)
{
    const int nd = fmr_array_ndim(a);
    const fmr_dtype t = fmr_array_dtype(a);
    if (nd < 2 || nd > 4 || (t != FMR_C64 && t != FMR_F32))
        return fmr_error(FMR_ERR_SHAPE, "%s: cfl output takes images (frames, slices, h, w), complex or real", path);
    const size_t h = fmr_array_dim(a, nd - 2), w = fmr_array_dim(a, nd - 1);
    const size_t T = nd == 4 ? fmr_array_dim(a, 0) : 1, Z = nd >= 3 ? fmr_array_dim(a, nd - 3) : 1;
    return fmr_cfl_write_cine(path, T, Z, h, w, t == FMR_C64 ? fmr_array_data(a) : NULL,
                              t == FMR_F32 ? fmr_array_data(a) : NULL);
}

fmr_err fmr_cfl_write_result(const char *h5path, const char *dataset, const char *path)
{
    const char *name = dataset ? dataset : fmr_h5_has_dataset(h5path, "image") ? "image" : "reconstruction";
    fmr_array *a = NULL;
    FMR_TRY(fmr_h5_read_array(h5path, name, &a));
    fmr_err err = fmr_cfl_write_images(path, a);
    fmr_array_destroy(&a);
    return err;
}

#include "fmrecon/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_HEADER = 100 * 1000 * 1000, MAX_TENSORS = 1000000 };

typedef struct {
    char *key, *value;
} meta_kv;

struct fmr_safetensors {
    char *label;
    void *map;
    size_t maplen; /* mapped length (0 for caller buffers) */
    fmr_st_tensor *t;
    size_t n;
    meta_kv *meta;
    size_t nmeta;
    size_t *by_name; /* tensor indices sorted by name: lookups and the duplicate check */
};

static const struct {
    const char *name;
    fmr_st_dtype t;
    size_t size;
} dtypes[] = {{"F32", FMR_ST_F32, 4},  {"F16", FMR_ST_F16, 2}, {"BF16", FMR_ST_BF16, 2},
              {"F64", FMR_ST_F64, 8},  {"I64", FMR_ST_I64, 8}, {"I32", FMR_ST_I32, 4},
              {"I16", FMR_ST_I16, 2},  {"I8", FMR_ST_I8, 1},   {"U8", FMR_ST_U8, 1},
              {"BOOL", FMR_ST_BOOL, 1}};

const char *fmr_st_dtype_name(fmr_st_dtype t)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].t == t) return dtypes[i].name;
    return "?";
}

static size_t dtype_size(fmr_st_dtype t)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].t == t) return dtypes[i].size;
    return 0;
}

void fmr_st_close(fmr_safetensors **p)
{
    if (!p || !*p) return;
    fmr_safetensors *s = *p;
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->t[i].name);
    for (size_t i = 0; i < s->nmeta; i++)
        free(s->meta[i].key), free(s->meta[i].value);
    free(s->t);
    free(s->meta);
    free(s->by_name);
    if (s->maplen) munmap(s->map, s->maplen);
    free(s->label);
    free(s);
    *p = NULL;
}

typedef struct {
    size_t begin, end, idx;
} range;

/* qsort has no context argument: the comparison reads the tensor table from a thread-local. */
static _Thread_local const fmr_st_tensor *sort_ctx_;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(sort_ctx_[*(const size_t *)a].name, sort_ctx_[*(const size_t *)b].name);
}

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->begin < y->begin   ? -1
           : x->begin > y->begin ? 1
                                 : (x->end < y->end ? -1 : x->end > y->end);
}

/* A JSON number that is a whole, non-negative value representable exactly as size_t. */
static int whole(const cJSON *j, size_t max, size_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0) || v > (double)max || v > 9007199254740992.0 || floor(v) != v) return 0;
    *out = (size_t)v;
    return 1;
}

static fmr_err parse_tensor(const char *label, const cJSON *e, size_t datalen, fmr_st_tensor *t)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", label, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets",
                         label, name);
    t->dtype = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dt->valuestring, dtypes[i].name)) t->dtype = dtypes[i].t;
    if (!t->dtype)
        return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' has unsupported dtype '%.32s'", label,
                         name, dt->valuestring);
    int nd = cJSON_GetArraySize(sh);
    if (nd < 0 || nd > FMR_ST_MAX_DIMS)
        return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", label,
                         name, nd, FMR_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    for (int i = 0; i < nd; i++) {
        size_t d;
        if (!whole(cJSON_GetArrayItem(sh, i), SIZE_MAX, &d))
            return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' has an invalid shape entry", label,
                             name);
        if (d && numel > datalen / d)
            return fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' is larger than the file", label,
                             name);
        numel *= d;
        t->shape[i] = (int64_t)d;
    }
    size_t b, en;
    if (cJSON_GetArraySize(off) != 2 || !whole(cJSON_GetArrayItem(off, 0), datalen, &b) ||
        !whole(cJSON_GetArrayItem(off, 1), datalen, &en) || en < b)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: tensor '%s' has data_offsets outside the %zu data bytes of the file",
                         label, name, datalen);
    t->numel = numel;
    t->nbytes = numel * dtype_size(t->dtype);
    if (en - b != t->nbytes)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: tensor '%s' spans %zu bytes but its shape and dtype need %zu", label,
                         name, en - b, t->nbytes);
    t->data = (const void *)b; /* offset for now; made a pointer once the data base is known */
    return FMR_OK;
}

fmr_err fmr_st_open_buffer(const void *buf, size_t len, const char *label, fmr_safetensors **out)
{
    *out = NULL;
    if (len < 8)
        return fmr_error(FMR_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", label,
                         len);
    const unsigned char *p = buf;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | p[i];
    if (hl > MAX_HEADER)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: safetensors header of %llu bytes exceeds the %d-byte limit", label,
                         (unsigned long long)hl, MAX_HEADER);
    if (hl > len - 8)
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: safetensors header length %llu runs past the end of the file (%zu "
                         "bytes; truncated?)",
                         label, (unsigned long long)hl, len);
    if (hl < 2 || p[8] != '{')
        return fmr_error(FMR_ERR_FORMAT, "%s: safetensors header is not a JSON object", label);
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hl);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fmr_error(FMR_ERR_FORMAT, "%s: safetensors header is not valid JSON", label);
    }
    fmr_safetensors *s = calloc(1, sizeof *s);
    fmr_err err = s ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "cannot allocate checkpoint");
    if (!err && !(s->label = strdup(label)))
        err = fmr_error(FMR_ERR_NOMEM, "cannot allocate checkpoint");
    const size_t datalen = len - 8 - (size_t)hl;
    const unsigned char *base = p + 8 + hl;
    size_t count = 0;
    for (cJSON *e = root->child; e; e = e->next)
        count++;
    if (!err && count > MAX_TENSORS)
        err = fmr_error(FMR_ERR_FORMAT, "%s: %zu tensors exceed the limit", label, count);
    if (!err) {
        s->t = calloc(count ? count : 1, sizeof *s->t);
        s->meta = calloc(count ? count : 1, sizeof *s->meta);
        if (!s->t || !s->meta) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate checkpoint index");
    }
    for (cJSON *e = root->child; !err && e; e = e->next) {
        if (!e->string) {
            err = fmr_error(FMR_ERR_FORMAT, "%s: header entry without a name", label);
        } else if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e))
                err = fmr_error(FMR_ERR_FORMAT, "%s: __metadata__ is not an object", label);
            for (cJSON *m = e->child; !err && m; m = m->next) {
                if (!cJSON_IsString(m) || !m->string) {
                    err =
                        fmr_error(FMR_ERR_FORMAT, "%s: __metadata__ values must be strings", label);
                    break;
                }
                if (s->nmeta == count) break;
                s->meta[s->nmeta].key = strdup(m->string);
                s->meta[s->nmeta].value = strdup(m->valuestring);
                if (!s->meta[s->nmeta].key || !s->meta[s->nmeta].value)
                    err = fmr_error(FMR_ERR_NOMEM, "metadata");
                s->nmeta++;
            }
        } else {
            fmr_st_tensor *t = &s->t[s->n];
            err = parse_tensor(label, e, datalen, t);
            if (!err && !(t->name = strdup(e->string)))
                err = fmr_error(FMR_ERR_NOMEM, "tensor name");
            if (!err) s->n++;
        }
    }
    cJSON_Delete(root);
    /* tensors may not overlap (the format requires a dense, non-overlapping layout) */
    range *r = NULL;
    if (!err && s->n) {
        r = malloc(s->n * sizeof *r);
        if (!r) err = fmr_error(FMR_ERR_NOMEM, "cannot check tensor layout");
        for (size_t i = 0; !err && i < s->n; i++) {
            size_t b = (size_t)s->t[i].data;
            r[i] = (range){b, b + s->t[i].nbytes, i};
        }
        if (!err) qsort(r, s->n, sizeof *r, cmp_range);
        /* sorted by start: a non-empty range overlaps an earlier one iff it starts before the
         * furthest end seen so far */
        size_t far = 0, far_idx = 0;
        for (size_t i = 0; !err && i < s->n; i++) {
            if (r[i].end == r[i].begin) continue;
            if (r[i].begin < far)
                err = fmr_error(FMR_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", label,
                                s->t[far_idx].name, s->t[r[i].idx].name);
            if (r[i].end > far) far = r[i].end, far_idx = r[i].idx;
        }
        for (size_t i = 0; !err && i < s->n; i++)
            s->t[i].data = base + (size_t)s->t[i].data;
    }
    free(r);
    /* names must be unique (JSON objects may repeat keys; a checkpoint may not) */
    if (!err && s->n) {
        s->by_name = malloc(s->n * sizeof *s->by_name);
        if (!s->by_name) err = fmr_error(FMR_ERR_NOMEM, "cannot index tensor names");
        for (size_t i = 0; !err && i < s->n; i++)
            s->by_name[i] = i;
        if (!err) {
            sort_ctx_ = s->t;
            qsort(s->by_name, s->n, sizeof *s->by_name, cmp_name);
        }
        for (size_t i = 1; !err && i < s->n; i++)
            if (!strcmp(s->t[s->by_name[i - 1]].name, s->t[s->by_name[i]].name))
                err = fmr_error(FMR_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                                label, s->t[s->by_name[i]].name);
    }
    if (err) {
        fmr_st_close(&s);
        return err;
    }
    *out = s;
    return FMR_OK;
}

fmr_err fmr_st_open(const char *path, fmr_safetensors **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fmr_error(FMR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fmr_error(FMR_ERR_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return len ? fmr_error(FMR_ERR_IO, "%s: cannot map: %s", path, strerror(errno))
                   : fmr_error(FMR_ERR_FORMAT, "%s: empty file", path);
    fmr_err err = fmr_st_open_buffer(map, len, path, out);
    if (err) {
        munmap(map, len);
        return err;
    }
    (*out)->map = map;
    (*out)->maplen = len;
    return FMR_OK;
}

size_t fmr_st_count(const fmr_safetensors *s)
{
    return s->n;
}

const fmr_st_tensor *fmr_st_at(const fmr_safetensors *s, size_t i)
{
    return i < s->n ? &s->t[i] : NULL;
}

const fmr_st_tensor *fmr_st_find(const fmr_safetensors *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->t[s->by_name[mid]].name, name);
        if (!c) return &s->t[s->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *fmr_st_metadata(const fmr_safetensors *s, const char *key)
{
    for (size_t i = 0; i < s->nmeta; i++)
        if (!strcmp(s->meta[i].key, key)) return s->meta[i].value;
    return NULL;
}

size_t fmr_st_metadata_count(const fmr_safetensors *s)
{
    return s->nmeta;
}

const char *fmr_st_metadata_key(const fmr_safetensors *s, size_t i)
{
    return i < s->nmeta ? s->meta[i].key : NULL;
}

const char *fmr_st_metadata_value(const fmr_safetensors *s, size_t i)
{
    return i < s->nmeta ? s->meta[i].value : NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400))
                man <<= 1, exp--;
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0xff << 23 | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

fmr_err fmr_st_read_f32(const fmr_safetensors *s, const char *name, int expect_ndim,
                        const int64_t *shape, float *out)
{
    const fmr_st_tensor *t = fmr_st_find(s, name);
    if (!t) return fmr_error(FMR_ERR_FORMAT, "%s: missing tensor '%s'", s->label, name);
    if (expect_ndim >= 0) {
        int ok = t->ndim == expect_ndim;
        for (int i = 0; ok && i < expect_ndim; i++)
            ok = t->shape[i] == shape[i];
        if (!ok) {
            char got[160] = "", want[160] = "";
            for (int i = 0; i < t->ndim; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                         (long long)t->shape[i]);
            for (int i = 0; i < expect_ndim; i++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
                         (long long)shape[i]);
            return fmr_error(FMR_ERR_SHAPE, "%s: tensor '%s' has shape [%s], expected [%s]",
                             s->label, name, got, want);
        }
    }
    const unsigned char *d = t->data;
    switch (t->dtype) {
    case FMR_ST_F32:
        memcpy(out, d, t->numel * 4);
        break;
    case FMR_ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double v;
            memcpy(&v, d + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case FMR_ST_F16:
        for (size_t i = 0; i < t->numel; i++)
            out[i] = half_to_float((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
        break;
    case FMR_ST_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(d[2 * i] | d[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
        }
        break;
    default:
        return fmr_error(FMR_ERR_FORMAT,
                         "%s: tensor '%s' has dtype %s, expected a floating-point type", s->label,
                         name, fmr_st_dtype_name(t->dtype));
    }
    return FMR_OK;
}

fmr_err fmr_st_read_weights(const fmr_safetensors *s, const char *name, int expect_ndim,
                            const int64_t *shape, float *out)
{
    FMR_TRY(fmr_st_read_f32(s, name, expect_ndim, shape, out));
    /* every weight of every network passes here: a NaN or Inf would otherwise only show as a
     * NaN image (soft DC has no solver to notice it), so it is refused at load */
    const size_t numel = fmr_st_find(s, name)->numel;
    size_t bad = 0;
    for (size_t i = 0; i < numel; i++)
        bad += !isfinite(out[i]);
    if (bad)
        return fmr_error(FMR_ERR_VALUE, "%s: tensor '%s' has %zu non-finite values", s->label,
                         name, bad);
    return FMR_OK;
}

const char *fmr_st_label(const fmr_safetensors *s)
{
    return s->label;
}

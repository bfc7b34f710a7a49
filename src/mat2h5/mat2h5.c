/* fmrecon-mat2h5 IN.mat OUT.mat: rewrites a MATLAB v5 .mat file (CMRxRecon 2024 ships some) as
 * MATLAB v7.3, which is HDF5 and which fmrecon reads directly (src/io/cmrxrecon.c).
 *
 * Why a separate program: MATLAB v5 is read through libmatio (Debian libmatio-dev), and Debian's
 * libmatio links the serial HDF5 library, while fmrecon links the parallel one; both define the
 * same symbols, so they must never be loaded into one process. This program links libmatio (and
 * through it serial HDF5) and nothing of fmrecon; fmrecon never links libmatio. matio itself
 * writes the v7.3 output, so the file is what MATLAB's save -v7.3 would write (complex arrays as
 * {real, imag} compounds, MATLAB_class attributes, the 512-byte MATLAB header), variable names
 * and shapes unchanged. See docs/formats.md, "MATLAB v5". */
#include <errno.h>
#include <matio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage =
    "usage: fmrecon-mat2h5 IN.mat OUT.mat [-q]\n\n"
    "Rewrites a MATLAB v5 .mat file as MATLAB v7.3 (HDF5), which fmrecon reads: every variable\n"
    "with its name, class, shape and values unchanged (complex as {real, imag}). OUT appears only\n"
    "when complete (written under a temporary name, then renamed). A separate program because\n"
    "libmatio links the serial HDF5 library, which must not be loaded beside fmrecon's parallel\n"
    "HDF5 (docs/formats.md).\n\n"
    "  -q   no summary on stderr\n"
    "  -h   this text\n";

static char last_msg[512];

/* matio reports through this instead of printing; the last message becomes our one line. */
static void log_cb(int level, char *msg)
{
    (void)level;
    if (msg) snprintf(last_msg, sizeof last_msg, "%s", msg);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fmrecon-mat2h5: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static const char *class_name(enum matio_classes c)
{
    switch (c) {
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_CHAR: return "char";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_CELL: return "cell";
    case MAT_C_SPARSE: return "sparse";
    default: return "other";
    }
}

/* Bytes the variable's values take in memory, from its header alone; 0 on overflow. */
static uint64_t value_bytes(const matvar_t *v)
{
    uint64_t n = 1;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] && n > UINT64_MAX / 16 / v->dims[i]) return 0;
        n *= v->dims[i];
    }
    size_t es = Mat_SizeOfClass(v->class_type);
    return n * (es ? es : 8) * (v->isComplex ? 2 : 1);
}

int main(int argc, char **argv)
{
    int quiet = 0;
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return fputs(usage, stdout), 0;
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-' && argv[i][1]) return fail("unknown option '%s' (see fmrecon-mat2h5 --help)", argv[i]), 2;
        else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else return fail("too many arguments (see fmrecon-mat2h5 --help)"), 2;
    }
    if (!in || !out) return fail("needs IN.mat and OUT.mat (see fmrecon-mat2h5 --help)"), 2;
    Mat_LogInitFunc("fmrecon-mat2h5", log_cb);
    struct stat st;
    if (stat(in, &st) != 0) return fail("%s: %s", in, strerror(errno));
    mat_t *m = Mat_Open(in, MAT_ACC_RDONLY);
    if (!m) return fail("%s: not a MATLAB .mat file matio can open%s%s", in, *last_msg ? ": " : "", last_msg);
    enum mat_ft ver = Mat_GetVersion(m);
    if (ver == MAT_FT_MAT73) {
        Mat_Close(m);
        return fail("%s: already MATLAB v7.3 (HDF5); fmrecon reads it as it is", in);
    }
    /* The memory the values may take: what the machine has (compressed variables expand, so the
     * file size alone does not bound them). */
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    const uint64_t budget = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 2 : UINT64_MAX;

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    mat_t *o = Mat_CreateVer(tmp, NULL, MAT_FT_MAT73);
    if (!o) {
        Mat_Close(m);
        return fail("%s: cannot create (%s)", out, *last_msg ? last_msg : strerror(errno));
    }
    int rc = 0, count = 0, declared = 0;
    char last_name[256] = "";
    uint64_t total = 0;
    matvar_t *info;
    /* Pass 1: every variable's header (no values), checked before anything is allocated. */
    while (!rc && (info = Mat_VarReadNextInfo(m)) != NULL) {
        const char *name = info->name ? info->name : "";
        uint64_t bytes = value_bytes(info);
        int container = info->class_type == MAT_C_STRUCT || info->class_type == MAT_C_CELL;
        if (!*name)
            rc = fail("%s: variable %d has no name", in, declared + 1);
        else if (!bytes && info->rank > 0 && !container)
            rc = fail("%s: variable '%s': its dimensions overflow", in, name);
        else if (info->compression == MAT_COMPRESSION_NONE && !container && bytes > (uint64_t)st.st_size)
            rc = fail("%s: variable '%s' declares %llu bytes of values, more than the %lld-byte file "
                      "holds (truncated?)",
                      in, name, (unsigned long long)bytes, (long long)st.st_size);
        else if (bytes > budget)
            rc = fail("%s: variable '%s' needs %.1f GiB, more than half of this machine's memory", in, name,
                      (double)bytes / 1073741824.0);
        declared++;
        snprintf(last_name, sizeof last_name, "%s", name);
        Mat_VarFree(info);
    }
    /* a header cut short ends the scan with a message */
    if (!rc && *last_msg && declared)
        rc = fail("%s: truncated or corrupt after the header of variable %d '%s' (its data run past the end?): %s", in,
                  declared, last_name, last_msg);
    if (!rc && *last_msg) rc = fail("%s: truncated or corrupt before the first variable: %s", in, last_msg);
    if (!rc && declared == 0) rc = fail("%s: no variables could be read (empty, corrupt or truncated file)", in);
    /* Pass 2: each variable with its values, written as it is read. */
    if (!rc && Mat_Rewind(m) != 0) rc = fail("%s: cannot rewind", in);
    while (!rc && count < declared) {
        last_msg[0] = '\0';
        matvar_t *v = Mat_VarReadNext(m);
        const char *name = v && v->name ? v->name : "?";
        if (!v || (v->class_type != MAT_C_STRUCT && v->class_type != MAT_C_CELL && v->nbytes && !v->data) ||
            *last_msg) {
            rc = fail("%s: cannot read variable %d%s%s%s (file corrupt or truncated?)%s%s", in, count + 1,
                      v ? " '" : "", v ? name : "", v ? "'" : "", *last_msg ? ": " : "", last_msg);
        } else if (Mat_VarWrite(o, v, MAT_COMPRESSION_NONE) != 0) {
            rc = fail("%s: cannot write variable '%s'%s%s", out, name, *last_msg ? ": " : "", last_msg);
        } else {
            count++;
            total += value_bytes(v);
            if (!quiet) {
                fprintf(stderr, "fmrecon-mat2h5: %s %s%s (", name, v->isComplex ? "complex " : "",
                        class_name(v->class_type));
                for (int i = 0; i < v->rank; i++) fprintf(stderr, "%s%zu", i ? ", " : "", v->dims[i]);
                fprintf(stderr, ")\n");
            }
        }
        if (v) Mat_VarFree(v);
    }
    Mat_Close(m);
    if (Mat_Close(o) != 0 && !rc) rc = fail("%s: cannot finish writing", out);
    if (!rc && rename(tmp, out) != 0) rc = fail("%s: cannot rename into place (%s)", out, strerror(errno));
    if (rc) {
        remove(tmp);
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "fmrecon-mat2h5: %d variable%s, %.1f MiB -> %s (MATLAB v7.3)\n", count, count == 1 ? "" : "s",
                (double)total / 1048576.0, out);
    return 0;
}

/* libFuzzer target for the mask-file reader (src/io/maskfile.c, --mask-file): the fuzzer's bytes
 * describe a well-formed HDF5 file (plain, or MATLAB v7.3 with its 512-byte header), its mask
 * variable's name, type, rank, dimensions (small, or huge and sparse: chunked, never written)
 * and values, and the k-space the mask is for (frames, readout, phase-encode). The reader must
 * then either give a 0/1 line mask of the right size or return an error with a message; never
 * crash, read out of bounds (ASan, UBSan), or allocate without bound (libFuzzer -malloc_limit_mb).
 * HDF5's own parser is a dependency and is not the target: its input is always a valid file.
 *
 * Input layout (missing bytes read as 0): flags, frames, h, w (k-space), nd, then 4 x 3 bytes of
 * dimensions, then the value pattern. flags: bit 0 MATLAB header, bits 1-3 variable (mask,
 * mask04, mask08, mask10, kspace, or one of them named explicitly), bits 4-5 stored type
 * (f64, f32, u8, i16), bit 6 chunked storage, bit 7 values repeat along the last axis. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "io/dataset_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char path_[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FMR_FUZZ_DIR"); /* run_fuzz.sh: a private temporary folder */
    snprintf(path_, sizeof path_, "%s/mask-%d.h5", dir && *dir ? dir : "/tmp", (int)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* HDF5's own error stack print is noise here */
    return 0;
}

static uint8_t at(const uint8_t *d, size_t n, size_t i)
{
    return i < n ? d[i] : 0;
}

/* Small sizes mostly; the top values are huge, to reach the reader's size checks. */
static hsize_t dim_of(const uint8_t *b)
{
    const unsigned v = (unsigned)b[0] | (unsigned)b[1] << 8;
    switch (b[2] & 3) {
    case 0: return v % 17;
    case 1: return v % 600;
    case 2: return v;
    default: return (hsize_t)v << (b[2] >> 2); /* up to 2^16 << 63: sparse, chunked, never written */
    }
}

/* Writes the file the input describes; 0 if HDF5 refuses it (then there is nothing to read). */
static int write_file(const uint8_t *d, size_t n, const char **var)
{
    static const char *const names[] = {"mask", "mask04", "mask08", "mask10", "kspace"};
    const uint8_t flags = at(d, n, 0);
    const int matlab = flags & 1, chunked = (flags >> 6) & 1, repeat = flags >> 7;
    const int vsel = (flags >> 1) & 7, tsel = (flags >> 4) & 3;
    *var = names[vsel < 5 ? vsel : vsel - 5];
    const int nd = at(d, n, 4) % 5;
    hsize_t dims[4] = {0}, maxd[4], chunk[4];
    uint8_t db[12] = {0};
    for (int i = 0; i < 12; i++) db[i] = at(d, n, 5 + (size_t)i);
    size_t total = 1;
    int huge = 0;
    for (int i = 0; i < nd; i++) {
        dims[i] = dim_of(db + 3 * i);
        maxd[i] = H5S_UNLIMITED;
        chunk[i] = dims[i] && dims[i] < 64 ? dims[i] : 64;
        if (dims[i] && total > (1u << 20) / dims[i]) huge = 1;
        else total *= (size_t)dims[i];
    }
    /* more than 2^20 values are never written: the dataset is declared, chunked and left sparse */
    const int sparse = huge || (chunked && (flags & 0x8));
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (matlab) H5Pset_userblock(fcpl, 512);
    hid_t f = H5Fcreate(path_, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (f < 0) return 0;
    int ok = 0;
    const hid_t types[] = {H5T_IEEE_F64LE, H5T_IEEE_F32LE, H5T_STD_U8LE, H5T_STD_I16LE};
    hid_t sp = nd ? H5Screate_simple(nd, dims, (chunked || huge) ? maxd : NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (nd && (chunked || huge)) H5Pset_chunk(dcpl, nd, chunk);
    hid_t ds = sp >= 0 ? H5Dcreate2(f, *var, types[tsel], sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    if (ds >= 0) {
        ok = 1;
        if (!sparse && total) {
            double *v = malloc(total * sizeof *v);
            const size_t p0 = 17, plen = n > p0 ? n - p0 : 0;
            const size_t last = nd ? (size_t)dims[nd - 1] : 1;
            for (size_t i = 0; v && i < total; i++) {
                const size_t k = repeat && last ? i / last : i;
                const uint8_t b = plen ? d[p0 + k % plen] : 0;
                v[i] = b == 0xff ? 0.5 : b == 0xfe ? -1.0 : b ? 1.0 : 0.0; /* mostly 0/1 */
            }
            ok = v && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
            free(v);
        }
        H5Dclose(ds);
    }
    H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    H5Fclose(f);
    if (ok && matlab) { /* MATLAB v7.3: a text header in the user block */
        FILE *fp = fopen(path_, "r+b");
        static const char head[] = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: fuzz HDF5 schema 1.00 .";
        ok = fp && fwrite(head, 1, sizeof head - 1, fp) == sizeof head - 1;
        if (fp) fclose(fp);
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *var;
    if (!write_file(data, size, &var)) return 0;
    const uint8_t flags = at(data, size, 0);
    const int named = ((flags >> 1) & 7) >= 5;
    fmr_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.info.frames = 1 + at(data, size, 1) % 32;
    ds.info.h = 1 + at(data, size, 2) % 64 * 8;  /* 1 .. 505, the real sample's 512 included */
    ds.info.w = 1 + at(data, size, 3) % 64 * 4;  /* 1 .. 253, the real sample's 246 included */
    if (at(data, size, 2) == 0xff) ds.info.h = 512;
    if (at(data, size, 3) == 0xff) ds.info.w = 246;
    fmr_err err = fmr_maskfile_read(path_, named ? var : NULL, &ds);
    if (err == FMR_OK) {
        /* the oracle: a 0/1 mask per phase-encode column, shared or one per frame */
        const size_t nf = ds.info.mask == FMR_MASK_PERFRAME ? ds.info.frames : 1;
        if (!ds.ext_mask || (ds.info.mask != FMR_MASK_SHARED && ds.info.mask != FMR_MASK_PERFRAME)) abort();
        for (size_t i = 0; i < nf * ds.info.w; i++)
            if (ds.ext_mask[i] != 0.0f && ds.ext_mask[i] != 1.0f) abort();
    } else {
        if (ds.ext_mask || !fmr_error_message()[0]) abort(); /* an error always says what */
    }
    free(ds.ext_mask);
    fmr_error_clear();
    return 0;
}

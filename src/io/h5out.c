/* One HDF5 output shared by the ranks of a communicator; see fmr_h5out in fmrecon/io.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fmrecon/io.h"
#include "fmrecon/sched.h"
#include "h5util.h"

#define MAX_DSETS 16

typedef struct {
    char name[64];
    fmr_dtype dtype;
    int ndim;
    hsize_t dims[FMR_MAX_DIMS];
    hid_t id;
} out_dset;

struct fmr_h5out {
    MPI_Comm comm;
    int rank, size;
    char *path, *tmp;
    hid_t file;
    out_dset d[MAX_DSETS];
    int nd;
};

const char *fmr_h5out_path(const fmr_h5out *o)
{
    return o->path;
}

static hid_t file_type(fmr_dtype t)
{
    switch (t) {
    case FMR_C64:
        return fmr_h5_complex_type();
    case FMR_F32:
        return H5Tcopy(H5T_IEEE_F32LE);
    case FMR_U8:
        return H5Tcopy(H5T_STD_U8LE);
    }
    return H5I_INVALID_HID;
}

static hid_t mem_type(fmr_dtype t)
{
    switch (t) {
    case FMR_C64:
        return fmr_h5_complex_type();
    case FMR_F32:
        return H5Tcopy(H5T_NATIVE_FLOAT);
    case FMR_U8:
        return H5Tcopy(H5T_NATIVE_UCHAR);
    }
    return H5I_INVALID_HID;
}

static void destroy(fmr_h5out *o)
{
    for (int i = 0; i < o->nd; i++)
        if (o->d[i].id >= 0) H5Dclose(o->d[i].id);
    if (o->file >= 0) H5Fclose(o->file);
    free(o->path);
    free(o->tmp);
    free(o);
}

fmr_err fmr_h5out_create(MPI_Comm comm, const char *path, fmr_h5out **out)
{
    *out = NULL;
    fmr_h5_quiet();
    fmr_h5out *o = calloc(1, sizeof *o);
    if (!o) return fmr_error(FMR_ERR_NOMEM, "cannot allocate output file object");
    o->file = H5I_INVALID_HID;
    o->comm = comm;
    MPI_Comm_rank(comm, &o->rank);
    MPI_Comm_size(comm, &o->size);
    o->path = strdup(path);
    /* Rank 0 names the temporary file (its pid makes it unique) and everyone uses that name. */
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, comm);
    size_t n = strlen(path) + 48;
    o->tmp = malloc(n);
    if (!o->path || !o->tmp) {
        destroy(o);
        return fmr_error(FMR_ERR_NOMEM, "cannot allocate output file name");
    }
    snprintf(o->tmp, n, "%s.fmr-partial-%ld", path, pid);

    fmr_err err = FMR_OK;
    if (o->rank == 0) {
        err = fmr_output_check(path, NULL, 0);
        if (!err) {
            /* Creating the file ourselves first gives errno's reason (no such directory, no
             * permission, read-only file system) instead of HDF5's generic failure. */
            int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                err = fmr_error(FMR_ERR_IO, "%s: cannot create output: %s", path, strerror(errno));
            else
                close(fd);
        }
    }
    fmr_err g = fmr_agree(comm, err);
    if (g) {
        destroy(o);
        return err ? err : fmr_error(g, "%s: rank 0 could not create the output", path);
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (o->size > 1) H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (o->file < 0) {
        const char *why = fmr_h5_reason();
        err = fmr_error(FMR_ERR_IO, "%s: HDF5 cannot create the output%s%s", path, *why ? ": " : "",
                        why);
        if (o->rank == 0) unlink(o->tmp);
        destroy(o);
        return err;
    }
    *out = o;
    return FMR_OK;
}

static out_dset *find(fmr_h5out *o, const char *name)
{
    for (int i = 0; i < o->nd; i++)
        if (!strcmp(o->d[i].name, name)) return &o->d[i];
    return NULL;
}

fmr_err fmr_h5out_add_dataset(fmr_h5out *o, const char *name, fmr_dtype t, int ndim,
                              const size_t *dims)
{
    if (o->nd == MAX_DSETS || strlen(name) >= sizeof o->d[0].name || find(o, name) || ndim < 1 ||
        ndim > FMR_MAX_DIMS)
        return fmr_error(FMR_ERR_ARG, "%s: cannot add dataset '%s'", o->path, name);
    out_dset *d = &o->d[o->nd];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->dtype = t;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        d->dims[i] = dims[i];
    hid_t sp = H5Screate_simple(ndim, d->dims, NULL);
    hid_t ft = file_type(t);
    d->id = H5Dcreate2(o->file, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Tclose(ft);
    H5Sclose(sp);
    if (d->id < 0) {
        const char *why = fmr_h5_reason();
        return fmr_error(FMR_ERR_IO, "%s: cannot create dataset '%s'%s%s", o->path, name,
                         *why ? ": " : "", why);
    }
    o->nd++;
    return FMR_OK;
}

static fmr_err attr_write(fmr_h5out *o, const char *dset, const char *name, hid_t type,
                          const void *value)
{
    hid_t loc = o->file;
    if (dset) {
        out_dset *d = find(o, dset);
        if (!d)
            return fmr_error(FMR_ERR_ARG, "%s: no dataset '%s' for attribute '%s'", o->path, dset,
                             name);
        loc = d->id;
    }
    hid_t sp = H5Screate(H5S_SCALAR);
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Awrite(a, type, value) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (r < 0) return fmr_error(FMR_ERR_IO, "%s: cannot write attribute '%s'", o->path, name);
    return FMR_OK;
}

fmr_err fmr_h5out_attr_string(fmr_h5out *o, const char *dset, const char *name, const char *value)
{
    /* Variable-length UTF-8, so h5py hands Python users str rather than bytes. */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    fmr_err e = attr_write(o, dset, name, t, &value);
    H5Tclose(t);
    return e;
}

fmr_err fmr_h5out_attr_double(fmr_h5out *o, const char *dset, const char *name, double value)
{
    return attr_write(o, dset, name, H5T_NATIVE_DOUBLE, &value);
}

fmr_err fmr_h5out_attr_int(fmr_h5out *o, const char *dset, const char *name, int64_t value)
{
    return attr_write(o, dset, name, H5T_NATIVE_INT64, &value);
}

fmr_err fmr_h5out_add_string(fmr_h5out *o, const char *name, const char *value)
{
    /* fixed-length, like fastMRI's ismrmrd_header, so every reader (h5py, MATLAB) takes it */
    size_t n = strlen(value);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n ? n : 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(o->file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = -1;
    if (d >= 0) {
        hid_t ms = H5Screate(H5S_SCALAR), fs = H5Dget_space(d);
        if (o->rank != 0) {
            H5Sselect_none(ms);
            H5Sselect_none(fs);
        }
        hid_t dx = H5Pcreate(H5P_DATASET_XFER);
        if (o->size > 1) H5Pset_dxpl_mpio(dx, H5FD_MPIO_COLLECTIVE);
        r = H5Dwrite(d, t, ms, fs, dx, n ? value : " ");
        H5Pclose(dx);
        H5Sclose(fs);
        H5Sclose(ms);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Tclose(t);
    if (r < 0) return fmr_error(FMR_ERR_IO, "%s: cannot write dataset '%s'", o->path, name);
    return FMR_OK;
}

typedef struct {
    const size_t *lead;
    int nlead;
    size_t i;
} block_key;

static int cmp_block(const void *a, const void *b)
{
    const block_key *x = a, *y = b;
    for (int k = 0; k < x->nlead; k++) {
        size_t u = x->lead[x->i * x->nlead + k], v = y->lead[y->i * y->nlead + k];
        if (u != v) return u < v ? -1 : 1;
    }
    return 0;
}

/* Local part of a block write: selection and (if needed) a copy of the blocks in file order,
 * because HDF5 maps a union of hyperslabs onto memory in file order. */
static fmr_err prepare(fmr_h5out *o, out_dset *d, size_t nb, int nlead, const size_t *lead,
                       const void *data, hid_t fs, const void **buf, void **owned)
{
    *buf = data;
    *owned = NULL;
    if (nlead < 1 || nlead >= d->ndim)
        return fmr_error(FMR_ERR_ARG, "%s: '%s' blocks need 1..%d leading indices, got %d", o->path,
                         d->name, d->ndim - 1, nlead);
    if (nb == 0) {
        H5Sselect_none(fs);
        return FMR_OK;
    }
    size_t bsize = 1;
    for (int k = nlead; k < d->ndim; k++)
        bsize *= d->dims[k];
    block_key *keys = malloc(nb * sizeof *keys);
    if (!keys) return fmr_error(FMR_ERR_NOMEM, "cannot allocate block list");
    int sorted = 1;
    for (size_t i = 0; i < nb; i++) {
        keys[i] = (block_key){lead, nlead, i};
        for (int k = 0; k < nlead; k++)
            if (lead[i * nlead + k] >= d->dims[k]) {
                free(keys);
                return fmr_error(FMR_ERR_ARG, "%s: block index %zu out of range in '%s' axis %d",
                                 o->path, lead[i * nlead + k], d->name, k);
            }
        if (i && cmp_block(&keys[i - 1], &keys[i]) >= 0) sorted = 0;
    }
    if (!sorted) qsort(keys, nb, sizeof *keys, cmp_block);
    for (size_t i = 1; i < nb; i++)
        if (cmp_block(&keys[i - 1], &keys[i]) == 0) {
            free(keys);
            return fmr_error(FMR_ERR_ARG, "%s: block written twice to '%s'", o->path, d->name);
        }
    size_t es = fmr_dtype_size(d->dtype);
    if (!sorted) {
        char *copy = malloc(nb * bsize * es);
        if (!copy) {
            free(keys);
            return fmr_error(FMR_ERR_NOMEM, "cannot allocate write buffer");
        }
        for (size_t j = 0; j < nb; j++)
            memcpy(copy + j * bsize * es, (const char *)data + keys[j].i * bsize * es, bsize * es);
        *buf = copy;
        *owned = copy;
    }
    hsize_t start[FMR_MAX_DIMS] = {0}, count[FMR_MAX_DIMS];
    for (int k = 0; k < d->ndim; k++)
        count[k] = k < nlead ? 1 : d->dims[k];
    H5Sselect_none(fs);
    for (size_t j = 0; j < nb; j++) {
        for (int k = 0; k < nlead; k++)
            start[k] = lead[keys[j].i * nlead + k];
        H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
    }
    free(keys);
    return FMR_OK;
}

static _Thread_local char write_why_[256]; /* HDF5's reason for the last failed H5Dwrite */

/* MPI-IO reports a failed write without errno ("can't write data"); the output's file system then
 * tells whether it is full or read-only, so the message can say so as the one-rank path does. */
static const char *io_reason(const fmr_h5out *o, const char *why)
{
    if (strstr(why, strerror(ENOSPC)) || strstr(why, strerror(EROFS)) || strstr(why, strerror(EDQUOT)))
        return why;
    struct statvfs vfs;
    if (statvfs(o->tmp, &vfs) == 0) {
        if (vfs.f_flag & ST_RDONLY) return strerror(EROFS);
        if ((double)vfs.f_bavail * (double)vfs.f_frsize < 1048576.0) return strerror(ENOSPC);
    }
    return why;
}

/* The collective (or, on one rank, plain; or independent) H5Dwrite shared by every write path. */
static herr_t write_sel_mode(fmr_h5out *o, out_dset *d, hid_t ms, hid_t fs, const void *buf,
                             int independent)
{
    hid_t dx = H5Pcreate(H5P_DATASET_XFER);
    if (o->size > 1)
        H5Pset_dxpl_mpio(dx, independent ? H5FD_MPIO_INDEPENDENT : H5FD_MPIO_COLLECTIVE);
    hid_t mt = mem_type(d->dtype);
    static const char dummy[16]; /* ranks writing nothing still pass a valid pointer */
    herr_t r = H5Dwrite(d->id, mt, ms, fs, dx, buf ? buf : (const void *)dummy);
    /* now, before the next HDF5 call clears the error stack */
    if (r < 0) snprintf(write_why_, sizeof write_why_, "%s", fmr_h5_reason());
    H5Tclose(mt);
    H5Pclose(dx);
    return r;
}

static herr_t write_sel(fmr_h5out *o, out_dset *d, hid_t ms, hid_t fs, const void *buf)
{
    return write_sel_mode(o, d, ms, fs, buf, 0);
}

static fmr_err write_blocks(fmr_h5out *o, const char *name, size_t nb, int nlead,
                            const size_t *lead, const void *data, int independent);

fmr_err fmr_h5out_write_blocks(fmr_h5out *o, const char *name, size_t nb, int nlead,
                               const size_t *lead, const void *data)
{
    return write_blocks(o, name, nb, nlead, lead, data, 0);
}

fmr_err fmr_h5out_write_blocks_independent(fmr_h5out *o, const char *name, size_t nb, int nlead,
                                           const size_t *lead, const void *data)
{
    if (nb == 0) return FMR_OK;
    return write_blocks(o, name, nb, nlead, lead, data, 1);
}

static fmr_err write_blocks(fmr_h5out *o, const char *name, size_t nb, int nlead,
                            const size_t *lead, const void *data, int independent)
{
    out_dset *d = find(o, name);
    if (!d) return fmr_error(FMR_ERR_ARG, "%s: no dataset '%s'", o->path, name);
    hid_t fs = H5Dget_space(d->id);
    const void *buf;
    void *owned;
    fmr_err err = prepare(o, d, nb, nlead, lead, data, fs, &buf, &owned);
    /* The write is collective: a rank whose blocks are bad still takes part, writing nothing. */
    if (err) H5Sselect_none(fs);
    hsize_t n = (hsize_t)H5Sget_select_npoints(fs);
    hid_t ms = H5Screate_simple(1, n ? &n : (hsize_t[]){1}, NULL);
    if (!n) H5Sselect_none(ms);
    herr_t r = write_sel_mode(o, d, ms, fs, n ? buf : NULL, independent);
    H5Sclose(ms);
    H5Sclose(fs);
    free(owned);
    if (!err && r < 0) {
        const char *why = io_reason(o, write_why_);
        err = fmr_error(FMR_ERR_IO, "%s: writing '%s' failed%s%s", o->path, name, *why ? ": " : "",
                        why);
    }
    return err;
}

fmr_err fmr_h5out_write_whole(fmr_h5out *o, const char *name, int mine, const void *data)
{
    out_dset *d = find(o, name);
    if (!d) return fmr_error(FMR_ERR_ARG, "%s: no dataset '%s'", o->path, name);
    hid_t fs = H5Dget_space(d->id), ms = H5Dget_space(d->id);
    if (!mine) {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    herr_t r = write_sel(o, d, ms, fs, mine ? data : NULL);
    H5Sclose(ms);
    H5Sclose(fs);
    if (r < 0) {
        const char *why = io_reason(o, write_why_);
        return fmr_error(FMR_ERR_IO, "%s: writing '%s' failed%s%s", o->path, name, *why ? ": " : "", why);
    }
    return FMR_OK;
}

fmr_err fmr_h5out_finish(fmr_h5out **op, fmr_err local)
{
    fmr_h5out *o = *op;
    *op = NULL;
    if (!o) return local;
    int bad = 0;
    char why[256] = "";
    /* HDF5 1.10 leaves a file whose H5Fclose failed (its final flush hit ENOSPC) half closed, and
     * crashes closing it again at MPI_Finalize. So the flush is tried first, while a failure is
     * still harmless; a doomed output is then truncated to nothing, which gives the closing flush
     * room, so every handle is closed exactly once and successfully. */
    fmr_err doomed = fmr_agree(o->comm, local);
    if (!doomed && H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) {
        bad = 1;
        snprintf(why, sizeof why, "%s", fmr_h5_reason());
    }
    if (!doomed) doomed = fmr_agree(o->comm, bad ? FMR_ERR_IO : FMR_OK);
    if (doomed) {
        if (o->rank == 0 && truncate(o->tmp, 0) != 0) bad = 1;
        MPI_Barrier(o->comm);
    }
    for (int i = 0; i < o->nd; i++) {
        if (o->d[i].id >= 0 && H5Dclose(o->d[i].id) < 0) bad = 1;
        o->d[i].id = H5I_INVALID_HID;
    }
    if (H5Fclose(o->file) < 0) {
        bad = 1;
        if (!*why) snprintf(why, sizeof why, "%s", fmr_h5_reason());
    }
    o->file = H5I_INVALID_HID;
    fmr_err err = local;
    if (!err && bad)
        err = fmr_error(FMR_ERR_IO, "%s: closing the output failed: %s", o->path,
                        *why ? io_reason(o, why) : "disk full or I/O error");
    fmr_err g = fmr_agree(o->comm, err);
    int renamed = 0;
    if (o->rank == 0) {
        if (!g && rename(o->tmp, o->path) == 0) {
            renamed = 1;
        } else {
            if (!g)
                err = fmr_error(FMR_ERR_IO, "%s: cannot rename the finished output into place: %s",
                                o->path, strerror(errno));
            unlink(o->tmp);
        }
    }
    MPI_Bcast(&renamed, 1, MPI_INT, 0, o->comm);
    if (!err && g) err = fmr_error(g, "%s: another rank failed; output removed", o->path);
    if (!err && !renamed)
        err = fmr_error(FMR_ERR_IO, "%s: rank 0 could not rename the output", o->path);
    destroy(o);
    return err;
}

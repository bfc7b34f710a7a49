/* Output safety: an output must not be any input (the same inode, also through hard or symbolic
 * links: `recon in.h5 -o in.h5` would replace the k-space by its reconstruction) and must be a
 * regular file or not exist (renaming the finished output over /dev/null or a device node would
 * replace the node itself). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fmrecon/io.h"
#include "io/outcheck.h"

#define MAX_INPUTS 256

typedef struct {
    dev_t dev;
    ino_t ino;
    char *path;
} input_file;

static input_file inputs_[MAX_INPUTS];
static int ninputs_;
static pthread_mutex_t lock_ = PTHREAD_MUTEX_INITIALIZER;

void fmr_input_register(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0) return;
    pthread_mutex_lock(&lock_);
    int known = 0;
    for (int i = 0; i < ninputs_; i++)
        if (inputs_[i].dev == st.st_dev && inputs_[i].ino == st.st_ino) known = 1;
    if (!known && ninputs_ < MAX_INPUTS) {
        char *p = strdup(path);
        if (p) inputs_[ninputs_++] = (input_file){st.st_dev, st.st_ino, p};
    }
    pthread_mutex_unlock(&lock_);
}

fmr_err fmr_output_check(const char *path, const char *const *inputs, size_t n)
{
    if (!path || !*path) return fmr_error(FMR_ERR_ARG, "empty output file name");
    struct stat st;
    if (stat(path, &st) != 0) return FMR_OK; /* a new file (or a dangling link, replaced) */
    if (S_ISDIR(st.st_mode)) return fmr_error(FMR_ERR_IO, "%s: output is a directory", path);
    if (!S_ISREG(st.st_mode))
        return fmr_error(FMR_ERR_IO,
                         "%s: output is not a regular file (a device, pipe or socket); refused, "
                         "fmrecon would replace it",
                         path);
    for (size_t i = 0; i < n; i++) {
        struct stat si;
        if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == st.st_dev && si.st_ino == st.st_ino)
            return fmr_error(FMR_ERR_ARG,
                             "%s: output is the input file %s (same file, perhaps through a link); "
                             "refused, writing it would destroy the input",
                             path, inputs[i]);
    }
    fmr_err err = FMR_OK;
    pthread_mutex_lock(&lock_);
    for (int i = 0; i < ninputs_ && !err; i++)
        if (inputs_[i].dev == st.st_dev && inputs_[i].ino == st.st_ino)
            err = fmr_error(FMR_ERR_ARG,
                            "%s: output is the input file %s (same file, perhaps through a link); "
                            "refused, writing it would destroy the input",
                            path, inputs_[i].path);
    pthread_mutex_unlock(&lock_);
    return err;
}

/* File-system helpers of the core layer, shared by the library and the command-line tool. */
#ifndef FMRECON_FILES_H
#define FMRECON_FILES_H

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

/* mkdir -p (mode 0755): creates path and its missing parents. Returns 0, or the errno of the
 * step that failed (ENAMETOOLONG, ENOTDIR when path exists and is not a folder). */
int fmr_mkdirs(const char *path);

/* SHA-256 of a whole file as 64 lowercase hex digits and a NUL (OpenSSL). */
fmr_err fmr_sha256_file(const char *path, char hex[65]);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

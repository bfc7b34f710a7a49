/* Symbol visibility of the public API. libfmrecon is compiled with -fvisibility=hidden, so only
 * what a public header declares is exported from the shared library: every public header includes
 * this file and wraps its declarations in FMR_API_BEGIN ... FMR_API_END (a new declaration added
 * there is exported without further marking; a new public header needs the two lines, and the
 * ctest test symbols_public_only names any symbol that escapes or is missing the fmr_ prefix).
 * FMR_EXTERN marks a single declaration, for use outside such a block. */
#ifndef FMRECON_VISIBILITY_H
#define FMRECON_VISIBILITY_H

#if defined(__GNUC__) /* GCC, clang and the compilers built on them (icx, Cray CC) */
#define FMR_EXTERN __attribute__((visibility("default")))
#define FMR_API_BEGIN _Pragma("GCC visibility push(default)")
#define FMR_API_END _Pragma("GCC visibility pop")
#else
#define FMR_EXTERN
#define FMR_API_BEGIN
#define FMR_API_END
#endif

#endif

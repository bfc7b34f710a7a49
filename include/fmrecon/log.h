/* Messages to stderr and progress reporting for long runs. Only rank 0 of the world prints
 * (fmr_log_set_rank), so an mpirun of 64 ranks still gives one readable log. */
#ifndef FMRECON_LOG_H
#define FMRECON_LOG_H

#include <stddef.h>

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

enum { FMR_LOG_QUIET = 0, FMR_LOG_NORMAL = 1, FMR_LOG_VERBOSE = 2 };

void fmr_log_set_level(int level);
int fmr_log_get_level(void);
void fmr_log_set_rank(int rank);

void fmr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fmr_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed whatever the level (but still only on rank 0 of the world). */
void fmr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic wall-clock seconds. */
double fmr_wtime(void);

typedef struct fmr_progress fmr_progress;

/* "label: done/total unit (pct) elapsed … ETA …" on stderr, at most every second (0.2 s on a
 * terminal, updated in place), and a final line. Silent at FMR_LOG_QUIET. */
fmr_err fmr_progress_create(fmr_progress **p, const char *label, const char *unit, size_t total);
void fmr_progress_step(fmr_progress *p, size_t n);
void fmr_progress_finish(fmr_progress **p);
/* Ends without the final line (the run failed; the error says why). */
void fmr_progress_cancel(fmr_progress **p);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif

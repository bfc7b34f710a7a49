#include "fmrecon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int level_ = FMR_LOG_NORMAL;
static int rank_ = 0;

void fmr_log_set_level(int level)
{
    level_ = level;
}

int fmr_log_get_level(void)
{
    return level_;
}

void fmr_log_set_rank(int rank)
{
    rank_ = rank;
}

static void vlog(int min_level, const char *prefix, const char *fmt, va_list ap)
{
    if (rank_ != 0 || level_ < min_level) return;
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void fmr_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(FMR_LOG_NORMAL, "", fmt, ap);
    va_end(ap);
}

void fmr_verbose(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(FMR_LOG_VERBOSE, "", fmt, ap);
    va_end(ap);
}

void fmr_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(FMR_LOG_QUIET, "fmrecon: warning: ", fmt, ap);
    va_end(ap);
}

double fmr_wtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct fmr_progress {
    char label[64], unit[32];
    size_t total, done;
    double t0, last;
    int tty, active;
};

fmr_err fmr_progress_create(fmr_progress **p, const char *label, const char *unit, size_t total)
{
    fmr_progress *r = calloc(1, sizeof *r);
    if (!r) return fmr_error(FMR_ERR_NOMEM, "cannot allocate progress reporter");
    snprintf(r->label, sizeof r->label, "%s", label);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->total = total;
    r->t0 = r->last = fmr_wtime();
    r->tty = isatty(STDERR_FILENO);
    r->active = rank_ == 0 && level_ >= FMR_LOG_NORMAL;
    *p = r;
    return FMR_OK;
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void show(fmr_progress *p, int final)
{
    double now = fmr_wtime(), el = now - p->t0;
    char elapsed[32], eta[32] = "--:--";
    fmt_time(elapsed, sizeof elapsed, el);
    if (p->done > 0 && p->done < p->total)
        fmt_time(eta, sizeof eta, el / (double)p->done * (double)(p->total - p->done));
    else if (p->done >= p->total)
        snprintf(eta, sizeof eta, "00:00");
    double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
    fprintf(stderr, "%s%s: %zu/%zu %s (%.0f%%), elapsed %s, ETA %s%s", p->tty ? "\r" : "", p->label,
            p->done, p->total, p->unit, pct, elapsed, eta, (final || !p->tty) ? "\n" : "");
    fflush(stderr);
    p->last = now;
}

void fmr_progress_step(fmr_progress *p, size_t n)
{
    if (!p) return;
    p->done += n;
    if (!p->active) return;
    double now = fmr_wtime();
    if (now - p->last >= (p->tty ? 0.2 : 1.0) && p->done < p->total) show(p, 0);
}

void fmr_progress_finish(fmr_progress **p)
{
    if (!p || !*p) return;
    if ((*p)->active) show(*p, 1);
    free(*p);
    *p = NULL;
}

void fmr_progress_cancel(fmr_progress **p)
{
    if (!p || !*p) return;
    if ((*p)->active && (*p)->tty) fputc('\n', stderr);
    free(*p);
    *p = NULL;
}

/* Cohort markers (what a finished subject certifies) and the summary rebuilt from them. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cohort.h"
#include "fmrecon/files.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"

fmr_err cohort_write_atomic(const char *path, const char *text)
{
    char *tmp = cohort_strf("%s.tmp-%d", path, (int)getpid());
    if (!tmp) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        fmr_err e = fmr_error(FMR_ERR_IO, "%s: cannot write (%s)", path, strerror(errno));
        free(tmp);
        return e;
    }
    /* write + fsync + close all checked: a full disk shows up here, not as a short file later */
    size_t len = strlen(text), off = 0;
    int err = 0;
    while (off < len && !err) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR) err = errno;
        if (w > 0) off += (size_t)w;
    }
    if (!err && fsync(fd) != 0 && errno != EINVAL) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        return fmr_error(FMR_ERR_IO, "%s: cannot write (%s)", path, strerror(err));
    }
    free(tmp);
    return FMR_OK;
}

cJSON *cohort_marker_read(const cohort_manifest *m, const cohort_subject *s)
{
    char *p = cohort_strf("%s/markers/%s.json", m->out, s->id);
    if (!p) return NULL;
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    free(p);
    if (fd < 0) return NULL;
    struct stat st;
    cJSON *j = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (1 << 24)) {
        char *buf = malloc((size_t)st.st_size + 1);
        ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
        if (n == st.st_size) {
            buf[n] = 0;
            j = cJSON_Parse(buf);
        }
        free(buf);
    }
    close(fd);
    if (j && !cJSON_IsObject(j)) cJSON_Delete(j), j = NULL;
    return j;
}

int cohort_marker_certifies(const cohort_manifest *m, const cohort_subject *s, const cJSON *mk, const char *input_sha256,
                            const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    *why = "no marker";
    if (!mk) return 0;
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(mk, "bytes"), *sh = cJSON_GetObjectItemCaseSensitive(mk, "sha256"),
                *set = cJSON_GetObjectItemCaseSensitive(mk, "settings"),
                *ish = cJSON_GetObjectItemCaseSensitive(mk, "input_sha256");
    if (!cJSON_IsNumber(sz) || !cJSON_IsString(sh) || !cJSON_IsString(ish)) return *why = "marker unreadable", 0;
    if (!set || !cJSON_Compare(set, m->settings, 1)) return *why = "other settings", 0;
    if (input_sha256 && strcmp(input_sha256, ish->valuestring)) return *why = "other input", 0;
    char *out = cohort_strf("%s/%s.h5", m->out, s->id);
    struct stat st;
    char hex[65];
    int ok = out && lstat(out, &st) == 0 && S_ISREG(st.st_mode) && (double)st.st_size == sz->valuedouble &&
             fmr_sha256_file(out, hex) == FMR_OK && !strcmp(hex, sh->valuestring);
    fmr_error_clear();
    free(out);
    if (!ok) *why = "output missing or changed";
    return ok;
}

static void text_of(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsArray(v)) {
        size_t len = 0;
        buf[0] = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsString(e) && len < cap) len +=
            (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", e->valuestring);
        if (!len) snprintf(buf, cap, "(none)");
        return;
    }
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, cap, "%s", t ? t : "(none)");
    free(t);
}

char *cohort_settings_diff(const cJSON *old_settings, const cJSON *now, const char *old_input_sha, const char *now_input_sha)
{
    char line[2048] = "";
    size_t len = 0;
    if (!old_settings) {
        return strdup("made by an fmrecon that did not record its settings");
    }
    const char *fields[] = {"undersample", "recon", "evaluate", "files", "fmrecon_version"};
    for (int i = 0; i < 5; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(old_settings, fields[i]),
                    *b = cJSON_GetObjectItemCaseSensitive(now, fields[i]);
        if (a && b && cJSON_Compare(a, b, 1)) continue;
        char ta[512], tb[512];
        text_of(a, ta, sizeof ta);
        text_of(b, tb, sizeof tb);
        if (!strcmp(fields[i], "files")) snprintf(ta, sizeof ta, "other"), snprintf(tb, sizeof tb, "hashes");
        len += (size_t)snprintf(line + len, len < sizeof line ? sizeof line - len : 0, "%s%s '%s' -> '%s'", len ? "; " : "",
                                fields[i], ta, tb);
    }
    if (old_input_sha && now_input_sha && strcmp(old_input_sha, now_input_sha) && len < sizeof line)
        len += (size_t)snprintf(line + len, sizeof line - len, "%sinput changed (SHA-256 %.12s... -> %.12s...)",
                                len ? "; " : "", old_input_sha, now_input_sha);
    return len ? strdup(line) : NULL;
}

int cohort_subject_busy(const cohort_manifest *m, const cohort_subject *s)
{
    char *p = cohort_strf("%s/locks/%s.lock", m->out, s->id);
    int fd = p ? open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    free(p);
    if (fd < 0) return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}

/* ---- the summary */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom) return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s, b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* RFC 4180: a field with a comma, quote, CR or LF (or edge spaces) is quoted, quotes doubled. */
static void csv_field(sbuf *b, const char *v, int last)
{
    int quote = v[0] == ' ' || (v[0] && v[strlen(v) - 1] == ' ');
    for (const char *c = v; *c && !quote; c++) quote = *c == ',' || *c == '"' || *c == '\n' || *c == '\r';
    if (!quote) {
        sb_add(b, "%s", v);
    } else {
        sb_add(b, "\"");
        for (const char *c = v; *c; c++) sb_add(b, *c == '"' ? "\"\"" : "%c", *c);
        sb_add(b, "\"");
    }
    sb_add(b, last ? "\n" : ",");
}

static void md_cell(sbuf *b, const char *v)
{
    sb_add(b, " ");
    for (const char *c = v; *c; c++) {
        if (*c == '|') sb_add(b, "\\|");
        else if (*c == '\n' || *c == '\r') sb_add(b, " ");
        else sb_add(b, "%c", *c);
    }
    sb_add(b, " |");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default (linear interpolation between order statistics) */
static double quantile(const double *sorted, size_t n, double p)
{
    double pos = p * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (pos - (double)lo) * (sorted[hi] - sorted[lo]);
}

enum { NMET = 6 };
static const char *const metric_keys[NMET] = {"psnr", "ssim", "nmse", "effective_R", "recon_s", "total_s"};

static void fmt_num(char *buf, size_t cap, double v)
{
    if (isnan(v)) buf[0] = 0;
    else snprintf(buf, cap, "%.6g", v);
}

fmr_err cohort_write_summary(const cohort_manifest *m)
{
    char *lockp = cohort_strf("%s/markers/summary.lock", m->out);
    int fd = lockp ? open(lockp, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644) : -1;
    free(lockp);
    if (fd >= 0) flock(fd, LOCK_EX);
    double *vals = calloc(m->n * NMET + 1, sizeof *vals);
    size_t nval[NMET] = {0};
    sbuf csv = {0}, md = {0};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", m->name);
    cJSON_AddStringToObject(root, "method", m->method);
    cJSON_AddStringToObject(root, "mask", m->mask ? m->mask : "as acquired");
    if (m->nominal_r > 0) cJSON_AddNumberToObject(root, "nominal_R", m->nominal_r);
    else cJSON_AddNullToObject(root, "nominal_R");
    cJSON_AddStringToObject(root, "crop", m->do_eval ? m->crop_name : "not evaluated");
    cJSON_AddStringToObject(root, "paths", "relative to this folder");
    cJSON *arr = cJSON_AddArrayToObject(root, "subjects");
    char nom[32] = "";
    if (m->nominal_r > 0) snprintf(nom, sizeof nom, "%g", m->nominal_r);
    const char *maskname = m->mask ? m->mask : "as acquired", *crop = m->do_eval ? m->crop_name : "not evaluated";
    sb_add(&csv, "id,status,psnr,ssim,nmse,recon_s,total_s,output,method,mask,nominal_R,effective_R,crop,input\n");
    sb_add(&md, "# Cohort %s\n\nmethod %s, mask %s, nominal R %s, crop rule %s; effective R = acquired / sampled "
                "phase-encode lines of the data reconstructed.\n\n",
           m->name, m->method, maskname, *nom ? nom : "(as acquired)", crop);
    sb_add(&md, "| id | status | PSNR dB | SSIM | NMSE | effective R | recon s | output |\n|---|---|---|---|---|---|---|---|\n");
    size_t count[5] = {0}; /* done, failed, changed, running, pending */
    for (size_t i = 0; i < m->n && vals; i++) {
        const cohort_subject *s = &m->subs[i];
        cJSON *mk = cohort_marker_read(m, s), *e = cJSON_CreateObject();
        const char *status;
        const char *why = NULL;
        if (cohort_marker_certifies(m, s, mk, NULL, &why)) {
            status = "done", count[0]++;
        } else {
            char *failed = cohort_strf("%s/markers/%s.failed", m->out, s->id);
            if (cohort_subject_busy(m, s)) status = "running", count[3]++;
            else if (failed && access(failed, F_OK) == 0) status = "failed", count[1]++;
            else if (mk && !strcmp(why, "other settings")) status = "changed", count[2]++;
            else status = "pending", count[4]++;
            free(failed);
        }
        const int done = !strcmp(status, "done");
        cJSON_AddStringToObject(e, "id", s->id);
        cJSON_AddStringToObject(e, "status", status);
        double v[NMET];
        char txt[NMET][32];
        for (int k = 0; k < NMET; k++) {
            const cJSON *x = done ? cJSON_GetObjectItemCaseSensitive(mk, metric_keys[k]) : NULL;
            v[k] = cJSON_IsNumber(x) && isfinite(x->valuedouble) ? x->valuedouble : NAN;
            if (!isnan(v[k])) cJSON_AddNumberToObject(e, metric_keys[k], v[k]), vals[k * m->n + nval[k]++] = v[k];
            fmt_num(txt[k], sizeof txt[k], v[k]);
        }
        char *rel = done ? cohort_strf("%s.h5", s->id) : NULL;
        if (rel) cJSON_AddStringToObject(e, "output", rel);
        cJSON_AddStringToObject(e, "input", s->input);
        if (!strcmp(status, "failed")) {
            char *fp = cohort_strf("markers/%s.failed", s->id);
            if (fp) cJSON_AddStringToObject(e, "error", fp);
            free(fp);
        }
        cJSON_AddItemToArray(arr, e);
        /* id,status,psnr,ssim,nmse,recon_s,total_s,output,method,mask,nominal_R,effective_R,crop,input */
        const char *row[] = {s->id,  status, txt[0], txt[1], txt[2],  txt[4], txt[5],
                             rel ? rel : "", m->method, maskname, nom, txt[3], crop, s->input};
        for (int k = 0; k < 14; k++) csv_field(&csv, row[k], k == 13);
        sb_add(&md, "|");
        const char *mrow[] = {s->id, status, txt[0], txt[1], txt[2], txt[3], txt[4], rel ? rel : ""};
        for (int k = 0; k < 8; k++) md_cell(&md, mrow[k]);
        sb_add(&md, "\n");
        free(rel);
        cJSON_Delete(mk);
    }
    /* the cohort's mean, median and IQR per metric, over the done subjects that have it */
    sbuf st = {0};
    sb_add(&st, "metric,n,mean,median,q1,q3,iqr\n");
    cJSON *co = cJSON_AddObjectToObject(root, "cohort");
    sb_add(&md, "\n| metric | n | mean | median | IQR (q1 - q3) |\n|---|---|---|---|---|\n");
    for (int k = 0; k < NMET && vals; k++) {
        const size_t n = nval[k];
        double *x = vals + k * m->n;
        cJSON *o = cJSON_AddObjectToObject(co, metric_keys[k]);
        cJSON_AddNumberToObject(o, "n", (double)n);
        if (!n) {
            sb_add(&st, "%s,0,,,,,\n", metric_keys[k]);
            continue;
        }
        qsort(x, n, sizeof *x, cmp_double);
        double mean = 0;
        for (size_t i = 0; i < n; i++) mean += x[i];
        mean /= (double)n;
        const double med = quantile(x, n, 0.5), q1 = quantile(x, n, 0.25), q3 = quantile(x, n, 0.75);
        cJSON_AddNumberToObject(o, "mean", mean);
        cJSON_AddNumberToObject(o, "median", med);
        cJSON_AddNumberToObject(o, "q1", q1);
        cJSON_AddNumberToObject(o, "q3", q3);
        cJSON_AddNumberToObject(o, "iqr", q3 - q1);
        sb_add(&st, "%s,%zu,%.9g,%.9g,%.9g,%.9g,%.9g\n", metric_keys[k], n, mean, med, q1, q3, q3 - q1);
        sb_add(&md, "| %s | %zu | %.6g | %.6g | %.6g (%.6g - %.6g) |\n", metric_keys[k], n, mean, med, q3 - q1, q1, q3);
    }
    cJSON_AddNumberToObject(root, "total", (double)m->n);
    cJSON_AddNumberToObject(root, "done", (double)count[0]);
    cJSON_AddNumberToObject(root, "failed", (double)count[1]);
    cJSON_AddNumberToObject(root, "changed", (double)count[2]);
    cJSON_AddNumberToObject(root, "running", (double)count[3]);
    cJSON_AddNumberToObject(root, "pending", (double)(count[2] + count[3] + count[4]));
    sb_add(&md, "\n%zu subjects: %zu done, %zu failed, %zu pending (of which %zu with other settings, %zu running).\n", m->n,
           count[0], count[1], count[2] + count[3] + count[4], count[2], count[3]);
    char *js = cJSON_Print(root);
    fmr_err err = FMR_OK;
    if (!vals || !js || csv.oom || md.oom || st.oom || !csv.s || !md.s || !st.s) {
        err = fmr_error(FMR_ERR_NOMEM, "out of memory (summary)");
    } else {
        const char *names[4] = {"summary.csv", "summary.json", "summary.md", "summary_stats.csv"};
        const char *texts[4] = {csv.s, js, md.s, st.s};
        for (int k = 0; k < 4 && !err; k++) {
            char *p = cohort_strf("%s/%s", m->out, names[k]);
            err = p ? cohort_write_atomic(p, texts[k]) : fmr_error(FMR_ERR_NOMEM, "out of memory");
            free(p);
        }
    }
    free(js);
    free(csv.s);
    free(md.s);
    free(st.s);
    free(vals);
    cJSON_Delete(root);
    if (fd >= 0) flock(fd, LOCK_UN), close(fd);
    return err;
}

/* fmrecon cohort MANIFEST: a whole retrospective cohort, resumable, preemption-safe and exact.
 * A subject is done only when its marker certifies the current settings (options, evaluation
 * rules, bundle/weight hashes, fmrecon version), the input's SHA-256 and the output's size and
 * SHA-256. A subject is worked on only under its lock (OUT/locks/ID.lock, flock), so concurrent
 * runs on one manifest never do a subject twice nor remove each other's files. Inside a SLURM job
 * array each task takes its shard from the array variables. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cohort.h"
#include "fmrecon/files.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/mask.h"
#include "fmrecon/metrics.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"

static const char *help =
    "usage: fmrecon cohort MANIFEST.json [--shard i/n] [--redo-changed] [--summary-only] [-q]\n\n"
    "Reconstructs every subject a manifest lists (format and schema: docs/cohorts.md; examples in\n"
    "jobs/; relative paths are relative to the manifest's folder), with all ranks of the job on\n"
    "each subject. The manifest is checked completely first: an unknown key or option is an error\n"
    "naming the nearest valid one; OUT/manifest.effective.json records it after defaults.\n"
    "Exact: a subject is done when its marker (OUT/markers/ID.json) certifies the input's SHA-256,\n"
    "the settings (undersample, recon and evaluate options, bundle and weight hashes, fmrecon\n"
    "version) and the output's size and SHA-256. Reruns skip done subjects and redo partial ones;\n"
    "subjects done with other settings stop the run before anything is done (--redo-changed redoes\n"
    "them). Each subject is done under a lock (OUT/locks/ID.lock): concurrent runs on one manifest\n"
    "share the work. Temporary files of killed runs are removed by the next run.\n"
    "Shards: --shard i/n, or inside a SLURM job array (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)\n"
    "of SLURM_ARRAY_TASK_COUNT; subject k belongs to shard k mod n. On SIGTERM, SIGUSR1, SIGINT or\n"
    "SIGHUP the current subject is finished, the state and summary written and fmrecon exits with\n"
    "status 3 (work remains: the job script may `scontrol requeue`); a second SIGINT stops at once.\n"
    "Writes OUT/summary.csv, summary.json, summary.md (per subject: status, method, mask, nominal\n"
    "and effective R, crop rule, PSNR, SSIM, NMSE, timings, output relative to OUT) and\n"
    "OUT/summary_stats.csv (mean, median, IQR per metric), and per-subject logs OUT/logs/ID.log.\n\n"
    "  --shard i/n       this process's shard (overrides the SLURM array variables)\n"
    "  --redo-changed    redo subjects whose markers certify other settings or another input\n"
    "  --summary-only    only rewrite the summary from the markers\n"
    "  -q, --quiet       no progress\n"
    "  -h, --help        this text\n";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    /* a second Ctrl-C means "now": the default action (a rerun cleans what is left) */
    if (sig == SIGINT && stop_requested) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    stop_requested = sig;
}

/* Rank 0 decided err; every rank returns the same error and text (main prints it once). */
static fmr_err bcast_error(fmr_cli *cli, fmr_err err)
{
    int code = (int)err;
    MPI_Bcast(&code, 1, MPI_INT, 0, cli->comm);
    if (!code) return FMR_OK;
    char msg[4096] = "";
    if (cli->rank == 0) snprintf(msg, sizeof msg, "%s", fmr_error_message());
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, cli->comm);
    return fmr_error((fmr_err)code, "%s", msg);
}

/* Runs a CLI command with argv built from fixed words and normalised options. */
static fmr_err run_cmd(fmr_cli *cli, fmr_cmd_fn fn, const char *const *words, int nw, const cohort_opts *extra)
{
    char **argv = calloc((size_t)nw + (size_t)extra->n + 1, sizeof *argv);
    if (!argv) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    int argc = 0;
    for (int i = 0; i < nw; i++) argv[argc++] = (char *)words[i];
    for (int i = 0; i < extra->n; i++) argv[argc++] = extra->v[i];
    optind = 0; /* getopt: a fresh parse */
    const int level = fmr_log_get_level(); /* a sub-command's -q must not silence the cohort */
    fmr_err err = fn(cli, argc, argv);
    fmr_log_set_level(level);
    free(argv);
    return err;
}

static void log_line(const char *logpath, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *logpath, const char *fmt, ...)
{
    int fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return;
    }
    time_t t = time(NULL);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    fprintf(f, "%s ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* ---- locks and leftovers */
static int lock_subject(const cohort_manifest *m, const cohort_subject *s, int *busy)
{
    *busy = 0;
    char *p = cohort_strf("%s/locks/%s.lock", m->out, s->id);
    /* read-only descriptor: flock does not need write access, and an open-for-writing file
     * would keep the file system from being remounted read-only */
    int fd = p ? open(p, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644) : -1;
    if (fd < 0) {
        fmr_error(FMR_ERR_IO, "%s: cannot create the subject's lock (%s)", p ? p : s->id, strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) *busy = 1;
        else fmr_error(FMR_ERR_IO, "%s: cannot lock subject (%s)", s->id, strerror(e));
        return -1;
    }
    return fd;
}

static void unlock_subject(int fd)
{
    if (fd >= 0) flock(fd, LOCK_UN), close(fd);
}

/* A temporary name left by a writer: NAME.fmr-partial-PID (fmr_h5out) or NAME.tmp-PID (markers,
 * summary, state). Returns the pid and the length of NAME, or 0. */
static long temp_pid(const char *name, size_t *stem)
{
    const char *tags[] = {".fmr-partial-", ".tmp-"};
    for (int t = 0; t < 2; t++) {
        const char *q = strstr(name, tags[t]);
        for (; q; q = strstr(q + 1, tags[t])) {
            const char *d = q + strlen(tags[t]);
            char *end;
            long pid = strtol(d, &end, 10);
            if (end != d && !*end && pid > 0) {
                *stem = (size_t)(q - name);
                return pid;
            }
        }
    }
    return 0;
}

static int pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static const cohort_subject *subject_of(const cohort_manifest *m, const char *name, size_t stem, const char *dir)
{
    /* OUT/ID.h5, OUT/work/ID_input.h5, OUT/markers/ID.json, OUT/markers/ID.failed */
    static const char *suffix[] = {".h5", "_input.h5", ".json", ".failed"};
    for (int k = 0; k < 4; k++) {
        size_t sl = strlen(suffix[k]);
        if (stem <= sl || strncmp(name + stem - sl, suffix[k], sl)) continue;
        if ((k == 1) != !strcmp(dir, "work") || (k >= 2) != !strcmp(dir, "markers")) continue;
        for (size_t i = 0; i < m->n; i++)
            if (strlen(m->subs[i].id) == stem - sl && !strncmp(m->subs[i].id, name, stem - sl)) return &m->subs[i];
    }
    return NULL;
}

/* Removes temporary files of writers that are gone: a subject's only while its lock is free (no
 * live run works on it) and the writer's pid is not alive here; others (summary, state) when the
 * pid is not alive. Returns the number removed; warns about what cannot be removed. */
static size_t sweep_leftovers(const cohort_manifest *m)
{
    static const char *dirs[] = {"", "work", "markers"};
    size_t removed = 0;
    for (int d = 0; d < 3; d++) {
        char *dp = cohort_strf("%s%s%s", m->out, *dirs[d] ? "/" : "", dirs[d]);
        DIR *dir = dp ? opendir(dp) : NULL;
        for (struct dirent *e; dir && (e = readdir(dir));) {
            size_t stem = 0;
            long pid = temp_pid(e->d_name, &stem);
            if (!pid || pid == (long)getpid()) continue;
            const cohort_subject *s = subject_of(m, e->d_name, stem, dirs[d]);
            int fd = -1, busy = 0;
            if (s && (fd = lock_subject(m, s, &busy)) < 0) {
                fmr_error_clear();
                continue; /* a live run is on it (or the folder is read-only) */
            }
            if (!pid_alive(pid)) {
                char *p = cohort_strf("%s/%s", dp, e->d_name);
                if (p && unlink(p) == 0) removed++;
                else if (p) fmr_warn("cohort: cannot remove the leftover %s (%s)", p, strerror(errno));
                free(p);
            }
            unlock_subject(fd);
        }
        if (dir) closedir(dir);
        free(dp);
    }
    return removed;
}

/* ---- one subject */
static double effective_r(const cohort_manifest *m, const char *input)
{
    fmr_open_options oo = {.variable = m->variable, .mask_file = m->mask_file, .mask_variable = m->mask_variable};
    fmr_dataset *ds = NULL;
    double r = NAN;
    if (fmr_dataset_open(input, &oo, &ds) == FMR_OK) {
        const fmr_dataset_info *in = fmr_dataset_get_info(ds);
        float *mask = malloc(in->w * sizeof *mask);
        size_t acq = 0, smp = 0;
        for (size_t t = 0; mask && t < in->frames; t++) {
            if (fmr_dataset_read_mask(ds, t, mask) != FMR_OK) break;
            fmr_mask_stats st;
            fmr_mask_describe(mask, in->w, in->pad_left, in->pad_right, &st);
            acq += st.acquired, smp += st.sampled;
        }
        if (smp) r = (double)acq / (double)smp;
        free(mask);
        fmr_dataset_close(&ds);
    }
    fmr_error_clear();
    return r;
}

/* A file we are about to write through must not be a symlink (it would write outside OUT). */
static fmr_err no_symlink(const char *p)
{
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
        return fmr_error(FMR_ERR_IO, "%s: is a symbolic link (refusing to write outside the output folder)", p);
    return FMR_OK;
}

/* (undersample), recon, (evaluate), then the marker. Collective over the job; rank 0 holds the
 * subject's lock. A configuration error (FMR_ERR_ARG from a step, e.g. undersampling data that
 * is already undersampled) is returned as such: it would repeat for every subject. */
static fmr_err do_subject(fmr_cli *cli, const cohort_manifest *m, const cohort_subject *s)
{
    char *output = cohort_strf("%s/%s.h5", m->out, s->id), *marker = cohort_strf("%s/markers/%s.json", m->out, s->id),
         *failed = cohort_strf("%s/markers/%s.failed", m->out, s->id), *logp = cohort_strf("%s/logs/%s.log", m->out, s->id),
         *work = cohort_strf("%s/work/%s_input.h5", m->out, s->id);
    fmr_err err = output && marker && failed && logp && work ? FMR_OK : fmr_error(FMR_ERR_NOMEM, "out of memory");
    if (cli->rank == 0 && !err) {
        const char *ps[] = {output, marker, failed, logp, work};
        for (int k = 0; k < 5 && !err; k++) err = no_symlink(ps[k]);
        if (!err && !s->have_sha) err = fmr_error(FMR_ERR_IO, "%s: subject %s's input is not a readable regular file", s->input, s->id);
        if (!err) unlink(marker), unlink(failed), unlink(output); /* partial or stale: redo */
    }
    err = bcast_error(cli, err);
    const double t0 = fmr_wtime();
    if (!err && cli->rank == 0)
        log_line(logp, "start %s (input %s, %d rank%s, pid %ld)", s->id, s->input, cli->size, cli->size > 1 ? "s" : "",
                 (long)getpid());
    const char *input = s->input;
    if (!err && m->has_undersample) {
        const char *w[] = {"undersample", s->input, "-o", work};
        if (cli->rank == 0) unlink(work);
        err = run_cmd(cli, fmr_cmd_undersample, w, 4, &m->undersample);
        input = work;
    }
    const double t1 = fmr_wtime();
    if (!err) {
        const char *w[] = {"recon", input, "-o", output};
        err = run_cmd(cli, fmr_cmd_recon, w, 4, &m->recon);
    }
    const double t2 = fmr_wtime();
    const int all = fmr_agree(cli->comm, err) == FMR_OK; /* every rank succeeded */
    if (!all && !err) err = fmr_error(FMR_ERR_MPI, "%s: another rank failed", s->id);
    if (cli->rank == 0) {
        fmr_volume_metrics vm = {0};
        int have_metrics = 0;
        if (!err && m->do_eval) {
            fmr_err e = fmr_eval_files(s->input, output, m->crop, &vm);
            if (e == FMR_OK) have_metrics = 1;
            else log_line(logp, "no evaluation: %s", fmr_error_message());
            fmr_error_clear();
        }
        if (!err) {
            char hex[65];
            struct stat st;
            fmr_err e = fmr_sha256_file(output, hex);
            if (!e && stat(output, &st) != 0) e = fmr_error(FMR_ERR_IO, "%s: vanished", output);
            if (!e) {
                const double er = effective_r(m, input);
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "id", s->id);
                cJSON_AddStringToObject(j, "input", s->input);
                cJSON_AddStringToObject(j, "input_sha256", s->input_sha256);
                char *rel = cohort_strf("%s.h5", s->id);
                cJSON_AddStringToObject(j, "output", rel ? rel : "");
                free(rel);
                cJSON_AddNumberToObject(j, "bytes", (double)st.st_size);
                cJSON_AddStringToObject(j, "sha256", hex);
                cJSON_AddItemToObject(j, "settings", cJSON_Duplicate(m->settings, 1));
                cJSON_AddStringToObject(j, "method", m->method);
                cJSON_AddStringToObject(j, "mask", m->mask ? m->mask : "as acquired");
                if (m->nominal_r > 0) cJSON_AddNumberToObject(j, "nominal_R", m->nominal_r);
                if (isfinite(er)) cJSON_AddNumberToObject(j, "effective_R", er);
                cJSON_AddStringToObject(j, "crop", m->do_eval ? m->crop_name : "not evaluated");
                cJSON_AddNumberToObject(j, "ranks", cli->size);
                cJSON_AddNumberToObject(j, "undersample_s", t1 - t0);
                cJSON_AddNumberToObject(j, "recon_s", t2 - t1);
                cJSON_AddNumberToObject(j, "total_s", fmr_wtime() - t0);
                if (have_metrics) {
                    cJSON_AddNumberToObject(j, "psnr", vm.psnr);
                    cJSON_AddNumberToObject(j, "ssim", vm.ssim);
                    cJSON_AddNumberToObject(j, "nmse", vm.nmse);
                }
                const char *jid = getenv("SLURM_JOB_ID");
                if (jid) cJSON_AddStringToObject(j, "slurm_job_id", jid);
                cJSON_AddStringToObject(j, "fmrecon_version", fmr_version());
                char *txt = cJSON_Print(j);
                e = txt ? cohort_write_atomic(marker, txt) : fmr_error(FMR_ERR_NOMEM, "out of memory (marker)");
                free(txt);
                cJSON_Delete(j);
            }
            if (e) {
                /* an output without its marker is not done: remove it so nothing looks complete */
                err = e;
                unlink(output);
            } else {
                log_line(logp, "done %s in %.1f s%s", s->id, fmr_wtime() - t0, have_metrics ? "" : " (no reference)");
                if (have_metrics) log_line(logp, "metrics PSNR %.2f dB, SSIM %.4f, NMSE %.5f", vm.psnr, vm.ssim, vm.nmse);
            }
        }
        if (err) {
            char *emsg = strdup(fmr_error_message()), *msg = cohort_strf("failed: %s\n", emsg ? emsg : "?");
            if (msg) {
                fmr_err e = cohort_write_atomic(failed, msg);
                if (e) fmr_warn("cohort: %s (the subject stays pending)", fmr_error_message());
                log_line(logp, "%s", msg);
                free(msg);
            }
            fmr_error(err, "%s", emsg ? emsg : "?"); /* the subject's error, not the .failed write's */
            free(emsg);
        }
        fmr_volume_metrics_free(&vm);
    }
    /* every rank returns the same outcome */
    int code = (int)err;
    MPI_Bcast(&code, 1, MPI_INT, 0, cli->comm);
    if (code && !err) err = fmr_error((fmr_err)code, "%s: failed on rank 0", s->id);
    if (!code && err) err = FMR_OK, fmr_error_clear();
    free(output), free(marker), free(failed), free(logp), free(work);
    return err;
}

static fmr_err parse_shard(const char *text, long *i, long *n)
{
    char *end;
    *i = strtol(text, &end, 10);
    if (end == text || *end != '/') return fmr_error(FMR_ERR_ARG, "--shard: '%s' is not i/n", text);
    const char *p = end + 1;
    *n = strtol(p, &end, 10);
    if (end == p || *end || *n < 1 || *i < 0 || *i >= *n) return fmr_error(FMR_ERR_ARG, "--shard: '%s' is not i/n with 0 <= i < n", text);
    return FMR_OK;
}

/* The output folders: created if missing, real folders (not symlinks that lead elsewhere). */
static fmr_err make_folders(const cohort_manifest *m)
{
    static const char *sub[] = {"", "/markers", "/logs", "/work", "/locks"};
    for (int k = 0; k < 5; k++) {
        char *d = cohort_strf("%s%s", m->out, sub[k]);
        if (!d) return fmr_error(FMR_ERR_NOMEM, "out of memory");
        int e = fmr_mkdirs(d);
        struct stat st;
        if (!e && k && (lstat(d, &st) != 0 || !S_ISDIR(st.st_mode))) e = ENOTDIR;
        fmr_err err = e ? fmr_error(FMR_ERR_IO, "%s: cannot create the output folder (%s)", d,
                                    e == ENOTDIR ? "not a folder, or a symbolic link" : strerror(e))
                        : FMR_OK;
        free(d);
        FMR_TRY(err);
    }
    return FMR_OK;
}

/* Before anything is done: subjects of this shard whose markers certify other settings or
 * another input. Without --redo-changed the run stops with one line naming them. */
static fmr_err check_changed(const cohort_manifest *m, long si, long sn, int redo, size_t *nchanged)
{
    size_t n = 0;
    char ids[512] = "", *first = NULL;
    size_t len = 0;
    fmr_err err = FMR_OK;
    for (size_t k = (size_t)si; k < m->n && !err; k += (size_t)sn) {
        cohort_subject *s = &m->subs[k];
        /* an unreadable input fails that subject at its turn (do_subject), not the whole run */
        struct stat st;
        s->have_sha = stat(s->input, &st) == 0 && S_ISREG(st.st_mode) && fmr_sha256_file(s->input, s->input_sha256) == FMR_OK;
        fmr_error_clear();
        cJSON *mk = s->have_sha ? cohort_marker_read(m, s) : NULL;
        if (mk) {
            const cJSON *ish = cJSON_GetObjectItemCaseSensitive(mk, "input_sha256");
            char *d = cohort_settings_diff(cJSON_GetObjectItemCaseSensitive(mk, "settings"), m->settings,
                                           cJSON_IsString(ish) ? ish->valuestring : NULL, s->input_sha256);
            if (d) {
                if (!first) first = d;
                else free(d);
                if (n < 8 && len < sizeof ids) len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%s", n ? ", " : "", s->id);
                n++;
                if (redo) {
                    char *p = cohort_strf("%s/markers/%s.json", m->out, s->id);
                    if (p) unlink(p); /* redone below like any unfinished subject */
                    free(p);
                }
            }
            cJSON_Delete(mk);
        }
    }
    *nchanged = n;
    if (!err && n && !redo)
        err = fmr_error(FMR_ERR_ARG, "cohort %s: %zu subject%s (%s%s) in %s %s done with other settings: %s; nothing was "
                        "done: rerun with --redo-changed to redo them, or use a new output folder",
                        m->name, n, n > 1 ? "s" : "", ids, n > 8 ? ", ..." : "", m->out, n > 1 ? "were" : "was",
                        first ? first : "?");
    free(first);
    return err;
}

fmr_err fmr_cmd_cohort(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"shard", required_argument, 0, 's'}, {"summary-only", no_argument, 0, 'S'},
                                       {"redo-changed", no_argument, 0, 'C'}, {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},         {0}};
    const char *shard = NULL;
    int summary_only = 0, redo = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", lo, NULL)) != -1) {
        switch (c) {
        case 's': shard = optarg; break;
        case 'S': summary_only = 1; break;
        case 'C': redo = 1; break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': return fmr_cli_help(cli, help), FMR_OK;
        default: return fmr_opt_bad("cohort", c, argv);
        }
    }
    if (optind != argc - 1) return fmr_error(FMR_ERR_ARG, "cohort takes exactly one MANIFEST (see fmrecon cohort --help)");
    const char *mpath = argv[optind];
    long si = 0, sn = 1;
    if (shard) {
        FMR_TRY(parse_shard(shard, &si, &sn));
    } else if (getenv("SLURM_ARRAY_TASK_ID") && getenv("SLURM_ARRAY_TASK_COUNT")) {
        /* array ranges need not start at 0: the shard is the task's position in the range */
        const long id = atol(getenv("SLURM_ARRAY_TASK_ID")), cnt = atol(getenv("SLURM_ARRAY_TASK_COUNT"));
        const long mn = getenv("SLURM_ARRAY_TASK_MIN") ? atol(getenv("SLURM_ARRAY_TASK_MIN")) : 0;
        si = id - mn, sn = cnt;
        if (sn < 1 || si < 0 || si >= sn)
            return fmr_error(FMR_ERR_ARG, "SLURM array task %ld (min %ld, count %ld) gives no shard; use --shard i/n", id, mn, cnt);
    }
    /* signals first: a Ctrl-C while inputs are hashed must also stop cleanly */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGUSR1, SIGINT, SIGHUP};
    for (int k = 0; k < 4; k++) sigaction(sigs[k], &sa, NULL);
    cohort_manifest m;
    fmr_err err = cohort_manifest_load(cli, mpath, &m);
    if (!err && cli->rank == 0) err = make_folders(&m);
    err = bcast_error(cli, err);
    if (err) {
        cohort_manifest_free(&m);
        return err;
    }
    if (summary_only) {
        err = cli->rank == 0 ? cohort_write_summary(&m) : FMR_OK;
        err = bcast_error(cli, err);
        cohort_manifest_free(&m);
        return err;
    }
    size_t nchanged = 0, swept = 0;
    if (cli->rank == 0) {
        char *eff = cohort_manifest_effective(&m), *ep = cohort_strf("%s/manifest.effective.json", m.out);
        err = eff && ep ? cohort_write_atomic(ep, eff) : fmr_error(FMR_ERR_NOMEM, "out of memory");
        free(eff), free(ep);
        if (!err) err = check_changed(&m, si, sn, redo, &nchanged);
        if (!err) swept = sweep_leftovers(&m);
    }
    err = bcast_error(cli, err);
    if (err) {
        cohort_manifest_free(&m);
        return err;
    }
    size_t mine = 0, skipped = 0, done = 0, failed = 0, busy = 0;
    for (size_t k = (size_t)si; k < m.n; k += (size_t)sn) mine++;
    fmr_info("cohort %s: %zu subjects, shard %ld/%ld holds %zu, %d rank%s; method %s, mask %s, nominal R %g%s", m.name, m.n,
             si, sn, mine, cli->size, cli->size > 1 ? "s" : "", m.method, m.mask ? m.mask : "as acquired", m.nominal_r,
             m.nominal_r > 0 ? "" : " (as acquired)");
    if (swept) fmr_info("cohort: removed %zu temporary file%s left by earlier runs", swept, swept > 1 ? "s" : "");
    if (nchanged) fmr_info("cohort: %zu subject%s done with other settings will be redone", nchanged, nchanged > 1 ? "s" : "");
    int stopped = 0;
    fmr_err config_err = FMR_OK;
    for (size_t k = (size_t)si; k < m.n; k += (size_t)sn) {
        /* every rank agrees whether to go on: a signal may reach only some of them */
        int sig = stop_requested != 0, any = 0;
        MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, cli->comm);
        if (any) {
            stopped = 1;
            break;
        }
        const cohort_subject *s = &m.subs[k];
        /* 0 do it, 1 done, 2 busy elsewhere, 3 cannot lock */
        int what = 0, fd = -1, b = 0;
        if (cli->rank == 0) {
            fd = lock_subject(&m, s, &b);
            if (fd < 0) what = b ? 2 : 3;
            else {
                /* under the lock: another run may have finished it meanwhile */
                cJSON *mk = cohort_marker_read(&m, s);
                if (cohort_marker_certifies(&m, s, mk, s->input_sha256, NULL)) what = 1;
                cJSON_Delete(mk);
            }
        }
        MPI_Bcast(&what, 1, MPI_INT, 0, cli->comm);
        fmr_err se = FMR_OK;
        if (what == 1) {
            skipped++;
        } else if (what == 2) {
            busy++;
            fmr_info("cohort: subject %s is being done by another run (its lock is held)", s->id);
        } else {
            fmr_info("cohort: subject %s (%zu of %zu in this shard)", s->id, skipped + done + failed + busy + 1, mine);
            se = what == 3 ? bcast_error(cli, FMR_ERR_IO) : do_subject(cli, &m, s);
            if (se == FMR_ERR_ARG) {
                config_err = se; /* same options for every subject: it would fail them all */
                failed++;
            } else if (se) {
                fmr_warn("cohort: subject %s failed: %s", s->id, fmr_error_message());
                fmr_error_clear();
                failed++;
            } else {
                done++;
            }
        }
        unlock_subject(fd);
        if (config_err) break;
    }
    char *keep = config_err ? strdup(fmr_error_message()) : NULL;
    if (cli->rank == 0) {
        fmr_err se = cohort_write_summary(&m);
        if (se) fmr_warn("cohort: %s", fmr_error_message());
        char *state = cohort_strf("%s/markers/shard_%ld_of_%ld.state", m.out, si, sn);
        char *txt = cohort_strf("{\"shard\": %ld, \"of\": %ld, \"done_now\": %zu, \"skipped\": %zu, \"failed\": %zu, "
                                "\"busy_elsewhere\": %zu, \"stopped_by_signal\": %s, \"signal\": %d}\n",
                                si, sn, done, skipped, failed, busy, stopped ? "true" : "false", (int)stop_requested);
        if (state && txt && cohort_write_atomic(state, txt)) fmr_warn("cohort: %s", fmr_error_message());
        free(state), free(txt);
        fmr_error_clear();
    }
    fmr_info("cohort %s shard %ld/%ld: %zu done now, %zu already done, %zu failed%s%s", m.name, si, sn, done, skipped, failed,
             busy ? ", some being done by another run" : "", stopped ? ", stopped by a signal (work remains)" : "");
    if (config_err) {
        err = fmr_error(config_err, "cohort %s: %s; stopped (the same options would fail every subject)", m.name, keep);
    } else if (stopped) {
        err = fmr_error(FMR_ERR_STOPPED, "cohort %s: stopped by a signal after %zu subjects; %zu of this shard remain "
                                         "(rerun or requeue to continue)",
                        m.name, done, mine - done - skipped - failed - busy);
    } else if (failed) {
        err = fmr_error(FMR_ERR_VALUE, "cohort: %zu subject%s failed (see %s/logs)", failed, failed > 1 ? "s" : "", m.out);
    }
    free(keep);
    cohort_manifest_free(&m);
    return err;
}

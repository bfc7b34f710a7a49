/* fmrecon cohort MANIFEST: a whole retrospective cohort, resumable and preemption-safe.
 * A subject is done only when its output exists and matches the completion marker written
 * after it (size and SHA-256); a rerun skips done subjects and redoes everything else. Inside a
 * SLURM job array each task takes its shard from the array variables. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
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

#include "cli.h"
#include "fmrecon/files.h"
#include "fmrecon/log.h"
#include "fmrecon/metrics.h"
#include "fmrecon/recon.h"
#include "fmrecon/sched.h"

static const char *help =
    "usage: fmrecon cohort MANIFEST.json [--shard i/n] [--summary-only] [-q]\n\n"
    "Reconstructs every subject a manifest lists (format: docs/cohorts.md; examples in jobs/;\n"
    "relative paths are relative to the manifest's folder),\n"
    "with all ranks of the job on each subject. Resumable and exact: a subject is done when its\n"
    "output matches its completion marker (OUT/markers/ID.json: size and SHA-256); reruns skip\n"
    "done subjects and redo partial ones. Shards: --shard i/n, or inside a SLURM job array\n"
    "(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT; subject k belongs\n"
    "to shard k mod n. On SIGTERM or SIGUSR1 the current subject is finished, the state recorded\n"
    "and fmrecon exits with status 3 (work remains: the job script may `scontrol requeue`).\n"
    "Writes OUT/summary.csv and OUT/summary.json (status, timings, metrics per subject) and\n"
    "per-subject logs OUT/logs/ID.log.\n\n"
    "  --shard i/n       this process's shard (overrides the SLURM array variables)\n"
    "  --summary-only    only rewrite the summary from the markers\n"
    "  -q, --quiet       no progress\n"
    "  -h, --help        this text\n";


static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    stop_requested = sig;
}

typedef struct {
    char id[256];
    char input[4096];
} subject;

typedef struct {
    cJSON *root;
    const char *path, *name, *out;
    char outbuf[4096];
    subject *subs;
    size_t n;
    cJSON *recon_args, *undersample;
    int evaluate;
} manifest;

static void manifest_free(manifest *m)
{
    free(m->subs);
    cJSON_Delete(m->root);
}

static fmr_err add_subject(manifest *m, const char *id, const char *input)
{
    subject *s = realloc(m->subs, (m->n + 1) * sizeof *s);
    if (!s) return fmr_error(FMR_ERR_NOMEM, "out of memory (subjects)");
    m->subs = s;
    snprintf(s[m->n].id, sizeof s[m->n].id, "%s", id);
    snprintf(s[m->n].input, sizeof s[m->n].input, "%s", input);
    for (char *c = s[m->n].id; *c; c++)
        if (*c == '/' || *c == ' ') *c = '_';
    m->n++;
    return FMR_OK;
}

/* Subject id from a path: the file name without its extension. */
static void id_of(const char *path, char *id, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(id, n, "%s", b);
    char *dot = strrchr(id, '.');
    if (dot && dot != id) *dot = 0;
}

static int cmp_subject(const void *a, const void *b) { return strcmp(((const subject *)a)->id, ((const subject *)b)->id); }

static fmr_err manifest_load(const char *path, manifest *m)
{
    memset(m, 0, sizeof *m);
    m->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open the manifest (%s)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = len >= 0 && len < (1L << 26) ? malloc((size_t)len + 1) : NULL;
    size_t got = text ? fread(text, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!text || got != (size_t)len) {
        free(text);
        return fmr_error(FMR_ERR_IO, "%s: cannot read the manifest", path);
    }
    text[len] = 0;
    m->root = cJSON_Parse(text);
    if (!cJSON_IsObject(m->root)) {
        /* where parsing stopped, as a line:column position (the error pointer is into text) */
        const char *at = m->root ? text : cJSON_GetErrorPtr();
        long line = 1, col = 1;
        for (const char *q = text; at && q < at && *q; q++) *q == '\n' ? (line++, col = 1) : col++;
        free(text);
        return fmr_error(FMR_ERR_FORMAT, "%s: not a JSON object (parsing stopped at line %ld, column %ld)", path, line, col);
    }
    free(text);
    const cJSON *name = cJSON_GetObjectItem(m->root, "name"), *out = cJSON_GetObjectItem(m->root, "output"),
                *subs = cJSON_GetObjectItem(m->root, "subjects");
    m->name = cJSON_IsString(name) ? name->valuestring : "cohort";
    if (!cJSON_IsString(out)) return fmr_error(FMR_ERR_FORMAT, "%s: \"output\" (a folder) is missing", path);
    if (!cJSON_IsArray(subs) || !cJSON_GetArraySize(subs))
        return fmr_error(FMR_ERR_FORMAT, "%s: \"subjects\" must be a non-empty list of files, globs or {id, input}", path);
    /* relative paths are relative to the manifest's folder */
    char base[4096] = ".";
    const char *sl = strrchr(path, '/');
    if (sl) snprintf(base, sizeof base, "%.*s", (int)(sl - path), path);
    const char *o = out->valuestring;
    snprintf(m->outbuf, sizeof m->outbuf, "%s%s%s", o[0] == '/' ? "" : base, o[0] == '/' ? "" : "/", o);
    m->out = m->outbuf;
    const cJSON *e;
    cJSON_ArrayForEach(e, subs)
    {
        char pat[8192], id[256];
        if (cJSON_IsString(e)) {
            snprintf(pat, sizeof pat, "%s%s%s", e->valuestring[0] == '/' ? "" : base, e->valuestring[0] == '/' ? "" : "/",
                     e->valuestring);
            glob_t g;
            int r = glob(pat, 0, NULL, &g);
            if (r == GLOB_NOMATCH) {
                globfree(&g);
                return fmr_error(FMR_ERR_IO, "%s: subjects entry '%s' matches no file", path, e->valuestring);
            }
            for (size_t i = 0; r == 0 && i < g.gl_pathc; i++) {
                id_of(g.gl_pathv[i], id, sizeof id);
                fmr_err err = add_subject(m, id, g.gl_pathv[i]);
                if (err) {
                    globfree(&g);
                    return err;
                }
            }
            globfree(&g);
        } else if (cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItem(e, "input"))) {
            const char *in = cJSON_GetObjectItem(e, "input")->valuestring;
            const cJSON *i = cJSON_GetObjectItem(e, "id");
            snprintf(pat, sizeof pat, "%s%s%s", in[0] == '/' ? "" : base, in[0] == '/' ? "" : "/", in);
            if (cJSON_IsString(i)) snprintf(id, sizeof id, "%s", i->valuestring);
            else id_of(in, id, sizeof id);
            FMR_TRY(add_subject(m, id, pat));
        } else {
            return fmr_error(FMR_ERR_FORMAT, "%s: a subjects entry is neither a path/glob nor {\"input\": ...}", path);
        }
    }
    qsort(m->subs, m->n, sizeof *m->subs, cmp_subject);
    for (size_t i = 1; i < m->n; i++)
        if (!strcmp(m->subs[i].id, m->subs[i - 1].id))
            return fmr_error(FMR_ERR_FORMAT, "%s: two subjects have the id '%s' (give explicit ids)", path, m->subs[i].id);
    m->recon_args = cJSON_GetObjectItem(m->root, "recon");
    if (m->recon_args && !cJSON_IsArray(m->recon_args))
        return fmr_error(FMR_ERR_FORMAT, "%s: \"recon\" must be a list of fmrecon recon options", path);
    m->undersample = cJSON_GetObjectItem(m->root, "undersample");
    if (m->undersample && !cJSON_IsArray(m->undersample))
        return fmr_error(FMR_ERR_FORMAT, "%s: \"undersample\" must be a list of fmrecon undersample options", path);
    const cJSON *ev = cJSON_GetObjectItem(m->root, "evaluate");
    m->evaluate = !ev || cJSON_IsTrue(ev);
    return FMR_OK;
}

/* Runs a CLI command with argv built from fixed words and a JSON list of options. */
static fmr_err run_cmd(fmr_cli *cli, fmr_cmd_fn fn, const char *const *words, int nw, const cJSON *extra)
{
    char *argv[256];
    int argc = 0;
    for (int i = 0; i < nw && argc < 250; i++) argv[argc++] = (char *)words[i];
    const cJSON *e;
    if (extra)
        cJSON_ArrayForEach(e, extra)
        {
            if (!cJSON_IsString(e)) return fmr_error(FMR_ERR_FORMAT, "manifest options must be strings");
            if (argc < 250) argv[argc++] = e->valuestring;
        }
    argv[argc] = NULL;
    optind = 0; /* getopt: a fresh parse */
    const int level = fmr_log_get_level(); /* a sub-command's -q must not silence the cohort */
    fmr_err err = fn(cli, argc, argv);
    fmr_log_set_level(level);
    return err;
}

static int file_size(const char *p, long long *size)
{
    struct stat st;
    if (stat(p, &st) != 0) return 0;
    *size = (long long)st.st_size;
    return 1;
}

/* A subject is done when its marker exists and the output still has the marker's size and hash. */
static int is_done(const char *marker, const char *output)
{
    FILE *f = fopen(marker, "rb");
    if (!f) return 0;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *sz = cJSON_GetObjectItem(j, "bytes"), *sh = cJSON_GetObjectItem(j, "sha256");
    long long have;
    char hex[65];
    int ok = cJSON_IsNumber(sz) && cJSON_IsString(sh) && file_size(output, &have) && have == (long long)sz->valuedouble &&
             fmr_sha256_file(output, hex) == FMR_OK && !strcmp(hex, sh->valuestring);
    cJSON_Delete(j);
    return ok;
}

static fmr_err write_atomic(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot write (%s)", tmp, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return fmr_error(FMR_ERR_IO, "%s: cannot write", path);
    }
    return FMR_OK;
}

static void log_line(const char *logpath, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *logpath, const char *fmt, ...)
{
    FILE *f = fopen(logpath, "a");
    if (!f) return;
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

/* One subject: (undersample), recon, (evaluate), then the marker. Collective over the job. */
static fmr_err do_subject(fmr_cli *cli, const manifest *m, const subject *s)
{
    char output[4400], marker[4400], logp[4400], work[4400], failed[4400];
    snprintf(output, sizeof output, "%s/%s.h5", m->out, s->id);
    snprintf(marker, sizeof marker, "%s/markers/%s.json", m->out, s->id);
    snprintf(failed, sizeof failed, "%s/markers/%s.failed", m->out, s->id);
    snprintf(logp, sizeof logp, "%s/logs/%s.log", m->out, s->id);
    snprintf(work, sizeof work, "%s/work/%s_input.h5", m->out, s->id);
    if (cli->rank == 0) unlink(marker), unlink(failed), unlink(output); /* partial or stale: redo */
    MPI_Barrier(cli->comm);
    const double t0 = fmr_wtime();
    if (cli->rank == 0) log_line(logp, "start %s (input %s, %d rank%s)", s->id, s->input, cli->size, cli->size > 1 ? "s" : "");
    const char *input = s->input;
    fmr_err err = FMR_OK;
    if (m->undersample) {
        const char *w[] = {"undersample", s->input, "-o", work};
        if (cli->rank == 0) unlink(work);
        err = run_cmd(cli, fmr_cmd_undersample, w, 4, m->undersample);
        input = work;
    }
    const double t1 = fmr_wtime();
    if (!err) {
        const char *w[] = {"recon", input, "-o", output};
        err = run_cmd(cli, fmr_cmd_recon, w, 4, m->recon_args);
    }
    const double t2 = fmr_wtime();
    fmr_volume_metrics vm = {0};
    int have_metrics = 0;
    if (!err && m->evaluate && cli->rank == 0) {
        fmr_err e = fmr_eval_files(s->input, output, FMR_EVAL_FASTMRI, &vm);
        if (e == FMR_OK) have_metrics = 1;
        else log_line(logp, "no evaluation: %s", fmr_error_message());
        fmr_error_clear();
    }
    const int all = fmr_agree(cli->comm, err) == FMR_OK; /* every rank succeeded */
    if (cli->rank == 0) {
        if (all) {
            char hex[65];
            long long size = 0;
            fmr_err e = fmr_sha256_file(output, hex);
            if (!e && !file_size(output, &size)) e = fmr_error(FMR_ERR_IO, "%s: vanished", output);
            if (!e) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "id", s->id);
                cJSON_AddStringToObject(j, "input", s->input);
                cJSON_AddStringToObject(j, "output", output);
                cJSON_AddNumberToObject(j, "bytes", (double)size);
                cJSON_AddStringToObject(j, "sha256", hex);
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
                e = write_atomic(marker, txt);
                free(txt);
                cJSON_Delete(j);
            }
            if (e) err = e;
            else
                log_line(logp, "done %s in %.1f s%s", s->id, fmr_wtime() - t0, have_metrics ? "" : " (no reference)");
            if (have_metrics) log_line(logp, "metrics PSNR %.2f dB, SSIM %.4f, NMSE %.5f", vm.psnr, vm.ssim, vm.nmse);
        } else {
            char msg[1200];
            snprintf(msg, sizeof msg, "failed: %s\n", err ? fmr_error_message() : "another rank failed");
            write_atomic(failed, msg);
            log_line(logp, "%s", msg);
        }
    }
    fmr_volume_metrics_free(&vm);
    if (!all && !err) err = fmr_error(FMR_ERR_MPI, "%s: another rank failed", s->id);
    return err;
}

static fmr_err write_summary_locked(const manifest *m);

/* Array tasks finish concurrently: the summary is rebuilt from the markers under an exclusive
 * lock, and every task writes its own markers before taking it, so whichever task rebuilds last
 * sees every finished subject. */
static fmr_err write_summary(const manifest *m)
{
    char lock[4400];
    snprintf(lock, sizeof lock, "%s/markers/summary.lock", m->out);
    int fd = open(lock, O_CREAT | O_RDWR, 0644);
    if (fd >= 0) flock(fd, LOCK_EX);
    fmr_err err = write_summary_locked(m);
    if (fd >= 0) flock(fd, LOCK_UN), close(fd);
    return err;
}

static fmr_err write_summary_locked(const manifest *m)
{
    char csv[4400], js[4400];
    snprintf(csv, sizeof csv, "%s/summary.csv", m->out);
    snprintf(js, sizeof js, "%s/summary.json", m->out);
    size_t cap = 256 + m->n * 512, len = 0;
    char *c = malloc(cap);
    if (!c) return fmr_error(FMR_ERR_NOMEM, "out of memory (summary)");
    len += (size_t)snprintf(c + len, cap - len, "id,status,psnr,ssim,nmse,recon_s,total_s,output\n");
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "subjects");
    cJSON_AddStringToObject(root, "name", m->name);
    size_t ndone = 0, nfail = 0;
    for (size_t i = 0; i < m->n; i++) {
        const subject *s = &m->subs[i];
        char output[4400], marker[4400], failed[4400];
        snprintf(output, sizeof output, "%s/%s.h5", m->out, s->id);
        snprintf(marker, sizeof marker, "%s/markers/%s.json", m->out, s->id);
        snprintf(failed, sizeof failed, "%s/markers/%s.failed", m->out, s->id);
        cJSON *e = cJSON_CreateObject(), *mk = NULL;
        cJSON_AddStringToObject(e, "id", s->id);
        const char *status = "pending";
        if (is_done(marker, output)) {
            status = "done", ndone++;
            FILE *f = fopen(marker, "rb");
            char buf[65536];
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f) fclose(f);
            buf[n] = 0;
            mk = cJSON_Parse(buf);
        } else if (access(failed, F_OK) == 0) {
            status = "failed", nfail++;
        }
        cJSON_AddStringToObject(e, "status", status);
        double v[5] = {NAN, NAN, NAN, NAN, NAN};
        const char *keys[5] = {"psnr", "ssim", "nmse", "recon_s", "total_s"};
        for (int k = 0; k < 5; k++) {
            const cJSON *x = cJSON_GetObjectItem(mk, keys[k]);
            if (cJSON_IsNumber(x)) v[k] = x->valuedouble, cJSON_AddNumberToObject(e, keys[k], v[k]);
        }
        if (mk) cJSON_AddStringToObject(e, "output", output);
        cJSON_AddItemToArray(arr, e);
        cJSON_Delete(mk);
        if (len + 600 > cap) break;
        len += (size_t)snprintf(c + len, cap - len, "%s,%s", s->id, status);
        for (int k = 0; k < 5; k++)
            len += isnan(v[k]) ? (size_t)snprintf(c + len, cap - len, ",") : (size_t)snprintf(c + len, cap - len, ",%.6g", v[k]);
        len += (size_t)snprintf(c + len, cap - len, ",%s\n", strcmp(status, "done") ? "" : output);
    }
    cJSON_AddNumberToObject(root, "total", (double)m->n);
    cJSON_AddNumberToObject(root, "done", (double)ndone);
    cJSON_AddNumberToObject(root, "failed", (double)nfail);
    cJSON_AddNumberToObject(root, "pending", (double)(m->n - ndone - nfail));
    char *txt = cJSON_Print(root);
    fmr_err err = write_atomic(csv, c);
    if (!err) err = write_atomic(js, txt);
    free(txt);
    free(c);
    cJSON_Delete(root);
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

fmr_err fmr_cmd_cohort(fmr_cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {{"shard", required_argument, 0, 's'}, {"summary-only", no_argument, 0, 'S'},
                                       {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
                                       {0}};
    const char *shard = NULL;
    int summary_only = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", lo, NULL)) != -1) {
        switch (c) {
        case 's': shard = optarg; break;
        case 'S': summary_only = 1; break;
        case 'q': fmr_log_set_level(FMR_LOG_QUIET); break;
        case 'h': return fmr_cli_help(cli, help), FMR_OK;
        default: return fmr_opt_bad("cohort", c, argv);
        }
    }
    if (optind != argc - 1) return fmr_error(FMR_ERR_ARG, "cohort takes exactly one MANIFEST (see fmrecon cohort --help)");
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
    manifest m;
    fmr_err err = manifest_load(argv[optind], &m);
    if (err) {
        manifest_free(&m);
        return err;
    }
    char dir[4400];
    int e = 0;
    if (cli->rank == 0) {
        const char *sub[] = {"", "/markers", "/logs", "/work"};
        for (int k = 0; k < 4 && !e; k++) snprintf(dir, sizeof dir, "%s%s", m.out, sub[k]), e = fmr_mkdirs(dir);
    }
    MPI_Bcast(&e, 1, MPI_INT, 0, cli->comm);
    if (e) {
        manifest_free(&m);
        return fmr_error(FMR_ERR_IO, "%s: cannot create the output folders", m.out);
    }
    if (summary_only) {
        err = cli->rank == 0 ? write_summary(&m) : FMR_OK;
        manifest_free(&m);
        return err;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    size_t mine = 0, skipped = 0, done = 0, failed = 0;
    for (size_t k = (size_t)si; k < m.n; k += (size_t)sn) mine++;
    fmr_info("cohort %s: %zu subjects, shard %ld/%ld holds %zu, %d rank%s", m.name, m.n, si, sn, mine, cli->size,
             cli->size > 1 ? "s" : "");
    int stopped = 0;
    for (size_t k = (size_t)si; k < m.n; k += (size_t)sn) {
        /* every rank agrees whether to go on: a signal may reach only some of them */
        int sig = stop_requested != 0, any = 0;
        MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, cli->comm);
        if (any) {
            stopped = 1;
            break;
        }
        const subject *s = &m.subs[k];
        char output[4400], marker[4400];
        snprintf(output, sizeof output, "%s/%s.h5", m.out, s->id);
        snprintf(marker, sizeof marker, "%s/markers/%s.json", m.out, s->id);
        int d = cli->rank == 0 ? is_done(marker, output) : 0;
        MPI_Bcast(&d, 1, MPI_INT, 0, cli->comm);
        if (d) {
            skipped++;
            continue;
        }
        fmr_info("cohort: subject %s (%zu of %zu in this shard)", s->id, skipped + done + failed + 1, mine);
        fmr_err se = do_subject(cli, &m, s);
        if (se) {
            fmr_warn("cohort: subject %s failed: %s", s->id, fmr_error_message());
            fmr_error_clear();
            failed++;
        } else {
            done++;
        }
    }
    if (cli->rank == 0) {
        fmr_err se = write_summary(&m);
        if (se) fmr_warn("cohort: %s", fmr_error_message());
        char state[4400];
        snprintf(state, sizeof state, "%s/markers/shard_%ld_of_%ld.state", m.out, si, sn);
        char txt[512];
        snprintf(txt, sizeof txt, "{\"shard\": %ld, \"of\": %ld, \"done_now\": %zu, \"skipped\": %zu, \"failed\": %zu, \"stopped_by_signal\": %s}\n", si,
                 sn, done, skipped, failed, stopped ? "true" : "false");
        write_atomic(state, txt);
    }
    fmr_info("cohort %s shard %ld/%ld: %zu done now, %zu already done, %zu failed%s", m.name, si, sn, done, skipped, failed,
             stopped ? ", stopped by a signal (work remains)" : "");
    if (stopped) {
        err = fmr_error(FMR_ERR_STOPPED, "cohort %s: stopped by a signal after %zu subjects; %zu of this shard remain "
                                         "(rerun or requeue to continue)",
                        m.name, done, mine - done - skipped - failed);
        manifest_free(&m);
        return err;
    }
    manifest_free(&m);
    if (failed) return fmr_error(FMR_ERR_VALUE, "cohort: %zu subject%s failed (see %s/logs)", failed, failed > 1 ? "s" : "", m.out);
    return FMR_OK;
}

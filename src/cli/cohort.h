/* fmrecon cohort, shared by its files: the strict manifest (cohort_manifest.c), the summary
 * (cohort_summary.c) and the runner (cmd_cohort.c). Private to the command-line tool. */
#ifndef FMR_CLI_COHORT_H
#define FMR_CLI_COHORT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "cli.h"
#include "fmrecon/metrics.h"

typedef struct cohort_subject {
    char *id, *input; /* input: absolute path */
    char input_sha256[65];
    int have_sha;
} cohort_subject;

/* A list of a sub-command's options, normalised: long names only ("--name" or "--name=value"),
 * file values resolved against the manifest's folder. What is fingerprinted is what runs. */
typedef struct cohort_opts {
    char **v;
    int n;
} cohort_opts;

typedef struct cohort_manifest {
    cJSON *root;
    char *path, *base; /* the manifest and its folder (absolute) */
    char *name, *out;  /* out: absolute */
    cohort_subject *subs;
    size_t n;
    int has_undersample;
    cohort_opts undersample, recon, evaluate;
    int do_eval;                      /* evaluate is not false */
    fmr_eval_mode crop;               /* evaluation rules */
    const char *crop_name;            /* "fastmri", "cmrxrecon" */
    const char *method, *mask;        /* recon method; undersampling mask type or NULL */
    double nominal_r;                 /* --accel, or 0 (prospective: as acquired) */
    const char *variable, *mask_file, *mask_variable; /* recon's open options (effective R) */
    cJSON *settings;                  /* every setting a marker certifies, except the input hash */
} cohort_manifest;

/* Reads and checks path against the schema (docs/cohorts.md): any unknown key or option, wrong
 * type or bad value is an error naming the nearest valid name. cli runs the sub-commands' own
 * option checks (--check-options). */
fmr_err cohort_manifest_load(fmr_cli *cli, const char *path, cohort_manifest *m);
void cohort_manifest_free(cohort_manifest *m);
/* The manifest after defaults, as JSON text (caller frees). */
char *cohort_manifest_effective(const cohort_manifest *m);

/* malloc'd printf; NULL only when out of memory. */
char *cohort_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes text to path via a temporary name (path.tmp-PID) and rename; errno's reason on failure. */
fmr_err cohort_write_atomic(const char *path, const char *text);
/* The marker of subject s as JSON (NULL if missing or unreadable). */
cJSON *cohort_marker_read(const cohort_manifest *m, const cohort_subject *s);
/* 1 if the marker certifies the current output: same settings, same input hash (when
 * input_sha256 is given, else the marker's is trusted) and the output has the recorded size and
 * SHA-256. *why (may be NULL) gets a static reason otherwise. */
int cohort_marker_certifies(const cohort_manifest *m, const cohort_subject *s, const cJSON *mk,
                            const char *input_sha256, const char **why);
/* A one-line description of what differs between a marker's settings and the current ones
 * (malloc'd), or NULL if they agree. */
char *cohort_settings_diff(const cJSON *old_settings, const cJSON *now, const char *old_input_sha,
                           const char *now_input_sha);
/* 1 if another process holds subject s's lock (it is being done now). */
int cohort_subject_busy(const cohort_manifest *m, const cohort_subject *s);

/* Rebuilds OUT/summary.{csv,json,md} and OUT/summary_stats.csv from the markers, under
 * OUT/markers/summary.lock (array tasks finish concurrently). */
fmr_err cohort_write_summary(const cohort_manifest *m);

#endif

/* libFuzzer target for the cohort-manifest parser (cohort_manifest_load in
 * src/cli/cohort_manifest.c): any byte string as a manifest file must be either accepted, with a
 * valid subject list (unique, sorted ids without '/' or ' ', inputs present) and option lists of
 * long options only, or rejected with an error message; never a crash or an out-of-bounds access
 * (ASan, UBSan).
 *
 * The parser checks options against the real recon, undersample and eval commands (their option
 * tables and --check-options), so those command files are compiled in as they are; the library
 * they call is libfmrecon. This file includes the parser's file whole so its globs can be
 * confined: the manifest lies in a private folder holding a few subject files, and patterns that
 * leave the folder (absolute elsewhere, or with "..") match nothing, so a fuzzed pattern of stars
 * cannot walk the machine's file system. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmrecon/files.h"

static int sandbox_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);
#define glob sandbox_glob
#include "cli/cohort_manifest.c"
#undef glob

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir_[4096], manifest_[4200];

static int sandbox_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g)
{
    memset(g, 0, sizeof *g);
    const size_t n = strlen(dir_);
    if (strncmp(pattern, dir_, n) || (pattern[n] != '/' && pattern[n]) || strstr(pattern, ".."))
        return GLOB_NOMATCH;
    return glob(pattern, flags, errfunc, g);
}

static fmr_cli cli_;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cli_.comm = MPI_COMM_SELF, /* a handle only: --check-options stops before any MPI call */
    cli_.rank = 0, cli_.size = 1, cli_.argv_line = "fuzz_manifest";
    fmr_log_set_level(FMR_LOG_QUIET);
    const char *base = getenv("FMR_FUZZ_DIR"); /* run_fuzz_small.sh: a private temporary folder */
    snprintf(dir_, sizeof dir_, "%s/cohort-%d", base && *base ? base : "/tmp", (int)getpid());
    char sub[4400];
    if (fmr_mkdirs(dir_) || (snprintf(sub, sizeof sub, "%s/sub/dir", dir_), fmr_mkdirs(sub))) abort();
    static const char *const files[] = {"subject_000.h5", "subject_001.h5", "subject_002.mat", "sub/dir/x.y.h5",
                                        "a b.h5"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir_, files[i]);
        FILE *f = fopen(sub, "wb");
        if (!f) abort();
        fclose(f);
    }
    snprintf(manifest_, sizeof manifest_, "%s/manifest.json", dir_);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(manifest_, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    cohort_manifest m;
    fmr_err err = cohort_manifest_load(&cli_, manifest_, &m);
    if (err == FMR_OK) {
        /* the oracle: what the cohort run relies on */
        if (!m.n || !m.out || !m.name || !m.subs) abort();
        for (size_t i = 0; i < m.n; i++) {
            const cohort_subject *s = &m.subs[i];
            if (!s->id || !s->input || !s->id[0]) abort();
            if (strchr(s->id, '/') || strchr(s->id, ' ')) abort();
            if (i && strcmp(m.subs[i - 1].id, s->id) >= 0) abort(); /* sorted and unique */
        }
        const cohort_opts *lists[] = {&m.undersample, &m.recon, &m.evaluate};
        for (size_t l = 0; l < 3; l++)
            for (int i = 0; i < lists[l]->n; i++)
                if (strncmp(lists[l]->v[i], "--", 2)) abort(); /* normalised to long options */
    } else if (!fmr_error_message()[0]) {
        abort(); /* a rejection always says why */
    }
    cohort_manifest_free(&m);
    fmr_error_clear();
    return 0;
}

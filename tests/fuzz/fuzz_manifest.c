/* libFuzzer target for the cohort-manifest parser (manifest_load in src/cli/cmd_cohort.c): any
 * byte string as a manifest file must be either accepted, with a valid subject list (unique,
 * sorted ids without '/' or ' ', NUL-terminated inputs), or rejected with an error
 * message; never a crash or an out-of-bounds access (ASan, UBSan).
 *
 * The parser is static in the command's file, so this file includes that file whole; the rest of
 * the command (running subjects, markers, summaries) is linked against libfmrecon and never
 * called. Its globs are confined: the manifest lies in a private folder holding a few subject
 * files, and patterns that leave the folder (absolute elsewhere, or with "..") match nothing,
 * so a fuzzed pattern of stars cannot walk the machine's file system. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sandbox_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);
#define glob sandbox_glob
#include "cli/cmd_cohort.c"
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

/* The command's entry points the parser never reaches: here only to link the included file. */
fmr_err fmr_cmd_recon(fmr_cli *cli, int argc, char **argv)
{
    (void)cli, (void)argc, (void)argv;
    abort();
}

fmr_err fmr_cmd_undersample(fmr_cli *cli, int argc, char **argv)
{
    (void)cli, (void)argc, (void)argv;
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
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
    manifest m;
    fmr_err err = manifest_load(manifest_, &m);
    if (err == FMR_OK) {
        /* the oracle: what the cohort run relies on */
        if (!m.n || !m.out || !m.name) abort();
        for (size_t i = 0; i < m.n; i++) {
            const subject *s = &m.subs[i];
            if (!memchr(s->id, 0, sizeof s->id) || !memchr(s->input, 0, sizeof s->input)) abort();
            if (strchr(s->id, '/') || strchr(s->id, ' ')) abort();
            if (i && strcmp(m.subs[i - 1].id, s->id) >= 0) abort(); /* sorted and unique */
        }
        if (m.recon_args && !cJSON_IsArray(m.recon_args)) abort();
        if (m.undersample && !cJSON_IsArray(m.undersample)) abort();
    } else if (!fmr_error_message()[0]) {
        abort(); /* a rejection always says why */
    }
    manifest_free(&m);
    fmr_error_clear();
    return 0;
}

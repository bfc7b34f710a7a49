/* The cohort manifest and its schema (docs/cohorts.md). Strict on purpose: a mistyped key
 * ("undersampl") once made a "retrospective R = 8" study reconstruct fully sampled data and report
 * 40 dB, so every key, type, option and value is checked before anything runs, and an unknown
 * name is an error naming the nearest valid one. Sub-command options are checked against the
 * commands' own getopt tables and by the commands themselves (--check-options). */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cohort.h"
#include "fmrecon/files.h"
#include "fmrecon/io.h"
#include "fmrecon/log.h"
#include "fmrecon/recon.h"

char *cohort_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- the schema: every top-level key, its type, whether required, what it means */
typedef enum { K_STRING, K_SUBJECTS, K_OPTIONS, K_EVALUATE } key_type;
static const struct {
    const char *name;
    key_type type;
    int required;
} keys[] = {
    {"name", K_STRING, 0},      {"subjects", K_SUBJECTS, 1}, {"undersample", K_OPTIONS, 0},
    {"recon", K_OPTIONS, 0},    {"output", K_STRING, 1},     {"evaluate", K_EVALUATE, 0},
};
enum { NKEYS = sizeof keys / sizeof keys[0] };
static const char *const subject_keys[] = {"id", "input", NULL};

/* Options of the commands that a manifest must not set: the cohort sets them, or they would make
 * the step do something else than produce the subject's output. */
static const char *const refused[] = {"output", "help", "check-options", NULL};
/* Options that never change a result (left out of the certified settings). */
static const char *const cosmetic[] = {"quiet", "verbose", NULL};
/* Options whose value is a file: resolved against the manifest's folder and certified by SHA-256.
 * Each must exist in its command's table (checked at load, so this list cannot drift silently). */
static const char *const file_opts_recon[] = {"model", "weights", "sens", "mask-file", NULL};
static const char *const file_opts_undersample[] = {"mask-file", NULL};
/* evaluate: of eval's options only the rules apply (the cohort chooses references and outputs) */
static const char *const eval_allowed[] = {"crop", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t x = d[i - 1][j] + 1, y = d[i][j - 1] + 1, z = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            d[i][j] = x < y ? (x < z ? x : z) : (y < z ? y : z);
        }
    return d[la][lb];
}

/* " (did you mean 'X'?)" for the nearest name within a few edits, or a list of the valid ones. */
static void suggest(const char *bad, const char *const *names, size_t n, const char *prefix, char *buf, size_t cap)
{
    size_t best = (size_t)-1, bi = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(bad, names[i]);
        /* a prefix of a valid name counts as near (getopt would have taken it) */
        if (!strncmp(names[i], bad, strlen(bad)) && *bad) d = d < 2 ? d : 1;
        if (d < best) best = d, bi = i;
    }
    size_t lim = strlen(bad) / 3 > 2 ? strlen(bad) / 3 : 2;
    if (n && best <= lim) {
        snprintf(buf, cap, " (did you mean '%s%s'?)", prefix, names[bi]);
        return;
    }
    size_t len = (size_t)snprintf(buf, cap, " (valid: ");
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s%s", i ? ", " : "", prefix, names[i]);
    if (len < cap) snprintf(buf + len, cap - len, ")");
}

static char *absolute(const char *base, const char *p)
{
    return p[0] == '/' ? strdup(p) : cohort_strf("%s/%s", base, p);
}

/* ---- option lists */
typedef struct {
    const char *cmd; /* "recon", "undersample", "eval" */
    const struct option *lo;
    const char *shortopts;
    const char *const *file_opts;
    const char *const *allowed; /* NULL: all but the refused ones */
} command_schema;

static const struct option *find_long(const struct option *lo, const char *name)
{
    for (; lo->name; lo++)
        if (!strcmp(lo->name, name)) return lo;
    return NULL;
}

static const struct option *find_short(const command_schema *c, int ch, int *takes_arg)
{
    const char *p = strchr(c->shortopts + 1, ch);
    if (!p || ch == ':') return NULL;
    *takes_arg = p[1] == ':';
    for (const struct option *o = c->lo; o->name; o++)
        if (o->val == ch) return o;
    return NULL;
}

static fmr_err opts_push(cohort_opts *o, char *s)
{
    if (!s) return fmr_error(FMR_ERR_NOMEM, "out of memory (manifest options)");
    char **v = realloc(o->v, (size_t)(o->n + 1) * sizeof *v);
    if (!v) {
        free(s);
        return fmr_error(FMR_ERR_NOMEM, "out of memory (manifest options)");
    }
    o->v = v;
    o->v[o->n++] = s;
    return FMR_OK;
}

static void opts_free(cohort_opts *o)
{
    for (int i = 0; i < o->n; i++) free(o->v[i]);
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

/* Checks list (a JSON array of strings) against the command's table and normalises it into out. */
static fmr_err parse_options(const char *mpath, const char *key, const cJSON *list, const command_schema *c,
                             const char *base, cohort_opts *out)
{
    if (!cJSON_IsArray(list))
        return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\" must be a list of 'fmrecon %s' options (strings)", mpath, key, c->cmd);
    const int n = cJSON_GetArraySize(list);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        if (!cJSON_IsString(e))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\" item %d is not a string", mpath, key, i + 1);
        const char *a = e->valuestring;
        const struct option *o = NULL;
        const char *val = NULL;
        int takes = 0;
        char name[128];
        if (!strcmp(a, "--"))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": PETSc options ('--') cannot be given per manifest; give them "
                             "after '--' on the cohort's command line or in PETSC_OPTIONS", mpath, key);
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            snprintf(name, sizeof name, "%.*s", (int)(nl < 127 ? nl : 127), a + 2);
            o = find_long(c->lo, name);
            if (!o) {
                const char *names[128];
                size_t k = 0;
                for (const struct option *q = c->lo; q->name && k < 128; q++)
                    if (!in_list(refused, q->name) && (!c->allowed || in_list(c->allowed, q->name))) names[k++] = q->name;
                char sug[1024];
                suggest(name, names, k, "--", sug, sizeof sug);
                return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": unknown 'fmrecon %s' option '--%s'%s", mpath, key, c->cmd, name, sug);
            }
            takes = o->has_arg == required_argument;
            if (eq && !takes)
                return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": option '--%s' takes no value", mpath, key, name);
            val = eq ? eq + 1 : NULL;
        } else if (a[0] == '-' && a[1] && !a[2]) {
            o = find_short(c, a[1], &takes);
            if (!o) return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": unknown 'fmrecon %s' option '%s'", mpath, key, c->cmd, a);
        } else if (a[0] == '-' && a[1]) {
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": '%s': give short options one per item, or the long name "
                             "('--name' or '--name=value')", mpath, key, a);
        } else {
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": unexpected value '%s' (not an option; the inputs are the "
                             "\"subjects\")", mpath, key, a);
        }
        if (in_list(refused, o->name))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": option '--%s' is not allowed in a manifest%s", mpath, key, o->name,
                             !strcmp(o->name, "output") ? " (every subject's output is OUT/ID.h5, inside \"output\")" : "");
        if (c->allowed && !in_list(c->allowed, o->name))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": option '--%s' is not allowed here (only --%s)", mpath, key, o->name,
                             c->allowed[0]);
        if (takes && !val) {
            const cJSON *nx = cJSON_GetArrayItem(list, ++i);
            if (!cJSON_IsString(nx))
                return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": option '%s' needs a value (the next item, a string)", mpath, key, a);
            val = nx->valuestring;
        }
        if (takes && c->file_opts && in_list(c->file_opts, o->name)) {
            char *p = absolute(base, val);
            FMR_TRY(opts_push(out, p ? cohort_strf("--%s=%s", o->name, p) : NULL));
            free(p);
        } else {
            FMR_TRY(opts_push(out, takes ? cohort_strf("--%s=%s", o->name, val) : cohort_strf("--%s", o->name)));
        }
    }
    return FMR_OK;
}

/* Value of the last "--name=..." in o (options may be repeated: the last one wins). */
static const char *opt_value(const cohort_opts *o, const char *name)
{
    const char *v = NULL;
    size_t l = strlen(name);
    for (int i = 0; i < o->n; i++)
        if (!strncmp(o->v[i] + 2, name, l) && o->v[i][2 + l] == '=') v = o->v[i] + 3 + l;
    return v;
}

static int opt_flag(const cohort_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->v[i] + 2, name)) return 1;
    return 0;
}

/* Lets the command check its own values (numbers, ranges, method and mask names). */
static fmr_err check_with_command(fmr_cli *cli, const char *mpath, const char *key, fmr_cmd_fn fn, const char *cmd,
                                  const cohort_opts *o)
{
    char **argv = calloc((size_t)o->n + 6, sizeof *argv);
    if (!argv) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    int argc = 0;
    argv[argc++] = (char *)cmd;
    argv[argc++] = (char *)"IN";
    argv[argc++] = (char *)"-o";
    argv[argc++] = (char *)"OUT";
    for (int i = 0; i < o->n; i++) argv[argc++] = o->v[i];
    argv[argc++] = (char *)"--check-options";
    optind = 0;
    const int level = fmr_log_get_level();
    fmr_err err = fn(cli, argc, argv);
    fmr_log_set_level(level);
    free(argv);
    if (err) {
        char *msg = strdup(fmr_error_message());
        err = fmr_error(FMR_ERR_FORMAT, "%s: \"%s\": %s", mpath, key, msg ? msg : "invalid options");
        free(msg);
    }
    return err;
}

/* Every file option: a readable regular file, certified by its SHA-256. */
static fmr_err hash_files(const char *mpath, const char *key, const cohort_opts *o, const char *const *files,
                          cJSON *into)
{
    for (int i = 0; i < o->n; i++) {
        const char *eq = strchr(o->v[i], '=');
        if (!eq) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - o->v[i] - 2 < 127 ? eq - o->v[i] - 2 : 127), o->v[i] + 2);
        if (!in_list(files, name)) continue;
        struct stat st;
        const int bad = stat(eq + 1, &st) != 0;
        if (bad || !S_ISREG(st.st_mode))
            return fmr_error(FMR_ERR_IO, "%s: \"%s\": --%s '%s' is not a readable file (%s)", mpath, key, name, eq + 1,
                             bad ? strerror(errno) : "not a regular file");
        char hex[65];
        FMR_TRY(fmr_sha256_file(eq + 1, hex));
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "option", o->v[i]);
        cJSON_AddStringToObject(f, "sha256", hex);
        cJSON_AddItemToArray(into, f);
    }
    return FMR_OK;
}

static cJSON *opts_json(const cohort_opts *o, int certified_only)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < o->n; i++) {
        char name[128];
        const char *eq = strchr(o->v[i], '=');
        size_t nl = eq ? (size_t)(eq - o->v[i] - 2) : strlen(o->v[i] + 2);
        snprintf(name, sizeof name, "%.*s", (int)(nl < 127 ? nl : 127), o->v[i] + 2);
        if (certified_only && in_list(cosmetic, name)) continue;
        cJSON_AddItemToArray(a, cJSON_CreateString(o->v[i]));
    }
    return a;
}

/* ---- subjects */
static fmr_err add_subject(const char *mpath, cohort_manifest *m, const char *id, const char *input, int explicit_id)
{
    if (explicit_id) {
        /* an id names files inside OUT: nothing that climbs out of it or hides there */
        if (!*id || id[0] == '/' || !strcmp(id, ".") || !strcmp(id, "..") || !strncmp(id, "../", 3) || strstr(id, "/../") ||
            (strlen(id) >= 3 && !strcmp(id + strlen(id) - 3, "/..")))
            return fmr_error(FMR_ERR_FORMAT, "%s: subject id '%s' would write outside the output folder", mpath, id);
    }
    if (!*id) /* a folder path ("dir/") or an empty entry: no file name to name the outputs */
        return fmr_error(FMR_ERR_FORMAT, "%s: subject input '%s' gives an empty id (not a file name?)", mpath, input);
    if (strlen(id) > 200) return fmr_error(FMR_ERR_FORMAT, "%s: subject id '%.40s...' is longer than 200 characters", mpath, id);
    char *cid = strdup(id);
    if (!cid) return fmr_error(FMR_ERR_NOMEM, "out of memory (subjects)");
    for (char *c = cid; *c; c++)
        if (*c == '/' || *c == ' ') *c = '_';
    for (const unsigned char *c = (const unsigned char *)cid; *c; c++)
        if (*c < 32 || *c == 127 || *c == '\\') {
            free(cid);
            return fmr_error(FMR_ERR_FORMAT, "%s: subject id '%s' has a control character or backslash", mpath, id);
        }
    if (cid[0] == '.') {
        free(cid);
        return fmr_error(FMR_ERR_FORMAT, "%s: subject id '%s' starts with '.' (hidden or outside the output folder)", mpath, id);
    }
    cohort_subject *s = realloc(m->subs, (m->n + 1) * sizeof *s);
    if (!s) {
        free(cid);
        return fmr_error(FMR_ERR_NOMEM, "out of memory (subjects)");
    }
    m->subs = s;
    s[m->n] = (cohort_subject){.id = cid, .input = strdup(input)};
    if (!s[m->n].input) return fmr_error(FMR_ERR_NOMEM, "out of memory (subjects)");
    m->n++;
    return FMR_OK;
}

/* Subject id from a path: the file name without its extension. */
static char *id_of(const char *path)
{
    const char *b = strrchr(path, '/');
    char *id = strdup(b ? b + 1 : path);
    char *dot = id ? strrchr(id, '.') : NULL;
    if (dot && dot != id) *dot = 0;
    return id;
}

static int cmp_subject(const void *a, const void *b)
{
    return strcmp(((const cohort_subject *)a)->id, ((const cohort_subject *)b)->id);
}

static fmr_err load_subjects(const char *mpath, cohort_manifest *m, const cJSON *subs)
{
    if (!cJSON_IsArray(subs) || !cJSON_GetArraySize(subs))
        return fmr_error(FMR_ERR_FORMAT, "%s: \"subjects\" must be a non-empty list of files, globs or {id, input}", mpath);
    const cJSON *e;
    cJSON_ArrayForEach(e, subs)
    {
        if (cJSON_IsString(e)) {
            if (!e->valuestring[0]) return fmr_error(FMR_ERR_FORMAT, "%s: a subjects entry is an empty string", mpath);
            char *pat = absolute(m->base, e->valuestring);
            if (!pat) return fmr_error(FMR_ERR_NOMEM, "out of memory");
            glob_t g;
            int r = glob(pat, 0, NULL, &g);
            free(pat);
            if (r == GLOB_NOMATCH) {
                globfree(&g);
                return fmr_error(FMR_ERR_IO, "%s: subjects entry '%s' matches no file", mpath, e->valuestring);
            }
            fmr_err err = r ? fmr_error(FMR_ERR_IO, "%s: subjects entry '%s' cannot be expanded", mpath, e->valuestring) : FMR_OK;
            for (size_t i = 0; !err && i < g.gl_pathc; i++) {
                char *id = id_of(g.gl_pathv[i]);
                err = id ? add_subject(mpath, m, id, g.gl_pathv[i], 0) : fmr_error(FMR_ERR_NOMEM, "out of memory");
                free(id);
            }
            globfree(&g);
            FMR_TRY(err);
        } else if (cJSON_IsObject(e)) {
            const cJSON *k;
            cJSON_ArrayForEach(k, e)
            {
                if (in_list(subject_keys, k->string)) continue;
                char sug[256];
                suggest(k->string, (const char *const *)subject_keys, 2, "", sug, sizeof sug);
                return fmr_error(FMR_ERR_FORMAT, "%s: unknown key '%s' in a subjects entry%s", mpath, k->string, sug);
            }
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(e, "input"), *i = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (!cJSON_IsString(in))
                return fmr_error(FMR_ERR_FORMAT, "%s: a subjects entry {...} needs \"input\" (a file path)", mpath);
            if (i && !cJSON_IsString(i))
                return fmr_error(FMR_ERR_FORMAT, "%s: a subjects entry's \"id\" must be a string", mpath);
            char *pat = absolute(m->base, in->valuestring), *id = i ? strdup(i->valuestring) : id_of(in->valuestring);
            fmr_err err = pat && id ? add_subject(mpath, m, id, pat, i != NULL) : fmr_error(FMR_ERR_NOMEM, "out of memory");
            free(pat);
            free(id);
            FMR_TRY(err);
        } else {
            return fmr_error(FMR_ERR_FORMAT, "%s: a subjects entry is neither a path/glob nor {\"input\": ...}", mpath);
        }
    }
    qsort(m->subs, m->n, sizeof *m->subs, cmp_subject);
    for (size_t i = 1; i < m->n; i++)
        if (!strcmp(m->subs[i].id, m->subs[i - 1].id))
            return fmr_error(FMR_ERR_FORMAT, "%s: two subjects have the id '%s' (give explicit ids)", mpath, m->subs[i].id);
    return FMR_OK;
}

static fmr_err read_text(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open the manifest (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size >= (1L << 26)) {
        fclose(f);
        return fmr_error(FMR_ERR_IO, "%s: the manifest is not a regular file below 64 MiB", path);
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t got = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!text || got != (size_t)st.st_size) {
        free(text);
        return fmr_error(FMR_ERR_IO, "%s: cannot read the manifest", path);
    }
    text[got] = 0;
    *out = text;
    return FMR_OK;
}

fmr_err cohort_manifest_load(fmr_cli *cli, const char *path, cohort_manifest *m)
{
    memset(m, 0, sizeof *m);
    char *text;
    FMR_TRY(read_text(path, &text));
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
    char rp[PATH_MAX];
    if (!realpath(path, rp)) return fmr_error(FMR_ERR_IO, "%s: %s", path, strerror(errno));
    m->path = strdup(rp);
    char *sl = strrchr(rp, '/');
    if (sl) *sl = 0;
    m->base = strdup(sl == rp ? "/" : rp);
    if (!m->path || !m->base) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    /* every key known, of the right type; required ones present */
    const cJSON *k;
    cJSON_ArrayForEach(k, m->root)
    {
        int found = 0;
        for (int i = 0; i < NKEYS; i++) found |= !strcmp(k->string, keys[i].name);
        for (const cJSON *q = m->root->child; q != k; q = q->next)
            if (!strcmp(q->string, k->string)) return fmr_error(FMR_ERR_FORMAT, "%s: key '%s' appears twice", path, k->string);
        if (found) continue;
        const char *names[NKEYS];
        for (int i = 0; i < NKEYS; i++) names[i] = keys[i].name;
        char sug[512];
        suggest(k->string, names, NKEYS, "", sug, sizeof sug);
        return fmr_error(FMR_ERR_FORMAT, "%s: unknown key '%s'%s", path, k->string, sug);
    }
    for (int i = 0; i < NKEYS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->root, keys[i].name);
        if (!v) {
            if (keys[i].required)
                return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\"%s is missing", path, keys[i].name,
                                 !strcmp(keys[i].name, "output") ? " (a folder)" : "");
            continue;
        }
        if (keys[i].type == K_STRING && (!cJSON_IsString(v) || !*v->valuestring))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"%s\" must be a non-empty string", path, keys[i].name);
        if (keys[i].type == K_EVALUATE && !cJSON_IsBool(v) && !cJSON_IsArray(v))
            return fmr_error(FMR_ERR_FORMAT, "%s: \"evaluate\" must be true, false or a list of 'fmrecon eval' options "
                             "([\"--crop\", \"cmrxrecon\"])", path);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m->root, "name"),
                *out = cJSON_GetObjectItemCaseSensitive(m->root, "output");
    m->name = strdup(name ? name->valuestring : "cohort");
    m->out = absolute(m->base, out->valuestring);
    if (!m->name || !m->out) return fmr_error(FMR_ERR_NOMEM, "out of memory");
    FMR_TRY(load_subjects(path, m, cJSON_GetObjectItemCaseSensitive(m->root, "subjects")));

    /* the sub-commands' options, against their own tables; file options must exist there too */
    static const command_schema us = {"undersample", fmr_undersample_longopts, fmr_undersample_shortopts,
                                      file_opts_undersample, NULL},
                                rc = {"recon", fmr_recon_longopts, fmr_recon_shortopts, file_opts_recon, NULL},
                                ev = {"eval", fmr_eval_longopts, fmr_eval_shortopts, NULL, eval_allowed};
    const command_schema *all[] = {&us, &rc, &ev};
    for (int i = 0; i < 3; i++) {
        for (const char *const *f = all[i]->file_opts; f && *f; f++)
            if (!find_long(all[i]->lo, *f)) return fmr_error(FMR_ERR_INTERNAL, "cohort schema: %s has no --%s", all[i]->cmd, *f);
        for (const char *const *f = all[i]->allowed; f && *f; f++)
            if (!find_long(all[i]->lo, *f)) return fmr_error(FMR_ERR_INTERNAL, "cohort schema: %s has no --%s", all[i]->cmd, *f);
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(m->root, "undersample"),
                *r = cJSON_GetObjectItemCaseSensitive(m->root, "recon"),
                *e = cJSON_GetObjectItemCaseSensitive(m->root, "evaluate");
    m->has_undersample = u != NULL;
    if (u) FMR_TRY(parse_options(path, "undersample", u, &us, m->base, &m->undersample));
    if (r) FMR_TRY(parse_options(path, "recon", r, &rc, m->base, &m->recon));
    m->do_eval = !e || !cJSON_IsFalse(e);
    if (cJSON_IsArray(e)) FMR_TRY(parse_options(path, "evaluate", e, &ev, m->base, &m->evaluate));
    if (u) FMR_TRY(check_with_command(cli, path, "undersample", fmr_cmd_undersample, "undersample", &m->undersample));
    FMR_TRY(check_with_command(cli, path, "recon", fmr_cmd_recon, "recon", &m->recon));
    m->crop = FMR_EVAL_FASTMRI;
    const char *crop = opt_value(&m->evaluate, "crop");
    if (crop) {
        if (fmr_eval_parse_crop(crop, &m->crop)) {
            char *msg = strdup(fmr_error_message());
            fmr_err err = fmr_error(FMR_ERR_FORMAT, "%s: \"evaluate\": %s", path, msg ? msg : "bad --crop");
            free(msg);
            return err;
        }
    }
    m->crop_name = m->crop == FMR_EVAL_CMRXRECON ? "cmrxrecon" : "fastmri";

    /* what the summary reports, read from the same options the commands get */
    fmr_recon_options d;
    fmr_recon_options_defaults(&d);
    m->method = opt_value(&m->recon, "method") ? opt_value(&m->recon, "method") : d.method;
    m->mask = opt_value(&m->undersample, "mask");
    const char *acc = opt_value(&m->undersample, "accel");
    m->nominal_r = acc && m->mask && strcmp(m->mask, "keep") ? strtod(acc, NULL) : 0.0;
    m->variable = opt_value(&m->recon, "variable");
    m->mask_file = opt_value(&m->recon, "mask-file");
    m->mask_variable = opt_value(&m->recon, "mask-variable");
    (void)opt_flag;

    /* the settings every marker certifies */
    m->settings = cJSON_CreateObject();
    cJSON_AddItemToObject(m->settings, "undersample", u ? opts_json(&m->undersample, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(m->settings, "recon", opts_json(&m->recon, 1));
    if (m->do_eval) {
        cJSON *ej = cJSON_AddObjectToObject(m->settings, "evaluate");
        cJSON_AddStringToObject(ej, "crop", m->crop_name);
    } else {
        cJSON_AddFalseToObject(m->settings, "evaluate");
    }
    cJSON *files = cJSON_AddArrayToObject(m->settings, "files");
    FMR_TRY(hash_files(path, "undersample", &m->undersample, file_opts_undersample, files));
    FMR_TRY(hash_files(path, "recon", &m->recon, file_opts_recon, files));
    cJSON_AddStringToObject(m->settings, "fmrecon_version", fmr_version());
    return FMR_OK;
}

void cohort_manifest_free(cohort_manifest *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->subs[i].id), free(m->subs[i].input);
    free(m->subs);
    opts_free(&m->undersample);
    opts_free(&m->recon);
    opts_free(&m->evaluate);
    cJSON_Delete(m->settings);
    cJSON_Delete(m->root);
    free(m->path);
    free(m->base);
    free(m->name);
    free(m->out);
    memset(m, 0, sizeof *m);
}

char *cohort_manifest_effective(const cohort_manifest *m)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "manifest", m->path);
    cJSON_AddStringToObject(j, "name", m->name);
    cJSON_AddStringToObject(j, "output", m->out);
    cJSON *subs = cJSON_AddArrayToObject(j, "subjects");
    for (size_t i = 0; i < m->n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", m->subs[i].id);
        cJSON_AddStringToObject(s, "input", m->subs[i].input);
        cJSON_AddItemToArray(subs, s);
    }
    cJSON_AddItemToObject(j, "undersample", m->has_undersample ? opts_json(&m->undersample, 0) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "recon", opts_json(&m->recon, 0));
    cJSON_AddStringToObject(j, "method", m->method);
    cJSON_AddStringToObject(j, "mask", m->mask ? m->mask : "as acquired");
    if (m->nominal_r > 0) cJSON_AddNumberToObject(j, "nominal_R", m->nominal_r);
    else cJSON_AddNullToObject(j, "nominal_R");
    if (m->do_eval) {
        cJSON *e = cJSON_AddObjectToObject(j, "evaluate");
        cJSON_AddStringToObject(e, "crop", m->crop_name);
    } else {
        cJSON_AddFalseToObject(j, "evaluate");
    }
    cJSON_AddItemToObject(j, "settings", cJSON_Duplicate(m->settings, 1));
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    return txt;
}

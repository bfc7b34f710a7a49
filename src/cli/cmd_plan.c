/* fmrecon plan IN [recon options] --ranks P: memory per rank and wall time before launch */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fmrecon/log.h"
#include "fmrecon/plan.h"
#include "fmrecon/recon.h"

static const char *help =
    "usage: fmrecon plan IN [recon options] --ranks P [--coil-ranks K] [options]\n"
    "       fmrecon plan MANIFEST.json --ranks P [--shards S] [options]   (a cohort)\n\n"
    "Predicts, before launch, the peak resident memory per rank and the wall time of\n"
    "'fmrecon recon IN [recon options]' on P ranks: memory from the per-part formula of\n"
    "docs/scaling.md (k-space, coil calibration, maps, solver, method state, output round, MPI),\n"
    "time from its cost model. Both are calibrated by reconstructing the first item(s) of IN on\n"
    "this process (seconds), or by a saved calibration (--calibration FILE). Prints the parts,\n"
    "and the sbatch lines slurm/submit uses (--mem-per-cpu with 25 % headroom, --time with 50 %\n"
    "and at least 5 minutes). A cohort manifest plans every subject (the first one of each\n"
    "shape is calibrated), deals subject k to shard k mod S and sums each shard.\n\n"
    "  --ranks P            ranks of the job (default 1)\n"
    "  --ranks-per-node R   ranks on one node (default P: all on one node)\n"
    "  --cores-per-node N   cores of a node (default: this machine's); ranks x threads beyond\n"
    "                       them time-share the cores\n"
    "  --latency-us A, --bandwidth-gbs B   network for the coil sums (default 2 us, 10 GB/s)\n"
    "  --shards S           cohort: array tasks (default 1)\n"
    "  --calibration FILE   use a saved calibration instead of measuring\n"
    "  --save-calibration FILE   write the measured calibration\n"
    "  --json FILE          write the plan (peak_rss_per_rank_bytes, wall_seconds, parts)\n"
    "  recon options        as 'fmrecon recon' (-m, --coil-ranks, --cg-iters, --batch, --complex,\n"
    "                       --model, --weights, --sens, --reg, --precision, ...); -o, --export,\n"
    "                       --preview, --export-dir, --check-options are accepted and ignored\n"
    "  -q                   print only the sbatch lines\n";

typedef struct {
    fmr_recon_options ro;
    fmr_plan_options po;
    long shards;
    const char *cal_file, *save_cal, *json;
    int quiet;
} plan_args;

/* the recon options that change memory or time; every other recon option is accepted */
static fmr_err parse(int argc, char **argv, plan_args *a, int *first_free)
{
    static const struct option lo[] = {
        {"ranks", required_argument, 0, 'P'},      {"ranks-per-node", required_argument, 0, 'R'},
        {"cores-per-node", required_argument, 0, 'N'}, {"latency-us", required_argument, 0, 'a'},
        {"bandwidth-gbs", required_argument, 0, 'B'}, {"shards", required_argument, 0, 'S'},
        {"calibration", required_argument, 0, 'c'}, {"save-calibration", required_argument, 0, 's'},
        {"json", required_argument, 0, 'j'},       {"output", required_argument, 0, 'o'},
        {"method", required_argument, 0, 'm'},     {"complex", no_argument, 0, 'C'},
        {"batch", required_argument, 0, 'b'},      {"cg-iters", required_argument, 0, 'I'},
        {"cg-rtol", required_argument, 0, 'T'},    {"admm-iters", required_argument, 0, 1008},
        {"model", required_argument, 0, 1009},     {"weights", required_argument, 0, 1010},
        {"coil-ranks", required_argument, 0, 1012}, {"schedule", required_argument, 0, 1013},
        {"fft-slabs", no_argument, 0, 1014},       {"sens", required_argument, 0, 1015},
        {"variable", required_argument, 0, 'V'},   {"mask-file", required_argument, 0, 'M'},
        {"mask-variable", required_argument, 0, 'K'}, {"no-prewhiten", no_argument, 0, 2001},
        {"virtual-coils", required_argument, 0, 2002}, {"lambda", required_argument, 0, 'L'},
        {"espirit-kernel", required_argument, 0, 1001}, {"espirit-cal", required_argument, 0, 1002},
        {"espirit-threshold", required_argument, 0, 1003}, {"espirit-crop", required_argument, 0, 1004},
        {"lambda-t", required_argument, 0, 1005},  {"lambda-s", required_argument, 0, 1006},
        {"rho", required_argument, 0, 1007},       {"save-cascades", no_argument, 0, 1011},
        {"reg", required_argument, 0, 1020},       {"precision", required_argument, 0, 1021},
        /* recon options that change neither memory nor time: accepted so that the same recon
         * options plan as run (slurm/submit passes them through) */
        {"export", required_argument, 0, 2010},    {"preview", no_argument, 0, 2011},
        {"export-dir", required_argument, 0, 2012}, {"check-options", no_argument, 0, 2013},
        FMR_GEOMETRY_LONGOPTS,
        {"quiet", no_argument, 0, 'q'},            {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},             {0}};
    fmr_method_params *mp = &a->ro.params;
    long v;
    double d;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:m:qvh", lo, NULL)) != -1) {
        switch (c) {
        case 'P': FMR_TRY(fmr_opt_int("--ranks", optarg, 1, 1 << 20, &v)); a->po.ranks = (int)v; break;
        case 'R': FMR_TRY(fmr_opt_int("--ranks-per-node", optarg, 1, 1 << 16, &v)); a->po.ranks_per_node = (int)v; break;
        case 'N': FMR_TRY(fmr_opt_int("--cores-per-node", optarg, 1, 1 << 16, &v)); a->po.cores_per_node = (int)v; break;
        case 'a': FMR_TRY(fmr_opt_double("--latency-us", optarg, 1e-3, 1e6, &d)); a->po.latency_s = d * 1e-6; break;
        case 'B': FMR_TRY(fmr_opt_double("--bandwidth-gbs", optarg, 1e-6, 1e4, &d)); a->po.bandwidth_Bps = d * 1e9; break;
        case 'S': FMR_TRY(fmr_opt_int("--shards", optarg, 1, 1 << 20, &a->shards)); break;
        case 'c': a->cal_file = optarg; break;
        case 's': a->save_cal = optarg; break;
        case 'j': a->json = optarg; break;
        case 'o': break;
        case 'm': a->ro.method = optarg; break;
        case 'C': a->ro.write_complex = 1; break;
        case 'b': FMR_TRY(fmr_opt_int("--batch", optarg, 1, 4096, &v)); a->ro.batch = (int)v; break;
        case 'I': FMR_TRY(fmr_opt_int("--cg-iters", optarg, 1, 100000, &v)); mp->max_it = (int)v; break;
        case 'T': FMR_TRY(fmr_opt_double("--cg-rtol", optarg, 0, 1, &mp->rtol)); break;
        case 'L': FMR_TRY(fmr_opt_double("--lambda", optarg, 0, 1e12, &mp->lambda)); break;
        case 1001: FMR_TRY(fmr_opt_int("--espirit-kernel", optarg, 2, 32, &v)); mp->espirit.kernel = (int)v; break;
        case 1002: FMR_TRY(fmr_opt_int("--espirit-cal", optarg, 2, 1024, &v)); mp->espirit.cal = (int)v; break;
        case 1003: FMR_TRY(fmr_opt_double("--espirit-threshold", optarg, 0, 1, &mp->espirit.threshold)); break;
        case 1004: FMR_TRY(fmr_opt_double("--espirit-crop", optarg, 0, 1, &mp->espirit.crop)); break;
        case 1005: FMR_TRY(fmr_opt_double("--lambda-t", optarg, 0, 1e12, &mp->lambda_t)); break;
        case 1006: FMR_TRY(fmr_opt_double("--lambda-s", optarg, 0, 1e12, &mp->lambda_s)); break;
        case 1007: FMR_TRY(fmr_opt_double("--rho", optarg, 1e-12, 1e12, &mp->rho)); break;
        case 1008: FMR_TRY(fmr_opt_int("--admm-iters", optarg, 1, 100000, &v)); mp->admm_iters = (int)v; break;
        case 1009: mp->model_file = optarg; break;
        case 1010: mp->weights_file = optarg; break;
        case 1011: a->ro.save_extras = 1; break;
        case 1012: FMR_TRY(fmr_opt_int("--coil-ranks", optarg, 1, 4096, &v)); a->ro.coil_ranks = (int)v; break;
        case 1013:
            if (strcmp(optarg, "static") && strcmp(optarg, "dynamic"))
                return fmr_error(FMR_ERR_ARG, "--schedule: '%s' is not static or dynamic", optarg);
            a->ro.dynamic = !strcmp(optarg, "dynamic");
            break;
        case 1014: a->ro.fft_slabs = 1; break;
        case 1015: mp->sens_file = optarg; break;
        case 'V': a->ro.open.variable = optarg; break;
        case 'M': a->ro.open.mask_file = optarg; break;
        case 'K': a->ro.open.mask_variable = optarg; break;
        case 2001: a->ro.open.no_prewhiten = 1; break;
        case 2002: FMR_TRY(fmr_opt_size("--virtual-coils", optarg, 1, 1024, &a->ro.open.virtual_coils)); break;
        case 1020: mp->reg = optarg; break;
        case 1021:
            if (strcmp(optarg, "f32") && strcmp(optarg, "bf16"))
                return fmr_error(FMR_ERR_ARG, "--precision: '%s' is not f32 or bf16", optarg);
            mp->bf16 = !strcmp(optarg, "bf16");
            break;
        case 2010: case 2011: case 2012: case 2013: break;
        case FMR_OPT_PIXEL_SPACING:
        case FMR_OPT_SLICE_THICKNESS:
        case FMR_OPT_TRIGGER_TIMES: FMR_TRY(fmr_opt_geometry(c, optarg, &a->ro.open.geometry)); break;
        case 'q': a->quiet = 1; break;
        case 'v': break;
        case 'h': return FMR_ERR_STOPPED; /* help: the caller prints it */
        default: return fmr_opt_bad("plan", c, argv);
        }
    }
    *first_free = optind;
    if (!fmr_method_find(a->ro.method ? a->ro.method : "zf"))
        return fmr_error(FMR_ERR_ARG, "unknown method '%s'", a->ro.method);
    return FMR_OK;
}

static void hms(double s, char *buf, size_t n)
{
    long t = (long)ceil(s);
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

/* the sbatch lines: 25 % memory headroom per CPU (threads share a rank's memory), time x 1.5,
 * at least 5 minutes (queue start-up, file-system jitter) */
static void sbatch_lines(double rss, double wall, int threads, char *mem, size_t nm, char *tim, size_t nt)
{
    double mib = ceil(rss * 1.25 / (threads > 0 ? threads : 1) / (1024.0 * 1024.0));
    snprintf(mem, nm, "--mem-per-cpu=%.0fM", mib);
    hms(fmax(300.0, wall * 1.5), tim, nt);
}

typedef struct {
    char path[4096];
    fmr_dataset_info in;
    fmr_plan plan;
} subject;

static fmr_err plan_one(const char *path, plan_args *a, fmr_plan_calibration *cal, int *have_cal,
                        subject *s)
{
    snprintf(s->path, sizeof s->path, "%s", path);
    fmr_dataset *ds = NULL;
    FMR_TRY(fmr_dataset_open(path, &a->ro.open, &ds));
    s->in = *fmr_dataset_get_info(ds);
    fmr_dataset_close(&ds);
    fmr_plan_calibration use;
    if (!*have_cal) {
        fmr_info("plan: calibrating %s on %s (first items)", a->ro.method, path);
        FMR_TRY(fmr_plan_calibrate(path, &a->ro, cal));
        *have_cal = 1;
        if (a->save_cal) FMR_TRY(fmr_plan_calibration_save(a->save_cal, cal));
    }
    if (cal->frames == s->in.frames && cal->coils == s->in.coils && cal->h == s->in.h &&
        cal->w == s->in.w)
        use = *cal;
    else
        fmr_plan_calibration_rescale(cal, &s->in, &use);
    return fmr_plan_compute(&s->in, &a->ro, &use, &a->po, &s->plan);
}

/* subjects of a cohort manifest, as fmrecon cohort lists them (globs sorted, relative to it) */
static fmr_err manifest_inputs(const char *path, plan_args *a, char ***list, size_t *n, cJSON **root)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fmr_error(FMR_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len <= 0 || len > (1 << 24)) {
        fclose(f);
        return fmr_error(FMR_ERR_FORMAT, "%s: empty or larger than 16 MiB", path);
    }
    char *txt = malloc((size_t)len + 1);
    if (!txt) {
        fclose(f);
        return fmr_error(FMR_ERR_NOMEM, "out of memory");
    }
    size_t got = fread(txt, 1, (size_t)len, f);
    fclose(f);
    txt[got] = 0;
    *root = cJSON_Parse(txt);
    free(txt);
    if (!*root) return fmr_error(FMR_ERR_FORMAT, "%s: not JSON", path);
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    const char *dir = dirname(dirbuf);
    const cJSON *subs = cJSON_GetObjectItem(*root, "subjects"), *e;
    if (!cJSON_IsArray(subs)) return fmr_error(FMR_ERR_FORMAT, "%s: no 'subjects' list", path);
    *list = NULL, *n = 0;
    cJSON_ArrayForEach(e, subs)
    {
        const char *s = cJSON_IsString(e) ? e->valuestring
                        : (cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItem(e, "input")))
                            ? cJSON_GetObjectItem(e, "input")->valuestring
                            : NULL;
        if (!s) return fmr_error(FMR_ERR_FORMAT, "%s: a subject is neither a path nor {\"input\": ...}", path);
        char full[8300];
        snprintf(full, sizeof full, "%s%s%s", s[0] == '/' ? "" : dir, s[0] == '/' ? "" : "/", s);
        glob_t g;
        int gr = glob(full, 0, NULL, &g);
        size_t k = gr == 0 ? g.gl_pathc : 1;
        char **nl = realloc(*list, (*n + k) * sizeof **list);
        if (!nl) return fmr_error(FMR_ERR_NOMEM, "out of memory");
        *list = nl;
        for (size_t i = 0; i < k; i++) (*list)[(*n)++] = strdup(gr == 0 ? g.gl_pathv[i] : full);
        if (gr == 0) globfree(&g);
    }
    if (!*n) return fmr_error(FMR_ERR_FORMAT, "%s: lists no subjects", path);
    /* the manifest's recon options */
    const cJSON *r = cJSON_GetObjectItem(*root, "recon");
    if (cJSON_IsArray(r)) {
        int rc = cJSON_GetArraySize(r);
        char **av = calloc((size_t)rc + 2, sizeof *av);
        if (!av) return fmr_error(FMR_ERR_NOMEM, "out of memory");
        av[0] = "plan";
        int k = 1;
        cJSON_ArrayForEach(e, r) if (cJSON_IsString(e)) av[k++] = e->valuestring;
        plan_args tmp = *a;
        int ff;
        fmr_err err = parse(k, av, &tmp, &ff);
        free(av);
        if (err) return fmr_error(err, "%s: its 'recon' options", path);
        tmp.po = a->po, tmp.shards = a->shards, tmp.cal_file = a->cal_file, tmp.save_cal = a->save_cal,
        tmp.json = a->json, tmp.quiet = a->quiet;
        if (a->ro.coil_ranks > 1) tmp.ro.coil_ranks = a->ro.coil_ranks;
        *a = tmp;
    }
    return FMR_OK;
}

static void add_plan_json(cJSON *o, const fmr_plan *p)
{
    cJSON_AddNumberToObject(o, "peak_rss_per_rank_bytes", p->peak_rss_per_rank_bytes);
    cJSON_AddNumberToObject(o, "wall_seconds", p->wall_seconds);
    cJSON *m = cJSON_AddObjectToObject(o, "memory_bytes");
    cJSON_AddNumberToObject(m, "runtime", p->mem_runtime);
    cJSON_AddNumberToObject(m, "kspace", p->mem_kspace);
    cJSON_AddNumberToObject(m, "coil_calibration", p->mem_calib);
    cJSON_AddNumberToObject(m, "maps", p->mem_maps);
    cJSON_AddNumberToObject(m, "solver", p->mem_solver);
    cJSON_AddNumberToObject(m, "method", p->mem_method);
    cJSON_AddNumberToObject(m, "output_round", p->mem_output);
    cJSON_AddNumberToObject(m, "mpi", p->mem_mpi);
    cJSON *t = cJSON_AddObjectToObject(o, "time_seconds");
    cJSON_AddNumberToObject(t, "start", p->t_start);
    cJSON_AddNumberToObject(t, "open", p->t_open);
    cJSON_AddNumberToObject(t, "compute", p->t_compute);
    cJSON_AddNumberToObject(t, "coil_maps", p->t_maps);
    cJSON_AddNumberToObject(t, "communication", p->t_comm);
    cJSON_AddNumberToObject(t, "write", p->t_write);
    cJSON_AddNumberToObject(o, "items", (double)p->items);
    cJSON_AddNumberToObject(o, "groups", (double)p->groups);
    cJSON_AddNumberToObject(o, "items_per_group", (double)p->items_per_group);
    cJSON_AddNumberToObject(o, "coil_ranks", p->coil_ranks);
    cJSON_AddNumberToObject(o, "comm_bytes_per_rank", p->comm_bytes_per_rank);
    cJSON_AddNumberToObject(o, "oversubscription", p->oversubscription);
}

fmr_err fmr_cmd_plan(fmr_cli *cli, int argc, char **argv)
{
    plan_args a = {.shards = 1};
    fmr_recon_options_defaults(&a.ro);
    a.po.ranks = 1;
    int ff = 0;
    fmr_err err = parse(argc, argv, &a, &ff);
    if (err == FMR_ERR_STOPPED) return fmr_cli_help(cli, help), FMR_OK;
    FMR_TRY(err);
    if (ff != argc - 1)
        return fmr_error(FMR_ERR_ARG, "plan takes exactly one input file or manifest (see 'fmrecon plan --help')");
    if (cli->size > 1) return fmr_error(FMR_ERR_ARG, "plan runs on one process (it predicts the MPI job)");
    const char *inp = argv[ff];
    const size_t L = strlen(inp);
    const int cohort = L > 5 && !strcmp(inp + L - 5, ".json");
    char **list = NULL;
    size_t n = 1;
    cJSON *root = NULL;
    if (cohort) {
        err = manifest_inputs(inp, &a, &list, &n, &root);
        if (err) goto out;
    }
    fmr_plan_calibration cal;
    int have = 0;
    if (a.cal_file) {
        FMR_TRY(fmr_plan_calibration_load(a.cal_file, &cal));
        have = 1;
    }
    subject *subs = calloc(n, sizeof *subs);
    double *shard_wall = calloc((size_t)a.shards, sizeof *shard_wall);
    if (!subs || !shard_wall) {
        free(subs), free(shard_wall);
        err = fmr_error(FMR_ERR_NOMEM, "out of memory");
        goto out;
    }
    double rss = 0, total = 0;
    for (size_t k = 0; !err && k < n; k++) {
        err = plan_one(cohort ? list[k] : inp, &a, &cal, &have, &subs[k]);
        if (err) break;
        rss = fmax(rss, subs[k].plan.peak_rss_per_rank_bytes);
        /* a cohort task starts its process once; each subject adds open + compute + write */
        const fmr_plan *p = &subs[k].plan;
        double w = cohort ? p->wall_seconds - (shard_wall[k % (size_t)a.shards] > 0 ? p->t_start : 0) : p->wall_seconds;
        shard_wall[k % (size_t)a.shards] += w;
        total += w;
    }
    if (!err) {
        double wall = 0;
        for (long s = 0; s < a.shards; s++) wall = fmax(wall, shard_wall[s]);
        const int threads = cal.threads > 0 ? cal.threads : 1;
        char mem[64], tim[32];
        sbatch_lines(rss, wall, threads, mem, sizeof mem, tim, sizeof tim);
        if (cli->rank == 0 && !a.quiet) {
            const fmr_plan *p = &subs[0].plan;
            const double MB = 1024.0 * 1024.0;
            printf("plan: %s, %s on %d rank%s (coil groups of %d: %d coil%s per rank), %d thread%s per rank\n",
                   cohort ? inp : inp, a.ro.method ? a.ro.method : "zf", a.po.ranks, a.po.ranks > 1 ? "s" : "",
                   p->coil_ranks, p->coils_per_rank, p->coils_per_rank > 1 ? "s" : "", threads,
                   threads > 1 ? "s" : "");
            printf("  input: %zu frames x %zu slices x %zu coils x %zux%zu; %zu items, %zu per group\n",
                   subs[0].in.frames, subs[0].in.slices, subs[0].in.coils, subs[0].in.h, subs[0].in.w,
                   p->items, p->items_per_group);
            printf("  calibration: t_item %.3f s, coil maps %.3f s per slice, open %.3f s, start %.3f s\n",
                   cal.t_item_s, cal.t_maps_s, cal.t_open_s, cal.t_start_s);
            printf("  memory per rank: %.1f MB = runtime %.1f + k-space %.1f + coil calibration %.1f + maps %.1f\n"
                   "                   + solver %.1f + method %.1f + output round %.1f + MPI %.1f\n",
                   p->peak_rss_per_rank_bytes / MB, p->mem_runtime / MB, p->mem_kspace / MB,
                   p->mem_calib / MB, p->mem_maps / MB, p->mem_solver / MB, p->mem_method / MB,
                   p->mem_output / MB, p->mem_mpi / MB);
            printf("  wall: %.2f s = start %.2f + open %.2f + compute %.2f + coil maps %.2f + comm %.2f"
                   " + write %.2f (oversubscription x%.2f)\n",
                   p->wall_seconds, p->t_start, p->t_open, p->t_compute, p->t_maps, p->t_comm,
                   p->t_write, p->oversubscription);
            if (cohort)
                printf("  cohort: %zu subjects in %ld shard%s: %.1f s in all, the longest shard %.1f s,"
                       " peak %.1f MB per rank\n",
                       n, a.shards, a.shards > 1 ? "s" : "", total, wall, rss / MB);
        }
        if (cli->rank == 0) printf("sbatch %s --time=%s\n", mem, tim);
        if (a.json && cli->rank == 0) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "input", inp);
            cJSON_AddStringToObject(o, "method", a.ro.method ? a.ro.method : "zf");
            cJSON_AddNumberToObject(o, "ranks", a.po.ranks);
            cJSON_AddNumberToObject(o, "threads_per_rank", threads);
            cJSON_AddNumberToObject(o, "peak_rss_per_rank_bytes", rss);
            cJSON_AddNumberToObject(o, "wall_seconds", wall);
            cJSON_AddStringToObject(o, "sbatch_mem_per_cpu", mem + strlen("--mem-per-cpu="));
            cJSON_AddStringToObject(o, "sbatch_time", tim);
            cJSON *c = cJSON_AddObjectToObject(o, "calibration");
            cJSON_AddNumberToObject(c, "t_item_s", cal.t_item_s);
            cJSON_AddNumberToObject(c, "t_maps_s", cal.t_maps_s);
            cJSON_AddNumberToObject(c, "t_open_s", cal.t_open_s);
            cJSON_AddNumberToObject(c, "t_start_s", cal.t_start_s);
            cJSON_AddNumberToObject(c, "peak_rss_bytes", cal.peak_rss_bytes);
            cJSON_AddNumberToObject(c, "runtime_bytes", cal.runtime_bytes);
            if (cohort) {
                cJSON_AddNumberToObject(o, "shards", (double)a.shards);
                cJSON_AddNumberToObject(o, "total_seconds", total);
                cJSON *arr = cJSON_AddArrayToObject(o, "subjects");
                for (size_t k = 0; k < n; k++) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddStringToObject(e, "input", subs[k].path);
                    cJSON_AddNumberToObject(e, "shard", (double)(k % (size_t)a.shards));
                    add_plan_json(e, &subs[k].plan);
                    cJSON_AddItemToArray(arr, e);
                }
            } else {
                add_plan_json(o, &subs[0].plan);
                /* the job's totals above, the single input's parts here */
                cJSON_ReplaceItemInObject(o, "peak_rss_per_rank_bytes", cJSON_CreateNumber(rss));
                cJSON_ReplaceItemInObject(o, "wall_seconds", cJSON_CreateNumber(wall));
            }
            char *txt = cJSON_Print(o);
            cJSON_Delete(o);
            FILE *f = txt ? fopen(a.json, "w") : NULL;
            int ok = f && fputs(txt, f) >= 0;
            if (f) ok = (fclose(f) == 0) && ok;
            if (!ok) err = fmr_error(FMR_ERR_IO, "%s: cannot write", a.json);
            free(txt);
        }
    }
    free(subs);
    free(shard_wall);
out:
    for (size_t k = 0; list && k < n; k++) free(list[k]);
    free(list);
    if (root) cJSON_Delete(root);
    return err;
}

#include "fft/fft_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmrecon/log.h"

/* FFTW's planner is not thread-safe; executing plans is. One lock guards planning and the cache. */
static pthread_mutex_t lock_ = PTHREAD_MUTEX_INITIALIZER;
static int threads_ = 1, threads_ready_ = 0, wisdom_loaded_ = 0;
static unsigned planner_ = FFTW_MEASURE;
enum { FMR_FFT_THREAD_MIN_PIXELS = 256 * 256 };
static int planner_from_env_ = 0, new_plans_ = 0;
static char wisdom_path_[1024];

/* Where FFTW wisdom lives: FMR_FFTW_WISDOM (a file, or "none"), else a per-host file in
 * $XDG_CACHE_HOME/fmrecon (or ~/.cache/fmrecon), so FFTW_MEASURE plans are measured once per
 * machine and size, not at every process start. Wisdom depends on the CPU, hence the host name. */
static void wisdom_location(void)
{
    wisdom_path_[0] = '\0';
    const char *env = getenv("FMR_FFTW_WISDOM");
    /* Wisdom is only a cache: a path too long for the buffer means no wisdom, never a cut path
     * (which would read or write some other file). */
    int n = 0;
    if (env) {
        if (*env && strcmp(env, "none")) n = snprintf(wisdom_path_, sizeof wisdom_path_, "%s", env);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        char host[128] = "host";
        gethostname(host, sizeof host - 1);
        if (xdg && *xdg) n = snprintf(wisdom_path_, sizeof wisdom_path_, "%s/fmrecon/fftwf-wisdom-%s", xdg, host);
        else if (home && *home)
            n = snprintf(wisdom_path_, sizeof wisdom_path_, "%s/.cache/fmrecon/fftwf-wisdom-%s", home, host);
    }
    if (n < 0 || (size_t)n >= sizeof wisdom_path_) wisdom_path_[0] = '\0';
}

static void save_wisdom(void)
{
    if (!wisdom_path_[0] || !new_plans_) return;
    /* create the cache folder (one level below an existing parent is enough for ~/.cache) */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", wisdom_path_);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        char *up = strrchr(dir, '/');
        if (up) {
            *up = '\0';
            mkdir(dir, 0755);
            *up = '/';
        }
        mkdir(dir, 0755);
    }
    /* ranks and concurrent jobs may save at once: write privately, rename into place */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", wisdom_path_, (long)getpid());
    if (fftwf_export_wisdom_to_filename(tmp)) rename(tmp, wisdom_path_);
    else unlink(tmp);
}

typedef struct plan_entry {
    size_t h, w;
    int sign, nthreads;
    fftwf_plan plan;
    struct plan_entry *next;
} plan_entry;
static plan_entry *cache_ = NULL;

void fmr_fft_set_threads(int nthreads)
{
    pthread_mutex_lock(&lock_);
    threads_ = nthreads > 0 ? nthreads : 1;
    pthread_mutex_unlock(&lock_);
}

static int parse_planner(const char *s, unsigned *flags)
{
    if (!strcasecmp(s, "estimate")) *flags = FFTW_ESTIMATE;
    else if (!strcasecmp(s, "measure")) *flags = FFTW_MEASURE;
    else if (!strcasecmp(s, "patient")) *flags = FFTW_PATIENT;
    else return 0;
    return 1;
}

fmr_err fmr_fft_set_planner(const char *effort)
{
    unsigned f;
    if (!parse_planner(effort, &f))
        return fmr_error(FMR_ERR_ARG, "unknown FFTW planner effort '%s' (estimate, measure, patient)",
                         effort);
    pthread_mutex_lock(&lock_);
    if (!planner_from_env_) planner_ = f;
    pthread_mutex_unlock(&lock_);
    return FMR_OK;
}

/* Called with lock_ held. */
static void init_once(void)
{
    if (!wisdom_loaded_) {
        wisdom_loaded_ = 1;
        const char *env = getenv("FMR_FFTW_PLANNER");
        if (env && parse_planner(env, &planner_)) planner_from_env_ = 1;
        wisdom_location();
        if (wisdom_path_[0]) fftwf_import_wisdom_from_filename(wisdom_path_); /* missing is fine */
    }
    if (threads_ > 1 && !threads_ready_) threads_ready_ = fftwf_init_threads();
}

static fmr_err get_plan(size_t h, size_t w, int sign, fftwf_plan *out)
{
    fmr_err err = FMR_OK;
    pthread_mutex_lock(&lock_);
    init_once();
    /* Below 256x256 a 2-D FFT is too short for threads to pay; larger images use them. */
    int nt = (threads_ready_ && h * w >= FMR_FFT_THREAD_MIN_PIXELS) ? threads_ : 1;
    for (plan_entry *e = cache_; e; e = e->next) {
        if (e->h == h && e->w == w && e->sign == sign && e->nthreads == nt) {
            *out = e->plan;
            goto done;
        }
    }
    if (threads_ready_) fftwf_plan_with_nthreads(nt);
    /* Planning with MEASURE overwrites its arrays, so plan on scratch memory. */
    fftwf_complex *scratch = fftwf_alloc_complex(h * w);
    plan_entry *e = calloc(1, sizeof *e);
    if (!scratch || !e) {
        fftwf_free(scratch);
        free(e);
        err = fmr_error(FMR_ERR_NOMEM, "cannot allocate FFT planning buffer for %zux%zu", h, w);
        goto done;
    }
    e->plan = fftwf_plan_dft_2d((int)h, (int)w, scratch, scratch, sign, planner_);
    new_plans_ = 1;
    fftwf_free(scratch);
    if (!e->plan) {
        free(e);
        err = fmr_error(FMR_ERR_LIB, "FFTW could not plan a %zux%zu transform", h, w);
        goto done;
    }
    e->h = h;
    e->w = w;
    e->sign = sign;
    e->nthreads = nt;
    e->next = cache_;
    cache_ = e;
    *out = e->plan;
done:
    pthread_mutex_unlock(&lock_);
    return err;
}

void fmr_fft_cleanup(void)
{
    pthread_mutex_lock(&lock_);
    if (cache_) save_wisdom();
    new_plans_ = 0;
    while (cache_) {
        plan_entry *n = cache_->next;
        fftwf_destroy_plan(cache_->plan);
        free(cache_);
        cache_ = n;
    }
    if (threads_ready_) fftwf_cleanup_threads();
    else fftwf_cleanup();
    threads_ready_ = 0;
    wisdom_loaded_ = 0;
    pthread_mutex_unlock(&lock_);
}

/* Per-axis factors of the centred DFT of length n (see fft_internal.h):
 * with a = floor(n/2) (ifftshift) and b = n - a (fftshift),
 *   pre[m]  = exp(-2 pi i (b m mod n) / n),   post[k] = exp(+2 pi i ((k + b) a mod n) / n).
 * Exponents are reduced modulo n in integers so large sizes keep full phase accuracy. */
static void axis_phases(size_t n, double _Complex *pre, double _Complex *post)
{
    size_t a = n / 2, b = n - a;
    for (size_t m = 0; m < n; m++) {
        double ph = -2.0 * M_PI * (double)((b * m) % n) / (double)n;
        pre[m] = cos(ph) + I * sin(ph);
        double ph2 = 2.0 * M_PI * (double)(((m + b) % n) * a % n) / (double)n;
        post[m] = cos(ph2) + I * sin(ph2);
    }
}

fmr_err fmr_fft2c_create(fmr_fft2c **out, size_t h, size_t w)
{
    *out = NULL;
    if (h == 0 || w == 0 || h > INT32_MAX || w > INT32_MAX || h > SIZE_MAX / w / 16)
        return fmr_error(FMR_ERR_ARG, "invalid FFT size %zux%zu", h, w);
    fmr_fft2c *f = calloc(1, sizeof *f);
    if (!f) return fmr_error(FMR_ERR_NOMEM, "cannot allocate FFT object");
    f->h = h;
    f->w = w;
    f->scale = (float)(1.0 / sqrt((double)h * (double)w));
    fmr_err err = get_plan(h, w, FFTW_FORWARD, &f->fwd);
    if (!err) err = get_plan(h, w, FFTW_BACKWARD, &f->bwd);
    if (!err) err = fmr_alloc((void **)&f->pre, h * w * sizeof(fmr_cfloat), "FFT phases");
    if (!err) err = fmr_alloc((void **)&f->post, h * w * sizeof(fmr_cfloat), "FFT phases");
    double _Complex *ph = NULL;
    if (!err) err = fmr_alloc((void **)&ph, 2 * (h + w) * sizeof *ph, "FFT phases");
    if (err) {
        fmr_free(ph);
        fmr_fft2c_destroy(&f);
        return err;
    }
    double _Complex *pre_h = ph, *post_h = ph + h, *pre_w = ph + 2 * h, *post_w = pre_w + w;
    axis_phases(h, pre_h, post_h);
    axis_phases(w, pre_w, post_w);
    for (size_t r = 0; r < h; r++)
        for (size_t c = 0; c < w; c++) {
            f->pre[r * w + c] = (fmr_cfloat)(pre_h[r] * pre_w[c]);
            f->post[r * w + c] = (fmr_cfloat)(post_h[r] * post_w[c]);
        }
    fmr_free(ph);
    *out = f;
    return FMR_OK;
}

void fmr_fft2c_destroy(fmr_fft2c **f)
{
    if (!f || !*f) return;
    fmr_free((*f)->pre);
    fmr_free((*f)->post);
    free(*f);
    *f = NULL;
}

static fmr_err transform(const fmr_fft2c *f, size_t n, const fmr_cfloat *in, fmr_cfloat *out,
                         int forward)
{
    const size_t hw = f->h * f->w;
    /* The in-place plan needs SIMD-aligned memory; go through a scratch image if out is not. */
    fmr_cfloat *scratch = NULL;
    if (fftwf_alignment_of((float *)out) != 0)
        FMR_TRY(fmr_alloc((void **)&scratch, hw * sizeof *scratch, "FFT scratch"));
    const fmr_cfloat *a = forward ? f->pre : f->post, *b = forward ? f->post : f->pre;
    const float s = f->scale;
    for (size_t i = 0; i < n; i++) {
        const fmr_cfloat *x = in + i * hw;
        fmr_cfloat *y = scratch ? scratch : out + i * hw;
        if (forward) {
            for (size_t p = 0; p < hw; p++) y[p] = x[p] * a[p];
            fmr_fft_raw_forward(f, y);
            for (size_t p = 0; p < hw; p++) y[p] *= s * b[p];
        } else {
            for (size_t p = 0; p < hw; p++) y[p] = x[p] * conjf(a[p]);
            fmr_fft_raw_backward(f, y);
            for (size_t p = 0; p < hw; p++) y[p] *= s * conjf(b[p]);
        }
        if (scratch) memcpy(out + i * hw, scratch, hw * sizeof *scratch);
    }
    fmr_free(scratch);
    return FMR_OK;
}

fmr_err fmr_fft2c_forward(const fmr_fft2c *f, size_t n, const fmr_cfloat *in, fmr_cfloat *out)
{
    return transform(f, n, in, out, 1);
}

fmr_err fmr_fft2c_inverse(const fmr_fft2c *f, size_t n, const fmr_cfloat *in, fmr_cfloat *out)
{
    return transform(f, n, in, out, 0);
}

/* Glue between the runtime and its models: keys from tasks, peaks per device
 * kind for cold starts, the model directory, and observations from finished
 * tasks. */
#include "core/models.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "core/data_impl.h"
#include "core/error.h"
#include "core/perfmodel.h"
#include "core/place.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/vtime.h"
#include "core/xfer_model.h"

struct tsr__models {
    struct tsr__pm *pm;
    struct tsr__xm *xm;
    pthread_mutex_t peaks_mutex;
    atomic_int has_peaks; /* measured when a hint first needs them */
};

/* A buffer of n bytes on memory node `node`. */
static void *node_buffer(tsr_runtime_t *rt, uint32_t node, size_t n)
{
    void *p = NULL;

    if (node == 0) {
        p = malloc(n);
        if (p != NULL) {
            memset(p, 1, n);
        }
        return p;
    }
    /* Straight from the backend: the caching allocator's statistics are the
     * program's. */
    return rt->devices[node].ops->mem_alloc(rt->devices[node].state, &rt->devices[node].mem, n,
                                            &p) == TSR_OK
               ? p
               : NULL;
}

static void node_buffer_free(tsr_runtime_t *rt, uint32_t node, void *p, size_t n)
{
    if (node == 0) {
        free(p);
    } else if (p != NULL) {
        rt->devices[node].ops->mem_free(rt->devices[node].state, &rt->devices[node].mem, p, n);
    }
}

/* Calibration: one copy src -> dst through the backends, waited for. */
static tsr_status_t calib_copy(void *ctx, uint32_t src, uint32_t dst, size_t n, double *seconds_out)
{
    tsr_runtime_t *rt = ctx;
    struct tsr__device *sd = &rt->devices[src];
    struct tsr__device *dd = &rt->devices[dst];
    const struct tsr__device *owner = dst != 0 ? dd : sd;
    void *fence = NULL;
    void *a;
    void *b;
    struct tsr__copy c;
    char msg[256] = "";
    uint64_t t0;
    tsr_status_t st;

    if (src != 0 && dst != 0 && sd->ops != dd->ops) {
        return TSR_ENOTSUP; /* staged through host memory: two copies */
    }
    a = node_buffer(rt, src, n);
    b = node_buffer(rt, dst, n);
    if (a == NULL || b == NULL) {
        node_buffer_free(rt, src, a, n);
        node_buffer_free(rt, dst, b, n);
        return TSR_ENOTSUP;
    }
    c = (struct tsr__copy){b,
                           a,
                           n,
                           dst != 0 ? dd->state : NULL,
                           src != 0 ? sd->state : NULL,
                           NULL,
                           dst != 0 ? &fence : NULL,
                           1};
    /* The first copy into fresh memory also pays for mapping its pages: time the
     * second. */
    st = owner->ops->copy(&c, msg, sizeof(msg));
    t0 = tsr__now_ns();
    if (st == TSR_OK) {
        st = owner->ops->copy(&c, msg, sizeof(msg));
    }
    *seconds_out = (double)(tsr__now_ns() - t0) * 1e-9;
    if (fence != NULL) {
        dd->ops->fence_free(dd->state, fence);
    }
    node_buffer_free(rt, src, a, n);
    node_buffer_free(rt, dst, b, n);
    return st == TSR_OK ? TSR_OK : TSR_ENOTSUP;
}

/* Flops per second of one core on independent multiply-adds (a task runs on one
 * core), over about 10 ms. */
static double core_flops(void)
{
    double acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const double x = 1.0000001;
    const double y = 1e-9;
    const long n = 1 << 20;
    volatile double sink = 0.0;
    uint64_t t0 = tsr__now_ns();
    double s;

    for (long i = 0; i < n; i++) {
        for (int k = 0; k < 8; k++) {
            acc[k] = acc[k] * x + y;
        }
    }
    s = (double)(tsr__now_ns() - t0) * 1e-9;
    for (int k = 0; k < 8; k++) {
        sink += acc[k];
    }
    (void)sink;
    return s > 0.0 ? (double)n * 16.0 / s : 0.0;
}

/* Bytes per second one core copies in host memory (8 MiB, touched first). */
static double core_bytes(void)
{
    const size_t n = 8u << 20;
    char *a = malloc(n);
    char *b = malloc(n);
    double s = 0.0;

    if (a != NULL && b != NULL) {
        uint64_t t0;

        memset(a, 1, n);
        memset(b, 2, n);
        t0 = tsr__now_ns();
        memcpy(b, a, n);
        s = (double)(tsr__now_ns() - t0) * 1e-9;
    }
    free(a);
    free(b);
    return s > 0.0 ? 2.0 * (double)n / s : 0.0; /* read and written */
}

/* Peaks for the cold-start hints: a core's, measured; a sim device computes like
 * one; a GPU's from its backend. */
static void set_peaks(tsr_runtime_t *rt, struct tsr__pm *pm)
{
    double flops = core_flops();
    double bytes = core_bytes();
    int has_cuda = 0;

    tsr__pm_set_peaks(pm, TSR_DEVICE_CPU, flops, bytes);
    tsr__pm_set_peaks(pm, TSR_DEVICE_SIM, flops, bytes);
    for (uint32_t d = 1; d < rt->n_devices && !has_cuda; d++) {
        const struct tsr__device *dev = &rt->devices[d];

        if (dev->ops->kind == TSR_DEVICE_CUDA && dev->ops->peaks != NULL) {
            dev->ops->peaks(dev->state, &flops, &bytes);
            tsr__pm_set_peaks(pm, TSR_DEVICE_CUDA, flops, bytes);
            has_cuda = 1;
        }
    }
}

/* What the cached transfer model was measured on: every node's name and model. */
static void platform_signature(tsr_runtime_t *rt, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "host");

    for (uint32_t d = 1; d < rt->n_devices && used < n; d++) {
        used += (size_t)snprintf(buf + used, n - used, "|%s=%s", rt->devices[d].name,
                                 rt->devices[d].model);
    }
}

static void task_key(struct tsr_future *t, uint32_t kind, struct tsr__pm_key *key, size_t *sizes)
{
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        sizes[i] = t->bufs[i].data->n_bytes;
    }
    key->name = t->name;
    key->kind = kind;
    key->footprint = tsr__pm_footprint(sizes, t->n_bufs, &key->n_bytes);
}

tsr_status_t tsr__models_init(tsr_runtime_t *rt)
{
    struct tsr__models *m;
    const char *dir = rt->cfg.model_dir;

    if (rt->cfg.policy != TSR_SCHED_DMDA) {
        return TSR_OK;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory for the models");
    }
    if (tsr__pm_create(dir != NULL && dir[0] != '\0' ? dir : NULL, &m->pm) != TSR_OK ||
        tsr__xm_create(rt->n_devices, &m->xm) != TSR_OK) {
        tsr__pm_destroy(m->pm);
        free(m);
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory for the models");
    }
    pthread_mutex_init(&m->peaks_mutex, NULL);
    atomic_init(&m->has_peaks, 0);
    rt->models = m;
    {
        struct tsr__pm_load_report rep;

        tsr__pm_get_load_report(m->pm, &rep);
        if (rep.n_bad_files > 0 || rep.n_skipped_lines > 0) {
            tsr__log(rt, TSR_LOG_WARN,
                     "performance models in %s: %u file(s) rejected, %u line(s) skipped; "
                     "first problem: %s",
                     dir, (unsigned)rep.n_bad_files, (unsigned)rep.n_skipped_lines,
                     rep.first_problem);
        }
    }
    /* Measured once per platform and cached; with nowhere to cache it, the defaults
     * stand and observed copies refine them. */
    if (rt->n_devices > 1 && dir != NULL && dir[0] != '\0' && rt->vt == NULL) {
        char signature[1024];

        platform_signature(rt, signature, sizeof(signature));
        if (tsr__xm_setup(m->xm, dir, signature, calib_copy, rt) != TSR_OK) {
            tsr__log(rt, TSR_LOG_WARN, "transfer model: %s", tsr_last_error());
        }
    }
    return TSR_OK;
}

void tsr__models_fini(tsr_runtime_t *rt)
{
    struct tsr__models *m = rt->models;

    if (m == NULL) {
        return;
    }
    if (tsr__pm_save(m->pm) != TSR_OK) {
        tsr__log(rt, TSR_LOG_WARN, "models not saved: %s", tsr_last_error());
    }
    tsr__pm_destroy(m->pm);
    tsr__xm_destroy(m->xm);
    pthread_mutex_destroy(&m->peaks_mutex);
    free(m);
    rt->models = NULL;
}

double tsr__model_predict(tsr_runtime_t *rt, struct tsr_future *t, uint32_t kind)
{
    struct tsr__models *m = rt->models;
    size_t sizes[TSR_MAX_BUFFERS];
    struct tsr__pm_key key;
    struct tsr__pm_estimate est;
    double flops = 0.0;
    double bytes = 0.0;

    if (rt->vt != NULL) {
        return tsr__vt_task_seconds(rt, t, kind); /* a simulation knows its own costs */
    }
    if (m == NULL) {
        return 0.0;
    }
    task_key(t, kind, &key, sizes);
    if (t->cl->flops != NULL) {
        flops = t->cl->flops(sizes, t->n_bufs, t->arg);
    }
    if (t->cl->bytes != NULL) {
        bytes = t->cl->bytes(sizes, t->n_bufs, t->arg);
    }
    if ((flops > 0.0 || bytes > 0.0) &&
        !atomic_load_explicit(&m->has_peaks, memory_order_acquire)) {
        /* Only a cold-start estimate from hints needs the peaks (about 15 ms). */
        pthread_mutex_lock(&m->peaks_mutex);
        if (!atomic_load_explicit(&m->has_peaks, memory_order_relaxed)) {
            set_peaks(rt, m->pm);
            atomic_store_explicit(&m->has_peaks, 1, memory_order_release);
        }
        pthread_mutex_unlock(&m->peaks_mutex);
    }
    tsr__pm_predict(m->pm, &key, flops, bytes, &est);
    return est.seconds;
}

void tsr__place_observe(tsr_runtime_t *rt, struct tsr_future *t, uint32_t dev, double seconds)
{
    struct tsr__models *m = rt->models;
    size_t sizes[TSR_MAX_BUFFERS];
    struct tsr__pm_key key;

    if (m == NULL || rt->vt != NULL) {
        return;
    }
    task_key(t, rt->devices[dev].ops->kind, &key, sizes);
    (void)tsr__pm_record(m->pm, &key, seconds);
}

double tsr__xfer_predict(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes)
{
    if (rt->vt != NULL) {
        return tsr__vt_copy_seconds(rt, src, dst, n_bytes);
    }
    if (rt->models == NULL) {
        return src == dst ? 0.0
                          : TSR_XM_DEFAULT_LATENCY_S + (double)n_bytes / TSR_XM_DEFAULT_BYTES_PER_S;
    }
    return tsr__xm_predict(rt->models->xm, src, dst, n_bytes);
}

void tsr__xfer_observe(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes,
                       double seconds)
{
    if (rt->models != NULL) {
        tsr__xm_observe(rt->models->xm, src, dst, n_bytes, seconds);
    }
}

void tsr__models_print(tsr_runtime_t *rt, FILE *out)
{
    const char *names[TSR_MAX_NODES];
    static const char *const cache_state[] = {"loaded from the cache", "measured now",
                                              "measured now (the cache was for another platform)",
                                              "measured now (the cache was unreadable)"};
    enum tsr__xm_cache cs;

    if (rt->models == NULL) {
        fprintf(out, "models: not used by policy %s\n", tsr_sched_policy_name(rt->cfg.policy));
        return;
    }
    fprintf(out, "model directory: %s\n", rt->model_dir[0] ? rt->model_dir : "(none: not saved)");
    if (rt->n_devices > 1) {
        for (uint32_t i = 0; i < rt->n_devices; i++) {
            names[i] = tsr__node_name(rt, i);
        }
        cs = tsr__xm_cache_state(rt->models->xm);
        fprintf(out, "transfer model: %s\n",
                rt->model_dir[0] == '\0' ? "defaults, refined by observed copies"
                                         : cache_state[cs <= TSR_XM_CACHE_BAD ? cs : 1]);
        tsr__xm_print(rt->models->xm, out, names);
    }
    tsr__pm_print(rt->models->pm, out);
}

tsr_status_t tsr_runtime_print_models(tsr_runtime_t *rt, FILE *out)
{
    if (rt == NULL || out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_print_models: NULL argument");
    }
    tsr__models_print(rt, out);
    return TSR_OK;
}

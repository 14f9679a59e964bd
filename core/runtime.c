/* Runtime start-up, shutdown, whole-runtime waits, cancellation and statistics. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_impl.h"
#include "core/data_impl.h"
#include "core/device.h"
#include "core/error.h"
#include "core/host_mem.h"
#include "core/models.h"
#include "core/place.h"
#include "core/progress.h"
#include "core/runtime_impl.h"
#include "core/sched.h"
#include "core/task_impl.h"
#include "core/trace.h"
#include "core/vtime.h"
#include "core/worker.h"
#include "devices/device_ops.h"
#include "tessera/config.h"

#define WAIT_ALL_SPINS 256

/* Distinguishes runtimes in thread-local task caches; never reused in a process. */
static _Atomic uint64_t next_runtime_uid = 1;

const char *tsr_version(void)
{
    return TSR_VERSION_STRING;
}

static tsr_status_t setup(tsr_runtime_t *rt, const tsr_config_t *resolved, int policy_is_default)
{
    char model_dir[4096];

    rt->cfg = *resolved;
    if (resolved->trace_path != NULL) {
        rt->trace_path = strdup(resolved->trace_path);
        if (rt->trace_path == NULL) {
            return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
        }
    }
    rt->cfg.trace_path = rt->trace_path;
    tsr__config_model_dir(resolved, model_dir, sizeof(model_dir));
    rt->model_dir = strdup(model_dir);
    if (rt->model_dir == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    rt->cfg.model_dir = rt->model_dir;
    tsr__config_spill_dir(resolved, model_dir, sizeof(model_dir));
    rt->spill_dir = strdup(model_dir);
    if (rt->spill_dir == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    rt->cfg.spill_dir = rt->spill_dir;
    rt->host_limit = tsr__config_limit(&resolved->host_memory_limit, tsr__config_host_ram(), 0.8);
    if (resolved->simulate != NULL) {
        rt->simulate = strdup(resolved->simulate);
        if (rt->simulate == NULL) {
            return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
        }
        rt->cfg.simulate = rt->simulate;
        TSR_TRY(tsr__vt_create(rt));
    }
    rt->uid = atomic_fetch_add(&next_runtime_uid, 1);
    rt->t0_ns = tsr__now_ns();
    tsr__task_pool_init(&rt->pool);
    pthread_mutex_init(&rt->data_mutex, NULL);
    pthread_mutex_init(&rt->mem_trace_mutex, NULL);
    tsr__host_mem_init(rt);
    rt->oom_cause =
        tsr__cause_create(TSR_ENOMEM, UINT64_MAX, "out of memory while recording a dependency",
                          "cancelled: out of memory while recording a dependency");
    if (rt->oom_cause == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    TSR_TRY(tsr__devices_setup(rt));
    TSR_TRY(tsr__spill_init(rt));
    rt->coherent = rt->n_devices > 1 || rt->spill.enabled;
    if (policy_is_default && rt->n_devices > 1) {
        rt->cfg.policy = TSR_SCHED_DMDA; /* the default with accelerators */
    }
    TSR_TRY(tsr__models_init(rt));
    if (rt->n_devices > 1 && !tsr__place_is_deferred(rt)) {
        TSR_TRY(tsr__central_init(&rt->shared));
        rt->has_shared = 1;
    }
    rt->sched = tsr__sched_lookup(rt->cfg.policy);
    return rt->sched->init(rt, &rt->sched_state);
}

static void teardown(tsr_runtime_t *rt)
{
    tsr__progress_stop(rt);
    tsr__spill_stop(rt);
    while (rt->data_list != NULL) {
        tsr__data_free(rt->data_list);
    }
    tsr__spill_fini(rt);
    tsr__host_mem_fini(rt);
    if (rt->sched_state != NULL) {
        rt->sched->fini(rt->sched_state);
    }
    for (uint32_t i = 0; rt->workers != NULL && i < rt->n_workers; i++) {
        tsr__trace_buf_fini(&rt->workers[i].trace);
    }
    free(rt->workers);
    tsr__models_fini(rt);
    if (rt->has_shared) {
        tsr__central_fini(&rt->shared);
    }
    tsr__devices_fini(rt);
    tsr__task_pool_fini(&rt->pool);
    pthread_mutex_destroy(&rt->data_mutex);
    tsr__trace_buf_fini(&rt->mem_trace);
    pthread_mutex_destroy(&rt->mem_trace_mutex);
    tsr__cause_release(rt->oom_cause);
    tsr__cause_release(atomic_load(&rt->cancel_cause));
    free(rt->trace_path);
    free(rt->model_dir);
    free(rt->spill_dir);
    tsr__vt_destroy(rt);
    free(rt->simulate);
    free(rt);
}

tsr_status_t tsr_init(const tsr_config_t *config, tsr_runtime_t **rt_out)
{
    tsr_config_t resolved;
    tsr_runtime_t *rt;
    tsr_status_t st;

    if (rt_out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_init: rt_out is NULL");
    }
    st = tsr_config_resolve(config, &resolved);
    if (st != TSR_OK) {
        return tsr__fail(st, "tsr_init: %s", tsr_last_error());
    }
    rt = aligned_alloc(TSR_CACHE_LINE, sizeof(*rt));
    if (rt == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    memset(rt, 0, sizeof(*rt));
    st = setup(rt, &resolved, tsr__config_policy_is_default(config));
    if (st == TSR_OK) {
        st = tsr__workers_start(rt);
    }
    if (st == TSR_OK) {
        st = tsr__spill_start(rt);
    }
    if (st == TSR_OK) {
        st = tsr__progress_start(rt);
    }
    if (st != TSR_OK) {
        teardown(rt);
        return st;
    }
    tsr__log(rt, TSR_LOG_INFO, "started %u CPU workers (policy %s) and %u accelerators",
             (unsigned)rt->n_cpu_workers, rt->sched->name, (unsigned)(rt->n_devices - 1));
    *rt_out = rt;
    return TSR_OK;
}

uint64_t tsr__runtime_n_done(tsr_runtime_t *rt)
{
    uint64_t n = atomic_load_explicit(&rt->n_aux_done, memory_order_seq_cst);

    for (uint32_t i = 0; i < rt->n_workers; i++) {
        n += atomic_load_explicit(&rt->workers[i].n_completed, memory_order_seq_cst);
    }
    return n;
}

/* Completions are read before submissions: every counted completion is of a task
 * counted in next_id, and a task that submits another completes after it, so
 * equality means nothing is left. */
static int all_done(tsr_runtime_t *rt)
{
    uint64_t n_done = tsr__runtime_n_done(rt);

    return n_done == atomic_load_explicit(&rt->next_id, memory_order_seq_cst);
}

void tsr__runtime_check_idle(tsr_runtime_t *rt)
{
    if (atomic_load_explicit(&rt->done_ev.n_waiters, memory_order_seq_cst) != 0 && all_done(rt)) {
        tsr__event_wake(&rt->done_ev, 1 << 30);
    }
}

static tsr_status_t wait_all(tsr_runtime_t *rt)
{
    if (rt->vt != NULL) {
        TSR_TRY(tsr__vt_run(rt));
        if (!all_done(rt)) {
            return tsr__fail(TSR_EBUSY,
                             "tsr_wait_all: the simulation cannot go on: the tasks left "
                             "wait for a handle the program still holds acquired");
        }
        return TSR_OK;
    }
    for (int i = 0; i < WAIT_ALL_SPINS; i++) {
        if (all_done(rt)) {
            return TSR_OK;
        }
        tsr__cpu_relax();
    }
    for (;;) {
        uint32_t key = tsr__event_prepare(&rt->done_ev);

        if (all_done(rt)) {
            tsr__event_cancel(&rt->done_ev);
            return TSR_OK;
        }
        tsr__event_commit(&rt->done_ev, key);
    }
}

tsr_status_t tsr_wait_all(tsr_runtime_t *rt)
{
    tsr_status_t st;

    if (rt == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_wait_all: rt is NULL");
    }
    if (tsr__worker_self(rt) != NULL) {
        return tsr__fail(TSR_EBUSY,
                         "tsr_wait_all: called from inside a task, which would "
                         "wait for itself; wait for specific futures instead");
    }
    st = wait_all(rt);
    tsr__progress_settle(rt);
    return st;
}

/* A handle still acquired would hold back every task after it, and shutdown would
 * wait forever: release it, and say so. */
static void release_forgotten_acquires(tsr_runtime_t *rt)
{
    for (;;) {
        struct tsr_data *held = NULL;

        pthread_mutex_lock(&rt->data_mutex);
        for (struct tsr_data *d = rt->data_list; d != NULL && held == NULL; d = d->next) {
            held = d->acquire != NULL ? d : NULL;
        }
        pthread_mutex_unlock(&rt->data_mutex);
        if (held == NULL) {
            return;
        }
        tsr__log(rt, TSR_LOG_WARN,
                 "tsr_shutdown: a data handle was still acquired; releasing it (call "
                 "tsr_data_release before shutdown)");
        tsr_data_release(held);
    }
}

void tsr_shutdown(tsr_runtime_t *rt)
{
    if (rt == NULL) {
        return;
    }
    if (tsr__worker_self(rt) != NULL) {
        tsr__log(rt, TSR_LOG_ERROR, "tsr_shutdown: called from inside a task; ignored");
        return;
    }
    release_forgotten_acquires(rt);
    tsr_wait_all(rt);
    tsr__progress_stop(rt); /* reports the end of the last batch */
    tsr__workers_stop(rt);
    if (rt->trace_path != NULL && tsr__trace_write(rt) != TSR_OK) {
        tsr__log(rt, TSR_LOG_ERROR, "%s", tsr_last_error());
    }
    teardown(rt);
}

tsr_status_t tsr_runtime_cancel(tsr_runtime_t *rt)
{
    if (rt == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_cancel: rt is NULL");
    }
    pthread_mutex_lock(&rt->data_mutex);
    if (atomic_load(&rt->cancel_cause) == NULL) {
        const char *msg = "cancelled by tsr_runtime_cancel before it started";
        struct tsr_cause *c = tsr__cause_create(TSR_ECANCELED, UINT64_MAX, msg, msg);

        if (c == NULL) {
            pthread_mutex_unlock(&rt->data_mutex);
            return tsr__fail(TSR_ENOMEM, "tsr_runtime_cancel: out of memory");
        }
        atomic_store_explicit(&rt->cancel_cause, c, memory_order_release);
    }
    /* Tasks carry the epoch of their submission; a task of an older epoch is
     * cancelled when a worker takes it. */
    atomic_fetch_add_explicit(&rt->cancel_epoch, 1, memory_order_acq_rel);
    pthread_mutex_unlock(&rt->data_mutex);
    return TSR_OK;
}

tsr_status_t tsr_runtime_stats(tsr_runtime_t *rt, tsr_runtime_stats_t *stats_out)
{
    tsr_runtime_stats_t s = TSR_RUNTIME_STATS_INIT;
    if (rt == NULL || stats_out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_stats: rt and stats_out must be non-NULL");
    }
    s.n_cpu_workers = rt->n_cpu_workers;
    s.policy = rt->cfg.policy;
    s.n_submitted = atomic_load(&rt->next_id) - atomic_load(&rt->n_aux);
    s.n_failed = atomic_load(&rt->n_failed);
    s.n_cancelled = atomic_load(&rt->n_cancelled);
    for (uint32_t i = 0; i < rt->n_workers; i++) {
        s.n_completed += atomic_load(&rt->workers[i].n_completed);
        s.n_stolen += atomic_load_explicit(&rt->workers[i].n_stolen, memory_order_relaxed);
        s.n_launched_early +=
            atomic_load_explicit(&rt->workers[i].n_launched_early, memory_order_relaxed);
    }
    *stats_out = s;
    return TSR_OK;
}

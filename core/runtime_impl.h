/* The runtime object. Private to core/. */
#ifndef TSR_CORE_RUNTIME_IMPL_H
#define TSR_CORE_RUNTIME_IMPL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

#include "core/sync.h"
#include "core/task_pool.h"

struct tsr__worker;
struct tsr__sched_ops;
struct tsr__device_ops;
struct tsr_data;
struct tsr_cause;

struct tsr_runtime {
    tsr_config_t cfg; /* resolved; cfg.trace_path points to trace_path */
    char *trace_path;
    uint64_t uid; /* distinguishes runtimes in thread-local caches */
    uint64_t t0_ns;
    uint32_t n_workers;
    struct tsr__worker *workers;
    const struct tsr__sched_ops *sched;
    void *sched_state;
    const struct tsr__device_ops *kind_ops[TSR_DEVICE_KIND_COUNT]; /* NULL: kind absent */
    struct tsr__task_pool pool;

    /* Every task (acquires too) takes its id here; wait_all compares it with the
     * sum of completions. Submitters write it, workers never do. */
    alignas(TSR_CACHE_LINE) _Atomic uint64_t next_id;
    alignas(TSR_CACHE_LINE) _Atomic uint64_t n_aux; /* acquire tasks created */
    _Atomic uint64_t n_aux_done;                    /* acquire tasks completed */
    _Atomic uint64_t n_failed;
    _Atomic uint64_t n_cancelled;
    atomic_uint cancel_epoch;
    _Atomic(struct tsr_cause *) cancel_cause;
    struct tsr_cause *oom_cause; /* made at start-up, for when an edge cannot be stored */
    atomic_uint is_stopping;

    alignas(TSR_CACHE_LINE) struct tsr__event work_ev; /* idle workers sleep here */
    atomic_uint n_spinning;                            /* workers looking for work */
    alignas(TSR_CACHE_LINE) struct tsr__event done_ev; /* tsr_wait_all sleeps here */

    pthread_mutex_t data_mutex; /* guards data_list and cancel_cause creation */
    struct tsr_data *data_list;
};

/* Number of tasks completed (acquires included); see tsr_wait_all. */
uint64_t tsr__runtime_n_done(tsr_runtime_t *rt);

/* A task finished on a worker: wake tsr_wait_all if everything is done. */
void tsr__runtime_check_idle(tsr_runtime_t *rt);

#endif /* TSR_CORE_RUNTIME_IMPL_H */

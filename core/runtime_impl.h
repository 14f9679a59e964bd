/* The runtime object. Private to core/. */
#ifndef TSR_CORE_RUNTIME_IMPL_H
#define TSR_CORE_RUNTIME_IMPL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

#include "core/host_mem.h"
#include "core/mem_cache.h"
#include "core/sched.h"
#include "core/spill.h"
#include "core/sync.h"
#include "core/task_pool.h"
#include "core/trace.h"
#include "devices/device_ops.h"

struct tsr__worker;
struct tsr__sched_ops;
struct tsr__device_ops;
struct tsr_data;
struct tsr_cause;
struct tsr__models;
struct tsr__vt;
struct tsr__progress;

/* Memory nodes: 0 is host memory, device d > 0 owns node d (one node per device). */
#define TSR_MAX_NODES 16

/* A device: the CPU (device 0, fed by the scheduling policy) or an accelerator
 * with its own memory node, queue and workers. */
struct tsr__device {
    uint32_t index;
    uint32_t kind_index;
    uint32_t node;
    uint32_t first_worker;
    uint32_t n_workers;
    const struct tsr__device_ops *ops;
    void *state;  /* the backend's, from ops->open */
    int is_async; /* launched and polled (device_ops.h), not executed */
    struct tsr__dev_mem mem;
    struct tsr__mem_cache cache; /* accelerators only */
    struct tsr__central queue;   /* accelerators only */
    int has_queue;
    alignas(TSR_CACHE_LINE) struct tsr__event ev; /* its idle workers sleep here */
    _Atomic uint64_t load_ns;       /* dmda: predicted work placed here, not completed */
    _Atomic uint64_t spilled_bytes; /* dirty replicas evicted to host memory */
    _Atomic uint64_t n_evicted;
    _Atomic uint64_t n_evicted_ahead;
    /* Eviction ahead of need (tsr__coh_evict_ahead; the driver thread's own). */
    int is_evicting_ahead;
    uint64_t ahead_stuck_at; /* the driver's completions when nothing could go */
    char name[32];
    char model[64]; /* what the backend calls it ("NVIDIA H100 80GB HBM3") */
};

struct tsr_runtime {
    tsr_config_t cfg; /* resolved; cfg.trace_path points to trace_path */
    char *trace_path;
    char *model_dir; /* cfg.model_dir points here; "" when models are not saved */
    uint64_t uid;    /* distinguishes runtimes in thread-local caches */
    uint64_t t0_ns;
    uint32_t n_workers;     /* all workers: CPU ones first, then the devices' */
    uint32_t n_cpu_workers; /* workers 0..n_cpu_workers-1 run the CPU policy */
    struct tsr__worker *workers;
    uint32_t n_devices; /* also the number of memory nodes */
    struct tsr__device *devices;
    atomic_uint next_rr; /* round robin among devices of a kind */
    /* eager and ws with accelerators: tasks any device can run, for any idle worker */
    struct tsr__central shared;
    int has_shared;
    const struct tsr__sched_ops *sched;
    void *sched_state;
    struct tsr__models *models; /* dmda's; NULL under other policies */
    struct tsr__vt *vt;         /* a simulation (core/vtime.c); NULL when running for real */
    char *simulate;             /* cfg.simulate points here */
    struct tsr__progress *progress; /* core/progress.c; NULL when no progress is shown */
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

    /* Host memory (node 0): its limit, the replicas the runtime allocated there,
     * and the buffers the program registered. */
    uint64_t host_limit;
    _Atomic uint64_t host_used;
    _Atomic uint64_t host_peak;
    _Atomic uint64_t host_registered;
    struct tsr__host_spares host_spares; /* freed blocks kept for reuse (core/host_mem.c) */
    char *spill_dir;
    struct tsr__spill spill; /* the disk tier (core/spill.c) */
    /* Tasks and acquires go through coherence (fetch, pin, mark written): with
     * accelerators, or when host replicas may be spilled to disk. */
    int coherent;
    pthread_mutex_t mem_trace_mutex; /* memory counters for the trace */
    struct tsr__trace_buf mem_trace;

    /* Copies between memory nodes [src][dst]. */
    _Atomic uint64_t n_copies[TSR_MAX_NODES][TSR_MAX_NODES];
    _Atomic uint64_t use_clock; /* orders the uses of device replicas, for eviction */
    _Atomic uint64_t n_copy_bytes[TSR_MAX_NODES][TSR_MAX_NODES];

    pthread_mutex_t data_mutex; /* guards data_list and cancel_cause creation */
    struct tsr_data *data_list;
};

/* Name of a memory node: "host" for node 0, else its device's name. */
static inline const char *tsr__node_name(const tsr_runtime_t *rt, uint32_t node)
{
    return node == 0 ? "host" : rt->devices[node].name;
}

/* The runtime allocated (delta > 0) or freed host memory for replicas. */
static inline void tsr__host_account(tsr_runtime_t *rt, int64_t delta)
{
    uint64_t used =
        atomic_fetch_add_explicit(&rt->host_used, (uint64_t)delta, memory_order_relaxed) +
        (uint64_t)delta;

    if (delta > 0) {
        tsr__atomic_max_u64(&rt->host_peak, used);
    }
    tsr__trace_memory(rt, 0, used);
}

/* Host memory in replicas: host_used less the spare blocks (see host_mem.h). */
static inline uint64_t tsr__host_in_use(tsr_runtime_t *rt)
{
    return atomic_load_explicit(&rt->host_used, memory_order_relaxed) -
           atomic_load_explicit(&rt->host_spares.bytes, memory_order_relaxed);
}

/* Number of tasks completed (acquires included); see tsr_wait_all. */
uint64_t tsr__runtime_n_done(tsr_runtime_t *rt);

/* A task finished on a worker: wake tsr_wait_all if everything is done. */
void tsr__runtime_check_idle(tsr_runtime_t *rt);

#endif /* TSR_CORE_RUNTIME_IMPL_H */

/* CPU worker threads: the loop that pops and runs tasks, and sleeping. Private to
 * core/. */
#ifndef TSR_CORE_WORKER_H
#define TSR_CORE_WORKER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tessera/runtime.h>

#include "core/sync.h"
#include "core/task_pool.h"
#include "core/trace.h"

struct tsr_future;
struct tsr__device;

/* Launches an asynchronous device's driver thread keeps in flight at most. */
#define TSR_MAX_INFLIGHT 64

/* A task launched on an asynchronous device, not known to be complete; or, with
 * token NULL, one launched early that already ended at its launch (status, msg)
 * and waits for its predecessors to finish first. */
struct tsr__inflight {
    struct tsr_future *task;
    void *token;
    uint64_t t0;
    uint32_t slot; /* the backend's stream */
    tsr_status_t status;
    char *msg; /* malloc'd, or NULL */
};

struct tsr__worker {
    tsr_runtime_t *rt;
    struct tsr__device *dev; /* the device this worker feeds */
    uint32_t index;
    uint32_t rng;
    pthread_t thread;
    int is_started;
    struct tsr__task_cache cache;
    void *sched_local; /* policy's per-worker state */
    struct tsr__trace_buf trace;
    /* Written by this worker only; summed by tsr_wait_all and stats. */
    alignas(TSR_CACHE_LINE) _Atomic uint64_t n_completed;
    _Atomic uint64_t n_stolen;
    _Atomic uint64_t n_launched_early;
    /* Asynchronous devices' driver threads: launches in flight, oldest first. */
    uint32_t n_inflight;
    struct tsr__inflight inflight[TSR_MAX_INFLIGHT];
};

/* Next task for worker w: from its device's queue (the CPU policy for the CPU),
 * else from the runtime's shared queue. NULL if none now. */
struct tsr_future *tsr__worker_pop(struct tsr__worker *w);

/* The worker of the calling thread if it belongs to rt, else NULL. */
struct tsr__worker *tsr__worker_self(const tsr_runtime_t *rt);

/* New ready work was queued: wake a sleeping worker unless one is already looking
 * for work (it will find it). */
void tsr__workers_notify(tsr_runtime_t *rt);

/* Wake every sleeping worker (shutdown, or a task others wait for finished). */
void tsr__workers_wake_all(tsr_runtime_t *rt);

tsr_status_t tsr__workers_start(tsr_runtime_t *rt);
/* Ask the workers to exit once idle and join them. */
void tsr__workers_stop(tsr_runtime_t *rt);

/* An asynchronous device's driver w: wait for every launch it has in flight. */
void tsr__driver_drain(struct tsr__worker *w);

/* Run ready tasks on worker w until `t` is done (a task waiting for a future). */
void tsr__worker_help_until(struct tsr__worker *w, struct tsr_future *t);

#endif /* TSR_CORE_WORKER_H */

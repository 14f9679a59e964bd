/* The task pool: tasks come from slabs and are recycled through per-thread caches,
 * so the submit/complete path allocates nothing and takes the pool mutex only once
 * per batch. Private to core/. */
#ifndef TSR_CORE_TASK_POOL_H
#define TSR_CORE_TASK_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>

struct tsr_future;

#define TSR_POOL_BATCH 64

struct tsr__task_cache {
    struct tsr_future *head;
    uint32_t n_tasks;
};

struct pool_slab;

struct tsr__task_pool {
    pthread_mutex_t mutex;
    struct pool_slab *slabs;
    struct tsr_future **batches; /* each a chain of TSR_POOL_BATCH tasks */
    size_t n_batches;
    size_t cap_batches;
    size_t n_tasks_total;
};

void tsr__task_pool_init(struct tsr__task_pool *pool);
/* Frees every slab, including tasks still referenced by unreleased futures. */
void tsr__task_pool_fini(struct tsr__task_pool *pool);

/* A fresh zeroed-enough task for rt, from the calling thread's cache; NULL when out
 * of memory. */
struct tsr_future *tsr__task_alloc(tsr_runtime_t *rt);
/* Return a finished task to the calling thread's cache. */
void tsr__task_free(tsr_runtime_t *rt, struct tsr_future *t);

#endif /* TSR_CORE_TASK_POOL_H */

/* Task pool. Workers recycle into their own cache; other threads use a
 * thread-local cache tagged with the runtime's uid, so a cache left behind by a
 * finished runtime is never dereferenced. Full caches give a batch back to the
 * shared stack under the mutex: one lock per TSR_POOL_BATCH tasks. */
#include "core/task_pool.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/worker.h"

#define SLAB_TASKS (4 * TSR_POOL_BATCH)

struct pool_slab {
    struct pool_slab *next;
    struct tsr_future *tasks;
};

struct ext_cache {
    uint64_t rt_uid;
    struct tsr__task_cache cache;
};

static _Thread_local struct ext_cache tls_cache;

void tsr__task_pool_init(struct tsr__task_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
    pthread_mutex_init(&pool->mutex, NULL);
}

void tsr__task_pool_fini(struct tsr__task_pool *pool)
{
    struct pool_slab *slab = pool->slabs;

    while (slab != NULL) {
        struct pool_slab *next = slab->next;

        /* Tasks still held by unreleased futures keep their failure cause (and,
         * never having run, a heap argument); recycled ones hold neither. */
        for (size_t i = 0; i < SLAB_TASKS; i++) {
            struct tsr_future *t = &slab->tasks[i];

            tsr__cause_release(atomic_load_explicit(&t->cause, memory_order_relaxed));
            if (t->flags & TSR_TASK_F_ARG_HEAP) {
                free(t->arg);
            }
        }
        free(slab->tasks);
        free(slab);
        slab = next;
    }
    free(pool->batches);
    pthread_mutex_destroy(&pool->mutex);
}

static struct tsr__task_cache *my_cache(tsr_runtime_t *rt)
{
    struct tsr__worker *w = tsr__worker_self(rt);

    if (w != NULL) {
        return &w->cache;
    }
    if (tls_cache.rt_uid != rt->uid) {
        /* Tasks cached for another (possibly finished) runtime are forgotten;
         * their slabs belong to that runtime. */
        tls_cache.rt_uid = rt->uid;
        tls_cache.cache.head = NULL;
        tls_cache.cache.n_tasks = 0;
    }
    return &tls_cache.cache;
}

static int push_batch(struct tsr__task_pool *pool, struct tsr_future *chain)
{
    if (pool->n_batches == pool->cap_batches) {
        size_t cap = pool->cap_batches ? 2 * pool->cap_batches : 16;
        struct tsr_future **b = realloc(pool->batches, cap * sizeof(*b));

        if (b == NULL) {
            return 0;
        }
        pool->batches = b;
        pool->cap_batches = cap;
    }
    pool->batches[pool->n_batches++] = chain;
    return 1;
}

/* Under the mutex: a new slab, chained into batches; returns one batch. */
static struct tsr_future *grow(struct tsr__task_pool *pool)
{
    struct pool_slab *slab = malloc(sizeof(*slab));
    struct tsr_future *tasks = aligned_alloc(TSR_CACHE_LINE, SLAB_TASKS * sizeof(*tasks));

    if (slab == NULL || tasks == NULL) {
        free(slab);
        free(tasks);
        return NULL;
    }
    memset(tasks, 0, SLAB_TASKS * sizeof(*tasks));
    for (size_t i = 0; i < SLAB_TASKS; i++) {
        tasks[i].next = (i + 1) % TSR_POOL_BATCH != 0 ? &tasks[i + 1] : NULL;
    }
    slab->tasks = tasks;
    slab->next = pool->slabs;
    pool->slabs = slab;
    pool->n_tasks_total += SLAB_TASKS;
    for (size_t b = 1; b < SLAB_TASKS / TSR_POOL_BATCH; b++) {
        if (!push_batch(pool, &tasks[b * TSR_POOL_BATCH])) {
            break; /* those tasks stay unused; the slab is still freed at fini */
        }
    }
    return &tasks[0];
}

struct tsr_future *tsr__task_alloc(tsr_runtime_t *rt)
{
    struct tsr__task_cache *cache = my_cache(rt);
    struct tsr_future *t;

    if (cache->head == NULL) {
        struct tsr__task_pool *pool = &rt->pool;

        pthread_mutex_lock(&pool->mutex);
        cache->head = pool->n_batches > 0 ? pool->batches[--pool->n_batches] : grow(pool);
        pthread_mutex_unlock(&pool->mutex);
        if (cache->head == NULL) {
            return NULL;
        }
        cache->n_tasks = TSR_POOL_BATCH;
    }
    t = cache->head;
    cache->head = t->next;
    cache->n_tasks--;
    t->next = NULL;
    return t;
}

void tsr__task_free(tsr_runtime_t *rt, struct tsr_future *t)
{
    struct tsr__task_cache *cache = my_cache(rt);

    t->next = cache->head;
    cache->head = t;
    if (++cache->n_tasks >= 2 * TSR_POOL_BATCH) {
        struct tsr_future *chain = cache->head;
        struct tsr_future *last = chain;
        struct tsr__task_pool *pool = &rt->pool;
        int ok;

        for (int i = 1; i < TSR_POOL_BATCH; i++) {
            last = last->next;
        }
        cache->head = last->next;
        last->next = NULL;
        pthread_mutex_lock(&pool->mutex);
        ok = push_batch(pool, chain);
        pthread_mutex_unlock(&pool->mutex);
        if (ok) {
            cache->n_tasks -= TSR_POOL_BATCH;
        } else {
            last->next = cache->head;
            cache->head = chain;
        }
    }
}

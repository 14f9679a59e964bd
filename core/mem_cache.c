/* Caching allocator. Blocks are rounded up to a power of two (at least 256 bytes)
 * so that a freed block fits any later request of its class; the host-side list
 * entries are separate from the blocks, which may live in memory the host cannot
 * touch. */
#include "core/mem_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/runtime_impl.h"

#define MIN_CLASS 8 /* 256 bytes */

struct cached_block {
    struct cached_block *next;
    void *ptr;
};

static unsigned size_class(size_t n_bytes)
{
    unsigned c = MIN_CLASS;

    while (c < TSR_MEM_CLASSES - 1 && ((size_t)1 << c) < n_bytes) {
        c++;
    }
    return c;
}

void tsr__mem_cache_init(struct tsr__mem_cache *cache)
{
    memset(cache, 0, sizeof(*cache));
    pthread_mutex_init(&cache->mutex, NULL);
}

/* Under the mutex: give every cached block back to the backend. */
static void flush_locked(struct tsr__mem_cache *cache, struct tsr__device *dev)
{
    for (unsigned c = 0; c < TSR_MEM_CLASSES; c++) {
        while (cache->free_blocks[c] != NULL) {
            struct cached_block *b = cache->free_blocks[c];

            cache->free_blocks[c] = b->next;
            dev->ops->mem_free(dev->state, &dev->mem, b->ptr, (size_t)1 << c);
            cache->n_cached_bytes -= (size_t)1 << c;
            free(b);
        }
    }
}

void tsr__mem_cache_fini(struct tsr__mem_cache *cache, struct tsr__device *dev)
{
    pthread_mutex_lock(&cache->mutex);
    flush_locked(cache, dev);
    pthread_mutex_unlock(&cache->mutex);
    pthread_mutex_destroy(&cache->mutex);
}

static void count_use(struct tsr__mem_cache *cache, size_t n_class_bytes)
{
    cache->n_used_bytes += n_class_bytes;
    if (cache->n_used_bytes + cache->n_cached_bytes > cache->n_peak_bytes) {
        cache->n_peak_bytes = cache->n_used_bytes + cache->n_cached_bytes;
    }
}

tsr_status_t tsr__mem_cache_alloc(struct tsr__device *dev, size_t n_bytes, void **ptr_out)
{
    struct tsr__mem_cache *cache = &dev->cache;
    unsigned c = size_class(n_bytes);
    size_t n_class = (size_t)1 << c;
    struct cached_block *b;
    tsr_status_t st;

    pthread_mutex_lock(&cache->mutex);
    b = cache->free_blocks[c];
    if (b != NULL) {
        cache->free_blocks[c] = b->next;
        cache->n_cached_bytes -= n_class;
        cache->n_reuses++;
        count_use(cache, n_class);
        pthread_mutex_unlock(&cache->mutex);
        *ptr_out = b->ptr;
        free(b);
        return TSR_OK;
    }
    st = dev->ops->mem_alloc(dev->state, &dev->mem, n_class, ptr_out);
    if (st == TSR_ENOMEM && cache->n_cached_bytes > 0) {
        flush_locked(cache, dev); /* blocks of other sizes may be what fills it */
        st = dev->ops->mem_alloc(dev->state, &dev->mem, n_class, ptr_out);
    }
    if (st == TSR_OK) {
        cache->n_backend_allocs++;
        count_use(cache, n_class);
    }
    pthread_mutex_unlock(&cache->mutex);
    return st;
}

uint64_t tsr__mem_cache_used(struct tsr__device *dev)
{
    uint64_t n;

    pthread_mutex_lock(&dev->cache.mutex);
    n = dev->cache.n_used_bytes;
    pthread_mutex_unlock(&dev->cache.mutex);
    return n;
}

void tsr__mem_cache_free(struct tsr__device *dev, void *ptr, size_t n_bytes)
{
    struct tsr__mem_cache *cache = &dev->cache;
    unsigned c = size_class(n_bytes);
    struct cached_block *b = malloc(sizeof(*b));

    pthread_mutex_lock(&cache->mutex);
    cache->n_used_bytes -= (size_t)1 << c;
    if (b == NULL) {
        dev->ops->mem_free(dev->state, &dev->mem, ptr, (size_t)1 << c); /* no room to cache it */
    } else {
        b->ptr = ptr;
        b->next = cache->free_blocks[c];
        cache->free_blocks[c] = b;
        cache->n_cached_bytes += (size_t)1 << c;
    }
    pthread_mutex_unlock(&cache->mutex);
}

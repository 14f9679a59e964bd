/* A caching allocator per device memory node: freed blocks are kept in
 * power-of-two size classes and handed out again, so a device allocates from its
 * backend (cudaMalloc, for CUDA) only when the cache has nothing that fits. When
 * the backend says the device is full, the cache is emptied and the allocation
 * tried once more. Private to core/. */
#ifndef TSR_CORE_MEM_CACHE_H
#define TSR_CORE_MEM_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <tessera/status.h>

#define TSR_MEM_CLASSES 48

struct cached_block;
struct tsr__device;

struct tsr__mem_cache {
    pthread_mutex_t mutex;
    struct cached_block *free_blocks[TSR_MEM_CLASSES];
    uint64_t n_cached_bytes; /* held in the cache */
    uint64_t n_used_bytes;   /* handed out */
    uint64_t n_peak_bytes;   /* peak of used + cached */
    uint64_t n_backend_allocs;
    uint64_t n_reuses;
};

void tsr__mem_cache_init(struct tsr__mem_cache *cache);
/* Give every cached block back to the device. */
void tsr__mem_cache_fini(struct tsr__mem_cache *cache, struct tsr__device *dev);

/* A block of at least n_bytes on dev. Errors: TSR_ENOMEM. */
tsr_status_t tsr__mem_cache_alloc(struct tsr__device *dev, size_t n_bytes, void **ptr_out);
/* Bytes of dev's blocks handed out now (cached ones not counted). */
uint64_t tsr__mem_cache_used(struct tsr__device *dev);
/* Return a block obtained for n_bytes to the cache. */
void tsr__mem_cache_free(struct tsr__device *dev, void *ptr, size_t n_bytes);

#endif /* TSR_CORE_MEM_CACHE_H */

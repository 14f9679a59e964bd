/* A bounded lock-free multi-producer multi-consumer FIFO of ready tasks (the
 * sequence-number ring design). Private to core/. */
#ifndef TSR_CORE_READY_RING_H
#define TSR_CORE_READY_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sync.h"

struct tsr_future;

struct ring_cell {
    atomic_size_t seq;
    struct tsr_future *task;
};

struct tsr__ready_ring {
    alignas(TSR_CACHE_LINE) atomic_size_t head; /* next to pop */
    alignas(TSR_CACHE_LINE) atomic_size_t tail; /* next to push */
    alignas(TSR_CACHE_LINE) size_t mask;
    struct ring_cell *cells;
};

/* capacity must be a power of two. */
int tsr__ready_ring_init(struct tsr__ready_ring *ring, size_t capacity);
void tsr__ready_ring_fini(struct tsr__ready_ring *ring);
/* Returns 0 when full. */
int tsr__ready_ring_push(struct tsr__ready_ring *ring, struct tsr_future *t);
/* Returns NULL when empty. */
struct tsr_future *tsr__ready_ring_pop(struct tsr__ready_ring *ring);
/* Approximate number of queued tasks. */
size_t tsr__ready_ring_size(struct tsr__ready_ring *ring);

#endif /* TSR_CORE_READY_RING_H */

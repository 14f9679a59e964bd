/* Bounded MPMC ring: each cell's sequence number says whether it is free for the
 * producer of ticket `pos` (seq == pos) or full for the consumer (seq == pos + 1). */
#include "core/ready_ring.h"

#include <stdlib.h>

int tsr__ready_ring_init(struct tsr__ready_ring *ring, size_t capacity)
{
    ring->cells = calloc(capacity, sizeof(*ring->cells));
    if (ring->cells == NULL) {
        return -1;
    }
    for (size_t i = 0; i < capacity; i++) {
        atomic_init(&ring->cells[i].seq, i);
    }
    ring->mask = capacity - 1;
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    return 0;
}

void tsr__ready_ring_fini(struct tsr__ready_ring *ring)
{
    free(ring->cells);
    ring->cells = NULL;
}

int tsr__ready_ring_push(struct tsr__ready_ring *ring, struct tsr_future *t)
{
    size_t pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);

    for (;;) {
        struct ring_cell *cell = &ring->cells[pos & ring->mask];
        size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;

        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ring->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                cell->task = t;
                atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
                return 1;
            }
        } else if (diff < 0) {
            return 0;
        } else {
            pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
        }
    }
}

struct tsr_future *tsr__ready_ring_pop(struct tsr__ready_ring *ring)
{
    size_t pos = atomic_load_explicit(&ring->head, memory_order_relaxed);

    for (;;) {
        struct ring_cell *cell = &ring->cells[pos & ring->mask];
        size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)(pos + 1);

        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ring->head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                struct tsr_future *t = cell->task;
                atomic_store_explicit(&cell->seq, pos + ring->mask + 1, memory_order_release);
                return t;
            }
        } else if (diff < 0) {
            return NULL;
        } else {
            pos = atomic_load_explicit(&ring->head, memory_order_relaxed);
        }
    }
}

size_t tsr__ready_ring_size(struct tsr__ready_ring *ring)
{
    size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);

    return tail > head ? tail - head : 0;
}

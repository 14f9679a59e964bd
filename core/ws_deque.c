/* Chase-Lev deque with a fixed array: no resize, so no buffer reclamation problem;
 * the caller spills to a shared queue when push reports full. */
#include "core/ws_deque.h"

#include <stdlib.h>

int tsr__ws_deque_init(struct tsr__ws_deque *dq, long long capacity)
{
    dq->slots = calloc((size_t)capacity, sizeof(*dq->slots));
    if (dq->slots == NULL) {
        return -1;
    }
    dq->mask = capacity - 1;
    atomic_init(&dq->top, 0);
    atomic_init(&dq->bottom, 0);
    return 0;
}

void tsr__ws_deque_fini(struct tsr__ws_deque *dq)
{
    free(dq->slots);
    dq->slots = NULL;
}

int tsr__ws_deque_push(struct tsr__ws_deque *dq, struct tsr_future *t)
{
    long long b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    long long top = atomic_load_explicit(&dq->top, memory_order_acquire);

    if (b - top > dq->mask) {
        return 0;
    }
    atomic_store_explicit(&dq->slots[b & dq->mask], t, memory_order_relaxed);
    /* Release publishes the task's fields to the thief that reads bottom. */
    atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
    return 1;
}

struct tsr_future *tsr__ws_deque_pop(struct tsr__ws_deque *dq)
{
    long long b = atomic_load_explicit(&dq->bottom, memory_order_relaxed) - 1;
    long long top;
    struct tsr_future *t = NULL;

    atomic_store_explicit(&dq->bottom, b, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    top = atomic_load_explicit(&dq->top, memory_order_relaxed);
    if (top > b) {
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
        return NULL;
    }
    t = atomic_load_explicit(&dq->slots[b & dq->mask], memory_order_relaxed);
    if (top == b) {
        /* Last element: race the thieves for it. */
        if (!atomic_compare_exchange_strong_explicit(&dq->top, &top, top + 1, memory_order_seq_cst,
                                                     memory_order_relaxed)) {
            t = NULL;
        }
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
    }
    return t;
}

struct tsr_future *tsr__ws_deque_steal(struct tsr__ws_deque *dq)
{
    long long top = atomic_load_explicit(&dq->top, memory_order_acquire);
    long long b;
    struct tsr_future *t;

    atomic_thread_fence(memory_order_seq_cst);
    b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
    if (top >= b) {
        return NULL;
    }
    t = atomic_load_explicit(&dq->slots[top & dq->mask], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&dq->top, &top, top + 1, memory_order_seq_cst,
                                                 memory_order_relaxed)) {
        return NULL;
    }
    return t;
}

long long tsr__ws_deque_size(struct tsr__ws_deque *dq)
{
    long long b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    long long top = atomic_load_explicit(&dq->top, memory_order_relaxed);

    return b > top ? b - top : 0;
}

/* A mutex-protected binary heap of ready tasks: those with a non-zero priority,
 * and every task of a device queue (deepest first). The CPU's common
 * priority-0 tasks never touch it. Private to core/. */
#ifndef TSR_CORE_PRIO_HEAP_H
#define TSR_CORE_PRIO_HEAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct tsr_future;

struct tsr__prio_heap {
    pthread_mutex_t mutex;
    struct tsr_future **items;
    size_t n_items;
    size_t cap_items;
    atomic_size_t n_positive; /* readable without the mutex */
    atomic_size_t n_negative; /* priority <= 0 */
};

void tsr__prio_heap_init(struct tsr__prio_heap *heap);
void tsr__prio_heap_fini(struct tsr__prio_heap *heap);
/* Returns 0 on allocation failure. */
int tsr__prio_heap_push(struct tsr__prio_heap *heap, struct tsr_future *t);
/* Pop the highest-priority task if its priority is > 0 (sign > 0) or any task
 * (sign < 0); ties go to the deepest in the graph, then the earliest submitted. NULL when none qualifies. */
struct tsr_future *tsr__prio_heap_pop(struct tsr__prio_heap *heap, int sign);

#endif /* TSR_CORE_PRIO_HEAP_H */

/* Binary max-heap on (priority, depth, -id). */
#include "core/prio_heap.h"

#include <stdlib.h>

#include "core/task_impl.h"

static int before(const struct tsr_future *a, const struct tsr_future *b)
{
    if (a->priority != b->priority) {
        return a->priority > b->priority;
    }
    uint64_t da = atomic_load_explicit(&a->depth, memory_order_relaxed);
    uint64_t db = atomic_load_explicit(&b->depth, memory_order_relaxed);
    if (da != db) {
        return da > db;
    }
    return atomic_load_explicit(&a->id, memory_order_relaxed) <
           atomic_load_explicit(&b->id, memory_order_relaxed);
}

static void sift_up(struct tsr_future **items, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct tsr_future *tmp;

        if (!before(items[i], items[parent])) {
            return;
        }
        tmp = items[i];
        items[i] = items[parent];
        items[parent] = tmp;
        i = parent;
    }
}

static void sift_down(struct tsr_future **items, size_t n, size_t i)
{
    for (;;) {
        size_t best = i;
        size_t l = 2 * i + 1;
        struct tsr_future *tmp;

        if (l < n && before(items[l], items[best])) {
            best = l;
        }
        if (l + 1 < n && before(items[l + 1], items[best])) {
            best = l + 1;
        }
        if (best == i) {
            return;
        }
        tmp = items[i];
        items[i] = items[best];
        items[best] = tmp;
        i = best;
    }
}

void tsr__prio_heap_init(struct tsr__prio_heap *heap)
{
    pthread_mutex_init(&heap->mutex, NULL);
    heap->items = NULL;
    heap->n_items = 0;
    heap->cap_items = 0;
    atomic_init(&heap->n_positive, 0);
    atomic_init(&heap->n_negative, 0);
}

void tsr__prio_heap_fini(struct tsr__prio_heap *heap)
{
    free(heap->items);
    pthread_mutex_destroy(&heap->mutex);
}

int tsr__prio_heap_push(struct tsr__prio_heap *heap, struct tsr_future *t)
{
    pthread_mutex_lock(&heap->mutex);
    if (heap->n_items == heap->cap_items) {
        size_t cap = heap->cap_items ? 2 * heap->cap_items : 64;
        struct tsr_future **items = realloc(heap->items, cap * sizeof(*items));

        if (items == NULL) {
            pthread_mutex_unlock(&heap->mutex);
            return 0;
        }
        heap->items = items;
        heap->cap_items = cap;
    }
    heap->items[heap->n_items] = t;
    sift_up(heap->items, heap->n_items++);
    atomic_fetch_add_explicit(t->priority > 0 ? &heap->n_positive : &heap->n_negative, 1,
                              memory_order_release);
    pthread_mutex_unlock(&heap->mutex);
    return 1;
}

struct tsr_future *tsr__prio_heap_pop(struct tsr__prio_heap *heap, int sign)
{
    struct tsr_future *t = NULL;

    pthread_mutex_lock(&heap->mutex);
    if (heap->n_items > 0 && (sign < 0 || heap->items[0]->priority > 0)) {
        t = heap->items[0];
        heap->items[0] = heap->items[--heap->n_items];
        sift_down(heap->items, heap->n_items, 0);
        atomic_fetch_sub_explicit(t->priority > 0 ? &heap->n_positive : &heap->n_negative, 1,
                                  memory_order_relaxed);
    }
    pthread_mutex_unlock(&heap->mutex);
    return t;
}

/* Policy registry and the central ready queue shared by the policies. */
#include "core/sched.h"

#include "core/error.h"
#include "core/task_impl.h"

#define RING_CAPACITY (1u << 16)
#define SPACE_WAIT_NS 1000000u

const struct tsr__sched_ops *tsr__sched_lookup(tsr_sched_policy_t policy)
{
    switch (policy) {
    case TSR_SCHED_EAGER:
        return &tsr__sched_eager_ops;
    case TSR_SCHED_WS:
    case TSR_SCHED_DEFAULT:
    case TSR_SCHED_DMDA:   /* these place tasks on devices (core/place.c) and */
    case TSR_SCHED_RANDOM: /* queue the CPU's share as ws does */
        return &tsr__sched_ws_ops;
    }
    return NULL;
}

tsr_status_t tsr__central_init(struct tsr__central *c)
{
    if (tsr__ready_ring_init(&c->ring, RING_CAPACITY) != 0) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: no memory for the ready queue");
    }
    tsr__prio_heap_init(&c->heap);
    c->by_order = 0;
    pthread_mutex_init(&c->overflow_mutex, NULL);
    c->overflow_head = NULL;
    c->overflow_tail = NULL;
    atomic_init(&c->n_overflow, 0);
    atomic_init(&c->space_ev.epoch, 0);
    atomic_init(&c->space_ev.n_waiters, 0);
    return TSR_OK;
}

void tsr__central_fini(struct tsr__central *c)
{
    tsr__ready_ring_fini(&c->ring);
    tsr__prio_heap_fini(&c->heap);
    pthread_mutex_destroy(&c->overflow_mutex);
}

static void push_overflow(struct tsr__central *c, struct tsr_future *t)
{
    pthread_mutex_lock(&c->overflow_mutex);
    t->next = NULL;
    if (c->overflow_tail != NULL) {
        c->overflow_tail->next = t;
    } else {
        c->overflow_head = t;
    }
    c->overflow_tail = t;
    atomic_fetch_add_explicit(&c->n_overflow, 1, memory_order_release);
    pthread_mutex_unlock(&c->overflow_mutex);
}

static struct tsr_future *pop_overflow(struct tsr__central *c)
{
    struct tsr_future *t;

    if (atomic_load_explicit(&c->n_overflow, memory_order_acquire) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&c->overflow_mutex);
    t = c->overflow_head;
    if (t != NULL) {
        c->overflow_head = t->next;
        if (c->overflow_head == NULL) {
            c->overflow_tail = NULL;
        }
        t->next = NULL;
        atomic_fetch_sub_explicit(&c->n_overflow, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&c->overflow_mutex);
    return t;
}

void tsr__central_push(struct tsr__central *c, struct tsr_future *t, int may_wait)
{
    if ((t->priority != 0 || c->by_order) && tsr__prio_heap_push(&c->heap, t)) {
        return;
    }
    while (!tsr__ready_ring_push(&c->ring, t)) {
        if (!may_wait) {
            push_overflow(c, t);
            return;
        }
        /* Outside threads wait for room. Consumers wake us at half capacity; the
         * timeout covers the rare notification missed without a fence. */
        uint32_t key = tsr__event_prepare(&c->space_ev);
        if (tsr__ready_ring_push(&c->ring, t)) {
            tsr__event_cancel(&c->space_ev);
            return;
        }
        tsr__futex_wait_timeout(&c->space_ev.epoch, key, SPACE_WAIT_NS);
        tsr__event_cancel(&c->space_ev);
    }
}

struct tsr_future *tsr__central_pop_prio(struct tsr__central *c, int sign)
{
    atomic_size_t *count = sign > 0 ? &c->heap.n_positive : &c->heap.n_negative;

    if (atomic_load_explicit(count, memory_order_acquire) == 0) {
        return NULL;
    }
    return tsr__prio_heap_pop(&c->heap, sign);
}

struct tsr_future *tsr__central_pop(struct tsr__central *c)
{
    struct tsr_future *t = tsr__ready_ring_pop(&c->ring);

    if (t == NULL) {
        return pop_overflow(c);
    }
    if (atomic_load_explicit(&c->space_ev.n_waiters, memory_order_relaxed) != 0 &&
        tsr__ready_ring_size(&c->ring) < RING_CAPACITY / 2) {
        tsr__event_wake(&c->space_ev, 1 << 30);
    }
    return t;
}

struct tsr_future *tsr__central_pop_ordered(struct tsr__central *c)
{
    struct tsr_future *t = tsr__central_pop_prio(c, +1);

    if (t == NULL) {
        t = tsr__central_pop(c);
    }
    if (t == NULL) {
        t = tsr__central_pop_prio(c, -1);
    }
    return t;
}

/* The scheduling-policy interface and the central ready queue the policies share.
 * A policy is an ops table; the registry in sched.c maps tsr_sched_policy_t to it.
 * Later policies (dmda, random) plug in here. Private to core/. */
#ifndef TSR_CORE_SCHED_H
#define TSR_CORE_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <tessera/runtime.h>

#include "core/prio_heap.h"
#include "core/ready_ring.h"
#include "core/sync.h"

struct tsr_future;
struct tsr__worker;

struct tsr__sched_ops {
    const char *name;
    tsr_status_t (*init)(tsr_runtime_t *rt, void **state_out);
    void (*fini)(void *state);
    /* t is ready. self: the calling worker of this runtime, or NULL (another thread).
     * The policy wakes idle workers as needed. */
    void (*push)(void *state, struct tsr__worker *self, struct tsr_future *t);
    /* Next task for worker self, NULL if none now. */
    struct tsr_future *(*pop)(void *state, struct tsr__worker *self);
};

const struct tsr__sched_ops *tsr__sched_lookup(tsr_sched_policy_t policy);
extern const struct tsr__sched_ops tsr__sched_eager_ops;
extern const struct tsr__sched_ops tsr__sched_ws_ops;

/* The shared queue: a lock-free ring for priority-0 tasks, an overflow list for
 * when the ring is full and the pusher cannot wait (a worker), and a heap for
 * prioritised tasks. Threads outside the runtime wait for room instead of
 * overflowing, which bounds the ready tasks they can pile up. A queue made
 * `by_order` (a device queue) puts every task in the heap, so that among tasks of
 * one priority the deepest in the graph goes first (core/task_impl.h): consumers
 * of data already made run before roots that make more. */
struct tsr__central {
    int by_order;
    struct tsr__ready_ring ring;
    struct tsr__prio_heap heap;
    pthread_mutex_t overflow_mutex;
    struct tsr_future *overflow_head;
    struct tsr_future *overflow_tail;
    atomic_size_t n_overflow;
    struct tsr__event space_ev;
};

tsr_status_t tsr__central_init(struct tsr__central *c);
void tsr__central_fini(struct tsr__central *c);
/* may_wait: the caller is not a worker and may block until there is room. */
void tsr__central_push(struct tsr__central *c, struct tsr_future *t, int may_wait);
/* Prioritised tasks first (sign > 0), or the negative ones (sign < 0). */
struct tsr_future *tsr__central_pop_prio(struct tsr__central *c, int sign);
struct tsr_future *tsr__central_pop(struct tsr__central *c);
/* Next task in priority order: prioritised ones, then the ring, then the negative
 * ones. */
struct tsr_future *tsr__central_pop_ordered(struct tsr__central *c);

#endif /* TSR_CORE_SCHED_H */

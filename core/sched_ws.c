/* The work-stealing policy: tasks a worker makes ready go to its own deque (run
 * LIFO, good for locality: a chain stays on one worker); idle workers steal the
 * oldest task of a random victim. Tasks from outside threads and prioritised
 * tasks go through the central queue; priorities > 0 are taken before any
 * priority-0 work, priorities < 0 after it. */
#include <stdlib.h>

#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/sched.h"
#include "core/task_impl.h"
#include "core/worker.h"
#include "core/ws_deque.h"

#define DEQUE_CAPACITY 4096

struct ws {
    tsr_runtime_t *rt;
    struct tsr__central central;
    uint32_t n_deques;
    struct tsr__ws_deque *deques;
};

static void ws_fini(void *state)
{
    struct ws *s = state;

    for (uint32_t i = 0; i < s->n_deques; i++) {
        tsr__ws_deque_fini(&s->deques[i]);
    }
    free(s->deques);
    tsr__central_fini(&s->central);
    free(s);
}

static tsr_status_t ws_init(tsr_runtime_t *rt, void **state_out)
{
    struct ws *s = calloc(1, sizeof(*s));

    if (s == NULL || tsr__central_init(&s->central) != TSR_OK) {
        free(s);
        return tsr__fail(TSR_ENOMEM, "tsr_init: no memory for the ws scheduler");
    }
    s->rt = rt;
    s->deques = calloc(rt->n_cpu_workers, sizeof(*s->deques));
    if (s->deques == NULL) {
        ws_fini(s);
        return tsr__fail(TSR_ENOMEM, "tsr_init: no memory for the ws deques");
    }
    for (; s->n_deques < rt->n_cpu_workers; s->n_deques++) {
        if (tsr__ws_deque_init(&s->deques[s->n_deques], DEQUE_CAPACITY) != 0) {
            ws_fini(s);
            return tsr__fail(TSR_ENOMEM, "tsr_init: no memory for the ws deques");
        }
    }
    *state_out = s;
    return TSR_OK;
}

static void ws_push(void *state, struct tsr__worker *self, struct tsr_future *t)
{
    struct ws *s = state;

    if (self != NULL && t->priority == 0) {
        struct tsr__ws_deque *dq = &s->deques[self->index];

        if (tsr__ws_deque_push(dq, t)) {
            /* The owner runs one task itself; more than one is worth stealing. */
            if (tsr__ws_deque_size(dq) > 1) {
                tsr__workers_notify(s->rt);
            }
            return;
        }
    }
    tsr__central_push(&s->central, t, self == NULL && s->rt->vt == NULL);
    tsr__workers_notify(s->rt);
}

static uint32_t next_random(struct tsr__worker *w)
{
    uint32_t x = w->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}

static struct tsr_future *steal(struct ws *s, struct tsr__worker *self)
{
    uint32_t start = next_random(self) % s->n_deques;

    for (uint32_t i = 0; i < s->n_deques; i++) {
        uint32_t victim = (start + i) % s->n_deques;
        struct tsr_future *t;

        if (victim == self->index) {
            continue;
        }
        t = tsr__ws_deque_steal(&s->deques[victim]);
        if (t != NULL) {
            atomic_store_explicit(&self->n_stolen,
                                  atomic_load_explicit(&self->n_stolen, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return t;
        }
    }
    return NULL;
}

static struct tsr_future *ws_pop(void *state, struct tsr__worker *self)
{
    struct ws *s = state;
    struct tsr_future *t = tsr__central_pop_prio(&s->central, +1);

    if (t == NULL) {
        t = tsr__ws_deque_pop(&s->deques[self->index]);
    }
    if (t == NULL) {
        t = tsr__central_pop(&s->central);
    }
    if (t == NULL) {
        t = steal(s, self);
    }
    if (t == NULL) {
        t = tsr__central_pop_prio(&s->central, -1);
    }
    return t;
}

const struct tsr__sched_ops tsr__sched_ws_ops = {
    .name = "ws",
    .init = ws_init,
    .fini = ws_fini,
    .push = ws_push,
    .pop = ws_pop,
};

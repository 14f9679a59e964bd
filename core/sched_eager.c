/* The eager policy: one central queue for all workers, in readiness order. */
#include <stdlib.h>

#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/sched.h"
#include "core/task_impl.h"
#include "core/worker.h"

struct eager {
    tsr_runtime_t *rt;
    struct tsr__central central;
};

static tsr_status_t eager_init(tsr_runtime_t *rt, void **state_out)
{
    struct eager *e = calloc(1, sizeof(*e));
    tsr_status_t st;

    if (e == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: no memory for the eager scheduler");
    }
    st = tsr__central_init(&e->central);
    if (st != TSR_OK) {
        free(e);
        return st;
    }
    e->rt = rt;
    *state_out = e;
    return TSR_OK;
}

static void eager_fini(void *state)
{
    struct eager *e = state;

    tsr__central_fini(&e->central);
    free(e);
}

static void eager_push(void *state, struct tsr__worker *self, struct tsr_future *t)
{
    struct eager *e = state;
    int is_prioritised = t->priority != 0; /* t may be gone once pushed */

    tsr__central_push(&e->central, t, self == NULL && e->rt->vt == NULL);
    /* A worker that made one task ready will run it itself next; wake others only
     * when there is more than that. */
    if (self == NULL || is_prioritised || tsr__ready_ring_size(&e->central.ring) > 1) {
        tsr__workers_notify(e->rt);
    }
}

static struct tsr_future *eager_pop(void *state, struct tsr__worker *self)
{
    struct eager *e = state;

    (void)self;
    return tsr__central_pop_ordered(&e->central);
}

const struct tsr__sched_ops tsr__sched_eager_ops = {
    .name = "eager",
    .init = eager_init,
    .fini = eager_fini,
    .push = eager_push,
    .pop = eager_pop,
};

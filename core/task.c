/* Task submission: argument checks, initialisation, dependency registration. */
#include <stdlib.h>
#include <string.h>

#include "core/data_impl.h"
#include "core/device.h"
#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/worker.h"

static tsr_status_t check_codelet(tsr_runtime_t *rt, const tsr_task_desc_t *desc)
{
    const tsr_codelet_t *cl = desc->codelet;
    int has_impl = 0;

    if (cl == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: desc->codelet is NULL");
    }
    (void)rt;
    for (int k = 0; k < TSR_DEVICE_KIND_COUNT; k++) {
        has_impl |= cl->impl[k] != NULL;
    }
    if (!has_impl) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: codelet '%s' has no implementation",
                         cl->name ? cl->name : "?");
    }
    if (cl->n_buffers != TSR_NBUFFERS_DYNAMIC &&
        (cl->n_buffers < 0 || cl->n_buffers > TSR_MAX_BUFFERS)) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: codelet '%s' has n_buffers=%d",
                         cl->name ? cl->name : "?", (int)cl->n_buffers);
    }
    return TSR_OK;
}

static tsr_status_t check_handles(tsr_runtime_t *rt, const tsr_task_desc_t *desc)
{
    const tsr_codelet_t *cl = desc->codelet;
    const tsr_access_t *modes = desc->modes != NULL ? desc->modes : cl->modes;

    if (desc->n_handles > TSR_MAX_BUFFERS) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: %u handles, at most %d",
                         (unsigned)desc->n_handles, TSR_MAX_BUFFERS);
    }
    if (cl->n_buffers == TSR_NBUFFERS_DYNAMIC ? desc->n_handles > 0 && desc->modes == NULL
                                              : (int32_t)desc->n_handles != cl->n_buffers) {
        return tsr__fail(TSR_EINVAL,
                         "tsr_task_submit: codelet '%s' expects %d buffers, task gives %u%s",
                         cl->name ? cl->name : "?", (int)cl->n_buffers, (unsigned)desc->n_handles,
                         cl->n_buffers == TSR_NBUFFERS_DYNAMIC ? " without modes" : "");
    }
    if (desc->n_handles > 0 && desc->handles == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: handles is NULL");
    }
    for (uint32_t i = 0; i < desc->n_handles; i++) {
        const struct tsr_data *d = desc->handles[i];

        if (d == NULL || d->magic != TSR_DATA_MAGIC || d->rt != rt) {
            return tsr__fail(TSR_EINVAL,
                             "tsr_task_submit: handle %u is NULL, unregistered or of another "
                             "runtime",
                             (unsigned)i);
        }
        if (modes[i] != TSR_R && modes[i] != TSR_W && modes[i] != TSR_RW) {
            return tsr__fail(TSR_EINVAL, "tsr_task_submit: mode of handle %u is %d", (unsigned)i,
                             (int)modes[i]);
        }
    }
    return TSR_OK;
}

static tsr_status_t check_desc(tsr_runtime_t *rt, const tsr_task_desc_t *desc)
{
    if (rt == NULL || desc == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: rt or desc is NULL");
    }
    TSR_TRY(check_codelet(rt, desc));
    TSR_TRY(check_handles(rt, desc));
    if (desc->arg_size > TSR_TASK_ARG_MAX || (desc->arg_size > 0 && desc->arg == NULL)) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: arg_size %zu (max %u) or arg NULL",
                         desc->arg_size, (unsigned)TSR_TASK_ARG_MAX);
    }
    if (desc->n_deps > 0 && desc->deps == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: deps is NULL with n_deps %u",
                         (unsigned)desc->n_deps);
    }
    for (uint32_t i = 0; i < desc->n_deps; i++) {
        if (desc->deps[i] == NULL || desc->deps[i]->rt != rt) {
            return tsr__fail(TSR_EINVAL,
                             "tsr_task_submit: dependency %u is NULL or of another "
                             "runtime",
                             (unsigned)i);
        }
    }
    return TSR_OK;
}

/* The heap copy of a large argument is made before the task takes an id, so a
 * failure leaves nothing to unwind. */
static tsr_status_t copy_large_arg(const tsr_task_desc_t *desc, void **heap_out)
{
    *heap_out = NULL;
    if (desc->arg_size > TSR_TASK_ARG_INLINE) {
        *heap_out = malloc(desc->arg_size);
        if (*heap_out == NULL) {
            return tsr__fail(TSR_ENOMEM, "tsr_task_submit: no memory for a %zu-byte argument",
                             desc->arg_size);
        }
        memcpy(*heap_out, desc->arg, desc->arg_size);
    }
    return TSR_OK;
}

static void set_arg(struct tsr_future *t, const tsr_task_desc_t *desc, void *heap_arg)
{
    t->arg_size = desc->arg_size;
    if (heap_arg != NULL) {
        t->arg = heap_arg;
        t->flags |= TSR_TASK_F_ARG_HEAP;
    } else if (desc->arg_size > 0) {
        t->arg = t->arg_inline;
        memcpy(t->arg_inline, desc->arg, desc->arg_size);
    } else {
        t->arg = NULL;
    }
}

/* Fresh task with one reference for the runtime (+1 with a future), and the
 * submission guard in deps. */
struct tsr_future *tsr__task_new(tsr_runtime_t *rt, uint32_t refs)
{
    struct tsr_future *t = tsr__task_alloc(rt);
    uint64_t id;

    if (t == NULL) {
        return NULL;
    }
    id = atomic_fetch_add_explicit(&rt->next_id, 1, memory_order_relaxed);
    t->rt = rt;
    t->flags = 0;
    t->priority = 0;
    t->n_edges = 0;
    t->more_edges = NULL;
    t->status = TSR_OK;
    t->cancel_epoch = atomic_load_explicit(&rt->cancel_epoch, memory_order_relaxed);
    atomic_store_explicit(&t->cause, NULL, memory_order_relaxed);
    atomic_store_explicit(&t->deps, TSR_DEPS_ONE_EDGE, memory_order_relaxed);
    t->n_early = 0;
    t->is_early = 0;
    t->device = 0;
    t->dev_mask = 1;
    t->n_pinned = 0;
    t->pred_ns = 0;
    atomic_store_explicit(&t->refs, refs, memory_order_relaxed);
    atomic_store_explicit(&t->state, TASK_PENDING, memory_order_relaxed);
    atomic_store_explicit(&t->n_waiters, 0, memory_order_relaxed);
    /* Under the lock, so a handle holding a stale reference sees the new id and
     * is_done together. */
    tsr__spin_lock(&t->lock);
    atomic_store_explicit(&t->id, id, memory_order_relaxed);
    atomic_store_explicit(&t->depth, 0, memory_order_relaxed);
    t->is_done = 0;
    tsr__spin_unlock(&t->lock);
    return t;
}

static void add_explicit_deps(struct tsr_future *t, const tsr_task_desc_t *desc)
{
    for (uint32_t i = 0; i < desc->n_deps; i++) {
        struct tsr_future *d = desc->deps[i];
        uint64_t id = atomic_load_explicit(&d->id, memory_order_relaxed);

        if (!tsr__task_add_edge(d, id, t, TSR_EDGE_PROPAGATE)) {
            struct tsr_cause *c = atomic_load_explicit(&d->cause, memory_order_acquire);

            if (c != NULL) {
                tsr__task_set_cause(t, c);
            }
        }
    }
}

static void fill_task(struct tsr_future *t, const tsr_task_desc_t *desc, struct dep_access *acc)
{
    const tsr_access_t *modes = desc->modes != NULL ? desc->modes : desc->codelet->modes;

    t->cl = desc->codelet;
    t->name = desc->name != NULL ? desc->name
                                 : (desc->codelet->name != NULL ? desc->codelet->name : "task");
    t->priority = desc->priority;
    t->n_bufs = desc->n_handles;
    for (uint32_t i = 0; i < desc->n_handles; i++) {
        t->bufs[i].data = desc->handles[i];
        t->bufs[i].mode = (uint32_t)modes[i];
        acc[i].data = desc->handles[i];
        acc[i].mode = (uint32_t)modes[i];
    }
}

tsr_status_t tsr_task_submit(tsr_runtime_t *rt, const tsr_task_desc_t *desc,
                             tsr_future_t **future_out)
{
    struct dep_access acc[TSR_MAX_BUFFERS];
    struct tsr_future *t;
    void *heap_arg;
    uint32_t n_acc;
    uint32_t device;
    uint32_t dev_mask;

    TSR_TRY(check_desc(rt, desc));
    TSR_TRY(tsr__device_choose(rt, desc, &device, &dev_mask));
    TSR_TRY(copy_large_arg(desc, &heap_arg));
    t = tsr__task_new(rt, future_out != NULL ? 2u : 1u);
    if (t == NULL) {
        free(heap_arg);
        return tsr__fail(TSR_ENOMEM, "tsr_task_submit: out of memory for a task");
    }
    set_arg(t, desc, heap_arg);
    t->device = device;
    t->dev_mask = dev_mask;
    fill_task(t, desc, acc);
    add_explicit_deps(t, desc);
    n_acc = tsr__deps_normalise(acc, desc->n_handles);
    tsr__deps_register(t, acc, n_acc);
    if (future_out != NULL) {
        *future_out = t;
    }
    tsr__task_dep_done(t); /* drop the submission guard */
    return TSR_OK;
}

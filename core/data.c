/* Data handles: registration, host access (acquire/release) and unregistration.
 * An acquire is a task that never runs on a worker: it takes its place in the
 * handle's history like any task, becomes "ready" when the conflicting earlier
 * tasks are done, and completes at release. */
#include <stdlib.h>
#include <string.h>

#include "core/coherence.h"
#include "core/data_impl.h"
#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/worker.h"

static tsr_status_t data_new(tsr_runtime_t *rt, void *ptr, size_t n_bytes, uint32_t flags,
                             tsr_data_t **data_out)
{
    struct tsr_data *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_data_register: out of memory");
    }
    d->magic = TSR_DATA_MAGIC;
    d->flags = flags;
    d->rt = rt;
    d->rep[0].ptr = ptr;
    d->rep[0].n_bytes = n_bytes;
    if (ptr != NULL) {
        d->flags |= TSR_DATA_F_REGISTERED;
        atomic_fetch_add_explicit(&rt->host_registered, n_bytes, memory_order_relaxed);
    }
    /* A simulation's data has no memory, but its host replica counts as there. */
    d->rep[0].state = ptr != NULL || (rt->vt != NULL && !(flags & TSR_DATA_F_DYNAMIC))
                          ? REP_MODIFIED
                          : REP_INVALID;
    d->n_bytes = n_bytes;
    pthread_mutex_init(&d->coh_mutex, NULL);
    atomic_init(&d->poison, NULL);
    pthread_mutex_lock(&rt->data_mutex);
    d->next = rt->data_list;
    if (rt->data_list != NULL) {
        rt->data_list->prev = d;
    }
    rt->data_list = d;
    pthread_mutex_unlock(&rt->data_mutex);
    *data_out = d;
    return TSR_OK;
}

tsr_status_t tsr_data_register(tsr_runtime_t *rt, void *ptr, size_t n_bytes, tsr_data_t **data_out)
{
    if (rt == NULL || (ptr == NULL && rt->vt == NULL) || n_bytes == 0 || data_out == NULL) {
        return tsr__fail(TSR_EINVAL,
                         "tsr_data_register: rt, ptr and data_out must be non-NULL "
                         "and n_bytes > 0 (ptr may be NULL only in a simulation)");
    }
    return data_new(rt, ptr, n_bytes, 0, data_out);
}

tsr_status_t tsr_data_create(tsr_runtime_t *rt, tsr_data_t **data_out)
{
    if (rt == NULL || data_out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_data_create: rt and data_out must be non-NULL");
    }
    return data_new(rt, NULL, 0, TSR_DATA_F_DYNAMIC, data_out);
}

static int valid(const struct tsr_data *d)
{
    return d != NULL && d->magic == TSR_DATA_MAGIC;
}

/* Finish an acquire task (release, failure, or unregister). */
static void acquire_end(struct tsr_future *t, tsr_status_t status)
{
    tsr_runtime_t *rt = t->rt;

    tsr__task_complete(t, status, NULL, &rt->n_aux_done);
    tsr__runtime_check_idle(rt);
    tsr__task_unref(t);
}

/* Take d's place in its history with `mode` and wait until it is ours. */
static tsr_status_t acquire_task(struct tsr_data *d, uint32_t mode, struct tsr_future **t_out)
{
    struct dep_access acc = {d, mode};
    struct tsr_future *t = tsr__task_new(d->rt, 1);
    struct tsr_cause *cause;

    if (t == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_data_acquire: out of memory");
    }
    atomic_fetch_add_explicit(&d->rt->n_aux, 1, memory_order_relaxed);
    t->flags = TSR_TASK_F_ACQUIRE;
    t->cl = NULL;
    t->name = "acquire";
    t->arg = NULL;
    t->arg_size = 0;
    t->n_bufs = 1;
    t->bufs[0].data = d;
    t->bufs[0].mode = mode;
    tsr__deps_register(t, &acc, 1);
    tsr__task_dep_done(t);
    tsr__task_block_until(t, TASK_READY);
    cause = atomic_load_explicit(&t->cause, memory_order_acquire);
    if (cause != NULL) {
        tsr_status_t st = tsr__fail(TSR_ECANCELED,
                                    "tsr_data_acquire: the contents are invalid: "
                                    "%s",
                                    cause->dep_msg);
        acquire_end(t, TSR_ECANCELED);
        return st;
    }
    *t_out = t;
    return TSR_OK;
}

tsr_status_t tsr_data_acquire(tsr_data_t *data, tsr_access_t mode, void **ptr_out,
                              size_t *n_bytes_out)
{
    struct tsr_future *t;
    tsr_buffer_t host;

    if (!valid(data) || (mode != TSR_R && mode != TSR_W && mode != TSR_RW)) {
        return tsr__fail(TSR_EINVAL, "tsr_data_acquire: invalid handle or mode");
    }
    if (tsr__worker_self(data->rt) != NULL) {
        return tsr__fail(TSR_EBUSY,
                         "tsr_data_acquire: called from inside a task; give the "
                         "task the handle instead");
    }
    if (data->acquire != NULL) {
        return tsr__fail(TSR_EBUSY, "tsr_data_acquire: the handle is already acquired");
    }
    TSR_TRY(acquire_task(data, (uint32_t)mode, &t));
    if (data->rt->coherent) {
        /* Pinned while acquired: no eviction writes back over the program's access. */
        tsr_status_t st = tsr__coh_fetch_pinned(data, 0, (uint32_t)mode, NULL, &host);

        if (st != TSR_OK) {
            acquire_end(t, TSR_OK);
            return st;
        }
    } else {
        host.ptr = data->rep[0].ptr;
        host.n_bytes = data->n_bytes;
    }
    data->acquire = t;
    if (ptr_out != NULL) {
        *ptr_out = host.ptr;
    }
    if (n_bytes_out != NULL) {
        *n_bytes_out = host.n_bytes;
    }
    return TSR_OK;
}

tsr_status_t tsr_data_release(tsr_data_t *data)
{
    struct tsr_future *t;

    if (!valid(data) || data->acquire == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_data_release: the handle is not acquired");
    }
    t = data->acquire;
    data->acquire = NULL;
    if (data->rt->coherent) {
        if (t->bufs[0].mode & TSR_W) {
            tsr__coh_written(data, 0);
        }
        tsr__coh_unpin(data, 0);
    }
    acquire_end(t, TSR_OK);
    return TSR_OK;
}

/* Free a handle no task can reach any more. */
void tsr__data_free(struct tsr_data *d)
{
    tsr_runtime_t *rt = d->rt;

    pthread_mutex_lock(&rt->data_mutex);
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        rt->data_list = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    pthread_mutex_unlock(&rt->data_mutex);
    tsr__spill_forget(rt, d);
    if (rt->coherent && !(d->flags & TSR_DATA_F_DYNAMIC)) {
        /* The user's buffer gets the latest contents before the handle goes. */
        tsr_buffer_t host;

        if (tsr__coh_fetch(d, 0, TSR_R, NULL, &host) != TSR_OK) {
            tsr__log(rt, TSR_LOG_ERROR, "unregister: latest contents not copied back: %s",
                     tsr_last_error());
        }
    }
    tsr__coh_free_all(d);
    if (d->flags & TSR_DATA_F_REGISTERED) {
        atomic_fetch_sub_explicit(&rt->host_registered, d->n_bytes, memory_order_relaxed);
    }
    pthread_mutex_destroy(&d->coh_mutex);
    tsr__cause_release(atomic_load_explicit(&d->poison, memory_order_relaxed));
    free(d->readers);
    d->magic = 0;
    free(d);
}

void tsr_data_unregister(tsr_data_t *data)
{
    struct tsr_future *t;

    if (data == NULL) {
        return;
    }
    if (!valid(data) || data->acquire != NULL || tsr__worker_self(data->rt) != NULL) {
        tsr__log(valid(data) ? data->rt : NULL, TSR_LOG_ERROR,
                 "tsr_data_unregister: invalid handle, handle still acquired, or called from "
                 "a task; the handle is left as it is");
        return;
    }
    /* A write-mode acquire waits for every earlier user and cannot fail. */
    if (acquire_task(data, TSR_W, &t) != TSR_OK) {
        tsr__log(data->rt, TSR_LOG_ERROR, "tsr_data_unregister: %s", tsr_last_error());
        return;
    }
    acquire_end(t, TSR_OK);
    tsr__data_free(data);
}

size_t tsr_data_size(const tsr_data_t *data)
{
    return valid(data) ? data->n_bytes : 0;
}

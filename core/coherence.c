/* Coherence: a write leaves one MODIFIED replica; a read on a node with a stale
 * replica copies from a valid one (the modified one, else host memory, else any
 * shared one) and leaves both SHARED. Tasks that conflict on a handle are already
 * ordered by their dependencies, so the mutex only has to order readers on
 * different nodes fetching at once. */
#include "core/coherence.h"

#include <stdlib.h>
#include <string.h>

#include "core/data_impl.h"
#include "core/error.h"
#include "core/mem_cache.h"
#include "core/models.h"
#include "core/runtime_impl.h"
#include "core/trace.h"
#include "core/vtime.h"
#include "core/worker.h"

/* The trace's memory counter of device node `node`. */
static void trace_device_memory(tsr_runtime_t *rt, uint32_t node)
{
    struct tsr__device *dev = &rt->devices[node];
    uint64_t used;

    if (rt->trace_path == NULL) {
        return;
    }
    pthread_mutex_lock(&dev->cache.mutex);
    used = dev->cache.n_used_bytes;
    pthread_mutex_unlock(&dev->cache.mutex);
    tsr__trace_memory(rt, node, used);
}

static void node_free(struct tsr_data *d, uint32_t node);
static tsr_status_t node_copy(tsr_runtime_t *rt, struct tsr_data *d, uint32_t src, uint32_t dst,
                              const void *src_ptr, void *dst_ptr, size_t n);
static tsr_status_t node_alloc(struct tsr_data *d, uint32_t node, size_t n_bytes, void **ptr_out);

/* Whether giving up v's replica on `node` needs it written to host memory first:
 * it is valid and host memory's is not (it may be the last valid copy). */
static int needs_write_back(const struct tsr_data *v, uint32_t node)
{
    return v->rep[node].state != REP_INVALID && v->rep[0].state == REP_INVALID;
}

/* Give up v's replica on device node `node` (v locked, the replica unpinned),
 * writing it to host memory first if needed. Returns 0 if it could not. */
static int evict_replica(struct tsr_data *v, uint32_t node)
{
    struct replica *r = &v->rep[node];

    if (needs_write_back(v, node)) {
        struct replica *h = &v->rep[0];

        if ((h->ptr == NULL || h->n_bytes != v->n_bytes) &&
            node_alloc(v, 0, v->n_bytes, &h->ptr) != TSR_OK) {
            return 0;
        }
        h->n_bytes = v->n_bytes;
        if (node_copy(v->rt, v, node, 0, r->ptr, h->ptr, v->n_bytes) != TSR_OK) {
            return 0;
        }
        h->state = r->state; /* the only modified copy moves; a shared one stays shared */
        atomic_fetch_add_explicit(&v->rt->devices[node].spilled_bytes, v->n_bytes,
                                  memory_order_relaxed);
    }
    node_free(v, node);
    return 1;
}

/* Whether v's replica on node may be evicted now (v locked): 0 no, 1 dropped, 2
 * written back first (not over host memory a task or an acquire holds). */
static int evictable(const struct tsr_data *v, uint32_t node)
{
    const struct replica *r = &v->rep[node];

    if (r->ptr == NULL || r->pins != 0) {
        return 0;
    }
    if (!needs_write_back(v, node)) {
        return 1;
    }
    return v->rep[0].pins == 0 ? 2 : 0;
}

/* Make room on device node `node`: give up the least recently used replica there
 * that no task holds, preferring ones host memory also has (dropped) to the others
 * (written to host memory first). `self` is the caller's (locked) handle; any other
 * is looked at only if its lock is free. Returns 1 if one was given up. */
static int evict_one(tsr_runtime_t *rt, uint32_t node, struct tsr_data *self)
{
    int done = 0;

    pthread_mutex_lock(&rt->data_mutex);
    for (int attempt = 0; attempt < 3 && !done; attempt++) {
        struct tsr_data *best = NULL;
        int best_kind = 0;
        uint64_t best_use = 0;

        for (struct tsr_data *v = rt->data_list; v != NULL; v = v->next) {
            int kind;

            if (v == self || pthread_mutex_trylock(&v->coh_mutex) != 0) {
                continue;
            }
            kind = evictable(v, node);
            if (kind != 0 && (best == NULL || kind < best_kind ||
                              (kind == best_kind && v->rep[node].last_use < best_use))) {
                best = v;
                best_kind = kind;
                best_use = v->rep[node].last_use;
            }
            pthread_mutex_unlock(&v->coh_mutex);
        }
        if (best == NULL) {
            break;
        }
        /* Unlinking a handle takes data_mutex, held here: best is still alive. */
        if (pthread_mutex_trylock(&best->coh_mutex) == 0) {
            if (evictable(best, node) != 0) {
                done = evict_replica(best, node);
            }
            pthread_mutex_unlock(&best->coh_mutex);
        }
    }
    pthread_mutex_unlock(&rt->data_mutex);
    return done;
}

static tsr_status_t node_alloc(struct tsr_data *d, uint32_t node, size_t n_bytes, void **ptr_out)
{
    struct tsr__device *dev = &d->rt->devices[node];
    void *p;

    if (node == 0) {
        p = d->rt->vt != NULL ? tsr__vt_fake_alloc(d->rt, n_bytes)
                              : malloc(n_bytes > 0 ? n_bytes : 1);
        if (p == NULL) {
            return tsr__fail(TSR_ENOMEM, "out of host memory for %zu bytes", n_bytes);
        }
        tsr__host_account(d->rt, (int64_t)n_bytes);
        d->flags |= TSR_DATA_F_OWNED;
        *ptr_out = p;
        return TSR_OK;
    }
    while (tsr__mem_cache_alloc(dev, n_bytes, ptr_out) != TSR_OK) {
        if (!evict_one(d->rt, node, d)) {
            return tsr__fail(TSR_ENOMEM,
                             "device %s is out of memory: %zu bytes needed, %llu of %llu in "
                             "use by data that running or queued tasks hold",
                             dev->name, n_bytes, (unsigned long long)atomic_load(&dev->mem.used),
                             (unsigned long long)dev->mem.capacity);
        }
    }
    trace_device_memory(d->rt, node);
    return TSR_OK;
}

static void node_free(struct tsr_data *d, uint32_t node)
{
    struct replica *r = &d->rep[node];
    struct tsr__device *dev = &d->rt->devices[node];

    if (r->ptr != NULL) {
        if (node != 0) {
            tsr__mem_cache_free(dev, r->ptr, r->n_bytes);
            trace_device_memory(d->rt, node);
        } else if (d->flags & TSR_DATA_F_OWNED) {
            tsr__host_account(d->rt, -(int64_t)r->n_bytes);
            if (d->rt->vt == NULL) {
                free(r->ptr);
            }
        }
    }
    if (r->fence != NULL) {
        dev->ops->fence_free(dev->state, r->fence);
        r->fence = NULL;
    }
    if (node != 0 || (d->flags & TSR_DATA_F_OWNED)) {
        r->ptr = NULL;
        r->n_bytes = 0;
    }
    r->state = REP_INVALID;
}

/* A replica of the current size on node, allocated if missing or stale-sized. */
static tsr_status_t ensure_alloc(struct tsr_data *d, uint32_t node)
{
    struct replica *r = &d->rep[node];

    if (r->ptr != NULL && r->n_bytes == d->n_bytes) {
        return TSR_OK;
    }
    if (r->ptr != NULL) {
        node_free(d, node);
    }
    TSR_TRY(node_alloc(d, node, d->n_bytes, &r->ptr));
    r->n_bytes = d->n_bytes;
    r->state = REP_INVALID;
    return TSR_OK;
}

/* Copy n_bytes from (src, src_ptr) to (dst, dst_ptr) through the backend of the
 * device end; both ends on devices means one backend (copy_replica stages the
 * rest through host memory). */
static tsr_status_t node_copy(tsr_runtime_t *rt, struct tsr_data *d, uint32_t src, uint32_t dst,
                              const void *src_ptr, void *dst_ptr, size_t n)
{
    struct tsr__device *devs = rt->devices;
    const struct tsr__device *owner = dst != 0 ? &devs[dst] : &devs[src];
    struct tsr__copy c = {dst_ptr, src_ptr, n, NULL, NULL, NULL, NULL, 0};
    char msg[256] = "";

    if (src != 0) {
        c.src_dev = devs[src].state;
        c.src_fence = d->rep[src].fence;
    }
    if (dst != 0) {
        c.dst_dev = devs[dst].state;
        c.dst_fence = &d->rep[dst].fence;
    }
    if (owner->ops->copy(&c, msg, sizeof(msg)) != TSR_OK) {
        return tsr__fail(TSR_EBACKEND, "copy of %zu bytes from %s to %s failed: %s", n,
                         tsr__node_name(rt, src), tsr__node_name(rt, dst),
                         msg[0] ? msg : "backend error");
    }
    return TSR_OK;
}

static tsr_status_t copy_replica(struct tsr_data *d, uint32_t src, uint32_t dst,
                                 struct tsr__worker *w)
{
    tsr_runtime_t *rt = d->rt;
    uint64_t t0 = (w != NULL && rt->trace_path != NULL) || rt->models != NULL ? tsr__now_ns() : 0;

    if (src != 0 && dst != 0 && rt->devices[src].ops != rt->devices[dst].ops) {
        /* Different backends: stage through host memory. */
        TSR_TRY(ensure_alloc(d, 0));
        TSR_TRY(copy_replica(d, src, 0, w));
        d->rep[0].state = REP_SHARED;
        src = 0;
    }
    TSR_TRY(node_copy(rt, d, src, dst, d->rep[src].ptr, d->rep[dst].ptr, d->n_bytes));
    atomic_fetch_add_explicit(&rt->n_copies[src][dst], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->n_copy_bytes[src][dst], d->n_bytes, memory_order_relaxed);
    if (t0 != 0) {
        uint64_t t1 = tsr__now_ns();

        if (w != NULL && rt->trace_path != NULL && rt->vt == NULL) {
            tsr__trace_copy(&w->trace, t0, t1, src, dst, d->n_bytes);
        }
        /* A copy that returned before completing says nothing of its duration. */
        if (dst == 0 || !rt->devices[dst].ops->has_async_copies) {
            tsr__xfer_observe(rt, src, dst, d->n_bytes, (double)(t1 - t0) * 1e-9);
        }
    }
    return TSR_OK;
}

int tsr__coh_source(const struct tsr_data *d)
{
    int shared = -1;

    for (uint32_t i = 0; i < d->rt->n_devices; i++) {
        if (d->rep[i].state == REP_MODIFIED) {
            return (int)i;
        }
        if (d->rep[i].state == REP_SHARED && shared < 0) {
            shared = (int)i;
        }
    }
    return shared;
}

static tsr_status_t fetch_locked(struct tsr_data *d, uint32_t node, uint32_t mode,
                                 struct tsr__worker *w)
{
    int src;

    TSR_TRY(ensure_alloc(d, node));
    if (!(mode & TSR_R) || d->rep[node].state != REP_INVALID) {
        return TSR_OK;
    }
    src = tsr__coh_source(d);
    if (src < 0) {
        return TSR_OK; /* never written: any contents will do */
    }
    TSR_TRY(copy_replica(d, (uint32_t)src, node, w));
    d->rep[src].state = REP_SHARED;
    d->rep[node].state = REP_SHARED;
    return TSR_OK;
}

static tsr_status_t fetch(struct tsr_data *d, uint32_t node, uint32_t mode, struct tsr__worker *w,
                          tsr_buffer_t *buf_out, int pin)
{
    tsr_status_t st = TSR_OK;

    pthread_mutex_lock(&d->coh_mutex);
    if (d->n_bytes > 0) {
        st = fetch_locked(d, node, mode, w);
    }
    if (pin && st == TSR_OK) {
        d->rep[node].pins++;
    }
    if (node != 0) {
        d->rep[node].last_use =
            atomic_fetch_add_explicit(&d->rt->use_clock, 1, memory_order_relaxed);
    }
    buf_out->ptr = d->n_bytes > 0 ? d->rep[node].ptr : NULL;
    buf_out->n_bytes = d->n_bytes;
    pthread_mutex_unlock(&d->coh_mutex);
    return st;
}

tsr_status_t tsr__coh_fetch(struct tsr_data *d, uint32_t node, uint32_t mode, struct tsr__worker *w,
                            tsr_buffer_t *buf_out)
{
    return fetch(d, node, mode, w, buf_out, 0);
}

tsr_status_t tsr__coh_fetch_pinned(struct tsr_data *d, uint32_t node, uint32_t mode,
                                   struct tsr__worker *w, tsr_buffer_t *buf_out)
{
    return fetch(d, node, mode, w, buf_out, 1);
}

void tsr__coh_unpin(struct tsr_data *d, uint32_t node)
{
    pthread_mutex_lock(&d->coh_mutex);
    d->rep[node].pins--;
    pthread_mutex_unlock(&d->coh_mutex);
}

void tsr__coh_written(struct tsr_data *d, uint32_t node)
{
    pthread_mutex_lock(&d->coh_mutex);
    for (uint32_t i = 0; i < d->rt->n_devices; i++) {
        d->rep[i].state = REP_INVALID;
    }
    if (d->n_bytes > 0) {
        d->rep[node].state = REP_MODIFIED;
    }
    pthread_mutex_unlock(&d->coh_mutex);
}

/* Copy the first n_keep bytes of node's replica into new_ptr on the same device,
 * waiting for the copy to finish (a resize is rare; the caller's own queued work
 * is ordered by the rule in tsr_task_ctx_alloc's documentation). */
static tsr_status_t keep_copy(struct tsr_data *d, uint32_t node, void *new_ptr, size_t n_keep,
                              void **fence_out)
{
    struct tsr__device *dev = &d->rt->devices[node];
    struct tsr__copy c = {new_ptr,    d->rep[node].ptr,   n_keep,    dev->state,
                          dev->state, d->rep[node].fence, fence_out, 1};
    char msg[256] = "";

    if (dev->ops->copy(&c, msg, sizeof(msg)) != TSR_OK) {
        return tsr__fail(TSR_EBACKEND, "copy of %zu bytes within %s failed: %s", n_keep, dev->name,
                         msg[0] ? msg : "backend error");
    }
    return TSR_OK;
}

static tsr_status_t resize_locked(struct tsr_data *d, uint32_t node, size_t n_bytes)
{
    struct replica *r = &d->rep[node];
    void *p = NULL;
    void *fence = NULL;

    if (n_bytes > 0) {
        TSR_TRY(node_alloc(d, node, n_bytes, &p));
        if (r->ptr != NULL && r->state != REP_INVALID) {
            size_t n_keep = r->n_bytes < n_bytes ? r->n_bytes : n_bytes;

            if (node == 0) {
                memcpy(p, r->ptr, n_keep);
            } else {
                tsr_status_t st = keep_copy(d, node, p, n_keep, &fence);

                if (st != TSR_OK) {
                    tsr__mem_cache_free(&d->rt->devices[node], p, n_bytes);
                    return st;
                }
            }
        }
    }
    for (uint32_t i = 0; i < d->rt->n_devices; i++) {
        node_free(d, i);
    }
    r->ptr = p;
    r->n_bytes = n_bytes;
    r->fence = fence;
    r->state = n_bytes > 0 ? REP_MODIFIED : REP_INVALID;
    d->n_bytes = n_bytes;
    return TSR_OK;
}

tsr_status_t tsr__coh_resize(struct tsr_data *d, uint32_t node, size_t n_bytes, void **ptr_out)
{
    tsr_status_t st;

    pthread_mutex_lock(&d->coh_mutex);
    st = resize_locked(d, node, n_bytes);
    if (st == TSR_OK) {
        *ptr_out = d->rep[node].ptr;
    }
    pthread_mutex_unlock(&d->coh_mutex);
    return st;
}

void tsr__coh_free_all(struct tsr_data *d)
{
    pthread_mutex_lock(&d->coh_mutex);
    for (uint32_t i = 0; i < d->rt->n_devices; i++) {
        node_free(d, i);
    }
    pthread_mutex_unlock(&d->coh_mutex);
}

/* Coherence: a write leaves one MODIFIED replica; a read on a node with a stale
 * replica copies from a valid one (the modified one, else host memory, else any
 * shared one) and leaves both SHARED. Tasks that conflict on a handle are already
 * ordered by their dependencies, so the mutex only has to order readers on
 * different nodes fetching at once. */
#include "core/coherence.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data_impl.h"
#include "core/error.h"
#include "core/host_mem.h"
#include "core/mem_cache.h"
#include "core/models.h"
#include "core/runtime_impl.h"
#include "core/spill.h"
#include "core/trace.h"
#include "core/vtime.h"
#include "core/worker.h"

#define MAX_BUSY_NS 1000000000ull /* an allocation retries busy evictions this long */

/* Set while this thread prefetches: allocations then take free memory only and
 * evict nothing (a prefetch must not fight the launches for room). */
static _Thread_local int tls_prefetching;

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
static tsr_status_t host_alloc(struct tsr_data *d, size_t n_bytes, int may_wait, void **ptr_out);

/* Whether giving up v's replica on `node` needs it written to host memory first:
 * it is valid and neither host memory's nor the disk copy is (it may be the last
 * valid copy). */
static int needs_write_back(const struct tsr_data *v, uint32_t node)
{
    return v->rep[node].state != REP_INVALID && v->rep[0].state == REP_INVALID && !v->disk.valid;
}

/* Wait until the I/O thread does none of `what` (TSR_IO_* bits) with d's host
 * replica (d locked; the I/O thread needs the lock to finish, so it is let go
 * meanwhile). */
static void wait_io(struct tsr_data *d, uint32_t what)
{
    while (d->io & what) {
        pthread_mutex_unlock(&d->coh_mutex);
        usleep(20);
        pthread_mutex_lock(&d->coh_mutex);
    }
}

/* d's disk copy no longer holds the latest contents (d locked). */
static void discard_disk(struct tsr_data *d)
{
    d->version++;
    if (d->disk.file != 0) {
        tsr__spill_remove(d->rt, &d->disk);
    }
}

/* Give up v's replica on device node `node` (v locked, the replica unpinned),
 * writing it to host memory first if needed. Returns 0 if it could not. */
static int evict_replica(struct tsr_data *v, uint32_t node)
{
    struct replica *r = &v->rep[node];

    if (needs_write_back(v, node)) {
        struct replica *h = &v->rep[0];

        if (h->ptr != NULL && h->n_bytes != v->n_bytes) {
            node_free(v, 0);
        }
        if (h->ptr == NULL && host_alloc(v, v->n_bytes, 1, &h->ptr) != TSR_OK) {
            return 0;
        }
        h->n_bytes = v->n_bytes;
        if (node_copy(v->rt, v, node, 0, r->ptr, h->ptr, v->n_bytes) != TSR_OK) {
            return 0;
        }
        atomic_fetch_add_explicit(&v->rt->n_copies[node][0], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&v->rt->n_copy_bytes[node][0], v->n_bytes, memory_order_relaxed);
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
    return v->rep[0].pins == 0 && v->io == TSR_IO_NONE ? 2 : 0;
}

/* The replica on `node` to give up (rt->data_mutex held): the least recently used
 * of the lowest non-zero kind_of (1 before 2), skipping `self` and handles whose
 * lock is taken (then *busy = 1). Returned locked with *kind_out; NULL with
 * *kind_out 0 if there is none, -1 if the chosen one was taken or changed
 * meanwhile. Unlinking a handle takes data_mutex: the result stays alive while
 * locked, even once data_mutex is let go (freeing it takes its lock). */
static struct tsr_data *lru_victim(tsr_runtime_t *rt, uint32_t node, const struct tsr_data *self,
                                   int (*kind_of)(const struct tsr_data *, uint32_t), int *kind_out,
                                   int *busy)
{
    struct tsr_data *best = NULL;
    int best_kind = 0;
    uint64_t best_use = 0;

    for (struct tsr_data *v = rt->data_list; v != NULL; v = v->next) {
        int kind;

        if (v == self) {
            continue;
        }
        if (pthread_mutex_trylock(&v->coh_mutex) != 0) {
            *busy = 1;
            continue;
        }
        kind = kind_of(v, node);
        if (kind != 0 && (best == NULL || kind < best_kind ||
                          (kind == best_kind && v->rep[node].last_use < best_use))) {
            best = v;
            best_kind = kind;
            best_use = v->rep[node].last_use;
        }
        pthread_mutex_unlock(&v->coh_mutex);
    }
    *kind_out = best == NULL ? 0 : -1;
    if (best == NULL) {
        return NULL;
    }
    if (pthread_mutex_trylock(&best->coh_mutex) != 0) {
        *busy = 1;
        return NULL;
    }
    *kind_out = kind_of(best, node);
    if (*kind_out == 0) {
        pthread_mutex_unlock(&best->coh_mutex);
        *kind_out = -1;
        return NULL;
    }
    return best;
}

/* Make room on device node `node`: give up the least recently used replica there
 * that no task holds, preferring ones host memory also has (dropped) to the others
 * (written to host memory first). `self` is the caller's (locked) handle; any other
 * is looked at only if its lock is free. Returns 1 if one was given up, 0 if none
 * could be, -1 if none could be but some handle was busy (worth another try). */
static int evict_one(tsr_runtime_t *rt, uint32_t node, struct tsr_data *self)
{
    int done = 0;
    int busy = 0;

    pthread_mutex_lock(&rt->data_mutex);
    for (int attempt = 0; attempt < 3 && !done; attempt++) {
        int kind;
        struct tsr_data *best = lru_victim(rt, node, self, evictable, &kind, &busy);

        if (best == NULL && kind == 0) {
            break;
        }
        if (best != NULL) {
            /* The write-back happens without data_mutex: it may wait for host room. */
            pthread_mutex_unlock(&rt->data_mutex);
            done = evict_replica(best, node);
            pthread_mutex_unlock(&best->coh_mutex);
            pthread_mutex_lock(&rt->data_mutex);
        }
    }
    pthread_mutex_unlock(&rt->data_mutex);
    return done ? 1 : (busy ? -1 : 0);
}

int tsr__coh_evict_ahead(tsr_runtime_t *rt, uint32_t node, uint64_t progress)
{
    struct tsr__device *dev = &rt->devices[node];
    double f = rt->cfg.device_spill_mark - (dev->is_evicting_ahead ? 0.1 : 0.0);
    uint64_t mark = (uint64_t)((double)dev->mem.capacity * f);

    /* The backend's count includes cached blocks: under the mark, so are replicas. */
    if (!rt->coherent || rt->cfg.device_spill_mark >= 1.0 ||
        atomic_load_explicit(&dev->mem.used, memory_order_relaxed) <= mark ||
        tsr__mem_cache_used(dev) <= mark) {
        dev->is_evicting_ahead = 0;
        return 0;
    }
    if (progress == dev->ahead_stuck_at || evict_one(rt, node, NULL) <= 0) {
        dev->ahead_stuck_at = progress;
        dev->is_evicting_ahead = 0;
        return 0;
    }
    atomic_fetch_add_explicit(&dev->n_evicted_ahead, 1, memory_order_relaxed);
    dev->is_evicting_ahead = 1;
    return 1;
}

/* Host memory for d's replica: a spare block of its size (already counted), else
 * new memory; may_wait: first wait for room under the host limit (see
 * tsr__spill_reserve). */
static tsr_status_t host_alloc(struct tsr_data *d, size_t n_bytes, int may_wait, void **ptr_out)
{
    tsr_runtime_t *rt = d->rt;
    void *p = rt->vt == NULL ? tsr__host_mem_take(rt, n_bytes) : NULL;

    if (p == NULL) {
        if (may_wait) {
            TSR_TRY(tsr__spill_reserve(rt, n_bytes, "a host replica"));
        } else {
            tsr__host_account(rt, (int64_t)n_bytes);
        }
        p = rt->vt != NULL ? tsr__vt_fake_alloc(rt, n_bytes) : tsr__host_mem_alloc(n_bytes);
    }
    if (p == NULL) {
        tsr__host_account(rt, -(int64_t)n_bytes);
        return tsr__fail(TSR_ENOMEM, "out of host memory for %zu bytes", n_bytes);
    }
    if (rt->spill.enabled && tsr__host_in_use(rt) > rt->spill.high) {
        tsr__spill_kick(rt);
    }
    d->flags |= TSR_DATA_F_OWNED;
    *ptr_out = p;
    return TSR_OK;
}

static tsr_status_t node_alloc(struct tsr_data *d, uint32_t node, size_t n_bytes, void **ptr_out)
{
    struct tsr__device *dev = &d->rt->devices[node];

    if (node == 0) {
        return host_alloc(d, n_bytes, 1, ptr_out);
    }
    for (uint64_t busy_since = 0; tsr__mem_cache_alloc(dev, n_bytes, ptr_out) != TSR_OK;) {
        int r = tls_prefetching ? 0 : evict_one(d->rt, node, d);

        if (r > 0) {
            atomic_fetch_add_explicit(&dev->n_evicted, 1, memory_order_relaxed);
        }
        if (r < 0) {
            /* A candidate was locked (a fetch, the spill scan, an allocation
             * waiting for host room): try again for a while. */
            uint64_t now = tsr__now_ns();

            busy_since = busy_since != 0 ? busy_since : now;
            if (now - busy_since < MAX_BUSY_NS) {
                usleep(50);
                continue;
            }
        }
        if (r <= 0) {
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

/* d's host replica read ahead is used (wasted: given up unused) (d locked). */
static void ahead_done(struct tsr_data *d, int wasted)
{
    struct tsr__spill *sp = &d->rt->spill;

    d->ahead_unused = 0;
    atomic_fetch_sub_explicit(&sp->ahead_bytes, d->rep[0].n_bytes, memory_order_relaxed);
    if (wasted) {
        atomic_fetch_add_explicit(&sp->n_ahead_wasted, 1, memory_order_relaxed);
    }
}

static void node_free(struct tsr_data *d, uint32_t node)
{
    struct replica *r = &d->rep[node];
    struct tsr__device *dev = &d->rt->devices[node];

    if (node == 0 && d->ahead_unused) {
        ahead_done(d, 1);
    }
    if (r->fence != NULL) { /* first: it waits for the work it marks (a copy in, say) */
        dev->ops->fence_free(dev->state, r->fence);
        r->fence = NULL;
    }
    if (r->ptr != NULL) {
        if (node != 0) {
            tsr__mem_cache_free(dev, r->ptr, r->n_bytes);
            trace_device_memory(d->rt, node);
        } else if (d->flags & TSR_DATA_F_OWNED) {
            if (d->rt->vt == NULL) {
                tsr__host_mem_release(d->rt, r->ptr, r->n_bytes);
            } else {
                tsr__host_account(d->rt, -(int64_t)r->n_bytes);
            }
        }
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
        c.src_fence = &d->rep[src].fence;
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

/* Bring d's disk copy into host memory (d locked, no valid replica). */
static tsr_status_t load_from_disk(struct tsr_data *d)
{
    TSR_TRY(ensure_alloc(d, 0));
    TSR_TRY(tsr__spill_read(d->rt, &d->disk, d->rep[0].ptr));
    d->rep[0].state = REP_SHARED;
    return TSR_OK;
}

static tsr_status_t fetch_locked(struct tsr_data *d, uint32_t node, uint32_t mode,
                                 struct tsr__worker *w)
{
    int src;

    /* No write into a host replica the I/O thread is writing out. */
    wait_io(d, node == 0 && (mode & TSR_W) ? TSR_IO_READING | TSR_IO_WRITING : TSR_IO_READING);
    TSR_TRY(ensure_alloc(d, node));
    if (!(mode & TSR_R) || d->rep[node].state != REP_INVALID) {
        return TSR_OK;
    }
    src = tsr__coh_source(d);
    if (src < 0 && d->disk.valid && tls_prefetching) {
        return TSR_OK; /* no disk read on the pushing thread: read ahead, then the task's fetch */
    }
    if (src < 0 && d->disk.valid) {
        TSR_TRY(load_from_disk(d));
        if (node == 0) {
            return TSR_OK;
        }
        src = 0;
    }
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
        st = fetch_locked(d, node, mode, w); /* may wait for a read ahead to land */
    }
    if (d->ahead_unused) {
        ahead_done(d, 0);
    }
    if (pin && st == TSR_OK) {
        d->rep[node].pins++;
    }
    /* Host replicas take the clock without moving it (every task touches them; the
     * spill thread moves it at each scan): an LRU order by scan epochs. */
    d->rep[node].last_use =
        node != 0 ? atomic_fetch_add_explicit(&d->rt->use_clock, 1, memory_order_relaxed)
                  : atomic_load_explicit(&d->rt->use_clock, memory_order_relaxed);
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

void tsr__coh_prefetch(struct tsr_data *d, uint32_t node)
{
    tsr_buffer_t buf;

    tls_prefetching = 1;
    (void)fetch(d, node, TSR_R, NULL, &buf, 0);
    tls_prefetching = 0;
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
    discard_disk(d);
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
    struct tsr__copy c = {new_ptr,    d->rep[node].ptr,    n_keep,    dev->state,
                          dev->state, &d->rep[node].fence, fence_out, 1};
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
    wait_io(d, TSR_IO_READING | TSR_IO_WRITING);
    discard_disk(d);
    st = resize_locked(d, node, n_bytes);
    if (st == TSR_OK) {
        *ptr_out = d->rep[node].ptr;
    }
    pthread_mutex_unlock(&d->coh_mutex);
    return st;
}

int tsr__coh_has_memory(struct tsr_data *d, uint32_t node)
{
    int has;

    pthread_mutex_lock(&d->coh_mutex);
    has = d->rep[node].ptr != NULL;
    pthread_mutex_unlock(&d->coh_mutex);
    return has;
}

void tsr__coh_free_all(struct tsr_data *d)
{
    pthread_mutex_lock(&d->coh_mutex);
    wait_io(d, TSR_IO_READING | TSR_IO_WRITING);
    discard_disk(d);
    for (uint32_t i = 0; i < d->rt->n_devices; i++) {
        node_free(d, i);
    }
    pthread_mutex_unlock(&d->coh_mutex);
}

/* Whether v's host replica may leave host memory now (v locked): 0 no; 1 it is
 * stale, or another copy (a device's, the disk's) is valid: freed; 2 it is the
 * last valid copy: written to disk first; 3 freed, but it was read ahead for a
 * task that has not used it yet (a last resort). Only replicas the runtime
 * allocated. */
static int host_evictable(const struct tsr_data *v, uint32_t node)
{
    const struct replica *h = &v->rep[0];

    (void)node; /* always 0: lru_victim's kind_of */
    if (!(v->flags & TSR_DATA_F_OWNED) || (v->flags & TSR_DATA_F_REGISTERED) || h->ptr == NULL ||
        h->pins != 0 || v->io != TSR_IO_NONE) {
        return 0;
    }
    if (v->ahead_unused) {
        return 3;
    }
    if (h->state == REP_INVALID || v->disk.valid) {
        return 1;
    }
    for (uint32_t i = 1; i < v->rt->n_devices; i++) {
        if (v->rep[i].state != REP_INVALID) {
            return 1;
        }
    }
    return 2;
}

/* Host replicas read-ahead may free for room: ones host_evictable frees without
 * writing that no unfinished task uses (v locked; takes v's dependency lock). */
static int idle_droppable(const struct tsr_data *v, uint32_t node)
{
    return host_evictable(v, node) == 1 && tsr__deps_idle((struct tsr_data *)v);
}

/* The end of a spill write of v (v locked): keep the disk copy if no task wrote v
 * meanwhile, and free the host replica if no task holds it. Returns 1 if freed. */
static int commit_locked(tsr_runtime_t *rt, const struct tsr__pending_commit *c)
{
    struct tsr_data *v = c->data;
    struct tsr__disk_copy copy = c->copy;
    int freed = 0;

    v->rep[0].pins--;
    v->io = TSR_IO_NONE;
    if (c->status != TSR_OK) {
        return 0;
    }
    if (v->version == c->version && v->disk.file == 0) {
        v->disk = copy;
        atomic_fetch_add_explicit(&rt->spill.n_on_disk, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&rt->devices[0].spilled_bytes, v->n_bytes, memory_order_relaxed);
        if (v->rep[0].pins == 0) {
            node_free(v, 0);
            freed = 1;
        }
    } else {
        copy.valid = 0;
        tsr__spill_remove(rt, &copy);
    }
    return freed;
}

int tsr__coh_commit_pending(tsr_runtime_t *rt, int wait)
{
    struct tsr__spill *sp = &rt->spill;
    int freed = 0;

    for (uint32_t i = 0; i < sp->n_pending;) {
        struct tsr__pending_commit *c = &sp->pending[i];
        struct tsr_data *v = c->data;

        if (wait) {
            pthread_mutex_lock(&v->coh_mutex);
        } else if (pthread_mutex_trylock(&v->coh_mutex) != 0) {
            i++;
            continue;
        }
        freed += commit_locked(rt, c);
        pthread_mutex_unlock(&v->coh_mutex);
        tsr__spill_release(rt, v);
        *c = sp->pending[--sp->n_pending];
    }
    return freed;
}

int tsr__coh_spill_one(tsr_runtime_t *rt)
{
    struct tsr__pending_commit c = {0};
    struct tsr_data *v;
    int kind = 0;
    int busy = 0;

    if (rt->spill.n_pending == TSR_SPILL_MAX_PENDING && tsr__coh_commit_pending(rt, 0) == 0 &&
        rt->spill.n_pending == TSR_SPILL_MAX_PENDING) {
        return 2;
    }
    pthread_mutex_lock(&rt->data_mutex);
    atomic_fetch_add_explicit(&rt->use_clock, 1, memory_order_relaxed); /* a new LRU epoch */
    v = lru_victim(rt, 0, NULL, host_evictable, &kind, &busy);
    if (v == NULL) {
        pthread_mutex_unlock(&rt->data_mutex);
        return 0;
    }
    if (kind != 2) {
        node_free(v, 0);
        atomic_fetch_add_explicit(&rt->spill.n_dropped, 1, memory_order_relaxed);
        pthread_mutex_unlock(&v->coh_mutex);
        pthread_mutex_unlock(&rt->data_mutex);
        return 1;
    }
    /* Written without the locks: pinned against frees, and the version tells
     * whether a task wrote it meanwhile. */
    v->io = TSR_IO_WRITING;
    v->rep[0].pins++;
    c.data = v;
    c.version = v->version;
    tsr__spill_hold(rt, v);
    pthread_mutex_unlock(&v->coh_mutex);
    pthread_mutex_unlock(&rt->data_mutex);

    c.status = tsr__spill_write(rt, v->rep[0].ptr, v->n_bytes, &c.copy);

    if (pthread_mutex_trylock(&v->coh_mutex) == 0) {
        commit_locked(rt, &c);
        pthread_mutex_unlock(&v->coh_mutex);
        tsr__spill_release(rt, v);
    } else {
        rt->spill.pending[rt->spill.n_pending++] = c;
    }
    return c.status == TSR_OK ? 1 : (int)c.status;
}

/* Free clean host replicas that no unfinished task uses, least recently used
 * first, until n more bytes fit under the high mark. Returns whether they fit. */
static int make_room_ahead(tsr_runtime_t *rt, size_t n)
{
    while (tsr__host_in_use(rt) + n > rt->spill.high) {
        int kind = 0;
        int busy = 0;
        struct tsr_data *v;

        pthread_mutex_lock(&rt->data_mutex);
        v = lru_victim(rt, 0, NULL, idle_droppable, &kind, &busy);
        if (v != NULL) {
            node_free(v, 0);
            atomic_fetch_add_explicit(&rt->spill.n_dropped, 1, memory_order_relaxed);
            pthread_mutex_unlock(&v->coh_mutex);
        }
        pthread_mutex_unlock(&rt->data_mutex);
        if (v == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Host memory to read n bytes ahead into, below the high mark; NULL if none. */
static void *read_ahead_alloc(tsr_runtime_t *rt, size_t n)
{
    void *p = NULL;

    if (tsr__host_in_use(rt) + n <= rt->spill.high) {
        p = tsr__host_mem_take(rt, n);
    }
    if (p == NULL && tsr__spill_try_reserve(rt, n, rt->spill.high)) {
        p = tsr__host_mem_alloc(n);
        if (p == NULL) {
            tsr__host_account(rt, -(int64_t)n);
        }
    }
    return p;
}

int tsr__coh_read_back(struct tsr_data *d)
{
    tsr_runtime_t *rt = d->rt;
    struct tsr__spill *sp = &rt->spill;
    struct tsr__disk_copy copy;
    uint64_t version;
    uint64_t ahead;
    size_t n;
    void *p;

    if (pthread_mutex_trylock(&d->coh_mutex) != 0) {
        return 1; /* busy: the task's own fetch reads it if still needed */
    }
    if (!d->disk.valid || d->io != TSR_IO_NONE || d->rep[0].ptr != NULL ||
        tsr__coh_source(d) >= 0) {
        pthread_mutex_unlock(&d->coh_mutex);
        return 1;
    }
    n = d->n_bytes;
    pthread_mutex_unlock(&d->coh_mutex);
    if (tsr__deps_idle(d)) {
        return 1; /* its task ran and read it already */
    }
    ahead = atomic_load_explicit(&sp->ahead_bytes, memory_order_relaxed);
    if ((ahead > 0 && ahead + n > sp->ahead_cap) || !make_room_ahead(rt, n)) {
        return 0;
    }
    p = read_ahead_alloc(rt, n);
    if (p == NULL) {
        return 0;
    }
    pthread_mutex_lock(&d->coh_mutex);
    /* Its task may have run meanwhile, and the room made be its own replica. */
    if (!d->disk.valid || d->io != TSR_IO_NONE || d->rep[0].ptr != NULL ||
        tsr__coh_source(d) >= 0 || d->n_bytes != n || tsr__deps_idle(d)) {
        pthread_mutex_unlock(&d->coh_mutex);
        tsr__host_mem_release(rt, p, n);
        return 1;
    }
    d->io = TSR_IO_READING;
    copy = d->disk;
    version = d->version;
    pthread_mutex_unlock(&d->coh_mutex);

    if (tsr__spill_read(rt, &copy, p) != TSR_OK) {
        tsr__host_mem_release(rt, p, n);
        p = NULL; /* the task's fetch reads it again and reports the error */
    }
    pthread_mutex_lock(&d->coh_mutex);
    d->io = TSR_IO_NONE;
    if (p != NULL && d->version == version && d->rep[0].ptr == NULL && tsr__coh_source(d) < 0) {
        d->rep[0].ptr = p;
        d->rep[0].n_bytes = n;
        d->rep[0].state = REP_SHARED;
        d->rep[0].last_use = atomic_load_explicit(&rt->use_clock, memory_order_relaxed);
        d->flags |= TSR_DATA_F_OWNED;
        d->ahead_unused = 1;
        atomic_fetch_add_explicit(&sp->ahead_bytes, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&sp->n_read_ahead, 1, memory_order_relaxed);
    } else if (p != NULL) {
        tsr__host_mem_release(rt, p, n);
    }
    pthread_mutex_unlock(&d->coh_mutex);
    return 1;
}

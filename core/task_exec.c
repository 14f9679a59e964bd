/* The life of a submitted task after submit: edges, readiness, execution,
 * completion with failure propagation, and the task context API. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/coherence.h"
#include "core/data_impl.h"
#include "core/device.h"
#include "core/error.h"
#include "core/place.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/worker.h"

struct tsr_task_ctx {
    tsr_runtime_t *rt;
    struct tsr_future *task;
    struct tsr__worker *worker;
    tsr_device_kind_t kind;
    void *stream;
    void *blas;
    int has_msg;
    char msg[512];
};

struct tsr_cause *tsr__cause_create(tsr_status_t status, uint64_t root_id, const char *root_msg,
                                    const char *dep_msg)
{
    size_t n_root = strlen(root_msg) + 1;
    size_t n_dep = strlen(dep_msg) + 1;
    struct tsr_cause *c = malloc(sizeof(*c) + n_root + n_dep);
    char *text;

    if (c == NULL) {
        return NULL;
    }
    text = (char *)(c + 1);
    memcpy(text, root_msg, n_root);
    memcpy(text + n_root, dep_msg, n_dep);
    atomic_init(&c->refs, 1);
    c->status = status;
    c->root_id = root_id;
    c->root_msg = text;
    c->dep_msg = text + n_root;
    return c;
}

void tsr__cause_release(struct tsr_cause *c)
{
    if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        free(c);
    }
}

void tsr__task_set_cause(struct tsr_future *t, struct tsr_cause *cause)
{
    struct tsr_cause *expected = NULL;

    tsr__cause_retain(cause);
    if (!atomic_compare_exchange_strong_explicit(&t->cause, &expected, cause, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        tsr__cause_release(cause);
    }
}

static int append_edge(struct tsr_future *pred, struct tsr_future *succ, uint32_t flags)
{
    struct edge_chunk *chunk = pred->more_edges;

    if (pred->n_edges < TSR_TASK_INLINE_EDGES) {
        pred->edges[pred->n_edges].succ = succ;
        pred->edges[pred->n_edges++].flags = flags;
        return 1;
    }
    if (chunk == NULL || chunk->n_edges == sizeof(chunk->edges) / sizeof(chunk->edges[0])) {
        chunk = malloc(sizeof(*chunk));
        if (chunk == NULL) {
            return 0;
        }
        chunk->n_edges = 0;
        chunk->next = pred->more_edges;
        pred->more_edges = chunk;
    }
    chunk->edges[chunk->n_edges].succ = succ;
    chunk->edges[chunk->n_edges++].flags = flags;
    return 1;
}

int tsr__task_add_edge(struct tsr_future *pred, uint64_t pred_id, struct tsr_future *succ,
                       uint32_t flags)
{
    int is_same;
    int is_live;
    int is_added = 0;

    tsr__spin_lock(&pred->lock);
    is_same = atomic_load_explicit(&pred->id, memory_order_relaxed) == pred_id;
    if (is_same) {
        /* Done or not, a predecessor not yet recycled still tells its depth. */
        uint64_t depth = atomic_load_explicit(&pred->depth, memory_order_relaxed) + 1;

        if (depth > atomic_load_explicit(&succ->depth, memory_order_relaxed)) {
            atomic_store_explicit(&succ->depth, depth, memory_order_relaxed);
        }
    }
    is_live = is_same && !pred->is_done;
    if (is_live) {
        atomic_fetch_add_explicit(&succ->deps, TSR_DEPS_ONE_EDGE, memory_order_relaxed);
        is_added = append_edge(pred, succ, flags);
        if (!is_added) {
            atomic_fetch_sub_explicit(&succ->deps, TSR_DEPS_ONE_EDGE, memory_order_relaxed);
        }
    }
    tsr__spin_unlock(&pred->lock);
    if (is_live && !is_added) {
        /* Out of memory for the edge: the order cannot be kept, so the successor
         * is cancelled, with a cause made at start-up. */
        tsr__task_set_cause(succ, pred->rt->oom_cause);
    }
    return is_live;
}

void tsr__task_unref(struct tsr_future *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        tsr__cause_release(atomic_exchange_explicit(&t->cause, NULL, memory_order_relaxed));
        tsr__task_free(t->rt, t);
    }
}

/* Queue t: ready, or (is_early) to be launched behind predecessors still running
 * on its asynchronous device. Only the caller that brought the high half of
 * t->deps to 0 gets here, once. */
static void make_ready(struct tsr_future *t, uint32_t is_early)
{
    tsr_runtime_t *rt = t->rt;

    if (t->flags & TSR_TASK_F_ACQUIRE) {
        atomic_store_explicit(&t->state, TASK_READY, memory_order_seq_cst);
        tsr__futex_wake(&t->state, 1 << 30);
        return;
    }
    t->is_early = is_early;
    atomic_store_explicit(&t->state, TASK_READY, memory_order_relaxed);
    tsr__device_push(rt, tsr__worker_self(rt), t);
}

/* Take `step` (TSR_DEPS_ONE_*) off t->deps and queue t if this brought the high
 * half to 0. After a step that does not, t must not be touched: it may already
 * have run and been recycled. */
static void deps_step(struct tsr_future *t, uint64_t step)
{
    uint64_t old = atomic_fetch_sub_explicit(&t->deps, step, memory_order_acq_rel);
    uint64_t now = old - step;

    if ((old >> 32) != 0 && (now >> 32) == 0) {
        make_ready(t, (uint32_t)now != 0);
    }
}

/* A predecessor of t finished; `counted` when it already counted as launched. */
static void dep_release(struct tsr_future *t, int counted)
{
    deps_step(t, counted ? TSR_DEPS_ONE_PENDING : TSR_DEPS_ONE_EDGE);
}

void tsr__task_dep_done(struct tsr_future *t)
{
    dep_release(t, 0);
}

/* The cause a task completing with `status` passes on; NULL on success. */
static struct tsr_cause *outcome_cause(struct tsr_future *t, tsr_status_t status, const char *msg)
{
    struct tsr_cause *cause = atomic_load_explicit(&t->cause, memory_order_acquire);
    uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
    char root[768];
    char dep[896];

    if (status == TSR_OK || cause != NULL) {
        return status == TSR_OK ? NULL : cause;
    }
    snprintf(root, sizeof(root), "task '%s' (#%llu) failed: %s", t->name, (unsigned long long)id,
             msg != NULL ? msg : tsr_status_str(status));
    snprintf(dep, sizeof(dep), "cancelled: depends on %s", root);
    cause = tsr__cause_create(status, id, root, dep);
    if (cause != NULL) {
        atomic_store_explicit(&t->cause, cause, memory_order_release);
    }
    return cause;
}

static void release_successors(struct tsr_future *t, struct tsr_cause *cause)
{
    struct edge_chunk *chunk = t->more_edges;

    for (uint32_t i = 0; i < t->n_edges; i++) {
        if (cause != NULL && (t->edges[i].flags & TSR_EDGE_PROPAGATE)) {
            tsr__task_set_cause(t->edges[i].succ, cause);
        }
        dep_release(t->edges[i].succ, t->edges[i].flags & TSR_EDGE_EARLY);
    }
    while (chunk != NULL) {
        struct edge_chunk *next = chunk->next;

        for (uint32_t i = 0; i < chunk->n_edges; i++) {
            if (cause != NULL && (chunk->edges[i].flags & TSR_EDGE_PROPAGATE)) {
                tsr__task_set_cause(chunk->edges[i].succ, cause);
            }
            dep_release(chunk->edges[i].succ, chunk->edges[i].flags & TSR_EDGE_EARLY);
        }
        free(chunk);
        chunk = next;
    }
    t->more_edges = NULL;
    t->n_edges = 0;
}

/* Give up the pins t's buffers hold on its device. */
static void unpin_buffers(struct tsr_future *t)
{
    for (uint32_t i = 0; i < t->n_pinned; i++) {
        tsr__coh_unpin(t->bufs[i].data, t->rt->devices[t->device].node);
    }
    t->n_pinned = 0;
}

void tsr__task_complete(struct tsr_future *t, tsr_status_t status, const char *msg,
                        _Atomic uint64_t *n_done)
{
    struct tsr_cause *cause = outcome_cause(t, status, msg);

    tsr__place_done(t->rt, t);
    unpin_buffers(t);
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        if (t->bufs[i].mode & TSR_W) {
            tsr__deps_writer_done(t->bufs[i].data, cause);
        }
    }
    if (t->flags & TSR_TASK_F_ARG_HEAP) {
        free(t->arg);
        t->arg = NULL;
        t->flags &= ~TSR_TASK_F_ARG_HEAP;
    }
    t->status = status;
    if (t->flags & TSR_TASK_F_ACQUIRE) {
        /* acquires are not tasks of the user's graph: not counted */
    } else if (status == TSR_ECANCELED) {
        atomic_fetch_add_explicit(&t->rt->n_cancelled, 1, memory_order_relaxed);
    } else if (status != TSR_OK) {
        atomic_fetch_add_explicit(&t->rt->n_failed, 1, memory_order_relaxed);
    }
    tsr__spin_lock(&t->lock);
    t->is_done = 1; /* from here on no edge is added to t */
    tsr__spin_unlock(&t->lock);
    tsr__spill_task_done(&t->rt->spill); /* its inputs may now make room to read ahead */
    /* Counted before the future is signalled, so a caller that waited for the
     * future sees the task in tsr_runtime_stats. seq_cst: orders the count
     * before check_idle's look at tsr_wait_all's waiters. */
    atomic_fetch_add_explicit(n_done, 1, memory_order_seq_cst);
    atomic_store_explicit(&t->state, TASK_DONE, memory_order_seq_cst);
    if (atomic_load_explicit(&t->n_waiters, memory_order_seq_cst) != 0) {
        tsr__futex_wake(&t->state, 1 << 30);
        tsr__workers_wake_all(t->rt); /* workers helping while they wait */
    }
    release_successors(t, cause);
}

static struct tsr_cause *cancel_cause_of(struct tsr_future *t)
{
    struct tsr_cause *cause = atomic_load_explicit(&t->cause, memory_order_acquire);
    tsr_runtime_t *rt = t->rt;

    if (cause == NULL &&
        t->cancel_epoch != atomic_load_explicit(&rt->cancel_epoch, memory_order_acquire)) {
        cause = atomic_load_explicit(&rt->cancel_cause, memory_order_acquire);
        tsr__task_set_cause(t, cause);
    }
    return cause;
}

uint64_t tsr__task_bytes(const struct tsr_future *t)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < t->n_bufs; i++) {
        struct tsr_data *d = t->bufs[i].data;

        pthread_mutex_lock(&d->coh_mutex);
        n += d->n_bytes;
        pthread_mutex_unlock(&d->coh_mutex);
    }
    return n;
}

/* The buffers of t as seen on w's device: with accelerators present, each handle
 * is first made valid on the device's memory node. */
static tsr_status_t prepare_buffers(struct tsr__worker *w, struct tsr_future *t, tsr_buffer_t *bufs)
{
    /* Slots past the task's handles are empty, so that a kernel that checks an
     * index against them sees no buffer rather than stack garbage. */
    for (uint32_t i = t->n_bufs; i < TSR_MAX_BUFFERS; i++) {
        bufs[i].ptr = NULL;
        bufs[i].n_bytes = 0;
    }
    if (!t->rt->coherent) {
        for (uint32_t i = 0; i < t->n_bufs; i++) {
            bufs[i].ptr = t->bufs[i].data->rep[0].ptr;
            bufs[i].n_bytes = t->bufs[i].data->n_bytes;
        }
        return TSR_OK;
    }
    if (w->dev->node != 0) {
        uint64_t need = tsr__task_bytes(t);

        if (need > w->dev->mem.capacity) {
            return tsr__fail(TSR_ENOMEM,
                             "task '%s' needs %llu bytes of buffers on %s at once, more than its "
                             "memory limit of %llu bytes; do not pin it there, or split its data",
                             t->name != NULL ? t->name : "?", (unsigned long long)need,
                             w->dev->name, (unsigned long long)w->dev->mem.capacity);
        }
    }
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        /* Held until t completes: a device replica is not evicted under it, and a
         * host one not overwritten by an eviction writing back to host memory. */
        TSR_TRY(tsr__coh_fetch_pinned(t->bufs[i].data, w->dev->node, t->bufs[i].mode, w, &bufs[i]));
        t->n_pinned++;
    }
    return TSR_OK;
}

static void mark_written(struct tsr__worker *w, struct tsr_future *t)
{
    if (!t->rt->coherent) {
        return;
    }
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        if (t->bufs[i].mode & TSR_W) {
            tsr__coh_written(t->bufs[i].data, w->dev->node);
        }
    }
}

/* An implementation's status as a task result: a positive one is a bug. */
static tsr_status_t check_impl_status(struct tsr_task_ctx *ctx, tsr_status_t st)
{
    if (st > 0) {
        snprintf(ctx->msg, sizeof(ctx->msg), "implementation returned %s, which is not a result",
                 tsr_status_str(st));
        ctx->has_msg = 1;
        return TSR_EINVAL;
    }
    return st;
}

static void run_impl(struct tsr__worker *w, struct tsr_future *t)
{
    tsr_runtime_t *rt = t->rt;
    tsr_device_kind_t kind = w->dev->ops->kind;
    tsr_buffer_t bufs[TSR_MAX_BUFFERS];
    struct tsr_task_ctx ctx = {rt, t, w, kind, NULL, NULL, 0, {0}};
    uint64_t t0 = rt->trace_path != NULL ? tsr__now_ns() : 0;
    tsr_status_t st;

    atomic_store_explicit(&t->state, TASK_RUNNING, memory_order_relaxed);
    st = prepare_buffers(w, t, bufs);
    if (st != TSR_OK) {
        snprintf(ctx.msg, sizeof(ctx.msg), "%s", tsr_last_error());
        ctx.has_msg = 1;
    } else {
        uint64_t run0 = rt->models != NULL ? tsr__now_ns() : 0;

        st = w->dev->ops->execute(tsr__device_impl(t->cl, kind), &ctx, bufs, t->arg);
        if (run0 != 0 && st == TSR_OK) {
            tsr__place_observe(rt, t, w->dev->index, (double)(tsr__now_ns() - run0) * 1e-9);
        }
        mark_written(w, t);
    }
    st = check_impl_status(&ctx, st);
    if (t0 != 0) {
        tsr__trace_span(&w->trace, t0, tsr__now_ns(),
                        atomic_load_explicit(&t->id, memory_order_relaxed), t->name, st);
    }
    tsr__task_complete(t, st, ctx.has_msg ? ctx.msg : NULL, &w->n_completed);
}

void tsr__task_finish(struct tsr__worker *w, struct tsr_future *t, tsr_status_t st, const char *msg,
                      uint64_t t0)
{
    tsr_runtime_t *rt = t->rt;

    if (t->is_early && atomic_load_explicit(&t->cause, memory_order_acquire) != NULL) {
        /* Launched behind a predecessor that then failed. */
        st = TSR_ECANCELED;
        msg = NULL;
    }
    if (t0 != 0) {
        uint64_t t1 = tsr__now_ns();

        if (rt->trace_path != NULL) {
            tsr__trace_span(&w->trace, t0, t1, atomic_load_explicit(&t->id, memory_order_relaxed),
                            t->name, st);
        }
        if (rt->models != NULL && st == TSR_OK) {
            tsr__place_observe(rt, t, w->dev->index, (double)(t1 - t0) * 1e-9);
        }
    }
    tsr__task_complete(t, st, msg, &w->n_completed);
    tsr__runtime_check_idle(rt);
    tsr__task_unref(t);
}

/* t is launched on w's asynchronous device: its successors bound for the same
 * device may be launched behind it. */
static void notify_launched(struct tsr_future *t)
{
    uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
    struct edge_chunk *chunk;
    struct task_edge *edges = t->edges;
    uint32_t n;

    tsr__spin_lock(&t->lock);
    n = t->n_edges;
    chunk = t->more_edges;
    for (;;) {
        for (uint32_t i = 0; i < n; i++) {
            struct tsr_future *s = edges[i].succ;

            if (s->device != t->device || s->n_early == TSR_TASK_MAX_EARLY) {
                continue;
            }
            s->early[s->n_early].task = t;
            s->early[s->n_early++].id = id;
            edges[i].flags |= TSR_EDGE_EARLY;
            deps_step(s, TSR_DEPS_ONE_UNLAUNCHED);
        }
        if (chunk == NULL) {
            break;
        }
        edges = chunk->edges;
        n = chunk->n_edges;
        chunk = chunk->next;
    }
    tsr__spin_unlock(&t->lock);
}

/* Wait for the predecessors t was launched behind that are still in flight on w. */
static void early_waits(struct tsr__worker *w, struct tsr_future *t, struct tsr__launch *l)
{
    l->n_waits = 0;
    l->prefer_slot = UINT32_MAX;
    for (uint32_t k = 0; k < t->n_early; k++) {
        for (uint32_t i = 0; i < w->n_inflight; i++) {
            struct tsr__inflight *f = &w->inflight[i];

            if (f->task == t->early[k].task && f->token != NULL &&
                atomic_load_explicit(&f->task->id, memory_order_relaxed) == t->early[k].id) {
                l->waits[l->n_waits] = f->token;
                l->wait_slots[l->n_waits++] = f->slot;
                break;
            }
        }
    }
    if (l->n_waits > 0) {
        l->prefer_slot = l->wait_slots[0];
    }
}

/* t ended at its launch (cancelled, or it failed to launch). A task launched
 * early must not finish before its predecessors: its outcome then waits in *f
 * (token NULL) until they have; returns 1 in that case, else finishes t now. */
static int launch_ended(struct tsr__worker *w, struct tsr_future *t, struct tsr__inflight *f,
                        tsr_status_t st, const char *msg)
{
    if (t->is_early && tsr__task_n_pending(t) != 0) {
        f->token = NULL;
        f->status = st;
        f->msg = msg != NULL ? strdup(msg) : NULL;
        f->slot = UINT32_MAX;
        return 1;
    }
    tsr__task_finish(w, t, st, msg, f->t0);
    return 0;
}

int tsr__task_launch(struct tsr__worker *w, struct tsr_future *t, struct tsr__inflight *f)
{
    tsr_runtime_t *rt = t->rt;
    struct tsr__device *dev = w->dev;
    tsr_buffer_t bufs[TSR_MAX_BUFFERS];
    struct tsr_task_ctx ctx = {rt, t, w, dev->ops->kind, NULL, NULL, 0, {0}};
    struct tsr__launch l;
    tsr_status_t st;

    f->task = t;
    f->token = NULL;
    f->msg = NULL;
    f->t0 = 0;
    if (cancel_cause_of(t) != NULL) {
        return launch_ended(w, t, f, TSR_ECANCELED, NULL);
    }
    f->t0 = rt->trace_path != NULL || rt->models != NULL ? tsr__now_ns() : 0;
    atomic_store_explicit(&t->state, TASK_RUNNING, memory_order_relaxed);
    st = prepare_buffers(w, t, bufs);
    if (st == TSR_ENOMEM && w->n_inflight > 0) {
        /* The room is held by launches still running here: let them finish (and
         * give their data up to eviction), then try once more. */
        unpin_buffers(t);
        tsr__driver_drain(w);
        st = prepare_buffers(w, t, bufs);
    }
    if (st != TSR_OK) {
        return launch_ended(w, t, f, st, tsr_last_error());
    }
    l.n_bufs = t->n_bufs;
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        l.modes[i] = t->bufs[i].mode;
        l.fences[i] = &t->bufs[i].data->rep[dev->node].fence;
    }
    l.msg[0] = '\0';
    early_waits(w, t, &l);
    st = dev->ops->launch_begin(dev->state, &l);
    if (st == TSR_OK) {
        ctx.stream = l.stream;
        ctx.blas = l.blas;
        st = check_impl_status(&ctx, tsr__device_impl(t->cl, ctx.kind)(&ctx, bufs, t->arg));
        st = dev->ops->launch_end(dev->state, &l, st, &f->token);
    }
    mark_written(w, t);
    if (st != TSR_OK) {
        return launch_ended(w, t, f, st, ctx.has_msg ? ctx.msg : l.msg[0] ? l.msg : NULL);
    }
    f->slot = l.slot;
    if (t->is_early) {
        atomic_store_explicit(&w->n_launched_early,
                              atomic_load_explicit(&w->n_launched_early, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    notify_launched(t);
    return 1;
}

void tsr__task_execute(struct tsr__worker *w, struct tsr_future *t)
{
    tsr_runtime_t *rt = t->rt;

    if (cancel_cause_of(t) != NULL) {
        tsr__task_complete(t, TSR_ECANCELED, NULL, &w->n_completed);
    } else {
        run_impl(w, t);
    }
    tsr__runtime_check_idle(rt);
    tsr__task_unref(t);
}

tsr_runtime_t *tsr_task_ctx_runtime(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->rt : NULL;
}

uint32_t tsr_task_ctx_worker(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->worker->index : 0;
}

tsr_device_kind_t tsr_task_ctx_device_kind(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->kind : TSR_DEVICE_CPU;
}

uint32_t tsr_task_ctx_device(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->worker->dev->index : 0;
}

void *tsr_task_ctx_stream(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->stream : NULL;
}

void *tsr_task_ctx_blas(const tsr_task_ctx_t *ctx)
{
    return ctx != NULL ? ctx->blas : NULL;
}

void tsr_task_ctx_fail(tsr_task_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;

    if (ctx == NULL || fmt == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof(ctx->msg), fmt, ap);
    va_end(ap);
    ctx->has_msg = 1;
}

tsr_status_t tsr_task_ctx_alloc(tsr_task_ctx_t *ctx, uint32_t index, size_t n_bytes, void **ptr_out)
{
    struct tsr_data *d;
    tsr_status_t st;
    void *p;

    if (ctx == NULL || ptr_out == NULL || index >= ctx->task->n_bufs) {
        return tsr__fail(TSR_EINVAL, "tsr_task_ctx_alloc: bad context, index or ptr_out");
    }
    d = ctx->task->bufs[index].data;
    if (!(ctx->task->bufs[index].mode & TSR_W) || !(d->flags & TSR_DATA_F_DYNAMIC)) {
        return tsr__fail(TSR_EINVAL,
                         "tsr_task_ctx_alloc: handle %u is not a dynamic-size "
                         "output written by this task",
                         (unsigned)index);
    }
    if (ctx->worker->dev->is_async && ctx->worker->n_inflight > 0 &&
        tsr__coh_has_memory(d, ctx->worker->dev->node)) {
        /* A resize frees the handle's old block on this device, which a task
         * launched before this one (behind which this one was launched, in stream
         * order) may still be reading or writing: let those finish first. A fresh
         * output, the common case, has no block there and waits for nothing. */
        tsr__driver_drain(ctx->worker);
    }
    st = tsr__coh_resize(d, ctx->worker->dev->node, n_bytes, &p);
    if (st == TSR_ENOMEM && ctx->worker->dev->is_async && ctx->worker->n_inflight > 0) {
        /* As at launch: the room may be held by earlier launches on this device
         * that have not been retired yet; let them finish, then try once more. */
        tsr__driver_drain(ctx->worker);
        st = tsr__coh_resize(d, ctx->worker->dev->node, n_bytes, &p);
    }
    if (st != TSR_OK) {
        return tsr__fail(st, "tsr_task_ctx_alloc: cannot allocate %zu bytes: %s", n_bytes,
                         tsr_last_error());
    }
    *ptr_out = p;
    return TSR_OK;
}

int tsr__task_vt_start(struct tsr__worker *w, struct tsr_future *t)
{
    tsr_buffer_t bufs[TSR_MAX_BUFFERS];
    tsr_status_t st;

    if (cancel_cause_of(t) != NULL) {
        tsr__task_finish(w, t, TSR_ECANCELED, NULL, 0);
        return 0;
    }
    atomic_store_explicit(&t->state, TASK_RUNNING, memory_order_relaxed);
    st = prepare_buffers(w, t, bufs);
    if (st != TSR_OK) {
        tsr__task_finish(w, t, st, tsr_last_error(), 0);
        return 0;
    }
    return 1;
}

void tsr__task_vt_finish(struct tsr__worker *w, struct tsr_future *t, uint64_t t0_ns,
                         uint64_t t1_ns)
{
    tsr_runtime_t *rt = t->rt;

    mark_written(w, t);
    if (rt->trace_path != NULL) {
        tsr__trace_span(&w->trace, t0_ns, t1_ns, atomic_load_explicit(&t->id, memory_order_relaxed),
                        t->name, TSR_OK);
    }
    tsr__task_complete(t, TSR_OK, NULL, &w->n_completed);
    tsr__runtime_check_idle(rt);
    tsr__task_unref(t);
}

/* The task object (a future is a reference to a task), its edges and the shared
 * root cause of a failure. Private to core/. */
#ifndef TSR_CORE_TASK_IMPL_H
#define TSR_CORE_TASK_IMPL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tessera/task.h>

#include "core/sync.h"
#include "devices/device_ops.h"

/* A failure shared by the task that failed and everything cancelled because of it.
 * Immutable after creation except the reference count. */
struct tsr_cause {
    atomic_uint refs;
    tsr_status_t status;  /* status of the root task */
    uint64_t root_id;     /* id of the task that failed; UINT64_MAX: runtime cancel */
    const char *root_msg; /* "task 'x' (#12) failed: ..." */
    const char *dep_msg;  /* "cancelled: depends on task 'x' (#12), which failed: ..." */
};

struct tsr_cause *tsr__cause_create(tsr_status_t status, uint64_t root_id, const char *root_msg,
                                    const char *dep_msg);
static inline struct tsr_cause *tsr__cause_retain(struct tsr_cause *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}
void tsr__cause_release(struct tsr_cause *c);

/* An edge to a successor. PROPAGATE edges carry data (read-after-write, explicit
 * dependencies): a failure of the predecessor cancels the successor. Ordering-only
 * edges (write-after-read, write-after-write) do not. */
#define TSR_EDGE_PROPAGATE 0x1u
/* The successor was told the predecessor is launched on their common asynchronous
 * device (it counted in the high half of the successor's deps then, not at completion). */
#define TSR_EDGE_EARLY 0x2u
struct task_edge {
    struct tsr_future *succ;
    uint32_t flags;
};

#define TSR_TASK_INLINE_EDGES 4
struct edge_chunk {
    struct edge_chunk *next;
    uint32_t n_edges;
    struct task_edge edges[15];
};

/* States only move forward, in this order. */
enum task_state { TASK_PENDING = 0, TASK_READY = 1, TASK_RUNNING = 2, TASK_DONE = 3 };

#define TSR_TASK_F_ACQUIRE 0x1u  /* host acquire of a handle; never queued on a worker */
#define TSR_TASK_F_ARG_HEAP 0x2u /* arg points to a malloc'd copy */
#define TSR_TASK_F_ADMITTED 0x4u /* run even while host memory is paused (core/spill.c) */

/* Predecessors a task may be launched behind on its asynchronous device (stream
 * order or an event wait instead of waiting for their completion). */
#define TSR_TASK_MAX_EARLY TSR_LAUNCH_MAX_WAITS

struct task_buf {
    struct tsr_data *data;
    uint32_t mode; /* tsr_access_t */
};

/* A task. Allocated from the runtime's task pool and recycled; `id` is unique per
 * runtime and also serves as a generation number, so a stale pointer kept by a
 * handle is recognised (id mismatch) after the slot is reused. */
struct tsr_future {
    /* Written at submit, read by the worker. */
    tsr_runtime_t *rt;
    const tsr_codelet_t *cl;
    const char *name;
    void *arg;
    size_t arg_size;
    int32_t priority;
    uint32_t flags;
    uint32_t n_bufs;
    uint32_t cancel_epoch;
    uint32_t device;         /* index of the device that runs it, or TSR_DEVICE_ANY */
    uint32_t dev_mask;       /* devices it may run on (bit d: device d) */
    uint32_t n_pinned;       /* its first n_pinned buffers are pinned on its device */
    uint64_t pred_ns;        /* dmda: predicted run time, in its device's load */
    /* Its depth in the graph: 0 for a root, else 1 + its deepest predecessor's.
     * Device queues run the deepest ready task first (depth-first, memory-friendly
     * order): the consumers of data just made run before roots make more. Written
     * by the submitter while registering the task; read by its successors then. */
    _Atomic uint64_t depth;
    struct tsr_future *next; /* free lists, overflow queues */
    alignas(16) unsigned char arg_inline[TSR_TASK_ARG_INLINE];
    struct task_buf bufs[TSR_MAX_BUFFERS];

    /* Synchronisation. The lock guards is_done, id changes and the edge list. */
    alignas(TSR_CACHE_LINE) tsr__spinlock_t lock;
    uint32_t is_done;
    _Atomic uint64_t id;
    /* Two counts in one word, so that one atomic step sees both: the low half is
     * the unfinished predecessors + 1 while submitting; the high half the same,
     * except that a predecessor launched on this task's asynchronous device already
     * counts as finished. The step that brings the high half to 0 queues the task:
     * as ready if the low half is 0 too, else to be launched behind the
     * predecessors still running on its device. */
    _Atomic uint64_t deps;
    /* Those predecessors; written and read by the device's driver thread only. */
    uint32_t n_early;
    uint32_t is_early; /* queued before all predecessors finished; set when queued */
    struct task_ref_early {
        struct tsr_future *task;
        uint64_t id;
    } early[TSR_TASK_MAX_EARLY];
    atomic_uint refs;  /* 1 for the runtime until completion + futures */
    atomic_uint state; /* enum task_state; futex word of waiters */
    atomic_uint n_waiters;
    uint32_t n_edges;
    struct task_edge edges[TSR_TASK_INLINE_EDGES];
    struct edge_chunk *more_edges;

    /* Outcome. cause is set (CAS) by a failing predecessor before the task runs. */
    _Atomic(struct tsr_cause *) cause;
    tsr_status_t status;
};

#define TSR_DEPS_ONE_PENDING 1ull
#define TSR_DEPS_ONE_UNLAUNCHED (1ull << 32)
#define TSR_DEPS_ONE_EDGE (TSR_DEPS_ONE_PENDING | TSR_DEPS_ONE_UNLAUNCHED)

/* Unfinished predecessors of t (+1 while it is being submitted). */
static inline uint32_t tsr__task_n_pending(struct tsr_future *t)
{
    return (uint32_t)atomic_load_explicit(&t->deps, memory_order_acquire);
}

/* A reference a handle keeps to a task that may have completed and been recycled. */
struct task_ref {
    struct tsr_future *task;
    uint64_t id;
};

/* A fresh task of rt with `refs` references, holding the submission guard. */
struct tsr_future *tsr__task_new(tsr_runtime_t *rt, uint32_t refs);

/* Add an edge pred -> succ unless pred already completed (or the reference is
 * stale). Returns 1 if succ must wait for pred (edge added, or succ cancelled
 * because memory for the edge ran out), 0 if pred has already completed. */
int tsr__task_add_edge(struct tsr_future *pred, uint64_t pred_id, struct tsr_future *succ,
                       uint32_t flags);

/* Give succ the failure `cause` unless it already has one. Takes no reference
 * from the caller; retains cause when stored. */
void tsr__task_set_cause(struct tsr_future *t, struct tsr_cause *cause);

/* Block the calling thread (not a worker) until t->state reaches `state` (the
 * states only move forward). */
void tsr__task_block_until(struct tsr_future *t, uint32_t state);

/* Drop one reference; the last returns the task to the pool. */
void tsr__task_unref(struct tsr_future *t);

/* A predecessor of t finished: the last one makes t ready. */
void tsr__task_dep_done(struct tsr_future *t);

/* Complete t with `status` (and failure message `msg`, may be NULL): update the
 * handles it wrote, count it in *n_done, wake waiters, release successors. The
 * caller then drops the runtime's reference. */
/* Bytes of t's buffers now (a dynamic output counts once it has a size). */
uint64_t tsr__task_bytes(const struct tsr_future *t);

void tsr__task_complete(struct tsr_future *t, tsr_status_t status, const char *msg,
                        _Atomic uint64_t *n_done);

struct tsr__worker;
struct tsr__inflight;

/* Run t on the calling worker, of a synchronous device, to completion (or complete
 * it as cancelled). */
void tsr__task_execute(struct tsr__worker *w, struct tsr_future *t);

/* Asynchronous devices: make t's buffers valid on w's device and launch it. Returns
 * 1 with *f filled when the work is queued (poll f->token, then tsr__task_finish);
 * 0 when t already completed (cancelled, or failed to launch). */
int tsr__task_launch(struct tsr__worker *w, struct tsr_future *t, struct tsr__inflight *f);

/* Simulation (core/vtime.c): make t's buffers valid on w's node (the copies take
 * virtual time); returns 1, or 0 when t completed at once (cancelled, or its
 * inputs could not be placed). Then, at its virtual end, tsr__task_vt_finish. */
int tsr__task_vt_start(struct tsr__worker *w, struct tsr_future *t);
void tsr__task_vt_finish(struct tsr__worker *w, struct tsr_future *t, uint64_t t0_ns,
                         uint64_t t1_ns);

/* t's work is over with status st (msg: failure message or NULL; t0: launch time
 * for the trace, 0 for none): complete it and drop the runtime's reference. */
void tsr__task_finish(struct tsr__worker *w, struct tsr_future *t, tsr_status_t st, const char *msg,
                      uint64_t t0);

#endif /* TSR_CORE_TASK_IMPL_H */

/* Dependency inference over data handles, in submission order:
 * - a task that reads (R, RW) waits for the last writer, and inherits its failure;
 * - a task that writes (W, RW) waits for the readers since the last writer, or for
 *   the last writer itself when there were none (ordering only: an overwrite does
 *   not inherit a failure).
 * All handles of a task are locked together, in address order, so that tasks
 * submitted concurrently from several threads are ordered the same way on every
 * handle they share (no cycles). */
#include <stdlib.h>

#include "core/data_impl.h"
#include "core/error.h"
#include "core/runtime_impl.h"

uint32_t tsr__deps_normalise(struct dep_access *acc, uint32_t n)
{
    uint32_t n_out = 0;

    for (uint32_t i = 1; i < n; i++) {
        struct dep_access key = acc[i];
        uint32_t j = i;

        while (j > 0 && (uintptr_t)acc[j - 1].data > (uintptr_t)key.data) {
            acc[j] = acc[j - 1];
            j--;
        }
        acc[j] = key;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (n_out > 0 && acc[n_out - 1].data == acc[i].data) {
            acc[n_out - 1].mode |= acc[i].mode;
        } else {
            acc[n_out++] = acc[i];
        }
    }
    return n_out;
}

/* Whether the task r names has not finished (its slot may hold a later task). */
static int ref_live(struct task_ref r)
{
    int live;

    tsr__spin_lock(&r.task->lock);
    live = !r.task->is_done && atomic_load_explicit(&r.task->id, memory_order_relaxed) == r.id;
    tsr__spin_unlock(&r.task->lock);
    return live;
}

/* Readers that completed are dropped before the array grows, so a handle read by
 * many tasks and never written keeps only live readers. */
static void prune_readers(struct tsr_data *d)
{
    uint32_t n_live = 0;

    for (uint32_t i = 0; i < d->n_readers; i++) {
        if (ref_live(d->readers[i])) {
            d->readers[n_live++] = d->readers[i];
        }
    }
    d->n_readers = n_live;
}

int tsr__deps_idle(struct tsr_data *d)
{
    int idle;

    tsr__spin_lock(&d->lock);
    idle = d->last_writer.task == NULL || !ref_live(d->last_writer);
    for (uint32_t i = 0; i < d->n_readers && idle; i++) {
        idle = !ref_live(d->readers[i]);
    }
    tsr__spin_unlock(&d->lock);
    return idle;
}

static int add_reader(struct tsr_data *d, struct tsr_future *t, uint64_t id)
{
    if (d->n_readers == d->cap_readers) {
        prune_readers(d);
    }
    if (d->n_readers == d->cap_readers) {
        uint32_t cap = d->cap_readers ? 2 * d->cap_readers : 8;
        struct task_ref *r = realloc(d->readers, cap * sizeof(*r));

        if (r == NULL) {
            return 0;
        }
        d->readers = r;
        d->cap_readers = cap;
    }
    d->readers[d->n_readers].task = t;
    d->readers[d->n_readers].id = id;
    d->n_readers++;
    return 1;
}

static void register_read(struct tsr_data *d, struct tsr_future *t)
{
    struct task_ref lw = d->last_writer;

    if (lw.task != NULL && tsr__task_add_edge(lw.task, lw.id, t, TSR_EDGE_PROPAGATE)) {
        return;
    }
    /* The last writer is done: its outcome is in poison (stored before it was
     * marked done, and changed only under this handle's lock). */
    struct tsr_cause *poison = atomic_load_explicit(&d->poison, memory_order_acquire);
    if (poison != NULL) {
        tsr__task_set_cause(t, poison);
    }
}

static void register_write(struct tsr_data *d, struct tsr_future *t, uint64_t id)
{
    if (d->n_readers > 0) {
        for (uint32_t i = 0; i < d->n_readers; i++) {
            tsr__task_add_edge(d->readers[i].task, d->readers[i].id, t, 0);
        }
        d->n_readers = 0;
    } else if (d->last_writer.task != NULL) {
        tsr__task_add_edge(d->last_writer.task, d->last_writer.id, t, 0);
    }
    d->last_writer.task = t;
    d->last_writer.id = id;
}

void tsr__deps_register(struct tsr_future *t, const struct dep_access *acc, uint32_t n)
{
    uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);

    for (uint32_t i = 0; i < n; i++) {
        tsr__spin_lock(&acc[i].data->lock);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct tsr_data *d = acc[i].data;

        if (acc[i].mode & TSR_R) {
            register_read(d, t);
        }
        if (acc[i].mode & TSR_W) {
            register_write(d, t, id);
        } else if (!add_reader(d, t, id)) {
            /* Out of memory for the reader list: order this reader like a writer
             * would be ordered instead, which is stricter but still correct. */
            register_write(d, t, id);
        }
    }
    for (uint32_t i = n; i > 0; i--) {
        tsr__spin_unlock(&acc[i - 1].data->lock);
    }
}

void tsr__deps_writer_done(struct tsr_data *d, struct tsr_cause *cause)
{
    struct tsr_cause *old;

    if (cause == NULL && atomic_load_explicit(&d->poison, memory_order_relaxed) == NULL) {
        return; /* the common case: valid before, valid now */
    }
    if (cause != NULL) {
        tsr__cause_retain(cause);
    }
    tsr__spin_lock(&d->lock);
    old = atomic_exchange_explicit(&d->poison, cause, memory_order_acq_rel);
    tsr__spin_unlock(&d->lock);
    if (old != NULL) {
        tsr__cause_release(old);
    }
}

/* The public future API: a future is a counted reference to a task. */
#include <stdint.h>

#include "core/error.h"
#include "core/progress.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/vtime.h"
#include "core/worker.h"

#define WAIT_SPINS 256

static int is_done(struct tsr_future *t)
{
    return atomic_load_explicit(&t->state, memory_order_acquire) == TASK_DONE;
}

static void block_until(struct tsr_future *t, uint32_t state)
{
    if (t->rt->vt != NULL) {
        /* A simulation advances only while someone waits; if t still has not got
         * there, nothing else will bring it (it waits for the program). */
        tsr__vt_run(t->rt);
        return;
    }
    for (int i = 0; i < WAIT_SPINS; i++) {
        if (atomic_load_explicit(&t->state, memory_order_acquire) >= state) {
            return;
        }
        tsr__cpu_relax();
    }
    atomic_fetch_add_explicit(&t->n_waiters, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t now = atomic_load_explicit(&t->state, memory_order_seq_cst);

        if (now >= state) {
            break;
        }
        tsr__futex_wait(&t->state, now);
    }
    atomic_fetch_sub_explicit(&t->n_waiters, 1, memory_order_relaxed);
}

void tsr__task_block_until(struct tsr_future *t, uint32_t state)
{
    block_until(t, state);
    tsr__progress_settle(t->rt);
}

tsr_status_t tsr_future_wait(tsr_future_t *future)
{
    struct tsr__worker *w;

    if (future == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_future_wait: future is NULL");
    }
    if (!is_done(future)) {
        w = tsr__worker_self(future->rt);
        if (w != NULL) {
            tsr__worker_help_until(w, future);
        } else {
            tsr__task_block_until(future, TASK_DONE);
        }
    }
    return future->status;
}

tsr_status_t tsr_future_test(tsr_future_t *future)
{
    if (future == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_future_test: future is NULL");
    }
    return is_done(future) ? future->status : TSR_PENDING;
}

tsr_status_t tsr_future_wait_all(tsr_future_t *const *futures, size_t n)
{
    tsr_status_t first = TSR_OK;

    if (futures == NULL && n > 0) {
        return tsr__fail(TSR_EINVAL, "tsr_future_wait_all: futures is NULL");
    }
    for (size_t i = 0; i < n; i++) {
        tsr_status_t st = tsr_future_wait(futures[i]);

        if (st != TSR_OK && first == TSR_OK) {
            first = st;
        }
    }
    return first;
}

const char *tsr_future_message(tsr_future_t *future)
{
    struct tsr_cause *cause;

    if (future == NULL || !is_done(future) || future->status == TSR_OK) {
        return "";
    }
    cause = atomic_load_explicit(&future->cause, memory_order_acquire);
    if (cause == NULL) {
        return tsr_status_str(future->status);
    }
    if (cause->root_id == atomic_load_explicit(&future->id, memory_order_relaxed)) {
        return cause->root_msg;
    }
    return cause->dep_msg;
}

uint64_t tsr_future_task_id(const tsr_future_t *future)
{
    return future != NULL ? atomic_load_explicit(&future->id, memory_order_relaxed) : UINT64_MAX;
}

tsr_future_t *tsr_future_retain(tsr_future_t *future)
{
    if (future != NULL) {
        atomic_fetch_add_explicit(&future->refs, 1, memory_order_relaxed);
    }
    return future;
}

void tsr_future_release(tsr_future_t *future)
{
    if (future != NULL) {
        tsr__task_unref(future);
    }
}

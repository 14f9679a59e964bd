/* Worker threads. An idle CPU worker first spins (at most one at a time, so that
 * idle workers do not starve the submitting thread on a small machine), yielding
 * the CPU as it goes, and then sleeps on the runtime's event count.
 * An asynchronous device (sim, CUDA) has one driver thread: it launches tasks
 * from its device queue, keeping up to TSR_MAX_INFLIGHT in flight, polls their
 * completion, and sleeps on the device's event count when it has nothing to do. */
#include "core/worker.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/coherence.h"
#include "core/device.h"
#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/sched.h"
#include "core/task_impl.h"

#define SPIN_PAUSES 64
#define SPIN_YIELDS 64

static _Thread_local struct tsr__worker *tls_worker;

struct tsr__worker *tsr__worker_self(const tsr_runtime_t *rt)
{
    struct tsr__worker *w = tls_worker;

    return w != NULL && w->rt == rt ? w : NULL;
}

void tsr__workers_notify(tsr_runtime_t *rt)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&rt->n_spinning, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&rt->work_ev.n_waiters, memory_order_relaxed) != 0) {
        tsr__event_wake(&rt->work_ev, 1);
    }
}

/* CPU workers take work from the scheduling policy; an accelerator's workers
 * from its device queue. */
static struct tsr_future *pop_any(struct tsr__worker *w)
{
    tsr_runtime_t *rt = w->rt;
    struct tsr_future *t = w->dev->has_queue ? tsr__central_pop_ordered(&w->dev->queue)
                                             : rt->sched->pop(rt->sched_state, w);

    if (t == NULL && rt->has_shared) {
        t = tsr__central_pop_ordered(&rt->shared);
        if (t != NULL) {
            t->device = w->dev->index; /* it runs here */
        }
    }
    return t;
}

struct tsr_future *tsr__worker_pop(struct tsr__worker *w)
{
    tsr_runtime_t *rt = w->rt;
    struct tsr_future *t = pop_any(w);

    /* Back-pressure: while host memory is above its pause mark, graph roots wait
     * for the spill thread (core/spill.c) and the worker takes another task. */
    while (t != NULL && !w->dev->has_queue && rt->spill.started &&
           tsr__host_in_use(rt) >= rt->spill.pause && tsr__spill_defer(rt, t)) {
        t = pop_any(w);
    }
    return t;
}

static struct tsr__event *idle_event(struct tsr__worker *w)
{
    return w->dev->has_queue ? &w->dev->ev : &w->rt->work_ev;
}

/* Pass a wake-up on to another idle worker of w's device. */
static void notify_peers(struct tsr__worker *w)
{
    if (w->dev->has_queue) {
        tsr__event_notify(&w->dev->ev, 1);
    } else {
        tsr__workers_notify(w->rt);
    }
}

void tsr__workers_wake_all(tsr_runtime_t *rt)
{
    tsr__event_wake(&rt->work_ev, 1 << 30);
    for (uint32_t d = 0; d < rt->n_devices; d++) {
        if (rt->devices[d].has_queue) {
            tsr__event_wake(&rt->devices[d].ev, 1 << 30);
        }
    }
}

/* Look for work for a while before sleeping; only one worker spins at a time. */
static struct tsr_future *spin_for_work(struct tsr__worker *w)
{
    tsr_runtime_t *rt = w->rt;
    struct tsr_future *t = NULL;
    unsigned expected = 0;

    if (w->dev->has_queue ||
        !atomic_compare_exchange_strong_explicit(&rt->n_spinning, &expected, 1,
                                                 memory_order_seq_cst, memory_order_relaxed)) {
        return NULL;
    }
    for (int i = 0; i < SPIN_PAUSES + SPIN_YIELDS && t == NULL; i++) {
        if (i < SPIN_PAUSES) {
            tsr__cpu_relax();
        } else {
            sched_yield();
        }
        t = tsr__worker_pop(w);
    }
    atomic_store_explicit(&rt->n_spinning, 0, memory_order_seq_cst);
    if (t != NULL) {
        /* This worker stops looking: hand the search on if more work is queued. */
        tsr__workers_notify(rt);
    }
    return t;
}

/* Sleep until notified; returns a task found on the way, or NULL to look again
 * (*stop set when the runtime is stopping). */
static struct tsr_future *sleep_for_work(struct tsr__worker *w, int *stop)
{
    struct tsr__event *ev = idle_event(w);
    uint32_t key = tsr__event_prepare(ev);
    struct tsr_future *t = tsr__worker_pop(w);

    if (t != NULL || atomic_load_explicit(&w->rt->is_stopping, memory_order_acquire)) {
        tsr__event_cancel(ev);
        *stop = t == NULL;
        return t;
    }
    tsr__event_commit(ev, key);
    return NULL;
}

/* Complete the launches of w's device that finished; returns how many. */
static uint32_t driver_progress(struct tsr__worker *w)
{
    uint32_t n_done = 0;
    uint32_t i = 0;

    while (i < w->n_inflight) {
        struct tsr__inflight f = w->inflight[i];
        char msg[256] = "";
        tsr_status_t st;

        if (tsr__task_n_pending(f.task) != 0) {
            /* Launched behind predecessors not finished yet: it finishes after them. */
            i++;
            continue;
        }
        st = f.token == NULL ? f.status
                             : w->dev->ops->poll(w->dev->state, f.token, 0, msg, sizeof(msg));
        if (st == TSR_PENDING) {
            i++;
            continue;
        }
        memmove(&w->inflight[i], &w->inflight[i + 1],
                (w->n_inflight - i - 1) * sizeof(w->inflight[0]));
        w->n_inflight--;
        tsr__task_finish(w, f.task, st, f.token == NULL ? f.msg : msg[0] ? msg : NULL, f.t0);
        free(f.msg);
        n_done++;
    }
    return n_done;
}

static void driver_launch(struct tsr__worker *w, struct tsr_future *t)
{
    struct tsr__inflight f;

    if (tsr__task_launch(w, t, &f)) {
        /* An implementation that waited for a future (tsr__worker_help_until) may
         * have filled the list meanwhile. */
        while (w->n_inflight == TSR_MAX_INFLIGHT) {
            if (driver_progress(w) == 0) {
                sched_yield();
            }
        }
        w->inflight[w->n_inflight++] = f;
    }
}

void tsr__driver_drain(struct tsr__worker *w)
{
    while (w->n_inflight > 0) {
        if (driver_progress(w) == 0) {
            sched_yield();
        }
    }
}

/* Complete what finished, launch what is queued; returns how much was done. */
static uint32_t driver_step(struct tsr__worker *w)
{
    uint32_t n = driver_progress(w);
    struct tsr_future *t;

    while (w->n_inflight < TSR_MAX_INFLIGHT && (t = tsr__worker_pop(w)) != NULL) {
        driver_launch(w, t);
        n++;
    }
    return n;
}

static void driver_main(struct tsr__worker *w)
{
    int stop = 0;

    while (!stop) {
        struct tsr_future *t;

        if (driver_step(w) > 0 ||
            tsr__coh_evict_ahead(w->rt, w->dev->node,
                                 atomic_load_explicit(&w->n_completed, memory_order_relaxed))) {
            continue;
        }
        if (w->n_inflight > 0) {
            sched_yield(); /* the device is busy: poll again soon */
            continue;
        }
        t = sleep_for_work(w, &stop);
        if (t != NULL) {
            driver_launch(w, t);
        }
    }
}

static void *worker_main(void *arg)
{
    struct tsr__worker *w = arg;
    int was_asleep = 0;
    int stop = 0;

    tls_worker = w;
    if (w->dev->is_async) {
        driver_main(w);
        tls_worker = NULL;
        return NULL;
    }
    while (!stop) {
        struct tsr_future *t = tsr__worker_pop(w);

        if (t == NULL) {
            t = spin_for_work(w);
        }
        if (t == NULL) {
            t = sleep_for_work(w, &stop);
            if (t == NULL) {
                was_asleep = 1;
                continue;
            }
        }
        if (was_asleep) {
            /* Pushers skip the wake-up while a worker spins, and one wake-up wakes one
             * worker: a woken worker that finds work passes the wake-up on, so
             * every queued task finds a worker. */
            notify_peers(w);
            was_asleep = 0;
        }
        tsr__task_execute(w, t);
    }
    tls_worker = NULL;
    return NULL;
}

void tsr__worker_help_until(struct tsr__worker *w, struct tsr_future *t)
{
    struct tsr__event *ev = idle_event(w);
    int was_asleep = 0;

    atomic_fetch_add_explicit(&t->n_waiters, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&t->state, memory_order_seq_cst) != TASK_DONE) {
        struct tsr_future *other;
        uint32_t key;

        if (w->dev->is_async) {
            /* A driver thread waiting inside a task goes on launching and polling,
             * since its own launches may be what t waits for. */
            if (driver_step(w) == 0) {
                sched_yield();
            }
            continue;
        }
        other = tsr__worker_pop(w);
        if (other != NULL) {
            if (was_asleep) {
                notify_peers(w); /* pass the wake-up on, as worker_main does */
                was_asleep = 0;
            }
            tsr__task_execute(w, other);
            continue;
        }
        /* Sleep until new work or t's completion (which wakes work_ev too). */
        key = tsr__event_prepare(ev);
        other = tsr__worker_pop(w);
        if (other != NULL) {
            tsr__event_cancel(ev);
            tsr__task_execute(w, other);
        } else if (atomic_load_explicit(&t->state, memory_order_seq_cst) == TASK_DONE) {
            tsr__event_cancel(ev);
        } else {
            tsr__event_commit(ev, key);
            was_asleep = 1;
        }
    }
    atomic_fetch_sub_explicit(&t->n_waiters, 1, memory_order_relaxed);
}

/* Name w's thread for top -H, gdb and perf: tsr-cpu-0, tsr-cuda0-1, ... (named
 * here rather than by the thread itself, so the name is there once tsr_init
 * returns). The kernel keeps 15 characters. */
static void name_thread(const struct tsr__worker *w)
{
    char name[48];

    snprintf(name, sizeof(name), "tsr-%s-%u", w->dev->name, w->index - w->dev->first_worker);
    name[15] = '\0';
    pthread_setname_np(w->thread, name);
}

tsr_status_t tsr__workers_start(tsr_runtime_t *rt)
{
    for (uint32_t i = 0; i < rt->n_workers && rt->vt != NULL; i++) {
        rt->workers[i].rt = rt; /* a simulation runs them on the waiting thread */
        rt->workers[i].index = i;
        rt->workers[i].rng = 0x9e3779b9u * (i + 1);
    }
    if (rt->vt != NULL) {
        return TSR_OK;
    }
    for (uint32_t i = 0; i < rt->n_workers; i++) {
        struct tsr__worker *w = &rt->workers[i];
        int err;

        w->rt = rt; /* w->dev was set by tsr__devices_setup */
        w->index = i;
        w->rng = 0x9e3779b9u * (i + 1);
        err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            tsr__workers_stop(rt);
            return tsr__fail(TSR_EBACKEND, "tsr_init: cannot start worker thread %u: %s",
                             (unsigned)i, strerror(err));
        }
        w->is_started = 1;
        name_thread(w);
    }
    return TSR_OK;
}

void tsr__workers_stop(tsr_runtime_t *rt)
{
    atomic_store_explicit(&rt->is_stopping, 1, memory_order_release);
    tsr__workers_wake_all(rt);
    for (uint32_t i = 0; i < rt->n_workers; i++) {
        if (rt->workers[i].is_started) {
            pthread_join(rt->workers[i].thread, NULL);
            rt->workers[i].is_started = 0;
        }
    }
}

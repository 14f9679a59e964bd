/* Placement at readiness.
 *
 * dmda: for each ready task, the device where it is expected to finish first:
 *   finish(d) = max(queued work of d / workers of d, inputs arrived on d) + run time on d
 * with the run time from the performance models, input arrival from the transfer
 * model (an input already valid on d costs nothing), and a device's queued work the
 * sum of the predictions of the tasks placed there and not completed yet. Times are
 * relative to now, which every device shares. A task with no prediction for a
 * device counts there as a nominal UNKNOWN_RUN_S, so that tasks nobody knows yet
 * spread over the devices by queued work, which also teaches the models.
 *
 * random: a device that can run the task, uniformly (a baseline for comparisons). */
#include "core/place.h"

#include <math.h>
#include <stdatomic.h>

#include "core/coherence.h"
#include "core/data_impl.h"
#include "core/models.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"

#define UNKNOWN_RUN_S 1e-4

int tsr__place_is_deferred(const tsr_runtime_t *rt)
{
    return rt->cfg.policy == TSR_SCHED_DMDA || rt->cfg.policy == TSR_SCHED_RANDOM;
}

static _Thread_local uint64_t place_rng;

void tsr__place_seed(uint64_t seed)
{
    place_rng = seed != 0 ? seed : 1;
}

static uint64_t next_random(void)
{
    uint64_t x = place_rng;

    if (x == 0) {
        x = (uint64_t)(uintptr_t)&place_rng ^ tsr__now_ns() ^ 0x9e3779b97f4a7c15ull;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    place_rng = x;
    return x;
}

static uint32_t pick_random(uint32_t mask)
{
    uint32_t n = (uint32_t)__builtin_popcount(mask);
    uint32_t k = (uint32_t)(next_random() % n);

    for (uint32_t d = 0; d < 32; d++) {
        if ((mask >> d) & 1u) {
            if (k-- == 0) {
                return d;
            }
        }
    }
    return 0;
}

/* Seconds for t's inputs to reach node `node`. */
static double inputs_arrival(tsr_runtime_t *rt, struct tsr_future *t, uint32_t node)
{
    double s = 0.0;

    for (uint32_t i = 0; i < t->n_bufs; i++) {
        struct tsr_data *d = t->bufs[i].data;
        int src = -1;

        if (!(t->bufs[i].mode & TSR_R)) {
            continue;
        }
        pthread_mutex_lock(&d->coh_mutex);
        if (d->n_bytes > 0 && d->rep[node].state == REP_INVALID) {
            src = tsr__coh_source(d); /* where the copy would come from */
        }
        if (src >= 0) {
            s += tsr__xfer_predict(rt, (uint32_t)src, node, d->n_bytes);
        }
        pthread_mutex_unlock(&d->coh_mutex);
    }
    return s;
}

static void place_dmda(tsr_runtime_t *rt, struct tsr_future *t)
{
    double best_finish = INFINITY;
    double best_run = 0.0;
    uint32_t best = 0;

    for (uint32_t d = 0; d < rt->n_devices; d++) {
        struct tsr__device *dev = &rt->devices[d];
        double run;
        double queued;
        double finish;

        if (!((t->dev_mask >> d) & 1u)) {
            continue;
        }
        run = tsr__model_predict(rt, t, dev->ops->kind);
        if (!(run > 0.0)) {
            run = UNKNOWN_RUN_S;
        }
        queued = (double)atomic_load_explicit(&dev->load_ns, memory_order_relaxed) * 1e-9 /
                 (double)(dev->n_workers > 0 ? dev->n_workers : 1);
        finish = fmax(queued, inputs_arrival(rt, t, dev->node)) + run;
        if (finish < best_finish) {
            best_finish = finish;
            best_run = run;
            best = d;
        }
    }
    t->device = best;
    t->pred_ns = (uint64_t)(best_run * 1e9);
    if (t->pred_ns > 0) {
        atomic_fetch_add_explicit(&rt->devices[best].load_ns, t->pred_ns, memory_order_relaxed);
    }
}

/* t->dev_mask without the accelerators whose memory cannot hold t's buffers at
 * once (unchanged if that leaves none: the task then fails with TSR_ENOMEM). */
static uint32_t fitting_devices(tsr_runtime_t *rt, const struct tsr_future *t)
{
    uint64_t need = tsr__task_bytes(t);
    uint32_t mask = t->dev_mask;

    for (uint32_t d = 1; d < rt->n_devices; d++) {
        if (need > rt->devices[d].mem.capacity) {
            mask &= ~(1u << d);
        }
    }
    return mask != 0 ? mask : t->dev_mask;
}

void tsr__place(tsr_runtime_t *rt, struct tsr_future *t)
{
    uint32_t all = t->dev_mask;

    t->dev_mask = fitting_devices(rt, t);
    if (rt->cfg.policy == TSR_SCHED_RANDOM) {
        t->device = pick_random(t->dev_mask);
    } else {
        place_dmda(rt, t);
    }
    t->dev_mask = all;
}

void tsr__place_done(tsr_runtime_t *rt, struct tsr_future *t)
{
    if (t->pred_ns > 0) {
        atomic_fetch_sub_explicit(&rt->devices[t->device].load_ns, t->pred_ns,
                                  memory_order_relaxed);
        t->pred_ns = 0;
    }
}

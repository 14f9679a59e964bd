/* Devices: device 0 is the CPU, fed by the scheduling policy; each accelerator
 * (sim, CUDA) has its own memory node, queue and workers. Where a task runs: its
 * pin and its codelet's implementations give the devices allowed; with one, that
 * is it; under dmda and random the policy chooses when the task is ready
 * (core/place.c); under eager and ws a task every device can run waits in a shared
 * queue for the first idle worker of any device, and any other goes to the CPU when
 * allowed, else to the allowed accelerators in turn. */
#include "core/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backends.h"
#include "core/coherence.h"
#include "core/config_impl.h"
#include "core/error.h"
#include "core/place.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "core/vtime.h"
#include "core/worker.h"

tsr_kernel_fn tsr__device_impl(const tsr_codelet_t *cl, tsr_device_kind_t kind)
{
    if (cl->impl[kind] == NULL && kind == TSR_DEVICE_SIM) {
        return cl->impl[TSR_DEVICE_CPU];
    }
    return cl->impl[kind];
}

int tsr__device_can_run(const tsr_runtime_t *rt, uint32_t dev, const tsr_codelet_t *cl)
{
    return tsr__device_impl(cl, rt->devices[dev].ops->kind) != NULL;
}

static tsr_status_t init_device(tsr_runtime_t *rt, const struct tsr__device_ops *ops,
                                uint32_t kind_index, uint32_t *first_worker)
{
    struct tsr__device *dev = &rt->devices[rt->n_devices];
    char msg[256] = "";

    dev->index = rt->n_devices;
    dev->kind_index = kind_index;
    dev->node = rt->n_devices;
    dev->ops = ops;
    dev->first_worker = *first_worker;
    dev->n_workers = ops->n_workers(&rt->cfg);
    dev->mem.capacity = tsr__config_limit(&rt->cfg.device_memory_limit,
                                          ops->mem_capacity(&rt->cfg, kind_index), 1.0);
    dev->is_async = ops->launch_begin != NULL;
    atomic_init(&dev->mem.used, 0);
    snprintf(dev->name, sizeof(dev->name), ops->kind == TSR_DEVICE_CPU ? "%s" : "%s%u", ops->name,
             (unsigned)kind_index);
    if (ops->describe != NULL) {
        ops->describe(kind_index, dev->model, sizeof(dev->model));
    } else {
        snprintf(dev->model, sizeof(dev->model), "%s", ops->name);
    }
    if (ops->open != NULL &&
        ops->open(&rt->cfg, kind_index, &dev->state, msg, sizeof(msg)) != TSR_OK) {
        /* A device that is present but unusable (busy, out of memory) is left out. */
        tsr__log(rt, TSR_LOG_WARN, "device %s is left out: %s", dev->name, msg);
        memset(dev, 0, sizeof(*dev));
        return TSR_OK;
    }
    if (ops->kind != TSR_DEVICE_CPU) {
        TSR_TRY(tsr__central_init(&dev->queue));
        dev->queue.by_order = 1;
        tsr__mem_cache_init(&dev->cache);
        dev->has_queue = 1;
    }
    *first_worker += dev->n_workers;
    rt->n_devices++;
    return TSR_OK;
}

tsr_status_t tsr__devices_alloc_workers(tsr_runtime_t *rt, uint32_t n_workers)
{
    rt->n_workers = n_workers;
    rt->n_cpu_workers = rt->devices[0].n_workers;
    rt->workers = aligned_alloc(TSR_CACHE_LINE, n_workers * sizeof(*rt->workers));
    if (rt->workers == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory for %u workers", (unsigned)n_workers);
    }
    memset(rt->workers, 0, n_workers * sizeof(*rt->workers));
    for (uint32_t d = 0; d < rt->n_devices; d++) {
        for (uint32_t i = 0; i < rt->devices[d].n_workers; i++) {
            rt->workers[rt->devices[d].first_worker + i].dev = &rt->devices[d];
        }
    }
    return TSR_OK;
}

tsr_status_t tsr__devices_setup(tsr_runtime_t *rt)
{
    size_t n_backends;
    const struct tsr__device_ops *const *backends = tsr__backends(&n_backends);
    uint32_t n_workers = 0;

    if (rt->vt != NULL) {
        return tsr__vt_devices_setup(rt);
    }
    rt->devices = calloc(TSR_MAX_NODES, sizeof(*rt->devices));
    if (rt->devices == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    for (size_t b = 0; b < n_backends; b++) {
        uint32_t n = backends[b]->n_devices(&rt->cfg);

        for (uint32_t i = 0; i < n; i++) {
            if (rt->n_devices == TSR_MAX_NODES) {
                return tsr__fail(TSR_EINVAL, "tsr_init: more than %d devices", TSR_MAX_NODES);
            }
            TSR_TRY(init_device(rt, backends[b], i, &n_workers));
        }
    }
    return tsr__devices_alloc_workers(rt, n_workers);
}

void tsr__devices_fini(tsr_runtime_t *rt)
{
    for (uint32_t d = 0; rt->devices != NULL && d < rt->n_devices; d++) {
        struct tsr__device *dev = &rt->devices[d];

        if (dev->has_queue) {
            tsr__central_fini(&dev->queue);
            tsr__mem_cache_fini(&dev->cache, dev);
        }
        if (dev->ops->close != NULL && dev->state != NULL) {
            dev->ops->close(dev->state);
        }
    }
    free(rt->devices);
}

/* Devices allowed by desc's pin that can run its codelet. */
static tsr_status_t allowed_devices(tsr_runtime_t *rt, const tsr_task_desc_t *desc,
                                    uint32_t *mask_out)
{
    const tsr_codelet_t *cl = desc->codelet;
    uint32_t mask = 0;

    switch (desc->pin) {
    case TSR_PIN_NONE:
    case TSR_PIN_KIND:
        if (desc->pin == TSR_PIN_KIND && desc->pin_value >= TSR_DEVICE_KIND_COUNT) {
            return tsr__fail(TSR_EINVAL, "tsr_task_submit: pin_value %u is not a device kind",
                             (unsigned)desc->pin_value);
        }
        for (uint32_t d = 0; d < rt->n_devices; d++) {
            if ((desc->pin == TSR_PIN_NONE || rt->devices[d].ops->kind == desc->pin_value) &&
                tsr__device_can_run(rt, d, cl)) {
                mask |= 1u << d;
            }
        }
        /* Device 0 is the CPU. */
        if (desc->pin == TSR_PIN_NONE && (rt->cfg.flags & TSR_CONFIG_F_ACCEL_FIRST) &&
            (mask & ~1u) != 0) {
            mask &= ~1u;
        }
        break;
    case TSR_PIN_DEVICE:
        if (desc->pin_value >= rt->n_devices) {
            return tsr__fail(TSR_EINVAL, "tsr_task_submit: no device %u (the runtime has %u)",
                             (unsigned)desc->pin_value, (unsigned)rt->n_devices);
        }
        if (tsr__device_can_run(rt, desc->pin_value, cl)) {
            mask = 1u << desc->pin_value;
        }
        break;
    default:
        return tsr__fail(TSR_EINVAL, "tsr_task_submit: pin %d is not a tsr_pin_t", (int)desc->pin);
    }
    if (mask == 0) {
        return tsr__fail(TSR_ENODEV,
                         "tsr_task_submit: no device of this runtime allowed by the pin can "
                         "run codelet '%s' (no implementation for its kind)",
                         cl->name ? cl->name : "?");
    }
    *mask_out = mask;
    return TSR_OK;
}

/* Under eager and ws: the CPU when allowed, else the allowed devices in turn. */
static uint32_t choose_static(tsr_runtime_t *rt, uint32_t mask)
{
    uint32_t start;

    if (mask & 1u) {
        return 0;
    }
    start = atomic_fetch_add_explicit(&rt->next_rr, 1, memory_order_relaxed);
    for (uint32_t i = 0; i < rt->n_devices; i++) {
        uint32_t d = (start + i) % rt->n_devices;

        if ((mask >> d) & 1u) {
            return d;
        }
    }
    return 0;
}

tsr_status_t tsr__device_choose(tsr_runtime_t *rt, const tsr_task_desc_t *desc, uint32_t *dev_out,
                                uint32_t *mask_out)
{
    uint32_t mask = 0;

    TSR_TRY(allowed_devices(rt, desc, &mask));
    *mask_out = mask;
    if ((mask & (mask - 1)) == 0) {
        *dev_out = (uint32_t)__builtin_ctz(mask); /* one choice */
    } else if (tsr__place_is_deferred(rt)) {
        *dev_out = TSR_DEVICE_ANY;
    } else if (rt->has_shared && mask == (1u << rt->n_devices) - 1) {
        *dev_out = TSR_DEVICE_SHARED;
    } else {
        *dev_out = choose_static(rt, mask);
    }
    return TSR_OK;
}

/* Start copying the inputs of t, just placed on an accelerator with asynchronous
 * copies, to its memory: the copies overlap whatever runs before t there. A
 * failure here is left for the task's own fetch to report. */
static void prefetch(tsr_runtime_t *rt, struct tsr_future *t)
{
    uint32_t node = rt->devices[t->device].node;

    for (uint32_t i = 0; i < t->n_bufs; i++) {
        if (t->bufs[i].mode & TSR_R) {
            tsr__coh_prefetch(t->bufs[i].data, node);
        }
    }
}

void tsr__device_push(tsr_runtime_t *rt, struct tsr__worker *self, struct tsr_future *t)
{
    struct tsr__device *dev;

    if (atomic_load_explicit(&rt->spill.n_on_disk, memory_order_relaxed) != 0) {
        tsr__spill_read_ahead(rt, t);
    }
    if (t->device == TSR_DEVICE_SHARED) {
        tsr__central_push(&rt->shared, t, 0);
        tsr__workers_notify(rt);
        for (uint32_t d = 1; d < rt->n_devices; d++) {
            tsr__event_notify(&rt->devices[d].ev, 1);
        }
        return;
    }
    if (t->device == TSR_DEVICE_ANY) {
        tsr__place(rt, t);
        if (rt->devices[t->device].ops->has_async_copies) {
            prefetch(rt, t);
        }
    }
    dev = &rt->devices[t->device];

    if (t->device == 0) {
        /* The CPU policy sees only CPU workers as "self". */
        int is_cpu_self = self != NULL && self->index < rt->n_cpu_workers;

        rt->sched->push(rt->sched_state, is_cpu_self ? self : NULL, t);
        return;
    }
    tsr__central_push(&dev->queue, t, 0);
    tsr__event_notify(&dev->ev, 1);
}

const char *tsr_device_kind_absent_reason(uint32_t kind)
{
    if (kind != TSR_DEVICE_CUDA) {
        return "";
    }
#if TSR_HAVE_CUDA
    return tsr__cuda_absent_reason();
#else
    return "this build has no CUDA backend (the CUDA toolkit was not found at configure time)";
#endif
}

uint32_t tsr_runtime_n_devices(tsr_runtime_t *rt)
{
    return rt != NULL ? rt->n_devices : 0;
}

tsr_status_t tsr_runtime_device_info(tsr_runtime_t *rt, uint32_t index, tsr_device_info_t *info_out)
{
    const struct tsr__device *dev;

    if (rt == NULL || info_out == NULL || index >= rt->n_devices) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_device_info: NULL argument or no device %u",
                         (unsigned)index);
    }
    dev = &rt->devices[index];
    memset(info_out, 0, sizeof(*info_out));
    info_out->kind = dev->ops->kind;
    info_out->kind_index = dev->kind_index;
    info_out->mem_node = dev->node;
    info_out->n_workers = dev->n_workers;
    info_out->mem_bytes = dev->mem.capacity;
    snprintf(info_out->name, sizeof(info_out->name), "%s", dev->name);
    snprintf(info_out->model, sizeof(info_out->model), "%s", dev->model);
    return TSR_OK;
}

tsr_status_t tsr_runtime_copy_stats(tsr_runtime_t *rt, uint32_t src_node, uint32_t dst_node,
                                    tsr_copy_stats_t *stats_out)
{
    if (rt == NULL || stats_out == NULL || src_node >= rt->n_devices || dst_node >= rt->n_devices) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_copy_stats: NULL argument or no such node");
    }
    stats_out->n_copies = atomic_load(&rt->n_copies[src_node][dst_node]);
    stats_out->n_bytes = atomic_load(&rt->n_copy_bytes[src_node][dst_node]);
    return TSR_OK;
}

tsr_status_t tsr_runtime_mem_stats(tsr_runtime_t *rt, uint32_t node, tsr_mem_stats_t *stats_out)
{
    struct tsr__device *dev;

    if (rt == NULL || stats_out == NULL || node >= rt->n_devices) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_mem_stats: NULL argument or no node %u",
                         (unsigned)node);
    }
    memset(stats_out, 0, sizeof(*stats_out));
    dev = &rt->devices[node];
    if (node == 0) {
        stats_out->capacity = rt->host_limit;
        stats_out->used_bytes = tsr__host_in_use(rt);
        stats_out->cached_bytes =
            atomic_load_explicit(&rt->host_spares.bytes, memory_order_relaxed);
        stats_out->n_reuses = atomic_load_explicit(&rt->host_spares.n_reuses, memory_order_relaxed);
        stats_out->peak_bytes = atomic_load_explicit(&rt->host_peak, memory_order_relaxed);
        stats_out->registered_bytes =
            atomic_load_explicit(&rt->host_registered, memory_order_relaxed);
        return TSR_OK;
    }
    stats_out->capacity = dev->mem.capacity;
    stats_out->spilled_bytes = atomic_load_explicit(&dev->spilled_bytes, memory_order_relaxed);
    stats_out->n_evicted = atomic_load_explicit(&dev->n_evicted, memory_order_relaxed);
    stats_out->n_evicted_ahead = atomic_load_explicit(&dev->n_evicted_ahead, memory_order_relaxed);
    pthread_mutex_lock(&dev->cache.mutex);
    stats_out->used_bytes = dev->cache.n_used_bytes;
    stats_out->cached_bytes = dev->cache.n_cached_bytes;
    stats_out->peak_bytes = dev->cache.n_peak_bytes;
    stats_out->n_allocs = dev->cache.n_backend_allocs;
    stats_out->n_reuses = dev->cache.n_reuses;
    pthread_mutex_unlock(&dev->cache.mutex);
    return TSR_OK;
}

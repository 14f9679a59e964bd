/* The simulated accelerator: its memory is a capacity-limited region of host
 * memory, reached only through explicit copies, and its kernel is the codelet's
 * CPU implementation (or its dedicated sim one). One worker thread per device, as
 * a GPU has one driver thread. It lets every data-movement path run, with real
 * data and results, on machines without a GPU. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_ops.h"

#define SIM_DEFAULT_MEM (256ull << 20)

static uint32_t sim_n_devices(const tsr_config_t *resolved)
{
    return resolved->n_sim_devices;
}

static uint32_t sim_n_workers(const tsr_config_t *resolved)
{
    (void)resolved;
    return 1;
}

static uint64_t sim_mem_capacity(const tsr_config_t *resolved)
{
    return resolved->sim_mem_bytes != 0 ? resolved->sim_mem_bytes : SIM_DEFAULT_MEM;
}

static tsr_status_t sim_execute(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                const void *arg)
{
    return fn(ctx, bufs, arg);
}

static tsr_status_t sim_mem_alloc(struct tsr__dev_mem *mem, size_t n_bytes, void **ptr_out)
{
    uint64_t used = atomic_fetch_add(&mem->used, n_bytes) + n_bytes;
    void *p;

    if (used > mem->capacity) {
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    p = malloc(n_bytes > 0 ? n_bytes : 1);
    if (p == NULL) {
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    *ptr_out = p;
    return TSR_OK;
}

static void sim_mem_free(struct tsr__dev_mem *mem, void *ptr, size_t n_bytes)
{
    if (ptr != NULL) {
        free(ptr);
        atomic_fetch_sub(&mem->used, n_bytes);
    }
}

static tsr_status_t sim_copy(void *dst, const void *src, size_t n_bytes)
{
    memcpy(dst, src, n_bytes);
    return TSR_OK;
}

const struct tsr__device_ops tsr__sim_device_ops = {
    .name = "sim",
    .kind = TSR_DEVICE_SIM,
    .n_devices = sim_n_devices,
    .n_workers = sim_n_workers,
    .mem_capacity = sim_mem_capacity,
    .execute = sim_execute,
    .mem_alloc = sim_mem_alloc,
    .mem_free = sim_mem_free,
    .copy_to_device = sim_copy,
    .copy_to_host = sim_copy,
    .copy_peer = sim_copy,
};

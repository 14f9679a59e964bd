/* The CPU device: always present; one worker per configured CPU thread, computing
 * in host memory; a task implementation is a plain function call. */
#include "devices/device_ops.h"

static uint32_t cpu_n_devices(const tsr_config_t *resolved)
{
    (void)resolved;
    return 1;
}

static uint32_t cpu_n_workers(const tsr_config_t *resolved)
{
    return resolved->n_cpu_workers > 0 ? (uint32_t)resolved->n_cpu_workers : 1u;
}

static uint64_t cpu_mem_capacity(const tsr_config_t *resolved, uint32_t index)
{
    (void)resolved;
    (void)index;
    return 0;
}

static tsr_status_t cpu_execute(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                const void *arg)
{
    return fn(ctx, bufs, arg);
}

const struct tsr__device_ops tsr__cpu_device_ops = {
    .name = "cpu",
    .kind = TSR_DEVICE_CPU,
    .n_devices = cpu_n_devices,
    .n_workers = cpu_n_workers,
    .mem_capacity = cpu_mem_capacity,
    .execute = cpu_execute,
};

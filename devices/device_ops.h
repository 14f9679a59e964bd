/* The device ops table: what core/ knows of a device backend. core/ reaches the
 * backends only through this table and the registry in core/backends.c. */
#ifndef TSR_DEVICES_DEVICE_OPS_H
#define TSR_DEVICES_DEVICE_OPS_H

#include <stdint.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

struct tsr__device_ops {
    const char *name;
    tsr_device_kind_t kind;
    /* Number of workers of this kind to start for a resolved configuration. */
    uint32_t (*n_workers)(const tsr_config_t *resolved);
    /* Run implementation fn of a task on this device. */
    tsr_status_t (*execute)(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                            const void *arg);
};

extern const struct tsr__device_ops tsr__cpu_device_ops;

#endif /* TSR_DEVICES_DEVICE_OPS_H */

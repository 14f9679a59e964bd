/* The device ops table: what core/ knows of a device backend. core/ reaches the
 * backends only through this table and the registry in core/backends.c. */
#ifndef TSR_DEVICES_DEVICE_OPS_H
#define TSR_DEVICES_DEVICE_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

/* The memory of one device (a memory node other than host memory). */
struct tsr__dev_mem {
    uint64_t capacity;   /* bytes */
    _Atomic uint64_t used; /* bytes allocated */
};

struct tsr__device_ops {
    const char *name;
    tsr_device_kind_t kind;
    /* Number of devices of this kind for a resolved configuration. */
    uint32_t (*n_devices)(const tsr_config_t *resolved);
    /* Worker threads per device (CPU: one per configured core). */
    uint32_t (*n_workers)(const tsr_config_t *resolved);
    /* Memory capacity of each device; 0: it computes in host memory (CPU). */
    uint64_t (*mem_capacity)(const tsr_config_t *resolved);
    /* Run implementation fn of a task on this device. */
    tsr_status_t (*execute)(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                            const void *arg);
    /* Device memory (NULL for the CPU). Allocation beyond capacity gives TSR_ENOMEM. */
    tsr_status_t (*mem_alloc)(struct tsr__dev_mem *mem, size_t n_bytes, void **ptr_out);
    void (*mem_free)(struct tsr__dev_mem *mem, void *ptr, size_t n_bytes);
    /* Copies; "peer" is between two memories of this backend (or within one). */
    tsr_status_t (*copy_to_device)(void *d_dst, const void *h_src, size_t n_bytes);
    tsr_status_t (*copy_to_host)(void *h_dst, const void *d_src, size_t n_bytes);
    tsr_status_t (*copy_peer)(void *d_dst, const void *d_src, size_t n_bytes);
};

extern const struct tsr__device_ops tsr__cpu_device_ops;
extern const struct tsr__device_ops tsr__sim_device_ops;

#endif /* TSR_DEVICES_DEVICE_OPS_H */

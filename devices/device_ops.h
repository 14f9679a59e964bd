/* The device ops table: what core/ knows of a device backend. core/ reaches the
 * backends only through this table and the registry in core/backends.c.
 *
 * Two kinds of device:
 * - synchronous (the CPU): `execute` runs an implementation to completion;
 * - asynchronous (sim, CUDA): the device's driver thread calls `launch_begin`,
 *   runs the implementation (which queues work on the stream it is given), then
 *   `launch_end`, and later `poll`s the returned token until the work completed.
 *   Nothing synchronises the whole device per task.
 *
 * Fences order the work on an asynchronous device: each replica on the device has
 * one (created by the backend on first use, owned by the replica, freed with
 * `fence_free`); it marks the last queued work that writes the replica (a copy in,
 * or a task writing it). Work that reads or overwrites the replica waits for it. */
#ifndef TSR_DEVICES_DEVICE_OPS_H
#define TSR_DEVICES_DEVICE_OPS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tessera/config.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

/* The memory of one device (a memory node other than host memory). */
struct tsr__dev_mem {
    uint64_t capacity;     /* bytes */
    _Atomic uint64_t used; /* bytes allocated */
};

/* One copy between memory nodes. A device end names its device's backend state;
 * a host end has NULL there, and NULL fences. The copy waits for *src_fence (NULL:
 * nothing to wait for) and, with a device destination, records its completion in
 * *dst_fence. A copy that may still read its device source after the call returns
 * records *src_fence again to cover that read, since the source's block goes back
 * for reuse once its fence is passed (fence_free). A copy to host memory, or one
 * with `wait` set, is complete when the call returns. */
struct tsr__copy {
    void *dst;
    const void *src;
    size_t n_bytes;
    void *dst_dev;
    void *src_dev;
    void **src_fence;
    void **dst_fence;
    int wait;
};

/* Launches a launch may have to wait for (predecessors still running there). */
#define TSR_LAUNCH_MAX_WAITS 4

/* One task launch on an asynchronous device. */
struct tsr__launch {
    /* Earlier launches on this device to wait for (their tokens and slots), and
     * the slot to use if the backend can (stream order then does the waiting). */
    uint32_t n_waits;
    void *waits[TSR_LAUNCH_MAX_WAITS];
    uint32_t wait_slots[TSR_LAUNCH_MAX_WAITS];
    uint32_t prefer_slot; /* UINT32_MAX: none */
    uint32_t n_bufs;
    uint32_t modes[TSR_MAX_BUFFERS];
    void **fences[TSR_MAX_BUFFERS]; /* the fence of each buffer's replica there */
    void *stream;                   /* set by launch_begin: handed to the implementation */
    void *blas;                     /* set by launch_begin: a BLAS handle bound to stream */
    uint32_t slot;                  /* backend's choice of stream */
    char msg[256];                  /* set with an error status: what went wrong */
};

struct tsr__device_ops {
    const char *name;
    tsr_device_kind_t kind;
    /* Copies to the device return before they complete (fences order them), so
     * they can start when a task is placed, ahead of its launch (prefetch). */
    int has_async_copies;
    /* Number of devices of this kind for a resolved configuration. */
    uint32_t (*n_devices)(const tsr_config_t *resolved);
    /* Worker threads per device (CPU: one per configured core). */
    uint32_t (*n_workers)(const tsr_config_t *resolved);
    /* Memory capacity of device `index`; 0: it computes in host memory (CPU). */
    uint64_t (*mem_capacity)(const tsr_config_t *resolved, uint32_t index);
    /* Device name into buf ("H100 80GB HBM3"); NULL op: the backend name. */
    void (*describe)(uint32_t index, char *buf, size_t n);
    /* Backend state of device `index` (NULL op: stateless). Errors: TSR_EBACKEND or
     * TSR_ENOMEM, with what went wrong in msg. */
    tsr_status_t (*open)(const tsr_config_t *resolved, uint32_t index, void **state_out, char *msg,
                         size_t n_msg);
    void (*close)(void *state);

    /* Synchronous devices: run implementation fn of a task. */
    tsr_status_t (*execute)(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                            const void *arg);
    /* Asynchronous devices. launch_begin picks a stream and makes it wait for the
     * fences of l's buffers. launch_end is given the implementation's status; it
     * checks the launch, records the written buffers' fences and returns a token
     * for poll (TSR_OK), or an error with l->msg set (no token). poll returns
     * TSR_PENDING, or the final status of the work (msg set on error) and frees
     * the token; with `block` it waits. */
    tsr_status_t (*launch_begin)(void *state, struct tsr__launch *l);
    tsr_status_t (*launch_end)(void *state, struct tsr__launch *l, tsr_status_t impl_status,
                               void **token_out);
    tsr_status_t (*poll)(void *state, void *token, int block, char *msg, size_t n_msg);

    /* Device memory (NULL for the CPU). Allocation beyond capacity gives TSR_ENOMEM. */
    tsr_status_t (*mem_alloc)(void *state, struct tsr__dev_mem *mem, size_t n_bytes,
                              void **ptr_out);
    void (*mem_free)(void *state, struct tsr__dev_mem *mem, void *ptr, size_t n_bytes);
    /* A copy with at least one end on a device of this backend. Errors:
     * TSR_EBACKEND with the backend's message in msg. */
    tsr_status_t (*copy)(const struct tsr__copy *c, char *msg, size_t n_msg);
    /* Wait for the work the fence marks, then free it: the runtime frees a
     * replica's fence before giving its block back for reuse. */
    void (*fence_free)(void *state, void *fence);
    /* Peak flops/s and memory bytes/s of the device (for cold-start estimates). */
    void (*peaks)(void *state, double *flops_out, double *bytes_out);
};

extern const struct tsr__device_ops tsr__cpu_device_ops;
extern const struct tsr__device_ops tsr__sim_device_ops;
#if TSR_HAVE_CUDA
extern const struct tsr__device_ops tsr__cuda_device_ops;
/* Why there are no CUDA devices ("" when there are some). */
const char *tsr__cuda_absent_reason(void);
#endif

#endif /* TSR_DEVICES_DEVICE_OPS_H */
